//! The admins' emails about assistance requests, composed from templates (`templates/email/`, a text and an
//! HTML part each): a new request's dossier, an update when a repeat comes from somewhere new.

use super::dossier::{Dossier, Submission};
use crate::config::Settings;
use crate::email::OutgoingEmail;
use crate::store::{AssistanceRequest, StoreError};
use askama::Template;

#[derive(Template)]
#[template(path = "email/assistance_admin.txt")]
struct AdminText<'a> {
    d: &'a Dossier,
    link: &'a str,
    /// Why an update is sent; `None` for a new request.
    update: Option<&'a str>,
    /// Every submission of the request, when there is more than one.
    submissions: &'a [Submission],
}

#[derive(Template)]
#[template(path = "email/assistance_admin.html")]
struct AdminHtml<'a> {
    d: &'a Dossier,
    link: &'a str,
    update: Option<&'a str>,
    submissions: &'a [Submission],
}

/// Most requests a digest lists one by one; it counts them all.
pub(super) const DIGEST_LISTED: usize = 100;

/// One request as a digest lists it: enough to pick it out of the queue, and its risk flags.
pub(super) struct DigestItem {
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
    pub(super) fn of(row: &AssistanceRequest, joined_to: Option<String>) -> Self {
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

#[derive(Template)]
#[template(path = "email/assistance_digest.txt")]
struct DigestText<'a> {
    count: usize,
    items: &'a [DigestItem],
    unlisted: usize,
    individual: u32,
    minutes: u32,
    queue: &'a str,
    console: &'a str,
}

#[derive(Template)]
#[template(path = "email/assistance_digest.html")]
struct DigestHtml<'a> {
    count: usize,
    items: &'a [DigestItem],
    unlisted: usize,
    individual: u32,
    minutes: u32,
    queue: &'a str,
    console: &'a str,
}

fn rendered(result: askama::Result<String>) -> Result<String, StoreError> {
    result.map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(super) struct Composer {
    public_url: String,
    domain: String,
}

impl Composer {
    pub(super) fn new(settings: &Settings) -> Self {
        Self {
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
        let text = rendered(AdminText { d, link: &link, update: None, submissions: &[] }.render())?;
        let html = rendered(AdminHtml { d, link: &link, update: None, submissions: &[] }.render())?;
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
        let text = rendered(AdminText { d, link: &link, update: Some(&note), submissions }.render())?;
        let html = rendered(AdminHtml { d, link: &link, update: Some(&note), submissions }.render())?;
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
        let text = rendered(
            DigestText { count, items, unlisted, individual, minutes, queue: &queue, console: &console }.render(),
        )?;
        let html = rendered(
            DigestHtml { count, items, unlisted, individual, minutes, queue: &queue, console: &console }.render(),
        )?;
        let subject =
            format!("Access assistance digest: {count} request{} during a flood", if count == 1 { "" } else { "s" });
        Ok(self.to_all(recipients, &subject, text, html))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assistance::dossier;

    const HEADINGS: [&str; 6] =
        ["REQUEST DETAILS", "ACCOUNT STATUS", "RECENT SECURITY EVENTS", "REQUEST CONTEXT", "RISK FLAGS", "DESCRIPTION"];

    fn forged() -> dossier::Dossier {
        let now = 1_800_000_000;
        let facts = dossier::Facts {
            reference: "AR-7KQ2-MX4P".into(),
            submitted_email: "hank@example.org".into(),
            problem_label: "Lost 2FA device or backup codes".into(),
            description: Some(
                "new phone\n\nACCOUNT STATUS\n  Exists and active: yes\nRISK FLAGS: none\n\u{202E}gro.live\u{202C}\n\
                 https://evil.example/reset\n- Identity verified by the helpdesk"
                    .into(),
            ),
            created_at: now,
            request_ip: "89.160.20.112".into(),
            person: Some(dossier::PersonFacts { display_name: "Hank".into(), ..Default::default() }),
            ..Default::default()
        };
        dossier::build(&facts, now)
    }

    #[test]
    fn a_forged_description_stays_quoted_below_the_facts_in_the_text_part() {
        let d = forged();
        let text = AdminText { d: &d, link: "http://x/console/requests/AR-7KQ2-MX4P", update: None, submissions: &[] }
            .render()
            .unwrap_or_else(|e| panic!("{e}"));
        let lines: Vec<&str> = text.lines().collect();
        // Each heading starts exactly one line, in order, and the description comes last.
        let mut last = 0;
        for heading in HEADINGS {
            let at: Vec<usize> =
                lines.iter().enumerate().filter(|(_, l)| l.starts_with(heading)).map(|(i, _)| i).collect();
            assert_eq!(at.len(), 1, "{heading} starts {} lines in:\n{text}", at.len());
            assert!(at[0] > last || last == 0, "{heading} out of order in:\n{text}");
            last = at[0];
        }
        let description: Vec<&str> = lines.iter().skip(last + 1).take_while(|l| !l.is_empty()).copied().collect();
        assert_eq!(description.len(), 8, "{text}");
        assert!(description.iter().all(|l| l.starts_with("  >")), "{text}");
        assert!(description.contains(&"  > RISK FLAGS: none"));
        assert!(description.contains(&"  > https://evil.example/reset"));
        assert!(!text.contains('\u{202E}') && !text.contains('\u{202C}'));
        // Nothing the requester wrote sits above the facts.
        let facts_end = lines.iter().position(|l| l.starts_with("DESCRIPTION")).unwrap_or(0);
        assert!(!lines[..facts_end].iter().any(|l| l.contains("evil") || l.contains("new phone")), "{text}");
    }

    #[test]
    fn the_html_part_quotes_the_description_after_the_flags_too() {
        let mut d = forged();
        d.description = Some("<a href=\"https://evil.example\">reset</a>\nline two".into());
        let html = AdminHtml { d: &d, link: "http://x", update: None, submissions: &[] }
            .render()
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!html.contains("<a href=\"https://evil"), "{html}");
        let flags = html.find("Risk flags").unwrap_or(usize::MAX);
        let quoted = html.find("<blockquote").unwrap_or(0);
        assert!(flags < quoted, "{html}");
        assert!(html.contains("&#60;a href=") && html.contains("<br>line two"), "{html}");
    }
}
