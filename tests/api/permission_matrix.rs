//! The permission matrix (SPEC §1, issue 9): every recovery action × every kind of actor × every target
//! rank. What an actor may do is the configured `[permissions]` table and the privilege tiers, nothing more:
//! the console's Actions menu shows exactly that set (less what does not fit the person now, such as an unlock
//! for someone not locked), a POST outside it is a 403 with an audit row, and a
//! POST inside it passes the gate (and stops at the stale confirmation this test sends, so nothing runs).
//! The CLI acts as the system, the operator on the host, who stands outside the tiers.

use crate::helpers::*;
use crate::recovery::{METHOD, admin, get, person_id};
use lifeline::domain::Grant;
use lifeline::policy::permissions::{PermissionSettings, RecoveryAction, Requirement};
use reqwest::StatusCode;
use std::collections::BTreeSet;

/// The rank SPEC §1 gives a grant, written out here rather than taken from the code under test.
fn spec_rank(grant: &Grant) -> u8 {
    match grant {
        g if g.directory_admin => 5,
        g => g.dpa_level + u8::from(g.expert_mode),
    }
}

/// What the matrix expects: the table's requirement for the action met, and for viewing people too (an
/// admin acts on a record they can see), on a different person who ranks strictly lower.
fn expected(table: &PermissionSettings, action: RecoveryAction, actor: &Grant, target: Option<&Grant>) -> bool {
    let meets = |Requirement { dpa, expert }: Requirement| actor.dpa_level >= dpa && (!expert || actor.expert_mode);
    meets(table.of(action)) && meets(table.view_people) && target.is_some_and(|t| spec_rank(actor) > spec_rank(t))
}

/// Every kind of actor: DPA 0–3 with and without expert mode, a directory admin, and a line manager (rank
/// 0 with a report; managers get their delegated reset in the managers issue, so nothing here yet).
fn actors() -> Vec<(&'static str, Grant)> {
    let mut all = Vec::new();
    for (name, dpa_level, expert_mode) in [
        ("dpa0", 0, false),
        ("dpa0x", 0, true),
        ("dpa1", 1, false),
        ("dpa1x", 1, true),
        ("dpa2", 2, false),
        ("dpa2x", 2, true),
        ("dpa3", 3, false),
        ("dpa3x", 3, true),
    ] {
        all.push((name, Grant { dpa_level, expert_mode, ..Default::default() }));
    }
    all.push(("diradmin", Grant { directory_admin: true, ..Default::default() }));
    all.push(("manager", Grant::default()));
    all
}

/// One target of every rank 0–5.
fn targets() -> Vec<(&'static str, Grant)> {
    let g = |dpa_level, expert_mode| Grant { dpa_level, expert_mode, ..Default::default() };
    vec![
        ("rank0", g(0, false)),
        ("rank1", g(1, false)),
        ("rank2", g(2, false)),
        ("rank3", g(3, false)),
        ("rank4", g(3, true)),
        ("rank5", Grant { directory_admin: true, ..Default::default() }),
    ]
}

/// The `action=` links of the Actions menu on a person's record (empty when the record is refused).
fn menu(record: &str) -> BTreeSet<String> {
    record
        .split("/console/assist?action=")
        .skip(1)
        .filter_map(|rest| rest.split('&').next())
        .map(str::to_owned)
        .collect()
}

async fn refusals(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM audit_event WHERE action = 'authz.refused'")
        .fetch_one(app.db.pool())
        .await
        .unwrap()
}

/// The front a matrix is checked through.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Front {
    Console,
    /// The admin API with an expert token (so the step-up is never what refuses).
    Api,
}

