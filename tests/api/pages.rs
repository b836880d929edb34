//! What people read: words instead of stored values, help that leads somewhere, forms that keep what was
//! typed, and a demo that can start again.

use crate::helpers::*;
use reqwest::StatusCode;

#[tokio::test]
async fn the_account_page_reads_words_not_stored_values() {
    each_backend(async |app: TestApp| {
        let ada = app.add_person("ada", true).await;
        let browser = browser();
        app.post_sign_in(&browser, &ada.username, &ada.password).await;
        let secret = ada.totp.as_ref().unwrap_or_else(|| panic!("totp"));
        assert_eq!(app.post_code(&browser, "000000").await.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(location(&app.post_code(&browser, &code(secret, 0)).await), "/");
        let home =
            browser.get(app.url("/")).send().await.unwrap_or_else(|e| panic!("{e}")).text().await.unwrap_or_default();
        for shown in ["Signed in", "Wrong code", "Password right, second step next", "Authenticator app"] {
            assert!(home.contains(shown), "{shown:?} on the account page");
        }
        for hidden in ["bad_second_factor", "password_accepted", ">totp<", ">success<"] {
            assert!(!home.contains(hidden), "{hidden:?} on the account page");
        }
    })
    .await;
}

#[tokio::test]
async fn help_leads_to_the_assistance_form_and_the_reset_form_keeps_what_was_typed() {
    each_backend_with(
        |s| s.policy.qa_enabled = true,
        async |app: TestApp| {
            let help = browser().get(app.url("/help")).send().await.unwrap_or_else(|e| panic!("{e}"));
            assert!(help.text().await.unwrap_or_default().contains(r#"href="/assistance""#));
            let fields = [
                ("email", "nobody@example.org"),
                ("answer0", "Hillside Primary"),
                ("answer1", "Leeds"),
                ("answer2", "Dune"),
                ("new_password", "another-long-passphrase-77"),
                ("confirm_password", "another-long-passphrase-77"),
            ];
            let page = app.post_form(&browser(), "/reset", &fields).await;
            assert_eq!(page.status(), StatusCode::BAD_REQUEST);
            let html = page.text().await.unwrap_or_default();
            for kept in ["nobody@example.org", "Hillside Primary", "Leeds", "Dune"] {
                assert!(html.contains(&format!(r#"value="{kept}""#)), "{kept:?} kept: {html}");
            }
            assert!(!html.contains("another-long-passphrase-77"), "passwords are never put back into a page");
            assert!(
                html.contains("Ask for help") && html.contains(r#"href="/assistance""#),
                "the link it names is there"
            );
        },
    )
    .await;
}

#[tokio::test]
async fn the_demo_starts_again_from_scratch_with_reset() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    // A demo database in a state nobody can use any more (here: not even a database).
    std::fs::write(dir.path().join("lifeline-demo.db"), b"a demo tour gone wrong").unwrap_or_else(|e| panic!("{e}"));
    // The port is taken, so `serve` stops after seeding instead of serving for ever.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let listen = taken.local_addr().unwrap_or_else(|e| panic!("{e}")).to_string();
    let serve = |args: &[&str], env: &[(&str, &str)]| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_lifeline"));
        command.args(args).current_dir(dir.path()).env_remove("LIFELINE_DATABASE_URL").env_remove("LIFELINE_CONFIG");
        command.env("LIFELINE_LISTEN", &listen).env("LIFELINE_KEY_FILE", dir.path().join("lifeline.key"));
        command.envs(env.iter().copied());
        command.output().unwrap_or_else(|e| panic!("{e}"))
    };
    let without = serve(&["serve", "--reset"], &[]);
    assert_eq!(without.status.code(), Some(2), "--reset belongs to --demo");
    let elsewhere = serve(&["serve", "--demo", "--reset"], &[("LIFELINE_DATABASE_URL", "sqlite://other.db")]);
    assert_eq!(elsewhere.status.code(), Some(1));
    assert!(stderr(&elsewhere).contains("leaves alone"), "{}", stderr(&elsewhere));

    let reset = serve(&["serve", "--demo", "--reset"], &[]);
    assert!(stdout(&reset).contains("starts again from scratch"), "{}", stdout(&reset));
    assert!(stderr(&reset).contains("cannot listen"), "it got as far as listening: {}", stderr(&reset));
    let db = std::fs::read(dir.path().join("lifeline-demo.db")).unwrap_or_else(|e| panic!("{e}"));
    assert!(db.starts_with(b"SQLite format 3"), "a fresh demo database");
    let shown = run_lifeline(
        dir.path(),
        "sqlite://lifeline-demo.db",
        &["person", "show", "harry.helpdesk@demo.example", "--json"],
        "",
        &[],
    );
    assert!(shown.status.success(), "{}", stderr(&shown));
}
