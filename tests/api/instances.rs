//! Several `lifeline serve` processes on one database, with requests spread over them: counters,
//! single-use secrets and (later) outbox delivery and the audit chain must hold across instances.
//! To add a cross-instance check: `let pair = Instances::start(&shell, 2, &[]).await;` then send requests
//! to `pair.url(i, path)` and assert on the shared database.

use crate::helpers::*;
use reqwest::StatusCode;
use std::path::Path;
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, BufReader};

pub struct Instances {
    pub addresses: Vec<String>,
    _children: Vec<tokio::process::Child>,
}

impl Instances {
    /// Start `n` servers on `db_url`, sharing the key file in `dir`; each listens on a random port.
    pub async fn start(dir: &Path, db_url: &str, n: usize, env: &[(&str, &str)]) -> Self {
        let mut addresses = Vec::new();
        let mut children = Vec::new();
        for _ in 0..n {
            let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_lifeline"));
            command
                .arg("serve")
                .current_dir(dir)
                .env("LIFELINE_DATABASE_URL", db_url)
                .env("LIFELINE_KEY_FILE", dir.join("lifeline.key"))
                .env("LIFELINE_LISTEN", "127.0.0.1:0")
                .env("RUST_LOG", "warn")
                .env_remove("LIFELINE_CONFIG")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .kill_on_drop(true);
            for (k, v) in env {
                command.env(k, v);
            }
            let mut child = command.spawn().unwrap_or_else(|e| panic!("cannot start lifeline serve: {e}"));
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
        Self { addresses, _children: children }
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
    let state = lifeline::app::build(settings).await.unwrap_or_else(|e| panic!("{e:#}"));
    let person = {
        let (_, account) = state
            .signin
            .add_person(
                new_person("Ada Admin", "ada@example.org", "ada"),
                Some(PASSWORD),
                &lifeline::audit::Actor::System,
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let secret = lifeline::totp::TotpSecret::generate();
        let codes = state.signin.enrol_totp_now(account.id, &secret).await.unwrap_or_else(|e| panic!("{e}"));
        Person {
            email: "ada@example.org".into(),
            username: "ada".into(),
            password: PASSWORD.into(),
            totp: Some(secret),
            backup_codes: codes,
            account_id: account.id,
        }
    };
    state.db.close().await;
    person
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
        assert!(right.text().await.unwrap_or_default().contains("This account is locked"));
        assert_audit_verifies(dir.path(), &db.url);
    }
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
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lifeline"))
        .args(["audit", "verify"])
        .current_dir(dir)
        .env("LIFELINE_DATABASE_URL", db_url)
        .env_remove("LIFELINE_CONFIG")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(out.status.success(), "audit verify: {}", String::from_utf8_lossy(&out.stderr));
}

fn show(dir: &Path, db_url: &str, email: &str) -> serde_json::Value {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lifeline"))
        .args(["person", "show", email, "--json"])
        .current_dir(dir)
        .env("LIFELINE_DATABASE_URL", db_url)
        .env("LIFELINE_KEY_FILE", dir.join("lifeline.key"))
        .env_remove("LIFELINE_CONFIG")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
}
