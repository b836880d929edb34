//! "Can't sign in?": the public form and API, the durable outbox over real SMTP, the admins' dossier,
//! rate limits, repeats, enumeration resistance and the console queue.

use crate::helpers::*;
use crate::smtp_sink::{SmtpSink, free_port};
use lifeline::config::Settings;
use lifeline::domain::RequestStatus;
use lifeline::store::{AssistanceStore, AuditStore, OutboxStore};
use reqwest::StatusCode;
use std::time::{Duration, Instant};

const LONDON: &str = "81.2.69.142";
const LINKOPING: &str = "89.160.20.112";

fn quick(settings: &mut Settings, smtp: &str) {
    settings.smtp_url = Some(lifeline::config::Redacted(smtp.to_owned()));
    settings.assistance.response_floor_ms = 20;
    settings.outbox.retry_base_seconds = 1;
    settings.outbox.retry_max_seconds = 2;
    // Short, so that after a restart the emails the stopped instance held are free again soon.
    settings.outbox.lease_seconds = 3;
}

fn reference_of(html: &str) -> String {
    html.split("<strong class=\"reference\">").nth(1).and_then(|s| s.split('<').next()).unwrap_or_default().to_owned()
}

async fn wait_until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..300 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Wait until the outbox has nothing left to send and has sent `sent` emails: from then on nothing more can
/// arrive, so a test can count what did without sleeping "long enough".
async fn outbox_settled(app: &TestApp, sent: i64) {
    wait_until(&format!("the outbox to settle at {sent} sent"), async || {
        app.db.outbox_counts().await.ok() == Some((0, sent))
    })
    .await;
}

#[tokio::test]
async fn admins_get_a_dossier_by_real_smtp_that_reads_a_new_country_and_network() {
    let sink = SmtpSink::start().await;
    let url = sink.url();
    each_backend_with(
        |s| quick(s, &url),
        async |app: TestApp| {
            sink.received.lock().map(|mut m| m.clear()).unwrap_or_default();
            let harry = app.add_admin("harry", 1).await;
            let ada = app.add_admin("ada", 3).await;
            app.add_admin("nobody", 0).await; // DPA 0: not notified
            let mut retired = new_person("Retired Admin", "retired@example.org", "retired");
            retired.status = lifeline::domain::PersonStatus::Disabled;
            retired.grant.dpa_level = 3;
            app.add(retired, true).await; // disabled: not notified
            let sam = app.add_person("sam", true).await;
            app.sign_in_from(&sam, LONDON, 0).await;
            app.sign_in_from(&sam, LONDON, 1).await;

            let response = app.post_assistance(LINKOPING, &sam.email, "lost_2fa").await;
            assert_eq!(response.status(), StatusCode::OK);
            let reference = reference_of(&response.text().await.unwrap_or_default());
            assert!(reference.starts_with("AR-"), "{reference}");

            let messages = sink.wait_for(2).await;
            let mut to: Vec<String> = messages.iter().flat_map(|m| m.rcpt.clone()).collect();
            to.sort();
            assert_eq!(to, [ada.email.clone(), harry.email.clone()]);
            let mail = &messages[0];
            assert!(mail.subject().contains(&reference) && mail.subject().contains("Lost 2FA"));
            assert!(mail.message_id().contains('@'));
            let text = mail.text();
            for expected in [
                format!("Reference:        {reference}"),
                format!("Submitted email:  {}", sam.email),
                "Resolved account: Test sam (sam) <sam@example.org>".to_owned(),
                "Request type:     Lost 2FA device or backup codes".to_owned(),
                "Exists and active: yes".to_owned(),
                "Two-factor authentication: enabled".to_owned(),
                "Unused backup codes: 10".to_owned(),
                "Last successful sign-in: ".to_owned(),
                "London, GB — 81.2.69.0/24".to_owned(),
                "Recent failed sign-in attempts: 0 in the last 24 hours".to_owned(),
                "Recovery code last sent: never".to_owned(),
                "2FA last changed: ".to_owned(),
                format!("IP address: {LINKOPING}"),
                "Approximate location: Linköping, SE".to_owned(),
                "This IP used for a successful sign-in before: no".to_owned(),
                "This network used for a successful sign-in before: no".to_owned(),
                "New country: the request comes from SE; successful sign-ins so far came from GB.".to_owned(),
                "New network".to_owned(),
                "Verify the person's identity through a separate channel".to_owned(),
                format!("{}/console/requests/{reference}", app.address),
            ] {
                assert!(text.contains(&expected), "missing {expected:?} in:\n{text}");
            }
            assert!(mail.html().contains("Linköping, SE") && mail.html().contains("New country"));

            // From the familiar address, the same facts read "seen before" and raise no location flag.
            let response = app.post_assistance(LONDON, &sam.email, "forgotten_password").await;
            let second = reference_of(&response.text().await.unwrap_or_default());
            let messages = sink.wait_for(4).await;
            let mail =
                messages.iter().find(|m| m.subject().contains(&second)).unwrap_or_else(|| panic!("second dossier"));
            let text = mail.text();
            assert!(text.contains("This IP used for a successful sign-in before: yes"), "{text}");
            assert!(text.contains("This network used for a successful sign-in before: yes"));
            assert!(!text.contains("New country") && !text.contains("New network"), "{text}");

            // Who was notified is stored and audited.
            let request = app
                .db
                .assistance_request(&reference)
                .await
                .unwrap_or_else(|e| panic!("{e}"))
                .unwrap_or_else(|| panic!("stored"));
            assert_eq!(request.status, RequestStatus::Open);
            assert_eq!(request.notified.as_deref(), Some("ada@example.org, harry@example.org"));
        },
    )
    .await;
}

