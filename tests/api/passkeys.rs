//! Passkeys, in process, with webauthn-authenticator-rs's `SoftPasskey` as the person's authenticator: the
//! browser's part (the options from Lifeline, the authenticator's answer back in a form) is done here over HTTP,
//! exactly as `static/passkey.js` does it. Chromium's virtual authenticator covers the discoverable sign-in
//! (`tests/e2e/passkeys.rs`): `SoftPasskey` keeps no resident key, so here the sign-in names the account.

use crate::helpers::*;
use lifeline::store::CredentialStore;
use reqwest::StatusCode;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse, Url};

/// A person's authenticator: it claims user verification (as a platform authenticator with a screen lock does).
pub fn authenticator() -> SoftPasskey {
    SoftPasskey::new(true)
}

pub fn origin(app: &TestApp) -> Url {
    Url::parse(&app.state.settings().public_url).unwrap_or_else(|e| panic!("{e}"))
}

/// POST an options request as the script does: the CSRF token of the page in a form; the JSON answer.
pub async fn options(
    app: &TestApp,
    client: &reqwest::Client,
    path: &str,
    page: &str,
    login: Option<&str>,
) -> (StatusCode, serde_json::Value) {
    let html =
        client.get(app.url(page)).send().await.unwrap_or_else(|e| panic!("{e}")).text().await.unwrap_or_default();
    let csrf = csrf_of(&html);
    let mut form = vec![("csrf", csrf.as_str())];
    if let Some(login) = login {
        form.push(("login", login));
    }
    let response = client.post(app.url(path)).form(&form).send().await.unwrap_or_else(|e| panic!("{e}"));
    let status = response.status();
    (status, response.json().await.unwrap_or_else(|e| panic!("{path}: not JSON: {e}")))
}

/// Add a passkey from the account page of a signed-in browser; the page answered.
pub async fn add_passkey(
    app: &TestApp,
    client: &reqwest::Client,
    key: &mut SoftPasskey,
    name: &str,
) -> (StatusCode, String) {
    let (status, begun) = options(app, client, "/account/passkeys/options", "/account/passkeys", None).await;
    assert_eq!(status, StatusCode::OK, "{begun}");
    let challenge: CreationChallengeResponse =
        serde_json::from_value(begun["options"].clone()).unwrap_or_else(|e| panic!("{e}: {begun}"));
    let credential = key.do_registration(origin(app), challenge).unwrap_or_else(|e| panic!("{e:?}"));
    let credential = serde_json::to_string(&credential).unwrap_or_else(|e| panic!("{e}"));
    let ceremony = begun["ceremony"].as_str().unwrap_or_default();
    let response = app
        .post_form(
            client,
            "/account/passkeys/add",
            &[("ceremony", ceremony), ("credential", &credential), ("name", name)],
        )
        .await;
    let status = response.status();
    (status, response.text().await.unwrap_or_default())
}

/// Add a passkey in a session that must set up a second factor (an enrolment code's, or an admin's under
/// `policy.admins_require_passkey`): the answer to the final form.
pub async fn enrol_passkey(
    app: &TestApp,
    client: &reqwest::Client,
    key: &mut SoftPasskey,
    name: &str,
) -> reqwest::Response {
    let (status, begun) = options(app, client, "/signin/passkey/enrol/options", "/signin/passkey/enrol", None).await;
    assert_eq!(status, StatusCode::OK, "{begun}");
    let challenge: CreationChallengeResponse =
        serde_json::from_value(begun["options"].clone()).unwrap_or_else(|e| panic!("{e}: {begun}"));
    let credential = key.do_registration(origin(app), challenge).unwrap_or_else(|e| panic!("{e:?}"));
    let credential = serde_json::to_string(&credential).unwrap_or_else(|e| panic!("{e}"));
    let ceremony = begun["ceremony"].as_str().unwrap_or_default();
    app.post_form(
        client,
        "/signin/passkey/enrol",
        &[("ceremony", ceremony), ("credential", &credential), ("name", name)],
    )
    .await
}

/// The code or pass a console result page shows once.
fn shown_code(html: &str) -> String {
    html.split("id=\"pass\">").nth(1).unwrap_or_default().split('<').next().unwrap_or_default().to_owned()
}

/// "This wasn't me" from the newest email to `email`, as the person does it: the link's page (which must name
/// `reports`), then its button. The answer must be 200.
pub(crate) async fn report_not_me(app: &TestApp, email: &str, reports: &str) {
    use crate::recovery::{get, link_in};
    let emails = emails_for(app, Some(email)).await;
    let not_me = link_in(&emails.last().unwrap_or_else(|| panic!("{email} was told")).1, "/not-me?token=");
    let me = browser();
    let (_, page) = get(&me, &app.url(&not_me)).await;
    assert!(page.contains(reports), "{page}");
    let token = not_me.split("token=").nth(1).unwrap_or_default();
    let reported = me
        .post(app.url("/not-me"))
        .form(&[("token", token), ("csrf", &csrf_of(&page))])
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(reported.status(), StatusCode::OK);
}

