//! Managers reset their own staff (issue 11, seed 003): the manager portal, the scanner-safe secure link, the
//! synchronized account's ticket and the engineers' queue, and everything a manager may not do.

use crate::helpers::*;
use crate::recovery::{admin, get, link_in, person_id, post_with_csrf as post_from};
use lifeline::domain::{AccountSource, EmailAddress, Grant, PersonId};
use reqwest::StatusCode;

struct Team {
    mona: Person,
    sam: Person,
    sid: Person,
    /// In Mona's line but a helpdesk admin (rank 1): not hers to reset.
    hal: Person,
    /// Reports to Sam: in Mona's line, indirectly.
    ivy: Person,
    /// Outside Mona's line.
    ola: Person,
}

async fn report_of(app: &TestApp, manager: &Person, username: &str, source: AccountSource, grant: Grant) -> Person {
    let mut new = new_person(&format!("Test {username}"), &format!("{username}@example.org"), username);
    new.manager_email = Some(EmailAddress::parse(&manager.email).unwrap());
    new.source = source;
    new.grant = grant;
    app.add(new, true).await
}

async fn team(app: &TestApp) -> Team {
    let mona = app.add_person("mona", true).await;
    let sam = report_of(app, &mona, "sam", AccountSource::Local, Grant::default()).await;
    let sid = report_of(app, &mona, "sid", AccountSource::Synchronized, Grant::default()).await;
    let hal = report_of(app, &mona, "hal", AccountSource::Local, Grant { dpa_level: 1, ..Default::default() }).await;
    let ivy = report_of(app, &sam, "ivy", AccountSource::Local, Grant::default()).await;
    let ola = app.add_person("ola", true).await;
    Team { mona, sam, sid, hal, ivy, ola }
}

fn password_in(html: &str) -> String {
    let marker = "<code class=\"secret\">";
    let start = html.find(marker).unwrap_or_else(|| panic!("no password on the page:\n{html}")) + marker.len();
    html[start..].split('<').next().unwrap().to_owned()
}

async fn tickets(app: &TestApp) -> Vec<(String, String, String)> {
    sqlx::query_as("SELECT reference, kind, status FROM ticket ORDER BY ticket_id")
        .fetch_all(app.db.pool())
        .await
        .unwrap()
}

async fn audited(app: &TestApp, action: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM audit_event WHERE action = $1")
        .bind(action)
        .fetch_one(app.db.pool())
        .await
        .unwrap()
}

/// Sign in with `password` and walk the required steps (a new authenticator with oathtool's code, a new
/// password) to the account page.
async fn sign_in_through(app: &TestApp, person: &Person, password: &str, new_password: &str) -> Vec<String> {
    let me = browser();
    let first = app.post_sign_in(&me, &person.username, password).await;
    let mut steps = vec![location(&first)];
    for _ in 0..4 {
        match steps.last().unwrap().as_str() {
            "/signin/enroll" => {
                let (_, html) = get(&me, &app.url("/signin/enroll")).await;
                let secret = html.split("secret=").nth(1).unwrap().split('&').next().unwrap().to_owned();
                let out = std::process::Command::new("oathtool").args(["--totp", "-b", &secret]).output().unwrap();
                let code = String::from_utf8_lossy(&out.stdout).trim().to_owned();
                let done = post_from(&me, app, "/signin/enroll", "/signin/enroll", &[("code", &code)]).await;
                assert_eq!(done.status(), StatusCode::OK, "enrolled");
                let (status, _) = get(&me, &app.url("/account/password")).await;
                steps.push(if status == StatusCode::OK { "/account/password".into() } else { "/".into() });
            }
            "/account/password" => {
                let fields = [("new_password", new_password), ("confirm_password", new_password)];
                let done = post_from(&me, app, "/account/password", "/account/password", &fields).await;
                steps.push(location(&done));
            }
            _ => break,
        }
    }
    steps
}

