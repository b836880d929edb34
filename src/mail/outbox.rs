//! The outbox worker: claims due emails (a lease, so two instances never hold the same row at once),
//! delivers them, and marks them sent — or schedules the next attempt with back-off. A crash between
//! delivery and marking leaves the lease to expire and the email to be delivered again: at least once,
//! with the same Message-ID.

use super::Mailer;
use crate::clock::Clock;
use crate::policy::outbox::next_attempt;
use crate::store::OutboxStore;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

pub struct OutboxWorker {
    pub store: Arc<dyn OutboxStore>,
    pub mailer: Arc<dyn Mailer>,
    pub from: String,
    pub clock: Arc<dyn Clock>,
    /// Poked when a new email is queued, so delivery starts at once.
    pub wake: Arc<Notify>,
    pub settings: crate::config::OutboxSettings,
}

impl OutboxWorker {
    /// Deliver until the process ends.
    pub async fn run(self) {
        loop {
            match self.deliver_due().await {
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!("outbox: {e}"),
            }
            tokio::select! {
                () = self.wake.notified() => {},
                () = tokio::time::sleep(Duration::from_secs(1)) => {},
            }
        }
    }

    /// One pass: deliver what is due, claiming one email at a time just before sending it, so a lease
    /// only has to outlast one delivery (the SMTP timeout is 20 s; the default lease 60 s). Returns how
    /// many were claimed.
    pub async fn deliver_due(&self) -> Result<usize, crate::store::StoreError> {
        let mut claimed = 0;
        while claimed < 50 {
            let now = self.clock.now();
            let Some(queued) = self.store.claim_due_emails(now, i64::from(self.settings.lease_seconds), 1).await?.pop()
            else {
                break;
            };
            claimed += 1;
            let result = match super::message(&queued.email, &self.from) {
                Ok(message) => self.mailer.send(&message).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(()) => self.store.mark_email_sent(queued.id, self.clock.now()).await?,
                Err(e) => {
                    let attempts = queued.attempts + 1;
                    tracing::warn!(email = queued.id, attempts, "delivery failed: {e}");
                    metrics::counter!("lifeline_email_delivery_failures_total").increment(1);
                    let next = next_attempt(
                        u32::try_from(attempts).unwrap_or(u32::MAX),
                        self.settings.retry_base_seconds,
                        self.settings.retry_max_seconds,
                        self.clock.now(),
                    );
                    self.store.mark_email_failed(queued.id, attempts, next, &e.to_string()).await?;
                }
            }
        }
        Ok(claimed)
    }
}