#[tokio::test]
async fn an_unknown_address_still_reaches_the_admins_as_no_matching_account() {
    let sink = SmtpSink::start().await;
    let url = sink.url();
    each_backend_with(
        |s| quick(s, &url),
        async |app: TestApp| {
            sink.received.lock().map(|mut m| m.clear()).unwrap_or_default();
            app.add_admin("harry", 1).await;
            app.post_assistance(LONDON, "ghost@example.org", "locked_out").await;
            let text = sink.wait_for(1).await[0].text();
            assert!(text.contains("Resolved account: no matching account"), "{text}");
            assert!(text.contains("possibly a typo, or someone probing"));
        },
    )
    .await;
}

#[tokio::test]
async fn with_smtp_down_requests_are_accepted_and_every_email_arrives_once_after_a_restart() {
    for db in databases().await {
        println!("--- on {}", db.label);
        let port = free_port();
        let smtp = format!("smtp://127.0.0.1:{port}");
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut settings = test_settings(dir.path());
        settings.database_url = db.url.clone();
        quick(&mut settings, &smtp);
        let app = spawn_in(dir, settings.clone(), db).await;
        app.add_admin("harry", 1).await;
        app.add_admin("ada", 2).await;
        for i in 0..3 {
            let response = app.post_assistance(LONDON, &format!("person{i}@example.org"), "other").await;
            assert_eq!(response.status(), StatusCode::OK, "accepted while SMTP is down");
        }
        // The emails are queued and have failed at least once.
        wait_until("failed deliveries", async || {
            let (queued, sent) = app.db.outbox_counts().await.unwrap_or((0, 0));
            let tried: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox_email WHERE attempts > 0")
                .fetch_one(app.db.pool())
                .await
                .unwrap_or(0);
            queued == 6 && sent == 0 && tried > 0
        })
        .await;

        // Restart: a new instance on the same database and key file, with the SMTP server up.
        let (db, dir) = app.stop();
        let sink = SmtpSink::start_on(port).await;
        let restarted = spawn_in(dir, settings, db).await;
        sink.wait_for(6).await;
        // Every row marked sent (a row is marked only after its delivery finished): nothing else can come.
        outbox_settled(&restarted, 6).await;
        let messages = sink.messages();
        let mut ids: Vec<String> = messages.iter().map(|m| m.message_id()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!((messages.len(), ids.len()), (6, 6), "every email once");
        assert_eq!(restarted.db.outbox_counts().await.unwrap_or_default(), (0, 6));
    }
}

#[tokio::test]
async fn the_answer_is_the_same_for_known_and_unknown_addresses() {
    each_backend_with(
        |s| {
            s.assistance.response_floor_ms = 300; // well above the work of a submission on a loaded machine
            s.assistance.per_ip.max = 10_000;
            s.assistance.per_email.max = 10_000;
            s.assistance.global.max = 10_000;
            s.assistance.repeat_window_seconds = 1;
        },
        async |app: TestApp| {
            let sam = app.add_person("sam", true).await;
            let normalise = |html: String| html.replace(&reference_of(&html), "AR-XXXX-XXXX");
            let known = app.post_assistance(LONDON, &sam.email, "lost_2fa").await;
            let unknown = app.post_assistance(LONDON, "nobody@example.org", "lost_2fa").await;
            assert_eq!(known.status(), unknown.status());
            for header in ["content-type", "cache-control", "content-security-policy", "x-frame-options"] {
                assert_eq!(known.headers().get(header), unknown.headers().get(header), "{header}");
            }
            assert_eq!(
                normalise(known.text().await.unwrap_or_default()),
                normalise(unknown.text().await.unwrap_or_default())
            );

            // Timing: 200 of each, interleaved, four at a time; medians within 5 ms.
            let time = async |email: String| {
                let client = browser();
                let csrf = app.csrf(&client).await;
                let started = Instant::now();
                let response = client
                    .post(app.url("/assistance"))
                    .form(&[("email", email.as_str()), ("type", "lost_2fa"), ("csrf", csrf.as_str())])
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(response.status(), StatusCode::OK);
                started.elapsed()
            };
            let mut known_times = Vec::new();
            let mut unknown_times = Vec::new();
            for _ in 0..50 {
                let (a, b, c, d, e, f, g, h) = tokio::join!(
                    time(sam.email.clone()),
                    time("nobody@example.org".into()),
                    time(sam.email.clone()),
                    time("nobody@example.org".into()),
                    time(sam.email.clone()),
                    time("nobody@example.org".into()),
                    time(sam.email.clone()),
                    time("nobody@example.org".into()),
                );
                known_times.extend([a, c, e, g]);
                unknown_times.extend([b, d, f, h]);
            }
            let median = |mut v: Vec<Duration>| {
                v.sort();
                v[v.len() / 2]
            };
            let (k, u) = (median(known_times), median(unknown_times));
            let difference = k.abs_diff(u);
            println!("median known {k:?}, unknown {u:?}, difference {difference:?}");
            assert!(difference < Duration::from_millis(5), "medians {k:?} vs {u:?}");
            assert!(k >= Duration::from_millis(300), "the floor holds");
        },
    )
    .await;
}

#[tokio::test]
async fn the_request_over_the_limit_gets_429_sends_nothing_and_the_limit_survives_a_restart() {
    let sink = SmtpSink::start().await;
    let url = sink.url();
    for db in databases().await {
        println!("--- on {}", db.label);
        sink.received.lock().map(|mut m| m.clear()).unwrap_or_default();
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut settings = test_settings(dir.path());
        settings.database_url = db.url.clone();
        quick(&mut settings, &url);
        settings.assistance.per_ip.max = 3;
        let app = spawn_in(dir, settings.clone(), db).await;
        app.add_admin("harry", 1).await;
        for i in 0..3 {
            assert_eq!(
                app.post_assistance(LONDON, &format!("p{i}@example.org"), "other").await.status(),
                StatusCode::OK
            );
        }
        let over = app.post_assistance(LONDON, "p9@example.org", "other").await;
        assert_eq!(over.status(), StatusCode::TOO_MANY_REQUESTS);
        let retry: u64 =
            over.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).unwrap_or(0);
        assert!((1..=900).contains(&retry), "Retry-After {retry}");
        // Another address is not limited by this one's count.
        assert_eq!(app.post_assistance(LINKOPING, "p9@example.org", "other").await.status(), StatusCode::OK);
        sink.wait_for(4).await;
        outbox_settled(&app, 4).await;
        assert_eq!(sink.messages().len(), 4, "nothing sent for the refused request");
        assert!(
            app.db
                .assistance_requests(None, None, 100)
                .await
                .unwrap_or_default()
                .iter()
                .all(|r| r.submitted_email != "p9@example.org" || r.client_ip == LINKOPING)
        );

        let (db, dir) = app.stop();
        let restarted = spawn_in(dir, settings, db).await;
        assert_eq!(
            restarted.post_assistance(LONDON, "p10@example.org", "other").await.status(),
            StatusCode::TOO_MANY_REQUESTS
        );
    }
}

