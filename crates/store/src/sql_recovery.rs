//! Recovery actions on the SQL backends: each action's change with its secrets, emails and audit row in one
//! transaction; redeeming a secret with one conditional UPDATE (so two uses cannot both win); four-eyes
//! approvals reserved by compare-and-set before the slow work.

use super::sql::*;
use super::*;
use sqlx::Row;

fn secret_from_row(row: &sqlx::any::AnyRow) -> StoreResult<LiveSecret> {
    let kind: String = row.try_get("kind").db()?;
    Ok(LiveSecret {
        account: AccountId(row.try_get("account_id").db()?),
        kind: SecretKind::parse(&kind).ok_or_else(|| StoreError::Corrupt(format!("secret kind {kind:?}")))?,
        created_at: row.try_get("created_at").db()?,
        expires_at: row.try_get("expires_at").db()?,
        used_at: row.try_get("used_at").db()?,
        revoked_at: row.try_get("revoked_at").db()?,
        action: row.try_get("action").db()?,
    })
}

fn approval_from_row(row: &sqlx::any::AnyRow) -> StoreResult<Approval> {
    Ok(Approval {
        id: row.try_get("approval_id").db()?,
        action: row.try_get("action").db()?,
        person: PersonId(row.try_get("person_id").db()?),
        requested_by_account: AccountId(row.try_get("requested_by_account").db()?),
        requested_by: row.try_get("requested_by").db()?,
        form: row.try_get("form").db()?,
        created_at: row.try_get("created_at").db()?,
        expires_at: row.try_get("expires_at").db()?,
        status: row.try_get("status").db()?,
        decided_by: row.try_get("decided_by").db()?,
        decided_at: row.try_get("decided_at").db()?,
    })
}

const SECRET_COLUMNS: &str = "account_id, kind, created_at, expires_at, used_at, revoked_at, action";
const APPROVAL_COLUMNS: &str = "approval_id, action, person_id, requested_by_account, requested_by, form, created_at, \
    expires_at, status, decided_by, decided_at";

/// Take the row locks of every account of the person `account` belongs to (or of `person`), first thing in a
/// transaction that hands out or revokes secrets: on PostgreSQL (read committed) two such transactions for one
/// person would otherwise each revoke what the other had not yet committed and both keep their new secret.
/// SQLite serialises writers anyway. Always first, so no two transactions take these locks in different orders.
pub(crate) async fn lock_person(
    conn: &mut sqlx::AnyConnection,
    account: Option<AccountId>,
    person: Option<PersonId>,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE account SET person_id = person_id WHERE person_id = \
           COALESCE($2, (SELECT person_id FROM account WHERE account_id = $1))",
    )
    .bind(account.map(|a| a.0))
    .bind(person.map(|p| p.0))
    .execute(&mut *conn)
    .await
    .db()?;
    Ok(())
}

/// Every live secret of the account dies (except those of `keep_kind`), and every API token: a credential
/// reset, a password change, a disabling or a "this wasn't me" leaves no way in that was handed out before it.
pub(crate) async fn revoke_secrets(
    conn: &mut sqlx::AnyConnection,
    account: AccountId,
    except: Option<SecretKind>,
    now: Timestamp,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE recovery_secret SET revoked_at = $1 \
         WHERE account_id = $2 AND revoked_at IS NULL AND expires_at > $1 AND kind <> $3",
    )
    .bind(now)
    .bind(account.0)
    .bind(except.map(SecretKind::as_str).unwrap_or(""))
    .execute(&mut *conn)
    .await
    .db()?;
    // The account's API tokens go with them: a token made from a hijacked session must not outlive the
    // password change, the reset, the disabling or the "this wasn't me" that ends the hijack.
    sqlx::query("UPDATE api_token SET revoked_at = $1 WHERE account_id = $2 AND revoked_at IS NULL")
        .bind(now)
        .bind(account.0)
        .execute(&mut *conn)
        .await
        .db()?;
    // A manager's secure link to a temporary password that has been replaced (or reported) shows nothing.
    sqlx::query("UPDATE secure_link SET sealed_password = NULL WHERE subject_account_id = $1 AND used_at IS NULL")
        .bind(account.0)
        .execute(&mut *conn)
        .await
        .db()?;
    Ok(())
}

