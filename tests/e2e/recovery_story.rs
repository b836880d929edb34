//! The whole story: Mona locks herself out, asks for help, Ada reads the dossier and helps her from it, and
//! Mona gets back in with the emailed recovery code, a new password and a new authenticator.

use crate::harness::*;

#[tokio::test]
async fn a_locked_out_person_asks_for_help_and_an_admin_gets_her_back_in() {
    let s = Scenario::start("recovery-story").await;
    let (login, password, _) = MONA;
    let mona = s.browser("mona").await;

    // Five wrong passwords lock the account; then even the right one gets the same answer.
    for attempt in 1..=5 {
        mona.goto("/signin").await;
        if attempt == 1 {
            mona.page("sign-in").await;
        }
        mona.fill("#login", login).await;
        mona.fill("#password", "not-my-password").await;
        mona.press("Sign in").await;
        if attempt == 1 {
            mona.page("wrong-password").await;
        }
        mona.see("incorrect").await;
    }
    mona.sign_in(login, password, None).await;
    mona.see("incorrect").await;
    mona.page("locked-out").await;

    // "Can't sign in?" → the assistance form.
    mona.press("Can't sign in?").await;
    mona.see("Can't sign in?").await;
    mona.page("assistance-form").await;
    mona.fill("#email", "mona.manager@demo.example").await;
    mona.click("input[name=type][value=locked_out]").await;
    mona.fill("#description", "I mistyped my password too often this morning.").await;
    mona.press("Ask for help").await;
    mona.see("Request received").await;
    mona.page("request-received").await;
    let reference = mona.find(".reference").await.text().await.unwrap_or_default();
    assert!(reference.starts_with("AR-"), "no reference on the page: {reference:?}");

    // Ada is told by email (the dossier, rendered and checked too), signs in and opens the request.
    let alert = s.demo.email("ada.admin@demo.example", &reference).await;
    let ada = s.browser("ada").await;
    ada.email_page(&alert, "email-assistance-request").await;
    ada.sign_in(ADA.0, ADA.1, Some(ADA.2)).await;
    ada.see("Hello, Ada").await;
    ada.page("home").await;
    ada.follow("Assistance requests").await;
    ada.see(&reference).await;
    ada.page("requests").await;
    ada.follow(&reference).await;
    ada.see("Account status").await;
    ada.see("yes (too many failed sign-ins").await;
    ada.see("+44 20 7946 0000").await;
    ada.page("dossier").await;

    // "Help this person" → the wizard: unlock, then a recovery code, each with how Ada verified Mona.
    ada.follow("Help this person").await;
    ada.see("Step 1 of 3").await;
    ada.page("wizard-options").await;
    ada.follow("Unlock person and accounts").await;
    ada.see("Step 3 of 3").await;
    ada.see("Mona").await;
    ada.page("wizard-review-unlock").await;
    ada.choose("Identity verified by callback to the number on file").await;
    ada.press("Confirm").await;
    ada.page("unlocked").await;
    ada.see("Mona").await;
    ada.follow("Back to").await;
    ada.page("person-record").await;
    ada.follow("Send recovery code email").await;
    ada.see("Step 3 of 3").await;
    ada.page("wizard-review-recovery-code").await;
    ada.choose("Identity verified by callback to the number on file").await;
    ada.press("Confirm").await;
    ada.page("recovery-code-sent").await;

    // Mona reads the email, uses the code, sets a new password and a new authenticator.
    let email = s.demo.email("mona.manager@demo.example", "recovery code").await;
    mona.email_page(&email, "email-recovery-code").await;
    let code = code_in(&email.text);
    mona.goto("/signin").await;
    mona.press("Use a recovery code").await;
    mona.page("recover").await;
    mona.fill("#email", "mona.manager@demo.example").await;
    mona.fill("#code", &code).await;
    mona.press("Continue").await;
    mona.see("Recover your account").await;
    mona.page("recover-options").await;
    let new_password = "lantern-orchard-pebble-walrus-19";
    mona.fill("#new_password", new_password).await;
    mona.fill("#confirm_password", new_password).await;
    mona.press("Save password").await;
    mona.page("password-saved").await;
    mona.press("Remove my authenticator and set up a new one").await;
    let secret = mona.enrol_totp().await;
    mona.page("after-enrolment").await;
    mona.sign_out().await;

    // Back in, with the new password and the new authenticator.
    mona.sign_in(login, new_password, Some(&secret)).await;
    mona.see("Hello, Mona").await;
    mona.page("signed-in-again").await;
    s.finish(vec![mona, ada]).await;
}
