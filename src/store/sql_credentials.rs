//! Passwords, failure counters and locks, TOTP, backup codes and security questions on the SQL backends.

use super::sql::*;
use super::*;
use crate::audit::Actor;
use crate::domain::LockReason;
use sqlx::Row;

async fn insert_backup_codes(
    conn: &mut sqlx::AnyConnection,
    account: AccountId,
    codes: &[TokenHash],
    now: Timestamp,
) -> StoreResult<()> {
    sqlx::query("DELETE FROM backup_code WHERE account_id = $1").bind(account).execute(&mut *conn).await?;
    for code in codes {
        sqlx::query("INSERT INTO backup_code (account_id, code_hash, created_at) VALUES ($1, $2, $3)")
            .bind(account)
            .bind(&code.0)
            .bind(now)
            .execute(&mut *conn)
            .await?;
    }
    history(conn, account, "backup_codes", if codes.is_empty() { "removed" } else { "bound" }, now).await
}

#[async_trait]
impl CredentialStore for SqlStore {
    async fn set_password(
        &self,
        account: AccountId,
        hash: &str,
        require_change: bool,
        now: Timestamp,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE account SET password_hash = $1, password_changed_at = $2, require_change_password = $3 WHERE account_id = $4")
            .bind(hash)
            .bind(now)
            .bind(i64::from(require_change))
            .bind(account)
            .execute(&mut *tx)
            .await?;
        history(&mut tx, account, "password", "bound", now).await?;
        append(&mut tx, self.audit_key()?, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn record_failure(
        &self,
        account: AccountId,
        policy: &LockoutPolicy,
        now: Timestamp,
        event: &SignInEvent,
    ) -> StoreResult<FailureResult> {
        let mut tx = self.pool.begin().await?;
        // The increment comes first: it takes the row's write lock, so concurrent failures serialise here.
        // Failures while a lock is in force are not counted (the count says how many it took to lock).
        // A temporary lock that has run out is cleared by the same statement and the count starts again,
        // so the next run of failures locks again (for longer: `lock_count` is kept).
        let row = sqlx::query(
            "UPDATE account SET \
               failed_attempts = CASE WHEN locked_until <= $2 THEN 1 \
                                      WHEN locked_at IS NOT NULL THEN failed_attempts \
                                      ELSE failed_attempts + 1 END, \
               locked_at = CASE WHEN locked_until <= $2 THEN NULL ELSE locked_at END, \
               lock_reason = CASE WHEN locked_until <= $2 THEN NULL ELSE lock_reason END, \
               locked_until = CASE WHEN locked_until <= $2 THEN NULL ELSE locked_until END \
             WHERE account_id = $1 RETURNING failed_attempts, lock_count, locked_at, person_id",
        )
        .bind(account)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        let failed_attempts = count(&row, "failed_attempts")?;
        let already_locked: Option<i64> = row.try_get("locked_at")?;
        let mut locked_now = false;
        if already_locked.is_none()
            && let Some(lock) = policy.after_failure(failed_attempts, count(&row, "lock_count")?, now)
        {
            sqlx::query(
                "UPDATE account SET locked_at = $1, locked_until = $2, lock_reason = 'failures', \
                 lock_count = lock_count + 1 WHERE account_id = $3 AND locked_at IS NULL",
            )
            .bind(lock.locked_at)
            .bind(lock.locked_until)
            .bind(account)
            .execute(&mut *tx)
            .await?;
            let entry = AuditEntry::new(now, &Actor::Public, "account.lock", "locked")
                .person(row.try_get("person_id")?)
                .account(account)
                .reason("failures")
                .details(format!("{failed_attempts} consecutive failed sign-in attempts"));
            append(&mut tx, self.audit_key()?, &entry).await?;
            locked_now = true;
        }
        insert_sign_in(&mut tx, self.audit_key()?, event).await?;
        tx.commit().await?;
        Ok(FailureResult { failed_attempts, locked_now })
    }

    async fn reset_failures(&self, account: AccountId) -> StoreResult<()> {
        // An expired temporary lock is cleared with the counter; the consecutive-lock count starts again.
        sqlx::query(
            "UPDATE account SET failed_attempts = 0, lock_count = 0, \
             locked_at = CASE WHEN locked_until IS NULL THEN locked_at ELSE NULL END, \
             lock_reason = CASE WHEN locked_until IS NULL THEN lock_reason ELSE NULL END, \
             locked_until = NULL WHERE account_id = $1",
        )
        .bind(account)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn totp(&self, account: AccountId) -> StoreResult<Option<TotpRecord>> {
        let row = sqlx::query(
            "SELECT secret_ciphertext, confirmed_at, last_used_step FROM totp_credential WHERE account_id = $1",
        )
        .bind(account)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(TotpRecord {
            sealed_secret: row.try_get("secret_ciphertext")?,
            confirmed_at: row.try_get("confirmed_at")?,
            last_used_step: row.try_get("last_used_step")?,
        }))
    }

    async fn begin_totp_enrolment(&self, account: AccountId, sealed_secret: &[u8], now: Timestamp) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM totp_credential WHERE account_id = $1 AND confirmed_at IS NULL")
            .bind(account)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO totp_credential (account_id, secret_ciphertext, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (account_id) DO NOTHING",
        )
        .bind(account)
        .bind(sealed_secret.to_vec())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn confirm_totp(
        &self,
        account: AccountId,
        step: i64,
        backup_codes: &[TokenHash],
        now: Timestamp,
        audit: &AuditEntry,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE totp_credential SET confirmed_at = $1, last_used_step = $2 WHERE account_id = $3 AND confirmed_at IS NULL",
        )
        .bind(now)
        .bind(step)
        .bind(account)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !done {
            return Ok(false);
        }
        history(&mut tx, account, "totp", "bound", now).await?;
        insert_backup_codes(&mut tx, account, backup_codes, now).await?;
        sqlx::query("UPDATE account SET require_enroll_mfa = 0 WHERE account_id = $1")
            .bind(account)
            .execute(&mut *tx)
            .await?;
        append(&mut tx, self.audit_key()?, audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn use_totp_step(&self, account: AccountId, step: i64, event: &SignInEvent) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        let used = sqlx::query(
            "UPDATE totp_credential SET last_used_step = $1 \
             WHERE account_id = $2 AND confirmed_at IS NOT NULL AND last_used_step < $1",
        )
        .bind(step)
        .bind(account)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if used {
            insert_sign_in(&mut tx, self.audit_key()?, event).await?;
        }
        tx.commit().await?;
        Ok(used)
    }

    async fn replace_backup_codes(
        &self,
        account: AccountId,
        codes: &[TokenHash],
        now: Timestamp,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        insert_backup_codes(&mut tx, account, codes, now).await?;
        append(&mut tx, self.audit_key()?, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn consume_backup_code(
        &self,
        account: AccountId,
        code: &TokenHash,
        now: Timestamp,
        event: &SignInEvent,
    ) -> StoreResult<bool> {
        // The lookup is by the keyed hash, so no secret is compared here at all; `used_at IS NULL` in the
        // same statement makes the consumption atomic, and its sign-in event commits with it.
        let mut tx = self.pool.begin().await?;
        let used = sqlx::query(
            "UPDATE backup_code SET used_at = $1 WHERE account_id = $2 AND code_hash = $3 AND used_at IS NULL",
        )
        .bind(now)
        .bind(account)
        .bind(&code.0)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if used {
            insert_sign_in(&mut tx, self.audit_key()?, event).await?;
        }
        tx.commit().await?;
        Ok(used)
    }

    async fn unused_backup_codes(&self, account: AccountId) -> StoreResult<i64> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM backup_code WHERE account_id = $1 AND used_at IS NULL")
            .bind(account)
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?)
    }

    async fn set_qa_answers(
        &self,
        account: AccountId,
        answer_hashes: &[String],
        now: Timestamp,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM qa_answer WHERE account_id = $1").bind(account).execute(&mut *tx).await?;
        for (i, hash) in answer_hashes.iter().enumerate() {
            sqlx::query(
                "INSERT INTO qa_answer (account_id, question_index, answer_hash, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(account)
            .bind(i as i64)
            .bind(hash)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        history(
            &mut tx,
            account,
            "security_questions",
            if answer_hashes.is_empty() { "removed" } else { "bound" },
            now,
        )
        .await?;
        append(&mut tx, self.audit_key()?, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn qa_answers(&self, account: AccountId) -> StoreResult<Vec<String>> {
        let rows = sqlx::query("SELECT answer_hash FROM qa_answer WHERE account_id = $1 ORDER BY question_index")
            .bind(account)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| r.try_get::<String, _>(0).map_err(StoreError::from)).collect()
    }

    async fn record_qa_failure(&self, account: AccountId, policy: &LockoutPolicy, now: Timestamp) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "UPDATE account SET qa_failed_attempts = qa_failed_attempts + 1, \
             qa_locked_at = CASE WHEN qa_locked_at IS NULL AND qa_failed_attempts + 1 >= $1 THEN $2 ELSE qa_locked_at END \
             WHERE account_id = $3 RETURNING qa_failed_attempts, qa_locked_at, person_id",
        )
        .bind(i64::from(policy.qa_failed_attempts_before_lock))
        .bind(now)
        .bind(account)
        .fetch_one(&mut *tx)
        .await?;
        let locked_at: Option<i64> = row.try_get("qa_locked_at")?;
        let locked_now =
            locked_at == Some(now) && count(&row, "qa_failed_attempts")? == policy.qa_failed_attempts_before_lock;
        if locked_now {
            let entry = AuditEntry::new(now, &Actor::Public, "qa.lock", "locked")
                .person(row.try_get("person_id")?)
                .account(account)
                .reason("qa_failures");
            append(&mut tx, self.audit_key()?, &entry).await?;
        }
        tx.commit().await?;
        Ok(locked_now)
    }

    async fn reset_password_by_qa(
        &self,
        account: AccountId,
        hash: &str,
        now: Timestamp,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE account SET password_hash = $1, password_changed_at = $2, require_change_password = 0, \
             qa_failed_attempts = 0 WHERE account_id = $3",
        )
        .bind(hash)
        .bind(now)
        .bind(account)
        .execute(&mut *tx)
        .await?;
        history(&mut tx, account, "password", "bound", now).await?;
        sqlx::query("DELETE FROM web_session WHERE account_id = $1").bind(account).execute(&mut *tx).await?;
        append(&mut tx, self.audit_key()?, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn lock_account(
        &self,
        account: AccountId,
        reason: LockReason,
        now: Timestamp,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE account SET locked_at = $1, lock_reason = $2, locked_until = NULL WHERE account_id = $3")
            .bind(now)
            .bind(reason.as_str())
            .bind(account)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM web_session WHERE account_id = $1").bind(account).execute(&mut *tx).await?;
        append(&mut tx, self.audit_key()?, audit).await?;
        tx.commit().await?;
        Ok(())
    }
}
