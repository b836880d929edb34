//! Account lockout and sign-in throttling (SPEC §2; NIST SP 800-63B-4 §3.2.2).
//!
//! Three defences, from the gentlest up:
//! - **per client address**: failed sign-ins from one address (one /64 for IPv6) per window are limited,
//!   so one source cannot spray guesses over many accounts or lock them all;
//! - **per account, growing delays**: after a few free failures each further attempt must wait longer
//!   (doubling), so a person who mistypes is not locked and an attacker slows down long before a lock;
//! - **a lock**, after `failed_attempts_before_lock` consecutive failures. By default it is temporary and
//!   doubles with each consecutive lock, so a stranger cannot lock an account for good; only after
//!   `permanent_after_locks` locks in a row (NIST: at most 100 consecutive failures) does it stay until
//!   an operator unlocks it.
//!
//! Every attempt is *admitted* before the slow password check (see [`LockoutPolicy::admit`]): admission
//! counts the attempt as a failure straight away, and is written with a compare-and-set, so parallel
//! guesses cannot all slip through on a stale read. A correct attempt gives its count back.

use super::rate_limit::RateLimit;
use crate::domain::Timestamp;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct LockoutPolicy {
    /// Consecutive failures (wrong password or wrong second factor) that lock the account.
    pub failed_attempts_before_lock: u32,
    /// Locks expire: the first after this many seconds, each consecutive one twice as long (0 or absent:
    /// every lock is permanent until an operator unlocks it).
    pub temporary_lock_seconds: Option<u32>,
    /// Ceiling for the back-off of temporary locks.
    pub max_temporary_lock_seconds: u32,
    /// After this many consecutive locks the next one is permanent (0: never, the default — see
    /// docs/decisions.md for why NIST's 100-failure ceiling is not the default).
    pub permanent_after_locks: u32,
    /// Consecutive failures allowed without any wait.
    pub free_failures: u32,
    /// After the free failures, the next attempt waits this long, doubling with each further failure
    /// (0: no delays).
    pub delay_base_seconds: u32,
    /// Failed sign-ins allowed from one client address (one /64 for IPv6) per window.
    pub per_client: RateLimit,
    /// Consecutive wrong security-question answers that lock the Q&A self-service reset.
    pub qa_failed_attempts_before_lock: u32,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        Self {
            failed_attempts_before_lock: 5,
            temporary_lock_seconds: Some(300),
            max_temporary_lock_seconds: 3600,
            permanent_after_locks: 0,
            free_failures: 2,
            delay_base_seconds: 5,
            per_client: RateLimit { max: 20, window_seconds: 600 },
            qa_failed_attempts_before_lock: 3,
        }
    }
}

/// The lockout fields of an account, as read before an attempt.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AttemptState {
    pub failed_attempts: u32,
    pub lock_count: u32,
    pub locked_at: Option<Timestamp>,
    pub locked_until: Option<Timestamp>,
    pub last_failed_at: Option<Timestamp>,
}

impl AttemptState {
    /// The account's attempt counters, as the policy reads them.
    pub fn of(account: &crate::domain::Account) -> Self {
        Self {
            failed_attempts: account.failed_attempts,
            lock_count: account.lock_count,
            locked_at: account.locked_at,
            locked_until: account.locked_until,
            last_failed_at: account.last_failed_at,
        }
    }

    pub fn lock(&self) -> LockState {
        LockState { locked_at: self.locked_at, locked_until: self.locked_until }
    }
}

/// An admitted attempt settles (gives its count back, or records its failure) within seconds; one still
/// unsettled after this long was lost (a crash, a store error) and counts as a failure.
pub const SETTLE_SECONDS: i64 = 120;

