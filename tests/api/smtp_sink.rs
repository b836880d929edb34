//! An SMTP server for the tests, on a loopback port: it speaks enough SMTP (EHLO, MAIL, RCPT, DATA,
//! RSET, NOOP, QUIT) for a real client to deliver to it, and keeps every message it accepts.

use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

#[derive(Debug, Clone)]
pub struct Received {
    pub rcpt: Vec<String>,
    pub data: Vec<u8>,
}

impl Received {
    pub fn parsed(&self) -> mail_parser::Message<'_> {
        mail_parser::MessageParser::default().parse(&self.data).unwrap_or_else(|| panic!("unparseable message"))
    }

    pub fn message_id(&self) -> String {
        self.parsed().message_id().unwrap_or_default().to_owned()
    }

    pub fn subject(&self) -> String {
        self.parsed().subject().unwrap_or_default().to_owned()
    }

    pub fn text(&self) -> String {
        self.parsed().body_text(0).map(|t| t.into_owned()).unwrap_or_default()
    }

    pub fn html(&self) -> String {
        self.parsed().body_html(0).map(|t| t.into_owned()).unwrap_or_default()
    }
}

pub struct SmtpSink {
    pub port: u16,
    pub received: Arc<Mutex<Vec<Received>>>,
    /// SMTP sessions open now: a message on its way is in one of them.
    open: Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A loopback port that nothing listens on (yet).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("{e}"))
}

impl SmtpSink {
    pub async fn start() -> Self {
        Self::start_on(0).await
    }

    pub async fn start_on(port: u16) -> Self {
        Self::start_with(port, std::time::Duration::ZERO).await
    }

    /// A sink that takes `delay` to accept each message, like a busy server.
    pub async fn start_slow(delay: std::time::Duration) -> Self {
        Self::start_with(0, delay).await
    }

    async fn start_with(port: u16, delay: std::time::Duration) -> Self {
        let listener =
            TcpListener::bind(("127.0.0.1", port)).await.unwrap_or_else(|e| panic!("SMTP sink on {port}: {e}"));
        let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
        let received = Arc::new(Mutex::new(Vec::new()));
        let store = received.clone();
        let open = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let sessions = open.clone();
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let store = store.clone();
                // Counted from the accept, so a session is open before its first byte is read.
                sessions.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let sessions = sessions.clone();
                tokio::spawn(async move {
                    let _ = session(socket, store, delay).await;
                    sessions.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                });
            }
        });
        Self { port, received, open, task }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    pub fn messages(&self) -> Vec<Received> {
        self.received.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// Wait (up to 30 s) until no SMTP session is open: nothing is on its way in.
    pub async fn wait_idle(&self) {
        for _ in 0..300 {
            if self.open.load(std::sync::atomic::Ordering::SeqCst) == 0 {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("an SMTP session stayed open for 30 s");
    }

    /// Wait (up to 30 s) until at least `n` messages have arrived.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        self.wait_for_within(n, 300).await
    }

    /// Wait up to `tenths` tenths of a second for at least `n` messages.
    pub async fn wait_for_within(&self, n: usize, tenths: usize) -> Vec<Received> {
        for _ in 0..tenths {
            let messages = self.messages();
            if messages.len() >= n {
                return messages;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("expected {n} messages, got {}", self.messages().len());
    }
}

async fn session(
    socket: tokio::net::TcpStream,
    store: Arc<Mutex<Vec<Received>>>,
    delay: std::time::Duration,
) -> std::io::Result<()> {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 sink.test ESMTP\r\n").await?;
    let mut rcpt = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_ascii_uppercase();
        if command.starts_with("EHLO") || command.starts_with("HELO") {
            write.write_all(b"250-sink.test\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n").await?;
        } else if command.starts_with("MAIL FROM") {
            rcpt.clear();
            write.write_all(b"250 OK\r\n").await?;
        } else if command.starts_with("RCPT TO") {
            rcpt.push(line.trim_end()[8..].trim().trim_matches(|c| c == '<' || c == '>').to_owned());
            write.write_all(b"250 OK\r\n").await?;
        } else if command == "DATA" {
            write.write_all(b"354 go ahead\r\n").await?;
            let mut data = Vec::new();
            let mut buf = String::new();
            loop {
                buf.clear();
                if lines.read_line(&mut buf).await? == 0 {
                    return Ok(());
                }
                if buf == ".\r\n" || buf == ".\n" {
                    break;
                }
                let unstuffed = buf.strip_prefix('.').filter(|_| buf.starts_with("..")).unwrap_or(&buf);
                data.extend_from_slice(unstuffed.as_bytes());
            }
            tokio::time::sleep(delay).await;
            if let Ok(mut messages) = store.lock() {
                messages.push(Received { rcpt: std::mem::take(&mut rcpt), data });
            }
            write.write_all(b"250 queued\r\n").await?;
        } else if command == "QUIT" {
            write.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            write.write_all(b"250 OK\r\n").await?;
        }
    }
}