#[tokio::test]
async fn a_repeat_joins_the_open_request_instead_of_emailing_again() {
    let sink = SmtpSink::start().await;
    let url = sink.url();
    each_backend_with(
        |s| quick(s, &url),
        async |app: TestApp| {
            sink.received.lock().map(|mut m| m.clear()).unwrap_or_default();
            app.add_admin("harry", 1).await;
            let sam = app.add_person("sam", true).await;
            let first = reference_of(
                &app.post_assistance(LONDON, &sam.email, "locked_out").await.text().await.unwrap_or_default(),
            );
            sink.wait_for(1).await;
            let second = reference_of(
                &app.post_assistance(LONDON, &sam.email.to_uppercase(), "locked_out")
                    .await
                    .text()
                    .await
                    .unwrap_or_default(),
            );
            assert_ne!(first, second, "every submission gets its own reference");
            wait_until("the repeat to be processed", async || {
                app.db
                    .assistance_request(&second)
                    .await
                    .ok()
                    .flatten()
                    .is_some_and(|r| r.status == RequestStatus::Joined)
            })
            .await;
            outbox_settled(&app, 1).await;
            assert_eq!(sink.messages().len(), 1, "admins were not emailed again");
            let open = app.db.assistance_request(&first).await.unwrap_or_default().unwrap_or_else(|| panic!("open"));
            assert_eq!((open.status, open.repeat_count), (RequestStatus::Open, 1));
            // Another problem type is a request of its own.
            app.post_assistance(LONDON, &sam.email, "lost_2fa").await;
            sink.wait_for(2).await;
        },
    )
    .await;
}

