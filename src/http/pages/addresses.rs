//! The person's notification addresses (`/account/addresses`): add a second one, confirm it with the code sent to
//! it, replace or remove it. The rules (ten-minute sign-in, one code a minute, tries) are the core's.

use crate::addresses::AddressError;
use crate::http::middleware::CsrfToken;
use crate::http::session::{Active, AtStage};
use crate::http::templates::{AddressesPage, render};
use crate::http::{AppState, PageError, error::ValidForm};
use crate::signin::LiveSession;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

async fn page(
    state: &AppState,
    session: &LiveSession,
    csrf: &str,
    notice: Option<&str>,
    error: Option<&str>,
) -> Result<Response, PageError> {
    let overview = state.signin.account_overview(session.account_id).await?;
    let second = state
        .addresses
        .current(session.account_id)
        .await
        .map_err(PageError::internal)?
        .map(|a| (a.address, a.confirmed_at.is_some()));
    let mut response = render(&AddressesPage {
        title: "Notification addresses",
        csrf,
        primary: overview.person.email.as_str(),
        second,
        fresh: crate::signin::fresh_for_binding(session, state.signin.now()),
        notice,
        error,
    });
    if error.is_some() {
        *response.status_mut() = StatusCode::BAD_REQUEST;
    }
    Ok(response)
}

/// What the person did wrong (the page again with the message), or a failure of ours.
async fn answer(
    state: &AppState,
    session: &LiveSession,
    csrf: &str,
    result: Result<(), AddressError>,
    done: &str,
) -> Result<Response, PageError> {
    match result {
        Ok(()) => page(state, session, csrf, Some(done), None).await,
        Err(e @ (AddressError::Store(_) | AddressError::Unexpected(_))) => Err(PageError::internal(e)),
        Err(e) => page(state, session, csrf, None, Some(&e.to_string())).await,
    }
}

pub async fn addresses_get(
    State(state): State<AppState>,
    AtStage(session, _): AtStage<Active>,
    Extension(csrf): Extension<CsrfToken>,
) -> Result<Response, PageError> {
    page(&state, &session, &csrf.0, None, None).await
}

#[derive(Deserialize)]
pub struct AddForm {
    address: String,
}

pub async fn add_post(
    State(state): State<AppState>,
    AtStage(session, _): AtStage<Active>,
    Extension(csrf): Extension<CsrfToken>,
    ValidForm(form): ValidForm<AddForm>,
) -> Result<Response, PageError> {
    let result = state.addresses.add(&session, &form.address).await;
    let done = "We sent a code to that address: type it below to start using it.";
    answer(&state, &session, &csrf.0, result, done).await
}

#[derive(Deserialize)]
pub struct ConfirmForm {
    code: String,
}

pub async fn confirm_post(
    State(state): State<AppState>,
    AtStage(session, _): AtStage<Active>,
    Extension(csrf): Extension<CsrfToken>,
    ValidForm(form): ValidForm<ConfirmForm>,
) -> Result<Response, PageError> {
    let result = state.addresses.confirm(session.account_id, &form.code).await;
    answer(&state, &session, &csrf.0, result, "Your second address is confirmed: it hears of every change now.").await
}

pub async fn remove_post(
    State(state): State<AppState>,
    AtStage(session, _): AtStage<Active>,
    Extension(csrf): Extension<CsrfToken>,
) -> Result<Response, PageError> {
    let result = state.addresses.remove(&session).await;
    answer(&state, &session, &csrf.0, result, "Your second address was removed.").await
}
