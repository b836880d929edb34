//! Passwords, failure counters and locks, TOTP, backup codes and security questions on the SQL backends.

use super::sql::*;
use super::*;
use crate::audit::{Actor, AuditKey};
use crate::domain::LockReason;
use crate::policy::lockout::AttemptState;
use sqlx::Row;

/// The condition, on an `account` row, that a sign-in step may complete: not locked (or the temporary
/// lock has run out at `$now_param`) and the person active.
fn usable(now_param: usize) -> String {
    format!(
        "(locked_at IS NULL OR locked_until <= ${now_param}) \
         AND EXISTS (SELECT 1 FROM person p WHERE p.person_id = account.person_id AND p.status = 'active')"
    )
}

/// A completed sign-in clears the counters (and an expired lock), only while the account is usable.
async fn reset_if_usable(conn: &mut sqlx::AnyConnection, account: AccountId, now: Timestamp) -> StoreResult<bool> {
    let done = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE account SET failed_attempts = 0, lock_count = 0, last_failed_at = NULL, locked_at = NULL, \
           locked_until = NULL, lock_reason = NULL WHERE account_id = $1 AND {}",
        usable(2)
    )))
    .bind(account.0)
    .bind(now)
    .execute(&mut *conn)
    .await
    .db()?
    .rows_affected();
    Ok(done == 1)
}

/// Finish a second-factor step in the transaction that used the code: the sign-in completes (counters
/// reset, event recorded) only if the code was used and the account is still usable; otherwise nothing.
async fn complete_with_code(
    mut tx: WriteTx,
    key: &AuditKey,
    used: bool,
    account: AccountId,
    now: Timestamp,
    event: &SignInEvent,
) -> StoreResult<CodeUse> {
    if !used {
        return Ok(CodeUse::NotAccepted);
    }
    if !reset_if_usable(&mut tx, account, now).await? {
        tx.rollback().await.db()?;
        return Ok(CodeUse::Refused);
    }
    insert_sign_in(&mut tx, key, event).await?;
    tx.commit().await.db()?;
    Ok(CodeUse::Used)
}

async fn insert_backup_codes(
    conn: &mut sqlx::AnyConnection,
    account: AccountId,
    codes: &[TokenHash],
    by: &str,
    now: Timestamp,
) -> StoreResult<()> {
    sqlx::query("DELETE FROM backup_code WHERE account_id = $1").bind(account.0).execute(&mut *conn).await.db()?;
    for code in codes {
        sqlx::query("INSERT INTO backup_code (account_id, code_hash, created_at) VALUES ($1, $2, $3)")
            .bind(account.0)
            .bind(&code.0)
            .bind(now)
            .execute(&mut *conn)
            .await
            .db()?;
    }
    history(conn, account, "backup_codes", if codes.is_empty() { "removed" } else { "bound" }, by, None, now).await
}

#[async_trait]
impl CredentialStore for SqlStore {
    async fn set_password(
        &self,
        account: AccountId,
        hash: &str,
        require_change: bool,
        keep: Option<&TokenHash>,
        now: Timestamp,
        audit: &AuditEntry,
        notices: &Notices,
    ) -> StoreResult<u64> {
        let mut tx = self.audited().await?;
        crate::sql_recovery::lock_person(&mut tx, Some(account), None).await?;
        sqlx::query("UPDATE account SET password_hash = $1, password_changed_at = $2, require_change_password = $3, temporary_password_until = NULL WHERE account_id = $4")
            .bind(hash)
            .bind(now)
            .bind(i64::from(require_change))
            .bind(account.0)
            .execute(&mut *tx)
            .await.db()?;
        history(&mut tx, account, "password", "bound", &audit.actor, None, now).await?;
        // A new password makes every link, code and pass handed out before it stale; the "this wasn't me"
        // links stay, so an action done before the change can still be reported.
        crate::sql_recovery::revoke_secrets(&mut tx, account, Some(SecretKind::NotMe), now).await?;
        let ended = sqlx::query("DELETE FROM web_session WHERE account_id = $1 AND token_hash <> $2")
            .bind(account.0)
            .bind(keep.map(|k| k.0.as_str()).unwrap_or_default())
            .execute(&mut *tx)
            .await
            .db()?
            .rows_affected();
        tx.commit_with_notices(audit, notices, now).await?;
        Ok(ended)
    }

