//! The audit log: every sign-in outcome and change is a row, the rows form a hash chain, and
//! `lifeline audit verify` names the first row that was changed or removed.

use crate::helpers::*;
use lifeline::store::AuditStore;
use std::process::Output;

fn lifeline(app_dir: &std::path::Path, db_url: &str, args: &[&str]) -> Output {
    run_lifeline(app_dir, db_url, args, "", &[])
}

async fn db_exec(app: &TestApp, sql: &str) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(app.db.pool()).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
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
        let last = app.db.audit_head().await.unwrap_or_else(|e| panic!("{e}")).last_id;
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

// --- An attacker with the whole database but not the key ---------------------------------------------------
//
// Each test below rewrites the log the way someone who can write to the database would, recomputing every hash
// it touches with an algorithm it knows: plain SHA-256 (the chain's algorithm before it was keyed) or HMAC under a
// key of its own. Only the key derived from the master key seals rows, so `audit verify` names the row.

/// The attacker's hash: the chain's own algorithm (it is no secret), under plain SHA-256 or under a key of the
/// attacker's — never the key derived from the master key.
fn forged_hash(id: i64, e: &lifeline::audit::AuditEntry, prev_hash: &str, key: Option<&[u8]>) -> String {
    match key {
        None => lifeline::audit::legacy_hash(id, e, prev_hash),
        Some(key) => {
            let key: [u8; 32] = key.try_into().unwrap_or_else(|_| panic!("a 32-byte attacker key"));
            lifeline::audit::hash(&lifeline::audit::AuditKey::from_bytes(key), id, e, prev_hash)
        }
    }
}

const ATTACKER_KEY: [u8; 32] = [0x5a; 32];

/// A log of six rows: the person and their authenticator, then four standalone entries.
async fn six_rows(app: &TestApp) -> Vec<lifeline::audit::AuditRecord> {
    app.add_person("ada", true).await;
    for i in 0..4 {
        let entry = lifeline::audit::AuditEntry::new(1_800_000_000 + i, &lifeline::audit::Actor::System, "test", "ok");
        app.db.append_audit(&entry).await.unwrap_or_else(|e| panic!("{e}"));
    }
    let rows = chain_rows(app).await;
    assert_eq!(rows.len(), 6);
    assert!(lifeline(app.dir(), &app.db_url(), &["audit", "verify"]).status.success(), "the untouched log verifies");
    rows
}

async fn chain_rows(app: &TestApp) -> Vec<lifeline::audit::AuditRecord> {
    app.db.audit_records(0, 10_000).await.unwrap_or_else(|e| panic!("{e}"))
}

/// Recompute every hash from row `from` to the end, as the attacker can, and point the head at the new end.
async fn rehash_from(app: &TestApp, from: i64, key: Option<&[u8]>) {
    let rows = chain_rows(app).await;
    let mut prev = rows.iter().find(|r| r.id == from - 1).map(|r| r.hash.clone()).unwrap_or_else(|| "0".repeat(64));
    for row in rows.iter().filter(|r| r.id >= from) {
        let hash = forged_hash(row.id, &row.entry, &prev, key);
        db_exec(
            app,
            &format!("UPDATE audit_event SET prev_hash = '{prev}', hash = '{hash}' WHERE audit_event_id = {}", row.id),
        )
        .await;
        prev = hash;
    }
    let last = rows.last().map(|r| r.id).unwrap_or(0);
    db_exec(app, &format!("UPDATE audit_head SET last_id = {last}, last_hash = '{prev}' WHERE audit_head_id = 1"))
        .await;
}

/// `audit verify` with the real key file fails and names `row`.
fn assert_verify_names(app: &TestApp, row: i64, what: &str) {
    let verify = lifeline(app.dir(), &app.db_url(), &["audit", "verify"]);
    assert_eq!(verify.status.code(), Some(1), "{what} must fail verify: {}{}", stdout(&verify), stderr(&verify));
    assert!(stderr(&verify).contains(&format!("audit row {row}:")), "{what} must name row {row}: {}", stderr(&verify));
}

#[tokio::test]
async fn cutting_the_tail_and_fixing_the_head_fails_verify_without_the_key() {
    each_backend(async |app: TestApp| {
        let rows = six_rows(&app).await;
        db_exec(&app, "DELETE FROM audit_event WHERE audit_event_id > 4").await;
        let (id, hash) = (rows[3].id, &rows[3].hash);
        db_exec(&app, &format!("UPDATE audit_head SET last_id = {id}, last_hash = '{hash}' WHERE audit_head_id = 1"))
            .await;
        assert_verify_names(&app, 5, "cutting rows 5 and 6 and fixing the head");
    })
    .await;
}

