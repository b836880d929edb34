//! People: search the directory by part of a name, username or email, optionally only the locked.

use super::Admin;
use crate::authz::SearchPeople;
use crate::directory::{Directory, DirectoryError};
use crate::http::templates::{ConsolePeoplePage, PersonRow, render};
use crate::http::{AppState, PageError};
use crate::policy::lockout::LockState;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;

pub async fn people_get(
    State(state): State<AppState>,
    admin: Admin,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let proof = admin.authorize::<SearchPeople>(&state, None).await?;
    let query = query.unwrap_or_default();
    let param = |name: &str| {
        form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
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
                mfa: if a.has_totp { "Authenticator".into() } else { "None".into() },
            })
        })
        .collect();
    let status = if error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    let mut response =
        render(&ConsolePeoplePage { title: "People", query: text.trim(), locked_only, error, rows, more });
    *response.status_mut() = status;
    Ok(response)
}