    async fn admit_attempt(&self, account: AccountId, seen: &AttemptState, next: &AttemptState) -> StoreResult<bool> {
        // A compare-and-set over every lockout field: of any number of attempts that read the same state,
        // exactly one writes its successor; the others read again and meet the new count (or delay).
        let done = sqlx::query(
            "UPDATE account SET failed_attempts = $1, locked_at = $2, locked_until = $3, last_failed_at = $4, \
               lock_count = $5, lock_reason = CASE WHEN $2 IS NULL THEN NULL ELSE lock_reason END \
             WHERE account_id = $6 AND failed_attempts = $7 AND lock_count = $8 \
               AND COALESCE(locked_at, -1) = $9 AND COALESCE(locked_until, -1) = $10 \
               AND COALESCE(last_failed_at, -1) = $11",
        )
        .bind(i64::from(next.failed_attempts))
        .bind(next.locked_at)
        .bind(next.locked_until)
        .bind(next.last_failed_at)
        .bind(i64::from(next.lock_count))
        .bind(account.0)
        .bind(i64::from(seen.failed_attempts))
        .bind(i64::from(seen.lock_count))
        .bind(seen.locked_at.unwrap_or(-1))
        .bind(seen.locked_until.unwrap_or(-1))
        .bind(seen.last_failed_at.unwrap_or(-1))
        .execute(&self.pool)
        .await
        .db()?
        .rows_affected();
        Ok(done == 1)
    }

    async fn record_failure(
        &self,
        account: AccountId,
        policy: &LockoutPolicy,
        now: Timestamp,
        event: &SignInEvent,
    ) -> StoreResult<FailureResult> {
        let mut tx = self.audited().await?;
        // The attempt was counted when it was admitted. A no-op update takes the row's write lock first, so
        // concurrent failures decide the lock one after the other.
        let row = sqlx::query(
            "UPDATE account SET failed_attempts = failed_attempts WHERE account_id = $1 \
             RETURNING failed_attempts, lock_count, locked_at, person_id",
        )
        .bind(account.0)
        .fetch_one(&mut *tx)
        .await
        .db()?;
        let failed_attempts = count(&row, "failed_attempts").db()?;
        let already_locked: Option<i64> = row.try_get("locked_at").db()?;
        let mut locked_now = false;
        if already_locked.is_none()
            && let Some(lock) = policy.after_failure(failed_attempts, count(&row, "lock_count").db()?, now)
        {
            locked_now = sqlx::query(
                "UPDATE account SET locked_at = $1, locked_until = $2, lock_reason = 'failures', \
                 lock_count = lock_count + 1 WHERE account_id = $3 AND locked_at IS NULL",
            )
            .bind(lock.locked_at)
            .bind(lock.locked_until)
            .bind(account.0)
            .execute(&mut *tx)
            .await
            .db()?
            .rows_affected()
                == 1;
            if locked_now {
                let until = match lock.locked_until {
                    Some(until) => format!("until {}", crate::domain::iso_time(until)),
                    None => "until an operator unlocks it".to_owned(),
                };
                let entry = AuditEntry::new(now, &Actor::Public, "account.lock", "locked")
                    .person(PersonId(row.try_get("person_id").db()?))
                    .account(account)
                    .reason("failures")
                    .details(format!("{failed_attempts} consecutive failed sign-in attempts; locked {until}"));
                tx.audit(&entry).await?;
            }
        }
        let key = tx.key();
        insert_sign_in(&mut tx, key, event).await?;
        tx.finish().await?;
        Ok(FailureResult { failed_attempts, locked_now })
    }

