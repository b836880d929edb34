//! The admin JSON API (issue 10), called with a personal token (`Authorization: Bearer llt_…`). Each call is
//! authorised by the same `Authority` as the console, for the token's account, with the person's grant and
//! rank as they are at that moment; every change is audited with the token's name. An expert token stands in
//! for the console's step-up.

use super::AppState;
use super::api::{ApiError, ApiJson, ApiQuery};
use super::api_types::{
    AccountHit, ActionBody, ActionName, ActionResult, ActionStatus, Activity, ApprovalList, ApprovalRow,
    AssistanceLookup, AuditEvents, AuditQuery, AuthenticatorRecord, CloseBody, Closed, Decision, DecisionStatus, Pass,
    PasskeyList, PasskeyRemoved, PasskeyRow, PeoplePage, PeopleQuery, PersonHit as PersonHitBody, PersonRecordBody,
    RemovePasskeyBody, RequestDetail, RequestList, RequestRow, RequestsQuery, SignInRow, TokenList, TokenRow,
    TokenState,
};
use crate::authz::{AuthzError, Principal, Proof, ReadAudit, Recover, SearchPeople, ViewRequests};
use crate::domain::PersonId;
use crate::policy::permissions::RecoveryAction;
use crate::recovery::{ActionForm, Outcome, RecoveryError};
use crate::store::ApiToken;
use axum::Json;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The admin endpoints, each registered with its OpenAPI operation (one list: a route cannot be left out of the
/// document).
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(tokens_get))
        .routes(routes!(people_get))
        .routes(routes!(person_get))
        .routes(routes!(activity_get))
        .routes(routes!(action_post))
        .routes(routes!(passkeys_get))
        .routes(routes!(authenticators_get))
        .routes(routes!(passkey_remove_post))
        .routes(routes!(approvals_get))
        .routes(routes!(approve_post))
        .routes(routes!(reject_post))
        .routes(routes!(audit_get))
        .routes(routes!(requests_get))
        .routes(routes!(close_post))
}

/// A call made with a live personal token.
pub struct Caller {
    pub token: ApiToken,
}

fn unauthorized() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "Send a live personal API token as `Authorization: Bearer llt_…` (`lifeline token create`).",
    )
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let bearer = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            // The scheme is case-insensitive (RFC 9110 §11.1).
            .and_then(|v| v.get(..7).filter(|s| s.eq_ignore_ascii_case("bearer ")).map(|_| &v[7..]))
            .map(str::trim)
            .unwrap_or_default();
        let challenge = |e: ApiError| {
            let mut response = e.into_response();
            response
                .headers_mut()
                .insert(axum::http::header::WWW_AUTHENTICATE, axum::http::HeaderValue::from_static("Bearer"));
            response
        };
        match state.tokens.authenticate(bearer).await {
            Ok(Some(token)) => {
                crate::http::error::note_actor(format!("account:{} token:{}", token.account.0, token.id));
                Ok(Self { token })
            }
            Ok(None) => Err(challenge(unauthorized())),
            Err(e) => Err(internal(e).into_response()),
        }
    }
}

pub(super) fn internal(e: impl std::fmt::Display) -> ApiError {
    // The request id is in the answer too: an admin who reports it leads the operator to this line.
    tracing::error!(request_id = %super::error::request_id(), error = %e, "API call failed");
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "Something went wrong on our side.")
}

impl Caller {
    fn principal(&self) -> Principal {
        Principal::Token { account: self.token.account, token: self.token.id }
    }

    /// The proof for `A` on `subject`, from the one maker of proofs; a refusal is a 403 that names nothing
    /// about the target (and is audited by the `Authority`).
    pub(super) async fn authorize<A: crate::authz::Action>(
        &self,
        state: &AppState,
        subject: Option<PersonId>,
    ) -> Result<Proof<A>, ApiError> {
        state.authority.authorize::<A>(self.principal(), subject).await.map_err(|e| match e {
            AuthzError::Denied(_) => {
                ApiError::new(StatusCode::FORBIDDEN, "forbidden", "This token's person may not do this.")
            }
            AuthzError::Gone if subject.is_some() => not_found(),
            AuthzError::Gone => unauthorized(),
            AuthzError::Store(e) => internal(e),
        })
    }
}

pub(super) fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "There is nothing with this id.")
}

fn person_id(id: &str) -> Result<PersonId, ApiError> {
    id.parse::<i64>().ok().filter(|n| *n > 0).map(PersonId).ok_or_else(not_found)
}

