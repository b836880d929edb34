//! The time, as the services see it: one source, so tests can fix it.

use crate::domain::Timestamp;

/// The time, as the services see it. Tests pass a fixed one.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        chrono::Utc::now().timestamp()
    }
}
