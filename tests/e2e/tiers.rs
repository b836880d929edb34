//! Harry (DPA 1) sees no recovery-code action on Mona's record, and a POST for it crafted in his own
//! browser session (with a valid CSRF token) is refused for want of permission and audited; the same crafted
//! POST from Ada (DPA 3, expert) runs, so the refusal is the tier's and not the form's.

use crate::harness::*;
use serde_json::json;

/// Post the recovery-code action for `person` from the page shown, with its CSRF token and the review's
/// `seen` stamp, as a crafted form.
async fn crafted_recovery_code_post(b: &Browser, person: &str, seen: &str) {
    b.mark_document().await;
    b.js(
        "const csrf = document.querySelector('input[name=csrf]').value;
         const f = document.createElement('form');
         f.method = 'post';
         f.action = '/console/people/' + arguments[0] + '/actions/send-recovery-code';
         for (const [k, v] of [['csrf', csrf], ['method', 'Verified in person'], ['seen', arguments[1]]]) {
           const i = document.createElement('input'); i.type = 'hidden'; i.name = k; i.value = v; f.appendChild(i);
         }
         document.body.appendChild(f);
         f.submit();
         return true;",
        vec![json!(person), json!(seen)],
    )
    .await;
    b.wait_for_new_document("the crafted POST").await;
}

async fn open_record(b: &Browser, query: &str, name: &str) -> String {
    b.follow("People").await;
    b.fill("#q", query).await;
    b.press("Search").await;
    b.follow(name).await;
    let path = b.path().await;
    let person = path.trim_start_matches("/console/people/").to_owned();
    assert!(person.parse::<u64>().is_ok(), "a person's record is at /console/people/ID, not {path}");
    person
}

#[tokio::test]
async fn a_dpa_1_admin_sees_no_recovery_code_action_and_a_crafted_post_is_refused() {
    let s = Scenario::start("tiers").await;
    // Ada's review of the action gives the form's `seen` stamp (the record as reviewed), so that Harry's
    // crafted form is complete: only the permission is missing.
    let ada = s.browser("ada").await;
    ada.sign_in(ADA.0, ADA.1, Some(ADA.2)).await;
    let person = open_record(&ada, "mona", "Mona Manager").await;
    ada.follow("Send recovery code email").await;
    let seen = ada.find("input[name=seen]").await.attr("value").await.ok().flatten().unwrap_or_default();
    assert!(!seen.is_empty(), "the review carries a seen stamp");

    let harry = s.browser("harry").await;
    harry.sign_in(HARRY.0, HARRY.1, Some(HARRY.2)).await;
    assert_eq!(open_record(&harry, "mona", "Mona Manager").await, person);
    harry.see("Actions").await;
    harry.see("Send access email").await;
    harry.see_not("Send recovery code email").await;
    harry.see_not("Issue temporary access pass").await;

    harry.expect_error(403);
    crafted_recovery_code_post(&harry, &person, &seen).await;
    harry.see("You do not have permission").await;
    harry.see_not("did not come from this site").await;

    // The control: Ada's identical crafted POST runs, and her audit log shows Harry's refusal.
    ada.goto(&format!("/console/people/{person}")).await;
    crafted_recovery_code_post(&ada, &person, &seen).await;
    ada.see("Send recovery code email").await;
    let email = s.demo.email("mona.manager@demo.example", "recovery code").await;
    assert!(email.text.contains("A recovery code was emailed"), "{}", email.text);
    ada.goto("/console/audit?action=authz.refused").await;
    ada.see("harry\t\tauthz.refused").await;
    ada.see(r#"{"action":"send-recovery-code","denial":"NotPermitted"}"#).await;
    s.finish(vec![harry, ada]).await;
}
