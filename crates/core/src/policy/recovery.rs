//! What a recovery action needs before it runs, decided over plain values (SPEC §4, issue 9 §3):
//! the verification method and the rest of the form, whether the action fits the account, a fresh second
//! factor for expert actions (step-up), a second admin for actions on admins (four-eyes), and how long what
//! it hands out lives.

use super::permissions::{PermissionSettings, RecoveryAction};
use crate::config::RecoverySettings;
use crate::domain::{Account, AccountSource, Grant, PersonStatus, Timestamp};

/// Why a form cannot be run as it is; the text is for the admin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FormError(pub String);

/// The checked fields every action takes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Verification {
    /// One of the configured verification methods: the action's Reason.
    pub method: String,
    pub details: Option<String>,
    /// The person who asked, when not the subject.
    pub on_behalf_of: Option<String>,
}

fn plain(field: &str, value: &str, max: usize, multiline: bool) -> Result<(), FormError> {
    if value.chars().count() > max {
        return Err(FormError(format!("{field} must be at most {max} characters.")));
    }
    if value.chars().any(|c| c.is_control() && !(multiline && (c == '\n' || c == '\r' || c == '\t'))) {
        return Err(FormError(format!("{field} must not contain control characters.")));
    }
    Ok(())
}

fn optional(value: Option<&str>) -> Option<String> {
    value.map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned)
}

/// Check the verification method, details and on-behalf-of of a form.
pub fn verification(
    method: &str,
    details: Option<&str>,
    on_behalf_of: Option<&str>,
    settings: &RecoverySettings,
) -> Result<Verification, FormError> {
    let method = method.trim();
    if method.is_empty() {
        return Err(FormError("Choose how you verified the person's identity (the reason is required).".into()));
    }
    let Some(method) = settings.verification_methods.iter().find(|m| m.trim() == method) else {
        return Err(FormError("Choose one of the listed verification methods.".into()));
    };
    let details = optional(details);
    let on_behalf_of = optional(on_behalf_of);
    if let Some(d) = &details {
        plain("Details", d, 1000, true)?;
    }
    if let Some(o) = &on_behalf_of {
        plain("On behalf of", o, 200, false)?;
    }
    if method.trim_start().to_lowercase().starts_with("other") && details.is_none() {
        return Err(FormError(format!("\"{method}\" needs details: say how you verified the person.")));
    }
    Ok(Verification { method: method.clone(), details, on_behalf_of })
}

/// The lifetime of a temporary access pass, within the configured bounds (`None`: the default).
pub fn pass_minutes(asked: Option<u32>, settings: &RecoverySettings) -> Result<u32, FormError> {
    let minutes = asked.unwrap_or(settings.pass_default_minutes);
    if !(settings.pass_min_minutes..=settings.pass_max_minutes).contains(&minutes) {
        return Err(FormError(format!(
            "A temporary access pass lives {} to {} minutes.",
            settings.pass_min_minutes, settings.pass_max_minutes
        )));
    }
    Ok(minutes)
}

/// What an action acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// One account of the person.
    Account,
    /// The person, with every account.
    Person,
}

pub fn target(action: RecoveryAction) -> Target {
    match action {
        RecoveryAction::UnlockPerson | RecoveryAction::Enable | RecoveryAction::Disable => Target::Person,
        _ => Target::Account,
    }
}

/// Actions that set or stand in for a password: not for accounts whose password Lifeline does not hold.
pub fn is_password_action(action: RecoveryAction) -> bool {
    matches!(
        action,
        RecoveryAction::SendAccessEmail | RecoveryAction::SendMagicLink | RecoveryAction::SendOneTimePassword
    )
}

/// Actions on the second factor Lifeline holds: not for SSO accounts (their MFA is the identity provider's).
pub fn is_mfa_action(action: RecoveryAction) -> bool {
    matches!(
        action,
        RecoveryAction::ResetMfa
            | RecoveryAction::SendRecoveryCode
            | RecoveryAction::IssueTemporaryAccessPass
            | RecoveryAction::IssueEnrolmentCode
    )
}

