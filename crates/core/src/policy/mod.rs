//! Pure policy: decisions over plain values and a `now` passed in. No I/O, no clock of its own,
//! so every rule ("locked after exactly five failures", "expired after exactly ten minutes") is testable.

pub mod authz;
pub mod digest;
pub mod lockout;
pub mod outbox;
pub mod password;
pub mod permissions;
pub mod rate_limit;
pub mod recovery;
pub mod tiers;
