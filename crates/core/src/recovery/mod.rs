//! Recovery actions (SPEC §4): what an admin does for someone who cannot sign in, and what that person does
//! with what they were given (`redeem`).
//!
//! Invariants:
//! - every action runs only on the proof for its own action (`Proof<A>`, `A: Recover`), on the proof's subject;
//! - the form is checked before anything is written (verification method from the configured list, details,
//!   on-behalf-of, the account, the request it answers), and the action must fit the account (not the
//!   password of an SSO or synchronized account, nothing to unlock, ...);
//! - expert actions need the admin's second factor within `recovery.step_up_minutes`; an action on someone
//!   who holds an admin permission only becomes a four-eyes request for a second admin (`approvals`);
//! - the change, the secrets it hands out (stored only as keyed hashes), its emails (the person's notice with
//!   a "this wasn't me" link) and its audit row (actor, reason, on-behalf-of, details, reference) commit in
//!   one transaction, which also resolves the assistance request it answers.

mod approvals;
mod passkeys;
pub mod redeem;

use crate::assistance::notify::{Body, Letters, Notice};
use crate::audit::{Actor, AuditEntry};
use crate::authz::{Proof, Recover};
use crate::crypto::{TokenHash, random_token, typed_code};
use crate::domain::{Account, AccountId, Person, PersonStatus, RequestStatus, Timestamp};
use crate::email::OutgoingEmail;
use crate::policy::permissions::RecoveryAction;
use crate::policy::recovery::{self as rules, FormError, Target, Verification};
use crate::services::Core;
use crate::store::{
    AssistanceStore, AuditStore, CredentialStore, DirectoryStore, EventStore, NewSecret, PasskeyStore, RecoveryChange,
    RecoveryStore, SecretKind, StoreError, TeamStore, ThrottleStore,
};
use std::sync::Arc;

/// What an admin filled in: the fields every action takes, and those of some.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ActionForm {
    /// The account acted on (`None`: the person's first account, or the person for person-wide actions).
    pub account: Option<AccountId>,
    /// The verification method: the action's Reason.
    pub method: String,
    pub details: Option<String>,
    pub on_behalf_of: Option<String>,
    /// The assistance request this answers; it is resolved by the action.
    pub reference: Option<String>,
    /// Temporary access pass: its lifetime (within the configured bounds) and whether it may be used more
    /// than once while it lives.
    pub pass_minutes: Option<u32>,
    pub pass_multi_use: bool,
    /// Recovery code and access email: "second" sends the code or link to the person's confirmed second
    /// notification address instead of the directory address ("primary", the default). Recorded in the audit row.
    #[serde(default)]
    pub deliver_to: Option<String>,
    /// Set by a four-eyes request only (fronts never fill it): the second address its requester saw, so that an
    /// address replaced while the request waits is not where the code goes.
    #[serde(default)]
    pub second_address_seen: Option<String>,
}

/// A temporary access pass, shown once to the admin who issued it.
#[derive(Debug, Clone)]
pub struct ShownPass {
    pub pass: String,
    pub expires_at: Timestamp,
    pub multi_use: bool,
    /// An enrolment code (it adds a passkey), not a temporary access pass.
    pub enrolment: bool,
}

#[derive(Debug)]
pub enum Outcome {
    /// The action ran: what happened, in a sentence, and the pass when it made one.
    Done { summary: String, pass: Option<ShownPass> },
    /// The subject holds an admin permission: a second admin must approve (four-eyes).
    Pending { approval: i64 },
}