#[tokio::test]
async fn rehashing_a_changed_row_to_the_end_fails_verify_without_the_key() {
    each_backend(async |app: TestApp| {
        six_rows(&app).await;
        db_exec(&app, "UPDATE audit_event SET outcome = 'tampered' WHERE audit_event_id = 3").await;
        rehash_from(&app, 3, None).await;
        assert_verify_names(&app, 3, "changing row 3 and rehashing with plain SHA-256");
        rehash_from(&app, 3, Some(&ATTACKER_KEY)).await;
        assert_verify_names(&app, 3, "changing row 3 and rehashing under another key");
        // From the very first row: no row is left that the attacker did not write.
        db_exec(&app, "UPDATE audit_event SET actor = 'mallory' WHERE audit_event_id = 1").await;
        rehash_from(&app, 1, None).await;
        assert_verify_names(&app, 1, "changing row 1 and rehashing everything with plain SHA-256");
        rehash_from(&app, 1, Some(&ATTACKER_KEY)).await;
        assert_verify_names(&app, 1, "changing row 1 and rehashing everything under another key");
    })
    .await;
}

#[tokio::test]
async fn deleting_a_row_and_renumbering_the_rest_fails_verify_without_the_key() {
    each_backend(async |app: TestApp| {
        six_rows(&app).await;
        db_exec(&app, "DELETE FROM audit_event WHERE audit_event_id = 3").await;
        // In two steps, so that no id is taken twice on the way.
        db_exec(&app, "UPDATE audit_event SET audit_event_id = audit_event_id + 1000 WHERE audit_event_id > 3").await;
        db_exec(&app, "UPDATE audit_event SET audit_event_id = audit_event_id - 1001 WHERE audit_event_id > 1000")
            .await;
        rehash_from(&app, 3, None).await;
        assert_verify_names(&app, 3, "deleting row 3, renumbering and rehashing with plain SHA-256");
        rehash_from(&app, 3, Some(&ATTACKER_KEY)).await;
        assert_verify_names(&app, 3, "deleting row 3, renumbering and rehashing under another key");
    })
    .await;
}

#[tokio::test]
async fn appending_a_forged_row_fails_verify_without_the_key() {
    each_backend(async |app: TestApp| {
        let rows = six_rows(&app).await;
        let last = &rows[5];
        let entry =
            lifeline::audit::AuditEntry::new(last.entry.at, &lifeline::audit::Actor::System, "person.grant", "success")
                .reason("approved by the board");
        for key in [None, Some(&ATTACKER_KEY[..])] {
            db_exec(&app, "DELETE FROM audit_event WHERE audit_event_id = 7").await;
            let hash = forged_hash(7, &entry, &last.hash, key);
            db_exec(
                &app,
                &format!(
                    "INSERT INTO audit_event (audit_event_id, at, actor, action, reason, outcome, prev_hash, hash) \
                     VALUES (7, {}, 'system', 'person.grant', 'approved by the board', 'success', '{}', '{hash}')",
                    entry.at, last.hash
                ),
            )
            .await;
            db_exec(&app, &format!("UPDATE audit_head SET last_id = 7, last_hash = '{hash}' WHERE audit_head_id = 1"))
                .await;
            assert_verify_names(&app, 7, &format!("a forged row 7 (key {key:?})"));
        }
    })
    .await;
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
            let result = sqlx::raw_sql(sqlx::AssertSqlSafe(insert(id))).execute(app.db.pool()).await;
            assert!(result.is_err(), "an audit row with id {id} must be refused");
        }
        // Rows the schema refuses never reach the dossier either: the log is what verify checked.
        assert!(lifeline(app.dir(), &app.db_url(), &["audit", "verify"]).status.success());
    })
    .await;
}

#[tokio::test]
async fn verify_names_every_unreadable_row_and_carries_on() {
    each_backend(async |app: TestApp| {
        if app.db.backend() != lifeline::store::Backend::Sqlite {
            return; // PostgreSQL's column types refuse such values; SQLite stores what it is given.
        }
        six_rows(&app).await;
        db_exec(&app, "UPDATE audit_event SET at = 1.5 WHERE audit_event_id = 2").await;
        db_exec(&app, "UPDATE audit_event SET subject_person_id = 'seven' WHERE audit_event_id = 4").await;
        let verify = lifeline(app.dir(), &app.db_url(), &["audit", "verify"]);
        assert_eq!(verify.status.code(), Some(1), "{}", stderr(&verify));
        let err = stderr(&verify);
        assert!(err.contains("audit row 2: unreadable") && err.contains("audit row 4: unreadable"), "{err}");
        assert!(!err.contains("audit row 3:") && !err.contains("audit row 5:"), "only the bad rows are named: {err}");
    })
    .await;
}

// --- A log from before the chain was keyed ---------------------------------------------------------------------

