//! One's own API tokens (issue 10): make one (shown once), see them, revoke one. The same service as
//! `lifeline token`, under the console's proof (`ManageOwnTokens`); an expert token asks for the step-up code
//! an expert action would.

use super::Admin;
use crate::authz::ManageOwnTokens;
use crate::http::middleware::CsrfToken;
use crate::http::session::Client;
use crate::http::templates::{ConsoleTokensPage, TokenLine, render};
use crate::http::{AppState, PageError, error::ValidForm};
use crate::tokens::TokenError;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use std::collections::HashMap;

use crate::http::labels::minute as when;

/// The lifetimes offered, none longer than `api.token_max_days`.
fn lifetimes(max_days: u32) -> Vec<(u32, String)> {
    let mut out: Vec<(u32, String)> = [1u32, 7, 30, 90, 365]
        .into_iter()
        .filter(|d| *d <= max_days)
        .map(|d| (d * 24 * 60, if d == 1 { "1 day".to_owned() } else { format!("{d} days") }))
        .collect();
    if out.last().is_none_or(|(m, _)| *m != max_days * 24 * 60) && max_days > 0 {
        out.push((max_days * 24 * 60, format!("{max_days} days")));
    }
    out
}

struct Outcome {
    issued: Option<String>,
    error: Option<String>,
    name: String,
}

async fn page(
    state: &AppState,
    admin: &Admin,
    csrf: &CsrfToken,
    outcome: Outcome,
    status: StatusCode,
) -> Result<Response, PageError> {
    let proof = admin.authorize::<ManageOwnTokens>(state, None).await?;
    let now = state.signin.now();
    let tokens = state
        .tokens
        .list_own(&proof)
        .await
        .map_err(PageError::internal)?
        .into_iter()
        .map(|t| TokenLine {
            id: t.id,
            name: t.name.clone(),
            expert: t.expert,
            created: when(t.created_at),
            expires: when(t.expires_at),
            last_used: t.last_used_at.map(when).unwrap_or_else(|| "never".into()),
            state: t.state(now),
            live: t.state(now) == "live",
        })
        .collect();
    let settings = state.settings();
    let mut response = render(&ConsoleTokensPage {
        title: "API tokens",
        csrf: &csrf.0,
        issued: outcome.issued,
        error: outcome.error,
        name: outcome.name,
        lifetimes: lifetimes(settings.api.token_max_days),
        expert_minutes: settings.api.expert_token_max_minutes,
        step_up_minutes: settings.recovery.step_up_minutes,
        tokens,
    });
    *response.status_mut() = status;
    Ok(response)
}

pub async fn tokens_get(
    State(state): State<AppState>,
    admin: Admin,
    Extension(csrf): Extension<CsrfToken>,
) -> Result<Response, PageError> {
    page(&state, &admin, &csrf, Outcome { issued: None, error: None, name: String::new() }, StatusCode::OK).await
}

pub async fn tokens_post(
    State(state): State<AppState>,
    admin: Admin,
    Client(ctx): Client,
    Extension(csrf): Extension<CsrfToken>,
    ValidForm(form): ValidForm<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let proof = admin.authorize::<ManageOwnTokens>(&state, None).await?;
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    let name: String = field("name").chars().take(200).collect();
    let expert = field("expert") == "yes";
    let refuse = |error: String, name: String| Outcome { issued: None, error: Some(error), name };
    let minutes = if expert {
        Some(state.settings().api.expert_token_max_minutes)
    } else {
        field("expires").trim().parse::<u32>().ok()
    };
    let Some(minutes) = minutes else {
        let outcome = refuse("Nothing was made: choose one of the lifetimes offered.".into(), name);
        return page(&state, &admin, &csrf, outcome, StatusCode::BAD_REQUEST).await;
    };
    // Only an expert token needs the code; a wrong code is refused (and counted) even so, as in the wizard.
    let second_factor_at = if expert { super::assist::step_up(&state, &admin, &form, &ctx).await? } else { None };
    let (outcome, status) = match state.tokens.create_own(proof, &name, minutes, expert, second_factor_at).await {
        Ok(issued) => (Outcome { issued: Some(issued.secret), error: None, name: String::new() }, StatusCode::CREATED),
        Err(e @ TokenError::StepUp) => (refuse(format!("Nothing was made: {e}."), name), StatusCode::FORBIDDEN),
        Err(TokenError::Invalid(why)) => (refuse(format!("Nothing was made: {why}."), name), StatusCode::BAD_REQUEST),
        Err(TokenError::NotFound) => return Err(PageError::not_found()),
        Err(e) => return Err(PageError::internal(e)),
    };
    page(&state, &admin, &csrf, outcome, status).await
}

pub async fn revoke_post(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let proof = admin.authorize::<ManageOwnTokens>(&state, None).await?;
    let id = id.parse::<i64>().map_err(|_| PageError::not_found())?;
    match state.tokens.revoke_own(proof, id).await {
        Ok(_) => Ok(Redirect::to("/console/tokens").into_response()),
        Err(TokenError::NotFound) => Err(PageError::not_found()),
        Err(e) => Err(PageError::internal(e)),
    }
}