/// Keep a secret an action hands out (only its keyed hash), inside the caller's transaction.
pub(crate) async fn insert_secret(
    conn: &mut sqlx::AnyConnection,
    secret: &NewSecret,
    now: Timestamp,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO recovery_secret (account_id, kind, secret_hash, created_at, expires_at, multi_use, action, reference) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(secret.account.0)
    .bind(secret.kind.as_str())
    .bind(&secret.hash.0)
    .bind(now)
    .bind(secret.expires_at)
    .bind(i64::from(secret.multi_use))
    .bind(secret.action.as_deref())
    .bind(secret.reference.as_deref())
    .execute(&mut *conn)
    .await
    .db()?;
    Ok(())
}

pub(crate) async fn end_sessions(conn: &mut sqlx::AnyConnection, account: AccountId) -> StoreResult<()> {
    sqlx::query("DELETE FROM web_session WHERE account_id = $1").bind(account.0).execute(&mut *conn).await.db()?;
    Ok(())
}

pub(crate) async fn remove_mfa(
    conn: &mut sqlx::AnyConnection,
    account: AccountId,
    by: &str,
    now: Timestamp,
) -> StoreResult<bool> {
    let totp = sqlx::query("DELETE FROM totp_credential WHERE account_id = $1")
        .bind(account.0)
        .execute(&mut *conn)
        .await
        .db()?
        .rows_affected();
    let codes = sqlx::query("DELETE FROM backup_code WHERE account_id = $1")
        .bind(account.0)
        .execute(&mut *conn)
        .await
        .db()?
        .rows_affected();
    if totp > 0 {
        history(conn, account, "totp", "removed", by, None, now).await?;
    }
    if codes > 0 {
        history(conn, account, "backup_codes", "removed", by, None, now).await?;
    }
    // Passkeys are second factors too (a passkey alone signs in): an MFA reset leaves none behind.
    let passkeys: Vec<String> = sqlx::query_scalar("DELETE FROM passkey WHERE account_id = $1 RETURNING name")
        .bind(account.0)
        .fetch_all(&mut *conn)
        .await
        .db()?;
    for name in &passkeys {
        history(conn, account, "passkey", "removed", by, Some(name), now).await?;
    }
    Ok(totp + codes > 0 || !passkeys.is_empty())
}

/// A verified recovery must not leave the person locked out: the lock and counters go with it, except a lock
/// the person asked for ("this wasn't me") or an admin set: those only a deliberate unlock lifts.
pub(crate) async fn clear_lockout(
    conn: &mut sqlx::AnyConnection,
    account: AccountId,
    by: &str,
    now: Timestamp,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE account SET locked_at = NULL, locked_until = NULL, lock_reason = NULL, failed_attempts = 0, \
           lock_count = 0, last_failed_at = NULL, unlocked_by = $1, unlocked_at = $2 \
         WHERE account_id = $3 AND (locked_at IS NOT NULL OR failed_attempts > 0) \
           AND COALESCE(lock_reason, '') NOT IN ('reported_not_me', 'admin')",
    )
    .bind(by)
    .bind(now)
    .bind(account.0)
    .execute(&mut *conn)
    .await
    .db()?;
    Ok(())
}

async fn accounts_of_person(conn: &mut sqlx::AnyConnection, person: PersonId) -> StoreResult<Vec<AccountId>> {
    let rows = sqlx::query("SELECT account_id FROM account WHERE person_id = $1")
        .bind(person.0)
        .fetch_all(&mut *conn)
        .await
        .db()?;
    rows.iter().map(|r| r.try_get::<i64, _>(0).map(AccountId).db()).collect()
}

