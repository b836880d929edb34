//! CSV import of people: every row is checked first and every problem reported with its line number;
//! only a file without problems is written, in one transaction (nothing half-imported).

use crate::domain::{AccountSource, DisplayName, EmailAddress, Grant, PersonStatus, Username};
use crate::store::{DirectoryStore, NewPerson};
use std::collections::{HashMap, HashSet};
use std::str::FromStr;

pub const COLUMNS: &[&str] =
    &["email", "display_name", "username", "source", "manager_email", "department", "phone", "status"];
const REQUIRED: &[&str] = &["email", "display_name"];

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{0}")]
    Header(String),
    #[error("{} problem(s); nothing was imported:\n{}", .0.len(), .0.join("\n"))]
    Rows(Vec<String>),
}

/// Parse and check a CSV file against the directory as it is now. Rows come back ordered so that every
/// manager is created before their reports.
pub async fn parse_csv(data: &[u8], store: &dyn DirectoryStore) -> Result<Vec<NewPerson>, ImportError> {
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).flexible(false).from_reader(data);
    let headers =
        reader.headers().map_err(|e| ImportError::Header(format!("cannot read the header line: {e}")))?.clone();
    let names: Vec<String> = headers.iter().map(|h| h.trim_start_matches('\u{feff}').to_lowercase()).collect();
    let unknown: Vec<&str> = names.iter().map(String::as_str).filter(|n| !COLUMNS.contains(n)).collect();
    if !unknown.is_empty() {
        return Err(ImportError::Header(format!(
            "line 1: unknown column(s) {}; the columns are: {}",
            unknown.join(", "),
            COLUMNS.join(", ")
        )));
    }
    for required in REQUIRED {
        if !names.iter().any(|n| n == required) {
            return Err(ImportError::Header(format!("line 1: the column {required} is required")));
        }
    }
    let mut seen: HashSet<String> = HashSet::new();
    if names.len() != names.iter().filter(|n| seen.insert((*n).clone())).count() {
        return Err(ImportError::Header("line 1: a column appears twice".into()));
    }

    let mut problems = Vec::new();
    let mut rows: Vec<(u64, NewPerson)> = Vec::new();
    let mut emails = HashSet::new();
    let mut usernames = HashSet::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                problems.push(format!("line {line}: {e}"));
                continue;
            }
        };
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        let field: HashMap<&str, &str> =
            names.iter().map(String::as_str).zip(record.iter()).filter(|(_, v)| !v.is_empty()).collect();
        match parse_row(&field) {
            Ok(person) => {
                if !emails.insert(person.email.clone()) {
                    problems.push(format!("line {line}: email {} appears twice in the file", person.email));
                } else if !usernames.insert(person.username.clone()) {
                    problems.push(format!("line {line}: username {} appears twice in the file", person.username));
                } else {
                    rows.push((line, person));
                }
            }
            Err(message) => problems.push(format!("line {line}: {message}")),
        }
    }
    // Against the directory as it is: taken emails and usernames, unknown managers.
    // Each manager once, however many reports name them.
    let outside: HashSet<&str> = rows
        .iter()
        .filter_map(|(_, p)| p.manager_email.as_ref())
        .filter(|m| !emails.contains(*m))
        .map(|m| m.as_str())
        .collect();
    let mut asked: Vec<&str> = rows.iter().map(|(_, p)| p.email.as_str()).collect();
    asked.extend(outside);
    let names: Vec<&str> = rows.iter().map(|(_, p)| p.username.as_str()).collect();
    let (taken_emails, taken_usernames) = match store.taken(&asked, &names).await {
        Ok(taken) => taken,
        Err(e) => return Err(ImportError::Rows(vec![format!("cannot check the file against the directory: {e}")])),
    };
    for (line, person) in &rows {
        if taken_emails.contains(person.email.as_str()) {
            problems.push(format!("line {line}: a person with email {} already exists", person.email));
        }
        if taken_usernames.contains(person.username.as_str()) {
            problems.push(format!("line {line}: the username {} is already taken", person.username));
        }
        if let Some(manager) = &person.manager_email
            && !emails.contains(manager)
            && !taken_emails.contains(manager.as_str())
        {
            problems.push(format!("line {line}: manager {manager} is neither in the directory nor in the file"));
        }
    }
    if !problems.is_empty() {
        return Err(ImportError::Rows(problems));
    }
    order_managers_first(rows).map_err(ImportError::Rows)
}

fn parse_row(field: &HashMap<&str, &str>) -> Result<NewPerson, String> {
    let get = |k: &str| field.get(k).copied();
    let email = EmailAddress::parse(get("email").unwrap_or_default()).map_err(|e| e.to_string())?;
    let display_name = DisplayName::parse(get("display_name").unwrap_or_default()).map_err(|e| e.to_string())?;
    let username = match get("username") {
        Some(u) => Username::parse(u),
        None => Username::from_email(&email),
    }
    .map_err(|e| e.to_string())?;
    let source =
        get("source").map(AccountSource::from_str).transpose().map_err(|e| format!("source: {}", e.message))?;
    let status = get("status").map(PersonStatus::from_str).transpose().map_err(|e| format!("status: {}", e.message))?;
    let manager_email =
        get("manager_email").map(EmailAddress::parse).transpose().map_err(|e| format!("manager_{e}"))?;
    if manager_email.as_ref() == Some(&email) {
        return Err("a person cannot be their own manager".into());
    }
    let text = |k: &str, max: usize| -> Result<Option<String>, String> {
        match get(k) {
            Some(v) if v.chars().count() > max => Err(format!("{k}: longer than {max} characters")),
            Some(v) if v.chars().any(char::is_control) => Err(format!("{k}: contains control characters")),
            other => Ok(other.map(str::to_owned)),
        }
    };
    Ok(NewPerson {
        display_name,
        email,
        username,
        source: source.unwrap_or(AccountSource::Local),
        manager_email,
        department: text("department", 200)?,
        phone: text("phone", 40)?,
        status: status.unwrap_or(PersonStatus::Active),
        password_hash: None,
        require_change_password: false,
        grant: Grant::default(),
    })
}

/// Order rows so that managers in the file come before their reports; a cycle is an error.
fn order_managers_first(mut pending: Vec<(u64, NewPerson)>) -> Result<Vec<NewPerson>, Vec<String>> {
    let in_file: HashSet<EmailAddress> = pending.iter().map(|(_, p)| p.email.clone()).collect();
    let mut placed: HashSet<EmailAddress> = HashSet::new();
    let mut ordered = Vec::with_capacity(pending.len());
    while !pending.is_empty() {
        let before = pending.len();
        let (ready, rest): (Vec<_>, Vec<_>) = pending.into_iter().partition(|(_, p)| match &p.manager_email {
            Some(m) => !in_file.contains(m) || placed.contains(m),
            None => true,
        });
        for (_, p) in ready {
            placed.insert(p.email.clone());
            ordered.push(p);
        }
        pending = rest;
        if pending.len() == before {
            return Err(pending
                .iter()
                .map(|(line, p)| format!("line {line}: {} is part of a manager cycle", p.email))
                .collect());
        }
    }
    Ok(ordered)
}