/// The caller's own tokens (never their secrets).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens", security(("token" = [])),
    responses((status = 200, description = "The caller's tokens", body = TokenList)))]
async fn tokens_get(State(state): State<AppState>, caller: Caller) -> Result<Json<TokenList>, ApiError> {
    let account = state.directory.account(caller.token.account).await.map_err(internal)?.ok_or_else(unauthorized)?;
    let tokens = state.tokens.list(Some(account.person_id)).await.map_err(internal)?;
    let now = state.signin.now();
    let tokens = tokens
        .iter()
        .map(|t| TokenRow {
            id: t.id,
            name: t.name.clone(),
            expert: t.expert,
            created_at: t.created_at,
            expires_at: t.expires_at,
            last_used_at: t.last_used_at,
            state: TokenState::of(t, now),
            this_one: t.id == caller.token.id,
        })
        .collect();
    Ok(Json(TokenList { tokens }))
}

pub(super) fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_fields", message)
}

/// A page's cursor: the last person's sort key and id, opaque to the caller.
fn cursor_of(hit: &crate::store::PersonHit) -> String {
    hex::encode(format!("{}:{}", hit.person.id.0, hit.sort_key))
}

fn parse_cursor(text: &str) -> Result<(String, PersonId), ApiError> {
    let bad = || invalid("cursor: not one this API gave (use next_cursor from the previous page)");
    let raw = hex::decode(text).map_err(|_| bad())?;
    let raw = String::from_utf8(raw).map_err(|_| bad())?;
    let (id, key) = raw.split_once(':').ok_or_else(bad)?;
    Ok((key.to_owned(), PersonId(id.parse().map_err(|_| bad())?)))
}

/// Search people by part of a name, username or email (`query`), optionally only those locked now
/// (`locked=true`), a page (`limit`, 1–200, default 50) at a time: follow `next_cursor` until it is null.
#[utoipa::path(get, path = "/api/v1/people", tag = "people", security(("token" = [])), params(PeopleQuery),
    responses((status = 200, description = "A page of people", body = PeoplePage)))]
async fn people_get(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<PeopleQuery>,
) -> Result<Json<PeoplePage>, ApiError> {
    let text = query.query.unwrap_or_default();
    let limit = query.limit.unwrap_or(50);
    let after = query.cursor.as_deref().map(parse_cursor).transpose()?;
    let proof = caller.authorize::<SearchPeople>(&state, None).await?;
    let after_ref = after.as_ref().map(|(key, id)| (key.as_str(), *id));
    let locked_only = query.locked.unwrap_or(false);
    let hits = match state.directory.search_page(&proof, &text, locked_only, after_ref, limit).await {
        Ok(hits) => hits,
        Err(crate::directory::DirectoryError::Invalid(m)) => return Err(invalid(m)),
        Err(e) => return Err(internal(e)),
    };
    let now = state.signin.now();
    let people = hits
        .iter()
        .map(|h| PersonHitBody {
            id: h.person.id,
            name: h.person.display_name.clone(),
            email: h.person.email.as_str().to_owned(),
            status: h.person.status,
            accounts: h
                .accounts
                .iter()
                .map(|a| AccountHit {
                    id: a.account.id,
                    username: a.account.username.clone(),
                    source: a.account.source,
                    locked: crate::policy::lockout::LockState::of(&a.account).is_locked(now),
                    totp_enabled: a.has_totp,
                })
                .collect(),
        })
        .collect();
    let next_cursor = (hits.len() as i64 == limit).then(|| hits.last().map(cursor_of)).flatten();
    Ok(Json(PeoplePage { people, next_cursor }))
}

/// The record of person `id` (its path segment), for a caller who may read people.
async fn record_of(state: &AppState, caller: &Caller, id: &str) -> Result<crate::directory::PersonRecord, ApiError> {
    let id = person_id(id)?;
    let proof = caller.authorize::<SearchPeople>(state, None).await?;
    state.directory.record(&proof, id).await.map_err(internal)?.ok_or_else(not_found)
}

/// Every audited event about a person, newest first (the latest 200).
#[utoipa::path(get, path = "/api/v1/people/{id}/activity", tag = "people", security(("token" = [])),
    params(("id" = i64, Path, description = "The person's id")),
    responses((status = 200, description = "The person's activity log", body = Activity)))]
async fn activity_get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Activity>, ApiError> {
    let record = record_of(&state, &caller, &id).await?;
    Ok(Json(Activity { activity: record.activity }))
}

