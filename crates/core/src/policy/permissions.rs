//! Who may do what: one function, used by pages, API and CLI alike (SPEC §1). The required level of each
//! action is configuration; the defaults are SPEC's table.

use crate::domain::Grant;
use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Receive assistance emails, view and close requests.
    ViewRequests,
    /// Search the directory and read people's records in the console.
    ViewPeople,
    /// Read the audit log.
    ReadAudit,
    /// Add people to the directory.
    AddPeople,
    /// Change what someone may do (their grant).
    ManageGrants,
    /// Make and revoke one's own API tokens.
    UseApi,
    /// Act for the people of one's own reporting line (the manager portal): given by having reports, not by a
    /// grant, and only on people of rank 0.
    ManageReports,
    /// Work the engineers' ticket queue: take, note, resolve.
    WorkTickets,
    /// A recovery action of SPEC §4, each with its own configurable requirement.
    Recovery(RecoveryAction),
}

/// The recovery actions, by their SPEC §8 names (console, audit, emails and API use these).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecoveryAction {
    SendAccessEmail,
    SendRecoveryCode,
    Unlock,
    UnlockPerson,
    ResetMfa,
    IssueTemporaryAccessPass,
    SendOneTimePassword,
    SendMagicLink,
    UnlockQa,
    UnenrollQa,
    Enable,
    Disable,
    /// A short-lived code, shown once to the admin, with which the person adds a passkey: recovery that needs
    /// no email (for someone whose mailbox is gone too).
    IssueEnrolmentCode,
}

impl RecoveryAction {
    pub const ALL: [Self; 13] = [
        Self::SendAccessEmail,
        Self::SendRecoveryCode,
        Self::Unlock,
        Self::UnlockPerson,
        Self::ResetMfa,
        Self::IssueTemporaryAccessPass,
        Self::SendOneTimePassword,
        Self::SendMagicLink,
        Self::UnlockQa,
        Self::UnenrollQa,
        Self::Enable,
        Self::Disable,
        Self::IssueEnrolmentCode,
    ];

    /// The SPEC §8 name.
    pub fn name(self) -> &'static str {
        match self {
            Self::SendAccessEmail => "send-access-email",
            Self::SendRecoveryCode => "send-recovery-code",
            Self::Unlock => "unlock",
            Self::UnlockPerson => "unlock-person",
            Self::ResetMfa => "reset-mfa",
            Self::IssueTemporaryAccessPass => "issue-temporary-access-pass",
            Self::SendOneTimePassword => "send-one-time-password",
            Self::SendMagicLink => "send-magic-link",
            Self::UnlockQa => "unlock-qa",
            Self::UnenrollQa => "unenroll-qa",
            Self::Enable => "enable",
            Self::Disable => "disable",
            Self::IssueEnrolmentCode => "issue-enrolment-code",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }
}

/// The minimum data protection access level, and whether expert mode is needed.
#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Requirement {
    pub dpa: u8,
    #[serde(default)]
    pub expert: bool,
}

const fn level(dpa: u8) -> Requirement {
    Requirement { dpa, expert: false }
}

/// The required level of each action (`[permissions]`, one key per action in snake case); the defaults are
/// SPEC §1's table.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PermissionSettings {
    pub view_requests: Requirement,
    pub view_people: Requirement,
    /// The engineers' ticket queue (managers' requests that need a person, e.g. a synchronized password).
    pub work_tickets: Requirement,
    pub send_access_email: Requirement,
    pub send_recovery_code: Requirement,
    pub unlock: Requirement,
    pub unlock_person: Requirement,
    pub reset_mfa: Requirement,
    pub issue_temporary_access_pass: Requirement,
    pub send_one_time_password: Requirement,
    pub send_magic_link: Requirement,
    pub unlock_qa: Requirement,
    pub unenroll_qa: Requirement,
    pub enable: Requirement,
    pub disable: Requirement,
    pub issue_enrolment_code: Requirement,
}

impl Default for PermissionSettings {
    fn default() -> Self {
        let expert = Requirement { dpa: 2, expert: true };
        Self {
            view_requests: level(1),
            view_people: level(1),
            work_tickets: level(1),
            send_access_email: level(1),
            send_recovery_code: expert,
            unlock: level(1),
            unlock_person: level(1),
            reset_mfa: level(2),
            issue_temporary_access_pass: expert,
            send_one_time_password: level(2),
            send_magic_link: level(1),
            unlock_qa: level(1),
            unenroll_qa: level(2),
            enable: level(2),
            disable: level(2),
            // A way in that needs no mailbox: as guarded as the temporary access pass.
            issue_enrolment_code: expert,
        }
    }
}

