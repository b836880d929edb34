//! A second notification address (NIST SP 800-63B-4 §4.2.1.2, §4.6): the person adds it, it is used only once the
//! code sent to it comes back, and then every recovery notice reaches both mailboxes; an admin may send a recovery
//! code to it, and the audit row says where it went.

use crate::admin_api::{call, token_for};
use crate::helpers::*;
use crate::recovery::{METHOD, admin, code_in, expert, person_id, post_with_csrf};
use reqwest::StatusCode;

const HOME: &str = "ada.home@example.net";

/// A browser signed in as `person` with the code of the app's (fixed) clock, `step` steps on.
pub(crate) async fn sign_in_at(app: &TestApp, clock: &ManualClock, person: &Person, step: i64) -> reqwest::Client {
    let client = browser();
    let first = app.post_form(&client, "/signin", &[("login", &person.username), ("password", &person.password)]).await;
    assert_eq!(location(&first), "/signin/mfa");
    let secret = person.totp.as_ref().unwrap_or_else(|| panic!("{} has TOTP", person.username));
    let code = lifeline::totp::code_at(secret, lifeline::clock::Clock::now(clock) + 30 * step);
    let second = app.post_form(&client, "/signin/mfa", &[("code", &code)]).await;
    assert_eq!(location(&second), "/", "the sign-in of {}", person.username);
    client
}

async fn page_post(
    app: &TestApp,
    client: &reqwest::Client,
    path: &str,
    fields: &[(&str, &str)],
) -> (StatusCode, String) {
    let response = post_with_csrf(client, app, "/account/addresses", path, fields).await;
    (response.status(), response.text().await.unwrap_or_default())
}

async fn subjects(app: &TestApp, to: &str) -> Vec<String> {
    emails_for(app, Some(to)).await.into_iter().map(|(subject, _)| subject).collect()
}

