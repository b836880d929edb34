//! Storage behind narrow capability traits. Each method that changes state is one transaction, so a
//! caller never sees half a change; counters and single-use secrets are changed with one conditional
//! statement, so two concurrent callers (or two instances) cannot both win.
//!
//! One SQL implementation (`SqlStore`, in the `lifeline-store` crate) serves SQLite and PostgreSQL through sqlx's `Any` driver:
//! the SQL is written once in the dialect both accept (`$n` placeholders in order, BIGINT and TEXT),
//! and each backend has its own migrations. Services never learn which backend they talk to.

use crate::audit::{AuditEntry, AuditHead, AuditRecord, UnreadableRow};
use crate::crypto::TokenHash;
use crate::domain::{
    Account, AccountId, AccountSource, DisplayName, EmailAddress, Grant, Person, PersonId, PersonStatus, RequestStatus,
    Timestamp, Username,
};
use crate::policy::lockout::LockoutPolicy;
use async_trait::async_trait;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was broken (an email or username already taken); the text says which.
    #[error("{0}")]
    Conflict(String),
    /// A reference that must exist does not (a manager's email, a person).
    #[error("{0}")]
    NotFound(String),
    /// The database failed (connection, statement); the text is the driver's.
    #[error("database error: {0}")]
    Database(String),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    /// The store was opened without the audit key (as `migrate` and `copy-db` do), so it cannot seal audit rows.
    #[error("this store was opened without the audit key, so it cannot write audit rows")]
    NoAuditKey,
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A person to create, with their first account.
#[derive(Debug, Clone)]
pub struct NewPerson {
    pub display_name: DisplayName,
    pub email: EmailAddress,
    pub username: Username,
    pub source: AccountSource,
    pub manager_email: Option<EmailAddress>,
    pub department: Option<String>,
    pub phone: Option<String>,
    pub status: PersonStatus,
    pub password_hash: Option<String>,
    pub require_change_password: bool,
    pub grant: Grant,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureResult {
    pub failed_attempts: u32,
    /// This failure locked the account.
    pub locked_now: bool,
}

/// What presenting a one-time code did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeUse {
    /// Used up now, and the sign-in completed with it.
    Used,
    /// No such unused code (or a replayed TOTP step).
    NotAccepted,
    /// The code may be right, but the account is locked or disabled: nothing was used.
    Refused,
}

