//! People: search the directory by part of a name, username or email, optionally only the locked.

use super::Admin;
use crate::authz::SearchPeople;
use crate::directory::{Directory, DirectoryError};
use crate::http::labels;
use crate::http::middleware::CsrfToken;
use crate::http::templates::{
    AccountBox, ActivityLine, ConsolePeoplePage, ConsolePersonPage, PersonRow, SignInLine, render,
};
use crate::http::{AppState, PageError};
use crate::policy::lockout::LockState;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

pub async fn people_get(
    State(state): State<AppState>,
    admin: Admin,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let proof = admin.authorize::<SearchPeople>(&state, None).await?;
    let query = query.unwrap_or_default();
    let param = |name: &str| super::query_param(&query, name);
    let (text, locked_only) = (param("q"), param("locked") == "1");
    let now = state.signin.now();
    let (hits, error) = match state.directory.search(&proof, &text, locked_only).await {
        Ok(hits) => (hits, None),
        Err(DirectoryError::Invalid(message)) => (Vec::new(), Some(message)),
        Err(e) => return Err(PageError::internal(e)),
    };
    let more = hits.len() as i64 >= Directory::SEARCH_LIMIT;
    let rows = hits
        .iter()
        .flat_map(|hit| {
            hit.accounts.iter().map(move |a| PersonRow {
                person_id: hit.person.id.0,
                name: hit.person.display_name.to_string(),
                username: a.account.username.to_string(),
                email: hit.person.email.to_string(),
                source: a.account.source.to_string(),
                status: hit.person.status.to_string(),
                locked: if LockState::of(&a.account).is_locked(now) {
                    a.account.lock_reason.map(|r| format!("Locked ({r})")).unwrap_or_else(|| "Locked".into())
                } else {
                    "No".into()
                },
                mfa: match (a.has_totp, a.passkeys) {
                    (true, 0) => "Authenticator".into(),
                    (true, n) => format!("Authenticator, {n} passkey{}", if n == 1 { "" } else { "s" }),
                    (false, 0) => "None".into(),
                    (false, n) => format!("{n} passkey{}", if n == 1 { "" } else { "s" }),
                },
            })
        })
        .collect();
    let status = if error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    let mut response =
        render(&ConsolePeoplePage { title: "People", query: text.trim(), locked_only, error, rows, more });
    *response.status_mut() = status;
    Ok(response)
}

