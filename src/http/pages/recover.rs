//! The person's side of a recovery action: the set-new-password link (access email, magic link), the public
//! recovery page (email + recovery code), signing in with a one-time password or a temporary access pass,
//! the device authorization after an MFA reset, and "this wasn't me". A GET never uses a secret up (mail
//! scanners fetch links); only the form's POST does.

use super::account::min_length;
use crate::http::middleware::CsrfToken;
use crate::http::session::{self, AtStage, AuthorizingDevice, Client, MaybeSession, Recovering};
use crate::http::templates::{
    DevicePage, MessagePage, NotMePage, RecoverOptionsPage, RecoverPage, ResetPasswordPage, SignInCodePage, render,
};
use crate::http::{AppState, PageError, error::ValidForm};
use crate::recovery::redeem::{LinkState, RedeemError};
use crate::store::SessionStage;
use axum::extract::{Extension, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

fn message(status: StatusCode, title: &str, text: &str, link: Option<(&str, &str)>) -> Response {
    let mut response = render(&MessagePage { title, message: text, error: status.is_client_error(), link });
    *response.status_mut() = status;
    response
}

fn token_of(query: Option<String>) -> String {
    let query = query.unwrap_or_default();
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.chars().take(64).collect())
        .unwrap_or_default()
}

const LINK_INVALID: &str = "This link is not valid any more: it may have expired or been replaced by a newer one. \
    Ask your helpdesk for a new one.";

fn used(at: i64) -> String {
    format!("This link was used on {} and works only once.", crate::assistance::dossier::when(at))
}

pub async fn reset_password_get(
    State(state): State<AppState>,
    Extension(csrf): Extension<CsrfToken>,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let token = token_of(query);
    Ok(match state.recovery.password_link(&token).await.map_err(PageError::internal)? {
        LinkState::Live { .. } => render(&ResetPasswordPage {
            title: "Set a new password",
            csrf: &csrf.0,
            token: &token,
            min_length: min_length(&state),
            error: None,
        }),
        LinkState::Used { at } => {
            message(StatusCode::GONE, "Link already used", &used(at), Some(("Sign in", "/signin")))
        }
        LinkState::Invalid => {
            message(StatusCode::NOT_FOUND, "Link not valid", LINK_INVALID, Some(("Ask for help", "/assistance")))
        }
    })
}

#[derive(Deserialize)]
pub struct NewPasswordForm {
    #[serde(default)]
    token: String,
    new_password: String,
    confirm_password: String,
}

pub async fn reset_password_post(
    State(state): State<AppState>,
    Client(ctx): Client,
    Extension(csrf): Extension<CsrfToken>,
    ValidForm(form): ValidForm<NewPasswordForm>,
) -> Result<Response, PageError> {
    let token: String = form.token.chars().take(64).collect();
    let page = |error: &str| {
        let mut response = render(&ResetPasswordPage {
            title: "Set a new password",
            csrf: &csrf.0,
            token: &token,
            min_length: min_length(&state),
            error: Some(error),
        });
        *response.status_mut() = StatusCode::BAD_REQUEST;
        response
    };
    if form.new_password != form.confirm_password {
        return Ok(page("The two passwords are not the same."));
    }
    match state.recovery.set_password_with_link(&token, &form.new_password, &ctx).await {
        Ok(_) => Ok(message(
            StatusCode::OK,
            "Password set",
            "Your new password is set and every session of yours has ended. Sign in with it now; your two-step \
             verification still applies.",
            Some(("Sign in", "/signin")),
        )),
        Err(RedeemError::Password(rejection)) => Ok(page(&rejection.to_string())),
        Err(RedeemError::Invalid) => {
            Ok(message(StatusCode::GONE, "Link not valid", LINK_INVALID, Some(("Sign in", "/signin"))))
        }
        Err(e @ RedeemError::NotLocal) => Err(PageError::bad_request(e.to_string())),
        Err(RedeemError::Busy) => Err(crate::signin::SignInError::Busy.into()),
        Err(RedeemError::Other(e)) => Err(e.into()),
    }
}