#[derive(Debug, Clone)]
pub struct TotpRecord {
    pub sealed_secret: Vec<u8>,
    pub confirmed_at: Option<Timestamp>,
    pub last_used_step: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStage {
    /// Password accepted; the second factor is still due.
    Mfa,
    /// Signed in with a password but no second factor yet, which policy requires: enrol first.
    EnrollMfa,
    /// Must choose a new password before anything else.
    ChangePassword,
    /// After an MFA reset: the password is right; a code emailed to the registered address is due before
    /// a new authenticator may be enrolled.
    DeviceAuthorization,
    /// A recovery code was redeemed on the public recovery page: the person may set a new password or
    /// remove their authenticator, nothing else.
    Recovering,
    /// An admin's enrolment code was redeemed: the person may add a passkey, nothing else.
    EnrollPasskey,
    Active,
}

impl SessionStage {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mfa => "mfa",
            Self::EnrollMfa => "enroll_mfa",
            Self::ChangePassword => "change_password",
            Self::DeviceAuthorization => "device_authorization",
            Self::Recovering => "recovering",
            Self::EnrollPasskey => "enroll_passkey",
            Self::Active => "active",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "mfa" => Self::Mfa,
            "enroll_mfa" => Self::EnrollMfa,
            "change_password" => Self::ChangePassword,
            "device_authorization" => Self::DeviceAuthorization,
            "recovering" => Self::Recovering,
            "enroll_passkey" => Self::EnrollPasskey,
            "active" => Self::Active,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub account_id: AccountId,
    pub stage: SessionStage,
    pub expires_at: Timestamp,
    /// When this session last proved a second factor (the step-up check reads it).
    pub second_factor_at: Option<Timestamp>,
    /// When the sign-in that made it began (its first factor).
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct SignInEvent {
    pub account_id: Option<AccountId>,
    #[schema(value_type = i64)]
    pub at: Timestamp,
    pub outcome: String,
    pub method: String,
    pub client_ip: String,
    pub city: Option<String>,
    pub country: Option<String>,
    pub asn: Option<u32>,
    pub network: String,
    pub user_agent: String,
}

/// An acting account as authorisation sees it ([`DirectoryStore::actor_record`]).
#[derive(Debug, Clone)]
pub struct ActorRecord {
    pub account: Account,
    pub person_status: PersonStatus,
    pub has_totp: bool,
    /// The account has a passkey (a second factor, and a sign-in on its own).
    pub has_passkey: bool,
    pub grant: Grant,
}

#[async_trait]
pub trait DirectoryStore: Send + Sync {
    /// Create a person, their first account and their grant; fails with `Conflict` on a taken email
    /// or username and `NotFound` on an unknown manager.
    async fn create_person(
        &self,
        new: &NewPerson,
        now: Timestamp,
        audit: &AuditEntry,
    ) -> StoreResult<(Person, Account)>;
    /// Create many people in one transaction: all or none. Managers may be earlier rows.
    async fn import_people(
        &self,
        rows: &[NewPerson],
        now: Timestamp,
        audit: &AuditEntry,
        progress: &(dyn Fn(usize) + Sync),
    ) -> StoreResult<usize>;
    async fn person(&self, id: PersonId) -> StoreResult<Option<Person>>;
    /// Does anyone report to `manager`?
    async fn has_reports(&self, manager: PersonId) -> StoreResult<bool>;
    /// Is `person` in the reporting line of `manager` (a report, a report's report, ...)?
    async fn manages(&self, manager: PersonId, person: PersonId) -> StoreResult<bool>;
    /// People of `manager`'s reporting line whose name, email or username contains `text` (any case), by
    /// name, at most `limit`.
    async fn search_reports(&self, manager: PersonId, text: &str, limit: i64) -> StoreResult<Vec<PersonHit>>;
    async fn person_by_email(&self, email: &EmailAddress) -> StoreResult<Option<Person>>;
    /// Which of `emails` some person has, and which of `usernames` some account has: an import's check of a
    /// million rows in a few thousand queries, not a million.
    async fn taken(
        &self,
        emails: &[&str],
        usernames: &[&str],
    ) -> StoreResult<(std::collections::HashSet<String>, std::collections::HashSet<String>)>;
    async fn accounts_of(&self, person: PersonId) -> StoreResult<Vec<Account>>;
    async fn account(&self, id: AccountId) -> StoreResult<Option<Account>>;
    /// The account that signs in with `login`: a username, or a person's email (their first account
    /// that has a password, i.e. not `sso`).
    async fn account_by_login(&self, login: &str) -> StoreResult<Option<Account>>;
    async fn grant(&self, person: PersonId) -> StoreResult<Grant>;
    /// What authorisation reads of an acting account, in one query (it is asked on every console page and
    /// API call): the account, its person's status, whether it has a confirmed authenticator, and the
    /// person's grant. `None`: no such account.
    async fn actor_record(&self, account: AccountId) -> StoreResult<Option<ActorRecord>>;
    /// A person's grant, in one query with the check that they exist (`None`: no such person).
    async fn person_grant(&self, person: PersonId) -> StoreResult<Option<Grant>>;
    async fn set_grant(&self, person: PersonId, grant: &Grant, audit: &AuditEntry) -> StoreResult<()>;
    async fn count_people(&self) -> StoreResult<i64>;
    async fn count_directory_admins(&self) -> StoreResult<i64>;
    /// People whose name, email or one of whose usernames contains `text` (case-insensitive; `""`: everyone),
    /// only those with an account locked at `now` when `locked_only`; by name, at most `limit` people, each
    /// with every account.
    /// `after`: the `sort_key` and id of the last person of the previous page (keyset pagination: a page
    /// never repeats or skips anyone while people are added or removed elsewhere in the list).
    async fn search_people(
        &self,
        text: &str,
        locked_only: bool,
        now: Timestamp,
        after: Option<(&str, PersonId)>,
        limit: i64,
    ) -> StoreResult<Vec<PersonHit>>;
}

/// A person found by a search, with their accounts.
#[derive(Debug, Clone)]
pub struct PersonHit {
    pub person: Person,
    pub accounts: Vec<AccountHit>,
    /// What the person may do (their rank decides who may act on them).
    pub grant: Grant,
    /// The name as the database orders it (its own lower case), for the next page's cursor.
    pub sort_key: String,
}

#[derive(Debug, Clone)]
pub struct AccountHit {
    pub account: Account,
    /// A confirmed authenticator.
    pub has_totp: bool,
    /// How many passkeys the account has.
    pub passkeys: u32,
}

#[async_trait]
pub trait CredentialStore: Send + Sync {
    /// A new password, with its audit row, ending every session of the account but `keep` in the same
    /// transaction (so no old session outlives the change); returns how many sessions ended.
    #[allow(clippy::too_many_arguments)]
    async fn set_password(
        &self,
        account: AccountId,
        hash: &str,
        require_change: bool,
        keep: Option<&TokenHash>,
        now: Timestamp,
        audit: &AuditEntry,
        notices: &Notices,
    ) -> StoreResult<u64>;
    /// Admit one sign-in attempt before it is checked: write `next` (the attempt counted as a failure, see
    /// [`LockoutPolicy::admit`]) only if the account's lockout fields still equal `seen`. False when
    /// another attempt changed them first: read again and decide again.
    async fn admit_attempt(
        &self,
        account: AccountId,
        seen: &crate::policy::lockout::AttemptState,
        next: &crate::policy::lockout::AttemptState,
    ) -> StoreResult<bool>;
    /// An admitted attempt failed: it is counted already; lock the account when the count reached the
    /// policy's limit, atomically. The attempt's event and a lock's audit row commit with it.
    async fn record_failure(
        &self,
        account: AccountId,
        policy: &LockoutPolicy,
        now: Timestamp,
        event: &SignInEvent,
    ) -> StoreResult<FailureResult>;
    /// An admitted attempt proved correct but the sign-in is not complete: give its count back (and its
    /// delay: `last_failed_at` returns to `previous_last_failed_at` if no other attempt moved it). False
    /// when the account was locked or its person disabled meanwhile: the attempt must not go on.
    async fn release_attempt(
        &self,
        account: AccountId,
        admitted_at: Timestamp,
        previous_last_failed_at: Option<Timestamp>,
        now: Timestamp,
    ) -> StoreResult<bool>;
    /// Give an admitted attempt back whatever the account's state (it was not a failure, though the step
    /// does not go on: a disabled person's right password, a busy hashing queue).
    async fn give_back_attempt(&self, account: AccountId) -> StoreResult<()>;
    /// A completed sign-in: the failure counter starts again. False (and nothing changed) when the account
    /// is locked or its person disabled: the sign-in must not complete.
    async fn reset_failures(&self, account: AccountId, now: Timestamp) -> StoreResult<bool>;
    /// An operator lifts a lock: lock fields and counters (sign-in and Q&A) cleared, `unlocked_by` and
    /// `unlocked_at` set, with its audit row. False when there was nothing to lift (no lock, no count).
    async fn unlock_account(
        &self,
        account: AccountId,
        unlocked_by: &str,
        now: Timestamp,
        audit: &AuditEntry,
    ) -> StoreResult<bool>;
    async fn totp(&self, account: AccountId) -> StoreResult<Option<TotpRecord>>;
    /// Bind a confirmed TOTP secret (confirmed with the code of `step`), replace the backup codes and
    /// clear the `enroll_mfa` requirement, with the audit row, in one transaction. False (nothing changed)
    /// when the account already has a confirmed authenticator, or — for a `self_service` enrolment, a
    /// sign-in step — when the account is locked or its person disabled (the system enrols regardless).
    #[allow(clippy::too_many_arguments)]
    async fn enrol_totp(
        &self,
        account: AccountId,
        sealed_secret: &[u8],
        step: i64,
        backup_codes: &[TokenHash],
        now: Timestamp,
        audit: &AuditEntry,
        self_service: bool,
        notices: &Notices,
    ) -> StoreResult<bool>;
    /// Record that the code of `step` was used and complete the sign-in (failures reset, `event` recorded),
    /// in one transaction: `Replayed` when that step (or a later one) was used already, `Refused` (nothing
    /// changed) when the account is locked or its person disabled.
    async fn use_totp_step(
        &self,
        account: AccountId,
        step: i64,
        now: Timestamp,
        event: &SignInEvent,
    ) -> StoreResult<CodeUse>;
    async fn replace_backup_codes(
        &self,
        account: AccountId,
        codes: &[TokenHash],
        now: Timestamp,
        audit: &AuditEntry,
        notices: &Notices,
    ) -> StoreResult<()>;
    /// Mark one unused backup code used and complete the sign-in, like [`CredentialStore::use_totp_step`].
    /// Exactly one of any number of concurrent callers with the same code gets `Used`.
    async fn consume_backup_code(
        &self,
        account: AccountId,
        code: &TokenHash,
        now: Timestamp,
        event: &SignInEvent,
    ) -> StoreResult<CodeUse>;
    async fn unused_backup_codes(&self, account: AccountId) -> StoreResult<i64>;
    async fn set_qa_answers(
        &self,
        account: AccountId,
        answer_hashes: &[String],
        now: Timestamp,
        audit: &AuditEntry,
        notices: &Notices,
    ) -> StoreResult<()>;
    async fn qa_answers(&self, account: AccountId) -> StoreResult<Vec<String>>;
    /// Admit one Q&A attempt before the answers are checked: counted as a failure straight away; false
    /// when Q&A reset is locked or every remaining attempt is already being checked.
    async fn admit_qa_attempt(&self, account: AccountId, policy: &LockoutPolicy) -> StoreResult<bool>;
    /// Give an admitted Q&A attempt back: it was not a wrong answer.
    async fn release_qa_attempt(&self, account: AccountId) -> StoreResult<()>;
    /// An admitted Q&A attempt failed (it is counted already); true when this failure locked Q&A reset.
    async fn record_qa_failure(&self, account: AccountId, policy: &LockoutPolicy, now: Timestamp) -> StoreResult<bool>;
    /// Self-service reset succeeded: new password, Q&A counter cleared, sessions ended. False (nothing
    /// changed) when the account is locked or its person disabled.
    async fn reset_password_by_qa(
        &self,
        account: AccountId,
        hash: &str,
        now: Timestamp,
        audit: &AuditEntry,
        notices: &Notices,
    ) -> StoreResult<bool>;
    /// Lock fields set directly (demo data, admin lock).
    async fn lock_account(
        &self,
        account: AccountId,
        reason: crate::domain::LockReason,
        now: Timestamp,
        audit: &AuditEntry,
    ) -> StoreResult<()>;
}

#[async_trait]
pub trait SessionStore: Send + Sync {
    async fn create_session(
        &self,
        token: &TokenHash,
        account: AccountId,
        stage: SessionStage,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> StoreResult<()>;
    /// The live session with this token. Not returned: expired sessions, sessions of a person who is not
    /// active, and sessions still signing in (any stage but `Active`) on a locked account. A completed
    /// session survives a lock by failures (a stranger's guesses must not sign the owner out); an
    /// operator's lock ends sessions.
    async fn session(&self, token: &TokenHash, now: Timestamp) -> StoreResult<Option<SessionRecord>>;
    /// Replace a session by a new token at a new stage (a sign-in step completed): the old token dies.
    async fn advance_session(
        &self,
        old: &TokenHash,
        new: &TokenHash,
        stage: SessionStage,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> StoreResult<bool>;
    async fn delete_session(&self, token: &TokenHash) -> StoreResult<()>;
    /// This session proved a second factor now (sign-in or a step-up).
    async fn mark_second_factor(&self, token: &TokenHash, now: Timestamp) -> StoreResult<()>;
    /// The sealed TOTP secret this session is enrolling, if any.
    async fn session_pending_totp(&self, token: &TokenHash) -> StoreResult<Option<Vec<u8>>>;
    /// Keep a new sealed TOTP secret with this session (replacing any earlier one of the session).
    async fn set_session_pending_totp(&self, token: &TokenHash, sealed: &[u8]) -> StoreResult<()>;
    /// Remove sessions that expired before `now`; returns how many.
    async fn delete_expired_sessions(&self, now: Timestamp) -> StoreResult<u64>;
}

#[async_trait]
pub trait EventStore: Send + Sync {
    async fn record_sign_in(&self, event: &SignInEvent) -> StoreResult<()>;
    async fn recent_sign_ins(&self, account: AccountId, limit: i64) -> StoreResult<Vec<SignInEvent>>;
    /// The account's authenticator record, newest first: every binding, replacement and removal (with who made
    /// it), and the newest `limit` uses (accepted sign-in steps, from the sign-in events still kept).
    async fn authenticator_record(&self, account: AccountId, limit: i64) -> StoreResult<Vec<AuthenticatorEvent>>;
}

/// One line of an account's authenticator record (NIST SP 800-63B-4 §4.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatorEvent {
    pub at: Timestamp,
    /// "password", "totp", "backup_codes", "passkey", "security_questions", or for a use the sign-in method
    /// ("backup_code", "recovery_code", ...).
    pub kind: String,
    /// "bound", "temporary", "removed" or "used".
    pub change: String,
    /// The audit actor who made the change ("account:7:ada", "system", "recovery:temporary_access_pass"); for a
    /// use, "self".
    pub actor: String,
    /// What the change names among several of its kind (a passkey's name).
    pub detail: Option<String>,
}

/// The master key's fingerprint, recorded once per database.
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// The recorded fingerprint, if any.
    async fn key_fingerprint(&self) -> StoreResult<Option<String>>;
    /// Record `fingerprint` unless one is recorded already; returns the one in force (another instance
    /// starting at the same moment may have recorded first).
    async fn record_key_fingerprint(&self, fingerprint: &str, now: Timestamp) -> StoreResult<String>;
    /// Whether the database holds anything a key protects (people's keyed codes, sealed secrets).
    async fn holds_data(&self) -> StoreResult<bool>;
    /// One sealed TOTP secret and its account, to try a key on.
    async fn any_sealed_secret(&self) -> StoreResult<Option<(AccountId, Vec<u8>)>>;
}

/// Failed sign-ins per client address, in fixed windows shared by every instance.
#[async_trait]
pub trait ThrottleStore: Send + Sync {
    /// Take one attempt from `bucket`'s window unless `max` are taken already; false when refused.
    async fn reserve_client_attempt(&self, bucket: &str, window_start: Timestamp, max: u32) -> StoreResult<bool>;
    /// Give back an attempt that succeeded.
    async fn release_client_attempt(&self, bucket: &str, window_start: Timestamp) -> StoreResult<()>;
    /// Remove windows that started before `before` (housekeeping, idempotent).
    async fn delete_old_throttle_windows(&self, before: Timestamp) -> StoreResult<u64>;
}

/// The audit log. Changes elsewhere write their audit rows in their own transaction; this trait appends
/// standalone entries, seals the chain and reads it back.
#[async_trait]
pub trait AuditStore: Send + Sync {
    async fn append_audit(&self, entry: &AuditEntry) -> StoreResult<i64>;
    /// Records with `id > after`, in chain order, at most `limit`. A row whose values cannot be read as their
    /// types is an error that names it.
    async fn audit_records(&self, after: i64, limit: i64) -> StoreResult<Vec<AuditRecord>> {
        self.audit_rows(after, limit)
            .await?
            .into_iter()
            .map(|row| row.map_err(|u| StoreError::Corrupt(format!("audit row {}: {}", u.id, u.problem))))
            .collect()
    }
    /// Like `audit_records`, but an unreadable row comes back as such, so a reader can name it and carry on.
    async fn audit_rows(&self, after: i64, limit: i64) -> StoreResult<Vec<Result<AuditRecord, UnreadableRow>>>;
    /// The newest `limit` records about a person (their activity log), newest first.
    async fn audit_about(&self, person: PersonId, limit: i64) -> StoreResult<Vec<AuditRecord>>;
    /// Records matching `filter`, newest first, at most `limit`.
    async fn audit_search(&self, filter: &AuditFilter, limit: i64) -> StoreResult<Vec<AuditRecord>>;
    /// The chain's head: the last id, its hash, and their seal.
    async fn audit_head(&self) -> StoreResult<AuditHead>;
    /// Seal the head with the audit key if it never was (a new database, or one from before the chain was keyed);
    /// run once at start, before anything is appended. See docs/decisions.md, "Audit chain".
    async fn seal_audit_chain(&self, now: Timestamp) -> StoreResult<Sealing>;
}

/// What the audit log page filters by (every field optional).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub person: Option<PersonId>,
    /// A part of the actor (`account:3:harry`, `system`, `public`), any case.
    pub actor: Option<String>,
    /// The action's name, or its start (`approval.` finds every approval row).
    pub action: Option<String>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
}

/// What [`AuditStore::seal_audit_chain`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sealing {
    /// Sealed before: nothing to do.
    AlreadySealed,
    /// An empty log: its head is sealed now.
    NewLog,
    /// A log from before the chain was keyed: its rows are pinned by a keyed `audit.seal` row (this id).
    PinnedLegacyRows { legacy_rows: i64, seal_row: i64 },
}

