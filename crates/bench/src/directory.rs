//! The directory at scale: `person import` of a generated CSV through the CLI, and admin people search by part
//! of a name over the API.

use crate::env::Env;
use crate::report::Stats;
use anyhow::{Context, bail};
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

const GIVEN: &[&str] = &[
    "Ada",
    "Alan",
    "Grace",
    "Linus",
    "Margaret",
    "Dennis",
    "Barbara",
    "Ken",
    "Frances",
    "Edsger",
    "Radia",
    "Tim",
    "Hedy",
    "Niklaus",
    "Katherine",
    "John",
    "Sophie",
    "Donald",
    "Annie",
    "Bjarne",
    "Evelyn",
    "Guido",
    "Karen",
    "Leslie",
    "Mary",
    "Robin",
    "Shafi",
    "Whitfield",
    "Adele",
    "Brian",
    "Carol",
    "David",
    "Elena",
    "Fatima",
    "Gustav",
    "Hannah",
    "Ingrid",
    "Jamal",
    "Kofi",
    "Lena",
    "Mateo",
    "Nadia",
    "Oscar",
    "Priya",
    "Quentin",
    "Rosa",
    "Sven",
    "Tariq",
    "Ursula",
    "Viktor",
    "Wen",
    "Ximena",
    "Yusuf",
    "Zofia",
];
const FAMILY: &[&str] = &[
    "Lovelace",
    "Turing",
    "Hopper",
    "Torvalds",
    "Hamilton",
    "Ritchie",
    "Liskov",
    "Thompson",
    "Allen",
    "Dijkstra",
    "Perlman",
    "Berners-Lee",
    "Lamarr",
    "Wirth",
    "Johnson",
    "McCarthy",
    "Wilson",
    "Knuth",
    "Easley",
    "Stroustrup",
    "Boyd",
    "Rossum",
    "Jones",
    "Lamport",
    "Kenneth",
    "Milner",
    "Goldwasser",
    "Diffie",
    "Goldberg",
    "Kernighan",
    "Shaw",
    "Patterson",
    "Andersson",
    "Haddad",
    "Lindqvist",
    "Okafor",
    "Nakamura",
    "Fernandes",
    "Kowalski",
    "Petrov",
    "Svensson",
    "Mensah",
    "Garcia",
    "Novak",
    "Schmidt",
    "Rossi",
    "Dubois",
    "Jensen",
    "Horvath",
    "Silva",
];

/// The `i`th generated person's display name: a given and a family name, and a number that makes it unique.
fn name_of(i: usize) -> String {
    format!("{} {} {i}", GIVEN[i % GIVEN.len()], FAMILY[(i / GIVEN.len()) % FAMILY.len()])
}

/// A CSV of people `from..to` (no passwords), each a report of the first person of their block of 100, as an
/// organisation's chart is.
pub fn write_csv(path: &std::path::Path, from: usize, to: usize) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(out, "email,display_name,username,source,manager_email,department")?;
    for i in from..to {
        let manager = i - i % 100;
        let manager = if manager == i { String::new() } else { format!("p{manager}@people.example") };
        writeln!(out, "p{i}@people.example,{},p{i},synchronized,{manager},Dept {}", name_of(i), i % 40)?;
    }
    out.flush()?;
    Ok(())
}

/// `lifeline person import` of `path`; rows per second from the command's start to its end.
pub async fn import(env: &Env, path: &std::path::Path, rows: usize) -> anyhow::Result<(f64, Duration)> {
    let started = Instant::now();
    env.cli(&["person", "import", &path.display().to_string()], "").await.context("person import")?;
    let took = started.elapsed();
    Ok((rows as f64 / took.as_secs_f64(), took))
}

/// Partial-name queries: three to five letters from the middle of a given or family name, lower-cased as
/// someone types them.
fn queries() -> Vec<String> {
    let mut out = Vec::new();
    for (n, name) in GIVEN.iter().chain(FAMILY.iter()).enumerate() {
        let chars: Vec<char> = name.to_lowercase().chars().collect();
        let len = 3 + n % 3;
        if chars.len() >= len {
            let start = (n * 7) % (chars.len() - len + 1);
            out.push(chars[start..start + len].iter().collect());
        }
    }
    out
}

/// `total` searches over `GET /api/v1/people?query=…` from `concurrency` clients with one token.
pub async fn search(base: &str, token: &str, total: usize, concurrency: usize) -> Stats {
    let queries = Arc::new(queries());
    let next = Arc::new(AtomicUsize::new(0));
    let results = Arc::new(Mutex::new(Stats::default()));
    let client = reqwest::Client::new();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (queries, next, results, client) = (queries.clone(), next.clone(), results.clone(), client.clone());
        let (base, token) = (base.to_owned(), token.to_owned());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= total {
                    return;
                }
                let query = &queries[i % queries.len()];
                let t = Instant::now();
                let outcome: anyhow::Result<()> = async {
                    let r = client
                        .get(format!("{base}/api/v1/people"))
                        .query(&[("query", query.as_str()), ("limit", "20")])
                        .bearer_auth(&token)
                        .send()
                        .await?;
                    let status = r.status();
                    let body = r.text().await?;
                    if !status.is_success() || !body.contains("\"people\"") {
                        bail!("search {query}: {status} {}", body.chars().take(200).collect::<String>());
                    }
                    Ok(())
                }
                .await;
                let took = t.elapsed();
                results.lock().await.record("search", outcome.map(|()| took));
            }
        }));
    }
    Stats::gather(tasks, &results, start).await
}
