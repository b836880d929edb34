//! Prometheus metrics (`LIFELINE_METRICS_LISTEN`, off by default): served on their own address, so the
//! public listener never shows them. Labels are routes, outcomes, methods and action names: never a person's
//! name, email, IP or any secret.

use super::AppState;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Install the process's recorder (once, before anything is recorded); until then every recording is a no-op.
pub fn install() -> anyhow::Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new().install_recorder()?;
    metrics::describe_counter!("lifeline_sign_ins_total", "Sign-in steps, by method and outcome");
    metrics::describe_counter!("lifeline_recovery_actions_total", "Recovery actions asked, by action and outcome");
    metrics::describe_histogram!("lifeline_http_request_duration_seconds", "HTTP requests, by route and status");
    metrics::describe_gauge!("lifeline_outbox_queued", "Emails not yet delivered");
    metrics::describe_gauge!("lifeline_approvals_waiting", "Four-eyes requests waiting for a second admin");
    metrics::describe_gauge!("lifeline_assistance_requests_open", "Assistance requests waiting for an admin");
    metrics::describe_gauge!(
        "lifeline_assistance_oldest_open_age_seconds",
        "How long the oldest open assistance request has waited (0: none)"
    );
    metrics::describe_gauge!(
        "lifeline_outbox_oldest_unsent_age_seconds",
        "How long the oldest unsent email has waited"
    );
    metrics::describe_counter!("lifeline_locks_total", "Accounts locked by failed sign-ins, by the step that locked");
    metrics::describe_counter!("lifeline_passkey_sign_ins_total", "Sign-ins with a passkey, by outcome");
    metrics::describe_counter!("lifeline_passkeys_added_total", "Passkeys added to accounts");
    metrics::describe_counter!("lifeline_assistance_requests_total", "Assistance requests accepted, by type");
    metrics::describe_counter!("lifeline_email_delivery_failures_total", "Failed email deliveries (each is retried)");
    metrics::describe_histogram!(
        "lifeline_argon2_queue_wait_seconds",
        "How long a password hash waited for a hashing thread"
    );
    metrics::describe_counter!("lifeline_argon2_busy_total", "Password hashes refused: the queue was full or too slow");
    Ok(handle)
}

/// The metrics listener's router.
pub fn router(state: AppState, handle: PrometheusHandle) -> axum::Router {
    axum::Router::new().route("/metrics", get(move |state| render(state, handle.clone()))).with_state(state)
}

async fn render(State(state): State<AppState>, handle: PrometheusHandle) -> Response {
    match state.gauges.read().await {
        Ok(r) => {
            metrics::gauge!("lifeline_outbox_queued").set(r.outbox_queued as f64);
            metrics::gauge!("lifeline_approvals_waiting").set(r.approvals_waiting as f64);
            metrics::gauge!("lifeline_assistance_requests_open").set(r.requests_open as f64);
            metrics::gauge!("lifeline_assistance_oldest_open_age_seconds").set(r.oldest_request_age as f64);
            metrics::gauge!("lifeline_outbox_oldest_unsent_age_seconds").set(r.oldest_email_age as f64);
        }
        Err(e) => tracing::warn!(error = %e, "metrics: the queue gauges could not be read"),
    }
    let mut response = (StatusCode::OK, handle.render()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    response
}

/// A sign-in step's outcome (`method`: password, totp, code, ...).
pub fn sign_in(method: &'static str, outcome: &'static str) {
    metrics::counter!("lifeline_sign_ins_total", "method" => method, "outcome" => outcome).increment(1);
}

/// A recovery action asked for, and how it ended (done, pending, refused, invalid, ...).
pub fn recovery_action(action: &'static str, outcome: &'static str) {
    metrics::counter!("lifeline_recovery_actions_total", "action" => action, "outcome" => outcome).increment(1);
}

/// One HTTP request, by its route's template (never the address) and status.
pub fn request(route: &str, status: u16, seconds: f64) {
    metrics::histogram!("lifeline_http_request_duration_seconds", "route" => route.to_owned(), "status" => status.to_string())
        .record(seconds);
}
