//! Signing in: password, second factor (TOTP or backup code), lockout, required actions, enrolment,
//! and the self-service password reset with security questions.
//!
//! Invariants:
//! - an unknown login costs the same work as a known one (a dummy argon2 verification) and gets the same
//!   answer as a wrong password;
//! - every attempt on an account is *admitted* before it is checked (see `policy::lockout`): admission
//!   counts it as a failure at once, so parallel guesses cannot outrun the lock, and a locked account
//!   evaluates no guess at all — it gets the same answer, after the same floor, as a wrong password;
//! - a step completes only in a write that re-checks the account (not locked, person active), so a lock
//!   or a disabling that happens while an attempt is in flight wins;
//! - the failure counter counts wrong passwords *and* wrong second factors, and starts again only after a
//!   complete sign-in, so knowing the password does not buy unlimited guesses at the code;
//! - failed sign-ins are also limited per client address (per /64 for IPv6);
//! - every attempt is a sign-in event with its client IP, place and network.

mod alert;
pub(crate) use alert::alert_if_unusual;
pub(crate) mod attempts;
mod backup_codes;
mod overview;
mod password_change;
mod security_questions;
mod sessions;

use attempts::settled;
pub use backup_codes::{BACKUP_CODE_COUNT, normalise_backup_code};
pub use overview::AccountOverview;
pub use security_questions::{QaResetError, normalise_answer};
pub use sessions::LiveSession;

use crate::audit::{Actor, AuditEntry};
use crate::authz::{EnrolTotp, Proof};
use crate::crypto::TokenHash;
use crate::domain::{Account, AccountId, PersonStatus, Timestamp};
use crate::policy::lockout::Refusal;
use crate::policy::password::PasswordRejection;
use crate::services::Core;
use crate::store::{
    CodeUse, CredentialStore, DirectoryStore, EventStore, SessionStage, SessionStore, SignInEvent, StoreError,
    ThrottleStore,
};
use crate::totp::{self, TotpSecret};
use std::net::IpAddr;
use std::sync::Arc;

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
    /// The current password given to authorise a change is not right (or the account takes no attempt).
    #[error("Your current password is not right.")]
    CurrentPassword,
    /// Password hashing is saturated: nothing was checked; try again shortly (503).
    #[error("too many sign-ins at once")]
    Busy,
    /// Too many failed sign-ins from this client address.
    #[error("Too many failed sign-ins from your network. Try again in {retry_after} seconds.")]
    Throttled { retry_after: u64 },
    /// Binding an authenticator needs a sign-in within ten minutes (NIST SP 800-63B-4 §4.1.2.1).
    #[error("For this change, sign out and sign in again: your last sign-in was more than 10 minutes ago.")]
    NotFresh,
    #[error("{0}")]
    Unexpected(String),
}

impl From<crate::crypto::HashError> for SignInError {
    fn from(e: crate::crypto::HashError) -> Self {
        match e {
            crate::crypto::HashError::Busy => Self::Busy,
            e => Self::Unexpected(e.to_string()),
        }
    }
}

