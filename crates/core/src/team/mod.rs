//! Managers reset their own staff (SPEC §5, issue 11): the manager portal's search of one's reporting line,
//! the delegated reset (a temporary password shown once through a scanner-safe secure link, MFA removed, or
//! both), and for a synchronized account a ticket for the engineers (`tickets`).
//!
//! Invariants:
//! - every method that acts takes the proof for its action (`ViewTeam`, `ManagerReset`), which only the one
//!   `Authority` makes: the subject is in the manager's reporting line, of rank 0, not the manager;
//! - the temporary password exists in clear only in memory: it is stored sealed with the master key on its
//!   secure link (bound to the link's hash) and wiped by the statement that uses the link;
//! - the change, the ticket, the link, the emails and the audit row commit in one transaction.

pub mod attestation;
pub mod tickets;

use crate::assistance::notify::{Body, Letters, Notice};
use crate::audit::{Actor, AuditEntry};
use crate::authz::{ManagerReset, Proof, ViewTeam};
use crate::crypto::{TokenHash, random_token, readable_password, typed_code};
use crate::domain::{AccountId, AccountSource, Timestamp};
use crate::email::OutgoingEmail;
use crate::services::Core;
use crate::store::{
    CredentialStore, DirectoryStore, ManagerResetChange, NewSecret, NewSecureLink, NewTicket, PersonHit, SecretKind,
    StoreError, TeamStore, TicketKind, TicketStatus,
};
use std::sync::Arc;

/// What the manager asked for (the default is both).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResetChoice {
    Password,
    Mfa,
    #[default]
    Both,
}

impl ResetChoice {
    pub const ALL: [Self; 3] = [Self::Both, Self::Password, Self::Mfa];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::Mfa => "mfa",
            Self::Both => "both",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s.trim())
    }

    pub fn password(self) -> bool {
        self != Self::Mfa
    }

    pub fn mfa(self) -> bool {
        self != Self::Password
    }
}

/// What a reset did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetDone {
    pub ticket: String,
    /// The password could not be set here (a synchronized account): an engineer follows up on the ticket.
    pub engineer_follows_up: bool,
    pub summary: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TeamError {
    /// The form cannot be run as filled in (400).
    #[error("{0}")]
    Form(String),
    /// The reset does not fit the account (409).
    #[error("{0}")]
    NotApplicable(String),
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Unexpected(String),
}

/// Where a secure link stands (what its page says; looking consumes nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    Ready,
    Used {
        at: Timestamp,
    },
    Expired {
        at: Timestamp,
    },
    /// Made stale before it was used: a newer reset, a password change or "this wasn't me".
    Revoked,
    Unknown,
}

/// The temporary password, shown once (never in a `Debug` line).
#[derive(Clone)]
pub struct Revealed {
    pub password: String,
    pub username: String,
    pub display_name: String,
}

impl std::fmt::Debug for Revealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Revealed").field("username", &self.username).field("password", &"<redacted>").finish()
    }
}

pub trait TeamServiceStore:
    TeamStore
    + DirectoryStore
    + CredentialStore
    + crate::store::AssistanceStore
    + crate::store::PasskeyStore
    + crate::store::AddressStore
{
}
impl<
    T: TeamStore
        + DirectoryStore
        + CredentialStore
        + crate::store::AssistanceStore
        + crate::store::PasskeyStore
        + crate::store::AddressStore,
> TeamServiceStore for T
{
}

pub struct Team {
    core: Arc<Core>,
    store: Arc<dyn TeamServiceStore>,
    letters: Arc<dyn Letters>,
}

pub(crate) fn link_hash(core: &Core, token: &str) -> TokenHash {
    TokenHash::of(&core.keys, "secure-link", token)
}

pub(crate) fn confirm_hash(core: &Core, token: &str) -> TokenHash {
    TokenHash::of(&core.keys, "ticket-confirm", token)
}

/// A ticket's reference: `TK-` and two groups of the typed alphabet (30^8), like an assistance request's.
pub(crate) fn new_reference() -> String {
    format!("TK-{}", typed_code(2))
}