async fn check_matrix(app: &TestApp, table: &PermissionSettings, front: Front) {
    let mut targets_by_id = Vec::new();
    for (name, grant) in targets() {
        let person = admin(app, name, grant).await;
        targets_by_id.push((name, person_id(app, &person).await, grant));
    }
    let mut actors_signed_up = Vec::new();
    for (actor_name, actor_grant) in actors() {
        let actor = admin(app, actor_name, actor_grant).await;
        actors_signed_up.push((actor_name, actor_grant, person_id(app, &actor).await, actor));
    }
    // The manager's report: a rank-0 person in the manager's reporting line.
    let mut new = new_person("Rita Report", "rita@example.org", "rita");
    new.manager_email = Some(lifeline::domain::EmailAddress::parse("manager@example.org").unwrap());
    let report = app.add(new, true).await;
    let report_id = person_id(app, &report).await;

    let mut checked = 0;
    for (actor_name, actor_grant, actor_id, actor) in actors_signed_up {
        let console = app.sign_in(&actor).await;
        let csrf = app.csrf(&console).await;
        let token = if front == Front::Api {
            let proof =
                system::<lifeline::authz::IssueToken>(&app.state, Some(lifeline::domain::PersonId(actor_id))).await;
            app.state.tokens.create(proof, "matrix", 60, true).await.unwrap().secret
        } else {
            String::new()
        };
        let mut subjects: Vec<(&str, i64, Option<Grant>)> =
            targets_by_id.iter().map(|(n, id, g)| (*n, *id, Some(*g))).collect();
        subjects.push(("report", report_id, Some(Grant::default())));
        subjects.push(("self", actor_id, None));
        for (target_name, target_id, target_grant) in subjects {
            let allowed: BTreeSet<String> = RecoveryAction::ALL
                .into_iter()
                .filter(|a| expected(table, *a, &actor_grant, target_grant.as_ref()))
                .map(|a| a.name().to_owned())
                .collect();
            // The menu offers what is allowed and fits the person now: every target here is active, unlocked,
            // with an authenticator and no security questions.
            let fits = [
                "send-access-email",
                "send-magic-link",
                "send-one-time-password",
                "send-recovery-code",
                "issue-temporary-access-pass",
                "issue-enrolment-code",
                "reset-mfa",
                "disable",
            ];
            let offered: BTreeSet<String> = allowed.iter().filter(|a| fits.contains(&a.as_str())).cloned().collect();
            if front == Front::Console {
                let (_, record) = get(&console, &app.url(&format!("/console/people/{target_id}"))).await;
                assert_eq!(menu(&record), offered, "{actor_name} on {target_name}: the Actions menu");
            }
            for action in RecoveryAction::ALL {
                let before = refusals(app).await;
                let response = match front {
                    Front::Console => console
                        .post(app.url(&format!("/console/people/{target_id}/actions/{}", action.name())))
                        .form(&[("csrf", csrf.as_str()), ("seen", "stale"), ("method", METHOD)]),
                    // A reason that is not one of the methods: an allowed call passes the gate and stops there.
                    Front::Api => browser()
                        .post(app.url(&format!("/api/v1/people/{target_id}/actions/{}", action.name())))
                        .bearer_auth(&token)
                        .json(&serde_json::json!({ "reason": "not one of the methods" })),
                }
                .send()
                .await
                .unwrap();
                let status = response.status();
                let case = format!("{actor_name} {} on {target_name}", action.name());
                if allowed.contains(action.name()) {
                    let stopped = match front {
                        Front::Console => status == StatusCode::CONFLICT,
                        Front::Api => status == StatusCode::UNPROCESSABLE_ENTITY || status == StatusCode::CONFLICT,
                    };
                    assert!(stopped, "{case}: passes the gate, stops at the stale or bad form ({status})");
                    assert_eq!(refusals(app).await, before, "{case}");
                } else {
                    assert_eq!(status, StatusCode::FORBIDDEN, "{case}");
                    assert_eq!(refusals(app).await, before + 1, "{case}: the refusal is audited");
                    let body = response.text().await.unwrap_or_default();
                    assert!(!body.contains(&format!("{target_name}@example.org")), "{case}: {body}");
                }
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 10 * 8 * RecoveryAction::ALL.len());
    // Nothing ran: no email to anyone, no recovery audit row.
    let emails: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox_email").fetch_one(app.db.pool()).await.unwrap();
    assert_eq!(emails, 0);
}

#[tokio::test]
async fn the_console_allows_exactly_the_default_table_within_the_tiers() {
    each_backend(async |app: TestApp| check_matrix(&app, &PermissionSettings::default(), Front::Console).await).await;
}

#[tokio::test]
async fn the_api_allows_the_same_set_as_the_console() {
    each_backend(async |app: TestApp| check_matrix(&app, &PermissionSettings::default(), Front::Api).await).await;
}

/// A stricter and a looser table than SPEC's: the console follows the configuration, not a built-in list.
fn custom_table() -> PermissionSettings {
    PermissionSettings {
        unlock: Requirement { dpa: 3, expert: true },
        send_recovery_code: Requirement { dpa: 1, expert: false },
        disable: Requirement { dpa: 0, expert: false },
        ..PermissionSettings::default()
    }
}

#[tokio::test]
async fn the_console_follows_a_configured_table() {
    each_backend_with(
        |s| s.permissions = custom_table(),
        async |app: TestApp| check_matrix(&app, &custom_table(), Front::Console).await,
    )
    .await;
}

/// The CLI is the operator on the host: it acts as the system, outside the tiers, on anyone, even the
/// highest-ranked directory admin (the break-glass for an admin who lost their own authenticator).
#[tokio::test]
async fn the_cli_acts_as_the_system_on_every_rank() {
    each_backend(async |app: TestApp| {
        for (name, grant) in targets() {
            let person = admin(&app, name, grant).await;
            let run = |args: &[&str]| run_lifeline(app.dir(), &app.db_url(), args, "", &[]);
            for args in [
                vec!["person", "unlock", &person.email, "--reason", "verified in person"],
                vec!["person", "reset-mfa", &person.email, "--reason", "verified in person"],
                vec!["person", "disable", &person.email, "--reason", "verified in person"],
                vec!["person", "enable", &person.email, "--reason", "verified in person"],
            ] {
                let out = run(&args);
                assert!(out.status.success(), "{name}: {args:?}: {}", stderr(&out));
            }
            let json = app.person_json(&person.email).await;
            assert_eq!(json["status"], "active", "{name}");
            assert_eq!(json["accounts"][0]["mfa"]["totp_enabled"], false, "{name}");
        }
        let refused = refusals(&app).await;
        assert_eq!(refused, 0, "the system is never refused");
        let actors: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT actor FROM audit_event WHERE action IN ('reset-mfa', 'disable', 'enable')",
        )
        .fetch_all(app.db.pool())
        .await
        .unwrap();
        assert_eq!(actors, vec!["system".to_owned()]);
    })
    .await;
}
