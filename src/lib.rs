//! Lifeline: a self-hosted identity service for the moment a person cannot sign in.
//!
//! Layers, arrows pointing down: `http` and `cli` (fronts) → `signin`, `directory` (services) →
//! `policy`, `domain`, `totp` (pure) → `store`, `geo`, `crypto` (behind narrow interfaces).

pub mod app;
pub mod assistance;
pub mod audit;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod demo;
pub mod directory;
pub mod domain;
pub mod geo;
pub mod http;
pub mod mail;
pub mod policy;
pub mod retention;
pub mod signin;
pub mod store;
pub mod totp;