#[tokio::test]
async fn a_second_address_is_confirmed_by_its_code_then_hears_of_every_recovery_and_can_receive_the_code() {
    each_backend_on_a_fixed_clock(async |app: TestApp, clock| {
        let ada = app.add_person("ada", true).await;
        let ada_id = person_id(&app, &ada).await;
        let helen = admin(&app, "helen", expert(2)).await;
        let token = token_for(&app, &helen, "helpdesk", 60, true).await;
        let send_code = async |deliver_to: &str| {
            let body = serde_json::json!({ "reason": METHOD, "deliver_to": deliver_to });
            let path = format!("/api/v1/people/{ada_id}/actions/send-recovery-code");
            call(&app, Some(&token), reqwest::Method::POST, &path, Some(body)).await
        };
        let me = sign_in_at(&app, &clock, &ada, 0).await;

        // Ada adds her home mailbox: a code goes there, and her work mailbox hears of it with "this wasn't me".
        let (status, html) = page_post(&app, &me, "/account/addresses/add", &[("address", HOME)]).await;
        assert_eq!(status, StatusCode::OK, "{html}");
        assert!(html.contains("waiting for the code"), "{html}");
        let to_home = emails_for(&app, Some(HOME)).await;
        assert_eq!(to_home.len(), 1, "{to_home:?}");
        assert!(to_home[0].0.contains("confirm your notification address"), "{}", to_home[0].0);
        let code = code_in(&to_home[0].1);
        let work = emails_for(&app, Some(&ada.email)).await;
        assert!(
            work.iter().any(|(s, b)| s.contains("a notification address was added") && b.contains("/not-me?token="))
        );
        assert!(!to_home[0].1.contains("Test ada"), "no name to an unproven mailbox: {}", to_home[0].1);

        // Until the code comes back the address is not used: a notice goes to work alone, and an admin cannot
        // send a code to it.
        let (status, problem) = send_code("second").await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
        assert_eq!(subjects(&app, HOME).await.len(), 1);

        // A wrong code is refused and counted; the right one confirms.
        let (status, html) = page_post(&app, &me, "/account/addresses/confirm", &[("code", "AAAA-BBBB")]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(html.contains("not right"), "{html}");
        let (status, html) = page_post(&app, &me, "/account/addresses/confirm", &[("code", &code)]).await;
        assert_eq!(status, StatusCode::OK, "{html}");
        assert!(html.contains("confirmed"), "{html}");
        let (status, _) = page_post(&app, &me, "/account/addresses/confirm", &[("code", &code)]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "the code works once");
        let record = app.person_json(&ada.email).await;
        assert_eq!(record["second_address"]["address"], HOME, "{record}");
        let active = subjects(&app, HOME).await;
        assert!(active.last().is_some_and(|s| s.contains("now receives your notices")), "{active:?}");

        // The admin sends the recovery code to the home address: the code goes there alone, the work address is
        // told where it went, and the audit row records it.
        let (status, result) = send_code("second").await;
        assert_eq!(status, StatusCode::OK, "{result}");
        let home = emails_for(&app, Some(HOME)).await.pop().unwrap_or_else(|| panic!("no email home"));
        assert!(home.0.contains("recovery code"), "{}", home.0);
        let sent_code = code_in(&home.1);
        assert!(home.1.contains(&ada.email), "it says which address to give with the code: {}", home.1);
        let told = emails_for(&app, Some(&ada.email)).await.pop().unwrap_or_else(|| panic!("no email at work"));
        assert!(told.1.contains(HOME) && !told.1.contains(&sent_code), "{}", told.1);
        assert!(told.1.contains("/not-me?token="), "{}", told.1);
        let details: String = sqlx::query_scalar(
            "SELECT details FROM audit_event WHERE action = 'send-recovery-code' ORDER BY audit_event_id DESC LIMIT 1",
        )
        .fetch_one(app.db.pool())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(details.contains(HOME), "{details}");

        // The code works at the recovery page with the directory address.
        let used =
            post_with_csrf(&browser(), &app, "/recover", "/recover", &[("email", &ada.email), ("code", &sent_code)])
                .await;
        assert_eq!(location(&used), "/recover/options");

        // By default the code goes to the directory address, and the home address hears of it.
        let before = subjects(&app, HOME).await.len();
        let (status, _) = send_code("").await;
        assert_eq!(status, StatusCode::OK);
        let home = emails_for(&app, Some(HOME)).await;
        assert_eq!(home.len(), before + 1);
        assert!(home[before].1.contains(&ada.email), "{}", home[before].1);
        let (status, _) = send_code("somewhere").await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        // "second:<address>" is the stored form of a four-eyes request, not something a caller may send: no guessing.
        let (status, _) = send_code(&format!("second:{HOME}")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let notified: Option<String> = sqlx::query_scalar(
            "SELECT notified FROM audit_event WHERE action = 'notification-address.add' ORDER BY audit_event_id LIMIT 1",
        )
        .fetch_one(app.db.pool())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        let notified = notified.unwrap_or_default();
        assert!(notified.contains(HOME) && notified.contains(&ada.email), "the audit row names who was emailed: {notified}");

        // Removing it needs a sign-in within ten minutes, and both addresses hear of it.
        clock.advance(11 * 60);
        let (status, html) = page_post(&app, &me, "/account/addresses/remove", &[]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(html.contains("sign in again"), "{html}");
        let again = sign_in_at(&app, &clock, &ada, 0).await;
        let (status, html) = page_post(&app, &again, "/account/addresses/remove", &[]).await;
        assert_eq!(status, StatusCode::OK, "{html}");
        for to in [HOME, ada.email.as_str()] {
            let last = subjects(&app, to).await.pop().unwrap_or_default();
            assert!(last.contains("a notification address was removed"), "{to}: {last}");
        }
        assert!(app.person_json(&ada.email).await["second_address"].is_null());
    })
    .await;
}

#[tokio::test]
async fn parallel_guesses_at_a_confirmation_code_count_and_five_wrong_ones_spend_it() {
    each_backend_on_a_fixed_clock(async |app: TestApp, clock| {
        let bo = app.add_person("bo", true).await;
        let me = sign_in_at(&app, &clock, &bo, 0).await;
        let (status, _) = page_post(&app, &me, "/account/addresses/add", &[("address", "bo@home.example")]).await;
        assert_eq!(status, StatusCode::OK);
        let code = code_in(&emails_for(&app, Some("bo@home.example")).await[0].1);
        // A second code within the minute is refused (one code a minute: the add is the mailbox's spam guard).
        let (status, html) = page_post(&app, &me, "/account/addresses/add", &[("address", "bo@other.example")]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(html.contains("wait a minute"), "{html}");

        let guesses = (0..12).map(|i| {
            let addresses = app.state.addresses.clone();
            tokio::spawn(async move { addresses.confirm(bo.account_id, &format!("WRONG-{i:04}")).await })
        });
        let mut wrong = 0;
        for guess in guesses {
            match guess.await.unwrap_or_else(|e| panic!("{e}")) {
                Err(lifeline::addresses::AddressError::WrongCode) => wrong += 1,
                Err(lifeline::addresses::AddressError::Spent) => {}
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(wrong, 5, "exactly five wrong tries are counted");
        let late = app.state.addresses.confirm(bo.account_id, &code).await;
        assert!(matches!(late, Err(lifeline::addresses::AddressError::Spent)), "{late:?}");
        let tries: i64 = sqlx::query_scalar("SELECT failed_tries FROM notification_address")
            .fetch_one(app.db.pool())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(tries, 5);

        // Five codes a day per person (and per mailbox); the refused one within the minute was given back, and
        // removing and adding again would not reset them.
        for (i, expect) in
            [StatusCode::OK, StatusCode::OK, StatusCode::OK, StatusCode::OK, StatusCode::BAD_REQUEST].iter().enumerate()
        {
            clock.advance(61);
            let address = format!("bo{i}@home.example");
            let (status, html) = page_post(&app, &me, "/account/addresses/add", &[("address", &address)]).await;
            assert_eq!(status, *expect, "add {i}: {html}");
            if *expect == StatusCode::BAD_REQUEST {
                assert!(html.contains("Too many codes"), "{html}");
                assert!(emails_for(&app, Some(&address)).await.is_empty(), "no code went out");
            }
        }
    })
    .await;
}

#[tokio::test]
async fn an_address_someone_else_added_goes_when_the_person_says_this_was_not_me() {
    each_backend_on_a_fixed_clock(async |app: TestApp, clock| {
        let ada = app.add_person("ada", true).await;
        // Someone with Ada's session adds a mailbox of theirs; Ada's work mailbox hears of it at once.
        let thief = sign_in_at(&app, &clock, &ada, 0).await;
        let (status, _) = page_post(&app, &thief, "/account/addresses/add", &[("address", "thief@evil.example")]).await;
        assert_eq!(status, StatusCode::OK);
        crate::passkeys::report_not_me(&app, &ada.email, "adding the notification address thief@evil.example").await;
        assert!(app.person_json(&ada.email).await["second_address"].is_null(), "the address is gone");
        let locked = app.person_json(&ada.email).await;
        assert_eq!(locked["accounts"][0]["locked"], true, "{locked}");
    })
    .await;
}
