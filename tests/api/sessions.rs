//! Sessions that belong to their account's current state: an enrolment secret is the enrolling session's
//! own, a disabled person's sessions die on every page, and a password change needs the current password
//! and signs the account out everywhere else.

use crate::helpers::*;
use reqwest::StatusCode;

async fn disable(app: &TestApp, email: &str) {
    // Disabling comes with the recovery actions; until then, straight in the directory.
    sqlx::query("UPDATE person SET status = 'disabled' WHERE email = $1")
        .bind(email)
        .execute(app.db.pool())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

fn secret_on(page: &str) -> lifeline::totp::TotpSecret {
    let text = page.split("<code class=\"secret\">").nth(1).and_then(|s| s.split('<').next()).unwrap_or_default();
    lifeline::totp::TotpSecret::from_base32(text).unwrap_or_else(|| panic!("no secret on the page:\n{page}"))
}

async fn page(client: &reqwest::Client, url: String) -> String {
    client.get(url).send().await.unwrap_or_else(|e| panic!("{e}")).text().await.unwrap_or_default()
}

#[tokio::test]
async fn an_enrolment_secret_belongs_to_the_session_that_was_shown_it() {
    each_backend(async |app: TestApp| {
        let sam = app.add_person("sam", false).await;
        // Someone who knew Sam's initial password opens the enrolment and walks away.
        let intruder = browser();
        assert_eq!(location(&app.post_sign_in(&intruder, &sam.username, &sam.password).await), "/signin/enroll");
        let intruders_secret = secret_on(&page(&intruder, app.url("/signin/enroll")).await);
        // Sam enrols later, in a session of their own: a different secret.
        let own = browser();
        assert_eq!(location(&app.post_sign_in(&own, &sam.username, &sam.password).await), "/signin/enroll");
        let sams_secret = secret_on(&page(&own, app.url("/signin/enroll")).await);
        assert_ne!(intruders_secret.to_base32(), sams_secret.to_base32());
        // Showing the page again keeps each session's own secret.
        assert_eq!(secret_on(&page(&own, app.url("/signin/enroll")).await).to_base32(), sams_secret.to_base32());
        // Sam's session cannot confirm the intruder's secret.
        let wrong = app.post_form(&own, "/signin/enroll", &[("code", &code(&intruders_secret, 0))]).await;
        assert_eq!(wrong.status(), StatusCode::BAD_REQUEST);
        let confirmed = app.post_form(&own, "/signin/enroll", &[("code", &code(&sams_secret, 0))]).await;
        assert_eq!(confirmed.status(), StatusCode::OK);
        // The intruder's secret is worth nothing now: not at the enrolment, not at the second factor.
        let late = app.post_form(&intruder, "/signin/enroll", &[("code", &code(&intruders_secret, 1))]).await;
        assert_ne!(late.status(), StatusCode::OK);
        let again = browser();
        assert_eq!(location(&app.post_sign_in(&again, &sam.username, &sam.password).await), "/signin/mfa");
        let refused = app.post_code(&again, &code(&intruders_secret, 1)).await;
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    })
    .await;
}

#[tokio::test]
async fn a_disabled_person_is_refused_on_every_page_and_between_password_and_second_factor() {
    each_backend(async |app: TestApp| {
        let pat = app.add_admin("pat", 1).await;
        let signed_in = app.sign_in_from(&pat, "81.2.69.142", 0).await;
        let csrf = app.csrf(&signed_in).await;
        let halfway = browser();
        assert_eq!(location(&app.post_sign_in(&halfway, &pat.username, &pat.password).await), "/signin/mfa");
        disable(&app, &pat.email).await;

        for path in ["/", "/account/password", "/account/security-questions", "/console/requests"] {
            let response = signed_in.get(app.url(path)).send().await.unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                (response.status(), location(&response)),
                (StatusCode::SEE_OTHER, "/signin".to_owned()),
                "GET {path}"
            );
        }
        for (path, fields) in [
            ("/account/backup-codes", vec![("confirm", "yes")]),
            (
                "/account/password",
                vec![("current_password", PASSWORD), ("new_password", "x"), ("confirm_password", "x")],
            ),
        ] {
            let mut form = fields.clone();
            form.push(("csrf", &csrf));
            let response = signed_in.post(app.url(path)).form(&form).send().await.unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(location(&response), "/signin", "POST {path}");
        }
        assert_eq!(app.person_json(&pat.email).await["accounts"][0]["mfa"]["backup_codes_unused"], 10);
        // Disabled between the password and the second factor: no session comes of the right code.
        let secret = pat.totp.as_ref().unwrap_or_else(|| panic!("totp"));
        let response = app.post_code(&halfway, &code(secret, 1)).await;
        assert_ne!(location(&response), "/");
        assert_eq!(location(&halfway.get(app.url("/")).send().await.unwrap_or_else(|e| panic!("{e}"))), "/signin");
    })
    .await;
}

