//! A small migration runner: plain SQL files per backend, applied in order, each in its own transaction
//! and recorded in `schema_migration`. A migration is never edited once released; add a new one.

use super::StoreResult;
use super::sql::Backend;
use sqlx::{AnyPool, Row};

struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "directory_and_credentials",
    sqlite: include_str!("../../migrations/sqlite/0001_directory_and_credentials.sql"),
    postgres: include_str!("../../migrations/postgres/0001_directory_and_credentials.sql"),
}];

/// Apply what is missing; returns the names of the migrations applied now.
pub async fn run(pool: &AnyPool, backend: Backend) -> StoreResult<Vec<String>> {
    sqlx::query("CREATE TABLE IF NOT EXISTS schema_migration (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)")
        .execute(pool)
        .await?;
    let mut applied = Vec::new();
    for m in MIGRATIONS {
        let mut tx = pool.begin().await?;
        let done = sqlx::query("SELECT version FROM schema_migration WHERE version = $1")
            .bind(m.version)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| r.try_get::<i64, _>(0))
            .transpose()?
            .is_some();
        if done {
            continue;
        }
        let sql = match backend {
            Backend::Sqlite => m.sqlite,
            Backend::Postgres => m.postgres,
        };
        sqlx::raw_sql(sql).execute(&mut *tx).await?;
        sqlx::query("INSERT INTO schema_migration (version, name, applied_at) VALUES ($1, $2, $3)")
            .bind(m.version)
            .bind(m.name)
            .bind(chrono::Utc::now().timestamp())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        applied.push(format!("{:04}_{}", m.version, m.name));
    }
    Ok(applied)
}
