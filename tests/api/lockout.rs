//! Lockout under attack: parallel guesses cannot outrun the lock, a locked account is no password oracle,
//! one address cannot spray guesses or lock people out for good, and an operator can always unlock.

use crate::helpers::*;
use lifeline::domain::AccountId;
use lifeline::policy::rate_limit::RateLimit;
use reqwest::StatusCode;
use sqlx::Row;
use std::time::Duration;

/// How many sign-in events of `outcome` the account has: a `bad_password` event is a guess that was
/// actually checked against the password.
pub async fn events(app: &TestApp, account: AccountId, outcome: &str) -> i64 {
    sqlx::query("SELECT COUNT(*) AS n FROM sign_in_event WHERE account_id = $1 AND outcome = $2")
        .bind(account.0)
        .bind(outcome)
        .fetch_one(app.db.pool())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .get::<i64, _>("n")
}

async fn sessions(app: &TestApp, account: AccountId) -> i64 {
    sqlx::query("SELECT COUNT(*) AS n FROM web_session WHERE account_id = $1")
        .bind(account.0)
        .fetch_one(app.db.pool())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .get::<i64, _>("n")
}

/// `n` wrong passwords for `person`, one after the other, each from a fresh browser.
async fn wrong_passwords(app: &TestApp, person: &Person, n: usize) {
    for _ in 0..n {
        app.post_sign_in(&browser(), &person.username, "wrong-password-entirely").await;
    }
}

async fn failed_attempts(app: &TestApp, account: AccountId) -> u32 {
    app.db.account(account).await.unwrap_or_else(|e| panic!("{e}")).map(|a| a.failed_attempts).unwrap_or(0)
}

use lifeline::store::DirectoryStore;

#[tokio::test]
async fn a_hundred_parallel_guesses_and_then_the_right_password_evaluate_at_most_the_limit() {
    each_backend(async |app: TestApp| {
        let ada = app.add_person("ada", true).await;
        let guesses: Vec<_> = (0..100)
            .map(|i| {
                let (address, login) = (app.address.clone(), ada.username.clone());
                tokio::spawn(async move {
                    let client = browser();
                    let html = client.get(format!("{address}/signin")).send().await.ok()?.text().await.ok()?;
                    let form = [("login", login), ("password", format!("wrong-guess-{i}")), ("csrf", csrf_of(&html))];
                    client.post(format!("{address}/signin")).form(&form).send().await.ok().map(|r| r.status())
                })
            })
            .collect();
        // The right password arrives while the guesses are still in flight, once the limit is taken.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while failed_attempts(&app, ada.account_id).await < 5 {
            assert!(std::time::Instant::now() < deadline, "the guesses never reached the limit");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let right = app.post_sign_in(&browser(), &ada.username, &ada.password).await;
        // Refused (401), or — when the hashing queue is full on a loaded machine — "busy" (503): never in.
        let refused =
            |s: Option<StatusCode>| matches!(s, Some(StatusCode::UNAUTHORIZED | StatusCode::SERVICE_UNAVAILABLE));
        assert!(refused(Some(right.status())), "the right password does not get through: {}", right.status());
        let mut busy = 0;
        for guess in guesses {
            let status = guess.await.unwrap_or_else(|e| panic!("{e}"));
            assert!(refused(status), "{status:?}");
            busy += usize::from(status == Some(StatusCode::SERVICE_UNAVAILABLE));
        }
        // At most the limit is ever checked. A guess the hashing queue turned away (503, on a loaded machine)
        // was not checked and gave its attempt back; without one, exactly the limit was checked and locked.
        let checked = events(&app, ada.account_id, "bad_password").await;
        assert!(checked <= 5, "{checked} guesses were checked: more than the limit");
        assert_eq!(sessions(&app, ada.account_id).await, 0, "no session of any stage exists");
        if busy == 0 {
            assert_eq!(checked, 5, "exactly the limit was checked");
            let account = &app.person_json(&ada.email).await["accounts"][0];
            assert_eq!((account["locked"].as_bool(), account["failed_attempts"].as_u64()), (Some(true), Some(5)));
        }
    })
    .await;
}