#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Claim up to `limit` due emails for `lease_seconds`; another claimer skips them until then.
    async fn claim_due_emails(
        &self,
        now: Timestamp,
        lease_seconds: i64,
        limit: i64,
    ) -> StoreResult<Vec<crate::email::QueuedEmail>>;
    /// Mark an email delivered, and clear its bodies (they carry live links and codes).
    async fn mark_email_sent(&self, id: i64, now: Timestamp) -> StoreResult<()>;
    async fn mark_email_failed(
        &self,
        id: i64,
        attempts: i64,
        next_attempt_at: Timestamp,
        error: &str,
    ) -> StoreResult<()>;
    /// (queued and not yet sent, sent)
    async fn outbox_counts(&self) -> StoreResult<(i64, i64)>;
    /// When the oldest email not yet sent was queued (given up on or not: either way someone waits for it).
    async fn oldest_unsent_email_at(&self) -> StoreResult<Option<Timestamp>>;
}

/// A submitted assistance request, as stored before the answer goes back.
#[derive(Debug, Clone)]
pub struct NewAssistanceRequest {
    pub reference: crate::domain::ReferenceId,
    pub submitted_email: String,
    pub problem: crate::domain::ProblemType,
    pub description: Option<String>,
    pub client_ip: String,
    pub user_agent: String,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct AssistanceRequest {
    pub id: i64,
    pub reference: String,
    pub submitted_email: String,
    pub problem: String,
    pub description: Option<String>,
    pub client_ip: String,
    pub user_agent: String,
    pub created_at: Timestamp,
    /// received (not yet processed), open, joined (a repeat of an open one), resolved, dismissed
    pub status: RequestStatus,
    pub joined_to: Option<i64>,
    pub repeat_count: i64,
    pub person_id: Option<PersonId>,
    pub account_id: Option<AccountId>,
    pub dossier: Option<String>,
    pub notified: Option<String>,
    pub closed_by: Option<String>,
    pub closed_at: Option<Timestamp>,
    pub close_note: Option<String>,
    /// Where the request came from, once processed.
    pub network: Option<String>,
    pub country: Option<String>,
}

/// How processing a request ends: it opens (with its dossier and the admins' emails), or joins an open one
/// (with an update email when it comes from somewhere new). The emails were composed for the situation the
/// caller saw (`joins`); the store applies them only if that is still the situation.
#[derive(Debug, Clone)]
pub struct Processed {
    pub person_id: Option<PersonId>,
    pub account_id: Option<AccountId>,
    pub dossier_json: String,
    pub network: String,
    pub country: Option<String>,
    /// The open request this one joins and its `repeat_count` as the caller read it, or `None` when the
    /// caller found none and composed the emails of a new request.
    pub joins: Option<(i64, i64)>,
    pub notified: Vec<String>,
    pub emails: Vec<crate::email::OutgoingEmail>,
    /// Instead of `emails` (empty then): the admins hear of this request in the digest due at this time.
    pub digest_due_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessOutcome {
    Opened,
    JoinedOpen {
        open_id: i64,
    },
    AlreadyProcessed,
    /// The open request to join is not the one the caller saw (another repeat joined it, or it was
    /// closed, or one opened meanwhile): nothing was written; compose again.
    Stale,
}

/// One rate-limit counter a request is charged to: its key, the start of its current window, and the
/// most hits that window may hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateBucket {
    pub key: String,
    pub window_start: Timestamp,
    pub max: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RateCharge {
    /// Every bucket had room and was charged one hit.
    Taken,
    /// Nothing was charged; these buckets (indexes into the caller's slice) are full.
    Refused { full: Vec<usize> },
}

/// Counters in fixed windows, shared by every instance: rate limits and flood detection.
#[async_trait]
pub trait RateLimitStore: Send + Sync {
    /// Charge one hit to every bucket, or to none: when any bucket's window is already full, nothing is
    /// charged. Atomic, so concurrent callers (on any instance) never take more than `max` between them.
    async fn take_rate_limits(&self, buckets: &[RateBucket]) -> StoreResult<RateCharge>;
    /// Count one event in the window of `key` that starts at `window_start`; returns the count of that
    /// window now and of the window starting at `previous` (0 when none).
    async fn count_in_window(&self, key: &str, window_start: Timestamp, previous: Timestamp)
    -> StoreResult<(i64, i64)>;
    /// Remove counter windows that started before `before` (housekeeping, idempotent).
    async fn delete_old_rate_limit_windows(&self, before: Timestamp) -> StoreResult<u64>;
}

#[async_trait]
pub trait AssistanceStore: Send + Sync {
    /// Store a request (and its audit row) durably.
    async fn insert_assistance_request(&self, request: &NewAssistanceRequest) -> StoreResult<()>;
    /// Charge `buckets` (all or none, as [`RateLimitStore::take_rate_limits`]) and store the request with its
    /// audit row, in one transaction: a refused request stores nothing and charges nothing, and an accepted one
    /// costs one commit, not two.
    async fn insert_assistance_request_charged(
        &self,
        buckets: &[RateBucket],
        request: &NewAssistanceRequest,
    ) -> StoreResult<RateCharge>;
    /// Claim the oldest unprocessed request for `lease_seconds`.
    async fn claim_received_request(
        &self,
        now: Timestamp,
        lease_seconds: i64,
    ) -> StoreResult<Option<AssistanceRequest>>;
    /// Finish processing in one transaction: a repeat of an open request (same email and problem, within
    /// `repeat_since`) joins it; otherwise the request opens with its dossier, and the admins' emails and
    /// the audit row are written with it. Runs are serialised across instances.
    async fn complete_assistance_request(
        &self,
        id: i64,
        processed: &Processed,
        repeat_since: Timestamp,
        now: Timestamp,
    ) -> StoreResult<ProcessOutcome>;
    async fn assistance_requests(
        &self,
        status: Option<RequestStatus>,
        problem: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<AssistanceRequest>>;
    async fn assistance_request(&self, reference: &str) -> StoreResult<Option<AssistanceRequest>>;
    /// How many requests wait for an admin (`open`) and since when the oldest of them has.
    async fn open_requests_waiting(&self) -> StoreResult<(i64, Option<Timestamp>)>;
    async fn assistance_request_by_id(&self, id: i64) -> StoreResult<Option<AssistanceRequest>>;
    /// The open request a new one with this email and problem would join (created at or after `since`).
    async fn open_request_like(
        &self,
        submitted_email: &str,
        problem: &str,
        since: Timestamp,
        except: i64,
    ) -> StoreResult<Option<AssistanceRequest>>;
    /// Requests from this IP or (once processed) this network created at or after `since` that name another
    /// address than `except_email`; newest first, at most 50.
    async fn requests_from_source(
        &self,
        ip: &str,
        network: &str,
        since: Timestamp,
        except_email: &str,
    ) -> StoreResult<Vec<AssistanceRequest>>;
    /// Every submission of a request: the request itself, then the repeats joined to it, oldest first.
    async fn assistance_submissions(&self, id: i64) -> StoreResult<Vec<AssistanceRequest>>;
    /// Requests (new ones, and repeats from somewhere new) whose digest is due by `now`, oldest first.
    async fn digest_due(&self, now: Timestamp) -> StoreResult<Vec<AssistanceRequest>>;
    /// Queue a digest in one transaction: the requests due by `now` up to `last_id` are marked notified, the
    /// emails and the audit row written. False, and nothing written, unless exactly `count` requests were
    /// waiting (another instance sent some of them meanwhile, or more became due): compose again.
    async fn complete_digest(
        &self,
        last_id: i64,
        count: usize,
        notified: &[String],
        emails: &[crate::email::OutgoingEmail],
        audit: &AuditEntry,
        now: Timestamp,
    ) -> StoreResult<bool>;
    /// Resolve or dismiss an open request, with its audit row; false when it was not open.
    async fn close_assistance_request(
        &self,
        reference: &str,
        status: RequestStatus,
        note: &str,
        audit: &AuditEntry,
    ) -> StoreResult<bool>;
    /// Active people with at least this DPA level: (email, grant), for the caller's permission check.
    async fn notification_recipients(&self, min_dpa: u8) -> StoreResult<Vec<(String, Grant)>>;
    /// When the account's authenticators last changed: (kind, change, at), newest first.
    async fn authenticator_changes(
        &self,
        account: AccountId,
        limit: i64,
    ) -> StoreResult<Vec<(String, String, Timestamp)>>;
    /// The newest audit time of any of `actions` on this account.
    async fn last_audit_action(&self, account: AccountId, actions: &[&str]) -> StoreResult<Option<Timestamp>>;
    /// Has this IP, or this network, been used for a successful sign-in to the account before `before`?
    async fn seen_before(
        &self,
        account: AccountId,
        ip: &str,
        network: &str,
        before: Timestamp,
    ) -> StoreResult<(bool, bool)>;
}

/// What kind of secret a recovery action (or a sign-in after one) handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    /// Send access email: a link to set a new password, with the username.
    AccessLink,
    /// Send magic link to change password.
    MagicLink,
    /// Send recovery code email: with the email address, on the public recovery page.
    RecoveryCode,
    /// Send one-time password: stands in for the password once.
    OneTimePassword,
    /// Issue temporary access pass: stands in for password and second factor.
    TemporaryAccessPass,
    /// The code emailed at the first sign-in after an MFA reset.
    DeviceCode,
    /// The "this wasn't me" link in a notification.
    NotMe,
    /// Issue enrolment code: lets the person add a passkey, no email needed.
    EnrolmentCode,
}

impl SecretKind {
    pub const ALL: [Self; 8] = [
        Self::AccessLink,
        Self::MagicLink,
        Self::RecoveryCode,
        Self::OneTimePassword,
        Self::TemporaryAccessPass,
        Self::DeviceCode,
        Self::NotMe,
        Self::EnrolmentCode,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::AccessLink => "access_link",
            Self::MagicLink => "magic_link",
            Self::RecoveryCode => "recovery_code",
            Self::OneTimePassword => "one_time_password",
            Self::TemporaryAccessPass => "temporary_access_pass",
            Self::DeviceCode => "device_code",
            Self::NotMe => "not_me",
            Self::EnrolmentCode => "enrolment_code",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A secret to store with the action that creates it (only its keyed hash).
#[derive(Debug, Clone)]
pub struct NewSecret {
    pub account: AccountId,
    pub kind: SecretKind,
    pub hash: TokenHash,
    pub expires_at: Timestamp,
    pub multi_use: bool,
    /// For a "this wasn't me" link: the action it reports.
    pub action: Option<String>,
    pub reference: Option<String>,
}

/// A live (or just redeemed) secret, as the store found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveSecret {
    pub account: AccountId,
    pub kind: SecretKind,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub used_at: Option<Timestamp>,
    /// Revoked by a later secret of its kind, a credential reset, a disabling or "this wasn't me".
    pub revoked_at: Option<Timestamp>,
    pub action: Option<String>,
}

/// The change a recovery action makes, applied with its secrets, emails and audit row in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecoveryChange {
    /// Lift the lock and clear the counters (sign-in and Q&A) of these accounts; `unlocked_by` is recorded.
    Unlock { accounts: Vec<AccountId>, unlocked_by: String },
    /// Remove the authenticator and backup codes (the MFA policy stays), end the sessions and revoke the
    /// live secrets; the next sign-in enrols again, after a device authorization when `device_authorization`.
    ResetMfa { account: AccountId, device_authorization: bool },
    /// Lift the security-question lock.
    UnlockQa { account: AccountId },
    /// Remove the security-question answers.
    UnenrollQa { account: AccountId },
    /// Enable or disable a person; disabling ends every session and revokes every live secret of theirs.
    SetStatus { person: PersonId, status: PersonStatus },
    /// Nothing but the secrets handed out (earlier live ones of the same kinds are revoked).
    Issue { account: AccountId },
}

/// What redeeming a secret does besides using it up, in the same transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedeemEffect {
    /// A new password (the hash), sessions ended.
    SetPassword(String),
    /// Signed in with a one-time password: a new password is due.
    RequireChangePassword,
    /// Signed in with a temporary access pass: the old authenticator goes, a new one is enrolled.
    ReplaceMfa,
    /// The device authorization after an MFA reset is done.
    DeviceAuthorized,
    /// "This wasn't me": the account is locked (`reported_not_me`), its sessions end, its live secrets die.
    ReportedNotMe,
    /// Only used up (a recovery code opens the recovery page).
    Nothing,
}

/// One redemption: the secret (by hash, of one of `kinds`, of `account` when given), its effect, and what
/// commits with it.
#[derive(Debug, Clone)]
pub struct Redemption<'a> {
    pub hash: &'a TokenHash,
    pub kinds: &'a [SecretKind],
    pub account: Option<AccountId>,
    pub effect: RedeemEffect,
    pub emails: &'a [crate::email::OutgoingEmail],
    /// The secrets those emails carry (a "this wasn't me" link's), stored after the effect.
    pub secrets: &'a [NewSecret],
    pub audit: &'a AuditEntry,
    pub event: Option<&'a SignInEvent>,
    pub now: Timestamp,
}

