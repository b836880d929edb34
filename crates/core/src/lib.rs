//! Lifeline's core: what the product does, free of how it is served or stored.
//!
//! Arrows point down, never up: the services (`signin`, `directory`, `assistance`, `retention`) share one
//! [`services::Core`] and reach storage only through the traits in [`store`]; below them the pure layers
//! (`domain`, `policy`, `totp`, the `audit` chain) take `now` and do no I/O; `crypto`, `geo`, `clock` and
//! `config` are leaves. Nothing here knows HTTP, SQL, SMTP or templates: the server crate renders and
//! delivers, the store crate persists. The workspace checks that (`cargo tree -p lifeline-core -e normal`).
// Tests may unwrap: a panic with the error is exactly what a failing test should do.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod addresses;
pub mod assistance;
pub mod audit;
pub mod auditing;
pub mod authz;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod directory;
pub mod domain;
pub mod email;
pub mod gauges;
pub mod geo;
pub mod passkeys;
pub mod policy;
pub mod recovery;
pub mod retention;
pub mod services;
pub mod signin;
pub mod store;
pub mod team;
pub mod tokens;
pub mod totp;
