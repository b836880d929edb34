//! An admin removes one passkey of a person (the API's `DELETE …/passkeys/{id}`): a device reported lost when
//! the person still has others, without the whole MFA reset. It takes the reset-MFA permission, the tiers,
//! a verification method and the step-up of a reset; on someone who holds an admin permission it is refused
//! (reset-MFA, which a second admin approves, is the way there). Audited and emailed like every action.

use super::{Recovery, RecoveryError};
use crate::audit::AuditEntry;
use crate::authz::{Proof, ResetMfa};
use crate::policy::permissions::RecoveryAction;
use crate::policy::recovery as rules;
use crate::store::PasskeyRecord;

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
        // "Verified with line manager" rests on the manager's confirmation, as for every action.
        let attestation = match proof.actor_account() {
            Some(actor) if crate::team::attestation::is_line_manager_method(&verification.method) => {
                Some(self.attestation_evidence(&person, actor, None, now).await?)
            }
            _ => None,
        };
        let paragraphs = vec![format!(
            "The passkey named \"{}\" was removed from your account {} by {} on {}. It no longer signs you in.",
            passkey.name,
            account.username,
            self.by(proof.actor()),
            crate::assistance::dossier::when(now)
        )];
        let alarm = crate::assistance::notify::Alarm {
            subject: "A passkey was removed from your account",
            paragraphs,
            reported_as: format!("removing the passkey \"{}\"", passkey.name),
        };
        let to = crate::addresses::of(&*self.store, &person).await?;
        let notices =
            crate::assistance::notify::alarm_notice(&self.core, &*self.letters, &person, &account, alarm, &to)
                .map_err(RecoveryError::Unexpected)?;
        let details = serde_json::json!({
            "passkey": passkey.id,
            "name": passkey.name,
            "credential": passkey.credential_id,
            "details": verification.details,
            "manager_attestation": attestation,
        });
        let mut audit = AuditEntry::new(now, proof.actor(), "passkey.remove", "success")
            .person(person.id)
            .account(account.id)
            .reason(verification.method.clone())
            .details(details.to_string());
        audit.on_behalf_of = verification.on_behalf_of.clone();
        if !self.store.remove_passkey(account.id, id, now, &audit, &notices.emails, &notices.secrets).await? {
            return Err(RecoveryError::NotFound);
        }
        Ok(passkey)
    }
}
