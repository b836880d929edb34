//! The audit log for auditors: filtered reading and the chain's verification, behind `Proof<ReadAudit>`.

use crate::audit::{AuditKey, AuditRecord, ChainBreak, Verified, Verifier};
use crate::authz::{Proof, ReadAudit};
use crate::services::Core;
use crate::store::{AuditFilter, AuditStore, StoreError};
use std::sync::Arc;

/// What verifying the whole chain found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainStatus {
    /// Every row is in place, keyed and unchanged.
    Intact { rows: i64 },
    /// These problems, one line each (the rows they name).
    Broken(Vec<String>),
}

pub struct AuditLog {
    core: Arc<Core>,
    store: Arc<dyn AuditStore>,
}

/// Most rows the page lists.
pub const PAGE_LIMIT: i64 = 200;

impl AuditLog {
    pub(crate) fn new(core: Arc<Core>, store: Arc<dyn AuditStore>) -> Self {
        Self { core, store }
    }

    pub async fn search(
        &self,
        _proof: &Proof<ReadAudit>,
        filter: &AuditFilter,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        self.store.audit_search(filter, PAGE_LIMIT).await
    }

    /// Walk the whole chain with the audit key, as `lifeline audit verify` does.
    pub async fn verify(&self, _proof: &Proof<ReadAudit>) -> Result<ChainStatus, StoreError> {
        Ok(match walk(self.store.as_ref(), &self.core.keys.audit_key()).await? {
            Ok(verified) => ChainStatus::Intact { rows: verified.rows },
            Err(breaks) => ChainStatus::Broken(breaks.iter().map(ToString::to_string).collect()),
        })
    }
}

/// Read the whole log in chain order and check every row and the sealed head: the one walk behind the audit
/// log page and `lifeline audit verify`.
pub async fn walk(store: &dyn AuditStore, key: &AuditKey) -> Result<Result<Verified, Vec<ChainBreak>>, StoreError> {
    let head = store.audit_head().await?;
    let mut verifier = Verifier::new(key);
    let mut after = 0;
    loop {
        let page = store.audit_rows(after, 1000).await?;
        for row in &page {
            match row {
                Ok(record) => verifier.check(record),
                Err(unreadable) => verifier.unreadable(unreadable),
            }
        }
        match page.last() {
            Some(Ok(record)) => after = record.id,
            Some(Err(unreadable)) => after = unreadable.id,
            None => break,
        }
    }
    Ok(verifier.finish(&head))
}