/// A person's record: accounts with their locks and MFA state, recent sign-ins, the activity log.
#[utoipa::path(get, path = "/api/v1/people/{id}", tag = "people", security(("token" = [])),
    params(("id" = i64, Path, description = "The person's id")),
    responses((status = 200, description = "The person's record", body = PersonRecordBody)))]
async fn person_get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<PersonRecordBody>, ApiError> {
    let record = record_of(&state, &caller, &id).await?;
    let sign_ins = record.sign_ins.into_iter().map(|(username, event)| SignInRow { username, event }).collect();
    Ok(Json(PersonRecordBody {
        person: record.view,
        sign_ins,
        activity: record.activity,
        authenticators: record.authenticators,
    }))
}

/// A person's authenticator record (NIST SP 800-63B-4 §4.1): every authenticator bound to their accounts, when it
/// was bound, replaced, removed and used, and by whom; newest first.
#[utoipa::path(get, path = "/api/v1/people/{id}/authenticators", tag = "people", security(("token" = [])),
    params(("id" = i64, Path, description = "The person's id")),
    responses((status = 200, description = "The authenticator record", body = AuthenticatorRecord)))]
async fn authenticators_get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<AuthenticatorRecord>, ApiError> {
    let record = record_of(&state, &caller, &id).await?;
    Ok(Json(AuthenticatorRecord { events: record.authenticators }))
}

/// A person's passkeys (names, created, last used), account by account.
#[utoipa::path(get, path = "/api/v1/people/{id}/passkeys", tag = "people", security(("token" = [])),
    params(("id" = i64, Path, description = "The person's id")),
    responses((status = 200, description = "The person's passkeys", body = PasskeyList)))]
async fn passkeys_get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<PasskeyList>, ApiError> {
    let record = record_of(&state, &caller, &id).await?;
    let passkeys = record
        .view
        .accounts
        .into_iter()
        .flat_map(|a| {
            let (account_id, username) = (a.account_id.0, a.username);
            a.mfa.passkeys.into_iter().map(move |passkey| PasskeyRow {
                account_id,
                username: username.clone(),
                passkey,
            })
        })
        .collect();
    Ok(Json(PasskeyList { passkeys }))
}

/// Remove one passkey of a person (a lost device, when they have others): the reset-MFA permission, tiers, a
/// verification method and an expert token; refused (409) on someone who holds an admin permission, for
/// whom reset-MFA with a second admin's approval is the way. Audited and emailed to the person.
#[utoipa::path(post, path = "/api/v1/people/{id}/passkeys/{passkey}/remove", tag = "recovery",
    security(("token" = [])),
    params(("id" = i64, Path, description = "The person's id"), ("passkey" = i64, Path, description = "The passkey's id")),
    request_body = RemovePasskeyBody,
    responses((status = 200, description = "The passkey was removed", body = PasskeyRemoved)))]
async fn passkey_remove_post(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, passkey)): Path<(String, String)>,
    ApiJson(body): ApiJson<RemovePasskeyBody>,
) -> Result<Json<PasskeyRemoved>, ApiError> {
    let id = person_id(&id)?;
    let passkey = passkey.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(not_found)?;
    let proof = caller.authorize::<crate::authz::ResetMfa>(&state, Some(id)).await?;
    let form = ActionForm {
        method: body.reason,
        details: body.details.filter(|d| !d.trim().is_empty()),
        on_behalf_of: body.on_behalf_of.filter(|o| !o.trim().is_empty()),
        ..Default::default()
    };
    let second_factor_at = caller.token.expert.then(|| state.signin.now());
    let removed = state.recovery.remove_passkey(proof, passkey, &form, second_factor_at).await.map_err(action_error)?;
    Ok(Json(PasskeyRemoved { id: removed.id, name: removed.name }))
}

/// Run a recovery action of SPEC §8 by its name: 200 with what was done (and a pass, shown once), or 202 with
/// the approval a second admin must give (four-eyes).
#[utoipa::path(post, path = "/api/v1/people/{id}/actions/{action}", tag = "recovery", security(("token" = [])),
    params(("id" = i64, Path, description = "The person's id"),
        ("action" = ActionName, Path, description = "The recovery action (SPEC §8)")),
    request_body = ActionBody,
    responses((status = 200, description = "The action ran", body = ActionResult),
        (status = 202, description = "It waits for a second admin (four-eyes)", body = ActionResult)))]
