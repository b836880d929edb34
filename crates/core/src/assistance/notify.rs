//! The admins' emails about assistance requests: a new request's dossier, an update when a repeat comes from
//! somewhere new, a digest during a flood. The core decides who gets what, with which subject and facts; the
//! bodies are rendered by a [`Letters`] (templates, outside the core: `mail::compose` in the server).

use super::dossier::{Dossier, Submission};
use crate::config::Settings;
use crate::email::OutgoingEmail;
use crate::store::{AssistanceRequest, StoreError};
use std::sync::Arc;

/// Most requests a digest lists one by one; it counts them all.
pub const DIGEST_LISTED: usize = 100;

/// One request as a digest lists it: enough to pick it out of the queue, and its risk flags.
pub struct DigestItem {
    pub reference: String,
    pub submitted_at: String,
    pub request_type: String,
    pub submitted_email: String,
    pub resolved_account: String,
    pub source: String,
    pub risk_flags: Vec<String>,
    /// For a repeat from somewhere new: the open request it was added to.
    pub joined_to: Option<String>,
}

impl DigestItem {
    pub fn of(row: &AssistanceRequest, joined_to: Option<String>) -> Self {
        let dossier = row.dossier.as_deref().and_then(|d| serde_json::from_str::<Dossier>(d).ok());
        let context =
            |key: &str| dossier.as_ref().and_then(|d| d.context.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()));
        Self {
            reference: row.reference.clone(),
            submitted_at: super::dossier::when(row.created_at),
            request_type: dossier.as_ref().map(|d| d.request_type.clone()).unwrap_or_else(|| row.problem.clone()),
            submitted_email: row.submitted_email.clone(),
            resolved_account: dossier.as_ref().map(|d| d.resolved_account.clone()).unwrap_or_default(),
            source: format!(
                "{} ({}; {})",
                row.client_ip,
                context("Approximate location").unwrap_or_else(|| "unknown".into()),
                row.network.clone().unwrap_or_else(|| "unknown network".into())
            ),
            risk_flags: dossier.map(|d| d.risk_flags).unwrap_or_default(),
            joined_to,
        }
    }
}

/// A rendered body: its text and HTML parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Body {
    pub text: String,
    pub html: String,
}

/// The admins' email about one request: its dossier, a link to it, and for an update why it is sent and
/// every submission of the request.
pub struct AdminLetter<'a> {
    pub d: &'a Dossier,
    pub link: &'a str,
    /// Why an update is sent; `None` for a new request.
    pub update: Option<&'a str>,
    /// Every submission of the request, when there is more than one.
    pub submissions: &'a [Submission],
}

/// One email for requests put off during a flood.
pub struct DigestLetter<'a> {
    pub count: usize,
    pub items: &'a [DigestItem],
    pub unlisted: usize,
    pub individual: u32,
    pub minutes: u32,
    pub queue: &'a str,
    pub console: &'a str,
}

