//! The admin console. Every handler takes an [`Admin`], which exists only for a signed-in session whose
//! account has a second factor; what the admin may do is then asked of `policy::permissions` through
//! [`Admin::require`] — the one check that the API and CLI use too.

mod requests;

use super::session::{Active, MaybeSession, Stages};
use super::{AppState, PageError};
use crate::audit::Actor;
use crate::domain::{Account, Grant};
use crate::policy::permissions::{Permission, allows};
use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console", get(|| async { Redirect::to("/console/requests") }))
        .route("/console/requests", get(requests::requests_get))
        .route("/console/requests/{reference}", get(requests::request_get))
        .route("/console/requests/{reference}/close", post(requests::close_post))
}

pub struct Admin {
    pub account: Account,
    pub grant: Grant,
}

pub enum Refusal {
    SignIn(Redirect),
    Page(PageError),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::SignIn(r) => r.into_response(),
            Refusal::Page(p) => p.into_response(),
        }
    }
}

impl From<PageError> for Refusal {
    fn from(e: PageError) -> Self {
        Refusal::Page(e)
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let session = MaybeSession::from_request_parts(parts, state).await?;
        let session = session.at(<Active as Stages>::STAGES).map_err(Refusal::SignIn)?;
        let operator = state.signin.operator(session.account_id).await.map_err(PageError::from)?;
        if !operator.active {
            return Err(PageError::new(StatusCode::FORBIDDEN, "This account is disabled.").into());
        }
        if !operator.has_mfa {
            return Err(PageError::new(
                StatusCode::FORBIDDEN,
                "The console needs two-step verification: set up an authenticator app first.",
            )
            .into());
        }
        let (account, grant) = (operator.account, operator.grant);
        Ok(Self { account, grant })
    }
}

impl Admin {
    /// Refuse with 403 (and a log line: failed authorisations are security events) unless allowed.
    pub fn require(&self, permission: Permission, state: &AppState) -> Result<(), PageError> {
        if allows(&self.grant, permission, &state.settings().permissions) {
            Ok(())
        } else {
            tracing::warn!(account = self.account.id, ?permission, "authorisation refused");
            Err(PageError::new(StatusCode::FORBIDDEN, "You do not have permission to see this page."))
        }
    }

    pub fn actor(&self) -> Actor {
        Actor::Account { account_id: self.account.id, username: self.account.username.clone() }
    }
}