/// A four-eyes request as stored.
#[derive(Debug, Clone)]
pub struct Approval {
    pub id: i64,
    pub action: String,
    pub person: PersonId,
    pub requested_by_account: AccountId,
    pub requested_by: String,
    /// The action's form, as JSON.
    pub form: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub status: String,
    pub decided_by: Option<String>,
    pub decided_at: Option<Timestamp>,
}

/// Recovery actions, the secrets they hand out, and four-eyes approvals.
#[async_trait]
pub trait RecoveryStore: Send + Sync {
    /// Apply an action: its change (false, and nothing written, when there was nothing to change), the
    /// secrets it hands out, its emails and its audit row, and — when `resolve` names an open request — that
    /// request resolved, all in one transaction.
    async fn apply_recovery(
        &self,
        change: &RecoveryChange,
        secrets: &[NewSecret],
        emails: &[crate::email::OutgoingEmail],
        resolve: Option<&str>,
        audit: &AuditEntry,
        now: Timestamp,
    ) -> StoreResult<bool>;
    /// The secret with this hash, live or not (`None`: no such secret).
    async fn secret(&self, hash: &TokenHash) -> StoreResult<Option<LiveSecret>>;
    /// Use a secret up and apply its effect in one transaction: of any number of concurrent redemptions of
    /// one single-use secret exactly one gets `Some`. `None`, and nothing written, when the secret is unknown,
    /// of another kind or account, used, revoked or expired, or its person is not active (but for
    /// "this wasn't me", which a disabled person may still report).
    async fn redeem(&self, redemption: &Redemption<'_>) -> StoreResult<Option<LiveSecret>>;
    /// Store a four-eyes request with its audit row; returns its id.
    async fn create_approval(&self, approval: &Approval, audit: &AuditEntry) -> StoreResult<i64>;
    async fn approval(&self, id: i64) -> StoreResult<Option<Approval>>;
    /// Requests still pending (and not expired at `now`), oldest first.
    async fn pending_approvals(&self, now: Timestamp) -> StoreResult<Vec<Approval>>;
    /// Take a pending, unexpired request for running (status `running`): exactly one of concurrent callers
    /// gets true.
    async fn reserve_approval(&self, id: i64, now: Timestamp) -> StoreResult<bool>;
    /// Settle a request: `approved` or `failed` after running, `rejected` instead of running, or back to
    /// `pending` when running was refused before anything changed; with its audit row.
    async fn settle_approval(
        &self,
        id: i64,
        status: &str,
        decided_by: Option<&str>,
        now: Timestamp,
        audit: Option<&AuditEntry>,
    ) -> StoreResult<()>;
}

/// Removing personal data that has done its job. Each removal writes its audit row in its own
/// transaction; the audit log itself is never touched.
#[async_trait]
pub trait RetentionStore: Send + Sync {
    /// Remove sign-in events from before `before`; returns how many.
    async fn delete_sign_in_events_before(&self, before: Timestamp, audit: &AuditEntry) -> StoreResult<u64>;
    /// Remove resolved and dismissed requests closed before `before`, with the repeats joined to them;
    /// returns how many rows.
    async fn delete_closed_requests_before(&self, before: Timestamp, audit: &AuditEntry) -> StoreResult<u64>;
}

/// Whether storage answers, for the readiness probe.
#[async_trait]
pub trait Readiness: Send + Sync {
    async fn ready(&self) -> bool;
}

/// A personal API token as stored: never the token itself, only its keyed hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    pub id: i64,
    pub account: AccountId,
    pub name: String,
    pub expert: bool,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
}

