//! The audit log for auditors: filter by person, actor, action and date; the chain's verification on top.

use super::{Admin, query_param};
use crate::auditing::{ChainStatus, PAGE_LIMIT};
use crate::authz::ReadAudit;
use crate::domain::PersonId;
use crate::http::labels;
use crate::http::templates::{AuditLine, ConsoleAuditPage, render};
use crate::http::{AppState, PageError};
use crate::store::AuditFilter;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;

/// A `YYYY-MM-DD` day as its first second (UTC), or its last when `end`.
fn day(text: &str, end: bool) -> Result<Option<i64>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let date = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| format!("{text:?} is not a date like 2026-12-02."))?;
    let start = date.and_hms_opt(0, 0, 0).map(|t| t.and_utc().timestamp()).unwrap_or_default();
    Ok(Some(if end { start + 86_399 } else { start }))
}

pub async fn audit_get(
    State(state): State<AppState>,
    admin: Admin,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let proof = admin.authorize::<ReadAudit>(&state, None).await?;
    let query = query.unwrap_or_default();
    let param = |name: &str| query_param(&query, name).chars().take(200).collect::<String>();
    let (person, actor, action, from, to) =
        (param("person"), param("actor"), param("action"), param("from"), param("to"));
    let mut error = None;
    let person_id = match person.trim() {
        "" => None,
        p => match p.parse::<i64>() {
            Ok(id) if id > 0 => Some(PersonId(id)),
            _ => {
                error = Some("The person is their number (the id in the address of their record).".to_owned());
                None
            }
        },
    };
    let since = day(&from, false).unwrap_or_else(|e| {
        error = Some(e);
        None
    });
    let until = day(&to, true).unwrap_or_else(|e| {
        error = Some(e);
        None
    });
    let nonempty = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
    let filter = AuditFilter { person: person_id, actor: nonempty(&actor), action: nonempty(&action), since, until };
    let rows = if error.is_some() { Vec::new() } else { state.audit_log.search(&proof, &filter).await? };
    let (chain_ok, chain, problems) = match state.audit_log.verify(&proof).await? {
        ChainStatus::Intact { rows } => {
            (true, format!("{rows} rows, none changed, added, removed or reordered."), Vec::new())
        }
        ChainStatus::Broken(problems) => (false, String::new(), problems),
    };
    let when = crate::assistance::dossier::when;
    let rows = rows
        .into_iter()
        .map(|r| AuditLine {
            id: r.id,
            at: when(r.entry.at),
            actor: labels::actor(&r.entry.actor),
            on_behalf_of: r.entry.on_behalf_of.unwrap_or_default(),
            action: r.entry.action,
            person: r.entry.subject_person_id,
            outcome: r.entry.outcome,
            reason: r.entry.reason.unwrap_or_default(),
            reference: r.entry.reference.unwrap_or_default(),
            details: r.entry.details.unwrap_or_default(),
        })
        .collect();
    let status = if error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    let mut response = render(&ConsoleAuditPage {
        title: "Audit log",
        chain_ok,
        chain,
        problems,
        error,
        person,
        actor,
        action,
        from,
        to,
        limit: PAGE_LIMIT,
        rows,
    });
    *response.status_mut() = status;
    Ok(response)
}
