//! Tickets (SPEC §5): the engineers' queue (take, note, resolve), email updates to the requester, and the
//! "everything works" link of the resolution email, which confirms the ticket. Every change is audited in its
//! transaction, and a status moves only from where the engineer saw it.

use super::{Team, TeamError, confirm_hash, plausible_token};
use crate::assistance::notify::Notice;
use crate::audit::{Actor, AuditEntry};
use crate::authz::{Proof, WorkTickets};
use crate::crypto::random_token;
use crate::store::{Ticket, TicketChange, TicketNote, TicketStatus};

/// How long an "Everything works" link confirms its ticket after the ticket's last change.
pub const CONFIRM_DAYS: i64 = 14;

/// What an engineer does to a ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Take it: `in_progress`, assigned to them.
    Take,
    /// Add a note to the timeline (the requester is told).
    Note(String),
    /// Resolve it with a note: the requester gets the "everything works" link.
    Resolve(String),
}

/// A ticket's reference as typed (any case, `TK-` and two groups of four): anything else names no ticket.
fn ticket_reference(text: &str) -> Result<String, TeamError> {
    let text = text.trim().to_ascii_uppercase();
    let ok = text.len() == 12
        && text.starts_with("TK-")
        && text.as_bytes()[7] == b'-'
        && text.bytes().enumerate().all(|(i, b)| matches!(i, 0..=2 | 7) || b.is_ascii_alphanumeric());
    if ok { Ok(text) } else { Err(TeamError::NotFound) }
}

/// A note is 1–2,000 characters without control characters but line breaks.
fn note_text(text: &str) -> Result<String, TeamError> {
    let text = text.trim();
    if text.is_empty() || text.chars().count() > 2000 {
        return Err(TeamError::Form("A note is 1 to 2,000 characters.".into()));
    }
    if text.chars().any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t') {
        return Err(TeamError::Form("A note cannot hold control characters.".into()));
    }
    Ok(text.to_owned())
}

impl Team {
    /// The queue, most recently changed first: of one status, or every ticket not yet confirmed.
    pub async fn queue(&self, _: &Proof<WorkTickets>, status: Option<TicketStatus>) -> Result<Vec<Ticket>, TeamError> {
        Ok(self.store.tickets(status, None, 500).await?)
    }

    /// One ticket with its timeline.
    pub async fn ticket(
        &self,
        _: &Proof<WorkTickets>,
        reference: &str,
    ) -> Result<(Ticket, Vec<TicketNote>), TeamError> {
        let ticket = self.store.ticket(&ticket_reference(reference)?).await?.ok_or(TeamError::NotFound)?;
        let notes = self.store.ticket_notes(ticket.id).await?;
        Ok((ticket, notes))
    }

