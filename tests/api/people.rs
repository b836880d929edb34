//! The console's People page: an admin finds people by part of a name, username or email, and the locked
//! ones alone; a person without the permission is refused.

use crate::helpers::*;
use reqwest::StatusCode;

async fn page(app: &TestApp, client: &reqwest::Client, query: &str) -> (StatusCode, String) {
    let response =
        client.get(app.url(&format!("/console/people{query}"))).send().await.unwrap_or_else(|e| panic!("{e}"));
    (response.status(), response.text().await.unwrap_or_default())
}

#[tokio::test]
async fn an_admin_finds_people_and_only_the_locked_ones() {
    each_backend(async |app: TestApp| {
        let harry = app.add_admin("harry", 1).await;
        let lou = app.add_person("lou", false).await;
        app.add_person("louise", false).await;
        for _ in 0..5 {
            app.post_sign_in(&browser(), &lou.username, "not-lous-password-at-all").await;
        }
        let admin = app.sign_in(&harry).await;

        let (status, html) = page(&app, &admin, "?q=LOU").await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains("Test lou") && html.contains("Test louise"), "{html}");
        assert!(!html.contains("Test harry"), "{html}");

        let (status, html) = page(&app, &admin, "?q=lou&locked=1").await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains("lou@example.org") && html.contains("Locked"), "{html}");
        assert!(!html.contains("louise@example.org"), "only the locked: {html}");

        // Pattern characters and markup are only text.
        let (status, html) = page(&app, &admin, "?q=%25%3Cscript%3E").await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains("Nobody matches.") && !html.contains("<script>"), "{html}");
        // Too long: a clear 400 page, nothing searched.
        let (status, html) = page(&app, &admin, &format!("?q={}", "a".repeat(201))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(html.contains("at most 200 characters"), "{html}");
    })
    .await;
}

#[tokio::test]
async fn people_without_the_permission_are_refused() {
    each_backend(async |app: TestApp| {
        let sam = app.add_person("sam", true).await;
        let staff = app.sign_in(&sam).await;
        let (status, html) = page(&app, &staff, "?q=a").await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(!html.contains("sam@example.org"), "{html}");
        // Signed out: to the sign-in page.
        let response = browser().get(app.url("/console/people")).send().await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
    })
    .await;
}

#[tokio::test]
async fn a_persons_record_shows_the_lock_the_sign_ins_and_the_activity_log() {
    each_backend(async |app: TestApp| {
        let harry = app.add_admin("harry", 1).await;
        let lou = app.add_person("lou", true).await;
        for _ in 0..5 {
            app.post_sign_in(&browser(), &lou.username, "not-lous-password-at-all").await;
        }
        let lou_id = app.state.directory.find(&lou.email).await.unwrap_or_else(|e| panic!("{e}")).id;
        let admin = app.sign_in(&harry).await;

        let (_, list) = page(&app, &admin, "?locked=1").await;
        assert!(list.contains(&format!("href=\"/console/people/{}\"", lou_id.0)), "{list}");
        let (status, html) = page(&app, &admin, &format!("/{}", lou_id.0)).await;
        assert_eq!(status, StatusCode::OK);
        for expected in ["Test lou", "lou@example.org", "failures", "Enrolled", "account.lock", "127.0.0.1"] {
            assert!(html.contains(expected), "{expected} in {html}");
        }
        assert!(html.contains("<dt>Failed attempts</dt><dd>5</dd>"), "{html}");
        assert!(html.contains("<dt>Backup codes left</dt><dd>10</dd>"), "{html}");

        // Unknown and malformed ids are simply not found.
        assert_eq!(page(&app, &admin, "/999999").await.0, StatusCode::NOT_FOUND);
        assert_eq!(page(&app, &admin, "/lou").await.0, StatusCode::NOT_FOUND);
    })
    .await;
}
