//! The authenticator record and the binding rules (NIST SP 800-63B-4 §4.1, §4.1.2.1): every authenticator ever
//! bound to an account is on its record with when it was bound, used and removed, and by whom; binding one needs
//! a recent sign-in at the account's level and is told to the person by email.

use crate::addresses::sign_in_at;
use crate::admin_api::{call, token_for};
use crate::helpers::*;
use crate::recovery::{METHOD, admin, expert, person_id, post_with_csrf};
use reqwest::StatusCode;

async fn record(app: &TestApp, token: &str, person: i64) -> Vec<(String, String, String, String)> {
    let (status, body) =
        call(app, Some(token), reqwest::Method::GET, &format!("/api/v1/people/{person}/authenticators"), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["events"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|e| {
            let text = |k: &str| e[k].as_str().unwrap_or_default().to_owned();
            (text("kind"), text("change"), text("by"), text("detail"))
        })
        .collect()
}

fn line(kind: &str, change: &str, by: &str) -> (String, String, String, String) {
    (kind.into(), change.into(), by.into(), String::new())
}

#[tokio::test]
async fn every_authenticator_bound_used_and_removed_is_on_the_record_with_who_did_it() {
    each_backend_on_a_fixed_clock(async |app: TestApp, clock| {
        let helen = admin(&app, "helen", expert(2)).await;
        let token = token_for(&app, &helen, "helpdesk", 60, true).await;
        let ada = app.add_person("ada", true).await;
        let ada_id = person_id(&app, &ada).await;
        const SYSTEM: &str = "the system (command line or background work)";

        // Ada signs in (password, then her app), and makes new backup codes.
        let me = sign_in_at(&app, &clock, &ada, 0).await;
        clock.advance(1);
        let made =
            post_with_csrf(&me, &app, "/account/backup-codes", "/account/backup-codes", &[("confirm", "yes")]).await;
        assert_eq!(made.status(), StatusCode::OK);
        clock.advance(1);

        // Helen resets Ada's MFA over the API.
        let body = serde_json::json!({ "reason": METHOD });
        let path = format!("/api/v1/people/{ada_id}/actions/reset-mfa");
        let (status, result) = call(&app, Some(&token), reqwest::Method::POST, &path, Some(body)).await;
        assert_eq!(status, StatusCode::OK, "{result}");

        let by_helen = "helen (API token \"helpdesk\")";
        let lines = record(&app, &token, ada_id).await;
        assert_eq!(
            lines,
            vec![
                line("backup_codes", "removed", by_helen),
                line("totp", "removed", by_helen),
                line("backup_codes", "bound", "ada"),
                line("totp", "used", "the person"),
                line("password", "used", "the person"),
                line("backup_codes", "bound", SYSTEM),
                line("totp", "bound", SYSTEM),
                line("password", "bound", SYSTEM),
            ],
            "newest first"
        );

        // The console shows the same record on the person's page.
        let console = sign_in_at(&app, &clock, &helen, 1).await;
        let page =
            console.get(app.url(&format!("/console/people/{ada_id}"))).send().await.unwrap_or_else(|e| panic!("{e}"));
        let html = page.text().await.unwrap_or_default();
        assert!(html.contains("Authenticator record") && html.contains("Used to sign in"), "{html}");
        assert!(html.contains("helen (API token"), "{html}");
    })
    .await;
}

#[tokio::test]
async fn binding_an_authenticator_needs_a_recent_sign_in_and_is_told_to_the_person() {
    each_backend_on_a_fixed_clock(async |app: TestApp, clock| {
        let ada = app.add_person("ada", true).await;
        clock.advance(1);
        let told = async |subject: &str| {
            emails_for(&app, Some(&ada.email))
                .await
                .into_iter()
                .filter(|(s, _)| s.contains(subject))
                .collect::<Vec<_>>()
        };
        let me = sign_in_at(&app, &clock, &ada, 0).await;
        let made =
            post_with_csrf(&me, &app, "/account/backup-codes", "/account/backup-codes", &[("confirm", "yes")]).await;
        assert_eq!(made.status(), StatusCode::OK);
        let sent = told("new backup codes were made").await;
        assert_eq!(sent.len(), 1, "{sent:?}");
        assert!(sent[0].1.contains("/not-me?token="), "{}", sent[0].1);

        // Eleven minutes on, the same session may not bind new codes: nothing changes, nothing is sent.
        clock.advance(11 * 60);
        let codes_before: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM backup_code")
            .fetch_one(app.db.pool())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let late =
            post_with_csrf(&me, &app, "/account/backup-codes", "/account/backup-codes", &[("confirm", "yes")]).await;
        assert_eq!(late.status(), StatusCode::FORBIDDEN);
        assert!(late.text().await.unwrap_or_default().contains("sign in again"));
        let codes_after: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM backup_code")
            .fetch_one(app.db.pool())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(codes_before, codes_after);
        assert_eq!(told("new backup codes were made").await.len(), 1);

        // "This wasn't me" from that email: the codes bound since go (the app bound before stays), the account is
        // locked, and its next sign-in will prove the mailbox before anything is bound again.
        crate::passkeys::report_not_me(&app, &ada.email, "making new backup codes").await;
        let view = app.person_json(&ada.email).await;
        let account = &view["accounts"][0];
        assert_eq!(account["mfa"]["backup_codes_unused"], 0, "{view}");
        assert_eq!(account["mfa"]["totp_enabled"], true, "{view}");
        assert_eq!(account["locked"], true, "{view}");

        // An app bound at the enrolment step (the password is the account's only factor) is told too.
        let bo = app.add_person("bo", false).await;
        let client = browser();
        let first = app.post_form(&client, "/signin", &[("login", "bo"), ("password", &bo.password)]).await;
        assert_eq!(location(&first), "/signin/enroll");
        let html = client
            .get(app.url("/signin/enroll"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .text()
            .await
            .unwrap_or_default();
        let secret = html.split("secret=").nth(1).unwrap_or_default().split('&').next().unwrap_or_default().to_owned();
        let secret = lifeline::totp::TotpSecret::from_base32(&secret).unwrap_or_else(|| panic!("no secret in {html}"));
        let code = lifeline::totp::code_at(&secret, lifeline::clock::Clock::now(&*clock));
        let done = post_with_csrf(&client, &app, "/signin/enroll", "/signin/enroll", &[("code", &code)]).await;
        assert_eq!(done.status(), StatusCode::OK);
        let to_bo = emails_for(&app, Some(&bo.email)).await;
        assert!(
            to_bo.iter().any(|(s, b)| s.contains("an authenticator app was set up") && b.contains("/not-me?token=")),
            "{to_bo:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn this_was_not_me_on_the_latest_notice_undoes_every_binding_since_the_oldest_one_still_reportable() {
    each_backend_on_a_fixed_clock(async |app: TestApp, clock| {
        let ada = app.add_person("ada", true).await;
        clock.advance(1);
        // An intruder in Ada's session makes backup codes of their own, then changes her password: two notices.
        let intruder = sign_in_at(&app, &clock, &ada, 0).await;
        let made =
            post_with_csrf(&intruder, &app, "/account/backup-codes", "/account/backup-codes", &[("confirm", "yes")])
                .await;
        assert_eq!(made.status(), StatusCode::OK);
        clock.advance(60);
        let new = "intruder-chose-this-one-77";
        let fields = [("current_password", ada.password.as_str()), ("new_password", new), ("confirm_password", new)];
        let changed = app.post_form(&intruder, "/account/password", &fields).await;
        assert_eq!(location(&changed), "/");

        // Ada reports the newest notice (the password change): the backup codes bound before it go too, and her
        // next sign-in must prove her mailbox before anything is bound.
        crate::passkeys::report_not_me(&app, &ada.email, "changing the password").await;
        let view = app.person_json(&ada.email).await;
        let account = &view["accounts"][0];
        assert_eq!(account["mfa"]["backup_codes_unused"], 0, "{view}");
        assert_eq!(account["mfa"]["totp_enabled"], true, "her own app, bound before any notice, stays: {view}");
        assert_eq!(account["required_actions"]["device_authorization"], true, "{view}");
        assert_eq!(account["locked"], true, "{view}");
    })
    .await;
}
