//! Assistance request intake, and its limit: durable one-row transactions on the same backend.

use crate::env::Server;
use crate::report::Stats;
use crate::signin::csrf_of;
use anyhow::{Context, bail};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// `total` assistance requests, each from its own client (GET the form, POST it with a unique address).
pub async fn intake(servers: &[&Server], total: usize, concurrency: usize) -> Stats {
    let next = Arc::new(AtomicUsize::new(0));
    let results = Arc::new(Mutex::new(Stats::default()));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for n in 0..concurrency {
        let (next, results) = (next.clone(), results.clone());
        let base = servers[n % servers.len()].base.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= total {
                    return;
                }
                let outcome: anyhow::Result<Duration> = async {
                    let client = reqwest::Client::builder().cookie_store(true).build()?;
                    let form = client.get(format!("{base}/assistance")).send().await?.text().await?;
                    let csrf = csrf_of(&form).context("no csrf on /assistance")?;
                    let email = format!("asker{i}@intake.example");
                    let t = Instant::now();
                    let page = client
                        .post(format!("{base}/assistance"))
                        .form(&[
                            ("email", email.as_str()),
                            ("type", "other"),
                            ("description", ""),
                            ("csrf", csrf.as_str()),
                        ])
                        .send()
                        .await?
                        .text()
                        .await?;
                    let took = t.elapsed();
                    if !page.contains("Request received") {
                        bail!("the request was not received");
                    }
                    Ok(took)
                }
                .await;
                results.lock().await.record("intake", outcome);
            }
        }));
    }
    Stats::gather(tasks, &results, start).await
}

/// The limit for intake: one row per transaction into the same backend with the same durability settings
/// (SQLite: WAL and sqlx's default synchronous level, as the store has them; one connection, as SQLite has one
/// writer: the best a writer can do, with no lock contention in the figure), from as many clients.
pub async fn durable_insert_rate(url: &str, total: usize, concurrency: usize) -> anyhow::Result<f64> {
    sqlx::any::install_default_drivers();
    let url = if url.starts_with("sqlite:") { format!("{url}?mode=rwc") } else { url.to_owned() };
    let sqlite = url.starts_with("sqlite:");
    let pool = sqlx::any::AnyPoolOptions::new().max_connections(if sqlite { 1 } else { 16 }).connect(&url).await?;
    if sqlite {
        sqlx::query("PRAGMA journal_mode = WAL").execute(&pool).await?;
    }
    sqlx::query("CREATE TABLE IF NOT EXISTS bench_limit (id BIGINT PRIMARY KEY, email TEXT NOT NULL)")
        .execute(&pool)
        .await?;
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (pool, next) = (pool.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= total {
                    return Ok::<_, sqlx::Error>(());
                }
                let mut tx = pool.begin().await?;
                sqlx::query("INSERT INTO bench_limit (id, email) VALUES ($1, $2)")
                    .bind(i as i64)
                    .bind(format!("asker{i}@intake.example"))
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(total as f64 / start.elapsed().as_secs_f64())
}
