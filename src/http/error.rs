//! One error type for pages, rendered as an HTML page with the request's id. The cause of a 5xx goes
//! to the log once and never to the client.

use super::templates::{ErrorPage, render};
use axum::extract::rejection::FormRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

tokio::task_local! {
    /// The id of the request being handled, for error pages and logs.
    pub static REQUEST_ID: String;
    /// Who the request acted as, once an extractor found out (`account:12`, `account:12 token:3`): the
    /// request's log line names it. An id, never a name or an email.
    pub static ACTOR: std::sync::Arc<std::sync::Mutex<Option<String>>>;
}

pub fn request_id() -> String {
    REQUEST_ID.try_with(Clone::clone).unwrap_or_else(|_| "-".into())
}

/// Note who the request acts as, for its log line (outside a request, nothing happens).
pub fn note_actor(actor: String) {
    let _ = ACTOR.try_with(|cell| {
        if let Ok(mut slot) = cell.lock() {
            *slot = Some(actor);
        }
    });
}

#[derive(Debug)]
pub struct PageError {
    pub status: StatusCode,
    pub message: String,
    /// Seconds for a `Retry-After` header (503 when busy).
    pub retry_after: Option<u64>,
}

impl PageError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, message: message.into(), retry_after: None }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "There is no page at this address.")
    }

    /// Log the cause with the request id; the client sees only that something failed.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(request_id = %request_id(), "internal error: {cause}");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong on our side. Please try again.")
    }
}

impl From<crate::signin::SignInError> for PageError {
    fn from(e: crate::signin::SignInError) -> Self {
        match e {
            crate::signin::SignInError::Busy => Self {
                retry_after: Some(2),
                ..Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Too many people are signing in right now. Please try again in a few seconds.",
                )
            },
            e @ crate::signin::SignInError::NotFresh => Self::new(StatusCode::FORBIDDEN, e.to_string()),
            e => Self::internal(e),
        }
    }
}

/// A recovery service error as the page says it: form 400, does-not-fit 409, step-up 403, throttled 429.
impl From<crate::recovery::RecoveryError> for PageError {
    fn from(e: crate::recovery::RecoveryError) -> Self {
        use crate::recovery::RecoveryError as E;
        match e {
            E::Form(m) => Self::bad_request(m),
            E::NotApplicable(m) | E::Approval(m) => Self::new(StatusCode::CONFLICT, m),
            e @ E::StepUp => Self::new(StatusCode::FORBIDDEN, e.to_string()),
            E::NotFound => Self::not_found(),
            e @ E::Throttled { retry_after } => {
                Self { retry_after: Some(retry_after), ..Self::new(StatusCode::TOO_MANY_REQUESTS, e.to_string()) }
            }
            e => Self::internal(e),
        }
    }
}

/// A manager portal or ticket error as the page says it: form 400, does-not-fit 409.
impl From<crate::team::TeamError> for PageError {
    fn from(e: crate::team::TeamError) -> Self {
        use crate::team::TeamError as E;
        match e {
            E::Form(m) => Self::bad_request(m),
            E::NotApplicable(m) => Self::new(StatusCode::CONFLICT, m),
            E::NotFound => Self::not_found(),
            e => Self::internal(e),
        }
    }
}

/// A passkey error as the page says it: refused or malformed 400, throttled 429, unavailable 404.
impl From<crate::passkeys::PasskeyError> for PageError {
    fn from(e: crate::passkeys::PasskeyError) -> Self {
        use crate::passkeys::PasskeyError as E;
        match e {
            e @ (E::Refused | E::Malformed(_) | E::Form(_) | E::Duplicate | E::TooMany) => {
                Self::bad_request(e.to_string())
            }
            e @ E::Disabled => Self::new(StatusCode::FORBIDDEN, e.to_string()),
            e @ E::Unavailable => Self::new(StatusCode::NOT_FOUND, e.to_string()),
            E::NotFound => Self::not_found(),
            e @ E::Throttled { retry_after } => {
                Self { retry_after: Some(retry_after), ..Self::new(StatusCode::TOO_MANY_REQUESTS, e.to_string()) }
            }
            e => Self::internal(e),
        }
    }
}

impl From<crate::store::StoreError> for PageError {
    fn from(e: crate::store::StoreError) -> Self {
        Self::internal(e)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let page = ErrorPage {
            title: self.status.canonical_reason().unwrap_or("Error"),
            status: self.status.as_u16(),
            message: &self.message,
            request_id: request_id(),
        };
        let mut response = render(&page);
        *response.status_mut() = self.status;
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from(seconds));
        }
        response
    }
}

/// `Form<T>` whose rejections (wrong content type, too large, malformed fields) become our error page.
pub struct ValidForm<T>(pub T);

impl<T, S> FromRequest<S> for ValidForm<T>
where
    axum::Form<T>: FromRequest<S, Rejection = FormRejection>,
    S: Send + Sync,
{
    type Rejection = PageError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Form::<T>::from_request(req, state).await {
            Ok(axum::Form(value)) => Ok(Self(value)),
            Err(rejection) => {
                let status = match rejection.status() {
                    StatusCode::UNPROCESSABLE_ENTITY => StatusCode::BAD_REQUEST,
                    other => other,
                };
                Err(PageError::new(status, format!("The form could not be read: {}", rejection.body_text())))
            }
        }
    }
}
