//! Recovery actions, end to end: an admin acts through the Login Assistance Wizard, the person gets the
//! email, uses its link or code and signs in; every secret works once and until it expires; step-up, four-eyes,
//! privilege tiers and "this wasn't me"; bad input changes nothing.

use crate::helpers::*;
use lifeline::domain::Grant;
use reqwest::StatusCode;

/// A person with a grant and an authenticator.
pub(crate) async fn admin(app: &TestApp, username: &str, grant: Grant) -> Person {
    let person = app.add_person(username, true).await;
    let subject = app.state.directory.find(&person.email).await.unwrap().id;
    app.state.directory.set_grant(system(&app.state, Some(subject)).await, grant).await.unwrap();
    person
}

pub(crate) fn expert(dpa_level: u8) -> Grant {
    Grant { dpa_level, expert_mode: true, ..Default::default() }
}

pub(crate) async fn person_id(app: &TestApp, person: &Person) -> i64 {
    app.state.directory.find(&person.email).await.unwrap().id.0
}

pub(crate) const METHOD: &str = "Identity verified by callback to the number on file";

pub(crate) async fn get(client: &reqwest::Client, url: &str) -> (StatusCode, String) {
    let response = client.get(url).send().await.unwrap();
    (response.status(), response.text().await.unwrap_or_default())
}

/// The wizard's step 3 for `action` on `subject`: its `seen` field and CSRF token.
pub(crate) async fn review(app: &TestApp, client: &reqwest::Client, action: &str, subject: i64) -> (String, String) {
    let (status, html) = get(client, &app.url(&format!("/console/assist?action={action}&person={subject}"))).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    let marker = "name=\"seen\" value=\"";
    let start = html.find(marker).unwrap_or_else(|| panic!("no review form:\n{html}")) + marker.len();
    (html[start..].split('"').next().unwrap().to_owned(), csrf_of(&html))
}

/// Confirm `action` on `subject` through the wizard with `extra` fields; returns status and page.
pub(crate) async fn act(
    app: &TestApp,
    client: &reqwest::Client,
    action: &str,
    subject: i64,
    extra: &[(&str, &str)],
) -> (StatusCode, String) {
    let (seen, csrf) = review(app, client, action, subject).await;
    let mut form: Vec<(&str, &str)> =
        vec![("csrf", &csrf), ("seen", &seen), ("method", METHOD), ("on_behalf_of", "Mona Manager")];
    form.extend_from_slice(extra);
    let response =
        client.post(app.url(&format!("/console/people/{subject}/actions/{action}"))).form(&form).send().await.unwrap();
    (response.status(), response.text().await.unwrap_or_default())
}

/// Every email for `to`, oldest first: (subject, text part).
async fn emails_to(app: &TestApp, to: &str) -> Vec<(String, String)> {
    emails_for(app, Some(to)).await
}

async fn last_email(app: &TestApp, to: &str) -> String {
    emails_to(app, to).await.pop().unwrap_or_else(|| panic!("no email to {to}")).1
}

/// The code on a line of its own in an email's text part.
pub(crate) fn code_in(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .find(|l| l.len() == 34 && l.matches('-').count() == 6)
        .unwrap_or_else(|| panic!("no code in:\n{text}"))
        .to_owned()
}

/// The address after `marker` in an email's text part (the path and query, from `marker` on).
pub(crate) fn link_in(text: &str, marker: &str) -> String {
    let start = text.find(marker).unwrap_or_else(|| panic!("no {marker} in:\n{text}"));
    text[start..].split_whitespace().next().unwrap().trim_end_matches(['.', ')', '>']).to_owned()
}

/// The newest audit row of `action`: (reason, on_behalf_of, reference, actor).
pub(crate) async fn audit_row(
    app: &TestApp,
    action: &str,
) -> Option<(Option<String>, Option<String>, Option<String>, String)> {
    sqlx::query_as(
        "SELECT reason, on_behalf_of, reference, actor FROM audit_event WHERE action = $1 ORDER BY audit_event_id DESC LIMIT 1",
    )
    .bind(action)
    .fetch_optional(app.db.pool())
    .await
    .unwrap()
}

/// A form posted with the CSRF token of `page`, as a browser on that page would.
pub(crate) async fn post_with_csrf(
    client: &reqwest::Client,
    app: &TestApp,
    page: &str,
    path: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let (_, html) = get(client, &app.url(page)).await;
    // A page without a form of its own (a used link, a search): the browser's token from the sign-in page.
    let csrf = if html.contains("name=\"csrf\"") { csrf_of(&html) } else { app.csrf(client).await };
    let mut form = fields.to_vec();
    form.push(("csrf", &csrf));
    client.post(app.url(path)).form(&form).send().await.unwrap()
}

const NEW_PASSWORD: &str = "lantern-orchard-velvet-91";

#[tokio::test]
async fn an_access_email_from_the_wizard_lets_the_person_set_a_password_and_unlocks_them() {
    each_backend(async |app: TestApp| {
        let harry = admin(&app, "harry", Grant { dpa_level: 1, ..Default::default() }).await;
        let lou = app.add_person("lou", true).await;
        for _ in 0..5 {
            app.post_sign_in(&browser(), &lou.username, "not-lous-password-at-all").await;
        }
        assert_eq!(app.person_json(&lou.email).await["accounts"][0]["locked"], true);
        let console = app.sign_in(&harry).await;
        let lou_id = person_id(&app, &lou).await;

        let (status, html) = act(&app, &console, "send-access-email", lou_id, &[("details", "called back")]).await;
        assert_eq!(status, StatusCode::OK, "{html}");
        let text = last_email(&app, &lou.email).await;
        assert!(text.contains("Your username is lou"), "{text}");
        assert!(text.contains("/not-me?token="), "the notice carries a this-wasn't-me link: {text}");
        let link = link_in(&text, "/reset-password?token=");
        let (reason, on_behalf_of, _, actor) = audit_row(&app, "send-access-email").await.unwrap();
        assert_eq!(reason.as_deref(), Some(METHOD));
        assert_eq!(on_behalf_of.as_deref(), Some("Mona Manager"));
        assert!(actor.ends_with(":harry"), "{actor}");

        // A GET (a mail scanner) uses nothing up; the form's POST does, once.
        let person = browser();
        let (status, html) = get(&person, &app.url(&link)).await;
        assert_eq!(status, StatusCode::OK, "{html}");
        let (_, again) = get(&person, &app.url(&link)).await;
        let token = link.split("token=").nth(1).unwrap();
        let fields = [("token", token), ("new_password", NEW_PASSWORD), ("confirm_password", NEW_PASSWORD)];
        let csrf = csrf_of(&again);
        let mut form = fields.to_vec();
        form.push(("csrf", &csrf));
        let set = person.post(app.url("/reset-password")).form(&form).send().await.unwrap();
        assert_eq!(set.status(), StatusCode::OK);
        let reused = person.post(app.url("/reset-password")).form(&form).send().await.unwrap();
        assert_eq!(reused.status(), StatusCode::GONE, "the link works once");

        // The password set through the link also lifted the lock; the second factor still applies.
        assert_eq!(app.person_json(&lou.email).await["accounts"][0]["locked"], false);
        let signed = app.post_sign_in(&browser(), &lou.username, NEW_PASSWORD).await;
        assert_eq!(location(&signed), "/signin/mfa");
    })
    .await;
}

#[tokio::test]
async fn reset_mfa_then_device_authorization_then_a_new_authenticator_with_oathtool() {
    each_backend(async |app: TestApp| {
        let ada = admin(&app, "ada", expert(3)).await;
        let sam = app.add_person("sam", true).await;
        let console = app.sign_in(&ada).await;
        let sam_id = person_id(&app, &sam).await;
        let staff_session = app.sign_in(&sam).await;

        let (status, html) = act(&app, &console, "reset-mfa", sam_id, &[]).await;
        assert_eq!(status, StatusCode::OK, "{html}");
        let view = app.person_json(&sam.email).await;
        assert_eq!(view["accounts"][0]["mfa"]["totp_enabled"], false);
        assert_eq!(view["accounts"][0]["mfa"]["backup_codes_unused"], 0);
        assert_eq!(view["accounts"][0]["required_actions"]["device_authorization"], true);
        let (status, _) = get(&staff_session, &app.url("/account/password")).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "the reset ended Sam's sessions");
        assert!(last_email(&app, &sam.email).await.contains("two-step verification of sam was reset"));

        // Seed 002: the next sign-in emails a device authorization code first.
        let me = browser();
        let first = app.post_sign_in(&me, &sam.username, &sam.password).await;
        assert_eq!(location(&first), "/signin/device");
        let text = last_email(&app, &sam.email).await;
        let code = code_in(&text);
        // Whoever gets this without having signed in learns a stranger has the password, and can lock at once.
        let not_me = link_in(&text, "/not-me?token=");
        let (status, page) = get(&browser(), &app.url(&not_me)).await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains("a sign-in to the account"), "{page}");
        let wrong = post_with_csrf(&me, &app, "/signin/device", "/signin/device", &[("code", "ABCD-EFGH")]).await;
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
        let right =
            post_with_csrf(&me, &app, "/signin/device", "/signin/device", &[("code", &code.to_lowercase())]).await;
        assert_eq!(location(&right), "/signin/enroll");
        // The right to enrol is this session's: someone else with the password meets the code again.
        let attacker = app.post_sign_in(&browser(), &sam.username, &sam.password).await;
        assert_eq!(location(&attacker), "/signin/device", "a second sign-in with the password must prove the mailbox");

        // Then a new QR code and secret; a code from oathtool for it completes enrolment, with new backup codes.
        let (_, html) = get(&me, &app.url("/signin/enroll")).await;
        let secret = html.split("secret=").nth(1).unwrap().split('&').next().unwrap().to_owned();
        let out = std::process::Command::new("oathtool").args(["--totp", "-b", &secret]).output().unwrap();
        let totp = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let done = post_with_csrf(&me, &app, "/signin/enroll", "/signin/enroll", &[("code", &totp)]).await;
        assert_eq!(done.status(), StatusCode::OK);
        let view = app.person_json(&sam.email).await;
        assert_eq!(view["accounts"][0]["mfa"]["totp_enabled"], true);
        assert_eq!(view["accounts"][0]["mfa"]["backup_codes_unused"], 10);
        assert_eq!(view["accounts"][0]["required_actions"]["device_authorization"], false);
        assert!(!sam.backup_codes.is_empty());
        let old = app.post_sign_in(&browser(), &sam.username, &sam.password).await;
        assert_eq!(location(&old), "/signin/mfa");
    })
    .await;
}

