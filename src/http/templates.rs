//! One struct per page; askama checks every template at compile time and escapes by default.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

pub fn render<T: Template>(page: &T) -> Response {
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!("template failed: {e}");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage<'a> {
    pub title: &'a str,
    pub status: u16,
    pub message: &'a str,
    pub request_id: String,
}

#[derive(Template)]
#[template(path = "signin.html")]
pub struct SignInPage<'a> {
    pub title: &'a str,
    pub csrf: &'a str,
    pub login: &'a str,
    pub error: Option<&'a str>,
    pub notice: Option<&'a str>,
    /// Passkeys can be used here: the page shows their button and loads the passkey script.
    pub passkeys: bool,
}

/// A passkey in the account's list.
pub struct PasskeyRow {
    pub id: i64,
    pub name: String,
    pub created: String,
    pub last_used: String,
}

#[derive(Template)]
#[template(path = "account_addresses.html")]
pub struct AddressesPage<'a> {
    pub title: &'a str,
    pub csrf: &'a str,
    pub primary: &'a str,
    /// (address, confirmed)
    pub second: Option<(String, bool)>,
    /// Signed in recently enough to change them.
    pub fresh: bool,
    pub notice: Option<&'a str>,
    pub error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "account_passkeys.html")]
pub struct PasskeysPage<'a> {
    pub title: &'a str,
    pub csrf: &'a str,
    pub passkeys: &'a [PasskeyRow],
    /// Passkeys can be used here (`public_url` names a domain).
    pub available: bool,
    /// Signed in recently enough to add one.
    pub fresh: bool,
    pub notice: Option<&'a str>,
    pub error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "remove_passkey.html")]
pub struct RemovePasskeyPage<'a> {
    pub title: &'a str,
    pub csrf: &'a str,
    pub id: i64,
    pub name: &'a str,
    pub fresh: bool,
}

#[derive(Template)]
#[template(path = "add_passkey.html")]
pub struct AddPasskeyPage<'a> {
    pub title: &'a str,
    pub csrf: &'a str,
    pub available: bool,
    /// The session may set up an authenticator app instead (it was not an enrolment code).
    pub can_use_app: bool,
    pub error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "mfa.html")]
pub struct MfaPage<'a> {
    pub title: &'a str,
    pub csrf: &'a str,
    pub error: Option<&'a str>,
    /// The account has a passkey (and passkeys work here): its username, for the passkey button.
    pub passkey_login: Option<String>,
    /// `policy.admins_require_passkey` and this admin has one: no code form.
    pub passkey_only: bool,
}

#[derive(Template)]
#[template(path = "enroll_mfa.html")]
pub struct EnrollMfaPage<'a> {
    pub title: &'a str,
    pub csrf: &'a str,
    pub qr_svg: &'a str,
    pub uri: &'a str,
    pub secret: &'a str,
    pub error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "backup_codes.html")]
pub struct BackupCodesPage<'a> {
    pub title: &'a str,
    pub codes: &'a [String],
    pub next: &'a str,
}

#[derive(Template)]
#[template(path = "confirm_backup_codes.html")]
pub struct ConfirmBackupCodesPage<'a> {
    pub title: &'a str,
    pub csrf: &'a str,
}

#[derive(Template)]
#[template(path = "change_password.html")]
pub struct ChangePasswordPage<'a> {
    pub title: &'a str,
    pub csrf: &'a str,
    pub required: bool,
    pub min_length: usize,
    pub error: Option<&'a str>,
}

pub struct EventRow {
    pub at: String,
    pub outcome: String,
    pub method: String,
    pub ip: String,
    pub place: String,
    pub network: String,
}

#[derive(Template)]
#[template(path = "home.html")]
pub struct HomePage<'a> {
    pub title: &'a str,
    pub csrf: &'a str,
    pub display_name: &'a str,
    pub username: &'a str,
    pub email: &'a str,
    pub source: &'a str,
    pub totp_enabled: bool,
    pub backup_codes_left: i64,
    /// How many passkeys the account has.
    pub passkeys: usize,
    pub qa_enabled: bool,
    pub qa_enrolled: bool,
    pub can_change_password: bool,
    pub can_view_requests: bool,
    /// Has people reporting to them: the manager portal.
    pub can_manage_team: bool,
    pub notice: Option<&'a str>,
    pub events: Vec<EventRow>,
}

#[derive(Template)]
#[template(path = "security_questions.html")]
pub struct SecurityQuestionsPage<'a> {
    pub title: &'a str,
    pub csrf: &'a str,
    pub questions: &'a [String],
    pub error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "reset.html")]
pub struct ResetPage<'a> {
    pub title: &'a str,
    pub csrf: &'a str,
    pub enabled: bool,
    pub questions: &'a [String],
    pub email: &'a str,
    /// The answers given, kept after an error (passwords are never put back into a page).
    pub answers: &'a [String],
    pub error: Option<&'a str>,
}

