//! How much is waiting, for the metrics endpoint: counts only, never anyone's data, so reading them needs no
//! proof (the endpoint listens on its own address, off by default).

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
    /// Assistance requests open (waiting for an admin).
    pub requests_open: i64,
    /// How long the oldest open request has waited, in seconds (0 when none waits).
    pub oldest_request_age: i64,
    /// How long the oldest email not yet sent has waited, in seconds (0 when none waits).
    pub oldest_email_age: i64,
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
        let now = self.core.now();
        let (outbox_queued, _) = self.store.outbox_counts().await?;
        let approvals = self.store.pending_approvals(now).await?;
        let (requests_open, oldest_request) = self.store.open_requests_waiting().await?;
        let oldest_email = self.store.oldest_unsent_email_at().await?;
        let age = |since: Option<i64>| since.map_or(0, |at| (now - at).max(0));
        Ok(Reading {
            outbox_queued,
            approvals_waiting: approvals.len() as i64,
            requests_open,
            oldest_request_age: age(oldest_request),
            oldest_email_age: age(oldest_email),
        })
    }
}
