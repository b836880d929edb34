//! An admin action over the API: issue a recovery code (an expert action), which also queues its email.

use crate::report::Stats;
use anyhow::{Context, bail};
use serde_json::Value;
use std::time::Instant;

/// Ids of the people whose name matches `query`, every page of them, but the one with email `except`.
pub async fn people_ids(base: &str, token: &str, query: &str, except: &str) -> anyhow::Result<Vec<i64>> {
    let client = reqwest::Client::new();
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut params = vec![("query", query.to_owned()), ("limit", "200".to_owned())];
        if let Some(c) = &cursor {
            params.push(("cursor", c.clone()));
        }
        let page: Value =
            client.get(format!("{base}/api/v1/people")).query(&params).bearer_auth(token).send().await?.json().await?;
        let people = page["people"].as_array().context("no people in the page")?;
        ids.extend(people.iter().filter(|p| p["email"] != except).filter_map(|p| p["id"].as_i64()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return Ok(ids),
        }
    }
}

/// `total` recovery codes, one after another (the figure is each call's own time), round the people `ids`.
pub async fn recovery_codes(base: &str, token: &str, ids: &[i64], total: usize) -> anyhow::Result<Stats> {
    if ids.is_empty() {
        bail!("nobody to act on");
    }
    let client = reqwest::Client::new();
    let body = serde_json::json!({ "reason": "Identity verified by callback to the number on file" });
    let mut stats = Stats::default();
    let start = Instant::now();
    for i in 0..total {
        let id = ids[i % ids.len()];
        let t = Instant::now();
        let r = client
            .post(format!("{base}/api/v1/people/{id}/actions/send-recovery-code"))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await?;
        let status = r.status();
        let text = r.text().await?;
        let took = t.elapsed();
        if status.is_success() && text.contains("\"done\"") {
            stats.latencies.push(took);
        } else {
            if stats.errors < 3 {
                eprintln!("recovery code for {id}: {status} {}", text.chars().take(300).collect::<String>());
            }
            stats.errors += 1;
        }
    }
    stats.elapsed = start.elapsed();
    Ok(stats)
}