impl ResetPage<'_> {
    /// The answer given to question `i` before an error, or nothing.
    pub fn answer(&self, i: impl std::borrow::Borrow<usize>) -> &str {
        self.answers.get(*i.borrow()).map(String::as_str).unwrap_or_default()
    }
}

#[derive(Template)]
#[template(path = "help.html")]
pub struct HelpPage<'a> {
    pub title: &'a str,
    pub contacts: &'a [String],
    pub qa_enabled: bool,
}

#[derive(Template)]
#[template(path = "assistance.html")]
pub struct AssistancePage<'a> {
    pub title: &'a str,
    pub csrf: &'a str,
    pub email: &'a str,
    pub selected: &'a str,
    pub description: &'a str,
    pub problems: Vec<(&'static str, &'static str)>,
    pub contacts: &'a [String],
    pub qa_enabled: bool,
    pub error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "assistance_received.html")]
pub struct AssistanceReceivedPage<'a> {
    pub title: &'a str,
    pub reference: &'a str,
}

#[derive(Template)]
#[template(path = "assistance_status.html")]
pub struct AssistanceStatusPage<'a> {
    pub title: &'a str,
    /// What was typed, shown back in the form.
    pub reference: &'a str,
    /// (state, explanation) when the reference was found.
    pub found: Option<(&'a str, &'a str)>,
    pub error: Option<&'a str>,
}

pub struct RequestRow {
    pub reference: String,
    pub status: String,
    pub problem: String,
    pub email: String,
    pub at: String,
    pub repeats: i64,
}

/// One account of a person found by a search: a row of the People grid.
pub struct PersonRow {
    pub person_id: i64,
    pub name: String,
    pub username: String,
    pub email: String,
    pub source: String,
    pub status: String,
    pub locked: String,
    pub mfa: String,
}

pub struct AccountBox {
    pub account_id: i64,
    pub username: String,
    pub source: String,
    pub locked: String,
    pub locked_at: String,
    pub lock_reason: String,
    pub unlocked: String,
    pub failed_attempts: u32,
    pub totp: &'static str,
    pub backup_codes: i64,
    /// Each passkey: "Work laptop (added …, last used …)"; empty: none.
    pub passkeys: Vec<String>,
    pub qa: &'static str,
}

pub struct SignInLine {
    pub at: String,
    pub account: String,
    pub outcome: String,
    pub ip: String,
    pub place: String,
    pub network: String,
}

pub struct ActivityLine {
    pub at: String,
    pub action: String,
    pub outcome: String,
    pub actor: String,
    pub on_behalf_of: String,
    pub reason: String,
    pub details: String,
    pub reference: String,
}

#[derive(Template)]
#[template(path = "console_person.html")]
pub struct ConsolePersonPage<'a> {
    pub title: &'a str,
    pub name: String,
    pub email: String,
    pub status: String,
    pub phone: String,
    pub manager: String,
    pub department: String,
    pub rank: u8,
    pub mfa_required: &'static str,
    /// The address, and whether it is confirmed (only then is it used).
    pub second_address: String,
    pub accounts: Vec<AccountBox>,
    pub sign_ins: Vec<SignInLine>,
    pub activity: Vec<ActivityLine>,
    /// The authenticator record: (when, account, authenticator and which, change, by).
    pub authenticators: Vec<(String, String, String, String, String)>,
    pub person_id: i64,
    /// The actions this admin may take on this person: (wizard link, title).
    pub actions: Vec<(String, &'static str)>,
    /// Reset MFA beside the Authentication section, when this admin may.
    pub reset_mfa: bool,
    /// Open assistance requests about the person: (reference, type, when).
    pub requests: Vec<(String, String, String)>,
    pub csrf: &'a str,
    /// Questions to the line manager: (id, asked at, status, the answer as evidence).
    pub attestations: Vec<(i64, String, String, String)>,
    /// The person has a manager on file and this admin may ask them.
    pub can_ask_manager: bool,
}

#[derive(Template)]
#[template(path = "console_people.html")]
pub struct ConsolePeoplePage<'a> {
    pub title: &'a str,
    pub query: &'a str,
    pub locked_only: bool,
    pub error: Option<String>,
    pub rows: Vec<PersonRow>,
    pub more: bool,
}

#[derive(Template)]
#[template(path = "console_requests.html")]
pub struct ConsoleRequestsPage<'a> {
    pub title: &'a str,
    pub status: &'a str,
    pub problem: &'a str,
    pub statuses: Vec<(&'static str, &'static str)>,
    pub problems: Vec<(&'static str, &'static str)>,
    pub rows: Vec<RequestRow>,
}

