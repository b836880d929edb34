//! Several `lifeline serve` processes on one database, with requests spread over them: counters,
//! single-use secrets and (later) outbox delivery and the audit chain must hold across instances.
//! To add a cross-instance check: `let pair = Instances::start(&shell, 2, &[]).await;` then send requests
//! to `pair.url(i, path)` and assert on the shared database.

use crate::helpers::*;
use reqwest::StatusCode;
use std::path::Path;
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, BufReader};

/// The `lifeline` binary the instances run: this build's, or `LIFELINE_TEST_SERVER_BIN` (e.g. a release
/// build, for the figures in BENCHMARKS.md).
fn server_binary() -> String {
    std::env::var("LIFELINE_TEST_SERVER_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_lifeline").to_owned())
}

pub struct Instances {
    pub addresses: Vec<String>,
    _children: Vec<tokio::process::Child>,
    /// Every line the instances wrote to stderr (their logs), in arrival order.
    logs: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Instances {
    /// Start `n` servers on `db_url`, sharing the key file in `dir`; each listens on a random port.
    pub async fn start(dir: &Path, db_url: &str, n: usize, env: &[(&str, &str)]) -> Self {
        Self::start_limited(dir, db_url, n, env, None).await
    }

    /// Like [`Instances::start`], with the open-file limit (soft and hard) set to `open_files` first, like
    /// a host with a small limit.
    pub async fn start_limited(
        dir: &Path,
        db_url: &str,
        n: usize,
        env: &[(&str, &str)],
        open_files: Option<u32>,
    ) -> Self {
        let mut addresses = Vec::new();
        let mut children = Vec::new();
        let logs = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        for _ in 0..n {
            let mut command = match open_files {
                Some(limit) => {
                    let mut sh = tokio::process::Command::new("sh");
                    sh.arg("-c").arg(format!("ulimit -n {limit} && exec \"$0\" serve")).arg(server_binary());
                    sh
                }
                None => {
                    let mut command = tokio::process::Command::new(server_binary());
                    command.arg("serve");
                    command
                }
            };
            command
                .current_dir(dir)
                .env("LIFELINE_DATABASE_URL", db_url)
                .env("LIFELINE_KEY_FILE", dir.join("lifeline.key"))
                .env("LIFELINE_LISTEN", "127.0.0.1:0")
                .env("RUST_LOG", "warn")
                .envs(TEST_LOCKOUT_ENV.iter().copied())
                .env_remove("LIFELINE_CONFIG")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true);
            for (k, v) in env {
                command.env(k, v);
            }
            let mut child = command.spawn().unwrap_or_else(|e| panic!("cannot start lifeline serve: {e}"));
            // The logs are kept (a test may grep them for secrets) and passed on to this test's stderr.
            if let Some(stderr) = child.stderr.take() {
                let logs = logs.clone();
                tokio::spawn(async move {
                    let mut lines = BufReader::new(stderr).lines();
                    while let Ok(Some(line)) = lines.next_line().await {
                        eprintln!("{line}");
                        logs.lock().map(|mut l| l.push(line)).unwrap_or_default();
                    }
                });
            }
            let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
            let mut lines = BufReader::new(stdout).lines();
            let address = tokio::time::timeout(std::time::Duration::from_secs(60), async {
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(rest) = line.split("listening on ").nth(1) {
                        return rest.split(')').next().map(|a| format!("http://{a}"));
                    }
                }
                None
            })
            .await
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("lifeline serve did not report its address"));
            // Keep draining stdout so the server never blocks on a full pipe.
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            addresses.push(address);
            children.push(child);
        }
        Self { addresses, _children: children, logs }
    }

    /// What the instances have logged so far.
    pub fn logs(&self) -> String {
        self.logs.lock().map(|l| l.join("\n")).unwrap_or_default()
    }

    /// A memory figure of one instance, in KiB, from `/proc/<pid>/status` (`VmRSS`, `RssAnon`, ...).
    pub fn memory_kib(&self, instance: usize, field: &str) -> u64 {
        let pid = self._children[instance].id().unwrap_or_else(|| panic!("instance {instance} has exited"));
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_else(|e| panic!("{e}"));
        status
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{field}:")))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
    }

    /// SIGKILL one instance: no clean-up, no goodbye, like a crash or an OOM kill.
    pub async fn kill(&mut self, instance: usize) {
        let child = &mut self._children[instance];
        let _ = child.start_kill();
        let _ = child.wait().await;
    }

    /// POST an assistance request through the JSON API of `instance`, as if from `ip`.
    pub async fn ask_for_help(&self, instance: usize, ip: &str, email: &str) -> reqwest::Response {
        browser()
            .post(self.url(instance, "/api/v1/assistance-requests"))
            .header("x-forwarded-for", ip)
            .json(&serde_json::json!({ "email": email, "type": "other" }))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn url(&self, instance: usize, path: &str) -> String {
        format!("{}{path}", self.addresses[instance % self.addresses.len()])
    }

    /// Sign in with a password on `instance`, from a fresh browser; returns the browser and the response.
    pub async fn sign_in(&self, instance: usize, login: &str, password: &str) -> (reqwest::Client, reqwest::Response) {
        let browser = browser();
        let html = browser
            .get(self.url(instance, "/signin"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .text()
            .await
            .unwrap_or_default();
        let csrf = csrf_of(&html);
        let response = browser
            .post(self.url(instance, "/signin"))
            .form(&[("login", login), ("password", password), ("csrf", &csrf)])
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        (browser, response)
    }
}

/// Set up a database with one person (TOTP and backup codes) through the library, then hand it to servers.
async fn arrange(db: &TestDb, dir: &Path) -> Person {
    let mut settings = test_settings(dir);
    settings.database_url = db.url.clone();
    let app = lifeline::app::build(settings).await.unwrap_or_else(|e| panic!("{e:#}"));
    let person = {
        let (_, account) = app
            .state
            .directory
            .add_person(
                system(&app.state, None).await,
                new_person("Ada Admin", "ada@example.org", "ada"),
                Some(PASSWORD),
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let secret = lifeline::totp::TotpSecret::generate();
        let codes = app
            .state
            .signin
            .enrol_totp_now(system(&app.state, Some(account.person_id)).await, account.id, &secret)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        Person {
            email: "ada@example.org".into(),
            username: "ada".into(),
            password: PASSWORD.into(),
            totp: Some(secret),
            backup_codes: codes,
            account_id: account.id,
        }
    };
    app.store.close().await;
    person
}

/// Two admins (DPA 1 and 3) who get every assistance email.
async fn arrange_admins(db: &TestDb, dir: &Path) {
    let mut settings = test_settings(dir);
    settings.database_url = db.url.clone();
    let app = lifeline::app::build(settings).await.unwrap_or_else(|e| panic!("{e:#}"));
    for (name, dpa_level) in [("harry", 1), ("ada", 3)] {
        let mut new = new_person(name, &format!("{name}@example.org"), name);
        new.grant.dpa_level = dpa_level;
        app.state
            .directory
            .add_person(system(&app.state, None).await, new, Some(PASSWORD))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    app.store.close().await;
}

/// Wait (up to 60 s) until the outbox of the database at `url` has nothing left to send and has sent `sent`
/// emails: every delivery that will happen has been made and recorded.
async fn outbox_settled(url: &str, sent: i64) {
    use lifeline::store::OutboxStore;
    let store = lifeline::store::SqlStore::connect(url).await.unwrap_or_else(|e| panic!("{e}"));
    for _ in 0..600 {
        if store.outbox_counts().await.ok() == Some((0, sent)) {
            store.close().await;
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the outbox did not settle at {sent} sent: {:?}", store.outbox_counts().await);
}

/// Settings for instances that talk to a test SMTP sink and answer quickly.
fn quick_env(smtp: &str) -> Vec<(&'static str, String)> {
    vec![
        ("LIFELINE_SMTP_URL", smtp.to_owned()),
        ("LIFELINE_TRUSTED_PROXIES", "127.0.0.1".into()),
        ("LIFELINE_ASSISTANCE__RESPONSE_FLOOR_MS", "10".into()),
        // Long enough to outlast one delivery on a loaded machine, short enough for a takeover in a test.
        ("LIFELINE_ASSISTANCE__PROCESSING_LEASE_SECONDS", "5".into()),
        ("LIFELINE_OUTBOX__LEASE_SECONDS", "5".into()),
        ("LIFELINE_OUTBOX__RETRY_BASE_SECONDS", "1".into()),
        ("LIFELINE_OUTBOX__RETRY_MAX_SECONDS", "2".into()),
        // These tests count single emails; digests have a test of their own.
        ("LIFELINE_ASSISTANCE__DIGEST__INDIVIDUAL_PER_INTERVAL", "100000".into()),
    ]
}

fn as_refs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'a str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// The references in the subjects of `messages`, with how many emails each got.
fn emails_per_reference(messages: &[crate::smtp_sink::Received]) -> std::collections::BTreeMap<String, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for m in messages {
        let subject = m.subject();
        let reference = subject
            .split_whitespace()
            .find(|w| w.starts_with("AR-"))
            .unwrap_or_default()
            .trim_end_matches(':')
            .to_owned();
        *counts.entry(reference).or_insert(0) += 1;
    }
    counts
}

#[tokio::test]
async fn two_hundred_requests_over_two_instances_email_every_admin_exactly_once() {
    for db in databases().await {
        println!("--- on {}", db.label);
        let sink = crate::smtp_sink::SmtpSink::start().await;
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        arrange_admins(&db, dir.path()).await;
        let mut env = quick_env(&sink.url());
        env.push(("LIFELINE_ASSISTANCE__PER_IP__MAX", "1000".into()));
        env.push(("LIFELINE_ASSISTANCE__PER_EMAIL__MAX", "1000".into()));
        env.push(("LIFELINE_ASSISTANCE__GLOBAL__MAX", "1000".into()));
        // Nobody is killed here: a lease that no slow moment can outlast, so any duplicate is a real bug.
        env.push(("LIFELINE_OUTBOX__LEASE_SECONDS", "60".into()));
        let pair = Instances::start(dir.path(), &db.url, 2, &as_refs(&env)).await;

        let mut references = Vec::new();
        for batch in 0..25 {
            let requests = (0..8).map(|i| {
                let n = batch * 8 + i;
                let pair = &pair;
                async move {
                    let response = pair
                        .ask_for_help(
                            n,
                            &format!("10.0.{}.{}", n / 200, n % 200 + 1),
                            &format!("person{n}@example.org"),
                        )
                        .await;
                    assert_eq!(response.status(), StatusCode::ACCEPTED);
                    let body: serde_json::Value = response.json().await.unwrap_or_default();
                    body["reference"].as_str().unwrap_or_default().to_owned()
                }
            });
            references.extend(futures::future::join_all(requests).await);
        }
        sink.wait_for_within(400, 1200).await;
        // Instead of sleeping "long enough" for a duplicate to show: once every outbox row is marked sent and
        // no SMTP session is open, no delivery is left anywhere to arrive.
        outbox_settled(&db.url, 400).await;
        sink.wait_idle().await;
        let messages = sink.messages();
        assert!(messages.len() >= 400);
        let counts = emails_per_reference(&messages);
        assert_eq!(counts.len(), 200, "{}", db.label);
        for reference in &references {
            assert_eq!(counts.get(reference), Some(&2), "{}: {reference} emailed to each admin once", db.label);
        }
        let mut ids: Vec<String> = messages.iter().map(|m| m.message_id()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 400, "{}: no email delivered twice", db.label);
        assert_audit_verifies(dir.path(), &db.url);
    }
}

#[tokio::test]
async fn the_per_ip_limit_holds_in_sum_across_instances_and_refusals_charge_nothing() {
    for db in databases().await {
        println!("--- on {}", db.label);
        let sink = crate::smtp_sink::SmtpSink::start().await;
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        arrange_admins(&db, dir.path()).await;
        let mut env = quick_env(&sink.url());
        // Day-long windows, so that no window ends in the middle of the test.
        env.push(("LIFELINE_ASSISTANCE__PER_IP__MAX", "10".into()));
        env.push(("LIFELINE_ASSISTANCE__PER_IP__WINDOW_SECONDS", "86400".into()));
        env.push(("LIFELINE_ASSISTANCE__PER_EMAIL__MAX", "3".into()));
        env.push(("LIFELINE_ASSISTANCE__PER_EMAIL__WINDOW_SECONDS", "86400".into()));
        env.push(("LIFELINE_ASSISTANCE__GLOBAL__MAX", "13".into()));
        env.push(("LIFELINE_ASSISTANCE__GLOBAL__WINDOW_SECONDS", "86400".into()));
        env.push(("LIFELINE_OUTBOX__LEASE_SECONDS", "60".into()));
        let pair = Instances::start(dir.path(), &db.url, 2, &as_refs(&env)).await;
        let count = |statuses: &[StatusCode]| {
            let accepted = statuses.iter().filter(|s| **s == StatusCode::ACCEPTED).count();
            let limited = statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
            (accepted, limited)
        };

        // One IP, twenty requests at once over both instances: ten fit.
        let requests = (0..20).map(|n| {
            let pair = &pair;
            async move { pair.ask_for_help(n, "81.2.69.142", &format!("p{n}@example.org")).await.status() }
        });
        let statuses = futures::future::join_all(requests).await;
        assert_eq!(count(&statuses), (10, 10), "{}", db.label);
        sink.wait_for(20).await;
        outbox_settled(&db.url, 20).await;
        sink.wait_idle().await;
        assert_eq!(sink.messages().len(), 20, "{}: emails for the accepted ten only", db.label);

        // Twenty IPs of one /24 naming one address at once: three fit. Had the ten refusals above been
        // charged to the global budget (13), none would.
        let requests = (0..20).map(|n| {
            let pair = &pair;
            async move { pair.ask_for_help(n, &format!("10.2.0.{}", n + 1), "victim@example.org").await.status() }
        });
        let statuses = futures::future::join_all(requests).await;
        assert_eq!(count(&statuses), (3, 17), "{}", db.label);

        // Thirteen accepted in all: the global budget is now spent, by accepted requests only.
        let over = pair.ask_for_help(0, "175.16.199.1", "fresh@example.org").await.status();
        assert_eq!(over, StatusCode::TOO_MANY_REQUESTS, "{}", db.label);
    }
}

#[tokio::test]
async fn when_one_instance_is_killed_while_delivering_the_other_delivers_the_rest() {
    for db in databases().await {
        println!("--- on {}", db.label);
        let sink = crate::smtp_sink::SmtpSink::start_slow(std::time::Duration::from_millis(40)).await;
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        arrange_admins(&db, dir.path()).await;
        let mut env = quick_env(&sink.url());
        env.push(("LIFELINE_ASSISTANCE__PER_IP__MAX", "1000".into()));
        env.push(("LIFELINE_ASSISTANCE__GLOBAL__MAX", "1000".into()));
        let mut pair = Instances::start(dir.path(), &db.url, 2, &as_refs(&env)).await;
        let mut references = Vec::new();
        for n in 0..60 {
            let response = pair.ask_for_help(n, "10.1.1.1", &format!("person{n}@example.org")).await;
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            references.push(body["reference"].as_str().unwrap_or_default().to_owned());
        }
        sink.wait_for(10).await;
        pair.kill(0).await;
        let delivered_at_kill = sink.messages().len();
        assert!(delivered_at_kill < 120, "the kill came while delivering ({delivered_at_kill} of 120 delivered)");

        let unique = |messages: &[crate::smtp_sink::Received]| {
            messages.iter().map(|m| m.message_id()).collect::<std::collections::BTreeSet<_>>().len()
        };
        for _ in 0..1200 {
            if unique(&sink.messages()) >= 120 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let counts = emails_per_reference(&sink.messages());
        for reference in &references {
            assert!(counts.get(reference).is_some_and(|n| *n >= 2), "{}: {reference} reached both admins", db.label);
        }
        // At least once: a message the killed instance sent but could not mark may come again, with the
        // same Message-ID; never a second, different email for the same admin and request.
        let mut ids: Vec<String> = sink.messages().iter().map(|m| m.message_id()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 120, "{}", db.label);
        assert_audit_verifies(dir.path(), &db.url);
    }
}

#[tokio::test]
async fn failures_spread_over_two_instances_lock_after_exactly_the_threshold() {
    for db in databases().await {
        println!("--- on {}", db.label);
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let ada = arrange(&db, dir.path()).await;
        let pair = Instances::start(dir.path(), &db.url, 2, &[]).await;

        // Two streams of ten wrong passwords, one per instance, at the same time.
        let streams = (0..2).map(|instance| {
            let pair = &pair;
            async move {
                for _ in 0..10 {
                    let (_, response) = pair.sign_in(instance, "ada", "wrong-password-entirely").await;
                    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
                }
            }
        });
        futures::future::join_all(streams).await;

        let shown = show(dir.path(), &db.url, &ada.email);
        assert_eq!(shown["accounts"][0]["locked"], true, "{}", db.label);
        assert_eq!(shown["accounts"][0]["failed_attempts"], 5, "{}: counted up to the lock, not past it", db.label);
        let (_, right) = pair.sign_in(1, "ada", PASSWORD).await;
        assert_eq!(right.status(), StatusCode::UNAUTHORIZED, "{}", db.label);
        assert!(right.text().await.unwrap_or_default().contains(INVALID));
        assert_audit_verifies(dir.path(), &db.url);
    }
}

#[tokio::test]
async fn a_hundred_parallel_guesses_over_two_instances_then_the_right_password_evaluate_at_most_the_limit() {
    for db in databases().await {
        println!("--- on {}", db.label);
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let ada = arrange(&db, dir.path()).await;
        let pair = Instances::start(dir.path(), &db.url, 2, &[]).await;
        let store = lifeline::store::SqlStore::connect(&db.url).await.unwrap_or_else(|e| panic!("{e}"));
        let count = async |sql: &str| -> i64 {
            use sqlx::Row;
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(ada.account_id.0)
                .fetch_one(store.pool())
                .await
                .unwrap_or_else(|e| panic!("{e}"))
                .get(0)
        };

        let guesses = futures::future::join_all((0..100).map(|i| {
            let pair = &pair;
            async move { pair.sign_in(i % 2, "ada", &format!("wrong-guess-{i}")).await.1.status() }
        }));
        let right = async {
            // Once the limit is taken (the guesses still in flight), the right password on either instance.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            while count("SELECT failed_attempts FROM account WHERE account_id = $1").await < 5 {
                assert!(std::time::Instant::now() < deadline, "the guesses never reached the limit");
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            let (_, first) = pair.sign_in(0, "ada", PASSWORD).await;
            let (_, second) = pair.sign_in(1, "ada", PASSWORD).await;
            (first.status(), second.status())
        };
        let (statuses, right) = tokio::join!(guesses, right);
        // Refused or wrong (401), or — when the hashing queue is full on a loaded machine — "busy" (503):
        // never signed in.
        let refused = |s: &StatusCode| *s == StatusCode::UNAUTHORIZED || *s == StatusCode::SERVICE_UNAVAILABLE;
        assert!(statuses.iter().all(refused), "{statuses:?}");
        assert!(refused(&right.0) && refused(&right.1), "{}: the right password got {right:?}", db.label);
        let checked = count("SELECT COUNT(*) FROM sign_in_event WHERE account_id = $1 AND outcome = 'bad_password'");
        assert_eq!(checked.await, 5, "{}: exactly the limit was checked", db.label);
        let sessions = count("SELECT COUNT(*) FROM web_session WHERE account_id = $1").await;
        assert_eq!(sessions, 0, "{}: no session exists", db.label);
        store.close().await;
        assert_audit_verifies(dir.path(), &db.url);
    }
}

#[tokio::test]
async fn memory_stays_flat_over_two_thousand_sign_ins_from_sixteen_clients() {
    // SQLite only: the bound is about the process's own memory (argon2 on a fixed set of workers that keep
    // their blocks), which does not depend on the backend; PostgreSQL runs the rest of the suite.
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let db = databases().await.remove(0);
    arrange(&db, dir.path()).await;
    {
        // Sixteen people, one per client: one person signing in sixteen times at once would (rightly) meet
        // the lockout's limit on attempts in flight.
        let mut settings = test_settings(dir.path());
        settings.database_url = db.url.clone();
        let app = lifeline::app::build(settings).await.unwrap_or_else(|e| panic!("{e:#}"));
        for n in 0..16 {
            let new = new_person(&format!("Person {n}"), &format!("p{n}@example.org"), &format!("p{n}"));
            app.state
                .directory
                .add_person(system(&app.state, None).await, new, Some(PASSWORD))
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
        app.store.close().await;
    }
    let one = Instances::start(dir.path(), &db.url, 1, &[]).await;
    let done = std::sync::atomic::AtomicUsize::new(0);
    let after_200 = std::sync::Mutex::new(None);
    let clients = (0..16).map(|n| {
        let (one, done, after_200) = (&one, &done, &after_200);
        async move {
            for _ in 0..125 {
                let (_, response) = one.sign_in(0, &format!("p{n}"), PASSWORD).await;
                let status = response.status();
                assert_eq!(location(&response), "/signin/enroll", "{status}");
                if done.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == 200 {
                    *after_200.lock().unwrap_or_else(|e| panic!("{e}")) = Some(one.memory_kib(0, "VmRSS"));
                }
            }
        }
    });
    futures::future::join_all(clients).await;
    let (end, anonymous) = (one.memory_kib(0, "VmRSS"), one.memory_kib(0, "RssAnon"));
    let early = after_200.lock().unwrap_or_else(|e| panic!("{e}")).unwrap_or_else(|| panic!("no reading after 200"));
    println!(
        "resident memory after 200 sign-ins: {early} KiB; after 2,000: {end} KiB, of which {anonymous} KiB anonymous"
    );
    // The bound is on anonymous memory (heap, stacks, argon2 blocks): what load can grow. The test runs the
    // debug binary, whose own code pages add ~22 MiB of file-backed resident memory that a release build
    // does not have and that never grows (BENCHMARKS.md has the release figures, made with this test).
    assert!(anonymous <= 64 * 1024, "{anonymous} KiB anonymous memory after 2,000 sign-ins");
    assert!(end * 10 <= early * 11, "{early} KiB after 200, {end} KiB after 2,000: more than 10% growth");
}

#[tokio::test]
async fn eleven_hundred_half_open_connections_do_not_stop_healthz_on_a_host_with_1024_open_files() {
    // SQLite only: this is about connections, not the database.
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let db = databases().await.remove(0);
    arrange(&db, dir.path()).await;
    let env = [("LIFELINE_HTTP__HEADER_READ_TIMEOUT_SECONDS", "2")];
    let one = Instances::start_limited(dir.path(), &db.url, 1, &env, Some(1024)).await;
    let address = one.addresses[0].trim_start_matches("http://").to_owned();

    // 1,100 clients connect and never finish a request: half say nothing, half send half a request.
    let mut held = Vec::new();
    for i in 0..1100 {
        let connect = tokio::net::TcpStream::connect(&address);
        let Ok(Ok(mut stream)) = tokio::time::timeout(std::time::Duration::from_millis(200), connect).await else {
            continue; // the listen backlog is full: that client is held off by the kernel
        };
        if i % 2 == 0 {
            use tokio::io::AsyncWriteExt;
            let _ = stream.write_all(b"GET / HTTP/1.1\r\nHost: lifeline\r\n").await;
        }
        held.push(stream);
    }
    assert!(held.len() > 1024, "only {} connections were made", held.len());

    // While they are all still open on the client side, the health check is answered.
    let started = std::time::Instant::now();
    let health = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(20))
        .build()
        .unwrap_or_else(|e| panic!("{e}"))
        .get(one.url(0, "/healthz"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("/healthz did not answer: {e}"));
    assert_eq!(health.status(), StatusCode::OK);
    println!("/healthz answered in {:?} with {} half-open connections", started.elapsed(), held.len());

    // The server closed the silent ones itself (the client side reads end-of-stream or a reset).
    use tokio::io::AsyncReadExt;
    let mut buffer = [0u8; 256];
    let closed = tokio::time::timeout(std::time::Duration::from_secs(20), held[1].read(&mut buffer)).await;
    assert!(matches!(closed, Ok(Ok(0)) | Ok(Err(_))), "a silent connection is closed by the server: {closed:?}");
}

#[tokio::test]
async fn one_backup_code_sent_fifty_times_across_two_instances_succeeds_once() {
    for db in databases().await {
        println!("--- on {}", db.label);
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let ada = arrange(&db, dir.path()).await;
        // A high threshold, so that the 49 losers cannot lock the account before the winner's turn.
        let pair =
            Instances::start(dir.path(), &db.url, 2, &[("LIFELINE_LOCKOUT__FAILED_ATTEMPTS_BEFORE_LOCK", "100")]).await;

        let mut pending = Vec::new();
        for i in 0..50 {
            let (browser, response) = pair.sign_in(i, "ada", PASSWORD).await;
            assert_eq!(location(&response), "/signin/mfa");
            let html = browser
                .get(pair.url(i, "/signin/mfa"))
                .send()
                .await
                .unwrap_or_else(|e| panic!("{e}"))
                .text()
                .await
                .unwrap_or_default();
            pending.push((i, browser, csrf_of(&html)));
        }
        let code = ada.backup_codes[0].clone();
        let attempts = pending.into_iter().map(|(i, browser, csrf)| {
            let (pair, code) = (&pair, code.clone());
            async move {
                let response = browser
                    .post(pair.url(i, "/signin/mfa"))
                    .form(&[("code", code.as_str()), ("csrf", csrf.as_str())])
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
                location(&response) == "/"
            }
        });
        let wins = futures::future::join_all(attempts).await.into_iter().filter(|won| *won).count();
        assert_eq!(wins, 1, "{}", db.label);
        assert_eq!(show(dir.path(), &db.url, &ada.email)["accounts"][0]["mfa"]["backup_codes_unused"], 9);
        assert_audit_verifies(dir.path(), &db.url);
    }
}

/// `lifeline audit verify` passes: one unbroken chain, however many instances wrote to it.
fn assert_audit_verifies(dir: &Path, db_url: &str) {
    let out = run_lifeline(dir, db_url, &["audit", "verify"], "", &[]);
    assert!(out.status.success(), "audit verify: {}", stderr(&out));
}

fn show(dir: &Path, db_url: &str, email: &str) -> serde_json::Value {
    let out = run_lifeline(dir, db_url, &["person", "show", email, "--json"], "", &[]);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stderr(&out)))
}
