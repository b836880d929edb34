//! The passkey pages: signing in with one, the account's list (add, rename, remove), and adding one while a
//! second factor must be set up. These pages, and only these, load `/static/passkey.js`; each step's options
//! come from a same-origin form POST (CSRF-checked like any form) answered with JSON, and the browser's answer
//! goes back in an ordinary form, so without the script nothing happens that a page does not explain.

use crate::http::middleware::{CsrfToken, LoadsScript};
use crate::http::session::{self, Active, AddingPasskey, AtStage, Client, MaybeSession};
use crate::http::templates::{AddPasskeyPage, PasskeyRow, PasskeysPage, RemovePasskeyPage, SignInPage, render};
use crate::http::{AppState, PageError, error::ValidForm};
use crate::passkeys::{Binding, PasskeyError, policy};
use crate::store::SessionStage;
use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

/// A page that loads the script: its CSP allows that one same-origin file.
pub(crate) fn with_script(mut response: Response) -> Response {
    response.extensions_mut().insert(LoadsScript);
    response
}

/// The JSON answer of an options request: the ceremony's id and the browser's options, or `{"error": …}`.
fn options_answer(result: Result<crate::passkeys::Begun, PasskeyError>) -> Response {
    match result {
        Ok(begun) => Json(serde_json::json!({ "ceremony": begun.ceremony, "options": begun.options })).into_response(),
        Err(e) => {
            let error = PageError::from(e);
            let mut response = (error.status, Json(serde_json::json!({ "error": error.message }))).into_response();
            if let Some(seconds) = error.retry_after {
                response.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from(seconds));
            }
            response
        }
    }
}

const NEEDS_SCRIPT: &str = "Passkeys work through your browser's passkey support, which needs JavaScript: turn it on \
    for this site, or sign in another way.";

#[derive(Deserialize)]
pub struct BeginSignInForm {
    #[serde(default)]
    login: Option<String>,
}

pub async fn signin_options_post(
    State(state): State<AppState>,
    Client(ctx): Client,
    ValidForm(form): ValidForm<BeginSignInForm>,
) -> Response {
    let login: Option<String> = form.login.map(|l| l.chars().take(254).collect());
    options_answer(state.passkeys.begin_sign_in(login.as_deref(), &ctx).await)
}

#[derive(Deserialize)]
pub struct CeremonyForm {
    #[serde(default)]
    ceremony: String,
    #[serde(default)]
    credential: String,
    #[serde(default)]
    name: String,
}

fn signin_page(state: &AppState, csrf: &str, error: &str, status: StatusCode) -> Response {
    let mut response = with_script(render(&SignInPage {
        title: "Sign in",
        csrf,
        login: "",
        error: Some(error),
        notice: None,
        passkeys: state.passkeys.available(),
    }));
    *response.status_mut() = status;
    response
}

pub async fn signin_post(
    State(state): State<AppState>,
    MaybeSession(old): MaybeSession,
    Client(ctx): Client,
    Extension(csrf): Extension<CsrfToken>,
    ValidForm(form): ValidForm<CeremonyForm>,
) -> Result<Response, PageError> {
    if form.credential.is_empty() {
        return Ok(signin_page(&state, &csrf.0, NEEDS_SCRIPT, StatusCode::BAD_REQUEST));
    }
    match state.passkeys.finish_sign_in(&form.ceremony, &form.credential, &ctx).await {
        Ok((account, stage)) => session::start_with_second_factor(&state, old.as_ref(), account, stage).await,
        Err(e @ PasskeyError::Throttled { retry_after }) => {
            let mut response = signin_page(&state, &csrf.0, &e.to_string(), StatusCode::TOO_MANY_REQUESTS);
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from(retry_after));
            Ok(response)
        }
        Err(e @ (PasskeyError::Refused | PasskeyError::Malformed(_) | PasskeyError::Disabled)) => {
            Ok(signin_page(&state, &csrf.0, &e.to_string(), StatusCode::UNAUTHORIZED))
        }
        Err(e) => Err(e.into()),
    }
}

