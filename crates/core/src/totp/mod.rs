//! TOTP (RFC 6238) over HOTP (RFC 4226): SHA-1, 6 digits, 30-second steps, ±1 step of clock drift.
//!
//! Pure functions over a `now`. Replay protection lives with the caller, who stores the last step used
//! and accepts only a later one (`verify` takes it and returns the step that matched).

use crate::crypto::ct_eq;
use crate::domain::Timestamp;
use hmac::{Hmac, KeyInit, Mac};
use rand::Rng as _;

pub const STEP_SECONDS: i64 = 30;
pub const DIGITS: u32 = 6;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Sha1,
    Sha256,
    Sha512,
}

/// A TOTP shared secret: 160 random bits, as RFC 4226 recommends. Its `Debug` hides it; its memory is wiped
/// when it is dropped.
#[derive(Clone, PartialEq, Eq, zeroize::Zeroize, zeroize::ZeroizeOnDrop)]
pub struct TotpSecret(Vec<u8>);

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSecret(<redacted>)")
    }
}

impl TotpSecret {
    pub fn generate() -> Self {
        let mut bytes = vec![0u8; 20];
        crate::crypto::os_rng().fill_bytes(&mut bytes);
        Self(bytes)
    }

    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// Parse base32 as authenticator apps show it (case and spaces ignored, padding optional).
    pub fn from_base32(text: &str) -> Option<Self> {
        let cleaned: String =
            text.chars().filter(|c| !c.is_whitespace() && *c != '=').collect::<String>().to_uppercase();
        data_encoding::BASE32_NOPAD.decode(cleaned.as_bytes()).ok().filter(|b| b.len() >= 10).map(Self)
    }

    pub fn to_base32(&self) -> String {
        data_encoding::BASE32_NOPAD.encode(&self.0)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The `otpauth://` URI that authenticator apps import (Key URI Format).
    pub fn otpauth_uri(&self, issuer: &str, account: &str) -> String {
        let issuer_enc = percent_encode(issuer);
        format!(
            "otpauth://totp/{issuer_enc}:{}?secret={}&issuer={issuer_enc}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
            percent_encode(account),
            self.to_base32()
        )
    }
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'@') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// HOTP value for one counter (RFC 4226 §5.3, dynamic truncation).
pub fn hotp(key: &[u8], counter: u64, digits: u32, algorithm: Algorithm) -> String {
    fn mac<M: Mac + KeyInit>(key: &[u8], msg: &[u8]) -> Vec<u8> {
        let mut m = <M as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        m.update(msg);
        m.finalize().into_bytes().to_vec()
    }
    let msg = counter.to_be_bytes();
    let digest = match algorithm {
        Algorithm::Sha1 => mac::<Hmac<sha1::Sha1>>(key, &msg),
        Algorithm::Sha256 => mac::<Hmac<sha2::Sha256>>(key, &msg),
        Algorithm::Sha512 => mac::<Hmac<sha2::Sha512>>(key, &msg),
    };
    let offset = usize::from(digest[digest.len() - 1] & 0x0f);
    let binary =
        u32::from_be_bytes([digest[offset] & 0x7f, digest[offset + 1], digest[offset + 2], digest[offset + 3]]);
    format!("{:0width$}", binary % 10u32.pow(digits), width = digits as usize)
}

/// The time step `now` falls in.
pub fn step_at(now: Timestamp) -> i64 {
    now.div_euclid(STEP_SECONDS)
}

/// The 6-digit code for `now` (what an authenticator app shows).
pub fn code_at(secret: &TotpSecret, now: Timestamp) -> String {
    hotp(secret.as_bytes(), step_at(now) as u64, DIGITS, Algorithm::Sha1)
}

/// Accept `code` if it matches a step within ±1 of `now` that is later than `last_used_step`;
/// return that step so the caller can record it (and refuse the same code again).
pub fn verify(secret: &TotpSecret, code: &str, now: Timestamp, last_used_step: i64) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let current = step_at(now);
    let mut matched = None;
    // Check every candidate step, without stopping early, so timing says nothing about which matched.
    for step in [current - 1, current, current + 1] {
        let expected = hotp(secret.as_bytes(), step as u64, DIGITS, Algorithm::Sha1);
        if ct_eq(expected.as_bytes(), code.as_bytes()) && step > last_used_step && matched.is_none() {
            matched = Some(step);
        }
    }
    matched
}

/// The otpauth URI as a QR code, an inline SVG (no external service, no script).
pub fn qr_svg(uri: &str) -> Option<String> {
    let code = qrcode::QrCode::new(uri.as_bytes()).ok()?;
    Some(
        code.render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(220, 220)
            .dark_color(qrcode::render::svg::Color("#000000"))
            .light_color(qrcode::render::svg::Color("#ffffff"))
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B: seeds are ASCII "1234567890" repeated to the hash's block size.
    #[test]
    fn rfc6238_appendix_b_vectors() {
        let sha1 = b"12345678901234567890".to_vec();
        let sha256 = b"12345678901234567890123456789012".to_vec();
        let sha512 = b"1234567890123456789012345678901234567890123456789012345678901234".to_vec();
        let vectors: [(i64, &str, &str, &str); 6] = [
            (59, "94287082", "46119246", "90693936"),
            (1_111_111_109, "07081804", "68084774", "25091201"),
            (1_111_111_111, "14050471", "67062674", "99943326"),
            (1_234_567_890, "89005924", "91819424", "93441116"),
            (2_000_000_000, "69279037", "90698825", "38618901"),
            (20_000_000_000, "65353130", "77737706", "47863826"),
        ];
        for (time, want1, want256, want512) in vectors {
            let counter = step_at(time) as u64;
            assert_eq!(hotp(&sha1, counter, 8, Algorithm::Sha1), want1, "SHA1 at {time}");
            assert_eq!(hotp(&sha256, counter, 8, Algorithm::Sha256), want256, "SHA256 at {time}");
            assert_eq!(hotp(&sha512, counter, 8, Algorithm::Sha512), want512, "SHA512 at {time}");
        }
    }

    #[test]
    fn accepts_one_step_of_drift_and_refuses_replay() {
        let secret = TotpSecret::from_bytes(b"12345678901234567890".to_vec());
        let now = 1_234_567_890;
        let code = code_at(&secret, now);
        let step = step_at(now);
        assert_eq!(verify(&secret, &code, now, -1), Some(step));
        assert_eq!(verify(&secret, &code, now + 30, -1), Some(step));
        assert_eq!(verify(&secret, &code, now - 30, -1), Some(step));
        assert_eq!(verify(&secret, &code, now + 60, -1), None);
        // Used once: the same code (or an earlier one) is refused in its window.
        assert_eq!(verify(&secret, &code, now, step), None);
        assert_eq!(verify(&secret, "12345", now, -1), None);
        assert_eq!(verify(&secret, "abcdef", now, -1), None);
    }

    #[test]
    fn base32_and_uri_round_trip() {
        let secret = TotpSecret::generate();
        assert_eq!(TotpSecret::from_base32(&secret.to_base32().to_lowercase()), Some(secret.clone()));
        let uri = secret.otpauth_uri("Lifeline", "ada@example.org");
        assert!(uri.starts_with("otpauth://totp/Lifeline:ada@example.org?secret="));
        assert!(qr_svg(&uri).is_some_and(|svg| svg.contains("<svg")));
        assert!(TotpSecret::from_base32("not base32!").is_none());
    }
}
