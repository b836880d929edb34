//! The audit log's chain: pure functions over records (no I/O).
//!
//! Every row stores the hash of the row before it and its own hash over its id, its fields and that previous hash:
//! HMAC-SHA256 under the audit key, which is derived from the master key and never stored in the database. Someone
//! who can write to the database but does not hold the key cannot compute a row's hash, so changing, adding,
//! removing or renumbering rows breaks the chain at a row that [`Verifier`] names. The head (last id and hash) is
//! sealed under the same key, so cutting the tail and moving the head back is found too.
//!
//! Rows written before the chain was keyed carry plain SHA-256 hashes. They are accepted only as the start of the
//! log, before the first keyed row, whose hash covers the last of them; a plain row anywhere after a keyed one is
//! a forgery.

pub use crate::crypto::AuditKey;
use crate::domain::{AccountId, PersonId, Timestamp};
use serde::Serialize;
use sha2::{Digest, Sha256};

pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Who did something: the public (an unauthenticated request), the system (the CLI run by an operator on
/// the host, background work), or an account acting for itself or on others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    Public,
    System,
    Account {
        account_id: AccountId,
        username: String,
    },
    /// An account acting through one of its personal API tokens (the token's name is in every row it makes).
    Token {
        token_id: i64,
        account_id: AccountId,
        username: String,
        name: String,
    },
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Actor::Public => f.write_str("public"),
            Actor::System => f.write_str("system"),
            Actor::Account { account_id, username } => write!(f, "account:{account_id}:{username}"),
            // The name last: it is free text.
            Actor::Token { token_id, account_id, username, name } => {
                write!(f, "token:{token_id}:{account_id}:{username}:{name}")
            }
        }
    }
}

/// Who an audit actor (`Actor`'s text, or the authenticator record's) is, in words: the console, the authenticator
/// record and `person show` all say it the same way.
pub fn actor_in_words(value: &str) -> String {
    match value {
        "system" => "the system (command line or background work)".to_owned(),
        "public" => "someone not signed in".to_owned(),
        "self" => "the person".to_owned(),
        "" => "not recorded".to_owned(),
        other => {
            if let Some(rest) = other.strip_prefix("token:") {
                let parts: Vec<&str> = rest.splitn(4, ':').collect();
                if let [_, _, username, name] = parts.as_slice() {
                    return format!("{username} (API token \"{name}\")");
                }
            }
            if let Some(kind) = other.strip_prefix("recovery:") {
                return format!("the person, with a {}", kind.replace('_', " "));
            }
            match other.strip_prefix("account:").and_then(|rest| rest.split_once(':')) {
                Some((_, username)) => username.to_owned(),
                None => other.to_owned(),
            }
        }
    }
}

/// What is being recorded (before it gets its place in the chain).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// Unix seconds.
    #[schema(value_type = i64)]
    pub at: Timestamp,
    pub actor: String,
    pub on_behalf_of: Option<String>,
    pub action: String,
    pub subject_person_id: Option<i64>,
    pub subject_account_id: Option<i64>,
    pub reason: Option<String>,
    pub details: Option<String>,
    pub client_ip: Option<String>,
    pub outcome: String,
    pub reference: Option<String>,
    pub notified: Option<String>,
}

impl AuditEntry {
    pub fn new(at: Timestamp, actor: &Actor, action: &str, outcome: &str) -> Self {
        Self { at, actor: actor.to_string(), action: action.into(), outcome: outcome.into(), ..Default::default() }
    }

    pub fn person(mut self, person: PersonId) -> Self {
        self.subject_person_id = Some(person.0);
        self
    }

    pub fn account(mut self, account: AccountId) -> Self {
        self.subject_account_id = Some(account.0);
        self
    }

    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    pub fn details(mut self, details: impl Into<String>) -> Self {
        self.details = Some(details.into());
        self
    }

    pub fn ip(mut self, ip: impl Into<String>) -> Self {
        self.client_ip = Some(ip.into());
        self
    }
}

/// A row of the audit log as stored (and exported as one JSON line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AuditRecord {
    pub id: i64,
    #[serde(flatten)]
    pub entry: AuditEntry,
    pub prev_hash: String,
    pub hash: String,
}