impl ApiToken {
    /// `live`, `expired` or `revoked` at `now` (what the lists show; `use_token` decides the same in SQL).
    pub fn state(&self, now: Timestamp) -> &'static str {
        match (self.revoked_at, self.expires_at <= now) {
            (Some(_), _) => "revoked",
            (None, true) => "expired",
            (None, false) => "live",
        }
    }
}

/// What a new token is stored as.
#[derive(Debug, Clone)]
pub struct NewApiToken<'a> {
    pub account: AccountId,
    pub name: &'a str,
    pub hash: &'a TokenHash,
    pub expert: bool,
    pub expires_at: Timestamp,
}

/// Personal API tokens: made (with their audit row), listed, revoked, and found by hash for each call.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// Store a new token and its audit row in one transaction; returns its id.
    async fn create_token(&self, token: &NewApiToken<'_>, now: Timestamp, audit: &AuditEntry) -> StoreResult<i64>;
    /// The tokens of `account` (every account's when `None`), newest first.
    async fn tokens(&self, account: Option<AccountId>) -> StoreResult<Vec<ApiToken>>;
    async fn token(&self, id: i64) -> StoreResult<Option<ApiToken>>;
    /// The token with this hash if it is live at `now` (not revoked, not expired), marking it used.
    async fn use_token(&self, hash: &TokenHash, now: Timestamp) -> StoreResult<Option<ApiToken>>;
    /// Revoke a live token with its audit row; false when it was not live.
    async fn revoke_token(&self, id: i64, now: Timestamp, audit: &AuditEntry) -> StoreResult<bool>;
}

