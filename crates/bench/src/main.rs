//! `lifeline-bench`: starts a release `lifeline serve` on a fresh database, seeds it through the product's own
//! CLI, drives it over HTTP with a concurrent client, and prints each figure beside a limit measured in the same
//! run on the same machine (never a fixed number of seconds: this machine is shared and noisy). Every number
//! also goes to `bench-results.json`.
//!
//! `cargo run --release -p lifeline-bench -- [--quick] [--database URL]`

mod admin;
mod directory;
mod env;
mod intake;
mod report;
mod signin;
mod smtp;

use anyhow::{Context, bail};
use clap::Parser;
use env::{Env, cores, own_cpu_seconds, rss_kib, unix_now};
use report::{Row, print_table};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(about = "Lifeline's benchmarks: figures as ratios to limits measured in the same run")]
struct Args {
    /// Every scenario, small: a smoke test that each completes without errors.
    #[arg(long)]
    quick: bool,
    /// The database (default: a fresh SQLite file); a PostgreSQL URL gets a fresh database of its own on it.
    #[arg(long)]
    database: Option<String>,
    /// Where the numbers go.
    #[arg(long, default_value = "bench-results.json")]
    out: PathBuf,
    /// The server binary (default: `cargo build --release` of this workspace's `lifeline`).
    #[arg(long)]
    server: Option<PathBuf>,
}

/// How many of each: the full run, or `--quick`'s smoke test.
struct Sizes {
    people: usize,
    sign_ins: usize,
    intake: usize,
    emails: usize,
    actions: usize,
    searches: usize,
    directory: [usize; 2],
    argon2_seconds: f64,
}

