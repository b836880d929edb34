//! The engineers' ticket queue: managers' requests that need a person (a synchronized account's password)
//! and the resets managers did themselves, until their requester confirms. Take, note, resolve.

use super::{Admin, query_param};
use crate::authz::WorkTickets;
use crate::http::middleware::CsrfToken;
use crate::http::templates::{ConsoleTicketPage, ConsoleTicketsPage, TicketLine, render};
use crate::http::{AppState, PageError, error::ValidForm};
use crate::store::{Ticket, TicketStatus};
use crate::team::TeamError;
use crate::team::tickets::Step;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use std::collections::HashMap;

use crate::http::labels::minute as when;

fn line(t: &Ticket) -> TicketLine {
    TicketLine {
        reference: t.reference.clone(),
        kind: t.kind.as_str(),
        status: t.status.as_str(),
        summary: t.summary.clone(),
        assignee: t.assignee.clone().unwrap_or_default(),
        updated: when(t.updated_at),
    }
}

pub async fn tickets_get(
    State(state): State<AppState>,
    admin: Admin,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let proof = admin.authorize::<WorkTickets>(&state, None).await?;
    let status_text = query_param(&query.unwrap_or_default(), "status");
    let status = match status_text.trim() {
        "" => None,
        s => Some(TicketStatus::parse(s).ok_or_else(|| PageError::bad_request("That is not a ticket status."))?),
    };
    let tickets = state.team.queue(&proof, status).await?;
    Ok(render(&ConsoleTicketsPage {
        title: "Tickets",
        status: status.map_or("", TicketStatus::as_str),
        statuses: TicketStatus::ALL.iter().map(|s| s.as_str()).collect(),
        tickets: tickets.iter().map(line).collect(),
    }))
}

async fn ticket_page(
    state: &AppState,
    admin: &Admin,
    csrf: &CsrfToken,
    reference: &str,
    error: Option<(StatusCode, String, String)>,
) -> Result<Response, PageError> {
    let proof = admin.authorize::<WorkTickets>(state, None).await?;
    let (ticket, notes) = state.team.ticket(&proof, reference).await?;
    let name = async |id| -> Result<String, PageError> {
        Ok(match state.directory.person_by_id(id).await.map_err(PageError::internal)? {
            Some(p) => format!("{} ({})", p.display_name, p.email),
            None => format!("person {}", id.0),
        })
    };
    let (status, error, note) = match error {
        Some((status, e, note)) => (status, Some(e), note),
        None => (StatusCode::OK, None, String::new()),
    };
    let mut response = render(&ConsoleTicketPage {
        title: "Ticket",
        csrf: &csrf.0,
        requester: name(ticket.requester).await?,
        subject: name(ticket.subject).await?,
        subject_id: ticket.subject.0,
        notes: notes
            .into_iter()
            .map(|n| (when(n.at), n.author, n.status.map_or("", TicketStatus::as_str), n.body))
            .collect(),
        t: line(&ticket),
        error,
        note,
    });
    *response.status_mut() = status;
    Ok(response)
}

pub async fn ticket_get(
    State(state): State<AppState>,
    admin: Admin,
    Path(reference): Path<String>,
    Extension(csrf): Extension<CsrfToken>,
) -> Result<Response, PageError> {
    ticket_page(&state, &admin, &csrf, &reference, None).await
}

async fn work(
    state: &AppState,
    admin: &Admin,
    csrf: &CsrfToken,
    reference: &str,
    step: Step,
    note: String,
) -> Result<Response, PageError> {
    let proof = admin.authorize::<WorkTickets>(state, None).await?;
    match state.team.work(proof, reference, step).await {
        Ok(t) => Ok(Redirect::to(&format!("/console/tickets/{}", t.reference)).into_response()),
        Err(TeamError::Form(e)) => {
            ticket_page(state, admin, csrf, reference, Some((StatusCode::BAD_REQUEST, e, note))).await
        }
        Err(TeamError::NotApplicable(e)) => {
            ticket_page(state, admin, csrf, reference, Some((StatusCode::CONFLICT, e, note))).await
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn take_post(
    State(state): State<AppState>,
    admin: Admin,
    Path(reference): Path<String>,
    Extension(csrf): Extension<CsrfToken>,
) -> Result<Response, PageError> {
    work(&state, &admin, &csrf, &reference, Step::Take, String::new()).await
}

pub async fn note_post(
    State(state): State<AppState>,
    admin: Admin,
    Path(reference): Path<String>,
    Extension(csrf): Extension<CsrfToken>,
    ValidForm(form): ValidForm<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let note: String = form.get("note").map(String::as_str).unwrap_or_default().chars().take(4000).collect();
    let step = if form.get("resolve").map(String::as_str) == Some("yes") {
        Step::Resolve(note.clone())
    } else {
        Step::Note(note.clone())
    };
    work(&state, &admin, &csrf, &reference, step, note).await
}