/// Begin a sign-in naming `login`: the ceremony and the options, as JSON, as the authenticator sees them. The
/// server names no credential; a browser then finds the passkeys it holds for the site. `SoftPasskey` keeps no
/// discoverable credential, so here the login's passkeys are named in the options (`allowCredentials`), as a
/// browser would find them.
pub async fn begin_sign_in_json(
    app: &TestApp,
    client: &reqwest::Client,
    login: Option<&str>,
) -> (String, serde_json::Value) {
    use lifeline::store::DirectoryStore;
    let (status, begun) = options(app, client, "/signin/passkey/options", "/signin", login).await;
    assert_eq!(status, StatusCode::OK, "{begun}");
    let mut options = begun["options"].clone();
    assert!(options["publicKey"].get("allowCredentials").is_none_or(|a| a.as_array().is_some_and(Vec::is_empty)));
    let account = match login {
        Some(login) => app.db.account_by_login(login).await.unwrap_or_else(|e| panic!("{e}")),
        None => None,
    };
    if let Some(account) = account {
        let passkeys = app.state.passkeys.list(account.id).await.unwrap_or_else(|e| panic!("{e}"));
        options["publicKey"]["allowCredentials"] =
            passkeys.iter().map(|p| serde_json::json!({ "type": "public-key", "id": p.credential_id })).collect();
    }
    (begun["ceremony"].as_str().unwrap_or_default().to_owned(), options)
}

/// Begin a sign-in naming `login`: the ceremony and the options the browser would get.
pub async fn begin_sign_in(
    app: &TestApp,
    client: &reqwest::Client,
    login: Option<&str>,
) -> (String, RequestChallengeResponse) {
    let (ceremony, options) = begin_sign_in_json(app, client, login).await;
    (ceremony, challenge_of(options))
}

fn challenge_of(options: serde_json::Value) -> RequestChallengeResponse {
    serde_json::from_value(options.clone()).unwrap_or_else(|e| panic!("{e}: {options}"))
}

/// Finish a sign-in with the authenticator's answer (JSON) to a ceremony.
pub async fn finish_sign_in(
    app: &TestApp,
    client: &reqwest::Client,
    ceremony: &str,
    answer: &str,
) -> reqwest::Response {
    app.post_form(client, "/signin/passkey", &[("ceremony", ceremony), ("credential", answer)]).await
}

/// The authenticator's answer to a sign-in's options, as the browser would send it.
pub fn assert_with(key: &mut SoftPasskey, origin: Url, challenge: RequestChallengeResponse) -> String {
    let answer = key.do_authentication(origin, challenge).unwrap_or_else(|e| panic!("{e:?}"));
    serde_json::to_string(&answer).unwrap_or_else(|e| panic!("{e}"))
}

/// Sign in with a passkey, naming the account: the response to the final form.
pub async fn passkey_sign_in(
    app: &TestApp,
    key: &mut SoftPasskey,
    login: &str,
) -> (reqwest::Client, reqwest::Response) {
    let client = browser();
    let (ceremony, challenge) = begin_sign_in(app, &client, Some(login)).await;
    let answer = assert_with(key, origin(app), challenge);
    let response = finish_sign_in(app, &client, &ceremony, &answer).await;
    (client, response)
}

async fn audit_actions(app: &TestApp, account: lifeline::domain::AccountId) -> Vec<String> {
    sqlx::query_scalar("SELECT action FROM audit_event WHERE subject_account_id = $1 ORDER BY audit_event_id")
        .bind(account.0)
        .fetch_all(app.db.pool())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn a_person_adds_a_passkey_then_signs_in_with_it_alone() {
    each_backend_with(on_localhost, async |app| {
        let sam = app.add_person("sam", true).await;
        let signed_in = app.sign_in(&sam).await;
        let mut key = authenticator();
        let (status, page) = add_passkey(&app, &signed_in, &mut key, "Work laptop").await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert!(page.contains("The passkey “Work laptop” was added"), "{page}");
        assert!(page.contains(">Work laptop</h3>"), "{page}");

        // The person is told, with the way to say it was not them.
        let emails = emails_for(&app, Some(&sam.email)).await;
        let (subject, body) = emails.last().unwrap_or_else(|| panic!("no email"));
        assert!(subject.contains("a passkey was added to your account"), "{subject}");
        assert!(body.contains("Work laptop") && body.contains("/not-me?token="), "{body}");
        assert!(audit_actions(&app, sam.account_id).await.contains(&"passkey.add".to_owned()));

        // A new browser signs in with the passkey alone: no password, no code.
        let (client, response) = passkey_sign_in(&app, &mut key, &sam.username).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{}", response.text().await.unwrap_or_default());
        assert_eq!(location(&response), "/");
        let home = client.get(app.url("/")).send().await.unwrap_or_else(|e| panic!("{e}"));
        let home = home.text().await.unwrap_or_default();
        assert!(home.contains("Hello, Test sam"), "{home}");
        assert!(home.contains("Passkey"), "the sign-in is listed with its method: {home}");
        let passkeys = app.state.passkeys.list(sam.account_id).await.unwrap_or_else(|e| panic!("{e}"));
        assert!(passkeys[0].last_used_at.is_some(), "its last use is recorded");

        // The new session proved a second factor as it started: an expert's step-up would not be asked.
        let token: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM web_session WHERE account_id = $1 AND stage = 'active' AND second_factor_at IS NOT NULL",
        )
        .bind(sam.account_id.0)
        .fetch_one(app.db.pool())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(token, 2, "both sessions (password + code, and passkey) have a second factor");
    })
    .await;
}