#[tokio::test]
async fn a_password_change_needs_the_current_password_and_ends_every_other_session() {
    each_backend(async |app: TestApp| {
        let ada = app.add_person("ada", true).await;
        let mut browsers = Vec::new();
        for code in ada.backup_codes.iter().take(3) {
            let client = browser();
            assert_eq!(location(&app.post_sign_in(&client, &ada.username, &ada.password).await), "/signin/mfa");
            assert_eq!(location(&app.post_code(&client, code).await), "/");
            browsers.push(client);
        }
        let new = "fresh-orchard-lantern-93";
        let change = async |current: Option<&str>| {
            let mut fields = vec![("new_password", new), ("confirm_password", new)];
            if let Some(current) = current {
                fields.push(("current_password", current));
            }
            app.post_form(&browsers[0], "/account/password", &fields).await
        };
        for current in [None, Some("not-my-password-at-all")] {
            let refused = change(current).await;
            assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "{current:?}");
            assert!(refused.text().await.unwrap_or_default().contains("Your current password is not right."));
        }
        let old_still_works = browser();
        assert_eq!(location(&app.post_sign_in(&old_still_works, &ada.username, &ada.password).await), "/signin/mfa");

        let done = change(Some(&ada.password)).await;
        assert_eq!(location(&done), "/");
        let home = browsers[0].get(app.url("/")).send().await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(home.status(), StatusCode::OK, "the session that changed it goes on");
        for other in &browsers[1..] {
            let home = other.get(app.url("/")).send().await.unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(location(&home), "/signin", "every other session ended");
        }
        assert_eq!(location(&app.post_sign_in(&browser(), &ada.username, new).await), "/signin/mfa");
        let audit = stdout(&run_lifeline(app.dir(), &app.db_url(), &["audit", "export"], "", &[]));
        assert_eq!(audit.matches("\"password.change\"").count(), 1, "{audit}");
        let told: Vec<_> = emails_for(&app, Some(&ada.email))
            .await
            .into_iter()
            .filter(|(subject, body)| {
                subject.contains("the password of your account was changed") && body.contains("/not-me?token=")
            })
            .collect();
        assert_eq!(told.len(), 1, "the change is emailed, with \"this wasn't me\": {told:?}");
    })
    .await;
}

#[tokio::test]
async fn a_planted_csrf_cookie_and_token_pair_is_refused_in_a_signed_in_browser() {
    each_backend(async |app: TestApp| {
        let ada = app.add_person("ada", true).await;
        let url: reqwest::Url = app.url("/").parse().unwrap_or_else(|e| panic!("{e}"));
        let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
        let victim = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(location(&app.post_sign_in(&victim, &ada.username, &ada.password).await), "/signin/mfa");
        let secret = ada.totp.as_ref().unwrap_or_else(|| panic!("totp"));
        assert_eq!(location(&app.post_code(&victim, &code(secret, 0)).await), "/");

        // The attacker's own nonce and the token that goes with it, from a browser of their own.
        let attacker_jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
        let attacker =
            reqwest::Client::builder().cookie_provider(attacker_jar.clone()).build().unwrap_or_else(|e| panic!("{e}"));
        let token = csrf_of(&page(&attacker, app.url("/signin")).await);
        let cookie = |jar: &reqwest::cookie::Jar, name: &str| -> String {
            use reqwest::cookie::CookieStore;
            let header = jar.cookies(&url).map(|h| h.to_str().unwrap_or_default().to_owned()).unwrap_or_default();
            header
                .split("; ")
                .find_map(|c| c.strip_prefix(&format!("{name}=")).map(str::to_owned))
                .unwrap_or_else(|| panic!("no {name} cookie in {header}"))
        };
        let nonce = cookie(&attacker_jar, "lifeline_csrf");
        let session = cookie(&jar, "lifeline_session");

        // Planted into the victim's browser (as a sibling subdomain could), the pair does not pass.
        let planted = reqwest::Client::new()
            .post(app.url("/account/backup-codes"))
            .header("cookie", format!("lifeline_session={session}; lifeline_csrf={nonce}"))
            .form(&[("csrf", token.as_str()), ("confirm", "yes")])
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(planted.status(), StatusCode::FORBIDDEN);
        assert_eq!(app.person_json(&ada.email).await["accounts"][0]["mfa"]["backup_codes_unused"], 10);
        // The victim's own form still works.
        let own = app.post_form(&victim, "/account/backup-codes", &[("confirm", "yes")]).await;
        assert_eq!(own.status(), StatusCode::OK);
        assert_eq!(own.text().await.unwrap_or_default().matches("<li><code>").count(), 10);
    })
    .await;
}