#[tokio::test]
async fn on_a_locked_account_the_right_and_a_wrong_password_get_the_same_bytes_in_the_same_time() {
    each_backend_with(
        |s| s.policy.failed_sign_in_floor_ms = 300,
        async |app: TestApp| {
            let ada = app.add_person("ada", true).await;
            wrong_passwords(&app, &ada, 5).await;
            assert_eq!(app.person_json(&ada.email).await["accounts"][0]["locked"], true);
            let client = browser();
            let csrf = app.csrf(&client).await;
            let attempt = async |password: &str| {
                let started = std::time::Instant::now();
                let response = client
                    .post(app.url("/signin"))
                    .form(&[("login", ada.username.as_str()), ("password", password), ("csrf", csrf.as_str())])
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
                let status = response.status();
                let body = response.bytes().await.unwrap_or_default();
                (status, body, started.elapsed())
            };
            let (mut right, mut wrong) = (Vec::new(), Vec::new());
            let mut bodies = std::collections::HashSet::new();
            // 100 of each, interleaved, a pair at a time.
            for _ in 0..100 {
                let ((rs, rb, rt), (ws, wb, wt)) = tokio::join!(attempt(&ada.password), attempt("a-wrong-guess"));
                assert_eq!((rs, ws), (StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED));
                bodies.insert(rb);
                bodies.insert(wb);
                right.push(rt);
                wrong.push(wt);
            }
            assert_eq!(bodies.len(), 1, "one answer, byte for byte, whatever the password");
            let median = |mut v: Vec<Duration>| {
                v.sort();
                v[v.len() / 2]
            };
            let (r, w) = (median(right), median(wrong));
            println!("locked account: median right password {r:?}, wrong password {w:?}");
            assert!(r.abs_diff(w) < Duration::from_millis(5), "medians {r:?} vs {w:?}");
            assert_eq!(events(&app, ada.account_id, "bad_password").await, 5, "no guess was checked after the lock");
            assert_eq!(app.person_json(&ada.email).await["accounts"][0]["failed_attempts"], 5);
        },
    )
    .await;
}

#[tokio::test]
async fn a_spray_from_one_address_is_throttled_long_before_a_hundred_and_ipv6_counts_per_64() {
    each_backend_with(
        |s| s.lockout.per_client = RateLimit { max: 20, window_seconds: 600 },
        async |app: TestApp| {
            for n in 0..10 {
                app.add_person(&format!("user{n}"), true).await;
            }
            let client = browser();
            let mut first_throttled = None;
            for attempt in 1..=100 {
                let login = format!("user{}", attempt % 10);
                let response = app
                    .post_form_from(&client, "89.160.20.112", "/signin", &[("login", &login), ("password", "x")])
                    .await;
                if response.status() == StatusCode::TOO_MANY_REQUESTS {
                    let retry: u64 = response
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse().ok())
                        .unwrap_or_else(|| panic!("429 without Retry-After"));
                    assert!((1..=600).contains(&retry));
                    assert!(response.text().await.unwrap_or_default().contains("Too many failed sign-ins"));
                    first_throttled = Some(attempt);
                    break;
                }
                assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
            }
            assert_eq!(first_throttled, Some(21), "the 21st failure from one address is refused");
            // Nobody was locked by the spray (two failures each), and another address is not affected.
            let other = app.post_form_from(&client, "81.2.69.142", "/signin", &[("login", "user1"), ("password", "x")]);
            assert_eq!(other.await.status(), StatusCode::UNAUTHORIZED);

            // Twenty-one addresses of one IPv6 /64 are one client.
            let app = &app;
            let statuses: Vec<StatusCode> = futures::future::join_all((0..21).map(|i| {
                let ip = format!("2001:db8:1:2::{:x}", i + 1);
                let client = &client;
                async move {
                    app.post_form_from(client, &ip, "/signin", &[("login", "user2"), ("password", "x")]).await.status()
                }
            }))
            .await;
            let refused = statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
            assert_eq!(refused, 1, "{statuses:?}");
        },
    )
    .await;
}

