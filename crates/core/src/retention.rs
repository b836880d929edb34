//! Retention: personal data that has done its job is removed by the periodic job. Sign-in events feed the
//! dossier's comparisons ("seen before", bursts) and the account page; closed requests hold dossiers and
//! the requesters' own words. The audit log is kept: it is the record of what was done, and it is
//! append-only by design. Idempotent, so every instance may run it.

use crate::audit::{Actor, AuditEntry};
use crate::config::RetentionSettings;
use crate::domain::Timestamp;
use crate::store::{RetentionStore, StoreResult};

const DAY: i64 = 86_400;

/// What one run removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Removed {
    pub sign_in_events: u64,
    pub closed_requests: u64,
}

/// The oldest time each kind of data may come from at `now`: (sign-in events, closed requests).
pub fn cutoffs(settings: &RetentionSettings, now: Timestamp) -> (Timestamp, Timestamp) {
    (now - i64::from(settings.sign_in_events_days) * DAY, now - i64::from(settings.closed_requests_days) * DAY)
}

/// Remove what is older than the settings allow, each kind with its audit row.
pub async fn run(store: &dyn RetentionStore, settings: &RetentionSettings, now: Timestamp) -> StoreResult<Removed> {
    let (events_before, requests_before) = cutoffs(settings, now);
    let audit = |action: &str| AuditEntry::new(now, &Actor::System, action, "success");
    Ok(Removed {
        sign_in_events: store.delete_sign_in_events_before(events_before, &audit("retention.sign_in_events")).await?,
        closed_requests: store
            .delete_closed_requests_before(requests_before, &audit("retention.closed_requests"))
            .await?,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn cutoffs_are_whole_days_before_now() {
        let settings = crate::config::RetentionSettings { sign_in_events_days: 365, closed_requests_days: 2 };
        assert_eq!(super::cutoffs(&settings, 1_000_000_000), (1_000_000_000 - 365 * 86_400, 1_000_000_000 - 172_800));
    }
}