/// What is known of the account (or person) an action would act on.
#[derive(Debug, Clone)]
pub struct State<'a> {
    pub account: Option<&'a Account>,
    pub person_status: PersonStatus,
    /// Some account of the person is locked now (or has failures to clear).
    pub any_locked: bool,
    pub has_totp: bool,
    pub backup_codes: i64,
    pub passkeys: usize,
    pub qa_enrolled: bool,
    pub now: Timestamp,
}

/// Does `action` apply here? `Err` says, for the admin, why not (nothing to unlock, an SSO account, ...).
pub fn applies(action: RecoveryAction, state: &State<'_>) -> Result<(), FormError> {
    use RecoveryAction as R;
    let refuse = |text: &str| Err(FormError(text.to_owned()));
    if let Some(account) = state.account {
        if account.source == AccountSource::Sso && (is_password_action(action) || is_mfa_action(action)) {
            return refuse(
                "This is an SSO account: it signs in at the identity provider, so its password and MFA are reset \
                 there, not here.",
            );
        }
        if account.lock_reason == Some(crate::domain::LockReason::ReportedNotMe)
            && (is_password_action(action) || is_mfa_action(action))
        {
            // A second admin, phoned by the same caller, must not hand out a new way in past the person's alarm:
            // the deliberate unlock comes first, after verifying them again.
            return refuse(
                "The person reported an earlier action on this account as not theirs (\"this wasn't me\"): verify \
                 them again, unlock the account, then act.",
            );
        }
        if account.source == AccountSource::Synchronized && is_password_action(action) {
            return refuse(
                "This account's password is mastered in the synchronized directory: Lifeline cannot set it. Reset \
                 it there (or raise a ticket for the engineers); MFA actions still work here.",
            );
        }
    }
    if state.person_status == PersonStatus::Disabled && !matches!(action, R::Enable) {
        return refuse("This person is disabled: enable them first.");
    }
    match action {
        R::Unlock => {
            let a = state.account.ok_or_else(|| FormError("Choose the account to unlock.".into()))?;
            if a.locked_at.is_none() && a.failed_attempts == 0 {
                return refuse("This account is not locked and has no failed attempts to clear.");
            }
        }
        R::UnlockPerson if !state.any_locked => {
            return refuse("No account of this person is locked or has failed attempts to clear.");
        }
        R::ResetMfa if !state.has_totp && state.backup_codes == 0 && state.passkeys == 0 => {
            return refuse("This account has no authenticator, backup codes or passkeys to reset.");
        }
        R::UnlockQa => {
            let a = state.account.ok_or_else(|| FormError("Choose the account.".into()))?;
            if a.qa_locked_at.is_none() && a.qa_failed_attempts == 0 {
                return refuse("Security-question reset is not locked for this account.");
            }
        }
        R::UnenrollQa if !state.qa_enrolled => {
            return refuse("This account has no security questions enrolled.");
        }
        R::Enable if state.person_status == PersonStatus::Active => return refuse("This person is already active."),
        _ => {}
    }
    Ok(())
}

/// Expert actions — and resetting someone's MFA — need the admin's second factor within the last
/// `step_up_minutes` (ASVS 5.0 7.5.3): a session left open at a desk is not enough to hand out a way in.
pub fn needs_step_up(action: RecoveryAction, permissions: &PermissionSettings) -> bool {
    permissions.of(action).expert || matches!(action, RecoveryAction::ResetMfa | RecoveryAction::IssueEnrolmentCode)
}

/// Device authorization emails per account: a sign-in with the right password sends one, so someone who
/// knows the password could otherwise flood the person's mailbox. Past the limit no new code goes out and the
/// last one stays valid (a new code would revoke it).
pub const DEVICE_CODES: crate::policy::rate_limit::RateLimit =
    crate::policy::rate_limit::RateLimit { max: 3, window_seconds: 600 };

