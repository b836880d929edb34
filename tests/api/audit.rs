//! The audit log: every sign-in outcome and change is a row, the rows form a hash chain, and
//! `lifeline audit verify` names the first row that was changed or removed.

use crate::helpers::*;
use lifeline::store::AuditStore;
use std::process::Output;

fn lifeline(app_dir: &std::path::Path, db_url: &str, args: &[&str]) -> Output {
    run_lifeline(app_dir, db_url, args, "", &[])
}

async fn db_exec(app: &TestApp, sql: &str) {
    sqlx::raw_sql(sql).execute(app.state.db.pool()).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
}

#[tokio::test]
async fn sign_in_outcomes_and_locks_are_audited_and_the_chain_verifies() {
    each_backend(async |app: TestApp| {
        let ada = app.add_person("ada", true).await;
        for _ in 0..5 {
            app.post_sign_in(&browser(), &ada.username, "wrong-password-entirely").await;
        }
        let dir = app.dir();
        let url = app.db_url();
        let export = lifeline(dir, &url, &["audit", "export"]);
        assert!(export.status.success(), "{}", stderr(&export));
        let rows: Vec<serde_json::Value> =
            stdout(&export).lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect();
        let actions: Vec<(&str, &str)> = rows
            .iter()
            .map(|r| (r["action"].as_str().unwrap_or_default(), r["outcome"].as_str().unwrap_or_default()))
            .collect();
        assert_eq!(actions[0], ("person.add", "success"));
        assert_eq!(actions[1], ("mfa.enrol", "success"));
        assert_eq!(actions.iter().filter(|a| **a == ("sign_in", "bad_password")).count(), 5);
        let lock =
            rows.iter().find(|r| r["action"] == "account.lock").unwrap_or_else(|| panic!("lock audited: {actions:?}"));
        assert_eq!((lock["actor"].as_str(), lock["reason"].as_str()), (Some("public"), Some("failures")));
        let sign_in = rows.iter().find(|r| r["action"] == "sign_in").unwrap_or_else(|| panic!("sign-in audited"));
        assert_eq!(sign_in["client_ip"], "127.0.0.1");
        assert!(rows.iter().all(|r| r["hash"].as_str().is_some_and(|h| h.len() == 64)));

        let verify = lifeline(dir, &url, &["audit", "verify"]);
        assert!(verify.status.success(), "{}", stderr(&verify));
        assert!(stdout(&verify).contains(&format!("{} rows", rows.len())));
    })
    .await;
}

#[tokio::test]
async fn tampering_with_any_row_is_found_and_the_row_named() {
    each_backend(async |app: TestApp| {
        let ada = app.add_person("ada", true).await;
        for _ in 0..3 {
            app.post_sign_in(&browser(), &ada.username, "wrong-password-entirely").await;
        }
        let (dir, url) = (app.dir(), app.db_url());
        let (last, _) = app.state.db.audit_head().await.unwrap_or_else(|e| panic!("{e}"));
        assert!(last >= 5);
        let changes = [
            ("outcome", "'tampered'"),
            ("actor", "'mallory'"),
            ("at", "at + 1"),
            ("client_ip", "'10.9.8.7'"),
            ("reason", "'Verified in person'"),
        ];
        for row in [1, 3, last] {
            for (column, value) in changes {
                db_exec(&app, "CREATE TABLE IF NOT EXISTS audit_backup AS SELECT * FROM audit_event WHERE 1 = 0").await;
                db_exec(
                    &app,
                    &format!("INSERT INTO audit_backup SELECT * FROM audit_event WHERE audit_event_id = {row}"),
                )
                .await;
                db_exec(&app, &format!("UPDATE audit_event SET {column} = {value} WHERE audit_event_id = {row}")).await;
                let verify = lifeline(dir, &url, &["audit", "verify"]);
                assert!(!verify.status.success(), "changing {column} of row {row} must be found");
                assert!(
                    stderr(&verify).contains(&format!("audit row {row}:")),
                    "{column} of {row}: {}",
                    stderr(&verify)
                );
                // Put the row back exactly as it was: the log verifies again.
                db_exec(
                    &app,
                    &format!(
                        "UPDATE audit_event SET {column} = (SELECT {column} FROM audit_backup WHERE audit_event_id = {row}) \
                         WHERE audit_event_id = {row}"
                    ),
                )
                .await;
                db_exec(&app, "DELETE FROM audit_backup").await;
                assert!(lifeline(dir, &url, &["audit", "verify"]).status.success(), "restored {column} of {row}");
            }
        }
        // Removing a row in the middle, or the newest one, is found as well.
        db_exec(&app, &format!("DELETE FROM audit_event WHERE audit_event_id = {last}")).await;
        let verify = lifeline(dir, &url, &["audit", "verify"]);
        assert!(
            !verify.status.success() && stderr(&verify).contains(&format!("audit row {last}:")),
            "{}",
            stderr(&verify)
        );
        db_exec(&app, "DELETE FROM audit_event WHERE audit_event_id = 2").await;
        let verify = lifeline(dir, &url, &["audit", "verify"]);
        assert!(stderr(&verify).contains("audit row 2: missing"), "{}", stderr(&verify));
    })
    .await;
}

#[tokio::test]
async fn export_since_filters_by_time_and_refuses_nonsense() {
    each_backend(async |app: TestApp| {
        app.add_person("ada", true).await;
        let (dir, url) = (app.dir(), app.db_url());
        let all = lifeline(dir, &url, &["audit", "export", "--since", "2000-01-01"]);
        assert_eq!(stdout(&all).lines().count(), 2);
        let none = lifeline(dir, &url, &["audit", "export", "--since", "2999-01-01T00:00:00Z"]);
        assert!(none.status.success() && none.stdout.is_empty());
        let bad = lifeline(dir, &url, &["audit", "export", "--since", "yesterday"]);
        assert!(!bad.status.success() && stderr(&bad).contains("--since"));
    })
    .await;
}

/// A log of six rows: the person and their authenticator, then four standalone entries.
async fn six_rows(app: &TestApp) -> Vec<lifeline::audit::AuditRecord> {
    app.add_person("ada", true).await;
    for i in 0..4 {
        let entry = lifeline::audit::AuditEntry::new(1_800_000_000 + i, &lifeline::audit::Actor::System, "test", "ok");
        app.state.db.append_audit(&entry).await.unwrap_or_else(|e| panic!("{e}"));
    }
    let rows = chain_rows(app).await;
    assert_eq!(rows.len(), 6);
    assert!(lifeline(app.dir(), &app.db_url(), &["audit", "verify"]).status.success(), "the untouched log verifies");
    rows
}

async fn chain_rows(app: &TestApp) -> Vec<lifeline::audit::AuditRecord> {
    app.state.db.audit_records(0, 10_000).await.unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn the_schema_refuses_audit_rows_without_the_next_id() {
    each_backend(async |app: TestApp| {
        six_rows(&app).await;
        let insert = |id: &str| {
            format!(
                "INSERT INTO audit_event (audit_event_id, at, actor, action, outcome, prev_hash, hash) \
                 VALUES ({id}, 1, 'system', 'test', 'ok', 'x', 'y')"
            )
        };
        for id in ["NULL", "9", "3"] {
            let result = sqlx::raw_sql(&insert(id)).execute(app.state.db.pool()).await;
            assert!(result.is_err(), "an audit row with id {id} must be refused");
        }
        // Rows the schema refuses never reach the dossier either: the log is what verify checked.
        assert!(lifeline(app.dir(), &app.db_url(), &["audit", "verify"]).status.success());
    })
    .await;
}
