//! Lifeline: a self-hosted identity service for the moment a person cannot sign in.
//!
//! Layers, arrows pointing down: `http` and `cli` (fronts) → `signin`, `directory` (services) →
//! `policy`, `domain`, `totp` (pure) → `store`, `geo`, `crypto` (behind narrow interfaces).
// Tests may unwrap: a panic with the error is exactly what a failing test should do.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod app;
pub mod assistance;
pub mod audit;
pub mod cli;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod demo;
pub mod directory;
pub mod domain;
pub mod email;
pub mod geo;
pub mod http;
pub mod mail;
pub mod policy;
pub mod retention;
pub mod services;
pub mod signin;
pub mod store;
pub mod totp;
