//! The dossier an admin reads before acting on an assistance request (SPEC §3): request details, account
//! status, recent security events, request context, and risk flags read from those facts. Pure: built
//! from facts gathered by the service and a `now`.

use super::quote::quote;
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
    /// The newest recovery action of any kind on the account (an unlock, an MFA reset, ...).
    pub last_recovery_action: Option<Timestamp>,
    pub ip_seen_before: bool,
    pub network_seen_before: bool,
    /// Other requests from the requesting IP or network in the last day, about other addresses.
    pub same_source: Vec<SourceRequest>,
}

/// Another request from the same IP or network as this one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceRequest {
    pub submitted_email: String,
    pub client_ip: String,
    pub network: Option<String>,
    pub at: Timestamp,
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
    /// Each passkey, with its last use: "Work laptop (last used …)".
    pub passkeys: Vec<String>,
    pub password_changed_at: Option<Timestamp>,
    /// A password set when the account was created is not a change.
    pub account_created_at: Timestamp,
    /// The phone number on file, to call back on.
    pub phone: Option<String>,
    /// "Name <email>" of the line manager, who can vouch for the person.
    pub manager: Option<String>,
    /// When a temporary lock ends by itself.
    pub locked_until: Option<Timestamp>,
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

/// A sign-in attempt whose password, code or answers were checked and wrong.
fn is_failure(outcome: &str) -> bool {
    outcome.starts_with("bad_")
}

fn lock_reason_label(reason: Option<&str>) -> &'static str {
    match reason {
        Some("failures") => "too many failed sign-ins",
        Some("qa_failures") => "too many wrong security answers",
        Some("admin") => "locked by an admin",
        Some("reported_not_me") => "the person reported activity that was not theirs",
        _ => "reason not recorded",
    }
}

pub fn build(f: &Facts, now: Timestamp) -> Dossier {
    let successes: Vec<&SignInEvent> = f.sign_ins.iter().filter(|e| e.outcome == "success").collect();
    // One definition of a failure everywhere in the dossier: a wrong password or code that was checked.
    // Attempts refused without a check (locked, too soon) are counted on a line of their own.
    let failures = |since: Timestamp| f.sign_ins.iter().filter(|e| e.at >= since && is_failure(&e.outcome)).count();
    let refused = |since: Timestamp| {
        f.sign_ins.iter().filter(|e| e.at >= since && matches!(e.outcome.as_str(), "locked" | "delayed")).count()
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
                        let until =
                            p.locked_until.map(|t| format!(", ends by itself at {}", when(t))).unwrap_or_default();
                        format!("yes ({}{until})", lock_reason_label(p.lock_reason.as_deref()))
                    } else {
                        "no".into()
                    },
                ),
                ("Phone on file".into(), p.phone.clone().unwrap_or_else(|| "none on file".into())),
                ("Line manager".into(), p.manager.clone().unwrap_or_else(|| "none on file".into())),
                ("Account type".into(), p.source.clone()),
                (
                    "Two-factor authentication".into(),
                    if p.mfa_enabled { "enabled".into() } else { "not set up".into() },
                ),
                ("Unused backup codes".into(), p.backup_codes_unused.to_string()),
                ("Passkeys".into(), if p.passkeys.is_empty() { "none".into() } else { p.passkeys.join("; ") }),
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
        let week = Failures::read(f, now - 7 * DAY);
        let mut line =
            format!("{} in the last 24 hours, {} in the last 7 days", failures(now - DAY), failures(now - 7 * DAY));
        if week.total > 0 {
            line.push_str(&format!(
                "; of those 7 days' failures, {} came from the IP asking for help, {} more from its network, and {} \
                 from the person's usual network and device",
                week.from_ip, week.from_network, week.usual
            ));
        }
        events.push(("Recent failed sign-in attempts".into(), line));
        let refused_week = refused(now - 7 * DAY);
        if refused_week > 0 {
            events.push((
                "Attempts refused unchecked (account locked, or too soon after a failure)".into(),
                format!("{} in the last 24 hours, {refused_week} in the last 7 days", refused(now - DAY)),
            ));
        }
        events.push(("Access email last sent".into(), when_or_never(f.last_access_email)));
        events.push(("Recovery code last sent".into(), when_or_never(f.last_recovery_code)));
        let last_change = |kind: &str| f.authenticator_changes.iter().find(|(k, _, _)| k == kind).map(|(_, _, at)| *at);
        events.push(("2FA last changed".into(), when_or_never(last_change("totp"))));
        events.push(("Backup codes last changed".into(), when_or_never(last_change("backup_codes"))));
        events.push(("Passkeys last changed".into(), when_or_never(last_change("passkey"))));
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
    let others = SameSource::read(f, now);
    context.push((
        "Other addresses asked about from this IP or network in the last 24 hours".into(),
        if others.by_ip.is_empty() && others.by_network.is_empty() {
            "none".into()
        } else {
            format!("{} from this IP, {} more from its network", others.by_ip.len(), others.by_network.len())
        },
    ));

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

