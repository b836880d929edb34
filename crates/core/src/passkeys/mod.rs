//! Passkeys (WebAuthn): adding one to an account, signing in with one, naming and removing them.
//!
//! Invariants:
//! - every ceremony's state lives in the database under the keyed hash of a 256-bit id the browser holds, and
//!   is taken by one `DELETE … RETURNING` (`PasskeyStore::take_ceremony`): it finishes once, on any instance,
//!   only as what it began as, and within `CEREMONY_SECONDS`;
//! - user verification is required at registration and at every sign-in (webauthn-rs's passkey ceremonies),
//!   so a passkey is a complete, multi-factor, phishing-resistant sign-in: the origin and the relying party id
//!   are checked against `public_url`;
//! - a sign-in names its passkey by credential id; the passkey must belong to the account the ceremony was
//!   begun for (when one was named) and to the user handle the authenticator returned (when it returned one;
//!   a ceremony begun without a name must have one);
//! - a failed passkey sign-in draws on the client address's window of failed sign-ins, like every other way
//!   of proving who you are; a locked account or a disabled person is refused in the write that completes it;
//! - adding and removing a passkey are audited and emailed to the person, with a "this wasn't me" link, in the
//!   same transaction as the change.

pub mod policy;

use crate::assistance::notify::{Alarm, Letters, alarm_notice};
use crate::audit::{Actor, AuditEntry};
use crate::crypto::{TokenHash, random_token};
use crate::domain::{Account, AccountId, PersonStatus, Timestamp};
use crate::email::OutgoingEmail;
use crate::services::Core;
use crate::signin::RequestContext;
use crate::signin::attempts::{release_client, reserve_client};
use crate::store::{
    CeremonyPurpose, DirectoryStore, EventStore, NewPasskey, NewSecret, PasskeyRecord, PasskeyStore, SessionStage,
    StoreError, ThrottleStore,
};
use std::sync::Arc;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential, Url,
    Uuid, Webauthn, WebauthnBuilder,
};

/// How long a ceremony may take, from the options to the browser's answer (WebAuthn's recommended timeout).
pub const CEREMONY_SECONDS: i64 = 300;
/// At most this many passkeys on one account: enough for every device a person owns, and a bound on the list.
pub const MAX_PER_ACCOUNT: usize = 20;
/// Ceremonies begun from one client address (per /64 for IPv6) in ten minutes: each writes a row before anyone
/// is known, so a flood is cut off here.
/// Generous, as one office behind one address signs in through it; an attacker's flood still stops here.
const BEGIN_LIMIT: crate::policy::rate_limit::RateLimit =
    crate::policy::rate_limit::RateLimit { max: 600, window_seconds: 600 };
/// Registrations begun by one account in ten minutes (each writes a ceremony row).
const REGISTER_LIMIT: crate::policy::rate_limit::RateLimit =
    crate::policy::rate_limit::RateLimit { max: 30, window_seconds: 600 };

/// A sign-in ceremony's state: webauthn-rs's, and whether a login was given (bound to nobody: refused).
#[derive(serde::Serialize, serde::Deserialize)]
struct SignInState {
    named: bool,
    auth: DiscoverableAuthentication,
}

#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    /// Lifeline is not reached by a domain name (`public_url` is an IP address): WebAuthn needs one.
    #[error(
        "Passkeys need Lifeline to be reached by a domain name (such as localhost or id.example.com), not an IP address."
    )]
    Unavailable,
    /// The ceremony is unknown, spent, expired or for something else, or the authenticator's answer did not
    /// verify: one answer for all.
    #[error("The passkey could not be checked. Try again; if it keeps failing, sign in another way.")]
    Refused,
    /// The browser's answer is not a WebAuthn credential at all (400).
    #[error("The browser's answer could not be read: {0}")]
    Malformed(String),
    /// A form field (the name) is not acceptable (400).
    #[error("{0}")]
    Form(String),
    /// This authenticator's passkey is on an account already.
    #[error("This passkey is registered already.")]
    Duplicate,
    #[error("This account has {MAX_PER_ACCOUNT} passkeys, the most it may have: remove one first.")]
    TooMany,
    #[error("There is no such passkey on your account.")]
    NotFound,
    /// The person is disabled.
    #[error("This account is disabled. Contact your helpdesk.")]
    Disabled,
    /// Too many failed sign-ins (or begun ceremonies) from this client address.
    #[error("Too many attempts from your network. Try again in {} minutes.", retry_after.div_ceil(60))]
    Throttled { retry_after: u64 },
    #[error(transparent)]
    Store(StoreError),
    #[error("{0}")]
    Unexpected(String),
}

