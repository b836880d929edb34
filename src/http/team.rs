//! The manager portal (`/team`), the secure link that shows a temporary password once (`/secure-link`), and
//! the ticket confirmation link (`/tickets/confirm`). Links open a page with a button: a GET consumes nothing,
//! so mail scanners that fetch links do not burn them; the POST does, once.

use super::console::Admin;
use super::middleware::CsrfToken;
use super::session::Client;
use super::templates::{SecureLinkPage, TeamPage, TeamPersonPage, TeamRow, TicketConfirmPage, render};
use super::{AppState, PageError, error::ValidForm};
use crate::authz::{ManagerReset, ViewTeam};
use crate::domain::{AccountSource, PersonId};
use crate::team::{LinkState, ResetChoice};
use axum::Router;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use std::collections::HashMap;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/team", get(team_get))
        .route("/team/people/{id}", get(person_get))
        .route("/team/people/{id}/reset", post(reset_post))
        .route("/team/attestations", get(questions_get))
        .route("/team/attestations/{id}", get(question_get).post(question_post))
        .route("/secure-link", get(secure_link_get).post(secure_link_post))
        .route("/tickets/confirm", get(confirm_get).post(confirm_post))
}

fn param(query: &str, name: &str) -> String {
    form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned()).unwrap_or_default()
}

fn when(at: i64) -> String {
    format!("{} UTC", super::labels::minute(at))
}

async fn team_get(
    State(state): State<AppState>,
    admin: Admin,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let proof = admin.authorize::<ViewTeam>(&state, None).await?;
    let text: String = param(&query.unwrap_or_default(), "q").chars().take(100).collect();
    let searched = !text.trim().is_empty();
    let people = if searched { state.team.search(&proof, &text).await? } else { Vec::new() };
    let people = people
        .into_iter()
        .map(|hit| {
            let source = hit.accounts.first().map_or(AccountSource::Local, |a| a.account.source);
            TeamRow {
                id: hit.person.id.0,
                name: hit.person.display_name.clone(),
                email: hit.person.email.to_string(),
                department: hit.person.department.clone().unwrap_or_default(),
                source: source.as_str(),
                // For showing only: the reset itself asks for its own proof.
                may_reset: hit.grant == crate::domain::Grant::default() && source != AccountSource::Sso,
            }
        })
        .collect();
    Ok(render(&TeamPage { title: "Your team", query: &text, searched, people }))
}

fn person_id(id: &str) -> Result<PersonId, PageError> {
    id.parse::<i64>().ok().filter(|n| *n > 0).map(PersonId).ok_or_else(PageError::not_found)
}

async fn person_page(
    state: &AppState,
    admin: &Admin,
    id: PersonId,
    csrf: &CsrfToken,
    error: Option<&str>,
) -> Result<Response, PageError> {
    let proof = admin.authorize::<ManagerReset>(state, Some(id)).await?;
    let (person, account) = state.team.subject_of(&proof).await?;
    if account.source == AccountSource::Sso {
        return Err(PageError::new(
            StatusCode::CONFLICT,
            format!(
                "{} signs in through single sign-on: their password and MFA are not kept here. Contact the helpdesk \
                 instead.",
                person.display_name
            ),
        ));
    }
    let mut response = render(&TeamPersonPage {
        title: "Reset access",
        csrf: &csrf.0,
        id: id.0,
        name: &person.display_name,
        email: person.email.as_str(),
        username: account.username.as_str(),
        source: account.source.as_str(),
        synchronized: account.source == AccountSource::Synchronized,
        error,
    });
    if error.is_some() {
        *response.status_mut() = StatusCode::BAD_REQUEST;
    }
    Ok(response)
}

async fn person_get(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    Extension(csrf): Extension<CsrfToken>,
) -> Result<Response, PageError> {
    person_page(&state, &admin, person_id(&id)?, &csrf, None).await
}

