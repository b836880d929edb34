use super::error::{ACTOR, PageError, REQUEST_ID};
use super::{AppState, BODY_LIMIT};
use crate::crypto::{ct_eq, random_token};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};

/// The CSRF token to put in this response's forms.
#[derive(Clone)]
pub struct CsrfToken(pub String);

/// The route a request matched (its template, such as `/api/v1/people/{id}`), carried out on the response
/// for the request's log line.
#[derive(Clone)]
pub struct Route(pub String);

/// Put the matched route on the response (a route layer: it runs only for requests that matched one).
pub async fn matched_route(req: Request, next: Next) -> Response {
    let route = req.extensions().get::<axum::extract::MatchedPath>().map(|m| m.as_str().to_owned());
    let mut response = next.run(req).await;
    if let Some(route) = route {
        response.extensions_mut().insert(Route(route));
    }
    response
}

/// Give every request an id (echoed as `x-request-id`, shown on error pages, used in logs), and log one line
/// for it: the id, the method, the route's template (never the address itself: links carry tokens in their
/// query), who it acted as (ids only), the status and how long it took.
pub async fn request_id(req: Request, next: Next) -> Response {
    let id = hex::encode(rand::random::<[u8; 8]>());
    let method = req.method().clone();
    let started = std::time::Instant::now();
    let actor = std::sync::Arc::new(std::sync::Mutex::new(None));
    let mut response = REQUEST_ID.scope(id.clone(), ACTOR.scope(actor.clone(), next.run(req))).await;
    let route = response.extensions().get::<Route>().map(|r| r.0.clone()).unwrap_or_else(|| "(no route)".into());
    let actor = actor.lock().ok().and_then(|a| a.clone()).unwrap_or_else(|| "-".into());
    super::metrics::request(&route, response.status().as_u16(), started.elapsed().as_secs_f64());
    tracing::info!(
        target: "lifeline::request",
        request_id = %id,
        method = %method,
        route = %route,
        actor = %actor,
        status = response.status().as_u16(),
        duration_ms = started.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

/// Put on a response whose page loads Lifeline's one script (`/static/passkey.js`): only such a page's CSP
/// allows a script, and only that same-origin file (never inline script), and lets it call back home.
#[derive(Clone, Copy)]
pub struct LoadsScript;

/// The CSP of every page: no script at all, styles and images only from ourselves, forms only to ourselves.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
/// The CSP of the passkey pages: the same, plus scripts from this origin's files (no inline script, no
/// `eval`) and requests back to it.
pub const CSP_WITH_SCRIPT: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; \
    img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Strict CSP (no script at all, styles only from ourselves), no framing, no sniffing, no caching of
/// pages that may show secrets (backup codes, QR codes), and HSTS when Lifeline is reached over https.
pub async fn security_headers(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let script = response.extensions().get::<LoadsScript>().is_some();
    let headers = response.headers_mut();
    if state.https() {
        // Two years, this host only: subdomains belong to whoever runs them.
        headers.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=63072000"));
    }
    let set = |h: &mut axum::http::HeaderMap, name: &'static str, value: &'static str| {
        h.insert(name, HeaderValue::from_static(value));
    };
    set(headers, "content-security-policy", if script { CSP_WITH_SCRIPT } else { CSP });
    set(headers, "x-content-type-options", "nosniff");
    set(headers, "x-frame-options", "DENY");
    // `same-origin`, not `no-referrer`: under `no-referrer` a browser sends `Origin: null` with every form POST
    // (Fetch, "serializing a request origin"), which the CSRF check rightly refuses. Links out of Lifeline
    // still carry no referrer, so a token in a page's address never leaves the site.
    set(headers, "referrer-policy", "same-origin");
    if !headers.contains_key(header::CACHE_CONTROL) {
        set(headers, "cache-control", "no-store");
    }
    response
}

/// Signed double-submit CSRF protection for every form POST.
///
/// A visitor gets a random nonce cookie; forms carry HMAC(csrf key, nonce, session cookie). A cross-site
/// page can make a browser send the cookies but can neither read them nor compute the MAC. Binding the token
/// to the session (when there is one) means a nonce and token pair obtained elsewhere — say, planted as a
/// cookie by a sibling subdomain — is worthless against a signed-in browser. The body is read here
/// (bounded) and handed on unchanged, so handlers never see a request that failed the check.
pub async fn csrf_guard(State(state): State<AppState>, jar: CookieJar, req: Request, next: Next) -> Response {
    let name = state.cookie_name("lifeline_csrf");
    let existing = jar.get(&name).map(|c| c.value().to_owned()).filter(|v| v.len() == 43);
    let fresh = existing.is_none();
    let nonce = existing.unwrap_or_else(random_token);
    let session = jar.get(&state.cookie_name(super::session::SESSION_COOKIE)).map(|c| c.value().to_owned());
    let mut bound = nonce.clone().into_bytes();
    if let Some(session) = session.filter(|v| v.len() == 43) {
        bound.push(0);
        bound.extend_from_slice(session.as_bytes());
    }
    let token = state.keys().csrf_mac(&bound);

    let mut req = if req.method() != Method::GET
        && req.method() != Method::HEAD
        && !req.uri().path().starts_with("/api/")
    {
        let (parts, body) = req.into_parts();
        let bytes = match axum::body::to_bytes(body, BODY_LIMIT).await {
            Ok(bytes) => bytes,
            Err(_) => {
                return PageError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("The form is larger than {} KiB.", BODY_LIMIT / 1024),
                )
                .into_response();
            }
        };
        let submitted = form_urlencoded::parse(&bytes).find(|(k, _)| k == "csrf").map(|(_, v)| v.into_owned());
        let public_url = &state.settings().public_url;
        let elsewhere = cross_site(&parts.headers, public_url);
        let valid = !fresh && !elsewhere && submitted.is_some_and(|s| ct_eq(s.as_bytes(), token.as_bytes()));
        if !valid {
            // A page opened under another name for this server (127.0.0.1 for localhost) posts from an origin
            // that is not Lifeline's: say where Lifeline is.
            let message = if elsewhere {
                format!("This form did not come from this site's address. Open Lifeline at {public_url} and try again.")
            } else {
                "This form has expired or did not come from this site. Go back, reload the page and try again."
                    .to_owned()
            };
            let mut response = PageError::new(StatusCode::FORBIDDEN, message).into_response();
            if fresh {
                append_cookie(&mut response, csrf_cookie(&state, name, nonce));
            }
            return response;
        }
        Request::from_parts(parts, Body::from(bytes))
    } else {
        req
    };
    req.extensions_mut().insert(CsrfToken(token));
    let mut response = next.run(req).await;
    if fresh {
        append_cookie(&mut response, csrf_cookie(&state, name, nonce));
    }
    response
}

/// What the browser says about where a form came from, as a second line behind the token: a form posted
/// from another site (`Sec-Fetch-Site: cross-site`, or an `Origin` other than Lifeline's own, `null`
/// included) is refused even with a valid token. Clients that send neither header are judged by the token.
fn cross_site(headers: &axum::http::HeaderMap, public_url: &str) -> bool {
    if headers.get("sec-fetch-site").is_some_and(|v| v.as_bytes() == b"cross-site") {
        return true;
    }
    let Some(origin) = headers.get(header::ORIGIN) else { return false };
    // The public URL's origin: scheme, host and port, without any path.
    let own = match public_url.find("://") {
        Some(i) => public_url[i + 3..].find('/').map_or(public_url, |j| &public_url[..i + 3 + j]),
        None => public_url,
    };
    !origin.as_bytes().eq_ignore_ascii_case(own.trim_end_matches('/').as_bytes())
}

fn csrf_cookie(state: &AppState, name: String, nonce: String) -> Cookie<'static> {
    Cookie::build((name, nonce)).path("/").http_only(true).secure(state.https()).same_site(SameSite::Strict).build()
}

pub fn append_cookie(response: &mut Response, cookie: Cookie<'_>) {
    if let Ok(value) = HeaderValue::from_str(&cookie.to_string()) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}