#[tokio::test]
async fn a_passkey_is_renamed_and_removed_and_the_last_one_asks_first() {
    each_backend_with(on_localhost, async |app| {
        let sam = app.add_person("sam", true).await;
        let client = app.sign_in(&sam).await;
        let (mut phone, mut laptop) = (authenticator(), authenticator());
        assert_eq!(add_passkey(&app, &client, &mut phone, "Phone").await.0, StatusCode::OK);
        assert_eq!(add_passkey(&app, &client, &mut laptop, "Laptop").await.0, StatusCode::OK);
        let ids: Vec<i64> =
            app.state.passkeys.list(sam.account_id).await.unwrap_or_default().iter().map(|p| p.id).collect();

        let renamed =
            app.post_form(&client, &format!("/account/passkeys/{}/rename", ids[0]), &[("name", "Old phone")]).await;
        assert!(renamed.text().await.unwrap_or_default().contains(">Old phone</h3>"));
        let bad =
            app.post_form(&client, &format!("/account/passkeys/{}/rename", ids[0]), &[("name", &"x".repeat(65))]).await;
        assert_eq!(bad.status(), StatusCode::BAD_REQUEST);

        // Not the last: removed at once, emailed.
        let removed = app.post_form(&client, &format!("/account/passkeys/{}/remove", ids[0]), &[]).await;
        assert!(removed.text().await.unwrap_or_default().contains("The passkey “Old phone” was removed"));
        let emails = emails_for(&app, Some(&sam.email)).await;
        assert!(emails.iter().any(|(s, b)| s.contains("a passkey was removed") && b.contains("/not-me?token=")));

        // The last one: a confirmation first; nothing goes until it is given.
        let asked = app.post_form(&client, &format!("/account/passkeys/{}/remove", ids[1]), &[]).await;
        let asked = asked.text().await.unwrap_or_default();
        assert!(asked.contains("Remove your last passkey?") && asked.contains("name=\"confirm\""), "{asked}");
        assert_eq!(app.state.passkeys.list(sam.account_id).await.unwrap_or_default().len(), 1);
        let confirmed =
            app.post_form(&client, &format!("/account/passkeys/{}/remove", ids[1]), &[("confirm", "yes")]).await;
        assert!(confirmed.text().await.unwrap_or_default().contains("You have no passkey yet."));

        // Someone else's passkey is not there to rename or remove.
        let bob = app.add_person("bob", true).await;
        let bobs = app.sign_in(&bob).await;
        assert_eq!(add_passkey(&app, &bobs, &mut authenticator(), "Bob's").await.0, StatusCode::OK);
        let bob_key = app.state.passkeys.list(bob.account_id).await.unwrap_or_default()[0].id;
        let theirs =
            app.post_form(&client, &format!("/account/passkeys/{bob_key}/remove"), &[("confirm", "yes")]).await;
        assert_eq!(theirs.status(), StatusCode::NOT_FOUND);
        let theirs = app.post_form(&client, &format!("/account/passkeys/{bob_key}/rename"), &[("name", "Mine")]).await;
        assert_eq!(theirs.status(), StatusCode::NOT_FOUND);
        assert_eq!(app.state.passkeys.list(bob.account_id).await.unwrap_or_default()[0].name, "Bob's");
    })
    .await;
}

