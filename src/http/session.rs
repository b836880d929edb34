//! The session cookie: an HttpOnly, SameSite cookie (Secure and `__Host-` on https) that carries the token
//! the sign-in service hands out. Creating, moving on and ending sessions is the service's business.

use super::middleware::append_cookie;
use super::{AppState, PageError};
use crate::domain::AccountId;
use crate::geo;
use crate::signin::{LiveSession, RequestContext};
use crate::store::SessionStage;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

pub const SESSION_COOKIE: &str = "lifeline_session";

/// The request's session, if it carries a live one.
pub struct MaybeSession(pub Option<Session>);

pub type Session = LiveSession;

impl FromRequestParts<AppState> for MaybeSession {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let jar = CookieJar::from_headers(&parts.headers);
        let Some(cookie) = jar.get(&state.cookie_name(SESSION_COOKIE)) else { return Ok(Self(None)) };
        let session = state.signin.session(cookie.value()).await?;
        if let Some(s) = &session {
            super::error::note_actor(format!("account:{}", s.account_id.0));
        }
        Ok(Self(session))
    }
}

/// Where a session at `stage` belongs.
pub fn stage_path(stage: SessionStage) -> &'static str {
    match stage {
        SessionStage::Mfa => "/signin/mfa",
        SessionStage::EnrollMfa => "/signin/enroll",
        SessionStage::ChangePassword => "/account/password",
        SessionStage::DeviceAuthorization => "/signin/device",
        SessionStage::Recovering => "/recover/options",
        SessionStage::EnrollPasskey => "/signin/passkey/enrol",
        SessionStage::Active => "/",
    }
}

impl MaybeSession {
    /// The session if it is at one of `stages`; otherwise a redirect to where it belongs.
    pub fn at(self, stages: &[SessionStage]) -> Result<Session, Redirect> {
        match self.0 {
            Some(s) if stages.contains(&s.stage) => Ok(s),
            Some(s) => Err(Redirect::to(stage_path(s.stage))),
            None => Err(Redirect::to("/signin")),
        }
    }
}

fn session_cookie(state: &AppState, value: String) -> Cookie<'static> {
    Cookie::build((state.cookie_name(SESSION_COOKIE), value))
        .path("/")
        .http_only(true)
        .secure(state.https())
        .same_site(SameSite::Lax)
        .build()
}

/// Start a new session (after the password) and send its cookie with a redirect to its stage.
pub async fn start(
    state: &AppState,
    old: Option<&Session>,
    account: AccountId,
    stage: SessionStage,
) -> Result<Response, PageError> {
    if stage == SessionStage::DeviceAuthorization {
        // The first sign-in after an MFA reset, however the first factor was proved: a code goes to the
        // registered address before the session asks for it.
        state.recovery.send_device_code(account).await?;
    }
    let token = state.signin.start_session(old, account, stage).await?;
    let mut response = Redirect::to(stage_path(stage)).into_response();
    append_cookie(&mut response, session_cookie(state, token));
    Ok(response)
}

/// Start a session after a complete passkey sign-in (a second factor proved as it starts), with a redirect.
pub async fn start_with_second_factor(
    state: &AppState,
    old: Option<&Session>,
    account: AccountId,
    stage: SessionStage,
) -> Result<Response, PageError> {
    let token = state.signin.start_session_with_second_factor(old, account, stage).await?;
    let mut response = Redirect::to(stage_path(stage)).into_response();
    append_cookie(&mut response, session_cookie(state, token));
    Ok(response)
}

/// Move a session to its next stage under a new token; `response` gets the new cookie.
pub async fn advance(
    state: &AppState,
    session: &Session,
    stage: SessionStage,
    mut response: Response,
) -> Result<Response, PageError> {
    let Some(token) = state.signin.advance_session(session, stage).await? else {
        return Ok(Redirect::to("/signin").into_response());
    };
    append_cookie(&mut response, session_cookie(state, token));
    Ok(response)
}

/// End a session and clear its cookie.
pub async fn end(state: &AppState, session: Option<&Session>, mut response: Response) -> Result<Response, PageError> {
    if let Some(session) = session {
        state.signin.end_session(session).await?;
    }
    let mut cookie = session_cookie(state, String::new());
    cookie.make_removal();
    append_cookie(&mut response, cookie);
    Ok(response)
}

/// The client as the server sees it: address (through trusted proxies) and user agent.
pub struct Client(pub RequestContext);

impl FromRequestParts<AppState> for Client {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let forwarded: Vec<&str> =
            parts.headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).collect();
        let ip = geo::client_ip(peer, &forwarded, &state.settings().trusted_proxies);
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).chars().take(512).collect())
            .unwrap_or_default();
        Ok(Self(RequestContext { ip, user_agent }))
    }
}

/// Which stages a handler serves.
pub trait Stages: Send + Sync {
    const STAGES: &'static [SessionStage];
}

/// A signed-in session (every step done).
pub struct Active;
/// Password given, the second factor due.
pub struct SecondFactor;
/// Password given, an authenticator to set up first.
pub struct Enrolling;
/// A password to choose: required right after signing in, or by choice when signed in.
pub struct ChoosingPassword;
/// After an MFA reset: the emailed device authorization code is due.
pub struct AuthorizingDevice;
/// A recovery code was redeemed: set a new password or remove the authenticator.
pub struct Recovering;
/// A second factor to set up, and a passkey may be it: an enrolment code was redeemed (a passkey only), or
/// the session must enrol (after a temporary access pass or an MFA reset) and chose a passkey over an app.
pub struct AddingPasskey;

impl Stages for Active {
    const STAGES: &'static [SessionStage] = &[SessionStage::Active];
}
impl Stages for SecondFactor {
    const STAGES: &'static [SessionStage] = &[SessionStage::Mfa];
}
impl Stages for Enrolling {
    const STAGES: &'static [SessionStage] = &[SessionStage::EnrollMfa];
}
impl Stages for AuthorizingDevice {
    const STAGES: &'static [SessionStage] = &[SessionStage::DeviceAuthorization];
}
impl Stages for Recovering {
    const STAGES: &'static [SessionStage] = &[SessionStage::Recovering];
}
impl Stages for AddingPasskey {
    const STAGES: &'static [SessionStage] = &[SessionStage::EnrollPasskey, SessionStage::EnrollMfa];
}
impl Stages for ChoosingPassword {
    const STAGES: &'static [SessionStage] = &[SessionStage::ChangePassword, SessionStage::Active];
}

/// A session at one of the stages `S` serves. Any other request is sent where it belongs (to sign in, or to
/// the step its session is at) before the handler runs, so no handler matches on stages itself.
pub struct AtStage<S: Stages>(pub Session, pub std::marker::PhantomData<S>);

impl<S: Stages> FromRequestParts<AppState> for AtStage<S> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let session = MaybeSession::from_request_parts(parts, state).await.map_err(IntoResponse::into_response)?;
        match session.at(S::STAGES) {
            Ok(session) => Ok(Self(session, std::marker::PhantomData)),
            Err(redirect) => Err(redirect.into_response()),
        }
    }
}