#[tokio::test]
async fn mona_resets_sam_and_the_secure_link_shows_the_password_once_then_sam_signs_in_and_chooses_his_own() {
    each_backend(async |app: TestApp| {
        let t = team(&app).await;
        let sam_id = person_id(&app, &t.sam).await;
        let mona = app.sign_in(&t.mona).await;

        // The account page links the portal; the type-ahead finds Sam by part of his name, and only her line.
        let (_, home) = get(&mona, &app.url("/")).await;
        assert!(home.contains("href=\"/team\""), "{home}");
        let (status, html) = get(&mona, &app.url("/team?q=sa")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains(&t.sam.email) && !html.contains(&t.ola.email), "{html}");
        assert!(html.contains("Do not reset the access of someone you do not know"), "the seed's warnings: {html}");
        let (_, html) = get(&mona, &app.url("/team?q=test")).await;
        assert!(html.contains(&t.ivy.email), "indirect reports are in the line: {html}");
        assert!(!html.contains(&t.ola.email) && !html.contains(&t.mona.email), "{html}");

        let page = format!("/team/people/{sam_id}");
        let (status, html) = get(&mona, &app.url(&page)).await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains("value=\"both\" checked"), "both by default: {html}");
        let done = post_from(&mona, &app, &page, &format!("{page}/reset"), &[("reset", "both")]).await;
        assert_eq!(done.status(), StatusCode::OK);
        let html = done.text().await.unwrap();
        assert!(html.contains("Ticket TK-"), "{html}");

        // Two emails for Mona: the ticket confirmation, and the secure link apart; Sam is told, with "not me".
        let to_mona = emails_for(&app, Some(&t.mona.email)).await;
        assert_eq!(to_mona.len(), 2, "{to_mona:?}");
        assert!(to_mona[0].0.contains("ticket TK-"), "{to_mona:?}");
        assert!(to_mona[0].1.contains("/tickets/confirm?token="), "{}", to_mona[0].1);
        assert!(!to_mona[0].1.contains("/secure-link"), "the link comes apart from the confirmation");
        let link = link_in(&to_mona[1].1, "/secure-link?token=");
        let to_sam = emails_for(&app, Some(&t.sam.email)).await;
        assert!(to_sam.last().unwrap().1.contains("/not-me?token="), "{to_sam:?}");
        assert_eq!(tickets(&app).await[0].1, "manager_reset");
        assert_eq!(tickets(&app).await[0].2, "resolved");

        // A mail scanner fetches the link: nothing is used up; a second GET still offers the button.
        let scanner = browser();
        for _ in 0..2 {
            let (status, html) = get(&scanner, &app.url(&link)).await;
            assert_eq!(status, StatusCode::OK);
            assert!(html.contains("Click here to proceed") && !html.contains("class=\"secret\""), "{html}");
        }
        let token = link.split("token=").nth(1).unwrap();
        let revealed = post_from(&mona, &app, &link, "/secure-link", &[("token", token)]).await;
        assert_eq!(revealed.status(), StatusCode::OK);
        let html = revealed.text().await.unwrap();
        let temporary = password_in(&html);
        assert!(html.contains("<details class=\"reveal\">"), "blurred until clicked, without script: {html}");
        assert!(temporary.len() >= 40, "{temporary}");
        let again = post_from(&mona, &app, &link, "/secure-link", &[("token", token)]).await;
        assert_eq!(again.status(), StatusCode::GONE);
        let html = again.text().await.unwrap();
        assert!(html.contains("already used, on ") && !html.contains(&temporary), "{html}");
        assert_eq!(audited(&app, "team.secure_link_used").await, 1);
        let wiped: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT sealed_password FROM secure_link").fetch_one(app.db.pool()).await.unwrap();
        assert!(wiped.is_none(), "the sealed password is gone once shown");

        // The old password no longer works; the temporary one leads through enrolment (oathtool) and a new
        // password of Sam's own, to his account.
        let old = app.post_sign_in(&browser(), &t.sam.username, &t.sam.password).await;
        assert_eq!(old.status(), StatusCode::UNAUTHORIZED);
        let steps = sign_in_through(&app, &t.sam, &temporary, "harbour-lantern-quietly-77").await;
        assert_eq!(steps.last().unwrap(), "/", "{steps:?}");
        assert!(steps.contains(&"/signin/enroll".to_owned()) && steps.contains(&"/account/password".to_owned()));

        // The audit log has the reset with Mona as the actor, on Sam, with the ticket.
        let (actor, person, reference): (String, Option<i64>, Option<String>) =
            sqlx::query_as("SELECT actor, subject_person_id, reference FROM audit_event WHERE action = 'team.reset'")
                .fetch_one(app.db.pool())
                .await
                .unwrap();
        assert!(actor.contains("mona"), "{actor}");
        assert_eq!(person, Some(sam_id));
        assert_eq!(reference.as_deref(), Some(tickets(&app).await[0].0.as_str()));
    })
    .await;
}