/// Failed sign-ins since a time, by where they came from.
#[derive(Debug, Default)]
struct Failures {
    total: usize,
    /// From the IP the request comes from.
    from_ip: usize,
    /// From the request's network, but another IP.
    from_network: usize,
    /// From a network and device (user agent) the person has signed in with successfully.
    usual: usize,
    /// Networks of the others, for the flag.
    strange_networks: BTreeSet<String>,
}

impl Failures {
    fn read(f: &Facts, since: Timestamp) -> Self {
        let usual = |e: &SignInEvent| {
            !e.user_agent.is_empty()
                && f.sign_ins
                    .iter()
                    .any(|s| s.outcome == "success" && s.network == e.network && s.user_agent == e.user_agent)
        };
        let mut out = Self::default();
        for e in f.sign_ins.iter().filter(|e| e.at >= since && is_failure(&e.outcome)) {
            out.total += 1;
            if e.client_ip == f.request_ip {
                out.from_ip += 1;
            } else if e.network == f.request_location.network {
                out.from_network += 1;
            }
            if usual(e) {
                out.usual += 1;
            } else {
                out.strange_networks.insert(e.network.clone());
            }
        }
        out
    }

    fn strangers(&self) -> usize {
        self.total - self.usual
    }

    /// Failures from the person's usual network and device count a third: a few of them are a forgotten
    /// password; from anywhere else, three are worth a look.
    fn is_burst(&self) -> bool {
        3 * self.strangers() + self.usual >= 9
    }
}

/// The other addresses this request's IP, or else its network, asked about in the last day.
struct SameSource<'a> {
    by_ip: BTreeSet<&'a str>,
    by_network: BTreeSet<&'a str>,
}

impl<'a> SameSource<'a> {
    fn read(f: &'a Facts, now: Timestamp) -> Self {
        let recent = f.same_source.iter().filter(|r| r.at >= now - DAY && r.submitted_email != f.submitted_email);
        let mut by_ip = BTreeSet::new();
        let mut by_network = BTreeSet::new();
        for r in recent {
            if r.client_ip == f.request_ip {
                by_ip.insert(r.submitted_email.as_str());
            } else if r.network.as_deref() == Some(f.request_location.network.as_str()) {
                by_network.insert(r.submitted_email.as_str());
            }
        }
        by_network.retain(|e| !by_ip.contains(e));
        Self { by_ip, by_network }
    }
}

/// "a@x, b@y, c@z and 2 more"
fn some_of<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let items: Vec<&str> = items.into_iter().collect();
    let shown = items.iter().take(3).copied().collect::<Vec<_>>().join(", ");
    match items.len() {
        0..=3 => shown,
        n => format!("{shown} and {} more", n - 3),
    }
}

fn addresses(n: usize) -> String {
    if n == 1 { "1 other address".into() } else { format!("{n} other addresses") }
}

