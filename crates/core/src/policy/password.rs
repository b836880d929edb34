//! The password rule of NIST SP 800-63B-4 §3.1.1.2 and ASVS 5.0 §6.2: length, not composition.
//!
//! At least 15 characters when the password is the only factor, 8 when MFA is required; up to 256
//! accepted (the standard asks for at least 64); no composition rules, no expiry; refused when it is
//! common or guessable (zxcvbn's dictionaries and pattern matching: fewer than ~10^8 estimated guesses,
//! score below 3), with the reason shown.

use zxcvbn::Score;

pub const MAX_PASSWORD_CHARS: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordRejection {
    #[error("Use at least {min} characters.")]
    TooShort { min: usize },
    #[error("Use at most {MAX_PASSWORD_CHARS} characters.")]
    TooLong,
    #[error("This password is too easy to guess{}", reason.as_deref().map(|r| format!(": {r}")).unwrap_or_else(|| ".".into()))]
    Guessable { reason: Option<String> },
    #[error("The two passwords do not match.")]
    Mismatch,
}

/// Check a new password. `context` holds words an attacker would try first (name, email, username).
pub fn check(password: &str, mfa_required: bool, context: &[&str]) -> Result<(), PasswordRejection> {
    let min = if mfa_required { 8 } else { 15 };
    let chars = password.chars().count();
    if chars < min {
        return Err(PasswordRejection::TooShort { min });
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(PasswordRejection::TooLong);
    }
    // zxcvbn's cost grows with length; the first 100 characters decide whether it is guessable.
    let probe: String = password.chars().take(100).collect();
    let estimate = zxcvbn::zxcvbn(&probe, context);
    if estimate.score() < Score::Three {
        let reason = estimate.feedback().and_then(|f| {
            f.warning().map(|w| w.to_string()).or_else(|| f.suggestions().first().map(|s| s.to_string()))
        });
        return Err(PasswordRejection::Guessable { reason });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_depends_on_whether_mfa_is_required() {
        assert_eq!(check("Vq7#pL2xk", true, &[]), Ok(()));
        assert_eq!(check("Vq7#pL2xk", false, &[]), Err(PasswordRejection::TooShort { min: 15 }));
        assert_eq!(check("Vq7#pL2", true, &[]), Err(PasswordRejection::TooShort { min: 8 }));
    }

    #[test]
    fn common_and_personal_passwords_are_refused_with_a_reason() {
        let Err(PasswordRejection::Guessable { reason }) = check("password123", true, &[]) else {
            panic!("password123 must be refused")
        };
        assert!(reason.is_some());
        assert!(check("ada.lovelace1815", true, &["ada", "lovelace", "ada.lovelace"]).is_err());
    }

    #[test]
    fn long_passphrases_without_composition_are_fine() {
        assert_eq!(check("correct horse battery staple lighthouse", false, &[]), Ok(()));
        assert_eq!(check("x7Qe-t0wer-9pLm-orbit-", true, &[]), Ok(()));
        let seventy = "a long and winding road to the lighthouse at the end of the pier in 1987";
        assert!(seventy.len() >= 64);
        assert_eq!(check(seventy, true, &[]), Ok(()));
        assert_eq!(check(&"x7Qe".repeat(65), true, &[]), Err(PasswordRejection::TooLong));
    }
}