#[tokio::test]
async fn a_manager_cannot_see_or_reset_anyone_outside_her_line_a_ranked_report_or_herself_and_each_try_is_audited() {
    each_backend(async |app: TestApp| {
        let t = team(&app).await;
        let mona = app.sign_in(&t.mona).await;
        let refused = async || audited(&app, "authz.refused").await;

        let (_, html) = get(&mona, &app.url("/team?q=ola")).await;
        assert!(html.contains("Nobody in your reporting line matches"), "{html}");
        let mut expected = refused().await;
        for person in [&t.ola, &t.hal, &t.mona] {
            let id = person_id(&app, person).await;
            let (status, _) = get(&mona, &app.url(&format!("/team/people/{id}"))).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{}", person.username);
            // A crafted POST, with a valid form and CSRF token from her own page.
            let posted =
                post_from(&mona, &app, "/team", &format!("/team/people/{id}/reset"), &[("reset", "both")]).await;
            assert_eq!(posted.status(), StatusCode::FORBIDDEN, "{}", person.username);
            expected += 2;
            assert_eq!(refused().await, expected, "{}: every attempt is audited", person.username);
        }
        assert!(tickets(&app).await.is_empty(), "nothing was done");
        let ola = app.post_sign_in(&browser(), &t.ola.username, &t.ola.password).await;
        assert_eq!(location(&ola), "/signin/mfa", "Ola's password is untouched");

        // Someone without reports has no portal; nor does a grant make anyone a manager.
        let ola_session = app.sign_in(&t.ola).await;
        let (status, _) = get(&ola_session, &app.url("/team")).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let harry = admin(&app, "harry", Grant { dpa_level: 3, ..Default::default() }).await;
        let harry_session = app.sign_in(&harry).await;
        let sam_id = person_id(&app, &t.sam).await;
        let (status, _) = get(&harry_session, &app.url(&format!("/team/people/{sam_id}"))).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "an admin uses the console, not another's line");

        // Over the API, Mona's token may not act on Sam either: being a manager is no helpdesk grant.
        let proof =
            system::<lifeline::authz::IssueToken>(&app.state, Some(PersonId(person_id(&app, &t.mona).await))).await;
        let token = app.state.tokens.create(proof, "bot", 60, false).await.unwrap().secret;
        let response = browser()
            .post(app.url(&format!("/api/v1/people/{sam_id}/actions/reset-mfa")))
            .bearer_auth(&token)
            .json(&serde_json::json!({ "reason": crate::recovery::METHOD }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
    })
    .await;
}

#[tokio::test]
async fn sids_synchronized_password_becomes_a_ticket_that_harry_works_to_resolved_and_mona_confirms() {
    each_backend(async |app: TestApp| {
        let t = team(&app).await;
        let sid_id = person_id(&app, &t.sid).await;
        let mona = app.sign_in(&t.mona).await;
        let page = format!("/team/people/{sid_id}");
        let (_, html) = get(&mona, &app.url(&page)).await;
        assert!(html.contains("cannot be reset automatically"), "told before submitting: {html}");
        let done = post_from(&mona, &app, &page, &format!("{page}/reset"), &[("reset", "both")]).await;
        assert_eq!(done.status(), StatusCode::OK);
        assert!(done.text().await.unwrap().contains("an engineer will contact you"));

        // No password change, MFA gone at once, a ticket in the engineers' queue; no secure link.
        let view = app.person_json(&t.sid.email).await;
        assert_eq!(view["accounts"][0]["mfa"]["totp_enabled"], false, "{view}");
        let first = app.post_sign_in(&browser(), &t.sid.username, &t.sid.password).await;
        assert_eq!(location(&first), "/signin/device", "Sid's own password works, then his mailbox must be proved");
        let all = tickets(&app).await;
        assert_eq!((all[0].1.as_str(), all[0].2.as_str()), ("password_reset", "open"));
        let reference = all[0].0.clone();
        let to_mona = emails_for(&app, Some(&t.mona.email)).await;
        assert_eq!(to_mona.len(), 1, "a confirmation, no secure link: {to_mona:?}");
        assert!(to_mona[0].1.contains("an engineer will follow up"), "{}", to_mona[0].1);

        // Harry (DPA 1) works it: take, note, resolve; each moves the ticket and tells Mona.
        let harry = admin(&app, "harry", Grant { dpa_level: 1, ..Default::default() }).await;
        let console = app.sign_in(&harry).await;
        let (status, html) = get(&console, &app.url("/console/tickets")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains(&reference), "{html}");
        let ticket = format!("/console/tickets/{reference}");
        let taken = post_from(&console, &app, &ticket, &format!("{ticket}/take"), &[]).await;
        assert_eq!(taken.status(), StatusCode::SEE_OTHER);
        let twice = post_from(&console, &app, &ticket, &format!("{ticket}/take"), &[]).await;
        assert_eq!(twice.status(), StatusCode::CONFLICT, "taken already");
        let empty = post_from(&console, &app, &ticket, &format!("{ticket}/note"), &[("note", "  ")]).await;
        assert_eq!(empty.status(), StatusCode::BAD_REQUEST);
        let note = [("note", "Called Sid; reset on the domain controller."), ("resolve", "yes")];
        let resolved = post_from(&console, &app, &ticket, &format!("{ticket}/note"), &note).await;
        assert_eq!(resolved.status(), StatusCode::SEE_OTHER);
        assert_eq!(tickets(&app).await[0].2, "resolved");
        let (_, html) = get(&console, &app.url(&ticket)).await;
        assert!(html.contains("Called Sid") && html.contains("is working on it"), "the timeline: {html}");

        // The resolution email's link: a GET only asks, the POST confirms, once.
        let to_mona = emails_for(&app, Some(&t.mona.email)).await;
        assert_eq!(to_mona.len(), 3, "in progress, resolved: {to_mona:?}");
        let link = link_in(&to_mona[2].1, "/tickets/confirm?token=");
        let (status, html) = get(&browser(), &app.url(&link)).await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains("Everything works"), "{html}");
        assert_eq!(tickets(&app).await[0].2, "resolved", "looking confirms nothing");
        let token = link.split("token=").nth(1).unwrap();
        let confirmed = post_from(&browser(), &app, &link, "/tickets/confirm", &[("token", token)]).await;
        assert_eq!(confirmed.status(), StatusCode::OK);
        assert_eq!(tickets(&app).await[0].2, "confirmed");
        let again = post_from(&browser(), &app, &link, "/tickets/confirm", &[("token", token)]).await;
        assert_eq!(again.status(), StatusCode::NOT_FOUND);
        for action in ["team.reset", "ticket.take", "ticket.resolve", "ticket.confirm"] {
            assert_eq!(audited(&app, action).await, 1, "{action}");
        }
        // A person without the queue's permission does not see it.
        let (status, _) = get(&mona, &app.url("/console/tickets")).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    })
    .await;
}