/// What the password step decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordOutcome {
    /// Unknown login, no password, wrong password, or an account that takes no attempt now (locked, or
    /// too soon after the last failure): one answer for all, whether or not the password was right.
    Invalid,
    /// Correct password, but the person is disabled.
    Disabled,
    /// Too many failed sign-ins from this client address: nothing was checked.
    Throttled {
        retry_after: u64,
    },
    Proceed {
        account: AccountId,
        stage: SessionStage,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecondFactorOutcome {
    Invalid,
    /// The account takes no attempt now (locked or disabled): the sign-in must start again.
    Refused,
    /// Too soon after a wrong code (the growing delay): nothing was checked; try again after this long. The
    /// person has proved the password already, so saying so gives nothing away.
    TooSoon {
        retry_after: u64,
    },
    Throttled {
        retry_after: u64,
    },
    /// `policy.admins_require_passkey`: this admin has a passkey and must use it; no code was checked.
    PasskeyRequired,
    Proceed(SessionStage),
}

/// A pending TOTP enrolment, to show as QR code, URI and secret.
#[derive(Debug, Clone)]
pub struct Enrolment {
    pub secret_base32: String,
    pub uri: String,
    pub qr_svg: String,
}

/// A sign-in event for a request at the core's `now`, with its place and network: every way of signing in
/// (password, second factor, an admin-issued code) records the same shape.
pub(crate) fn sign_in_event(
    core: &Core,
    account: Option<AccountId>,
    outcome: &str,
    method: &str,
    ctx: &RequestContext,
) -> SignInEvent {
    let location = core.geo.locate(ctx.ip);
    SignInEvent {
        account_id: account,
        at: core.now(),
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

/// May this session bind an authenticator now? It signed in (or proved a second factor) within ten minutes: at
/// the account's highest level, since an Active session of an account with a second factor has proved it, or
/// with a recovery method that stood in for it.
pub fn fresh_for_binding(session: &LiveSession, now: Timestamp) -> bool {
    crate::passkeys::policy::fresh_sign_in(session.signed_in_at, session.second_factor_at, now)
}

/// Where a session goes once the first factor is proved (a password, or a one-time password standing in for
/// it): the second factor if there is one; otherwise, after an MFA reset, the device authorization (the
/// registered mailbox is proved before a new authenticator is bound); enrolment when MFA is required of
/// everyone or of this account; a password change when one is due.
pub fn stage_after_first_factor(
    has_second_factor: bool,
    required: &crate::domain::RequiredActions,
    policy: &crate::config::PolicySettings,
) -> SessionStage {
    if has_second_factor {
        SessionStage::Mfa
    } else if required.device_authorization {
        SessionStage::DeviceAuthorization
    } else if policy.mfa_required || required.enroll_mfa {
        SessionStage::EnrollMfa
    } else if required.change_password {
        SessionStage::ChangePassword
    } else {
        SessionStage::Active
    }
}

/// Does the account have a second factor: an authenticator app, a passkey or an unused backup code? Every way of
/// standing in for the password (the password itself, a one-time password) asks this one question, so none
/// forgets a kind (backup codes are counted only for an account with neither of the others).
pub(crate) async fn has_second_factor(
    store: &(impl CredentialStore + ?Sized),
    record: &crate::store::ActorRecord,
) -> Result<bool, StoreError> {
    Ok(record.has_totp || record.has_passkey || store.unused_backup_codes(record.account.id).await? > 0)
}

/// Wait out the floor that every failed attempt is answered after (`policy.failed_sign_in_floor_ms`), so
/// how much was checked or written stays out of the timing.
pub(crate) async fn failure_floor(core: &Core, started: std::time::Instant) {
    let floor = std::time::Duration::from_millis(u64::from(core.settings.policy.failed_sign_in_floor_ms));
    if let Some(rest) = floor.checked_sub(started.elapsed()) {
        tokio::time::sleep(rest).await;
    }
}

/// The store capabilities signing in uses.
pub trait SignInStore:
    DirectoryStore
    + CredentialStore
    + SessionStore
    + EventStore
    + ThrottleStore
    + crate::store::PasskeyStore
    + crate::store::RecoveryStore
    + crate::store::AddressStore
{
}
impl<
    T: DirectoryStore
        + CredentialStore
        + SessionStore
        + EventStore
        + ThrottleStore
        + crate::store::PasskeyStore
        + crate::store::RecoveryStore
        + crate::store::AddressStore,
> SignInStore for T
{
}

/// Signing in, sessions, enrolment and the self-service reset; shared by pages and CLI.
pub struct SignIn {
    core: Arc<Core>,
    store: Arc<dyn SignInStore>,
    /// For the email about an unusual sign-in.
    letters: Arc<dyn crate::assistance::notify::Letters>,
}

impl SignIn {
    /// The shared core (settings, keys), read-only.
    pub fn core(&self) -> &Core {
        &self.core
    }

    pub(crate) fn new(
        core: Arc<Core>,
        store: Arc<dyn SignInStore>,
        letters: Arc<dyn crate::assistance::notify::Letters>,
    ) -> Self {
        Self { core, store, letters }
    }

    /// After a complete sign-in, recorded as `event`: the person is emailed when it looks unusual (see `alert`).
    async fn alert_if_unusual(&self, event: &SignInEvent) {
        alert::alert_if_unusual(&self.core, &*self.store, &*self.letters, event).await;
    }

    pub fn now(&self) -> Timestamp {
        self.core.now()
    }

    /// A sign-in event for this request, with its place and network.
    fn sign_in_event(
        &self,
        account: Option<AccountId>,
        outcome: &str,
        method: &str,
        ctx: &RequestContext,
    ) -> SignInEvent {
        sign_in_event(&self.core, account, outcome, method, ctx)
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

    /// Is the person active, and does the account have a second factor? (The person and the authenticator in
    /// one query; backup codes and passkeys are counted only for an account without an authenticator.) A
    /// passkey counts: after a password, the second step may be the passkey, which signs in on its own.
    async fn active_and_second_factor(&self, account: AccountId) -> Result<(bool, bool), SignInError> {
        let Some(record) = self.store.actor_record(account).await? else { return Ok((false, false)) };
        let active = record.person_status == PersonStatus::Active;
        Ok((active, has_second_factor(&*self.store, &record).await?))
    }

    /// Step one: the password.
    #[tracing::instrument(skip_all)]
    pub async fn password(
        self: &Arc<Self>,
        login: &str,
        password: &str,
        ctx: &RequestContext,
    ) -> Result<PasswordOutcome, SignInError> {
        let started = std::time::Instant::now();
        let (this, login, password, ctx) = (self.clone(), login.to_owned(), password.to_owned(), ctx.clone());
        let outcome = settled(async move { this.check_password(&login, &password, &ctx).await }).await?;
        // A failed attempt is answered no sooner than the floor: whether the login exists, whether the
        // account is locked, and how much is written (a failure counter, a lock) stay out of the timing.
        if outcome == PasswordOutcome::Invalid {
            self.failure_floor(started).await;
        }
        Ok(outcome)
    }

    async fn check_password(
        &self,
        login: &str,
        password: &str,
        ctx: &RequestContext,
    ) -> Result<PasswordOutcome, SignInError> {
        let now = self.now();
        // The client's window first: a spray from one address stops here, before any account is touched.
        let slot = match self.reserve_client(ctx, now).await? {
            Ok(slot) => slot,
            // Not recorded as an event: a flood would otherwise write two rows per refused request.
            Err(retry_after) => return Ok(PasswordOutcome::Throttled { retry_after }),
        };
        let account = if login.trim().is_empty() || login.len() > 254 {
            None
        } else {
            self.store.account_by_login(login).await?
        };
        let Some(account) = account else {
            if let Err(busy) = self.core.hasher.verify(password, None).await {
                self.release_client(&slot).await?;
                return Err(busy.into());
            }
            self.event(None, "unknown_account", "password", ctx).await?;
            return Ok(PasswordOutcome::Invalid);
        };
        let admitted = match self.admit(&account, now).await? {
            Ok(admitted) => admitted,
            Err(refusal) => {
                // Not evaluated: the answer cannot depend on the password. A dummy verification keeps the work
                // (and a busy queue's 503) the same as for any other failure, so a refusal says nothing more.
                if let Err(busy) = self.core.hasher.verify(password, None).await {
                    self.release_client(&slot).await?;
                    return Err(busy.into());
                }
                self.event(Some(account.id), Self::refused_outcome(refusal), "password", ctx).await?;
                return Ok(PasswordOutcome::Invalid);
            }
        };
        let correct = match self.core.hasher.verify(password, account.password_hash.as_deref()).await {
            Ok(correct) => correct,
            Err(busy) => {
                // Nothing was checked: the attempt and the client's slot are given back.
                self.store.release_attempt(account.id, admitted.at, admitted.previous_last_failed_at, now).await?;
                self.release_client(&slot).await?;
                return Err(busy.into());
            }
        };
        // A manager's temporary password works for a day (`team.secure_link_hours`) unless replaced: after that
        // it is a wrong password like any other (checked after the same work, so it answers in the same time).
        let correct = correct && account.temporary_password_until.is_none_or(|until| now < until);
        if !correct {
            let event = self.sign_in_event(Some(account.id), "bad_password", "password", ctx);
            if self.store.record_failure(account.id, &self.core.settings.lockout, now, &event).await?.locked_now {
                metrics::counter!("lifeline_locks_total", "method" => "password").increment(1);
                tracing::warn!(account = account.id.0, "account locked after repeated failures");
            }
            return Ok(PasswordOutcome::Invalid);
        }
        self.release_client(&slot).await?;
        let (active, has_second_factor) = self.active_and_second_factor(account.id).await?;
        if !active {
            // The right password is no failure: it is given back, or a disabled person who tries a few times
            // would find the account refusing everything once they are enabled again.
            self.store.give_back_attempt(account.id).await?;
            self.event(Some(account.id), "disabled", "password", ctx).await?;
            return Ok(PasswordOutcome::Disabled);
        }
        let stage = stage_after_first_factor(has_second_factor, &account.required, &self.core.settings.policy);
        // The step completes only if the account is still usable now: a lock set by a guess that was in
        // flight alongside this one wins.
        let usable = if stage == SessionStage::Active {
            self.store.reset_failures(account.id, self.now()).await?
        } else {
            self.store.release_attempt(account.id, admitted.at, admitted.previous_last_failed_at, self.now()).await?
        };
        if !usable {
            self.event(Some(account.id), "locked", "password", ctx).await?;
            return Ok(PasswordOutcome::Invalid);
        }
        let outcome = if stage == SessionStage::Active { "success" } else { "password_accepted" };
        let event = self.sign_in_event(Some(account.id), outcome, "password", ctx);
        self.store.record_sign_in(&event).await?;
        if stage == SessionStage::Active {
            self.alert_if_unusual(&event).await;
        }
        Ok(PasswordOutcome::Proceed { account: account.id, stage })
    }

    /// The stage after the second factor (or after enrolling one).
    fn after_mfa(account: &Account) -> SessionStage {
        if account.required.change_password { SessionStage::ChangePassword } else { SessionStage::Active }
    }

    /// Under `policy.admins_require_passkey`, what an admin's sign-in with a code must do instead: `Some(true)`
    /// when they have a passkey (they must use it), `Some(false)` when they have none (they add one next);
    /// `None` when the policy is off or the account holds no admin permission.
    pub async fn passkey_required(&self, account: AccountId) -> Result<Option<bool>, SignInError> {
        if !self.core.settings.policy.admins_require_passkey {
            return Ok(None);
        }
        let Some(record) = self.store.actor_record(account).await? else { return Ok(None) };
        let g = record.grant;
        if !(g.dpa_level > 0 || g.expert_mode || g.auditor || g.directory_admin) {
            return Ok(None);
        }
        Ok(Some(!self.store.passkeys(account).await?.is_empty()))
    }

    /// The stage after a code (or an app enrolled): an admin without a passkey, under the policy, adds one next.
    async fn after_code(&self, account: &Account) -> Result<SessionStage, SignInError> {
        if self.passkey_required(account.id).await? == Some(false) {
            return Ok(SessionStage::EnrollPasskey);
        }
        Ok(Self::after_mfa(account))
    }

    /// Step two: a TOTP code (six digits) or a backup code (anything else).
    #[tracing::instrument(skip_all, fields(account = account_id.0))]
    pub async fn second_factor(
        self: &Arc<Self>,
        account_id: AccountId,
        code: &str,
        ctx: &RequestContext,
    ) -> Result<SecondFactorOutcome, SignInError> {
        let started = std::time::Instant::now();
        let (this, code, ctx) = (self.clone(), code.to_owned(), ctx.clone());
        let outcome = settled(async move { this.check_second_factor(account_id, &code, &ctx).await }).await?;
        if matches!(outcome, SecondFactorOutcome::Invalid | SecondFactorOutcome::Refused) {
            self.failure_floor(started).await;
        }
        Ok(outcome)
    }

    async fn check_second_factor(
        &self,
        account_id: AccountId,
        code: &str,
        ctx: &RequestContext,
    ) -> Result<SecondFactorOutcome, SignInError> {
        let now = self.now();
        let Some(account) = self.store.account(account_id).await? else { return Ok(SecondFactorOutcome::Refused) };
        if self.passkey_required(account_id).await? == Some(true) {
            return Ok(SecondFactorOutcome::PasskeyRequired);
        }
        let slot = match self.reserve_client(ctx, now).await? {
            Ok(slot) => slot,
            Err(retry_after) => return Ok(SecondFactorOutcome::Throttled { retry_after }),
        };
        if let Err(refusal) = self.admit(&account, now).await? {
            self.event(Some(account_id), Self::refused_outcome(refusal), "second_factor", ctx).await?;
            return Ok(match refusal {
                Refusal::Delayed { until } => SecondFactorOutcome::TooSoon { retry_after: (until - now).max(1) as u64 },
                Refusal::InFlight => SecondFactorOutcome::TooSoon { retry_after: 1 },
                Refusal::Locked { .. } => SecondFactorOutcome::Refused,
            });
        }
        let next = self.after_code(&account).await?;
        let success = if next == SessionStage::Active { "success" } else { "second_factor_accepted" };
        let digits: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        // The code is used up, the counters reset and the successful attempt recorded in one transaction,
        // which also re-checks that the account is not locked and the person active.
        let (used, method, event) =
            if digits.len() == totp::DIGITS as usize && digits.bytes().all(|b| b.is_ascii_digit()) {
                let event = self.sign_in_event(Some(account_id), success, "totp", ctx);
                (self.check_totp(account_id, &digits, now, &event).await?, "totp", event)
            } else {
                let normalised = normalise_backup_code(code);
                let event = self.sign_in_event(Some(account_id), success, "backup_code", ctx);
                let hash = TokenHash::of(&self.core.keys, "backup-code", &normalised);
                let used = if normalised.is_empty() {
                    CodeUse::NotAccepted
                } else {
                    self.store.consume_backup_code(account_id, &hash, now, &event).await?
                };
                (used, "backup_code", event)
            };
        match used {
            CodeUse::Used => {
                self.release_client(&slot).await?;
                if next == SessionStage::Active {
                    self.alert_if_unusual(&event).await;
                }
                Ok(SecondFactorOutcome::Proceed(next))
            }
            CodeUse::Refused => {
                self.event(Some(account_id), "locked", method, ctx).await?;
                Ok(SecondFactorOutcome::Refused)
            }
            CodeUse::NotAccepted => {
                let event = self.sign_in_event(Some(account_id), "bad_second_factor", method, ctx);
                let result = self.store.record_failure(account_id, &self.core.settings.lockout, now, &event).await?;
                if result.locked_now {
                    metrics::counter!("lifeline_locks_total", "method" => method).increment(1);
                }
                Ok(if result.locked_now { SecondFactorOutcome::Refused } else { SecondFactorOutcome::Invalid })
            }
        }
    }

    async fn check_totp(
        &self,
        account: AccountId,
        code: &str,
        now: Timestamp,
        event: &SignInEvent,
    ) -> Result<CodeUse, SignInError> {
        let Some(record) = self.store.totp(account).await?.filter(|r| r.confirmed_at.is_some()) else {
            return Ok(CodeUse::NotAccepted);
        };
        let secret = self.open_secret(account, &record.sealed_secret)?;
        match totp::verify(&secret, code, now, record.last_used_step) {
            // The conditional update refuses a step that another request used first.
            Some(step) => Ok(self.store.use_totp_step(account, step, now, event).await?),
            None => Ok(CodeUse::NotAccepted),
        }
    }

    fn open_secret(&self, account: AccountId, sealed: &[u8]) -> Result<TotpSecret, SignInError> {
        self.core
            .keys
            .open(sealed, &format!("totp:{account}"))
            .map(TotpSecret::from_bytes)
            .map_err(|e| SignInError::Unexpected(e.to_string()))
    }

    fn seal_secret(&self, account: AccountId, secret: &TotpSecret) -> Vec<u8> {
        self.core.keys.seal(secret.as_bytes(), &format!("totp:{account}"))
    }

    /// Start (or show again) the TOTP enrolment of this session. The secret belongs to the session that
    /// created it: another session (someone else who knew an initial password) gets a secret of its own,
    /// and only the secret a session was shown can be confirmed by it.
    pub async fn enrolment(&self, session: &TokenHash, account_id: AccountId) -> Result<Enrolment, SignInError> {
        let account = self.account_or_gone(account_id).await?;
        let secret = match self.store.session_pending_totp(session).await? {
            Some(sealed) => self.open_secret(account_id, &sealed)?,
            None => {
                let secret = TotpSecret::generate();
                self.store.set_session_pending_totp(session, &self.seal_secret(account_id, &secret)).await?;
                secret
            }
        };
        let uri = secret.otpauth_uri(&self.core.settings.organisation, &account.username);
        let qr_svg = totp::qr_svg(&uri).unwrap_or_default();
        Ok(Enrolment { secret_base32: secret.to_base32(), uri, qr_svg })
    }

    /// Confirm this session's enrolment with a valid code: returns the new backup codes (shown once), or
    /// `None` when the code is wrong (or the account may no longer complete a step).
    pub async fn confirm_enrolment(
        &self,
        session: &TokenHash,
        account_id: AccountId,
        code: &str,
    ) -> Result<Option<(Vec<String>, SessionStage)>, SignInError> {
        let now = self.now();
        let Some(sealed) = self.store.session_pending_totp(session).await? else { return Ok(None) };
        let secret = self.open_secret(account_id, &sealed)?;
        let Some(step) = totp::verify(&secret, code, now, -1) else { return Ok(None) };
        let (codes, hashes) = backup_codes::generate(&self.core.keys);
        let account = self.account_or_gone(account_id).await?;
        let audit = self.self_service(&account, "mfa.enrol").details("totp and 10 backup codes");
        let notices = self
            .binding_notice(
                &account,
                "An authenticator app was set up for your account",
                format!(
                    "An authenticator app and 10 new backup codes were set up for your account {}",
                    account.username
                ),
                "setting up the authenticator app",
            )
            .await?;
        if !self.store.enrol_totp(account_id, &sealed, step, &hashes, now, &audit, true, &notices).await? {
            return Ok(None);
        }
        self.store.reset_failures(account_id, now).await?;
        Ok(Some((codes, self.after_code(&account).await?)))
    }

    /// Enrol TOTP directly, as the system (CLI `person add --totp`, demo data): returns the backup codes.
    pub async fn enrol_totp_now(
        &self,
        proof: Proof<EnrolTotp>,
        account_id: AccountId,
        secret: &TotpSecret,
    ) -> Result<Vec<String>, SignInError> {
        let now = self.now();
        let account = self.account_or_gone(account_id).await?;
        if proof.subject() != Some(account.person_id) {
            return Err(SignInError::Unexpected("the proof is for another person".into()));
        }
        let sealed = self.seal_secret(account_id, secret);
        let (codes, hashes) = backup_codes::generate(&self.core.keys);
        let audit = AuditEntry::new(now, proof.actor(), "mfa.enrol", "success")
            .person(account.person_id)
            .account(account_id)
            .details("totp and 10 backup codes");
        // Bound by the operator as the person is made (`person add --totp`, demo data): there is no one to warn yet.
        let notices = crate::store::Notices::default();
        if !self.store.enrol_totp(account_id, &sealed, -1, &hashes, now, &audit, false, &notices).await? {
            return Err(SignInError::Unexpected("the account already has an authenticator".into()));
        }
        Ok(codes)
    }

    /// A step-up in the console: the admin's second factor again (admitted and counted like any sign-in
    /// step, a used code refused); on success the session records when. True when the code was accepted.
    pub async fn step_up(
        self: &Arc<Self>,
        session: &LiveSession,
        code: &str,
        ctx: &RequestContext,
    ) -> Result<bool, SignInError> {
        match self.second_factor(session.account_id, code, ctx).await? {
            SecondFactorOutcome::Proceed(_) => {
                self.mark_second_factor(session).await?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// New backup codes for the session's account (the old ones stop working): a binding, so it needs a sign-in
    /// within ten minutes, and is told to the person's addresses.
    pub async fn regenerate_backup_codes(&self, session: &LiveSession) -> Result<Vec<String>, SignInError> {
        if !fresh_for_binding(session, self.now()) {
            return Err(SignInError::NotFresh);
        }
        let account = self.account_or_gone(session.account_id).await?;
        let (codes, hashes) = backup_codes::generate(&self.core.keys);
        let audit = self.self_service(&account, "backup_codes.regenerate");
        let notices = self
            .binding_notice(
                &account,
                "New backup codes were made for your account",
                format!(
                    "10 new backup codes were made for your account {}; the old ones no longer work",
                    account.username
                ),
                "making new backup codes",
            )
            .await?;
        self.store.replace_backup_codes(account.id, &hashes, self.now(), &audit, &notices).await?;
        Ok(codes)
    }

    /// The notice of a new authenticator, to every address of the person, with "this wasn't me": told by email,
    /// a channel independent of the session that bound it (NIST SP 800-63B-4 §4.1.2.1).
    pub(crate) async fn binding_notice(
        &self,
        account: &Account,
        subject: &str,
        what: String,
        reported_as: &str,
    ) -> Result<crate::store::Notices, SignInError> {
        let alarm = crate::assistance::notify::Alarm {
            subject,
            paragraphs: vec![format!("{what}, on {}.", crate::assistance::dossier::when(self.now()))],
            reported_as: reported_as.to_owned(),
        };
        Ok(crate::assistance::notify::account_alarm(&self.core, &*self.letters, &*self.store, account, alarm).await?)
    }

    pub(crate) async fn account_or_gone(&self, account_id: AccountId) -> Result<Account, SignInError> {
        self.store.account(account_id).await?.ok_or_else(|| SignInError::Unexpected("account vanished".into()))
    }

    /// The audit entry of something an account holder did for themself.
    pub(crate) fn self_service(&self, account: &Account, action: &str) -> AuditEntry {
        let actor = Actor::Account { account_id: account.id, username: account.username.clone() };
        AuditEntry::new(self.now(), &actor, action, "success").person(account.person_id).account(account.id)
    }
}
