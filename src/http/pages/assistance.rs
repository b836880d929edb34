use crate::assistance::SubmitError;
use crate::domain::ProblemType;
use crate::http::middleware::CsrfToken;
use crate::http::session::Client;
use crate::http::templates::{AssistancePage, AssistanceReceivedPage, AssistanceStatusPage, render};
use crate::http::{AppState, PageError, error::ValidForm};
use axum::extract::{Extension, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

pub fn problems() -> Vec<(&'static str, &'static str)> {
    ProblemType::ALL.iter().map(|p| (p.as_str(), p.label())).collect()
}

fn page(state: &AppState, csrf: &str, form: &AssistanceForm, error: Option<&str>) -> Response {
    let settings = &state.settings();
    render(&AssistancePage {
        title: "Can't sign in?",
        csrf,
        email: &form.email,
        selected: &form.r#type,
        description: &form.description,
        problems: problems(),
        contacts: &settings.help.contacts,
        qa_enabled: settings.policy.qa_enabled,
        error,
    })
}

#[derive(Deserialize, Default)]
pub struct AssistanceForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    r#type: String,
    #[serde(default)]
    description: String,
}

pub async fn assistance_get(State(state): State<AppState>, Extension(csrf): Extension<CsrfToken>) -> Response {
    page(&state, &csrf.0, &AssistanceForm::default(), None)
}

/// The answer is the same page for every address (only the reference differs), after the same time.
pub async fn assistance_post(
    State(state): State<AppState>,
    Client(ctx): Client,
    Extension(csrf): Extension<CsrfToken>,
    ValidForm(form): ValidForm<AssistanceForm>,
) -> Result<Response, PageError> {
    match state.assistance.submit(&form.email, &form.r#type, &form.description, &ctx).await {
        Ok(reference) => {
            Ok(render(&AssistanceReceivedPage { title: "Request received", reference: reference.as_str() }))
        }
        Err(SubmitError::Invalid(e)) => {
            let mut response = page(&state, &csrf.0, &form, Some(&e.to_string()));
            *response.status_mut() = StatusCode::BAD_REQUEST;
            Ok(response)
        }
        Err(SubmitError::RateLimited { retry_after }) => {
            let mut response = PageError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!("Too many requests. Please wait {} minute(s) and try again.", retry_after.div_ceil(60)),
            )
            .into_response();
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            Ok(response)
        }
        Err(SubmitError::Store(e)) => Err(e.into()),
    }
}

#[derive(Deserialize, Default)]
pub struct StatusQuery {
    #[serde(default)]
    reference: String,
}

/// Where a person with a reference sees how far their request has come (also when it was added to an
/// earlier one). The same page for an unknown and a malformed reference.
pub async fn status_get(
    State(state): State<AppState>,
    Query(query): Query<StatusQuery>,
) -> Result<Response, PageError> {
    let typed = query.reference.trim();
    let page = |found: Option<(&str, &str)>, error: Option<&str>| {
        render(&AssistanceStatusPage { title: "Your request", reference: typed, found, error })
    };
    if typed.is_empty() {
        return Ok(page(None, None));
    }
    let unknown = "No request has this reference. Check it and try again.";
    let Ok(reference) = crate::domain::ReferenceId::parse(typed) else { return Ok(page(None, Some(unknown))) };
    Ok(match state.assistance.state(&reference).await? {
        Some(s) => {
            let label = match s.state {
                crate::assistance::PublicState::Received => "received",
                crate::assistance::PublicState::Open => "with the administrators",
                crate::assistance::PublicState::Closed => "closed",
            };
            page(Some((label, s.state.explanation(s.joined))), None)
        }
        None => page(None, Some(unknown)),
    })
}
