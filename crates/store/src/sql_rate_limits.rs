//! Counters in fixed windows on the SQL backends: rate limits charged all-or-nothing, flood counts.

use super::sql::SqlStore;
use super::*;
use sqlx::Row;

/// Charge one hit to every bucket inside the caller's transaction; the index of the first full bucket, if one is
/// (the caller then rolls back, which un-charges the buckets taken before it).
pub(super) async fn charge(conn: &mut sqlx::AnyConnection, buckets: &[RateBucket]) -> StoreResult<Option<usize>> {
    // Every caller locks the counters in the same (key) order, so two requests sharing buckets queue
    // behind each other instead of deadlocking.
    let mut order: Vec<usize> = (0..buckets.len()).collect();
    order.sort_by(|a, b| buckets[*a].key.cmp(&buckets[*b].key));
    for &i in &order {
        let bucket = &buckets[i];
        // The conditional upsert takes the row's lock and re-checks the count under it; a full
        // window returns no row.
        let taken = sqlx::query(
            "INSERT INTO rate_limit_counter (bucket, window_start, hits) VALUES ($1, $2, 1) \
             ON CONFLICT (bucket, window_start) DO UPDATE SET hits = rate_limit_counter.hits + 1 \
             WHERE rate_limit_counter.hits < $3 RETURNING hits",
        )
        .bind(&bucket.key)
        .bind(bucket.window_start)
        .bind(bucket.max)
        .fetch_optional(&mut *conn)
        .await
        .db()?;
        if taken.is_none() {
            return Ok(Some(i));
        }
    }
    Ok(None)
}

impl SqlStore {
    /// Every full bucket of a refused charge (`first_full` and any other at its limit), so the client is told
    /// the longest wait.
    pub(super) async fn full_buckets(&self, buckets: &[RateBucket], first_full: usize) -> StoreResult<Vec<usize>> {
        let mut full = Vec::new();
        for (i, bucket) in buckets.iter().enumerate() {
            let hits: Option<i64> =
                sqlx::query("SELECT hits FROM rate_limit_counter WHERE bucket = $1 AND window_start = $2")
                    .bind(&bucket.key)
                    .bind(bucket.window_start)
                    .fetch_optional(self.pool())
                    .await
                    .db()?
                    .map(|r| r.try_get("hits"))
                    .transpose()
                    .db()?;
            if i == first_full || hits.is_some_and(|h| h >= bucket.max) {
                full.push(i);
            }
        }
        Ok(full)
    }
}

#[async_trait]
impl RateLimitStore for SqlStore {
    async fn take_rate_limits(&self, buckets: &[RateBucket]) -> StoreResult<RateCharge> {
        let mut tx = self.begin_write().await?;
        match charge(&mut tx, buckets).await? {
            None => {
                tx.commit().await.db()?;
                Ok(RateCharge::Taken)
            }
            Some(first_full) => {
                tx.rollback().await.db()?;
                Ok(RateCharge::Refused { full: self.full_buckets(buckets, first_full).await? })
            }
        }
    }

    async fn count_in_window(
        &self,
        key: &str,
        window_start: Timestamp,
        previous: Timestamp,
    ) -> StoreResult<(i64, i64)> {
        let _turn = self.write_turn().await;
        let now: i64 = sqlx::query(
            "INSERT INTO rate_limit_counter (bucket, window_start, hits) VALUES ($1, $2, 1) \
             ON CONFLICT (bucket, window_start) DO UPDATE SET hits = rate_limit_counter.hits + 1 RETURNING hits",
        )
        .bind(key)
        .bind(window_start)
        .fetch_one(self.pool())
        .await
        .db()?
        .try_get("hits")
        .db()?;
        let before: Option<i64> =
            sqlx::query("SELECT hits FROM rate_limit_counter WHERE bucket = $1 AND window_start = $2")
                .bind(key)
                .bind(previous)
                .fetch_optional(self.pool())
                .await
                .db()?
                .map(|r| r.try_get("hits"))
                .transpose()
                .db()?;
        Ok((now, before.unwrap_or(0)))
    }

    async fn delete_old_rate_limit_windows(&self, before: Timestamp) -> StoreResult<u64> {
        let _turn = self.write_turn().await;
        let result = sqlx::query("DELETE FROM rate_limit_counter WHERE window_start < $1")
            .bind(before)
            .execute(self.pool())
            .await
            .db()?;
        Ok(result.rows_affected())
    }
}