/// What a ticket is for (SPEC §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TicketKind {
    /// A manager reset a local account themself: the ticket records it and waits for "everything works".
    ManagerReset,
    /// A password Lifeline cannot set (a synchronized account): an engineer's work.
    PasswordReset,
}

impl TicketKind {
    pub const ALL: [Self; 2] = [Self::ManagerReset, Self::PasswordReset];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ManagerReset => "manager_reset",
            Self::PasswordReset => "password_reset",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// How far a ticket has come: `open` → `in_progress` → `resolved` → `confirmed` (by the requester).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TicketStatus {
    Open,
    InProgress,
    Resolved,
    Confirmed,
}

impl TicketStatus {
    pub const ALL: [Self; 4] = [Self::Open, Self::InProgress, Self::Resolved, Self::Confirmed];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::InProgress => "in_progress",
            Self::Resolved => "resolved",
            Self::Confirmed => "confirmed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s.trim())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    pub id: i64,
    pub reference: String,
    pub kind: TicketKind,
    pub requester: PersonId,
    pub subject: PersonId,
    pub subject_account: Option<AccountId>,
    pub status: TicketStatus,
    pub summary: String,
    pub assignee: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// One entry of a ticket's timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketNote {
    pub at: Timestamp,
    pub author: String,
    /// The status the ticket moved to with this note.
    pub status: Option<TicketStatus>,
    pub body: String,
}

