//! A person's second notification address (issue 15; NIST SP 800-63B-4 §4.2.1.2 and §4.6): the person adds it,
//! proves it with a code sent to it, and from then on every recovery notification and alarm goes to it as well as
//! to the directory address; an admin may send a recovery code or an access email to it instead.
//!
//! Invariants:
//! - an address is used only once confirmed, with a code of a recovery code's strength (137 bits) that works
//!   once, for `recovery.recovery_code_minutes`, against at most `store::ADDRESS_CODE_TRIES` wrong tries;
//! - adding, replacing or removing it needs a sign-in within ten minutes (it is recovery information), is
//!   audited, and is told to every address the person had before the change, with "this wasn't me";
//! - a new code is sent at most once a minute (the limit is part of the write that records it).

use crate::assistance::notify::{Alarm, Body, Letters, Notice, alarm_notice};
use crate::audit::{Actor, AuditEntry};
use crate::crypto::{TokenHash, typed_code};
use crate::domain::{Account, AccountId, EmailAddress, Person};
use crate::email::OutgoingEmail;
use crate::services::Core;
use crate::signin::LiveSession;
use crate::store::{
    AddressConfirmation, AddressStore, DirectoryStore, Notices, NotificationAddress, PendingAddress, StoreError,
};
use std::sync::Arc;

/// Every address a notification about `person` goes to: the directory address, then the confirmed second one.
pub async fn of(store: &(impl AddressStore + ?Sized), person: &Person) -> Result<Vec<String>, StoreError> {
    let mut to = vec![person.email.to_string()];
    if let Some(second) = store.notification_address(person.id).await?.filter(|a| a.confirmed_at.is_some())
        && second.address != to[0]
    {
        to.push(second.address);
    }
    Ok(to)
}

/// A new code may be sent this long after the last.
pub const RESEND_SECONDS: i64 = crate::store::ADDRESS_RESEND_SECONDS;

#[derive(Debug, thiserror::Error)]
pub enum AddressError {
    #[error("{0}")]
    Invalid(String),
    #[error("For this change, sign in again: your last sign-in was more than 10 minutes ago.")]
    NotFresh,
    #[error("A code was sent less than a minute ago: wait a minute before asking for another.")]
    TooSoon,
    #[error("Too many codes were sent today: try again tomorrow.")]
    TooMany,
    #[error("That code is not right. Check the email and try again.")]
    WrongCode,
    #[error(
        "That code no longer works (it expired, or was tried wrongly too often): add the address again for a new one."
    )]
    Spent,
    #[error("You have no second address.")]
    NoAddress,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Unexpected(String),
}

/// The store capabilities the service uses.
pub trait AddressServiceStore: AddressStore + DirectoryStore + crate::store::ThrottleStore {}
impl<T: AddressStore + DirectoryStore + crate::store::ThrottleStore> AddressServiceStore for T {}

/// Codes a person may have sent in a day, and codes one mailbox may receive in a day (from anyone): removing and
/// adding again does not reset them, so the page cannot be used to flood a stranger's mailbox.
pub const CODES_PER_DAY: u32 = 5;

pub struct Addresses {
    core: Arc<Core>,
    store: Arc<dyn AddressServiceStore>,
    letters: Arc<dyn Letters>,
}

fn code_hash(core: &Core, code: &str) -> TokenHash {
    TokenHash::of(&core.keys, "address-code", &crate::recovery::normalise_code(code))
}

impl Addresses {
    pub(crate) fn new(core: Arc<Core>, store: Arc<dyn AddressServiceStore>, letters: Arc<dyn Letters>) -> Self {
        Self { core, store, letters }
    }

    async fn holder(&self, account: AccountId) -> Result<(Account, Person), AddressError> {
        let account =
            self.store.account(account).await?.ok_or_else(|| AddressError::Unexpected("account vanished".into()))?;
        let person = self
            .store
            .person(account.person_id)
            .await?
            .ok_or_else(|| AddressError::Unexpected("person vanished".into()))?;
        Ok((account, person))
    }

    /// The person's second address, confirmed or pending.
    pub async fn current(&self, account: AccountId) -> Result<Option<NotificationAddress>, AddressError> {
        let (_, person) = self.holder(account).await?;
        Ok(self.store.notification_address(person.id).await?)
    }

    fn audit(&self, account: &Account, action: &str, address: &str) -> AuditEntry {
        let actor = Actor::Account { account_id: account.id, username: account.username.clone() };
        AuditEntry::new(self.core.now(), &actor, action, "success")
            .person(account.person_id)
            .account(account.id)
            .details(serde_json::json!({ "address": address }).to_string())
    }

