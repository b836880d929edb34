//! A small migration runner: plain SQL files per backend, applied in order, each in its own transaction
//! and recorded in `schema_migration`. A migration is never edited once released; add a new one.

use super::sql::Backend;
use super::{Db, StoreResult};
use sqlx::{AnyConnection, AnyPool};

struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "directory_and_credentials",
        sqlite: include_str!("../migrations/sqlite/0001_directory_and_credentials.sql"),
        postgres: include_str!("../migrations/postgres/0001_directory_and_credentials.sql"),
    },
    Migration {
        version: 2,
        name: "audit",
        sqlite: include_str!("../migrations/sqlite/0002_audit.sql"),
        postgres: include_str!("../migrations/postgres/0002_audit.sql"),
    },
    Migration {
        version: 3,
        name: "outbox_and_assistance",
        sqlite: include_str!("../migrations/sqlite/0003_outbox_and_assistance.sql"),
        postgres: include_str!("../migrations/postgres/0003_outbox_and_assistance.sql"),
    },
    Migration {
        version: 4,
        name: "audit_key",
        sqlite: include_str!("../migrations/sqlite/0004_audit_key.sql"),
        postgres: include_str!("../migrations/postgres/0004_audit_key.sql"),
    },
    Migration {
        version: 5,
        name: "assistance_hardening",
        sqlite: include_str!("../migrations/sqlite/0005_assistance_hardening.sql"),
        postgres: include_str!("../migrations/postgres/0005_assistance_hardening.sql"),
    },
    Migration {
        version: 6,
        name: "sign_in_hardening",
        sqlite: include_str!("../migrations/sqlite/0006_sign_in_hardening.sql"),
        postgres: include_str!("../migrations/postgres/0006_sign_in_hardening.sql"),
    },
    Migration {
        version: 7,
        name: "key_fingerprint",
        sqlite: include_str!("../migrations/sqlite/0007_key_fingerprint.sql"),
        postgres: include_str!("../migrations/postgres/0007_key_fingerprint.sql"),
    },
    Migration {
        version: 8,
        name: "people_search",
        sqlite: include_str!("../migrations/sqlite/0008_people_search.sql"),
        postgres: include_str!("../migrations/postgres/0008_people_search.sql"),
    },
    Migration {
        version: 9,
        name: "recovery",
        sqlite: include_str!("../migrations/sqlite/0009_recovery.sql"),
        postgres: include_str!("../migrations/postgres/0009_recovery.sql"),
    },
    Migration {
        version: 10,
        name: "api_tokens",
        sqlite: include_str!("../migrations/sqlite/0010_api_tokens.sql"),
        postgres: include_str!("../migrations/postgres/0010_api_tokens.sql"),
    },
    Migration {
        version: 11,
        name: "tickets_and_secure_links",
        sqlite: include_str!("../migrations/sqlite/0011_tickets_and_secure_links.sql"),
        postgres: include_str!("../migrations/postgres/0011_tickets_and_secure_links.sql"),
    },
    Migration {
        version: 12,
        name: "manager_attestations",
        sqlite: include_str!("../migrations/sqlite/0012_manager_attestations.sql"),
        postgres: include_str!("../migrations/postgres/0012_manager_attestations.sql"),
    },
    Migration {
        version: 13,
        name: "temporary_password_expiry",
        sqlite: include_str!("../migrations/sqlite/0013_temporary_password_expiry.sql"),
        postgres: include_str!("../migrations/postgres/0013_temporary_password_expiry.sql"),
    },
    Migration {
        version: 14,
        name: "search_at_scale",
        sqlite: include_str!("../migrations/sqlite/0014_search_at_scale.sql"),
        postgres: include_str!("../migrations/postgres/0014_search_at_scale.sql"),
    },
    Migration {
        version: 15,
        name: "search_in_name_order",
        sqlite: include_str!("../migrations/sqlite/0015_search_in_name_order.sql"),
        postgres: include_str!("../migrations/postgres/0015_search_in_name_order.sql"),
    },
    Migration {
        version: 16,
        name: "passkeys",
        sqlite: include_str!("../migrations/sqlite/0016_passkeys.sql"),
        postgres: include_str!("../migrations/postgres/0016_passkeys.sql"),
    },
    Migration {
        version: 17,
        name: "authenticator_record",
        sqlite: include_str!("../migrations/sqlite/0017_authenticator_record.sql"),
        postgres: include_str!("../migrations/postgres/0017_authenticator_record.sql"),
    },
    Migration {
        version: 18,
        name: "notification_addresses",
        sqlite: include_str!("../migrations/sqlite/0018_notification_addresses.sql"),
        postgres: include_str!("../migrations/postgres/0018_notification_addresses.sql"),
    },
];