/// Why a successful sign-in is worth telling its person about (ASVS 5.0 6.3.5), read from the same facts as a
/// dossier's risk flags: a country or a network no earlier successful sign-in came from, or a burst of failed
/// sign-ins from strangers in the day before it. `earlier` are the account's sign-in events before this one,
/// newest first. Nothing for a first sign-in: there is nothing to compare it with.
pub fn sign_in_alerts(current: &SignInEvent, earlier: &[SignInEvent], now: Timestamp) -> Vec<String> {
    let successes: Vec<&SignInEvent> = earlier.iter().filter(|e| e.outcome == "success").collect();
    let mut reasons = Vec::new();
    if !successes.is_empty() {
        if let Some(country) = &current.country
            && !successes.iter().any(|e| e.country.as_ref() == Some(country))
        {
            reasons.push(format!("it came from a country your account has not signed in from before ({country})"));
        }
        if !current.network.is_empty() && !successes.iter().any(|e| e.network == current.network) {
            reasons.push(format!(
                "it came from a network your account has not signed in from before ({})",
                current.network
            ));
        }
    }
    let facts = Facts {
        sign_ins: earlier.to_vec(),
        request_ip: current.client_ip.clone(),
        request_location: Location { network: current.network.clone(), ..Default::default() },
        ..Default::default()
    };
    let day = Failures::read(&facts, now - DAY);
    if day.is_burst() {
        reasons.push(format!(
            "it came after {} failed sign-ins in the last 24 hours, {} of them from networks or devices you do not use",
            day.total,
            day.strangers()
        ));
    }
    reasons
}

/// Flags about who is asking, whether or not the address belongs to anyone.
fn source_flags(f: &Facts, now: Timestamp, flags: &mut Vec<String>) {
    let others = SameSource::read(f, now);
    if !others.by_ip.is_empty() {
        flags.push(format!(
            "Same source, other people: this IP ({}) also asked about {} in the last 24 hours ({}). One source \
             asking for several people is the classic helpdesk attack: verify this person through the number on \
             file, and look at those requests too.",
            f.request_ip,
            addresses(others.by_ip.len()),
            some_of(others.by_ip.iter().copied())
        ));
    }
    if !others.by_network.is_empty() {
        flags.push(format!(
            "Same network, other people: {} also asked about {} in the last 24 hours ({}). That may be one office \
             having a bad day, or one person asking for several: look at those requests before acting on this one.",
            f.request_location.network,
            addresses(others.by_network.len()),
            some_of(others.by_network.iter().copied())
        ));
    }
}

