//! People's second notification addresses (migration 0018). The confirmation code is checked and counted in
//! one statement: a wrong try is a write under the row's lock, so parallel guesses cannot exceed the limit.

use super::sql::*;
use super::*;
use sqlx::Row;

#[async_trait]
impl AddressStore for SqlStore {
    async fn notification_address(&self, person: PersonId) -> StoreResult<Option<NotificationAddress>> {
        let row = sqlx::query(
            "SELECT address, added_at, confirmed_at, code_expires_at FROM notification_address WHERE person_id = $1",
        )
        .bind(person.0)
        .fetch_optional(&self.pool)
        .await
        .db()?;
        row.map(|r| {
            Ok(NotificationAddress {
                address: r.try_get("address").db()?,
                added_at: r.try_get("added_at").db()?,
                confirmed_at: r.try_get("confirmed_at").db()?,
                code_expires_at: r.try_get("code_expires_at").db()?,
            })
        })
        .transpose()
    }

    async fn set_notification_address(
        &self,
        person: PersonId,
        pending: &PendingAddress<'_>,
        notices: &Notices,
        audit: &AuditEntry,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let mut tx = self.audited().await?;
        // The resend limit is the upsert's own condition: of two adds at once, the second finds the first's row.
        let written = sqlx::query(
            "INSERT INTO notification_address (person_id, address, added_at, confirmed_at, code_hash, code_expires_at, \
               failed_tries) VALUES ($1, $2, $3, NULL, $4, $5, 0) \
             ON CONFLICT (person_id) DO UPDATE SET address = excluded.address, added_at = excluded.added_at, \
               confirmed_at = NULL, code_hash = excluded.code_hash, code_expires_at = excluded.code_expires_at, \
               failed_tries = 0 \
             WHERE notification_address.added_at <= $6",
        )
        .bind(person.0)
        .bind(pending.address)
        .bind(now)
        .bind(&pending.code.0)
        .bind(pending.expires_at)
        .bind(now - ADDRESS_RESEND_SECONDS)
        .execute(&mut *tx)
        .await
        .db()?
        .rows_affected()
            == 1;
        if !written {
            tx.rollback().await?;
            return Ok(false);
        }
        tx.commit_with_notices(audit, notices, now).await?;
        Ok(true)
    }

    async fn confirm_notification_address(
        &self,
        person: PersonId,
        address: &str,
        code: &TokenHash,
        notices: &Notices,
        audit: &AuditEntry,
        now: Timestamp,
    ) -> StoreResult<AddressConfirmation> {
        let mut tx = self.audited().await?;
        // The code is looked up by its keyed hash: no secret is compared here. `code_hash = NULL` afterwards
        // makes it single use.
        let confirmed = sqlx::query(
            "UPDATE notification_address SET confirmed_at = $1, code_hash = NULL, code_expires_at = NULL \
             WHERE person_id = $2 AND code_hash = $3 AND code_expires_at > $1 AND failed_tries < $4 \
               AND confirmed_at IS NULL AND address = $5",
        )
        .bind(now)
        .bind(person.0)
        .bind(&code.0)
        .bind(ADDRESS_CODE_TRIES)
        .bind(address)
        .execute(&mut *tx)
        .await
        .db()?
        .rows_affected()
            == 1;
        if confirmed {
            tx.commit_with_notices(audit, notices, now).await?;
            return Ok(AddressConfirmation::Confirmed);
        }
        let counted = sqlx::query(
            "UPDATE notification_address SET failed_tries = failed_tries + 1 \
             WHERE person_id = $1 AND confirmed_at IS NULL AND code_hash IS NOT NULL AND code_expires_at > $2 \
               AND failed_tries < $3 AND address = $4",
        )
        .bind(person.0)
        .bind(now)
        .bind(ADDRESS_CODE_TRIES)
        .bind(address)
        .execute(&mut *tx)
        .await
        .db()?
        .rows_affected()
            == 1;
        tx.finish().await?;
        Ok(if counted { AddressConfirmation::Wrong } else { AddressConfirmation::Spent })
    }

    async fn remove_notification_address(
        &self,
        person: PersonId,
        notices: &Notices,
        audit: &AuditEntry,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let mut tx = self.audited().await?;
        let removed = sqlx::query("DELETE FROM notification_address WHERE person_id = $1")
            .bind(person.0)
            .execute(&mut *tx)
            .await
            .db()?
            .rows_affected()
            == 1;
        if !removed {
            tx.rollback().await?;
            return Ok(false);
        }
        tx.commit_with_notices(audit, notices, now).await?;
        Ok(true)
    }
}