async fn action_post(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, action)): Path<(String, String)>,
    ApiJson(body): ApiJson<ActionBody>,
) -> Result<Response, ApiError> {
    let id = person_id(&id)?;
    let action = RecoveryAction::parse(&action).ok_or_else(not_found)?;
    let form = ActionForm {
        account: body.account.map(crate::domain::AccountId),
        method: body.reason,
        details: body.details.filter(|d| !d.trim().is_empty()),
        on_behalf_of: body.on_behalf_of.filter(|o| !o.trim().is_empty()),
        reference: body.reference.filter(|r| !r.trim().is_empty()),
        pass_minutes: body.pass_minutes,
        pass_multi_use: body.pass_multi_use,
        deliver_to: body.deliver_to.filter(|d| !d.trim().is_empty()),
        second_address_seen: None,
    };
    lifeline_core::with_recover_type!(action, A => run::<A>(&state, &caller, id, &form).await)
}

async fn run<A: Recover>(
    state: &AppState,
    caller: &Caller,
    id: PersonId,
    form: &ActionForm,
) -> Result<Response, ApiError> {
    let proof = caller.authorize::<A>(state, Some(id)).await.inspect_err(|_| {
        crate::http::metrics::recovery_action(A::RECOVERY.name(), "refused");
    })?;
    // An expert token is the API's step-up: it proves a second factor as fresh as the token is short-lived.
    let second_factor_at = caller.token.expert.then(|| state.signin.now());
    let result = state.recovery.execute(proof, form, second_factor_at).await;
    crate::http::metrics::recovery_action(A::RECOVERY.name(), action_outcome(&result));
    let action = A::RECOVERY.name();
    match result {
        Ok(Outcome::Done { summary, pass }) => Ok(Json(ActionResult {
            status: ActionStatus::Done,
            action,
            summary: Some(summary),
            pass: pass.map(Pass::from),
            approval: None,
        })
        .into_response()),
        Ok(Outcome::Pending { approval }) => Ok((
            StatusCode::ACCEPTED,
            Json(ActionResult {
                status: ActionStatus::Pending,
                action,
                summary: None,
                pass: None,
                approval: Some(approval),
            }),
        )
            .into_response()),
        Err(e) => Err(action_error(e)),
    }
}

/// How an action ended, for the metrics.
pub fn action_outcome(result: &Result<Outcome, RecoveryError>) -> &'static str {
    match result {
        Ok(Outcome::Done { .. }) => "done",
        Ok(Outcome::Pending { .. }) => "pending",
        Err(RecoveryError::Form(_)) => "invalid",
        Err(RecoveryError::NotApplicable(_) | RecoveryError::Approval(_)) => "conflict",
        Err(RecoveryError::StepUp) => "step_up",
        Err(_) => "failed",
    }
}

fn action_error(e: RecoveryError) -> ApiError {
    match e {
        RecoveryError::Form(m) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_fields", m),
        RecoveryError::NotApplicable(m) | RecoveryError::Approval(m) => {
            ApiError::new(StatusCode::CONFLICT, "conflict", m)
        }
        RecoveryError::StepUp => ApiError::new(
            StatusCode::FORBIDDEN,
            "expert_token_required",
            "This action needs an expert token (`lifeline token create --expert`): it stands in for the console's step-up.",
        ),
        RecoveryError::NotFound => not_found(),
        e @ RecoveryError::Throttled { retry_after } => ApiError {
            retry_after: Some(retry_after),
            ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", e.to_string())
        },
        e => internal(e),
    }
}

/// Parse a time parameter: RFC 3339, or a date (midnight UTC).
fn parse_time(name: &str, text: &str) -> Result<i64, ApiError> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.timestamp());
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp())
        .ok_or_else(|| invalid(format!("{name}: an RFC 3339 time (2026-11-23T09:00:00Z) or a date (2026-11-23)")))
}

/// A free-text filter: trimmed, none when blank, at most 200 characters and no control characters.
fn filter_text(name: &str, value: Option<String>) -> Result<Option<String>, ApiError> {
    match value {
        Some(v) if v.chars().count() > 200 || v.chars().any(char::is_control) => {
            Err(invalid(format!("{name}: at most 200 characters, no control characters")))
        }
        Some(v) if !v.trim().is_empty() => Ok(Some(v.trim().to_owned())),
        _ => Ok(None),
    }
}

/// The audit log for auditors: `person` (id), `actor` (part of), `action` (name or start, e.g. `approval.`),
/// `since` and `until`; newest first, at most a page.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", security(("token" = [])), params(AuditQuery),
    responses((status = 200, description = "Audit events, newest first", body = AuditEvents)))]