#[async_trait]
impl RecoveryStore for SqlStore {
    async fn apply_recovery(
        &self,
        change: &RecoveryChange,
        secrets: &[NewSecret],
        emails: &[crate::email::OutgoingEmail],
        resolve: Option<&str>,
        audit: &AuditEntry,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let mut tx = self.audited().await?;
        let (account, person) = match change {
            RecoveryChange::Unlock { accounts, .. } => (accounts.first().copied(), None),
            RecoveryChange::ResetMfa { account, .. }
            | RecoveryChange::UnlockQa { account }
            | RecoveryChange::UnenrollQa { account }
            | RecoveryChange::Issue { account } => (Some(*account), None),
            RecoveryChange::SetStatus { person, .. } => (None, Some(*person)),
        };
        lock_person(&mut tx, account, person).await?;
        let changed = match change {
            RecoveryChange::Unlock { accounts, unlocked_by } => {
                let mut any = false;
                for account in accounts {
                    any |= sqlx::query(
                        "UPDATE account SET locked_at = NULL, locked_until = NULL, lock_reason = NULL, \
                           failed_attempts = 0, lock_count = 0, last_failed_at = NULL, qa_failed_attempts = 0, \
                           qa_locked_at = NULL, unlocked_by = $1, unlocked_at = $2 \
                         WHERE account_id = $3 AND (locked_at IS NOT NULL OR failed_attempts > 0 \
                           OR qa_locked_at IS NOT NULL OR qa_failed_attempts > 0)",
                    )
                    .bind(unlocked_by)
                    .bind(now)
                    .bind(account.0)
                    .execute(&mut *tx)
                    .await
                    .db()?
                    .rows_affected()
                        == 1;
                }
                any
            }
            RecoveryChange::ResetMfa { account, device_authorization } => {
                let removed = remove_mfa(&mut tx, *account, &audit.actor, now).await?;
                sqlx::query(
                    "UPDATE account SET require_enroll_mfa = 1, require_device_authorization = $1 WHERE account_id = $2",
                )
                .bind(i64::from(*device_authorization))
                .bind(account.0)
                .execute(&mut *tx)
                .await
                .db()?;
                end_sessions(&mut tx, *account).await?;
                revoke_secrets(&mut tx, *account, Some(SecretKind::NotMe), now).await?;
                removed
            }
            RecoveryChange::UnlockQa { account } => {
                sqlx::query(
                    "UPDATE account SET qa_failed_attempts = 0, qa_locked_at = NULL \
                     WHERE account_id = $1 AND (qa_locked_at IS NOT NULL OR qa_failed_attempts > 0)",
                )
                .bind(account.0)
                .execute(&mut *tx)
                .await
                .db()?
                .rows_affected()
                    == 1
            }
            RecoveryChange::UnenrollQa { account } => {
                let removed = sqlx::query("DELETE FROM qa_answer WHERE account_id = $1")
                    .bind(account.0)
                    .execute(&mut *tx)
                    .await
                    .db()?
                    .rows_affected()
                    > 0;
                sqlx::query("UPDATE account SET qa_failed_attempts = 0, qa_locked_at = NULL WHERE account_id = $1")
                    .bind(account.0)
                    .execute(&mut *tx)
                    .await
                    .db()?;
                if removed {
                    history(&mut tx, *account, "security_questions", "removed", &audit.actor, None, now).await?;
                }
                removed
            }
            RecoveryChange::SetStatus { person, status } => {
                let done = sqlx::query("UPDATE person SET status = $1 WHERE person_id = $2 AND status <> $1")
                    .bind(status.as_str())
                    .bind(person.0)
                    .execute(&mut *tx)
                    .await
                    .db()?
                    .rows_affected()
                    == 1;
                if done && *status == PersonStatus::Disabled {
                    for account in accounts_of_person(&mut tx, *person).await? {
                        end_sessions(&mut tx, account).await?;
                        revoke_secrets(&mut tx, account, None, now).await?;
                    }
                }
                done
            }
            RecoveryChange::Issue { .. } => true,
        };
        if !changed {
            tx.rollback().await?;
            return Ok(false);
        }
        for secret in secrets {
            if secret.kind != SecretKind::NotMe {
                // A new secret replaces the live one of its kind: what an admin hands out, for the whole person
                // whichever of their accounts it was for (at most one recovery code, one pass, ... per person);
                // a device code, which belongs to one account's sign-in, for that account.
                let sql = if secret.kind == SecretKind::DeviceCode {
                    "UPDATE recovery_secret SET revoked_at = $1 \
                     WHERE account_id = $2 AND kind = $3 AND revoked_at IS NULL AND expires_at > $1"
                } else {
                    "UPDATE recovery_secret SET revoked_at = $1 \
                     WHERE kind = $3 AND revoked_at IS NULL AND expires_at > $1 AND account_id IN \
                       (SELECT a.account_id FROM account a JOIN account b ON a.person_id = b.person_id \
                        WHERE b.account_id = $2)"
                };
                sqlx::query(sql)
                    .bind(now)
                    .bind(secret.account.0)
                    .bind(secret.kind.as_str())
                    .execute(&mut *tx)
                    .await
                    .db()?;
            }
            insert_secret(&mut tx, secret, now).await?;
        }
        if let Some(reference) = resolve {
            sqlx::query(
                "UPDATE assistance_request SET status = 'resolved', closed_by = $1, closed_at = $2, close_note = $3 \
                 WHERE reference = $4 AND status = 'open'",
            )
            .bind(&audit.actor)
            .bind(now)
            .bind(format!("Resolved by {}", audit.action))
            .bind(reference)
            .execute(&mut *tx)
            .await
            .db()?;
        }
        tx.commit_with_emails(audit, emails, now).await?;
        Ok(true)
    }

