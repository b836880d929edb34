//! The HTTP front: server-rendered pages that work without JavaScript, behind a strict CSP, with CSRF
//! protection on every form enforced by one middleware (no handler can forget it).

pub mod api;
pub(crate) mod api_admin;
mod api_tickets;
mod api_types;
mod console;
mod error;
mod labels;
pub mod metrics;
mod middleware;
pub mod openapi;
mod pages;
mod server;
mod session;
mod team;
mod templates;

pub use crate::config::HttpSettings;
pub use error::PageError;
pub use server::{raise_open_file_limit, serve};

use crate::assistance::Assistance;
use crate::authz::Authority;
use crate::directory::Directory;
use crate::signin::SignIn;
use crate::store::Readiness;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use std::sync::Arc;

/// Largest request body accepted anywhere (forms are tiny; this bounds memory and argon2 input).
pub const BODY_LIMIT: usize = 64 * 1024;

/// What the pages and the API use: the services, and readiness. Nothing here is a store or a key; the
/// settings and keys are read through the services' shared core.
#[derive(Clone)]
pub struct AppState {
    pub signin: Arc<SignIn>,
    /// The one maker of proofs of authorisation.
    pub authority: Arc<Authority>,
    pub directory: Arc<Directory>,
    pub assistance: Arc<Assistance>,
    pub recovery: Arc<crate::recovery::Recovery>,
    pub audit_log: Arc<crate::auditing::AuditLog>,
    pub tokens: Arc<crate::tokens::Tokens>,
    pub gauges: Arc<crate::gauges::Gauges>,
    pub team: Arc<crate::team::Team>,
    pub passkeys: Arc<crate::passkeys::Passkeys>,
    pub addresses: Arc<crate::addresses::Addresses>,
    pub readiness: Arc<dyn Readiness>,
}

impl AppState {
    pub fn settings(&self) -> &crate::config::Settings {
        &self.signin.core().settings
    }

    fn keys(&self) -> &crate::crypto::Keys {
        &self.signin.core().keys
    }

    fn https(&self) -> bool {
        self.settings().https()
    }

    /// `__Host-` cookies are bound to this exact origin and must be `Secure`; on plain http (local
    /// demo) the prefix cannot be used.
    fn cookie_name(&self, base: &str) -> String {
        if self.https() { format!("__Host-{base}") } else { base.to_owned() }
    }
}

/// A route that does not take this method: a problem document under `/api/`, the page elsewhere.
async fn method_not_allowed(uri: axum::http::Uri) -> axum::response::Response {
    use axum::response::IntoResponse;
    let status = axum::http::StatusCode::METHOD_NOT_ALLOWED;
    if uri.path().starts_with("/api/") {
        api::ApiError::new(status, "method_not_allowed", "This endpoint does not take this method.").into_response()
    } else {
        PageError::new(status, "This page does not take this method.").into_response()
    }
}

/// No such route: a problem document under `/api/`, the page elsewhere.
async fn not_found(uri: axum::http::Uri) -> axum::response::Response {
    use axum::response::IntoResponse;
    if uri.path().starts_with("/api/") {
        api::ApiError::new(axum::http::StatusCode::NOT_FOUND, "not_found", "There is no such endpoint.").into_response()
    } else {
        PageError::not_found().into_response()
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(pages::router())
        .merge(console::router())
        .merge(team::router())
        .merge(openapi::router())
        .method_not_allowed_fallback(method_not_allowed)
        .route_layer(axum::middleware::from_fn(middleware::matched_route))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), middleware::csrf_guard))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        // A panic in a handler is a bug: that one request gets the 500 page (logged, with its request id and
        // the security headers), and the connection and the server live on.
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            axum::response::IntoResponse::into_response(PageError::internal("a handler panicked"))
        }))
        .layer(axum::middleware::from_fn_with_state(state.clone(), middleware::security_headers))
        .layer(axum::middleware::from_fn(middleware::request_id))
        .with_state(state)
}
