//! The person's side: what they do with what an action handed out. Each secret is used up by one
//! conditional write (`RecoveryStore::redeem`) together with its effect, so it works once, until it expires,
//! and two concurrent uses cannot both succeed. Wrong or unknown codes get one answer, after the same floor.

use super::{Recovery, RecoveryError, code_hash, link_hash};
use crate::assistance::notify::Notice;
use crate::audit::{Actor, AuditEntry};
use crate::domain::{Account, AccountId, AccountSource, EmailAddress, Timestamp};
use crate::policy::password;
use crate::policy::permissions::Permission;
use crate::signin::RequestContext;
use crate::signin::attempts::{release_client, reserve_client};
use crate::store::{LiveSecret, NewSecret, RecoveryChange, RedeemEffect, Redemption, SecretKind, SessionStage};

/// What a link is, for the page it opens (a GET uses nothing up: mail scanners fetch links).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkState {
    Live {
        action: Option<String>,
    },
    Used {
        at: Timestamp,
    },
    /// Expired, revoked or unknown: one answer.
    Invalid,
}

/// Why a redemption did nothing.
#[derive(Debug, thiserror::Error)]
pub enum RedeemError {
    /// The code or link is wrong, used, expired or revoked (one answer for all).
    #[error("This code or link is not valid: it may have been used already or have expired.")]
    Invalid,
    #[error(transparent)]
    Password(#[from] crate::policy::password::PasswordRejection),
    #[error("This account's password is managed elsewhere, not by Lifeline.")]
    NotLocal,
    /// Password hashing is saturated: nothing was used up; try again shortly (503).
    #[error("too busy")]
    Busy,
    #[error(transparent)]
    Other(#[from] RecoveryError),
}

impl From<crate::store::StoreError> for RedeemError {
    fn from(e: crate::store::StoreError) -> Self {
        Self::Other(e.into())
    }
}

/// What a "this wasn't me" link reports, as people read it: an action's title, or the words stored with it.
fn shown(action: &str) -> String {
    match crate::policy::permissions::RecoveryAction::parse(action) {
        Some(a) => format!("\"{}\"", super::title(a)),
        None => action.to_owned(),
    }
}

impl Recovery {
    async fn floor(&self, started: std::time::Instant) {
        crate::signin::failure_floor(&self.core, started).await
    }

    /// Run one attempt with a secret typed or followed from outside: it is taken from the client address's
    /// window of failed sign-ins first (reserve, then do the slow work), given back when it succeeds, and a
    /// failure is answered after the failure floor. `Ok(None)` is a failure.
    async fn guarded<T>(
        &self,
        ctx: &RequestContext,
        attempt: impl std::future::Future<Output = Result<Option<T>, RecoveryError>>,
    ) -> Result<Option<T>, RecoveryError> {
        let started = std::time::Instant::now();
        let limit = self.core.settings.lockout.per_client;
        let slot = match reserve_client(&*self.store, limit, ctx, self.now()).await? {
            Ok(slot) => slot,
            Err(retry_after) => return Err(RecoveryError::Throttled { retry_after }),
        };
        let outcome = attempt.await;
        match &outcome {
            Ok(Some(_)) => release_client(&*self.store, &slot).await?,
            // An error is not the client's failure: nothing was checked.
            Err(_) => release_client(&*self.store, &slot).await?,
            Ok(None) => self.floor(started).await,
        }
        outcome
    }

    fn live(&self, secret: Option<LiveSecret>, kinds: &[SecretKind]) -> LinkState {
        match secret {
            Some(s) if !kinds.contains(&s.kind) => LinkState::Invalid,
            Some(LiveSecret { used_at: Some(at), .. }) => LinkState::Used { at },
            Some(s) if s.expires_at > self.now() && s.revoked_at.is_none() => {
                LinkState::Live { action: s.action.as_deref().map(shown) }
            }
            _ => LinkState::Invalid,
        }
    }

    /// The state of a set-new-password link (access email, magic link).
    pub async fn password_link(&self, token: &str) -> Result<LinkState, RecoveryError> {
        let secret = self.store.secret(&link_hash(&self.core, token)).await?;
        Ok(self.live(secret, &[SecretKind::AccessLink, SecretKind::MagicLink]))
    }

    async fn account_of(&self, id: AccountId) -> Result<Account, RecoveryError> {
        self.store.account(id).await?.ok_or(RecoveryError::NotFound)
    }

    fn self_service(&self, account: &Account, action: &str) -> AuditEntry {
        let actor = Actor::Account { account_id: account.id, username: account.username.to_string() };
        AuditEntry::new(self.now(), &actor, action, "success").person(account.person_id).account(account.id)
    }

    async fn checked_hash(&self, account: &Account, new_password: &str) -> Result<String, RedeemError> {
        if account.source != AccountSource::Local {
            return Err(RedeemError::NotLocal);
        }
        let person = self.store.person(account.person_id).await?.ok_or(RecoveryError::NotFound)?;
        let context = [person.email.as_str(), account.username.as_str(), person.display_name.as_str()];
        password::check(new_password, self.core.settings.policy.mfa_required, &context)?;
        self.core.hasher.hash(new_password).await.map_err(|e| match e {
            // Saturated hashing is a 503 with Retry-After, and nothing was used up.
            crate::crypto::HashError::Busy => RedeemError::Busy,
            e => RedeemError::Other(RecoveryError::Unexpected(e.to_string())),
        })
    }

    /// Set a new password with a link from an access email or a magic link: the password is checked first (a
    /// refused one uses nothing up), then the link is used, the password set, the lock lifted and every
    /// session ended, in one transaction.
    pub async fn set_password_with_link(
        &self,
        token: &str,
        new_password: &str,
        ctx: &RequestContext,
    ) -> Result<AccountId, RedeemError> {
        // The link is checked before the password: a weak password on a live link costs nothing and uses
        // nothing up. A live link is never refused for its address's window (256 bits are not guessed, and one
        // flooder behind a shared address must not stop everyone there from recovering); a miss is charged
        // to it, refused past it, and answered after the floor.
        let hash = link_hash(&self.core, token);
        let kinds = [SecretKind::AccessLink, SecretKind::MagicLink];
        let now = self.now();
        let live = |s: &LiveSecret| {
            kinds.contains(&s.kind) && s.used_at.is_none() && s.revoked_at.is_none() && s.expires_at > now
        };
        let Some(secret) = self.store.secret(&hash).await?.filter(live) else {
            self.guarded(ctx, async { Ok(None::<()>) }).await?;
            return Err(RedeemError::Invalid);
        };
        let account = self.account_of(secret.account).await?;
        let password_hash = self.checked_hash(&account, new_password).await?;
        let with =
            if secret.kind == SecretKind::AccessLink { "with an access email's link" } else { "with a magic link" };
        let audit = self.self_service(&account, "password.reset").details(with);
        let notices = self.password_reset_notice(&account, with).await?;
        let redemption = Redemption {
            hash: &hash,
            kinds: &kinds,
            account: Some(account.id),
            effect: RedeemEffect::SetPassword(password_hash),
            emails: &notices.emails,
            secrets: &notices.secrets,
            audit: &audit,
            event: None,
            now: self.now(),
        };
        self.store.redeem(&redemption).await?.ok_or(RedeemError::Invalid)?;
        Ok(account.id)
    }

    /// The public recovery page: the email address and a recovery code. Returns the account the code was
    /// for, whose session may then set a new password or remove the authenticator; one answer, after the
    /// same floor, for a wrong address, a wrong code and a used or expired one.
    pub async fn redeem_recovery_code(
        &self,
        email: &str,
        code: &str,
        ctx: &RequestContext,
    ) -> Result<Option<AccountId>, RecoveryError> {
        self.guarded(ctx, self.try_recovery_code(email, code)).await
    }

    async fn try_recovery_code(&self, email: &str, code: &str) -> Result<Option<AccountId>, RecoveryError> {
        let hash = code_hash(&self.core, code);
        let Ok(email) = EmailAddress::parse(email) else { return Ok(None) };
        let Some(person) = self.store.person_by_email(&email).await? else { return Ok(None) };
        let Some(secret) = self.store.secret(&hash).await? else { return Ok(None) };
        let Some(account) = self.store.account(secret.account).await? else { return Ok(None) };
        if account.person_id != person.id {
            return Ok(None);
        }
        let audit = self.self_service(&account, "recovery-code.redeem");
        let redemption = Redemption {
            hash: &hash,
            kinds: &[SecretKind::RecoveryCode],
            account: Some(account.id),
            effect: RedeemEffect::Nothing,
            emails: &[],
            secrets: &[],
            audit: &audit,
            event: None,
            now: self.now(),
        };
        Ok(self.store.redeem(&redemption).await?.map(|s| s.account))
    }

    /// In a recovery session: a new password (sessions other than `keep` end).
    pub async fn recovery_set_password(
        &self,
        account: AccountId,
        keep: &crate::crypto::TokenHash,
        new_password: &str,
    ) -> Result<(), RedeemError> {
        let account = self.account_of(account).await?;
        let hash = self.checked_hash(&account, new_password).await?;
        let audit = self.self_service(&account, "password.reset").details("with a recovery code");
        let notices = self.password_reset_notice(&account, "with a recovery code").await?;
        self.store.set_password(account.id, &hash, false, Some(keep), self.now(), &audit, &notices).await?;
        Ok(())
    }

    /// The notice of a password reset `how` ("with a magic link"), to every address, with "this wasn't me".
    async fn password_reset_notice(
        &self,
        account: &crate::domain::Account,
        how: &str,
    ) -> Result<crate::store::Notices, crate::store::StoreError> {
        let alarm = crate::assistance::notify::Alarm {
            subject: "The password of your account was reset",
            paragraphs: vec![format!(
                "The password of your account {} was reset {how}, on {}.",
                account.username,
                crate::assistance::dossier::when(self.now())
            )],
            reported_as: format!("resetting the password {how}"),
        };
        crate::assistance::notify::account_alarm(&self.core, &*self.letters, &*self.store, account, alarm).await
    }

    /// In a recovery session: remove the lost authenticator and backup codes. Ends every session; the caller
    /// moves this one straight on to enrolling a new authenticator (the person has just proved the mailbox),
    /// while any other sign-in until then, with the password alone, must prove the mailbox with a device code.
    pub async fn recovery_remove_authenticator(&self, account: AccountId) -> Result<(), RecoveryError> {
        let account = self.account_of(account).await?;
        let audit = self.self_service(&account, "mfa.remove").details("with a recovery code");
        let change = RecoveryChange::ResetMfa { account: account.id, device_authorization: true };
        let alarm = crate::assistance::notify::Alarm {
            subject: "Your two-step verification was removed",
            paragraphs: vec![format!(
                "The authenticator app, backup codes and passkeys of your account {} were removed with a recovery \
                 code, on {}. A new one is set up at the next sign-in.",
                account.username,
                crate::assistance::dossier::when(self.now())
            )],
            reported_as: "removing the authenticator with a recovery code".into(),
        };
        let notices =
            crate::assistance::notify::account_alarm(&self.core, &*self.letters, &*self.store, &account, alarm).await?;
        if !self.store.apply_recovery(&change, &notices.secrets, &notices.emails, None, &audit, self.now()).await? {
            return Err(RecoveryError::NotApplicable("There is no authenticator or backup code to remove.".into()));
        }
        Ok(())
    }

    /// Sign in with a one-time password (instead of the password; the second factor still applies, then a
    /// new password) or a temporary access pass (instead of password and second factor; a new authenticator
    /// is enrolled). Returns the account and the stage the session starts at.
    pub async fn sign_in_with_code(
        &self,
        login: &str,
        code: &str,
        ctx: &RequestContext,
    ) -> Result<Option<(AccountId, SessionStage)>, RecoveryError> {
        self.guarded(ctx, self.try_sign_in_code(login, code, ctx)).await
    }

    async fn try_sign_in_code(
        &self,
        login: &str,
        code: &str,
        ctx: &RequestContext,
    ) -> Result<Option<(AccountId, SessionStage)>, RecoveryError> {
        let hash = code_hash(&self.core, code);
        let login = login.trim();
        if login.is_empty() || login.len() > 254 {
            return Ok(None);
        }
        let Some(account) = self.store.account_by_login(login).await? else { return Ok(None) };
        let Some(secret) = self.store.secret(&hash).await? else { return Ok(None) };
        let (effect, method) = match secret.kind {
            SecretKind::OneTimePassword => (RedeemEffect::RequireChangePassword, "one_time_password"),
            SecretKind::TemporaryAccessPass => (RedeemEffect::ReplaceMfa, "temporary_access_pass"),
            // Nothing else changes: the session that redeemed it may add a passkey, and only that.
            SecretKind::EnrolmentCode => (RedeemEffect::Nothing, "enrolment_code"),
            _ => return Ok(None),
        };
        let event = crate::signin::sign_in_event(&self.core, Some(account.id), "code_accepted", method, ctx);
        let mut audit = self.self_service(&account, &format!("{method}.redeem")).ip(ctx.ip.to_string());
        if secret.kind == SecretKind::TemporaryAccessPass {
            audit = audit.details("the authenticator and backup codes were removed and every session ended; a new authenticator is enrolled next");
        }
        let redemption = Redemption {
            hash: &hash,
            kinds: &[secret.kind],
            account: Some(account.id),
            effect,
            emails: &[],
            secrets: &[],
            audit: &audit,
            event: Some(&event),
            now: self.now(),
        };
        if self.store.redeem(&redemption).await?.is_none() {
            return Ok(None);
        }
        let stage = if secret.kind == SecretKind::TemporaryAccessPass {
            SessionStage::EnrollMfa
        } else if secret.kind == SecretKind::EnrolmentCode {
            SessionStage::EnrollPasskey
        } else {
            // The same way on as after a password: the one-time password stands in for it and nothing else
            // (the redemption has just made a new password due).
            let record = self.store.actor_record(account.id).await?.ok_or(RecoveryError::NotFound)?;
            let has_second_factor = crate::signin::has_second_factor(&*self.store, &record).await?;
            let required = crate::domain::RequiredActions { change_password: true, ..account.required };
            crate::signin::stage_after_first_factor(has_second_factor, &required, &self.core.settings.policy)
        };
        Ok(Some((account.id, stage)))
    }

    /// The first sign-in after an MFA reset: email a device authorization code to the registered address
    /// (it replaces any earlier one).
    pub async fn send_device_code(&self, account: AccountId) -> Result<(), RecoveryError> {
        let account = self.account_of(account).await?;
        let person = self.store.person(account.person_id).await?.ok_or(RecoveryError::NotFound)?;
        let now = self.now();
        let limit = crate::policy::recovery::DEVICE_CODES;
        let bucket = format!("device-code:{}", account.id.0);
        if !self.store.reserve_client_attempt(&bucket, limit.window_start(now), limit.max).await? {
            tracing::info!(account = account.id.0, "device authorization code not resent: limit reached");
            return Ok(());
        }
        let code = crate::crypto::typed_code(super::CODE_GROUPS);
        let minutes = self.core.settings.recovery.device_code_minutes;
        let paragraphs = vec![
            format!(
                "Someone has just signed in as {}. Your two-step verification was reset, so before a new \
                 authenticator can be set up we need to know that this mailbox is yours.",
                account.username
            ),
            format!(
                "Enter this code on the sign-in page within {minutes} minutes. If this was not you, someone else can \
                 sign in as you: use the link below to lock your account at once, then contact your helpdesk."
            ),
        ];
        // Whoever gets this email without having signed in has just learnt that a stranger can sign in as them.
        let not_me = crate::crypto::random_token();
        let not_me_url = self.url(&format!("/not-me?token={not_me}"));
        let greeting = format!("Hello {},", person.display_name);
        let notice = Notice {
            greeting: &greeting,
            paragraphs: &paragraphs,
            code: Some(&code),
            link: None,
            not_me: Some(&not_me_url),
            organisation: &self.core.settings.organisation,
        };
        let subject = format!("{}: device authorization code", self.core.settings.organisation);
        let email = self.email(person.email.as_str(), &subject, &notice)?;
        let secret = NewSecret {
            account: account.id,
            kind: SecretKind::DeviceCode,
            hash: code_hash(&self.core, &code),
            expires_at: now + i64::from(minutes) * 60,
            multi_use: false,
            action: None,
            reference: None,
        };
        let report = NewSecret {
            account: account.id,
            kind: SecretKind::NotMe,
            hash: link_hash(&self.core, &not_me),
            expires_at: now + i64::from(self.core.settings.recovery.not_me_days) * 86_400,
            multi_use: false,
            action: Some("a sign-in to the account".into()),
            reference: None,
        };
        let audit = self.self_service(&account, "device-authorization.send");
        let secrets = [secret, report];
        self.store
            .apply_recovery(&RecoveryChange::Issue { account: account.id }, &secrets, &[email], None, &audit, now)
            .await?;
        Ok(())
    }

    /// The emailed device authorization code; true when it was right (the session may enrol now).
    pub async fn authorize_device(
        &self,
        account: AccountId,
        code: &str,
        ctx: &RequestContext,
    ) -> Result<bool, RecoveryError> {
        Ok(self.guarded(ctx, self.try_device_code(account, code)).await?.is_some())
    }

    async fn try_device_code(&self, account: AccountId, code: &str) -> Result<Option<()>, RecoveryError> {
        let account = self.account_of(account).await?;
        let hash = code_hash(&self.core, code);
        let audit = self.self_service(&account, "device-authorization.confirm");
        let redemption = Redemption {
            hash: &hash,
            kinds: &[SecretKind::DeviceCode],
            account: Some(account.id),
            effect: RedeemEffect::DeviceAuthorized,
            emails: &[],
            secrets: &[],
            audit: &audit,
            event: None,
            now: self.now(),
        };
        Ok(self.store.redeem(&redemption).await?.map(|_| ()))
    }

    /// The state of a "this wasn't me" link.
    pub async fn not_me_link(&self, token: &str) -> Result<LinkState, RecoveryError> {
        let secret = self.store.secret(&link_hash(&self.core, token)).await?;
        Ok(self.live(secret, &[SecretKind::NotMe]))
    }

    /// "This wasn't me": lock the account (`reported_not_me`), end its sessions, revoke its live secrets, and
    /// alert every admin who works the queue with the action it reports. False when the link is not live.
    pub async fn report_not_me(&self, token: &str, ctx: &RequestContext) -> Result<bool, RecoveryError> {
        let hash = link_hash(&self.core, token);
        let Some(secret) = self.store.secret(&hash).await?.filter(|s| s.kind == SecretKind::NotMe) else {
            return Ok(false);
        };
        let account = self.account_of(secret.account).await?;
        let person = self.store.person(account.person_id).await?.ok_or(RecoveryError::NotFound)?;
        let action = secret.action.as_deref().map(shown).unwrap_or_else(|| "an action".into());
        let when = crate::assistance::dossier::when(secret.created_at);
        let paragraphs = vec![
            format!(
                "{} ({}, account {}) says they did not ask for {action}, done on {when}.",
                person.display_name, person.email, account.username
            ),
            "The account is now locked (reason: reported_not_me), its sessions have ended and every link, code or \
             pass handed out for it is revoked. Find out who asked for the action, then unlock the account once \
             the person's identity is verified again."
                .into(),
        ];
        let link = self.url(&format!("/console/people/{}", person.id));
        let notice = Notice {
            greeting: "Hello,",
            paragraphs: &paragraphs,
            code: None,
            link: Some(("Open the person's record", &link)),
            not_me: None,
            organisation: &self.core.settings.organisation,
        };
        let subject = format!("Reported: {} did not ask for {action}", person.display_name);
        let settings = &self.core.settings.permissions;
        let mut emails = Vec::new();
        for (to, grant) in self.store.notification_recipients(settings.view_requests.dpa).await? {
            if crate::policy::permissions::allows(&grant, Permission::ViewRequests, settings) {
                emails.push(self.email(&to, &subject, &notice)?);
            }
        }
        let mut audit = AuditEntry::new(self.now(), &Actor::Public, "report-not-me", "success")
            .person(person.id)
            .account(account.id)
            .ip(ctx.ip.to_string())
            .details(format!("reports {action}"));
        audit.notified = Some(emails.iter().map(|e| e.to.clone()).collect::<Vec<_>>().join(", "));
        let redemption = Redemption {
            hash: &hash,
            kinds: &[SecretKind::NotMe],
            account: Some(account.id),
            effect: RedeemEffect::ReportedNotMe,
            emails: &emails,
            secrets: &[],
            audit: &audit,
            event: None,
            now: self.now(),
        };
        let reported = self.store.redeem(&redemption).await?.is_some();
        if reported {
            tracing::warn!(account = account.id.0, person = person.id.0, "reported \"this wasn't me\": account locked");
        }
        Ok(reported)
    }
}