/// The account's passkeys, with the add form when the sign-in is fresh.
async fn passkeys_page(
    state: &AppState,
    session: &session::Session,
    csrf: &str,
    notice: Option<&str>,
    error: Option<&str>,
) -> Result<Response, PageError> {
    let passkeys = state.passkeys.list(session.account_id).await?;
    let rows: Vec<PasskeyRow> = passkeys
        .into_iter()
        .map(|p| PasskeyRow {
            id: p.id,
            name: p.name,
            created: crate::http::labels::minute(p.created_at),
            last_used: p.last_used_at.map(crate::http::labels::minute).unwrap_or_else(|| "never".into()),
        })
        .collect();
    let now = state.signin.now();
    let mut response = with_script(render(&PasskeysPage {
        title: "Your passkeys",
        csrf,
        passkeys: &rows,
        available: state.passkeys.available(),
        fresh: policy::fresh_sign_in(session.signed_in_at, session.second_factor_at, now),
        notice,
        error,
    }));
    if error.is_some() {
        *response.status_mut() = StatusCode::BAD_REQUEST;
    }
    Ok(response)
}

pub async fn passkeys_get(
    State(state): State<AppState>,
    AtStage(session, _): AtStage<Active>,
    Extension(csrf): Extension<CsrfToken>,
) -> Result<Response, PageError> {
    passkeys_page(&state, &session, &csrf.0, None, None).await
}

const NOT_FRESH: &str = "For your security, adding a passkey needs a sign-in within the last 10 minutes: sign out, \
    sign in again, then add it.";

pub async fn register_options_post(State(state): State<AppState>, AtStage(session, _): AtStage<Active>) -> Response {
    if !policy::fresh_sign_in(session.signed_in_at, session.second_factor_at, state.signin.now()) {
        return (StatusCode::FORBIDDEN, Json(serde_json::json!({ "error": NOT_FRESH }))).into_response();
    }
    options_answer(state.passkeys.begin_registration(session.account_id).await)
}

