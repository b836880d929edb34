//! The dossier an admin reads before acting on an assistance request (SPEC §3): request details, account
//! status, recent security events, request context, and risk flags read from those facts. Pure: built
//! from facts gathered by the service and a `now`.

use crate::domain::Timestamp;
use crate::geo::Location;
use crate::store::SignInEvent;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// What the service gathered.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub reference: String,
    pub submitted_email: String,
    pub problem_label: String,
    pub description: Option<String>,
    pub created_at: Timestamp,
    pub request_ip: String,
    pub request_location: Location,
    pub person: Option<PersonFacts>,
    /// Newest first.
    pub sign_ins: Vec<SignInEvent>,
    /// (kind, change, at), newest first.
    pub authenticator_changes: Vec<(String, String, Timestamp)>,
    pub last_access_email: Option<Timestamp>,
    pub last_recovery_code: Option<Timestamp>,
    pub ip_seen_before: bool,
    pub network_seen_before: bool,
}

#[derive(Debug, Clone, Default)]
pub struct PersonFacts {
    pub display_name: String,
    pub email: String,
    pub username: String,
    pub source: String,
    pub active: bool,
    pub locked: bool,
    pub lock_reason: Option<String>,
    pub mfa_enabled: bool,
    pub backup_codes_unused: i64,
    pub password_changed_at: Option<Timestamp>,
    /// A password set when the account was created is not a change.
    pub account_created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dossier {
    pub reference: String,
    pub submitted_email: String,
    /// "Ada Admin (ada) <ada@example.org>", or "no matching account".
    pub resolved_account: String,
    pub matched: bool,
    pub request_type: String,
    /// The requester's own words, as stored. Never shown as is: see [`Dossier::quoted_description`].
    pub description: Option<String>,
    pub submitted_at: String,
    pub account: Vec<(String, String)>,
    pub events: Vec<(String, String)>,
    pub context: Vec<(String, String)>,
    pub risk_flags: Vec<String>,
}

impl Dossier {
    /// The description as lines safe to quote in a plain-text email (see [`quote`]); empty when none.
    pub fn quoted_description(&self) -> Vec<String> {
        self.description.as_deref().map(quote).unwrap_or_default()
    }
}

/// One submission of a request, as listed when several joined: when, from where, and what it said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    pub reference: String,
    pub submitted_at: String,
    pub context: Vec<(String, String)>,
    pub description: Option<String>,
}

impl Submission {
    pub fn of(d: &Dossier) -> Self {
        Self {
            reference: d.reference.clone(),
            submitted_at: d.submitted_at.clone(),
            context: d.context.clone(),
            description: d.description.clone(),
        }
    }

    pub fn quoted_description(&self) -> Vec<String> {
        self.description.as_deref().map(quote).unwrap_or_default()
    }
}

/// Does a repeat come from a network, or a country, that none of the request's earlier submissions
/// (`(network, country)` each) came from? Then the admins hear of it: the person asking the second time
/// may not be the person who asked the first.
pub fn from_somewhere_new(earlier: &[(Option<&str>, Option<&str>)], network: &str, country: Option<&str>) -> bool {
    let known_network = earlier.iter().any(|(n, _)| *n == Some(network));
    let known_country = country.is_none_or(|c| earlier.iter().any(|(_, k)| *k == Some(c)));
    !known_network || !known_country
}

/// Most lines of a requester's text that a dossier shows, and most characters per line and in all.
pub const QUOTE_MAX_LINES: usize = 20;
pub const QUOTE_MAX_LINE_CHARS: usize = 160;
pub const QUOTE_MAX_CHARS: usize = 500;