/// A database as Lifeline left it before the chain was keyed: migrations 1 to 3, and `rows` audit rows hashed with
/// plain SHA-256.
async fn legacy_database(db: &TestDb, rows: i64) {
    let store = lifeline::store::SqlStore::connect(&db.url).await.unwrap_or_else(|e| panic!("{e}"));
    let pool = store.pool();
    let migrations = match store.backend() {
        lifeline::store::Backend::Sqlite => [
            include_str!("../../crates/store/migrations/sqlite/0001_directory_and_credentials.sql"),
            include_str!("../../crates/store/migrations/sqlite/0002_audit.sql"),
            include_str!("../../crates/store/migrations/sqlite/0003_outbox_and_assistance.sql"),
        ],
        lifeline::store::Backend::Postgres => [
            include_str!("../../crates/store/migrations/postgres/0001_directory_and_credentials.sql"),
            include_str!("../../crates/store/migrations/postgres/0002_audit.sql"),
            include_str!("../../crates/store/migrations/postgres/0003_outbox_and_assistance.sql"),
        ],
    };
    sqlx::raw_sql(
        "CREATE TABLE schema_migration (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL); \
         INSERT INTO schema_migration VALUES (1, 'directory_and_credentials', 0), (2, 'audit', 0), \
         (3, 'outbox_and_assistance', 0)",
    )
    .execute(pool)
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    for sql in migrations {
        sqlx::raw_sql(sql).execute(pool).await.unwrap_or_else(|e| panic!("{e}"));
    }
    let mut prev = lifeline::audit::GENESIS.to_string();
    for id in 1..=rows {
        let entry = lifeline::audit::AuditEntry::new(
            1_700_000_000 + id,
            &lifeline::audit::Actor::System,
            "person.add",
            "success",
        );
        let hash = lifeline::audit::legacy_hash(id, &entry, &prev);
        sqlx::query(
            "INSERT INTO audit_event (audit_event_id, at, actor, action, outcome, prev_hash, hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id)
        .bind(entry.at)
        .bind(&entry.actor)
        .bind(&entry.action)
        .bind(&entry.outcome)
        .bind(&prev)
        .bind(&hash)
        .execute(pool)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        prev = hash;
    }
    sqlx::query("UPDATE audit_head SET last_id = $1, last_hash = $2 WHERE audit_head_id = 1")
        .bind(rows)
        .bind(&prev)
        .execute(pool)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    store.close().await;
}

#[tokio::test]
async fn a_log_from_before_the_key_is_pinned_at_the_first_start_and_still_checked() {
    for db in databases().await {
        println!("--- on {}", db.label);
        legacy_database(&db, 3).await;
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        if db.label == "sqlite" {
            // A row with a NULL id (the old table allowed it) stops the migration with a message, not silently.
            sqlx::raw_sql("INSERT INTO audit_event (audit_event_id, at, actor, action, outcome, prev_hash, hash) VALUES (NULL, 1, 'x', 'x', 'x', 'x', 'x')")
                .execute(&sqlx::AnyPool::connect(&db.url).await.unwrap_or_else(|e| panic!("{e}")))
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let migrate = lifeline(dir.path(), &db.url, &["migrate"]);
            assert!(
                !migrate.status.success() && stderr(&migrate).contains("NULL or not an integer"),
                "{}",
                stderr(&migrate)
            );
            sqlx::raw_sql("DELETE FROM audit_event WHERE audit_event_id IS NULL")
                .execute(&sqlx::AnyPool::connect(&db.url).await.unwrap_or_else(|e| panic!("{e}")))
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
        // Checking needs the key the log was written with: without a key file, verify says so and creates none.
        let no_key = lifeline(dir.path(), &db.url, &["audit", "verify"]);
        assert!(!no_key.status.success() && stderr(&no_key).contains("needs its key"), "{}", stderr(&no_key));
        assert!(!dir.path().join("lifeline.key").exists());

        let mut settings = test_settings(dir.path());
        settings.database_url = db.url.clone();
        let app = spawn_in(dir, settings, db).await;
        let (dir, url) = (app.dir(), app.db_url());
        let verify = lifeline(dir, &url, &["audit", "verify"]);
        assert!(verify.status.success(), "{}", stderr(&verify));
        assert!(
            stdout(&verify).contains("4 rows") && stdout(&verify).contains("rows 1 to 3 were written before"),
            "{}",
            stdout(&verify)
        );
        let rows = chain_rows(&app).await;
        assert_eq!((rows[3].entry.action.as_str(), rows[3].entry.actor.as_str()), ("audit.seal", "system"));
        assert_eq!(
            rows[2].hash,
            lifeline::audit::legacy_hash(3, &rows[2].entry, &rows[2].prev_hash),
            "old rows keep their hashes"
        );
        app.add_person("ada", false).await;
        assert!(lifeline(dir, &url, &["audit", "verify"]).status.success(), "the log goes on, keyed");

        // The old rows are pinned: a change, even rehashed up to the seal row, is found.
        db_exec(&app, "UPDATE audit_event SET outcome = 'failure' WHERE audit_event_id = 2").await;
        assert_verify_names(&app, 2, "changing an old row");
        let mut prev = rows[0].hash.clone();
        for row in chain_rows(&app).await.iter().filter(|r| r.id == 2 || r.id == 3) {
            let hash = forged_hash(row.id, &row.entry, &prev, None);
            db_exec(
                &app,
                &format!(
                    "UPDATE audit_event SET prev_hash = '{prev}', hash = '{hash}' WHERE audit_event_id = {}",
                    row.id
                ),
            )
            .await;
            prev = hash;
        }
        assert_verify_names(&app, 4, "changing an old row and rehashing the old rows");
    }
}
