use crate::domain::AccountSource;
use crate::http::middleware::CsrfToken;
use crate::http::session::{self, Active, AtStage, ChoosingPassword, Client};
use crate::http::templates::{
    BackupCodesPage, ChangePasswordPage, ConfirmBackupCodesPage, EventRow, HomePage, SecurityQuestionsPage, render,
};
use crate::http::{AppState, PageError, error::ValidForm};
use crate::signin::{QaResetError, SignInError};
use crate::store::SessionStage;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use std::collections::HashMap;

use crate::http::labels::minute as when;

pub async fn home_get(
    State(state): State<AppState>,
    AtStage(session, _): AtStage<Active>,
    Extension(csrf): Extension<CsrfToken>,
) -> Result<Response, PageError> {
    let overview = state.signin.account_overview(session.account_id).await?;
    let events = overview
        .recent_sign_ins
        .into_iter()
        .map(|e| EventRow {
            at: when(e.at),
            place: crate::geo::Location { city: e.city, country: e.country, asn: e.asn, network: String::new() }
                .place(),
            outcome: crate::http::labels::outcome(&e.outcome),
            method: crate::http::labels::method(&e.method),
            ip: e.client_ip,
            network: e.network,
        })
        .collect();
    let (person, account) = (&overview.person, &overview.account);
    let page = HomePage {
        title: "Your account",
        csrf: &csrf.0,
        display_name: &person.display_name,
        username: &account.username,
        email: person.email.as_str(),
        source: account.source.as_str(),
        totp_enabled: overview.totp_enabled,
        backup_codes_left: overview.backup_codes_left,
        passkeys: state.passkeys.list(session.account_id).await?.len(),
        qa_enabled: state.settings().policy.qa_enabled,
        qa_enrolled: overview.qa_enrolled,
        can_change_password: account.source == AccountSource::Local,
        can_view_requests: overview.can_view_requests,
        can_manage_team: state
            .authority
            .may::<crate::authz::ViewTeam>(crate::authz::Principal::Account(session.account_id), None)
            .await,
        notice: None,
        events,
    };
    Ok(render(&page))
}

pub(super) fn min_length(state: &AppState) -> usize {
    if state.settings().policy.mfa_required { 8 } else { 15 }
}

pub async fn password_get(
    State(state): State<AppState>,
    AtStage(session, _): AtStage<ChoosingPassword>,
    Extension(csrf): Extension<CsrfToken>,
) -> Response {
    render(&ChangePasswordPage {
        title: "Choose a new password",
        csrf: &csrf.0,
        required: session.stage == SessionStage::ChangePassword,
        min_length: min_length(&state),
        error: None,
    })
}

#[derive(Deserialize)]
pub struct PasswordForm {
    /// Asked for on a change from the account page; a required change follows the password just given.
    #[serde(default)]
    current_password: Option<String>,
    new_password: String,
    confirm_password: String,
}

pub async fn password_post(
    State(state): State<AppState>,
    AtStage(session, _): AtStage<ChoosingPassword>,
    Client(ctx): Client,
    Extension(csrf): Extension<CsrfToken>,
    ValidForm(form): ValidForm<PasswordForm>,
) -> Result<Response, PageError> {
    let required = session.stage == SessionStage::ChangePassword;
    // A voluntary change must give the current password; an absent field is an empty (wrong) one.
    let current = if required { None } else { Some(form.current_password.as_deref().unwrap_or_default()) };
    let changed = state
        .signin
        .change_password(&session.token, session.account_id, current, &form.new_password, &form.confirm_password, &ctx)
        .await;
    let error = match changed {
        Ok(()) => {
            // The session moves on under a new token either way: the password changed under it.
            let next = Redirect::to("/").into_response();
            return session::advance(&state, &session, SessionStage::Active, next).await;
        }
        Err(SignInError::Password(rejection)) => rejection.to_string(),
        Err(e @ SignInError::CurrentPassword) => e.to_string(),
        Err(e @ SignInError::NotLocal) => return Err(PageError::bad_request(e.to_string())),
        Err(e) => return Err(e.into()),
    };
    let mut response = render(&ChangePasswordPage {
        title: "Choose a new password",
        csrf: &csrf.0,
        required,
        min_length: min_length(&state),
        error: Some(&error),
    });
    *response.status_mut() = StatusCode::BAD_REQUEST;
    Ok(response)
}

/// "Make new backup codes" asks first: the codes the person has stop working at once.
pub async fn backup_codes_get(_: AtStage<Active>, Extension(csrf): Extension<CsrfToken>) -> Response {
    render(&ConfirmBackupCodesPage { title: "Make new backup codes", csrf: &csrf.0 })
}

#[derive(Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    confirm: Option<String>,
}

pub async fn backup_codes_post(
    State(state): State<AppState>,
    AtStage(session, _): AtStage<Active>,
    Extension(csrf): Extension<CsrfToken>,
    ValidForm(form): ValidForm<ConfirmForm>,
) -> Result<Response, PageError> {
    if form.confirm.as_deref() != Some("yes") {
        return Ok(render(&ConfirmBackupCodesPage { title: "Make new backup codes", csrf: &csrf.0 }));
    }
    let codes = state.signin.regenerate_backup_codes(&session).await?;
    Ok(render(&BackupCodesPage { title: "Backup codes", codes: &codes, next: "/" }))
}

pub async fn security_questions_get(
    State(state): State<AppState>,
    _: AtStage<Active>,
    Extension(csrf): Extension<CsrfToken>,
) -> Result<Response, PageError> {
    if !state.settings().policy.qa_enabled {
        return Err(PageError::not_found());
    }
    Ok(render(&SecurityQuestionsPage {
        title: "Security questions",
        csrf: &csrf.0,
        questions: &state.settings().policy.qa_questions,
        error: None,
    }))
}

/// The numbered `answerN` fields of a form, one per configured question, each at most 200 characters.
pub fn answers(form: &HashMap<String, String>, questions: usize) -> Vec<String> {
    (0..questions)
        .map(|i| form.get(&format!("answer{i}")).map(|a| a.chars().take(200).collect()).unwrap_or_default())
        .collect()
}

pub async fn security_questions_post(
    State(state): State<AppState>,
    AtStage(session, _): AtStage<Active>,
    Extension(csrf): Extension<CsrfToken>,
    ValidForm(form): ValidForm<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let questions = &state.settings().policy.qa_questions;
    if !state.settings().policy.qa_enabled {
        return Err(PageError::not_found());
    }
    let fresh = crate::signin::fresh_for_binding(&session, state.signin.now());
    match state.signin.enrol_security_questions(session.account_id, &answers(&form, questions.len()), fresh).await {
        Ok(()) => Ok(Redirect::to("/").into_response()),
        Err(e @ QaResetError::IncompleteAnswers) => {
            let mut response = render(&SecurityQuestionsPage {
                title: "Security questions",
                csrf: &csrf.0,
                questions,
                error: Some(&e.to_string()),
            });
            *response.status_mut() = StatusCode::BAD_REQUEST;
            Ok(response)
        }
        Err(QaResetError::Other(e)) => Err(e.into()),
        Err(e) => Err(PageError::internal(e)),
    }
}
