//! Access assistance requests ("Can't sign in?", SPEC §3).
//!
//! Submitting does as little as possible, and the same for every email address: check the input, count the
//! rate limits, store the request (with its audit row), answer no sooner than the response floor. Everything
//! that depends on whether the address belongs to someone — resolving the account, the dossier, emailing the
//! admins — happens afterwards in [`Assistance::process_next`], run by a background task on every instance.

pub mod dossier;
pub mod notify;
pub mod quote;

use crate::audit::{Actor, AuditEntry};
use crate::authz::{CloseRequest, Proof, ViewRequests};
use crate::crypto::TokenHash;
use crate::domain::{
    AccountId, AccountSource, Description, EmailAddress, ParseError, PersonId, PersonStatus, ProblemType, ReferenceId,
    RequestStatus, Timestamp,
};
use crate::policy::lockout::LockState;
use crate::policy::permissions::Permission;
use crate::policy::{self, rate_limit};
use crate::services::Core;
use crate::signin::RequestContext;
use crate::store::{
    AssistanceStore, CredentialStore, DirectoryStore, EventStore, NewAssistanceRequest, ProcessOutcome, Processed,
    RateBucket, RateCharge, RateLimitStore, StoreError,
};
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

/// How far a request has come, as its reference holder may see it. Resolved and dismissed are one state
/// here: which of the two it was is for the admins (it says something about the account).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PublicState {
    /// Stored; not yet looked at by Lifeline.
    Received,
    /// Waiting for an administrator.
    Open,
    /// An administrator has closed it.
    Closed,
}