#[tokio::test]
async fn https_deployments_send_strict_transport_security_and_http_ones_do_not() {
    use tower::ServiceExt;
    for (public_url, expected) in
        [("https://id.example.org", Some("max-age=63072000")), ("http://127.0.0.1:8080", None)]
    {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut settings = test_settings(dir.path());
        settings.public_url = public_url.into();
        let state = lifeline::app::build(settings).await.unwrap_or_else(|e| panic!("{e:#}"));
        let request =
            axum::http::Request::get("/signin").body(axum::body::Body::empty()).unwrap_or_else(|e| panic!("{e}"));
        let response = lifeline::http::router(state.state).oneshot(request).await.unwrap_or_else(|e| panic!("{e}"));
        let hsts = response.headers().get("strict-transport-security").and_then(|v| v.to_str().ok());
        assert_eq!(hsts, expected, "{public_url}");
    }
}

#[tokio::test]
async fn a_form_posted_from_another_site_is_refused_even_with_a_valid_token() {
    each_backend(async |app: TestApp| {
        let ada = app.add_person("ada", true).await;
        let client = app.sign_in_from(&ada, "81.2.69.142", 0).await;
        let token = csrf_of(&page(&client, app.url("/account/backup-codes")).await);
        let post = async |header: &str, value: &str| {
            client
                .post(app.url("/account/backup-codes"))
                .header(header, value)
                .form(&[("csrf", token.as_str()), ("confirm", "yes")])
                .send()
                .await
                .unwrap_or_else(|e| panic!("{e}"))
                .status()
        };
        assert_eq!(post("origin", "http://evil.example").await, StatusCode::FORBIDDEN);
        assert_eq!(post("origin", "null").await, StatusCode::FORBIDDEN);
        assert_eq!(post("sec-fetch-site", "cross-site").await, StatusCode::FORBIDDEN);
        assert_eq!(app.person_json(&ada.email).await["accounts"][0]["mfa"]["backup_codes_unused"], 10);
        // From Lifeline's own pages the browser says so, and the form goes through.
        assert_eq!(post("origin", &app.address).await, StatusCode::OK);
        assert_eq!(post("sec-fetch-site", "same-origin").await, StatusCode::OK);
    })
    .await;
}

#[tokio::test]
async fn every_signed_in_page_links_to_sign_out_and_the_link_signs_out() {
    each_backend(async |app: TestApp| {
        let grant = lifeline::domain::Grant { dpa_level: 3, expert_mode: true, auditor: true, directory_admin: true };
        let ada = crate::recovery::admin(&app, "ada", grant).await;
        let client = app.sign_in(&ada).await;
        let pages = [
            "/",
            "/account/passkeys",
            "/account/addresses",
            "/account/password",
            "/account/backup-codes",
            "/console/requests",
            "/console/people",
            "/console/assist",
            "/console/approvals",
            "/console/audit",
            "/console/tokens",
        ];
        for page in pages {
            let response = client.get(app.url(page)).send().await.unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(response.status(), StatusCode::OK, "{page}");
            let html = response.text().await.unwrap_or_default();
            assert!(html.contains("href=\"/signout\""), "{page} has no visible way to sign out:\n{html}");
        }
        let signed_out = crate::recovery::post_with_csrf(&client, &app, "/signout", "/signout", &[]).await;
        assert_eq!(location(&signed_out), "/signin");
        let home = client.get(app.url("/")).send().await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(location(&home), "/signin", "signed out");
        let again = client.get(app.url("/signout")).send().await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(location(&again), "/signin", "nothing to sign out of");
    })
    .await;
}
