//! The audit log's chain: pure functions over records (no I/O).
//!
//! Every row stores the hash of the row before it and its own hash over its fields and that previous hash
//! (SHA-256 of a canonical JSON array). Changing any field of any row, deleting a row, or dropping the tail
//! breaks the chain at a row that `verify` names. The database keeps the head (last id and hash) so that
//! truncation is caught too.

use crate::domain::Timestamp;
use serde::Serialize;
use sha2::{Digest, Sha256};

pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Who did something: the public (an unauthenticated request), the system (the CLI run by an operator on
/// the host, background work), or an account acting for itself or on others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    Public,
    System,
    Account { account_id: i64, username: String },
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Actor::Public => f.write_str("public"),
            Actor::System => f.write_str("system"),
            Actor::Account { account_id, username } => write!(f, "account:{account_id}:{username}"),
        }
    }
}

/// What is being recorded (before it gets its place in the chain).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
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

    pub fn person(mut self, person: i64) -> Self {
        self.subject_person_id = Some(person);
        self
    }

    pub fn account(mut self, account: i64) -> Self {
        self.subject_account_id = Some(account);
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditRecord {
    pub id: i64,
    #[serde(flatten)]
    pub entry: AuditEntry,
    pub prev_hash: String,
    pub hash: String,
}

/// The hash of a row: SHA-256 over a JSON array of its id, every field and the previous hash.
pub fn hash(id: i64, entry: &AuditEntry, prev_hash: &str) -> String {
    let e = entry;
    let canonical = serde_json::json!([
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
    ]);
    hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit row {id}: {problem}")]
pub struct ChainBreak {
    pub id: i64,
    pub problem: String,
}

/// Walks the chain in order. Feed it every record, then `finish` with the stored head.
pub struct Verifier {
    expected_id: i64,
    prev_hash: String,
}

impl Default for Verifier {
    fn default() -> Self {
        Self { expected_id: 1, prev_hash: GENESIS.into() }
    }
}

impl Verifier {
    pub fn check(&mut self, record: &AuditRecord) -> Result<(), ChainBreak> {
        let fail = |problem: String| Err(ChainBreak { id: record.id, problem });
        if record.id != self.expected_id {
            return Err(ChainBreak {
                id: self.expected_id,
                problem: format!("missing (the next row present is {})", record.id),
            });
        }
        if record.prev_hash != self.prev_hash {
            return fail("its link to the previous row does not match (a row before it was changed or removed)".into());
        }
        if hash(record.id, &record.entry, &record.prev_hash) != record.hash {
            return fail("its contents do not match its hash (the row was changed)".into());
        }
        self.expected_id += 1;
        self.prev_hash = record.hash.clone();
        Ok(())
    }

    /// Compare the end of the walk with the head the database keeps.
    pub fn finish(self, head_id: i64, head_hash: &str) -> Result<i64, ChainBreak> {
        let last = self.expected_id - 1;
        if head_id != last || head_hash != self.prev_hash {
            return Err(ChainBreak {
                id: last + 1,
                problem: format!(
                    "the log ends at row {last}, but its head says row {head_id} (rows were removed from the end)"
                ),
            });
        }
        Ok(last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<AuditRecord> {
        let mut prev = GENESIS.to_string();
        (1..=n)
            .map(|id| {
                let entry = AuditEntry::new(id * 10, &Actor::Public, "sign_in", "success").account(7);
                let h = hash(id, &entry, &prev);
                let record = AuditRecord { id, entry, prev_hash: prev.clone(), hash: h.clone() };
                prev = h;
                record
            })
            .collect()
    }

    fn verify(records: &[AuditRecord], head: (i64, &str)) -> Result<i64, ChainBreak> {
        let mut v = Verifier::default();
        for r in records {
            v.check(r)?;
        }
        v.finish(head.0, head.1)
    }

    #[test]
    fn an_untouched_chain_verifies() {
        let records = chain(5);
        assert_eq!(verify(&records, (5, &records[4].hash)), Ok(5));
        assert_eq!(verify(&[], (0, GENESIS)), Ok(0));
    }

    #[test]
    fn any_change_names_its_row() {
        let mut records = chain(5);
        records[2].entry.outcome = "failure".into();
        assert_eq!(verify(&records, (5, &records[4].hash.clone())).map_err(|e| e.id), Err(3));

        let mut records = chain(5);
        records[3].entry.actor = "system".into();
        records[3].hash = hash(4, &records[3].entry, &records[3].prev_hash); // rehashed, but the next link breaks
        assert_eq!(verify(&records, (5, &records[4].hash.clone())).map_err(|e| e.id), Err(5));
    }

    #[test]
    fn removed_rows_are_found_in_the_middle_and_at_the_end() {
        let mut records = chain(5);
        let head = records[4].hash.clone();
        records.remove(1);
        assert_eq!(verify(&records, (5, &head)).map_err(|e| e.id), Err(2));
        let records = chain(5);
        assert_eq!(verify(&records[..4], (5, &head)).map_err(|e| e.id), Err(5));
    }
}
