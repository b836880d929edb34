//! Four-eyes: Ada's MFA reset of Harry (who holds admin permissions) only becomes a request; Olga approves it
//! in her own browser, and only then does it run.

use crate::harness::*;

#[tokio::test]
async fn an_action_on_an_admin_waits_for_a_second_admin_in_another_browser() {
    let s = Scenario::start("four-eyes").await;
    let ada = s.browser("ada").await;
    ada.sign_in(ADA.0, ADA.1, Some(ADA.2)).await;
    ada.follow("People").await;
    ada.fill("#q", "harry").await;
    ada.press("Search").await;
    ada.follow("Harry Helpdesk").await;
    ada.page("record-harry").await;
    ada.press("Reset MFA").await;
    ada.see("waits for a second administrator").await;
    ada.page("review-four-eyes").await;
    ada.choose("Identity verified by callback to the number on file").await;
    ada.press("Confirm").await;
    ada.see("Waiting for approval").await;
    ada.page("waiting-for-approval").await;
    ada.goto("/console/approvals").await;
    ada.see("Yours: waiting for another administrator").await;
    ada.page("own-approval").await;
    ada.goto("/console/people").await;
    ada.fill("#q", "harry").await;
    ada.press("Search").await;
    ada.follow("Harry Helpdesk").await;
    assert_eq!(ada.dd("Authenticator (TOTP)").await, "Enrolled", "nothing ran before the approval");

    let olga = s.browser("olga").await;
    olga.sign_in(OLGA.0, OLGA.1, Some(OLGA.2)).await;
    olga.see("Hello, Olga").await;
    olga.follow("Approvals").await;
    olga.see("Harry Helpdesk").await;
    olga.see("Identity verified by callback to the number on file").await;
    olga.page("approvals").await;
    olga.press("Approve and run").await;
    olga.page("approved").await;

    ada.goto(&ada.path().await).await;
    assert_eq!(ada.dd("Authenticator (TOTP)").await, "Not enrolled", "the approval ran the reset");
    ada.page("record-after-approval").await;
    s.finish(vec![ada, olga]).await;
}