#[tokio::test]
async fn adding_a_passkey_needs_a_sign_in_within_ten_minutes() {
    let start = chrono::Utc::now().timestamp();
    each_backend_with_clock(start, on_localhost, async |app, clock| {
        let sam = app.add_person("sam", true).await;
        let client = app.sign_in(&sam).await;
        clock.advance(11 * 60);
        let (status, answer) = options(&app, &client, "/account/passkeys/options", "/account/passkeys", None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
        assert!(answer["error"].as_str().unwrap_or_default().contains("within the last 10 minutes"));
        let page = client.get(app.url("/account/passkeys")).send().await.unwrap_or_else(|e| panic!("{e}"));
        assert!(page.text().await.unwrap_or_default().contains("Sign out to sign in again"));
    })
    .await;
}

/// Every way an assertion can be wrong is refused, with no session: a wrong origin, a replay (to the same
/// ceremony and to a new one), a ceremony finished after it expired, a credential of another account, and
/// an authenticator that did not verify its user.
#[tokio::test]
async fn wrong_origins_replays_expired_ceremonies_other_accounts_and_missing_verification_are_refused() {
    let start = chrono::Utc::now().timestamp();
    each_backend_with_clock(start, on_localhost, async |app, clock| {
        let (ada, bob) = (app.add_person("ada", true).await, app.add_person("bob", true).await);
        let (mut ada_key, mut bob_key) = (authenticator(), authenticator());
        assert_eq!(add_passkey(&app, &app.sign_in(&ada).await, &mut ada_key, "Ada's").await.0, StatusCode::OK);
        assert_eq!(add_passkey(&app, &app.sign_in(&bob).await, &mut bob_key, "Bob's").await.0, StatusCode::OK);
        let refused = async |response: reqwest::Response, what: &str| {
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{what}");
            assert!(response.headers().get("set-cookie").is_none_or(|c| !c.to_str().unwrap_or("").contains("lifeline_session=") || c.to_str().unwrap_or("").contains("lifeline_session=;")), "{what}: no session");
            let page = response.text().await.unwrap_or_default();
            assert!(page.contains("The passkey could not be checked"), "{what}: {page}");
        };

        // A wrong origin: a look-alike site that relays Lifeline's options to the person's authenticator.
        let client = browser();
        let (ceremony, challenge) = begin_sign_in(&app, &client, Some(&ada.username)).await;
        let phished = Url::parse("http://localhost:1").unwrap_or_else(|e| panic!("{e}"));
        let answer = assert_with(&mut ada_key, phished, challenge);
        refused(finish_sign_in(&app, &client, &ceremony, &answer).await, "wrong origin").await;

        // A replay: the same good answer twice (the ceremony is spent), then to a new ceremony (the challenge differs).
        let (ceremony, challenge) = begin_sign_in(&app, &client, Some(&ada.username)).await;
        let answer = assert_with(&mut ada_key, origin(&app), challenge);
        assert_eq!(finish_sign_in(&app, &browser(), &ceremony, &answer).await.status(), StatusCode::SEE_OTHER);
        refused(finish_sign_in(&app, &client, &ceremony, &answer).await, "the same ceremony again").await;
        let (fresh, _) = begin_sign_in(&app, &client, Some(&ada.username)).await;
        refused(finish_sign_in(&app, &client, &fresh, &answer).await, "a replay to a new ceremony").await;

        // Finished after the ceremony expired.
        let (ceremony, challenge) = begin_sign_in(&app, &client, Some(&ada.username)).await;
        let answer = assert_with(&mut ada_key, origin(&app), challenge);
        clock.advance(lifeline::passkeys::CEREMONY_SECONDS);
        refused(finish_sign_in(&app, &client, &ceremony, &answer).await, "an expired ceremony").await;

        // Bob's passkey answering a sign-in begun for Ada.
        let (ceremony, mut options) = begin_sign_in_json(&app, &client, Some(&ada.username)).await;
        let (_, bobs) = begin_sign_in_json(&app, &client, Some(&bob.username)).await;
        options["publicKey"]["allowCredentials"] = bobs["publicKey"]["allowCredentials"].clone();
        let answer = assert_with(&mut bob_key, origin(&app), challenge_of(options));
        refused(finish_sign_in(&app, &client, &ceremony, &answer).await, "another account's credential").await;

        // An authenticator that did not verify its user (the client asked it not to).
        let (ceremony, mut options) = begin_sign_in_json(&app, &client, Some(&ada.username)).await;
        options["publicKey"]["userVerification"] = serde_json::json!("discouraged");
        let answer = assert_with(&mut ada_key, origin(&app), challenge_of(options));
        refused(finish_sign_in(&app, &client, &ceremony, &answer).await, "no user verification").await;

        // Garbage instead of an answer is a clear refusal too, never a 500.
        let (ceremony, _) = begin_sign_in(&app, &client, Some(&ada.username)).await;
        let garbage = finish_sign_in(&app, &client, &ceremony, "{\"not\": \"webauthn\"}").await;
        assert_eq!(garbage.status(), StatusCode::UNAUTHORIZED);
        assert!(garbage.text().await.unwrap_or_default().contains("answer could not be read"));

        // Each refusal is a failed sign-in on record.
        let failures: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM sign_in_event WHERE method = 'passkey' AND outcome IN ('bad_passkey', 'unknown_passkey')",
        )
        .fetch_one(app.db.pool())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(failures >= 5, "{failures}");
    })
    .await;
}