#[tokio::test]
async fn bad_input_gets_a_clear_4xx_writes_nothing_and_sends_nothing() {
    each_backend(async |app: TestApp| {
        let client = browser();
        let cases: [(&str, &str, &str, &str); 5] = [
            ("", "lost_2fa", "", "email: is required"),
            ("not an email", "lost_2fa", "", "email"),
            ("ada@example.org", "hacked", "", "type: must be one of"),
            ("ada@example.org", "", "", "type"),
            ("ada@example.org", "other", &"x".repeat(10 * 1024), "description: must be at most 500"),
        ];
        for (email, problem, description, needle) in cases {
            let response = app
                .post_form(&client, "/assistance", &[("email", email), ("type", problem), ("description", description)])
                .await;
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{needle}");
            let html = response.text().await.unwrap_or_default();
            assert!(html.contains(needle), "{needle}: {html:.300}");
        }
        let api = app.url("/api/v1/assistance-requests");
        let json_cases: Vec<(Option<&str>, String, StatusCode, &str)> = vec![
            (
                Some("application/json"),
                r#"{"email": 5, "type": "lost_2fa"}"#.into(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_fields",
            ),
            (
                Some("application/json"),
                r#"{"email": "a@example.org"}"#.into(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_fields",
            ),
            (
                Some("application/json"),
                r#"{"email": "a@example.org", "type": "other", "extra": 1}"#.into(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_fields",
            ),
            (Some("application/json"), "{not json".into(), StatusCode::BAD_REQUEST, "invalid_json"),
            (
                Some("application/json"),
                r#"{"email": "a@example.org", "type": "nope"}"#.into(),
                StatusCode::BAD_REQUEST,
                "invalid_input",
            ),
            (
                Some("application/json"),
                format!(r#"{{"email": "a@example.org", "type": "other", "description": "{}"}}"#, "y".repeat(10 * 1024)),
                StatusCode::BAD_REQUEST,
                "invalid_input",
            ),
            (
                None,
                r#"{"email": "a@example.org", "type": "other"}"#.into(),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
            ),
            (
                Some("application/json"),
                format!(r#"{{"email": "{}@example.org", "type": "other"}}"#, "z".repeat(1024 * 1024)),
                StatusCode::PAYLOAD_TOO_LARGE,
                "",
            ),
        ];
        for (content_type, body, status, code) in json_cases {
            let mut request = client.post(&api).body(body.clone());
            if let Some(ct) = content_type {
                request = request.header("content-type", ct);
            }
            let response = request.send().await.unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(response.status(), status, "{body:.80}");
            if !code.is_empty() {
                assert_eq!(
                    response.headers().get("content-type").and_then(|v| v.to_str().ok()),
                    Some("application/problem+json")
                );
                let problem: serde_json::Value = response.json().await.unwrap_or_default();
                assert_eq!(problem["code"], code, "{body:.80}");
                assert!(problem["request_id"].as_str().is_some_and(|r| r.len() == 16));
            }
        }
        assert!(app.db.assistance_requests(None, None, 10).await.unwrap_or_default().is_empty());
        let rows: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM assistance_request").fetch_one(app.db.pool()).await.unwrap_or(-1);
        assert_eq!(rows, 0, "no row written");
        assert_eq!(app.db.outbox_counts().await.unwrap_or((-1, -1)), (0, 0), "no email");
    })
    .await;
}

#[tokio::test]
async fn the_json_api_accepts_requests_like_the_form() {
    each_backend_with(
        |s| s.assistance.response_floor_ms = 20,
        async |app: TestApp| {
            let response = browser()
                .post(app.url("/api/v1/assistance-requests"))
                .json(&serde_json::json!({"email": "Sam@Example.org", "type": "other", "description": "new phone"}))
                .send()
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(response.status(), StatusCode::ACCEPTED);
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            let reference = body["reference"].as_str().unwrap_or_default().to_owned();
            assert!(lifeline::domain::ReferenceId::parse(&reference).is_ok(), "{body}");
            let stored =
                app.db.assistance_request(&reference).await.unwrap_or_default().unwrap_or_else(|| panic!("stored"));
            assert_eq!(
                (stored.submitted_email.as_str(), stored.description.as_deref()),
                ("sam@example.org", Some("new phone"))
            );
        },
    )
    .await;
}

#[tokio::test]
async fn the_mail_folder_holds_one_eml_per_message_by_default() {
    each_backend_with(
        |s| s.assistance.response_floor_ms = 20,
        async |app: TestApp| {
            app.add_admin("harry", 1).await;
            app.post_assistance(LONDON, "ghost@example.org", "other").await;
            let dir = app.state.settings().mail_dir.clone();
            wait_until("an .eml file", async || {
                std::fs::read_dir(&dir)
                    .map(|d| d.filter_map(Result::ok).any(|e| e.path().extension().is_some_and(|x| x == "eml")))
                    .unwrap_or(false)
            })
            .await;
            let file = std::fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("{e}"))
                .filter_map(Result::ok)
                .find(|e| e.path().extension().is_some_and(|x| x == "eml"))
                .unwrap_or_else(|| panic!("eml"));
            let bytes = std::fs::read(file.path()).unwrap_or_default();
            let message = mail_parser::MessageParser::default().parse(&bytes).unwrap_or_else(|| panic!("parse"));
            assert!(message.body_text(0).is_some_and(|t| t.contains("no matching account")));
        },
    )
    .await;
}

#[tokio::test]
async fn helpdesk_admins_work_the_queue_in_the_console() {
    let sink = SmtpSink::start().await;
    let url = sink.url();
    each_backend_with(
        |s| quick(s, &url),
        async |app: TestApp| {
            let harry = app.add_admin("harry", 1).await;
            let staff = app.add_person("sam", true).await;
            let reference = reference_of(
                &app.post_assistance(LINKOPING, &staff.email, "lost_2fa").await.text().await.unwrap_or_default(),
            );
            wait_until("processing", async || {
                app.db
                    .assistance_request(&reference)
                    .await
                    .ok()
                    .flatten()
                    .is_some_and(|r| r.status == RequestStatus::Open)
            })
            .await;

            // Strangers are sent to sign in; people without the permission are refused.
            assert_eq!(
                location(&browser().get(app.url("/console/requests")).send().await.unwrap_or_else(|e| panic!("{e}"))),
                "/signin"
            );
            let sam = app.sign_in_from(&staff, LONDON, 0).await;
            assert_eq!(
                sam.get(app.url("/console/requests")).send().await.map(|r| r.status()).ok(),
                Some(StatusCode::FORBIDDEN)
            );

            let admin = app.sign_in_from(&harry, LONDON, 0).await;
            let home =
                admin.get(app.url("/")).send().await.unwrap_or_else(|e| panic!("{e}")).text().await.unwrap_or_default();
            assert!(home.contains("href=\"/console/requests\""), "admins find the queue from their account page");
            let staff_home =
                sam.get(app.url("/")).send().await.unwrap_or_else(|e| panic!("{e}")).text().await.unwrap_or_default();
            assert!(!staff_home.contains("/console/requests"));
            let list = admin
                .get(app.url("/console/requests?status=open&type=lost_2fa"))
                .send()
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(list.status(), StatusCode::OK);
            assert!(list.text().await.unwrap_or_default().contains(&reference));
            let other_filter = admin
                .get(app.url("/console/requests?type=other&status=%zz"))
                .send()
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(!other_filter.text().await.unwrap_or_default().contains(&reference));

            let detail = admin
                .get(app.url(&format!("/console/requests/{reference}")))
                .send()
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let html = detail.text().await.unwrap_or_default();
            assert!(
                html.contains("Linköping, SE")
                    && html.contains("No successful sign-in on record")
                    && html.contains("harry@example.org"),
                "{html}"
            );
            assert_eq!(
                admin.get(app.url("/console/requests/AR-0000-0000")).send().await.map(|r| r.status()).ok(),
                Some(StatusCode::NOT_FOUND)
            );

            let csrf = csrf_of(&html);
            let close = |decision: &'static str, note: &'static str| {
                let (admin, csrf, url) =
                    (admin.clone(), csrf.clone(), app.url(&format!("/console/requests/{reference}/close")));
                async move {
                    admin
                        .post(url)
                        .form(&[("decision", decision), ("note", note), ("csrf", csrf.as_str())])
                        .send()
                        .await
                        .unwrap_or_else(|e| panic!("{e}"))
                }
            };
            // A blank note comes back on the request's own page, with the choice kept, to correct.
            let blank = close("resolve", "   ").await;
            assert_eq!(blank.status(), StatusCode::BAD_REQUEST);
            let blank = blank.text().await.unwrap_or_default();
            assert!(blank.contains("Write a note of 1 to 2000 characters") && blank.contains("Close the request"));
            assert!(blank.contains(r#"value="resolve" required checked"#), "the decision is kept");
            assert!(blank.contains("Verify the person"), "the dossier is still there");
            assert_eq!(close("explode", "x").await.status(), StatusCode::BAD_REQUEST);
            let done = close("resolve", "Called the number on file; sent recovery code.").await;
            assert_eq!(location(&done), format!("/console/requests/{reference}"));
            assert_eq!(close("dismiss", "again").await.status(), StatusCode::CONFLICT);
            let closed =
                app.db.assistance_request(&reference).await.unwrap_or_default().unwrap_or_else(|| panic!("request"));
            assert_eq!(closed.status, RequestStatus::Resolved);
            assert_eq!(closed.closed_by.as_deref(), Some(format!("account:{}:harry", harry.account_id).as_str()));

            // Received, opened (with who was notified), resolved: all in the audit log.
            let records = app.db.audit_records(0, 1000).await.unwrap_or_default();
            let trail: Vec<(&str, &str)> = records
                .iter()
                .filter(|r| r.entry.reference.as_deref() == Some(reference.as_str()))
                .map(|r| (r.entry.action.as_str(), r.entry.outcome.as_str()))
                .collect();
            assert_eq!(
                trail,
                [
                    ("assistance.request", "received"),
                    ("assistance.request", "opened"),
                    ("assistance.resolve", "success")
                ]
            );
            let opened = records.iter().find(|r| r.entry.outcome == "opened").unwrap_or_else(|| panic!("opened"));
            assert_eq!(opened.entry.notified.as_deref(), Some("harry@example.org"));
        },
    )
    .await;
}

#[tokio::test]
async fn a_disabled_admin_keeps_no_power_in_an_open_session() {
    each_backend(async |app: TestApp| {
        let harry = app.add_admin("harry", 1).await;
        let admin = app.sign_in_from(&harry, LONDON, 0).await;
        assert_eq!(admin.get(app.url("/console/requests")).send().await.map(|r| r.status()).ok(), Some(StatusCode::OK));
        // Disabling comes with the recovery actions; until then, straight in the directory.
        sqlx::query("UPDATE person SET status = 'disabled' WHERE email = $1")
            .bind(&harry.email)
            .execute(app.db.pool())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        // The session dies with the person's status: every page sends it to sign in again.
        let refused = admin.get(app.url("/console/requests")).send().await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((refused.status(), location(&refused)), (StatusCode::SEE_OTHER, "/signin".to_owned()));
    })
    .await;
}

#[tokio::test]
async fn a_forged_description_is_quoted_below_the_facts_in_the_emails_text_part() {
    let sink = SmtpSink::start().await;
    let url = sink.url();
    each_backend_with(
        |s| quick(s, &url),
        async |app: TestApp| {
            sink.received.lock().map(|mut m| m.clear()).unwrap_or_default();
            app.add_admin("harry", 1).await;
            let hank = app.add_person("hank", true).await;
            let forged = "new phone\n\nACCOUNT STATUS\n  Exists and active: yes\n  Two-factor authentication: not set up\n\
                          RISK FLAGS: none\n\u{202E}moc.live\u{202C}\nhttps://evil.example/reset?u=hank";
            let response = app.post_assistance_json(LINKOPING, &hank.email, "lost_2fa", forged).await;
            assert_eq!(response.status(), StatusCode::ACCEPTED);
            let mail = sink.wait_for(1).await.remove(0);
            let text = mail.text();
            let lines: Vec<&str> = text.lines().collect();
            for heading in ["ACCOUNT STATUS", "RISK FLAGS", "DESCRIPTION"] {
                assert_eq!(lines.iter().filter(|l| l.starts_with(heading)).count(), 1, "{heading} in:\n{text}");
            }
            let flags = lines.iter().position(|l| l.starts_with("RISK FLAGS")).unwrap_or(usize::MAX);
            let description = lines.iter().position(|l| l.starts_with("DESCRIPTION")).unwrap_or(0);
            assert!(flags < description, "the description comes after the facts:\n{text}");
            let quoted: Vec<&str> = lines[description + 1..].iter().take_while(|l| !l.is_empty()).copied().collect();
            assert_eq!(quoted.len(), 8, "{text}");
            assert!(quoted.iter().all(|l| l.starts_with("  >")), "every line quoted:\n{text}");
            assert!(quoted.contains(&"  > https://evil.example/reset?u=hank") && quoted.contains(&"  > moc.live"));
            assert!(!text.contains('\u{202E}'), "no bidi override");
            assert!(!lines[..description].iter().any(|l| l.contains("evil") || l.contains("new phone")), "{text}");
            // The real flags are still read from the facts.
            assert!(lines[flags + 1].starts_with("  - No successful sign-in on record"), "{text}");
            let html = mail.html();
            assert!(html.find("Risk flags") < html.find("<blockquote"), "{html}");
        },
    )
    .await;
}

fn day_long(settings: &mut Settings, per_ip: u32, per_email: u32, global: u32) {
    use lifeline::policy::rate_limit::RateLimit;
    settings.assistance.response_floor_ms = 10;
    // Day-long windows, so that no window ends in the middle of a test.
    settings.assistance.per_ip = RateLimit { max: per_ip, window_seconds: 86_400 };
    settings.assistance.per_email = RateLimit { max: per_email, window_seconds: 86_400 };
    settings.assistance.global = RateLimit { max: global, window_seconds: 86_400 };
}

#[tokio::test]
async fn refused_requests_charge_no_bucket() {
    each_backend_with(
        |s| day_long(s, 3, 3, 20),
        async |app: TestApp| {
            const FLOODER: &str = "175.16.199.10";
            for i in 0..3 {
                let response = app.post_assistance_json(FLOODER, &format!("p{i}@example.org"), "other", "").await;
                assert_eq!(response.status(), StatusCode::ACCEPTED);
            }
            // The flooder's budget is spent; 40 more, each naming the victim, are refused.
            for _ in 0..40 {
                let response = app.post_assistance_json(FLOODER, "victim@example.org", "locked_out", "").await;
                assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
            }
            // Neither the global budget (20) nor the victim's (3) paid for them.
            let other = app.post_assistance_json(LONDON, "other@example.org", "other", "").await;
            assert_eq!(other.status(), StatusCode::ACCEPTED, "another client asking about another address");
            for _ in 0..3 {
                let own = app.post_assistance_json(LINKOPING, "victim@example.org", "locked_out", "").await;
                assert_eq!(own.status(), StatusCode::ACCEPTED, "the victim asking for themself");
            }
            let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM assistance_request")
                .fetch_one(app.db.pool())
                .await
                .unwrap_or(-1);
            assert_eq!(rows, 7, "refused requests are not stored");
        },
    )
    .await;
}

#[tokio::test]
async fn thirty_ipv6_addresses_of_one_64_share_one_bucket() {
    each_backend_with(
        |s| day_long(s, 5, 100, 1000),
        async |app: TestApp| {
            let mut accepted = 0;
            for i in 1..=30 {
                let ip = format!("2001:db8:1:2:{i:x}::{:x}", (i * 7919) % 0xffff);
                let response = app.post_assistance_json(&ip, &format!("p{i}@example.org"), "other", "").await;
                match response.status() {
                    StatusCode::ACCEPTED => accepted += 1,
                    status => assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{ip}"),
                }
            }
            assert_eq!(accepted, 5, "one /64 is one client");
            let next_door = app.post_assistance_json("2001:db8:1:3::1", "p31@example.org", "other", "").await;
            assert_eq!(next_door.status(), StatusCode::ACCEPTED, "another /64 is another client");
        },
    )
    .await;
}

#[tokio::test]
async fn a_repeat_from_elsewhere_keeps_both_submissions_emails_an_update_and_every_reference_shows_its_state() {
    let sink = SmtpSink::start().await;
    let url = sink.url();
    each_backend_with(
        |s| quick(s, &url),
        async |app: TestApp| {
            sink.received.lock().map(|mut m| m.clear()).unwrap_or_default();
            let harry = app.add_admin("harry", 1).await;
            let hank = app.add_person("hank", true).await;
            app.sign_in_from(&hank, LONDON, 0).await;

            // Someone asks about Hank first, from Sweden; Hank asks himself a moment later, from home.
            let claim = "Hank here, new number: call +46 70 000 00 00";
            let attacker = app.post_assistance_json(LINKOPING, &hank.email, "locked_out", claim).await;
            let first = json_reference(attacker).await;
            sink.wait_for(1).await;
            let truth = "I did not ask before; my number is the one on file";
            let own = app.post_assistance_json(LONDON, &hank.email, "locked_out", truth).await;
            let second = json_reference(own).await;

            let messages = sink.wait_for(2).await;
            let update =
                messages.iter().find(|m| m.subject().contains("asked again")).unwrap_or_else(|| panic!("no update"));
            assert!(update.subject().contains(&first), "{}", update.subject());
            let text = update.text();
            for expected in [
                format!("UPDATE: {second} asks again for what open request {first} asks"),
                "EVERY SUBMISSION OF THIS REQUEST (2, oldest first)".to_owned(),
                format!("1. {first}, "),
                format!("2. {second}, "),
                format!("IP address: {LINKOPING}"),
                format!("IP address: {LONDON}"),
                "Approximate location: Linköping, SE".to_owned(),
                "Approximate location: London, GB".to_owned(),
                "This IP used for a successful sign-in before: yes".to_owned(),
                "> Hank here, new number: call +46 70 000 00 00".to_owned(),
                "> I did not ask before; my number is the one on file".to_owned(),
                format!("/console/requests/{first}"),
            ] {
                assert!(text.contains(&expected), "missing {expected:?} in:\n{text}");
            }
            assert!(update.html().contains("I did not ask before") && update.html().contains("Hank here"));

            // A third from home again is nothing new: joined, and no email (counted in the outbox, where
            // an email would be written in the same transaction as the join).
            let third = json_reference(app.post_assistance_json(LONDON, &hank.email, "locked_out", "").await).await;
            wait_until("the third to join", async || {
                app.db.assistance_request(&third).await.ok().flatten().is_some_and(|r| r.status == RequestStatus::Joined)
            })
            .await;
            let (queued, sent) = app.db.outbox_counts().await.unwrap_or_default();
            assert_eq!(queued + sent, 2, "one dossier and one update");

            // The console shows every submission on the request, and Hank's reference leads to it.
            let admin = app.sign_in_from(&harry, LONDON, 1).await;
            let page = |reference: String| {
                let admin = admin.clone();
                let url = app.url(&format!("/console/requests/{reference}"));
                async move { admin.get(url).send().await.unwrap_or_else(|e| panic!("{e}")).text().await.unwrap_or_default() }
            };
            let open = page(first.clone()).await;
            let every = "Every submission of this request (3";
            for expected in ["Hank here, new number", "I did not ask before", LINKOPING, LONDON, &second, &third, every] {
                assert!(open.contains(expected), "missing {expected:?} in:\n{open}");
            }
            let joined = page(second.clone()).await;
            assert!(!joined.contains("still being processed"), "{joined}");
            let banner = format!("This submission repeats request <a href=\"/console/requests/{first}\">{first}</a>");
            assert!(joined.contains(&banner), "{joined}");
            assert!(joined.contains("I did not ask before") && joined.contains("<strong>Open</strong>"), "{joined}");

            // The person holding the reference sees the state of the request it belongs to.
            let state = |reference: String| {
                let url = app.url(&format!("/api/v1/assistance-requests/{reference}"));
                async move {
                    let response = browser().get(url).send().await.unwrap_or_else(|e| panic!("{e}"));
                    assert_eq!(response.status(), StatusCode::OK);
                    response.json::<serde_json::Value>().await.unwrap_or_default()
                }
            };
            let hanks = state(second.clone()).await;
            assert_eq!((hanks["status"].as_str(), hanks["joined"].as_bool()), (Some("open"), Some(true)));
            let status_url = app.url(&format!("/assistance/status?reference={}", second.to_lowercase()));
            let status_page = browser().get(status_url).send().await.unwrap_or_else(|e| panic!("{e}"));
            let status_page = status_page.text().await.unwrap_or_default();
            assert!(status_page.contains("with the administrators") && status_page.contains("was added to it"), "{status_page}");
            let unknown = browser().get(app.url("/api/v1/assistance-requests/AR-2222-2222")).send().await;
            let unknown = unknown.unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(unknown.status(), StatusCode::NOT_FOUND);

            let system = system(&app.state, None).await;
            assert!(app.state.assistance.close(system, &first, false, "Not Hank; called him.").await.unwrap_or(false));
            let closed = state(second.clone()).await;
            let closed = (closed["status"].as_str(), closed["joined"].as_bool());
            assert_eq!(closed, (Some("closed"), Some(true)));
            assert_eq!(state(first.clone()).await["status"], "closed");
        },
    )
    .await;
}

/// Every email the outbox holds (queued or sent): (subject, text).
async fn outbox(app: &TestApp) -> Vec<(String, String)> {
    emails_for(app, None).await
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_one(app.db.pool()).await.unwrap_or_else(|e| panic!("{sql}: {e}"))
}

#[tokio::test]
async fn a_flood_reaches_the_admins_as_one_digest_per_interval_and_every_request_reaches_the_queue() {
    // Ten seconds into a minute, so that the whole flood falls into one interval.
    let start = 1_900_000_000 - 1_900_000_000 % 60 + 10;
    each_backend_with_clock(
        start,
        |s| {
            day_long(s, 1000, 1000, 1000);
            s.assistance.digest.individual_per_interval = 5;
            s.assistance.digest.interval_seconds = 60;
        },
        async |app: TestApp, clock| {
            app.add_admin("harry", 1).await;
            app.add_admin("ada", 3).await;
            let processed = async |n: i64| {
                wait_until("processing", async || {
                    count(&app, "SELECT COUNT(*) FROM assistance_request WHERE status <> 'received'").await == n
                })
                .await
            };

            // 100 requests "in the same second", ten at a time.
            let mut references = Vec::new();
            for batch in 0..10 {
                let requests = (0..10).map(|i| {
                    let n = batch * 10 + i;
                    let app = &app;
                    async move {
                        let ip = format!("10.9.{}.{}", n / 200, n % 200 + 1);
                        json_reference(app.post_assistance_json(&ip, &format!("p{n}@example.org"), "other", "").await)
                            .await
                    }
                });
                references.extend(futures::future::join_all(requests).await);
            }
            processed(100).await;
            // The first five went out one by one (to two admins); the other 95 wait for the digest.
            let singles = outbox(&app).await;
            assert_eq!(singles.len(), 10, "{:?}", singles.iter().map(|(s, _)| s).collect::<Vec<_>>());
            assert!(singles.iter().all(|(subject, _)| subject.starts_with("Access assistance request AR-")));
            assert_eq!(
                count(&app, "SELECT COUNT(*) FROM assistance_request WHERE digest_due_at IS NOT NULL").await,
                95
            );

            // The interval ends: one digest per admin, covering the 95.
            clock.advance(60);
            app.state.assistance.wake_processor.notify_one();
            wait_until("the digest", async || outbox(&app).await.len() == 12).await;
            let emails = outbox(&app).await;
            let digests = &emails[10..];
            for (subject, text) in digests {
                assert_eq!(subject, "Access assistance digest: 95 requests during a flood");
                assert!(text.starts_with("DIGEST of 95 access assistance requests"), "{text}");
                assert!(text.contains("This is a digest, not a single request."), "{text}");
                assert!(text.contains("more than 5 in 1 minute"), "{text}");
            }
            let emailed_alone: Vec<&String> =
                references.iter().filter(|r| singles.iter().any(|(s, _)| s.contains(r.as_str()))).collect();
            assert_eq!(emailed_alone.len(), 5);
            for reference in references.iter().filter(|r| !emailed_alone.contains(r)) {
                assert!(digests[0].1.contains(&format!("{reference}, ")), "{reference} listed in the digest");
            }
            // Every request is in the queue, and nothing is left waiting to be sent.
            assert_eq!(
                app.state
                    .assistance
                    .list(&system(&app.state, None).await, Some(RequestStatus::Open), "")
                    .await
                    .unwrap_or_default()
                    .len(),
                100
            );
            assert_eq!(count(&app, "SELECT COUNT(*) FROM assistance_request WHERE digest_due_at IS NOT NULL").await, 0);
            let digest_audits = app
                .db
                .audit_records(0, 10_000)
                .await
                .unwrap_or_default()
                .into_iter()
                .filter(|r| r.entry.action == "assistance.digest")
                .count();
            assert_eq!(digest_audits, 1);

            // The next interval follows a flood: still a digest, even for a single request.
            app.post_assistance_json(LONDON, "late@example.org", "other", "").await;
            processed(101).await;
            assert_eq!(outbox(&app).await.len(), 12, "no single email right after a flood");
            clock.advance(60);
            app.state.assistance.wake_processor.notify_one();
            wait_until("the second digest", async || outbox(&app).await.len() == 14).await;
            assert_eq!(outbox(&app).await[13].0, "Access assistance digest: 1 request during a flood");

            // After a quiet interval, requests are emailed one by one again.
            clock.advance(120);
            app.post_assistance_json(LINKOPING, "calm@example.org", "other", "").await;
            processed(102).await;
            wait_until("a single email", async || outbox(&app).await.len() == 16).await;
            assert!(outbox(&app).await[15].0.starts_with("Access assistance request AR-"));
        },
    )
    .await;
}

#[tokio::test]
async fn the_dossier_says_when_the_source_asked_for_others_and_the_failures_came_from_it() {
    let sink = SmtpSink::start().await;
    let url = sink.url();
    each_backend_with(
        |s| quick(s, &url),
        async |app: TestApp| {
            sink.received.lock().map(|mut m| m.clear()).unwrap_or_default();
            app.add_admin("harry", 1).await;
            let hank = app.add_person("hank", true).await;
            app.sign_in_from(&hank, LONDON, 0).await;
            // Someone in Linköping guesses Hank's password, asks about a colleague, then about Hank.
            for _ in 0..3 {
                let guess = [("login", hank.username.as_str()), ("password", "wrong-password-entirely")];
                let response = app.post_form_from(&browser(), LINKOPING, "/signin", &guess).await;
                assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
            }
            app.post_assistance_json(LINKOPING, "colleague@example.org", "lost_2fa", "").await;
            sink.wait_for(1).await;
            let reference =
                json_reference(app.post_assistance_json(LINKOPING, &hank.email, "lost_2fa", "").await).await;
            let messages = sink.wait_for(2).await;
            let mail =
                messages.iter().find(|m| m.subject().contains(&reference)).unwrap_or_else(|| panic!("Hank's dossier"));
            let text = mail.text();
            for expected in [
                format!(
                    "Same source, other people: this IP ({LINKOPING}) also asked about 1 other address in the last 24 \
                     hours (colleague@example.org)."
                ),
                "The failed sign-ins came from where the request comes from: 3 from this IP, of 3 in the last 7 days, \
                 on a network this person has never signed in from."
                    .to_owned(),
                "Burst of failures: 3 failed sign-in attempts in the last 24 hours, 3 of them from networks or devices \
                 this person has never signed in with"
                    .to_owned(),
                "Other addresses asked about from this IP or network in the last 24 hours: 1 from this IP".to_owned(),
            ] {
                assert!(text.contains(&expected), "missing {expected:?} in:\n{text}");
            }
        },
    )
    .await;
}