#[derive(Template)]
#[template(path = "console_request.html")]
pub struct ConsoleRequestPage<'a> {
    pub title: &'a str,
    pub csrf: &'a str,
    pub reference: &'a str,
    pub status: &'a str,
    pub repeats: i64,
    pub open: bool,
    pub closed: Option<String>,
    pub dossier: Option<crate::assistance::dossier::Dossier>,
    pub notified: &'a str,
    /// For a repeat: the reference and status of the request it was added to.
    pub joined_to: Option<(String, String)>,
    /// Every submission, when others joined this request.
    pub submissions: Vec<crate::assistance::dossier::Submission>,
    /// Why closing did not work, with what the admin had typed, to correct and send again.
    pub close_error: Option<&'a str>,
    pub decision: &'a str,
    pub note: &'a str,
    /// The person the request is about, for "Help this person" (the wizard, pre-filled).
    pub help_person: Option<i64>,
    /// The line manager's answers: (status, by, when, note).
    pub attestations: Vec<(String, String, String, String)>,
}

#[derive(Template)]
#[template(path = "signout.html")]
pub struct SignOutPage<'a> {
    pub title: &'a str,
    pub csrf: &'a str,
}

#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage<'a> {
    pub title: &'a str,
    pub message: &'a str,
    pub error: bool,
    pub link: Option<(&'a str, &'a str)>,
}

#[derive(Template)]
#[template(path = "recover.html")]
pub struct RecoverPage<'a> {
    pub title: &'a str,
    pub csrf: &'a str,
    pub email: &'a str,
    pub error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "recover_options.html")]
pub struct RecoverOptionsPage<'a> {
    pub title: &'a str,
    pub csrf: &'a str,
    pub local: bool,
    pub min_length: usize,
    pub notice: Option<&'a str>,
    pub error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "reset_password.html")]
pub struct ResetPasswordPage<'a> {
    pub title: &'a str,
    pub csrf: &'a str,
    pub token: &'a str,
    pub min_length: usize,
    pub error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "signin_code.html")]
pub struct SignInCodePage<'a> {
    pub title: &'a str,
    pub csrf: &'a str,
    pub login: &'a str,
    pub error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "device.html")]
pub struct DevicePage<'a> {
    pub title: &'a str,
    pub csrf: &'a str,
    pub error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "not_me.html")]
pub struct NotMePage<'a> {
    pub title: &'a str,
    pub csrf: &'a str,
    pub token: &'a str,
    pub action: &'a str,
}

pub struct AssistOption {
    pub href: String,
    pub title: &'static str,
    pub name: &'static str,
}

#[derive(Template)]
#[template(path = "console_assist.html")]
pub struct ConsoleAssistPage<'a> {
    pub title: &'a str,
    pub csrf: &'a str,
    pub step: u8,
    pub error: Option<&'a str>,
    pub helping: Option<String>,
    pub reference: String,
    pub options: Vec<AssistOption>,
    pub action: &'a str,
    pub action_title: &'a str,
    pub action_effect: String,
    pub lookup_hint: &'a str,
    pub query: String,
    pub people: Vec<PersonRow>,
    /// The search found as many people as it lists at most: some were not looked at.
    pub more: bool,
    pub person_id: i64,
    pub person_name: String,
    pub person_email: String,
    pub person_phone: String,
    pub person_manager: String,
    pub four_eyes: bool,
    pub seen: String,
    pub by_account: bool,
    pub accounts: Vec<(i64, String, bool)>,
    pub methods: Vec<(String, bool)>,
    pub on_behalf_of: String,
    pub details: String,
    pub is_pass: bool,
    /// Recovery code and access email: the person's confirmed second address, which the admin may send to, and
    /// when it was confirmed (UTC).
    pub second_address: Option<(String, String)>,
    pub pass_min: u32,
    pub pass_max: u32,
    pub pass_minutes: String,
    pub step_up: bool,
    pub step_up_minutes: u32,
}

#[derive(Template)]
#[template(path = "console_result.html")]
pub struct ConsoleResultPage<'a> {
    pub title: &'a str,
    pub heading: &'a str,
    pub summary: &'a str,
    pub pass: Option<String>,
    pub pass_expires: String,
    pub pass_multi: bool,
    /// The pass is an enrolment code (it adds a passkey).
    pub pass_enrolment: bool,
    pub person_id: i64,
    pub person_name: &'a str,
}

pub struct ApprovalRow {
    pub id: i64,
    pub at: String,
    pub action: String,
    pub action_name: &'static str,
    /// The terms the requester chose (a pass's lifetime and uses, the request it resolves).
    pub terms: String,
    pub person_id: i64,
    pub person: String,
    pub requested_by: String,
    pub reason: String,
    pub on_behalf_of: String,
    pub details: String,
    pub expires: String,
    /// Asked for by the admin looking: shown, but not theirs to decide.
    pub own: bool,
    pub step_up: bool,
}

