//! Sessions belong to sign-in: this service creates them, moves them to their next stage under a new token,
//! finds the live one for a token, and ends them. The HTTP layer only carries the token in a cookie.
//!
//! The browser holds a 256-bit random token; the database holds only its keyed hash. Every completed sign-in
//! step replaces the token, so a token seen before authentication is worthless after it.

use super::{SignIn, SignInError};
use crate::crypto::{TokenHash, random_token};
use crate::domain::AccountId;
use crate::store::SessionStage;

/// A live session, found by the token a browser presented.
#[derive(Clone)]
pub struct LiveSession {
    pub token: TokenHash,
    pub account_id: AccountId,
    pub stage: SessionStage,
    /// When this session last proved a second factor.
    pub second_factor_at: Option<crate::domain::Timestamp>,
    /// When the sign-in that made it began.
    pub signed_in_at: crate::domain::Timestamp,
}

/// The length of a token as the browser holds it (256 bits, base64url without padding).
const TOKEN_LENGTH: usize = 43;

impl SignIn {
    fn session_hash(&self, token: &str) -> TokenHash {
        TokenHash::of(&self.core.keys, "session", token)
    }

    fn session_lifetime(&self, stage: SessionStage) -> i64 {
        let policy = &self.core.settings.policy;
        let minutes =
            if stage == SessionStage::Active { policy.session_minutes } else { policy.pending_sign_in_minutes };
        i64::from(minutes) * 60
    }

    /// The live session a browser's token names (see `SessionStore::session` for what is not live).
    pub async fn session(&self, token: &str) -> Result<Option<LiveSession>, SignInError> {
        if token.len() != TOKEN_LENGTH {
            return Ok(None);
        }
        let hash = self.session_hash(token);
        let record = self.store.session(&hash, self.now()).await?;
        Ok(record.map(|r| LiveSession {
            token: hash,
            account_id: r.account_id,
            stage: r.stage,
            second_factor_at: r.second_factor_at,
            signed_in_at: r.created_at,
        }))
    }

    /// Start a session after the password (ending the browser's earlier one); returns the token to hand over.
    pub async fn start_session(
        &self,
        old: Option<&LiveSession>,
        account: AccountId,
        stage: SessionStage,
    ) -> Result<String, SignInError> {
        if let Some(old) = old {
            self.store.delete_session(&old.token).await?;
        }
        let token = random_token();
        let now = self.now();
        self.store
            .create_session(&self.session_hash(&token), account, stage, now, now + self.session_lifetime(stage))
            .await?;
        Ok(token)
    }

    /// Start a session after a complete sign-in with a passkey (it proves a second factor as it starts);
    /// returns the token to hand over.
    pub async fn start_session_with_second_factor(
        &self,
        old: Option<&LiveSession>,
        account: AccountId,
        stage: SessionStage,
    ) -> Result<String, SignInError> {
        let token = self.start_session(old, account, stage).await?;
        self.store.mark_second_factor(&self.session_hash(&token), self.now()).await?;
        Ok(token)
    }

    /// Move a session to its next stage under a new token; `None` when the session is gone.
    pub async fn advance_session(
        &self,
        session: &LiveSession,
        stage: SessionStage,
    ) -> Result<Option<String>, SignInError> {
        let token = random_token();
        let now = self.now();
        let expires_at = now + self.session_lifetime(stage);
        let moved =
            self.store.advance_session(&session.token, &self.session_hash(&token), stage, now, expires_at).await?;
        Ok(moved.then_some(token))
    }

    /// A step-up: the session proved a second factor just now.
    pub(crate) async fn mark_second_factor(&self, session: &LiveSession) -> Result<(), SignInError> {
        Ok(self.store.mark_second_factor(&session.token, self.now()).await?)
    }

    pub async fn end_session(&self, session: &LiveSession) -> Result<(), SignInError> {
        Ok(self.store.delete_session(&session.token).await?)
    }
}