/// Characters that change how text *looks* without being visible: bidirectional overrides, embeddings
/// and isolates (which can reorder a line so that "gro.live" reads "evil.org"), and zero-width ones.
fn invisible(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

/// A requester's free text made fit for a plain-text email, where nothing marks where it starts and
/// ends: split into lines (any line break, including U+2028/U+2029), control and invisible formatting
/// characters removed, tabs made spaces, runs of blank lines collapsed, and the whole capped. The
/// templates prefix every line with `> `, so no line of it can pass for a heading, a flag or a fact.
pub fn quote(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut total = 0;
    let mut shortened = false;
    let text = text.replace("\r\n", "\n");
    for raw in text.split(['\n', '\r', '\u{2028}', '\u{2029}', '\u{0085}', '\u{000B}', '\u{000C}']) {
        let cleaned: String = raw
            .chars()
            .map(|c| if c == '\t' { ' ' } else { c })
            .filter(|c| !c.is_control() && !invisible(*c))
            .collect();
        let line = cleaned.trim_end();
        if line.trim().is_empty() {
            // One blank line at most, and none at the start.
            if lines.last().is_some_and(|l| !l.is_empty()) {
                lines.push(String::new());
            }
            continue;
        }
        if lines.len() >= QUOTE_MAX_LINES || total >= QUOTE_MAX_CHARS {
            shortened = true;
            break;
        }
        let room = QUOTE_MAX_LINE_CHARS.min(QUOTE_MAX_CHARS - total);
        let count = line.chars().count();
        if count > room {
            shortened = true;
        }
        let kept: String = line.chars().take(room).collect();
        total += kept.chars().count();
        lines.push(kept);
    }
    while lines.last().is_some_and(String::is_empty) {
        lines.pop();
    }
    if shortened {
        lines.push("[shortened by Lifeline]".into());
    }
    lines
}

pub fn when(at: Timestamp) -> String {
    chrono::DateTime::from_timestamp(at, 0).map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string()).unwrap_or_default()
}

fn when_or_never(at: Option<Timestamp>) -> String {
    at.map(when).unwrap_or_else(|| "never".into())
}

fn yes_no(b: bool) -> String {
    if b { "yes".into() } else { "no".into() }
}

const DAY: i64 = 86_400;

pub fn build(f: &Facts, now: Timestamp) -> Dossier {
    let successes: Vec<&SignInEvent> = f.sign_ins.iter().filter(|e| e.outcome == "success").collect();
    let failures = |since: Timestamp| {
        f.sign_ins.iter().filter(|e| e.at >= since && (e.outcome.starts_with("bad_") || e.outcome == "locked")).count()
    };
    let place = |e: &SignInEvent| {
        Location { city: e.city.clone(), country: e.country.clone(), asn: e.asn, network: e.network.clone() }.place()
    };

    let (resolved_account, account) = match &f.person {
        None => (
            "no matching account".to_owned(),
            vec![("Account".to_owned(), "no account has this email address".to_owned())],
        ),
        Some(p) => (
            format!("{} ({}) <{}>", p.display_name, p.username, p.email),
            vec![
                (
                    "Exists and active".into(),
                    if p.active { "yes".into() } else { "no — the person is disabled".into() },
                ),
                (
                    "Locked".into(),
                    if p.locked {
                        format!("yes ({})", p.lock_reason.as_deref().unwrap_or("unknown reason"))
                    } else {
                        "no".into()
                    },
                ),
                ("Account type".into(), p.source.clone()),
                (
                    "Two-factor authentication".into(),
                    if p.mfa_enabled { "enabled".into() } else { "not set up".into() },
                ),
                ("Unused backup codes".into(), p.backup_codes_unused.to_string()),
            ],
        ),
    };

    let mut events = Vec::new();
    if f.person.is_some() {
        events.push((
            "Last successful sign-in".into(),
            successes
                .first()
                .map(|e| format!("{} from {} ({}, {})", when(e.at), e.client_ip, place(e), e.network))
                .unwrap_or_else(|| "never".into()),
        ));
        let mut seen: Vec<String> = Vec::new();
        for e in &successes {
            let item = format!("{} — {}", place(e), e.network);
            if !seen.contains(&item) {
                seen.push(item);
            }
        }
        events.push((
            "Recent sign-in locations and networks".into(),
            if seen.is_empty() { "none".into() } else { seen.join("; ") },
        ));
        events.push((
            "Recent failed sign-in attempts".into(),
            format!("{} in the last 24 hours, {} in the last 7 days", failures(now - DAY), failures(now - 7 * DAY)),
        ));
        events.push(("Access email last sent".into(), when_or_never(f.last_access_email)));
        events.push(("Recovery code last sent".into(), when_or_never(f.last_recovery_code)));
        let last_change = |kind: &str| f.authenticator_changes.iter().find(|(k, _, _)| k == kind).map(|(_, _, at)| *at);
        events.push(("2FA last changed".into(), when_or_never(last_change("totp"))));
        events.push(("Backup codes last changed".into(), when_or_never(last_change("backup_codes"))));
        events.push((
            "Password last changed".into(),
            when_or_never(f.person.as_ref().and_then(|p| p.password_changed_at)),
        ));
    }

    let mut context = vec![
        ("IP address".to_owned(), f.request_ip.clone()),
        ("Approximate location".to_owned(), f.request_location.place()),
        ("Network".to_owned(), f.request_location.network.clone()),
    ];
    if f.person.is_some() {
        context.push(("This IP used for a successful sign-in before".into(), yes_no(f.ip_seen_before)));
        context.push(("This network used for a successful sign-in before".into(), yes_no(f.network_seen_before)));
    }

    Dossier {
        reference: f.reference.clone(),
        submitted_email: f.submitted_email.clone(),
        matched: f.person.is_some(),
        resolved_account,
        request_type: f.problem_label.clone(),
        description: f.description.clone(),
        submitted_at: when(f.created_at),
        account,
        events,
        context,
        risk_flags: risk_flags(f, now),
    }
}