/// The manual clock starts at the real time, so codes computed for it are the authenticator's.
fn real_now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[tokio::test]
async fn a_recovery_code_works_at_59_minutes_and_not_at_61_and_only_once() {
    each_backend_with_clock(real_now(), test_adjust, async |app: TestApp, clock| {
        let ada = admin(&app, "ada", expert(3)).await;
        let sam = app.add_person("sam", true).await;
        let sam_id = person_id(&app, &sam).await;
        let console = app.sign_in(&ada).await;

        let (status, html) = act(&app, &console, "send-recovery-code", sam_id, &[]).await;
        assert_eq!(status, StatusCode::OK, "{html}");
        let stale = code_in(&last_email(&app, &sam.email).await);
        clock.advance(61 * 60);
        let late =
            post_with_csrf(&browser(), &app, "/recover", "/recover", &[("email", &sam.email), ("code", &stale)]).await;
        assert_eq!(late.status(), StatusCode::UNAUTHORIZED, "expired after an hour");

        // 61 minutes after signing in, the expert action asks for a fresh code, then runs with it.
        let (status, html) = act(&app, &console, "send-recovery-code", sam_id, &[]).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(html.contains("step_up_code"), "{html}");
        let fresh = lifeline::totp::code_at(ada.totp.as_ref().unwrap(), lifeline::clock::Clock::now(&*clock));
        let (status, html) = act(&app, &console, "send-recovery-code", sam_id, &[("step_up_code", &fresh)]).await;
        assert_eq!(status, StatusCode::OK, "{html}");
        let code = code_in(&last_email(&app, &sam.email).await);
        clock.advance(59 * 60);
        let wrong_email =
            post_with_csrf(&browser(), &app, "/recover", "/recover", &[("email", &ada.email), ("code", &code)]).await;
        assert_eq!(wrong_email.status(), StatusCode::UNAUTHORIZED, "the code is Sam's alone");
        let me = browser();
        let used = post_with_csrf(&me, &app, "/recover", "/recover", &[("email", &sam.email), ("code", &code)]).await;
        assert_eq!(location(&used), "/recover/options");
        let again =
            post_with_csrf(&browser(), &app, "/recover", "/recover", &[("email", &sam.email), ("code", &code)]).await;
        assert_eq!(again.status(), StatusCode::UNAUTHORIZED, "single use");

        // With it: a new password, and the lost authenticator removed.
        let fields = [("new_password", NEW_PASSWORD), ("confirm_password", NEW_PASSWORD)];
        let set = post_with_csrf(&me, &app, "/recover/options", "/recover/password", &fields).await;
        assert_eq!(set.status(), StatusCode::OK);
        let removed = post_with_csrf(&me, &app, "/recover/options", "/recover/authenticator", &[]).await;
        assert_eq!(location(&removed), "/signin/enroll", "a new authenticator is enrolled at once, in this session");
        let (status, _) = get(&me, &app.url("/signin/enroll")).await;
        assert_eq!(status, StatusCode::OK);
        let signed = app.post_sign_in(&browser(), &sam.username, NEW_PASSWORD).await;
        assert_eq!(location(&signed), "/signin/device", "any other sign-in proves the mailbox first");
    })
    .await;
}

fn test_adjust(_: &mut lifeline::config::Settings) {}

#[tokio::test]
async fn a_one_time_password_stands_in_for_the_password_once_within_ten_minutes_then_a_new_one_is_chosen() {
    each_backend_with_clock(real_now(), test_adjust, async |app: TestApp, clock| {
        let ada = admin(&app, "ada", expert(3)).await;
        let sam = app.add_person("sam", true).await;
        let sam_id = person_id(&app, &sam).await;
        let console = app.sign_in(&ada).await;

        act(&app, &console, "send-one-time-password", sam_id, &[]).await;
        let first = code_in(&last_email(&app, &sam.email).await);
        clock.advance(11 * 60);
        let late =
            post_with_csrf(&browser(), &app, "/signin/code", "/signin/code", &[("login", "sam"), ("code", &first)])
                .await;
        assert_eq!(late.status(), StatusCode::UNAUTHORIZED, "an OTP lives ten minutes at most");

        let (status, html) = act(&app, &console, "send-one-time-password", sam_id, &[]).await;
        assert_eq!(status, StatusCode::OK, "{html}");
        let otp = code_in(&last_email(&app, &sam.email).await);
        clock.advance(9 * 60);
        let me = browser();
        let used = post_with_csrf(&me, &app, "/signin/code", "/signin/code", &[("login", "sam"), ("code", &otp)]).await;
        assert_eq!(location(&used), "/signin/mfa", "the second factor still applies");
        let twice =
            post_with_csrf(&browser(), &app, "/signin/code", "/signin/code", &[("login", "sam"), ("code", &otp)]).await;
        assert_eq!(twice.status(), StatusCode::UNAUTHORIZED);
        let totp = lifeline::totp::code_at(sam.totp.as_ref().unwrap(), lifeline::clock::Clock::now(&*clock));
        let second = post_with_csrf(&me, &app, "/signin/mfa", "/signin/mfa", &[("code", &totp)]).await;
        assert_eq!(location(&second), "/account/password", "then a new password");
    })
    .await;
}

#[tokio::test]
async fn a_temporary_access_pass_is_shown_once_and_lets_the_person_enrol_a_new_authenticator() {
    each_backend(async |app: TestApp| {
        let ada = admin(&app, "ada", expert(3)).await;
        let sam = app.add_person("sam", true).await;
        let sam_id = person_id(&app, &sam).await;
        let console = app.sign_in(&ada).await;
        let (status, html) =
            act(&app, &console, "issue-temporary-access-pass", sam_id, &[("pass_minutes", "30")]).await;
        assert_eq!(status, StatusCode::OK, "{html}");
        let pass = html.split("id=\"pass\">").nth(1).unwrap().split('<').next().unwrap().to_owned();
        assert!(!last_email(&app, &sam.email).await.contains(&pass), "the pass is never emailed");
        let (status, _) = act(&app, &console, "issue-temporary-access-pass", sam_id, &[("pass_minutes", "5")]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "outside the lifetime bounds");

        let old_session = app.sign_in(&sam).await;
        let me = browser();
        let used =
            post_with_csrf(&me, &app, "/signin/code", "/signin/code", &[("login", &sam.email), ("code", &pass)]).await;
        assert_eq!(location(&used), "/signin/enroll");
        let (status, _) = get(&old_session, &app.url("/account/password")).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "the old authenticator's sessions ended with it");
        let (status, _) = get(&me, &app.url("/signin/enroll")).await;
        assert_eq!(status, StatusCode::OK, "the pass's own session goes on");
        let again =
            post_with_csrf(&browser(), &app, "/signin/code", "/signin/code", &[("login", "sam"), ("code", &pass)])
                .await;
        assert_eq!(again.status(), StatusCode::UNAUTHORIZED, "a one-time pass works once");
        assert_eq!(app.person_json(&sam.email).await["accounts"][0]["mfa"]["totp_enabled"], false);
        // Only the pass's session enrols: a sign-in with the password alone proves the mailbox first.
        let other = app.post_sign_in(&browser(), &sam.username, &sam.password).await;
        assert_eq!(location(&other), "/signin/device");
    })
    .await;
}

#[tokio::test]
async fn unlocks_q_and_a_and_enable_disable_run_with_their_notices() {
    each_backend(async |app: TestApp| {
        let ada = admin(&app, "ada", expert(3)).await;
        let lou = app.add_person("lou", true).await;
        let lou_id = person_id(&app, &lou).await;
        let console = app.sign_in(&ada).await;

        let (status, html) = act(&app, &console, "unlock-person", lou_id, &[]).await;
        assert_eq!(status, StatusCode::CONFLICT, "nothing to unlock: {html}");
        for _ in 0..5 {
            app.post_sign_in(&browser(), &lou.username, "not-lous-password-at-all").await;
        }
        let (status, html) = act(&app, &console, "unlock-person", lou_id, &[]).await;
        assert_eq!(status, StatusCode::OK, "{html}");
        let view = app.person_json(&lou.email).await;
        assert_eq!(view["accounts"][0]["locked"], false);
        assert!(view["accounts"][0]["unlocked_by"].as_str().unwrap().ends_with(":ada"));
        assert!(last_email(&app, &lou.email).await.contains("unlocked"));

        let lou_session = app.sign_in(&lou).await;
        let (status, html) = act(&app, &console, "disable", lou_id, &[]).await;
        assert_eq!(status, StatusCode::OK, "{html}");
        let (status, _) = get(&lou_session, &app.url("/account/password")).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "disabling ends the sessions");
        let (status, html) = act(&app, &console, "enable", lou_id, &[]).await;
        assert_eq!(status, StatusCode::OK, "{html}");
        assert_eq!(app.person_json(&lou.email).await["status"], "active");
        let (status, _) = act(&app, &console, "unenroll-qa", lou_id, &[]).await;
        assert_eq!(status, StatusCode::CONFLICT, "no security questions to remove");
    })
    .await;
}

