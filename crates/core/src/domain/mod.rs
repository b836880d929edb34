//! Domain types: values that crossed the edge and were parsed into something that cannot be wrong.
//!
//! Nothing here knows about HTTP, SQL or mail. Constructors normalise (emails are lower-cased) and refuse
//! what is not valid, so code further in never re-validates.

mod assistance;
mod directory;
mod values;

pub use assistance::{Description, ProblemType, ReferenceId, RequestStatus};
pub use directory::{Account, AccountSource, Grant, LockReason, Person, PersonStatus, RequiredActions};
pub use values::{DisplayName, EmailAddress, ParseError, Reason, Username};

/// Unix time in whole seconds (UTC). Every `now` in the policy layer is one of these.
pub type Timestamp = i64;

/// Identifiers are database keys; they never leave the server in a form that must be unguessable. Each is a
/// type of its own, so a person's id cannot be passed where an account's is meant.
macro_rules! id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<$name> for i64 {
            fn from(id: $name) -> i64 {
                id.0
            }
        }
    };
}

id!(
    /// A person in the directory.
    PersonId
);
id!(
    /// One of a person's accounts.
    AccountId
);

/// A timestamp as people read it in logs and audit details: RFC 3339 in UTC, to the second.
pub fn iso_time(at: Timestamp) -> String {
    chrono::DateTime::from_timestamp(at, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| at.to_string())
}