impl Sizes {
    fn of(quick: bool) -> Self {
        if quick {
            Sizes {
                people: 6,
                sign_ins: 12,
                intake: 40,
                emails: 5,
                actions: 20,
                searches: 40,
                directory: [1_000, 2_000],
                argon2_seconds: 0.5,
            }
        } else {
            // Each account takes each TOTP step once, and the bench uses the current and the next, so in the
            // long run a person signs in once per 30 s step: 2,400 people feed 80 sign-ins/s, above a 2-core
            // machine's argon2 rate (~50/s).
            Sizes {
                people: 2_400,
                sign_ins: 10_000,
                intake: 4_000,
                emails: 200,
                actions: 1_000,
                searches: 2_000,
                directory: [100_000, 1_000_000],
                argon2_seconds: 5.0,
            }
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let bin = env::server_binary(args.server.as_deref())?;
    let dir = tempfile::tempdir()?;
    let postgres = args.database.as_deref().filter(|u| u.starts_with("postgres"));
    let db_url = match (&args.database, postgres) {
        (_, Some(url)) => fresh_postgres(url).await?,
        (None, None) => format!("sqlite://{}", dir.path().join("bench.db").display()),
        (Some(url), None) => bail!("--database takes a postgres:// URL (the default is a fresh SQLite file): {url}"),
    };
    let quick = args.quick;
    if !quick && cfg!(debug_assertions) {
        bail!("figures come from a release build: cargo run --release -p lifeline-bench (or --quick for a smoke test)");
    }
    let sizes = Sizes::of(quick);
    let concurrency = 4 * cores();
    let sink = smtp::Sink::start().await?;
    let extra = vec![
        // One client address sends everything: the per-address throttles would measure themselves.
        ("LIFELINE_LOCKOUT__PER_CLIENT__MAX".into(), "100000000".into()),
        ("LIFELINE_ASSISTANCE__PER_IP__MAX".into(), "100000000".into()),
        ("LIFELINE_ASSISTANCE__PER_EMAIL__MAX".into(), "100000000".into()),
        ("LIFELINE_ASSISTANCE__GLOBAL__MAX".into(), "100000000".into()),
        ("LIFELINE_ASSISTANCE__RESPONSE_FLOOR_MS".into(), "0".into()),
        // Every request gets its own admin email (no digest), so that each one's latency can be measured.
        ("LIFELINE_ASSISTANCE__DIGEST__INDIVIDUAL_PER_INTERVAL".into(), "100000000".into()),
        ("LIFELINE_SMTP_URL".into(), sink.url()),
    ];
    let env = Arc::new(Env { bin, dir: Arc::new(dir), db_url: db_url.clone(), extra });
    let cpu_before = own_cpu_seconds();
    let wall = Instant::now();
    let mut rows = Vec::new();

    // Start-up and idle memory (the database is migrated by the first start; the figure is the second's).
    let first = env.serve().await?;
    first.stop().await;
    let server = env.serve().await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = rss_kib(server.pid());
    let startup_ms = server.startup.as_secs_f64() * 1000.0;
    let mut row = Row::new("start: process start to /readyz 200", "≤ 30 ms");
    row.value = Some(format!("{startup_ms:.1} ms"));
    row.met = Some(startup_ms <= 30.0);
    rows.push(row);
    let mut row = Row::new("idle resident memory after start", "≤ 8 MiB");
    row.value = Some(format!("{:.1} MiB", idle as f64 / 1024.0));
    row.met = Some(idle <= 8 * 1024);
    rows.push(row);

    // The admin who gets the request emails and acts over the API.
    let admin = "admin@bench.example";
    let token = seed_admin(&env, admin).await?;

    // Sign-in: password + TOTP through the pages, against argon2's own rate on this machine.
    eprintln!("seeding {} people with the CLI…", sizes.people);
    let people = signin::seed_people(&env, 0, sizes.people).await?;
    let limit = signin::argon2_verify_rate(sizes.argon2_seconds);
    eprintln!("{} sign-ins from {concurrency} clients…", sizes.sign_ins);
    let (stats, samples) = signin::sign_ins(&[&server], people, sizes.sign_ins, concurrency).await;
    eprintln!("{} sign-ins: {:.1}/s", stats.latencies.len(), stats.throughput());
    let sign_in_one = stats.throughput();
    let mut row = Row::new("password + TOTP sign-in through the pages", "≥ 0.90 of the limit").with_latencies(&stats);
    row.limit = Some(format!("{limit:.1} argon2/s"));
    row.ratio = Some(stats.throughput() / limit);
    row.met = row.ratio.map(|r| r >= 0.90);
    rows.push(row);
    let after = rss_kib(server.pid());
    let first_sample = samples.first().map(|s| s.1).unwrap_or(after);
    let mut row = Row::new(&format!("resident memory after {} sign-ins", stats.latencies.len()), "≤ 64 MiB, flat");
    row.value = Some(format!("{:.1} MiB", after as f64 / 1024.0));
    row.limit = Some(format!("{:.1} MiB at 10%", first_sample as f64 / 1024.0));
    row.ratio = Some(after as f64 / first_sample.max(1) as f64);
    row.met = Some(after <= 64 * 1024 && after as f64 <= first_sample as f64 * 1.10);
    row.samples = samples;
    rows.push(row);

    // Request → admin email, one request at a time.
    eprintln!("{} requests, each to an admin email over SMTP…", sizes.emails);
    let stats = smtp::request_to_email(&server.base, &sink, admin, sizes.emails, Duration::from_millis(100)).await?;
    let mut row = Row::new("request → admin email accepted by the SMTP sink", "p99 ≤ 1 s").with_latencies(&stats);
    row.met = Some(stats.percentile(0.99) <= 1000.0 && stats.errors == 0);
    rows.push(row);

    // An admin action over the API.
    let ids = admin::people_ids(&server.base, &token, "bench ", admin).await?;
    eprintln!("{} recovery codes over the API…", sizes.actions);
    let stats = admin::recovery_codes(&server.base, &token, &ids, sizes.actions).await?;
    let mut row =
        Row::new("admin action over the API (recovery code, email queued)", "mean ≤ 2 ms").with_latencies(&stats);
    row.met = Some(stats.mean() <= 2.0);
    rows.push(row);

    // Intake: assistance requests against durable single-row transactions on the same backend.
    eprintln!("{} assistance requests from {concurrency} clients…", sizes.intake);
    let stats = intake::intake(&[&server], sizes.intake, concurrency).await;
    let intake_one = stats.throughput();
    let limit_url = match postgres {
        None => format!("sqlite://{}", env.dir.path().join("limit.db").display()),
        Some(url) => fresh_postgres(url).await?,
    };
    let limit_url_pg = postgres.is_some().then(|| limit_url.clone());
    let limit = intake::durable_insert_rate(&limit_url, sizes.intake, concurrency).await?;
    let mut row = Row::new("assistance request intake", "≥ 0.50 of the limit; p99 ≤ 20 ms").with_latencies(&stats);
    row.limit = Some(format!("{limit:.1} commits/s"));
    row.ratio = Some(stats.throughput() / limit);
    row.met = Some(stats.throughput() / limit >= 0.50 && stats.percentile(0.99) <= 20.0);
    rows.push(row);

    // Two instances on one PostgreSQL database, against the one instance above.
    if postgres.is_some() {
        let second = env.serve().await?;
        let people = signin::seed_people(&env, sizes.people, sizes.people).await?;
        eprintln!("{} sign-ins over two instances…", sizes.sign_ins);
        let total = sizes.sign_ins.min(3_000);
        let (stats, _) = signin::sign_ins(&[&server, &second], people, total, concurrency).await;
        let mut row = Row::new("sign-in, two instances", "≥ 1.8× one instance on 4+ cores").with_latencies(&stats);
        row.limit = Some(format!("{sign_in_one:.1}/s one instance"));
        row.ratio = Some(stats.throughput() / sign_in_one);
        rows.push(row);
        let stats = intake::intake(&[&server, &second], sizes.intake, concurrency).await;
        let mut row =
            Row::new("assistance intake, two instances", "≥ 1.8× one instance on 4+ cores").with_latencies(&stats);
        row.limit = Some(format!("{intake_one:.1}/s one instance"));
        row.ratio = Some(stats.throughput() / intake_one);
        rows.push(row);
        second.stop().await;
    }
    let server_cpu = env::cpu_seconds(server.pid());
    server.stop().await;

    // The directory at scale: import, then search, at each size, on a database and server of their own, so that
    // the figures measure the directory, not the intake's requests still being processed in the background.
    let directory_url = match postgres {
        None => format!("sqlite://{}", env.dir.path().join("directory.db").display()),
        Some(url) => fresh_postgres(url).await?,
    };
    let directory_env = env.on(directory_url.clone());
    let directory_server = directory_env.serve().await?;
    let token = seed_admin(&directory_env, admin).await?;
    let mut imported = 0;
    for size in sizes.directory {
        let csv = env.dir.path().join(format!("people-{size}.csv"));
        directory::write_csv(&csv, imported, size)?;
        eprintln!("person import of {} rows…", size - imported);
        let (rate, took) = directory::import(&directory_env, &csv, size - imported).await?;
        let mut row = Row::new(&format!("person import, {} rows (to {size})", size - imported), "≥ 50k rows/s");
        row.count = size - imported;
        row.throughput = Some(rate);
        row.value = Some(format!("{:.1} s", took.as_secs_f64()));
        row.met = Some(rate >= 50_000.0);
        rows.push(row);
        imported = size;
        eprintln!("{} searches among {size} people…", sizes.searches);
        // As many admins searching at once as there are cores: the figure is a search's time, not a queue's.
        let stats = directory::search(&directory_server.base, &token, sizes.searches, cores()).await;
        let mut row =
            Row::new(&format!("people search by part of a name, {size} people"), "p99 ≤ 10 ms").with_latencies(&stats);
        row.met = Some(stats.percentile(0.99) <= 10.0);
        rows.push(row);
    }
    directory_server.stop().await;

    for url in [Some(db_url.as_str()), limit_url_pg.as_deref(), Some(directory_url.as_str())].into_iter().flatten() {
        if let Some(admin_url) = postgres {
            drop_postgres(admin_url, url).await;
        }
    }

    let client_cpu = own_cpu_seconds() - cpu_before;
    let wall_s = wall.elapsed().as_secs_f64();
    print_table(&rows);
    println!(
        "\nbench client CPU: {client_cpu:.1} s over {wall_s:.1} s wall ({:.0}% of one core, the argon2 limit's own threads included); server CPU {server_cpu:.1} s; {} cores; {}; {} emails reached the sink",
        client_cpu / wall_s * 100.0,
        cores(),
        if postgres.is_some() { "PostgreSQL" } else { "SQLite" },
        sink.count(),
    );
    let errors: usize = rows.iter().map(|r| r.errors).sum();
    let out = json!({
        "quick": quick, "cores": cores(), "client_cpu_seconds": client_cpu, "server_cpu_seconds": server_cpu,
        "wall_seconds": wall_s, "backend": if postgres.is_some() { "postgres" } else { "sqlite" },
        "rows": rows.iter().map(Row::json).collect::<Vec<_>>(),
    });
    std::fs::write(&args.out, serde_json::to_string_pretty(&out)?)?;
    println!("wrote {}", args.out.display());
    if errors > 0 {
        bail!("{errors} requests failed");
    }
    Ok(())
}

/// The admin who gets the request emails and acts over the API; the answer is an expert API token of theirs.
async fn seed_admin(env: &Env, admin: &str) -> anyhow::Result<String> {
    env.cli(
        &["person", "add", "--email", admin, "--name", "Bench Admin", "--username", "benchadmin", "--totp"],
        "bench-admin-pass-orchard-lantern\n",
    )
    .await?;
    env.cli(&["person", "grant", admin, "--dpa", "3", "--expert"], "").await?;
    let out = env
        .cli(&["token", "create", "--person", admin, "--name", "bench", "--expires", "1h", "--expert", "--json"], "")
        .await?;
    let token: Value = serde_json::from_str(&out)?;
    Ok(token["token"].as_str().context("no token in token create --json")?.to_owned())
}

/// Drop a database this run made (best effort: a leftover is only disk space).
async fn drop_postgres(admin_url: &str, url: &str) {
    let Some(name) = url.rsplit('/').next().filter(|n| n.starts_with("lifeline_bench_")) else { return };
    if let Ok(mut conn) = <sqlx::AnyConnection as sqlx::Connection>::connect(admin_url).await {
        // The name is this program's own (checked above): letters, digits and underscores.
        let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
        if let Err(e) = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await {
            eprintln!("could not drop {name}: {e}");
        }
    }
}

/// A fresh database on the PostgreSQL server `url` names, for this run alone.
async fn fresh_postgres(url: &str) -> anyhow::Result<String> {
    sqlx::any::install_default_drivers();
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let name = format!("lifeline_bench_{}_{}_{}", std::process::id(), unix_now(), NEXT.fetch_add(1, Ordering::SeqCst));
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(url).await?;
    // The name is this program's own: letters, digits and underscores.
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut conn).await?;
    let base = url.rsplit_once('/').map(|(b, _)| b).unwrap_or(url);
    Ok(format!("{base}/{name}"))
}