/// Apply what is missing; returns the names of the migrations applied now.
///
/// Safe when several instances start at once: on PostgreSQL an advisory lock admits one migrator at a
/// time; on SQLite each migration's transaction takes the write lock up front (`BEGIN IMMEDIATE`), so
/// the second migrator waits and then sees the work done.
pub async fn run(pool: &AnyPool, backend: Backend) -> StoreResult<Vec<String>> {
    let mut conn = pool.acquire().await.db()?;
    if backend == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_lock(7402116531)").execute(&mut *conn).await.db()?;
    }
    let result = apply(&mut conn, backend).await;
    if backend == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_unlock(7402116531)").execute(&mut *conn).await.db()?;
    }
    result
}

async fn apply(conn: &mut AnyConnection, backend: Backend) -> StoreResult<Vec<String>> {
    // What is applied already, read without taking SQLite's write lock: an up-to-date database (every CLI
    // command, every instance after the first) migrates nothing and so never waits on a busy writer.
    let known: Vec<i64> = match sqlx::query_scalar("SELECT version FROM schema_migration").fetch_all(&mut *conn).await {
        Ok(known) => known,
        Err(_) => {
            sqlx::query(
                "CREATE TABLE IF NOT EXISTS schema_migration (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
            )
            .execute(&mut *conn)
            .await.db()?;
            Vec::new()
        }
    };
    let begin = match backend {
        Backend::Sqlite => "BEGIN IMMEDIATE",
        Backend::Postgres => "BEGIN",
    };
    let mut applied = Vec::new();
    for m in MIGRATIONS.iter().filter(|m| !known.contains(&m.version)) {
        // Checked again inside the transaction: another migrator may have applied it meanwhile.
        sqlx::raw_sql(begin).execute(&mut *conn).await.db()?;
        match apply_one(conn, backend, m).await {
            Ok(done) => {
                sqlx::raw_sql("COMMIT").execute(&mut *conn).await.db()?;
                if done {
                    applied.push(format!("{:04}_{}", m.version, m.name));
                }
            }
            Err(e) => {
                let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await;
                return Err(e);
            }
        }
    }
    Ok(applied)
}

/// Apply one migration inside the caller's transaction; false when it was applied before.
async fn apply_one(conn: &mut AnyConnection, backend: Backend, m: &Migration) -> StoreResult<bool> {
    let seen = sqlx::query("SELECT version FROM schema_migration WHERE version = $1")
        .bind(m.version)
        .fetch_optional(&mut *conn)
        .await
        .db()?
        .is_some();
    if seen {
        return Ok(false);
    }
    let sql = match backend {
        Backend::Sqlite => m.sqlite,
        Backend::Postgres => m.postgres,
    };
    sqlx::raw_sql(sql).execute(&mut *conn).await.db()?;
    sqlx::query("INSERT INTO schema_migration (version, name, applied_at) VALUES ($1, $2, $3)")
        .bind(m.version)
        .bind(m.name)
        .bind(chrono::Utc::now().timestamp())
        .execute(&mut *conn)
        .await
        .db()?;
    Ok(true)
}
