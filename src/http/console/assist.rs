//! The Login Assistance Wizard (seed 000): choose an option, find the person (the lookup fits the option),
//! review and confirm; the action's POST, whose proof comes from `Admin::authorize` like every console
//! page; and the four-eyes queue where a second admin approves or rejects.

use super::{Admin, query_param};
use crate::authz::{Recover, SearchPeople, ViewRequests};
use crate::directory::PersonView;
use crate::domain::{AccountSource, PersonId};
use crate::http::labels;
use crate::http::middleware::CsrfToken;
use crate::http::session::Client;
use crate::http::templates::{
    ApprovalRow, AssistOption, ConsoleApprovalsPage, ConsoleAssistPage, ConsoleResultPage, PersonRow, render,
};
use crate::http::{AppState, PageError, error::ValidForm};
use crate::policy::permissions::RecoveryAction;
use crate::policy::recovery as rules;
use crate::recovery::{ActionForm, Outcome, RecoveryError, describe, title};
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use lifeline_core::with_recover_type;
use std::collections::HashMap;

/// The wizard's options in seed 000's order, then the rest of SPEC §4's actions.
const OPTIONS: [RecoveryAction; 13] = [
    RecoveryAction::IssueTemporaryAccessPass,
    RecoveryAction::SendOneTimePassword,
    RecoveryAction::SendMagicLink,
    RecoveryAction::ResetMfa,
    RecoveryAction::UnlockQa,
    RecoveryAction::UnenrollQa,
    RecoveryAction::UnlockPerson,
    RecoveryAction::SendAccessEmail,
    RecoveryAction::SendRecoveryCode,
    RecoveryAction::IssueEnrolmentCode,
    RecoveryAction::Unlock,
    RecoveryAction::Enable,
    RecoveryAction::Disable,
];

/// Whether this admin may take `action` on `subject` (decided by the one authorisation function), or —
/// before a person is chosen — whether their grant holds the action's permission at all.
async fn may(
    state: &AppState,
    admin: &Admin,
    action: RecoveryAction,
    subject: Option<PersonId>,
    grant: Option<&crate::domain::Grant>,
) -> bool {
    match (subject, grant) {
        (Some(_), _) => with_recover_type!(action, A => admin.may::<A>(state, subject).await),
        (None, Some(grant)) => crate::policy::permissions::allows(
            grant,
            crate::policy::permissions::Permission::Recovery(action),
            &state.settings().permissions,
        ),
        (None, None) => false,
    }
}

/// The admin's own person and grant, read once per page (the wizard's first step, its lookup).
async fn own_grant(state: &AppState, admin: &Admin) -> Option<(PersonId, crate::domain::Grant)> {
    let account = state.directory.account(admin.account_id).await.ok()??;
    let person = state.directory.person_by_id(account.person_id).await.ok()??;
    state.directory.person_view(person.email.as_str()).await.ok().map(|v| (v.person_id, v.permissions))
}

/// A short reading of the person's record; a confirmation made for another reading is stale.
fn fingerprint(view: &PersonView) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    view.status.as_str().hash(&mut h);
    // Where a code may be sent: a second address replaced after the review is not the one the admin saw.
    view.second_address.as_ref().map(|a| (&a.address, &a.confirmed_at)).hash(&mut h);
    for a in &view.accounts {
        (a.account_id.0, &a.locked_at, &a.lock_reason, a.mfa.totp_enabled, a.mfa.backup_codes_unused).hash(&mut h);
        (a.qa_enrolled, a.qa_locked).hash(&mut h);
    }
    format!("{:016x}", h.finish())
}

