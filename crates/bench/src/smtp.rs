//! A loopback SMTP sink (a real SMTP conversation, nothing kept but what arrived and when), and the figure it
//! gives: from an assistance request's answer to the admin email about it being accepted.

use crate::report::Stats;
use crate::signin::csrf_of;
use anyhow::{Context, bail};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// One accepted message: when its final `.` was answered 250, to whom, and its text.
pub struct Received {
    pub at: Instant,
    pub to: Vec<String>,
    pub data: String,
}

#[derive(Clone, Default)]
pub struct Sink {
    pub port: u16,
    pub received: Arc<Mutex<Vec<Received>>>,
}

impl Sink {
    pub async fn start() -> anyhow::Result<Sink> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let sink = Sink { port: listener.local_addr()?.port(), received: Arc::default() };
        let received = sink.received.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let received = received.clone();
                tokio::spawn(async move {
                    let _ = conversation(stream, &received).await;
                });
            }
        });
        Ok(sink)
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    pub fn count(&self) -> usize {
        self.received.lock().map(|r| r.len()).unwrap_or(0)
    }
}

async fn conversation(stream: tokio::net::TcpStream, received: &Mutex<Vec<Received>>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 bench-sink ESMTP\r\n").await?;
    let mut to = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" => write.write_all(b"250-bench-sink\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n").await?,
            "HELO" | "NOOP" => write.write_all(b"250 ok\r\n").await?,
            "MAIL" | "RSET" => {
                to.clear();
                write.write_all(b"250 ok\r\n").await?
            }
            "RCPT" => {
                let address = line.split(['<', '>']).nth(1).unwrap_or_default().to_owned();
                to.push(address);
                write.write_all(b"250 ok\r\n").await?
            }
            "DATA" => {
                write.write_all(b"354 go on\r\n").await?;
                let mut data = String::new();
                loop {
                    line.clear();
                    if lines.read_line(&mut line).await? == 0 {
                        return Ok(());
                    }
                    if line == ".\r\n" || line == ".\n" {
                        break;
                    }
                    data.push_str(&line);
                }
                let at = Instant::now();
                if let Ok(mut r) = received.lock() {
                    r.push(Received { at, to: std::mem::take(&mut to), data });
                }
                write.write_all(b"250 accepted\r\n").await?
            }
            "QUIT" => {
                write.write_all(b"221 bye\r\n").await?;
                return Ok(());
            }
            _ => write.write_all(b"502 not here\r\n").await?,
        }
    }
}

/// `total` assistance requests, one every `gap`, each from an address of its own; the figure is from each
/// answer to the sink accepting an email to `admin` that names the address.
pub async fn request_to_email(
    base: &str,
    sink: &Sink,
    admin: &str,
    total: usize,
    gap: Duration,
) -> anyhow::Result<Stats> {
    let mut answered: HashMap<String, Instant> = HashMap::new();
    let start = Instant::now();
    let mut errors = 0;
    for i in 0..total {
        let email = format!("latency{i}@mail.example");
        match ask(base, &email).await {
            Ok(at) => {
                answered.insert(email, at);
            }
            Err(e) => {
                eprintln!("email latency: {e:#}");
                errors += 1;
            }
        }
        tokio::time::sleep(gap).await;
    }
    // Wait (a while) for every email; one that never comes is an error.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut latencies = HashMap::new();
    while Instant::now() < deadline {
        if let Ok(received) = sink.received.lock() {
            for message in received.iter().filter(|m| m.to.iter().any(|t| t == admin)) {
                // Long lines are folded in quoted-printable; the address itself has no character it escapes.
                let text = message.data.replace("=\r\n", "");
                for (email, at) in &answered {
                    if !latencies.contains_key(email) && text.contains(email.as_str()) {
                        latencies.insert(email.clone(), message.at.saturating_duration_since(*at));
                    }
                }
            }
        }
        if latencies.len() == answered.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let missing = answered.len() - latencies.len();
    if missing > 0 {
        eprintln!("email latency: {missing} admin emails never reached the sink");
    }
    Ok(Stats { latencies: latencies.into_values().collect(), errors: errors + missing, elapsed: start.elapsed() })
}

async fn ask(base: &str, email: &str) -> anyhow::Result<Instant> {
    let client = reqwest::Client::builder().cookie_store(true).build()?;
    let form = client.get(format!("{base}/assistance")).send().await?.text().await?;
    let csrf = csrf_of(&form).context("no csrf on /assistance")?;
    let page = client
        .post(format!("{base}/assistance"))
        .form(&[("email", email), ("type", "other"), ("description", ""), ("csrf", csrf.as_str())])
        .send()
        .await?
        .text()
        .await?;
    if !page.contains("Request received") {
        bail!("the request was not received");
    }
    Ok(Instant::now())
}