impl PermissionSettings {
    /// The requirement for a recovery action.
    pub fn of(&self, action: RecoveryAction) -> Requirement {
        match action {
            RecoveryAction::SendAccessEmail => self.send_access_email,
            RecoveryAction::SendRecoveryCode => self.send_recovery_code,
            RecoveryAction::Unlock => self.unlock,
            RecoveryAction::UnlockPerson => self.unlock_person,
            RecoveryAction::ResetMfa => self.reset_mfa,
            RecoveryAction::IssueTemporaryAccessPass => self.issue_temporary_access_pass,
            RecoveryAction::SendOneTimePassword => self.send_one_time_password,
            RecoveryAction::SendMagicLink => self.send_magic_link,
            RecoveryAction::UnlockQa => self.unlock_qa,
            RecoveryAction::UnenrollQa => self.unenroll_qa,
            RecoveryAction::Enable => self.enable,
            RecoveryAction::Disable => self.disable,
            RecoveryAction::IssueEnrolmentCode => self.issue_enrolment_code,
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        let named = [("view_requests".to_owned(), self.view_requests), ("view_people".to_owned(), self.view_people)]
            .into_iter()
            .chain(RecoveryAction::ALL.into_iter().map(|a| (a.name().replace('-', "_"), self.of(a))));
        for (name, requirement) in named {
            if requirement.dpa > 3 {
                return Err(format!("permissions.{name}.dpa must be 0 to 3"));
            }
        }
        Ok(())
    }
}

/// May a person with `grant` do `permission`?
pub fn allows(grant: &Grant, permission: Permission, settings: &PermissionSettings) -> bool {
    match permission {
        Permission::ViewRequests => meets(grant, settings.view_requests),
        Permission::ViewPeople => meets(grant, settings.view_people),
        Permission::ReadAudit => grant.auditor || grant.directory_admin,
        // The directory's shape and who holds power in it are the directory admins' alone.
        Permission::AddPeople | Permission::ManageGrants => grant.directory_admin,
        // A token can do only what its person may, so it is for people who hold some admin capability; an
        // ordinary account has nothing to call, and a long-lived bearer secret it does not need is only a risk.
        Permission::UseApi => grant.dpa_level > 0 || grant.auditor || grant.directory_admin,
        // The reporting line decides (`policy::authz::decide`), never a grant.
        Permission::ManageReports => false,
        Permission::WorkTickets => meets(grant, settings.work_tickets),
        Permission::Recovery(action) => meets(grant, settings.of(action)),
    }
}

fn meets(grant: &Grant, requirement: Requirement) -> bool {
    grant.dpa_level >= requirement.dpa && (!requirement.expert || grant.expert_mode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viewing_requests_needs_dpa_one_by_default() {
        let settings = PermissionSettings::default();
        let with = |dpa_level| Grant { dpa_level, ..Default::default() };
        assert!(!allows(&with(0), Permission::ViewRequests, &settings));
        assert!(allows(&with(1), Permission::ViewRequests, &settings));
        let strict =
            PermissionSettings { view_requests: Requirement { dpa: 2, expert: true }, ..PermissionSettings::default() };
        assert!(!allows(&with(3), Permission::ViewRequests, &strict));
        assert!(allows(
            &Grant { dpa_level: 2, expert_mode: true, ..Default::default() },
            Permission::ViewRequests,
            &strict
        ));
    }

    #[test]
    fn the_default_table_is_spec_section_one() {
        let settings = PermissionSettings::default();
        let table = [
            ("send-access-email", 1, false),
            ("send-magic-link", 1, false),
            ("unlock", 1, false),
            ("unlock-person", 1, false),
            ("unlock-qa", 1, false),
            ("reset-mfa", 2, false),
            ("unenroll-qa", 2, false),
            ("send-one-time-password", 2, false),
            ("send-recovery-code", 2, true),
            ("issue-temporary-access-pass", 2, true),
            // Not in SPEC §1's table (issue 14): as guarded as the temporary access pass.
            ("issue-enrolment-code", 2, true),
            ("enable", 2, false),
            ("disable", 2, false),
        ];
        assert_eq!(table.len(), RecoveryAction::ALL.len());
        for (name, dpa, expert) in table {
            let action = RecoveryAction::parse(name).unwrap_or_else(|| panic!("{name} is an action"));
            assert_eq!(action.name(), name);
            assert_eq!(settings.of(action), Requirement { dpa, expert }, "{name}");
        }
    }
}
