//! Sessions and sign-in events on the SQL backends.

use super::sql::*;
use super::*;
use sqlx::Row;

#[async_trait]
impl SessionStore for SqlStore {
    async fn create_session(
        &self,
        token: &TokenHash,
        account: AccountId,
        stage: SessionStage,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> StoreResult<()> {
        let _turn = self.write_turn().await;
        sqlx::query("INSERT INTO web_session (token_hash, account_id, stage, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&token.0)
            .bind(account.0)
            .bind(stage.as_str())
            .bind(now)
            .bind(expires_at)
            .execute(&self.pool)
            .await.db()?;
        Ok(())
    }

    async fn session(&self, token: &TokenHash, now: Timestamp) -> StoreResult<Option<SessionRecord>> {
        // The account's state is read with the session, on every request: a disabled person's session
        // dies at once, and a half-finished sign-in cannot finish on a locked account.
        let row = sqlx::query(
            "SELECT s.account_id, s.stage, s.expires_at, s.second_factor_at, s.created_at FROM web_session s \
             JOIN account a ON a.account_id = s.account_id JOIN person p ON p.person_id = a.person_id \
             WHERE s.token_hash = $1 AND s.expires_at > $2 AND p.status = 'active' \
               AND (s.stage = 'active' OR a.locked_at IS NULL OR a.locked_until <= $2)",
        )
        .bind(&token.0)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .db()?;
        let Some(row) = row else { return Ok(None) };
        let stage: String = row.try_get("stage").db()?;
        Ok(Some(SessionRecord {
            account_id: AccountId(row.try_get("account_id").db()?),
            stage: SessionStage::parse(&stage)
                .ok_or_else(|| StoreError::Corrupt(format!("session stage {stage:?}")))?,
            expires_at: row.try_get("expires_at").db()?,
            second_factor_at: row.try_get("second_factor_at").db()?,
            created_at: row.try_get("created_at").db()?,
        }))
    }

    async fn advance_session(
        &self,
        old: &TokenHash,
        new: &TokenHash,
        stage: SessionStage,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> StoreResult<bool> {
        let _turn = self.write_turn().await;
        let result = sqlx::query(
            "UPDATE web_session SET token_hash = $1, stage = $2, expires_at = $3, \
               second_factor_at = CASE WHEN stage IN ('mfa', 'enroll_mfa', 'enroll_passkey') THEN $5 ELSE second_factor_at END \
             WHERE token_hash = $4 AND expires_at > $5",
        )
        .bind(&new.0)
        .bind(stage.as_str())
        .bind(expires_at)
        .bind(&old.0)
        .bind(now)
        .execute(&self.pool)
        .await
        .db()?;
        Ok(result.rows_affected() == 1)
    }

    async fn mark_second_factor(&self, token: &TokenHash, now: Timestamp) -> StoreResult<()> {
        let _turn = self.write_turn().await;
        sqlx::query("UPDATE web_session SET second_factor_at = $1 WHERE token_hash = $2")
            .bind(now)
            .bind(&token.0)
            .execute(&self.pool)
            .await
            .db()?;
        Ok(())
    }

    async fn delete_session(&self, token: &TokenHash) -> StoreResult<()> {
        let _turn = self.write_turn().await;
        sqlx::query("DELETE FROM web_session WHERE token_hash = $1").bind(&token.0).execute(&self.pool).await.db()?;
        Ok(())
    }

    async fn session_pending_totp(&self, token: &TokenHash) -> StoreResult<Option<Vec<u8>>> {
        let row = sqlx::query("SELECT pending_totp FROM web_session WHERE token_hash = $1")
            .bind(&token.0)
            .fetch_optional(&self.pool)
            .await
            .db()?;
        Ok(match row {
            Some(row) => row.try_get("pending_totp").db()?,
            None => None,
        })
    }

    async fn set_session_pending_totp(&self, token: &TokenHash, sealed: &[u8]) -> StoreResult<()> {
        let _turn = self.write_turn().await;
        sqlx::query("UPDATE web_session SET pending_totp = $1 WHERE token_hash = $2")
            .bind(sealed.to_vec())
            .bind(&token.0)
            .execute(&self.pool)
            .await
            .db()?;
        Ok(())
    }

    async fn delete_expired_sessions(&self, now: Timestamp) -> StoreResult<u64> {
        let _turn = self.write_turn().await;
        let result =
            sqlx::query("DELETE FROM web_session WHERE expires_at <= $1").bind(now).execute(&self.pool).await.db()?;
        // Passkey ceremonies left unfinished expire with the same sweep (none lives longer than minutes).
        sqlx::query("DELETE FROM webauthn_ceremony WHERE expires_at <= $1").bind(now).execute(&self.pool).await.db()?;
        Ok(result.rows_affected())
    }
}

#[async_trait]
impl EventStore for SqlStore {
    async fn authenticator_record(&self, account: AccountId, limit: i64) -> StoreResult<Vec<AuthenticatorEvent>> {
        // Changes from the history, uses from the sign-in events: a use is an accepted step, whichever
        // authenticator made it. Within one second a use is listed as the newer: an authenticator is bound before
        // it is used.
        // Every change is listed; the uses, which grow with each sign-in, are the newest `limit`.
        let rows = sqlx::query(
            "SELECT at, kind, change, actor, detail FROM ( \
               SELECT at, kind, change, actor, detail, 1 AS src, authenticator_history_id AS seq \
                 FROM authenticator_history WHERE account_id = $1 \
               UNION ALL \
               SELECT at, kind, change, actor, detail, src, seq FROM ( \
                 SELECT at, method AS kind, 'used' AS change, 'self' AS actor, NULL AS detail, 0 AS src, \
                        sign_in_event_id AS seq \
                   FROM sign_in_event WHERE account_id = $1 \
                    AND outcome IN ('success', 'password_accepted', 'second_factor_accepted', 'code_accepted', \
                                    'password_reset') \
                  ORDER BY at DESC, sign_in_event_id DESC LIMIT $2 \
               ) uses \
             ) record ORDER BY at DESC, src ASC, seq DESC",
        )
        .bind(account.0)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .db()?;
        rows.iter()
            .map(|r| {
                Ok(AuthenticatorEvent {
                    at: r.try_get("at").db()?,
                    kind: r.try_get("kind").db()?,
                    change: r.try_get("change").db()?,
                    actor: r.try_get("actor").db()?,
                    detail: r.try_get("detail").db()?,
                })
            })
            .collect()
    }

    async fn record_sign_in(&self, e: &SignInEvent) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        insert_sign_in(&mut tx, self.audit_key()?, e).await?;
        tx.commit().await.db()?;
        Ok(())
    }

    async fn recent_sign_ins(&self, account: AccountId, limit: i64) -> StoreResult<Vec<SignInEvent>> {
        let rows = sqlx::query(
            "SELECT account_id, at, outcome, method, client_ip, city, country, asn, network, user_agent FROM sign_in_event \
             WHERE account_id = $1 ORDER BY at DESC, sign_in_event_id DESC LIMIT $2",
        )
        .bind(account.0)
        .bind(limit)
        .fetch_all(&self.pool)
        .await.db()?;
        rows.iter()
            .map(|r| {
                Ok(SignInEvent {
                    account_id: r.try_get::<Option<i64>, _>("account_id").db()?.map(AccountId),
                    at: r.try_get("at").db()?,
                    outcome: r.try_get("outcome").db()?,
                    method: r.try_get("method").db()?,
                    client_ip: r.try_get("client_ip").db()?,
                    city: r.try_get("city").db()?,
                    country: r.try_get("country").db()?,
                    asn: r.try_get::<Option<i64>, _>("asn").db()?.and_then(|a| u32::try_from(a).ok()),
                    network: r.try_get("network").db()?,
                    user_agent: r.try_get("user_agent").db()?,
                })
            })
            .collect()
    }
}

#[async_trait]
impl ThrottleStore for SqlStore {
    async fn reserve_client_attempt(&self, bucket: &str, window_start: Timestamp, max: u32) -> StoreResult<bool> {
        let _turn = self.write_turn().await;
        // One statement: the insert-or-increment refuses once the window is full, so parallel attempts
        // (on any instance) cannot overshoot the limit.
        let row = sqlx::query(
            "INSERT INTO sign_in_throttle (bucket, window_start, attempts) VALUES ($1, $2, 1) \
             ON CONFLICT (bucket, window_start) DO UPDATE SET attempts = sign_in_throttle.attempts + 1 \
             WHERE sign_in_throttle.attempts < $3 RETURNING attempts",
        )
        .bind(bucket)
        .bind(window_start)
        .bind(i64::from(max))
        .fetch_optional(&self.pool)
        .await
        .db()?;
        Ok(row.is_some())
    }

    async fn release_client_attempt(&self, bucket: &str, window_start: Timestamp) -> StoreResult<()> {
        let _turn = self.write_turn().await;
        sqlx::query(
            "UPDATE sign_in_throttle SET attempts = attempts - 1 \
             WHERE bucket = $1 AND window_start = $2 AND attempts > 0",
        )
        .bind(bucket)
        .bind(window_start)
        .execute(&self.pool)
        .await
        .db()?;
        Ok(())
    }

    async fn delete_old_throttle_windows(&self, before: Timestamp) -> StoreResult<u64> {
        let _turn = self.write_turn().await;
        let result = sqlx::query("DELETE FROM sign_in_throttle WHERE window_start < $1")
            .bind(before)
            .execute(&self.pool)
            .await
            .db()?;
        Ok(result.rows_affected())
    }
}

#[async_trait]
impl KeyStore for SqlStore {
    async fn key_fingerprint(&self) -> StoreResult<Option<String>> {
        let row = sqlx::query("SELECT fingerprint FROM key_fingerprint WHERE key_fingerprint_id = 1")
            .fetch_optional(&self.pool)
            .await
            .db()?;
        Ok(match row {
            Some(row) => Some(row.try_get("fingerprint").db()?),
            None => None,
        })
    }

    async fn record_key_fingerprint(&self, fingerprint: &str, now: Timestamp) -> StoreResult<String> {
        let _turn = self.write_turn().await;
        sqlx::query(
            "INSERT INTO key_fingerprint (key_fingerprint_id, fingerprint, created_at) VALUES (1, $1, $2) \
             ON CONFLICT (key_fingerprint_id) DO NOTHING",
        )
        .bind(fingerprint)
        .bind(now)
        .execute(&self.pool)
        .await
        .db()?;
        self.key_fingerprint().await?.ok_or_else(|| StoreError::Corrupt("the key fingerprint vanished".into()))
    }

    async fn holds_data(&self) -> StoreResult<bool> {
        // People (their backup codes and sessions are keyed hashes) and TOTP secrets (sealed). A keyed audit
        // log is guarded by its sealed head already; rows from before the chain was keyed need no key.
        let row = sqlx::query("SELECT (SELECT COUNT(*) FROM person) + (SELECT COUNT(*) FROM totp_credential) AS n")
            .fetch_one(&self.pool)
            .await
            .db()?;
        Ok(row.try_get::<i64, _>("n").db()? > 0)
    }

    async fn any_sealed_secret(&self) -> StoreResult<Option<(AccountId, Vec<u8>)>> {
        let row = sqlx::query("SELECT account_id, secret_ciphertext FROM totp_credential ORDER BY account_id LIMIT 1")
            .fetch_optional(&self.pool)
            .await
            .db()?;
        Ok(match row {
            Some(row) => Some((AccountId(row.try_get("account_id").db()?), row.try_get("secret_ciphertext").db()?)),
            None => None,
        })
    }
}
