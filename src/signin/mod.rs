//! Signing in: password, second factor (TOTP or backup code), lockout, required actions, enrolment,
//! and the self-service password reset with security questions.
//!
//! Invariants:
//! - an unknown login costs the same work as a known one (a dummy argon2 verification) and gets the same
//!   answer as a wrong password;
//! - a locked or disabled account says so only after a correct password;
//! - the failure counter counts wrong passwords *and* wrong second factors, and starts again only after a
//!   complete sign-in, so knowing the password does not buy unlimited guesses at the code;
//! - every attempt is a sign-in event with its client IP, place and network.

mod backup_codes;
mod overview;
mod security_questions;

pub use backup_codes::{BACKUP_CODE_COUNT, normalise_backup_code};
pub use overview::{AccountOverview, Operator};
pub use security_questions::{QaResetError, normalise_answer};

use crate::audit::{Actor, AuditEntry};
use crate::config::Settings;
use crate::crypto::{Keys, PasswordHasher, TokenHash};
use crate::domain::{Account, AccountId, PersonStatus, Timestamp};
use crate::geo::Geo;
use crate::policy::password::{self, PasswordRejection};
use crate::store::{SessionStage, SignInEvent, Store, StoreError};
use crate::totp::{self, TotpSecret};
use std::net::IpAddr;
use std::sync::Arc;

/// The time, as the services see it. Tests pass a fixed one.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        chrono::Utc::now().timestamp()
    }
}

/// Who is asking, as the HTTP layer saw it.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub ip: IpAddr,
    pub user_agent: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Password(#[from] PasswordRejection),
    /// The password of a synchronized or SSO account is mastered elsewhere.
    #[error("This account's password is managed elsewhere, not by Lifeline.")]
    NotLocal,
    #[error("{0}")]
    Unexpected(String),
}