/// What a lookup of step 2 shows for an option: only people the option fits.
fn fits(action: RecoveryAction, hit: &crate::store::PersonHit, view: Option<&PersonView>) -> bool {
    use RecoveryAction as R;
    let sources: Vec<AccountSource> = hit.accounts.iter().map(|a| a.account.source).collect();
    match action {
        _ if rules::is_password_action(action) => sources.contains(&AccountSource::Local),
        _ if rules::is_mfa_action(action) => sources.iter().any(|s| *s != AccountSource::Sso),
        R::UnlockQa => view.is_some_and(|v| v.accounts.iter().any(|a| a.qa_locked || a.qa_failed_attempts > 0)),
        R::UnenrollQa => view.is_some_and(|v| v.accounts.iter().any(|a| a.qa_enrolled)),
        R::Enable => hit.person.status == crate::domain::PersonStatus::Disabled,
        R::Disable => hit.person.status == crate::domain::PersonStatus::Active,
        _ => true,
    }
}

/// Does `action` fit the person as their record shows them now? For offering it (the Actions menu, the wizard's
/// options for a known person); running it asks the service, which decides with `policy::recovery::applies`.
pub fn fits_record(action: RecoveryAction, view: &PersonView) -> bool {
    use RecoveryAction as R;
    let active = view.status == crate::domain::PersonStatus::Active;
    let any = |f: &dyn Fn(&crate::directory::AccountView) -> bool| view.accounts.iter().any(f);
    match action {
        R::Enable => !active,
        _ if !active => false,
        R::Disable => true,
        _ if rules::is_password_action(action) => any(&|a| a.source == AccountSource::Local),
        R::ResetMfa => any(&|a| {
            a.source != AccountSource::Sso
                && (a.mfa.totp_enabled || a.mfa.backup_codes_unused > 0 || !a.mfa.passkeys.is_empty())
        }),
        _ if rules::is_mfa_action(action) => any(&|a| a.source != AccountSource::Sso),
        // As `policy::recovery::applies` decides: an account unlock clears the sign-in lock and failures; a
        // person's unlock anything of any account, the security-question lock too.
        R::Unlock => any(&|a| a.locked_at.is_some() || a.failed_attempts > 0),
        R::UnlockPerson => {
            any(&|a| a.locked_at.is_some() || a.failed_attempts > 0 || a.qa_locked || a.qa_failed_attempts > 0)
        }
        R::UnlockQa => any(&|a| a.qa_locked || a.qa_failed_attempts > 0),
        R::UnenrollQa => any(&|a| a.qa_enrolled),
        _ => true,
    }
}

fn hint(action: RecoveryAction) -> &'static str {
    use RecoveryAction as R;
    match action {
        R::Unlock | R::UnlockPerson => "Only people with a locked account are listed.",
        R::UnlockQa | R::UnenrollQa => "Only people with security questions are listed.",
        _ if rules::is_password_action(action) => {
            "SSO and synchronized accounts are left out: their passwords are not Lifeline's."
        }
        _ if rules::is_mfa_action(action) => "SSO accounts are left out: their MFA is the identity provider's.",
        _ => "Search the directory.",
    }
}

struct Values {
    account: Option<i64>,
    method: String,
    details: String,
    on_behalf_of: String,
    pass_minutes: String,
}

