//! Password + TOTP sign-ins through the pages, and their limit: argon2id's own verify rate.

use crate::env::{Env, Server, cores, rss_kib, unix_now};
use crate::report::Stats;
use anyhow::{Context, bail};
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

pub fn csrf_of(html: &str) -> Option<String> {
    let start = html.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    let end = html[start..].find('"')?;
    Some(html[start..start + end].to_owned())
}

/// A person to sign in, and the next TOTP step their account will take.
pub struct Person {
    pub login: String,
    pub password: String,
    pub secret: lifeline_core::totp::TotpSecret,
    pub next_step: i64,
}

/// Seed `n` people with a password and TOTP through `lifeline person add --totp --json`, two at a time.
pub async fn seed_people(env: &Arc<Env>, from: usize, n: usize) -> anyhow::Result<Vec<Person>> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..cores() {
        let env = env.clone();
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            let mut people = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= n {
                    return Ok::<_, anyhow::Error>(people);
                }
                let i = from + i;
                let login = format!("bench{i}");
                let password = format!("bench-pass-{i}-orchard-lantern");
                let email = format!("{login}@bench.example");
                let out = env
                    .cli(
                        &[
                            "person",
                            "add",
                            "--email",
                            &email,
                            "--name",
                            &format!("Bench {i}"),
                            "--username",
                            &login,
                            "--totp",
                            "--json",
                        ],
                        &format!("{password}\n"),
                    )
                    .await?;
                let v: Value = serde_json::from_str(&out).context("person add --json")?;
                let uri = v["otpauth_uri"].as_str().context("no otpauth_uri")?;
                let secret = uri
                    .split("secret=")
                    .nth(1)
                    .and_then(|s| s.split('&').next())
                    .and_then(lifeline_core::totp::TotpSecret::from_base32)
                    .context("no secret in the otpauth URI")?;
                people.push(Person { login, password, secret, next_step: i64::MIN });
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    Ok(all)
}

/// One password + TOTP sign-in through the pages, as a browser does it (cookies, CSRF, redirects).
pub async fn sign_in_once(base: &str, person: &Person, step: i64) -> anyhow::Result<()> {
    let client = reqwest::Client::builder().cookie_store(true).build()?;
    let page = client.get(format!("{base}/signin")).send().await?.text().await?;
    let csrf = csrf_of(&page).context("no csrf on /signin")?;
    let mfa = client
        .post(format!("{base}/signin"))
        .form(&[("login", person.login.as_str()), ("password", person.password.as_str()), ("csrf", csrf.as_str())])
        .send()
        .await?
        .text()
        .await?;
    let csrf = csrf_of(&mfa).context("no second-factor form after the password")?;
    let code =
        lifeline_core::totp::hotp(person.secret.as_bytes(), step as u64, 6, lifeline_core::totp::Algorithm::Sha1);
    let home = client
        .post(format!("{base}/signin/mfa"))
        .form(&[("code", code.as_str()), ("csrf", csrf.as_str())])
        .send()
        .await?
        .text()
        .await?;
    if !home.contains("Hello,") {
        let heading = home.split("<h1").nth(1).and_then(|h| h.split("</h1>").next()).unwrap_or("(no heading)");
        bail!("the sign-in did not reach the account page: {heading}");
    }
    Ok(())
}

/// `total` sign-ins from `concurrency` clients; each account takes each TOTP step once (the server's replay
/// rule), so a person is used again only at a later step within the ±1 window. Memory is sampled on the way.
pub async fn sign_ins(
    servers: &[&Server],
    people: Vec<Person>,
    total: usize,
    concurrency: usize,
) -> (Stats, Vec<(usize, u64)>) {
    let queue = Arc::new(Mutex::new(std::collections::VecDeque::from(people)));
    let done = Arc::new(AtomicUsize::new(0));
    let results = Arc::new(Mutex::new(Stats::default()));
    let samples = Arc::new(Mutex::new(Vec::new()));
    let pid = servers[0].pid();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for n in 0..concurrency {
        let (queue, done, results, samples) = (queue.clone(), done.clone(), results.clone(), samples.clone());
        // Clients take the instances in turn.
        let base = servers[n % servers.len()].base.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                if done.load(Ordering::SeqCst) >= total {
                    return;
                }
                let now_step = unix_now() / 30;
                let popped = queue.lock().await.pop_front();
                let Some(mut person) = popped else {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                };
                // The current step or the next: a request in flight as the step turns is still in the window
                // (the step before would fall out of it).
                let step = person.next_step.max(now_step);
                if step > now_step + 1 {
                    queue.lock().await.push_back(person);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
                let n = done.fetch_add(1, Ordering::SeqCst);
                if n >= total {
                    return;
                }
                let t = Instant::now();
                let outcome = sign_in_once(&base, &person, step).await;
                let took = t.elapsed();
                person.next_step = step + 1;
                queue.lock().await.push_back(person);
                results.lock().await.record("sign-in", outcome.map(|()| took));
                if (n + 1) % (total / 10).max(1) == 0 {
                    samples.lock().await.push((n + 1, rss_kib(pid)));
                }
            }
        }));
    }
    let stats = Stats::gather(tasks, &results, start).await;
    let samples = samples.lock().await.clone();
    (stats, samples)
}

/// The limit for sign-ins: argon2id verifies per second with the server's parameters, on as many threads as
/// the server hashes on (one per core), in this process.
pub fn argon2_verify_rate(seconds: f64) -> f64 {
    use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version};
    let s = lifeline_core::crypto::Argon2Settings::default();
    let Ok(params) = Params::new(s.memory_kib, s.iterations, s.parallelism, None) else { return f64::NAN };
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let Ok(hash) = argon.hash_password(b"bench-pass-orchard-lantern") else { return f64::NAN };
    let phc = hash.to_string();
    let count = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let threads: Vec<_> = (0..cores())
        .map(|_| {
            let (count, phc, argon) = (count.clone(), phc.clone(), argon.clone());
            std::thread::spawn(move || {
                let Ok(parsed) = PasswordHash::new(&phc) else { return };
                while Instant::now() < deadline {
                    let _ = argon.verify_password(b"bench-pass-orchard-lantern", &parsed);
                    count.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let start = Instant::now();
    for t in threads {
        let _ = t.join();
    }
    count.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}
