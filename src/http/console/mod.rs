//! The admin console. Every handler takes an [`Admin`] (a signed-in session) and asks
//! [`Admin::authorize`] for the proof of what it is about to do: the core's `Authority::authorize`, the one
//! function that the API and CLI use too (actor active with a second factor, permission, tier, not themself).

mod assist;
mod audit_log;
mod people;
mod requests;
mod tickets;
mod tokens;

use super::session::{Active, MaybeSession, Stages};
use super::{AppState, PageError};
use crate::authz::{Action, AuthzError, Principal, Proof};
use crate::domain::{AccountId, PersonId};
use crate::policy::authz::Denial;
use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console", get(|| async { Redirect::to("/console/requests") }))
        .route("/console/people", get(people::people_get))
        .route("/console/people/{id}", get(people::person_get))
        .route("/console/people/{id}/attestation", post(people::attestation_post))
        .route("/console/assist", get(assist::assist_get))
        .route("/console/people/{id}/actions/{action}", post(assist::action_post))
        .route("/console/approvals", get(assist::approvals_get))
        .route("/console/approvals/{id}/{decision}", post(assist::decision_post))
        .route("/console/audit", get(audit_log::audit_get))
        .route("/console/requests", get(requests::requests_get))
        .route("/console/requests/{reference}", get(requests::request_get))
        .route("/console/requests/{reference}/close", post(requests::close_post))
        .route("/console/tickets", get(tickets::tickets_get))
        .route("/console/tickets/{reference}", get(tickets::ticket_get))
        .route("/console/tickets/{reference}/take", post(tickets::take_post))
        .route("/console/tickets/{reference}/note", post(tickets::note_post))
        .route("/console/tokens", get(tokens::tokens_get).post(tokens::tokens_post))
        .route("/console/tokens/{id}/revoke", post(tokens::revoke_post))
}

/// One parameter of a page's query string, `""` when absent (a malformed encoding is read leniently: a filter
/// that cannot be read is simply no filter).
fn query_param(query: &str, name: &str) -> String {
    form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned()).unwrap_or_default()
}

/// A signed-in account in the console. Having one decides nothing: every handler asks
/// [`Admin::authorize`] for the proof its service method takes.
pub struct Admin {
    pub account_id: AccountId,
    /// The session it acts in (when it last proved a second factor: the step-up check).
    pub session: super::session::Session,
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
        Ok(Self { account_id: session.account_id, session })
    }
}

impl Admin {
    /// The proof that this admin may do `A` (to `subject`) now, from the one function that makes proofs;
    /// a refusal is a 403 page that says why.
    pub async fn authorize<A: Action>(
        &self,
        state: &AppState,
        subject: Option<PersonId>,
    ) -> Result<Proof<A>, PageError> {
        state.authority.authorize::<A>(Principal::Account(self.account_id), subject).await.map_err(|e| match e {
            AuthzError::Denied(Denial::NotPermitted) => {
                PageError::new(StatusCode::FORBIDDEN, "You do not have permission to do this.")
            }
            AuthzError::Denied(denial) => PageError::new(StatusCode::FORBIDDEN, denial.to_string()),
            AuthzError::Gone => PageError::not_found(),
            AuthzError::Store(e) => PageError::from(e),
        })
    }

    /// Would this admin be allowed `A` on `subject`? Only for showing what they may do; acting asks
    /// [`Admin::authorize`].
    pub async fn may<A: Action>(&self, state: &AppState, subject: Option<PersonId>) -> bool {
        state.authority.may::<A>(Principal::Account(self.account_id), subject).await
    }
}
