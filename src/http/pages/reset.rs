use super::account::answers;
use crate::http::middleware::CsrfToken;
use crate::http::session::Client;
use crate::http::templates::{HelpPage, ResetPage, SignInPage, render};
use crate::http::{AppState, PageError, error::ValidForm};
use crate::signin::QaResetError;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::response::Response;
use std::collections::HashMap;

pub async fn help_get(State(state): State<AppState>) -> Response {
    let settings = &state.settings();
    render(&HelpPage {
        title: "Can't sign in?",
        contacts: &settings.help.contacts,
        qa_enabled: settings.policy.qa_enabled,
    })
}

fn reset_page(state: &AppState, csrf: &str, email: &str, answers: &[String], error: Option<&str>) -> Response {
    let policy = &state.settings().policy;
    render(&ResetPage {
        title: "Reset your password",
        csrf,
        enabled: policy.qa_enabled,
        questions: &policy.qa_questions,
        email,
        answers,
        error,
    })
}

pub async fn reset_get(State(state): State<AppState>, Extension(csrf): Extension<CsrfToken>) -> Response {
    reset_page(&state, &csrf.0, "", &[], None)
}

pub async fn reset_post(
    State(state): State<AppState>,
    Client(ctx): Client,
    Extension(csrf): Extension<CsrfToken>,
    ValidForm(form): ValidForm<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    let email: String = field("email").chars().take(254).collect();
    let given = answers(&form, state.settings().policy.qa_questions.len());
    let result = state
        .signin
        .reset_with_security_questions(&email, &given, field("new_password"), field("confirm_password"), &ctx)
        .await;
    let error = match result {
        Ok(()) => {
            return Ok(render(&SignInPage {
                title: "Sign in",
                csrf: &csrf.0,
                login: &email,
                error: None,
                notice: Some(
                    "Your password has been changed. Sign in with it now; your two-step verification still applies.",
                ),
                // This answer is a plain page (no script): the passkey button is on the sign-in page itself.
                passkeys: false,
            }));
        }
        Err(QaResetError::Disabled) => return Err(PageError::not_found()),
        Err(QaResetError::Other(e)) => return Err(e.into()),
        Err(e) => e.to_string(),
    };
    let mut response = reset_page(&state, &csrf.0, &email, &given, Some(&error));
    *response.status_mut() = StatusCode::BAD_REQUEST;
    Ok(response)
}