/// The options are the same whoever is named (no credential is listed), so they tell nobody who exists or has
/// a passkey; a ceremony begun for a login that names nobody, or someone else, is finished by no passkey; and a
/// locked account's passkey signs nobody in.
#[tokio::test]
async fn the_options_do_not_tell_who_has_a_passkey_and_a_locked_account_is_refused() {
    each_backend_with(on_localhost, async |app| {
        let (ada, bob) = (app.add_person("ada", true).await, app.add_person("bob", true).await);
        let mut key = authenticator();
        assert_eq!(add_passkey(&app, &app.sign_in(&ada).await, &mut key, "Ada's").await.0, StatusCode::OK);
        let client = browser();
        let shape = async |login: &str| {
            let (status, mut begun) = options(&app, &client, "/signin/passkey/options", "/signin", Some(login)).await;
            assert_eq!(status, StatusCode::OK);
            begun["options"]["publicKey"]["challenge"] = serde_json::json!("");
            begun["options"].clone()
        };
        let answers = [shape(&ada.username).await, shape(&bob.username).await, shape("nobody-at-all").await];
        assert!(answers.iter().all(|a| *a == answers[0]), "{answers:?}");

        // Ada's passkey answers ceremonies begun for nobody and for Bob: refused, as a wrong passkey would be.
        for login in ["nobody-at-all", bob.username.as_str()] {
            let (ceremony, mut relayed) = begin_sign_in_json(&app, &client, Some(login)).await;
            let (_, adas) = begin_sign_in_json(&app, &client, Some(&ada.username)).await;
            relayed["publicKey"]["allowCredentials"] = adas["publicKey"]["allowCredentials"].clone();
            let answer = assert_with(&mut key, origin(&app), challenge_of(relayed));
            let response = finish_sign_in(&app, &client, &ceremony, &answer).await;
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{login}");
        }

        app.db
            .lock_account(ada.account_id, lifeline::domain::LockReason::Admin, app.state.signin.now(), &lock_audit())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let (_, response) = passkey_sign_in(&app, &mut key, &ada.username).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    })
    .await;
}

fn lock_audit() -> lifeline::audit::AuditEntry {
    lifeline::audit::AuditEntry::new(0, &lifeline::audit::Actor::System, "test.lock", "success")
}

/// A ceremony begun on one instance finishes on another (the state is in the shared database).
#[tokio::test]
async fn a_sign_in_begun_on_one_instance_finishes_on_another() {
    each_backend_with(on_localhost, async |app| {
        let sam = app.add_person("sam", true).await;
        let mut key = authenticator();
        assert_eq!(add_passkey(&app, &app.sign_in(&sam).await, &mut key, "Sam's").await.0, StatusCode::OK);
        let public_url = app.state.settings().public_url.clone();
        let other = crate::instances::Instances::start(
            app.dir(),
            &app.db_url(),
            1,
            &[
                ("LIFELINE_PUBLIC_URL", &public_url),
                ("LIFELINE_MAIL_DIR", &app.dir().join("mail").display().to_string()),
            ],
        )
        .await;
        let client = browser();
        let (ceremony, challenge) = begin_sign_in(&app, &client, Some(&sam.username)).await;
        let answer = assert_with(&mut key, origin(&app), challenge);
        // The second instance's form: its own CSRF cookie and token, as a browser behind a load balancer gets.
        let there = browser();
        let page = there.get(other.url(0, "/signin")).send().await.unwrap_or_else(|e| panic!("{e}"));
        let csrf = csrf_of(&page.text().await.unwrap_or_default());
        let finished = there
            .post(other.url(0, "/signin/passkey"))
            .form(&[("csrf", csrf.as_str()), ("ceremony", ceremony.as_str()), ("credential", answer.as_str())])
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(finished.status(), StatusCode::SEE_OTHER, "{}", finished.text().await.unwrap_or_default());
        assert_eq!(location(&finished), "/");
        // And not again on the first.
        let again = finish_sign_in(&app, &client, &ceremony, &answer).await;
        assert_eq!(again.status(), StatusCode::UNAUTHORIZED);
    })
    .await;
}

/// Only the passkey pages load the one script, and no page allows inline script.
#[tokio::test]
async fn only_the_passkey_pages_load_the_script_and_no_page_allows_inline_script() {
    each_backend_with(on_localhost, async |app| {
        let ada = app.add_admin("ada", 3).await;
        let client = app.sign_in(&ada).await;
        let with_script = ["/signin", "/account/passkeys"];
        let without = [
            "/",
            "/assistance",
            "/help",
            "/recover",
            "/signin/code",
            "/console/people",
            "/console/requests",
            "/account/password",
        ];
        for path in with_script.iter().chain(without.iter()) {
            let who = if *path == "/signin"
                || *path == "/assistance"
                || *path == "/help"
                || *path == "/recover"
                || *path == "/signin/code"
            {
                browser()
            } else {
                client.clone()
            };
            let response = who.get(app.url(path)).send().await.unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            let csp = response
                .headers()
                .get("content-security-policy")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let html = response.text().await.unwrap_or_default();
            assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{path}: {csp}");
            let loads = html.contains("<script src=\"/static/passkey.js\" defer></script>");
            assert_eq!(
                html.matches("<script").count(),
                usize::from(loads),
                "{path}: only the one script tag, never inline"
            );
            if with_script.contains(path) {
                assert!(loads, "{path} loads the passkey script");
                assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
            } else {
                assert!(!loads, "{path} loads no script");
                assert!(!csp.contains("script-src"), "{path}: default-src 'none' forbids every script: {csp}");
            }
        }
        let script = browser().get(app.url("/static/passkey.js")).send().await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            script.headers().get("content-type").and_then(|v| v.to_str().ok()),
            Some("text/javascript; charset=utf-8")
        );
        assert!(script.text().await.unwrap_or_default().contains("navigator.credentials"));
    })
    .await;
}