impl From<StoreError> for PasskeyError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(_) => Self::Duplicate,
            e => Self::Store(e),
        }
    }
}

/// A ceremony begun: the id the browser sends back, and the options for `navigator.credentials`.
#[derive(Debug, Clone)]
pub struct Begun {
    pub ceremony: String,
    /// `{"publicKey": …}`, as the browser's WebAuthn API takes it (binary fields base64url).
    pub options: serde_json::Value,
}

/// How a passkey is being added: from the account page, or by a session that must set up a second factor
/// (an enrolment code, a temporary access pass, the first sign-in after an MFA reset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding {
    AccountPage,
    Enrolment,
}

/// The store capabilities passkeys use.
pub trait PasskeyServiceStore:
    PasskeyStore + DirectoryStore + EventStore + ThrottleStore + crate::store::RecoveryStore + crate::store::AddressStore
{
}
impl<
    T: PasskeyStore
        + DirectoryStore
        + EventStore
        + ThrottleStore
        + crate::store::RecoveryStore
        + crate::store::AddressStore,
> PasskeyServiceStore for T
{
}

pub struct Passkeys {
    core: Arc<Core>,
    store: Arc<dyn PasskeyServiceStore>,
    letters: Arc<dyn Letters>,
    /// `None` when `public_url` names no domain.
    webauthn: Option<Webauthn>,
}

/// The relying party for `public_url`: its host is the RP id, its origin the only one accepted.
fn relying_party(public_url: &str, organisation: &str) -> Option<Webauthn> {
    let url = Url::parse(public_url).ok()?;
    let domain = url.domain()?.to_owned();
    WebauthnBuilder::new(&domain, &url)
        .ok()?
        .rp_name(organisation)
        .timeout(std::time::Duration::from_secs(CEREMONY_SECONDS as u64))
        .build()
        .ok()
}

fn base64url(bytes: &[u8]) -> String {
    data_encoding::BASE64URL_NOPAD.encode(bytes)
}

impl Passkeys {
    pub(crate) fn new(core: Arc<Core>, store: Arc<dyn PasskeyServiceStore>, letters: Arc<dyn Letters>) -> Self {
        let webauthn = relying_party(&core.settings.public_url, &core.settings.organisation);
        if webauthn.is_none() {
            tracing::warn!(public_url = %core.settings.public_url, "passkeys are off: public_url names no domain");
        }
        Self { core, store, letters, webauthn }
    }

    /// Can passkeys be used here at all (`public_url` names a domain)?
    pub fn available(&self) -> bool {
        self.webauthn.is_some()
    }

    fn webauthn(&self) -> Result<&Webauthn, PasskeyError> {
        self.webauthn.as_ref().ok_or(PasskeyError::Unavailable)
    }

    fn now(&self) -> Timestamp {
        self.core.now()
    }

    fn ceremony_hash(&self, ceremony: &str) -> TokenHash {
        TokenHash::of(&self.core.keys, "webauthn-ceremony", ceremony)
    }

