//! Figures and how they are shown: a table on the terminal, every number in the JSON file.

use serde_json::{Value, json};
use std::time::Duration;

/// One scenario's figures.
#[derive(Debug, Clone)]
pub struct Row {
    pub scenario: String,
    pub count: usize,
    pub errors: usize,
    pub throughput: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub mean_ms: Option<f64>,
    pub value: Option<String>,
    pub limit: Option<String>,
    pub ratio: Option<f64>,
    pub goal: String,
    pub met: Option<bool>,
    /// Resident memory (KiB) after so many sign-ins, for the memory row.
    pub samples: Vec<(usize, u64)>,
}

impl Row {
    pub fn new(scenario: &str, goal: &str) -> Self {
        Row {
            scenario: scenario.into(),
            count: 0,
            errors: 0,
            throughput: None,
            p50_ms: None,
            p99_ms: None,
            mean_ms: None,
            value: None,
            limit: None,
            ratio: None,
            goal: goal.into(),
            met: None,
            samples: Vec::new(),
        }
    }

    pub fn with_latencies(mut self, stats: &Stats) -> Self {
        self.count = stats.latencies.len();
        self.errors = stats.errors;
        self.throughput = Some(stats.throughput());
        self.p50_ms = Some(stats.percentile(0.50));
        self.p99_ms = Some(stats.percentile(0.99));
        self.mean_ms = Some(stats.mean());
        self
    }

    pub fn json(&self) -> Value {
        json!({
            "scenario": self.scenario, "count": self.count, "errors": self.errors,
            "throughput_per_s": self.throughput, "p50_ms": self.p50_ms, "p99_ms": self.p99_ms,
            "mean_ms": self.mean_ms, "value": self.value, "limit": self.limit, "ratio": self.ratio,
            "goal": self.goal, "met": self.met, "rss_kib_samples": self.samples,
        })
    }
}

#[derive(Debug, Default)]
pub struct Stats {
    pub latencies: Vec<Duration>,
    pub errors: usize,
    pub elapsed: Duration,
}

impl Stats {
    /// Count one request: its time, or its error (the first three are printed, prefixed with `what`).
    pub fn record(&mut self, what: &str, outcome: anyhow::Result<Duration>) {
        match outcome {
            Ok(took) => self.latencies.push(took),
            Err(e) => {
                if self.errors < 3 {
                    eprintln!("{what}: {e:#}");
                }
                self.errors += 1;
            }
        }
    }

    /// Wait for the clients, and take what they recorded, with the time since `start`.
    pub async fn gather(
        tasks: Vec<tokio::task::JoinHandle<()>>,
        results: &tokio::sync::Mutex<Stats>,
        start: std::time::Instant,
    ) -> Stats {
        for t in tasks {
            let _ = t.await;
        }
        let mut stats = std::mem::take(&mut *results.lock().await);
        stats.elapsed = start.elapsed();
        stats
    }

    pub fn sorted_ms(&self) -> Vec<f64> {
        let mut v: Vec<f64> = self.latencies.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
        v.sort_by(f64::total_cmp);
        v
    }
    pub fn percentile(&self, p: f64) -> f64 {
        let v = self.sorted_ms();
        if v.is_empty() {
            return f64::NAN;
        }
        let i = ((v.len() as f64 - 1.0) * p).round() as usize;
        v[i.min(v.len() - 1)]
    }
    pub fn mean(&self) -> f64 {
        let v = self.sorted_ms();
        if v.is_empty() { f64::NAN } else { v.iter().sum::<f64>() / v.len() as f64 }
    }
    pub fn throughput(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

pub fn fmt(v: Option<f64>, digits: usize) -> String {
    v.filter(|x| x.is_finite()).map(|x| format!("{x:.digits$}")).unwrap_or_else(|| "–".into())
}

pub fn print_table(rows: &[Row]) {
    println!();
    println!(
        "| {:<58} | {:>6} | {:>4} | {:>9} | {:>8} | {:>8} | {:>16} | {:>18} | {:>6} | {:<30} | {:<4} |",
        "scenario", "count", "err", "per s", "p50 ms", "p99 ms", "value", "limit", "ratio", "goal", "met"
    );
    println!("|{}|", "-".repeat(200));
    for r in rows {
        println!(
            "| {:<58} | {:>6} | {:>4} | {:>9} | {:>8} | {:>8} | {:>16} | {:>18} | {:>6} | {:<30} | {:<4} |",
            r.scenario,
            r.count,
            r.errors,
            fmt(r.throughput, 1),
            fmt(r.p50_ms, 1),
            fmt(r.p99_ms, 1),
            r.value.clone().unwrap_or_else(|| "–".into()),
            r.limit.clone().unwrap_or_else(|| "–".into()),
            fmt(r.ratio, 2),
            r.goal,
            match r.met {
                Some(true) => "yes",
                Some(false) => "NO",
                None => "–",
            }
        );
    }
}
