//! People search in name order on SQLite (migration 0015): every search row has `ord`, a number that follows
//! (sort_key, person_id), and the trigram index is keyed by it, so the index hands matches back in name order
//! and a page of a common text is read, not a sort of every match.
//!
//! `ord` is kept as an order-maintenance list: a new row takes the middle of the gap between its neighbours;
//! when there is no gap left, the stretch around it is spread out evenly (a wider one each time it is too
//! crowded), and a large import numbers everyone afresh. PostgreSQL does not use `ord` (its search reads the
//! pg_trgm and name-order indexes of migration 0014).

use super::*;
use sqlx::Row;

/// The distance between neighbours when rows are numbered afresh: 32 halvings before a gap is used up. With
/// `END` this numbers up to 2^30 (about a billion) people; a directory larger than that would need a smaller gap.
const GAP: i64 = 1 << 32;
/// Numbers stay below this (and above 0), so a gap's middle and a spread never overflow.
const END: i64 = 1 << 62;
/// The rows either side of a full gap that are spread out first (doubled while that is not enough).
const FIRST_STRETCH: i64 = 32;

/// Number every search row afresh in name order (`GAP` apart) and build the trigram index again: after a large
/// import, a copy, or when a stretch spread over the whole table is still too crowded.
pub(super) async fn renumber_all(conn: &mut sqlx::AnyConnection) -> StoreResult<()> {
    sqlx::query("INSERT INTO person_search_trigrams (person_search_trigrams) VALUES ('delete-all')")
        .execute(&mut *conn)
        .await
        .db()?;
    sqlx::query(
        "UPDATE person_search SET ord = r.n * $1 \
         FROM (SELECT person_id, ROW_NUMBER() OVER (ORDER BY sort_key, person_id) AS n FROM person_search) r \
         WHERE r.person_id = person_search.person_id",
    )
    .bind(GAP)
    .execute(&mut *conn)
    .await
    .db()?;
    sqlx::query("INSERT INTO person_search_trigrams (rowid, haystack) SELECT ord, haystack FROM person_search")
        .execute(&mut *conn)
        .await
        .db()?;
    Ok(())
}

/// Give the search row of `person` (just inserted, without a number) its place in name order, and its
/// trigrams.
pub(super) async fn place(conn: &mut sqlx::AnyConnection, person: i64) -> StoreResult<()> {
    let row = sqlx::query("SELECT sort_key, haystack FROM person_search WHERE person_id = $1")
        .bind(person)
        .fetch_one(&mut *conn)
        .await
        .db()?;
    let key: String = row.try_get("sort_key").db()?;
    let haystack: String = row.try_get("haystack").db()?;
    let neighbour = |sql: &'static str| sqlx::query_scalar::<_, i64>(sql).bind(key.clone()).bind(person);
    let before = neighbour(
        "SELECT ord FROM person_search WHERE (sort_key, person_id) < ($1, $2) AND ord IS NOT NULL \
         ORDER BY sort_key DESC, person_id DESC LIMIT 1",
    )
    .fetch_optional(&mut *conn)
    .await
    .db()?;
    let after = neighbour(
        "SELECT ord FROM person_search WHERE (sort_key, person_id) > ($1, $2) AND ord IS NOT NULL \
         ORDER BY sort_key, person_id LIMIT 1",
    )
    .fetch_optional(&mut *conn)
    .await
    .db()?;
    let low = before.unwrap_or(0);
    let ord = match after {
        // The last in name order (the usual case for an import in order): a full gap after the one before.
        None if low < END - GAP => Some(low + GAP),
        None => between(low, END),
        Some(high) => between(low, high),
    };
    let ord = match ord {
        Some(ord) => ord,
        None => spread(conn, &key, low).await?,
    };
    set(conn, person, ord, &haystack).await
}

/// The middle of the gap between two numbers, if there is one.
fn between(low: i64, high: i64) -> Option<i64> {
    (high - low >= 2).then(|| low + (high - low) / 2)
}

async fn set(conn: &mut sqlx::AnyConnection, person: i64, ord: i64, haystack: &str) -> StoreResult<()> {
    sqlx::query("UPDATE person_search SET ord = $1 WHERE person_id = $2")
        .bind(ord)
        .bind(person)
        .execute(&mut *conn)
        .await
        .db()?;
    sqlx::query("INSERT INTO person_search_trigrams (rowid, haystack) VALUES ($1, $2)")
        .bind(ord)
        .bind(haystack)
        .execute(&mut *conn)
        .await
        .db()?;
    Ok(())
}

/// No gap is left where a new row goes (after the row numbered `low`): spread the stretch around it evenly over
/// the numbers it spans, `FIRST_STRETCH` rows either side and twice as many each time that is too crowded, and
/// return the number left for `person`. The rows that move get their trigrams under their new number.
async fn spread(conn: &mut sqlx::AnyConnection, key: &str, low: i64) -> StoreResult<i64> {
    let mut reach = FIRST_STRETCH;
    loop {
        // The rows up to `reach` before the gap (`low` included) and after it, in name order.
        let mut rows = sqlx::query(
            "SELECT person_id, ord, haystack FROM (SELECT person_id, ord, haystack FROM person_search \
             WHERE ord IS NOT NULL AND ord <= $1 ORDER BY ord DESC LIMIT $2) ORDER BY ord",
        )
        .bind(low)
        .bind(reach)
        .fetch_all(&mut *conn)
        .await
        .db()?;
        let left_edge = rows.len() < reach as usize;
        let later = sqlx::query(
            "SELECT person_id, ord, haystack FROM person_search WHERE ord IS NOT NULL AND ord > $1 \
             ORDER BY ord LIMIT $2",
        )
        .bind(low)
        .bind(reach)
        .fetch_all(&mut *conn)
        .await
        .db()?;
        let right_edge = later.len() < reach as usize;
        // The stretch runs from just below its first row (or 0) to just above its last (or the end); the new
        // row goes between the two halves.
        let first = rows.first().map(|r| r.try_get::<i64, _>("ord")).transpose().db()?;
        let last = later.last().map(|r| r.try_get::<i64, _>("ord")).transpose().db()?;
        let floor = if left_edge { 0 } else { first.unwrap_or(0) - 1 };
        let ceiling = if right_edge { END } else { last.unwrap_or(END) + 1 };
        let before = rows.len();
        rows.extend(later);
        let count = rows.len() as i64 + 1;
        let step = (ceiling - floor) / (count + 1);
        if step < 2 {
            if left_edge && right_edge {
                // Even the whole table is too crowded (it cannot be at these numbers, but never spin).
                return Err(StoreError::Corrupt(format!("no room in the search order near {key:?}")));
            }
            reach *= 2;
            continue;
        }
        // Take the moved rows out of the trigram index first, so no old and new number ever meet there.
        for row in &rows {
            sqlx::query("INSERT INTO person_search_trigrams (person_search_trigrams, rowid, haystack) VALUES ('delete', $1, $2)")
                .bind(row.try_get::<i64, _>("ord").db()?)
                .bind(row.try_get::<String, _>("haystack").db()?)
                .execute(&mut *conn)
                .await
                .db()?;
        }
        let mut mine = 0;
        let mut next = floor;
        for (n, row) in rows.iter().enumerate() {
            if n == before {
                next += step;
                mine = next;
            }
            next += step;
            let id: i64 = row.try_get("person_id").db()?;
            let haystack: String = row.try_get("haystack").db()?;
            set(conn, id, next, &haystack).await?;
        }
        if before == rows.len() {
            mine = next + step;
        }
        return Ok(mine);
    }
}