async fn audit_get(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<Json<AuditEvents>, ApiError> {
    let filter = crate::store::AuditFilter {
        person: match query.person {
            Some(id) if id < 1 => return Err(invalid("person: a person's id (1 or more)")),
            other => other.map(PersonId),
        },
        actor: filter_text("actor", query.actor)?,
        action: filter_text("action", query.action)?,
        since: query.since.as_deref().map(|t| parse_time("since", t)).transpose()?,
        until: query.until.as_deref().map(|t| parse_time("until", t)).transpose()?,
    };
    let proof = caller.authorize::<ReadAudit>(&state, None).await?;
    let events = state.audit_log.search(&proof, &filter).await.map_err(internal)?;
    Ok(Json(AuditEvents { events }))
}

/// Requests waiting for a second admin, as the console's Approvals page lists them for this caller: those
/// they may decide, and their own (`yours`).
#[utoipa::path(get, path = "/api/v1/approvals", tag = "approvals", security(("token" = [])),
    responses((status = 200, description = "Waiting approvals", body = ApprovalList)))]
async fn approvals_get(State(state): State<AppState>, caller: Caller) -> Result<Json<ApprovalList>, ApiError> {
    let proof = caller.authorize::<ViewRequests>(&state, None).await?;
    let mut approvals = Vec::new();
    for p in state.recovery.pending(&proof).await.map_err(action_error)? {
        let Some(action) = RecoveryAction::parse(&p.approval.action) else { continue };
        let yours = p.approval.requested_by_account == caller.token.account;
        let person = p.approval.person;
        let may = !yours
            && lifeline_core::with_recover_type!(action, A => state.authority.may::<A>(caller.principal(), Some(person)).await);
        if !yours && !may {
            continue;
        }
        approvals.push(ApprovalRow {
            id: p.approval.id,
            action: action.name(),
            person_id: person,
            person: p.person_name,
            requested_by: super::labels::actor(&p.approval.requested_by),
            created_at: p.approval.created_at,
            expires_at: p.approval.expires_at,
            reason: p.form.method,
            on_behalf_of: p.form.on_behalf_of,
            details: p.form.details,
            pass_minutes: p.form.pass_minutes,
            pass_multi_use: p.form.pass_multi_use,
            reference: p.form.reference,
            yours,
        });
    }
    Ok(Json(ApprovalList { approvals }))
}

/// One answer for a missing request and one the caller may not decide (as in the console).
fn not_yours() -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "forbidden", "There is no request with this number that you may decide.")
}

/// Approve a waiting request: it runs now, as the caller (a second admin, not the one who asked).
#[utoipa::path(post, path = "/api/v1/approvals/{id}/approve", tag = "approvals", security(("token" = [])),
    params(("id" = i64, Path, description = "The approval's id")),
    responses((status = 200, description = "Approved, and the action ran", body = Decision),
        (status = 202, description = "Approving needs yet another approval", body = Decision)))]
async fn approve_post(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    decision(&state, &caller, &id, true).await
}

/// Reject a waiting request: it never runs.
#[utoipa::path(post, path = "/api/v1/approvals/{id}/reject", tag = "approvals", security(("token" = [])),
    params(("id" = i64, Path, description = "The approval's id")),
    responses((status = 200, description = "Rejected", body = Decision)))]
async fn reject_post(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    decision(&state, &caller, &id, false).await
}

async fn decision(state: &AppState, caller: &Caller, id: &str, approve: bool) -> Result<Response, ApiError> {
    caller.authorize::<ViewRequests>(state, None).await?;
    let id = id.parse::<i64>().map_err(|_| not_found())?;
    let approval = state.recovery.approval(id).await.map_err(action_error)?;
    let Some((approval, action)) = approval.and_then(|a| RecoveryAction::parse(&a.action).map(|r| (a, r))) else {
        return Err(not_yours());
    };
    lifeline_core::with_recover_type!(action, A => decide::<A>(state, caller, id, approval.person, approve).await)
}

