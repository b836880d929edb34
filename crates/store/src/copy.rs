//! Copying a whole Lifeline database to another backend (`lifeline copy-db`), e.g. from the embedded SQLite
//! file to PostgreSQL when an organisation outgrows one machine.
//!
//! The target is migrated first and must be empty; everything is written in one transaction on the target,
//! so a failed copy leaves it empty. Sessions are not copied (people sign in again after a move). Keys are
//! not in the database: keep the same key file or `LIFELINE_SECRET_KEY`, or TOTP secrets cannot be opened.

use super::sql::{Backend, SqlStore};
use super::{Db, StoreError, StoreResult};
use sqlx::Row;

#[derive(Clone, Copy)]
enum Kind {
    Int,
    Text,
    Bytes,
}
use Kind::{Bytes, Int, Text};

/// A table's name, its key (the copy order) and its columns.
type Table = (&'static str, &'static str, &'static [(&'static str, Kind)]);

/// Every table with data worth moving, parents before children.
const TABLES: &[Table] = &[
    // The same key serves the copy, so its fingerprint moves with the data.
    (
        "key_fingerprint",
        "key_fingerprint_id",
        &[("key_fingerprint_id", Int), ("fingerprint", Text), ("created_at", Int)],
    ),
    (
        "person",
        "person_id",
        &[
            ("person_id", Int),
            ("display_name", Text),
            ("email", Text),
            ("phone", Text),
            ("manager_id", Int),
            ("department", Text),
            ("status", Text),
            ("created_at", Int),
        ],
    ),
    (
        "permission_grant",
        "person_id",
        &[
            ("person_id", Int),
            ("dpa_level", Int),
            ("expert_mode", Int),
            ("auditor", Int),
            ("directory_admin", Int),
            ("granted_at", Int),
            ("granted_by", Text),
        ],
    ),
    (
        "account",
        "account_id",
        &[
            ("account_id", Int),
            ("person_id", Int),
            ("username", Text),
            ("source", Text),
            ("password_hash", Text),
            ("password_changed_at", Int),
            ("failed_attempts", Int),
            ("lock_count", Int),
            ("locked_at", Int),
            ("lock_reason", Text),
            ("locked_until", Int),
            ("unlocked_by", Text),
            ("unlocked_at", Int),
            ("require_change_password", Int),
            ("require_enroll_mfa", Int),
            ("require_device_authorization", Int),
            ("qa_failed_attempts", Int),
            ("qa_locked_at", Int),
            ("created_at", Int),
            ("last_failed_at", Int),
            ("temporary_password_until", Int),
        ],
    ),
    (
        "totp_credential",
        "account_id",
        &[
            ("account_id", Int),
            ("secret_ciphertext", Bytes),
            ("confirmed_at", Int),
            ("last_used_step", Int),
            ("created_at", Int),
        ],
    ),
    (
        "backup_code",
        "backup_code_id",
        &[("backup_code_id", Int), ("account_id", Int), ("code_hash", Text), ("used_at", Int), ("created_at", Int)],
    ),
    (
        "qa_answer",
        "account_id, question_index",
        &[("account_id", Int), ("question_index", Int), ("answer_hash", Text), ("created_at", Int)],
    ),
    (
        "authenticator_history",
        "authenticator_history_id",
        &[
            ("authenticator_history_id", Int),
            ("account_id", Int),
            ("kind", Text),
            ("change", Text),
            ("at", Int),
            ("actor", Text),
            ("detail", Text),
        ],
    ),
    (
        "sign_in_event",
        "sign_in_event_id",
        &[
            ("sign_in_event_id", Int),
            ("account_id", Int),
            ("at", Int),
            ("outcome", Text),
            ("method", Text),
            ("client_ip", Text),
            ("city", Text),
            ("country", Text),
            ("asn", Int),
            ("network", Text),
            ("user_agent", Text),
        ],
    ),
    (
        "audit_event",
        "audit_event_id",
        &[
            ("audit_event_id", Int),
            ("at", Int),
            ("actor", Text),
            ("on_behalf_of", Text),
            ("action", Text),
            ("subject_person_id", Int),
            ("subject_account_id", Int),
            ("reason", Text),
            ("details", Text),
            ("client_ip", Text),
            ("outcome", Text),
            ("reference", Text),
            ("notified", Text),
            ("prev_hash", Text),
            ("hash", Text),
        ],
    ),
    (
        "outbox_email",
        "outbox_email_id",
        &[
            ("outbox_email_id", Int),
            ("message_id", Text),
            ("to_address", Text),
            ("subject", Text),
            ("text_body", Text),
            ("html_body", Text),
            ("created_at", Int),
            ("next_attempt_at", Int),
            ("attempts", Int),
            ("claimed_until", Int),
            ("sent_at", Int),
            ("last_error", Text),
        ],
    ),
    (
        "assistance_request",
        "assistance_request_id",
        &[
            ("assistance_request_id", Int),
            ("reference", Text),
            ("submitted_email", Text),
            ("problem", Text),
            ("description", Text),
            ("client_ip", Text),
            ("user_agent", Text),
            ("created_at", Int),
            ("status", Text),
            ("joined_to", Int),
            ("repeat_count", Int),
            ("person_id", Int),
            ("account_id", Int),
            ("dossier", Text),
            ("notified", Text),
            ("processed_at", Int),
            ("claimed_until", Int),
            ("closed_by", Text),
            ("closed_at", Int),
            ("close_note", Text),
            ("network", Text),
            ("country", Text),
            ("digest_due_at", Int),
        ],
    ),
    (
        "recovery_secret",
        "recovery_secret_id",
        &[
            ("recovery_secret_id", Int),
            ("account_id", Int),
            ("kind", Text),
            ("secret_hash", Text),
            ("created_at", Int),
            ("expires_at", Int),
            ("multi_use", Int),
            ("uses", Int),
            ("used_at", Int),
            ("revoked_at", Int),
            ("action", Text),
            ("reference", Text),
        ],
    ),
    (
        "approval",
        "approval_id",
        &[
            ("approval_id", Int),
            ("action", Text),
            ("person_id", Int),
            ("requested_by_account", Int),
            ("requested_by", Text),
            ("form", Text),
            ("created_at", Int),
            ("expires_at", Int),
            ("status", Text),
            ("decided_by", Text),
            ("decided_at", Int),
        ],
    ),
    (
        "api_token",
        "api_token_id",
        &[
            ("api_token_id", Int),
            ("account_id", Int),
            ("name", Text),
            ("token_hash", Text),
            ("expert", Int),
            ("created_at", Int),
            ("expires_at", Int),
            ("revoked_at", Int),
            ("last_used_at", Int),
        ],
    ),
    (
        "passkey",
        "passkey_id",
        &[
            ("passkey_id", Int),
            ("account_id", Int),
            ("credential_id", Text),
            ("name", Text),
            ("credential", Text),
            ("created_at", Int),
            ("last_used_at", Int),
        ],
    ),
    (
        "notification_address",
        "person_id",
        &[
            ("person_id", Int),
            ("address", Text),
            ("added_at", Int),
            ("confirmed_at", Int),
            ("code_hash", Text),
            ("code_expires_at", Int),
            ("failed_tries", Int),
        ],
    ),
    (
        "ticket",
        "ticket_id",
        &[
            ("ticket_id", Int),
            ("reference", Text),
            ("kind", Text),
            ("requester_person_id", Int),
            ("subject_person_id", Int),
            ("subject_account_id", Int),
            ("status", Text),
            ("summary", Text),
            ("assignee", Text),
            ("confirm_hash", Text),
            ("created_at", Int),
            ("updated_at", Int),
        ],
    ),
    (
        "ticket_note",
        "ticket_note_id",
        &[("ticket_note_id", Int), ("ticket_id", Int), ("at", Int), ("author", Text), ("status", Text), ("body", Text)],
    ),
    (
        "secure_link",
        "secure_link_id",
        &[
            ("secure_link_id", Int),
            ("link_hash", Text),
            ("ticket_id", Int),
            ("manager_account_id", Int),
            ("subject_account_id", Int),
            ("sealed_password", Bytes),
            ("created_at", Int),
            ("expires_at", Int),
            ("used_at", Int),
        ],
    ),
    (
        "attestation",
        "attestation_id",
        &[
            ("attestation_id", Int),
            ("subject_person_id", Int),
            ("manager_person_id", Int),
            ("requested_by_account", Int),
            ("requested_by", Text),
            ("reference", Text),
            ("question", Text),
            ("status", Text),
            ("answer_note", Text),
            ("answered_by", Text),
            ("answered_at", Int),
            ("answered_second_factor_at", Int),
            ("created_at", Int),
            ("expires_at", Int),
        ],
    ),
];