async fn reset_post(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    Extension(csrf): Extension<CsrfToken>,
    ValidForm(form): ValidForm<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let id = person_id(&id)?;
    let Some(choice) = form.get("reset").and_then(|c| ResetChoice::parse(c)) else {
        // Authorised first: a crafted POST about someone outside the line is refused (and audited) as such.
        admin.authorize::<ManagerReset>(&state, Some(id)).await?;
        let error = "Choose what to reset: the password, the MFA, or both.";
        return person_page(&state, &admin, id, &csrf, Some(error)).await;
    };
    let proof = admin.authorize::<ManagerReset>(&state, Some(id)).await?;
    let done = state.team.reset(proof, choice, None).await?;
    let message = if done.engineer_follows_up {
        format!(
            "Ticket {}: {} Check your email for the ticket confirmation; an engineer will contact you about the \
             password.",
            done.ticket, done.summary
        )
    } else if choice.password() {
        format!(
            "Ticket {}: {} Check your email: the ticket confirmation, and a separate email with the secure link to \
             the temporary password.",
            done.ticket, done.summary
        )
    } else {
        format!("Ticket {}: {} Check your email for the ticket confirmation.", done.ticket, done.summary)
    };
    Ok(render(&super::templates::MessagePage {
        title: "Reset done",
        message: &message,
        error: false,
        link: Some(("Back to your team", "/team")),
    }))
}

fn link_message(state: LinkState) -> String {
    match state {
        LinkState::Ready => String::new(),
        LinkState::Used { at } => {
            format!(
                "This secure link was already used, on {}: the password it held is gone. Reset again if it is needed.",
                when(at)
            )
        }
        LinkState::Expired { at } => format!("This secure link expired on {}. Reset again if it is needed.", when(at)),
        LinkState::Revoked => "This secure link no longer works: a newer reset (or a password change, or a report \
             that it was not them) replaced the password it held. Use the newest link, or reset again."
            .into(),
        LinkState::Unknown => "This link is not valid. Check that you copied the whole address from the email.".into(),
    }
}

fn link_page(csrf: &str, token: &str, state: LinkState) -> Response {
    let message = link_message(state);
    let mut response = render(&SecureLinkPage {
        title: "Secure link",
        csrf,
        token,
        ready: state == LinkState::Ready,
        message: &message,
        password: None,
        username: "",
        name: "",
    });
    *response.status_mut() = match state {
        LinkState::Ready => StatusCode::OK,
        LinkState::Used { .. } | LinkState::Expired { .. } | LinkState::Revoked => StatusCode::GONE,
        LinkState::Unknown => StatusCode::NOT_FOUND,
    };
    response
}

/// Shows only "Click here to proceed": looking uses nothing up.
async fn secure_link_get(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    Extension(csrf): Extension<CsrfToken>,
) -> Result<Response, PageError> {
    let token: String = param(&query.unwrap_or_default(), "token").chars().take(100).collect();
    let link = state.team.link_state(&token).await?;
    Ok(link_page(&csrf.0, &token, link))
}

async fn secure_link_post(
    State(state): State<AppState>,
    Client(ctx): Client,
    Extension(csrf): Extension<CsrfToken>,
    ValidForm(form): ValidForm<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let token: String = form.get("token").map(String::as_str).unwrap_or_default().chars().take(100).collect();
    match state.team.reveal(&token, &ctx.ip.to_string()).await? {
        Ok(shown) => Ok(render(&SecureLinkPage {
            title: "Temporary password",
            csrf: &csrf.0,
            token: "",
            ready: false,
            message: "",
            password: Some(&shown.password),
            username: &shown.username,
            name: &shown.display_name,
        })),
        Err(link) => Ok(link_page(&csrf.0, &token, link)),
    }
}

async fn confirm_get(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    Extension(csrf): Extension<CsrfToken>,
) -> Result<Response, PageError> {
    let token: String = param(&query.unwrap_or_default(), "token").chars().take(100).collect();
    let ticket = state.team.confirmable(&token).await?;
    let name = match &ticket {
        Some(t) => state
            .directory
            .person_by_id(t.subject)
            .await
            .map_err(PageError::internal)?
            .map(|p| p.display_name)
            .unwrap_or_default(),
        None => String::new(),
    };
    let mut response = render(&TicketConfirmPage {
        title: "Confirm the ticket",
        csrf: &csrf.0,
        token: &token,
        ready: ticket.is_some(),
        reference: ticket.as_ref().map_or("", |t| t.reference.as_str()),
        summary: ticket.as_ref().map_or("", |t| t.summary.as_str()),
        name: &name,
        message: "This link confirms nothing any more: the ticket was confirmed already, or the link is not valid.",
    });
    if ticket.is_none() {
        *response.status_mut() = StatusCode::NOT_FOUND;
    }
    Ok(response)
}