/// A ticket to open, with its first note.
#[derive(Debug, Clone)]
pub struct NewTicket {
    pub reference: String,
    pub kind: TicketKind,
    pub requester: PersonId,
    pub subject: PersonId,
    pub subject_account: Option<AccountId>,
    pub status: TicketStatus,
    pub summary: String,
    pub author: String,
    pub note: String,
    /// The "everything works" link's keyed hash, when the ticket opens resolved.
    pub confirm_hash: Option<TokenHash>,
}

/// What a manager's reset changes on the account, in the ticket's transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagerResetChange {
    pub account: AccountId,
    /// A temporary password (its hash): set with a password change due at the next sign-in.
    pub password_hash: Option<String>,
    /// When the temporary password stops working (if it is not replaced before).
    pub password_until: Option<Timestamp>,
    /// Remove the authenticator and backup codes: the next sign-in enrols again.
    pub reset_mfa: bool,
    /// With the MFA removed and the password not replaced, the next sign-in first proves the mailbox (a device
    /// authorization code), as after an admin's MFA reset: whoever phished the old password cannot enrol.
    pub device_authorization: bool,
}

/// A secure link to store: it shows `sealed_password` (sealed with the master key) once.
#[derive(Debug, Clone)]
pub struct NewSecureLink {
    pub hash: TokenHash,
    pub manager_account: AccountId,
    pub subject_account: AccountId,
    pub sealed_password: Vec<u8>,
    pub expires_at: Timestamp,
}

/// A secure link as stored (without its password).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecureLink {
    pub id: i64,
    pub ticket: i64,
    pub manager_account: AccountId,
    pub subject_account: AccountId,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub used_at: Option<Timestamp>,
    /// Its password was wiped unused: a newer reset, a password change or "this wasn't me" made it stale.
    pub revoked: bool,
}

/// A change to a ticket: a note, maybe a new status (only from one of `from`), maybe an assignee, with its
/// emails and audit row.
#[derive(Debug, Clone)]
pub struct TicketChange<'a> {
    pub ticket: i64,
    pub from: &'a [TicketStatus],
    pub to: Option<TicketStatus>,
    pub assignee: Option<&'a str>,
    pub author: &'a str,
    pub note: &'a str,
    /// `Some(Some(h))`: the confirmation link's hash is now `h`; `Some(None)`: no link works any more.
    pub confirm_hash: Option<Option<&'a TokenHash>>,
    pub emails: &'a [crate::email::OutgoingEmail],
    pub audit: &'a AuditEntry,
    pub now: Timestamp,
}

/// A question to a person's line manager: is this request genuine?
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attestation {
    pub id: i64,
    pub subject: PersonId,
    pub manager: PersonId,
    pub requested_by_account: AccountId,
    pub requested_by: String,
    pub reference: Option<String>,
    pub question: String,
    /// `pending`, `confirmed` or `declined`.
    pub status: String,
    pub answer_note: Option<String>,
    pub answered_by: Option<String>,
    pub answered_at: Option<Timestamp>,
    pub answered_second_factor_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// An answer to an attestation.
#[derive(Debug, Clone)]
pub struct AttestationAnswer<'a> {
    pub id: i64,
    pub confirmed: bool,
    pub note: Option<&'a str>,
    pub answered_by: &'a str,
    pub second_factor_at: Option<Timestamp>,
    pub audit: &'a AuditEntry,
    pub now: Timestamp,
}

/// Managers' resets, secure links and tickets (SPEC §5).
#[async_trait]
pub trait TeamStore: Send + Sync {
    /// The reset, its ticket (and first note), its secure link, the person's "this wasn't me" secret, the
    /// emails and the audit row, in one transaction. Returns the ticket's id.
    #[allow(clippy::too_many_arguments)]
    async fn apply_manager_reset(
        &self,
        change: &ManagerResetChange,
        ticket: &NewTicket,
        link: Option<&NewSecureLink>,
        not_me: Option<&NewSecret>,
        emails: &[crate::email::OutgoingEmail],
        audit: &AuditEntry,
        now: Timestamp,
    ) -> StoreResult<i64>;
    async fn secure_link(&self, hash: &TokenHash) -> StoreResult<Option<SecureLink>>;
    /// Use the link: its sealed password if it was unused and live at `now` (then wiped), with the audit row;
    /// `None` — and nothing written — otherwise. Exactly one of concurrent callers gets the password.
    async fn use_secure_link(
        &self,
        hash: &TokenHash,
        now: Timestamp,
        audit: &AuditEntry,
    ) -> StoreResult<Option<Vec<u8>>>;
    /// Tickets of one status, or (`None`) every one not yet confirmed; of one requester, or all. Open first, then
    /// in progress, then the rest, most recently changed first within each.
    async fn tickets(
        &self,
        status: Option<TicketStatus>,
        requester: Option<PersonId>,
        limit: i64,
    ) -> StoreResult<Vec<Ticket>>;
    async fn ticket(&self, reference: &str) -> StoreResult<Option<Ticket>>;
    async fn ticket_by_id(&self, id: i64) -> StoreResult<Option<Ticket>>;
    async fn ticket_by_confirm_hash(&self, hash: &TokenHash) -> StoreResult<Option<Ticket>>;
    /// The timeline, oldest first.
    async fn ticket_notes(&self, ticket: i64) -> StoreResult<Vec<TicketNote>>;
    /// Apply `change` if the ticket is in one of `change.from`; false (nothing written) otherwise.
    async fn change_ticket(&self, change: &TicketChange<'_>) -> StoreResult<bool>;
    /// Store a question to a manager (`id` ignored), with its email and audit row; returns its id.
    async fn create_attestation(
        &self,
        attestation: &Attestation,
        emails: &[crate::email::OutgoingEmail],
        audit: &AuditEntry,
    ) -> StoreResult<i64>;
    async fn attestation(&self, id: i64) -> StoreResult<Option<Attestation>>;
    /// The questions to this manager, newest first (pending ones only when `pending`).
    async fn attestations_for_manager(&self, manager: PersonId, pending: bool) -> StoreResult<Vec<Attestation>>;
    /// The questions about this person, newest first.
    async fn attestations_about(&self, subject: PersonId) -> StoreResult<Vec<Attestation>>;
    /// Answer a pending, unexpired question, with its audit row; false (nothing written) otherwise.
    async fn answer_attestation(&self, answer: &AttestationAnswer<'_>) -> StoreResult<bool>;
}

/// A passkey (WebAuthn credential) of an account (issue 14).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyRecord {
    pub id: i64,
    pub account: AccountId,
    /// The credential's id, base64url: how an assertion names it; unique across every account.
    pub credential_id: String,
    /// What its person called it ("Work laptop").
    pub name: String,
    /// webauthn-rs's `Passkey` as JSON: the public key, the signature counter and its flags.
    pub credential: String,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
}

/// A passkey to add (its credential verified by the registration ceremony).
#[derive(Debug, Clone)]
pub struct NewPasskey<'a> {
    pub account: AccountId,
    pub credential_id: &'a str,
    pub name: &'a str,
    pub credential: &'a str,
    /// Bound by a session that had to set up a second factor (after an MFA reset, with an enrolment code or a
    /// temporary access pass): the requirement to enrol, and to prove the mailbox first, ends with it.
    pub completes_enrolment: bool,
}

