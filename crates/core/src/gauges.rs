//! How much is waiting, for the metrics endpoint: counts only, never anyone's data, so reading them needs no
//! proof (the endpoint listens on its own address, off by default).

use crate::domain::RequestStatus;
use crate::services::Core;
use crate::store::{AssistanceStore, OutboxStore, RecoveryStore, StoreError};
use std::sync::Arc;

pub trait GaugeStore: OutboxStore + RecoveryStore + AssistanceStore {}
impl<T: OutboxStore + RecoveryStore + AssistanceStore> GaugeStore for T {}

/// The queues at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    /// Emails not yet delivered.
    pub outbox_queued: i64,
    /// Four-eyes requests waiting for a second admin.
    pub approvals_waiting: i64,
    /// Assistance requests open (counted up to 500).
    pub requests_open: i64,
}

pub struct Gauges {
    core: Arc<Core>,
    store: Arc<dyn GaugeStore>,
}

impl Gauges {
    pub(crate) fn new(core: Arc<Core>, store: Arc<dyn GaugeStore>) -> Self {
        Self { core, store }
    }

    pub async fn read(&self) -> Result<Reading, StoreError> {
        let (outbox_queued, _) = self.store.outbox_counts().await?;
        let approvals = self.store.pending_approvals(self.core.now()).await?;
        let open = self.store.assistance_requests(Some(RequestStatus::Open), None, 500).await?;
        Ok(Reading { outbox_queued, approvals_waiting: approvals.len() as i64, requests_open: open.len() as i64 })
    }
}