async fn decide<A: Recover>(
    state: &AppState,
    caller: &Caller,
    id: i64,
    person: PersonId,
    approve: bool,
) -> Result<Response, ApiError> {
    let proof = caller.authorize::<A>(state, Some(person)).await.map_err(|e| match e.status {
        StatusCode::FORBIDDEN => not_yours(),
        _ => e,
    })?;
    let recovery = state.recovery.clone();
    if !approve {
        tokio::spawn(async move { recovery.reject(proof, id).await }).await.map_err(internal)?.map_err(action_error)?;
        let body = Decision { status: DecisionStatus::Rejected, approval: id, summary: None, pass: None };
        return Ok(Json(body).into_response());
    }
    let second_factor_at = caller.token.expert.then(|| state.signin.now());
    let outcome =
        tokio::spawn(async move { recovery.approve(proof, id, second_factor_at).await }).await.map_err(internal)?;
    // The approved action runs now: counted here, as the console's and the API's direct actions are.
    crate::http::metrics::recovery_action(A::RECOVERY.name(), action_outcome(&outcome));
    let outcome = outcome.map_err(action_error)?;
    Ok(match outcome {
        Outcome::Done { summary, pass } => Json(Decision {
            status: DecisionStatus::Approved,
            approval: id,
            summary: Some(summary),
            pass: pass.map(Pass::from),
        })
        .into_response(),
        Outcome::Pending { approval } => (
            StatusCode::ACCEPTED,
            Json(Decision { status: DecisionStatus::Pending, approval, summary: None, pass: None }),
        )
            .into_response(),
    })
}

/// The queue: `status` (received, open, joined, resolved, dismissed) and `type` filters, newest first (500 at
/// most).
#[utoipa::path(get, path = "/api/v1/assistance-requests", tag = "assistance", security(("token" = [])),
    params(RequestsQuery),
    responses((status = 200, description = "Assistance requests, newest first", body = RequestList)))]
async fn requests_get(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<RequestsQuery>,
) -> Result<Json<RequestList>, ApiError> {
    let status = match query.status.as_deref() {
        Some(s) => Some(
            crate::domain::RequestStatus::parse(s)
                .ok_or_else(|| invalid("status: received, open, joined, resolved or dismissed"))?,
        ),
        None => None,
    };
    let problem = match query.problem.as_deref() {
        Some(t) => {
            crate::domain::ProblemType::parse(t).map(|p| p.as_str()).map_err(|_| invalid("type: a problem type"))?
        }
        None => "",
    };
    let proof = caller.authorize::<ViewRequests>(&state, None).await?;
    let rows = state.assistance.list(&proof, status, problem).await.map_err(internal)?;
    Ok(Json(RequestList { requests: rows.iter().map(RequestRow::from).collect() }))
}

/// One request with its dossier, for an admin's token (without one, the public status answer).
pub async fn request_for_admin(state: &AppState, caller: &Caller, reference: &str) -> Result<Response, ApiError> {
    let reference = crate::domain::ReferenceId::parse(reference).map_err(|_| not_found())?;
    let proof = caller.authorize::<ViewRequests>(state, None).await?;
    let request = state.assistance.find(&proof, &reference).await.map_err(internal)?.ok_or_else(not_found)?;
    Ok(Json(AssistanceLookup::Admin(Box::new(RequestDetail::from(&request)))).into_response())
}

/// Close an open request with a note: resolved (helped) or dismissed.
#[utoipa::path(post, path = "/api/v1/assistance-requests/{reference}/close", tag = "assistance",
    security(("token" = [])),
    params(("reference" = String, Path, description = "The request's reference, `AR-XXXX-XXXX`")),
    request_body = CloseBody,
    responses((status = 200, description = "Closed", body = Closed)))]
async fn close_post(
    State(state): State<AppState>,
    caller: Caller,
    Path(reference): Path<String>,
    ApiJson(body): ApiJson<CloseBody>,
) -> Result<Json<Closed>, ApiError> {
    let reference = crate::domain::ReferenceId::parse(&reference).map_err(|_| not_found())?;
    let resolve = match body.outcome.as_str() {
        "resolved" => true,
        "dismissed" => false,
        _ => return Err(invalid("outcome: resolved or dismissed")),
    };
    let note = body.note.trim();
    if note.is_empty() || note.chars().count() > 2000 {
        return Err(invalid("note: 1 to 2000 characters: what you verified and what you did"));
    }
    let view = caller.authorize::<ViewRequests>(&state, None).await?;
    if state.assistance.find(&view, &reference).await.map_err(internal)?.is_none() {
        return Err(not_found());
    }
    let proof = caller.authorize::<crate::authz::CloseRequest>(&state, None).await?;
    if !state.assistance.close(proof, reference.as_str(), resolve, note).await.map_err(internal)? {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            "This request is not open (someone may have closed it already).",
        ));
    }
    Ok(Json(Closed { reference: reference.as_str().to_owned(), status: body.outcome }))
}