/// Secure links and confirmation links are 256-bit tokens (43 URL-safe characters); anything else is no link.
pub(crate) fn plausible_token(token: &str) -> bool {
    token.len() == 43 && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Team {
    pub(crate) fn new(core: Arc<Core>, store: Arc<dyn TeamServiceStore>, letters: Arc<dyn Letters>) -> Self {
        Self { core, store, letters }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.core.settings.public_url.trim_end_matches('/'))
    }

    pub(crate) fn email(&self, to: &str, subject: &str, notice: &Notice<'_>) -> Result<OutgoingEmail, TeamError> {
        let Body { text, html } = self.letters.notice(notice).map_err(TeamError::Unexpected)?;
        let domain = crate::email::sender_domain(&self.core.settings.mail_from);
        Ok(OutgoingEmail::new(&domain, to, subject, text, html))
    }

    async fn actor_person(&self, account: Option<AccountId>) -> Result<crate::domain::Person, TeamError> {
        let account = account.ok_or(TeamError::NotFound)?;
        let person = self.store.account(account).await?.ok_or(TeamError::NotFound)?.person_id;
        self.store.person(person).await?.ok_or(TeamError::NotFound)
    }

    /// People of the manager's reporting line matching `text` (part of a name, username or email), at most 20.
    pub async fn search(&self, proof: &Proof<ViewTeam>, text: &str) -> Result<Vec<PersonHit>, TeamError> {
        let manager = self.actor_person(proof.actor_account()).await?;
        // Control characters match no name (and PostgreSQL refuses a NUL in text): they are dropped.
        let text: String = text.chars().filter(|c| !c.is_control()).take(100).collect();
        let text = text.trim();
        Ok(self.store.search_reports(manager.id, text, 20).await?)
    }

    /// The person a reset would act on, and their first account (for the reset page).
    pub async fn subject_of(
        &self,
        proof: &Proof<ManagerReset>,
    ) -> Result<(crate::domain::Person, crate::domain::Account), TeamError> {
        let subject = proof.subject().ok_or(TeamError::NotFound)?;
        let person = self.store.person(subject).await?.ok_or(TeamError::NotFound)?;
        let account = self.store.accounts_of(subject).await?.into_iter().next().ok_or(TeamError::NotFound)?;
        Ok((person, account))
    }

    /// Reset the subject's password, MFA or both, as their manager.
    #[tracing::instrument(skip_all)]
    pub async fn reset(
        &self,
        proof: Proof<ManagerReset>,
        choice: ResetChoice,
        account: Option<AccountId>,
    ) -> Result<ResetDone, TeamError> {
        let now = self.core.now();
        let settings = &self.core.settings;
        let organisation = &settings.organisation;
        let manager = self.actor_person(proof.actor_account()).await?;
        let manager_account = proof.actor_account().ok_or(TeamError::NotFound)?;
        let subject = proof.subject().ok_or(TeamError::NotFound)?;
        let person = self.store.person(subject).await?.ok_or(TeamError::NotFound)?;
        let accounts = self.store.accounts_of(person.id).await?;
        let account = match account {
            Some(id) => accounts
                .iter()
                .find(|a| a.id == id)
                .ok_or_else(|| TeamError::Form("That account is not one of this person's.".into()))?,
            None => accounts.first().ok_or(TeamError::NotFound)?,
        };
        if account.source == AccountSource::Sso {
            return Err(TeamError::NotApplicable(format!(
                "{} signs in through single sign-on: their password and MFA are not kept here. Contact the \
                 helpdesk instead.",
                person.display_name
            )));
        }
        let has_totp = self.store.totp(account.id).await?.is_some_and(|t| t.confirmed_at.is_some());
        let synchronized = account.source == AccountSource::Synchronized;
        let set_password = choice.password() && !synchronized;
        let engineer = choice.password() && synchronized;
        let reset_mfa = choice.mfa()
            && (has_totp
                || self.store.unused_backup_codes(account.id).await? > 0
                || !self.store.passkeys(account.id).await?.is_empty());

        let reference = new_reference();
        let name = &person.display_name;
        let username = account.username.to_string();
        let mut done = Vec::new();
        if set_password {
            done.push("a temporary password was set (a new one must be chosen at the next sign-in)".to_owned());
        }
        if choice.mfa() {
            done.push(if reset_mfa {
                "their MFA was removed (they set up an authenticator again at the next sign-in)".to_owned()
            } else {
                "they had no MFA to remove".to_owned()
            });
        }
        if engineer {
            done.push(
                "the password is kept in another directory and cannot be reset here: an engineer will follow up"
                    .to_owned(),
            );
        }
        let summary = format!("{name} ({username}): {}.", done.join("; "));
        let temporary = set_password.then(readable_password);
        let password_hash = match &temporary {
            Some(p) => Some(self.core.hasher.hash(p).await.map_err(|e| TeamError::Unexpected(e.to_string()))?),
            None => None,
        };
        let link_token = temporary.as_ref().map(|_| random_token());
        let link = match (&temporary, &link_token) {
            (Some(password), Some(token)) => {
                let hash = link_hash(&self.core, token);
                let sealed = self.core.keys.seal(password.as_bytes(), &format!("secure-link:{}", hash.0));
                Some(NewSecureLink {
                    hash,
                    manager_account,
                    subject_account: account.id,
                    sealed_password: sealed,
                    expires_at: now + i64::from(settings.team.secure_link_hours) * 3600,
                })
            }
            _ => None,
        };
        // A reset done here is resolved at once and waits for "everything works"; a password for an engineer
        // stays open in their queue.
        let status = if engineer { TicketStatus::Open } else { TicketStatus::Resolved };
        let confirm_token = (status == TicketStatus::Resolved).then(random_token);
        let ticket = NewTicket {
            reference: reference.clone(),
            kind: if engineer { TicketKind::PasswordReset } else { TicketKind::ManagerReset },
            requester: manager.id,
            subject: person.id,
            subject_account: Some(account.id),
            status,
            summary: summary.clone(),
            author: proof.actor().to_string(),
            note: format!("Asked for by {} ({}): {}", manager.display_name, choice.as_str(), summary),
            confirm_hash: confirm_token.as_ref().map(|t| confirm_hash(&self.core, t)),
        };

        let mut emails = Vec::new();
        let greeting = format!("Hello {},", manager.display_name);
        let mut paragraphs = vec![format!("Ticket {reference}: {summary}")];
        if temporary.is_some() {
            paragraphs.push(
                "The temporary password comes in a separate email with a secure link. Give it only to the person \
                 themself, once you are sure you are speaking to them."
                    .into(),
            );
        }
        let confirm_url = confirm_token.as_ref().map(|t| self.url(&format!("/tickets/confirm?token={t}")));
        if confirm_url.is_some() {
            paragraphs.push(format!(
                "Once {name} is signed in and can work normally, confirm it with the link below. If something is \
                 still wrong, contact the helpdesk and give the ticket's reference."
            ));
        } else {
            paragraphs.push(format!("You will get an email when the ticket moves on. Ticket reference: {reference}."));
        }
        emails.push(self.email(
            manager.email.as_str(),
            &format!("{organisation}: ticket {reference} for {name}"),
            &Notice {
                greeting: &greeting,
                paragraphs: &paragraphs,
                code: None,
                link: confirm_url.as_deref().map(|u| ("Everything works", u)),
                not_me: None,
                organisation,
            },
        )?);
        if let Some(token) = &link_token {
            let expires = crate::assistance::dossier::when(now + i64::from(settings.team.secure_link_hours) * 3600);
            let paragraphs = vec![
                format!(
                    "The temporary password for {name} ({username}) is behind the secure link below. It works once, \
                     until {expires}; opening it shows a button first, so a mail scanner cannot use it up."
                ),
                "You are responsible for giving this password only to the right person: if they are not with you, \
                 call them on the number already on file before you read it out."
                    .into(),
            ];
            let url = self.url(&format!("/secure-link?token={token}"));
            emails.push(self.email(
                manager.email.as_str(),
                &format!("{organisation}: secure link for ticket {reference}"),
                &Notice {
                    greeting: &greeting,
                    paragraphs: &paragraphs,
                    code: None,
                    link: Some(("Secure link", &url)),
                    not_me: None,
                    organisation,
                },
            )?);
        }
        // The person is told, as for every recovery action, with a way to say it was not them.
        let not_me_token = (settings.recovery.notify_user && (set_password || reset_mfa)).then(random_token);
        let not_me = not_me_token.as_ref().map(|t| NewSecret {
            account: account.id,
            kind: SecretKind::NotMe,
            hash: crate::recovery::link_hash(&self.core, t),
            expires_at: now + i64::from(settings.recovery.not_me_days) * 86_400,
            multi_use: false,
            action: Some("manager-reset".into()),
            reference: None,
        });
        if let Some(token) = &not_me_token {
            let when = crate::assistance::dossier::when(now);
            let mut what = Vec::new();
            if set_password {
                what.push("your password was replaced by a temporary one");
            }
            if reset_mfa {
                what.push("your authenticator app and backup codes were removed");
            }
            let next = match (set_password, reset_mfa) {
                (true, true) => {
                    "Your manager will give you the temporary password; you then set up your authenticator again \
                     and choose a new password."
                }
                (true, false) => "Your manager will give you the temporary password; you then choose a new one.",
                _ => "At your next sign-in you set up your authenticator again.",
            };
            let paragraphs = vec![format!(
                "At your manager's request ({}), {} on {when}. {next}",
                manager.display_name,
                what.join(" and "),
            )];
            let url = self.url(&format!("/not-me?token={token}"));
            for to in crate::addresses::of(&*self.store, &person).await? {
                emails.push(self.email(
                    &to,
                    &format!("{organisation}: your sign-in was reset"),
                    &Notice {
                        greeting: &format!("Hello {name},"),
                        paragraphs: &paragraphs,
                        code: None,
                        link: None,
                        not_me: Some(&url),
                        organisation,
                    },
                )?);
            }
        }
        let audit = AuditEntry::new(now, proof.actor(), "team.reset", "success")
            .person(person.id)
            .account(account.id)
            .reason("reset by the person's line manager")
            .details(
                serde_json::json!({
                    "choice": choice.as_str(),
                    "source": account.source.as_str(),
                    "password_set": set_password,
                    "mfa_removed": reset_mfa,
                    "engineer_ticket": engineer,
                })
                .to_string(),
            );
        let device_authorization = reset_mfa && !set_password;
        let password_until = password_hash.as_ref().map(|_| now + i64::from(settings.team.secure_link_hours) * 3600);
        let change =
            ManagerResetChange { account: account.id, password_hash, password_until, reset_mfa, device_authorization };
        self.store.apply_manager_reset(&change, &ticket, link.as_ref(), not_me.as_ref(), &emails, &audit, now).await?;
        metrics::counter!("lifeline_manager_resets_total", "choice" => choice.as_str()).increment(1);
        Ok(ResetDone { ticket: reference, engineer_follows_up: engineer, summary })
    }

    /// Where the link stands, for its page; nothing is used up by looking.
    pub async fn link_state(&self, token: &str) -> Result<LinkState, TeamError> {
        if !plausible_token(token) {
            return Ok(LinkState::Unknown);
        }
        let now = self.core.now();
        Ok(match self.store.secure_link(&link_hash(&self.core, token)).await? {
            None => LinkState::Unknown,
            Some(link) => match link.used_at {
                Some(at) => LinkState::Used { at },
                None if link.revoked => LinkState::Revoked,
                None if link.expires_at <= now => LinkState::Expired { at: link.expires_at },
                None => LinkState::Ready,
            },
        })
    }

    /// Use the link: the password, once; otherwise where the link stands.
    pub async fn reveal(&self, token: &str, ip: &str) -> Result<Result<Revealed, LinkState>, TeamError> {
        if !plausible_token(token) {
            return Ok(Err(LinkState::Unknown));
        }
        let hash = link_hash(&self.core, token);
        let Some(link) = self.store.secure_link(&hash).await? else { return Ok(Err(LinkState::Unknown)) };
        let account = self.store.account(link.subject_account).await?.ok_or(TeamError::NotFound)?;
        let person = self.store.person(account.person_id).await?.ok_or(TeamError::NotFound)?;
        let manager = self.store.account(link.manager_account).await?.ok_or(TeamError::NotFound)?;
        // The manager must still be an active manager of the person: a link outlives neither.
        let still = match self.store.person(manager.person_id).await? {
            Some(m) => m.status == crate::domain::PersonStatus::Active && self.store.manages(m.id, person.id).await?,
            None => false,
        };
        if !still {
            return Ok(Err(LinkState::Revoked));
        }
        let now = self.core.now();
        let ticket = self.store.ticket_by_id(link.ticket).await?;
        let mut audit = AuditEntry::new(now, &Actor::Public, "team.secure_link_used", "success")
            .person(person.id)
            .account(account.id)
            .ip(ip.to_owned())
            .details(format!("the temporary password was shown through the secure link sent to {}", manager.username));
        audit.reference = ticket.map(|t| t.reference);
        match self.store.use_secure_link(&hash, now, &audit).await? {
            Some(sealed) => {
                let clear = self
                    .core
                    .keys
                    .open(&sealed, &format!("secure-link:{}", hash.0))
                    .map_err(|e| TeamError::Unexpected(e.to_string()))?;
                let password = String::from_utf8(clear).map_err(|e| TeamError::Unexpected(e.to_string()))?;
                Ok(Ok(Revealed { password, username: account.username.to_string(), display_name: person.display_name }))
            }
            None => Ok(Err(self.link_state(token).await?)),
        }
    }
}
