//! When to try an email again after a failed delivery: exponential back-off with a ceiling.

use crate::domain::Timestamp;

/// After `attempts` failed attempts (1 or more): 15 s, 30 s, 1 min, 2 min, ... at most one hour.
pub fn next_attempt(attempts: u32, now: Timestamp) -> Timestamp {
    let delay = 15i64.saturating_mul(1 << attempts.saturating_sub(1).min(20));
    now + delay.min(3600)
}

#[cfg(test)]
mod tests {
    #[test]
    fn back_off_doubles_up_to_an_hour() {
        let delays: Vec<i64> = (1..=10).map(|a| super::next_attempt(a, 0)).collect();
        assert_eq!(delays, [15, 30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
        assert_eq!(super::next_attempt(1000, 0), 3600);
    }
}
