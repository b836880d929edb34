//! Security questions (Q&A) for self-service password reset — a legacy method, off by default.
//!
//! NIST SP 800-63B-4 and ASVS 5.0 (6.4.2) forbid knowledge-based authentication; Lifeline keeps it for
//! organisations migrating away and says so wherever it appears. Every enrolled person answers the same
//! configured questions, so the reset page looks the same for every email address: no enumeration by
//! content. Answers are normalised (case, spacing, punctuation) and stored as argon2 hashes; every
//! answer is verified even after a mismatch, and unknown accounts verify dummies, so timing says nothing
//! either. Each attempt is admitted (counted) before its answers are checked, so parallel guesses cannot
//! outrun the Q&A lockout, which blocks only this reset. The reset never completes on a locked account
//! or for a disabled person.

use super::{RequestContext, SignIn, SignInError};
use crate::domain::{AccountId, AccountSource, PersonStatus};
use crate::policy::password::PasswordRejection;

#[derive(Debug, thiserror::Error)]
pub enum QaResetError {
    #[error("Self-service reset with security questions is not enabled here.")]
    Disabled,
    /// Unknown email, not enrolled, wrong answers, or locked: one answer for all.
    #[error(
        "The email address and answers did not match, or this reset is locked for the account. Check them, or \
         use \"Ask for help\" below."
    )]
    NoMatch,
    #[error("This account's password is managed by your organisation's directory; ask your helpdesk to reset it.")]
    NotLocal,
    #[error("Answer every question with at least two letters or digits.")]
    IncompleteAnswers,
    #[error(transparent)]
    Password(#[from] PasswordRejection),
    #[error(transparent)]
    Other(#[from] SignInError),
}

/// Lower-case, letters and digits only, single spaces: "  Saint-Mary's " and "saint marys" match.
pub fn normalise_answer(answer: &str) -> String {
    let cleaned: String = answer
        .chars()
        .filter_map(|c| {
            if c.is_alphanumeric() {
                Some(c.to_lowercase().collect::<String>())
            } else if c.is_whitespace() || c == '-' {
                Some(" ".into())
            } else {
                None
            }
        })
        .collect();
    cleaned.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl SignIn {
    /// Enrol (or replace) the answers of a signed-in account.
    /// Set the account's answers (replacing any): recovery information, so it needs a sign-in within ten minutes
    /// (`fresh`, `fresh_for_binding`), and is told to the person's addresses.
    pub async fn enrol_security_questions(
        &self,
        account: AccountId,
        answers: &[String],
        fresh: bool,
    ) -> Result<(), QaResetError> {
        if !fresh {
            return Err(SignInError::NotFresh.into());
        }
        let questions = &self.core.settings.policy.qa_questions;
        if answers.len() != questions.len() || answers.iter().any(|a| normalise_answer(a).chars().count() < 2) {
            return Err(QaResetError::IncompleteAnswers);
        }
        let mut hashes = Vec::with_capacity(answers.len());
        for answer in answers {
            hashes.push(self.core.hasher.hash(&normalise_answer(answer)).await.map_err(SignInError::from)?);
        }
        let holder = self.account_or_gone(account).await?;
        let audit = self.self_service(&holder, "qa.enrol");
        let notices = self
            .binding_notice(
                &holder,
                "Security questions were set for your account",
                format!("Answers to the security questions were set for your account {}", holder.username),
                "setting the security questions",
            )
            .await?;
        self.store.set_qa_answers(account, &hashes, self.now(), &audit, &notices).await.map_err(SignInError::from)?;
        Ok(())
    }

    /// The self-service reset: email, every answer and a new password in one step.
    #[tracing::instrument(skip_all)]
    pub async fn reset_with_security_questions(
        self: &std::sync::Arc<Self>,
        email: &str,
        answers: &[String],
        new_password: &str,
        confirm: &str,
        ctx: &RequestContext,
    ) -> Result<(), QaResetError> {
        let started = std::time::Instant::now();
        // Run to the end even if the request goes away: an admitted attempt must settle.
        let this = self.clone();
        let (email, answers, new_password, confirm, ctx) =
            (email.to_owned(), answers.to_vec(), new_password.to_owned(), confirm.to_owned(), ctx.clone());
        let result = tokio::spawn(async move {
            this.try_reset_with_security_questions(&email, &answers, &new_password, &confirm, &ctx).await
        })
        .await
        .unwrap_or_else(|e| Err(QaResetError::Other(SignInError::Unexpected(format!("a reset task failed: {e}")))));
        // As for sign-in: a mismatch for a known address writes more (the Q&A counter) than one for an unknown
        // address, and the floor keeps that out of the timing.
        if matches!(result, Err(QaResetError::NoMatch)) {
            let floor = std::time::Duration::from_millis(u64::from(self.core.settings.policy.failed_sign_in_floor_ms));
            if let Some(rest) = floor.checked_sub(started.elapsed()) {
                tokio::time::sleep(rest).await;
            }
        }
        result
    }

    async fn try_reset_with_security_questions(
        &self,
        email: &str,
        answers: &[String],
        new_password: &str,
        confirm: &str,
        ctx: &RequestContext,
    ) -> Result<(), QaResetError> {
        if !self.core.settings.policy.qa_enabled {
            return Err(QaResetError::Disabled);
        }
        if new_password != confirm {
            return Err(PasswordRejection::Mismatch.into());
        }
        // The rule is checked before the account is looked up, so it cannot tell whether one exists.
        crate::policy::password::check(new_password, self.core.settings.policy.mfa_required, &[email])?;
        let now = self.now();
        let account = match crate::domain::EmailAddress::parse(email) {
            Ok(email) => match self.store.person_by_email(&email).await.map_err(SignInError::from)? {
                Some(person) if person.status == PersonStatus::Active => self
                    .store
                    .accounts_of(person.id)
                    .await
                    .map_err(SignInError::from)?
                    .into_iter()
                    .find(|a| a.source != AccountSource::Sso),
                _ => None,
            },
            Err(_) => None,
        };
        // Admitted before the answers are checked: parallel guesses are counted before any is evaluated.
        let admitted = match &account {
            Some(a) => {
                self.store.admit_qa_attempt(a.id, &self.core.settings.lockout).await.map_err(SignInError::from)?
            }
            None => false,
        };
        let mut failure_recorded = false;
        let result = self
            .check_answers_and_reset(account.as_ref(), admitted, answers, new_password, now, ctx, &mut failure_recorded)
            .await;
        // Every way out that is not a wrong answer gives the admitted attempt back (a busy hashing queue, a
        // new password the rule refuses, a locked account): only wrong answers count toward the Q&A lock.
        if let (Some(account), true, false, Err(_)) = (&account, admitted, failure_recorded, &result) {
            self.store.release_qa_attempt(account.id).await.map_err(SignInError::from)?;
        }
        result
    }

    #[allow(clippy::too_many_arguments)]
    async fn check_answers_and_reset(
        &self,
        account: Option<&crate::domain::Account>,
        admitted: bool,
        answers: &[String],
        new_password: &str,
        now: crate::domain::Timestamp,
        ctx: &RequestContext,
        failure_recorded: &mut bool,
    ) -> Result<(), QaResetError> {
        let stored = match &account {
            Some(a) if admitted => self.store.qa_answers(a.id).await.map_err(SignInError::from)?,
            _ => Vec::new(),
        };
        let questions = self.core.settings.policy.qa_questions.len();
        let mut all_match = stored.len() == questions && answers.len() == questions;
        for i in 0..questions {
            let answer = answers.get(i).map(|a| normalise_answer(a)).unwrap_or_default();
            all_match &=
                self.core.hasher.verify(&answer, stored.get(i).map(String::as_str)).await.map_err(SignInError::from)?;
        }
        let Some(account) = account else {
            self.event(None, "unknown_account", "security_questions", ctx).await?;
            return Err(QaResetError::NoMatch);
        };
        if !admitted {
            self.event(Some(account.id), "qa_locked", "security_questions", ctx).await?;
            return Err(QaResetError::NoMatch);
        }
        if !all_match {
            *failure_recorded = true;
            if self
                .store
                .record_qa_failure(account.id, &self.core.settings.lockout, now)
                .await
                .map_err(SignInError::from)?
            {
                tracing::warn!(account = account.id.0, "security-question reset locked after repeated failures");
            }
            self.event(Some(account.id), "bad_answers", "security_questions", ctx).await?;
            return Err(QaResetError::NoMatch);
        }
        if account.source != AccountSource::Local {
            return Err(QaResetError::NotLocal);
        }
        let words = self.personal_words(account).await?;
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        crate::policy::password::check(new_password, self.core.settings.policy.mfa_required, &words)?;
        let hash = self.core.hasher.hash(new_password).await.map_err(SignInError::from)?;
        let audit = crate::audit::AuditEntry::new(now, &crate::audit::Actor::Public, "password.reset", "success")
            .person(account.person_id)
            .account(account.id)
            .reason("security questions answered")
            .ip(ctx.ip.to_string());
        let notices = self
            .binding_notice(
                account,
                "The password of your account was reset",
                format!(
                    "The password of your account {} was reset with the answers to your security questions",
                    account.username
                ),
                "resetting the password with the security questions",
            )
            .await?;
        if !self
            .store
            .reset_password_by_qa(account.id, &hash, now, &audit, &notices)
            .await
            .map_err(SignInError::from)?
        {
            // The account is locked (or the person was disabled meanwhile): no step completes then.
            self.event(Some(account.id), "locked", "security_questions", ctx).await?;
            return Err(QaResetError::NoMatch);
        }
        self.event(Some(account.id), "password_reset", "security_questions", ctx).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::normalise_answer;

    #[test]
    fn answers_are_compared_by_their_letters_and_digits() {
        assert_eq!(normalise_answer("  Saint-Mary's  School "), "saint marys school");
        assert_eq!(normalise_answer("ÉCOLE 42"), "école 42");
        assert_eq!(normalise_answer("!!!"), "");
    }
}
