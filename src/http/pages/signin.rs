use crate::http::middleware::CsrfToken;
use crate::http::session::{self, AtStage, Client, Enrolling, MaybeSession, SecondFactor};
use crate::http::templates::{BackupCodesPage, EnrollMfaPage, MfaPage, SignInPage, SignOutPage, render};
use crate::http::{AppState, PageError, error::ValidForm};
use crate::signin::{PasswordOutcome, SecondFactorOutcome};
use axum::extract::{Extension, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

/// The one answer to every failed attempt: a wrong password, an unknown login, and an account that takes
/// no attempt now (locked, or too soon after a failure) must read the same, so it says what to do in each.
pub const INVALID: &str = "The username or password is incorrect, or your account may be locked after too many \
    attempts. Wait a few minutes and try again, or use \"Can't sign in?\" below.";
/// A second-factor step that cannot go on: the sign-in starts again.
pub const START_AGAIN: &str = "Your sign-in could not continue: your account may be locked after too many \
    attempts. Wait a few minutes and sign in again, or use \"Can't sign in?\" below.";
const DISABLED: &str = "This account is disabled. Contact your helpdesk.";

/// The sign-in page: the password form, and the passkey button (the page then loads the passkey script).
fn signin_page(state: &AppState, csrf: &str, login: &str, error: Option<&str>, status: StatusCode) -> Response {
    let passkeys = state.passkeys.available();
    let mut response = render(&SignInPage { title: "Sign in", csrf, login, error, notice: None, passkeys });
    *response.status_mut() = status;
    if passkeys { super::passkeys::with_script(response) } else { response }
}

/// Too many failed sign-ins from this client address: 429 with `Retry-After`.
fn throttled_page(state: &AppState, csrf: &str, login: &str, retry_after: u64) -> Response {
    let minutes = retry_after.div_ceil(60);
    let error = format!(
        "Too many failed sign-ins from your network. Try again in {minutes} minute{}, or use \"Can't sign in?\" below.",
        if minutes == 1 { "" } else { "s" }
    );
    let mut response = signin_page(state, csrf, login, Some(&error), StatusCode::TOO_MANY_REQUESTS);
    response.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from(retry_after));
    response
}

pub async fn signin_get(
    State(state): State<AppState>,
    MaybeSession(session): MaybeSession,
    Extension(csrf): Extension<CsrfToken>,
    RawQuery(query): RawQuery,
) -> Response {
    // `?m=again`: a sign-in that could not go on (the second step was refused) starts here again. Anything
    // else in the query is ignored.
    let again = form_urlencoded::parse(query.unwrap_or_default().as_bytes()).any(|(k, v)| k == "m" && v == "again");
    let error = again.then_some(START_AGAIN);
    match session {
        Some(s) => Redirect::to(session::stage_path(s.stage)).into_response(),
        None => signin_page(&state, &csrf.0, "", error, StatusCode::OK),
    }
}

#[derive(Deserialize)]
pub struct SignInForm {
    login: String,
    password: String,
}

pub async fn signin_post(
    State(state): State<AppState>,
    MaybeSession(old): MaybeSession,
    Client(ctx): Client,
    Extension(csrf): Extension<CsrfToken>,
    ValidForm(form): ValidForm<SignInForm>,
) -> Result<Response, PageError> {
    let login: String = form.login.trim().chars().take(254).collect();
    let outcome = state.signin.password(&login, &form.password, &ctx).await?;
    crate::http::metrics::sign_in(
        "password",
        match &outcome {
            PasswordOutcome::Invalid => "invalid",
            PasswordOutcome::Throttled { .. } => "throttled",
            PasswordOutcome::Disabled => "disabled",
            PasswordOutcome::Proceed { .. } => "accepted",
        },
    );
    match outcome {
        PasswordOutcome::Invalid => Ok(signin_page(&state, &csrf.0, &login, Some(INVALID), StatusCode::UNAUTHORIZED)),
        PasswordOutcome::Throttled { retry_after } => Ok(throttled_page(&state, &csrf.0, &login, retry_after)),
        PasswordOutcome::Disabled => Ok(signin_page(&state, &csrf.0, &login, Some(DISABLED), StatusCode::UNAUTHORIZED)),
        PasswordOutcome::Proceed { account, stage } => session::start(&state, old.as_ref(), account, stage).await,
    }
}

/// The second step: a code, or (for an account with a passkey) the passkey instead, which signs in on its own.
async fn mfa_page(
    state: &AppState,
    session: &session::Session,
    csrf: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let passkey_login = if state.passkeys.available() && !state.passkeys.list(session.account_id).await?.is_empty() {
        state.directory.account(session.account_id).await.map_err(PageError::internal)?.map(|a| a.username)
    } else {
        None
    };
    let script = passkey_login.is_some();
    let passkey_only =
        passkey_login.is_some() && state.signin.passkey_required(session.account_id).await? == Some(true);
    let page = MfaPage { title: "Two-step verification", csrf, error, passkey_login, passkey_only };
    let mut response = render(&page);
    *response.status_mut() = status;
    Ok(if script { super::passkeys::with_script(response) } else { response })
}

