//! What the admin API takes and returns, as types: the handlers build these, and the OpenAPI document's schemas
//! are derived from them (`utoipa::ToSchema`), so the document cannot drift from what is sent.

use crate::audit::AuditRecord;
use crate::directory::PersonView;
use crate::domain::{AccountId, AccountSource, PersonId, PersonStatus};
use crate::policy::permissions::RecoveryAction;
use crate::store::SignInEvent;
use serde::{Deserialize, Serialize};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{IntoParams, ToSchema};

/// A problem document (RFC 9457): every error of the API, with a stable `code`.
#[derive(Serialize, ToSchema)]
pub struct Problem {
    /// Always `about:blank`: `status` and `code` say what happened.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    /// Stable, for programs: `unauthorized`, `forbidden`, `expert_token_required`, `not_found`, `conflict`,
    /// `invalid_fields`, `invalid_json`, `invalid_input`, `unsupported_media_type`, `payload_too_large`,
    /// `rate_limited`, `method_not_allowed`, `internal`.
    pub code: String,
    /// For people.
    pub message: String,
    /// The id of this request in the server's log.
    pub request_id: String,
}

/// The name of a recovery action (SPEC §8), as the path's `{action}`. Its values come from
/// `RecoveryAction::ALL`, so a new action appears in the document by itself.
pub struct ActionName;

impl utoipa::PartialSchema for ActionName {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(RecoveryAction::ALL.map(RecoveryAction::name)))
            .into()
    }
}

impl ToSchema for ActionName {}

/// A token's state.
#[derive(Serialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub enum TokenState {
    Live,
    Expired,
    Revoked,
}

impl TokenState {
    pub fn of(token: &crate::store::ApiToken, now: i64) -> Self {
        match token.state(now) {
            "revoked" => Self::Revoked,
            "expired" => Self::Expired,
            _ => Self::Live,
        }
    }
}

/// One of the caller's tokens (never its secret).
#[derive(Serialize, ToSchema)]
pub struct TokenRow {
    pub id: i64,
    pub name: String,
    /// Made with `--expert`: stands in for the console's step-up, and lives an hour at most.
    pub expert: bool,
    pub created_at: i64,
    pub expires_at: i64,
    pub last_used_at: Option<i64>,
    pub state: TokenState,
    /// The token this call was made with.
    pub this_one: bool,
}

#[derive(Serialize, ToSchema)]
pub struct TokenList {
    pub tokens: Vec<TokenRow>,
}

/// `GET /api/v1/people`'s query.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PeopleQuery {
    /// Part of a name, username or email.
    pub query: Option<String>,
    /// Only people with an account locked now.
    pub locked: Option<bool>,
    /// People a page, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// An account as a search lists it.
#[derive(Serialize, ToSchema)]
pub struct AccountHit {
    pub id: AccountId,
    pub username: String,
    pub source: AccountSource,
    pub locked: bool,
    pub totp_enabled: bool,
}

/// A person as a search lists them.
#[derive(Serialize, ToSchema)]
pub struct PersonHit {
    pub id: PersonId,
    pub name: String,
    pub email: String,
    pub status: PersonStatus,
    pub accounts: Vec<AccountHit>,
}

/// A page of people; follow `next_cursor` until it is null.
#[derive(Serialize, ToSchema)]
pub struct PeoplePage {
    pub people: Vec<PersonHit>,
    pub next_cursor: Option<String>,
}

/// A sign-in attempt and the username it was for.
#[derive(Serialize, ToSchema)]
pub struct SignInRow {
    pub username: String,
    pub event: SignInEvent,
}

/// A person's record: accounts with their locks and MFA state, recent sign-ins, the activity log.
#[derive(Serialize, ToSchema)]
pub struct PersonRecordBody {
    pub person: PersonView,
    /// Newest first.
    pub sign_ins: Vec<SignInRow>,
    /// Every audited event about the person, newest first (the latest 200).
    pub activity: Vec<AuditRecord>,
    /// The authenticator record of every account, newest first.
    pub authenticators: Vec<crate::directory::AuthenticatorEventView>,
}

/// The authenticator record of a person's accounts: every binding, replacement, removal and use, newest first.
#[derive(Serialize, ToSchema)]
pub struct AuthenticatorRecord {
    pub events: Vec<crate::directory::AuthenticatorEventView>,
}

#[derive(Serialize, ToSchema)]
pub struct Activity {
    pub activity: Vec<AuditRecord>,
}

/// What a recovery action takes: the console's fields, `reason` being the verification method.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionBody {
    /// How the person was verified (e.g. "called back on the phone number in the directory").
    pub reason: String,
    /// Who asked for it, when not the person (e.g. their manager).
    #[serde(default)]
    pub on_behalf_of: Option<String>,
    #[serde(default)]
    pub details: Option<String>,
    /// The account acted on (default: the person's first account).
    #[serde(default)]
    pub account: Option<i64>,
    /// The assistance request this answers (`AR-…`); it is resolved by the action.
    #[serde(default)]
    pub reference: Option<String>,
    /// `issue-temporary-access-pass`: its lifetime in minutes, within the configured bounds.
    #[serde(default)]
    pub pass_minutes: Option<u32>,
    /// `issue-temporary-access-pass`: whether it may be used more than once while it lives.
    #[serde(default)]
    pub pass_multi_use: bool,
    /// `send-recovery-code`, `send-access-email`: `"second"` sends the code or link to the person's confirmed
    /// second notification address instead of the directory address (`"primary"`, the default).
    #[serde(default)]
    pub deliver_to: Option<String>,
}

