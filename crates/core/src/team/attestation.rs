//! Manager attestation (issue 11): an admin asks the person's line manager, in Lifeline, whether a request is
//! genuine. The manager — signed in with their own second factor — confirms or declines with a note; the
//! answer (who, when, when they last proved their second factor) is evidence on the action, in the audit log
//! and on the person's record. An action verified "with line manager" runs only on a confirmation
//! (`recovery::Recovery::attestation_evidence`).

use super::{Team, TeamError};
use crate::assistance::notify::Notice;
use crate::audit::AuditEntry;
use crate::authz::{AskManager, Proof, ViewTeam};
use crate::domain::{Person, Timestamp};
use crate::store::{Attestation, AttestationAnswer};

/// The verification method that rests on the manager's answer in Lifeline.
pub const LINE_MANAGER_METHOD: &str = "Verified with line manager";

pub fn is_line_manager_method(method: &str) -> bool {
    method.trim().eq_ignore_ascii_case(LINE_MANAGER_METHOD)
}

/// Free text from an admin or a manager: at most 500 characters, no control characters but line breaks.
fn note(text: Option<&str>) -> Result<Option<String>, TeamError> {
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else { return Ok(None) };
    if text.chars().count() > 500 || text.chars().any(|c| c.is_control() && c != '\n' && c != '\r') {
        return Err(TeamError::Form("A note is at most 500 characters, without control characters.".into()));
    }
    Ok(Some(text.to_owned()))
}

impl Team {
    /// Ask the subject's line manager whether the request (`reference`, if any) is genuine.
    pub async fn ask_manager(
        &self,
        proof: Proof<AskManager>,
        reference: Option<&str>,
        admin_note: Option<&str>,
    ) -> Result<i64, TeamError> {
        let now = self.core.now();
        let subject = proof.subject().ok_or(TeamError::NotFound)?;
        let person = self.store.person(subject).await?.ok_or(TeamError::NotFound)?;
        let manager_id = person.manager_id.ok_or_else(|| {
            TeamError::NotApplicable(format!("{} has no line manager on file to ask.", person.display_name))
        })?;
        let manager = self.store.person(manager_id).await?.ok_or(TeamError::NotFound)?;
        let requester = proof.actor_account().ok_or_else(|| TeamError::Form("Ask from the console.".into()))?;
        let requester_person = self.store.account(requester).await?.ok_or(TeamError::NotFound)?.person_id;
        if requester_person == manager.id {
            // Asking oneself proves nothing: the answer must come from someone other than the helpdesk.
            return Err(TeamError::NotApplicable(format!(
                "You are {}'s line manager yourself: another administrator must ask, and you answer.",
                person.display_name
            )));
        }
        let reference = match reference.map(str::trim).filter(|r| !r.is_empty()) {
            None => None,
            Some(r) => {
                let reference = crate::domain::ReferenceId::parse(r)
                    .map_err(|_| TeamError::Form("The request reference must look like AR-7KQ2-MX4P.".into()))?;
                // Only a request about this person: the manager's email names it.
                let request = self.store.assistance_request(reference.as_str()).await?;
                if request.is_none_or(|r| r.person_id != Some(subject)) {
                    return Err(TeamError::Form(format!(
                        "There is no assistance request {} about {}.",
                        reference.as_str(),
                        person.display_name
                    )));
                }
                Some(reference.as_str().to_owned())
            }
        };
        let admin_note = note(admin_note)?;
        let name = &person.display_name;
        let mut question = format!("Is the request from {name} genuine? Have you spoken to them?");
        if let Some(r) = &reference {
            question.push_str(&format!(" (assistance request {r})"));
        }
        if let Some(n) = &admin_note {
            question.push_str(&format!(" The helpdesk adds: {n}"));
        }
        let hours = i64::from(self.core.settings.team.attestation_hours);
        let attestation = Attestation {
            id: 0,
            subject,
            manager: manager.id,
            requested_by_account: requester,
            requested_by: proof.actor().to_string(),
            reference: reference.clone(),
            question: question.clone(),
            status: "pending".into(),
            answer_note: None,
            answered_by: None,
            answered_at: None,
            answered_second_factor_at: None,
            created_at: now,
            expires_at: now + hours * 3600,
        };
        let organisation = &self.core.settings.organisation;
        let paragraphs = vec![
            format!("The helpdesk asks you to vouch for {name}, who asked for help signing in."),
            question.clone(),
            format!(
                "Answer in Lifeline (you sign in with your own second factor) before {}. Confirm only if you have \
                 spoken to {name} yourself, through contact details you already had.",
                crate::assistance::dossier::when(now + hours * 3600)
            ),
        ];
        let url = self.url("/team/attestations");
        let email = self.email(
            manager.email.as_str(),
            &format!("{organisation}: is this request from {name} genuine?"),
            &Notice {
                greeting: &format!("Hello {},", manager.display_name),
                paragraphs: &paragraphs,
                code: None,
                link: Some(("Answer in Lifeline", &url)),
                not_me: None,
                organisation,
            },
        )?;
        let mut audit = AuditEntry::new(now, proof.actor(), "attestation.request", "success")
            .person(subject)
            .details(format!("asked {} ({})", manager.display_name, manager.email));
        audit.reference = reference;
        Ok(self.store.create_attestation(&attestation, std::slice::from_ref(&email), &audit).await?)
    }