#[allow(clippy::too_many_arguments)]
async fn review<'a>(
    state: &AppState,
    admin: &Admin,
    csrf: &'a str,
    action: RecoveryAction,
    person: PersonId,
    reference: &str,
    values: &Values,
    error: Option<&'a str>,
) -> Result<ConsoleAssistPage<'a>, PageError> {
    let proof = admin.authorize::<SearchPeople>(state, None).await?;
    let record =
        state.directory.record(&proof, person).await.map_err(PageError::internal)?.ok_or_else(PageError::not_found)?;
    let v = record.view;
    let settings = state.settings();
    let step_up = rules::needs_step_up(action, &settings.permissions)
        && !rules::fresh(admin.session.second_factor_at, state.signin.now(), &settings.recovery);
    let accounts = v
        .accounts
        .iter()
        .map(|a| {
            let selected = values.account == Some(a.account_id.0);
            (a.account_id.0, format!("{} ({})", a.username, a.source), selected)
        })
        .collect();
    let methods = settings.recovery.verification_methods.iter().map(|m| (m.clone(), *m == values.method)).collect();
    let or_dash = |o: &Option<String>| o.clone().unwrap_or_else(|| "–".into());
    Ok(ConsoleAssistPage {
        title: "Login Assistance Wizard",
        csrf,
        step: 3,
        error,
        helping: None,
        reference: reference.to_owned(),
        options: Vec::new(),
        action: action.name(),
        action_title: title(action),
        action_effect: describe(
            action,
            &v.accounts.first().map(|a| a.username.clone()).unwrap_or_default(),
            &v.display_name,
        ),
        lookup_hint: "",
        more: false,
        query: String::new(),
        people: Vec::new(),
        person_id: person.0,
        four_eyes: rules::needs_approval(&v.permissions),
        seen: fingerprint(&v),
        by_account: rules::target(action) == rules::Target::Account,
        accounts,
        methods,
        on_behalf_of: values.on_behalf_of.clone(),
        details: values.details.clone(),
        is_pass: action == RecoveryAction::IssueTemporaryAccessPass,
        second_address: v
            .second_address
            .as_ref()
            .filter(|a| a.confirmed_at.is_some())
            .filter(|_| matches!(action, RecoveryAction::SendRecoveryCode | RecoveryAction::SendAccessEmail))
            .map(|a| {
                let confirmed = a.confirmed_at.as_deref().unwrap_or_default().replace('T', " ");
                (a.address.clone(), confirmed.get(..16).unwrap_or(&confirmed).to_owned())
            }),
        pass_min: settings.recovery.pass_min_minutes,
        pass_max: settings.recovery.pass_max_minutes,
        pass_minutes: if values.pass_minutes.is_empty() {
            settings.recovery.pass_default_minutes.to_string()
        } else {
            values.pass_minutes.clone()
        },
        step_up,
        step_up_minutes: settings.recovery.step_up_minutes,
        person_name: v.display_name,
        person_email: v.email,
        person_phone: or_dash(&v.phone),
        person_manager: or_dash(&v.manager_email),
    })
}

fn with_status(page: &ConsoleAssistPage<'_>, status: StatusCode) -> Response {
    let mut response = render(page);
    *response.status_mut() = status;
    response
}

fn blank(csrf: &str, step: u8) -> ConsoleAssistPage<'_> {
    ConsoleAssistPage {
        title: "Login Assistance Wizard",
        csrf,
        step,
        error: None,
        helping: None,
        reference: String::new(),
        options: Vec::new(),
        action: "",
        action_title: "",
        action_effect: String::new(),
        lookup_hint: "",
        more: false,
        query: String::new(),
        people: Vec::new(),
        person_id: 0,
        person_name: String::new(),
        person_email: String::new(),
        person_phone: String::new(),
        person_manager: String::new(),
        four_eyes: false,
        seen: String::new(),
        by_account: false,
        accounts: Vec::new(),
        methods: Vec::new(),
        on_behalf_of: String::new(),
        details: String::new(),
        is_pass: false,
        second_address: None,
        pass_min: 0,
        pass_max: 0,
        pass_minutes: String::new(),
        step_up: false,
        step_up_minutes: 0,
    }
}