pub async fn add_post(
    State(state): State<AppState>,
    AtStage(session, _): AtStage<Active>,
    Extension(csrf): Extension<CsrfToken>,
    ValidForm(form): ValidForm<CeremonyForm>,
) -> Result<Response, PageError> {
    if form.credential.is_empty() {
        return passkeys_page(&state, &session, &csrf.0, None, Some(NEEDS_SCRIPT)).await;
    }
    if !policy::fresh_sign_in(session.signed_in_at, session.second_factor_at, state.signin.now()) {
        return passkeys_page(&state, &session, &csrf.0, None, Some(NOT_FRESH)).await;
    }
    let added = state
        .passkeys
        .finish_registration(session.account_id, &form.ceremony, &form.credential, &form.name, Binding::AccountPage)
        .await;
    match added {
        Ok(p) => {
            let notice = format!("The passkey “{}” was added: use it at your next sign-in.", p.name);
            passkeys_page(&state, &session, &csrf.0, Some(&notice), None).await
        }
        Err(e @ (PasskeyError::Refused | PasskeyError::Malformed(_) | PasskeyError::Form(_))) => {
            passkeys_page(&state, &session, &csrf.0, None, Some(&e.to_string())).await
        }
        Err(e @ (PasskeyError::Duplicate | PasskeyError::TooMany)) => {
            passkeys_page(&state, &session, &csrf.0, None, Some(&e.to_string())).await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct RenameForm {
    name: String,
}

pub async fn rename_post(
    State(state): State<AppState>,
    AtStage(session, _): AtStage<Active>,
    Extension(csrf): Extension<CsrfToken>,
    Path(id): Path<i64>,
    ValidForm(form): ValidForm<RenameForm>,
) -> Result<Response, PageError> {
    match state.passkeys.rename(session.account_id, id, &form.name).await {
        Ok(()) => passkeys_page(&state, &session, &csrf.0, Some("The passkey was renamed."), None).await,
        Err(e @ PasskeyError::Form(_)) => passkeys_page(&state, &session, &csrf.0, None, Some(&e.to_string())).await,
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct RemoveForm {
    #[serde(default)]
    confirm: Option<String>,
}

pub async fn remove_post(
    State(state): State<AppState>,
    AtStage(session, _): AtStage<Active>,
    Extension(csrf): Extension<CsrfToken>,
    Path(id): Path<i64>,
    ValidForm(form): ValidForm<RemoveForm>,
) -> Result<Response, PageError> {
    let passkeys = state.passkeys.list(session.account_id).await?;
    let Some(passkey) = passkeys.iter().find(|p| p.id == id) else { return Err(PageError::not_found()) };
    // The last passkey is asked about first, and goes only after a fresh sign-in: without it the person may
    // be left with a password alone, or nothing at all.
    if passkeys.len() == 1 {
        let fresh = policy::fresh_sign_in(session.signed_in_at, session.second_factor_at, state.signin.now());
        if !fresh || form.confirm.as_deref() != Some("yes") {
            let page =
                RemovePasskeyPage { title: "Remove your last passkey?", csrf: &csrf.0, id, name: &passkey.name, fresh };
            return Ok(render(&page));
        }
    }
    let removed = state.passkeys.remove(session.account_id, id).await?;
    let notice = format!("The passkey “{}” was removed.", removed.name);
    passkeys_page(&state, &session, &csrf.0, Some(&notice), None).await
}

/// Adding a passkey as the second factor a session must set up.
pub async fn enrol_get(
    State(state): State<AppState>,
    AtStage(session, _): AtStage<AddingPasskey>,
    Extension(csrf): Extension<CsrfToken>,
) -> Response {
    enrol_page(&state, &session, &csrf.0, None)
}

fn enrol_page(state: &AppState, session: &session::Session, csrf: &str, error: Option<&str>) -> Response {
    let mut response = with_script(render(&AddPasskeyPage {
        title: "Add a passkey",
        csrf,
        available: state.passkeys.available(),
        can_use_app: session.stage == SessionStage::EnrollMfa,
        error,
    }));
    if error.is_some() {
        *response.status_mut() = StatusCode::BAD_REQUEST;
    }
    response
}

pub async fn enrol_options_post(
    State(state): State<AppState>,
    AtStage(session, _): AtStage<AddingPasskey>,
) -> Response {
    options_answer(state.passkeys.begin_registration(session.account_id).await)
}

pub async fn enrol_post(
    State(state): State<AppState>,
    AtStage(session, _): AtStage<AddingPasskey>,
    Extension(csrf): Extension<CsrfToken>,
    ValidForm(form): ValidForm<CeremonyForm>,
) -> Result<Response, PageError> {
    if form.credential.is_empty() {
        return Ok(enrol_page(&state, &session, &csrf.0, Some(NEEDS_SCRIPT)));
    }
    let added = state
        .passkeys
        .finish_registration(session.account_id, &form.ceremony, &form.credential, &form.name, Binding::Enrolment)
        .await;
    match added {
        Ok(_) => {
            let next = state.passkeys.stage_after_enrolment(session.account_id).await?;
            session::advance(&state, &session, next, Redirect::to(session::stage_path(next)).into_response()).await
        }
        Err(
            e @ (PasskeyError::Refused
            | PasskeyError::Malformed(_)
            | PasskeyError::Form(_)
            | PasskeyError::Duplicate
            | PasskeyError::TooMany),
        ) => Ok(enrol_page(&state, &session, &csrf.0, Some(&e.to_string()))),
        Err(e) => Err(e.into()),
    }
}

pub async fn script() -> impl IntoResponse {
    (
        [
            (axum::http::header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (axum::http::header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../../static/passkey.js"),
    )
}