    async fn manager_of(&self, proof: &Proof<ViewTeam>) -> Result<Person, TeamError> {
        self.actor_person(proof.actor_account()).await
    }

    /// The questions waiting for this manager (and those they answered), newest first, with their subjects.
    pub async fn questions(&self, proof: &Proof<ViewTeam>) -> Result<Vec<(Attestation, Person)>, TeamError> {
        let manager = self.manager_of(proof).await?;
        let mut out = Vec::new();
        for a in self.store.attestations_for_manager(manager.id, false).await? {
            if let Some(p) = self.store.person(a.subject).await? {
                out.push((a, p));
            }
        }
        Ok(out)
    }

    /// One question, only for the manager it was asked of (anyone else: not found).
    pub async fn question(&self, proof: &Proof<ViewTeam>, id: i64) -> Result<(Attestation, Person), TeamError> {
        let manager = self.manager_of(proof).await?;
        let a = self.store.attestation(id).await?.filter(|a| a.manager == manager.id).ok_or(TeamError::NotFound)?;
        let p = self.store.person(a.subject).await?.ok_or(TeamError::NotFound)?;
        Ok((a, p))
    }

    /// The manager's answer: confirm or decline, with an optional note. `second_factor_at` is when their
    /// session last proved a second factor (the evidence says so).
    pub async fn answer(
        &self,
        proof: Proof<ViewTeam>,
        id: i64,
        confirmed: bool,
        answer_note: Option<&str>,
        second_factor_at: Option<Timestamp>,
    ) -> Result<Attestation, TeamError> {
        let (a, person) = self.question(&proof, id).await?;
        if Some(a.requested_by_account) == proof.actor_account() {
            return Err(TeamError::NotApplicable("You asked this question: someone else must answer it.".into()));
        }
        if person.manager_id != Some(a.manager) {
            return Err(TeamError::NotApplicable(format!(
                "You are no longer {}'s line manager: their manager now must answer.",
                person.display_name
            )));
        }
        let answer_note = note(answer_note)?;
        let now = self.core.now();
        if a.status != "pending" || a.expires_at <= now {
            return Err(TeamError::NotApplicable(if a.status == "pending" {
                "This question expired: the helpdesk can ask again.".into()
            } else {
                format!("You answered this already ({}).", a.status)
            }));
        }
        let answered_by = proof.actor().to_string();
        let action = if confirmed { "attestation.confirm" } else { "attestation.decline" };
        let mut audit = AuditEntry::new(now, proof.actor(), action, "success").person(person.id).details(
            serde_json::json!({
                "attestation": a.id,
                "note": answer_note,
                "second_factor_at": second_factor_at,
            })
            .to_string(),
        );
        audit.reference = a.reference.clone();
        let answer = AttestationAnswer {
            id,
            confirmed,
            note: answer_note.as_deref(),
            answered_by: &answered_by,
            second_factor_at,
            audit: &audit,
            now,
        };
        if !self.store.answer_attestation(&answer).await? {
            return Err(TeamError::NotApplicable("This question was answered or expired meanwhile.".into()));
        }
        self.store.attestation(id).await?.ok_or(TeamError::NotFound)
    }

    /// The questions asked about a person, newest first: the evidence on their record and request dossier.
    pub async fn attestations_about<A: crate::authz::Action>(
        &self,
        // Any read proof the caller holds (the person's record, a request's dossier).
        _: &Proof<A>,
        person: crate::domain::PersonId,
    ) -> Result<Vec<Attestation>, TeamError> {
        Ok(self.store.attestations_about(person).await?)
    }
}