/// Why an attempt is not evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The account is locked (until the time given, or until an operator unlocks it).
    Locked { until: Option<Timestamp> },
    /// Too soon after the last failure.
    Delayed { until: Timestamp },
    /// Every remaining attempt before the lock is already being evaluated.
    InFlight,
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
        if self.delay_base_seconds > 3600 {
            return Err("lockout.delay_base_seconds must be at most 3600".into());
        }
        self.per_client.validate("lockout.per_client")
    }

    /// How long the attempt after `failures` consecutive failures must wait after the last one.
    pub fn delay_after(&self, failures: u32) -> i64 {
        if self.delay_base_seconds == 0 || failures < self.free_failures.max(1) {
            return 0;
        }
        let doublings = (failures - self.free_failures.max(1)).min(16);
        (i64::from(self.delay_base_seconds) << doublings).min(i64::from(self.max_temporary_lock_seconds.max(1)))
    }

    /// May an attempt be evaluated now? If so, the state to write (with a compare-and-set against
    /// `state`): the attempt counted as a failure until it proves correct. An expired temporary lock is
    /// cleared on the way, and the count starts again (the consecutive-lock count is kept).
    pub fn admit(&self, state: &AttemptState, now: Timestamp) -> Result<AttemptState, Refusal> {
        if state.lock().is_locked(now) {
            return Err(Refusal::Locked { until: state.locked_until });
        }
        let mut next = *state;
        if state.locked_at.is_some() {
            next.locked_at = None;
            next.locked_until = None;
            next.failed_attempts = 0;
        }
        if next.failed_attempts >= self.failed_attempts_before_lock {
            // Every remaining attempt is in flight — or was, and never settled. Lost attempts count as
            // failures: the account is locked as they would have locked it, from the moment they were given
            // up, and the count starts again when that lock has run out. Without this a lost attempt would
            // leave the account refusing everything, with no lock to expire or to lift.
            let Some(last) = next.last_failed_at.filter(|last| now >= last + SETTLE_SECONDS) else {
                return Err(Refusal::InFlight);
            };
            let lock = self.after_failure(next.failed_attempts, next.lock_count, last + SETTLE_SECONDS);
            match lock.and_then(|l| l.locked_until) {
                Some(until) if now >= until => {
                    next.failed_attempts = 0;
                    next.lock_count += 1;
                    next.last_failed_at = None;
                }
                until => return Err(Refusal::Locked { until }),
            }
        }
        if let Some(last) = next.last_failed_at {
            let until = last + self.delay_after(next.failed_attempts);
            if now < until {
                return Err(Refusal::Delayed { until });
            }
        }
        next.failed_attempts += 1;
        next.last_failed_at = Some(now);
        Ok(next)
    }

    /// Decide what a failure does, given the counter *after* it was incremented and the number of locks
    /// the account has had in a row before this one.
    pub fn after_failure(&self, failed_attempts: u32, previous_locks: u32, now: Timestamp) -> Option<NewLock> {
        if failed_attempts < self.failed_attempts_before_lock {
            return None;
        }
        let permanent = self.permanent_after_locks > 0 && previous_locks + 1 >= self.permanent_after_locks;
        let locked_until = self.temporary_lock_seconds.filter(|&base| base > 0 && !permanent).map(|base| {
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
    pub fn of(account: &crate::domain::Account) -> Self {
        Self { locked_at: account.locked_at, locked_until: account.locked_until }
    }

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

    fn permanent() -> LockoutPolicy {
        LockoutPolicy { temporary_lock_seconds: None, delay_base_seconds: 0, ..Default::default() }
    }

    #[test]
    fn locks_after_exactly_the_configured_number_of_failures() {
        let policy = permanent();
        assert_eq!(policy.after_failure(4, 0, 100), None);
        assert_eq!(policy.after_failure(5, 0, 100), Some(NewLock { locked_at: 100, locked_until: None }));
        assert_eq!(policy.after_failure(6, 0, 100), Some(NewLock { locked_at: 100, locked_until: None }));
    }

    #[test]
    fn the_default_lock_is_temporary_and_backs_off_to_a_ceiling() {
        let policy = LockoutPolicy::default();
        let until = |locks| policy.after_failure(5, locks, 1000).and_then(|l| l.locked_until);
        assert_eq!(until(0), Some(1300));
        assert_eq!(until(1), Some(1600));
        assert_eq!(until(2), Some(2200));
        assert_eq!(until(3), Some(3400));
        assert_eq!(until(4), Some(4600));
        assert_eq!(until(19), Some(4600), "no lock by strangers is for ever by default");
        // With NIST's strict ceiling, the twentieth lock in a row (a hundred consecutive failures) stays.
        let strict = LockoutPolicy { permanent_after_locks: 20, ..LockoutPolicy::default() };
        assert_eq!(strict.after_failure(5, 19, 1000).map(|l| l.locked_until), Some(None));
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
    fn attempts_are_admitted_until_the_limit_counting_those_in_flight() {
        let policy = permanent();
        let mut state = AttemptState::default();
        for n in 1..=5 {
            state = policy.admit(&state, 100).unwrap_or_else(|e| panic!("attempt {n}: {e:?}"));
            assert_eq!(state.failed_attempts, n);
        }
        assert_eq!(policy.admit(&state, 100), Err(Refusal::InFlight));
        let locked = AttemptState { locked_at: Some(100), ..state };
        assert_eq!(policy.admit(&locked, 10_000), Err(Refusal::Locked { until: None }));
    }

    #[test]
    fn delays_grow_after_the_free_failures() {
        let policy = LockoutPolicy::default();
        assert_eq!((policy.delay_after(0), policy.delay_after(1)), (0, 0));
        assert_eq!((policy.delay_after(2), policy.delay_after(3), policy.delay_after(4)), (5, 10, 20));
        let after_two = AttemptState { failed_attempts: 2, last_failed_at: Some(100), ..Default::default() };
        assert_eq!(policy.admit(&after_two, 104), Err(Refusal::Delayed { until: 105 }));
        assert_eq!(policy.admit(&after_two, 105).map(|s| s.failed_attempts), Ok(3));
        let after_one = AttemptState { failed_attempts: 1, last_failed_at: Some(100), ..Default::default() };
        assert!(policy.admit(&after_one, 100).is_ok(), "one mistyped password costs no wait");
    }

    #[test]
    fn attempts_that_never_settle_lock_the_account_for_a_while_not_for_ever() {
        let policy = LockoutPolicy { delay_base_seconds: 0, ..Default::default() };
        let lost = AttemptState { failed_attempts: 5, last_failed_at: Some(1_000), ..Default::default() };
        assert_eq!(policy.admit(&lost, 1_000 + SETTLE_SECONDS - 1), Err(Refusal::InFlight));
        let locked_from = 1_000 + SETTLE_SECONDS;
        assert_eq!(policy.admit(&lost, locked_from), Err(Refusal::Locked { until: Some(locked_from + 300) }));
        let after = policy.admit(&lost, locked_from + 300).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!((after.failed_attempts, after.lock_count), (1, 1));
        let permanent = LockoutPolicy { temporary_lock_seconds: Some(0), ..policy };
        assert_eq!(permanent.admit(&lost, i64::MAX / 2), Err(Refusal::Locked { until: None }));
    }

    #[test]
    fn an_expired_lock_is_cleared_and_the_count_starts_again() {
        let policy = LockoutPolicy::default();
        let state = AttemptState {
            failed_attempts: 5,
            lock_count: 1,
            locked_at: Some(100),
            locked_until: Some(400),
            last_failed_at: Some(100),
        };
        assert_eq!(policy.admit(&state, 399), Err(Refusal::Locked { until: Some(400) }));
        let next = policy.admit(&state, 400).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!((next.failed_attempts, next.lock_count, next.locked_at), (1, 1, None));
    }

    #[test]
    fn limits_outside_nist_bounds_are_refused() {
        assert!(LockoutPolicy { failed_attempts_before_lock: 0, ..Default::default() }.validate().is_err());
        assert!(LockoutPolicy { failed_attempts_before_lock: 101, ..Default::default() }.validate().is_err());
        assert!(LockoutPolicy::default().validate().is_ok());
    }
}