#[tokio::test]
async fn twenty_concurrent_uses_of_one_secure_link_reveal_the_password_exactly_once_and_a_link_expires() {
    each_backend_with_clock(
        chrono::Utc::now().timestamp(),
        |_| {},
        async |app: TestApp, clock| {
            let t = team(&app).await;
            let mona = app.sign_in(&t.mona).await;
            for person in [&t.sam, &t.ivy] {
                let id = person_id(&app, person).await;
                let page = format!("/team/people/{id}");
                let done = post_from(&mona, &app, &page, &format!("{page}/reset"), &[("reset", "password")]).await;
                assert_eq!(done.status(), StatusCode::OK);
            }
            let links: Vec<String> = emails_for(&app, Some(&t.mona.email))
                .await
                .iter()
                .filter(|(subject, _)| subject.contains("secure link"))
                .map(|(_, text)| link_in(text, "/secure-link?token="))
                .collect();
            assert_eq!(links.len(), 2);

            let token = links[0].split("token=").nth(1).unwrap().to_owned();
            let (_, html) = get(&mona, &app.url(&links[0])).await;
            let csrf = csrf_of(&html);
            let mut tasks = Vec::new();
            for _ in 0..20 {
                let (client, url, token, csrf) = (mona.clone(), app.url("/secure-link"), token.clone(), csrf.clone());
                tasks.push(tokio::spawn(async move {
                    let response = client.post(url).form(&[("token", token), ("csrf", csrf)]).send().await.unwrap();
                    (response.status(), response.text().await.unwrap())
                }));
            }
            let mut revealed = 0;
            let mut temporary = String::new();
            for task in tasks {
                let (status, html) = task.await.unwrap();
                match status {
                    StatusCode::OK => {
                        temporary = password_in(&html);
                        revealed += 1;
                    }
                    StatusCode::GONE => assert!(html.contains("already used"), "{html}"),
                    other => panic!("{other}: {html}"),
                }
            }
            assert_eq!(revealed, 1);

            // The second link, a day and an hour later: expired, and it says so.
            clock.advance(25 * 3600);
            let (status, html) = get(&browser(), &app.url(&links[1])).await;
            assert_eq!(status, StatusCode::GONE);
            assert!(html.contains("expired"), "{html}");
            let token = links[1].split("token=").nth(1).unwrap();
            let late = post_from(&browser(), &app, &links[1], "/secure-link", &[("token", token)]).await;
            assert_eq!(late.status(), StatusCode::GONE);
            // Sam never used the password he was given: a day on, it is a wrong password like any other.
            let stale = app.post_sign_in(&browser(), &t.sam.username, &temporary).await;
            assert_eq!(stale.status(), StatusCode::UNAUTHORIZED, "the temporary password expired with its day");
            // The tickets' "Everything works" links expire too, 14 days after the ticket last changed.
            let confirmation = emails_for(&app, Some(&t.mona.email)).await;
            let link = link_in(&confirmation[0].1, "/tickets/confirm?token=");
            let (status, _) = get(&browser(), &app.url(&link)).await;
            assert_eq!(status, StatusCode::OK, "a day on, it still confirms");
            clock.advance(14 * 86_400);
            let (status, _) = get(&browser(), &app.url(&link)).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "two weeks on, it confirms nothing");
        },
    )
    .await;
}