pub async fn recover_get(MaybeSession(session): MaybeSession, Extension(csrf): Extension<CsrfToken>) -> Response {
    if let Some(s) = session {
        return Redirect::to(session::stage_path(s.stage)).into_response();
    }
    render(&RecoverPage { title: "Use a recovery code", csrf: &csrf.0, email: "", error: None })
}

#[derive(Deserialize)]
pub struct RecoverForm {
    email: String,
    code: String,
}

const CODE_INVALID: &str = "That email address and recovery code do not go together, or the code has been used or \
    has expired. Check the email from your administrator, or ask for help.";

pub async fn recover_post(
    State(state): State<AppState>,
    MaybeSession(old): MaybeSession,
    Client(ctx): Client,
    Extension(csrf): Extension<CsrfToken>,
    ValidForm(form): ValidForm<RecoverForm>,
) -> Result<Response, PageError> {
    let email: String = form.email.trim().chars().take(254).collect();
    match state.recovery.redeem_recovery_code(&email, &form.code, &ctx).await? {
        Some(account) => session::start(&state, old.as_ref(), account, SessionStage::Recovering).await,
        None => {
            let mut response = render(&RecoverPage {
                title: "Use a recovery code",
                csrf: &csrf.0,
                email: &email,
                error: Some(CODE_INVALID),
            });
            *response.status_mut() = StatusCode::UNAUTHORIZED;
            Ok(response)
        }
    }
}

async fn options_page(
    state: &AppState,
    account: crate::domain::AccountId,
    csrf: &str,
    notice: Option<&str>,
    error: Option<&str>,
) -> Result<Response, PageError> {
    let local = state
        .directory
        .account(account)
        .await
        .map_err(PageError::internal)?
        .is_some_and(|a| a.source == crate::domain::AccountSource::Local);
    let mut response = render(&RecoverOptionsPage {
        title: "Recover your account",
        csrf,
        local,
        min_length: min_length(state),
        notice,
        error,
    });
    if error.is_some() {
        *response.status_mut() = StatusCode::BAD_REQUEST;
    }
    Ok(response)
}

pub async fn recover_options_get(
    State(state): State<AppState>,
    AtStage(session, _): AtStage<Recovering>,
    Extension(csrf): Extension<CsrfToken>,
) -> Result<Response, PageError> {
    options_page(&state, session.account_id, &csrf.0, None, None).await
}

pub async fn recover_password_post(
    State(state): State<AppState>,
    AtStage(session, _): AtStage<Recovering>,
    Extension(csrf): Extension<CsrfToken>,
    ValidForm(form): ValidForm<NewPasswordForm>,
) -> Result<Response, PageError> {
    if form.new_password != form.confirm_password {
        return options_page(&state, session.account_id, &csrf.0, None, Some("The two passwords are not the same."))
            .await;
    }
    match state.recovery.recovery_set_password(session.account_id, &session.token, &form.new_password).await {
        Ok(()) => {
            let notice =
                "Your new password is set. Remove your authenticator below if you lost it too, or go to sign in.";
            options_page(&state, session.account_id, &csrf.0, Some(notice), None).await
        }
        Err(RedeemError::Password(rejection)) => {
            options_page(&state, session.account_id, &csrf.0, None, Some(&rejection.to_string())).await
        }
        Err(e @ RedeemError::NotLocal) => Err(PageError::bad_request(e.to_string())),
        Err(RedeemError::Busy) => Err(crate::signin::SignInError::Busy.into()),
        Err(e) => Err(PageError::internal(e)),
    }
}

pub async fn recover_authenticator_post(
    State(state): State<AppState>,
    AtStage(session, _): AtStage<Recovering>,
    Extension(csrf): Extension<CsrfToken>,
) -> Result<Response, PageError> {
    match state.recovery.recovery_remove_authenticator(session.account_id).await {
        Ok(()) => {}
        Err(crate::recovery::RecoveryError::NotApplicable(nothing)) => {
            return options_page(&state, session.account_id, &csrf.0, None, Some(&nothing)).await;
        }
        Err(e) => return Err(e.into()),
    }
    // The removal ended every session, this one too: the enrolment the recovery code earned goes on in a
    // new one, right here, and nowhere else.
    session::start(&state, None, session.account_id, SessionStage::EnrollMfa).await
}