#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    /// The form cannot be run as filled in (400).
    #[error("{0}")]
    Form(String),
    /// The action does not fit the person or account as they are now (409).
    #[error("{0}")]
    NotApplicable(String),
    /// An expert action and the admin's second factor is older than the step-up window (403: ask for a code).
    #[error("This action needs a fresh code from your authenticator app.")]
    StepUp,
    /// A four-eyes request that cannot be decided by this admin or in this state (409).
    #[error("{0}")]
    Approval(String),
    #[error("not found")]
    NotFound,
    /// Too many failed attempts from this client address (429): the sign-in window is spent.
    #[error("Too many failed attempts from your network. Try again in {} minutes.", retry_after.div_ceil(60))]
    Throttled { retry_after: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Unexpected(String),
}

impl From<FormError> for RecoveryError {
    fn from(e: FormError) -> Self {
        Self::Form(e.0)
    }
}

/// The store capabilities recovery uses.
pub trait RecoveryServiceStore:
    RecoveryStore
    + DirectoryStore
    + CredentialStore
    + AssistanceStore
    + AuditStore
    + EventStore
    + ThrottleStore
    + TeamStore
    + PasskeyStore
    + crate::store::AddressStore
{
}
impl<
    T: RecoveryStore
        + DirectoryStore
        + CredentialStore
        + AssistanceStore
        + AuditStore
        + EventStore
        + ThrottleStore
        + TeamStore
        + PasskeyStore
        + crate::store::AddressStore,
> RecoveryServiceStore for T
{
}

/// The recovery actions, the four-eyes approvals, and redeeming what the actions hand out.
pub struct Recovery {
    core: Arc<Core>,
    store: Arc<dyn RecoveryServiceStore>,
    letters: Arc<dyn Letters>,
}

/// A form checked against the person as they are now.
struct Prepared {
    person: Person,
    /// The account acted on (for person-wide actions, the first: it carries the notice's "this wasn't me").
    account: Account,
    accounts: Vec<Account>,
    verification: Verification,
    reference: Option<String>,
    pass_minutes: u32,
    pass_multi_use: bool,
    /// "Verified with line manager": the manager's confirmation this action rests on (the evidence).
    attestation: Option<serde_json::Value>,
    /// Every notification address of the person: the directory address first.
    addresses: Vec<String>,
    /// Where the code or link goes: one of `addresses`.
    delivery: String,
}

/// Typed codes are read back leniently: any case, dashes and spaces ignored.
pub fn normalise_code(input: &str) -> String {
    input.chars().take(128).filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_uppercase()).collect()
}

pub(crate) fn code_hash(core: &Core, code: &str) -> TokenHash {
    TokenHash::of(&core.keys, "recovery-code", &normalise_code(code))
}

pub(crate) fn link_hash(core: &Core, token: &str) -> TokenHash {
    TokenHash::of(&core.keys, "recovery-link", token)
}

/// 7 groups of 4 from a 30-symbol alphabet: 28 symbols, 137 bits, short enough to type from an email.
const CODE_GROUPS: usize = 7;

impl Recovery {
    pub(crate) fn new(core: Arc<Core>, store: Arc<dyn RecoveryServiceStore>, letters: Arc<dyn Letters>) -> Self {
        Self { core, store, letters }
    }

