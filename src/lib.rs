//! Lifeline's server: the HTTP front (pages, console, API), the CLI, the mail transports and the `lifeline`
//! binary, on top of `lifeline-core` (what the product does) and `lifeline-store` (where it is kept).
//!
//! Layers, arrows pointing down: `http` and `cli` (fronts) → the core's services (`signin`, `directory`,
//! `assistance`) → the core's pure layers (`policy`, `domain`, `totp`) → the store's traits, `geo`, `crypto`.
//! `app` assembles them; `mail` renders and delivers what the services put in the outbox.
// Tests may unwrap: a panic with the error is exactly what a failing test should do.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod app;
pub mod cli;
pub mod demo;
pub mod http;
pub mod mail;

// The core's modules under their usual names, so `crate::signin::…` reads the same from here and from tests.
pub use lifeline_core::{
    addresses, assistance, audit, auditing, authz, clock, config, crypto, directory, domain, email, gauges, geo,
    passkeys, policy, recovery, retention, services, signin, team, tokens, totp,
};

/// The store: the core's traits and the SQL implementation, in one place.
pub mod store {
    pub use lifeline_core::store::*;
    pub use lifeline_store::{Backend, SqlStore, copy};
}
