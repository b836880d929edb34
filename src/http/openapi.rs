//! The API's OpenAPI 3.1 document, at `/api/openapi.json`. Nothing in it is written by hand: every operation
//! comes from a handler's `#[utoipa::path]`, registered with `routes!` together with its route (so a route
//! cannot exist without its operation), and every schema from the types the handlers take and return. This
//! module adds only what is common to every operation: the bearer token scheme and the problem documents.

use super::AppState;
use super::api_types::Problem;
use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use std::sync::LazyLock;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi as Document, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

#[derive(OpenApi)]
#[openapi(info(
    title = "Lifeline admin API",
    description = "Find people, restore their access and read the audit log, with a personal token \
            (`lifeline token create`). Every call is authorised like the console: by the token's person's \
            permissions and tier at the time of the call. Times are Unix seconds.",
    license(name = "MIT OR Apache-2.0")
))]
struct ApiDoc;

/// The bearer scheme, the problem schema, and the error answers every operation can give (applied once the
/// routes' operations are in, by `document`).
struct Common;

/// The errors any operation can answer with; each is a problem document with its stable `code`.
const ERRORS: &[(&str, &str)] = &[
    ("400", "Malformed JSON (`invalid_json`) or input (`invalid_input`)"),
    ("401", "No live token (`unauthorized`)"),
    ("403", "The token's person may not do this (`forbidden`, `expert_token_required`); audited"),
    ("404", "Nothing with this id (`not_found`)"),
    ("409", "A conflict with the current state (`conflict`)"),
    ("413", "The body is too large (`payload_too_large`)"),
    ("415", "The body is not `application/json` (`unsupported_media_type`)"),
    ("422", "A field or parameter is missing, unknown or invalid (`invalid_fields`)"),
    ("429", "Too many attempts; see `Retry-After` (`rate_limited`)"),
    ("500", "Something went wrong on our side (`internal`)"),
];

impl Modify for Common {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("llt_ and 64 hex digits")
                    .description(Some("A personal token: `lifeline token create --person EMAIL --name NAME`"))
                    .build(),
            ),
        );
        components.schemas.insert(Problem::name().into_owned(), Problem::schema());
        for (_, item) in doc.paths.paths.iter_mut().filter(|(path, _)| path.starts_with("/api/v1/")) {
            for operation in [&mut item.get, &mut item.post].into_iter().flatten() {
                for (status, description) in ERRORS {
                    let problem = ResponseBuilder::new()
                        .description(*description)
                        .content(
                            "application/problem+json",
                            ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem"))).build(),
                        )
                        .build();
                    operation.responses.responses.entry((*status).to_owned()).or_insert(problem.into());
                }
            }
        }
    }
}

/// This document.
#[utoipa::path(get, path = "/api/openapi.json", tag = "meta",
    responses((status = 200, description = "This OpenAPI 3.1 document", body = Object)))]
async fn document_get() -> impl IntoResponse {
    static JSON: LazyLock<String> =
        LazyLock::new(|| document().to_pretty_json().unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}")));
    ([(header::CONTENT_TYPE, "application/json")], JSON.as_str())
}

fn parts() -> (Router<AppState>, Document) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(document_get))
        .merge(super::api::router())
        .merge(super::api_admin::router())
        .merge(super::api_tickets::router())
        .split_for_parts()
}

/// Every API route, each with its operation in the document.
pub fn router() -> Router<AppState> {
    parts().0
}

/// The document, as `/api/openapi.json` serves it.
pub fn document() -> Document {
    let (_, mut doc) = parts();
    Common.modify(&mut doc);
    doc
}
