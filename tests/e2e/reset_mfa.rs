//! Ada resets Mona's MFA from Mona's record: the confirmation step first (Cancel changes nothing), then
//! Confirm; Mona's next sign-in proves her mailbox with a device authorization code and enrols again.

use crate::harness::*;

#[tokio::test]
async fn an_admin_resets_mfa_from_the_record_and_the_person_enrols_again() {
    let s = Scenario::start("reset-mfa").await;
    let ada = s.browser("ada").await;
    ada.sign_in(ADA.0, ADA.1, Some(ADA.2)).await;
    ada.see("Hello, Ada").await;
    ada.follow("People").await;
    ada.page("people").await;
    ada.fill("#q", "mona").await;
    ada.press("Search").await;
    ada.see("mona.manager@demo.example").await;
    ada.page("people-search").await;
    ada.follow("Mona Manager").await;
    ada.see("Authentication").await;
    ada.page("record").await;
    assert_eq!(ada.dd("Authenticator (TOTP)").await, "Enrolled");

    // The confirmation step, and Cancel: nothing changes.
    ada.press("Reset MFA").await;
    ada.see("Step 3 of 3: review and confirm — Reset MFA").await;
    ada.page("confirm-reset-mfa").await;
    ada.follow("Cancel").await;
    ada.page("record-after-cancel").await;
    assert_eq!(ada.dd("Authenticator (TOTP)").await, "Enrolled", "Cancel changed nothing");
    assert!(s.demo.emails("mona.manager@demo.example").is_empty(), "Cancel sent no email");

    // Confirm: the authenticator and backup codes are gone.
    ada.press("Reset MFA").await;
    ada.choose("Verified in person").await;
    ada.fill("#details", "Mona came to the helpdesk desk with her badge.").await;
    ada.press("Confirm").await;
    ada.see("Reset MFA").await;
    ada.page("mfa-reset").await;
    ada.follow("Back to").await;
    assert_eq!(ada.dd("Authenticator (TOTP)").await, "Not enrolled");
    ada.page("record-after-reset").await;
    let notice = s.demo.email("mona.manager@demo.example", "two-step verification was reset").await;
    ada.email_page(&notice, "email-mfa-reset-notice").await;

    // Mona: password, then the device authorization code from her mailbox, then a new authenticator.
    let mona = s.browser("mona").await;
    mona.sign_in(MONA.0, MONA.1, None).await;
    mona.see("Device authorization").await;
    mona.page("device-authorization").await;
    let email = s.demo.email("mona.manager@demo.example", "device authorization code").await;
    mona.email_page(&email, "email-device-code").await;
    mona.c.back().await.unwrap_or_else(|e| panic!("{e}"));
    mona.see("Device authorization").await;
    mona.fill("#code", &code_in(&email.text)).await;
    mona.press("Continue").await;
    let secret = mona.enrol_totp().await;
    mona.see("Hello, Mona").await;
    mona.page("home").await;
    mona.sign_out().await;
    mona.sign_in(MONA.0, MONA.1, Some(&secret)).await;
    mona.see("Hello, Mona").await;
    mona.page("signed-in-with-new-authenticator").await;
    s.finish(vec![ada, mona]).await;
}