    async fn secret(&self, hash: &TokenHash) -> StoreResult<Option<LiveSecret>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {SECRET_COLUMNS} FROM recovery_secret WHERE secret_hash = $1"
        )))
        .bind(&hash.0)
        .fetch_optional(&self.pool)
        .await
        .db()?;
        row.as_ref().map(secret_from_row).transpose()
    }

    async fn redeem(&self, r: &Redemption<'_>) -> StoreResult<Option<LiveSecret>> {
        let kinds: Vec<String> = r.kinds.iter().map(|k| format!("'{}'", k.as_str())).collect();
        if kinds.is_empty() {
            return Ok(None);
        }
        let mut tx = self.audited().await?;
        if let Some(account) = r.account {
            lock_person(&mut tx, Some(account), None).await?;
        }
        // The one statement that decides: of concurrent redemptions of a single-use secret, one matches
        // `used_at IS NULL` and the others (waiting on its row lock, or serialised by SQLite's writer) do not.
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE recovery_secret SET uses = uses + 1, used_at = COALESCE(used_at, $1) \
             WHERE secret_hash = $2 AND kind IN ({}) AND revoked_at IS NULL AND expires_at > $1 \
               AND (used_at IS NULL OR multi_use = 1) AND ($3 < 0 OR account_id = $3) \
             RETURNING {SECRET_COLUMNS}",
            kinds.join(", ")
        )))
        .bind(r.now)
        .bind(&r.hash.0)
        .bind(r.account.map(|a| a.0).unwrap_or(-1))
        .fetch_optional(&mut *tx)
        .await
        .db()?;
        let Some(row) = row else {
            tx.rollback().await?;
            return Ok(None);
        };
        let secret = secret_from_row(&row)?;
        let account = secret.account;
        if r.effect != RedeemEffect::ReportedNotMe {
            let active = sqlx::query(
                "SELECT 1 FROM account a JOIN person p ON p.person_id = a.person_id \
                 WHERE a.account_id = $1 AND p.status = 'active'",
            )
            .bind(account.0)
            .fetch_optional(&mut *tx)
            .await
            .db()?
            .is_some();
            if !active {
                tx.rollback().await?;
                return Ok(None);
            }
        }
        let by = format!("recovery:{}", secret.kind.as_str());
        match &r.effect {
            RedeemEffect::SetPassword(hash) => {
                sqlx::query(
                    "UPDATE account SET password_hash = $1, password_changed_at = $2, require_change_password = 0, \
                       temporary_password_until = NULL \
                     WHERE account_id = $3",
                )
                .bind(hash)
                .bind(r.now)
                .bind(account.0)
                .execute(&mut *tx)
                .await
                .db()?;
                history(&mut tx, account, "password", "bound", &by, None, r.now).await?;
                clear_lockout(&mut tx, account, &by, r.now).await?;
                end_sessions(&mut tx, account).await?;
                // The link's job is done; any other link or code handed out with it goes too.
                revoke_secrets(&mut tx, account, Some(SecretKind::NotMe), r.now).await?;
            }
            RedeemEffect::RequireChangePassword => {
                sqlx::query("UPDATE account SET require_change_password = 1 WHERE account_id = $1")
                    .bind(account.0)
                    .execute(&mut *tx)
                    .await
                    .db()?;
                clear_lockout(&mut tx, account, &by, r.now).await?;
            }
            RedeemEffect::ReplaceMfa => {
                remove_mfa(&mut tx, account, &by, r.now).await?;
                // The pass's session enrols; any other sign-in until then (someone who knows the password)
                // must prove the mailbox first.
                sqlx::query(
                    "UPDATE account SET require_enroll_mfa = 1, require_device_authorization = 1 WHERE account_id = $1",
                )
                .bind(account.0)
                .execute(&mut *tx)
                .await
                .db()?;
                clear_lockout(&mut tx, account, &by, r.now).await?;
                // The old authenticator's sessions go with it (the pass's own session starts after this).
                end_sessions(&mut tx, account).await?;
            }
            // The code moves this session on to enrolment and nothing else: the requirement stays until an
            // authenticator is bound, so another sign-in with the password alone meets the code again.
            RedeemEffect::DeviceAuthorized => {}
            RedeemEffect::ReportedNotMe => {
                sqlx::query(
                    "UPDATE account SET locked_at = $1, lock_reason = 'reported_not_me', locked_until = NULL \
                     WHERE account_id = $2",
                )
                .bind(r.now)
                .bind(account.0)
                .execute(&mut *tx)
                .await
                .db()?;
                end_sessions(&mut tx, account).await?;
                // "Since" reaches back to the oldest notice that could still be reported: an intruder who bound
                // a passkey, then made backup codes, is undone whichever of the two notices the person clicks
                // (the report revokes the other's link).
                let oldest: Option<i64> = sqlx::query_scalar(
                    "SELECT MIN(created_at) FROM recovery_secret WHERE account_id = $1 AND kind = 'not_me' \
                       AND revoked_at IS NULL AND used_at IS NULL AND expires_at > $2",
                )
                .bind(account.0)
                .bind(r.now)
                .fetch_one(&mut *tx)
                .await
                .db()?;
                let since = oldest.map_or(secret.created_at, |o| o.min(secret.created_at));
                revoke_secrets(&mut tx, account, None, r.now).await?;
                // A passkey bound since the reported action (the one whose notice this is, or one added with
                // what the action handed out) is the reporter's enemy's: it goes, so that unlocking the account
                // later does not let it back in.
                let removed: Vec<String> =
                    sqlx::query_scalar("DELETE FROM passkey WHERE account_id = $1 AND created_at >= $2 RETURNING name")
                        .bind(account.0)
                        .bind(since)
                        .fetch_all(&mut *tx)
                        .await
                        .db()?;
                for name in &removed {
                    history(&mut tx, account, "passkey", "removed", &by, Some(name), r.now).await?;
                }
                // Likewise every other authenticator bound since: an app, backup codes, security answers. And
                // whatever is left, the next sign-in with the password proves the mailbox before any new
                // authenticator is bound (the reported change may have been a password only the intruder knows).
                for (table, kind) in
                    [("totp_credential", "totp"), ("backup_code", "backup_codes"), ("qa_answer", "security_questions")]
                {
                    let gone = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DELETE FROM {table} WHERE account_id = $1 AND created_at >= $2"
                    )))
                    .bind(account.0)
                    .bind(since)
                    .execute(&mut *tx)
                    .await
                    .db()?
                    .rows_affected();
                    if gone > 0 {
                        history(&mut tx, account, kind, "removed", &by, None, r.now).await?;
                    }
                }
                sqlx::query("UPDATE account SET require_device_authorization = 1 WHERE account_id = $1")
                    .bind(account.0)
                    .execute(&mut *tx)
                    .await
                    .db()?;
                // The second notification address goes, whenever it was added: it may be the mailbox a reported
                // code went to, or an attacker's, and must not be where an admin sends the next one. The person
                // adds it again, with a new code, once they are back in.
                sqlx::query(
                    "DELETE FROM notification_address \
                     WHERE person_id = (SELECT person_id FROM account WHERE account_id = $1)",
                )
                .bind(account.0)
                .execute(&mut *tx)
                .await
                .db()?;
            }
            RedeemEffect::Nothing => clear_lockout(&mut tx, account, &by, r.now).await?,
        }
        if let Some(event) = r.event {
            let key = tx.key();
            insert_sign_in(&mut tx, key, event).await?;
        }
        let mut entry = r.audit.clone();
        entry.subject_account_id = Some(account.0);
        if entry.subject_person_id.is_none() {
            entry.subject_person_id = sqlx::query("SELECT person_id FROM account WHERE account_id = $1")
                .bind(account.0)
                .fetch_optional(&mut *tx)
                .await
                .db()?
                .map(|row| row.try_get::<i64, _>(0))
                .transpose()
                .db()?;
        }
        for secret in r.secrets {
            insert_secret(&mut tx, secret, r.now).await?;
        }
        tx.commit_with_emails(&entry, r.emails, r.now).await?;
        Ok(Some(secret))
    }

    async fn create_approval(&self, a: &Approval, audit: &AuditEntry) -> StoreResult<i64> {
        let mut tx = self.audited().await?;
        let id: i64 = sqlx::query(
            "INSERT INTO approval (action, person_id, requested_by_account, requested_by, form, created_at, expires_at, status) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending') RETURNING approval_id",
        )
        .bind(&a.action)
        .bind(a.person.0)
        .bind(a.requested_by_account.0)
        .bind(&a.requested_by)
        .bind(&a.form)
        .bind(a.created_at)
        .bind(a.expires_at)
        .fetch_one(&mut *tx)
        .await
        .db()?
        .try_get(0)
        .db()?;
        let mut entry = audit.clone();
        entry.details = Some(serde_json::json!({ "approval": id, "form": serde_json::from_str::<serde_json::Value>(&a.form).unwrap_or_default() }).to_string());
        tx.commit(&entry).await?;
        Ok(id)
    }

    async fn approval(&self, id: i64) -> StoreResult<Option<Approval>> {
        let row =
            sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {APPROVAL_COLUMNS} FROM approval WHERE approval_id = $1")))
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .db()?;
        row.as_ref().map(approval_from_row).transpose()
    }

    async fn pending_approvals(&self, now: Timestamp) -> StoreResult<Vec<Approval>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {APPROVAL_COLUMNS} FROM approval WHERE status = 'pending' AND expires_at > $1 \
             ORDER BY created_at, approval_id LIMIT 200"
        )))
        .bind(now)
        .fetch_all(&self.pool)
        .await
        .db()?;
        rows.iter().map(approval_from_row).collect()
    }

    async fn reserve_approval(&self, id: i64, now: Timestamp) -> StoreResult<bool> {
        let _turn = self.write_turn().await;
        let done = sqlx::query(
            "UPDATE approval SET status = 'running' WHERE approval_id = $1 AND status = 'pending' AND expires_at > $2",
        )
        .bind(id)
        .bind(now)
        .execute(&self.pool)
        .await
        .db()?
        .rows_affected();
        Ok(done == 1)
    }

    async fn settle_approval(
        &self,
        id: i64,
        status: &str,
        decided_by: Option<&str>,
        now: Timestamp,
        audit: Option<&AuditEntry>,
    ) -> StoreResult<()> {
        let mut tx = self.audited().await?;
        sqlx::query("UPDATE approval SET status = $1, decided_by = $2, decided_at = $3 WHERE approval_id = $4")
            .bind(status)
            .bind(decided_by)
            .bind(decided_by.map(|_| now))
            .bind(id)
            .execute(&mut *tx)
            .await
            .db()?;
        match audit {
            Some(entry) => tx.commit(entry).await.map(|_| ()),
            None => tx.finish().await,
        }
    }
}
