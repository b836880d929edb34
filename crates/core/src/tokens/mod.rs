//! Personal API tokens (issue 10): a token acts as its account, with the person's permissions and rank read
//! at each call (a lost grant or a disabled person loses it at once: the proof is made per call by the one
//! `Authority`). A token is 256 random bits, shown once, stored only as a keyed hash. An expert token stands in
//! for the console's step-up, so it lives an hour at most (`api.expert_token_max_minutes`).

use crate::audit::{Actor, AuditEntry};
use crate::authz::{IssueToken, ManageOwnTokens, Proof};
use crate::crypto::{TokenHash, random_token};
use crate::domain::Timestamp;
use crate::services::Core;
use crate::store::{ApiToken, DirectoryStore, NewApiToken, StoreError, TokenStore};
use std::sync::Arc;

/// Tokens start with this, so a scanner (and a person) can tell a Lifeline token from other secrets.
pub const PREFIX: &str = "llt_";

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{0}")]
    Invalid(String),
    #[error("no such token")]
    NotFound,
    /// An expert token made in the console needs a second factor as fresh as an expert action's.
    #[error("an expert token needs your authenticator code: it stands in for the console's step-up")]
    StepUp,
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub trait TokenServiceStore: TokenStore + DirectoryStore {}
impl<T: TokenStore + DirectoryStore> TokenServiceStore for T {}

/// A token just made: the only time its secret exists outside the caller's hands.
#[derive(Debug)]
pub struct Issued {
    pub id: i64,
    pub secret: String,
    pub expires_at: Timestamp,
}

pub struct Tokens {
    core: Arc<Core>,
    store: Arc<dyn TokenServiceStore>,
}

/// Unicode format characters (bidirectional overrides, zero-width ones, the BOM, the soft hyphen): invisible in
/// a name, they could make "olga" read as someone else's token in an approval list or the audit log.
fn invisible(c: char) -> bool {
    matches!(c, '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}')
}

fn hash(core: &Core, secret: &str) -> TokenHash {
    TokenHash::of(&core.keys, "api-token", secret)
}

impl Tokens {
    pub(crate) fn new(core: Arc<Core>, store: Arc<dyn TokenServiceStore>) -> Self {
        Self { core, store }
    }

    /// Make a token named `name` for the proof's subject (their first account), living `minutes` (the CLI).
    pub async fn create(
        &self,
        proof: Proof<IssueToken>,
        name: &str,
        minutes: u32,
        expert: bool,
    ) -> Result<Issued, TokenError> {
        let person = proof.subject().ok_or(TokenError::NotFound)?;
        let account = self.store.accounts_of(person).await?.into_iter().next().ok_or(TokenError::NotFound)?;
        self.issue(proof.actor(), person, account.id, name, minutes, expert).await
    }

    /// Make a token for the signed-in actor's own account (the console). An expert token needs a second factor
    /// proved within `recovery.step_up_minutes` (`second_factor_at`), as an expert action does in the console.
    pub async fn create_own(
        &self,
        proof: Proof<ManageOwnTokens>,
        name: &str,
        minutes: u32,
        expert: bool,
        second_factor_at: Option<Timestamp>,
    ) -> Result<Issued, TokenError> {
        let account = proof.actor_account().ok_or(TokenError::NotFound)?;
        let person = self.store.account(account).await?.ok_or(TokenError::NotFound)?.person_id;
        if expert && !crate::policy::recovery::fresh(second_factor_at, self.core.now(), &self.core.settings.recovery) {
            return Err(TokenError::StepUp);
        }
        self.issue(proof.actor(), person, account, name, minutes, expert).await
    }

    async fn issue(
        &self,
        actor: &Actor,
        person: crate::domain::PersonId,
        account: crate::domain::AccountId,
        name: &str,
        minutes: u32,
        expert: bool,
    ) -> Result<Issued, TokenError> {
        let settings = &self.core.settings.api;
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(|c| c.is_control() || invisible(c)) {
            return Err(TokenError::Invalid(
                "the token name must be 1 to 100 characters, without control or invisible characters".into(),
            ));
        }
        let max = if expert { settings.expert_token_max_minutes } else { settings.token_max_days * 24 * 60 };
        if minutes == 0 || minutes > max {
            return Err(TokenError::Invalid(if expert {
                format!("an expert token lives at most {max} minutes (it stands in for the console's step-up)")
            } else {
                format!("a token lives at most {} days", settings.token_max_days)
            }));
        }
        let secret = format!("{PREFIX}{}", random_token());
        let now = self.core.now();
        let expires_at = now + i64::from(minutes) * 60;
        let hash = hash(&self.core, &secret);
        let token = NewApiToken { account, name, hash: &hash, expert, expires_at };
        let audit = AuditEntry::new(now, actor, "token.create", "success")
            .person(person)
            .account(account)
            .details(format!("\"{name}\"{}, until {}", if expert { ", expert" } else { "" }, expires_at));
        let id = self.store.create_token(&token, now, &audit).await?;
        Ok(Issued { id, secret, expires_at })
    }

    /// The tokens of the signed-in actor's own account.
    pub async fn list_own(&self, proof: &Proof<ManageOwnTokens>) -> Result<Vec<ApiToken>, TokenError> {
        let account = proof.actor_account().ok_or(TokenError::NotFound)?;
        Ok(self.store.tokens(Some(account)).await?)
    }

    /// Revoke one of the actor's own tokens; another account's token is `NotFound`, as an unknown one is
    /// (nothing is told about tokens that are not yours).
    pub async fn revoke_own(&self, proof: Proof<ManageOwnTokens>, id: i64) -> Result<bool, TokenError> {
        let account = proof.actor_account().ok_or(TokenError::NotFound)?;
        match self.store.token(id).await? {
            Some(token) if token.account == account => self.revoke(proof.actor(), id).await,
            _ => Err(TokenError::NotFound),
        }
    }

    /// Every token (`None`) or those of a person's accounts.
    pub async fn list(&self, person: Option<crate::domain::PersonId>) -> Result<Vec<ApiToken>, TokenError> {
        match person {
            None => Ok(self.store.tokens(None).await?),
            Some(person) => {
                let mut out = Vec::new();
                for account in self.store.accounts_of(person).await? {
                    out.extend(self.store.tokens(Some(account.id)).await?);
                }
                Ok(out)
            }
        }
    }

    /// Revoke token `id`, as `actor`; false when it was revoked already.
    pub async fn revoke(&self, actor: &Actor, id: i64) -> Result<bool, TokenError> {
        let Some(token) = self.store.token(id).await? else { return Err(TokenError::NotFound) };
        let now = self.core.now();
        let person = self.store.account(token.account).await?.map(|a| a.person_id);
        let mut audit = AuditEntry::new(now, actor, "token.revoke", "success")
            .account(token.account)
            .details(format!("token {id} \"{}\"", token.name));
        audit.subject_person_id = person.map(|p| p.0);
        Ok(self.store.revoke_token(id, now, &audit).await?)
    }

    /// The live token `secret` names, marked used now; `None` for anything else (one answer).
    pub async fn authenticate(&self, secret: &str) -> Result<Option<ApiToken>, TokenError> {
        if !secret.starts_with(PREFIX) || secret.len() > 100 {
            return Ok(None);
        }
        Ok(self.store.use_token(&hash(&self.core, secret), self.core.now()).await?)
    }
}