pub async fn assist_get(
    State(state): State<AppState>,
    admin: Admin,
    Extension(csrf): Extension<CsrfToken>,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let proof = admin.authorize::<SearchPeople>(&state, None).await?;
    let query = query.unwrap_or_default();
    let param = |name: &str| query_param(&query, name);
    let reference =
        crate::domain::ReferenceId::parse(&param("reference")).map(|r| r.as_str().to_owned()).unwrap_or_default();
    let person = match param("person") {
        p if p.is_empty() => None,
        p => Some(p.parse::<i64>().map(PersonId).map_err(|_| PageError::not_found())?),
    };
    let action = match param("action") {
        a if a.is_empty() => None,
        a => Some(
            RecoveryAction::parse(&a).ok_or_else(|| PageError::bad_request("There is no such assistance option."))?,
        ),
    };
    let record = match person {
        Some(id) => Some(
            state.directory.record(&proof, id).await.map_err(PageError::internal)?.ok_or_else(PageError::not_found)?,
        ),
        None => None,
    };
    let helping = record.as_ref().map(|r| r.view.display_name.clone());
    match (action, person) {
        (Some(action), Some(person)) => {
            let values = Values {
                account: param("account").parse().ok(),
                method: String::new(),
                details: String::new(),
                on_behalf_of: String::new(),
                pass_minutes: String::new(),
            };
            if !may(&state, &admin, action, Some(person), None).await {
                // Asked properly, so the refusal is audited and says why.
                with_recover_type!(action, A => admin.authorize::<A>(&state, Some(person)).await.map(|_| ()))?;
            }
            let page = review(&state, &admin, &csrf.0, action, person, &reference, &values, None).await?;
            Ok(render(&page))
        }
        (Some(action), None) => {
            let text = param("q");
            let locked_only = matches!(action, RecoveryAction::Unlock | RecoveryAction::UnlockPerson);
            let hits = state.directory.search(&proof, &text, locked_only).await.unwrap_or_default();
            let mut people = Vec::new();
            let now = state.signin.now();
            // The admin's facts once, then the pure rules per hit (the search brings each person's grant):
            // this lists; acting asks for the proof.
            let own = own_grant(&state, &admin).await;
            let permitted = may(&state, &admin, action, None, own.as_ref().map(|(_, g)| g)).await;
            for hit in &hits {
                let needs_view = matches!(action, RecoveryAction::UnlockQa | RecoveryAction::UnenrollQa);
                let view =
                    if needs_view { state.directory.person_view(hit.person.email.as_str()).await.ok() } else { None };
                // Only people this admin may act on: not themself, nobody of equal or higher rank.
                let may_act = own.as_ref().is_some_and(|(me, grant)| {
                    *me != hit.person.id && crate::policy::tiers::outranks(grant, &hit.grant)
                });
                if !permitted || !may_act || !fits(action, hit, view.as_ref()) {
                    continue;
                }
                let Some(a) = hit.accounts.first() else { continue };
                people.push(PersonRow {
                    person_id: hit.person.id.0,
                    name: hit.person.display_name.clone(),
                    username: hit
                        .accounts
                        .iter()
                        .map(|a| a.account.username.to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                    email: hit.person.email.to_string(),
                    source: a.account.source.to_string(),
                    status: hit.person.status.to_string(),
                    locked: if hit
                        .accounts
                        .iter()
                        .any(|a| crate::policy::lockout::LockState::of(&a.account).is_locked(now))
                    {
                        "yes".into()
                    } else {
                        "no".into()
                    },
                    mfa: match (hit.accounts.iter().any(|a| a.has_totp), hit.accounts.iter().any(|a| a.passkeys > 0)) {
                        (true, true) => "authenticator, passkey".into(),
                        (true, false) => "authenticator".into(),
                        (false, true) => "passkey".into(),
                        (false, false) => "none".into(),
                    },
                });
            }
            let mut page = blank(&csrf.0, 2);
            page.action = action.name();
            page.action_title = title(action);
            page.lookup_hint = hint(action);
            page.query = text;
            page.people = people;
            page.more = hits.len() as i64 >= crate::directory::Directory::SEARCH_LIMIT;
            page.reference = reference;
            Ok(render(&page))
        }
        (None, person) => {
            let mut options = Vec::new();
            let grant = if person.is_none() { own_grant(&state, &admin).await.map(|(_, g)| g) } else { None };
            for action in OPTIONS {
                if record.as_ref().is_some_and(|r| !fits_record(action, &r.view)) {
                    continue;
                }
                if may(&state, &admin, action, person, grant.as_ref()).await {
                    let href = match person {
                        Some(p) => {
                            format!("/console/assist?action={}&person={}&reference={reference}", action.name(), p.0)
                        }
                        None => format!("/console/assist?action={}", action.name()),
                    };
                    options.push(AssistOption { href, title: title(action), name: action.name() });
                }
            }
            let mut page = blank(&csrf.0, 1);
            page.helping = helping;
            page.options = options;
            page.reference = reference;
            Ok(render(&page))
        }
    }
}

fn field<'a>(form: &'a HashMap<String, String>, name: &str) -> &'a str {
    form.get(name).map(String::as_str).unwrap_or_default()
}