#[tokio::test]
async fn tiers_and_permissions_refuse_with_403_and_an_audit_row_and_a_crafted_post_is_refused() {
    each_backend(async |app: TestApp| {
        let harry = admin(&app, "harry", Grant { dpa_level: 1, ..Default::default() }).await;
        let peer = admin(&app, "hank", Grant { dpa_level: 1, ..Default::default() }).await;
        let sam = app.add_person("sam", true).await;
        let console = app.sign_in(&harry).await;
        let sam_id = person_id(&app, &sam).await;

        // The Actions menu shows only what Harry (DPA 1) may do and what fits Sam (locked): no recovery code, no
        // reset MFA, no enable.
        for _ in 0..5 {
            app.post_sign_in(&browser(), &sam.username, "not-sams-password-at-all").await;
        }
        let (_, record) = get(&console, &app.url(&format!("/console/people/{sam_id}"))).await;
        assert!(!record.contains("?action=enable"), "{record}");
        assert!(record.contains("action=send-access-email") && record.contains("action=unlock-person"), "{record}");
        assert!(!record.contains("action=send-recovery-code") && !record.contains("action=reset-mfa"), "{record}");

        // A crafted POST for the hidden action: 403, audited, nothing sent.
        let csrf = app.csrf(&console).await;
        let crafted = console
            .post(app.url(&format!("/console/people/{sam_id}/actions/send-recovery-code")))
            .form(&[("csrf", csrf.as_str()), ("method", METHOD), ("seen", "x")])
            .send()
            .await
            .unwrap();
        assert_eq!(crafted.status(), StatusCode::FORBIDDEN);
        assert!(emails_to(&app, &sam.email).await.is_empty());
        let refused: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_event WHERE action = 'authz.refused'")
            .fetch_one(app.db.pool())
            .await
            .unwrap();
        assert!(refused >= 1);
        // A peer and oneself are refused, saying nothing about them.
        for target in [person_id(&app, &peer).await, person_id(&app, &harry).await] {
            let response = console
                .post(app.url(&format!("/console/people/{target}/actions/unlock-person")))
                .form(&[("csrf", csrf.as_str()), ("method", METHOD)])
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::FORBIDDEN);
            let body = response.text().await.unwrap_or_default();
            assert!(!body.contains("hank@example.org") && !body.contains("harry@example.org"), "{body}");
        }
    })
    .await;
}

#[tokio::test]
async fn four_eyes_an_action_on_an_admin_waits_for_a_second_higher_admin() {
    each_backend_with(
        |s| s.recovery.approval_hours = 1,
        async |app: TestApp| {
            let ada = admin(&app, "ada", expert(3)).await;
            let carol = admin(&app, "carol", expert(3)).await;
            let harry = admin(&app, "harry", Grant { dpa_level: 1, ..Default::default() }).await;
            let harry_id = person_id(&app, &harry).await;
            let ada_console = app.sign_in(&ada).await;

            let (status, html) = act(&app, &ada_console, "reset-mfa", harry_id, &[]).await;
            assert_eq!(status, StatusCode::ACCEPTED, "{html}");
            assert_eq!(
                app.person_json(&harry.email).await["accounts"][0]["mfa"]["totp_enabled"],
                true,
                "nothing ran yet"
            );
            let id: i64 =
                sqlx::query_scalar("SELECT approval_id FROM approval").fetch_one(app.db.pool()).await.unwrap();

            let own = post_with_csrf(&ada_console, &app, "/", &format!("/console/approvals/{id}/approve"), &[]).await;
            assert_eq!(own.status(), StatusCode::CONFLICT, "the requester cannot approve");
            // Nor from a second account of hers: persons are compared, not accounts.
            let ada_person = person_id(&app, &ada).await;
            sqlx::query(
                "INSERT INTO account (person_id, username, source, password_hash, created_at) \
                 SELECT person_id, 'ada-two', 'local', password_hash, created_at FROM account WHERE account_id = $1",
            )
            .bind(ada.account_id.0)
            .execute(app.db.pool())
            .await
            .unwrap();
            let second: i64 = sqlx::query_scalar("SELECT account_id FROM account WHERE username = 'ada-two'")
                .fetch_one(app.db.pool())
                .await
                .unwrap();
            let secret = lifeline::totp::TotpSecret::generate();
            let proof = system(&app.state, Some(lifeline::domain::PersonId(ada_person))).await;
            let second = lifeline::domain::AccountId(second);
            app.state.signin.enrol_totp_now(proof, second, &secret).await.unwrap();
            let ada_two = Person {
                email: ada.email.clone(),
                username: "ada-two".into(),
                password: PASSWORD.into(),
                totp: Some(secret),
                backup_codes: Vec::new(),
                account_id: second,
            };
            let other_account = app.sign_in(&ada_two).await;
            let path = format!("/console/approvals/{id}/approve");
            let own = post_with_csrf(&other_account, &app, "/", &path, &[]).await;
            assert_eq!(own.status(), StatusCode::CONFLICT, "the requester's second account cannot approve");
            assert_eq!(app.person_json(&harry.email).await["accounts"][0]["mfa"]["totp_enabled"], true);
            // Neither an admin without the permission nor the subject may approve it.
            let hank = admin(&app, "hank", Grant { dpa_level: 1, ..Default::default() }).await;
            let (_, mine) = get(&ada_console, &app.url("/console/approvals")).await;
            assert!(mine.contains("Yours: waiting") && !mine.contains("/approve\""), "{mine}");
            for other in [&hank, &harry] {
                let client = app.sign_in(other).await;
                let (_, list) = get(&client, &app.url("/console/approvals")).await;
                assert!(!list.contains("Test harry"), "{}: not shown to who cannot decide it: {list}", other.username);
                let path = format!("/console/approvals/{id}/approve");
                let refused = post_with_csrf(&client, &app, "/", &path, &[]).await;
                assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{}", other.username);
                let said = refused.text().await.unwrap_or_default();
                assert!(said.contains("no request with this number that you may decide"), "{said}");
                // The same answer as for a number that does not exist: the subject learns nothing here.
                let missing = post_with_csrf(&client, &app, "/", "/console/approvals/999999/reject", &[]).await;
                assert_eq!(missing.status(), StatusCode::FORBIDDEN);
                assert!(missing.text().await.unwrap_or_default().contains("no request with this number"));
                let totp = app.person_json(&harry.email).await["accounts"][0]["mfa"]["totp_enabled"].clone();
                assert_eq!(totp, true, "nothing ran");
            }
            let carol_console = app.sign_in(&carol).await;
            let (_, list) = get(&carol_console, &app.url("/console/approvals")).await;
            assert!(list.contains("Reset MFA") && list.contains("Test harry"), "{list}");
            assert!(list.contains("On behalf of: Mona Manager") && list.contains(METHOD), "{list}");
            let approved =
                post_with_csrf(&carol_console, &app, "/", &format!("/console/approvals/{id}/approve"), &[]).await;
            assert_eq!(approved.status(), StatusCode::OK, "{}", approved.text().await.unwrap_or_default());
            assert_eq!(app.person_json(&harry.email).await["accounts"][0]["mfa"]["totp_enabled"], false);
            let again =
                post_with_csrf(&carol_console, &app, "/", &format!("/console/approvals/{id}/approve"), &[]).await;
            assert_eq!(again.status(), StatusCode::CONFLICT, "it runs once");
            assert!(audit_row(&app, "approval.approve").await.is_some());

            // The approver sees the terms the requester chose.
            let terms = [("pass_minutes", "45"), ("pass_multi_use", "1"), ("details", "new laptop, old one stolen")];
            let (status, _) = act(&app, &ada_console, "issue-temporary-access-pass", harry_id, &terms).await;
            assert_eq!(status, StatusCode::ACCEPTED);
            let (_, list) = get(&carol_console, &app.url("/console/approvals")).await;
            assert!(list.contains("multi-use pass for 45 minutes"), "{list}");
            assert!(list.contains("Details: new laptop, old one stolen"), "{list}");

            // A rejected request runs nothing.
            let (status, _) = act(&app, &ada_console, "disable", harry_id, &[]).await;
            assert_eq!(status, StatusCode::ACCEPTED);
            let id: i64 =
                sqlx::query_scalar("SELECT MAX(approval_id) FROM approval").fetch_one(app.db.pool()).await.unwrap();
            let rejected =
                post_with_csrf(&carol_console, &app, "/", &format!("/console/approvals/{id}/reject"), &[]).await;
            assert_eq!(rejected.status(), StatusCode::OK);
            assert_eq!(app.person_json(&harry.email).await["status"], "active");

            // A peer of the subject holding the permission may not approve either: only someone who outranks them.
            let dora = admin(&app, "dora", Grant { dpa_level: 2, ..Default::default() }).await;
            let dave = admin(&app, "dave", Grant { dpa_level: 2, ..Default::default() }).await;
            let (status, _) = act(&app, &ada_console, "disable", person_id(&app, &dora).await, &[]).await;
            assert_eq!(status, StatusCode::ACCEPTED);
            let id: i64 =
                sqlx::query_scalar("SELECT MAX(approval_id) FROM approval").fetch_one(app.db.pool()).await.unwrap();
            let dave_console = app.sign_in(&dave).await;
            let peer = post_with_csrf(&dave_console, &app, "/", &format!("/console/approvals/{id}/approve"), &[]).await;
            assert_eq!(peer.status(), StatusCode::FORBIDDEN);
            assert_eq!(app.person_json(&dora.email).await["status"], "active");

            // An expired one neither.
            let (status, _) = act(&app, &ada_console, "disable", harry_id, &[]).await;
            assert_eq!(status, StatusCode::ACCEPTED);
            let id: i64 =
                sqlx::query_scalar("SELECT MAX(approval_id) FROM approval").fetch_one(app.db.pool()).await.unwrap();
            app.clock.advance(3601);
            let expired =
                post_with_csrf(&carol_console, &app, "/", &format!("/console/approvals/{id}/approve"), &[]).await;
            assert_eq!(expired.status(), StatusCode::CONFLICT);
            assert_eq!(app.person_json(&harry.email).await["status"], "active");
        },
    )
    .await;
}

