use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Aead, Generate, KeyInit, Nonce};
use hmac::{Hmac, Mac};
use rand::TryRng as _;
use sha2::Sha256;
use std::fmt;
use std::io::Write;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("secret key: {0}")]
    Invalid(String),
    #[error("key file {path}: {error}")]
    Io { path: String, error: std::io::Error },
    #[error("could not decrypt a stored secret (wrong key file?)")]
    Decrypt,
}

/// 256 bits that every other server key is derived from. Its `Debug` never shows it, and its memory is wiped
/// when it is dropped.
#[derive(Clone, zeroize::Zeroize, zeroize::ZeroizeOnDrop)]
pub struct MasterKey([u8; 32]);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

impl MasterKey {
    /// From 64 hex characters (the `LIFELINE_SECRET_KEY` form).
    pub fn from_hex(text: &str) -> Result<Self, KeyError> {
        let bytes =
            hex::decode(text.trim()).map_err(|_| KeyError::Invalid("must be 64 hexadecimal characters".into()))?;
        let key: [u8; 32] =
            bytes.try_into().map_err(|_| KeyError::Invalid("must be 64 hexadecimal characters (32 bytes)".into()))?;
        Ok(Self(key))
    }

    /// Read the key file; a missing file is an error (for commands that must not invent a key, such as checking
    /// the audit log).
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let text =
            std::fs::read_to_string(path).map_err(|error| KeyError::Io { path: path.display().to_string(), error })?;
        Self::from_hex(&text)
    }

    /// Read the key file, or create it (mode 0600) with a fresh random key when it does not exist.
    pub fn load_or_create(path: &Path) -> Result<Self, KeyError> {
        let io = |error| KeyError::Io { path: path.display().to_string(), error };
        match std::fs::read_to_string(path) {
            Ok(text) => Self::from_hex(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; 32];
                rand::rngs::SysRng
                    .try_fill_bytes(&mut key)
                    .map_err(|e| KeyError::Invalid(format!("the system's random number generator failed: {e}")))?;
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                let mut file = options.open(path).map_err(io)?;
                file.write_all(hex::encode(key).as_bytes()).map_err(io)?;
                file.sync_all().map_err(io)?;
                Ok(Self(key))
            }
            Err(e) => Err(io(e)),
        }
    }

    fn derive(&self, label: &str) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(b"lifeline/v1/");
        mac.update(label.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

/// Keys derived from the master key, one per purpose, so that no key is used for two things.
#[derive(Clone)]
/// The keys derived from the master key. The cipher wipes its key schedule on drop (aes-gcm's `zeroize`
/// feature), the HMAC keys are wiped by `Zeroizing`, the audit key by its own type.
pub struct Keys {
    seal: Aes256Gcm,
    pub(crate) csrf: zeroize::Zeroizing<[u8; 32]>,
    pub(crate) token_pepper: zeroize::Zeroizing<[u8; 32]>,
    audit: super::AuditKey,
    fingerprint: [u8; 32],
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Keys(<redacted>)")
    }
}

impl Keys {
    pub fn new(master: &MasterKey) -> Self {
        let seal_key = zeroize::Zeroizing::new(master.derive("seal"));
        Self {
            seal: Aes256Gcm::new(&(*seal_key).into()),
            csrf: zeroize::Zeroizing::new(master.derive("csrf")),
            token_pepper: zeroize::Zeroizing::new(master.derive("token-pepper")),
            audit: super::AuditKey::from_bytes(master.derive("audit-chain")),
            fingerprint: master.derive("key-fingerprint"),
        }
    }

    /// The key's fingerprint: a keyed hash of a constant (so it says nothing about the key), recorded in the
    /// database on first use and compared at every start.
    pub fn fingerprint(&self) -> String {
        hex::encode(self.fingerprint)
    }

    /// The key that seals the audit chain. The database never holds it, so writing to the database is not enough
    /// to forge the log.
    pub fn audit_key(&self) -> super::AuditKey {
        self.audit.clone()
    }

    /// AES-256-GCM with a random 96-bit nonce, stored in front of the ciphertext. `context` is bound as
    /// associated data so a ciphertext copied to another row does not decrypt.
    pub fn seal(&self, plaintext: &[u8], context: &str) -> Vec<u8> {
        let nonce = Nonce::<Aes256Gcm>::generate();
        let payload = aes_gcm::aead::Payload { msg: plaintext, aad: context.as_bytes() };
        let ciphertext =
            self.seal.encrypt(&nonce, payload).unwrap_or_else(|_| unreachable!("in-memory AES-GCM cannot fail"));
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ciphertext);
        out
    }

    pub fn open(&self, sealed: &[u8], context: &str) -> Result<Vec<u8>, KeyError> {
        if sealed.len() < 12 {
            return Err(KeyError::Decrypt);
        }
        let (nonce, ciphertext) = sealed.split_at(12);
        let payload = aes_gcm::aead::Payload { msg: ciphertext, aad: context.as_bytes() };
        let nonce = Nonce::<Aes256Gcm>::try_from(nonce).map_err(|_| KeyError::Decrypt)?;
        self.seal.decrypt(&nonce, payload).map_err(|_| KeyError::Decrypt)
    }

    /// HMAC-SHA256 under the CSRF key, hex-encoded.
    pub fn csrf_mac(&self, message: &[u8]) -> String {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(self.csrf.as_slice())
            .unwrap_or_else(|_| unreachable!("any key length"));
        mac.update(message);
        hex::encode(mac.finalize().into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        Keys::new(&MasterKey::from_hex(&"ab".repeat(32)).unwrap_or_else(|e| panic!("{e}")))
    }

    #[test]
    fn sealed_secrets_open_only_in_their_own_context() {
        let keys = keys();
        let sealed = keys.seal(b"JBSWY3DPEHPK3PXP", "totp:1");
        assert_eq!(keys.open(&sealed, "totp:1").ok(), Some(b"JBSWY3DPEHPK3PXP".to_vec()));
        assert!(keys.open(&sealed, "totp:2").is_err());
        assert!(keys.open(&sealed[..5], "totp:1").is_err());
    }

    #[test]
    fn the_key_file_is_created_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("lifeline.key");
        let first = MasterKey::load_or_create(&path).unwrap_or_else(|e| panic!("{e}"));
        let again = MasterKey::load_or_create(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(first.0, again.0);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).map(|m| m.permissions().mode() & 0o777).unwrap_or(0);
            assert_eq!(mode, 0o600);
        }
        assert!(MasterKey::from_hex("abc").is_err());
        assert!(format!("{first:?}").contains("redacted"));
    }
}