/// One person's record: accounts with their lock and authentication, recent sign-ins, the activity log.
pub async fn person_get(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    Extension(csrf): Extension<CsrfToken>,
) -> Result<Response, PageError> {
    let proof = admin.authorize::<SearchPeople>(&state, None).await?;
    // A malformed id is as unknown as a missing one.
    let id = id.parse::<i64>().map(crate::domain::PersonId).map_err(|_| PageError::not_found())?;
    let record =
        state.directory.record(&proof, id).await.map_err(PageError::internal)?.ok_or_else(PageError::not_found)?;
    let v = &record.view;
    let or_dash = |o: &Option<String>| o.clone().unwrap_or_else(|| "–".into());
    let when = |t: i64| crate::assistance::dossier::when(t);
    let accounts = v
        .accounts
        .iter()
        .map(|a| AccountBox {
            account_id: a.account_id.0,
            username: a.username.clone(),
            source: a.source.to_string(),
            locked: if a.locked { "Yes".into() } else { "No".into() },
            locked_at: or_dash(&a.locked_at),
            lock_reason: or_dash(&a.lock_reason),
            unlocked: match (&a.unlocked_by, &a.unlocked_at) {
                (Some(by), Some(at)) => format!("{} at {at}", labels::actor(by)),
                _ => "–".into(),
            },
            failed_attempts: a.failed_attempts,
            totp: if a.mfa.totp_enabled { "Enrolled" } else { "Not enrolled" },
            backup_codes: a.mfa.backup_codes_unused,
            passkeys: a
                .mfa
                .passkeys
                .iter()
                .map(|p| {
                    let when =
                        |at: &Option<String>| at.as_deref().map(|t| t.replace('T', " ")).unwrap_or("never".into());
                    format!("{} (added {}, last used {})", p.name, when(&p.created_at), when(&p.last_used_at))
                })
                .collect(),
            qa: match (a.qa_enrolled, a.qa_locked) {
                (_, true) => "Locked after wrong answers",
                (true, false) => "Enrolled",
                (false, false) => "Not enrolled",
            },
        })
        .collect();
    let sign_ins = record
        .sign_ins
        .iter()
        .map(|(account, e)| SignInLine {
            at: when(e.at),
            account: account.clone(),
            outcome: labels::outcome(&e.outcome),
            ip: e.client_ip.clone(),
            place: match (&e.city, &e.country) {
                (Some(city), Some(country)) => format!("{city}, {country}"),
                (None, Some(country)) => country.clone(),
                _ => "unknown".into(),
            },
            network: e.network.clone(),
        })
        .collect();
    let activity = record
        .activity
        .iter()
        .map(|r| ActivityLine {
            at: when(r.entry.at),
            action: r.entry.action.clone(),
            outcome: r.entry.outcome.clone(),
            actor: labels::actor(&r.entry.actor),
            on_behalf_of: r.entry.on_behalf_of.clone().unwrap_or_default(),
            reason: r.entry.reason.clone().unwrap_or_default(),
            details: r.entry.details.clone().unwrap_or_default(),
            reference: r.entry.reference.clone().unwrap_or_default(),
        })
        .collect();
    // The Actions menu shows only what this admin may do to this person, and what fits them as they are now
    // (acting still asks for the proof, and the service still checks the fit).
    let mut actions = Vec::new();
    for action in crate::policy::permissions::RecoveryAction::ALL {
        if super::assist::fits_record(action, &record.view)
            && lifeline_core::with_recover_type!(action, A => admin.may::<A>(&state, Some(id)).await)
        {
            let href = format!("/console/assist?action={}&person={}", action.name(), id.0);
            actions.push((href, crate::recovery::title(action)));
        }
    }
    let reset_mfa = admin.may::<crate::authz::ResetMfa>(&state, Some(id)).await;
    let mut requests = Vec::new();
    if admin.may::<crate::authz::ViewRequests>(&state, None).await {
        let view = admin.authorize::<crate::authz::ViewRequests>(&state, None).await?;
        for r in state.assistance.list(&view, Some(crate::domain::RequestStatus::Open), "").await? {
            if r.person_id == Some(id) {
                requests.push((r.reference, labels::problem(&r.problem), when(r.created_at)));
            }
        }
    }
    let attestations = state
        .team
        .attestations_about(&proof, id)
        .await?
        .into_iter()
        .map(|a| {
            let answer = match (&a.answered_by, a.answered_at) {
                (Some(by), Some(at)) => format!(
                    "by {} at {}{}",
                    labels::actor(by),
                    when(at),
                    a.answer_note.as_ref().map(|n| format!(": \"{n}\"")).unwrap_or_default()
                ),
                _ => String::new(),
            };
            (a.id, when(a.created_at), a.status, answer)
        })
        .collect();
    let can_ask_manager = v.manager_email.is_some() && admin.may::<crate::authz::AskManager>(&state, Some(id)).await;
    Ok(render(&ConsolePersonPage {
        csrf: &csrf.0,
        attestations,
        can_ask_manager,
        person_id: id.0,
        actions,
        reset_mfa,
        requests,
        title: "Person",
        name: v.display_name.clone(),
        email: v.email.clone(),
        second_address: match &v.second_address {
            None => "None".into(),
            Some(a) => match &a.confirmed_at {
                Some(at) => format!("{} (confirmed {})", a.address, at.replace('T', " ")),
                None => format!("{} (waiting for its code: not used yet)", a.address),
            },
        },
        status: v.status.to_string(),
        phone: or_dash(&v.phone),
        manager: or_dash(&v.manager_email),
        department: or_dash(&v.department),
        rank: v.rank,
        mfa_required: if state.settings().policy.mfa_required { "Yes" } else { "No" },
        accounts,
        sign_ins,
        activity,
        authenticators: record
            .authenticators
            .iter()
            .map(|e| {
                let which = match &e.detail {
                    Some(name) => format!("{} \"{name}\"", e.authenticator),
                    None => e.authenticator.clone(),
                };
                (
                    e.at.replace('T', " "),
                    e.account.clone(),
                    which,
                    labels::authenticator_change(&e.change),
                    e.by.clone(),
                )
            })
            .collect(),
    }))
}

/// Ask the person's line manager whether their request is genuine (manager attestation).
pub async fn attestation_post(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    crate::http::error::ValidForm(form): crate::http::error::ValidForm<std::collections::HashMap<String, String>>,
) -> Result<Response, PageError> {
    let id = id.parse::<i64>().map(crate::domain::PersonId).map_err(|_| PageError::not_found())?;
    let proof = admin.authorize::<crate::authz::AskManager>(&state, Some(id)).await?;
    let field = |name: &str| form.get(name).map(String::as_str);
    state.team.ask_manager(proof, field("reference"), field("note")).await?;
    Ok(axum::response::Redirect::to(&format!("/console/people/{}", id.0)).into_response())
}
