//! The admin JSON API with personal tokens: the same authorisation as the console, for the token's person as
//! they are at each call; refusals are 403 and audited; bad fields are 422; every change names the token.

use crate::helpers::*;
use crate::recovery::{METHOD, admin, person_id};
use lifeline::domain::{Grant, PersonId};
use reqwest::StatusCode;

/// A token for `person`, made as the CLI makes one.
pub(crate) async fn token_for(app: &TestApp, person: &Person, name: &str, minutes: u32, expert: bool) -> String {
    let id = PersonId(person_id(app, person).await);
    let proof = system::<lifeline::authz::IssueToken>(&app.state, Some(id)).await;
    app.state.tokens.create(proof, name, minutes, expert).await.unwrap_or_else(|e| panic!("{e}")).secret
}

pub(crate) async fn call(
    app: &TestApp,
    token: Option<&str>,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> (StatusCode, serde_json::Value) {
    let mut request = browser().request(method, app.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let json = response.json().await.unwrap_or(serde_json::Value::Null);
    if !status.is_success() {
        assert_eq!(content_type, "application/problem+json", "{status}: {json}");
    }
    (status, json)
}

async fn get(app: &TestApp, token: Option<&str>, path: &str) -> (StatusCode, serde_json::Value) {
    call(app, token, reqwest::Method::GET, path, None).await
}

async fn act(
    app: &TestApp,
    token: &str,
    person: i64,
    action: &str,
    body: serde_json::Value,
) -> (StatusCode, serde_json::Value) {
    call(app, Some(token), reqwest::Method::POST, &format!("/api/v1/people/{person}/actions/{action}"), Some(body))
        .await
}

async fn refusals(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM audit_event WHERE action = 'authz.refused'")
        .fetch_one(app.db.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_helpdesk_token_finds_lou_unlocks_her_with_a_reason_and_the_audit_row_names_the_token() {
    each_backend(async |app: TestApp| {
        let harry = admin(&app, "harry", Grant { dpa_level: 1, ..Default::default() }).await;
        let lou = app.add_person("lou", true).await;
        for _ in 0..5 {
            app.post_sign_in(&browser(), &lou.username, "not-lous-password-at-all").await;
        }
        let lou_id = person_id(&app, &lou).await;
        let token = token_for(&app, &harry, "chat bot", 60, false).await;

        let (status, record) = get(&app, Some(&token), &format!("/api/v1/people/{lou_id}")).await;
        assert_eq!(status, StatusCode::OK, "{record}");
        assert_eq!(record["person"]["accounts"][0]["locked"], true);
        assert_eq!(record["person"]["email"], lou.email);

        let body = serde_json::json!({ "reason": METHOD, "on_behalf_of": "Mona Manager", "details": "called back" });
        let (status, done) = act(&app, &token, lou_id, "unlock-person", body).await;
        assert_eq!(status, StatusCode::OK, "{done}");
        assert_eq!(done["status"], "done");
        assert_eq!(app.person_json(&lou.email).await["accounts"][0]["locked"], false);
        let (actor, reason, on_behalf_of): (String, Option<String>, Option<String>) = sqlx::query_as(
            "SELECT actor, reason, on_behalf_of FROM audit_event WHERE action = 'unlock-person' ORDER BY audit_event_id DESC",
        )
        .fetch_one(app.db.pool())
        .await
        .unwrap();
        assert!(actor.starts_with("token:") && actor.ends_with(":harry:chat bot"), "{actor}");
        assert_eq!((reason.as_deref(), on_behalf_of.as_deref()), (Some(METHOD), Some("Mona Manager")));

        let (status, mine) = get(&app, Some(&token), "/api/v1/tokens").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(mine["tokens"][0]["name"], "chat bot");
        assert_eq!(mine["tokens"][0]["this_one"], true);
        assert!(!mine.to_string().contains(&token[4..]), "no secret in the list");
    })
    .await;
}

#[tokio::test]
async fn no_token_a_wrong_revoked_or_expired_one_is_401_and_a_disabled_person_or_a_lost_grant_loses_it_at_once() {
    each_backend(async |app: TestApp| {
        let harry = admin(&app, "harry", Grant { dpa_level: 1, ..Default::default() }).await;
        let sam = app.add_person("sam", true).await;
        let sam_id = person_id(&app, &sam).await;
        let path = format!("/api/v1/people/{sam_id}");
        for token in [None, Some("llt_not-a-token"), Some("Basic abc"), Some("")] {
            let (status, problem) = get(&app, token, &path).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{token:?}");
            assert_eq!(problem["code"], "unauthorized");
        }
        let token = token_for(&app, &harry, "bot", 30, false).await;
        assert_eq!(get(&app, Some(&token), &path).await.0, StatusCode::OK);
        // The scheme is case-insensitive; the token itself is not.
        let lower =
            browser().get(app.url(&path)).header("authorization", format!("bearer {token}")).send().await.unwrap();
        assert_eq!(lower.status(), StatusCode::OK);
        let upper = browser().get(app.url(&path)).bearer_auth(token.to_uppercase()).send().await.unwrap();
        assert_eq!(upper.status(), StatusCode::UNAUTHORIZED);
        // A name with invisible characters (a right-to-left override) could pass for another's token.
        let proof =
            system::<lifeline::authz::IssueToken>(&app.state, Some(PersonId(person_id(&app, &harry).await))).await;
        assert!(app.state.tokens.create(proof, "\u{202e}olga", 30, false).await.is_err());

        // Expired at its time.
        app.clock.advance(31 * 60);
        assert_eq!(get(&app, Some(&token), &path).await.0, StatusCode::UNAUTHORIZED, "expired");

        // Revoked: refused on the very next call.
        let token = token_for(&app, &harry, "bot 2", 60, false).await;
        let id: i64 =
            sqlx::query_scalar("SELECT MAX(api_token_id) FROM api_token").fetch_one(app.db.pool()).await.unwrap();
        assert_eq!(get(&app, Some(&token), &path).await.0, StatusCode::OK);
        assert!(app.state.tokens.revoke(&lifeline::audit::Actor::System, id).await.unwrap());
        assert_eq!(get(&app, Some(&token), &path).await.0, StatusCode::UNAUTHORIZED, "revoked");

        // A lost grant loses the action on the next call; a disabled person loses everything.
        let token = token_for(&app, &harry, "bot 3", 60, false).await;
        let harry_id = PersonId(person_id(&app, &harry).await);
        let proof = system(&app.state, Some(harry_id)).await;
        app.state.directory.set_grant(proof, Grant::default()).await.unwrap();
        let before = refusals(&app).await;
        let (status, problem) = get(&app, Some(&token), &path).await;
        assert_eq!((status, problem["code"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")));
        assert_eq!(refusals(&app).await, before + 1, "audited");
        let proof = system(&app.state, Some(harry_id)).await;
        app.state.directory.set_grant(proof, Grant { dpa_level: 1, ..Default::default() }).await.unwrap();
        assert_eq!(get(&app, Some(&token), &path).await.0, StatusCode::OK);
        let out =
            run_lifeline(app.dir(), &app.db_url(), &["person", "disable", &harry.email, "--reason", "left"], "", &[]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(get(&app, Some(&token), &path).await.0.is_client_error(), "disabled");
        // Enabled again, the token stays dead: the disabling revoked it.
        let out =
            run_lifeline(app.dir(), &app.db_url(), &["person", "enable", &harry.email, "--reason", "back"], "", &[]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(get(&app, Some(&token), &path).await.0, StatusCode::UNAUTHORIZED, "revoked by the disabling");
    })
    .await;
}

#[tokio::test]
async fn a_token_dies_with_this_wasnt_me_and_a_password_change_and_a_locked_account_cannot_use_one() {
    each_backend(async |app: TestApp| {
        let harry = admin(&app, "harry", Grant { dpa_level: 1, ..Default::default() }).await;
        let sam = app.add_person("sam", true).await;
        let path = format!("/api/v1/people/{}", person_id(&app, &sam).await);

        // An account locked (by an admin, by failures, by "this wasn't me") acts nowhere over the API.
        let token = token_for(&app, &harry, "bot", 60, false).await;
        assert_eq!(get(&app, Some(&token), &path).await.0, StatusCode::OK);
        for _ in 0..5 {
            app.post_sign_in(&browser(), &harry.username, "not-harrys-password-at-all").await;
        }
        let (status, problem) = get(&app, Some(&token), &path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
        let out = run_lifeline(
            app.dir(),
            &app.db_url(),
            &["person", "unlock", &harry.email, "--reason", "called back"],
            "",
            &[],
        );
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(get(&app, Some(&token), &path).await.0, StatusCode::OK, "unlocked, the token works again");

        // A password change ends every token of the account (a token made from a hijacked session too).
        let console = app.sign_in(&harry).await;
        let fields = [
            ("current_password", PASSWORD),
            ("new_password", "granite-meadow-lantern-19"),
            ("confirm_password", "granite-meadow-lantern-19"),
        ];
        let changed = app.post_form(&console, "/account/password", &fields).await;
        assert!(changed.status().is_redirection(), "{}", changed.status());
        assert_eq!(get(&app, Some(&token), &path).await.0, StatusCode::UNAUTHORIZED, "revoked by the new password");

        // "This wasn't me" from a notice ends the tokens with the sessions.
        let token = token_for(&app, &harry, "bot 2", 60, false).await;
        assert_eq!(get(&app, Some(&token), &path).await.0, StatusCode::OK);
        // An operator sends Harry a magic link (as the system: no four-eyes); its notice has "this wasn't me".
        let harry_id = PersonId(person_id(&app, &harry).await);
        let proof = system::<lifeline::authz::SendMagicLink>(&app.state, Some(harry_id)).await;
        let form = lifeline::recovery::ActionForm { method: "asked by phone".into(), ..Default::default() };
        app.state.recovery.execute(proof, &form, None).await.unwrap();
        assert_eq!(get(&app, Some(&token), &path).await.0, StatusCode::OK, "a magic link ends no token");
        let notice = emails_for(&app, Some(&harry.email)).await.pop().unwrap().1;
        let start = notice.find("/not-me?token=").unwrap();
        let link = notice[start..].split_whitespace().next().unwrap().to_owned();
        let me = browser();
        let page = me.get(app.url(&link)).send().await.unwrap().text().await.unwrap();
        let token_value = link.split("token=").nth(1).unwrap();
        let csrf = csrf_of(&page);
        let reported =
            me.post(app.url("/not-me")).form(&[("token", token_value), ("csrf", &csrf)]).send().await.unwrap();
        assert!(reported.status().is_success(), "{}", reported.status());
        assert_eq!(get(&app, Some(&token), &path).await.0, StatusCode::UNAUTHORIZED, "revoked by this wasn't me");
        let state: String =
            sqlx::query_scalar("SELECT name FROM api_token WHERE revoked_at IS NULL AND name = 'bot 2'")
                .fetch_optional(app.db.pool())
                .await
                .unwrap()
                .unwrap_or_default();
        assert!(state.is_empty());
    })
    .await;
}

#[tokio::test]
async fn refusals_are_403_and_audited_bad_fields_422_unknown_ids_404_and_expert_actions_need_an_expert_token() {
    each_backend(async |app: TestApp| {
        let ada = admin(&app, "ada", Grant { dpa_level: 3, expert_mode: true, ..Default::default() }).await;
        let harry = admin(&app, "harry", Grant { dpa_level: 1, ..Default::default() }).await;
        let hank = admin(&app, "hank", Grant { dpa_level: 1, ..Default::default() }).await;
        let sam = app.add_person("sam", true).await;
        let (sam_id, hank_id, harry_id) =
            (person_id(&app, &sam).await, person_id(&app, &hank).await, person_id(&app, &harry).await);
        let harry_token = token_for(&app, &harry, "helpdesk", 60, false).await;
        let ok = serde_json::json!({ "reason": METHOD });

        // By permission and by tier: 403, audited, nothing about the target.
        for (person, action) in [(sam_id, "send-recovery-code"), (hank_id, "send-access-email"), (harry_id, "unlock")] {
            let before = refusals(&app).await;
            let (status, problem) = act(&app, &harry_token, person, action, ok.clone()).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{action} on {person}: {problem}");
            assert_eq!(refusals(&app).await, before + 1, "{action}: audited");
            assert!(!problem.to_string().contains("hank@example.org"), "{problem}");
        }
        // Bad fields: 422, nothing sent.
        for body in [
            serde_json::json!({}),
            serde_json::json!({ "reason": "because" }),
            serde_json::json!({ "reason": METHOD, "colour": "blue" }),
            serde_json::json!({ "reason": METHOD, "details": "x".repeat(1001) }),
            serde_json::json!({ "reason": 7 }),
        ] {
            let (status, problem) = act(&app, &harry_token, sam_id, "send-access-email", body.clone()).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {problem}");
        }
        let malformed = browser()
            .post(app.url(&format!("/api/v1/people/{sam_id}/actions/send-access-email")))
            .bearer_auth(&harry_token)
            .header("content-type", "application/json")
            .body("{not json")
            .send()
            .await
            .unwrap();
        assert!(malformed.status().is_client_error());
        assert!(emails_for(&app, Some(&sam.email)).await.is_empty(), "nothing sent");
        // Unknown ids and actions: 404.
        for path in ["/api/v1/people/999999", "/api/v1/people/abc", "/api/v1/people/-3"] {
            assert_eq!(get(&app, Some(&harry_token), path).await.0, StatusCode::NOT_FOUND, "{path}");
        }
        let (status, _) = act(&app, &harry_token, sam_id, "make-coffee", ok.clone()).await;
        assert_eq!(status, StatusCode::NOT_FOUND);

        // An expert action with an ordinary token is 403; an expert token (an hour at most) runs it.
        let plain = token_for(&app, &ada, "plain", 60, false).await;
        let (status, problem) = act(&app, &plain, sam_id, "send-recovery-code", ok.clone()).await;
        assert_eq!((status, problem["code"].as_str()), (StatusCode::FORBIDDEN, Some("expert_token_required")));
        let expert = token_for(&app, &ada, "expert", 60, true).await;
        let (status, done) = act(&app, &expert, sam_id, "send-recovery-code", ok.clone()).await;
        assert_eq!(status, StatusCode::OK, "{done}");
        let (status, pass) = act(
            &app,
            &expert,
            sam_id,
            "issue-temporary-access-pass",
            serde_json::json!({ "reason": METHOD, "pass_minutes": 30 }),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{pass}");
        assert!(pass["pass"]["pass"].as_str().is_some_and(|p| p.len() == 34), "shown once: {pass}");

        // Four-eyes: an action on an admin waits, 202 with the approval.
        let (status, pending) = act(&app, &expert, harry_id, "reset-mfa", ok.clone()).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{pending}");
        assert_eq!(pending["status"], "pending");
        assert!(pending["approval"].as_i64().is_some());
    })
    .await;
}

#[tokio::test]
async fn a_thousand_people_paged_through_with_the_cursor_each_listed_exactly_once() {
    each_backend(async |app: TestApp| {
        let harry = admin(&app, "harry", Grant { dpa_level: 1, ..Default::default() }).await;
        use lifeline::store::DirectoryStore;
        let entry = lifeline::audit::AuditEntry::new(1, &lifeline::audit::Actor::System, "test", "success");
        // Straight into the store (no password hashing): a thousand people, some with the same name.
        for n in 0..1000 {
            let name = if n % 10 == 0 { "Same Name".to_owned() } else { format!("Person {n:04}") };
            let new = new_person(&name, &format!("p{n}@example.org"), &format!("p{n}"));
            app.db.create_person(&new, 1, &entry).await.unwrap();
        }
        let token = token_for(&app, &harry, "sync job", 60, false).await;
        let mut seen = std::collections::BTreeSet::new();
        let mut listed = 0;
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let path = match &cursor {
                Some(c) => format!("/api/v1/people?query=example.org&limit=37&cursor={c}"),
                None => "/api/v1/people?query=example.org&limit=37".to_owned(),
            };
            let (status, page) = get(&app, Some(&token), &path).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            for p in page["people"].as_array().unwrap() {
                seen.insert(p["id"].as_i64().unwrap());
                listed += 1;
            }
            pages += 1;
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
            assert!(pages < 100, "the cursor moves on");
        }
        // The thousand, Harry, and nobody twice.
        assert_eq!(listed, 1001);
        assert_eq!(seen.len(), 1001);

        for bad in ["limit=0", "limit=201", "limit=ten", "locked=maybe", "cursor=zz", "colour=blue", "limit=5&limit=6"]
        {
            let (status, problem) = get(&app, Some(&token), &format!("/api/v1/people?{bad}")).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {problem}");
        }
        let (status, locked) = get(&app, Some(&token), "/api/v1/people?locked=true").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(locked["people"].as_array().map(Vec::len), Some(0));
    })
    .await;
}

#[tokio::test]
async fn four_eyes_over_the_api_and_the_audit_log_for_auditors() {
    each_backend(async |app: TestApp| {
        let expert_grant = Grant { dpa_level: 3, expert_mode: true, ..Default::default() };
        let ada = admin(&app, "ada", expert_grant).await;
        let carol = admin(&app, "carol", expert_grant).await;
        let harry = admin(&app, "harry", Grant { dpa_level: 1, ..Default::default() }).await;
        let audrey = admin(&app, "audrey", Grant { auditor: true, dpa_level: 1, ..Default::default() }).await;
        let harry_id = person_id(&app, &harry).await;
        let ada_token = token_for(&app, &ada, "ada's bot", 60, true).await;
        let carol_token = token_for(&app, &carol, "carol's bot", 60, true).await;
        let harry_token = token_for(&app, &harry, "harry's bot", 60, false).await;

        let (status, pending) =
            act(&app, &ada_token, harry_id, "reset-mfa", serde_json::json!({ "reason": METHOD })).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{pending}");
        let id = pending["approval"].as_i64().unwrap();

        let (_, mine) = get(&app, Some(&ada_token), "/api/v1/approvals").await;
        assert_eq!(mine["approvals"][0]["yours"], true);
        let (_, subject) = get(&app, Some(&harry_token), "/api/v1/approvals").await;
        assert_eq!(subject["approvals"].as_array().map(Vec::len), Some(0), "the subject does not see it");
        let (_, theirs) = get(&app, Some(&carol_token), "/api/v1/approvals").await;
        assert_eq!(theirs["approvals"][0]["id"], id);
        assert_eq!(theirs["approvals"][0]["reason"], METHOD);

        let post = async |token: &str, path: &str| call(&app, Some(token), reqwest::Method::POST, path, None).await;
        let (status, _) = post(&ada_token, &format!("/api/v1/approvals/{id}/approve")).await;
        assert_eq!(status, StatusCode::CONFLICT, "the requester cannot approve");
        let (status, _) = post(&harry_token, &format!("/api/v1/approvals/{id}/approve")).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "nor the subject");
        let (status, _) = post(&carol_token, "/api/v1/approvals/999999/approve").await;
        assert_eq!(status, StatusCode::FORBIDDEN, "a missing number is answered alike");
        let (status, done) = post(&carol_token, &format!("/api/v1/approvals/{id}/approve")).await;
        assert_eq!(status, StatusCode::OK, "{done}");
        assert_eq!(app.person_json(&harry.email).await["accounts"][0]["mfa"]["totp_enabled"], false);
        let (status, _) = post(&carol_token, &format!("/api/v1/approvals/{id}/approve")).await;
        assert_eq!(status, StatusCode::CONFLICT, "it runs once");

        // The audit log is the auditors'.
        let (status, _) = get(&app, Some(&ada_token), "/api/v1/audit").await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let audrey_token = token_for(&app, &audrey, "siem", 60, false).await;
        let (status, log) =
            get(&app, Some(&audrey_token), &format!("/api/v1/audit?action=reset-mfa&person={harry_id}")).await;
        assert_eq!(status, StatusCode::OK, "{log}");
        let events = log["events"].as_array().unwrap();
        assert_eq!(events.len(), 1, "{log}");
        assert!(events[0]["actor"].as_str().unwrap().ends_with(":carol:carol's bot"), "{log}");
        for bad in ["since=yesterday", "person=abc", "colour=blue"] {
            let (status, _) = get(&app, Some(&audrey_token), &format!("/api/v1/audit?{bad}")).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        }
    })
    .await;
}

#[tokio::test]
async fn no_token_password_or_code_appears_in_any_log_line_even_at_debug() {
    each_backend(async |app: TestApp| {
        let harry = admin(&app, "harry", Grant { dpa_level: 1, ..Default::default() }).await;
        let sam = app.add_person("sam", true).await;
        let sam_id = person_id(&app, &sam).await;
        let token = token_for(&app, &harry, "bot", 60, false).await;
        let env = [("RUST_LOG", "debug")];
        let pair = crate::instances::Instances::start(app.dir(), &app.db_url(), 1, &env).await;

        let (browser, first) = pair.sign_in(0, &harry.username, &harry.password).await;
        assert_eq!(location(&first), "/signin/mfa");
        let html = browser.get(pair.url(0, "/signin/mfa")).send().await.unwrap().text().await.unwrap_or_default();
        let totp = code(harry.totp.as_ref().unwrap(), 1);
        let second = browser
            .post(pair.url(0, "/signin/mfa"))
            .form(&[("code", totp.as_str()), ("csrf", &csrf_of(&html))])
            .send()
            .await
            .unwrap();
        assert!(second.status().is_redirection(), "{}", second.status());
        let response = crate::helpers::browser()
            .get(pair.url(0, &format!("/api/v1/people/{sam_id}")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let refused = crate::helpers::browser()
            .get(pair.url(0, "/api/v1/people/1"))
            .bearer_auth(format!("{token}x"))
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;

        let logs = pair.logs();
        assert!(logs.lines().count() > 5, "the instance logged at debug: {logs}");
        for secret in [token.as_str(), &token[4..], harry.password.as_str()] {
            assert!(!logs.contains(secret), "a secret in the logs ({secret}):\n{logs}");
        }
        // Six digits may turn up by chance in a time's microseconds: look for the code as a value instead.
        for shape in [format!("={totp}"), format!("\"{totp}\""), format!(": {totp}")] {
            assert!(!logs.contains(&shape), "the TOTP code in the logs ({shape}):\n{logs}");
        }
    })
    .await;
}

#[tokio::test]
async fn assistance_requests_are_listed_read_with_their_dossier_and_closed_with_a_note() {
    each_backend(async |app: TestApp| {
        let harry = admin(&app, "harry", Grant { dpa_level: 1, ..Default::default() }).await;
        let staff = app.add_person("sam", true).await;
        let token = token_for(&app, &harry, "ticketing", 60, false).await;
        let staff_token = token_for(&app, &staff, "nosy", 60, false).await;
        let reference =
            json_reference(app.post_assistance_json("81.2.69.142", &staff.email, "locked_out", "").await).await;
        let path = format!("/api/v1/assistance-requests/{reference}");
        let mut request = serde_json::Value::Null;
        for _ in 0..100 {
            request = get(&app, Some(&token), &path).await.1;
            if request["status"] == "open" {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(request["status"], "open", "{request}");
        assert_eq!(request["email"], staff.email);
        assert!(request["dossier"].is_object(), "the dossier, structured: {request}");
        // Without a token: the public answer, no dossier.
        let (status, public) = get(&app, None, &path).await;
        assert_eq!(status, StatusCode::OK);
        assert!(public.get("dossier").is_none() && public.get("email").is_none(), "{public}");
        // A wrong token is refused, not answered publicly.
        assert_eq!(get(&app, Some("llt_wrong"), &path).await.0, StatusCode::UNAUTHORIZED);

        let (status, list) = get(&app, Some(&token), "/api/v1/assistance-requests?status=open").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(list["requests"][0]["reference"], reference);
        assert_eq!(get(&app, Some(&staff_token), "/api/v1/assistance-requests").await.0, StatusCode::FORBIDDEN);
        for bad in ["status=lost", "type=bored", "page=2"] {
            let (status, _) = get(&app, Some(&token), &format!("/api/v1/assistance-requests?{bad}")).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        }

        let close = async |body: serde_json::Value, reference: &str| {
            let path = format!("/api/v1/assistance-requests/{reference}/close");
            call(&app, Some(&token), reqwest::Method::POST, &path, Some(body)).await
        };
        let (status, _) = close(serde_json::json!({ "outcome": "done", "note": "x" }), &reference).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let (status, _) = close(serde_json::json!({ "outcome": "resolved", "note": " " }), &reference).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let (status, _) = close(serde_json::json!({ "outcome": "resolved", "note": "x" }), "AR-2222-2222").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let note = serde_json::json!({ "outcome": "resolved", "note": "called back, unlocked" });
        let (status, closed) = close(note.clone(), &reference).await;
        assert_eq!(status, StatusCode::OK, "{closed}");
        let (status, _) = close(note, &reference).await;
        assert_eq!(status, StatusCode::CONFLICT, "closed once");
        assert_eq!(get(&app, Some(&token), &path).await.1["status"], "resolved");
    })
    .await;
}

#[tokio::test]
async fn json_logs_are_one_valid_object_a_line_with_one_line_per_request_and_no_address_secrets() {
    each_backend(async |app: TestApp| {
        let env = [("LIFELINE_LOG_FORMAT", "json"), ("RUST_LOG", "info")];
        let one = crate::instances::Instances::start(app.dir(), &app.db_url(), 1, &env).await;
        let secret = "q7Zc3xR9mN2pL5vB8kW1tY4hJ6gF0dSaEeUiOoPpAa";
        for path in ["/signin", "/api/v1/people/1", &format!("/reset-password?token={secret}"), "/no/such/page"] {
            crate::helpers::browser().get(one.url(0, path)).send().await.unwrap();
        }
        let harry = admin(&app, "harry", Grant { dpa_level: 1, ..Default::default() }).await;
        let token = token_for(&app, &harry, "siem", 60, false).await;
        let mine =
            crate::helpers::browser().get(one.url(0, "/api/v1/tokens")).bearer_auth(&token).send().await.unwrap();
        let token_id = mine.json::<serde_json::Value>().await.unwrap()["tokens"][0]["id"].as_i64().unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let logs = one.logs();
        let mut requests = Vec::new();
        for line in logs.lines().filter(|l| !l.trim().is_empty()) {
            let value: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
            if value["message"] == "request" {
                requests.push(value);
            }
        }
        let routes: Vec<&str> = requests.iter().filter_map(|r| r["route"].as_str()).collect();
        assert_eq!(
            routes,
            ["/signin", "/api/v1/people/{id}", "/reset-password", "(no route)", "/api/v1/tokens"],
            "{logs}"
        );
        for r in &requests {
            assert!(r["request_id"].as_str().is_some_and(|id| id.len() == 16), "{r}");
            assert!(r["status"].as_u64().is_some() && r["duration_ms"].as_f64().is_some(), "{r}");
        }
        assert_eq!(requests[1]["status"], 401);
        assert_eq!(requests[1]["actor"], "-", "no token, no actor");
        let harry_account = harry.account_id.0;
        assert_eq!(requests[4]["actor"], format!("account:{harry_account} token:{token_id}"), "ids only");
        assert!(!logs.contains(&token), "the token is not logged");
        assert!(!logs.contains(secret), "the link's token is not logged:\n{logs}");

        let out = run_lifeline(app.dir(), &app.db_url(), &["audit", "verify"], "", &[("LIFELINE_LOG_FORMAT", "xml")]);
        assert_eq!(out.status.code(), Some(2));
        assert!(stderr(&out).contains("LIFELINE_LOG_FORMAT"), "{}", stderr(&out));
    })
    .await;
}

#[tokio::test]
async fn metrics_parse_as_prometheus_text_move_with_the_actions_and_hold_no_personal_data() {
    each_backend(async |app: TestApp| {
        let harry = admin(&app, "harry", Grant { dpa_level: 1, ..Default::default() }).await;
        let lou = app.add_person("lou", true).await;
        let lou_id = person_id(&app, &lou).await;
        let token = token_for(&app, &harry, "bot", 60, false).await;
        let port = crate::smtp_sink::free_port();
        let listen = format!("127.0.0.1:{port}");
        let one =
            crate::instances::Instances::start(app.dir(), &app.db_url(), 1, &[("LIFELINE_METRICS_LISTEN", &listen)])
                .await;
        let scrape = async || {
            let response = crate::helpers::browser().get(format!("http://{listen}/metrics")).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            response.text().await.unwrap()
        };
        // Not on the public listener.
        let public = crate::helpers::browser().get(one.url(0, "/metrics")).send().await.unwrap();
        assert_eq!(public.status(), StatusCode::NOT_FOUND);

        for _ in 0..2 {
            one.sign_in(0, &lou.username, "not-lous-password-at-all").await;
        }
        let response = crate::helpers::browser()
            .post(one.url(0, &format!("/api/v1/people/{lou_id}/actions/unlock-person")))
            .bearer_auth(&token)
            .json(&serde_json::json!({ "reason": METHOD }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        // Five more wrong passwords lock Lou again; someone asks for help.
        for _ in 0..5 {
            one.sign_in(0, &lou.username, "not-lous-password-at-all").await;
        }
        let asked = crate::helpers::browser()
            .post(one.url(0, "/api/v1/assistance-requests"))
            .json(&serde_json::json!({ "email": lou.email, "type": "locked_out" }))
            .send()
            .await
            .unwrap();
        assert_eq!(asked.status(), StatusCode::ACCEPTED);
        // A four-eyes action: counted `pending` when asked, and `done` when a second admin's approval runs it.
        let ada = admin(&app, "ada", Grant { dpa_level: 3, ..Default::default() }).await;
        let carol = admin(&app, "carol", Grant { dpa_level: 3, ..Default::default() }).await;
        let (ada_token, carol_token) =
            (token_for(&app, &ada, "desk", 60, false).await, token_for(&app, &carol, "desk", 60, false).await);
        let harry_id = person_id(&app, &harry).await;
        let api =
            |path: &str, token: &str| crate::helpers::browser().post(one.url(0, path)).bearer_auth(token.to_owned());
        let asked = api(&format!("/api/v1/people/{harry_id}/actions/send-magic-link"), &ada_token)
            .json(&serde_json::json!({ "reason": METHOD }))
            .send()
            .await
            .unwrap();
        assert_eq!(asked.status(), StatusCode::ACCEPTED);
        let approval = asked.json::<serde_json::Value>().await.unwrap()["approval"].as_i64().unwrap();
        let approved = api(&format!("/api/v1/approvals/{approval}/approve"), &carol_token).send().await.unwrap();
        assert_eq!(approved.status(), StatusCode::OK);
        // Two passkey sign-ins that fail: an answer that is not WebAuthn, and one for a ceremony nobody began.
        let passkey = crate::helpers::browser();
        let page = passkey.get(one.url(0, "/signin")).send().await.unwrap().text().await.unwrap();
        let csrf = crate::helpers::csrf_of(&page);
        let unknown = r#"{"id":"AA","rawId":"AA","type":"public-key","response":{"authenticatorData":"AA","clientDataJSON":"AA","signature":"AA","userHandle":null}}"#;
        for answer in ["not json", unknown] {
            let refused = passkey
                .post(one.url(0, "/signin/passkey"))
                .form(&[("csrf", csrf.as_str()), ("ceremony", "nobody-began-this"), ("credential", answer)])
                .send()
                .await
                .unwrap();
            assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
        }
        let text = scrape().await;

        // The text exposition format: comments, or `name{labels} value`.
        for line in text.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')) {
            let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value: {line}"));
            assert!(value.parse::<f64>().is_ok(), "not a number: {line}");
            let name = series.split('{').next().unwrap();
            assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'), "{line}");
            assert!(!series.contains('{') || series.ends_with('}'), "{line}");
        }
        let value = |series: &str| {
            text.lines()
                .find(|l| l.starts_with(series))
                .and_then(|l| l.rsplit_once(' '))
                .map(|(_, v)| v.parse::<f64>().unwrap())
        };
        assert_eq!(value("lifeline_sign_ins_total{method=\"password\",outcome=\"invalid\"}"), Some(7.0), "{text}");
        assert_eq!(
            value("lifeline_recovery_actions_total{action=\"unlock-person\",outcome=\"done\"}"),
            Some(1.0),
            "{text}"
        );
        assert!(value("lifeline_outbox_queued").is_some(), "{text}");
        assert_eq!(value("lifeline_locks_total{method=\"password\"}"), Some(1.0), "{text}");
        for outcome in ["pending", "done"] {
            let series = format!("lifeline_recovery_actions_total{{action=\"send-magic-link\",outcome=\"{outcome}\"}}");
            assert_eq!(value(&series), Some(1.0), "{series}: {text}");
        }
        assert_eq!(value("lifeline_assistance_requests_total{type=\"locked_out\"}"), Some(1.0), "{text}");
        for outcome in ["malformed", "refused"] {
            let series = format!("lifeline_passkey_sign_ins_total{{outcome=\"{outcome}\"}}");
            assert_eq!(value(&series), Some(1.0), "{series}: {text}");
        }
        assert!(value("lifeline_argon2_queue_wait_seconds_count").is_some_and(|n| n >= 5.0), "{text}");
        for gauge in ["lifeline_assistance_oldest_open_age_seconds", "lifeline_outbox_oldest_unsent_age_seconds"] {
            assert!(value(gauge).is_some_and(|v| v >= 0.0), "{gauge}: {text}");
        }
        assert!(text.contains("lifeline_http_request_duration_seconds"), "{text}");
        assert!(text.contains("route=\"/api/v1/people/{id}/actions/{action}\""), "{text}");
        // No one's data in a label.
        for personal in [lou.email.as_str(), harry.email.as_str(), "lou\"", "harry\"", "127.0.0.1", &token[4..]] {
            assert!(!text.contains(personal), "{personal} in the metrics:\n{text}");
        }
    })
    .await;
}

fn secret_in(html: &str) -> String {
    let start = html.find("llt_").unwrap_or_else(|| panic!("no token on the page: {html}"));
    html[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-').collect()
}

#[tokio::test]
async fn an_admin_makes_uses_and_revokes_their_own_token_in_the_console_and_an_expert_one_needs_a_fresh_code() {
    each_backend_with_clock(
        chrono::Utc::now().timestamp(),
        |_| {},
        async |app: TestApp, clock| {
            let harry = admin(&app, "harry", Grant { dpa_level: 1, ..Default::default() }).await;
            let hana = admin(&app, "hana", Grant { dpa_level: 1, ..Default::default() }).await;
            let staff = app.add_person("sam", true).await;
            // Everyone signs in now: their codes follow the real time, and the clock moves on below.
            let console = app.sign_in(&harry).await;
            let hers = app.sign_in(&hana).await;
            let sams = app.sign_in(&staff).await;

            let page = console.get(app.url("/console/tokens")).send().await.unwrap();
            assert_eq!(page.status(), StatusCode::OK);
            assert!(page.text().await.unwrap().contains("You have no tokens."));

            // Made once, shown once: the secret works on the API at once and the list shows it live.
            let made = app.post_form(&console, "/console/tokens", &[("name", "ticketing"), ("expires", "10080")]).await;
            assert_eq!(made.status(), StatusCode::CREATED);
            let html = made.text().await.unwrap();
            let secret = secret_in(&html);
            assert!(secret.len() >= 4 + 43, "256 bits: {secret}");
            let (status, list) = get(&app, Some(&secret), "/api/v1/tokens").await;
            assert_eq!(status, StatusCode::OK, "{list}");
            assert_eq!(list["tokens"][0]["name"], "ticketing");
            assert_eq!(list["tokens"][0]["this_one"], true);
            let lifetime =
                list["tokens"][0]["expires_at"].as_i64().unwrap() - list["tokens"][0]["created_at"].as_i64().unwrap();
            assert_eq!(lifetime, 7 * 24 * 3600);
            let again = console.get(app.url("/console/tokens")).send().await.unwrap().text().await.unwrap();
            assert!(!again.contains(&secret), "the secret is never shown twice");
            assert!(again.contains("ticketing") && again.contains("live"));

            let audited: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM audit_event WHERE action = 'token.create' AND actor LIKE '%harry%'",
            )
            .fetch_one(app.db.pool())
            .await
            .unwrap();
            assert_eq!(audited, 1, "the console's token is audited with harry as the actor");

            // Bad fields are a page that says so, and nothing is made.
            for fields in [
                [("name", ""), ("expires", "60")],
                [("name", "x"), ("expires", "forever")],
                [("name", "x"), ("expires", "99999999")],
            ] {
                let refused = app.post_form(&console, "/console/tokens", &fields).await;
                assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "{fields:?}");
                let html = refused.text().await.unwrap();
                assert!(html.contains("Nothing was made"), "{fields:?}: {html}");
            }

            // An expert token needs a second factor within the step-up window: an hour on, a code.
            clock.advance(61 * 60);
            let stale = app.post_form(&console, "/console/tokens", &[("name", "bot"), ("expert", "yes")]).await;
            assert_eq!(stale.status(), StatusCode::FORBIDDEN);
            let code = lifeline::totp::code_at(harry.totp.as_ref().unwrap(), lifeline::clock::Clock::now(&*clock));
            let expert = app
                .post_form(&console, "/console/tokens", &[("name", "bot"), ("expert", "yes"), ("step_up_code", &code)])
                .await;
            assert_eq!(expert.status(), StatusCode::CREATED);
            let expert_secret = secret_in(&expert.text().await.unwrap());
            let (_, list) = get(&app, Some(&expert_secret), "/api/v1/tokens").await;
            let bot = list["tokens"].as_array().unwrap().iter().find(|t| t["name"] == "bot").unwrap().clone();
            assert_eq!(bot["expert"], true);
            assert_eq!(bot["expires_at"].as_i64().unwrap() - bot["created_at"].as_i64().unwrap(), 3600);

            // Revoked from the console, refused by the API at once; someone else's token cannot be revoked by id.
            let id = list["tokens"].as_array().unwrap().iter().find(|t| t["name"] == "ticketing").unwrap()["id"]
                .as_i64()
                .unwrap();
            let foreign = app.post_form(&hers, &format!("/console/tokens/{id}/revoke"), &[]).await;
            assert_eq!(foreign.status(), StatusCode::NOT_FOUND);
            assert_eq!(get(&app, Some(&secret), "/api/v1/tokens").await.0, StatusCode::OK, "still live");
            let revoked = app.post_form(&console, &format!("/console/tokens/{id}/revoke"), &[]).await;
            assert_eq!(revoked.status(), StatusCode::SEE_OTHER);
            assert_eq!(get(&app, Some(&secret), "/api/v1/tokens").await.0, StatusCode::UNAUTHORIZED);

            // Someone with no admin capability has no tokens page (a token could do nothing for them).
            let page = sams.get(app.url("/console/tokens")).send().await.unwrap();
            assert_eq!(page.status(), StatusCode::FORBIDDEN);
            let made = app.post_form(&sams, "/console/tokens", &[("name", "mine"), ("expires", "60")]).await;
            assert_eq!(made.status(), StatusCode::FORBIDDEN);
        },
    )
    .await;
}

#[tokio::test]
async fn an_unexpected_failure_answers_generically_with_its_request_id_and_the_cause_is_logged() {
    each_backend(async |app: TestApp| {
        let harry = admin(&app, "harry", Grant { dpa_level: 1, ..Default::default() }).await;
        let sam = app.add_person("sam", true).await;
        let sam_id = person_id(&app, &sam).await;
        let token = token_for(&app, &harry, "bot", 60, false).await;
        let pair = crate::instances::Instances::start(app.dir(), &app.db_url(), 1, &[]).await;
        // The database loses a table under the running instance: a failure no input can cause.
        sqlx::query("DROP TABLE notification_address").execute(app.db.pool()).await.unwrap();
        let response = crate::helpers::browser()
            .get(pair.url(0, &format!("/api/v1/people/{sam_id}")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["code"], "internal", "{body}");
        let text = body.to_string();
        for leak in ["notification_address", "table", "relation", "sqlx", "SELECT", token.as_str()] {
            assert!(!text.contains(leak), "the answer says nothing of the cause ({leak}): {text}");
        }
        let request_id = body["request_id"].as_str().unwrap_or_default().to_owned();
        assert!(!request_id.is_empty(), "{body}");
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let logs = pair.logs();
        assert!(
            logs.lines().any(|l| l.contains("API call failed") && l.contains("notification_address")),
            "the cause is logged:\n{logs}"
        );
        assert!(logs.lines().any(|l| l.contains(&request_id)), "the request id leads to the log:\n{logs}");
    })
    .await;
}