#[derive(Template)]
#[template(path = "console_approvals.html")]
pub struct ConsoleApprovalsPage<'a> {
    pub title: &'a str,
    pub csrf: &'a str,
    pub hours: u32,
    pub rows: Vec<ApprovalRow>,
}

pub struct AuditLine {
    pub id: i64,
    pub at: String,
    pub actor: String,
    pub on_behalf_of: String,
    pub action: String,
    pub person: Option<i64>,
    pub outcome: String,
    pub reason: String,
    pub reference: String,
    pub details: String,
}

#[derive(Template)]
#[template(path = "console_audit.html")]
pub struct ConsoleAuditPage<'a> {
    pub title: &'a str,
    pub chain_ok: bool,
    pub chain: String,
    pub problems: Vec<String>,
    pub error: Option<String>,
    pub person: String,
    pub actor: String,
    pub action: String,
    pub from: String,
    pub to: String,
    pub limit: i64,
    pub rows: Vec<AuditLine>,
}

pub struct TokenLine {
    pub id: i64,
    pub name: String,
    pub expert: bool,
    pub created: String,
    pub expires: String,
    pub last_used: String,
    pub state: &'static str,
    pub live: bool,
}

#[derive(Template)]
#[template(path = "console_tokens.html")]
pub struct ConsoleTokensPage<'a> {
    pub title: &'a str,
    pub csrf: &'a str,
    pub issued: Option<String>,
    pub error: Option<String>,
    pub name: String,
    /// (minutes, label), the longest last (and chosen).
    pub lifetimes: Vec<(u32, String)>,
    pub expert_minutes: u32,
    pub step_up_minutes: u32,
    pub tokens: Vec<TokenLine>,
}

pub struct TeamRow {
    pub id: i64,
    pub name: String,
    pub email: String,
    pub department: String,
    pub source: &'static str,
    pub may_reset: bool,
}

#[derive(Template)]
#[template(path = "team.html")]
pub struct TeamPage<'a> {
    pub title: &'a str,
    pub query: &'a str,
    pub searched: bool,
    pub people: Vec<TeamRow>,
}

#[derive(Template)]
#[template(path = "team_person.html")]
pub struct TeamPersonPage<'a> {
    pub title: &'a str,
    pub csrf: &'a str,
    pub id: i64,
    pub name: &'a str,
    pub email: &'a str,
    pub username: &'a str,
    pub source: &'a str,
    pub synchronized: bool,
    pub error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "secure_link.html")]
pub struct SecureLinkPage<'a> {
    pub title: &'a str,
    pub csrf: &'a str,
    pub token: &'a str,
    pub ready: bool,
    pub message: &'a str,
    pub password: Option<&'a str>,
    pub username: &'a str,
    pub name: &'a str,
}

#[derive(Template)]
#[template(path = "ticket_confirm.html")]
pub struct TicketConfirmPage<'a> {
    pub title: &'a str,
    pub csrf: &'a str,
    pub token: &'a str,
    pub ready: bool,
    pub reference: &'a str,
    pub summary: &'a str,
    pub name: &'a str,
    pub message: &'a str,
}

pub struct TicketLine {
    pub reference: String,
    pub kind: &'static str,
    pub status: &'static str,
    pub summary: String,
    pub assignee: String,
    pub updated: String,
}

#[derive(Template)]
#[template(path = "console_tickets.html")]
pub struct ConsoleTicketsPage<'a> {
    pub title: &'a str,
    pub status: &'a str,
    pub statuses: Vec<&'static str>,
    pub tickets: Vec<TicketLine>,
}

#[derive(Template)]
#[template(path = "console_ticket.html")]
pub struct ConsoleTicketPage<'a> {
    pub title: &'a str,
    pub csrf: &'a str,
    pub t: TicketLine,
    pub requester: String,
    pub subject: String,
    pub subject_id: i64,
    /// (when, author, new status or "", text)
    pub notes: Vec<(String, String, &'static str, String)>,
    pub error: Option<String>,
    pub note: String,
}

#[derive(Template)]
#[template(path = "team_attestations.html")]
pub struct TeamAttestationsPage<'a> {
    pub title: &'a str,
    /// (id, asked at, about whom, status)
    pub questions: Vec<(i64, String, String, String)>,
}

#[derive(Template)]
#[template(path = "team_attestation.html")]
pub struct TeamAttestationPage<'a> {
    pub title: &'a str,
    pub csrf: &'a str,
    pub id: i64,
    pub name: &'a str,
    pub question: &'a str,
    pub asked_by: String,
    pub asked: String,
    pub pending: bool,
    pub status: &'a str,
    pub answer: String,
    pub error: Option<&'a str>,
}
