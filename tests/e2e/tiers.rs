//! Harry (DPA 1) sees no recovery-code action on Mona's record, and a POST for it crafted in his own
//! browser session (with a valid CSRF token) is refused.

use crate::harness::*;
use serde_json::json;

#[tokio::test]
async fn a_dpa_1_admin_sees_no_recovery_code_action_and_a_crafted_post_is_refused() {
    let s = Scenario::start("tiers").await;
    let harry = s.browser("harry").await;
    harry.sign_in(HARRY.0, HARRY.1, Some(HARRY.2)).await;
    harry.follow("People").await;
    harry.fill("#q", "mona").await;
    harry.press("Search").await;
    harry.follow("Mona Manager").await;
    harry.page("record").await;
    harry.see("Actions").await;
    harry.see_not("Send recovery code email").await;
    harry.see_not("Issue temporary access pass").await;
    harry.see("Send access email").await;

    let path = harry.path().await;
    let person = path.trim_start_matches("/console/people/").to_owned();
    assert!(person.parse::<u64>().is_ok(), "a person's record is at /console/people/ID, not {path}");
    harry.mark_document().await;
    harry
        .js(
            "const csrf = document.querySelector('input[name=csrf]').value;
             const f = document.createElement('form');
             f.method = 'post';
             f.action = '/console/people/' + arguments[0] + '/actions/send-recovery-code';
             for (const [k, v] of [['csrf', csrf], ['method', 'Verified in person'], ['seen', ''], ['reference', '']]) {
               const i = document.createElement('input'); i.type = 'hidden'; i.name = k; i.value = v; f.appendChild(i);
             }
             document.body.appendChild(f);
             f.submit();
             return true;",
            vec![json!(person)],
        )
        .await;
    harry.wait_for_new_document("the crafted POST").await;
    harry.error_page("crafted-post-refused", 403).await;
    assert!(
        s.demo.emails("mona.manager@demo.example").iter().all(|e| !e.subject.contains("recovery code")),
        "no recovery code went out"
    );
    s.finish();
}