impl PublicState {
    pub fn explanation(self, joined: bool) -> &'static str {
        match (self, joined) {
            (Self::Received, _) => "Your request has been received and is about to be passed to the administrators.",
            (Self::Open, false) => {
                "Your request is with the administrators. One of them will contact you through a separate channel."
            }
            (Self::Open, true) => {
                "Your request repeats one that was already with the administrators, and was added to it. One of them will contact you through a separate channel."
            }
            (Self::Closed, _) => {
                "An administrator has closed this request. If you still cannot sign in, ask again or contact your helpdesk."
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestState {
    pub reference: String,
    pub state: PublicState,
    /// The request was added to an earlier one; `state` is that request's.
    pub joined: bool,
}

/// A submission as the console and emails list it; from its dossier when it has one (requests processed
/// before dossiers were kept for repeats have only their row).
fn submission_of(row: &crate::store::AssistanceRequest) -> dossier::Submission {
    match row.dossier.as_deref().and_then(|d| serde_json::from_str::<dossier::Dossier>(d).ok()) {
        Some(d) => dossier::Submission::of(&d),
        None => dossier::Submission {
            reference: row.reference.clone(),
            submitted_at: dossier::when(row.created_at),
            context: vec![
                ("IP address".into(), row.client_ip.clone()),
                ("Network".into(), row.network.clone().unwrap_or_else(|| "unknown".into())),
            ],
            description: row.description.clone(),
        },
    }
}

/// The store capabilities assistance requests use.
pub trait AssistanceServiceStore:
    AssistanceStore + RateLimitStore + DirectoryStore + CredentialStore + EventStore + crate::store::PasskeyStore
{
}
impl<T: AssistanceStore + RateLimitStore + DirectoryStore + CredentialStore + EventStore + crate::store::PasskeyStore>
    AssistanceServiceStore for T
{
}

pub struct Assistance {
    core: Arc<Core>,
    store: Arc<dyn AssistanceServiceStore>,
    /// Renders the admins' emails (templates live outside the core).
    letters: Arc<dyn notify::Letters>,
    /// Poked when a request is stored, so processing starts at once.
    pub wake_processor: Arc<Notify>,
    /// Poked when emails are queued.
    pub wake_outbox: Arc<Notify>,
    /// When this instance last accepted a request (milliseconds since `started`): processing yields to intake
    /// while requests are arriving.
    last_accepted: std::sync::atomic::AtomicU64,
    started: Instant,
}

/// Requests accepted within this long mean intake is busy…
const INTAKE_BUSY: Duration = Duration::from_millis(50);
/// …and the processor pauses this long after each request it processes meanwhile. Accepting a request is what
/// the person waits for; its dossier and admin emails can follow a moment later. Without the pause, a flood
/// of 4,000 requests on 2 cores was accepted at 0.28 of the durable insert rate, the processor taking the rest.
const PROCESSOR_YIELD: Duration = Duration::from_millis(20);

impl Assistance {
    pub(crate) fn new(
        core: Arc<Core>,
        store: Arc<dyn AssistanceServiceStore>,
        letters: Arc<dyn notify::Letters>,
    ) -> Self {
        Self {
            core,
            store,
            letters,
            wake_processor: Arc::new(Notify::new()),
            wake_outbox: Arc::new(Notify::new()),
            last_accepted: std::sync::atomic::AtomicU64::new(0),
            started: Instant::now(),
        }
    }

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
        let settings = &self.core.settings.assistance;
        let now = self.core.now();

        let email_bucket = TokenHash::of(&self.core.keys, "rate-limit-email", email.as_str()).0;
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
        // The limits are charged and the request stored in one transaction. A refused request is charged to no
        // bucket: otherwise a flood from one client would spend the global budget and the budgets of the
        // addresses it names, locking out everyone else.
        let mut reference = ReferenceId::from_code(&crate::crypto::typed_code(2));
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
            match self.store.insert_assistance_request_charged(&buckets, &request).await {
                Ok(RateCharge::Taken) => break,
                Ok(RateCharge::Refused { full }) => {
                    let retry_after = full
                        .iter()
                        .filter_map(|i| limits.get(*i))
                        .map(|(_, limit)| limit.retry_after(now))
                        .max()
                        .unwrap_or(1);
                    return Err(SubmitError::RateLimited { retry_after });
                }
                // 30^8 references: a collision is rare, two in a row rarer still (the charge went with it).
                Err(StoreError::Conflict(_)) if attempt < 3 => {
                    reference = ReferenceId::from_code(&crate::crypto::typed_code(2))
                }
                Err(e) => return Err(e.into()),
            }
        }
        metrics::counter!("lifeline_assistance_requests_total", "type" => problem.as_str()).increment(1);
        let since_start = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_accepted.store(since_start.max(1), std::sync::atomic::Ordering::Relaxed);
        self.wake_processor.notify_one();
        let floor = Duration::from_millis(u64::from(settings.response_floor_ms));
        if let Some(rest) = floor.checked_sub(started.elapsed()) {
            tokio::time::sleep(rest).await;
        }
        Ok(reference)
    }

    /// Process requests until the process ends.
    pub async fn run_processor(self: Arc<Self>) {
        let mut processed = 0u32;
        loop {
            let busy = match self.process_next().await {
                Ok(busy) => busy,
                Err(e) => {
                    tracing::warn!("assistance processing: {e}");
                    false
                }
            };
            // Digests go out when the queue is drained, and now and then during a steady flood.
            processed = if busy { processed.wrapping_add(1) } else { 0 };
            if busy && self.intake_busy() {
                tokio::time::sleep(PROCESSOR_YIELD).await;
            }
            if busy && !processed.is_multiple_of(50) {
                continue;
            }
            if let Err(e) = self.send_due_digest().await {
                tracing::warn!("assistance digest: {e}");
            }
            if busy {
                continue;
            }
            tokio::select! {
                () = self.wake_processor.notified() => {},
                () = tokio::time::sleep(Duration::from_secs(2)) => {},
            }
        }
    }

    /// Has this instance accepted a request within `INTAKE_BUSY`?
    fn intake_busy(&self) -> bool {
        let last = self.last_accepted.load(std::sync::atomic::Ordering::Relaxed);
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        last > 0 && now.saturating_sub(last) < INTAKE_BUSY.as_millis() as u64
    }

    /// Claim and process one stored request; false when there was none.
    pub async fn process_next(&self) -> Result<bool, StoreError> {
        let store = &self.store;
        let now = self.core.now();
        let settings = &self.core.settings;
        let lease = i64::from(settings.assistance.processing_lease_seconds);
        let Some(request) = store.claim_received_request(now, lease).await? else { return Ok(false) };
        let resolved = self.resolve(&request.submitted_email).await?;
        let facts = self.gather(&request, resolved).await?;
        let dossier = dossier::build(&facts, now);
        let recipients = self.recipients().await?;
        let mail = notify::Composer::new(settings, self.letters.clone());
        let repeat_since = now - i64::from(settings.assistance.repeat_window_seconds);
        // The emails depend on whether the request joins an open one, which only the store can settle
        // (under its lock). Compose for what is there now; if another repeat gets in first, compose again.
        // Decided once, the first time there is something to tell the admins: new, or from somewhere new.
        let mut digest_due_at: Option<Option<Timestamp>> = None;
        for _ in 0..5 {
            let open =
                store.open_request_like(&request.submitted_email, &request.problem, repeat_since, request.id).await?;
            let (joins, mut emails) = match &open {
                None => (None, mail.opening(&dossier, &recipients)?),
                Some(open) => {
                    let earlier = store.assistance_submissions(open.id).await?;
                    let sources: Vec<(Option<&str>, Option<&str>)> =
                        earlier.iter().map(|r| (r.network.as_deref(), r.country.as_deref())).collect();
                    let location = &facts.request_location;
                    let emails =
                        if dossier::from_somewhere_new(&sources, &location.network, location.country.as_deref()) {
                            let mut submissions: Vec<dossier::Submission> = earlier.iter().map(submission_of).collect();
                            submissions.push(dossier::Submission::of(&dossier));
                            mail.update(open, &dossier, &submissions, &recipients)?
                        } else {
                            Vec::new()
                        };
                    (Some((open.id, open.repeat_count)), emails)
                }
            };
            let due = if emails.is_empty() {
                None
            } else {
                match digest_due_at {
                    Some(due) => due,
                    None => *digest_due_at.insert(self.digest_decision(now).await?),
                }
            };
            if due.is_some() {
                emails.clear();
            }
            let processed = Processed {
                person_id: resolved.map(|(person, _)| person),
                account_id: resolved.and_then(|(_, account)| account),
                dossier_json: serde_json::to_string(&dossier).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                network: facts.request_location.network.clone(),
                country: facts.request_location.country.clone(),
                joins,
                notified: recipients.clone(),
                emails,
                digest_due_at: due,
            };
            match store.complete_assistance_request(request.id, &processed, repeat_since, now).await? {
                ProcessOutcome::Stale => continue,
                _ => {
                    if !processed.emails.is_empty() {
                        self.wake_outbox.notify_one();
                    }
                    return Ok(true);
                }
            }
        }
        // Still racing after several tries: leave it; the lease runs out and it is processed afresh.
        tracing::warn!(reference = %request.reference, "assistance request left for a later attempt");
        Ok(true)
    }

    /// Count one notification for the admins; `Some(due)` when it must wait for the digest due then.
    async fn digest_decision(&self, now: Timestamp) -> Result<Option<Timestamp>, StoreError> {
        let settings = self.core.settings.assistance.digest;
        let (this, previous) = policy::digest::intervals(now, settings.interval_seconds);
        let (this, previous) = self.store.count_in_window("assistance:notify", this, previous).await?;
        Ok((!policy::digest::individual(this, previous, settings.individual_per_interval))
            .then(|| policy::digest::due_at(now, settings.interval_seconds)))
    }

    /// Send the digest of the requests put off for it, if one is due; returns how many it covered.
    pub async fn send_due_digest(&self) -> Result<usize, StoreError> {
        let store = &self.store;
        let now = self.core.now();
        for _ in 0..3 {
            let due = store.digest_due(now).await?;
            let Some(last) = due.last() else { return Ok(0) };
            let recipients = self.recipients().await?;
            let mut items = Vec::with_capacity(due.len().min(notify::DIGEST_LISTED));
            for row in due.iter().take(notify::DIGEST_LISTED) {
                let joined_to = match row.joined_to {
                    Some(id) => store.assistance_request_by_id(id).await?.map(|r| r.reference),
                    None => None,
                };
                items.push(notify::DigestItem::of(row, joined_to));
            }
            let settings = &self.core.settings;
            let emails = notify::Composer::new(settings, self.letters.clone()).digest(
                &items,
                due.len(),
                &settings.assistance.digest,
                &recipients,
            )?;
            let references: Vec<&str> = due.iter().map(|r| r.reference.as_str()).collect();
            let audit = AuditEntry::new(now, &Actor::System, "assistance.digest", "sent")
                .details(serde_json::json!({ "requests": due.len(), "references": references }).to_string());
            if store.complete_digest(last.id, due.len(), &recipients, &emails, &audit, now).await? {
                if !emails.is_empty() {
                    self.wake_outbox.notify_one();
                }
                return Ok(due.len());
            }
        }
        Ok(0)
    }

    /// Everyone who may view requests, active, with a valid email (every stored email is valid).
    async fn recipients(&self) -> Result<Vec<String>, StoreError> {
        let settings = &self.core.settings.permissions;
        let min = settings.view_requests.dpa;
        let mut out = Vec::new();
        for (email, grant) in self.store.notification_recipients(min).await? {
            if crate::policy::permissions::allows(&grant, Permission::ViewRequests, settings) {
                out.push(email);
            }
        }
        Ok(out)
    }

    /// The person and sign-in account an email address belongs to.
    async fn resolve(&self, email: &str) -> Result<Option<(PersonId, Option<AccountId>)>, StoreError> {
        let Ok(email) = EmailAddress::parse(email) else { return Ok(None) };
        let Some(person) = self.store.person_by_email(&email).await? else { return Ok(None) };
        let accounts = self.store.accounts_of(person.id).await?;
        let account = accounts.iter().find(|a| a.source != AccountSource::Sso).or(accounts.first()).map(|a| a.id);
        Ok(Some((person.id, account)))
    }

    async fn gather(
        &self,
        request: &crate::store::AssistanceRequest,
        resolved: Option<(PersonId, Option<AccountId>)>,
    ) -> Result<dossier::Facts, StoreError> {
        let store = &self.store;
        let ip: std::net::IpAddr = request.client_ip.parse().unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]));
        let location = self.core.geo.locate(ip);
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
        // One source asking about several people is a warning sign whether or not this address has an account.
        facts.same_source = store
            .requests_from_source(
                &request.client_ip,
                &location.network,
                request.created_at - 86_400,
                &request.submitted_email,
            )
            .await?
            .into_iter()
            .map(|r| dossier::SourceRequest {
                submitted_email: r.submitted_email,
                client_ip: r.client_ip,
                network: r.network,
                at: r.created_at,
            })
            .collect();
        let Some((person_id, Some(account_id))) = resolved else { return Ok(facts) };
        let (Some(person), Some(account)) = (store.person(person_id).await?, store.account(account_id).await?) else {
            return Ok(facts);
        };
        let now = self.core.now();
        facts.person = Some(dossier::PersonFacts {
            display_name: person.display_name.clone(),
            email: person.email.to_string(),
            username: account.username.clone(),
            source: account.source.to_string(),
            active: person.status == PersonStatus::Active,
            locked: LockState::of(&account).is_locked(now),
            lock_reason: account.lock_reason.map(|r| r.to_string()),
            mfa_enabled: store.totp(account.id).await?.is_some_and(|t| t.confirmed_at.is_some()),
            backup_codes_unused: store.unused_backup_codes(account.id).await?,
            passkeys: store
                .passkeys(account.id)
                .await?
                .into_iter()
                .map(|p| match p.last_used_at {
                    Some(at) => format!("{} (last used {})", p.name, dossier::when(at)),
                    None => format!("{} (never used)", p.name),
                })
                .collect(),
            password_changed_at: account.password_changed_at,
            account_created_at: account.created_at,
            phone: person.phone.clone(),
            manager: match person.manager_id {
                Some(id) => store.person(id).await?.map(|m| format!("{} <{}>", m.display_name, m.email)),
                None => None,
            },
            locked_until: account.locked_until.filter(|_| LockState::of(&account).is_locked(now)),
        });
        facts.sign_ins = store.recent_sign_ins(account.id, 100).await?;
        facts.authenticator_changes = store.authenticator_changes(account.id, 50).await?;
        facts.last_access_email =
            store.last_audit_action(account.id, &["send-access-email", "send-magic-link"]).await?;
        facts.last_recovery_code =
            store.last_audit_action(account.id, &["send-recovery-code", "send-one-time-password"]).await?;
        let every: Vec<&str> = crate::policy::permissions::RecoveryAction::ALL.iter().map(|a| a.name()).collect();
        facts.last_recovery_action = store.last_audit_action(account.id, &every).await?;
        let (ip_seen, network_seen) =
            store.seen_before(account.id, &request.client_ip, &location.network, request.created_at).await?;
        facts.ip_seen_before = ip_seen;
        facts.network_seen_before = network_seen;
        Ok(facts)
    }

    /// Requests for the queue: open first; no status, or `""` for the problem, means all.
    pub async fn list(
        &self,
        _proof: &Proof<ViewRequests>,
        status: Option<RequestStatus>,
        problem: &str,
    ) -> Result<Vec<crate::store::AssistanceRequest>, StoreError> {
        self.store.assistance_requests(status, Some(problem), 500).await
    }

    pub async fn find(
        &self,
        _proof: &Proof<ViewRequests>,
        reference: &ReferenceId,
    ) -> Result<Option<crate::store::AssistanceRequest>, StoreError> {
        self.store.assistance_request(reference.as_str()).await
    }

    /// For the console: the request a joined one belongs to, and every submission of a request that
    /// others joined (the request itself first). Empty when nobody joined it.
    pub async fn related(
        &self,
        _proof: &Proof<ViewRequests>,
        request: &crate::store::AssistanceRequest,
    ) -> Result<(Option<crate::store::AssistanceRequest>, Vec<dossier::Submission>), StoreError> {
        let store = &self.store;
        let joined_to = match request.joined_to {
            Some(id) => store.assistance_request_by_id(id).await?,
            None => None,
        };
        let submissions =
            if request.repeat_count > 0 { store.assistance_submissions(request.id).await? } else { Vec::new() };
        Ok((joined_to, submissions.iter().map(submission_of).collect()))
    }

    /// What the person holding `reference` may learn: how far the request it belongs to has come.
    pub async fn state(&self, reference: &ReferenceId) -> Result<Option<RequestState>, StoreError> {
        let store = &self.store;
        let Some(request) = store.assistance_request(reference.as_str()).await? else { return Ok(None) };
        let (status, joined) = match request.joined_to {
            Some(id) => {
                let target = store.assistance_request_by_id(id).await?;
                // A request joined to one that is gone (removed by retention) is as good as closed.
                (target.map(|t| t.status).unwrap_or(RequestStatus::Resolved), true)
            }
            None => (request.status, false),
        };
        let state = match status {
            RequestStatus::Received => PublicState::Received,
            RequestStatus::Open => PublicState::Open,
            RequestStatus::Joined | RequestStatus::Resolved | RequestStatus::Dismissed => PublicState::Closed,
        };
        Ok(Some(RequestState { reference: request.reference, state, joined }))
    }

    /// Resolve or dismiss an open request, as the proof's actor, with a note; audited.
    pub async fn close(
        &self,
        proof: Proof<CloseRequest>,
        reference: &str,
        resolve: bool,
        note: &str,
    ) -> Result<bool, StoreError> {
        let actor = proof.actor();
        let (status, action) = if resolve {
            (RequestStatus::Resolved, "assistance.resolve")
        } else {
            (RequestStatus::Dismissed, "assistance.dismiss")
        };
        let mut audit = AuditEntry::new(self.core.now(), actor, action, "success").details(note.to_owned());
        audit.reference = Some(reference.to_owned());
        if let Some(request) = self.store.assistance_request(reference).await? {
            audit.subject_person_id = request.person_id.map(i64::from);
            audit.subject_account_id = request.account_id.map(i64::from);
        }
        self.store.close_assistance_request(reference, status, note, &audit).await
    }
}