fn action_form(form: &HashMap<String, String>) -> Result<ActionForm, PageError> {
    let account = match field(form, "account").trim() {
        "" => None,
        a => Some(crate::domain::AccountId(
            a.parse().map_err(|_| PageError::bad_request("The account is not one of this person's."))?,
        )),
    };
    let pass_minutes = match field(form, "pass_minutes").trim() {
        "" => None,
        m => Some(m.parse().map_err(|_| PageError::bad_request("The pass lifetime must be a number of minutes."))?),
    };
    let text = |name: &str| Some(field(form, name).to_owned()).filter(|v| !v.trim().is_empty());
    Ok(ActionForm {
        account,
        method: field(form, "method").to_owned(),
        details: text("details"),
        on_behalf_of: text("on_behalf_of"),
        reference: text("reference"),
        pass_minutes,
        pass_multi_use: field(form, "pass_multi_use") == "1",
        deliver_to: text("deliver_to"),
        second_address_seen: None,
    })
}

fn result_page(outcome: Outcome, action: RecoveryAction, person: PersonId, name: &str) -> Response {
    match outcome {
        Outcome::Done { summary, pass } => render(&ConsoleResultPage {
            title: title(action),
            heading: title(action),
            summary: &summary,
            pass_expires: pass.as_ref().map(|p| crate::assistance::dossier::when(p.expires_at)).unwrap_or_default(),
            pass_multi: pass.as_ref().is_some_and(|p| p.multi_use),
            pass_enrolment: pass.as_ref().is_some_and(|p| p.enrolment),
            pass: pass.map(|p| p.pass),
            person_id: person.0,
            person_name: name,
        }),
        Outcome::Pending { approval } => {
            let summary = format!(
                "Request {approval} is waiting for a second administrator: {name} holds administrator permissions, \
                 so nothing happens until someone who outranks them approves it in Approvals."
            );
            let mut response = render(&ConsoleResultPage {
                title: title(action),
                heading: "Waiting for approval",
                summary: &summary,
                pass: None,
                pass_expires: String::new(),
                pass_multi: false,
                pass_enrolment: false,
                person_id: person.0,
                person_name: name,
            });
            *response.status_mut() = StatusCode::ACCEPTED;
            response
        }
    }
}

/// A step-up code in the form, if any: checked (and counted) like a sign-in step; returns when the session
/// last proved a second factor.
pub(super) async fn step_up(
    state: &AppState,
    admin: &Admin,
    form: &HashMap<String, String>,
    ctx: &crate::signin::RequestContext,
) -> Result<Option<i64>, PageError> {
    let code: String = field(form, "step_up_code").chars().take(64).collect();
    if code.trim().is_empty() {
        return Ok(admin.session.second_factor_at);
    }
    if state.signin.step_up(&admin.session, &code, ctx).await? {
        Ok(Some(state.signin.now()))
    } else {
        Err(PageError::new(
            StatusCode::FORBIDDEN,
            "That authenticator code is not valid: nothing was done. Go back and try a new code.",
        ))
    }
}

pub async fn action_post(
    State(state): State<AppState>,
    admin: Admin,
    Client(ctx): Client,
    Extension(csrf): Extension<CsrfToken>,
    Path((id, action)): Path<(String, String)>,
    ValidForm(form): ValidForm<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let action = RecoveryAction::parse(&action).ok_or_else(PageError::not_found)?;
    let person = id.parse::<i64>().map(PersonId).map_err(|_| PageError::not_found())?;
    with_recover_type!(action, A => run::<A>(&state, &admin, &ctx, &csrf.0, person, &form).await)
}