pub async fn signin_code_get(Extension(csrf): Extension<CsrfToken>) -> Response {
    render(&SignInCodePage { title: "Sign in with a code", csrf: &csrf.0, login: "", error: None })
}

#[derive(Deserialize)]
pub struct SignInCodeForm {
    login: String,
    code: String,
}

pub async fn signin_code_post(
    State(state): State<AppState>,
    MaybeSession(old): MaybeSession,
    Client(ctx): Client,
    Extension(csrf): Extension<CsrfToken>,
    ValidForm(form): ValidForm<SignInCodeForm>,
) -> Result<Response, PageError> {
    let login: String = form.login.trim().chars().take(254).collect();
    match state.recovery.sign_in_with_code(&login, &form.code, &ctx).await? {
        Some((account, stage)) => session::start(&state, old.as_ref(), account, stage).await,
        None => {
            let error = "That username and code do not go together, or the code has been used or has expired.";
            let mut response = render(&SignInCodePage {
                title: "Sign in with a code",
                csrf: &csrf.0,
                login: &login,
                error: Some(error),
            });
            *response.status_mut() = StatusCode::UNAUTHORIZED;
            Ok(response)
        }
    }
}

pub async fn device_get(_: AtStage<AuthorizingDevice>, Extension(csrf): Extension<CsrfToken>) -> Response {
    render(&DevicePage { title: "Device authorization", csrf: &csrf.0, error: None })
}

#[derive(Deserialize)]
pub struct CodeForm {
    code: String,
}

pub async fn device_post(
    State(state): State<AppState>,
    AtStage(session, _): AtStage<AuthorizingDevice>,
    Client(ctx): Client,
    Extension(csrf): Extension<CsrfToken>,
    ValidForm(form): ValidForm<CodeForm>,
) -> Result<Response, PageError> {
    if state.recovery.authorize_device(session.account_id, &form.code, &ctx).await? {
        let next = SessionStage::EnrollMfa;
        return session::advance(&state, &session, next, Redirect::to(session::stage_path(next)).into_response()).await;
    }
    let error = "That code is not right, or it has expired. Sign in again to get a new one (at most three are sent \
                 in ten minutes; until then the last one still works).";
    let mut response = render(&DevicePage { title: "Device authorization", csrf: &csrf.0, error: Some(error) });
    *response.status_mut() = StatusCode::UNAUTHORIZED;
    Ok(response)
}

pub async fn not_me_get(
    State(state): State<AppState>,
    Extension(csrf): Extension<CsrfToken>,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let token = token_of(query);
    Ok(match state.recovery.not_me_link(&token).await.map_err(PageError::internal)? {
        LinkState::Live { action } => render(&NotMePage {
            title: "This wasn't me",
            csrf: &csrf.0,
            token: &token,
            action: &action.unwrap_or_else(|| "an action".into()),
        }),
        LinkState::Used { at } => message(
            StatusCode::GONE,
            "Already reported",
            &format!("{} Your account was locked then; your administrators know.", used(at)),
            None,
        ),
        LinkState::Invalid => message(
            StatusCode::NOT_FOUND,
            "Link not valid",
            "This link is not valid: it may have expired. If something happened on your account that you did not ask for, contact your helpdesk now.",
            Some(("Who can help", "/help")),
        ),
    })
}

#[derive(Deserialize)]
pub struct TokenForm {
    token: String,
}

pub async fn not_me_post(
    State(state): State<AppState>,
    Client(ctx): Client,
    ValidForm(form): ValidForm<TokenForm>,
) -> Result<Response, PageError> {
    let token: String = form.token.chars().take(64).collect();
    if state.recovery.report_not_me(&token, &ctx).await.map_err(PageError::internal)? {
        Ok(message(
            StatusCode::OK,
            "Thank you: your account is locked",
            "Your account is locked, every session of yours has ended and every link or code handed out for it is \
             revoked. Your administrators have been told; they will contact you before unlocking it.",
            Some(("Who can help", "/help")),
        ))
    } else {
        Ok(message(
            StatusCode::GONE,
            "Link not valid",
            "This link has been used or has expired. If something happened on your account that you did not ask for, \
             contact your helpdesk now.",
            Some(("Who can help", "/help")),
        ))
    }
}