/// What a WebAuthn ceremony is for: each finishes only as what it began as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CeremonyPurpose {
    Register,
    SignIn,
}

impl CeremonyPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Register => "register",
            Self::SignIn => "sign_in",
        }
    }
}

#[async_trait]
pub trait PasskeyStore: Send + Sync {
    /// An account's passkeys, oldest first.
    async fn passkeys(&self, account: AccountId) -> StoreResult<Vec<PasskeyRecord>>;
    async fn passkey_by_credential(&self, credential_id: &str) -> StoreResult<Option<PasskeyRecord>>;
    /// Add a passkey with its audit row, emails and their secrets (the "this wasn't me" link), and a line in
    /// the authenticator history, in one transaction. `Conflict` when the credential is registered already (to
    /// any account): nothing is written.
    async fn add_passkey(
        &self,
        new: &NewPasskey<'_>,
        now: Timestamp,
        audit: &AuditEntry,
        emails: &[crate::email::OutgoingEmail],
        secrets: &[NewSecret],
    ) -> StoreResult<PasskeyRecord>;
    /// Rename one of the account's passkeys, audited; false (nothing written) when it has no such passkey.
    async fn rename_passkey(&self, account: AccountId, id: i64, name: &str, audit: &AuditEntry) -> StoreResult<bool>;
    /// Remove one of the account's passkeys, with its audit row, emails and their secrets, and a line in the
    /// authenticator history; false (nothing written) when it has no such passkey.
    async fn remove_passkey(
        &self,
        account: AccountId,
        id: i64,
        now: Timestamp,
        audit: &AuditEntry,
        emails: &[crate::email::OutgoingEmail],
        secrets: &[NewSecret],
    ) -> StoreResult<bool>;
    /// A sign-in with a passkey: its credential as the assertion left it (the new counter) and its last use,
    /// the failure counters cleared, with the sign-in event, in one transaction; false (nothing written) when
    /// the passkey is gone, when its stored credential is no longer `was` (another sign-in with it got there
    /// first: with a signature counter, one of two racing assertions is a clone's), or when the account may not
    /// complete a sign-in now (locked, or its person disabled).
    async fn use_passkey(&self, id: i64, was: &str, credential: &str, event: &SignInEvent) -> StoreResult<bool>;
    /// Keep a ceremony's state until `expires_at` under the keyed hash of its secret id.
    async fn begin_ceremony(
        &self,
        ceremony: &TokenHash,
        purpose: CeremonyPurpose,
        account: Option<AccountId>,
        state: &str,
        expires_at: Timestamp,
    ) -> StoreResult<()>;
    /// Take a ceremony to finish it: its account and state, once — exactly one of concurrent callers gets it,
    /// and only for the purpose it began with and before it expires (an expired one is removed all the same).
    async fn take_ceremony(
        &self,
        ceremony: &TokenHash,
        purpose: CeremonyPurpose,
        now: Timestamp,
    ) -> StoreResult<Option<(Option<AccountId>, String)>>;
}

/// What a change tells people: its emails, queued in the change's transaction, and the secrets they carry (a
/// "this wasn't me" link's), stored in it.
#[derive(Debug, Clone, Default)]
pub struct Notices {
    pub emails: Vec<crate::email::OutgoingEmail>,
    pub secrets: Vec<NewSecret>,
}

/// A person's second notification address (NIST SP 800-63B-4 §4.6): theirs to add, used once confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationAddress {
    pub address: String,
    pub added_at: Timestamp,
    pub confirmed_at: Option<Timestamp>,
    /// When the code sent to it stops working (unconfirmed only).
    pub code_expires_at: Option<Timestamp>,
}

/// A second address as it is added: the address, the keyed hash of the code sent to it, and when that code expires.
#[derive(Debug, Clone)]
pub struct PendingAddress<'a> {
    pub address: &'a str,
    pub code: crate::crypto::TokenHash,
    pub expires_at: Timestamp,
}

/// How a confirmation code was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressConfirmation {
    Confirmed,
    /// Wrong code: one try counted.
    Wrong,
    /// No pending address, the code expired, or too many wrong tries: a new code must be sent.
    Spent,
}

/// Wrong codes a pending address takes before its code stops working.
pub const ADDRESS_CODE_TRIES: i64 = 5;
/// A new address (and its code) may replace the last one this long after it was added.
pub const ADDRESS_RESEND_SECONDS: i64 = 60;

/// People's second notification addresses.
#[async_trait]
pub trait AddressStore: Send + Sync {
    async fn notification_address(&self, person: PersonId) -> StoreResult<Option<NotificationAddress>>;
    /// Set (or replace) the person's second address, unconfirmed, holding the keyed hash of the code sent to it,
    /// with the change's notices and audit row, in one transaction; false (nothing written) when the current one
    /// was added less than [`ADDRESS_RESEND_SECONDS`] ago.
    async fn set_notification_address(
        &self,
        person: PersonId,
        pending: &PendingAddress<'_>,
        notices: &Notices,
        audit: &AuditEntry,
        now: Timestamp,
    ) -> StoreResult<bool>;
    /// Confirm the pending address with the code sent to it: once, before it expires, within
    /// [`ADDRESS_CODE_TRIES`] wrong tries (the try is counted in the same statement that checks the limit).
    /// `address` is the one the caller read (and names in its audit row and notices): a code for another
    /// (replaced meanwhile) does not confirm it.
    async fn confirm_notification_address(
        &self,
        person: PersonId,
        address: &str,
        code: &crate::crypto::TokenHash,
        notices: &Notices,
        audit: &AuditEntry,
        now: Timestamp,
    ) -> StoreResult<AddressConfirmation>;
    /// Remove the person's second address with the change's notices and audit row; false when there was none.
    async fn remove_notification_address(
        &self,
        person: PersonId,
        notices: &Notices,
        audit: &AuditEntry,
        now: Timestamp,
    ) -> StoreResult<bool>;
}

/// Everything the application needs from storage.
pub trait Store:
    Readiness
    + DirectoryStore
    + CredentialStore
    + SessionStore
    + EventStore
    + ThrottleStore
    + AuditStore
    + OutboxStore
    + AssistanceStore
    + RateLimitStore
    + RetentionStore
    + KeyStore
    + RecoveryStore
    + TokenStore
    + TeamStore
    + PasskeyStore
    + AddressStore
{
}
impl<T> Store for T where
    T: Readiness
        + DirectoryStore
        + CredentialStore
        + SessionStore
        + EventStore
        + ThrottleStore
        + AuditStore
        + OutboxStore
        + AssistanceStore
        + RateLimitStore
        + RetentionStore
        + KeyStore
        + RecoveryStore
        + TokenStore
        + TeamStore
        + PasskeyStore
        + AddressStore
{
}
