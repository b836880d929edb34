//! Bad input gets a clear 4xx page: never a panic, never a 500, never a partial write.

use crate::helpers::*;
use reqwest::StatusCode;

async fn post_raw(
    app: &TestApp,
    browser: &reqwest::Client,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, String) {
    let mut request = browser.post(app.url("/signin")).body(body);
    if let Some(ct) = content_type {
        request = request.header("content-type", ct);
    }
    let response = request.send().await.unwrap_or_else(|e| panic!("{e}"));
    let status = response.status();
    (status, response.text().await.unwrap_or_default())
}

#[tokio::test]
async fn malformed_sign_in_forms_get_clear_client_errors() {
    each_backend(async |app: TestApp| {
        let ada = app.add_person("ada", true).await;
        let browser = browser();
        let csrf = app.csrf(&browser).await;
        let form = "application/x-www-form-urlencoded";

        let cases: Vec<(&str, Option<&str>, Vec<u8>)> = vec![
            ("empty body", Some(form), Vec::new()),
            ("only the token", Some(form), format!("csrf={csrf}").into_bytes()),
            ("missing password", Some(form), format!("csrf={csrf}&login=ada").into_bytes()),
            ("bad percent escapes", Some(form), format!("csrf={csrf}&login=%zz&password=%").into_bytes()),
            (
                "non-UTF-8 bytes",
                Some(form),
                [format!("csrf={csrf}&login=").into_bytes(), vec![0xff, 0xfe, 0x80], b"&password=\xc3\x28".to_vec()]
                    .concat(),
            ),
            ("percent-encoded non-UTF-8", Some(form), format!("csrf={csrf}&login=%FF%FE&password=%C3%28").into_bytes()),
            ("JSON instead of a form", Some("application/json"), format!("{{\"csrf\":\"{csrf}\"}}").into_bytes()),
            ("no content type", None, format!("csrf={csrf}&login=ada&password=x").into_bytes()),
            ("huge login", Some(form), format!("csrf={csrf}&login={}&password=x", "a".repeat(40_000)).into_bytes()),
            (
                "one megabyte",
                Some(form),
                format!("csrf={csrf}&login=ada&password={}", "p".repeat(1024 * 1024)).into_bytes(),
            ),
        ];
        for (name, content_type, body) in cases {
            let (status, html) = post_raw(&app, &browser, content_type, body).await;
            assert!(status.is_client_error(), "{name}: got {status}");
            assert!(html.contains("<html") && html.contains("Lifeline"), "{name}: an HTML page, got {html:.200}");
        }
        let (status, html) = post_raw(
            &app,
            &browser,
            Some(form),
            format!("csrf={csrf}&login=ada&password={}", "p".repeat(1024 * 1024)).into_bytes(),
        )
        .await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(html.contains("larger than"));

        // None of it signed anybody in, and the account still works.
        assert_eq!(location(&app.post_sign_in(&browser, &ada.username, &ada.password).await), "/signin/mfa");
    })
    .await;
}

#[tokio::test]
async fn unknown_pages_and_wrong_methods_are_client_errors() {
    each_backend(async |app: TestApp| {
        let client = browser();
        let missing = client.get(app.url("/no/such/page")).send().await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
        assert!(missing.text().await.unwrap_or_default().contains("There is no page at this address."));
        let wrong_method = client.delete(app.url("/signin")).send().await.unwrap_or_else(|e| panic!("{e}"));
        assert!(wrong_method.status().is_client_error());
        // Pages that need a session send a stranger to sign in instead of failing.
        for path in ["/", "/signin/mfa", "/signin/enroll", "/account/password"] {
            let response = client.get(app.url(path)).send().await.unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(location(&response), "/signin", "{path}");
        }
    })
    .await;
}

#[tokio::test]
async fn a_garbage_session_cookie_is_just_no_session() {
    each_backend(async |app: TestApp| {
        for cookie in ["lifeline_session=x", "lifeline_session=%%%", &format!("lifeline_session={}", "A".repeat(43))] {
            let response =
                browser().get(app.url("/")).header("cookie", cookie).send().await.unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(location(&response), "/signin", "{cookie}");
        }
    })
    .await;
}

#[tokio::test]
async fn look_alike_email_addresses_are_refused_with_a_clear_message() {
    each_backend(async |app: TestApp| {
        for (email, says) in [
            ("ad\u{200B}a@example.org", "invisible or text-direction character"),
            ("ada@exa\u{202E}gro.elpm", "invisible or text-direction character"),
            ("ada@p\u{0430}ypal.com", "mixes alphabets"),
        ] {
            let response = app.post_assistance("81.2.69.142", email, "other").await;
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{email:?}");
            let html = response.text().await.unwrap_or_default();
            assert!(html.contains(says), "{email:?}: {html}");
        }
        let cli = run_lifeline(
            app.dir(),
            &app.db_url(),
            &["person", "add", "--email", "p\u{0430}ypal@example.org", "--name", "Pal"],
            "a-long-enough-passphrase-here\n",
            &[],
        );
        assert_eq!(cli.status.code(), Some(1));
        assert!(stderr(&cli).contains("mixes alphabets"), "{}", stderr(&cli));
    })
    .await;
}

