//! The HTTP front: server-rendered pages that work without JavaScript, behind a strict CSP, with CSRF
//! protection on every form enforced by one middleware (no handler can forget it).

pub mod api;
mod console;
mod error;
mod labels;
mod middleware;
mod pages;
mod server;
mod session;
mod templates;

pub use crate::config::HttpSettings;
pub use error::PageError;
pub use server::{raise_open_file_limit, serve};

use crate::signin::SignIn;
use crate::store::SqlStore;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use std::sync::Arc;

/// Largest request body accepted anywhere (forms are tiny; this bounds memory and argon2 input).
pub const BODY_LIMIT: usize = 64 * 1024;

#[derive(Clone)]
pub struct AppState {
    pub signin: Arc<SignIn>,
    pub db: Arc<SqlStore>,
    pub assistance: Arc<crate::assistance::Assistance>,
    pub mailer: Arc<dyn crate::mail::Mailer>,
}

impl AppState {
    fn https(&self) -> bool {
        self.signin.settings.https()
    }

    /// `__Host-` cookies are bound to this exact origin and must be `Secure`; on plain http (local
    /// demo) the prefix cannot be used.
    fn cookie_name(&self, base: &str) -> String {
        if self.https() { format!("__Host-{base}") } else { base.to_owned() }
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(pages::router())
        .merge(console::router())
        .merge(api::router())
        .fallback(|| async { PageError::not_found() })
        .layer(axum::middleware::from_fn_with_state(state.clone(), middleware::csrf_guard))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(state.clone(), middleware::security_headers))
        .layer(axum::middleware::from_fn(middleware::request_id))
        .with_state(state)
}
