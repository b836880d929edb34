//! When to try an email again after a failed delivery: exponential back-off with a ceiling.

use crate::domain::Timestamp;

/// After `attempts` failed attempts (1 or more): `base`, twice that, four times, ... at most `max`
/// (with the defaults, 15 s, 30 s, 1 min, 2 min, ... up to an hour).
pub fn next_attempt(attempts: u32, base_seconds: u32, max_seconds: u32, now: Timestamp) -> Timestamp {
    let delay = i64::from(base_seconds).saturating_mul(1 << attempts.saturating_sub(1).min(20));
    now + delay.min(i64::from(max_seconds))
}

#[cfg(test)]
mod tests {
    #[test]
    fn back_off_doubles_up_to_an_hour() {
        let delays: Vec<i64> = (1..=10).map(|a| super::next_attempt(a, 15, 3600, 0)).collect();
        assert_eq!(delays, [15, 30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
        assert_eq!(super::next_attempt(1000, 15, 3600, 0), 3600);
        assert_eq!(super::next_attempt(2, 1, 3600, 100), 102);
        assert_eq!(super::next_attempt(9, 1, 5, 100), 105);
    }
}
