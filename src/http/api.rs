//! The JSON API under `/api/v1`. Errors are problem documents (RFC 9457) with a stable `code`, a
//! `message` and the `request_id`; malformed JSON gets the same format, never the framework's text.

use super::AppState;
use super::api_types::{AssistanceAccepted, AssistanceLookup, AssistanceRequestBody, AssistanceState, Problem};
use super::error::request_id;
use super::session::Client;
use crate::assistance::SubmitError;
use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The public endpoints, each registered with its OpenAPI operation.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_assistance_request)).routes(routes!(get_assistance_request))
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), retry_after: None }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = Problem {
            kind: "about:blank".into(),
            title: self.status.canonical_reason().unwrap_or("Error").into(),
            status: self.status.as_u16(),
            code: self.code.into(),
            message: self.message,
            request_id: request_id(),
        };
        let mut response = (self.status, Json(&problem)).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if let Some(secs) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// `Json<T>` whose rejections become problem documents.
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) => {
                let (status, code) = match &rejection {
                    JsonRejection::MissingJsonContentType(_) => {
                        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
                    }
                    JsonRejection::BytesRejection(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
                    // Well-formed JSON with a missing, unknown or mistyped field.
                    JsonRejection::JsonDataError(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_fields"),
                    _ => (StatusCode::BAD_REQUEST, "invalid_json"),
                };
                Err(ApiError::new(status, code, rejection.body_text()))
            }
        }
    }
}

/// `Query<T>` whose rejections (an unknown, repeated or mistyped parameter) become 422 problem documents.
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    Query<T>: FromRequestParts<S, Rejection = QueryRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(Self(value)),
            Err(rejection) => {
                Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_fields", rejection.body_text()))
            }
        }
    }
}

/// Ask for help without signing in: the public form's twin. The same answer, in the same time, for every
/// address; keep the reference to ask how far the request has come.
#[utoipa::path(post, path = "/api/v1/assistance-requests", tag = "assistance", request_body = AssistanceRequestBody,
    responses((status = 202, description = "Received (whether or not the address is known)", body = AssistanceAccepted)))]
pub async fn create_assistance_request(
    State(state): State<AppState>,
    Client(ctx): Client,
    ApiJson(body): ApiJson<AssistanceRequestBody>,
) -> Result<Response, ApiError> {
    let description = body.description.unwrap_or_default();
    match state.assistance.submit(&body.email, &body.problem, &description, &ctx).await {
        Ok(reference) => Ok((
            StatusCode::ACCEPTED,
            Json(AssistanceAccepted {
                reference: reference.to_string(),
                status: "received".into(),
                message: "If the address belongs to an account, an administrator will contact the person through a separate channel.".into(),
            }),
        )
            .into_response()),
        Err(SubmitError::Invalid(e)) => Err(ApiError::new(StatusCode::BAD_REQUEST, "invalid_input", e.to_string())),
        Err(SubmitError::RateLimited { retry_after }) => Err(ApiError {
            retry_after: Some(retry_after),
            ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", format!("Too many requests; retry after {retry_after} seconds."))
        }),
        Err(SubmitError::Store(e)) => {
            tracing::error!(request_id = %request_id(), "assistance request failed: {e}");
            Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "Something went wrong on our side."))
        }
    }
}

/// How far the request a reference belongs to has come. Only the holder of a reference (30^8 of them) can
/// ask, and the answer says nothing about the account. With an admin's token: the request and its dossier.
#[utoipa::path(get, path = "/api/v1/assistance-requests/{reference}", tag = "assistance",
    security((), ("token" = [])),
    params(("reference" = String, Path, description = "The request's reference, `AR-XXXX-XXXX`")),
    responses((status = 200, description = "The request's state (or, for an admin, the request)", body = AssistanceLookup)))]
pub async fn get_assistance_request(
    State(state): State<AppState>,
    Path(reference): Path<String>,
    request: axum::http::request::Parts,
) -> Result<Response, ApiError> {
    // With an admin's token: the request and its dossier; without: the public status answer.
    if request.headers.contains_key(header::AUTHORIZATION) {
        let mut parts = request;
        let caller = super::api_admin::Caller::from_request_parts(&mut parts, &state).await;
        return match caller {
            Ok(caller) => super::api_admin::request_for_admin(&state, &caller, &reference).await,
            Err(refusal) => Ok(refusal),
        };
    }
    let not_found = || ApiError::new(StatusCode::NOT_FOUND, "not_found", "No request has this reference.");
    let reference = crate::domain::ReferenceId::parse(&reference).map_err(|_| not_found())?;
    match state.assistance.state(&reference).await {
        Ok(Some(s)) => Ok(Json(AssistanceLookup::Public(AssistanceState {
            reference: s.reference,
            status: s.state,
            joined: s.joined,
            message: s.state.explanation(s.joined).into(),
        }))
        .into_response()),
        Ok(None) => Err(not_found()),
        Err(e) => {
            tracing::error!(request_id = %request_id(), "assistance state failed: {e}");
            Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "Something went wrong on our side."))
        }
    }
}
