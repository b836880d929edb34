//! Access assistance requests ("Can't sign in?", SPEC §3).
//!
//! Submitting does as little as possible, and the same for every email address: check the input, count the
//! rate limits, store the request (with its audit row), answer no sooner than the response floor. Everything
//! that depends on whether the address belongs to someone — resolving the account, the dossier, emailing the
//! admins — happens afterwards in [`Assistance::process_next`], run by a background task on every instance.

pub mod dossier;

use crate::audit::{Actor, AuditEntry};
use crate::crypto::TokenHash;
use crate::domain::{AccountSource, Description, EmailAddress, ParseError, PersonStatus, ProblemType, ReferenceId};
use crate::mail::OutgoingEmail;
use crate::policy::permissions::Permission;
use crate::policy::rate_limit;
use crate::signin::{RequestContext, SignIn};
use crate::store::{NewAssistanceRequest, ProcessOutcome, Processed, RateBucket, RateCharge, StoreError};
use askama::Template;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("{0}")]
    Invalid(#[from] ParseError),
    #[error("Too many requests; try again in {retry_after} seconds.")]
    RateLimited { retry_after: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct Assistance {
    pub signin: Arc<SignIn>,
    /// Poked when a request is stored, so processing starts at once.
    pub wake_processor: Arc<Notify>,
    /// Poked when emails are queued.
    pub wake_outbox: Arc<Notify>,
}

#[derive(Template)]
#[template(path = "email/assistance_admin.txt")]
struct AdminText<'a> {
    d: &'a dossier::Dossier,
    link: &'a str,
}

#[derive(Template)]
#[template(path = "email/assistance_admin.html")]
struct AdminHtml<'a> {
    d: &'a dossier::Dossier,
    link: &'a str,
}

impl Assistance {
    /// Accept a request. Returns its reference once it is stored durably.
    #[tracing::instrument(skip_all)]
    pub async fn submit(
        &self,
        email: &str,
        problem: &str,
        description: &str,
        ctx: &RequestContext,
    ) -> Result<ReferenceId, SubmitError> {
        let started = Instant::now();
        let email = EmailAddress::parse(email)?;
        let problem = ProblemType::parse(problem)?;
        let description = Description::parse(description)?;
        let settings = &self.signin.settings.assistance;
        let now = self.signin.now();

        let email_bucket = TokenHash::of(&self.signin.keys, "rate-limit-email", email.as_str()).0;
        let limits = [
            (format!("assistance:ip:{}", rate_limit::client_key(ctx.ip)), settings.per_ip),
            (format!("assistance:email:{email_bucket}"), settings.per_email),
            ("assistance:global".to_owned(), settings.global),
        ];
        let buckets: Vec<RateBucket> = limits
            .iter()
            .map(|(key, limit)| RateBucket {
                key: key.clone(),
                window_start: limit.window_start(now),
                max: i64::from(limit.max),
            })
            .collect();
        // A refused request is charged to no bucket: otherwise a flood from one client would spend the
        // global budget and the budgets of the addresses it names, locking out everyone else.
        if let RateCharge::Refused { full } = self.signin.store.take_rate_limits(&buckets).await? {
            let retry_after =
                full.iter().filter_map(|i| limits.get(*i)).map(|(_, limit)| limit.retry_after(now)).max().unwrap_or(1);
            return Err(SubmitError::RateLimited { retry_after });
        }

        let mut reference = ReferenceId::generate();
        for attempt in 0.. {
            let request = NewAssistanceRequest {
                reference: reference.clone(),
                submitted_email: email.to_string(),
                problem,
                description: description.as_ref().map(|d| d.as_str().to_owned()),
                client_ip: ctx.ip.to_string(),
                user_agent: ctx.user_agent.chars().take(512).collect(),
                created_at: now,
            };
            match self.signin.store.insert_assistance_request(&request).await {
                Ok(()) => break,
                // 30^8 references: a collision is rare, two in a row rarer still.
                Err(StoreError::Conflict(_)) if attempt < 3 => reference = ReferenceId::generate(),
                Err(e) => return Err(e.into()),
            }
        }
        self.wake_processor.notify_one();
        let floor = Duration::from_millis(u64::from(settings.response_floor_ms));
        if let Some(rest) = floor.checked_sub(started.elapsed()) {
            tokio::time::sleep(rest).await;
        }
        Ok(reference)
    }