async fn confirm_post(
    State(state): State<AppState>,
    Client(ctx): Client,
    Extension(csrf): Extension<CsrfToken>,
    ValidForm(form): ValidForm<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let token: String = form.get("token").map(String::as_str).unwrap_or_default().chars().take(100).collect();
    let confirmed = state.team.confirm(&token, &ctx.ip.to_string()).await?;
    let message = match &confirmed {
        Some(t) => format!("Thank you: ticket {} is confirmed, and closed.", t.reference),
        None => {
            "This link confirms nothing any more: the ticket was confirmed already, or the link is not valid.".into()
        }
    };
    let mut response = render(&TicketConfirmPage {
        title: "Ticket confirmed",
        csrf: &csrf.0,
        token: "",
        ready: false,
        reference: confirmed.as_ref().map_or("", |t| t.reference.as_str()),
        summary: "",
        name: "",
        message: &message,
    });
    if confirmed.is_none() {
        *response.status_mut() = StatusCode::NOT_FOUND;
    }
    Ok(response)
}

async fn questions_get(State(state): State<AppState>, admin: Admin) -> Result<Response, PageError> {
    let proof = admin.authorize::<ViewTeam>(&state, None).await?;
    let questions = state
        .team
        .questions(&proof)
        .await?
        .into_iter()
        .map(|(a, p)| (a.id, when(a.created_at), p.display_name, a.status))
        .collect();
    Ok(render(&super::templates::TeamAttestationsPage { title: "Questions from the helpdesk", questions }))
}

fn question_id(id: &str) -> Result<i64, PageError> {
    id.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(PageError::not_found)
}

async fn question_page(
    state: &AppState,
    admin: &Admin,
    csrf: &CsrfToken,
    id: i64,
    error: Option<(StatusCode, &str)>,
) -> Result<Response, PageError> {
    let proof = admin.authorize::<ViewTeam>(state, None).await?;
    let (a, person) = state.team.question(&proof, id).await?;
    let answer = match (&a.answered_by, a.answered_at) {
        (Some(_), Some(at)) => {
            format!("answered {}{}", when(at), a.answer_note.as_ref().map(|n| format!(": {n}")).unwrap_or_default())
        }
        _ => String::new(),
    };
    let expired = a.status == "pending" && a.expires_at <= state.signin.now();
    let mut response = render(&super::templates::TeamAttestationPage {
        title: "A question from the helpdesk",
        csrf: &csrf.0,
        id,
        name: &person.display_name,
        question: &a.question,
        asked_by: super::labels::actor(&a.requested_by),
        asked: when(a.created_at),
        pending: a.status == "pending" && !expired,
        status: if expired { "expired" } else { &a.status },
        answer,
        error: error.map(|(_, e)| e),
    });
    if let Some((status, _)) = error {
        *response.status_mut() = status;
    }
    Ok(response)
}

async fn question_get(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    Extension(csrf): Extension<CsrfToken>,
) -> Result<Response, PageError> {
    question_page(&state, &admin, &csrf, question_id(&id)?, None).await
}

async fn question_post(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    Extension(csrf): Extension<CsrfToken>,
    ValidForm(form): ValidForm<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let id = question_id(&id)?;
    let confirmed = match form.get("answer").map(String::as_str) {
        Some("confirm") => true,
        Some("decline") => false,
        _ => {
            let error = (StatusCode::BAD_REQUEST, "Choose Confirm or Decline.");
            return question_page(&state, &admin, &csrf, id, Some(error)).await;
        }
    };
    let proof = admin.authorize::<ViewTeam>(&state, None).await?;
    let note = form.get("note").map(String::as_str);
    match state.team.answer(proof, id, confirmed, note, admin.session.second_factor_at).await {
        Ok(_) => question_page(&state, &admin, &csrf, id, None).await,
        Err(crate::team::TeamError::Form(e)) => {
            question_page(&state, &admin, &csrf, id, Some((StatusCode::BAD_REQUEST, &e))).await
        }
        Err(crate::team::TeamError::NotApplicable(e)) => {
            question_page(&state, &admin, &csrf, id, Some((StatusCode::CONFLICT, &e))).await
        }
        Err(e) => Err(e.into()),
    }
}