/// Tables deliberately left behind: bookkeeping (migrations, the job lock row the target's migration
/// creates), sessions (people sign in again), rate-limit and throttle windows and WebAuthn ceremonies (minutes
/// long), and the people search table with its trigram index (SQLite's FTS5 tables), which the copy builds again
/// from the people and accounts it moved.
pub const NOT_COPIED: &[&str] = &[
    "schema_migration",
    "web_session",
    "rate_limit_counter",
    "job_lock",
    "sign_in_throttle",
    "webauthn_ceremony",
    "person_search",
    "person_search_trigrams",
    "person_search_trigrams_data",
    "person_search_trigrams_idx",
    "person_search_trigrams_docsize",
    "person_search_trigrams_config",
];

/// The tables `copy` moves.
pub fn copied_tables() -> Vec<&'static str> {
    TABLES.iter().map(|(t, _, _)| *t).chain(["audit_head"]).collect()
}

/// Copy everything from `from` to the empty, migrated `to`; returns rows copied per table.
pub async fn copy(from: &SqlStore, to: &SqlStore) -> StoreResult<Vec<(&'static str, usize)>> {
    to.migrate().await?;
    for (table, _, _) in TABLES {
        let n: i64 = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) AS n FROM {table}")))
            .fetch_one(to.pool())
            .await
            .db()?
            .try_get("n")
            .db()?;
        if n > 0 {
            return Err(StoreError::Conflict(format!("the target database is not empty (table {table} has {n} rows)")));
        }
    }
    let mut tx = to.begin_write().await?;
    let mut counts = Vec::new();
    for (table, order, columns) in TABLES {
        let names: Vec<&str> = columns.iter().map(|(c, _)| *c).collect();
        let rows =
            sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {} FROM {table} ORDER BY {order}", names.join(", "))))
                .fetch_all(from.pool())
                .await
                .db()?;
        // A manager may have been added after their report: link managers in a second pass.
        let insert_names: Vec<&str> =
            names.iter().copied().filter(|c| !(*table == "person" && *c == "manager_id")).collect();
        let placeholders: Vec<String> = (1..=insert_names.len()).map(|i| format!("${i}")).collect();
        // Built once per table from the fixed table list, never from data; shared by every row's statement.
        let insert: std::sync::Arc<str> =
            format!("INSERT INTO {table} ({}) VALUES ({})", insert_names.join(", "), placeholders.join(", ")).into();
        for row in &rows {
            let mut query = sqlx::query(sqlx::AssertSqlSafe(insert.clone()));
            for (name, kind) in columns.iter() {
                if *table == "person" && *name == "manager_id" {
                    continue;
                }
                query = match kind {
                    Int => query.bind(row.try_get::<Option<i64>, _>(*name).db()?),
                    Text => query.bind(row.try_get::<Option<String>, _>(*name).db()?),
                    Bytes => query.bind(row.try_get::<Option<Vec<u8>>, _>(*name).db()?),
                };
            }
            query.execute(&mut *tx).await.db()?;
        }
        if *table == "person" {
            for row in &rows {
                if let Some(manager) = row.try_get::<Option<i64>, _>("manager_id").db()? {
                    sqlx::query("UPDATE person SET manager_id = $1 WHERE person_id = $2")
                        .bind(manager)
                        .bind(row.try_get::<i64, _>("person_id").db()?)
                        .execute(&mut *tx)
                        .await
                        .db()?;
                }
            }
        }
        counts.push((*table, rows.len()));
    }
    // The search table is derived: made again from the copied people and accounts (on SQLite, numbered in
    // name order with its trigram index after).
    let concat = match to.backend() {
        Backend::Sqlite => "group_concat(lower(a.username), ' ')",
        Backend::Postgres => "string_agg(lower(a.username), ' ' ORDER BY a.account_id)",
    };
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO person_search (person_id, sort_key, haystack) \
         SELECT p.person_id, lower(p.display_name), lower(p.display_name) || ' ' || lower(p.email) \
             || COALESCE((SELECT ' ' || {concat} FROM account a WHERE a.person_id = p.person_id), '') \
         FROM person p"
    )))
    .execute(&mut *tx)
    .await
    .db()?;
    if to.backend() == Backend::Sqlite {
        crate::sql_search::renumber_all(&mut tx).await?;
    }
    // The audit chain's head moves with its rows, so the copied log verifies and continues the same chain.
    // Its seal too: the same key file keeps it valid, and no key is needed here.
    let head = sqlx::query("SELECT last_id, last_hash, seal FROM audit_head WHERE audit_head_id = 1")
        .fetch_one(from.pool())
        .await
        .db()?;
    sqlx::query("UPDATE audit_head SET last_id = $1, last_hash = $2, seal = $3 WHERE audit_head_id = 1")
        .bind(head.try_get::<i64, _>("last_id").db()?)
        .bind(head.try_get::<String, _>("last_hash").db()?)
        .bind(head.try_get::<Option<String>, _>("seal").db()?)
        .execute(&mut *tx)
        .await
        .db()?;
    // Identity columns continue after the copied keys (SQLite's AUTOINCREMENT follows inserted keys itself).
    if to.backend() == Backend::Postgres {
        for (table, order, _) in TABLES {
            if order.contains(',') || ["permission_grant", "totp_credential", "audit_event"].contains(table) {
                continue;
            }
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "SELECT setval(pg_get_serial_sequence('{table}', '{order}'), COALESCE((SELECT MAX({order}) FROM {table}), 0) + 1, false)"
            )))
            .execute(&mut *tx)
            .await.db()?;
        }
    }
    tx.commit().await.db()?;
    Ok(counts)
}