    /// Process requests until the process ends.
    pub async fn run_processor(self: Arc<Self>) {
        loop {
            match self.process_next().await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => tracing::warn!("assistance processing: {e}"),
            }
            tokio::select! {
                () = self.wake_processor.notified() => {},
                () = tokio::time::sleep(Duration::from_secs(2)) => {},
            }
        }
    }

    /// Claim and process one stored request; false when there was none.
    pub async fn process_next(&self) -> Result<bool, StoreError> {
        let store = &self.signin.store;
        let now = self.signin.now();
        let lease = i64::from(self.signin.settings.assistance.processing_lease_seconds);
        let Some(request) = store.claim_received_request(now, lease).await? else { return Ok(false) };
        let resolved = self.resolve(&request.submitted_email).await?;
        let facts = self.gather(&request, resolved).await?;
        let dossier = dossier::build(&facts, now);
        let recipients = self.recipients().await?;
        let link =
            format!("{}/console/requests/{}", self.signin.settings.public_url.trim_end_matches('/'), request.reference);
        let domain = crate::mail::sender_domain(&self.signin.settings.mail_from);
        let text = AdminText { d: &dossier, link: &link }.render().map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let html = AdminHtml { d: &dossier, link: &link }.render().map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let subject = format!(
            "Access assistance request {}: {} ({})",
            dossier.reference, dossier.request_type, dossier.submitted_email
        );
        let emails =
            recipients.iter().map(|to| OutgoingEmail::new(&domain, to, &subject, text.clone(), html.clone())).collect();
        let processed = Processed {
            person_id: resolved.map(|(person, _)| person),
            account_id: resolved.and_then(|(_, account)| account),
            dossier_json: serde_json::to_string(&dossier).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            notified: recipients,
            emails,
        };
        let repeat_since = now - i64::from(self.signin.settings.assistance.repeat_window_seconds);
        let outcome = store.complete_assistance_request(request.id, &processed, repeat_since, now).await?;
        if outcome == ProcessOutcome::Opened {
            self.wake_outbox.notify_one();
        }
        Ok(true)
    }

    /// Everyone who may view requests, active, with a valid email (every stored email is valid).
    async fn recipients(&self) -> Result<Vec<String>, StoreError> {
        let settings = &self.signin.settings.permissions;
        let min = settings.view_requests.dpa;
        let mut out = Vec::new();
        for (email, grant) in self.signin.store.notification_recipients(min).await? {
            if crate::policy::permissions::allows(&grant, Permission::ViewRequests, settings) {
                out.push(email);
            }
        }
        Ok(out)
    }

    /// The person and sign-in account an email address belongs to.
    async fn resolve(&self, email: &str) -> Result<Option<(i64, Option<i64>)>, StoreError> {
        let Ok(email) = EmailAddress::parse(email) else { return Ok(None) };
        let Some(person) = self.signin.store.person_by_email(&email).await? else { return Ok(None) };
        let accounts = self.signin.store.accounts_of(person.id).await?;
        let account = accounts.iter().find(|a| a.source != AccountSource::Sso).or(accounts.first()).map(|a| a.id);
        Ok(Some((person.id, account)))
    }

    async fn gather(
        &self,
        request: &crate::store::AssistanceRequest,
        resolved: Option<(i64, Option<i64>)>,
    ) -> Result<dossier::Facts, StoreError> {
        let store = &self.signin.store;
        let ip: std::net::IpAddr = request.client_ip.parse().unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]));
        let location = self.signin.geo.locate(ip);
        let mut facts = dossier::Facts {
            reference: request.reference.clone(),
            submitted_email: request.submitted_email.clone(),
            problem_label: ProblemType::parse(&request.problem).map(|p| p.label().to_owned()).unwrap_or_default(),
            description: request.description.clone(),
            created_at: request.created_at,
            request_ip: request.client_ip.clone(),
            request_location: location.clone(),
            ..Default::default()
        };
        let Some((person_id, Some(account_id))) = resolved else { return Ok(facts) };
        let (Some(person), Some(account)) = (store.person(person_id).await?, store.account(account_id).await?) else {
            return Ok(facts);
        };
        let now = self.signin.now();
        facts.person = Some(dossier::PersonFacts {
            display_name: person.display_name.clone(),
            email: person.email.to_string(),
            username: account.username.clone(),
            source: account.source.to_string(),
            active: person.status == PersonStatus::Active,
            locked: account.lock().is_locked(now),
            lock_reason: account.lock_reason.map(|r| r.to_string()),
            mfa_enabled: store.totp(account.id).await?.is_some_and(|t| t.confirmed_at.is_some()),
            backup_codes_unused: store.unused_backup_codes(account.id).await?,
            password_changed_at: account.password_changed_at,
            account_created_at: account.created_at,
        });
        facts.sign_ins = store.recent_sign_ins(account.id, 100).await?;
        facts.authenticator_changes = store.authenticator_changes(account.id, 50).await?;
        facts.last_access_email =
            store.last_audit_action(account.id, &["send-access-email", "send-magic-link"]).await?;
        facts.last_recovery_code =
            store.last_audit_action(account.id, &["send-recovery-code", "send-one-time-password"]).await?;
        let (ip_seen, network_seen) =
            store.seen_before(account.id, &request.client_ip, &location.network, request.created_at).await?;
        facts.ip_seen_before = ip_seen;
        facts.network_seen_before = network_seen;
        Ok(facts)
    }

    /// Requests for the queue: open first; `""` for a filter means all.
    pub async fn list(&self, status: &str, problem: &str) -> Result<Vec<crate::store::AssistanceRequest>, StoreError> {
        self.signin.store.assistance_requests(Some(status), Some(problem), 500).await
    }

    pub async fn find(&self, reference: &ReferenceId) -> Result<Option<crate::store::AssistanceRequest>, StoreError> {
        self.signin.store.assistance_request(reference.as_str()).await
    }

    /// Resolve or dismiss an open request, as `actor`, with a note; audited.
    pub async fn close(&self, actor: &Actor, reference: &str, resolve: bool, note: &str) -> Result<bool, StoreError> {
        let (status, action) =
            if resolve { ("resolved", "assistance.resolve") } else { ("dismissed", "assistance.dismiss") };
        let mut audit = AuditEntry::new(self.signin.now(), actor, action, "success").details(note.to_owned());
        audit.reference = Some(reference.to_owned());
        if let Some(request) = self.signin.store.assistance_request(reference).await? {
            audit.subject_person_id = request.person_id;
            audit.subject_account_id = request.account_id;
        }
        self.signin.store.close_assistance_request(reference, status, note, &audit).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let text = AdminText { d: &d, link: "http://x/console/requests/AR-7KQ2-MX4P" }
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
        let html = AdminHtml { d: &d, link: "http://x" }.render().unwrap_or_else(|e| panic!("{e}"));
        assert!(!html.contains("<a href=\"https://evil"), "{html}");
        let flags = html.find("Risk flags").unwrap_or(usize::MAX);
        let quoted = html.find("<blockquote").unwrap_or(0);
        assert!(flags < quoted, "{html}");
        assert!(html.contains("&#60;a href=") && html.contains("<br>line two"), "{html}");
    }
}