/// What a row's hash covers: a JSON array of its id, every field and the previous hash.
fn canonical(id: i64, e: &AuditEntry, prev_hash: &str) -> String {
    serde_json::json!([
        id,
        e.at,
        e.actor,
        e.on_behalf_of,
        e.action,
        e.subject_person_id,
        e.subject_account_id,
        e.reason,
        e.details,
        e.client_ip,
        e.outcome,
        e.reference,
        e.notified,
        prev_hash
    ])
    .to_string()
}

/// The hash of a row: HMAC-SHA256 under the audit key, hex-encoded.
pub fn hash(key: &AuditKey, id: i64, entry: &AuditEntry, prev_hash: &str) -> String {
    key.sign(&canonical(id, entry, prev_hash))
}

/// The hash rows had before the chain was keyed: plain SHA-256, which anyone can compute.
pub fn legacy_hash(id: i64, entry: &AuditEntry, prev_hash: &str) -> String {
    hex::encode(Sha256::digest(canonical(id, entry, prev_hash).as_bytes()))
}

/// What the head's seal covers. It starts with a string where a row's array starts with a number, so a row's
/// hash can never serve as a head's seal.
fn head_message(last_id: i64, last_hash: &str) -> String {
    serde_json::json!(["audit_head", last_id, last_hash]).to_string()
}

/// The seal of a head that ends at row `last_id` with `last_hash`.
pub fn head_seal(key: &AuditKey, last_id: i64, last_hash: &str) -> String {
    key.sign(&head_message(last_id, last_hash))
}

/// The chain's head as stored: the last row's id and hash, and their seal (`None` until Lifeline first ran with
/// the key: a new database, or one from before the chain was keyed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditHead {
    pub last_id: i64,
    pub last_hash: String,
    pub seal: Option<String>,
}

impl AuditHead {
    /// The head carries a seal that this key made for exactly this id and hash.
    pub fn sealed_by(&self, key: &AuditKey) -> bool {
        self.seal.as_deref().is_some_and(|seal| key.signed(&head_message(self.last_id, &self.last_hash), seal))
    }
}

/// A row whose values cannot be read as their types (possible only by writing to the database directly).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreadableRow {
    pub id: i64,
    /// The row's own hash, when that column at least could be read: the next row's link is checked against it.
    pub hash: Option<String>,
    pub problem: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit row {id}: {problem}")]
pub struct ChainBreak {
    pub id: i64,
    pub problem: String,
}

/// An intact log: how many rows, and how many of them (at the start) were written before the chain was keyed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    pub rows: i64,
    pub legacy_rows: i64,
}

/// Walks the chain in order and collects every problem, so one run names every row that is wrong: feed it every
/// row (read or unreadable), then `finish` with the stored head.
pub struct Verifier<'k> {
    key: &'k AuditKey,
    expected_id: i64,
    /// The hash the next row must link to; `None` after a row whose hash could not be read.
    prev_hash: Option<String>,
    legacy_rows: i64,
    keyed_seen: bool,
    breaks: Vec<ChainBreak>,
}

impl<'k> Verifier<'k> {
    pub fn new(key: &'k AuditKey) -> Self {
        Self {
            key,
            expected_id: 1,
            prev_hash: Some(GENESIS.into()),
            legacy_rows: 0,
            keyed_seen: false,
            breaks: Vec::new(),
        }
    }

    pub fn check(&mut self, record: &AuditRecord) {
        let gap = self.skip_to(record.id);
        if let Some(problem) = self.problem(record, gap) {
            self.breaks.push(ChainBreak { id: record.id, problem: problem.into() });
        }
        // Carry on from this row as stored, so that one bad row is named once and the rows after it still count.
        self.expected_id = record.id + 1;
        self.prev_hash = Some(record.hash.clone());
    }

    pub fn unreadable(&mut self, row: &UnreadableRow) {
        self.skip_to(row.id);
        self.breaks.push(ChainBreak { id: row.id, problem: format!("unreadable: {}", row.problem) });
        self.expected_id = row.id + 1;
        self.prev_hash = row.hash.clone();
    }

    /// Names the rows missing before `id`; true when there were some (the link is then not this row's fault).
    fn skip_to(&mut self, id: i64) -> bool {
        if id == self.expected_id {
            return false;
        }
        let problem = if id == self.expected_id + 1 {
            format!("missing (the next row present is {id})")
        } else {
            format!("missing, with every row up to {} (the next row present is {id})", id - 1)
        };
        self.breaks.push(ChainBreak { id: self.expected_id, problem });
        true
    }