async fn run<A: Recover>(
    state: &AppState,
    admin: &Admin,
    ctx: &crate::signin::RequestContext,
    csrf: &str,
    person: PersonId,
    form: &HashMap<String, String>,
) -> Result<Response, PageError> {
    // The proof first: a refusal says nothing about the person (403, audited).
    let proof = admin.authorize::<A>(state, Some(person)).await.inspect_err(|_| {
        crate::http::metrics::recovery_action(A::RECOVERY.name(), "refused");
    })?;
    let view_proof = admin.authorize::<SearchPeople>(state, None).await?;
    let record = state
        .directory
        .record(&view_proof, person)
        .await
        .map_err(PageError::internal)?
        .ok_or_else(PageError::not_found)?;
    if field(form, "seen") != fingerprint(&record.view) {
        return Err(PageError::new(
            StatusCode::CONFLICT,
            "This person's record changed since you reviewed it (or the form is not the one the wizard showed): \
             nothing was done. Review it again before you confirm.",
        ));
    }
    let action_form = action_form(form)?;
    let values = Values {
        account: action_form.account.map(|a| a.0),
        method: action_form.method.clone(),
        details: action_form.details.clone().unwrap_or_default(),
        on_behalf_of: action_form.on_behalf_of.clone().unwrap_or_default(),
        pass_minutes: field(form, "pass_minutes").to_owned(),
    };
    let reference = action_form.reference.clone().unwrap_or_default();
    let second_factor_at = step_up(state, admin, form, ctx).await?;
    let result = state.recovery.execute(proof, &action_form, second_factor_at).await;
    crate::http::metrics::recovery_action(A::RECOVERY.name(), crate::http::api_admin::action_outcome(&result));
    match result {
        Ok(outcome) => Ok(result_page(outcome, A::RECOVERY, person, &record.view.display_name)),
        Err(e @ (RecoveryError::Form(_) | RecoveryError::StepUp)) => {
            let status =
                if matches!(e, RecoveryError::StepUp) { StatusCode::FORBIDDEN } else { StatusCode::BAD_REQUEST };
            let message = e.to_string();
            let page = review(state, admin, csrf, A::RECOVERY, person, &reference, &values, Some(&message)).await?;
            Ok(with_status(&page, status))
        }
        Err(e) => Err(PageError::from(e)),
    }
}

pub async fn approvals_get(
    State(state): State<AppState>,
    admin: Admin,
    Extension(csrf): Extension<CsrfToken>,
) -> Result<Response, PageError> {
    let proof = admin.authorize::<ViewRequests>(&state, None).await?;
    let settings = state.settings();
    let fresh = rules::fresh(admin.session.second_factor_at, state.signin.now(), &settings.recovery);
    let mut rows = Vec::new();
    for p in state.recovery.pending(&proof).await.map_err(PageError::internal)? {
        let Some(action) = RecoveryAction::parse(&p.approval.action) else { continue };
        let person = p.approval.person;
        let own = p.approval.requested_by_account == admin.account_id;
        // Shown to whoever may decide it, and to the admin who asked (without the buttons); not to the person
        // it is about, nor to admins who could not act on them anyway.
        let may_decide = !own && with_recover_type!(action, A => admin.may::<A>(&state, Some(person)).await);
        if !own && !may_decide {
            continue;
        }
        let form = &p.form;
        let mut what = Vec::new();
        if let Some(minutes) = form.pass_minutes {
            let uses = if form.pass_multi_use { "multi-use" } else { "one-time" };
            what.push(format!("{uses} pass for {minutes} minutes"));
        }
        if let Some(reference) = &form.reference {
            what.push(format!("resolves {reference}"));
        }
        if let Some(address) = &form.second_address_seen {
            what.push(format!("sent to the person's second address, {address}"));
        }
        rows.push(ApprovalRow {
            id: p.approval.id,
            at: crate::assistance::dossier::when(p.approval.created_at),
            action: title(action).to_owned(),
            action_name: action.name(),
            terms: what.join("; "),
            person_id: person.0,
            person: p.person_name,
            requested_by: labels::actor(&p.approval.requested_by),
            reason: form.method.clone(),
            on_behalf_of: form.on_behalf_of.clone().unwrap_or_default(),
            details: form.details.clone().unwrap_or_default(),
            expires: crate::assistance::dossier::when(p.approval.expires_at),
            own,
            step_up: !fresh && rules::needs_step_up(action, &settings.permissions),
        });
    }
    Ok(render(&ConsoleApprovalsPage {
        title: "Approvals",
        csrf: &csrf.0,
        hours: settings.recovery.approval_hours,
        rows,
    }))
}

