//! Black-box tests: Lifeline over real HTTP, a real SQLite file, the real CLI binary, real GeoIP files,
//! and `oathtool` for TOTP codes from an implementation nobody here wrote.
// Tests may unwrap: a panic with the error is exactly what a failing test should do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod addresses;
mod admin_api;
mod assistance;
mod audit;
mod authenticators;
mod authz;
mod bad_input;
mod cli;
mod helpers;
mod instances;
mod lockout;
mod openapi;
mod pages;
mod passkeys;
mod people;
mod permission_matrix;
mod recovery;
mod security_questions;
mod sessions;
mod signin;
mod smtp_sink;
mod standards;
mod store_conformance;
mod team;
mod upgrade;
