//! Keyboard only: the assistance form, sign-in with the second factor, and the wizard, with Tab, Space and
//! Enter (and typing into fields), the focus visible at every stop. Every page's inputs are labelled (the
//! checks every page gets).

use crate::harness::*;
use fantoccini::key::Key;
use serde_json::json;

#[tokio::test]
async fn the_assistance_form_sign_in_and_the_wizard_work_with_the_keyboard_alone() {
    let s = Scenario::start("keyboard").await;

    // The assistance form, signed out.
    let lou = s.browser("lou").await;
    lou.goto("/assistance").await;
    lou.page("assistance-form").await;
    lou.tab_to("#email").await;
    lou.type_keys("lou.locked@demo.example").await;
    lou.tab_to("input[name=type]").await;
    let none = lou.js("return document.querySelector('input[name=type]:checked') === null", vec![]).await;
    assert_eq!(none, json!(true), "no problem type is chosen before Space");
    lou.key(Key::Space).await;
    let focused = lou.js("return document.activeElement.checked === true", vec![]).await;
    assert_eq!(focused, json!(true), "Space checked the focused radio button");
    let chosen =
        lou.js("const c = document.querySelector('input[name=type]:checked'); return c ? c.value : null", vec![]).await;
    assert_eq!(chosen, json!("lost_2fa"), "Space chose the focused problem type");
    lou.tab_to("#description").await;
    lou.type_keys("My phone is gone.").await;
    lou.tab_to("form[action='/assistance'] button[type=submit]").await;
    lou.key_to_new_page(Key::Enter).await;
    lou.see("Request received").await;
    lou.page("request-received").await;

    // Sign-in and the second factor.
    let ada = s.browser("ada").await;
    ada.goto("/signin").await;
    ada.page("sign-in").await;
    let focused = ada.js("return document.activeElement.id", vec![]).await;
    if focused != json!("login") {
        ada.tab_to("#login").await;
    }
    ada.type_keys(ADA.0).await;
    ada.tab_to("#password").await;
    ada.type_keys(ADA.1).await;
    ada.key_to_new_page(Key::Enter).await;
    ada.see("Two-step verification").await;
    ada.page("second-factor").await;
    let focused = ada.js("return document.activeElement.id", vec![]).await;
    if focused != json!("code") {
        ada.tab_to("#code").await;
    }
    let code = s.totp(ADA.2).await;
    ada.type_keys(&code).await;
    ada.key_to_new_page(Key::Enter).await;
    ada.see("Hello, Ada").await;

    // The wizard: unlock Lou.
    ada.tab_to("a[href='/console/assist']").await;
    ada.key_to_new_page(Key::Enter).await;
    ada.see("Step 1 of 3").await;
    ada.page("wizard-options").await;
    ada.tab_to("a[href*='action=unlock-person']").await;
    ada.key_to_new_page(Key::Enter).await;
    ada.see("Step 2 of 3").await;
    ada.page("wizard-find").await;
    ada.tab_to("#q").await;
    ada.type_keys("lou").await;
    ada.tab_to("form[action='/console/assist'] button[type=submit]").await;
    ada.key_to_new_page(Key::Enter).await;
    // The unlock options list only locked people: Lou is here because he is locked.
    ada.see("Lou Locked").await;
    ada.page("wizard-found").await;
    ada.tab_to("a[href*='person=']").await;
    ada.key_to_new_page(Key::Enter).await;
    ada.see("Step 3 of 3").await;
    ada.page("wizard-review").await;
    // Tab, Space and Enter alone reach the first verification method (another needs the arrow keys, as in
    // any radio group); a <select> could not be completed at all without them.
    ada.tab_to("input[name=method]").await;
    let none = ada.js("return document.querySelector('input[name=method]:checked') === null", vec![]).await;
    assert_eq!(none, json!(true), "no method is chosen before Space");
    ada.key(Key::Space).await;
    let method = ada.js("return document.activeElement.checked ? document.activeElement.value : null", vec![]).await;
    assert_eq!(method, json!("Identity verified by callback to the number on file"), "Space chose the focused method");
    ada.tab_to("form[action*='/actions/'] button[type=submit]").await;
    ada.key_to_new_page(Key::Enter).await;
    ada.see("Lou").await;
    ada.page("unlocked").await;
    ada.follow("Back to").await;
    assert_eq!(ada.dd("Locked").await, "No", "Lou is unlocked");
    s.finish(vec![lou, ada]).await;
}