/// Is a second factor proved at `at` fresh enough for a step-up action at `now`?
pub fn fresh(at: Option<Timestamp>, now: Timestamp, settings: &RecoverySettings) -> bool {
    at.is_some_and(|at| at <= now && now - at <= i64::from(settings.step_up_minutes) * 60)
}

/// An action on someone who holds any admin permission waits for a second admin (four-eyes: the 2023
/// helpdesk attacks reset administrators' MFA over one phone call).
pub fn needs_approval(subject: &Grant) -> bool {
    subject.dpa_level > 0 || subject.expert_mode || subject.auditor || subject.directory_admin
}

/// When a secret an action hands out expires.
pub fn expires_at(action: RecoveryAction, now: Timestamp, pass_minutes: u32, settings: &RecoverySettings) -> i64 {
    let minutes = match action {
        RecoveryAction::SendAccessEmail | RecoveryAction::SendMagicLink => settings.link_minutes,
        RecoveryAction::SendRecoveryCode => settings.recovery_code_minutes,
        RecoveryAction::SendOneTimePassword => settings.one_time_password_minutes,
        RecoveryAction::IssueTemporaryAccessPass => pass_minutes,
        RecoveryAction::IssueEnrolmentCode => settings.enrolment_code_minutes,
        _ => 0,
    };
    now + i64::from(minutes) * 60
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s() -> RecoverySettings {
        RecoverySettings::default()
    }

    #[test]
    fn the_reason_is_one_of_the_methods_and_other_needs_details() {
        let m = &s().verification_methods;
        assert!(verification(&m[0], None, None, &s()).is_ok());
        assert!(verification("", None, None, &s()).is_err());
        assert!(verification("I just felt like it", None, None, &s()).is_err());
        assert!(verification(&m[3], None, None, &s()).is_err());
        assert!(verification(&m[3], Some("  "), None, &s()).is_err());
        assert!(verification(&m[3], Some("Badge checked at reception"), None, &s()).is_ok());
        assert!(verification(&m[0], Some(&"x".repeat(1001)), None, &s()).is_err());
        assert!(verification(&m[0], None, Some("a\u{7}b"), &s()).is_err());
        let v = verification(&m[0], Some(" line\nline "), Some(" Mona "), &s()).unwrap();
        assert_eq!((v.details.as_deref(), v.on_behalf_of.as_deref()), (Some("line\nline"), Some("Mona")));
    }

    #[test]
    fn step_up_is_for_expert_actions_and_reset_mfa_and_lasts_ten_minutes() {
        let p = PermissionSettings::default();
        assert!(needs_step_up(RecoveryAction::SendRecoveryCode, &p));
        assert!(needs_step_up(RecoveryAction::IssueTemporaryAccessPass, &p));
        assert!(needs_step_up(RecoveryAction::ResetMfa, &p));
        assert!(!needs_step_up(RecoveryAction::UnlockPerson, &p));
        let now = 1_000_000;
        assert!(fresh(Some(now - 600), now, &s()));
        assert!(!fresh(Some(now - 601), now, &s()));
        assert!(!fresh(None, now, &s()));
    }

    #[test]
    fn anyone_with_an_admin_permission_needs_a_second_admin() {
        assert!(!needs_approval(&Grant::default()));
        assert!(needs_approval(&Grant { dpa_level: 1, ..Default::default() }));
        assert!(needs_approval(&Grant { auditor: true, ..Default::default() }));
    }

    #[test]
    fn lifetimes_follow_the_settings_and_pass_bounds_hold() {
        let now = 0;
        assert_eq!(expires_at(RecoveryAction::SendRecoveryCode, now, 0, &s()), 3600);
        assert_eq!(expires_at(RecoveryAction::SendOneTimePassword, now, 0, &s()), 600);
        assert_eq!(expires_at(RecoveryAction::IssueTemporaryAccessPass, now, 30, &s()), 1800);
        assert_eq!(pass_minutes(None, &s()), Ok(60));
        assert!(pass_minutes(Some(5), &s()).is_err());
        assert!(pass_minutes(Some(8 * 60 + 1), &s()).is_err());
    }
}
