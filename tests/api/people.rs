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