#[tokio::test]
async fn failures_after_the_first_two_wait_longer_each_time_and_a_right_password_too_soon_is_not_checked() {
    each_backend_with(
        |s| s.lockout.delay_base_seconds = 5,
        async |app: TestApp| {
            let ada = app.add_person("ada", true).await;
            wrong_passwords(&app, &ada, 2).await;
            // Too soon: not evaluated, not counted, the one answer.
            let early = app.post_sign_in(&browser(), &ada.username, &ada.password).await;
            assert!(early.text().await.unwrap_or_default().contains(INVALID));
            assert_eq!(events(&app, ada.account_id, "delayed").await, 1);
            assert_eq!(failed_attempts(&app, ada.account_id).await, 2);
            // Five seconds later the right password goes through, and a quick second factor is not delayed.
            app.clock.advance(5);
            let client = browser();
            assert_eq!(location(&app.post_sign_in(&client, &ada.username, &ada.password).await), "/signin/mfa");
            let secret = ada.totp.as_ref().unwrap_or_else(|| panic!("totp"));
            let now = app.clock.now();
            let response = app.post_code(&client, &lifeline::totp::code_at(secret, now)).await;
            assert_eq!(location(&response), "/");
            assert_eq!(failed_attempts(&app, ada.account_id).await, 0);

            // Two wrong codes, then a quick third try: told to wait, not thrown out of the sign-in.
            let client = browser();
            app.clock.advance(60);
            assert_eq!(location(&app.post_sign_in(&client, &ada.username, &ada.password).await), "/signin/mfa");
            for _ in 0..2 {
                assert_eq!(app.post_code(&client, "000000").await.status(), StatusCode::UNAUTHORIZED);
            }
            let soon = app.post_code(&client, &lifeline::totp::code_at(secret, app.clock.now())).await;
            assert_eq!(soon.status(), StatusCode::TOO_MANY_REQUESTS);
            assert!(soon.text().await.unwrap_or_default().contains("seconds, then try again"));
            app.clock.advance(5);
            let code = lifeline::totp::code_at(secret, app.clock.now() + 30);
            assert_eq!(location(&app.post_code(&client, &code).await), "/");
        },
    )
    .await;
}

#[tokio::test]
async fn a_lock_by_strangers_ends_by_itself_and_comes_back_longer() {
    each_backend(async |app: TestApp| {
        let ada = app.add_person("ada", true).await;
        wrong_passwords(&app, &ada, 5).await;
        let account = &app.person_json(&ada.email).await["accounts"][0];
        assert_eq!(account["locked"], true);
        assert!(account["locked_until"].as_str().is_some(), "the default lock is temporary: {account}");
        // (A few real seconds pass during the test, so "just before the end" is some seconds before it.)
        app.clock.advance(290);
        assert!(
            app.post_sign_in(&browser(), &ada.username, &ada.password)
                .await
                .text()
                .await
                .unwrap_or_default()
                .contains(INVALID)
        );
        app.clock.advance(10);
        let client = browser();
        assert_eq!(location(&app.post_sign_in(&client, &ada.username, &ada.password).await), "/signin/mfa");

        // Five more failures lock it again, for twice as long.
        wrong_passwords(&app, &ada, 5).await;
        let account = &app.person_json(&ada.email).await["accounts"][0];
        assert_eq!(account["locked"], true, "{account}");
        app.clock.advance(300);
        assert!(
            app.post_sign_in(&browser(), &ada.username, &ada.password)
                .await
                .text()
                .await
                .unwrap_or_default()
                .contains(INVALID)
        );
        app.clock.advance(300);
        assert_eq!(location(&app.post_sign_in(&browser(), &ada.username, &ada.password).await), "/signin/mfa");
    })
    .await;
}

