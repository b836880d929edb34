//! The key that seals the audit chain (see `audit`), derived from the master key.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The key that seals the chain. Its `Debug` never shows it.
#[derive(Clone, zeroize::Zeroize, zeroize::ZeroizeOnDrop)]
pub struct AuditKey([u8; 32]);

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditKey(<redacted>)")
    }
}

impl AuditKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub(crate) fn mac(&self, message: &str) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(message.as_bytes());
        mac
    }

    pub(crate) fn sign(&self, message: &str) -> String {
        hex::encode(self.mac(message).finalize().into_bytes())
    }

    /// Whether `stored` (hex) is this key's MAC of `message`, compared in constant time.
    pub(crate) fn signed(&self, message: &str, stored: &str) -> bool {
        hex::decode(stored).is_ok_and(|bytes| self.mac(message).verify_slice(&bytes).is_ok())
    }
}
