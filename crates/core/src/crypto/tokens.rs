use hmac::{Hmac, KeyInit, Mac};
use rand::Rng as _;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::Keys;

/// The operating system's random number generator. Secrets come from nowhere else; it panics only if the
/// operating system cannot give randomness at all (as rand's `OsRng` did), where no secret can be made.
pub fn os_rng() -> rand::rand_core::UnwrapErr<rand::rngs::SysRng> {
    rand::rand_core::UnwrapErr(rand::rngs::SysRng)
}

/// A fresh 256-bit token, URL-safe base64 without padding (43 characters).
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    os_rng().fill_bytes(&mut bytes);
    data_encoding::BASE64URL_NOPAD.encode(&bytes)
}

/// Crockford-style alphabet without 0/O, 1/I/L and U: nothing that reads two ways over the phone.
const TYPED_ALPHABET: &[u8; 32] = b"23456789ABCDEFGHJKMNPQRSTVWXYZ#%";

/// A code meant to be typed: `groups` groups of 4 characters from a 30-symbol unambiguous alphabet
/// (rejection sampling keeps it uniform), e.g. `7KQ2-MX4P-...`.
pub fn typed_code(groups: usize) -> String {
    let alphabet = &TYPED_ALPHABET[..30];
    let mut out = String::with_capacity(groups * 5);
    let mut rng = os_rng();
    for g in 0..groups {
        if g > 0 {
            out.push('-');
        }
        let mut n = 0;
        while n < 4 {
            let byte = (rng.next_u32() & 0xff) as u8;
            // 240 = 8 * 30: bytes at or above it would bias the first symbols.
            if byte < 240 {
                out.push(alphabet[usize::from(byte % 30)] as char);
                n += 1;
            }
        }
    }
    out
}

/// Consonants and vowels of the readable passwords: no letter that reads two ways (no c, q, x; no y).
const CONSONANTS: &[u8; 16] = b"bdfghjklmnprstvz";
const VOWELS: &[u8; 5] = b"aeiou";

/// A uniform index below `n` (rejection sampling).
fn below(rng: &mut impl rand::Rng, n: u32) -> usize {
    let limit = u32::MAX - u32::MAX % n;
    loop {
        let x = rng.next_u32();
        if x < limit {
            return (x % n) as usize;
        }
    }
}

/// A temporary password meant to be read out over the phone: five made-up words of four consonant–vowel
/// syllables and two digits, e.g. `kavomelu-siratobe-nipadura-gotehumi-razoviku-47`. 20 syllables of 80 and
/// 100 digit pairs: 133 bits, like every other secret here.
pub fn readable_password() -> String {
    let mut rng = os_rng();
    let mut out = String::with_capacity(48);
    for word in 0..5 {
        if word > 0 {
            out.push('-');
        }
        for _ in 0..4 {
            out.push(CONSONANTS[below(&mut rng, 16)] as char);
            out.push(VOWELS[below(&mut rng, 5)] as char);
        }
    }
    out.push('-');
    out.push_str(&format!("{:02}", below(&mut rng, 100)));
    out
}

/// The stored form of a token or code: HMAC-SHA256 under the server's pepper key. A database dump alone
/// cannot be used to test guesses offline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenHash(pub String);

impl TokenHash {
    pub fn of(keys: &Keys, purpose: &str, token: &str) -> Self {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(keys.token_pepper.as_slice())
            .unwrap_or_else(|_| unreachable!("any key length"));
        mac.update(purpose.as_bytes());
        mac.update(b"\0");
        mac.update(token.as_bytes());
        Self(hex::encode(mac.finalize().into_bytes()))
    }
}

/// Constant-time equality for secrets of any length (the length itself is not secret).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::MasterKey;

    #[test]
    fn readable_passwords_are_words_and_two_digits_and_pass_the_password_rule() {
        let password = readable_password();
        let parts: Vec<&str> = password.split('-').collect();
        assert_eq!(parts.len(), 6, "{password}");
        assert!(parts[..5].iter().all(|w| w.len() == 8 && w.bytes().all(|b| b.is_ascii_lowercase())), "{password}");
        assert!(parts[5].len() == 2 && parts[5].bytes().all(|b| b.is_ascii_digit()), "{password}");
        assert_ne!(password, readable_password());
        assert!(crate::policy::password::check(&password, false, &[]).is_ok(), "{password}");
    }

    #[test]
    fn tokens_are_long_and_distinct() {
        let a = random_token();
        assert_eq!(a.len(), 43);
        assert_ne!(a, random_token());
    }

    #[test]
    fn typed_codes_use_only_unambiguous_symbols() {
        let code = typed_code(4);
        assert_eq!(code.len(), 19);
        assert!(code.chars().all(|c| c == '-' || (c.is_ascii_alphanumeric() && !"01ILOU".contains(c))));
    }

    #[test]
    fn token_hashes_depend_on_purpose_and_key() {
        let k1 = Keys::new(&MasterKey::from_hex(&"01".repeat(32)).unwrap_or_else(|e| panic!("{e}")));
        let k2 = Keys::new(&MasterKey::from_hex(&"02".repeat(32)).unwrap_or_else(|e| panic!("{e}")));
        assert_eq!(TokenHash::of(&k1, "session", "t"), TokenHash::of(&k1, "session", "t"));
        assert_ne!(TokenHash::of(&k1, "session", "t"), TokenHash::of(&k1, "backup", "t"));
        assert_ne!(TokenHash::of(&k1, "session", "t"), TokenHash::of(&k2, "session", "t"));
        assert!(ct_eq(b"abc", b"abc") && !ct_eq(b"abc", b"abd") && !ct_eq(b"abc", b"ab"));
    }
}
