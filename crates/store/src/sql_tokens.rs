//! Personal API tokens on the SQL backends: only keyed hashes are stored; making and revoking one is audited
//! in its transaction; finding one for a call checks it is live in the same statement that marks it used.

use super::sql::*;
use super::*;
use sqlx::Row;

/// A token's recorded last use is at most this many seconds behind its real last use.
const LAST_USE_GRANULARITY_SECONDS: i64 = 60;

const TOKEN_COLUMNS: &str = "api_token_id, account_id, name, expert, created_at, expires_at, revoked_at, last_used_at";

fn token_from_row(row: &sqlx::any::AnyRow) -> StoreResult<ApiToken> {
    Ok(ApiToken {
        id: row.try_get("api_token_id").db()?,
        account: AccountId(row.try_get("account_id").db()?),
        name: row.try_get("name").db()?,
        expert: flag(row, "expert").db()?,
        created_at: row.try_get("created_at").db()?,
        expires_at: row.try_get("expires_at").db()?,
        revoked_at: row.try_get("revoked_at").db()?,
        last_used_at: row.try_get("last_used_at").db()?,
    })
}

#[async_trait]
impl TokenStore for SqlStore {
    async fn create_token(&self, token: &NewApiToken<'_>, now: Timestamp, audit: &AuditEntry) -> StoreResult<i64> {
        let mut tx = self.audited().await?;
        let id: i64 = sqlx::query(
            "INSERT INTO api_token (account_id, name, token_hash, expert, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING api_token_id",
        )
        .bind(token.account.0)
        .bind(token.name)
        .bind(&token.hash.0)
        .bind(i64::from(token.expert))
        .bind(now)
        .bind(token.expires_at)
        .fetch_one(&mut *tx)
        .await
        .db()?
        .try_get(0)
        .db()?;
        let mut entry = audit.clone();
        entry.details = Some(match entry.details.take() {
            Some(d) => format!("token {id}: {d}"),
            None => format!("token {id}"),
        });
        tx.commit(&entry).await?;
        Ok(id)
    }

    async fn tokens(&self, account: Option<AccountId>) -> StoreResult<Vec<ApiToken>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TOKEN_COLUMNS} FROM api_token WHERE ($1 IS NULL OR account_id = $1) ORDER BY api_token_id DESC"
        )))
        .bind(account.map(|a| a.0))
        .fetch_all(&self.pool)
        .await
        .db()?;
        rows.iter().map(token_from_row).collect()
    }

    async fn token(&self, id: i64) -> StoreResult<Option<ApiToken>> {
        let row =
            sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {TOKEN_COLUMNS} FROM api_token WHERE api_token_id = $1")))
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .db()?;
        row.as_ref().map(token_from_row).transpose()
    }

    async fn use_token(&self, hash: &TokenHash, now: Timestamp) -> StoreResult<Option<ApiToken>> {
        // Live-ness is decided by one statement: a token revoked a moment ago is not found. The last use is
        // written only when it moved on by a minute: a busy token costs no write (and no commit) per call.
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TOKEN_COLUMNS} FROM api_token WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > $2"
        )))
        .bind(&hash.0)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .db()?;
        let Some(token) = row.as_ref().map(token_from_row).transpose()? else { return Ok(None) };
        if token.last_used_at.is_some_and(|at| now - at < LAST_USE_GRANULARITY_SECONDS) {
            return Ok(Some(token));
        }
        let _turn = self.write_turn().await;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE api_token SET last_used_at = $1 \
             WHERE token_hash = $2 AND revoked_at IS NULL AND expires_at > $1 RETURNING {TOKEN_COLUMNS}"
        )))
        .bind(now)
        .bind(&hash.0)
        .fetch_optional(&self.pool)
        .await
        .db()?;
        row.as_ref().map(token_from_row).transpose()
    }

    async fn revoke_token(&self, id: i64, now: Timestamp, audit: &AuditEntry) -> StoreResult<bool> {
        let mut tx = self.audited().await?;
        let done = sqlx::query("UPDATE api_token SET revoked_at = $1 WHERE api_token_id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await
            .db()?
            .rows_affected()
            == 1;
        if !done {
            tx.rollback().await?;
            return Ok(false);
        }
        tx.commit(audit).await?;
        Ok(true)
    }
}