    /// Take, note or resolve a ticket; the requester gets an email with what changed.
    pub async fn work(&self, proof: Proof<WorkTickets>, reference: &str, step: Step) -> Result<Ticket, TeamError> {
        let ticket = self.store.ticket(&ticket_reference(reference)?).await?.ok_or(TeamError::NotFound)?;
        let now = self.core.now();
        let actor = proof.actor().to_string();
        let who = match proof.actor() {
            Actor::Account { username, .. } | Actor::Token { username, .. } => username.clone(),
            other => other.to_string(),
        };
        let (from, to, note, action): (&[TicketStatus], Option<TicketStatus>, String, &str) = match &step {
            Step::Take => (
                &[TicketStatus::Open],
                Some(TicketStatus::InProgress),
                format!("{who} is working on it."),
                "ticket.take",
            ),
            Step::Note(text) => (
                &[TicketStatus::Open, TicketStatus::InProgress, TicketStatus::Resolved],
                None,
                note_text(text)?,
                "ticket.note",
            ),
            Step::Resolve(text) => (
                &[TicketStatus::Open, TicketStatus::InProgress],
                Some(TicketStatus::Resolved),
                note_text(text)?,
                "ticket.resolve",
            ),
        };
        if !from.contains(&ticket.status) {
            return Err(TeamError::NotApplicable(format!(
                "Ticket {} is {}: that cannot be done to it now.",
                ticket.reference,
                ticket.status.as_str().replace('_', " ")
            )));
        }
        let confirm_token = matches!(step, Step::Resolve(_)).then(random_token);
        let confirm = confirm_token.as_ref().map(|t| confirm_hash(&self.core, t));
        let requester = self.store.person(ticket.requester).await?.ok_or(TeamError::NotFound)?;
        let subject = self.store.person(ticket.subject).await?.ok_or(TeamError::NotFound)?;
        let organisation = &self.core.settings.organisation;
        let mut paragraphs = vec![match to {
            Some(TicketStatus::InProgress) => {
                format!("An engineer ({who}) is now working on ticket {}.", ticket.reference)
            }
            Some(TicketStatus::Resolved) => format!("Ticket {} is resolved: {note}", ticket.reference),
            _ => format!("A note was added to ticket {}: {note}", ticket.reference),
        }];
        paragraphs.push(format!("The ticket: {}", ticket.summary));
        let url = confirm_token.as_ref().map(|t| self.url(&format!("/tickets/confirm?token={t}")));
        if url.is_some() {
            paragraphs.push(format!(
                "Once {} is signed in and can work normally, confirm it with the link below; if something is still \
                 wrong, reply to the helpdesk with the ticket's reference.",
                subject.display_name
            ));
        }
        let email = self.email(
            requester.email.as_str(),
            &format!("{organisation}: ticket {} {}", ticket.reference, to.map_or("updated", |s| s.as_str())),
            &Notice {
                greeting: &format!("Hello {},", requester.display_name),
                paragraphs: &paragraphs,
                code: None,
                link: url.as_deref().map(|u| ("Everything works", u)),
                not_me: None,
                organisation,
            },
        )?;
        let mut audit =
            AuditEntry::new(now, proof.actor(), action, "success").person(ticket.subject).details(note.clone());
        audit.reference = Some(ticket.reference.clone());
        let change = TicketChange {
            ticket: ticket.id,
            from,
            to,
            assignee: matches!(step, Step::Take).then_some(who.as_str()),
            author: &actor,
            note: &note,
            confirm_hash: confirm.as_ref().map(Some),
            emails: std::slice::from_ref(&email),
            audit: &audit,
            now,
        };
        if !self.store.change_ticket(&change).await? {
            return Err(TeamError::NotApplicable(format!(
                "Ticket {} changed meanwhile: look at it again.",
                ticket.reference
            )));
        }
        self.store.ticket_by_id(ticket.id).await?.ok_or(TeamError::NotFound)
    }

    /// The ticket a confirmation link belongs to, while it can still be confirmed (looking changes nothing).
    pub async fn confirmable(&self, token: &str) -> Result<Option<Ticket>, TeamError> {
        if !plausible_token(token) {
            return Ok(None);
        }
        let ticket = self.store.ticket_by_confirm_hash(&confirm_hash(&self.core, token)).await?;
        // Like every emailed link it expires: `CONFIRM_DAYS` after the ticket last changed (its resolution).
        let now = self.core.now();
        Ok(ticket.filter(|t| t.status == TicketStatus::Resolved && now - t.updated_at < CONFIRM_DAYS * 86_400))
    }

    /// "Everything works": the ticket is confirmed, once; `None` when the link confirms nothing (any more).
    pub async fn confirm(&self, token: &str, ip: &str) -> Result<Option<Ticket>, TeamError> {
        let Some(ticket) = self.confirmable(token).await? else { return Ok(None) };
        let now = self.core.now();
        let note = "Confirmed with the link in the email: everything works.";
        let mut audit = AuditEntry::new(now, &Actor::Public, "ticket.confirm", "success")
            .person(ticket.subject)
            .ip(ip.to_owned())
            .details(note);
        audit.reference = Some(ticket.reference.clone());
        let change = TicketChange {
            ticket: ticket.id,
            from: &[TicketStatus::Resolved],
            to: Some(TicketStatus::Confirmed),
            assignee: None,
            author: "the requester's confirmation link",
            note,
            confirm_hash: Some(None),
            emails: &[],
            audit: &audit,
            now,
        };
        if !self.store.change_ticket(&change).await? {
            return Ok(None);
        }
        self.store.ticket_by_id(ticket.id).await.map_err(TeamError::from)
    }
}