/// Renders the bodies of the admins' emails.
pub trait Letters: Send + Sync {
    fn admin(&self, letter: &AdminLetter<'_>) -> Result<Body, String>;
    fn digest(&self, letter: &DigestLetter<'_>) -> Result<Body, String>;
    /// A notice to one person: what happened, and the code, link or "this wasn't me" link it carries.
    fn notice(&self, letter: &Notice<'_>) -> Result<Body, String>;
}

/// A short email to one person (a recovery action's notice, its code or link, a device authorization, an
/// alert to the admins).
pub struct Notice<'a> {
    pub greeting: &'a str,
    /// Each a paragraph of plain text.
    pub paragraphs: &'a [String],
    /// A code to type, shown on a line of its own.
    pub code: Option<&'a str>,
    /// (what it does, address)
    pub link: Option<(&'a str, &'a str)>,
    /// The "this wasn't me" link.
    pub not_me: Option<&'a str>,
    pub organisation: &'a str,
}

pub(super) struct Composer {
    public_url: String,
    domain: String,
    letters: Arc<dyn Letters>,
}

fn rendered(result: Result<Body, String>) -> Result<Body, StoreError> {
    result.map_err(StoreError::Corrupt)
}

impl Composer {
    pub(super) fn new(settings: &Settings, letters: Arc<dyn Letters>) -> Self {
        Self {
            letters,
            public_url: settings.public_url.trim_end_matches('/').to_owned(),
            domain: crate::email::sender_domain(&settings.mail_from),
        }
    }

    fn link(&self, reference: &str) -> String {
        format!("{}/console/requests/{reference}", self.public_url)
    }

    fn to_all(&self, recipients: &[String], subject: &str, text: String, html: String) -> Vec<OutgoingEmail> {
        recipients.iter().map(|to| OutgoingEmail::new(&self.domain, to, subject, text.clone(), html.clone())).collect()
    }

    /// A new request: its dossier, to every admin.
    pub(super) fn opening(&self, d: &Dossier, recipients: &[String]) -> Result<Vec<OutgoingEmail>, StoreError> {
        let link = self.link(&d.reference);
        let Body { text, html } =
            rendered(self.letters.admin(&AdminLetter { d, link: &link, update: None, submissions: &[] }))?;
        let subject = format!("Access assistance request {}: {} ({})", d.reference, d.request_type, d.submitted_email);
        Ok(self.to_all(recipients, &subject, text, html))
    }

    /// A repeat of `open` from a network or country none of its submissions came from: the new submission's
    /// dossier (fresh facts, its own context and flags) and every submission of the request.
    pub(super) fn update(
        &self,
        open: &AssistanceRequest,
        d: &Dossier,
        submissions: &[Submission],
        recipients: &[String],
    ) -> Result<Vec<OutgoingEmail>, StoreError> {
        let link = self.link(&open.reference);
        let note = format!(
            "{} asks again for what open request {} asks, from a network or country none of its earlier submissions \
             came from. The facts below are read for this new submission; every submission of the request is \
             listed at the end. Work and close the request as {}.",
            d.reference, open.reference, open.reference
        );
        let Body { text, html } =
            rendered(self.letters.admin(&AdminLetter { d, link: &link, update: Some(&note), submissions }))?;
        let subject = format!(
            "Access assistance request {}: asked again from a new network or country ({})",
            open.reference, d.submitted_email
        );
        Ok(self.to_all(recipients, &subject, text, html))
    }

    /// One email for `count` requests put off during a flood, listing `items` (the first of them).
    pub(super) fn digest(
        &self,
        items: &[DigestItem],
        count: usize,
        settings: &crate::config::DigestSettings,
        recipients: &[String],
    ) -> Result<Vec<OutgoingEmail>, StoreError> {
        let queue = format!("{}/console/requests?status=open", self.public_url);
        let console = format!("{}/console/requests/", self.public_url);
        let (individual, minutes) = (settings.individual_per_interval, settings.interval_seconds.div_ceil(60));
        let unlisted = count.saturating_sub(items.len());
        let letter = DigestLetter { count, items, unlisted, individual, minutes, queue: &queue, console: &console };
        let Body { text, html } = rendered(self.letters.digest(&letter))?;
        let subject =
            format!("Access assistance digest: {count} request{} during a flood", if count == 1 { "" } else { "s" });
        Ok(self.to_all(recipients, &subject, text, html))
    }
}

/// Something a person must hear of at once (a passkey added or removed, an unusual sign-in), with the way to say
/// it was not them.
pub(crate) struct Alarm<'a> {
    /// "A passkey was added to your account"
    pub subject: &'a str,
    pub paragraphs: Vec<String>,
    /// What a "this wasn't me" report names: "adding the passkey \"Phone\"".
    pub reported_as: String,
}

/// The notice of a change to `account`'s sign-in (an authenticator bound, a password changed or reset), to every
/// address of its person, with "this wasn't me": email, a channel independent of the session that made the change.
pub(crate) async fn account_alarm(
    core: &crate::services::Core,
    letters: &dyn Letters,
    store: &(impl crate::store::DirectoryStore + crate::store::AddressStore + ?Sized),
    account: &crate::domain::Account,
    alarm: Alarm<'_>,
) -> Result<crate::store::Notices, StoreError> {
    let person = store
        .person(account.person_id)
        .await?
        .ok_or_else(|| StoreError::Corrupt("an account without its person".into()))?;
    let to = crate::addresses::of(store, &person).await?;
    alarm_notice(core, letters, &person, account, alarm, &to).map_err(StoreError::Corrupt)
}

/// The emails that tell `person` of `alarm` at each of `to` (their notification addresses, `addresses::of`), with
/// one "this wasn't me" link, and that link's secret: all go into the transaction of what they report.
pub(crate) fn alarm_notice(
    core: &crate::services::Core,
    letters: &dyn Letters,
    person: &crate::domain::Person,
    account: &crate::domain::Account,
    alarm: Alarm<'_>,
    to: &[String],
) -> Result<crate::store::Notices, String> {
    let settings = &core.settings;
    let not_me = crate::crypto::random_token();
    let not_me_url = format!("{}/not-me?token={not_me}", settings.public_url.trim_end_matches('/'));
    let mut paragraphs = alarm.paragraphs;
    paragraphs.push(
        "If this was not you, someone else can sign in as you: use the link below to lock your account at once, \
         then contact your helpdesk."
            .into(),
    );
    let greeting = format!("Hello {},", person.display_name);
    let notice = Notice {
        greeting: &greeting,
        paragraphs: &paragraphs,
        code: None,
        link: None,
        not_me: Some(&not_me_url),
        organisation: &settings.organisation,
    };
    let Body { text, html } = letters.notice(&notice)?;
    let domain = crate::email::sender_domain(&settings.mail_from);
    let subject = format!("{}: {}", settings.organisation, alarm.subject.to_lowercase());
    let emails = to.iter().map(|to| OutgoingEmail::new(&domain, to, &subject, text.clone(), html.clone())).collect();
    let secret = crate::store::NewSecret {
        account: account.id,
        kind: crate::store::SecretKind::NotMe,
        hash: crate::recovery::link_hash(core, &not_me),
        expires_at: core.now() + i64::from(settings.recovery.not_me_days) * 86_400,
        multi_use: false,
        action: Some(alarm.reported_as),
        reference: None,
    };
    Ok(crate::store::Notices { emails, secrets: vec![secret] })
}
