//! A second notification address in Chromium: Mona adds her home mailbox on her account page, types the code it
//! received, and from then on hears of changes there too; Ada sends Mona's recovery code to it from the wizard.

use crate::harness::*;

const MONA_EMAIL: &str = "mona.manager@demo.example";
const HOME: &str = "mona@home.example";

#[tokio::test]
async fn a_person_confirms_a_second_address_and_an_admin_sends_the_recovery_code_there() {
    let s = Scenario::start("addresses").await;
    let mona = s.browser("mona").await;
    mona.sign_in(MONA.0, MONA.1, Some(MONA.2)).await;
    mona.see("Hello, Mona").await;
    mona.follow("Notification addresses").await;
    mona.see("Second address").await;
    mona.page("addresses-none").await;
    mona.fill("#address", HOME).await;
    mona.press("Send the code").await;
    mona.see("We sent a code to that address").await;
    mona.page("address-code-sent").await;
    let sent = s.demo.email(HOME, "confirm your notification address").await;
    mona.email_page(&sent, "email-address-code").await;
    mona.goto("/account/addresses").await;
    s.demo.email(MONA_EMAIL, "a notification address was added").await;
    mona.fill("#code", &code_in(&sent.text)).await;
    mona.press("Confirm").await;
    mona.see("Your second address is confirmed").await;
    mona.page("address-confirmed").await;

    // Ada picks the home address for the recovery code; the work mailbox is told where it went.
    let ada = s.browser("ada").await;
    ada.sign_in(ADA.0, ADA.1, Some(ADA.2)).await;
    ada.goto("/console/people").await;
    ada.fill("#q", "mona").await;
    ada.press("Search").await;
    ada.follow("Mona Manager").await;
    assert!(ada.dd("Second notification address").await.starts_with(&format!("{HOME} (confirmed ")));
    ada.follow("Send recovery code email").await;
    ada.see("Send it to").await;
    ada.page("wizard-send-to").await;
    ada.click("input[name=deliver_to][value=second]").await;
    ada.choose("Verified in person").await;
    ada.press("Confirm").await;
    ada.page("recovery-code-sent-to-second").await;
    let code = s.demo.email(HOME, "recovery code").await;
    assert!(code.text.contains(MONA_EMAIL), "it says which address to give: {}", code.text);
    s.demo.email_containing(MONA_EMAIL, &format!("It was sent to {HOME}")).await;
    ada.follow("Back to").await;
    ada.see("Authenticator record").await;
    ada.page("person-record-with-authenticators").await;
    s.finish(vec![mona, ada]).await;
}
