//! Tickets over the API (issue 11): the engineers' queue, one ticket with its timeline, a note, and moving a
//! ticket on (take it, resolve it). The same service and proofs (`WorkTickets`) as the console's queue.

use super::AppState;
use super::api::{ApiError, ApiJson, ApiQuery};
use super::api_admin::{Caller, internal, invalid, not_found};
use super::api_types::{
    TicketDetail, TicketList, TicketNoteBody, TicketNoteRow, TicketRow, TicketStatusBody, TicketsQuery,
};
use crate::authz::WorkTickets;
use crate::store::TicketStatus;
use crate::team::TeamError;
use crate::team::tickets::Step;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(tickets_get))
        .routes(routes!(ticket_get))
        .routes(routes!(note_post))
        .routes(routes!(status_post))
}

fn team_error(e: TeamError) -> ApiError {
    match e {
        TeamError::Form(m) => invalid(m),
        TeamError::NotApplicable(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
        TeamError::NotFound => not_found(),
        e => internal(e),
    }
}

/// The engineers' queue, most recently changed first: one status, or every ticket not yet confirmed.
#[utoipa::path(get, path = "/api/v1/tickets", tag = "tickets", security(("token" = [])), params(TicketsQuery),
    responses((status = 200, description = "Tickets, most recently changed first", body = TicketList)))]
async fn tickets_get(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<TicketsQuery>,
) -> Result<Json<TicketList>, ApiError> {
    let status = match query.status.as_deref() {
        Some(s) => {
            Some(TicketStatus::parse(s).ok_or_else(|| invalid("status: open, in_progress, resolved or confirmed"))?)
        }
        None => None,
    };
    let proof = caller.authorize::<WorkTickets>(&state, None).await?;
    let tickets = state.team.queue(&proof, status).await.map_err(team_error)?;
    Ok(Json(TicketList { tickets: tickets.iter().map(TicketRow::from).collect() }))
}

async fn detail(state: &AppState, caller: &Caller, reference: &str) -> Result<Json<TicketDetail>, ApiError> {
    let proof = caller.authorize::<WorkTickets>(state, None).await?;
    let (ticket, notes) = state.team.ticket(&proof, reference).await.map_err(team_error)?;
    Ok(Json(TicketDetail {
        ticket: TicketRow::from(&ticket),
        notes: notes
            .into_iter()
            .map(|n| TicketNoteRow { at: n.at, author: n.author, status: n.status, body: n.body })
            .collect(),
    }))
}

/// One ticket with its timeline.
#[utoipa::path(get, path = "/api/v1/tickets/{reference}", tag = "tickets", security(("token" = [])),
    params(("reference" = String, Path, description = "The ticket's reference, `TK-XXXX-XXXX`")),
    responses((status = 200, description = "The ticket and its timeline", body = TicketDetail)))]
async fn ticket_get(
    State(state): State<AppState>,
    caller: Caller,
    Path(reference): Path<String>,
) -> Result<Json<TicketDetail>, ApiError> {
    detail(&state, &caller, &reference).await
}

async fn work(state: &AppState, caller: &Caller, reference: &str, step: Step) -> Result<Json<TicketDetail>, ApiError> {
    // Unknown tickets are 404 before anything else: a proof to read, then the one to act.
    let view = caller.authorize::<WorkTickets>(state, None).await?;
    state.team.ticket(&view, reference).await.map_err(team_error)?;
    let proof = caller.authorize::<WorkTickets>(state, None).await?;
    state.team.work(proof, reference, step).await.map_err(team_error)?;
    detail(state, caller, reference).await
}

/// Add a note to the timeline (the requester gets it by email).
#[utoipa::path(post, path = "/api/v1/tickets/{reference}/notes", tag = "tickets", security(("token" = [])),
    params(("reference" = String, Path, description = "The ticket's reference, `TK-XXXX-XXXX`")),
    request_body = TicketNoteBody,
    responses((status = 200, description = "The ticket with its new note", body = TicketDetail)))]
async fn note_post(
    State(state): State<AppState>,
    caller: Caller,
    Path(reference): Path<String>,
    ApiJson(body): ApiJson<TicketNoteBody>,
) -> Result<Json<TicketDetail>, ApiError> {
    work(&state, &caller, &reference, Step::Note(body.note)).await
}

/// Move the ticket on: `in_progress` takes it (assigned to the token's person), `resolved` resolves it with
/// `note`, and the requester gets the "everything works" link.
#[utoipa::path(post, path = "/api/v1/tickets/{reference}/status", tag = "tickets", security(("token" = [])),
    params(("reference" = String, Path, description = "The ticket's reference, `TK-XXXX-XXXX`")),
    request_body = TicketStatusBody,
    responses((status = 200, description = "The ticket, moved on", body = TicketDetail)))]
async fn status_post(
    State(state): State<AppState>,
    caller: Caller,
    Path(reference): Path<String>,
    ApiJson(body): ApiJson<TicketStatusBody>,
) -> Result<Json<TicketDetail>, ApiError> {
    let step = match body.status.as_str() {
        "in_progress" => Step::Take,
        "resolved" => Step::Resolve(body.note.unwrap_or_default()),
        _ => return Err(invalid("status: in_progress or resolved (confirmed is the requester's)")),
    };
    work(&state, &caller, &reference, step).await
}
