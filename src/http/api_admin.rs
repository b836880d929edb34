//! The admin JSON API (issue 10), called with a personal token (`Authorization: Bearer llt_…`). Each call is
//! authorised by the same `Authority` as the console, for the token's account, with the person's grant and
//! rank as they are at that moment; every change is audited with the token's name. An expert token stands in
//! for the console's step-up.

use super::AppState;
use super::api::{ApiError, ApiJson};
use crate::authz::{AuthzError, Principal, Proof, Recover, SearchPeople};
use crate::domain::PersonId;
use crate::policy::permissions::RecoveryAction;
use crate::recovery::{ActionForm, Outcome, RecoveryError};
use crate::store::ApiToken;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/tokens", get(tokens_get))
        .route("/api/v1/people/{id}", get(person_get))
        .route("/api/v1/people/{id}/actions/{action}", post(action_post))
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
            .and_then(|v| v.strip_prefix("Bearer "))
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
            Ok(Some(token)) => Ok(Self { token }),
            Ok(None) => Err(challenge(unauthorized())),
            Err(e) => Err(internal(e).into_response()),
        }
    }
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "API call failed");
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "Something went wrong on our side.")
}

impl Caller {
    fn principal(&self) -> Principal {
        Principal::Token { account: self.token.account, token: self.token.id }
    }

    /// The proof for `A` on `subject`, from the one maker of proofs; a refusal is a 403 that names nothing
    /// about the target (and is audited by the `Authority`).
    async fn authorize<A: crate::authz::Action>(
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

fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "There is nothing with this id.")
}

fn person_id(id: &str) -> Result<PersonId, ApiError> {
    id.parse::<i64>().ok().filter(|n| *n > 0).map(PersonId).ok_or_else(not_found)
}

/// The caller's own tokens (never their secrets).
async fn tokens_get(State(state): State<AppState>, caller: Caller) -> Result<Json<serde_json::Value>, ApiError> {
    let account = state.directory.account(caller.token.account).await.map_err(internal)?.ok_or_else(unauthorized)?;
    let tokens = state.tokens.list(Some(account.person_id)).await.map_err(internal)?;
    let now = state.signin.now();
    let rows: Vec<_> = tokens
        .iter()
        .map(|t| {
            serde_json::json!({
                "id": t.id, "name": t.name, "expert": t.expert, "created_at": t.created_at,
                "expires_at": t.expires_at, "last_used_at": t.last_used_at,
                "state": match (t.revoked_at, t.expires_at <= now) {
                    (Some(_), _) => "revoked", (None, true) => "expired", (None, false) => "live",
                },
                "this_one": t.id == caller.token.id,
            })
        })
        .collect();
    Ok(Json(serde_json::json!({ "tokens": rows })))
}

/// A person's record: accounts with their locks and MFA state, recent sign-ins, the activity log.
async fn person_get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = person_id(&id)?;
    let proof = caller.authorize::<SearchPeople>(&state, None).await?;
    let record = state.directory.record(&proof, id).await.map_err(internal)?.ok_or_else(not_found)?;
    let sign_ins: Vec<_> =
        record.sign_ins.iter().map(|(username, e)| serde_json::json!({ "username": username, "event": e })).collect();
    Ok(Json(serde_json::json!({ "person": record.view, "sign_ins": sign_ins, "activity": record.activity })))
}

/// What a recovery action takes over the API: the console's fields, `reason` being the verification method.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionBody {
    reason: String,
    #[serde(default)]
    on_behalf_of: Option<String>,
    #[serde(default)]
    details: Option<String>,
    #[serde(default)]
    account: Option<i64>,
    #[serde(default)]
    reference: Option<String>,
    #[serde(default)]
    pass_minutes: Option<u32>,
    #[serde(default)]
    pass_multi_use: bool,
}

/// Run a recovery action of SPEC §8 by its name: 200 with what was done (and a pass, shown once), or 202 with
/// the approval a second admin must give (four-eyes).
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
    };
    lifeline_core::with_recover_type!(action, A => run::<A>(&state, &caller, id, &form).await)
}

async fn run<A: Recover>(
    state: &AppState,
    caller: &Caller,
    id: PersonId,
    form: &ActionForm,
) -> Result<Response, ApiError> {
    let proof = caller.authorize::<A>(state, Some(id)).await?;
    // An expert token is the API's step-up: it proves a second factor as fresh as the token is short-lived.
    let second_factor_at = caller.token.expert.then(|| state.signin.now());
    match state.recovery.execute(proof, form, second_factor_at).await {
        Ok(Outcome::Done { summary, pass }) => {
            let pass = pass
                .map(|p| serde_json::json!({ "pass": p.pass, "expires_at": p.expires_at, "multi_use": p.multi_use }));
            Ok(Json(
                serde_json::json!({ "status": "done", "action": A::RECOVERY.name(), "summary": summary, "pass": pass }),
            )
            .into_response())
        }
        Ok(Outcome::Pending { approval }) => Ok((
            StatusCode::ACCEPTED,
            Json(serde_json::json!({ "status": "pending", "action": A::RECOVERY.name(), "approval": approval })),
        )
            .into_response()),
        Err(e) => Err(action_error(e)),
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
