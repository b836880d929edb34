//! What passkeys allow, as pure decisions that take `now`.

use crate::domain::Timestamp;

/// A passkey's name: what its person calls it. Trimmed; at most 64 characters; no control characters.
/// An empty name becomes "Passkey added <date>", so every passkey in a list can be told apart by something.
pub fn passkey_name(input: &str, now: Timestamp) -> Result<String, String> {
    let name = input.trim();
    if name.chars().any(char::is_control) {
        return Err("A passkey's name cannot contain control characters.".into());
    }
    if name.chars().count() > 64 {
        return Err("A passkey's name can be at most 64 characters.".into());
    }
    if name.is_empty() {
        let day = chrono::DateTime::from_timestamp(now, 0).map(|d| d.format("%Y-%m-%d").to_string());
        return Ok(format!("Passkey added {}", day.unwrap_or_default()));
    }
    Ok(name.to_owned())
}

/// Adding a passkey, or removing the last one, needs a sign-in (or a fresh second factor) within this long.
pub const FRESH_SIGN_IN_SECONDS: i64 = 10 * 60;

/// Did this session sign in, or prove a second factor, recently enough to add a passkey or remove the last one?
pub fn fresh_sign_in(signed_in_at: Timestamp, second_factor_at: Option<Timestamp>, now: Timestamp) -> bool {
    let latest = second_factor_at.map_or(signed_in_at, |at| at.max(signed_in_at));
    latest <= now && now - latest <= FRESH_SIGN_IN_SECONDS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_bounded_and_never_empty() {
        assert_eq!(passkey_name("  Work laptop ", 0).unwrap(), "Work laptop");
        assert_eq!(passkey_name("", 1_780_000_000).unwrap(), "Passkey added 2026-05-28");
        assert!(passkey_name("a\u{7}b", 0).is_err());
        assert!(passkey_name(&"x".repeat(65), 0).is_err());
        assert_eq!(passkey_name(&"é".repeat(64), 0).unwrap().chars().count(), 64);
    }

    #[test]
    fn a_sign_in_is_fresh_for_ten_minutes_and_a_step_up_renews_it() {
        let now = 10_000;
        assert!(fresh_sign_in(now - 600, None, now));
        assert!(!fresh_sign_in(now - 601, None, now));
        assert!(fresh_sign_in(now - 5_000, Some(now - 60), now));
        assert!(!fresh_sign_in(now - 5_000, Some(now - 700), now));
        // A time in the future (a clock gone back) is not fresh.
        assert!(!fresh_sign_in(now + 5, None, now));
    }
}