    fn now(&self) -> Timestamp {
        self.core.now()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.core.settings.public_url.trim_end_matches('/'))
    }

    fn email(&self, to: &str, subject: &str, notice: &Notice<'_>) -> Result<OutgoingEmail, RecoveryError> {
        let Body { text, html } = self.letters.notice(notice).map_err(RecoveryError::Unexpected)?;
        let domain = crate::email::sender_domain(&self.core.settings.mail_from);
        Ok(OutgoingEmail::new(&domain, to, subject, text, html))
    }

    /// Check `form` for `action` on `person` now: the verification, the account, whether the action fits,
    /// the request it answers.
    async fn prepare(
        &self,
        action: RecoveryAction,
        person: Person,
        form: &ActionForm,
        // The admin who acts (for an approved request, the one who asked); `None`: the system.
        actor: Option<AccountId>,
    ) -> Result<Prepared, RecoveryError> {
        let system = actor.is_none();
        let settings = &self.core.settings.recovery;
        let verification = if system {
            // The operator on the host (the CLI) gives a reason of their own: there is no helpdesk call to name.
            let reason =
                crate::domain::Reason::parse(&form.method).map_err(|e| RecoveryError::Form(format!("--{e}")))?;
            Verification { method: reason.as_str().to_owned(), details: form.details.clone(), on_behalf_of: None }
        } else {
            rules::verification(&form.method, form.details.as_deref(), form.on_behalf_of.as_deref(), settings)?
        };
        let pass_minutes = if action == RecoveryAction::IssueTemporaryAccessPass {
            rules::pass_minutes(form.pass_minutes, settings)?
        } else {
            0
        };
        let accounts = self.store.accounts_of(person.id).await?;
        let account = match form.account {
            Some(id) => accounts
                .iter()
                .find(|a| a.id == id)
                .cloned()
                .ok_or_else(|| RecoveryError::Form("That account is not one of this person's.".into()))?,
            None => accounts
                .first()
                .cloned()
                .ok_or_else(|| RecoveryError::Unexpected("a person without accounts".into()))?,
        };
        let now = self.now();
        let mut any_locked = false;
        for a in &accounts {
            any_locked |=
                a.locked_at.is_some() || a.failed_attempts > 0 || a.qa_locked_at.is_some() || a.qa_failed_attempts > 0;
        }
        let has_totp = self.store.totp(account.id).await?.is_some_and(|t| t.confirmed_at.is_some());
        let state = rules::State {
            account: (rules::target(action) == Target::Account).then_some(&account),
            person_status: person.status,
            any_locked,
            has_totp,
            backup_codes: self.store.unused_backup_codes(account.id).await?,
            passkeys: self.store.passkeys(account.id).await?.len(),
            qa_enrolled: !self.store.qa_answers(account.id).await?.is_empty(),
            now,
        };
        rules::applies(action, &state).map_err(|e| RecoveryError::NotApplicable(e.0))?;
        let reference = match form.reference.as_deref().map(str::trim).filter(|r| !r.is_empty()) {
            None => None,
            Some(text) => {
                let reference = crate::domain::ReferenceId::parse(text)
                    .map_err(|_| RecoveryError::Form("The request reference must look like AR-7KQ2-MX4P.".into()))?;
                let request =
                    self.store.assistance_request(reference.as_str()).await?.ok_or_else(|| {
                        RecoveryError::Form("There is no assistance request with that reference.".into())
                    })?;
                // An action resolves only a request about its subject: a request whose address matched nobody
                // is not a licence to act on whoever the admin picks (it is closed with a note instead).
                match request.person_id {
                    Some(p) if p == person.id => {}
                    Some(_) => {
                        return Err(RecoveryError::Form("That assistance request is about someone else.".into()));
                    }
                    None => {
                        return Err(RecoveryError::Form(
                            "That assistance request names nobody in the directory: close it with a note instead."
                                .into(),
                        ));
                    }
                }
                if request.status != RequestStatus::Open {
                    return Err(RecoveryError::NotApplicable("That assistance request is no longer open.".into()));
                }
                Some(reference.as_str().to_owned())
            }
        };
        let attestation = match actor {
            Some(actor) if crate::team::attestation::is_line_manager_method(&verification.method) => {
                Some(self.attestation_evidence(&person, actor, reference.as_deref(), now).await?)
            }
            _ => None,
        };
        let addresses = crate::addresses::of(&*self.store, &person).await?;
        let delivery = match form.deliver_to.as_deref().map(str::trim) {
            None | Some("" | "primary") => addresses[0].clone(),
            Some("second") => {
                if !matches!(action, RecoveryAction::SendRecoveryCode | RecoveryAction::SendAccessEmail) {
                    return Err(RecoveryError::Form(
                        "Only a recovery code or an access email can go to the second address.".into(),
                    ));
                }
                let current = addresses.get(1).cloned().ok_or_else(|| {
                    RecoveryError::Form("This person has no confirmed second notification address.".into())
                })?;
                if form.second_address_seen.as_ref().is_some_and(|seen| *seen != current) {
                    return Err(RecoveryError::Form(
                        "The person's second address changed since this was asked: ask again.".into(),
                    ));
                }
                current
            }
            Some(_) => return Err(RecoveryError::Form("Send it to \"primary\" or \"second\".".into())),
        };
        Ok(Prepared {
            addresses,
            delivery,
            attestation,
            person,
            account,
            accounts,
            verification,
            reference,
            pass_minutes,
            pass_multi_use: form.pass_multi_use,
        })
    }

    /// An action verified "with line manager" runs only on the manager's confirmation, given in Lifeline within
    /// `team.attestation_hours`, by the person's manager now, for this request (or for none named), and not by
    /// the admin who acts. The newest answer in the window decides.
    async fn attestation_evidence(
        &self,
        person: &Person,
        actor: AccountId,
        reference: Option<&str>,
        now: Timestamp,
    ) -> Result<serde_json::Value, RecoveryError> {
        let window = i64::from(self.core.settings.team.attestation_hours) * 3600;
        let actor_person = self.store.account(actor).await?.map(|a| a.person_id);
        let relevant: Vec<_> = self
            .store
            .attestations_about(person.id)
            .await?
            .into_iter()
            .filter(|a| Some(a.manager) == person.manager_id && Some(a.manager) != actor_person)
            .filter(|a| a.reference.is_none() || a.reference.as_deref() == reference)
            .collect();
        // The newest answer decides (by when it was given, not when it was asked): a decline after a
        // confirmation blocks, a confirmation after a decline (asked again) vouches.
        let newest = relevant
            .iter()
            .filter(|a| a.answered_at.is_some_and(|at| now - at <= window))
            .max_by_key(|a| (a.answered_at, a.id));
        if newest.is_some_and(|a| a.status == "declined") {
            return Err(RecoveryError::Form(
                "The line manager declined: they do not vouch for this request. Nothing was done.".into(),
            ));
        }
        if let Some(a) = newest {
            return Ok(serde_json::json!({
                "id": a.id,
                "manager": a.answered_by,
                "answered_at": a.answered_at,
                "second_factor_at": a.answered_second_factor_at,
                "note": a.answer_note,
                "reference": a.reference,
            }));
        }
        if relevant.iter().any(|a| a.status == "pending" && a.expires_at > now) {
            return Err(RecoveryError::Form(
                "The line manager has not answered yet: the action can run once they confirm.".into(),
            ));
        }
        Err(RecoveryError::Form(
            "\"Verified with line manager\" needs the manager's confirmation in Lifeline first: ask them from the \
             person's record (Ask the line manager), then act once they confirm. Their answer counts for this \
             request only, and not when you are the manager yourself."
                .into(),
        ))
    }

    async fn subject<A: Recover>(&self, proof: &Proof<A>) -> Result<Person, RecoveryError> {
        let id = proof.subject().ok_or_else(|| RecoveryError::Unexpected("a proof for a person names one".into()))?;
        self.store.person(id).await?.ok_or(RecoveryError::NotFound)
    }

    /// Run `A` on the proof's subject, as the proof's actor. `second_factor_at` is when the acting session
    /// last proved a second factor (the step-up check). On someone who holds an admin permission the action
    /// only becomes a request that a second admin approves.
    #[tracing::instrument(skip_all, fields(action = A::NAME))]
    pub async fn execute<A: Recover>(
        &self,
        proof: Proof<A>,
        form: &ActionForm,
        second_factor_at: Option<Timestamp>,
    ) -> Result<Outcome, RecoveryError> {
        let person = self.subject(&proof).await?;
        let prepared = self.prepare(A::RECOVERY, person, form, proof.actor_account()).await?;
        self.check_step_up(A::RECOVERY, &proof, second_factor_at)?;
        if let Some(requester) = proof.actor_account() {
            let subject_grant = self.store.grant(prepared.person.id).await?;
            if rules::needs_approval(&subject_grant) {
                let approval = self.request_approval(&proof, requester, &prepared, form).await?;
                return Ok(Outcome::Pending { approval });
            }
        }
        self.run(A::RECOVERY, proof.actor(), prepared, None).await
    }

    fn check_step_up<A: Recover>(
        &self,
        action: RecoveryAction,
        proof: &Proof<A>,
        second_factor_at: Option<Timestamp>,
    ) -> Result<(), RecoveryError> {
        let needed = proof.actor_account().is_some() && rules::needs_step_up(action, &self.core.settings.permissions);
        if needed && !rules::fresh(second_factor_at, self.now(), &self.core.settings.recovery) {
            return Err(RecoveryError::StepUp);
        }
        Ok(())
    }

    /// How the person's notice names who acted: the role, unless configured to name the admin.
    fn by(&self, actor: &Actor) -> String {
        match actor {
            Actor::Account { username, .. } | Actor::Token { username, .. }
                if self.core.settings.recovery.notify_actor_name =>
            {
                format!("an administrator ({username})")
            }
            Actor::Account { .. } | Actor::Token { .. } => "an administrator".into(),
            Actor::System => "the system operator".into(),
            Actor::Public => "someone".into(),
        }
    }

    /// The change, secrets, emails and audit row of `action`, committed together.
    async fn run(
        &self,
        action: RecoveryAction,
        actor: &Actor,
        p: Prepared,
        approved: Option<(&crate::store::Approval, &str)>,
    ) -> Result<Outcome, RecoveryError> {
        let now = self.now();
        let settings = &self.core.settings.recovery;
        let organisation = &self.core.settings.organisation;
        let account = p.account.id;
        let when = crate::assistance::dossier::when(now);
        let by = self.by(actor);
        let expires_at = rules::expires_at(action, now, p.pass_minutes, settings);
        let expires_text = crate::assistance::dossier::when(expires_at);
        let mut secrets = Vec::new();
        let mut pass = None;
        // The secret the action hands out, if any: (kind, code to type or link token).
        let (change, handed_out) = match action {
            RecoveryAction::SendAccessEmail => {
                (RecoveryChange::Issue { account }, Some((SecretKind::AccessLink, random_token())))
            }
            RecoveryAction::SendMagicLink => {
                (RecoveryChange::Issue { account }, Some((SecretKind::MagicLink, random_token())))
            }
            RecoveryAction::SendRecoveryCode => {
                (RecoveryChange::Issue { account }, Some((SecretKind::RecoveryCode, typed_code(CODE_GROUPS))))
            }
            RecoveryAction::SendOneTimePassword => {
                (RecoveryChange::Issue { account }, Some((SecretKind::OneTimePassword, typed_code(CODE_GROUPS))))
            }
            RecoveryAction::IssueTemporaryAccessPass => {
                (RecoveryChange::Issue { account }, Some((SecretKind::TemporaryAccessPass, typed_code(CODE_GROUPS))))
            }
            RecoveryAction::IssueEnrolmentCode => {
                (RecoveryChange::Issue { account }, Some((SecretKind::EnrolmentCode, typed_code(CODE_GROUPS))))
            }
            RecoveryAction::ResetMfa => (RecoveryChange::ResetMfa { account, device_authorization: true }, None),
            RecoveryAction::Unlock => {
                (RecoveryChange::Unlock { accounts: vec![account], unlocked_by: actor.to_string() }, None)
            }
            RecoveryAction::UnlockPerson => (
                RecoveryChange::Unlock {
                    accounts: p.accounts.iter().map(|a| a.id).collect(),
                    unlocked_by: actor.to_string(),
                },
                None,
            ),
            RecoveryAction::UnlockQa => (RecoveryChange::UnlockQa { account }, None),
            RecoveryAction::UnenrollQa => (RecoveryChange::UnenrollQa { account }, None),
            RecoveryAction::Enable => {
                (RecoveryChange::SetStatus { person: p.person.id, status: PersonStatus::Active }, None)
            }
            RecoveryAction::Disable => {
                (RecoveryChange::SetStatus { person: p.person.id, status: PersonStatus::Disabled }, None)
            }
        };
        let multi_use = action == RecoveryAction::IssueTemporaryAccessPass && p.pass_multi_use;
        if let Some((kind, value)) = &handed_out {
            let hash = match kind {
                SecretKind::AccessLink | SecretKind::MagicLink => link_hash(&self.core, value),
                _ => code_hash(&self.core, value),
            };
            secrets.push(NewSecret {
                account,
                kind: *kind,
                hash,
                expires_at,
                multi_use,
                action: None,
                reference: p.reference.clone(),
            });
        }
        // A way in that needs no mailbox is told to the mailbox regardless: if the person did not ask for it,
        // "this wasn't me" revokes it. So is a code or link sent away from the directory address.
        let notify =
            settings.notify_user || action == RecoveryAction::IssueEnrolmentCode || p.delivery != p.addresses[0];
        let not_me = notify.then(random_token);
        if let Some(token) = &not_me {
            secrets.push(NewSecret {
                account,
                kind: SecretKind::NotMe,
                hash: link_hash(&self.core, token),
                expires_at: now + i64::from(settings.not_me_days) * 86_400,
                multi_use: false,
                action: Some(action.name().to_owned()),
                reference: p.reference.clone(),
            });
        }
        let not_me_url = not_me.as_ref().map(|t| self.url(&format!("/not-me?token={t}")));
        let username = p.account.username.to_string();
        let what = describe(action, &username, &p.person.display_name);
        let greeting = format!("Hello {},", p.person.display_name);
        let mut paragraphs = vec![format!("{what} This was done by {by} on {when}.")];
        let (subject, code, link): (String, Option<String>, Option<(String, String)>) = match (&handed_out, action) {
            (Some((_, token)), RecoveryAction::SendAccessEmail) => {
                paragraphs.push(format!(
                    "Your username is {username}. Use the link below to set a new password; it works once, until {expires_text}."
                ));
                (
                    format!("Your {organisation} sign-in details"),
                    None,
                    Some(("Set a new password".into(), self.url(&format!("/reset-password?token={token}")))),
                )
            }
            (Some((_, token)), RecoveryAction::SendMagicLink) => {
                paragraphs
                    .push(format!("Use the link below to change your password; it works once, until {expires_text}."));
                (
                    format!("Change your {organisation} password"),
                    None,
                    Some(("Change your password".into(), self.url(&format!("/reset-password?token={token}")))),
                )
            }
            (Some((_, code)), RecoveryAction::SendRecoveryCode) => {
                paragraphs.push(format!(
                    "Open the recovery page, give your email address and this code, then set a new password or remove \
                     your lost authenticator and set up a new one. The code works once, until {expires_text}."
                ));
                (
                    format!("Your {organisation} recovery code"),
                    Some(code.clone()),
                    Some(("Open the recovery page".into(), self.url("/recover"))),
                )
            }
            (Some((_, code)), RecoveryAction::SendOneTimePassword) => {
                paragraphs.push(format!(
                    "Sign in with your username ({username}) and this one-time password instead of your password. It \
                     works once, until {expires_text}; your second step still applies, and you will then choose \
                     a new password."
                ));
                (
                    format!("Your {organisation} one-time password"),
                    Some(code.clone()),
                    Some(("Sign in with a one-time password".into(), self.url("/signin/code"))),
                )
            }
            _ => (format!("{organisation}: {}", happened(action)), None, None),
        };
        if let Some((_, value)) = &handed_out
            && action == RecoveryAction::IssueTemporaryAccessPass
        {
            pass = Some(ShownPass { pass: value.clone(), expires_at, multi_use, enrolment: false });
            paragraphs.push(format!(
                "The administrator gave you the pass themself; it lets you sign in and set up a new authenticator \
                 until {expires_text}."
            ));
        }
        if let Some((_, value)) = &handed_out
            && action == RecoveryAction::IssueEnrolmentCode
        {
            pass = Some(ShownPass { pass: value.clone(), expires_at, multi_use: false, enrolment: true });
            paragraphs.push(format!(
                "The administrator gave you the code themself, not by email. With your username it lets you add a \
                 passkey once, at \"Sign in with a code\" on the sign-in page, until {expires_text}. If you did not \
                 ask for it, use the link below: the code stops working and your account is locked."
            ));
        }
        if let Some(reference) = &p.reference {
            paragraphs.push(format!("This answers your assistance request {reference}."));
        }
        if p.delivery != p.addresses[0] && action == RecoveryAction::SendRecoveryCode {
            paragraphs
                .push(format!("On the recovery page, give your directory address, {}, with the code.", p.addresses[0]));
        }
        let mut emails = Vec::new();
        // The notice goes with every action when the policy says so; an emailed code or link goes regardless, to
        // the address the admin chose. Every other notification address gets the notice without the code or link.
        if notify || code.is_some() || link.is_some() {
            let notice = Notice {
                greeting: &greeting,
                paragraphs: &paragraphs,
                code: code.as_deref(),
                link: link.as_ref().map(|(label, url)| (label.as_str(), url.as_str())),
                not_me: not_me_url.as_deref(),
                organisation,
            };
            emails.push(self.email(&p.delivery, &subject, &notice)?);
        }
        if notify {
            // Without a code or link every address reads the same notice; with one, the others read where it went.
            let told = if code.is_some() || link.is_some() {
                vec![paragraphs[0].clone(), format!("It was sent to {}, not to this address.", p.delivery)]
            } else {
                paragraphs.clone()
            };
            let notice = Notice {
                greeting: &greeting,
                paragraphs: &told,
                code: None,
                link: None,
                not_me: not_me_url.as_deref(),
                organisation,
            };
            let subject = format!("{organisation}: {}", happened(action));
            for other in p.addresses.iter().filter(|a| **a != p.delivery) {
                emails.push(self.email(other, &subject, &notice)?);
            }
        }
        let mut details = serde_json::json!({ "details": p.verification.details });
        if code.is_some() || link.is_some() {
            details["delivered_to"] = serde_json::json!(p.delivery);
        }
        if expires_at > now {
            details["expires_at"] = serde_json::json!(expires_at);
        }
        if action == RecoveryAction::IssueTemporaryAccessPass {
            details["multi_use"] = serde_json::json!(multi_use);
        }
        if let Some(evidence) = &p.attestation {
            details["manager_attestation"] = evidence.clone();
        }
        if let Some((approval, requested_by)) = approved {
            details["approval"] = serde_json::json!(approval.id);
            details["requested_by"] = serde_json::json!(requested_by);
        }
        let mut audit = AuditEntry::new(now, actor, action.name(), "success")
            .person(p.person.id)
            .reason(p.verification.method.clone())
            .details(details.to_string());
        if rules::target(action) == Target::Account {
            audit = audit.account(account);
        }
        audit.on_behalf_of = p.verification.on_behalf_of.clone();
        audit.reference = p.reference.clone();
        if !emails.is_empty() {
            audit.notified = Some(emails.iter().map(|e| e.to.clone()).collect::<Vec<_>>().join(", "));
        }
        if !self.store.apply_recovery(&change, &secrets, &emails, p.reference.as_deref(), &audit, now).await? {
            return Err(RecoveryError::NotApplicable("Nothing to change: the record changed meanwhile.".into()));
        }
        Ok(Outcome::Done { summary: what, pass })
    }
}