    /// The WebAuthn user handle of an account: derived with the server's key, so it is stable, stores
    /// nothing, and says nothing about the account's id to whoever reads the authenticator.
    fn user_handle(&self, account: AccountId) -> Uuid {
        let hash = TokenHash::of(&self.core.keys, "webauthn-user", &account.0.to_string());
        let mut bytes = [0u8; 16];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = u8::from_str_radix(&hash.0[2 * i..2 * i + 2], 16).unwrap_or(0);
        }
        uuid_v4_bits(bytes)
    }

    pub async fn list(&self, account: AccountId) -> Result<Vec<PasskeyRecord>, PasskeyError> {
        Ok(self.store.passkeys(account).await?)
    }

    async fn begin(
        &self,
        purpose: CeremonyPurpose,
        account: Option<AccountId>,
        state: String,
        options: serde_json::Value,
    ) -> Result<Begun, PasskeyError> {
        let ceremony = random_token();
        let expires_at = self.now() + CEREMONY_SECONDS;
        self.store.begin_ceremony(&self.ceremony_hash(&ceremony), purpose, account, &state, expires_at).await?;
        Ok(Begun { ceremony, options })
    }

    /// Begin adding a passkey to `account` (a signed-in session's, or an enrolment session's).
    pub async fn begin_registration(&self, account: AccountId) -> Result<Begun, PasskeyError> {
        let webauthn = self.webauthn()?;
        let account = self.account(account).await?;
        let person =
            self.store.person(account.person_id).await?.ok_or_else(|| PasskeyError::Unexpected("no person".into()))?;
        let existing = self.store.passkeys(account.id).await?;
        if existing.len() >= MAX_PER_ACCOUNT {
            return Err(PasskeyError::TooMany);
        }
        let now = self.now();
        let bucket = format!("passkey-register:{}", account.id.0);
        if !self.store.reserve_client_attempt(&bucket, REGISTER_LIMIT.window_start(now), REGISTER_LIMIT.max).await? {
            return Err(PasskeyError::Throttled { retry_after: REGISTER_LIMIT.retry_after(now) });
        }
        // The authenticators the person has registered already are named, so the browser does not make a
        // second passkey on one of them.
        let exclude = existing.iter().filter_map(|p| parse_passkey(&p.credential).ok()).map(|p| p.cred_id().clone());
        let (options, state) = webauthn
            .start_passkey_registration(
                self.user_handle(account.id),
                &account.username,
                &person.display_name,
                Some(exclude.collect()),
            )
            .map_err(|e| PasskeyError::Unexpected(format!("webauthn: {e}")))?;
        let mut options = serde_json::to_value(&options).map_err(|e| PasskeyError::Unexpected(e.to_string()))?;
        // A discoverable credential where the authenticator can keep one, so "Sign in with a passkey" needs no
        // username; one that cannot still works when the username is given.
        if let Some(selection) = options.pointer_mut("/publicKey/authenticatorSelection") {
            selection["residentKey"] = serde_json::json!("preferred");
        }
        let state = serde_json::to_string(&state).map_err(|e| PasskeyError::Unexpected(e.to_string()))?;
        self.begin(CeremonyPurpose::Register, Some(account.id), state, options).await
    }

    /// Finish adding a passkey: the ceremony begun for `account`, the browser's answer, the person's name for
    /// it. Audited and emailed to the person with a "this wasn't me" link.
    pub async fn finish_registration(
        &self,
        account: AccountId,
        ceremony: &str,
        response: &str,
        name: &str,
        binding: Binding,
    ) -> Result<PasskeyRecord, PasskeyError> {
        let webauthn = self.webauthn()?;
        let now = self.now();
        let name = policy::passkey_name(name, now).map_err(PasskeyError::Form)?;
        let credential: RegisterPublicKeyCredential =
            serde_json::from_str(response).map_err(|e| PasskeyError::Malformed(e.to_string()))?;
        let Some((begun_for, state)) =
            self.store.take_ceremony(&self.ceremony_hash(ceremony), CeremonyPurpose::Register, now).await?
        else {
            return Err(PasskeyError::Refused);
        };
        if begun_for != Some(account) {
            return Err(PasskeyError::Refused);
        }
        let state: PasskeyRegistration =
            serde_json::from_str(&state).map_err(|e| PasskeyError::Unexpected(e.to_string()))?;
        let passkey = webauthn.finish_passkey_registration(&credential, &state).map_err(|e| {
            tracing::info!(account = account.0, error = %e, "passkey registration refused");
            PasskeyError::Refused
        })?;
        if self.store.passkeys(account).await?.len() >= MAX_PER_ACCOUNT {
            return Err(PasskeyError::TooMany);
        }
        let account = self.account(account).await?;
        let credential_id = base64url(passkey.cred_id().as_ref());
        let stored = serde_json::to_string(&passkey).map_err(|e| PasskeyError::Unexpected(e.to_string()))?;
        let how = match binding {
            Binding::AccountPage => "from the account page",
            Binding::Enrolment => "at sign-in, to replace a lost second factor",
        };
        let audit = self
            .self_service(&account, "passkey.add")
            .details(serde_json::json!({ "name": name, "credential": credential_id, "how": how }).to_string());
        let paragraphs = vec![format!(
            "A passkey named \"{name}\" was added to your account {} on {}. From now on it signs you in on its own.",
            account.username,
            crate::assistance::dossier::when(now)
        )];
        let (emails, secrets) = self
            .notice(
                &account,
                "A passkey was added to your account",
                paragraphs,
                format!("adding the passkey \"{name}\""),
            )
            .await?;
        let new = NewPasskey {
            account: account.id,
            credential_id: &credential_id,
            name: &name,
            credential: &stored,
            completes_enrolment: binding == Binding::Enrolment,
        };
        let record = match self.store.add_passkey(&new, now, &audit, &emails, &secrets).await {
            Ok(record) => record,
            // The enrolment's account was locked or disabled meanwhile: nothing was bound.
            Err(StoreError::Conflict(_)) if binding == Binding::Enrolment => return Err(PasskeyError::Refused),
            Err(e) => return Err(e.into()),
        };
        metrics::counter!("lifeline_passkeys_added_total").increment(1);
        Ok(record)
    }

    /// Begin a sign-in. The options are the same whoever asks: no credential is named (the browser offers the
    /// passkeys it holds for this site), so they tell nothing about any account. With a login, the ceremony is
    /// bound to that account (the second step after a password, or a person who typed their username first):
    /// only its passkeys finish it. A login that names nobody binds the ceremony to nobody, so no passkey
    /// finishes it either — the answer is the same refusal as for a wrong passkey, not a sign-in.
    pub async fn begin_sign_in(&self, login: Option<&str>, ctx: &RequestContext) -> Result<Begun, PasskeyError> {
        let webauthn = self.webauthn()?;
        let now = self.now();
        let bucket = format!("passkey-begin:{}", crate::policy::rate_limit::client_key(ctx.ip));
        if !self.store.reserve_client_attempt(&bucket, BEGIN_LIMIT.window_start(now), BEGIN_LIMIT.max).await? {
            return Err(PasskeyError::Throttled { retry_after: BEGIN_LIMIT.retry_after(now) });
        }
        let (options, state) = webauthn
            .start_discoverable_authentication()
            .map_err(|e| PasskeyError::Unexpected(format!("webauthn: {e}")))?;
        let mut options = serde_json::to_value(&options).map_err(|e| PasskeyError::Unexpected(e.to_string()))?;
        // webauthn-rs asks for conditional mediation (autofill); a button press wants the ordinary prompt.
        if let Some(object) = options.as_object_mut() {
            object.remove("mediation");
        }
        let login = login.map(str::trim).filter(|l| !l.is_empty());
        let mut bound = None;
        if let Some(login) = login {
            // A login no account can have (too long, control characters) is looked up as nobody's.
            let plausible = login.len() <= 254 && !login.chars().any(char::is_control);
            bound = if plausible { self.store.account_by_login(login).await?.map(|a| a.id) } else { None };
        }
        let state = SignInState { named: login.is_some(), auth: state };
        let state = serde_json::to_string(&state).map_err(|e| PasskeyError::Unexpected(e.to_string()))?;
        self.begin(CeremonyPurpose::SignIn, bound, state, options).await
    }

    /// Finish a sign-in: the account and the stage its session starts at. A failure is recorded as a sign-in
    /// event, charged to the client address's window and answered after the failure floor.
    pub async fn finish_sign_in(
        &self,
        ceremony: &str,
        response: &str,
        ctx: &RequestContext,
    ) -> Result<(AccountId, SessionStage), PasskeyError> {
        let started = std::time::Instant::now();
        let now = self.now();
        let limit = self.core.settings.lockout.per_client;
        let slot = match reserve_client(&*self.store, limit, ctx, now).await? {
            Ok(slot) => slot,
            Err(retry_after) => {
                metrics::counter!("lifeline_passkey_sign_ins_total", "outcome" => "throttled").increment(1);
                return Err(PasskeyError::Throttled { retry_after });
            }
        };
        let outcome = self.try_sign_in(ceremony, response, ctx, now).await;
        let label = match &outcome {
            Ok(_) => "success",
            Err(PasskeyError::Disabled) => "disabled",
            Err(PasskeyError::Malformed(_)) => "malformed",
            Err(PasskeyError::Store(_) | PasskeyError::Unexpected(_)) => "error",
            Err(_) => "refused",
        };
        metrics::counter!("lifeline_passkey_sign_ins_total", "outcome" => label).increment(1);
        match &outcome {
            // The right passkey of a disabled person is no failure of the address; an error checked nothing.
            Ok(_) | Err(PasskeyError::Disabled | PasskeyError::Store(_) | PasskeyError::Unexpected(_)) => {
                release_client(&*self.store, &slot).await?;
            }
            Err(_) => crate::signin::failure_floor(&self.core, started).await,
        }
        outcome
    }

    async fn record(&self, account: Option<AccountId>, outcome: &str, ctx: &RequestContext) -> Result<(), StoreError> {
        let event = crate::signin::sign_in_event(&self.core, account, outcome, "passkey", ctx);
        self.store.record_sign_in(&event).await
    }

    async fn try_sign_in(
        &self,
        ceremony: &str,
        response: &str,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<(AccountId, SessionStage), PasskeyError> {
        let webauthn = self.webauthn()?;
        let credential: PublicKeyCredential =
            serde_json::from_str(response).map_err(|e| PasskeyError::Malformed(e.to_string()))?;
        let Some((bound, state)) =
            self.store.take_ceremony(&self.ceremony_hash(ceremony), CeremonyPurpose::SignIn, now).await?
        else {
            self.record(None, "bad_passkey", ctx).await?;
            return Err(PasskeyError::Refused);
        };
        let credential_id = base64url(credential.get_credential_id());
        let Some(record) = self.store.passkey_by_credential(&credential_id).await? else {
            self.record(bound, "unknown_passkey", ctx).await?;
            return Err(PasskeyError::Refused);
        };
        let handle = credential.get_user_unique_id();
        let handle_fits = match handle {
            Some(h) => h == self.user_handle(record.account).as_bytes(),
            // Without a user handle the account must have been named when the ceremony began.
            None => bound.is_some(),
        };
        // (A ceremony begun for a login that names nobody is refused below, once its state is read.)
        if bound.is_some_and(|a| a != record.account) || !handle_fits {
            self.record(Some(record.account), "bad_passkey", ctx).await?;
            return Err(PasskeyError::Refused);
        }
        let state: SignInState = serde_json::from_str(&state).map_err(|e| PasskeyError::Unexpected(e.to_string()))?;
        // Begun for a login that names nobody: nothing finishes it.
        if state.named && bound.is_none() {
            self.record(Some(record.account), "bad_passkey", ctx).await?;
            return Err(PasskeyError::Refused);
        }
        let state = state.auth;
        let mut passkey = parse_passkey(&record.credential)?;
        let result = match webauthn.finish_discoverable_authentication_v2(&credential, state, &passkey) {
            Ok(result) if result.user_verified() => result,
            Ok(_) => {
                self.record(Some(record.account), "bad_passkey", ctx).await?;
                return Err(PasskeyError::Refused);
            }
            Err(e) => {
                tracing::info!(account = record.account.0, error = %e, "passkey sign-in refused");
                self.record(Some(record.account), "bad_passkey", ctx).await?;
                return Err(PasskeyError::Refused);
            }
        };
        let account = self.account(record.account).await?;
        let person = self.store.person(account.person_id).await?;
        if person.is_none_or(|p| p.status != PersonStatus::Active) {
            self.record(Some(account.id), "disabled", ctx).await?;
            return Err(PasskeyError::Disabled);
        }
        passkey.update_credential(&result);
        let stored = serde_json::to_string(&passkey).map_err(|e| PasskeyError::Unexpected(e.to_string()))?;
        let stage = if account.required.change_password { SessionStage::ChangePassword } else { SessionStage::Active };
        let outcome = if stage == SessionStage::Active { "success" } else { "second_factor_accepted" };
        let event = crate::signin::sign_in_event(&self.core, Some(account.id), outcome, "passkey", ctx);
        if !self.store.use_passkey(record.id, &record.credential, &stored, &event).await? {
            // Locked or removed meanwhile (the lock wins), or another sign-in used it first.
            self.record(Some(account.id), "locked", ctx).await?;
            return Err(PasskeyError::Refused);
        }
        if stage == SessionStage::Active {
            crate::signin::alert_if_unusual(&self.core, &*self.store, &*self.letters, &event).await;
        }
        Ok((account.id, stage))
    }

    /// Where a session goes once it has added the passkey it had to (a password change may still be due).
    pub async fn stage_after_enrolment(&self, account: AccountId) -> Result<SessionStage, PasskeyError> {
        let account = self.account(account).await?;
        Ok(if account.required.change_password { SessionStage::ChangePassword } else { SessionStage::Active })
    }

    /// Rename one of the account's passkeys (audited).
    pub async fn rename(&self, account: AccountId, id: i64, name: &str) -> Result<(), PasskeyError> {
        let name = policy::passkey_name(name, self.now()).map_err(PasskeyError::Form)?;
        let account = self.account(account).await?;
        let audit = self
            .self_service(&account, "passkey.rename")
            .details(serde_json::json!({ "passkey": id, "name": name }).to_string());
        if !self.store.rename_passkey(account.id, id, &name, &audit).await? {
            return Err(PasskeyError::NotFound);
        }
        Ok(())
    }

    /// Remove one of the account's passkeys: audited and emailed with a "this wasn't me" link.
    pub async fn remove(&self, account: AccountId, id: i64) -> Result<PasskeyRecord, PasskeyError> {
        let now = self.now();
        let account = self.account(account).await?;
        let Some(record) = self.store.passkeys(account.id).await?.into_iter().find(|p| p.id == id) else {
            return Err(PasskeyError::NotFound);
        };
        let audit = self.self_service(&account, "passkey.remove").details(
            serde_json::json!({ "passkey": id, "name": record.name, "credential": record.credential_id }).to_string(),
        );
        let paragraphs = vec![format!(
            "The passkey named \"{}\" was removed from your account {} on {}. It no longer signs you in.",
            record.name,
            account.username,
            crate::assistance::dossier::when(now)
        )];
        let subject = "A passkey was removed from your account";
        let (emails, secrets) =
            self.notice(&account, subject, paragraphs, format!("removing the passkey \"{}\"", record.name)).await?;
        if !self.store.remove_passkey(account.id, id, now, &audit, &emails, &secrets).await? {
            return Err(PasskeyError::NotFound);
        }
        Ok(record)
    }

    /// The person's notice of a change to their passkeys, with its "this wasn't me" link and that link's secret.
    async fn notice(
        &self,
        account: &Account,
        subject: &str,
        paragraphs: Vec<String>,
        reported_as: String,
    ) -> Result<(Vec<OutgoingEmail>, Vec<NewSecret>), PasskeyError> {
        let person =
            self.store.person(account.person_id).await?.ok_or_else(|| PasskeyError::Unexpected("no person".into()))?;
        let alarm = Alarm { subject, paragraphs, reported_as };
        let to = crate::addresses::of(&*self.store, &person).await?;
        let notices =
            alarm_notice(&self.core, &*self.letters, &person, account, alarm, &to).map_err(PasskeyError::Unexpected)?;
        Ok((notices.emails, notices.secrets))
    }

    async fn account(&self, id: AccountId) -> Result<Account, PasskeyError> {
        self.store.account(id).await?.ok_or(PasskeyError::NotFound)
    }

    fn self_service(&self, account: &Account, action: &str) -> AuditEntry {
        let actor = Actor::Account { account_id: account.id, username: account.username.clone() };
        AuditEntry::new(self.now(), &actor, action, "success").person(account.person_id).account(account.id)
    }
}

fn parse_passkey(credential: &str) -> Result<Passkey, PasskeyError> {
    serde_json::from_str(credential).map_err(|e| PasskeyError::Unexpected(format!("a stored passkey: {e}")))
}

/// Sixteen derived bytes as a well-formed (version 4, RFC 4122 variant) UUID.
fn uuid_v4_bits(mut bytes: [u8; 16]) -> Uuid {
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    Uuid::from_bytes(bytes)
}
