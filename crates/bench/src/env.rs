//! The server under test and the machine it runs on: a fresh data folder, the CLI, `serve`, and what
//! `/proc` says of a process.

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};

pub fn cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// This process's CPU time (user + system), to show the client is not the bottleneck.
pub fn own_cpu_seconds() -> f64 {
    cpu_of("/proc/self/stat")
}

/// A process's CPU time so far (user + system).
pub fn cpu_seconds(pid: u32) -> f64 {
    cpu_of(&format!("/proc/{pid}/stat"))
}

fn cpu_of(path: &str) -> f64 {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or_default();
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 of /proc/<pid>/stat (utime, stime), counted after the command's closing parenthesis.
    (ticks(11) + ticks(12)) / 100.0
}

pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The server: built by Cargo (in this program's own profile) unless `--server` names one.
pub fn server_binary(server: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = server {
        // The server runs in its own folder: a relative path must not change meaning.
        return std::fs::canonicalize(path).with_context(|| format!("no server at {}", path.display()));
    }
    // The server is built as this program was: release for figures, debug for `.ci/run`'s smoke test
    // (which has the debug build from the tests already).
    let release = !cfg!(debug_assertions);
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = std::process::Command::new(cargo);
    build.args(["build", "--locked", "-p", "lifeline", "--bin", "lifeline"]);
    if release {
        build.arg("--release");
    }
    let status = build.status().context("cannot run cargo build")?;
    if !status.success() {
        bail!("cargo build -p lifeline failed");
    }
    let exe = std::env::current_exe()?;
    let dir = exe.parent().context("no folder for the bench binary")?;
    Ok(dir.join("lifeline"))
}

pub struct Server {
    pub child: tokio::process::Child,
    pub base: String,
    pub startup: Duration,
}

impl Server {
    pub fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

pub struct Env {
    pub bin: PathBuf,
    pub dir: std::sync::Arc<tempfile::TempDir>,
    pub db_url: String,
    pub extra: Vec<(String, String)>,
}

impl Env {
    /// The same server and folder on another database (a scenario that needs an idle server of its own).
    pub fn on(&self, db_url: String) -> Env {
        Env { bin: self.bin.clone(), dir: self.dir.clone(), db_url, extra: self.extra.clone() }
    }

    pub fn command(&self, program: &Path) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(program);
        for (key, _) in std::env::vars() {
            if key.starts_with("LIFELINE_") {
                c.env_remove(key);
            }
        }
        c.current_dir(self.dir.path())
            .env("LIFELINE_DATABASE_URL", &self.db_url)
            .env("LIFELINE_KEY_FILE", self.dir.path().join("lifeline.key"))
            .env("RUST_LOG", "warn");
        for (k, v) in &self.extra {
            c.env(k, v);
        }
        c
    }

    /// The CLI, as an operator runs it; `stdin` is its input.
    pub async fn cli(&self, args: &[&str], stdin: &str) -> anyhow::Result<String> {
        use tokio::io::AsyncWriteExt;
        let mut child = self
            .command(&self.bin)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot run lifeline")?;
        if let Some(mut input) = child.stdin.take() {
            input.write_all(stdin.as_bytes()).await?;
        }
        let out = child.wait_with_output().await?;
        if !out.status.success() {
            bail!("lifeline {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `lifeline serve` on a free loopback port; the startup figure is from spawning to the first `/readyz` 200.
    pub async fn serve(&self) -> anyhow::Result<Server> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        let mut child = self
            .command(&self.bin)
            .arg("serve")
            .env("LIFELINE_LISTEN", format!("127.0.0.1:{port}"))
            .env("LIFELINE_PUBLIC_URL", &base)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("cannot start lifeline serve")?;
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(async move {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    eprintln!("[server] {line}");
                }
            });
        }
        let client = reqwest::Client::new();
        let ready = format!("{base}/readyz");
        loop {
            if let Ok(r) = client.get(&ready).send().await
                && r.status().is_success()
            {
                break;
            }
            if started.elapsed() > Duration::from_secs(60) {
                bail!("lifeline serve was not ready within 60 s");
            }
            if let Ok(Some(status)) = child.try_wait() {
                bail!("lifeline serve exited: {status}");
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        Ok(Server { child, base, startup: started.elapsed() })
    }
}

pub fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}
