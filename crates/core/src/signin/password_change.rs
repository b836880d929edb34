//! Choosing a new password: the rule with the person's own words, and a change that needs the current
//! password (checked as an admitted attempt) and ends every other session.

use super::attempts::settled;
use super::{RequestContext, SignIn, SignInError};
use crate::crypto::TokenHash;
use crate::domain::{Account, AccountId};
use crate::policy::password::{self, PasswordRejection};
use std::sync::Arc;

impl SignIn {
    /// Words a password must not be built from: the person's name, email and username.
    pub(super) async fn personal_words(&self, account: &Account) -> Result<Vec<String>, SignInError> {
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
        password::check(new, self.core.settings.policy.mfa_required, &words)?;
        Ok(())
    }

    /// Set a new password chosen by the account holder: a required change right after signing in, or a
    /// change from their account page, which must give the current password (ASVS 5.0 6.2.3; checked like
    /// a sign-in attempt, so it is no way around the lockout). Every other session of the account ends.
    pub async fn change_password(
        self: &Arc<Self>,
        session: &TokenHash,
        account_id: AccountId,
        current: Option<&str>,
        new: &str,
        confirm: &str,
        ctx: &RequestContext,
    ) -> Result<(), SignInError> {
        let account = self.account_or_gone(account_id).await?;
        if account.source != crate::domain::AccountSource::Local {
            return Err(SignInError::NotLocal);
        }
        if let Some(current) = current {
            let (this, held, current, ctx) = (self.clone(), account.clone(), current.to_owned(), ctx.clone());
            let started = std::time::Instant::now();
            let checked = settled(async move { this.verify_current_password(&held, &current, &ctx).await }).await;
            if checked.is_err() {
                self.failure_floor(started).await;
            }
            checked?;
        }
        self.check_new_password(&account, new, confirm).await?;
        let hash = self.core.hasher.hash(new).await?;
        let audit = self.self_service(&account, "password.change");
        let notices = self
            .binding_notice(
                &account,
                "The password of your account was changed",
                format!(
                    "The password of your account {} was changed; your other sessions were ended",
                    account.username
                ),
                "changing the password",
            )
            .await?;
        let ended =
            self.store.set_password(account_id, &hash, false, Some(session), self.now(), &audit, &notices).await?;
        tracing::info!(account = account_id.0, ended, "password changed; other sessions ended");
        Ok(())
    }

    /// The current password, checked as one admitted attempt: a wrong one counts toward the lock.
    pub(super) async fn verify_current_password(
        &self,
        account: &Account,
        current: &str,
        ctx: &RequestContext,
    ) -> Result<(), SignInError> {
        let now = self.now();
        let Ok(admitted) = self.admit(account, now).await? else { return Err(SignInError::CurrentPassword) };
        let correct = match self.core.hasher.verify(current, account.password_hash.as_deref()).await {
            Ok(correct) => correct,
            Err(busy) => {
                self.store.release_attempt(account.id, admitted.at, admitted.previous_last_failed_at, now).await?;
                return Err(busy.into());
            }
        };
        if !correct {
            let event = self.sign_in_event(Some(account.id), "bad_password", "password_change", ctx);
            self.store.record_failure(account.id, &self.core.settings.lockout, now, &event).await?;
            return Err(SignInError::CurrentPassword);
        }
        if !self.store.release_attempt(account.id, admitted.at, admitted.previous_last_failed_at, self.now()).await? {
            return Err(SignInError::CurrentPassword);
        }
        Ok(())
    }
}
