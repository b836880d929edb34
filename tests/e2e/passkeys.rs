//! Passkeys in Chromium, with WebDriver's virtual authenticator as Sam's laptop: Sam adds a passkey on the
//! account page, signs out, signs in with it without typing a username, and removes it (the last one asks
//! first). Then he loses the laptop and asks for help; Ada resets his MFA from the request (the passkey goes
//! with it) and gives him an enrolment code, with which Sam adds a new passkey, no email needed. The pages
//! without the script still sign in with a password (Mona).

use crate::harness::*;

const SAM_EMAIL: &str = "sam.staff@demo.example";

#[tokio::test]
async fn a_person_adds_a_passkey_signs_in_with_it_removes_it_and_an_enrolment_code_brings_a_new_one() {
    let s = Scenario::start("passkeys").await;
    let sam = s.browser("sam").await;
    let laptop = sam.add_virtual_authenticator().await;

    // Sam's first sign-in: the demo gives him no authenticator, so he sets up the app first.
    sam.sign_in(SAM.0, SAM.1, None).await;
    sam.enrol_totp().await;
    sam.see("Hello, Sam").await;
    sam.follow("Add a passkey").await;
    sam.see("Your passkeys").await;
    sam.see("You have no passkey yet.").await;
    sam.page("passkeys-empty").await;
    sam.fill("#name", "Sam's laptop").await;
    sam.press("Add a passkey").await;
    sam.see("was added").await;
    sam.page("passkey-added").await;
    let credentials = sam.authenticator_credentials(&laptop).await;
    assert_eq!(credentials.len(), 1, "{credentials:?}");
    assert_eq!(credentials[0]["isResidentCredential"], true, "a discoverable credential: {credentials:?}");
    let added = s.demo.email(SAM_EMAIL, "a passkey was added to your account").await;
    sam.email_page(&added, "email-passkey-added").await;
    sam.c.back().await.unwrap_or_else(|e| panic!("{e}"));

    // Signed out, Sam signs in with the passkey alone: no username, no password, no code.
    sam.sign_out().await;
    sam.goto("/signin").await;
    sam.page("sign-in-with-passkey-button").await;
    sam.press("Sign in with a passkey").await;
    sam.see("Hello, Sam").await;
    sam.see("Passkey").await;
    sam.page("signed-in-with-passkey").await;

    // Removing the last passkey asks first.
    sam.follow("Your passkeys").await;
    sam.see("Sam's laptop").await;
    sam.press("Remove Sam's laptop").await;
    sam.see("Remove your last passkey?").await;
    sam.page("remove-last-passkey").await;
    sam.press("Yes, remove Sam's laptop").await;
    sam.see("You have no passkey yet.").await;
    sam.page("passkey-removed").await;

    // A new one, then the laptop is lost: Sam asks for help without signing in.
    sam.fill("#name", "Sam's laptop").await;
    sam.press("Add a passkey").await;
    sam.see("was added").await;
    sam.sign_out().await;
    let stranger = s.browser("sam-on-a-borrowed-phone").await;
    stranger.goto("/assistance").await;
    stranger.fill("#email", SAM_EMAIL).await;
    stranger.click("input[name=type][value=lost_2fa]").await;
    stranger.fill("#description", "My laptop was stolen on the train, with my phone in the same bag.").await;
    stranger.press("Ask for help").await;
    stranger.see("Request received").await;
    let reference = stranger.find(".reference").await.text().await.unwrap_or_default();

    // Ada reads the dossier (the passkey is on it, and the flag: added within the hour), resets Sam's MFA
    // from the request, then gives him an enrolment code.
    let ada = s.browser("ada").await;
    ada.sign_in(ADA.0, ADA.1, Some(ADA.2)).await;
    ada.follow("Assistance requests").await;
    ada.follow(&reference).await;
    ada.see("Sam's laptop").await;
    ada.see("Requested within an hour of a passkey change").await;
    ada.page("dossier-with-passkey").await;
    ada.follow("Help this person").await;
    ada.follow("Reset MFA").await;
    ada.see("Step 3 of 3").await;
    ada.choose("Verified in person").await;
    ada.fill("#details", "Sam came to the desk with his badge.").await;
    ada.press("Confirm").await;
    ada.page("mfa-reset").await;
    ada.follow("Back to").await;
    assert_eq!(ada.dd("Passkeys").await, "None", "the reset removed the passkey");
    ada.follow("Issue enrolment code").await;
    ada.see("Step 3 of 3").await;
    ada.page("wizard-review-enrolment-code").await;
    ada.choose("Verified in person").await;
    ada.press("Confirm").await;
    ada.see("Give this enrolment code to the person now").await;
    ada.page("enrolment-code-shown").await;
    let code = ada.find("#pass").await.text().await.unwrap_or_default();
    assert_eq!(code.len(), 34, "{code:?}");
    let told = s.demo.email(SAM_EMAIL, "an enrolment code was issued for you").await;
    assert!(!told.text.contains(&code), "the code is never emailed");

    // On a new laptop, Sam signs in with the code and adds a passkey: nothing else is open to him until then.
    let new_laptop = s.browser("sam-new-laptop").await;
    new_laptop.add_virtual_authenticator().await;
    new_laptop.goto("/signin").await;
    new_laptop.follow("Sign in with a code from your helpdesk").await;
    new_laptop.page("sign-in-with-a-code").await;
    new_laptop.fill("#login", SAM.0).await;
    new_laptop.fill("#code", &code).await;
    new_laptop.press("Sign in").await;
    new_laptop.see("Add a passkey").await;
    new_laptop.page("enrol-passkey-with-code").await;
    new_laptop.fill("#name", "New laptop").await;
    new_laptop.press("Add a passkey").await;
    new_laptop.see("Hello, Sam").await;
    new_laptop.page("home-after-enrolment").await;
    new_laptop.sign_out().await;
    new_laptop.goto("/signin").await;
    new_laptop.press("Sign in with a passkey").await;
    new_laptop.see("Hello, Sam").await;
    new_laptop.page("signed-in-with-new-passkey").await;

    // The pages without the script sign in as before: Mona, password and code.
    let mona = s.browser("mona").await;
    mona.sign_in(MONA.0, MONA.1, Some(MONA.2)).await;
    mona.see("Hello, Mona").await;
    s.finish(vec![sam, stranger, ada, new_laptop, mona]).await;
}