/// The seeds list raw facts; these are the readings of them an experienced admin would make.
pub fn risk_flags(f: &Facts, now: Timestamp) -> Vec<String> {
    let mut flags = Vec::new();
    let Some(person) = &f.person else {
        flags.push("No account has this email address: possibly a typo, or someone probing for accounts.".into());
        return flags;
    };
    let successes: Vec<&SignInEvent> = f.sign_ins.iter().filter(|e| e.outcome == "success").collect();
    if !successes.is_empty() {
        let countries: BTreeSet<&str> = successes.iter().filter_map(|e| e.country.as_deref()).collect();
        if let Some(country) = f.request_location.country.as_deref()
            && !countries.contains(country)
        {
            let known: Vec<&str> = countries.into_iter().collect();
            flags.push(format!(
                "New country: the request comes from {country}; successful sign-ins so far came from {}.",
                if known.is_empty() { "unknown places".to_owned() } else { known.join(", ") }
            ));
        }
        if !f.network_seen_before {
            flags.push(format!(
                "New network: {} has never been used for a successful sign-in.",
                f.request_location.network
            ));
        }
    } else {
        flags.push("No successful sign-in on record: nothing to compare the request's location with.".into());
    }
    let burst = f.sign_ins.iter().filter(|e| e.at >= now - DAY && e.outcome.starts_with("bad_")).count();
    if burst >= 3 {
        flags.push(format!("Burst of failures: {burst} failed sign-in attempts in the last 24 hours."));
    }
    let recovery = f.last_access_email.max(f.last_recovery_code);
    if let Some(at) = recovery
        && at >= now - 7 * DAY
    {
        flags.push(format!("Recovery already sent recently ({}).", when(at)));
    }
    if let Some(at) = person.password_changed_at
        && at > person.account_created_at
        && at <= f.created_at
        && f.created_at - at <= DAY
    {
        flags.push(format!("Request right after a password change ({}).", when(at)));
    }
    if !person.active {
        flags.push("The person is disabled.".into());
    }
    flags
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(at: Timestamp, outcome: &str, ip: &str, city: &str, country: &str, network: &str) -> SignInEvent {
        SignInEvent {
            account_id: Some(1),
            at,
            outcome: outcome.into(),
            method: "totp".into(),
            client_ip: ip.into(),
            city: Some(city.into()),
            country: Some(country.into()),
            asn: None,
            network: network.into(),
            user_agent: String::new(),
        }
    }

    fn facts(now: Timestamp) -> Facts {
        Facts {
            reference: "AR-7KQ2-MX4P".into(),
            submitted_email: "ada@example.org".into(),
            problem_label: "Lost 2FA device or backup codes".into(),
            created_at: now,
            request_ip: "89.160.20.112".into(),
            request_location: Location {
                city: Some("Linköping".into()),
                country: Some("SE".into()),
                asn: Some(29518),
                network: "AS29518 Bredband2 AB".into(),
            },
            person: Some(PersonFacts {
                display_name: "Ada".into(),
                email: "ada@example.org".into(),
                username: "ada".into(),
                source: "local".into(),
                active: true,
                mfa_enabled: true,
                backup_codes_unused: 8,
                password_changed_at: Some(now - 30 * DAY),
                ..Default::default()
            }),
            sign_ins: vec![event(now - 3600, "success", "81.2.69.142", "London", "GB", "81.2.69.0/24")],
            ..Default::default()
        }
    }

    #[test]
    fn a_request_from_a_new_country_and_network_is_flagged() {
        let now = 1_800_000_000;
        let dossier = build(&facts(now), now);
        assert!(
            dossier.risk_flags.iter().any(|f| f.starts_with("New country: the request comes from SE")),
            "{:?}",
            dossier.risk_flags
        );
        assert!(dossier.risk_flags.iter().any(|f| f.starts_with("New network")));
        assert!(dossier.context.contains(&("Approximate location".into(), "Linköping, SE".into())));
        assert!(dossier.events.iter().any(|(k, v)| k == "Last successful sign-in" && v.contains("London, GB")));
    }

    #[test]
    fn a_familiar_request_raises_nothing() {
        let now = 1_800_000_000;
        let mut f = facts(now);
        f.request_location = Location {
            city: Some("London".into()),
            country: Some("GB".into()),
            asn: None,
            network: "81.2.69.0/24".into(),
        };
        f.ip_seen_before = true;
        f.network_seen_before = true;
        assert_eq!(risk_flags(&f, now), Vec::<String>::new());
    }

    #[test]
    fn bursts_recent_recovery_and_fresh_password_changes_are_flagged() {
        let now = 1_800_000_000;
        let mut f = facts(now);
        f.network_seen_before = true;
        f.request_location.country = Some("GB".into());
        for i in 0..3 {
            f.sign_ins.push(event(now - 100 - i, "bad_password", "1.2.3.4", "X", "GB", "n"));
        }
        f.last_recovery_code = Some(now - DAY);
        if let Some(p) = f.person.as_mut() {
            p.password_changed_at = Some(now - 600);
            p.account_created_at = now - 90 * DAY;
        }
        let flags = risk_flags(&f, now);
        assert_eq!(flags.len(), 3, "{flags:?}");
        assert!(flags[0].starts_with("Burst of failures: 3"));
        assert!(flags[1].starts_with("Recovery already sent recently"));
        assert!(flags[2].starts_with("Request right after a password change"));
    }

    #[test]
    fn the_first_password_of_a_new_account_is_not_a_change() {
        let now = 1_800_000_000;
        let mut f = facts(now);
        if let Some(p) = f.person.as_mut() {
            p.password_changed_at = Some(now - 600);
            p.account_created_at = now - 600;
        }
        assert!(!risk_flags(&f, now).iter().any(|flag| flag.contains("password change")));
    }

    #[test]
    fn quoted_text_loses_control_and_bidi_characters_blank_runs_and_excess() {
        let lines = quote("Hello\r\n\r\n\r\n\u{202E}gro.live\u{202C}\tnow\u{7}\u{2028}ACCOUNT STATUS\u{200B}\n\n");
        assert_eq!(lines, ["Hello", "", "gro.live now", "ACCOUNT STATUS"]);
        let long = quote(&"line\n".repeat(60));
        assert_eq!(long.len(), QUOTE_MAX_LINES + 1);
        assert_eq!(long.last().map(String::as_str), Some("[shortened by Lifeline]"));
        let wide = quote(&"w".repeat(QUOTE_MAX_LINE_CHARS + 50));
        assert_eq!(wide[0].chars().count(), QUOTE_MAX_LINE_CHARS);
        let many = quote(&vec!["x".repeat(150); 10].join("\n"));
        let total: usize = many.iter().take(many.len() - 1).map(|l| l.chars().count()).sum();
        assert_eq!(total, QUOTE_MAX_CHARS);
        assert!(quote(" \n\t\n").is_empty());
    }

    #[test]
    fn a_repeat_from_a_new_network_or_country_is_news() {
        let earlier = [(Some("AS1 One"), Some("GB")), (Some("AS2 Two"), None)];
        assert!(!from_somewhere_new(&earlier, "AS1 One", Some("GB")));
        assert!(!from_somewhere_new(&earlier, "AS2 Two", None));
        assert!(from_somewhere_new(&earlier, "AS3 Three", Some("GB")), "new network");
        assert!(from_somewhere_new(&earlier, "AS1 One", Some("SE")), "new country");
        // Rows processed before networks were stored know none: anything is new to them.
        assert!(from_somewhere_new(&[(None, None)], "AS1 One", None));
    }

    #[test]
    fn unknown_emails_say_so() {
        let now = 1_800_000_000;
        let mut f = facts(now);
        f.person = None;
        let dossier = build(&f, now);
        assert_eq!(dossier.resolved_account, "no matching account");
        assert!(dossier.risk_flags[0].starts_with("No account has this email address"));
    }
}