#[tokio::test]
async fn bad_input_no_choice_an_unknown_person_or_a_malformed_token_is_a_clear_4xx_and_changes_nothing() {
    each_backend(async |app: TestApp| {
        let t = team(&app).await;
        let sam_id = person_id(&app, &t.sam).await;
        let mona = app.sign_in(&t.mona).await;
        let page = format!("/team/people/{sam_id}");
        for fields in [vec![], vec![("reset", "everything")], vec![("reset", "")]] {
            let response = post_from(&mona, &app, &page, &format!("{page}/reset"), &fields).await;
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{fields:?}");
            assert!(response.text().await.unwrap().contains("Choose what to reset"));
        }
        for id in ["999999", "0", "-3", "abc", "1%27%20OR%201=1"] {
            let (status, _) = get(&mona, &app.url(&format!("/team/people/{id}"))).await;
            assert!(matches!(status, StatusCode::NOT_FOUND | StatusCode::BAD_REQUEST), "{id}: {status}");
        }
        for token in ["", "short", "'; DROP TABLE secure_link; --", &"A".repeat(43), &"é".repeat(50)] {
            let (status, html) = get(&browser(), &app.url(&format!("/secure-link?token={token}"))).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{token}");
            assert!(html.contains("not valid"), "{html}");
            let posted = post_from(&browser(), &app, "/team", "/secure-link", &[("token", token)]).await;
            assert_eq!(posted.status(), StatusCode::NOT_FOUND, "{token}");
            let (status, _) = get(&browser(), &app.url(&format!("/tickets/confirm?token={token}"))).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{token}");
        }
        let (status, _) = get(&mona, &app.url("/team?q=%00%ff")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(tickets(&app).await.is_empty(), "nothing was done");
        let old = app.post_sign_in(&browser(), &t.sam.username, &t.sam.password).await;
        assert_eq!(location(&old), "/signin/mfa", "Sam's password is untouched");
    })
    .await;
}

#[tokio::test]
async fn tickets_over_the_api_are_listed_read_noted_taken_and_resolved_with_the_same_permission() {
    each_backend(async |app: TestApp| {
        let t = team(&app).await;
        let sid_id = person_id(&app, &t.sid).await;
        let mona = app.sign_in(&t.mona).await;
        let page = format!("/team/people/{sid_id}");
        let done = post_from(&mona, &app, &page, &format!("{page}/reset"), &[("reset", "password")]).await;
        assert_eq!(done.status(), StatusCode::OK);
        let reference = tickets(&app).await[0].0.clone();

        let harry = admin(&app, "harry", Grant { dpa_level: 1, ..Default::default() }).await;
        let token_of = async |person: &Person| crate::admin_api::token_for(&app, person, "tickets", 60, false).await;
        let token = token_of(&harry).await;
        let call = async |token: Option<&str>, method, path: &str, body| {
            crate::admin_api::call(&app, token, method, path, body).await
        };
        use reqwest::Method;
        let (status, list) = call(Some(&token), Method::GET, "/api/v1/tickets", None).await;
        assert_eq!(status, StatusCode::OK, "{list}");
        assert_eq!(list["tickets"][0]["reference"], reference.as_str());
        assert_eq!(list["tickets"][0]["status"], "open");
        assert_eq!(list["tickets"][0]["kind"], "password_reset");
        let path = format!("/api/v1/tickets/{reference}");
        let (status, one) = call(Some(&token), Method::GET, &path, None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(one["notes"].as_array().unwrap().len(), 1, "{one}");

        let body = serde_json::json!({ "status": "in_progress" });
        let (status, taken) = call(Some(&token), Method::POST, &format!("{path}/status"), Some(body)).await;
        assert_eq!(status, StatusCode::OK, "{taken}");
        assert_eq!(taken["ticket"]["status"], "in_progress");
        assert_eq!(taken["ticket"]["assignee"], "harry");
        let note = serde_json::json!({ "note": "Waiting for Sid to be at his desk." });
        let (status, noted) = call(Some(&token), Method::POST, &format!("{path}/notes"), Some(note)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(noted["notes"].as_array().unwrap().len(), 3);
        let resolve = serde_json::json!({ "status": "resolved", "note": "Reset on the domain controller." });
        let (status, resolved) = call(Some(&token), Method::POST, &format!("{path}/status"), Some(resolve)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(resolved["ticket"]["status"], "resolved");

        // Bad fields 422, a move that does not fit 409, an unknown ticket 404, no token 401, no permission 403.
        for body in [serde_json::json!({ "status": "confirmed" }), serde_json::json!({ "state": "resolved" })] {
            let (status, _) = call(Some(&token), Method::POST, &format!("{path}/status"), Some(body)).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        }
        let again = serde_json::json!({ "status": "resolved", "note": "again" });
        let (status, _) = call(Some(&token), Method::POST, &format!("{path}/status"), Some(again)).await;
        assert_eq!(status, StatusCode::CONFLICT);
        for reference in ["TK-NOPE-NOPE", "%00", "TK-%00%00-AAAA", "x"] {
            let (status, _) = call(Some(&token), Method::GET, &format!("/api/v1/tickets/{reference}"), None).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{reference}");
        }
        let (status, _) = call(None, Method::GET, "/api/v1/tickets", None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let monas = token_of(&t.mona).await;
        let (status, _) = call(Some(&monas), Method::GET, &path, None).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _) = call(Some(&token), Method::GET, "/api/v1/tickets?status=lost", None).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    })
    .await;
}

#[tokio::test]
async fn an_action_verified_with_the_line_manager_waits_for_her_confirmation_and_a_decline_blocks_it() {
    each_backend(async |app: TestApp| {
        let t = team(&app).await;
        let sam_id = person_id(&app, &t.sam).await;
        for _ in 0..5 {
            app.post_sign_in(&browser(), &t.sam.username, "not-sams-password-at-all").await;
        }
        let harry = admin(&app, "harry", Grant { dpa_level: 1, ..Default::default() }).await;
        let proof =
            system::<lifeline::authz::IssueToken>(&app.state, Some(PersonId(person_id(&app, &harry).await))).await;
        let token = app.state.tokens.create(proof, "desk", 60, false).await.unwrap().secret;
        let unlock_for = async |reference: Option<&str>| {
            let response = browser()
                .post(app.url(&format!("/api/v1/people/{sam_id}/actions/unlock-person")))
                .bearer_auth(&token)
                .json(&serde_json::json!({ "reason": "Verified with line manager", "reference": reference }))
                .send()
                .await
                .unwrap();
            (response.status(), response.json::<serde_json::Value>().await.unwrap())
        };
        let unlock = async || unlock_for(None).await;
        let (status, body) = unlock().await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(body["message"].as_str().unwrap().contains("manager's confirmation"), "{body}");

        // A question names only a request about this person; and nobody asks themself.
        let ivy_id = person_id(&app, &t.ivy).await;
        let ivys = app.post_assistance_json("81.2.69.142", &t.ivy.email, "locked_out", "").await;
        let ivys = ivys.json::<serde_json::Value>().await.unwrap()["reference"].as_str().unwrap().to_owned();
        let manager_asks = app.sign_in(&t.mona).await;
        let staff_record = format!("/console/people/{ivy_id}");
        let refused = post_from(&manager_asks, &app, "/team", &format!("{staff_record}/attestation"), &[]).await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "Mona has no helpdesk grant");

        // Harry asks Mona from Sam's record; Mona gets an email and a question in her portal.
        let console = app.sign_in(&harry).await;
        let record = format!("/console/people/{sam_id}");
        let wrong = post_from(&console, &app, &record, &format!("{record}/attestation"), &[("reference", &ivys)]).await;
        assert_eq!(wrong.status(), StatusCode::BAD_REQUEST, "Ivy's request is not about Sam");
        let kit = report_of(&app, &harry, "kit", AccountSource::Local, Grant::default()).await;
        let kits = format!("/console/people/{}", person_id(&app, &kit).await);
        let own = post_from(&console, &app, &kits, &format!("{kits}/attestation"), &[]).await;
        assert_eq!(own.status(), StatusCode::CONFLICT, "Harry is Kit's manager: he cannot vouch to himself");
        let (_, html) = get(&console, &app.url(&record)).await;
        assert!(html.contains("Ask the line manager"), "{html}");
        let asked =
            post_from(&console, &app, &record, &format!("{record}/attestation"), &[("note", "He called from home")])
                .await;
        assert_eq!(asked.status(), StatusCode::SEE_OTHER);
        let to_mona = emails_for(&app, Some(&t.mona.email)).await;
        assert!(to_mona.last().unwrap().0.contains("genuine"), "{to_mona:?}");
        let (status, body) = unlock().await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(body["message"].as_str().unwrap().contains("not answered yet"), "{body}");

        let id: i64 =
            sqlx::query_scalar("SELECT MAX(attestation_id) FROM attestation").fetch_one(app.db.pool()).await.unwrap();
        let question = format!("/team/attestations/{id}");
        // Only Sam's own manager may answer: Ola (a manager, of another team) and Harry (no reports) may not.
        report_of(&app, &t.ola, "oz", AccountSource::Local, Grant::default()).await;
        let olas = app.sign_in(&t.ola).await;
        let (status, _) = get(&olas, &app.url(&question)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "not hers: as if there were no such question");
        let (status, _) = get(&olas, &app.url("/team/attestations/999999")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (_, html) = get(&olas, &app.url("/team/attestations")).await;
        assert!(!html.contains(&question), "{html}");
        let (status, _) = get(&console, &app.url(&question)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "Harry manages Kit, not Sam: not his question");
        let crafted = post_from(&olas, &app, "/team", &question, &[("answer", "confirm")]).await;
        assert_eq!(crafted.status(), StatusCode::NOT_FOUND);

        // Mona declines: the action is blocked.
        let mona = manager_asks.clone();
        let (status, html) = get(&mona, &app.url("/team/attestations")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains(&format!("/team/attestations/{id}")), "{html}");
        let nothing = post_from(&mona, &app, &question, &question, &[]).await;
        assert_eq!(nothing.status(), StatusCode::BAD_REQUEST);
        let declined =
            post_from(&mona, &app, &question, &question, &[("answer", "decline"), ("note", "Not him")]).await;
        assert_eq!(declined.status(), StatusCode::OK);
        let (status, body) = unlock().await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(body["message"].as_str().unwrap().contains("declined"), "{body}");
        let again = post_from(&mona, &app, &question, &question, &[("answer", "confirm")]).await;
        assert_eq!(again.status(), StatusCode::CONFLICT, "answered once");

        // Sam asks for help; Harry asks Mona again, for that request.
        let response = app.post_assistance_json("81.2.69.142", &t.sam.email, "locked_out", "").await;
        let reference = response.json::<serde_json::Value>().await.unwrap()["reference"].as_str().unwrap().to_owned();
        for _ in 0..300 {
            let status: String = sqlx::query_scalar("SELECT status FROM assistance_request WHERE reference = $1")
                .bind(&reference)
                .fetch_one(app.db.pool())
                .await
                .unwrap();
            if status == "open" {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }

        // Mona confirms: the action runs, with her answer as evidence in the audit row and the request's dossier.
        let asked =
            post_from(&console, &app, &record, &format!("{record}/attestation"), &[("reference", &reference)]).await;
        assert_eq!(asked.status(), StatusCode::SEE_OTHER);
        let id: i64 =
            sqlx::query_scalar("SELECT MAX(attestation_id) FROM attestation").fetch_one(app.db.pool()).await.unwrap();
        let question = format!("/team/attestations/{id}");
        let confirmed =
            post_from(&mona, &app, &question, &question, &[("answer", "confirm"), ("note", "Spoke to him")]).await;
        assert_eq!(confirmed.status(), StatusCode::OK);
        // The confirmation is for this request: without it named, the earlier decline is the answer that counts.
        let (status, body) = unlock().await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let (status, body) = unlock_for(Some(&reference)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let details: String = sqlx::query_scalar(
            "SELECT details FROM audit_event WHERE action = 'unlock-person' ORDER BY audit_event_id DESC",
        )
        .fetch_one(app.db.pool())
        .await
        .unwrap();
        assert!(
            details.contains("manager_attestation") && details.contains("mona") && details.contains("Spoke to him"),
            "{details}"
        );
        for action in ["attestation.request", "attestation.decline", "attestation.confirm"] {
            assert!(audited(&app, action).await >= 1, "{action}");
        }
        let (_, html) = get(&console, &app.url(&record)).await;
        assert!(html.contains("confirmed") && html.contains("declined"), "the evidence on the record: {html}");
        let (_, dossier) = get(&console, &app.url(&format!("/console/requests/{reference}"))).await;
        let section = dossier.split("Line manager attestation").nth(1).unwrap_or_default();
        assert!(
            section.contains("confirmed") && section.contains("mona") && section.contains("Spoke to him"),
            "{dossier}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_newer_reset_or_this_wasnt_me_makes_an_unused_secure_link_show_nothing() {
    each_backend(async |app: TestApp| {
        let t = team(&app).await;
        let sam_id = person_id(&app, &t.sam).await;
        let mona = app.sign_in(&t.mona).await;
        let page = format!("/team/people/{sam_id}");
        let reset = async || {
            let done = post_from(&mona, &app, &page, &format!("{page}/reset"), &[("reset", "password")]).await;
            assert_eq!(done.status(), StatusCode::OK);
            let emails = emails_for(&app, Some(&t.mona.email)).await;
            link_in(&emails.iter().rev().find(|(s, _)| s.contains("secure link")).unwrap().1, "/secure-link?token=")
        };
        let first = reset().await;
        let second = reset().await;
        let token = |link: &str| link.split("token=").nth(1).unwrap().to_owned();
        let stale = post_from(&mona, &app, &first, "/secure-link", &[("token", &token(&first))]).await;
        assert_eq!(stale.status(), StatusCode::GONE);
        let html = stale.text().await.unwrap();
        assert!(html.contains("no longer works") && !html.contains("class=\"secret\""), "{html}");

        // Sam reports the reset as not his: the newest link shows nothing either.
        let notice = emails_for(&app, Some(&t.sam.email)).await.pop().unwrap().1;
        let not_me = link_in(&notice, "/not-me?token=");
        let reported = post_from(&browser(), &app, &not_me, "/not-me", &[("token", &token(&not_me))]).await;
        assert!(reported.status().is_success(), "{}", reported.status());
        let (status, html) = get(&browser(), &app.url(&second)).await;
        assert_eq!(status, StatusCode::GONE, "{html}");
        let late = post_from(&mona, &app, &second, "/secure-link", &[("token", &token(&second))]).await;
        assert_eq!(late.status(), StatusCode::GONE);

        // An SSO report has no reset page at all.
        let mut sue = new_person("Test sue", "sue@example.org", "sue");
        sue.manager_email = Some(EmailAddress::parse(&t.mona.email).unwrap());
        sue.source = AccountSource::Sso;
        let (sue, _) = app.state.directory.add_person(system(&app.state, None).await, sue, None).await.unwrap();
        let (status, html) = get(&mona, &app.url(&format!("/team/people/{}", sue.id.0))).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert!(html.contains("single sign-on"), "{html}");
    })
    .await;
}
