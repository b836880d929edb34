//! Words for people instead of stored values: `bad_second_factor` is "Wrong code", `account:2:harry` is
//! "harry". Unknown values are shown as they are rather than hidden.

use crate::domain::RequestStatus;

/// A moment to the minute, in UTC (the pages say so in their headings), e.g. `2026-12-03 07:15`.
pub fn minute(at: i64) -> String {
    chrono::DateTime::from_timestamp(at, 0).map(|t| t.format("%Y-%m-%d %H:%M").to_string()).unwrap_or_default()
}

/// A sign-in event's outcome.
pub fn outcome(value: &str) -> String {
    match value {
        "success" => "Signed in",
        "password_accepted" => "Password right, second step next",
        "second_factor_accepted" => "Second step right",
        "bad_password" => "Wrong password",
        "bad_second_factor" => "Wrong code",
        "bad_answers" => "Wrong security answers",
        "unknown_account" => "No such account",
        "locked" => "Refused: account locked",
        "delayed" => "Refused: too soon after a failure",
        "disabled" => "Refused: account disabled",
        "qa_locked" => "Refused: security-question reset locked",
        "password_reset" => "Password reset with security questions",
        "bad_passkey" => "Refused: the passkey did not check out",
        "unknown_passkey" => "Refused: a passkey Lifeline does not know",
        other => other,
    }
    .to_owned()
}

/// How a sign-in step was made.
pub fn method(value: &str) -> String {
    match value {
        "password" => "Password",
        "totp" => "Authenticator app",
        "backup_code" => "Backup code",
        "second_factor" => "Second step",
        "security_questions" => "Security questions",
        "password_change" => "Password change",
        "passkey" => "Passkey",
        other => other,
    }
    .to_owned()
}

/// Who did something, from the audit form (`account:ID:USERNAME`, `token:ID:ACCOUNT:USERNAME:NAME`, `system`,
/// `public`).
pub fn actor(value: &str) -> String {
    lifeline_core::audit::actor_in_words(value)
}

/// A change in the authenticator record, in words.
pub fn authenticator_change(value: &str) -> String {
    match value {
        "bound" => "Bound",
        "temporary" => "Set by someone else (to be changed)",
        "removed" => "Removed",
        "used" => "Used to sign in",
        other => other,
    }
    .to_owned()
}

/// An assistance request's status.
pub fn request_status(value: RequestStatus) -> String {
    match value {
        RequestStatus::Received => "Received (being processed)",
        RequestStatus::Open => "Open",
        RequestStatus::Joined => "Joined to an earlier request",
        RequestStatus::Resolved => "Resolved",
        RequestStatus::Dismissed => "Dismissed",
    }
    .to_owned()
}

/// An assistance request's problem type.
pub fn problem(value: &str) -> String {
    crate::domain::ProblemType::parse(value).map(|p| p.label().to_owned()).unwrap_or_else(|_| value.to_owned())
}

#[cfg(test)]
mod tests {
    #[test]
    fn stored_values_read_as_words() {
        assert_eq!(super::actor("account:2:harry"), "harry");
        assert_eq!(super::outcome("bad_second_factor"), "Wrong code");
        assert_eq!(super::outcome("password_accepted"), "Password right, second step next");
        assert_eq!(super::problem("lost_2fa"), "Lost 2FA device or backup codes");
        assert_eq!(super::outcome("something_new"), "something_new");
    }
}
