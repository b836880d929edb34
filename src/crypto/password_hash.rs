//! argon2id password hashing, off the async runtime and with bounded concurrency.
//!
//! Each hash costs ~19 MiB and tens of milliseconds of CPU; running them on the blocking pool behind a
//! semaphore keeps memory flat under a flood of sign-ins (the excess waits) and keeps the runtime free
//! to answer other requests. Unknown accounts are verified against a dummy hash so that a failed
//! sign-in costs the same time whether or not the account exists.

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString, rand_core::OsRng};
use argon2::{Algorithm, Argon2, Params, Version};
use serde::Deserialize;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// argon2id cost parameters; stored in each PHC string, so they can be raised later.
#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Argon2Settings {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
    /// How many hashes may run at once (0: one per CPU core).
    pub max_concurrent: usize,
}

impl Default for Argon2Settings {
    /// OWASP's first recommended argon2id configuration: m = 19 MiB, t = 2, p = 1.
    fn default() -> Self {
        Self { memory_kib: 19 * 1024, iterations: 2, parallelism: 1, max_concurrent: 0 }
    }
}

impl Argon2Settings {
    pub fn validate(&self) -> Result<(), String> {
        Params::new(self.memory_kib, self.iterations, self.parallelism, None)
            .map(|_| ())
            .map_err(|e| format!("argon2 parameters: {e}"))
    }
}

#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    permits: Arc<Semaphore>,
    dummy_hash: Arc<str>,
}

#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

impl PasswordHasher {
    pub fn new(settings: Argon2Settings) -> Result<Self, HashError> {
        let params = Params::new(settings.memory_kib, settings.iterations, settings.parallelism, None)
            .map_err(|e| HashError(e.to_string()))?;
        let permits = if settings.max_concurrent == 0 {
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2)
        } else {
            settings.max_concurrent
        };
        let dummy_hash = hash_blocking(&params, "lifeline dummy password for unknown accounts")?;
        Ok(Self { params, permits: Arc::new(Semaphore::new(permits)), dummy_hash: dummy_hash.into() })
    }

    pub async fn hash(&self, password: &str) -> Result<String, HashError> {
        let _permit = self.permits.acquire().await.map_err(|e| HashError(e.to_string()))?;
        let params = self.params.clone();
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || hash_blocking(&params, &password))
            .await
            .map_err(|e| HashError(e.to_string()))?
    }

    /// True only when `stored` is a hash of `password`. With `None` (no account, or no password) a dummy
    /// hash is verified instead and the answer is false: the same work either way.
    pub async fn verify(&self, password: &str, stored: Option<&str>) -> bool {
        let Ok(_permit) = self.permits.acquire().await else { return false };
        let (stored, real) = match stored {
            Some(hash) => (hash.to_owned(), true),
            None => (self.dummy_hash.to_string(), false),
        };
        let password = password.to_owned();
        let matched = tokio::task::spawn_blocking(move || {
            PasswordHash::new(&stored)
                .is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
        })
        .await
        .unwrap_or(false);
        matched && real
    }

    /// Synchronous hashing for the CLI and tests that are not on a runtime.
    pub fn hash_now(&self, password: &str) -> Result<String, HashError> {
        hash_blocking(&self.params, password)
    }
}

fn hash_blocking(params: &Params, password: &str) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> PasswordHasher {
        PasswordHasher::new(Argon2Settings { memory_kib: 1024, iterations: 1, parallelism: 1, max_concurrent: 2 })
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[tokio::test]
    async fn hashes_are_phc_strings_that_verify() {
        let hasher = cheap();
        let hash = hasher.hash("a long passphrase").await.unwrap_or_else(|e| panic!("{e}"));
        assert!(hash.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"));
        assert!(hasher.verify("a long passphrase", Some(&hash)).await);
        assert!(!hasher.verify("a long passphrasE", Some(&hash)).await);
        assert!(!hasher.verify("a long passphrase", None).await);
        assert!(!hasher.verify("x", Some("not a phc string")).await);
    }

    #[test]
    fn default_parameters_are_owasps() {
        let s = Argon2Settings::default();
        assert_eq!((s.memory_kib, s.iterations, s.parallelism), (19456, 2, 1));
    }
}