pub async fn decision_post(
    State(state): State<AppState>,
    admin: Admin,
    Client(ctx): Client,
    Path((id, decision)): Path<(String, String)>,
    ValidForm(form): ValidForm<HashMap<String, String>>,
) -> Result<Response, PageError> {
    // Who works the queue first: anyone else learns nothing, not even whether the number exists.
    admin.authorize::<ViewRequests>(&state, None).await?;
    let approve = match decision.as_str() {
        "approve" => true,
        "reject" => false,
        _ => return Err(PageError::not_found()),
    };
    let id = id.parse::<i64>().map_err(|_| PageError::not_found())?;
    let approval = state.recovery.approval(id).await.map_err(PageError::internal)?;
    let Some((approval, action)) = approval.and_then(|a| RecoveryAction::parse(&a.action).map(|r| (a, r))) else {
        return Err(not_yours());
    };
    with_recover_type!(action, A => decide::<A>(&state, &admin, &ctx, id, approval.person, approve, &form).await)
}

/// One answer for a request that does not exist and one this admin may not decide (it is about them, they
/// lack the permission, or the person outranks them): the subject of a request must not learn of it here.
fn not_yours() -> PageError {
    PageError::new(StatusCode::FORBIDDEN, "There is no request with this number that you may decide.")
}

async fn decide<A: Recover>(
    state: &AppState,
    admin: &Admin,
    ctx: &crate::signin::RequestContext,
    id: i64,
    person: PersonId,
    approve: bool,
    form: &HashMap<String, String>,
) -> Result<Response, PageError> {
    // The decider's own proof for the action: permission and tier over the subject, never on themself
    // (refused as audited, answered like a missing request).
    let proof = admin.authorize::<A>(state, Some(person)).await.map_err(|e| match e.status {
        StatusCode::FORBIDDEN => not_yours(),
        _ => e,
    })?;
    let name = state
        .directory
        .person_by_id(person)
        .await
        .map_err(PageError::internal)?
        .map(|p| p.display_name)
        .unwrap_or_default();
    // Reserved, run and settled in a task of its own: a browser that goes away halfway must not leave the
    // request reserved ("running") with nobody to finish it.
    let recovery = state.recovery.clone();
    if !approve {
        tokio::spawn(async move { recovery.reject(proof, id).await })
            .await
            .map_err(PageError::internal)?
            .map_err(PageError::from)?;
        let summary = format!("Request {id} was rejected: nothing was done.");
        return Ok(render(&ConsoleResultPage {
            title: "Rejected",
            heading: "Rejected",
            summary: &summary,
            pass: None,
            pass_expires: String::new(),
            pass_multi: false,
            pass_enrolment: false,
            person_id: person.0,
            person_name: &name,
        }));
    }
    let second_factor_at = step_up(state, admin, form, ctx).await?;
    let outcome = tokio::spawn(async move { recovery.approve(proof, id, second_factor_at).await })
        .await
        .map_err(PageError::internal)?;
    // The approved action runs now: counted here, as direct actions are.
    crate::http::metrics::recovery_action(A::RECOVERY.name(), crate::http::api_admin::action_outcome(&outcome));
    let outcome = outcome.map_err(PageError::from)?;
    Ok(result_page(outcome, A::RECOVERY, person, &name))
}
