//! Account lockout (SPEC §2, NIST SP 800-63B-4 §3.2.2: a per-account failure counter, limit ≤ 100).
//!
//! A lock is permanent until an admin unlocks it, unless the policy asks for temporary locks; then each
//! consecutive lock lasts twice as long as the one before, up to a ceiling.

use crate::domain::Timestamp;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct LockoutPolicy {
    /// Consecutive failures (wrong password or wrong second factor) that lock the account.
    pub failed_attempts_before_lock: u32,
    /// When set, locks expire: the first after this many seconds, each consecutive one twice as long.
    pub temporary_lock_seconds: Option<u32>,
    /// Ceiling for the back-off of temporary locks.
    pub max_temporary_lock_seconds: u32,
    /// Consecutive wrong security-question answers that lock the Q&A self-service reset.
    pub qa_failed_attempts_before_lock: u32,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        Self {
            failed_attempts_before_lock: 5,
            temporary_lock_seconds: None,
            max_temporary_lock_seconds: 24 * 3600,
            qa_failed_attempts_before_lock: 3,
        }
    }
}

impl LockoutPolicy {
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=100).contains(&self.failed_attempts_before_lock) {
            return Err(
                "lockout.failed_attempts_before_lock must be between 1 and 100 (NIST SP 800-63B-4 §3.2.2)".into()
            );
        }
        if !(1..=100).contains(&self.qa_failed_attempts_before_lock) {
            return Err("lockout.qa_failed_attempts_before_lock must be between 1 and 100".into());
        }
        if self.temporary_lock_seconds == Some(0) {
            return Err("lockout.temporary_lock_seconds must be at least 1 (or absent for permanent locks)".into());
        }
        Ok(())
    }

    /// Decide what a failure does, given the counter *after* it was incremented and the number of locks
    /// the account has had in a row before this one.
    pub fn after_failure(&self, failed_attempts: u32, previous_locks: u32, now: Timestamp) -> Option<NewLock> {
        if failed_attempts < self.failed_attempts_before_lock {
            return None;
        }
        let locked_until = self.temporary_lock_seconds.map(|base| {
            let factor = 1u64 << previous_locks.min(20);
            let secs = (u64::from(base) * factor).min(u64::from(self.max_temporary_lock_seconds.max(base)));
            now + secs as i64
        });
        Some(NewLock { locked_at: now, locked_until })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewLock {
    pub locked_at: Timestamp,
    pub locked_until: Option<Timestamp>,
}

/// The lock fields of an account.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LockState {
    pub locked_at: Option<Timestamp>,
    pub locked_until: Option<Timestamp>,
}

impl LockState {
    /// Locked now? A temporary lock ends at `locked_until` exactly.
    pub fn is_locked(&self, now: Timestamp) -> bool {
        match (self.locked_at, self.locked_until) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(_), Some(until)) => now < until,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_exactly_the_configured_number_of_failures() {
        let policy = LockoutPolicy::default();
        assert_eq!(policy.after_failure(4, 0, 100), None);
        assert_eq!(policy.after_failure(5, 0, 100), Some(NewLock { locked_at: 100, locked_until: None }));
        assert_eq!(policy.after_failure(6, 0, 100), Some(NewLock { locked_at: 100, locked_until: None }));
    }

    #[test]
    fn temporary_locks_back_off_to_a_ceiling() {
        let policy =
            LockoutPolicy { temporary_lock_seconds: Some(60), max_temporary_lock_seconds: 300, ..Default::default() };
        let until = |locks| policy.after_failure(5, locks, 1000).and_then(|l| l.locked_until);
        assert_eq!(until(0), Some(1060));
        assert_eq!(until(1), Some(1120));
        assert_eq!(until(2), Some(1240));
        assert_eq!(until(3), Some(1300));
        assert_eq!(until(40), Some(1300));
    }

    #[test]
    fn a_temporary_lock_ends_on_time() {
        let lock = LockState { locked_at: Some(100), locked_until: Some(160) };
        assert!(lock.is_locked(159));
        assert!(!lock.is_locked(160));
        assert!(LockState { locked_at: Some(100), locked_until: None }.is_locked(i64::MAX));
        assert!(!LockState::default().is_locked(0));
    }

    #[test]
    fn limits_outside_nist_bounds_are_refused() {
        assert!(LockoutPolicy { failed_attempts_before_lock: 0, ..Default::default() }.validate().is_err());
        assert!(LockoutPolicy { failed_attempts_before_lock: 101, ..Default::default() }.validate().is_err());
        assert!(LockoutPolicy::default().validate().is_ok());
    }
}