/// The seeds list raw facts; these are the readings of them an experienced admin would make. Each is a
/// sentence that says what was seen and what to do about it.
pub fn risk_flags(f: &Facts, now: Timestamp) -> Vec<String> {
    let mut flags = Vec::new();
    let Some(person) = &f.person else {
        flags.push("No account has this email address: possibly a typo, or someone probing for accounts.".into());
        source_flags(f, now, &mut flags);
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
    source_flags(f, now, &mut flags);
    let day = Failures::read(f, now - DAY);
    if day.is_burst() {
        flags.push(if day.strangers() == 0 {
            format!(
                "Burst of failures: {} failed sign-in attempts in the last 24 hours, all from the person's usual \
                 network and device — more than a forgotten password explains: ask the person whether it was them.",
                day.total
            )
        } else {
            format!(
                "Burst of failures: {} failed sign-in attempts in the last 24 hours, {} of them from networks or \
                 devices this person has never signed in with ({}).",
                day.total,
                day.strangers(),
                some_of(day.strange_networks.iter().map(String::as_str))
            )
        });
    } else if day.total >= 3 {
        flags.push(format!(
            "Failed sign-ins from the person's usual network and device: {} of the {} in the last 24 hours — more \
             likely a forgotten password than an attack.",
            day.usual, day.total
        ));
    }
    let week = Failures::read(f, now - 7 * DAY);
    let nearby = week.from_ip + week.from_network;
    if nearby > 0 {
        let whence = match (week.from_ip, week.from_network) {
            (0, n) => format!("{n} from its network"),
            (i, 0) => format!("{i} from this IP"),
            (i, n) => format!("{i} from this IP and {n} more from its network"),
        };
        flags.push(if f.network_seen_before {
            format!(
                "The failed sign-ins came from where the request comes from: {whence}, of {} in the last 7 days, on \
                 a network this person has signed in from before. Most likely the person locked themselves out; \
                 still verify before acting.",
                week.total
            )
        } else {
            format!(
                "The failed sign-ins came from where the request comes from: {whence}, of {} in the last 7 days, on \
                 a network this person has never signed in from. Whoever is asking may be whoever was guessing the \
                 password: verify through the number on file, and reset nothing on the strength of this request.",
                week.total
            )
        });
    }
    if let Some(at) = f.last_recovery_action
        && at <= f.created_at
        && f.created_at - at <= 3600
    {
        flags.push(format!(
            "Requested within an hour of a recovery action on this account ({}): someone who was just helped, or              someone trying again after another admin said no. Check the activity log before acting.",
            when(at)
        ));
    }
    // A passkey added (or removed) just before someone asks for help: the person who added it may be the one
    // now asking to be let in another way, or may be someone who took the account and is locking its owner out.
    if let Some(at) = f.authenticator_changes.iter().find(|(k, _, _)| k == "passkey").map(|(_, _, at)| *at)
        && at <= f.created_at
        && f.created_at - at <= 3600
    {
        flags.push(format!(
            "Requested within an hour of a passkey change on this account ({}): check who added or removed it \
             (the activity log) before acting.",
            when(at)
        ));
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
            account_id: Some(crate::domain::AccountId(1)),
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
    fn a_request_within_an_hour_of_a_recovery_action_is_flagged() {
        let now = 1_800_000_000;
        let mut f = facts(now);
        f.created_at = now;
        f.last_recovery_action = Some(now - 3599);
        assert!(risk_flags(&f, now).iter().any(|x| x.starts_with("Requested within an hour of a recovery action")));
        f.last_recovery_action = Some(now - 3601);
        assert!(!risk_flags(&f, now).iter().any(|x| x.starts_with("Requested within an hour")));
    }

    #[test]
    fn a_sign_in_from_a_new_country_or_network_or_after_a_burst_is_worth_an_email() {
        let now = 1_800_000_000;
        let at = |outcome: &str, country: &str, network: &str, ip: &str, t: i64| SignInEvent {
            account_id: None,
            at: t,
            outcome: outcome.into(),
            method: "password".into(),
            client_ip: ip.into(),
            city: None,
            country: Some(country.into()),
            asn: None,
            network: network.into(),
            user_agent: "Firefox".into(),
        };
        let home = at("success", "GB", "AS1 Home", "81.2.69.142", now - 86_400 * 3);
        // The first sign-in has nothing to compare with; the same place again is nothing new.
        assert!(sign_in_alerts(&home, &[], now).is_empty());
        assert!(
            sign_in_alerts(&at("success", "GB", "AS1 Home", "81.2.69.142", now), std::slice::from_ref(&home), now)
                .is_empty()
        );
        let abroad =
            sign_in_alerts(&at("success", "SE", "AS2 Abroad", "89.160.20.112", now), std::slice::from_ref(&home), now);
        assert_eq!(abroad.len(), 2, "{abroad:?}");
        assert!(abroad[0].contains("(SE)") && abroad[1].contains("AS2 Abroad"));
        // Three failures from strangers in the last day, then a success from home: a burst.
        let mut earlier = vec![home.clone()];
        for n in 0..3 {
            earlier.insert(0, at("bad_password", "SE", "AS2 Abroad", "89.160.20.112", now - 600 + n));
        }
        let after = sign_in_alerts(&at("success", "GB", "AS1 Home", "81.2.69.142", now), &earlier, now);
        assert_eq!(after.len(), 1, "{after:?}");
        assert!(after[0].contains("after 3 failed sign-ins"), "{after:?}");
    }

    #[test]
    fn a_request_within_an_hour_of_a_passkey_change_is_flagged() {
        let now = 1_800_000_000;
        let mut f = facts(now);
        f.created_at = now;
        let flagged =
            |f: &Facts| risk_flags(f, now).iter().any(|x| x.starts_with("Requested within an hour of a passkey"));
        f.authenticator_changes = vec![("passkey".into(), "bound".into(), now - 3600)];
        assert!(flagged(&f));
        f.authenticator_changes = vec![("passkey".into(), "removed".into(), now - 3601)];
        assert!(!flagged(&f));
        // Only the newest passkey change counts, and a TOTP change is not one.
        f.authenticator_changes =
            vec![("totp".into(), "removed".into(), now - 60), ("passkey".into(), "bound".into(), now - 7200)];
        assert!(!flagged(&f));
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
    fn a_repeat_from_a_new_network_or_country_is_news() {
        let earlier = [(Some("AS1 One"), Some("GB")), (Some("AS2 Two"), None)];
        assert!(!from_somewhere_new(&earlier, "AS1 One", Some("GB")));
        assert!(!from_somewhere_new(&earlier, "AS2 Two", None));
        assert!(from_somewhere_new(&earlier, "AS3 Three", Some("GB")), "new network");
        assert!(from_somewhere_new(&earlier, "AS1 One", Some("SE")), "new country");
        // Rows processed before networks were stored know none: anything is new to them.
        assert!(from_somewhere_new(&[(None, None)], "AS1 One", None));
    }

    const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";

    fn on_device(mut e: SignInEvent, agent: &str) -> SignInEvent {
        e.user_agent = agent.into();
        e
    }

    fn asked(email: &str, ip: &str, network: &str, at: Timestamp) -> SourceRequest {
        SourceRequest { submitted_email: email.into(), client_ip: ip.into(), network: Some(network.into()), at }
    }

    #[test]
    fn one_source_asking_about_other_people_is_flagged_by_ip_or_else_by_network() {
        let now = 1_800_000_000;
        let mut f = facts(now);
        let (ip, network) = (f.request_ip.clone(), f.request_location.network.clone());
        f.same_source = vec![
            asked("bob@example.org", &ip, &network, now - 60),
            asked("cy@example.org", &ip, &network, now - 3600),
            asked("bob@example.org", &ip, &network, now - 7200),
            asked("ada@example.org", &ip, &network, now - 60), // this very address: not another person
            asked("old@example.org", &ip, &network, now - 2 * DAY), // too long ago
            asked("dee@example.org", "89.160.20.113", &network, now - 60),
        ];
        let flags = risk_flags(&f, now);
        assert!(
            flags.contains(&format!(
                "Same source, other people: this IP ({ip}) also asked about 2 other addresses in the last 24 hours \
                 (bob@example.org, cy@example.org). One source asking for several people is the classic helpdesk \
                 attack: verify this person through the number on file, and look at those requests too."
            )),
            "{flags:?}"
        );
        assert!(
            flags.iter().any(|f| f.starts_with(&format!(
                "Same network, other people: {network} also asked about 1 other address in the last 24 hours \
                 (dee@example.org)."
            ))),
            "{flags:?}"
        );
        let dossier = build(&f, now);
        let line = "Other addresses asked about from this IP or network in the last 24 hours";
        assert!(dossier.context.contains(&(line.into(), "2 from this IP, 1 more from its network".into())));
        // Probing for accounts from one place is flagged too.
        f.person = None;
        assert!(risk_flags(&f, now).iter().any(|f| f.starts_with("Same source, other people")));
    }

    #[test]
    fn failures_from_where_the_request_comes_from_are_flagged_and_read_against_the_network() {
        let now = 1_800_000_000;
        let mut f = facts(now);
        let (ip, network) = (f.request_ip.clone(), f.request_location.network.clone());
        f.sign_ins.push(event(now - 600, "bad_password", &ip, "Linköping", "SE", &network));
        f.sign_ins.push(event(now - 3 * DAY, "bad_totp", "89.160.20.1", "Linköping", "SE", &network));
        f.sign_ins.push(event(now - 500, "bad_password", "81.2.69.142", "London", "GB", "81.2.69.0/24"));
        let flag = |f: &Facts| {
            risk_flags(f, now)
                .into_iter()
                .find(|flag| flag.starts_with("The failed sign-ins came from where the request comes from"))
        };
        let stranger = flag(&f).unwrap_or_else(|| panic!("no flag"));
        assert_eq!(
            stranger,
            "The failed sign-ins came from where the request comes from: 1 from this IP and 1 more from its network, \
             of 3 in the last 7 days, on a network this person has never signed in from. Whoever is asking may be \
             whoever was guessing the password: verify through the number on file, and reset nothing on the \
             strength of this request."
        );
        f.network_seen_before = true;
        assert!(flag(&f).is_some_and(|flag| flag.contains("Most likely the person locked themselves out")));
        let events = build(&f, now).events;
        assert!(events.iter().any(|(k, v)| k == "Recent failed sign-in attempts"
            && v.starts_with(
                "2 in the last 24 hours, 3 in the last 7 days; of those 7 days' failures, 1 came from \
                              the IP asking for help, 1 more from its network"
            )));
        // Failures from elsewhere only: no such flag.
        f.sign_ins.retain(|e| e.network != network);
        assert_eq!(flag(&f), None);
    }

    #[test]
    fn failures_from_the_usual_network_and_device_are_not_a_burst_but_a_strangers_are() {
        let now = 1_800_000_000;
        let mut f = facts(now);
        f.network_seen_before = true;
        f.request_location.country = Some("GB".into());
        let home = |at, outcome| on_device(event(at, outcome, "81.2.69.142", "London", "GB", "81.2.69.0/24"), FIREFOX);
        f.sign_ins = vec![home(now - 3 * DAY, "success")];
        for i in 0..4 {
            f.sign_ins.push(home(now - 100 - i, "bad_password"));
        }
        let flags = risk_flags(&f, now);
        assert!(!flags.iter().any(|f| f.starts_with("Burst")), "{flags:?}");
        assert!(
            flags.contains(
                &"Failed sign-ins from the person's usual network and device: 4 of the 4 in the last 24 hours — more \
                  likely a forgotten password than an attack."
                    .to_owned()
            ),
            "{flags:?}"
        );

        // The same four from a stranger's network (or the usual network on another device) are a burst.
        let mut stranger = f.clone();
        for e in stranger.sign_ins.iter_mut().filter(|e| e.outcome != "success") {
            e.network = "AS9999 Elsewhere".into();
        }
        let flags = risk_flags(&stranger, now);
        assert!(
            flags.iter().any(|f| f.starts_with(
                "Burst of failures: 4 failed sign-in attempts in the last 24 hours, 4 of them from networks or \
                 devices this person has never signed in with (AS9999 Elsewhere)."
            )),
            "{flags:?}"
        );
        let mut other_device = f.clone();
        for e in other_device.sign_ins.iter_mut().filter(|e| e.outcome != "success") {
            e.user_agent = "curl/8.5.0".into();
        }
        assert!(risk_flags(&other_device, now).iter().any(|f| f.starts_with("Burst of failures: 4")));

        // Nine from home are more than a forgotten password: loud again, and said so.
        for i in 0..5 {
            f.sign_ins.push(home(now - 200 - i, "bad_totp"));
        }
        assert!(risk_flags(&f, now).iter().any(|f| f.starts_with(
            "Burst of failures: 9 failed sign-in attempts in the last 24 hours, all from the person's usual network"
        )));
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
