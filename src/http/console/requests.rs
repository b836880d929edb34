//! The assistance request queue: list (open first, filters), detail with the dossier, resolve / dismiss.

use super::Admin;
use crate::authz::{CloseRequest, Proof, ViewRequests};
use crate::domain::{ProblemType, ReferenceId, RequestStatus};
use crate::http::labels;
use crate::http::middleware::CsrfToken;
use crate::http::pages::problems;
use crate::http::templates::{ConsoleRequestPage, ConsoleRequestsPage, RequestRow, render};
use crate::http::{AppState, PageError, error::ValidForm};
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

const STATUSES: [(&str, &str); 4] =
    [("", "all"), ("open", "open"), ("resolved", "resolved"), ("dismissed", "dismissed")];

pub async fn requests_get(
    State(state): State<AppState>,
    admin: Admin,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let proof = admin.authorize::<ViewRequests>(&state, None).await?;
    let query = query.unwrap_or_default();
    let param = |name: &str| super::query_param(&query, name);
    // Unknown or malformed filter values are simply no filter.
    let wanted = param("status");
    let status = STATUSES.iter().map(|(v, _)| *v).find(|v| *v == wanted).unwrap_or("");
    let filter = RequestStatus::parse(status);
    let problem = ProblemType::parse(&param("type")).map(|p| p.as_str()).unwrap_or("");
    let rows = state
        .assistance
        .list(&proof, filter, problem)
        .await?
        .into_iter()
        .map(|r| RequestRow {
            at: crate::assistance::dossier::when(r.created_at),
            reference: r.reference,
            status: labels::request_status(r.status),
            problem: labels::problem(&r.problem),
            email: r.submitted_email,
            repeats: r.repeat_count,
        })
        .collect();
    Ok(render(&ConsoleRequestsPage {
        title: "Assistance requests",
        status,
        problem,
        statuses: STATUSES.to_vec(),
        problems: problems(),
        rows,
    }))
}

pub async fn request_get(
    State(state): State<AppState>,
    admin: Admin,
    Path(reference): Path<String>,
    Extension(csrf): Extension<CsrfToken>,
) -> Result<Response, PageError> {
    let proof = admin.authorize::<ViewRequests>(&state, None).await?;
    let reference = ReferenceId::parse(&reference).map_err(|_| PageError::not_found())?;
    request_page(&state, &proof, &reference, &csrf.0, None).await
}

/// What the admin typed into the close form, to show again with the error.
struct CloseAttempt<'a> {
    error: &'a str,
    decision: &'a str,
    note: &'a str,
}

async fn request_page(
    state: &AppState,
    proof: &Proof<ViewRequests>,
    reference: &ReferenceId,
    csrf: &str,
    attempt: Option<CloseAttempt<'_>>,
) -> Result<Response, PageError> {
    let request = state.assistance.find(proof, reference).await?.ok_or_else(PageError::not_found)?;
    let dossier = request.dossier.as_deref().and_then(|d| serde_json::from_str(d).ok());
    let (joined_to, submissions) = state.assistance.related(proof, &request).await?;
    let closed = request.closed_at.map(|at| {
        format!(
            "{} by {} on {}: {}",
            labels::request_status(request.status),
            labels::actor(request.closed_by.as_deref().unwrap_or("?")),
            crate::assistance::dossier::when(at),
            request.close_note.as_deref().unwrap_or("")
        )
    });
    let status = labels::request_status(request.status);
    // The line manager's answers about this person (asked for this request, or with no request named).
    let attestations = match request.person_id {
        Some(person) => state
            .team
            .attestations_about(proof, person)
            .await?
            .into_iter()
            .filter(|a| a.reference.as_deref().is_none_or(|r| r == request.reference))
            .map(|a| {
                let by = a.answered_by.as_deref().map(labels::actor).unwrap_or_default();
                let at = a.answered_at.map(crate::assistance::dossier::when).unwrap_or_default();
                let note = a.answer_note.unwrap_or_default();
                (a.status, by, at, note)
            })
            .collect(),
        None => Vec::new(),
    };
    let mut response = render(&ConsoleRequestPage {
        attestations,
        title: "Assistance request",
        csrf,
        reference: &request.reference,
        status: &status,
        repeats: request.repeat_count,
        open: request.status == RequestStatus::Open,
        closed,
        dossier,
        notified: match request.notified.as_deref().filter(|n| !n.is_empty()) {
            Some(who) => who,
            None if request.status == RequestStatus::Joined => {
                "nobody: a repeat from where the request came from before"
            }
            None => "nobody yet",
        },
        joined_to: joined_to.map(|t| (t.reference, labels::request_status(t.status))),
        submissions,
        close_error: attempt.as_ref().map(|a| a.error),
        decision: attempt.as_ref().map(|a| a.decision).unwrap_or_default(),
        note: attempt.as_ref().map(|a| a.note).unwrap_or_default(),
        help_person: request.person_id.filter(|_| request.status == RequestStatus::Open).map(|p| p.0),
    });
    if attempt.is_some() {
        *response.status_mut() = StatusCode::BAD_REQUEST;
    }
    Ok(response)
}

#[derive(Deserialize)]
pub struct CloseForm {
    decision: String,
    note: String,
}

pub async fn close_post(
    State(state): State<AppState>,
    admin: Admin,
    Path(reference): Path<String>,
    Extension(csrf): Extension<CsrfToken>,
    ValidForm(form): ValidForm<CloseForm>,
) -> Result<Response, PageError> {
    let proof = admin.authorize::<CloseRequest>(&state, None).await?;
    let view = admin.authorize::<ViewRequests>(&state, None).await?;
    let reference = ReferenceId::parse(&reference).map_err(|_| PageError::not_found())?;
    // A mistake in the form comes back on the request's page, with what was typed, to correct.
    let again = |error| CloseAttempt { error, decision: &form.decision, note: &form.note };
    let resolve = match form.decision.as_str() {
        "resolve" => true,
        "dismiss" => false,
        _ => {
            return request_page(&state, &view, &reference, &csrf.0, Some(again("Choose resolved or dismissed.")))
                .await;
        }
    };
    let note = form.note.trim();
    if note.is_empty() || note.chars().count() > 2000 {
        let error = "Write a note of 1 to 2000 characters: what you verified and what you did.";
        return request_page(&state, &view, &reference, &csrf.0, Some(again(error))).await;
    }
    if !state.assistance.close(proof, reference.as_str(), resolve, note).await? {
        return Err(PageError::new(
            StatusCode::CONFLICT,
            "This request is not open (someone may have closed it already).",
        ));
    }
    Ok(Redirect::to(&format!("/console/requests/{reference}")).into_response())
}
