//! Self-service password reset with security questions: off by default, no enumeration, its own lockout,
//! and it never bypasses the second factor.

use crate::helpers::*;
use reqwest::StatusCode;

const ANSWERS: [&str; 3] = ["Hillside Primary", "Leeds", "Dune"];

/// Run `test` on every backend with Q&A enabled and Sam enrolled with `ANSWERS`.
async fn with_sam(test: impl AsyncFn(TestApp, Person)) {
    each_backend_with(
        |s| s.policy.qa_enabled = true,
        async |app: TestApp| {
            let sam = app.add_person("sam", true).await;
            let answers: Vec<String> = ANSWERS.iter().map(|a| a.to_string()).collect();
            app.state
                .signin
                .enrol_security_questions(sam.account_id, &answers, true)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            test(app, sam).await;
        },
    )
    .await;
}

async fn reset(app: &TestApp, email: &str, answers: [&str; 3], password: &str) -> reqwest::Response {
    let browser = browser();
    app.post_form(
        &browser,
        "/reset",
        &[
            ("email", email),
            ("answer0", answers[0]),
            ("answer1", answers[1]),
            ("answer2", answers[2]),
            ("new_password", password),
            ("confirm_password", password),
        ],
    )
    .await
}

#[tokio::test]
async fn reset_is_off_by_default() {
    each_backend(async |app: TestApp| {
        let page = browser()
            .get(app.url("/reset"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .text()
            .await
            .unwrap_or_default();
        assert!(page.contains("not enabled"));
        let help = browser()
            .get(app.url("/help"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .text()
            .await
            .unwrap_or_default();
        assert!(!help.contains("href=\"/reset\""));
    })
    .await;
}

#[tokio::test]
async fn correct_answers_set_a_new_password_and_mfa_still_applies() {
    with_sam(async |app: TestApp, sam: Person| {
        let response =
            reset(&app, &sam.email, ["  hillside   PRIMARY ", "leeds", "dune!"], "glacier-mosaic-tangent-58").await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.text().await.unwrap_or_default().contains("Your password has been changed"));
        let browser = browser();
        assert_eq!(
            location(&app.post_sign_in(&browser, &sam.username, "glacier-mosaic-tangent-58").await),
            "/signin/mfa"
        );
    })
    .await;
}

#[tokio::test]
async fn wrong_answers_and_unknown_emails_get_the_same_answer_and_lock_the_reset() {
    with_sam(async |app: TestApp, sam: Person| {
        // The page gives back what was typed (email and answers, never passwords): take that out to compare.
        let strip = |html: String| {
            let token = csrf_of(&html);
            let mut html = html.replace(&token, "");
            for typed in ["\"a\"", "\"b\"", "\"c\"", "\"Hillside Primary\"", "\"Leeds\"", "\"Foundation\"", "\"Dune\""]
            {
                html = html.replace(&format!("value={typed}"), "value=\"\"");
            }
            html
        };
        let unknown = reset(&app, "nobody@example.org", ["a", "b", "c"], "glacier-mosaic-tangent-58").await;
        assert_eq!(unknown.status(), StatusCode::BAD_REQUEST);
        let unknown = strip(unknown.text().await.unwrap_or_default()).replace("nobody@example.org", "");
        for _ in 0..3 {
            let wrong =
                reset(&app, &sam.email, ["Hillside Primary", "Leeds", "Foundation"], "glacier-mosaic-tangent-58").await;
            assert_eq!(wrong.status(), StatusCode::BAD_REQUEST);
            assert_eq!(strip(wrong.text().await.unwrap_or_default()).replace(&sam.email, ""), unknown);
        }
        assert_eq!(app.person_json(&sam.email).await["accounts"][0]["qa_locked"], true);
        // Locked: even the right answers no longer work, and say nothing new.
        let right = reset(&app, &sam.email, ANSWERS, "glacier-mosaic-tangent-58").await;
        assert_eq!(strip(right.text().await.unwrap_or_default()).replace(&sam.email, ""), unknown);
        // The ordinary sign-in is not affected by the Q&A lockout.
        assert_eq!(location(&app.post_sign_in(&browser(), &sam.username, &sam.password).await), "/signin/mfa");
    })
    .await;
}

#[tokio::test]
async fn a_weak_new_password_is_refused_with_the_reason_before_any_answer_is_checked() {
    with_sam(async |app: TestApp, sam: Person| {
        let response = reset(&app, &sam.email, ["x", "y", "z"], "password1").await;
        assert!(response.text().await.unwrap_or_default().contains("too easy to guess"));
        assert_eq!(app.person_json(&sam.email).await["accounts"][0]["qa_locked"], false);
    })
    .await;
}

#[tokio::test]
async fn a_signed_in_person_enrols_answers_with_the_standards_warning_shown() {
    each_backend_with(
        |s| s.policy.qa_enabled = true,
        async |app: TestApp| {
            let pat = app.add_person("pat", true).await;
            let browser = app.sign_in(&pat).await;

            let page = browser
                .get(app.url("/account/security-questions"))
                .send()
                .await
                .unwrap_or_else(|e| panic!("{e}"))
                .text()
                .await
                .unwrap_or_default();
            assert!(page.contains("do not meet NIST SP 800-63B-4"));
            let too_short = app
                .post_form(
                    &browser,
                    "/account/security-questions",
                    &[("answer0", "x"), ("answer1", "Leeds"), ("answer2", "Dune")],
                )
                .await;
            assert_eq!(too_short.status(), StatusCode::BAD_REQUEST);
            let saved = app
                .post_form(
                    &browser,
                    "/account/security-questions",
                    &[("answer0", "Hillside"), ("answer1", "Leeds"), ("answer2", "Dune")],
                )
                .await;
            assert_eq!(location(&saved), "/");
            assert_eq!(app.person_json(&pat.email).await["accounts"][0]["qa_enrolled"], true);

            let ok = reset(&app, &pat.email, ["hillside", "LEEDS", "dune"], "glacier-mosaic-tangent-58").await;
            assert_eq!(ok.status(), StatusCode::OK);
        },
    )
    .await;
}
