//! Fixed-window rate limits. The counters live in the database (shared by instances, kept across
//! restarts); the decision is pure.

use crate::domain::Timestamp;
use serde::Deserialize;

#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Requests allowed per window.
    pub max: u32,
    pub window_seconds: u32,
}

impl RateLimit {
    pub fn validate(&self, name: &str) -> Result<(), String> {
        if self.max == 0 || self.window_seconds == 0 {
            return Err(format!("{name}: max and window_seconds must be at least 1"));
        }
        // Counter windows older than a day are swept away by the periodic clean-up.
        if self.window_seconds > 86_400 {
            return Err(format!("{name}: window_seconds must be at most 86400 (one day)"));
        }
        Ok(())
    }

    /// The start of the window `now` falls in.
    pub fn window_start(&self, now: Timestamp) -> Timestamp {
        now - now.rem_euclid(i64::from(self.window_seconds))
    }

    /// Given the hits in this window *including* the current one: allowed, or how long to wait.
    pub fn decide(&self, hits: i64, now: Timestamp) -> Option<u64> {
        if hits <= i64::from(self.max) {
            None
        } else {
            Some((self.window_start(now) + i64::from(self.window_seconds) - now).max(1) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_n_plus_first_request_waits_for_the_window_to_end() {
        let limit = RateLimit { max: 3, window_seconds: 60 };
        assert_eq!(limit.window_start(125), 120);
        assert_eq!(limit.decide(3, 125), None);
        assert_eq!(limit.decide(4, 125), Some(55));
        assert_eq!(limit.decide(4, 179), Some(1));
        assert!(RateLimit { max: 0, window_seconds: 60 }.validate("x").is_err());
        assert!(RateLimit { max: 1, window_seconds: 86_401 }.validate("x").is_err());
    }
}
