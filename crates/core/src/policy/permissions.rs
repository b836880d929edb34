//! Who may do what: one function, used by pages, API and CLI alike (SPEC §1). The required level of each
//! action is configuration; the defaults are SPEC's table.

use crate::domain::Grant;
use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Receive assistance emails, view and close requests.
    ViewRequests,
    /// Read the audit log.
    ReadAudit,
    /// Lift the sign-in lock of someone's accounts.
    UnlockAccounts,
    /// Add people to the directory.
    AddPeople,
    /// Change what someone may do (their grant).
    ManageGrants,
}

/// The minimum data protection access level, and whether expert mode is needed.
#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Requirement {
    pub dpa: u8,
    #[serde(default)]
    pub expert: bool,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PermissionSettings {
    pub view_requests: Requirement,
    pub unlock_accounts: Requirement,
}

impl Default for PermissionSettings {
    fn default() -> Self {
        Self {
            view_requests: Requirement { dpa: 1, expert: false },
            unlock_accounts: Requirement { dpa: 1, expert: false },
        }
    }
}

impl PermissionSettings {
    pub fn validate(&self) -> Result<(), String> {
        for (name, requirement) in [("view_requests", self.view_requests), ("unlock_accounts", self.unlock_accounts)] {
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
        Permission::ReadAudit => grant.auditor || grant.directory_admin,
        Permission::UnlockAccounts => meets(grant, settings.unlock_accounts),
        // The directory's shape and who holds power in it are the directory admins' alone.
        Permission::AddPeople | Permission::ManageGrants => grant.directory_admin,
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
}