/// The sentence that tells the person (and the admin) what an action did: written about the account and the
/// person, not to anyone, since both read it.
pub fn describe(action: RecoveryAction, username: &str, name: &str) -> String {
    match action {
        RecoveryAction::SendAccessEmail => {
            format!("The username and a link to set a new password were emailed for the account {username}.")
        }
        RecoveryAction::SendMagicLink => {
            format!("A link to set a new password was emailed for the account {username}.")
        }
        RecoveryAction::SendRecoveryCode => format!("A recovery code was emailed for the account {username}."),
        RecoveryAction::SendOneTimePassword => format!("A one-time password was emailed for the account {username}."),
        RecoveryAction::IssueTemporaryAccessPass => {
            format!("A temporary access pass was issued for the account {username}.")
        }
        RecoveryAction::ResetMfa => format!(
            "The two-step verification of {username} was reset: the authenticator, backup codes and passkeys were \
             removed. At the next sign-in a code is emailed first, then a new authenticator or passkey is set up."
        ),
        RecoveryAction::IssueEnrolmentCode => format!(
            "An enrolment code was issued for the account {username}: with it the person adds a passkey, no email \
             needed."
        ),
        RecoveryAction::Unlock => format!("The account {username} was unlocked."),
        RecoveryAction::UnlockPerson => format!("Every account of {name} was unlocked."),
        RecoveryAction::UnlockQa => format!("The security-question reset of {username} was unlocked."),
        RecoveryAction::UnenrollQa => format!("The security questions of {username} were removed."),
        RecoveryAction::Enable => format!("The access of {name} was enabled again."),
        RecoveryAction::Disable => format!("The access of {name} was disabled: every session ended."),
    }
}