#[tokio::test]
async fn an_operator_unlocks_from_the_command_line_with_a_reason_that_is_audited() {
    each_backend_with(
        |s| s.lockout.temporary_lock_seconds = Some(0),
        async |app: TestApp| {
            let ada = app.add_person("ada", true).await;
            wrong_passwords(&app, &ada, 5).await;
            let account = &app.person_json(&ada.email).await["accounts"][0];
            assert_eq!((account["locked"].as_bool(), account["locked_until"].as_str()), (Some(true), None));

            let run = |args: &[&str]| run_lifeline(app.dir(), &app.db_url(), args, "", &[]);
            let missing = run(&["person", "unlock", &ada.email]);
            assert_eq!(missing.status.code(), Some(2), "--reason is required: {}", stderr(&missing));
            let short = run(&["person", "unlock", &ada.email, "--reason", " x "]);
            assert_eq!(short.status.code(), Some(1));
            assert!(stderr(&short).contains("reason: must be 3 to 500 characters"), "{}", stderr(&short));
            let unknown = run(&["person", "unlock", "nobody@example.org", "--reason", "called back"]);
            assert_eq!(unknown.status.code(), Some(1));
            assert!(stderr(&unknown).contains("no person with email nobody@example.org"));

            let done = run(&["person", "unlock", &ada.email, "--reason", "called back on the number on file"]);
            assert!(done.status.success(), "{}", stderr(&done));
            assert!(stdout(&done).contains("Unlocked 1 account"), "{}", stdout(&done));
            let again = run(&["person", "unlock", &ada.email, "--reason", "called back on the number on file"]);
            assert!(stdout(&again).contains("nothing changed"));

            let account = &app.person_json(&ada.email).await["accounts"][0];
            assert_eq!((account["locked"].as_bool(), account["unlocked_by"].as_str()), (Some(false), Some("system")));
            assert_eq!(account["failed_attempts"], 0);
            let export = stdout(&run(&["audit", "export"]));
            let unlock: serde_json::Value = export
                .lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .find(|r| r["action"] == "account.unlock")
                .unwrap_or_else(|| panic!("no unlock in the audit log:\n{export}"));
            assert_eq!(unlock["actor"], "system");
            assert_eq!(unlock["reason"], "called back on the number on file");
            assert_eq!(location(&app.post_sign_in(&browser(), &ada.username, &ada.password).await), "/signin/mfa");
        },
    )
    .await;
}

#[tokio::test]
async fn an_attempt_whose_client_hangs_up_still_settles_and_the_account_is_not_stuck() {
    each_backend(async |app: TestApp| {
        let ada = app.add_person("ada", true).await;
        wrong_passwords(&app, &ada, 4).await;
        // The fifth guess is sent by hand, and the connection closed the moment it is out.
        let url: reqwest::Url = app.url("/signin").parse().unwrap_or_else(|e| panic!("{e}"));
        let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
        let client = reqwest::Client::builder().cookie_provider(jar.clone()).build().unwrap_or_else(|e| panic!("{e}"));
        let html =
            client.get(url.clone()).send().await.unwrap_or_else(|e| panic!("{e}")).text().await.unwrap_or_default();
        let cookies = {
            use reqwest::cookie::CookieStore;
            jar.cookies(&url).map(|h| h.to_str().unwrap_or_default().to_owned()).unwrap_or_default()
        };
        let body = format!("login={}&password=wrong-and-gone&csrf={}", ada.username, csrf_of(&html));
        let request = format!(
            "POST /signin HTTP/1.1\r\nHost: lifeline\r\nCookie: {cookies}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        {
            use tokio::io::AsyncWriteExt;
            let address = app.address.trim_start_matches("http://");
            let mut stream = tokio::net::TcpStream::connect(address).await.unwrap_or_else(|e| panic!("{e}"));
            stream.write_all(request.as_bytes()).await.unwrap_or_else(|e| panic!("{e}"));
        } // closed here
        // The guess is still checked and recorded, and its lock set, although nobody waits for the answer.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while events(&app, ada.account_id, "bad_password").await < 5 {
            assert!(std::time::Instant::now() < deadline, "the abandoned attempt never settled");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let account = &app.person_json(&ada.email).await["accounts"][0];
        assert_eq!(account["locked"], true, "{account}");
        app.clock.advance(300);
        assert_eq!(location(&app.post_sign_in(&browser(), &ada.username, &ada.password).await), "/signin/mfa");
    })
    .await;
}

#[tokio::test]
async fn a_disabled_person_trying_the_right_password_is_not_locked_out_once_enabled_again() {
    each_backend(async |app: TestApp| {
        let ada = app.add_person("ada", true).await;
        let set = async |status: &str| {
            sqlx::query("UPDATE person SET status = $1 WHERE email = $2")
                .bind(status)
                .bind(&ada.email)
                .execute(app.db.pool())
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        };
        set("disabled").await;
        for _ in 0..8 {
            let response = app.post_sign_in(&browser(), &ada.username, &ada.password).await;
            assert!(response.text().await.unwrap_or_default().contains("This account is disabled"));
        }
        assert_eq!(failed_attempts(&app, ada.account_id).await, 0, "the right password counts for nothing");
        set("active").await;
        assert_eq!(location(&app.post_sign_in(&browser(), &ada.username, &ada.password).await), "/signin/mfa");
    })
    .await;
}
