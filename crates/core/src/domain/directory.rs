use super::{AccountId, EmailAddress, PersonId, Timestamp};
use std::fmt;
use std::str::FromStr;

macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl FromStr for $name {
            type Err = super::ParseError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s.trim() {
                    $($text => Ok($name::$variant),)+
                    other => Err(super::ParseError::new(
                        stringify!($name),
                        format!("{other:?} is not one of: {}", [$($text),+].join(", ")),
                    )),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }
    };
}

string_enum!(
    /// Where an account's password lives (SPEC §1).
    AccountSource { Local => "local", Synchronized => "synchronized", Sso => "sso" }
);
string_enum!(PersonStatus { Active => "active", Disabled => "disabled" });
string_enum!(
    /// Why an account is locked.
    LockReason { Failures => "failures", QaFailures => "qa_failures", Admin => "admin", ReportedNotMe => "reported_not_me" }
);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub id: PersonId,
    pub display_name: String,
    pub email: EmailAddress,
    pub phone: Option<String>,
    pub manager_id: Option<PersonId>,
    pub department: Option<String>,
    pub status: PersonStatus,
    pub created_at: Timestamp,
}

/// Permissions held by a person (SPEC §1). The default grants nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Grant {
    pub dpa_level: u8,
    pub expert_mode: bool,
    pub auditor: bool,
    pub directory_admin: bool,
}

/// What must happen before a signed-in account may use anything else.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct RequiredActions {
    pub change_password: bool,
    pub enroll_mfa: bool,
    /// After an MFA reset: the next sign-in proves the registered mailbox with an emailed code first.
    pub device_authorization: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: AccountId,
    pub person_id: PersonId,
    pub username: String,
    pub source: AccountSource,
    pub password_hash: Option<String>,
    pub password_changed_at: Option<Timestamp>,
    pub failed_attempts: u32,
    pub lock_count: u32,
    pub locked_at: Option<Timestamp>,
    pub lock_reason: Option<LockReason>,
    pub locked_until: Option<Timestamp>,
    pub unlocked_by: Option<String>,
    pub unlocked_at: Option<Timestamp>,
    pub required: RequiredActions,
    pub qa_failed_attempts: u32,
    pub qa_locked_at: Option<Timestamp>,
    pub created_at: Timestamp,
    /// When the last failed (or still undecided) sign-in attempt was admitted.
    pub last_failed_at: Option<Timestamp>,
    /// A temporary password (a manager's reset) is refused from this time on, unless it was replaced.
    pub temporary_password_until: Option<Timestamp>,
}
