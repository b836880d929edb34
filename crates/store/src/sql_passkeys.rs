//! Passkeys and WebAuthn ceremonies on the SQL backends (migration 0016). A ceremony is taken with one
//! `DELETE … RETURNING`, so whichever instance finishes it, it finishes once.

use super::sql::*;
use super::*;
use sqlx::Row;

const PASSKEY_COLUMNS: &str = "passkey_id, account_id, credential_id, name, credential, created_at, last_used_at";

fn passkey_from_row(row: &sqlx::any::AnyRow) -> StoreResult<PasskeyRecord> {
    Ok(PasskeyRecord {
        id: row.try_get("passkey_id").db()?,
        account: AccountId(row.try_get("account_id").db()?),
        credential_id: row.try_get("credential_id").db()?,
        name: row.try_get("name").db()?,
        credential: row.try_get("credential").db()?,
        created_at: row.try_get("created_at").db()?,
        last_used_at: row.try_get("last_used_at").db()?,
    })
}

#[async_trait]
impl PasskeyStore for SqlStore {
    async fn passkeys(&self, account: AccountId) -> StoreResult<Vec<PasskeyRecord>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {PASSKEY_COLUMNS} FROM passkey WHERE account_id = $1 ORDER BY passkey_id"
        )))
        .bind(account.0)
        .fetch_all(&self.pool)
        .await
        .db()?;
        rows.iter().map(passkey_from_row).collect()
    }

    async fn passkey_by_credential(&self, credential_id: &str) -> StoreResult<Option<PasskeyRecord>> {
        let row =
            sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {PASSKEY_COLUMNS} FROM passkey WHERE credential_id = $1")))
                .bind(credential_id)
                .fetch_optional(&self.pool)
                .await
                .db()?;
        row.as_ref().map(passkey_from_row).transpose()
    }

    async fn add_passkey(
        &self,
        new: &NewPasskey<'_>,
        now: Timestamp,
        audit: &AuditEntry,
        emails: &[crate::email::OutgoingEmail],
        secrets: &[NewSecret],
    ) -> StoreResult<PasskeyRecord> {
        let mut tx = self.audited().await?;
        if new.completes_enrolment {
            // Only while the account may still complete a step (and under its row lock): a lock or a disabling
            // that came meanwhile wins, and nothing is bound.
            let usable = sqlx::query(
                "UPDATE account SET require_enroll_mfa = 0, require_device_authorization = 0 \
                 WHERE account_id = $1 AND (locked_at IS NULL OR locked_until <= $2) \
                   AND EXISTS (SELECT 1 FROM person p WHERE p.person_id = account.person_id AND p.status = 'active')",
            )
            .bind(new.account.0)
            .bind(now)
            .execute(&mut *tx)
            .await
            .db()?
            .rows_affected()
                == 1;
            if !usable {
                tx.rollback().await?;
                return Err(StoreError::Conflict("the account may not complete a sign-in step now".into()));
            }
        }
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO passkey (account_id, credential_id, name, credential, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING {PASSKEY_COLUMNS}"
        )))
        .bind(new.account.0)
        .bind(new.credential_id)
        .bind(new.name)
        .bind(new.credential)
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| unique_violation(e, "this passkey is registered already"))?;
        let record = passkey_from_row(&row)?;
        history(&mut tx, new.account, "passkey", "bound", &audit.actor, Some(&record.name), now).await?;
        for secret in secrets {
            super::sql_recovery::insert_secret(&mut tx, secret, now).await?;
        }
        tx.commit_with_emails(audit, emails, now).await?;
        Ok(record)
    }

    async fn rename_passkey(&self, account: AccountId, id: i64, name: &str, audit: &AuditEntry) -> StoreResult<bool> {
        let mut tx = self.audited().await?;
        let changed = sqlx::query("UPDATE passkey SET name = $1 WHERE passkey_id = $2 AND account_id = $3")
            .bind(name)
            .bind(id)
            .bind(account.0)
            .execute(&mut *tx)
            .await
            .db()?
            .rows_affected();
        if changed == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        tx.commit(audit).await?;
        Ok(true)
    }

    async fn remove_passkey(
        &self,
        account: AccountId,
        id: i64,
        now: Timestamp,
        audit: &AuditEntry,
        emails: &[crate::email::OutgoingEmail],
        secrets: &[NewSecret],
    ) -> StoreResult<bool> {
        let mut tx = self.audited().await?;
        let removed: Option<String> =
            sqlx::query_scalar("DELETE FROM passkey WHERE passkey_id = $1 AND account_id = $2 RETURNING name")
                .bind(id)
                .bind(account.0)
                .fetch_optional(&mut *tx)
                .await
                .db()?;
        let Some(name) = removed else {
            tx.rollback().await?;
            return Ok(false);
        };
        history(&mut tx, account, "passkey", "removed", &audit.actor, Some(&name), now).await?;
        for secret in secrets {
            super::sql_recovery::insert_secret(&mut tx, secret, now).await?;
        }
        tx.commit_with_emails(audit, emails, now).await?;
        Ok(true)
    }

    async fn use_passkey(&self, id: i64, was: &str, credential: &str, event: &SignInEvent) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        // The sign-in completes only while the account may complete one: clearing its counters is the check
        // (and takes its row lock), so a lock or a disabling in flight alongside wins.
        let usable = sqlx::query(
            "UPDATE account SET failed_attempts = 0, lock_count = 0, last_failed_at = NULL, locked_at = NULL, \
               locked_until = NULL, lock_reason = NULL \
             WHERE account_id = (SELECT account_id FROM passkey WHERE passkey_id = $1) \
               AND (locked_at IS NULL OR locked_until <= $2) \
               AND EXISTS (SELECT 1 FROM person p WHERE p.person_id = account.person_id AND p.status = 'active')",
        )
        .bind(id)
        .bind(event.at)
        .execute(&mut *tx)
        .await
        .db()?
        .rows_affected();
        let used = if usable == 0 {
            0
        } else {
            sqlx::query(
                "UPDATE passkey SET credential = $1, last_used_at = $2 WHERE passkey_id = $3 AND credential = $4",
            )
            .bind(credential)
            .bind(event.at)
            .bind(id)
            .bind(was)
            .execute(&mut *tx)
            .await
            .db()?
            .rows_affected()
        };
        if used == 0 {
            tx.rollback().await.db()?;
            return Ok(false);
        }
        insert_sign_in(&mut tx, self.audit_key()?, event).await?;
        tx.commit().await.db()?;
        Ok(true)
    }

    async fn begin_ceremony(
        &self,
        ceremony: &TokenHash,
        purpose: CeremonyPurpose,
        account: Option<AccountId>,
        state: &str,
        expires_at: Timestamp,
    ) -> StoreResult<()> {
        let _turn = self.write_turn().await;
        sqlx::query(
            "INSERT INTO webauthn_ceremony (ceremony_hash, purpose, account_id, state, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&ceremony.0)
        .bind(purpose.as_str())
        .bind(account.map(|a| a.0))
        .bind(state)
        .bind(expires_at)
        .execute(&self.pool)
        .await
        .map_err(|e| unique_violation(e, "a ceremony with this id exists"))?;
        Ok(())
    }

    async fn take_ceremony(
        &self,
        ceremony: &TokenHash,
        purpose: CeremonyPurpose,
        now: Timestamp,
    ) -> StoreResult<Option<(Option<AccountId>, String)>> {
        let _turn = self.write_turn().await;
        // Taken whatever its purpose or expiry (a ceremony tried as something else is spent too), and answered
        // only when both fit.
        let row = sqlx::query(
            "DELETE FROM webauthn_ceremony WHERE ceremony_hash = $1 RETURNING purpose, account_id, state, expires_at",
        )
        .bind(&ceremony.0)
        .fetch_optional(&self.pool)
        .await
        .db()?;
        let Some(row) = row else { return Ok(None) };
        let kind: String = row.try_get("purpose").db()?;
        let expires_at: Timestamp = row.try_get("expires_at").db()?;
        if kind != purpose.as_str() || now >= expires_at {
            return Ok(None);
        }
        let account = row.try_get::<Option<i64>, _>("account_id").db()?.map(AccountId);
        Ok(Some((account, row.try_get("state").db()?)))
    }
}