/// What the password step decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordOutcome {
    /// Unknown login, no password, or wrong password: one answer for all.
    Invalid,
    /// Correct password, but the account is locked.
    Locked,
    /// Correct password, but the person is disabled.
    Disabled,
    Proceed {
        account: AccountId,
        stage: SessionStage,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecondFactorOutcome {
    Invalid,
    Locked,
    Proceed(SessionStage),
}

/// A pending TOTP enrolment, to show as QR code, URI and secret.
#[derive(Debug, Clone)]
pub struct Enrolment {
    pub secret_base32: String,
    pub uri: String,
    pub qr_svg: String,
}

/// Everything sign-in needs, shared by pages and CLI.
pub struct SignIn {
    pub store: Arc<dyn Store>,
    pub keys: Keys,
    pub hasher: PasswordHasher,
    pub geo: Arc<Geo>,
    pub settings: Arc<Settings>,
    pub clock: Arc<dyn Clock>,
}

impl SignIn {
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// A sign-in event for this request, with its place and network.
    fn sign_in_event(
        &self,
        account: Option<AccountId>,
        outcome: &str,
        method: &str,
        ctx: &RequestContext,
    ) -> SignInEvent {
        let location = self.geo.locate(ctx.ip);
        SignInEvent {
            account_id: account,
            at: self.now(),
            outcome: outcome.into(),
            method: method.into(),
            client_ip: ctx.ip.to_string(),
            city: location.city,
            country: location.country,
            asn: location.asn,
            network: location.network,
            user_agent: ctx.user_agent.chars().take(512).collect(),
        }
    }

    async fn event(
        &self,
        account: Option<AccountId>,
        outcome: &str,
        method: &str,
        ctx: &RequestContext,
    ) -> Result<(), SignInError> {
        self.store.record_sign_in(&self.sign_in_event(account, outcome, method, ctx)).await?;
        Ok(())
    }

    async fn person_active(&self, account: &Account) -> Result<bool, SignInError> {
        Ok(self.store.person(account.person_id).await?.is_some_and(|p| p.status == PersonStatus::Active))
    }

    async fn has_second_factor(&self, account: AccountId) -> Result<bool, SignInError> {
        let totp = self.store.totp(account).await?.is_some_and(|t| t.confirmed_at.is_some());
        Ok(totp || self.store.unused_backup_codes(account).await? > 0)
    }

    /// Step one: the password.
    #[tracing::instrument(skip_all)]
    pub async fn password(
        &self,
        login: &str,
        password: &str,
        ctx: &RequestContext,
    ) -> Result<PasswordOutcome, SignInError> {
        let started = std::time::Instant::now();
        let outcome = self.check_password(login, password, ctx).await?;
        // A failed attempt is answered no sooner than the floor: whether the login exists changes how much
        // is written (a failure counter, a lock), and the floor keeps that out of the timing.
        if outcome == PasswordOutcome::Invalid {
            let floor = std::time::Duration::from_millis(u64::from(self.settings.policy.failed_sign_in_floor_ms));
            if let Some(rest) = floor.checked_sub(started.elapsed()) {
                tokio::time::sleep(rest).await;
            }
        }
        Ok(outcome)
    }

    async fn check_password(
        &self,
        login: &str,
        password: &str,
        ctx: &RequestContext,
    ) -> Result<PasswordOutcome, SignInError> {
        let account = if login.trim().is_empty() || login.len() > 254 {
            None
        } else {
            self.store.account_by_login(login).await?
        };
        let stored = account.as_ref().and_then(|a| a.password_hash.as_deref());
        let correct = self.hasher.verify(password, stored).await;
        let now = self.now();
        let account = match account {
            Some(account) if correct => account,
            Some(account) => {
                let event = self.sign_in_event(Some(account.id), "bad_password", "password", ctx);
                if account.lock().is_locked(now) {
                    self.store.record_sign_in(&event).await?;
                } else if self.store.record_failure(account.id, &self.settings.lockout, now, &event).await?.locked_now {
                    tracing::warn!(account = account.id, "account locked after repeated failures");
                }
                return Ok(PasswordOutcome::Invalid);
            }
            None => {
                self.event(None, "unknown_account", "password", ctx).await?;
                return Ok(PasswordOutcome::Invalid);
            }
        };
        if account.lock().is_locked(now) {
            self.event(Some(account.id), "locked", "password", ctx).await?;
            return Ok(PasswordOutcome::Locked);
        }
        if !self.person_active(&account).await? {
            self.event(Some(account.id), "disabled", "password", ctx).await?;
            return Ok(PasswordOutcome::Disabled);
        }
        let stage = if self.has_second_factor(account.id).await? {
            SessionStage::Mfa
        } else if self.settings.policy.mfa_required || account.required.enroll_mfa {
            SessionStage::EnrollMfa
        } else if account.required.change_password {
            SessionStage::ChangePassword
        } else {
            SessionStage::Active
        };
        if stage == SessionStage::Active {
            self.store.reset_failures(account.id).await?;
            self.event(Some(account.id), "success", "password", ctx).await?;
        } else {
            self.event(Some(account.id), "password_accepted", "password", ctx).await?;
        }
        Ok(PasswordOutcome::Proceed { account: account.id, stage })
    }

    /// The stage after the second factor (or after enrolling one).
    fn after_mfa(account: &Account) -> SessionStage {
        if account.required.change_password { SessionStage::ChangePassword } else { SessionStage::Active }
    }

    /// Step two: a TOTP code (six digits) or a backup code (anything else).
    #[tracing::instrument(skip_all, fields(account = account_id))]
    pub async fn second_factor(
        &self,
        account_id: AccountId,
        code: &str,
        ctx: &RequestContext,
    ) -> Result<SecondFactorOutcome, SignInError> {
        let now = self.now();
        let Some(account) = self.store.account(account_id).await? else { return Ok(SecondFactorOutcome::Invalid) };
        if account.lock().is_locked(now) {
            return Ok(SecondFactorOutcome::Locked);
        }
        let next = Self::after_mfa(&account);
        let success = if next == SessionStage::Active { "success" } else { "second_factor_accepted" };
        let digits: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        // The code is used up and the successful attempt recorded in one transaction.
        let (accepted, method) = if digits.len() == totp::DIGITS as usize && digits.bytes().all(|b| b.is_ascii_digit())
        {
            let event = self.sign_in_event(Some(account_id), success, "totp", ctx);
            (self.check_totp(account_id, &digits, now, &event).await?, "totp")
        } else {
            let normalised = normalise_backup_code(code);
            let event = self.sign_in_event(Some(account_id), success, "backup_code", ctx);
            let hash = TokenHash::of(&self.keys, "backup-code", &normalised);
            let accepted =
                !normalised.is_empty() && self.store.consume_backup_code(account_id, &hash, now, &event).await?;
            (accepted, "backup_code")
        };
        if !accepted {
            let event = self.sign_in_event(Some(account_id), "bad_second_factor", method, ctx);
            let result = self.store.record_failure(account_id, &self.settings.lockout, now, &event).await?;
            return Ok(if result.locked_now { SecondFactorOutcome::Locked } else { SecondFactorOutcome::Invalid });
        }
        self.store.reset_failures(account_id).await?;
        Ok(SecondFactorOutcome::Proceed(next))
    }

    async fn check_totp(
        &self,
        account: AccountId,
        code: &str,
        now: Timestamp,
        event: &SignInEvent,
    ) -> Result<bool, SignInError> {
        let Some(record) = self.store.totp(account).await?.filter(|r| r.confirmed_at.is_some()) else {
            return Ok(false);
        };
        let secret = self.open_secret(account, &record.sealed_secret)?;
        match totp::verify(&secret, code, now, record.last_used_step) {
            // The conditional update refuses a step that another request used first.
            Some(step) => Ok(self.store.use_totp_step(account, step, event).await?),
            None => Ok(false),
        }
    }

    fn open_secret(&self, account: AccountId, sealed: &[u8]) -> Result<TotpSecret, SignInError> {
        self.keys
            .open(sealed, &format!("totp:{account}"))
            .map(TotpSecret::from_bytes)
            .map_err(|e| SignInError::Unexpected(e.to_string()))
    }

    /// Start (or show again) a TOTP enrolment for an account that has no confirmed authenticator.
    pub async fn enrolment(&self, account_id: AccountId) -> Result<Enrolment, SignInError> {
        let account =
            self.store.account(account_id).await?.ok_or_else(|| SignInError::Unexpected("account vanished".into()))?;
        let secret = match self.store.totp(account_id).await? {
            Some(record) if record.confirmed_at.is_none() => self.open_secret(account_id, &record.sealed_secret)?,
            _ => {
                let secret = TotpSecret::generate();
                let sealed = self.keys.seal(secret.as_bytes(), &format!("totp:{account_id}"));
                self.store.begin_totp_enrolment(account_id, &sealed, self.now()).await?;
                secret
            }
        };
        let uri = secret.otpauth_uri(&self.settings.organisation, &account.username);
        let qr_svg = totp::qr_svg(&uri).unwrap_or_default();
        Ok(Enrolment { secret_base32: secret.to_base32(), uri, qr_svg })
    }

    /// Confirm an enrolment with a valid code: returns the new backup codes (shown once), or `None` when
    /// the code is wrong.
    pub async fn confirm_enrolment(
        &self,
        account_id: AccountId,
        code: &str,
    ) -> Result<Option<(Vec<String>, SessionStage)>, SignInError> {
        let now = self.now();
        let Some(record) = self.store.totp(account_id).await?.filter(|r| r.confirmed_at.is_none()) else {
            return Ok(None);
        };
        let secret = self.open_secret(account_id, &record.sealed_secret)?;
        let Some(step) = totp::verify(&secret, code, now, -1) else { return Ok(None) };
        let (codes, hashes) = backup_codes::generate(&self.keys);
        let account = self.account_or_gone(account_id).await?;
        let audit = self.self_service(&account, "mfa.enrol").details("totp and 10 backup codes");
        if !self.store.confirm_totp(account_id, step, &hashes, now, &audit).await? {
            return Ok(None);
        }
        self.store.reset_failures(account_id).await?;
        Ok(Some((codes, Self::after_mfa(&account))))
    }

    /// Enrol TOTP directly, as the system (CLI `person add --totp`, demo data): returns the backup codes.
    pub async fn enrol_totp_now(&self, account_id: AccountId, secret: &TotpSecret) -> Result<Vec<String>, SignInError> {
        let now = self.now();
        let account = self.account_or_gone(account_id).await?;
        let sealed = self.keys.seal(secret.as_bytes(), &format!("totp:{account_id}"));
        self.store.begin_totp_enrolment(account_id, &sealed, now).await?;
        let (codes, hashes) = backup_codes::generate(&self.keys);
        let audit = AuditEntry::new(now, &Actor::System, "mfa.enrol", "success")
            .person(account.person_id)
            .account(account_id)
            .details("totp and 10 backup codes");
        self.store.confirm_totp(account_id, -1, &hashes, now, &audit).await?;
        Ok(codes)
    }

    pub async fn regenerate_backup_codes(&self, account_id: AccountId) -> Result<Vec<String>, SignInError> {
        let account = self.account_or_gone(account_id).await?;
        let (codes, hashes) = backup_codes::generate(&self.keys);
        let audit = self.self_service(&account, "backup_codes.regenerate");
        self.store.replace_backup_codes(account_id, &hashes, self.now(), &audit).await?;
        Ok(codes)
    }

    pub(crate) async fn account_or_gone(&self, account_id: AccountId) -> Result<Account, SignInError> {
        self.store.account(account_id).await?.ok_or_else(|| SignInError::Unexpected("account vanished".into()))
    }

    /// The audit entry of something an account holder did for themself.
    pub(crate) fn self_service(&self, account: &Account, action: &str) -> AuditEntry {
        let actor = Actor::Account { account_id: account.id, username: account.username.clone() };
        AuditEntry::new(self.now(), &actor, action, "success").person(account.person_id).account(account.id)
    }

    /// Words a password must not be built from: the person's name, email and username.
    async fn personal_words(&self, account: &Account) -> Result<Vec<String>, SignInError> {
        let mut words = vec![account.username.clone()];
        if let Some(person) = self.store.person(account.person_id).await? {
            words.push(person.email.to_string());
            words.extend(person.email.as_str().split(['@', '.']).map(str::to_owned));
            words.extend(person.display_name.split_whitespace().map(str::to_lowercase));
        }
        Ok(words)
    }

    /// Check a new password against the rule, with this account's personal words.
    pub async fn check_new_password(&self, account: &Account, new: &str, confirm: &str) -> Result<(), SignInError> {
        if new != confirm {
            return Err(PasswordRejection::Mismatch.into());
        }
        let words = self.personal_words(account).await?;
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        password::check(new, self.settings.policy.mfa_required, &words)?;
        Ok(())
    }

    /// Set a new password chosen by the account holder (a required change, or from their account page).
    pub async fn change_password(&self, account_id: AccountId, new: &str, confirm: &str) -> Result<(), SignInError> {
        let account =
            self.store.account(account_id).await?.ok_or_else(|| SignInError::Unexpected("account vanished".into()))?;
        if account.source != crate::domain::AccountSource::Local {
            return Err(SignInError::NotLocal);
        }
        self.check_new_password(&account, new, confirm).await?;
        let hash = self.hasher.hash(new).await.map_err(|e| SignInError::Unexpected(e.to_string()))?;
        let audit = self.self_service(&account, "password.change");
        self.store.set_password(account_id, &hash, false, self.now(), &audit).await?;
        Ok(())
    }
}
