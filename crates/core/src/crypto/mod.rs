//! Secrets: the server's master key and the keys derived from it, random tokens, password hashing.
//!
//! Invariants: every token is at least 128 bits from the OS random source; only a keyed hash of a token
//! is ever stored; comparisons of secrets are constant-time.

mod audit_key;
mod keys;
mod password_hash;
mod tokens;

pub use audit_key::AuditKey;
pub use keys::{KeyError, Keys, MasterKey};
pub use password_hash::{Argon2Settings, HashError, PasswordHasher};
pub use tokens::{TokenHash, ct_eq, os_rng, random_token, readable_password, typed_code};
