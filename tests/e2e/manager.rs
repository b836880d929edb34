//! Mona resets both the password and the MFA of Sam, who reports to her; she opens the secure link, clicks
//! through and reveals the temporary password; Sam signs in with it, must change it, and enrols again.

use crate::harness::*;

#[tokio::test]
async fn a_manager_resets_a_report_who_signs_in_with_the_temporary_password() {
    let s = Scenario::start("manager-reset").await;

    // Sam has an authenticator first, so the reset has one to remove.
    let sam = s.browser("sam").await;
    sam.sign_in(SAM.0, SAM.1, None).await;
    let _old_secret = sam.enrol_totp().await;
    sam.see("Hello, Sam").await;
    sam.sign_out().await;

    let mona = s.browser("mona").await;
    mona.sign_in(MONA.0, MONA.1, Some(MONA.2)).await;
    mona.see("Hello, Mona").await;
    mona.page("home").await;
    mona.follow("Your team").await;
    mona.page("team").await;
    mona.fill("#q", "sa").await;
    mona.press("Search").await;
    mona.see("sam.staff@demo.example").await;
    mona.page("team-search").await;
    mona.follow("Reset password").await;
    mona.see("Reset access for Sam").await;
    mona.page("reset-form").await;
    mona.press("Submit reset").await;
    mona.page("reset-done").await;

    // The secure link: a scanner's GET uses nothing up; the click shows the password blurred until clicked.
    let email = s.demo.email_containing("mona.manager@demo.example", "/secure-link?token=").await;
    mona.email_page(&email, "email-secure-link").await;
    let link = link_in(&email.text, &s.demo.url("/secure-link?token="));
    mona.goto_url(&link).await;
    mona.see("Click here to proceed").await;
    mona.page("secure-link").await;
    mona.press("Click here to proceed").await;
    mona.see("Temporary password for Sam").await;
    mona.page("secure-link-blurred").await;
    let blurred = mona.js("return getComputedStyle(document.querySelector('code.secret')).filter", vec![]).await;
    assert!(blurred.as_str().unwrap_or_default().contains("blur"), "the password is not blurred: {blurred}");
    mona.click("details.reveal summary").await;
    let shown = mona.js("return getComputedStyle(document.querySelector('code.secret')).filter", vec![]).await;
    assert_eq!(shown.as_str(), Some("none"), "the click reveals the password");
    mona.recheck("secure-link-revealed").await;
    let password = mona.find("code.secret").await.text().await.unwrap_or_default();
    assert!(password.len() >= 20, "no temporary password: {password:?}");

    // Sam: the temporary password, a new authenticator, a password of his own.
    sam.sign_in(SAM.0, &password, None).await;
    let mut secret = None;
    let mut changed = false;
    for _ in 0..2 {
        let text = sam.text().await;
        if text.contains("Set up two-step verification") {
            secret = Some(sam.enrol_totp().await);
        } else if text.contains("Choose a new password") {
            sam.page("must-change-password").await;
            sam.fill("#new_password", "harbour-violet-compass-lamp-64").await;
            sam.fill("#confirm_password", "harbour-violet-compass-lamp-64").await;
            sam.press("Save password").await;
            changed = true;
        }
    }
    let secret = secret.unwrap_or_else(|| panic!("Sam was not asked to enrol again"));
    assert!(changed, "Sam was not made to change the temporary password");
    sam.see("Hello, Sam").await;
    sam.page("home").await;
    sam.sign_out().await;
    sam.sign_in(SAM.0, "harbour-violet-compass-lamp-64", Some(&secret)).await;
    sam.see("Hello, Sam").await;
    s.finish(vec![sam, mona]).await;
}
