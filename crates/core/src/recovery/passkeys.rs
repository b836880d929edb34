//! An admin removes one passkey of a person (the API's `DELETE …/passkeys/{id}`): a device reported lost when
//! the person still has others, without the whole MFA reset. It takes the reset-MFA permission, the tiers,
//! a verification method and the step-up of a reset; on someone who holds an admin permission it is refused
//! (reset-MFA, which a second admin approves, is the way there). Audited and emailed like every action.

use super::{Recovery, RecoveryError};
use crate::assistance::notify::Notice;
use crate::audit::AuditEntry;
use crate::authz::{Proof, ResetMfa};
use crate::crypto::random_token;
use crate::policy::permissions::RecoveryAction;
use crate::policy::recovery as rules;
use crate::store::{NewSecret, PasskeyRecord, SecretKind};

impl Recovery {
    /// Remove passkey `id` of the proof's subject, with the reason in `form` (`method`, `details`,
    /// `on_behalf_of`). Returns the passkey removed.
    pub async fn remove_passkey(
        &self,
        proof: Proof<ResetMfa>,
        id: i64,
        form: &super::ActionForm,
        second_factor_at: Option<crate::domain::Timestamp>,
    ) -> Result<PasskeyRecord, RecoveryError> {
        let person = self.subject(&proof).await?;
        let settings = &self.core.settings.recovery;
        let verification = if proof.actor_account().is_none() {
            let reason =
                crate::domain::Reason::parse(&form.method).map_err(|e| RecoveryError::Form(format!("--{e}")))?;
            rules::Verification {
                method: reason.as_str().to_owned(),
                details: form.details.clone(),
                on_behalf_of: None,
            }
        } else {
            rules::verification(&form.method, form.details.as_deref(), form.on_behalf_of.as_deref(), settings)?
        };
        self.check_step_up(RecoveryAction::ResetMfa, &proof, second_factor_at)?;
        if proof.actor_account().is_some() && rules::needs_approval(&self.store.grant(person.id).await?) {
            return Err(RecoveryError::Approval(
                "This person holds an admin permission: reset their MFA instead, which a second admin approves.".into(),
            ));
        }
        let mut found = None;
        for account in self.store.accounts_of(person.id).await? {
            if let Some(p) = self.store.passkeys(account.id).await?.into_iter().find(|p| p.id == id) {
                found = Some((account, p));
                break;
            }
        }
        let (account, passkey) = found.ok_or(RecoveryError::NotFound)?;
        let now = self.now();
        let not_me = random_token();
        let not_me_url = self.url(&format!("/not-me?token={not_me}"));
        let paragraphs = vec![format!(
            "The passkey named \"{}\" was removed from your account {} by {} on {}. It no longer signs you in.",
            passkey.name,
            account.username,
            self.by(proof.actor()),
            crate::assistance::dossier::when(now)
        )];
        let greeting = format!("Hello {},", person.display_name);
        let organisation = &self.core.settings.organisation;
        let notice = Notice {
            greeting: &greeting,
            paragraphs: &paragraphs,
            code: None,
            link: None,
            not_me: Some(&not_me_url),
            organisation,
        };
        let email = self.email(
            person.email.as_str(),
            &format!("{organisation}: a passkey was removed from your account"),
            &notice,
        )?;
        let secret = NewSecret {
            account: account.id,
            kind: SecretKind::NotMe,
            hash: super::link_hash(&self.core, &not_me),
            expires_at: now + i64::from(settings.not_me_days) * 86_400,
            multi_use: false,
            action: Some(format!("removing the passkey \"{}\"", passkey.name)),
            reference: None,
        };
        let details = serde_json::json!({
            "passkey": passkey.id,
            "name": passkey.name,
            "credential": passkey.credential_id,
            "details": verification.details,
        });
        let mut audit = AuditEntry::new(now, proof.actor(), "passkey.remove", "success")
            .person(person.id)
            .account(account.id)
            .reason(verification.method.clone())
            .details(details.to_string());
        audit.on_behalf_of = verification.on_behalf_of.clone();
        if !self.store.remove_passkey(account.id, id, now, &audit, &[email], &[secret]).await? {
            return Err(RecoveryError::NotFound);
        }
        Ok(passkey)
    }
}