    async fn release_attempt(
        &self,
        account: AccountId,
        admitted_at: Timestamp,
        previous_last_failed_at: Option<Timestamp>,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let _turn = self.write_turn().await;
        let done = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE account SET failed_attempts = CASE WHEN failed_attempts > 0 THEN failed_attempts - 1 ELSE 0 END, \
               last_failed_at = CASE WHEN last_failed_at = $2 THEN $3 ELSE last_failed_at END \
             WHERE account_id = $1 AND {}",
            usable(4)
        )))
        .bind(account.0)
        .bind(admitted_at)
        .bind(previous_last_failed_at)
        .bind(now)
        .execute(&self.pool)
        .await
        .db()?
        .rows_affected();
        Ok(done == 1)
    }

    async fn give_back_attempt(&self, account: AccountId) -> StoreResult<()> {
        let _turn = self.write_turn().await;
        sqlx::query(
            "UPDATE account SET failed_attempts = failed_attempts - 1 WHERE account_id = $1 AND failed_attempts > 0",
        )
        .bind(account.0)
        .execute(&self.pool)
        .await
        .db()?;
        Ok(())
    }

    async fn reset_failures(&self, account: AccountId, now: Timestamp) -> StoreResult<bool> {
        Ok(reset_if_usable(&mut *self.pool.acquire().await.db()?, account, now).await?)
    }

    async fn unlock_account(
        &self,
        account: AccountId,
        unlocked_by: &str,
        now: Timestamp,
        audit: &AuditEntry,
    ) -> StoreResult<bool> {
        let mut tx = self.audited().await?;
        let done = sqlx::query(
            "UPDATE account SET locked_at = NULL, locked_until = NULL, lock_reason = NULL, failed_attempts = 0, \
               lock_count = 0, last_failed_at = NULL, qa_failed_attempts = 0, qa_locked_at = NULL, \
               unlocked_by = $1, unlocked_at = $2 \
             WHERE account_id = $3 AND (locked_at IS NOT NULL OR failed_attempts > 0 OR qa_locked_at IS NOT NULL \
               OR qa_failed_attempts > 0)",
        )
        .bind(unlocked_by)
        .bind(now)
        .bind(account.0)
        .execute(&mut *tx)
        .await
        .db()?
        .rows_affected()
            == 1;
        if done {
            tx.commit(audit).await?;
        }
        Ok(done)
    }

    async fn totp(&self, account: AccountId) -> StoreResult<Option<TotpRecord>> {
        let row = sqlx::query(
            "SELECT secret_ciphertext, confirmed_at, last_used_step FROM totp_credential WHERE account_id = $1",
        )
        .bind(account.0)
        .fetch_optional(&self.pool)
        .await
        .db()?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(TotpRecord {
            sealed_secret: row.try_get("secret_ciphertext").db()?,
            confirmed_at: row.try_get("confirmed_at").db()?,
            last_used_step: row.try_get("last_used_step").db()?,
        }))
    }

    async fn enrol_totp(
        &self,
        account: AccountId,
        sealed_secret: &[u8],
        step: i64,
        backup_codes: &[TokenHash],
        now: Timestamp,
        audit: &AuditEntry,
        self_service: bool,
        notices: &Notices,
    ) -> StoreResult<bool> {
        let mut tx = self.audited().await?;
        // Clearing the requirement doubles as the check that the account may still complete a step (and
        // takes its row lock, so two enrolments of one account run one after the other). A bound
        // authenticator also ends the device-authorization requirement: until now, a sign-in with only the
        // password had to prove the mailbox again, so the right to enrol stayed with the session that earned it.
        let usable = if self_service {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE account SET require_enroll_mfa = 0, require_device_authorization = 0 WHERE account_id = $1 AND {}",
                usable(2)
            )))
            .bind(account.0)
            .bind(now)
            .execute(&mut *tx)
            .await
            .db()?
        } else {
            sqlx::query("UPDATE account SET require_enroll_mfa = 0, require_device_authorization = 0 WHERE account_id = $1")
                .bind(account.0)
                .execute(&mut *tx)
                .await
                .db()?
        }
        .rows_affected()
            == 1;
        // Rows left unconfirmed by the code before secrets were bound to sessions are of no use now.
        sqlx::query("DELETE FROM totp_credential WHERE account_id = $1 AND confirmed_at IS NULL")
            .bind(account.0)
            .execute(&mut *tx)
            .await
            .db()?;
        let inserted = usable
            && sqlx::query(
                "INSERT INTO totp_credential (account_id, secret_ciphertext, confirmed_at, last_used_step, created_at) \
                 VALUES ($1, $2, $3, $4, $3) ON CONFLICT (account_id) DO NOTHING",
            )
            .bind(account.0)
            .bind(sealed_secret.to_vec())
            .bind(now)
            .bind(step)
            .execute(&mut *tx)
            .await
            .db()?
            .rows_affected()
                == 1;
        if !inserted {
            tx.rollback().await?;
            return Ok(false);
        }
        history(&mut tx, account, "totp", "bound", &audit.actor, None, now).await?;
        insert_backup_codes(&mut tx, account, backup_codes, &audit.actor, now).await?;
        // A temporary access pass has done its job once a new authenticator is bound: a multi-use pass must not
        // let its holder remove the authenticator the person just set up.
        sqlx::query(
            "UPDATE recovery_secret SET revoked_at = $1 \
             WHERE account_id = $2 AND kind = 'temporary_access_pass' AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(account.0)
        .execute(&mut *tx)
        .await
        .db()?;
        tx.commit_with_notices(audit, notices, now).await?;
        Ok(true)
    }

    async fn use_totp_step(
        &self,
        account: AccountId,
        step: i64,
        now: Timestamp,
        event: &SignInEvent,
    ) -> StoreResult<CodeUse> {
        let mut tx = self.begin_write().await?;
        let used = sqlx::query(
            "UPDATE totp_credential SET last_used_step = $1 \
             WHERE account_id = $2 AND confirmed_at IS NOT NULL AND last_used_step < $1",
        )
        .bind(step)
        .bind(account.0)
        .execute(&mut *tx)
        .await
        .db()?
        .rows_affected()
            == 1;
        complete_with_code(tx, self.audit_key()?, used, account, now, event).await
    }

    async fn replace_backup_codes(
        &self,
        account: AccountId,
        codes: &[TokenHash],
        now: Timestamp,
        audit: &AuditEntry,
        notices: &Notices,
    ) -> StoreResult<()> {
        let mut tx = self.audited().await?;
        insert_backup_codes(&mut tx, account, codes, &audit.actor, now).await?;
        tx.commit_with_notices(audit, notices, now).await?;
        Ok(())
    }

    async fn consume_backup_code(
        &self,
        account: AccountId,
        code: &TokenHash,
        now: Timestamp,
        event: &SignInEvent,
    ) -> StoreResult<CodeUse> {
        // The lookup is by the keyed hash, so no secret is compared here at all; `used_at IS NULL` in the
        // same statement makes the consumption atomic.
        let mut tx = self.begin_write().await?;
        let used = sqlx::query(
            "UPDATE backup_code SET used_at = $1 WHERE account_id = $2 AND code_hash = $3 AND used_at IS NULL",
        )
        .bind(now)
        .bind(account.0)
        .bind(&code.0)
        .execute(&mut *tx)
        .await
        .db()?
        .rows_affected()
            == 1;
        complete_with_code(tx, self.audit_key()?, used, account, now, event).await
    }

    async fn unused_backup_codes(&self, account: AccountId) -> StoreResult<i64> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM backup_code WHERE account_id = $1 AND used_at IS NULL")
            .bind(account.0)
            .fetch_one(&self.pool)
            .await
            .db()?
            .try_get("n")
            .db()?)
    }

    async fn set_qa_answers(
        &self,
        account: AccountId,
        answer_hashes: &[String],
        now: Timestamp,
        audit: &AuditEntry,
        notices: &Notices,
    ) -> StoreResult<()> {
        let mut tx = self.audited().await?;
        sqlx::query("DELETE FROM qa_answer WHERE account_id = $1").bind(account.0).execute(&mut *tx).await.db()?;
        // New answers, chosen by the signed-in person, start the Q&A lockout again.
        sqlx::query("UPDATE account SET qa_failed_attempts = 0, qa_locked_at = NULL WHERE account_id = $1")
            .bind(account.0)
            .execute(&mut *tx)
            .await
            .db()?;
        for (i, hash) in answer_hashes.iter().enumerate() {
            sqlx::query(
                "INSERT INTO qa_answer (account_id, question_index, answer_hash, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(account.0)
            .bind(i as i64)
            .bind(hash)
            .bind(now)
            .execute(&mut *tx)
            .await
            .db()?;
        }
        history(
            &mut tx,
            account,
            "security_questions",
            if answer_hashes.is_empty() { "removed" } else { "bound" },
            &audit.actor,
            None,
            now,
        )
        .await?;
        tx.commit_with_notices(audit, notices, now).await?;
        Ok(())
    }

    async fn qa_answers(&self, account: AccountId) -> StoreResult<Vec<String>> {
        let rows = sqlx::query("SELECT answer_hash FROM qa_answer WHERE account_id = $1 ORDER BY question_index")
            .bind(account.0)
            .fetch_all(&self.pool)
            .await
            .db()?;
        rows.iter().map(|r| r.try_get::<String, _>(0).db()).collect()
    }

    async fn admit_qa_attempt(&self, account: AccountId, policy: &LockoutPolicy) -> StoreResult<bool> {
        let _turn = self.write_turn().await;
        let done = sqlx::query(
            "UPDATE account SET qa_failed_attempts = qa_failed_attempts + 1 \
             WHERE account_id = $1 AND qa_locked_at IS NULL AND qa_failed_attempts < $2",
        )
        .bind(account.0)
        .bind(i64::from(policy.qa_failed_attempts_before_lock))
        .execute(&self.pool)
        .await
        .db()?
        .rows_affected();
        Ok(done == 1)
    }

    async fn release_qa_attempt(&self, account: AccountId) -> StoreResult<()> {
        let _turn = self.write_turn().await;
        sqlx::query(
            "UPDATE account SET qa_failed_attempts = qa_failed_attempts - 1 \
             WHERE account_id = $1 AND qa_failed_attempts > 0 AND qa_locked_at IS NULL",
        )
        .bind(account.0)
        .execute(&self.pool)
        .await
        .db()?;
        Ok(())
    }

    async fn record_qa_failure(&self, account: AccountId, policy: &LockoutPolicy, now: Timestamp) -> StoreResult<bool> {
        let mut tx = self.audited().await?;
        let row = sqlx::query(
            "UPDATE account SET qa_locked_at = $1 \
             WHERE account_id = $2 AND qa_locked_at IS NULL AND qa_failed_attempts >= $3 RETURNING person_id",
        )
        .bind(now)
        .bind(account.0)
        .bind(i64::from(policy.qa_failed_attempts_before_lock))
        .fetch_optional(&mut *tx)
        .await
        .db()?;
        let locked_now = row.is_some();
        if let Some(row) = row {
            let entry = AuditEntry::new(now, &Actor::Public, "qa.lock", "locked")
                .person(PersonId(row.try_get("person_id").db()?))
                .account(account)
                .reason("qa_failures");
            tx.audit(&entry).await?;
        }
        tx.finish().await?;
        Ok(locked_now)
    }

    async fn reset_password_by_qa(
        &self,
        account: AccountId,
        hash: &str,
        now: Timestamp,
        audit: &AuditEntry,
        notices: &Notices,
    ) -> StoreResult<bool> {
        let mut tx = self.audited().await?;
        crate::sql_recovery::lock_person(&mut tx, Some(account), None).await?;
        let done = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE account SET password_hash = $1, password_changed_at = $2, require_change_password = 0, \
               temporary_password_until = NULL, \
             qa_failed_attempts = 0 WHERE account_id = $3 AND {}",
            usable(2)
        )))
        .bind(hash)
        .bind(now)
        .bind(account.0)
        .execute(&mut *tx)
        .await
        .db()?
        .rows_affected()
            == 1;
        if !done {
            return Ok(false);
        }
        history(&mut tx, account, "password", "bound", &audit.actor, None, now).await?;
        crate::sql_recovery::revoke_secrets(&mut tx, account, Some(SecretKind::NotMe), now).await?;
        sqlx::query("DELETE FROM web_session WHERE account_id = $1").bind(account.0).execute(&mut *tx).await.db()?;
        tx.commit_with_notices(audit, notices, now).await?;
        Ok(true)
    }

    async fn lock_account(
        &self,
        account: AccountId,
        reason: LockReason,
        now: Timestamp,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let mut tx = self.audited().await?;
        sqlx::query("UPDATE account SET locked_at = $1, lock_reason = $2, locked_until = NULL WHERE account_id = $3")
            .bind(now)
            .bind(reason.as_str())
            .bind(account.0)
            .execute(&mut *tx)
            .await
            .db()?;
        sqlx::query("DELETE FROM web_session WHERE account_id = $1").bind(account.0).execute(&mut *tx).await.db()?;
        tx.commit(audit).await?;
        Ok(())
    }
}