/// POST `body` (form-encoded) to `path` from `browser`: status and page.
async fn post_body(app: &TestApp, browser: &reqwest::Client, path: &str, body: String) -> (StatusCode, String) {
    let response = browser
        .post(app.url(path))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let status = response.status();
    (status, response.text().await.unwrap_or_default())
}

#[tokio::test]
async fn malformed_recovery_forms_get_clear_client_errors_and_change_nothing() {
    each_backend(async |app: TestApp| {
        let ada = app.add_admin("ada", 3).await;
        let sam = app.add_person("sam", true).await;
        let browser = browser();
        let csrf = app.csrf(&browser).await;
        let long = "x".repeat(40_000);
        let cases: Vec<(&str, String)> = vec![
            ("/recover", format!("csrf={csrf}")),
            ("/recover", format!("csrf={csrf}&email=sam@example.org")),
            ("/recover", format!("csrf={csrf}&email=%zz&code=%")),
            ("/recover", format!("csrf={csrf}&email={long}&code={long}")),
            ("/recover", format!("csrf={csrf}&email=%FF%FE&code=%C3%28")),
            ("/signin/code", format!("csrf={csrf}&login=sam")),
            ("/signin/code", format!("csrf={csrf}&login={long}&code={long}")),
            ("/reset-password", format!("csrf={csrf}&token=abc")),
            ("/reset-password", format!("csrf={csrf}&token=abc&new_password=a&confirm_password=b")),
            ("/reset-password", format!("csrf={csrf}&token={long}&new_password=x&confirm_password=x")),
            ("/not-me", format!("csrf={csrf}")),
            ("/not-me", format!("csrf={csrf}&token={long}")),
            ("/signin/device", format!("csrf={csrf}&code=ABCD")),
            ("/recover/password", format!("csrf={csrf}&new_password=x&confirm_password=x")),
            ("/recover/authenticator", format!("csrf={csrf}")),
        ];
        for (path, body) in cases {
            let (status, html) = post_body(&app, &browser, path, body).await;
            let redirect_to_sign_in = status == StatusCode::SEE_OTHER;
            assert!(status.is_client_error() || redirect_to_sign_in, "{path}: got {status}");
            if !redirect_to_sign_in {
                assert!(html.contains("<html"), "{path}: an HTML page, got {html:.200}");
            }
        }

        // The approvals' decisions: bad numbers, unknown decisions, without a session.
        let console = app.sign_in(&ada).await;
        let csrf = app.csrf(&console).await;
        for path in [
            "/console/approvals/abc/approve",
            "/console/approvals/1/frobnicate",
            "/console/approvals/99999999999999999999/reject",
            "/console/approvals/-1/approve",
        ] {
            let (status, _) = post_body(&app, &console, path, format!("csrf={csrf}")).await;
            assert!(status.is_client_error(), "{path}: got {status}");
        }
        let (status, _) = post_body(&app, &browser, "/console/approvals/1/approve", String::new()).await;
        assert!(status.is_client_error() || status == StatusCode::SEE_OTHER, "no session: {status}");

        // Nothing changed: Sam still signs in as before, and no email went out.
        assert_eq!(location(&app.post_sign_in(&browser, &sam.username, &sam.password).await), "/signin/mfa");
        assert!(emails_for(&app, Some(&sam.email)).await.is_empty());
    })
    .await;
}

/// A NUL or another control character in a login (PostgreSQL refuses NUL in text) is a login that names
/// nobody: the usual answer, never a 500, on every form that takes one.
#[tokio::test]
async fn control_characters_in_a_login_name_nobody() {
    each_backend_with(on_localhost, async |app: TestApp| {
        for login in ["ada\u{0}", "\u{0}", "a\u{7}b"] {
            let browser = browser();
            let signin = app.post_form(&browser, "/signin", &[("login", login), ("password", "x")]).await;
            assert_eq!(signin.status(), StatusCode::UNAUTHORIZED, "{login:?}");
            let code = app.post_form(&browser, "/signin/code", &[("login", login), ("code", "AAAA-BBBB")]).await;
            assert_eq!(code.status(), StatusCode::UNAUTHORIZED, "{login:?}");
            let options = app.post_form(&browser, "/signin/passkey/options", &[("login", login)]).await;
            assert_eq!(options.status(), StatusCode::OK, "{login:?}");
            let assistance = app
                .post_form(&browser, "/assistance", &[("email", login), ("type", "other"), ("description", "")])
                .await;
            assert!(assistance.status().is_client_error(), "{login:?}: {}", assistance.status());
        }
        let ada = app.add_admin("ada", 1).await;
        let console = app.sign_in(&ada).await;
        let search = console.get(app.url("/console/people?q=ada%00")).send().await.unwrap_or_else(|e| panic!("{e}"));
        assert!(search.status().is_success() || search.status().is_client_error(), "{}", search.status());
    })
    .await;
}