    /// Add (or replace) the second address: a code goes to it, and the addresses the person has now hear of it.
    /// The session must have signed in within ten minutes (`signin::fresh_for_binding`).
    pub async fn add(&self, session: &LiveSession, address: &str) -> Result<(), AddressError> {
        if !crate::signin::fresh_for_binding(session, self.core.now()) {
            return Err(AddressError::NotFresh);
        }
        let address = EmailAddress::parse(address).map_err(|e| AddressError::Invalid(e.to_string()))?;
        let (account, person) = self.holder(session.account_id).await?;
        if address == person.email {
            return Err(AddressError::Invalid(
                "That is your directory address already: give another one, such as a personal mailbox.".into(),
            ));
        }
        let now = self.core.now();
        // Reserve first, then do the work: each bucket counts the attempt atomically, on every instance.
        let day = now - now.rem_euclid(86_400);
        let mailbox = TokenHash::of(&self.core.keys, "address-bucket", address.as_str());
        let buckets = [format!("address-code:person:{}", person.id.0), format!("address-code:to:{}", mailbox.0)];
        let mut taken = Vec::new();
        for bucket in &buckets {
            if !self.store.reserve_client_attempt(bucket, day, CODES_PER_DAY).await? {
                self.give_back(&taken, day).await?;
                return Err(AddressError::TooMany);
            }
            taken.push(bucket.clone());
        }
        let settings = &self.core.settings;
        let code = typed_code(7);
        let expires_at = now + i64::from(settings.recovery.recovery_code_minutes) * 60;
        // The mailbox is not proved yet: the email names no person and no account.
        let greeting = "Hello,".to_owned();
        let paragraphs = [format!(
            "Someone asked for {address} to receive the sign-in notices of their {} account. If that was you, type \
             this code on the page where you added it, until {}. If not, ignore this email: the address is not \
             used until the code is typed.",
            settings.organisation,
            crate::assistance::dossier::when(expires_at)
        )];
        let page = format!("{}/account/addresses", settings.public_url.trim_end_matches('/'));
        let notice = Notice {
            greeting: &greeting,
            paragraphs: &paragraphs,
            code: Some(&code),
            link: Some(("Open your notification addresses", &page)),
            not_me: None,
            organisation: &settings.organisation,
        };
        let Body { text, html } = self.letters.notice(&notice).map_err(AddressError::Unexpected)?;
        let domain = crate::email::sender_domain(&settings.mail_from);
        let subject = format!("{}: confirm your notification address", settings.organisation);
        let to_new = OutgoingEmail::new(&domain, address.as_str(), &subject, text, html);
        let alarm = Alarm {
            subject: "A notification address was added to your account",
            paragraphs: vec![format!(
                "{address} was added as a second address for the notices of your account {} on {}. It is used once \
                 a code sent to it is typed.",
                account.username,
                crate::assistance::dossier::when(now)
            )],
            reported_as: format!("adding the notification address {address}"),
        };
        let mut notices = self.alarm(&person, &account, alarm).await?;
        notices.emails.push(to_new);
        let audit = self.audit(&account, "notification-address.add", address.as_str());
        if !self
            .store
            .set_notification_address(
                person.id,
                &PendingAddress { address: address.as_str(), code: code_hash(&self.core, &code), expires_at },
                &notices,
                &audit,
                now,
            )
            .await?
        {
            // Nothing was sent: the day's codes are given back.
            self.give_back(&taken, day).await?;
            return Err(AddressError::TooSoon);
        }
        Ok(())
    }

    /// Confirm the pending address with the code sent to it.
    pub async fn confirm(&self, account: AccountId, code: &str) -> Result<(), AddressError> {
        let (account, person) = self.holder(account).await?;
        let pending = self.store.notification_address(person.id).await?.ok_or(AddressError::NoAddress)?;
        let audit = self.audit(&account, "notification-address.confirm", &pending.address);
        let alarm = Alarm {
            subject: "A notification address now receives your notices",
            paragraphs: vec![format!(
                "{} now receives the notices of your account {} as well as your directory address (confirmed on {}).",
                pending.address,
                account.username,
                crate::assistance::dossier::when(self.core.now())
            )],
            reported_as: format!("adding the notification address {}", pending.address),
        };
        let mut to = of(&*self.store, &person).await?;
        to.retain(|a| *a != pending.address);
        to.push(pending.address.clone());
        let notices = alarm_notice(&self.core, &*self.letters, &person, &account, alarm, &to)
            .map_err(AddressError::Unexpected)?;
        let hash = code_hash(&self.core, code);
        match self
            .store
            .confirm_notification_address(person.id, &pending.address, &hash, &notices, &audit, self.core.now())
            .await?
        {
            AddressConfirmation::Confirmed => Ok(()),
            AddressConfirmation::Wrong => Err(AddressError::WrongCode),
            AddressConfirmation::Spent => Err(AddressError::Spent),
        }
    }

    /// Remove the second address; every address the person had hears of it.
    pub async fn remove(&self, session: &LiveSession) -> Result<(), AddressError> {
        if !crate::signin::fresh_for_binding(session, self.core.now()) {
            return Err(AddressError::NotFresh);
        }
        let (account, person) = self.holder(session.account_id).await?;
        let current = self.store.notification_address(person.id).await?.ok_or(AddressError::NoAddress)?;
        let alarm = Alarm {
            subject: "A notification address was removed from your account",
            paragraphs: vec![format!(
                "{} no longer receives the notices of your account {} (removed on {}).",
                current.address,
                account.username,
                crate::assistance::dossier::when(self.core.now())
            )],
            reported_as: format!("removing the notification address {}", current.address),
        };
        let notices = self.alarm(&person, &account, alarm).await?;
        let audit = self.audit(&account, "notification-address.remove", &current.address);
        if !self.store.remove_notification_address(person.id, &notices, &audit, self.core.now()).await? {
            return Err(AddressError::NoAddress);
        }
        Ok(())
    }

    async fn give_back(&self, buckets: &[String], day: i64) -> Result<(), AddressError> {
        for bucket in buckets {
            self.store.release_client_attempt(bucket, day).await?;
        }
        Ok(())
    }

    async fn alarm(&self, person: &Person, account: &Account, alarm: Alarm<'_>) -> Result<Notices, AddressError> {
        let to = of(&*self.store, person).await?;
        alarm_notice(&self.core, &*self.letters, person, account, alarm, &to).map_err(AddressError::Unexpected)
    }
}