/// Without the script the passkey button explains what it needs, and password sign-in still works.
#[tokio::test]
async fn without_javascript_the_passkey_button_explains_and_passwords_still_work() {
    each_backend_with(on_localhost, async |app| {
        let sam = app.add_person("sam", true).await;
        let client = browser();
        let page = app.post_form(&client, "/signin/passkey", &[("ceremony", ""), ("credential", "")]).await;
        assert_eq!(page.status(), StatusCode::BAD_REQUEST);
        assert!(page.text().await.unwrap_or_default().contains("needs JavaScript"));
        app.sign_in(&sam).await;
    })
    .await;
}

/// Where `public_url` is an IP address (WebAuthn needs a domain), the sign-in page shows no passkey button
/// and loads no script, and the options say why.
#[tokio::test]
async fn on_an_ip_address_passkeys_are_off_and_say_why() {
    each_backend(async |app| {
        let page = browser().get(app.url("/signin")).send().await.unwrap_or_else(|e| panic!("{e}"));
        let html = page.text().await.unwrap_or_default();
        assert!(!html.contains("<script") && !html.contains("Sign in with a passkey"), "{html}");
        let (status, answer) = options(&app, &browser(), "/signin/passkey/options", "/signin", None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(answer["error"].as_str().unwrap_or_default().contains("domain name"), "{answer}");
    })
    .await;
}

/// The story of issue 14: Sam has an authenticator and a passkey and loses the phone that holds both. Ada
/// resets his MFA (the passkey goes too) and, since his mailbox is on the same phone, gives him an enrolment
/// code by the channel she verified him on. With it Sam adds a new passkey and is signed in; every step is
/// audited (with the verification method) and emailed, and the code itself never is.
#[tokio::test]
async fn reset_mfa_removes_passkeys_and_an_enrolment_code_lets_the_person_add_a_new_one_without_email() {
    use crate::recovery::{METHOD, act, admin, audit_row, expert, person_id};
    each_backend_with(on_localhost, async |app| {
        let ada = admin(&app, "ada", expert(3)).await;
        let sam = app.add_person("sam", true).await;
        let sam_id = person_id(&app, &sam).await;
        let mut lost = authenticator();
        assert_eq!(add_passkey(&app, &app.sign_in(&sam).await, &mut lost, "Phone").await.0, StatusCode::OK);
        let record = app.person_json(&sam.email).await;
        assert_eq!(record["accounts"][0]["mfa"]["passkeys"][0]["name"], "Phone", "the record lists it: {record}");

        let lost_id = app.state.passkeys.list(sam.account_id).await.unwrap_or_default()[0].credential_id.clone();

        let console = app.sign_in(&ada).await;
        let (status, html) = act(&app, &console, "reset-mfa", sam_id, &[]).await;
        assert_eq!(status, StatusCode::OK, "{html}");
        assert!(app.state.passkeys.list(sam.account_id).await.unwrap_or_default().is_empty(), "reset removes passkeys");
        // Whoever has the phone now: the lost passkey answers a sign-in, and signs nobody in.
        let thief = browser();
        let (ceremony, mut relayed) = begin_sign_in_json(&app, &thief, Some(&sam.username)).await;
        relayed["publicKey"]["allowCredentials"] = serde_json::json!([{ "type": "public-key", "id": lost_id }]);
        let answer = assert_with(&mut lost, origin(&app), challenge_of(relayed));
        let response = finish_sign_in(&app, &thief, &ceremony, &answer).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "the lost passkey signs nobody in");

        let (status, html) = act(&app, &console, "issue-enrolment-code", sam_id, &[]).await;
        assert_eq!(status, StatusCode::OK, "{html}");
        assert!(html.contains("enrolment code"), "{html}");
        let code = shown_code(&html);
        assert_eq!(code.len(), 34, "7 groups of 4: {code}");
        let (reason, _, _, actor) = audit_row(&app, "issue-enrolment-code").await.unwrap_or_else(|| panic!("audited"));
        assert_eq!(reason.as_deref(), Some(METHOD));
        assert!(actor.contains("ada"), "{actor}");
        let emails = emails_for(&app, Some(&sam.email)).await;
        let (subject, body) = emails.last().unwrap_or_else(|| panic!("Sam is told"));
        assert!(subject.contains("an enrolment code was issued for you"), "{subject}");
        assert!(
            body.contains("/not-me?token=") && !body.contains(&code),
            "told, with the alarm, never the code: {body}"
        );

        // Sam: "Sign in with a code", then add a passkey, and nothing else.
        let me = browser();
        let used = app.post_form(&me, "/signin/code", &[("login", &sam.username), ("code", &code)]).await;
        assert_eq!(location(&used), "/signin/passkey/enrol");
        let elsewhere = me.get(app.url("/account/passkeys")).send().await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(location(&elsewhere), "/signin/passkey/enrol", "the code's session does nothing else");
        let page = me.get(app.url("/signin/passkey/enrol")).send().await.unwrap_or_else(|e| panic!("{e}"));
        let page = page.text().await.unwrap_or_default();
        assert!(page.contains("<script src=\"/static/passkey.js\""), "{page}");
        let mut new_key = authenticator();
        let added = enrol_passkey(&app, &me, &mut new_key, "New phone").await;
        assert_eq!(location(&added), "/", "{}", added.text().await.unwrap_or_default());
        let home = me.get(app.url("/")).send().await.unwrap_or_else(|e| panic!("{e}")).text().await.unwrap_or_default();
        assert!(home.contains("Hello, Test sam"), "{home}");

        // The code is spent; the new passkey signs in; a password sign-in now asks for the passkey (or a code).
        let again = app.post_form(&browser(), "/signin/code", &[("login", &sam.username), ("code", &code)]).await;
        assert_eq!(again.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(passkey_sign_in(&app, &mut new_key, &sam.username).await.1.status(), StatusCode::SEE_OTHER);
        let password = browser();
        let first = app.post_sign_in(&password, &sam.username, &sam.password).await;
        assert_eq!(location(&first), "/signin/mfa", "the passkey is the second step now, no device code");
        let mfa = password.get(app.url("/signin/mfa")).send().await.unwrap_or_else(|e| panic!("{e}"));
        assert!(mfa.text().await.unwrap_or_default().contains("Use your passkey"));
        let actions = audit_actions(&app, sam.account_id).await;
        for action in ["reset-mfa", "issue-enrolment-code", "enrolment_code.redeem", "passkey.add"] {
            assert!(actions.iter().any(|a| a == action), "{action} in {actions:?}");
        }
    })
    .await;
}

/// An enrolment code lives `recovery.enrolment_code_minutes` (an hour at most) and is refused at that age.
#[tokio::test]
async fn an_enrolment_code_expires_at_its_lifetime() {
    use crate::recovery::{act, admin, expert, person_id};
    let start = chrono::Utc::now().timestamp();
    each_backend_with_clock(start, on_localhost, async |app, clock| {
        let ada = admin(&app, "ada", expert(3)).await;
        let sam = app.add_person("sam", true).await;
        let sam_id = person_id(&app, &sam).await;
        let console = app.sign_in(&ada).await;
        let issue = async || {
            let (status, html) = act(&app, &console, "issue-enrolment-code", sam_id, &[]).await;
            assert_eq!(status, StatusCode::OK, "{html}");
            shown_code(&html)
        };
        let code = issue().await;
        clock.advance(59 * 60);
        let used = app.post_form(&browser(), "/signin/code", &[("login", &sam.username), ("code", &code)]).await;
        assert_eq!(location(&used), "/signin/passkey/enrol", "at 59 minutes it works");
        // A new one (the console's step-up is an hour old now: sign in again, with the code of the clock's
        // time, 118 steps on), then an hour passes.
        let console = app.sign_in_from(&ada, "127.0.0.1", 118).await;
        let (status, html) = act(&app, &console, "issue-enrolment-code", sam_id, &[]).await;
        assert_eq!(status, StatusCode::OK, "{html}");
        let code = shown_code(&html);
        clock.advance(60 * 60);
        let late = app.post_form(&browser(), "/signin/code", &[("login", &sam.username), ("code", &code)]).await;
        assert_eq!(late.status(), StatusCode::UNAUTHORIZED, "at 60 minutes it is gone");
    })
    .await;
}

/// Privilege tiers: an enrolment code for someone of equal or higher rank is refused (403, audited); for an
/// admin of lower rank it waits for a second admin (four-eyes).
#[tokio::test]
async fn an_enrolment_code_is_refused_for_equal_or_higher_rank_and_waits_for_four_eyes_on_admins() {
    use crate::recovery::{act, admin, expert, person_id};
    each_backend_with(on_localhost, async |app| {
        let olga = admin(&app, "olga", expert(2)).await;
        let peer = admin(&app, "pat", expert(2)).await;
        let boss = admin(&app, "ada", expert(3)).await;
        let harry = admin(&app, "harry", lifeline::domain::Grant { dpa_level: 1, ..Default::default() }).await;
        let console = app.sign_in(&olga).await;
        for (who, person) in [("a peer", &peer), ("a higher admin", &boss)] {
            let id = person_id(&app, person).await;
            let response = console
                .post(app.url(&format!("/console/people/{id}/actions/issue-enrolment-code")))
                .form(&[
                    ("csrf", app.csrf(&console).await.as_str()),
                    ("seen", "x"),
                    ("method", crate::recovery::METHOD),
                ])
                .send()
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{who}");
        }
        let (status, html) = act(&app, &console, "issue-enrolment-code", person_id(&app, &harry).await, &[]).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{html}");
        assert!(html.contains("Waiting for approval"), "an admin's code needs a second admin: {html}");
        assert!(!html.contains("id=\"pass\""), "no code before the approval");
    })
    .await;
}

/// `policy.admins_require_passkey`: an admin without a passkey adds one right after the password and code;
/// once they have one, a code no longer signs them in; people without admin permissions are not affected.
#[tokio::test]
async fn when_the_policy_requires_it_admins_sign_in_with_a_passkey() {
    let adjust = |s: &mut lifeline::config::Settings| {
        on_localhost(s);
        s.policy.admins_require_passkey = true;
    };
    each_backend_with(adjust, async |app| {
        let harry = app.add_admin("harry", 1).await;
        let client = browser();
        let first =
            app.post_form(&client, "/signin", &[("login", &harry.username), ("password", &harry.password)]).await;
        assert_eq!(location(&first), "/signin/mfa");
        let secret = harry.totp.as_ref().unwrap_or_else(|| panic!("harry has TOTP"));
        let second = app.post_form(&client, "/signin/mfa", &[("code", &code(secret, 0))]).await;
        assert_eq!(location(&second), "/signin/passkey/enrol", "no passkey yet: add one first");
        let elsewhere = client.get(app.url("/console/people")).send().await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(location(&elsewhere), "/signin/passkey/enrol", "nothing else until then");
        let mut key = authenticator();
        let added = enrol_passkey(&app, &client, &mut key, "Harry's key").await;
        assert_eq!(location(&added), "/");

        // Next time a code is refused (unchecked) and the page offers only the passkey.
        let client = browser();
        app.post_form(&client, "/signin", &[("login", &harry.username), ("password", &harry.password)]).await;
        let refused = app.post_form(&client, "/signin/mfa", &[("code", &code(secret, 1))]).await;
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
        let page = refused.text().await.unwrap_or_default();
        assert!(page.contains("requires administrators to sign in with their passkey"), "{page}");
        assert!(!page.contains("name=\"code\""), "no code form: {page}");
        assert_eq!(passkey_sign_in(&app, &mut key, &harry.username).await.1.status(), StatusCode::SEE_OTHER);

        // Sam holds no admin permission: his code signs him in as before.
        let sam = app.add_person("sam", true).await;
        app.sign_in(&sam).await;
    })
    .await;
}

/// The person who did not ask for an enrolment code says so from the email, and the code stops working.
#[tokio::test]
async fn this_wasnt_me_revokes_an_enrolment_code() {
    use crate::recovery::{act, admin, expert, person_id};
    each_backend_with(on_localhost, async |app| {
        let ada = admin(&app, "ada", expert(3)).await;
        let sam = app.add_person("sam", true).await;
        let console = app.sign_in(&ada).await;
        let (status, html) = act(&app, &console, "issue-enrolment-code", person_id(&app, &sam).await, &[]).await;
        assert_eq!(status, StatusCode::OK, "{html}");
        let code = shown_code(&html);
        report_not_me(&app, &sam.email, "Issue enrolment code").await;
        let used = app.post_form(&browser(), "/signin/code", &[("login", &sam.username), ("code", &code)]).await;
        assert_eq!(used.status(), StatusCode::UNAUTHORIZED, "revoked");
    })
    .await;
}

/// Sam's only second factor is a passkey (he chose it at his first sign-in): a one-time password stands in for
/// his password and nothing else, so the passkey is still asked for after it.
#[tokio::test]
async fn a_one_time_password_does_not_skip_a_passkey_only_accounts_second_step() {
    use crate::recovery::{act, admin, code_in, expert, person_id};
    each_backend_with(on_localhost, async |app| {
        let sam = app.add_person("sam", false).await;
        let client = browser();
        let first = app.post_form(&client, "/signin", &[("login", &sam.username), ("password", &sam.password)]).await;
        assert_eq!(location(&first), "/signin/enroll", "no second factor yet: enrol one");
        let mut key = authenticator();
        assert_eq!(location(&enrol_passkey(&app, &client, &mut key, "Phone").await), "/");
        assert_eq!(app.person_json(&sam.email).await["accounts"][0]["mfa"]["totp_enabled"], false);

        let ada = admin(&app, "ada", expert(3)).await;
        let console = app.sign_in(&ada).await;
        let (status, html) = act(&app, &console, "send-one-time-password", person_id(&app, &sam).await, &[]).await;
        assert_eq!(status, StatusCode::OK, "{html}");
        let emails = emails_for(&app, Some(&sam.email)).await;
        let otp = code_in(&emails.last().unwrap_or_else(|| panic!("emailed")).1);
        let me = browser();
        let used = app.post_form(&me, "/signin/code", &[("login", &sam.username), ("code", &otp)]).await;
        assert_eq!(location(&used), "/signin/mfa", "the passkey is still the second step");
        let home = me.get(app.url("/")).send().await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(location(&home), "/signin/mfa", "no way round it");
    })
    .await;
}

/// "This wasn't me" on the notice of a passkey someone else added removes that passkey with the lock, so
/// unlocking the account later does not let it back in.
#[tokio::test]
async fn this_wasnt_me_on_a_passkey_notice_removes_that_passkey() {
    each_backend_with(on_localhost, async |app| {
        let sam = app.add_person("sam", true).await;
        let mut theirs = authenticator();
        assert_eq!(add_passkey(&app, &app.sign_in(&sam).await, &mut theirs, "Not mine").await.0, StatusCode::OK);
        report_not_me(&app, &sam.email, "adding the passkey").await;
        assert!(app.state.passkeys.list(sam.account_id).await.unwrap_or_default().is_empty(), "the passkey is gone");
        assert_eq!(app.person_json(&sam.email).await["accounts"][0]["lock_reason"], "reported_not_me");
    })
    .await;
}