#[tokio::test]
async fn this_wasnt_me_locks_the_account_revokes_its_links_and_tells_the_admins_once() {
    each_backend(async |app: TestApp| {
        let harry = admin(&app, "harry", Grant { dpa_level: 1, ..Default::default() }).await;
        let sam = app.add_person("sam", true).await;
        let sam_id = person_id(&app, &sam).await;
        let console = app.sign_in(&harry).await;
        act(&app, &console, "send-access-email", sam_id, &[]).await;
        let text = last_email(&app, &sam.email).await;
        let not_me = link_in(&text, "/not-me?token=");
        let reset = link_in(&text, "/reset-password?token=");
        let sam_session = app.sign_in(&sam).await;

        let me = browser();
        let (status, page) = get(&me, &app.url(&not_me)).await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains("Send access email"), "{page}");
        let token = not_me.split("token=").nth(1).unwrap();
        let reported =
            me.post(app.url("/not-me")).form(&[("token", token), ("csrf", &csrf_of(&page))]).send().await.unwrap();
        assert_eq!(reported.status(), StatusCode::OK);

        let view = app.person_json(&sam.email).await;
        assert_eq!(view["accounts"][0]["lock_reason"], "reported_not_me");
        let (status, _) = get(&sam_session, &app.url("/account/password")).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "sessions ended");
        let (status, _) = get(&browser(), &app.url(&reset)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "the access link is revoked");
        let alert = last_email(&app, &harry.email).await;
        assert!(alert.contains("did not ask for \"Send access email\""), "{alert}");
        let (status, used) = get(&me, &app.url(&not_me)).await;
        assert_eq!(status, StatusCode::GONE);
        assert!(used.contains("was used on"), "{used}");
        let twice =
            me.post(app.url("/not-me")).form(&[("token", token), ("csrf", &csrf_of(&page))]).send().await.unwrap();
        assert_eq!(twice.status(), StatusCode::GONE, "single use");

        // Nobody hands out a new way in past the alarm: the deliberate unlock comes first.
        let (status, html) = act(&app, &console, "send-access-email", sam_id, &[]).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert!(html.contains("this wasn&#39;t me") || html.contains("this wasn't me"), "{html}");

        // A link past its lifetime (7 days by default) does nothing.
        act(&app, &console, "unlock-person", sam_id, &[]).await;
        let later = link_in(&last_email(&app, &sam.email).await, "/not-me?token=");
        app.clock.advance(8 * 86_400);
        let (status, _) = get(&browser(), &app.url(&later)).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    })
    .await;
}