pub async fn mfa_get(
    State(state): State<AppState>,
    AtStage(session, _): AtStage<SecondFactor>,
    Extension(csrf): Extension<CsrfToken>,
) -> Result<Response, PageError> {
    mfa_page(&state, &session, &csrf.0, None, StatusCode::OK).await
}

#[derive(Deserialize)]
pub struct CodeForm {
    code: String,
}

pub async fn mfa_post(
    State(state): State<AppState>,
    AtStage(session, _): AtStage<SecondFactor>,
    Client(ctx): Client,
    Extension(csrf): Extension<CsrfToken>,
    ValidForm(form): ValidForm<CodeForm>,
) -> Result<Response, PageError> {
    let code: String = form.code.chars().take(64).collect();
    let outcome = state.signin.second_factor(session.account_id, &code, &ctx).await?;
    crate::http::metrics::sign_in(
        "second_factor",
        match &outcome {
            SecondFactorOutcome::Invalid => "invalid",
            SecondFactorOutcome::Refused => "refused",
            SecondFactorOutcome::Throttled { .. } | SecondFactorOutcome::TooSoon { .. } => "throttled",
            SecondFactorOutcome::PasskeyRequired => "passkey_required",
            SecondFactorOutcome::Proceed(_) => "accepted",
        },
    );
    match outcome {
        SecondFactorOutcome::Invalid => {
            mfa_page(&state, &session, &csrf.0, Some("That code is not valid."), StatusCode::UNAUTHORIZED).await
        }
        SecondFactorOutcome::Refused => {
            // A redirect, not a page: the sign-in form must carry a CSRF token made without the session that
            // this response ends.
            session::end(&state, Some(&session), Redirect::to("/signin?m=again").into_response()).await
        }
        SecondFactorOutcome::PasskeyRequired => {
            let error = "Your organisation requires administrators to sign in with their passkey: use it below.";
            mfa_page(&state, &session, &csrf.0, Some(error), StatusCode::UNAUTHORIZED).await
        }
        SecondFactorOutcome::Throttled { retry_after } => Ok(throttled_page(&state, &csrf.0, "", retry_after)),
        SecondFactorOutcome::TooSoon { retry_after } => {
            let error = format!("Too many wrong codes in a row: wait {retry_after} seconds, then try again.");
            let mut response = mfa_page(&state, &session, &csrf.0, Some(&error), StatusCode::TOO_MANY_REQUESTS).await?;
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from(retry_after));
            Ok(response)
        }
        SecondFactorOutcome::Proceed(stage) => {
            session::advance(&state, &session, stage, Redirect::to(session::stage_path(stage)).into_response()).await
        }
    }
}

pub async fn enroll_get(
    State(state): State<AppState>,
    AtStage(session, _): AtStage<Enrolling>,
    Extension(csrf): Extension<CsrfToken>,
) -> Result<Response, PageError> {
    enroll_page(&state, &session, &csrf.0, None).await
}

async fn enroll_page(
    state: &AppState,
    session: &session::Session,
    csrf: &str,
    error: Option<&str>,
) -> Result<Response, PageError> {
    let enrolment = state.signin.enrolment(&session.token, session.account_id).await?;
    let mut response = render(&EnrollMfaPage {
        title: "Set up two-step verification",
        csrf,
        qr_svg: &enrolment.qr_svg,
        uri: &enrolment.uri,
        secret: &enrolment.secret_base32,
        error,
    });
    if error.is_some() {
        *response.status_mut() = StatusCode::BAD_REQUEST;
    }
    Ok(response)
}

pub async fn enroll_post(
    State(state): State<AppState>,
    AtStage(session, _): AtStage<Enrolling>,
    Extension(csrf): Extension<CsrfToken>,
    ValidForm(form): ValidForm<CodeForm>,
) -> Result<Response, PageError> {
    match state.signin.confirm_enrolment(&session.token, session.account_id, &form.code).await? {
        None => {
            enroll_page(
                &state,
                &session,
                &csrf.0,
                Some("That code is not valid. Check the time on your phone and try the next code."),
            )
            .await
        }
        Some((codes, stage)) => {
            let page =
                render(&BackupCodesPage { title: "Backup codes", codes: &codes, next: session::stage_path(stage) });
            session::advance(&state, &session, stage, page).await
        }
    }
}

/// The "Sign out" link every signed-in page has: a page with the button (signing out is a POST, with CSRF).
pub async fn signout_get(MaybeSession(session): MaybeSession, Extension(csrf): Extension<CsrfToken>) -> Response {
    if session.is_none() {
        return Redirect::to("/signin").into_response();
    }
    render(&SignOutPage { title: "Sign out", csrf: &csrf.0 })
}

pub async fn signout_post(
    State(state): State<AppState>,
    MaybeSession(session): MaybeSession,
) -> Result<Response, PageError> {
    session::end(&state, session.as_ref(), Redirect::to("/signin").into_response()).await
}
