//! Domain types: values that crossed the edge and were parsed into something that cannot be wrong.
//!
//! Nothing here knows about HTTP, SQL or mail. Constructors normalise (emails are lower-cased) and refuse
//! what is not valid, so code further in never re-validates.

mod assistance;
mod directory;
mod values;

pub use assistance::{Description, ProblemType, ReferenceId};
pub use directory::{Account, AccountSource, Grant, LockReason, Person, PersonStatus, RequiredActions};
pub use values::{DisplayName, EmailAddress, ParseError, Username};

/// Unix time in whole seconds (UTC). Every `now` in the policy layer is one of these.
pub type Timestamp = i64;

/// Identifiers are plain database keys; they never leave the server in a form that must be unguessable.
pub type PersonId = i64;
pub type AccountId = i64;