/// What happened, for the subject of the person's notice.
fn happened(action: RecoveryAction) -> &'static str {
    match action {
        RecoveryAction::SendAccessEmail | RecoveryAction::SendMagicLink => "a link to set your password was sent",
        RecoveryAction::SendRecoveryCode => "a recovery code was sent",
        RecoveryAction::SendOneTimePassword => "a one-time password was sent",
        RecoveryAction::IssueTemporaryAccessPass => "a temporary access pass was issued for you",
        RecoveryAction::ResetMfa => "your two-step verification was reset",
        RecoveryAction::IssueEnrolmentCode => "an enrolment code was issued for you",
        RecoveryAction::Unlock | RecoveryAction::UnlockPerson => "your account was unlocked",
        RecoveryAction::UnlockQa => "your security-question reset was unlocked",
        RecoveryAction::UnenrollQa => "your security questions were removed",
        RecoveryAction::Enable => "your access was enabled again",
        RecoveryAction::Disable => "your access was disabled",
    }
}

/// The action as a heading (console, emails).
pub fn title(action: RecoveryAction) -> &'static str {
    match action {
        RecoveryAction::SendAccessEmail => "Send access email",
        RecoveryAction::SendRecoveryCode => "Send recovery code email",
        RecoveryAction::Unlock => "Unlock account",
        RecoveryAction::UnlockPerson => "Unlock person and accounts",
        RecoveryAction::ResetMfa => "Reset MFA",
        RecoveryAction::IssueEnrolmentCode => "Issue enrolment code",
        RecoveryAction::IssueTemporaryAccessPass => "Issue temporary access pass",
        RecoveryAction::SendOneTimePassword => "Send one-time password",
        RecoveryAction::SendMagicLink => "Send magic link to change password",
        RecoveryAction::UnlockQa => "Unlock Q&A lockout",
        RecoveryAction::UnenrollQa => "Unenroll from Q&A password reset",
        RecoveryAction::Enable => "Enable person",
        RecoveryAction::Disable => "Disable person",
    }
}
