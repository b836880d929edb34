//! Lifeline's storage: [`SqlStore`], one SQL implementation of the core's store traits
//! (`lifeline_core::store`) for SQLite and PostgreSQL through sqlx's `Any` driver, its migrations
//! (`migrations/<backend>/`), and copying a whole database to another backend.
//!
//! The SQL is written once in the dialect both accept (`$n` placeholders, first used in numeric order —
//! SQLite reads them as named parameters — BIGINT and TEXT). Each method that changes state is one
//! transaction that also writes its audit row and its outbox emails.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod copy;
mod migrate;
mod sql;
mod sql_addresses;
mod sql_audit;
mod sql_credentials;
mod sql_directory;
mod sql_outbox;
mod sql_passkeys;
mod sql_rate_limits;
mod sql_recovery;
mod sql_requests;
mod sql_retention;
mod sql_search;
mod sql_sessions;
mod sql_team;
mod sql_tokens;

pub use lifeline_core::store::*;
pub use sql::{Backend, SqlStore};

// The SQL modules name the core's types by their usual paths (`crate::domain::…`).
use lifeline_core::{audit, crypto, domain, email, policy};

use async_trait::async_trait;
use audit::{AuditEntry, AuditHead, AuditRecord, UnreadableRow};
use crypto::TokenHash;
use domain::{
    Account, AccountId, AccountSource, EmailAddress, Grant, Person, PersonId, PersonStatus, RequestStatus, Timestamp,
};
use policy::lockout::LockoutPolicy;

/// sqlx's errors as the core's [`StoreError`]: the core does not know sqlx, so the conversion lives here.
pub(crate) trait Db<T> {
    fn db(self) -> StoreResult<T>;
}

impl<T> Db<T> for Result<T, sqlx::Error> {
    fn db(self) -> StoreResult<T> {
        self.map_err(|e| StoreError::Database(e.to_string()))
    }
}