    fn problem(&mut self, record: &AuditRecord, after_gap: bool) -> Option<&'static str> {
        // A keyed row counts as one even when its link breaks: the key wrote it, after any plain rows before it.
        let sealed = self.key.signed(&canonical(record.id, &record.entry, &record.prev_hash), &record.hash);
        self.keyed_seen |= sealed;
        let linked = after_gap || self.prev_hash.as_ref().is_none_or(|prev| *prev == record.prev_hash);
        if !linked {
            return Some("its link to the previous row does not match (a row before it was changed or removed)");
        }
        if sealed {
            return None;
        }
        if legacy_hash(record.id, &record.entry, &record.prev_hash) == record.hash {
            if !self.keyed_seen {
                self.legacy_rows += 1;
                return None;
            }
            return Some("its hash is plain SHA-256, after rows sealed with the key (it was written without the key)");
        }
        Some("its contents do not match its hash (the row was changed, or this is not the key that wrote the log)")
    }

    /// Compare the end of the walk with the head the database keeps, and report every problem found.
    pub fn finish(mut self, head: &AuditHead) -> Result<Verified, Vec<ChainBreak>> {
        let last = self.expected_id - 1;
        if self.legacy_rows > 0 && !self.keyed_seen {
            // Plain rows count only when a keyed row after them pins them; without one, anyone could have written them.
            self.breaks.push(ChainBreak {
                id: 1,
                problem: format!(
                    "rows 1 to {} carry plain SHA-256 hashes and no row sealed with the key follows them (they were \
                     rewritten without the key, or Lifeline has not run with its key since they were written)",
                    self.legacy_rows
                ),
            });
        }
        if let Some(problem) = self.head_problem(head, last) {
            self.breaks.push(problem);
        }
        if self.breaks.is_empty() {
            return Ok(Verified { rows: last, legacy_rows: self.legacy_rows });
        }
        self.breaks.sort_by_key(|b| b.id);
        Err(self.breaks)
    }

    fn head_problem(&self, head: &AuditHead, last: i64) -> Option<ChainBreak> {
        let at = |id: i64, problem: String| Some(ChainBreak { id, problem });
        if head.seal.is_none() {
            return at(last + 1, "the log's head is not sealed with the key (Lifeline seals it when it starts)".into());
        }
        if !head.sealed_by(self.key) {
            return at(
                last + 1,
                format!(
                    "the log's head (row {}) does not carry a valid seal: rows after row {last} were removed and the \
                     head moved back, or this is not the key that wrote the log",
                    head.last_id
                ),
            );
        }
        if head.last_id > last {
            return at(
                last + 1,
                format!(
                    "the log ends at row {last}, but its head says row {} (rows were removed from the end)",
                    head.last_id
                ),
            );
        }
        if head.last_id < last {
            return at(
                head.last_id + 1,
                format!("it comes after the log's head (row {}): it was added without the key", head.last_id),
            );
        }
        if self.prev_hash.as_deref() != Some(head.last_hash.as_str()) {
            return at(last, "it is not the row the log's head was sealed with (the last row was replaced)".into());
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> AuditKey {
        AuditKey::from_bytes([7; 32])
    }

    fn chain(n: i64) -> Vec<AuditRecord> {
        let mut prev = GENESIS.to_string();
        (1..=n)
            .map(|id| {
                let entry = AuditEntry::new(id * 10, &Actor::Public, "sign_in", "success").account(AccountId(7));
                let h = hash(&key(), id, &entry, &prev);
                let record = AuditRecord { id, entry, prev_hash: prev.clone(), hash: h.clone() };
                prev = h;
                record
            })
            .collect()
    }

    fn head_of(records: &[AuditRecord]) -> AuditHead {
        let (last_id, last_hash) = records.last().map(|r| (r.id, r.hash.clone())).unwrap_or((0, GENESIS.into()));
        AuditHead { seal: Some(head_seal(&key(), last_id, &last_hash)), last_id, last_hash }
    }

    fn verify(records: &[AuditRecord], head: &AuditHead) -> Result<Verified, Vec<ChainBreak>> {
        let key = key();
        let mut v = Verifier::new(&key);
        for r in records {
            v.check(r);
        }
        v.finish(head)
    }

    /// The ids of the rows named, in order.
    fn named(records: &[AuditRecord], head: &AuditHead) -> Vec<i64> {
        verify(records, head).err().unwrap_or_default().iter().map(|b| b.id).collect()
    }

    /// Recompute the hashes from `from` on as someone without the key can: plain SHA-256.
    fn rehash_plain(records: &mut [AuditRecord], from: usize) {
        for i in from..records.len() {
            let prev = if i == 0 { GENESIS.to_string() } else { records[i - 1].hash.clone() };
            records[i].prev_hash = prev.clone();
            records[i].hash = legacy_hash(records[i].id, &records[i].entry, &prev);
        }
    }

    #[test]
    fn an_untouched_chain_verifies() {
        let records = chain(5);
        assert_eq!(verify(&records, &head_of(&records)), Ok(Verified { rows: 5, legacy_rows: 0 }));
        assert_eq!(verify(&[], &head_of(&[])), Ok(Verified { rows: 0, legacy_rows: 0 }));
    }

    #[test]
    fn any_change_names_its_row() {
        let mut records = chain(5);
        let head = head_of(&records);
        records[2].entry.outcome = "failure".into();
        assert_eq!(named(&records, &head), [3]);

        let mut records = chain(5);
        records[3].entry.actor = "system".into();
        records[3].hash = hash(&key(), 4, &records[3].entry, &records[3].prev_hash); // rehashed, but the next link breaks
        assert_eq!(named(&records, &head), [5]);
    }

    #[test]
    fn removed_rows_are_found_in_the_middle_and_at_the_end() {
        let mut records = chain(5);
        let head = head_of(&records);
        records.remove(1);
        assert_eq!(named(&records, &head), [2]);
        let records = chain(5);
        assert_eq!(named(&records[..4], &head), [5]);
        // Moving the head back with the cut needs the key to seal it.
        let forged = AuditHead { last_id: 4, last_hash: records[3].hash.clone(), seal: head.seal.clone() };
        assert_eq!(named(&records[..4], &forged), [5]);
    }

    #[test]
    fn rows_rewritten_without_the_key_are_named() {
        let mut records = chain(5);
        records[2].entry.outcome = "failure".into();
        rehash_plain(&mut records, 2);
        let head = AuditHead { seal: None, ..head_of(&records) };
        assert_eq!(named(&records, &head)[..3], [3, 4, 5]);

        let mut records = chain(5);
        rehash_plain(&mut records, 0);
        assert_eq!(named(&records, &head_of(&records))[0], 1, "a log with no keyed row is not trusted");

        let other = AuditKey::from_bytes([8; 32]);
        let records = chain(5);
        let mut v = Verifier::new(&other);
        records.iter().for_each(|r| v.check(r));
        assert_eq!(v.finish(&head_of(&records)).err().map(|b| b[0].id), Some(1), "another key verifies nothing");
    }

    #[test]
    fn plain_rows_count_only_as_the_start_of_the_log_pinned_by_a_keyed_row() {
        let mut records = chain(5);
        rehash_plain(&mut records, 0);
        // Sealing: the first keyed row links to the last plain one.
        let entry = AuditEntry::new(60, &Actor::System, "audit.seal", "success");
        let h = hash(&key(), 6, &entry, &records[4].hash);
        records.push(AuditRecord { id: 6, entry, prev_hash: records[4].hash.clone(), hash: h });
        assert_eq!(verify(&records, &head_of(&records)), Ok(Verified { rows: 6, legacy_rows: 5 }));
        // A plain row changed and rehashed up to the keyed one: the keyed row's link gives it away.
        let mut changed = records.clone();
        changed[1].entry.actor = "mallory".into();
        rehash_plain(&mut changed[..5], 0);
        assert_eq!(named(&changed, &head_of(&records)), [6]);
    }

    #[test]
    fn unreadable_rows_are_each_named_and_the_walk_goes_on() {
        let records = chain(5);
        let key = key();
        let mut v = Verifier::new(&key);
        for r in &records {
            if r.id == 2 || r.id == 4 {
                v.unreadable(&UnreadableRow { id: r.id, hash: Some(r.hash.clone()), problem: "column at".into() });
            } else {
                v.check(r);
            }
        }
        let breaks = v.finish(&head_of(&records)).err().unwrap_or_default();
        assert_eq!(breaks.iter().map(|b| b.id).collect::<Vec<_>>(), [2, 4]);
        assert!(breaks[0].to_string().starts_with("audit row 2: unreadable"));
    }

    #[test]
    fn the_key_never_shows() {
        assert_eq!(format!("{:?}", key()), "AuditKey(<redacted>)");
    }
}
