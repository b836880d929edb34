//! When the admins get one digest instead of one email per request. Intervals are fixed windows (like the
//! rate limits); a flood switches to digests for the rest of its interval and the whole next one, so a
//! steady flood gets one digest per interval, not a handful of single emails at the start of each.

use crate::domain::Timestamp;

/// The start of the interval `now` falls in, and of the one before it.
pub fn intervals(now: Timestamp, interval_seconds: u32) -> (Timestamp, Timestamp) {
    let length = i64::from(interval_seconds.max(1));
    let start = now - now.rem_euclid(length);
    (start, start - length)
}

/// Whether this notification goes out on its own: `this_interval` counts it and the others of the
/// current interval, `previous_interval` those of the interval before.
pub fn individual(this_interval: i64, previous_interval: i64, per_interval: u32) -> bool {
    let limit = i64::from(per_interval);
    this_interval <= limit && previous_interval <= limit
}

/// When a notification put off now is sent in a digest: at the end of the current interval.
pub fn due_at(now: Timestamp, interval_seconds: u32) -> Timestamp {
    intervals(now, interval_seconds).0 + i64::from(interval_seconds.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beyond_the_limit_and_for_the_next_interval_requests_wait_for_the_digest() {
        assert_eq!(intervals(1_000, 300), (900, 600));
        assert_eq!(due_at(1_000, 300), 1_200);
        assert_eq!(due_at(900, 300), 1_200);
        assert!(individual(10, 0, 10));
        assert!(!individual(11, 0, 10), "the eleventh waits");
        assert!(!individual(1, 11, 10), "a flood just before keeps the digest on");
        assert!(individual(1, 10, 10), "a busy but normal interval before does not");
    }
}
