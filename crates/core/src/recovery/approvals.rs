//! Four-eyes: an action on someone who holds an admin permission is stored as a request; a second admin —
//! not the one who asked, and one who outranks the subject (their own proof for the action says so) —
//! approves it, and only then does it run, as that second admin, with both names in the audit row. A
//! request is reserved (compare-and-set) before it runs, so two approvers cannot run it twice; it expires
//! after `recovery.approval_hours`.

use super::{ActionForm, Outcome, Prepared, Recovery, RecoveryError};
use crate::audit::AuditEntry;
use crate::authz::{Proof, Recover, ViewRequests};
use crate::domain::{AccountId, Timestamp};
use crate::store::Approval;

/// A request waiting for a second admin, as the console lists it.
#[derive(Debug, Clone)]
pub struct PendingApproval {
    pub approval: Approval,
    pub form: ActionForm,
    pub person_name: String,
}

/// The form as it is stored for the approver: a delivery to the second address names that address, so a second
/// address replaced while the request waits is not where the code goes (the approval then fails).
fn pinned(form: &ActionForm, prepared: &Prepared) -> ActionForm {
    let mut form = form.clone();
    if prepared.delivery != prepared.addresses[0] {
        form.second_address_seen = Some(prepared.delivery.clone());
    }
    form
}

impl Recovery {
    pub(super) async fn request_approval<A: Recover>(
        &self,
        proof: &Proof<A>,
        requester: AccountId,
        prepared: &Prepared,
        form: &ActionForm,
    ) -> Result<i64, RecoveryError> {
        let now = self.now();
        let expires_at = now + i64::from(self.core.settings.recovery.approval_hours) * 3600;
        let approval = Approval {
            id: 0,
            action: A::RECOVERY.name().to_owned(),
            person: prepared.person.id,
            requested_by_account: requester,
            requested_by: proof.actor().to_string(),
            form: serde_json::to_string(&pinned(form, prepared))
                .map_err(|e| RecoveryError::Unexpected(e.to_string()))?,
            created_at: now,
            expires_at,
            status: "pending".into(),
            decided_by: None,
            decided_at: None,
        };
        let mut audit = AuditEntry::new(now, proof.actor(), "approval.request", "pending")
            .person(prepared.person.id)
            .reason(prepared.verification.method.clone());
        audit.on_behalf_of = prepared.verification.on_behalf_of.clone();
        audit.reference = prepared.reference.clone();
        audit.details = Some(A::RECOVERY.name().to_owned());
        Ok(self.store.create_approval(&approval, &audit).await?)
    }

    /// The requests waiting for a second admin (those not expired), for anyone who works the queue.
    pub async fn pending(&self, _proof: &Proof<ViewRequests>) -> Result<Vec<PendingApproval>, RecoveryError> {
        let mut out = Vec::new();
        for approval in self.store.pending_approvals(self.now()).await? {
            let form = serde_json::from_str(&approval.form).unwrap_or_default();
            let person_name =
                self.store.person(approval.person).await?.map(|p| p.display_name).unwrap_or_else(|| "(gone)".into());
            out.push(PendingApproval { approval, form, person_name });
        }
        Ok(out)
    }

    /// The request `id`, if any.
    pub async fn approval(&self, id: i64) -> Result<Option<Approval>, RecoveryError> {
        Ok(self.store.approval(id).await?)
    }

    async fn for_decision<A: Recover>(&self, proof: &Proof<A>, id: i64) -> Result<Approval, RecoveryError> {
        let approval = self.store.approval(id).await?.ok_or(RecoveryError::NotFound)?;
        if approval.action != A::RECOVERY.name() || Some(approval.person) != proof.subject() {
            return Err(RecoveryError::NotFound);
        }
        if approval.status != "pending" || approval.expires_at <= self.now() {
            let state = if approval.status == "pending" { "expired" } else { approval.status.as_str() };
            return Err(RecoveryError::Approval(format!("This request is no longer waiting: it is {state}.")));
        }
        Ok(approval)
    }

    /// Approve and run request `id` as the proof's actor: not the admin who asked for it.
    pub async fn approve<A: Recover>(
        &self,
        proof: Proof<A>,
        id: i64,
        second_factor_at: Option<Timestamp>,
    ) -> Result<Outcome, RecoveryError> {
        let approval = self.for_decision(&proof, id).await?;
        // Per person, not per account: someone with two accounts is still one pair of eyes.
        let person_of = |account: Option<AccountId>| async move {
            match account {
                Some(id) => self.store.account(id).await.map(|a| a.map(|a| a.person_id)),
                None => Ok(None),
            }
        };
        let requester = person_of(Some(approval.requested_by_account)).await?;
        let approver = person_of(proof.actor_account()).await?;
        if proof.actor_account() == Some(approval.requested_by_account) || (approver.is_some() && approver == requester)
        {
            return Err(RecoveryError::Approval(
                "You asked for this action: a second administrator must approve it.".into(),
            ));
        }
        self.check_step_up(A::RECOVERY, &proof, second_factor_at)?;
        let form: ActionForm =
            serde_json::from_str(&approval.form).map_err(|e| RecoveryError::Unexpected(e.to_string()))?;
        if !self.store.reserve_approval(id, self.now()).await? {
            return Err(RecoveryError::Approval("This request was decided or expired meanwhile.".into()));
        }
        let person = self.subject(&proof).await?;
        let prepared = match self.prepare(A::RECOVERY, person, &form, Some(approval.requested_by_account)).await {
            Ok(prepared) => prepared,
            Err(e) => {
                self.store.settle_approval(id, "pending", None, self.now(), None).await?;
                return Err(e);
            }
        };
        let approver = proof.actor().to_string();
        match self.run(A::RECOVERY, proof.actor(), prepared, Some((&approval, &approval.requested_by))).await {
            Ok(outcome) => {
                let audit = AuditEntry::new(self.now(), proof.actor(), "approval.approve", "success")
                    .person(approval.person)
                    .details(format!("{} requested by {}", approval.action, approval.requested_by));
                self.store.settle_approval(id, "approved", Some(&approver), self.now(), Some(&audit)).await?;
                Ok(outcome)
            }
            Err(e) => {
                self.store.settle_approval(id, "pending", None, self.now(), None).await?;
                Err(e)
            }
        }
    }

    /// Reject request `id`: nothing runs. The admin who asked may withdraw it this way too.
    pub async fn reject<A: Recover>(&self, proof: Proof<A>, id: i64) -> Result<(), RecoveryError> {
        let approval = self.for_decision(&proof, id).await?;
        if !self.store.reserve_approval(id, self.now()).await? {
            return Err(RecoveryError::Approval("This request was decided or expired meanwhile.".into()));
        }
        let audit = AuditEntry::new(self.now(), proof.actor(), "approval.reject", "success")
            .person(approval.person)
            .details(format!("{} requested by {}", approval.action, approval.requested_by));
        let by = proof.actor().to_string();
        self.store.settle_approval(id, "rejected", Some(&by), self.now(), Some(&audit)).await?;
        Ok(())
    }
}