#[tokio::test]
async fn bad_input_on_the_action_form_changes_nothing_and_sends_nothing() {
    each_backend(async |app: TestApp| {
        let ada = admin(&app, "ada", expert(3)).await;
        let sam = app.add_person("sam", true).await;
        let other = app.add_person("other", true).await;
        let sam_id = person_id(&app, &sam).await;
        let console = app.sign_in(&ada).await;
        let (seen, csrf) = review(&app, &console, "send-magic-link", sam_id).await;
        let path = format!("/console/people/{sam_id}/actions/send-magic-link");
        let long = "x".repeat(1001);
        let foreign = other.account_id.0.to_string();
        // Open requests about someone else, and about an address that matched nobody.
        let others =
            json_reference(app.post_assistance_json("81.2.69.142", &other.email, "locked_out", "").await).await;
        let nobodys =
            json_reference(app.post_assistance_json("81.2.69.142", "nobody@example.org", "locked_out", "").await).await;
        for _ in 0..100 {
            let matched: Option<i64> =
                sqlx::query_scalar("SELECT person_id FROM assistance_request WHERE reference = $1")
                    .bind(&others)
                    .fetch_one(app.db.pool())
                    .await
                    .unwrap();
            if matched.is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let cases: Vec<(Vec<(&str, &str)>, StatusCode)> = vec![
            (vec![("seen", &seen)], StatusCode::BAD_REQUEST),
            (vec![("seen", &seen), ("method", "because")], StatusCode::BAD_REQUEST),
            (vec![("seen", &seen), ("method", "Other (see details)")], StatusCode::BAD_REQUEST),
            (vec![("seen", &seen), ("method", METHOD), ("details", &long)], StatusCode::BAD_REQUEST),
            (vec![("seen", &seen), ("method", METHOD), ("account", &foreign)], StatusCode::BAD_REQUEST),
            (vec![("seen", &seen), ("method", METHOD), ("account", "abc")], StatusCode::BAD_REQUEST),
            (vec![("seen", &seen), ("method", METHOD), ("reference", "AR-2222-2222")], StatusCode::BAD_REQUEST),
            (vec![("seen", &seen), ("method", METHOD), ("reference", &others)], StatusCode::BAD_REQUEST),
            (vec![("seen", &seen), ("method", METHOD), ("reference", &nobodys)], StatusCode::BAD_REQUEST),
            (vec![("seen", "stale"), ("method", METHOD)], StatusCode::CONFLICT),
        ];
        for (fields, expected) in cases {
            let mut form = fields.clone();
            form.push(("csrf", &csrf));
            let response = console.post(app.url(&path)).form(&form).send().await.unwrap();
            assert_eq!(response.status(), expected, "{fields:?}");
        }
        for (path, expected) in [
            (format!("/console/people/{sam_id}/actions/make-coffee"), StatusCode::NOT_FOUND),
            ("/console/people/999999/actions/unlock".to_owned(), StatusCode::NOT_FOUND),
            ("/console/people/abc/actions/unlock".to_owned(), StatusCode::NOT_FOUND),
        ] {
            let response =
                console.post(app.url(&path)).form(&[("csrf", csrf.as_str()), ("method", METHOD)]).send().await.unwrap();
            assert_eq!(response.status(), expected, "{path}");
        }
        assert!(emails_to(&app, &sam.email).await.is_empty(), "no email");
        assert!(audit_row(&app, "send-magic-link").await.is_none(), "no audit row");
    })
    .await;
}

#[tokio::test]
async fn fifty_concurrent_redemptions_of_each_kind_of_secret_succeed_once() {
    each_backend(async |app: TestApp| {
        let bases = [app.url("")];
        race_every_secret(&app, &bases).await;
    })
    .await;
}

#[tokio::test]
async fn fifty_concurrent_redemptions_split_over_two_instances_succeed_once_per_secret() {
    each_backend(async |app: TestApp| {
        // The secrets are issued through this process; two `lifeline serve` on the same database take the race.
        let pair = crate::instances::Instances::start(app.dir(), &app.db_url(), 2, &[]).await;
        race_every_secret(&app, &pair.addresses).await;
    })
    .await;
}

/// Issue a recovery code, an access email, a magic link, a one-time password and a one-time temporary
/// access pass to Sam in turn, and have 50 browsers spread
/// over `bases` redeem each at once: exactly one wins each race.
async fn race_every_secret(app: &TestApp, bases: &[String]) {
    let ada = admin(app, "ada", expert(3)).await;
    let sam = app.add_person("sam", true).await;
    let sam_id = person_id(app, &sam).await;
    let console = app.sign_in(&ada).await;

    act(app, &console, "send-recovery-code", sam_id, &[]).await;
    let code = code_in(&last_email(app, &sam.email).await);
    let outcomes = race(bases, "/recover", "/recover", &[("email", &sam.email), ("code", &code)]).await;
    assert_eq!(winners(&outcomes, |_, to| to == "/recover/options"), 1, "recovery code: {outcomes:?}");

    for (action, password) in [("send-access-email", NEW_PASSWORD), ("send-magic-link", "quiet-meadow-copper-37")] {
        act(app, &console, action, sam_id, &[]).await;
        let link = link_in(&last_email(app, &sam.email).await, "/reset-password?token=");
        let token = link.split("token=").nth(1).unwrap().to_owned();
        let fields = [("token", token.as_str()), ("new_password", password), ("confirm_password", password)];
        let outcomes = race(bases, &link, "/reset-password", &fields).await;
        assert_eq!(winners(&outcomes, |status, _| status == StatusCode::OK), 1, "{action}: {outcomes:?}");
    }

    act(app, &console, "send-one-time-password", sam_id, &[]).await;
    let otp = code_in(&last_email(app, &sam.email).await);
    let outcomes = race(bases, "/signin/code", "/signin/code", &[("login", "sam"), ("code", &otp)]).await;
    assert_eq!(winners(&outcomes, |_, to| to == "/signin/mfa"), 1, "one-time password: {outcomes:?}");

    let (status, html) = act(app, &console, "issue-temporary-access-pass", sam_id, &[("pass_minutes", "30")]).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    let pass = html.split("id=\"pass\">").nth(1).unwrap().split('<').next().unwrap().to_owned();
    let outcomes = race(bases, "/signin/code", "/signin/code", &[("login", "sam"), ("code", &pass)]).await;
    assert_eq!(winners(&outcomes, |_, to| to == "/signin/enroll"), 1, "temporary access pass: {outcomes:?}");

    let (status, html) = act(app, &console, "issue-enrolment-code", sam_id, &[]).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    let code = html.split("id=\"pass\">").nth(1).unwrap().split('<').next().unwrap().to_owned();
    let outcomes = race(bases, "/signin/code", "/signin/code", &[("login", "sam"), ("code", &code)]).await;
    assert_eq!(winners(&outcomes, |_, to| to == "/signin/passkey/enrol"), 1, "enrolment code: {outcomes:?}");
}

/// 50 browsers, the n-th on `bases[n % len]`, each load `page` for its CSRF token, then post the same form
/// to `path` at once; each outcome is (status, redirect target).
pub(crate) async fn race(
    bases: &[String],
    page: &str,
    path: &str,
    fields: &[(&str, &str)],
) -> Vec<(StatusCode, String)> {
    let mut ready = Vec::new();
    for n in 0..50 {
        let base = &bases[n % bases.len()];
        let client = browser();
        let (_, html) = get(&client, &format!("{base}{page}")).await;
        ready.push((client, base, csrf_of(&html)));
    }
    let attempts = ready.into_iter().map(|(client, base, csrf)| async move {
        let mut form = fields.to_vec();
        form.push(("csrf", &csrf));
        let response = client.post(format!("{base}{path}")).form(&form).send().await.unwrap();
        (response.status(), location(&response))
    });
    futures::future::join_all(attempts).await
}

pub(crate) fn winners(outcomes: &[(StatusCode, String)], won: impl Fn(StatusCode, &str) -> bool) -> usize {
    outcomes.iter().filter(|(status, to)| won(*status, to)).count()
}

#[tokio::test]
async fn the_cli_resets_mfa_and_disables_and_enables_as_the_system() {
    each_backend(async |app: TestApp| {
        let sam = app.add_person("sam", true).await;
        let run = |args: &[&str]| run_lifeline(app.dir(), &app.db_url(), args, "", &[]);
        let out = run(&["person", "reset-mfa", &sam.email, "--reason", "lost phone, verified in person"]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(app.person_json(&sam.email).await["accounts"][0]["mfa"]["totp_enabled"], false);
        let out = run(&["person", "disable", &sam.email, "--reason", "left"]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(app.person_json(&sam.email).await["status"], "disabled");
        let out = run(&["person", "enable", &sam.email, "--reason", "back"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let out = run(&["person", "enable", &sam.email, "--reason", "again"]);
        assert!(!out.status.success(), "already active: {}", stdout(&out));
        let out = run(&["person", "disable", &sam.email, "--reason", "x"]);
        assert!(!out.status.success() && stderr(&out).contains("reason"), "{}", stderr(&out));
        let (_, _, _, actor) = audit_row(&app, "reset-mfa").await.unwrap();
        assert_eq!(actor, "system");
        let out = run(&["audit", "verify"]);
        assert!(out.status.success(), "{}", stderr(&out));
    })
    .await;
}

#[tokio::test]
async fn auditors_filter_the_audit_log_and_see_the_chain_verify_others_are_refused() {
    each_backend(async |app: TestApp| {
        let auditor =
            admin(&app, "ada", Grant { dpa_level: 3, expert_mode: true, auditor: true, ..Default::default() }).await;
        let harry = admin(&app, "harry", Grant { dpa_level: 1, ..Default::default() }).await;
        let sam = app.add_person("sam", true).await;
        let sam_id = person_id(&app, &sam).await;
        let console = app.sign_in(&auditor).await;
        act(&app, &console, "send-magic-link", sam_id, &[]).await;

        let (status, html) =
            get(&console, &app.url(&format!("/console/audit?action=send-magic&person={sam_id}"))).await;
        assert_eq!(status, StatusCode::OK, "{html}");
        assert!(html.contains("Chain verified") && html.contains("send-magic-link") && html.contains(METHOD), "{html}");
        assert!(!html.contains("sign_in</td>"), "filtered by action: {html}");
        let (status, _) = get(&console, &app.url("/console/audit?from=yesterday")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, _) = get(&app.sign_in(&harry).await, &app.url("/console/audit")).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    })
    .await;
}

/// The href of the first link on `html` whose address contains `needle` (HTML-unescaped).
fn href_with(html: &str, needle: &str) -> String {
    html.split("href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(|h| h.replace("&amp;", "&").replace("&#38;", "&"))
        .find(|h| h.contains(needle))
        .unwrap_or_else(|| panic!("no link with {needle} in:\n{html}"))
}

fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).unwrap_or_else(|| panic!("no {name} field in:\n{html}")) + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

#[tokio::test]
async fn a_request_is_helped_through_the_wizard_the_magic_link_signs_lou_in_and_the_reference_is_audited() {
    each_backend(async |app: TestApp| {
        let harry = admin(&app, "harry", Grant { dpa_level: 1, ..Default::default() }).await;
        let lou = app.add_person("lou", true).await;
        for _ in 0..5 {
            app.post_sign_in(&browser(), &lou.username, "not-lous-password-at-all").await;
        }
        let reference =
            json_reference(app.post_assistance_json("81.2.69.142", &lou.email, "locked_out", "").await).await;
        let console = app.sign_in(&harry).await;

        // The request page, once its dossier is built, offers the wizard for Lou with the reference.
        let mut request_page = String::new();
        for _ in 0..100 {
            request_page = get(&console, &app.url(&format!("/console/requests/{reference}"))).await.1;
            if request_page.contains("Help this person") {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let (_, options) = get(&console, &app.url(&href_with(&request_page, "/console/assist?person="))).await;
        assert!(options.contains(&reference), "{options}");
        let (status, review) = get(&console, &app.url(&href_with(&options, "action=send-magic-link"))).await;
        assert_eq!(status, StatusCode::OK, "{review}");
        assert_eq!(hidden(&review, "reference"), reference);
        let lou_id = person_id(&app, &lou).await;
        let form = [
            ("csrf", csrf_of(&review)),
            ("seen", hidden(&review, "seen")),
            ("reference", reference.clone()),
            ("method", METHOD.to_owned()),
            ("on_behalf_of", "Mona Manager".to_owned()),
            ("details", "called back on the desk phone".to_owned()),
        ];
        let done = console
            .post(app.url(&format!("/console/people/{lou_id}/actions/send-magic-link")))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(done.status(), StatusCode::OK, "{}", done.text().await.unwrap_or_default());

        // The audit row names the method, the manager and the request; the request is resolved.
        let (reason, on_behalf_of, audited_reference, actor) = audit_row(&app, "send-magic-link").await.unwrap();
        assert_eq!(reason.as_deref(), Some(METHOD));
        assert_eq!(on_behalf_of.as_deref(), Some("Mona Manager"));
        assert_eq!(audited_reference.as_deref(), Some(reference.as_str()));
        assert!(actor.ends_with(":harry"));
        let status: String = sqlx::query_scalar("SELECT status FROM assistance_request WHERE reference = $1")
            .bind(&reference)
            .fetch_one(app.db.pool())
            .await
            .unwrap();
        assert_eq!(status, "resolved");

        // Lou's email: the link sets a password, lifts the lock, and Lou signs in with the authenticator.
        let text = last_email(&app, &lou.email).await;
        assert!(text.contains("/not-me?token="), "{text}");
        let link = link_in(&text, "/reset-password?token=");
        let token = link.split("token=").nth(1).unwrap().to_owned();
        let me = browser();
        let fields = [("token", token.as_str()), ("new_password", NEW_PASSWORD), ("confirm_password", NEW_PASSWORD)];
        let set = post_with_csrf(&me, &app, &link, "/reset-password", &fields).await;
        assert_eq!(set.status(), StatusCode::OK);
        let signed = app.post_sign_in(&me, &lou.username, NEW_PASSWORD).await;
        assert_eq!(location(&signed), "/signin/mfa");
        let totp = code(lou.totp.as_ref().unwrap(), 0);
        let second = post_with_csrf(&me, &app, "/signin/mfa", "/signin/mfa", &[("code", &totp)]).await;
        assert_eq!(location(&second), "/", "signed in");

        // Every step is in Lou's activity log on the person record.
        let (_, record) = get(&console, &app.url(&format!("/console/people/{lou_id}"))).await;
        let activity = record.split("<h2>Activity log</h2>").nth(1).unwrap();
        assert!(activity.contains("<td>send-magic-link</td>") && activity.contains(METHOD), "{activity}");
        assert!(activity.contains("<td>password.reset</td>"), "the link used: {activity}");
        assert!(activity.contains("<td>Mona Manager</td>") && activity.contains(&reference), "{activity}");
        let sign_ins: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM audit_event WHERE action = 'sign_in' AND outcome = 'success' AND subject_person_id = $1",
        )
        .bind(lou_id)
        .fetch_one(app.db.pool())
        .await
        .unwrap();
        assert!(sign_ins >= 1, "sign-in rows name whose sign-in it was");
    })
    .await;
}

#[tokio::test]
async fn unlock_one_account_unlock_q_and_a_and_unenrol_q_and_a_end_to_end() {
    each_backend_with(
        |s| s.policy.qa_enabled = true,
        async |app: TestApp| {
            let ada = admin(&app, "ada", expert(3)).await;
            let sam = app.add_person("sam", true).await;
            let sam_id = person_id(&app, &sam).await;
            let answers = ["Hillside Primary", "Leeds", "Dune"].map(str::to_owned).to_vec();
            app.state.signin.enrol_security_questions(sam.account_id, &answers, true).await.unwrap();
            let console = app.sign_in(&ada).await;

            // One account locked by failures: `unlock` on that account lifts it and says who did.
            for _ in 0..5 {
                app.post_sign_in(&browser(), &sam.username, "not-sams-password-at-all").await;
            }
            let account = sam.account_id.to_string();
            let (status, html) = act(&app, &console, "unlock", sam_id, &[("account", &account)]).await;
            assert_eq!(status, StatusCode::OK, "{html}");
            let view = app.person_json(&sam.email).await;
            assert_eq!(view["accounts"][0]["locked"], false);
            assert!(view["accounts"][0]["unlocked_by"].as_str().unwrap().ends_with(":ada"));
            assert!(last_email(&app, &sam.email).await.contains("/not-me?token="));
            assert_eq!(location(&app.post_sign_in(&browser(), &sam.username, &sam.password).await), "/signin/mfa");

            // The Q&A reset locked by wrong answers: `unlock-qa` lets the right answers work again.
            let reset = async |answers: [&str; 3], password: &str| {
                app.post_form(
                    &browser(),
                    "/reset",
                    &[
                        ("email", &sam.email),
                        ("answer0", answers[0]),
                        ("answer1", answers[1]),
                        ("answer2", answers[2]),
                        ("new_password", password),
                        ("confirm_password", password),
                    ],
                )
                .await
            };
            for _ in 0..3 {
                reset(["Hillside Primary", "Leeds", "Foundation"], NEW_PASSWORD).await;
            }
            assert_eq!(app.person_json(&sam.email).await["accounts"][0]["qa_locked"], true);
            // Only the Q&A lock: the menu offers both unlocks that clear it, not the account unlock.
            let (_, record) = get(&console, &app.url(&format!("/console/people/{sam_id}"))).await;
            assert!(record.contains("?action=unlock-qa") && record.contains("?action=unlock-person"), "{record}");
            assert!(!record.contains("?action=unlock&#38;"), "{record}");
            let (status, html) = act(&app, &console, "unlock-qa", sam_id, &[]).await;
            assert_eq!(status, StatusCode::OK, "{html}");
            assert_eq!(app.person_json(&sam.email).await["accounts"][0]["qa_locked"], false);
            let (reason, on_behalf_of, _, _) = audit_row(&app, "unlock-qa").await.unwrap();
            assert_eq!((reason.as_deref(), on_behalf_of.as_deref()), (Some(METHOD), Some("Mona Manager")));
            let right = reset(["Hillside Primary", "Leeds", "Dune"], NEW_PASSWORD).await;
            assert_eq!(right.status(), StatusCode::OK);

            // `unenroll-qa` removes the answers: they no longer reset anything.
            let (status, html) = act(&app, &console, "unenroll-qa", sam_id, &[]).await;
            assert_eq!(status, StatusCode::OK, "{html}");
            assert_eq!(app.person_json(&sam.email).await["accounts"][0]["qa_enrolled"], false);
            let after = reset(["Hillside Primary", "Leeds", "Dune"], "quiet-meadow-copper-37").await;
            assert_eq!(after.status(), StatusCode::BAD_REQUEST);
            let notices = emails_to(&app, &sam.email).await;
            // Setting the answers is a binding, told first; the reset with them is told too; and one notice per
            // action.
            assert_eq!(notices.len(), 5, "{notices:?}");
            assert!(notices[0].0.contains("security questions were set"), "{notices:?}");
            let reset_told = notices.iter().filter(|(s, _)| s.contains("the password of your account was reset"));
            assert_eq!(reset_told.count(), 1, "{notices:?}");
        },
    )
    .await;
}

#[tokio::test]
async fn step_up_eleven_minutes_after_sign_in_each_expert_action_asks_for_a_fresh_code_then_runs() {
    each_backend_with_clock(real_now(), test_adjust, async |app: TestApp, clock| {
        let ada = admin(&app, "ada", expert(3)).await;
        let console = app.sign_in(&ada).await;
        let fresh = || lifeline::totp::code_at(ada.totp.as_ref().unwrap(), lifeline::clock::Clock::now(&*clock));
        for (action, extra) in [
            ("send-recovery-code", vec![]),
            ("issue-temporary-access-pass", vec![("pass_minutes", "30")]),
            ("reset-mfa", vec![]),
        ] {
            let sam = app.add_person(&format!("sam-{action}"), true).await;
            let sam_id = person_id(&app, &sam).await;
            clock.advance(11 * 60);
            let (status, html) = act(&app, &console, action, sam_id, &extra).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{action}: asks again");
            assert!(html.contains("name=\"step_up_code\""), "{action}: {html}");
            assert!(emails_to(&app, &sam.email).await.is_empty(), "{action}: nothing ran");
            let mut wrong = extra.clone();
            wrong.push(("step_up_code", "000000"));
            let (status, _) = act(&app, &console, action, sam_id, &wrong).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{action}: a wrong code runs nothing");
            assert!(emails_to(&app, &sam.email).await.is_empty(), "{action}: nothing ran");
            let code = fresh();
            let mut with_code = extra.clone();
            with_code.push(("step_up_code", &code));
            let (status, html) = act(&app, &console, action, sam_id, &with_code).await;
            assert_eq!(status, StatusCode::OK, "{action}: {html}");
            assert_eq!(emails_to(&app, &sam.email).await.len(), 1, "{action}: ran once, told Sam");
            // The fresh code counts for ten minutes: the next expert action within them asks nothing.
            let other = app.add_person(&format!("kim-{action}"), true).await;
            clock.advance(9 * 60);
            let (status, html) = act(&app, &console, action, person_id(&app, &other).await, &extra).await;
            assert_eq!(status, StatusCode::OK, "{action} 9 minutes after the step-up: {html}");
        }
        // An ordinary action never asks.
        let lou = app.add_person("lou", true).await;
        clock.advance(30 * 60);
        let (status, html) = act(&app, &console, "send-access-email", person_id(&app, &lou).await, &[]).await;
        assert_eq!(status, StatusCode::OK, "{html}");
    })
    .await;
}

#[tokio::test]
async fn links_passes_and_device_codes_expire_at_their_configured_lifetimes() {
    each_backend_with_clock(
        real_now(),
        |s| {
            s.recovery.link_minutes = 30;
            // A half-finished sign-in outlives the device code here, so the code's own expiry is what is seen.
            s.policy.pending_sign_in_minutes = 30;
        },
        async |app: TestApp, clock| {
            let ada = admin(&app, "ada", expert(3)).await;
            let sam = app.add_person("sam", true).await;
            let sam_id = person_id(&app, &sam).await;
            let console = app.sign_in(&ada).await;
            let now = || lifeline::clock::Clock::now(&*clock);
            let step_up = || lifeline::totp::code_at(ada.totp.as_ref().unwrap(), now());
            let set_password = async |link: &str, password: &str| {
                let token = link.split("token=").nth(1).unwrap().to_owned();
                let fields = [("token", token.as_str()), ("new_password", password), ("confirm_password", password)];
                post_with_csrf(&browser(), &app, "/signin", "/reset-password", &fields).await.status()
            };

            // A link (access email, magic link) lives `link_minutes` (30 here): dead at 31, alive at 29.
            for action in ["send-access-email", "send-magic-link"] {
                act(&app, &console, action, sam_id, &[]).await;
                let late = link_in(&last_email(&app, &sam.email).await, "/reset-password?token=");
                clock.advance(31 * 60);
                assert_eq!(get(&browser(), &app.url(&late)).await.0, StatusCode::NOT_FOUND, "{action} at 31");
                assert_ne!(set_password(&late, NEW_PASSWORD).await, StatusCode::OK, "{action} at 31");
                act(&app, &console, action, sam_id, &[]).await;
                let link = link_in(&last_email(&app, &sam.email).await, "/reset-password?token=");
                clock.advance(29 * 60);
                let password = format!("{action}-quiet-meadow-37");
                assert_eq!(set_password(&link, &password).await, StatusCode::OK, "{action} at 29");
            }

            // A temporary access pass lives the minutes the admin chose (20): dead at 21, alive at 19.
            let pass = async || {
                let code = step_up();
                let fields = [("pass_minutes", "20"), ("step_up_code", code.as_str())];
                let (status, html) = act(&app, &console, "issue-temporary-access-pass", sam_id, &fields).await;
                assert_eq!(status, StatusCode::OK, "{html}");
                html.split("id=\"pass\">").nth(1).unwrap().split('<').next().unwrap().to_owned()
            };
            let use_pass = async |pass: &str| {
                let fields = [("login", "sam"), ("code", pass)];
                location(&post_with_csrf(&browser(), &app, "/signin/code", "/signin/code", &fields).await)
            };
            let late = pass().await;
            clock.advance(21 * 60);
            assert_eq!(use_pass(&late).await, "", "a pass at 21 of 20 minutes is refused");
            let alive = pass().await;
            clock.advance(19 * 60);
            assert_eq!(use_pass(&alive).await, "/signin/enroll", "a pass at 19 of 20 minutes");

            // The device authorization code after an MFA reset lives 10 minutes.
            let kim = app.add_person("kim", true).await;
            let code = step_up();
            let kim_id = person_id(&app, &kim).await;
            let (status, html) = act(&app, &console, "reset-mfa", kim_id, &[("step_up_code", &code)]).await;
            assert_eq!(status, StatusCode::OK, "{html}");
            let me = browser();
            assert_eq!(location(&app.post_sign_in(&me, "kim", &kim.password).await), "/signin/device");
            let device = code_in(&last_email(&app, &kim.email).await);
            // The page is loaded in time, the code typed too late.
            let (_, page) = get(&me, &app.url("/signin/device")).await;
            clock.advance(11 * 60);
            let csrf = csrf_of(&page);
            let late =
                me.post(app.url("/signin/device")).form(&[("code", &device), ("csrf", &csrf)]).send().await.unwrap();
            assert_eq!(late.status(), StatusCode::UNAUTHORIZED, "a device code at 11 minutes: {}", location(&late));
            let me = browser();
            assert_eq!(location(&app.post_sign_in(&me, "kim", &kim.password).await), "/signin/device");
            let device = code_in(&last_email(&app, &kim.email).await);
            clock.advance(9 * 60);
            let alive = post_with_csrf(&me, &app, "/signin/device", "/signin/device", &[("code", &device)]).await;
            assert_eq!(location(&alive), "/signin/enroll", "a device code at 9 minutes");
        },
    )
    .await;
}

#[tokio::test]
async fn a_multi_use_pass_works_while_it_lives_until_a_new_authenticator_is_bound() {
    each_backend(async |app: TestApp| {
        let ada = admin(&app, "ada", expert(3)).await;
        let sam = app.add_person("sam", true).await;
        let sam_id = person_id(&app, &sam).await;
        let console = app.sign_in(&ada).await;
        let fields = [("pass_minutes", "60"), ("pass_multi_use", "1")];
        let (status, html) = act(&app, &console, "issue-temporary-access-pass", sam_id, &fields).await;
        assert_eq!(status, StatusCode::OK, "{html}");
        let pass = html.split("id=\"pass\">").nth(1).unwrap().split('<').next().unwrap().to_owned();
        let use_pass = async |client: &reqwest::Client| {
            let fields = [("login", "sam"), ("code", pass.as_str())];
            location(&post_with_csrf(client, &app, "/signin/code", "/signin/code", &fields).await)
        };
        assert_eq!(use_pass(&browser()).await, "/signin/enroll", "first use");
        let me = browser();
        assert_eq!(use_pass(&me).await, "/signin/enroll", "second use: multi-use");

        // Binding a new authenticator (oathtool's code for the new secret) ends the pass.
        let (_, enrol) = get(&me, &app.url("/signin/enroll")).await;
        let secret = enrol.split("secret=").nth(1).unwrap().split('&').next().unwrap().to_owned();
        let out = std::process::Command::new("oathtool").args(["--totp", "-b", &secret]).output().unwrap();
        let totp = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let done = post_with_csrf(&me, &app, "/signin/enroll", "/signin/enroll", &[("code", &totp)]).await;
        assert_eq!(done.status(), StatusCode::OK);
        assert_ne!(use_pass(&browser()).await, "/signin/enroll", "revoked by the new authenticator");
    })
    .await;
}

#[tokio::test]
async fn wrong_codes_and_links_from_one_address_share_the_sign_in_window_and_get_429() {
    each_backend_with(
        |s| s.lockout.per_client = lifeline::policy::rate_limit::RateLimit { max: 4, window_seconds: 600 },
        async |app: TestApp| {
            let ada = admin(&app, "ada", expert(3)).await;
            let sam = app.add_person("sam", true).await;
            let sam_id = person_id(&app, &sam).await;
            let console = app.sign_in(&ada).await;
            act(&app, &console, "send-magic-link", sam_id, &[]).await;
            let link = link_in(&last_email(&app, &sam.email).await, "/reset-password?token=");
            act(&app, &console, "send-recovery-code", sam_id, &[]).await;
            let code = code_in(&last_email(&app, &sam.email).await);
            const ATTACKER: &str = "89.160.20.112";
            let wrong = "AAAA-BBBB-CCCC-DDDD-EEEE-FFFF-GGGG";

            // Four failures of different kinds from one address spend its window ...
            let fields = [("email", sam.email.as_str()), ("code", wrong)];
            assert_eq!(app.post_form_from(&browser(), ATTACKER, "/recover", &fields).await.status(), 401);
            assert_eq!(app.post_form_from(&browser(), ATTACKER, "/recover", &fields).await.status(), 401);
            let fields = [("login", "sam"), ("code", wrong)];
            assert_eq!(app.post_form_from(&browser(), ATTACKER, "/signin/code", &fields).await.status(), 401);
            let fields = [
                ("token", "x".repeat(43)),
                ("new_password", NEW_PASSWORD.into()),
                ("confirm_password", NEW_PASSWORD.into()),
            ];
            let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            assert_eq!(app.post_form_from(&browser(), ATTACKER, "/reset-password", &fields).await.status(), 410);

            // ... so the next attempt, of any kind, even with the right code, is refused before it is checked.
            let right = [("email", sam.email.as_str()), ("code", code.as_str())];
            let refused = app.post_form_from(&browser(), ATTACKER, "/recover", &right).await;
            assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
            assert!(refused.headers().contains_key("retry-after"));
            let fields = [("login", "sam"), ("password", sam.password.as_str())];
            assert_eq!(app.post_form_from(&browser(), ATTACKER, "/signin", &fields).await.status(), 429);

            // The code was not used up by the refusal: Sam, elsewhere, uses it.
            let used = app.post_form_from(&browser(), "81.2.69.142", "/recover", &right).await;
            assert_eq!(location(&used), "/recover/options");

            // A live link is not refused for its address's window: someone behind the same address still
            // recovers (256 bits are not guessed); a wrong one is refused there.
            let token = link.split("token=").nth(1).unwrap();
            let fields = [("token", token), ("new_password", NEW_PASSWORD), ("confirm_password", NEW_PASSWORD)];
            let set = app.post_form_from(&browser(), ATTACKER, "/reset-password", &fields).await;
            assert_eq!(set.status(), StatusCode::OK);
            let fields = [
                ("token", "y".repeat(43)),
                ("new_password", NEW_PASSWORD.into()),
                ("confirm_password", NEW_PASSWORD.into()),
            ];
            let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let wrong_link = app.post_form_from(&browser(), ATTACKER, "/reset-password", &fields).await;
            assert_eq!(wrong_link.status(), StatusCode::TOO_MANY_REQUESTS);
        },
    )
    .await;
}

#[tokio::test]
async fn at_most_three_device_codes_are_emailed_in_ten_minutes_and_the_last_one_still_works() {
    each_backend(async |app: TestApp| {
        let ada = admin(&app, "ada", expert(3)).await;
        let sam = app.add_person("sam", true).await;
        let console = app.sign_in(&ada).await;
        act(&app, &console, "reset-mfa", person_id(&app, &sam).await, &[]).await;
        let before = emails_to(&app, &sam.email).await.len();
        let mut me = browser();
        for _ in 0..5 {
            me = browser();
            assert_eq!(location(&app.post_sign_in(&me, "sam", &sam.password).await), "/signin/device");
        }
        let codes = emails_to(&app, &sam.email).await;
        assert_eq!(codes.len() - before, 3, "five sign-ins, three codes");
        let last = code_in(&codes.last().unwrap().1);
        let done = post_with_csrf(&me, &app, "/signin/device", "/signin/device", &[("code", &last)]).await;
        assert_eq!(location(&done), "/signin/enroll");
    })
    .await;
}

#[tokio::test]
async fn a_one_time_password_after_an_mfa_reset_goes_the_password_way_device_authorization_first() {
    each_backend(async |app: TestApp| {
        let ada = admin(&app, "ada", expert(3)).await;
        let sam = app.add_person("sam", true).await;
        let sam_id = person_id(&app, &sam).await;
        let console = app.sign_in(&ada).await;
        act(&app, &console, "reset-mfa", sam_id, &[]).await;
        act(&app, &console, "send-one-time-password", sam_id, &[]).await;
        let otp = code_in(&last_email(&app, &sam.email).await);
        let me = browser();
        let used = post_with_csrf(&me, &app, "/signin/code", "/signin/code", &[("login", "sam"), ("code", &otp)]).await;
        assert_eq!(location(&used), "/signin/device", "the MFA reset's device authorization still applies");
        let device = code_in(&last_email(&app, &sam.email).await);
        assert_ne!(device, otp);
        let done = post_with_csrf(&me, &app, "/signin/device", "/signin/device", &[("code", &device)]).await;
        assert_eq!(location(&done), "/signin/enroll");
    })
    .await;
}

#[tokio::test]
async fn without_mfa_required_a_one_time_password_leads_to_a_new_password_or_to_a_required_enrolment() {
    each_backend_with(
        |s| s.policy.mfa_required = false,
        async |app: TestApp| {
            let ada = admin(&app, "ada", expert(3)).await;
            let kim = app.add_person("kim", false).await;
            let console = app.sign_in(&ada).await;
            act(&app, &console, "send-one-time-password", person_id(&app, &kim).await, &[]).await;
            let otp = code_in(&last_email(&app, &kim.email).await);
            let me = browser();
            let fields = [("login", "kim"), ("code", otp.as_str())];
            let used = post_with_csrf(&me, &app, "/signin/code", "/signin/code", &fields).await;
            assert_eq!(location(&used), "/account/password");

            // An account that must enrol an authenticator enrols first, whichever factor stood in.
            let lee = app.add_person("lee", false).await;
            sqlx::query("UPDATE account SET require_enroll_mfa = 1 WHERE account_id = $1")
                .bind(lee.account_id.0)
                .execute(app.db.pool())
                .await
                .unwrap();
            act(&app, &console, "send-one-time-password", person_id(&app, &lee).await, &[]).await;
            let otp = code_in(&last_email(&app, &lee.email).await);
            let fields = [("login", "lee"), ("code", otp.as_str())];
            let used = post_with_csrf(&browser(), &app, "/signin/code", "/signin/code", &fields).await;
            assert_eq!(location(&used), "/signin/enroll");
        },
    )
    .await;
}

#[tokio::test]
async fn changing_the_password_kills_the_links_and_codes_handed_out_before_but_not_this_wasnt_me() {
    each_backend(async |app: TestApp| {
        let ada = admin(&app, "ada", expert(3)).await;
        let sam = app.add_person("sam", true).await;
        let sam_id = person_id(&app, &sam).await;
        let console = app.sign_in(&ada).await;
        act(&app, &console, "send-magic-link", sam_id, &[]).await;
        let text = last_email(&app, &sam.email).await;
        let link = link_in(&text, "/reset-password?token=");
        let not_me = link_in(&text, "/not-me?token=");
        act(&app, &console, "send-recovery-code", sam_id, &[]).await;
        let code = code_in(&last_email(&app, &sam.email).await);

        let me = app.sign_in(&sam).await;
        let fields = [
            ("current_password", sam.password.as_str()),
            ("new_password", NEW_PASSWORD),
            ("confirm_password", NEW_PASSWORD),
        ];
        let changed = app.post_form(&me, "/account/password", &fields).await;
        assert!(changed.status().is_success() || changed.status().is_redirection(), "{}", changed.status());
        assert_eq!(get(&browser(), &app.url(&link)).await.0, StatusCode::NOT_FOUND, "the link is dead");
        let fields = [("email", sam.email.as_str()), ("code", code.as_str())];
        let late = post_with_csrf(&browser(), &app, "/recover", "/recover", &fields).await;
        assert_eq!(late.status(), StatusCode::UNAUTHORIZED, "the recovery code is dead");
        assert_eq!(get(&browser(), &app.url(&not_me)).await.0, StatusCode::OK, "\"this wasn't me\" still works");
    })
    .await;
}

#[tokio::test]
async fn removing_an_authenticator_that_is_not_there_says_so_and_changes_nothing() {
    each_backend(async |app: TestApp| {
        let ada = admin(&app, "ada", expert(3)).await;
        let kim = app.add_person("kim", false).await;
        let console = app.sign_in(&ada).await;
        act(&app, &console, "send-recovery-code", person_id(&app, &kim).await, &[]).await;
        let code = code_in(&last_email(&app, &kim.email).await);
        let me = browser();
        let used = post_with_csrf(&me, &app, "/recover", "/recover", &[("email", &kim.email), ("code", &code)]).await;
        assert_eq!(location(&used), "/recover/options");
        let removed = post_with_csrf(&me, &app, "/recover/options", "/recover/authenticator", &[]).await;
        assert_eq!(removed.status(), StatusCode::BAD_REQUEST);
        assert!(removed.text().await.unwrap_or_default().contains("no authenticator"));
        assert!(audit_row(&app, "mfa.remove").await.is_none(), "nothing audited as removed");
        let (status, _) = get(&me, &app.url("/recover/options")).await;
        assert_eq!(status, StatusCode::OK, "the recovery session goes on: a new password can still be set");
    })
    .await;
}

#[tokio::test]
async fn the_access_email_arrives_by_real_smtp_in_both_parts_and_its_link_works() {
    let sink = crate::smtp_sink::SmtpSink::start().await;
    let url = sink.url();
    each_backend_with(
        |s| {
            s.smtp_url = Some(lifeline::config::Redacted(url.clone()));
            s.outbox.retry_base_seconds = 1;
            s.outbox.retry_max_seconds = 2;
        },
        async |app: TestApp| {
            sink.received.lock().map(|mut m| m.clear()).unwrap_or_default();
            let harry = admin(&app, "harry", Grant { dpa_level: 1, ..Default::default() }).await;
            let lou = app.add_person("lou", true).await;
            let console = app.sign_in(&harry).await;
            let (status, html) = act(&app, &console, "send-access-email", person_id(&app, &lou).await, &[]).await;
            assert_eq!(status, StatusCode::OK, "{html}");

            let messages = sink.wait_for(1).await;
            let mail = messages.iter().find(|m| m.rcpt == [lou.email.clone()]).expect("Lou's email over SMTP");
            let (text, html) = (mail.text(), mail.html());
            let link = link_in(&text, "/reset-password?token=");
            let token = link.split("token=").nth(1).unwrap();
            assert!(html.contains(token), "the HTML part carries the same link: {html}");
            assert!(text.contains("/not-me?token=") && html.contains("/not-me?token="));
            assert!(!mail.subject().contains(token), "no secret in the subject");
            assert!(mail.message_id().contains('@'));
            // Once delivered, the outbox keeps no copy of the link.
            let mut bodies = String::from("unsent");
            for _ in 0..100 {
                let row: (Option<i64>, String, String) =
                    sqlx::query_as("SELECT sent_at, text_body, html_body FROM outbox_email WHERE to_address = $1")
                        .bind(&lou.email)
                        .fetch_one(app.db.pool())
                        .await
                        .unwrap();
                if row.0.is_some() {
                    bodies = row.1 + &row.2;
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            assert_eq!(bodies, "", "the delivered email's bodies are cleared");

            let me = browser();
            let fields = [("token", token), ("new_password", NEW_PASSWORD), ("confirm_password", NEW_PASSWORD)];
            let set = post_with_csrf(&me, &app, &link, "/reset-password", &fields).await;
            assert_eq!(set.status(), StatusCode::OK);
            assert_eq!(location(&app.post_sign_in(&me, "lou", NEW_PASSWORD).await), "/signin/mfa");
        },
    )
    .await;
}

#[tokio::test]
async fn sso_accounts_get_no_password_or_mfa_action_and_synchronized_ones_no_password_action() {
    each_backend(async |app: TestApp| {
        let ada = admin(&app, "ada", expert(3)).await;
        let console = app.sign_in(&ada).await;
        let mut sso = new_person("Sid Sso", "sid@example.org", "sid");
        sso.source = lifeline::domain::AccountSource::Sso;
        let proof = system(&app.state, None).await;
        app.state.directory.add_person(proof, sso, None).await.unwrap();
        let mut synced = new_person("Syd Synced", "syd@example.org", "syd");
        synced.source = lifeline::domain::AccountSource::Synchronized;
        let syd = app.add(synced, true).await;
        let sid_id = app.state.directory.find("sid@example.org").await.unwrap().id.0;
        let syd_id = person_id(&app, &syd).await;

        for action in
            ["send-access-email", "send-magic-link", "send-one-time-password", "send-recovery-code", "reset-mfa"]
        {
            let (seen, csrf) = review(&app, &console, action, sid_id).await;
            let form = [("csrf", csrf.as_str()), ("seen", seen.as_str()), ("method", METHOD)];
            let path = format!("/console/people/{sid_id}/actions/{action}");
            let response = console.post(app.url(&path)).form(&form).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::CONFLICT, "{action} on an SSO account");
            assert!(response.text().await.unwrap_or_default().contains("identity provider"), "{action}");
        }
        for action in ["send-access-email", "send-magic-link", "send-one-time-password"] {
            let (status, html) = act(&app, &console, action, syd_id, &[]).await;
            assert_eq!(status, StatusCode::CONFLICT, "{action} on a synchronized account");
            assert!(html.contains("synchronized directory"), "{action}: {html}");
        }
        assert!(emails_to(&app, "sid@example.org").await.is_empty() && emails_to(&app, &syd.email).await.is_empty());
        // MFA actions still work for a synchronized account.
        let (status, html) = act(&app, &console, "reset-mfa", syd_id, &[]).await;
        assert_eq!(status, StatusCode::OK, "{html}");
        assert_eq!(app.person_json(&syd.email).await["accounts"][0]["mfa"]["totp_enabled"], false);
    })
    .await;
}

/// Open an assistance request for `email` from its own address and wait until its dossier names the person.
async fn open_request(app: &TestApp, email: &str, n: usize) -> String {
    let ip = format!("10.9.{}.{}", n / 200, n % 200 + 1);
    let reference = json_reference(app.post_assistance_json(&ip, email, "other", "").await).await;
    assert!(reference.starts_with("AR-"), "{email}: {reference}");
    for _ in 0..200 {
        let matched: Option<i64> = sqlx::query_scalar("SELECT person_id FROM assistance_request WHERE reference = $1")
            .bind(&reference)
            .fetch_one(app.db.pool())
            .await
            .unwrap();
        if matched.is_some() {
            return reference;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{reference} was never matched to {email}");
}

#[tokio::test]
async fn every_action_from_a_request_audits_reason_on_behalf_of_and_reference_tells_the_person_and_resolves_it() {
    each_backend_with(
        |s| s.policy.qa_enabled = true,
        async |app: TestApp| {
            let ada = admin(&app, "ada", expert(3)).await;
            let console = app.sign_in(&ada).await;
            for (n, action) in lifeline::policy::permissions::RecoveryAction::ALL.into_iter().enumerate() {
                let name = action.name();
                let username = format!("p{n}");
                let person = app.add_person(&username, true).await;
                let id = person_id(&app, &person).await;
                // Put the person in the state the action is for.
                let mut extra: Vec<(&str, String)> = Vec::new();
                match name {
                    "unlock" | "unlock-person" => {
                        for _ in 0..5 {
                            app.post_sign_in(&browser(), &username, "not-the-password-at-all").await;
                        }
                        extra.push(("account", person.account_id.0.to_string()));
                    }
                    "unlock-qa" | "unenroll-qa" => {
                        let answers = ["Hillside Primary", "Leeds", "Dune"].map(str::to_owned).to_vec();
                        app.state.signin.enrol_security_questions(person.account_id, &answers, true).await.unwrap();
                        sqlx::query(
                            "UPDATE account SET qa_locked_at = 1, qa_failed_attempts = 3 WHERE account_id = $1",
                        )
                        .bind(person.account_id.0)
                        .execute(app.db.pool())
                        .await
                        .unwrap();
                    }
                    "enable" => {
                        sqlx::query("UPDATE person SET status = 'disabled' WHERE person_id = $1")
                            .bind(id)
                            .execute(app.db.pool())
                            .await
                            .unwrap();
                    }
                    "issue-temporary-access-pass" => extra.push(("pass_minutes", "30".into())),
                    _ => {}
                }
                let reference = open_request(&app, &person.email, n).await;
                let before = emails_to(&app, &person.email).await.len();
                let mut fields: Vec<(&str, &str)> = extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
                fields.push(("reference", &reference));
                fields.push(("details", "called back on the desk phone"));
                let (status, html) = act(&app, &console, name, id, &fields).await;
                assert_eq!(status, StatusCode::OK, "{name}: {html}");

                let (reason, on_behalf_of, audited, actor) = audit_row(&app, name).await.unwrap();
                assert_eq!(reason.as_deref(), Some(METHOD), "{name}");
                assert_eq!(on_behalf_of.as_deref(), Some("Mona Manager"), "{name}");
                assert_eq!(audited.as_deref(), Some(reference.as_str()), "{name}");
                assert!(actor.ends_with(":ada"), "{name}: {actor}");
                let status: String = sqlx::query_scalar("SELECT status FROM assistance_request WHERE reference = $1")
                    .bind(&reference)
                    .fetch_one(app.db.pool())
                    .await
                    .unwrap();
                assert_eq!(status, "resolved", "{name}");
                let emails = emails_to(&app, &person.email).await;
                assert!(emails.len() > before, "{name}: the person is told");
                let (_, notice) = emails.last().unwrap();
                assert!(notice.contains(&reference), "{name}: the notice names the request: {notice}");
                let not_me = link_in(notice, "/not-me?token=");
                assert_eq!(get(&browser(), &app.url(&not_me)).await.0, StatusCode::OK, "{name}: its link is live");
            }
            let out = run_lifeline(app.dir(), &app.db_url(), &["audit", "verify"], "", &[]);
            assert!(out.status.success(), "{}", stderr(&out));
        },
    )
    .await;
}

#[tokio::test]
async fn the_wizards_lookup_lists_only_people_the_admin_may_act_on() {
    each_backend(async |app: TestApp| {
        let harry = admin(&app, "harry", Grant { dpa_level: 1, ..Default::default() }).await;
        admin(&app, "hank", Grant { dpa_level: 1, ..Default::default() }).await;
        app.add_person("sam", true).await;
        let console = app.sign_in(&harry).await;
        let (status, page) = get(&console, &app.url("/console/assist?action=send-access-email&q=example.org")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains("Test sam"), "{page}");
        assert!(!page.contains("Test hank") && !page.contains("Test harry"), "no peer, not oneself: {page}");
    })
    .await;
}