/// Why an admin removes a passkey: the verification method, as for every action.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RemovePasskeyBody {
    /// How the person was verified (one of `recovery.verification_methods`).
    pub reason: String,
    #[serde(default)]
    pub on_behalf_of: Option<String>,
    #[serde(default)]
    pub details: Option<String>,
}

/// A person's passkeys, by account (names and dates, never key material).
#[derive(Serialize, ToSchema)]
pub struct PasskeyList {
    pub passkeys: Vec<PasskeyRow>,
}

#[derive(Serialize, ToSchema)]
pub struct PasskeyRow {
    pub account_id: i64,
    pub username: String,
    #[serde(flatten)]
    pub passkey: crate::directory::PasskeyView,
}

/// A passkey removed.
#[derive(Serialize, ToSchema)]
pub struct PasskeyRemoved {
    pub id: i64,
    pub name: String,
}

/// A temporary access pass: shown this once, never again.
#[derive(Serialize, ToSchema)]
pub struct Pass {
    pub pass: String,
    pub expires_at: i64,
    pub multi_use: bool,
    /// `temporary_access_pass`, or `enrolment_code` (it adds a passkey, once).
    pub kind: PassKind,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PassKind {
    TemporaryAccessPass,
    EnrolmentCode,
}

impl From<crate::recovery::ShownPass> for Pass {
    fn from(p: crate::recovery::ShownPass) -> Self {
        let kind = if p.enrolment { PassKind::EnrolmentCode } else { PassKind::TemporaryAccessPass };
        Self { pass: p.pass, expires_at: p.expires_at, multi_use: p.multi_use, kind }
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ActionStatus {
    /// The action ran.
    Done,
    /// It waits for a second admin (four-eyes): see `approval`.
    Pending,
}

/// What an action did (200), or the approval it waits for (202).
#[derive(Serialize, ToSchema)]
pub struct ActionResult {
    pub status: ActionStatus,
    #[schema(value_type = ActionName)]
    pub action: &'static str,
    /// What happened, in a sentence (when done).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pass: Option<Pass>,
    /// The waiting approval's id (when pending).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<i64>,
}

/// A request waiting for a second admin.
#[derive(Serialize, ToSchema)]
pub struct ApprovalRow {
    pub id: i64,
    #[schema(value_type = ActionName)]
    pub action: &'static str,
    pub person_id: PersonId,
    pub person: String,
    pub requested_by: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub reason: String,
    pub on_behalf_of: Option<String>,
    pub details: Option<String>,
    pub pass_minutes: Option<u32>,
    pub pass_multi_use: bool,
    pub reference: Option<String>,
    /// The caller asked for it (and so may not decide it).
    pub yours: bool,
}

#[derive(Serialize, ToSchema)]
pub struct ApprovalList {
    pub approvals: Vec<ApprovalRow>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DecisionStatus {
    Approved,
    Rejected,
    /// Approving asked for yet another approval.
    Pending,
}

/// What a decision did.
#[derive(Serialize, ToSchema)]
pub struct Decision {
    pub status: DecisionStatus,
    pub approval: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pass: Option<Pass>,
}

/// `GET /api/v1/audit`'s query.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// A person's id: events about them.
    #[param(minimum = 1)]
    pub person: Option<i64>,
    /// Part of the actor (e.g. a username, `token:`, `system`).
    pub actor: Option<String>,
    /// An action's name or start (e.g. `reset-mfa`, `approval.`).
    pub action: Option<String>,
    /// RFC 3339 time or a date (midnight UTC).
    pub since: Option<String>,
    pub until: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditEvents {
    pub events: Vec<AuditRecord>,
}

/// `GET /api/v1/assistance-requests`'s query.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RequestsQuery {
    #[param(value_type = Option<crate::domain::RequestStatus>)]
    pub status: Option<String>,
    #[serde(rename = "type")]
    #[param(rename = "type", value_type = Option<crate::domain::ProblemType>)]
    pub problem: Option<String>,
}

/// An assistance request as the queue lists it.
#[derive(Serialize, ToSchema)]
pub struct RequestRow {
    pub reference: String,
    pub status: crate::domain::RequestStatus,
    #[serde(rename = "type")]
    pub problem: String,
    pub email: String,
    pub created_at: i64,
    pub repeats: i64,
    pub person_id: Option<PersonId>,
    pub account_id: Option<AccountId>,
    pub country: Option<String>,
    pub network: Option<String>,
    pub closed_by: Option<String>,
    pub closed_at: Option<i64>,
    pub close_note: Option<String>,
}

impl From<&crate::store::AssistanceRequest> for RequestRow {
    fn from(r: &crate::store::AssistanceRequest) -> Self {
        Self {
            reference: r.reference.clone(),
            status: r.status,
            problem: r.problem.clone(),
            email: r.submitted_email.clone(),
            created_at: r.created_at,
            repeats: r.repeat_count,
            person_id: r.person_id,
            account_id: r.account_id,
            country: r.country.clone(),
            network: r.network.clone(),
            closed_by: r.closed_by.clone(),
            closed_at: r.closed_at,
            close_note: r.close_note.clone(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct RequestList {
    pub requests: Vec<RequestRow>,
}

/// One request with what the person wrote and its dossier, for an admin.
#[derive(Serialize, ToSchema)]
pub struct RequestDetail {
    #[serde(flatten)]
    pub request: RequestRow,
    pub description: Option<String>,
    pub client_ip: String,
    pub user_agent: String,
    /// The dossier as the emails and the console show it (null until the request is processed).
    #[schema(value_type = Option<Object>)]
    pub dossier: Option<serde_json::Value>,
}

impl From<&crate::store::AssistanceRequest> for RequestDetail {
    fn from(r: &crate::store::AssistanceRequest) -> Self {
        Self {
            request: r.into(),
            description: r.description.clone(),
            client_ip: r.client_ip.clone(),
            user_agent: r.user_agent.clone(),
            dossier: r.dossier.as_deref().and_then(|d| serde_json::from_str(d).ok()),
        }
    }
}

/// How to close a request.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseBody {
    /// `resolved` (helped) or `dismissed`.
    pub outcome: String,
    /// What you verified and what you did, 1 to 2000 characters.
    pub note: String,
}

#[derive(Serialize, ToSchema)]
pub struct Closed {
    pub reference: String,
    pub status: String,
}

/// The public form's twin.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssistanceRequestBody {
    #[schema(max_length = 254)]
    pub email: String,
    #[serde(rename = "type")]
    #[schema(value_type = crate::domain::ProblemType)]
    pub problem: String,
    /// At most 500 characters; line breaks are the only control characters allowed.
    #[serde(default)]
    #[schema(max_length = 500)]
    pub description: Option<String>,
}

/// The same answer for every address.
#[derive(Serialize, ToSchema)]
pub struct AssistanceAccepted {
    /// Keep it: it asks how far the request has come.
    pub reference: String,
    pub status: String,
    pub message: String,
}

/// How far the request a reference belongs to has come, and nothing about the account.
#[derive(Serialize, ToSchema)]
pub struct AssistanceState {
    pub reference: String,
    /// `received`, `open` or `closed`: of the request this reference belongs to.
    pub status: crate::assistance::PublicState,
    /// This submission repeated an open request and was added to it; `status` is that request's.
    pub joined: bool,
    pub message: String,
}

/// Without a token, the public status; with an admin's token, the request and its dossier.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum AssistanceLookup {
    Public(AssistanceState),
    Admin(Box<RequestDetail>),
}

/// `?status=` of the ticket list.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TicketsQuery {
    /// Without it: every ticket not yet confirmed.
    #[param(value_type = Option<crate::store::TicketStatus>)]
    pub status: Option<String>,
}

/// A ticket (SPEC §5).
#[derive(Serialize, ToSchema)]
pub struct TicketRow {
    pub reference: String,
    /// `manager_reset` (a manager's reset, waiting for "everything works") or `password_reset` (an engineer's).
    pub kind: String,
    pub status: crate::store::TicketStatus,
    pub summary: String,
    pub requester_id: PersonId,
    pub subject_id: PersonId,
    pub subject_account_id: Option<AccountId>,
    pub assignee: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<&crate::store::Ticket> for TicketRow {
    fn from(t: &crate::store::Ticket) -> Self {
        Self {
            reference: t.reference.clone(),
            kind: t.kind.as_str().to_owned(),
            status: t.status,
            summary: t.summary.clone(),
            requester_id: t.requester,
            subject_id: t.subject,
            subject_account_id: t.subject_account,
            assignee: t.assignee.clone(),
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct TicketList {
    pub tickets: Vec<TicketRow>,
}

/// One entry of a ticket's timeline.
#[derive(Serialize, ToSchema)]
pub struct TicketNoteRow {
    pub at: i64,
    pub author: String,
    /// The status the ticket moved to with this note.
    pub status: Option<crate::store::TicketStatus>,
    pub body: String,
}

#[derive(Serialize, ToSchema)]
pub struct TicketDetail {
    pub ticket: TicketRow,
    /// Oldest first.
    pub notes: Vec<TicketNoteRow>,
}

/// A note for the timeline (the requester is told).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketNoteBody {
    #[schema(max_length = 2000)]
    pub note: String,
}

/// Move a ticket on: `in_progress` (take it) or `resolved` (with the note the requester gets).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketStatusBody {
    #[schema(value_type = TicketStep)]
    pub status: String,
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub note: Option<String>,
}

/// The statuses an engineer moves a ticket to (`confirmed` is the requester's, by the emailed link).
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum TicketStep {
    InProgress,
    Resolved,
}
