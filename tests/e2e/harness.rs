//! What every browser scenario stands on: a fresh `lifeline serve --demo` on a random loopback port (its
//! own folder, SQLite file and mail folder), Debian's Chromium driven through chromedriver, and the checks
//! run on every page a scenario passes: a screenshot, axe-core, labelled inputs, and the same page again at
//! phone width (390×844).
//!
//! Nothing here skips: a missing Chromium, chromedriver or axe-core fails the test with how to install it.

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncBufReadExt, BufReader};

const INSTALL: &str = "The browser suite (tests/e2e) needs Debian's Chromium and ChromeDriver, and axe-core from npm:\n    \
     apt-get install -y chromium chromium-driver\n    npm ci --prefix tests/e2e/tools\n\
     (.ci/run does both; E2E_CHROMIUM and E2E_CHROMEDRIVER name other binaries.)";

/// The desktop window every page is first seen in, and the phone it is seen in again.
const DESKTOP: (u32, u32) = (1280, 1000);
const PHONE: (u32, u32) = (390, 844);

/// Demo people's TOTP secrets (README: "Trying the demo"); the codes are computed with `oathtool`.
pub const ADA: (&str, &str, &str) = ("ada", "amber-falcon-harbour-42", "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP");
pub const HARRY: (&str, &str, &str) = ("harry", "quiet-meadow-lantern-17", "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
pub const OLGA: (&str, &str, &str) = ("olga", "tangerine-walrus-obelisk-73", "5RLN6QGUV5SXFINNI32LZNPWKTTMXIZW");
pub const MONA: (&str, &str, &str) = ("mona", "copper-river-sketch-88", "MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U");
pub const SAM: (&str, &str) = ("sam", "violet-tundra-pebble-35");

struct Tools {
    chromium: String,
    chromedriver: String,
    axe: String,
}

fn tools() -> &'static Tools {
    static TOOLS: std::sync::OnceLock<Tools> = std::sync::OnceLock::new();
    TOOLS.get_or_init(|| {
        let chromium = std::env::var("E2E_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let chromedriver = std::env::var("E2E_CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
        for binary in [&chromium, &chromedriver] {
            assert!(Path::new(binary).exists(), "{binary} is missing.\n{INSTALL}");
        }
        let oathtool = std::process::Command::new("oathtool").arg("--version").output().is_ok();
        assert!(oathtool, "oathtool is missing: apt-get install -y oathtool");
        let axe_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/tools/node_modules/axe-core/axe.min.js");
        let axe = std::fs::read_to_string(&axe_path)
            .unwrap_or_else(|e| panic!("{} cannot be read ({e}).\n{INSTALL}", axe_path.display()));
        Tools { chromium, chromedriver, axe }
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free loopback port: {e}"))
}

/// `target/e2e-screenshots` (CARGO_TARGET_DIR is honoured: Cargo's `target/tmp` for tests tells where it is).
fn screenshot_root() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or_else(|| Path::new("target")).join("e2e-screenshots")
}

/// One email as the mail folder holds it.
#[derive(Debug, Clone)]
pub struct Email {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// A fresh demo server: `serve --demo` in a folder of its own.
pub struct Demo {
    // Dropped first (killed), then its folder goes.
    _child: tokio::process::Child,
    pub dir: tempfile::TempDir,
    pub base: String,
}

impl Demo {
    /// Start the server; a port taken between choosing it and binding it is tried again with another.
    async fn start() -> Demo {
        for _ in 0..3 {
            if let Some(demo) = Self::try_start().await {
                return demo;
            }
        }
        panic!("lifeline serve --demo did not start (three tries): see its log above");
    }

    async fn try_start() -> Option<Demo> {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let port = free_port();
        // `localhost`, not 127.0.0.1: WebAuthn (passkeys) needs a domain name; Chromium takes localhost as a secure
        // context over plain http, and the server listens on 127.0.0.1, which localhost reaches.
        let base = format!("http://localhost:{port}");
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_lifeline"));
        command.args(["serve", "--demo"]).current_dir(dir.path());
        // The server reads its settings from LIFELINE_* and refuses unknown ones: start it from a clean slate.
        for (key, _) in std::env::vars() {
            if key.starts_with("LIFELINE_") {
                command.env_remove(key);
            }
        }
        command
            .env("LIFELINE_LISTEN", format!("127.0.0.1:{port}"))
            .env("LIFELINE_PUBLIC_URL", &base)
            // The demo's lockout (five failures) stays; its growing delays would only make the suite wait.
            .env("LIFELINE_LOCKOUT__DELAY_BASE_SECONDS", "0")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().unwrap_or_else(|e| panic!("cannot start lifeline serve --demo: {e}"));
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(async move {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    eprintln!("[lifeline] {line}");
                }
            });
        }
        let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(Duration::from_secs(120), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains("listening on") {
                    return true;
                }
            }
            false
        })
        .await
        .unwrap_or(false);
        if !ready {
            return None;
        }
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Some(Demo { dir, base, _child: child })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Every email delivered to `to` so far, oldest first.
    pub fn emails(&self, to: &str) -> Vec<Email> {
        self.emails_where(Some(to))
    }

    /// Every email delivered so far (to anyone, or to `to`), oldest first.
    pub fn emails_where(&self, to: Option<&str>) -> Vec<Email> {
        let folder = self.dir.path().join("mail");
        let mut found: Vec<(SystemTime, String, Email)> = Vec::new();
        for entry in std::fs::read_dir(&folder).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "eml") {
                continue;
            }
            let Ok(raw) = std::fs::read(&path) else { continue };
            let Some(message) = mail_parser::MessageParser::default().parse(&raw) else { continue };
            let addressed = message
                .to()
                .map(|list| {
                    list.iter().any(|a| a.address().is_some_and(|x| to.is_none_or(|t| x.eq_ignore_ascii_case(t))))
                })
                .unwrap_or(false);
            if !addressed {
                continue;
            }
            let modified = entry.metadata().and_then(|m| m.modified()).unwrap_or(UNIX_EPOCH);
            let email = Email {
                subject: message.subject().unwrap_or_default().to_owned(),
                text: message.body_text(0).map(|t| t.into_owned()).unwrap_or_default(),
                // A real HTML part only: `body_html` would turn a text-only email into HTML.
                html: message
                    .parts
                    .iter()
                    .find_map(|part| match &part.body {
                        mail_parser::PartType::Html(html) => Some(html.to_string()),
                        _ => None,
                    })
                    .unwrap_or_default(),
            };
            found.push((modified, path.display().to_string(), email));
        }
        found.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        found.into_iter().map(|(_, _, e)| e).collect()
    }

    /// The newest email to `to` whose subject contains `subject`, waiting up to 30 s for the outbox to send
    /// it, once at least `count` such emails have arrived.
    pub async fn email_n(&self, to: &str, subject: &str, count: usize) -> Email {
        self.email_where(to, subject, count, |e| e.subject.contains(subject)).await
    }

    /// The newest email to `to` whose text part contains `needle`.
    pub async fn email_containing(&self, to: &str, needle: &str) -> Email {
        self.email_where(to, needle, 1, |e| e.text.contains(needle)).await
    }

    async fn email_where(&self, to: &str, subject: &str, count: usize, wanted: impl Fn(&Email) -> bool) -> Email {
        for _ in 0..300 {
            let matching: Vec<Email> = self.emails(to).into_iter().filter(|e| wanted(e)).collect();
            if matching.len() >= count
                && let Some(last) = matching.last()
            {
                return last.clone();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let subjects: Vec<String> = self.emails(to).into_iter().map(|e| e.subject).collect();
        panic!("no email {count} to {to} about {subject:?}; {to} has: {subjects:#?}")
    }

    pub async fn email(&self, to: &str, subject: &str) -> Email {
        self.email_n(to, subject, 1).await
    }
}

/// The first link in `text` that starts with `prefix` (a URL of the demo server).
pub fn link_in(text: &str, prefix: &str) -> String {
    text.split_whitespace()
        .find(|w| w.starts_with(prefix))
        .map(|w| w.trim_end_matches(['.', ',', ')', '>']).to_owned())
        .unwrap_or_else(|| panic!("no link starting {prefix} in:\n{text}"))
}

/// What one scenario shares between its browsers: the server, the screenshot folder, the numbering of
/// pages, the moderate axe findings (listed at the end) and which TOTP steps have been spent.
pub struct Scenario {
    pub name: &'static str,
    pub demo: Demo,
    shots: PathBuf,
    counter: AtomicUsize,
    moderate: Mutex<Vec<String>>,
    spent: Mutex<HashMap<String, u64>>,
    /// The HTML parts already put through the checks.
    rendered: Mutex<std::collections::HashSet<String>>,
}

impl Scenario {
    pub async fn start(name: &'static str) -> Arc<Scenario> {
        let _ = tools();
        let shots = screenshot_root().join(name);
        let _ = std::fs::remove_dir_all(&shots);
        std::fs::create_dir_all(&shots).unwrap_or_else(|e| panic!("{}: {e}", shots.display()));
        let demo = Demo::start().await;
        Arc::new(Scenario {
            name,
            demo,
            shots,
            counter: AtomicUsize::new(0),
            moderate: Mutex::new(Vec::new()),
            spent: Mutex::new(HashMap::new()),
            rendered: Mutex::new(std::collections::HashSet::new()),
        })
    }

    /// A new browser (its own Chromium profile, so its own cookies) for `who`.
    pub async fn browser(self: &Arc<Self>, who: &str) -> Browser {
        Browser::open(self.clone(), who).await
    }

    /// A TOTP code for `secret` from `oathtool`, never from a 30-second step this scenario already used for
    /// that secret (the server takes each step once per account), waiting for the next step when needed.
    pub async fn totp(&self, secret: &str) -> String {
        loop {
            let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
            let step = now / 30;
            let used = self.spent.lock().map(|s| s.get(secret).copied()).unwrap_or(None);
            if used.is_some_and(|u| u >= step) {
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
            // Not within a second of the step's end, so the code is still current when the server checks it.
            if now % 30 == 29 {
                tokio::time::sleep(Duration::from_millis(1100)).await;
                continue;
            }
            let out = std::process::Command::new("oathtool")
                .args(["--totp", "-b", secret])
                .output()
                .unwrap_or_else(|e| panic!("oathtool: {e}"));
            assert!(out.status.success(), "oathtool failed: {}", String::from_utf8_lossy(&out.stderr));
            if let Ok(mut s) = self.spent.lock() {
                s.insert(secret.to_owned(), step);
            }
            return String::from_utf8_lossy(&out.stdout).trim().to_owned();
        }
    }

    fn next_shot(&self, who: &str, name: &str) -> PathBuf {
        let n = self.counter.fetch_add(1, Ordering::SeqCst) + 1;
        self.shots.join(format!("{n:02}-{who}-{name}"))
    }

    /// The end of a scenario: its browsers closed (Chromium with them), every email the scenario caused that
    /// it did not open itself rendered and checked in a browser of its own, and the moderate and minor axe
    /// findings listed (they do not fail the test; `axe.txt` beside the screenshots keeps them).
    pub async fn finish(self: &Arc<Self>, browsers: Vec<Browser>) {
        for b in browsers {
            b.close().await;
        }
        let emails: Vec<Email> = self.demo.emails_where(None);
        let unseen: Vec<Email> =
            emails.into_iter().filter(|e| self.rendered.lock().map(|r| !r.contains(&e.html)).unwrap_or(true)).collect();
        if !unseen.is_empty() {
            let mail = self.browser("mailbox").await;
            for email in &unseen {
                let name = slug(&email.subject);
                mail.email_page(email, &format!("email-{name}")).await;
            }
            mail.close().await;
        }
        let moderate = self.moderate.lock().map(|m| m.clone()).unwrap_or_default();
        if moderate.is_empty() {
            println!("[{}] axe-core: no moderate findings", self.name);
        } else {
            println!("[{}] axe-core moderate findings ({}):", self.name, moderate.len());
            for m in moderate {
                println!("  {m}");
            }
        }
        println!("[{}] screenshots in {}", self.name, self.shots.display());
    }

    fn note_finding(&self, line: String) {
        use std::io::Write;
        if let Ok(mut file) = std::fs::OpenOptions::new().create(true).append(true).open(self.shots.join("axe.txt")) {
            let _ = writeln!(file, "{line}");
        }
        if let Ok(mut m) = self.moderate.lock() {
            m.push(line);
        }
    }
}

/// A file-name-friendly form of a page's heading or an email's subject.
fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
        if out.len() >= 48 {
            break;
        }
    }
    out.trim_end_matches('-').to_owned()
}

pub struct Browser {
    pub c: Client,
    scenario: Arc<Scenario>,
    who: String,
    /// The refusal the next page is expected to be (an error page fails the checks otherwise).
    expect_error: Mutex<Option<u16>>,
    driver: tokio::process::Child,
    closed: bool,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    /// A test that failed never reached [`Browser::close`]: chromedriver and the Chromium it started share a
    /// process group, ended here so that no browser outlives its test.
    fn drop(&mut self) {
        if !self.closed
            && let Some(pid) = self.driver.id()
        {
            let _ = std::process::Command::new("kill").args(["-KILL", "--", &format!("-{pid}")]).status();
        }
    }
}

const AXE_RUN: &str = r#"
const done = arguments[arguments.length - 1];
axe.run(document, { resultTypes: ['violations'] })
  .then(r => done(r.violations.map(v => ({
      id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.slice(0, 5).map(n => n.target.join(' ') + ' → ' + n.html.slice(0, 200)) }))))
  .catch(e => done({ error: String(e) }));
"#;

/// Inputs no label names (hidden inputs aside).
const UNLABELLED: &str = r#"
return [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
  .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.getAttribute('aria-labelledby'))
  .map(e => e.outerHTML.slice(0, 200));
"#;

/// What a phone-width page must not do: scroll sideways, let a table push out of the screen unless it
/// scrolls inside its own box, or offer a button under 44 px high.
const PHONE_CHECKS: &str = r#"
const problems = [];
const width = window.innerWidth;
const de = document.documentElement;
// clientWidth, not innerWidth: innerWidth counts a vertical scrollbar, which content must not run under.
if (de.scrollWidth > de.clientWidth) problems.push(`the page scrolls sideways: scrollWidth ${de.scrollWidth} > clientWidth ${de.clientWidth}`);
if (location.protocol !== 'file:' && !document.querySelector('meta[name=viewport][content*="width=device-width"]')) problems.push('no viewport meta: a phone would lay the page out 980 px wide');
for (const t of document.querySelectorAll('table')) {
  let e = t, contained = false;
  while (e && e !== document.documentElement) {
    const s = getComputedStyle(e), r = e.getBoundingClientRect();
    if (r.right <= width + 0.5 && (['auto', 'scroll'].includes(s.overflowX) || e.scrollWidth <= e.clientWidth + 0.5 && e === t)) { contained = true; break; }
    e = e.parentElement;
  }
  if (!contained) problems.push('a table is wider than the screen and does not scroll in its own box: ' + t.outerHTML.slice(0, 120));
}
for (const b of document.querySelectorAll('button, input[type=submit], input[type=button], a.button')) {
  const r = b.getBoundingClientRect();
  if (r.width === 0 && r.height === 0) continue;
  if (r.height < 44) problems.push(`button "${b.textContent.trim().slice(0, 60)}" is ${r.height.toFixed(1)} px high`);
}
return { width, problems };
"#;

impl Browser {
    async fn open(scenario: Arc<Scenario>, who: &str) -> Browser {
        let tools = tools();
        let port = free_port();
        let driver = tokio::process::Command::new(&tools.chromedriver)
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}\n{INSTALL}", tools.chromedriver));
        let mut up = false;
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                up = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(up, "chromedriver did not listen on port {port}");
        let profile = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": tools.chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--disable-quic", "--disable-dev-shm-usage", "--lang=en-GB",
                    format!("--window-size={},{}", DESKTOP.0, DESKTOP.1),
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            },
        });
        let caps = caps.as_object().cloned().unwrap_or_default();
        let mut client = None;
        let mut last = String::new();
        // chromedriver may answer its port a moment before it takes sessions.
        for _ in 0..20 {
            match ClientBuilder::new(HttpConnector::new())
                .capabilities(caps.clone())
                .connect(&format!("http://127.0.0.1:{port}"))
                .await
            {
                Ok(c) => {
                    client = Some(c);
                    break;
                }
                Err(e) => {
                    last = e.to_string();
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }
        }
        let c = client.unwrap_or_else(|| panic!("Chromium did not start through chromedriver: {last}\n{INSTALL}"));
        let browser = Browser {
            c,
            scenario,
            who: who.to_owned(),
            expect_error: Mutex::new(None),
            driver,
            closed: false,
            _profile: profile,
        };
        browser.resize(DESKTOP).await;
        browser
    }

    /// End the WebDriver session (chromedriver quits Chromium), then chromedriver.
    pub async fn close(mut self) {
        let _ = self.c.clone().close().await;
        let _ = self.driver.kill().await;
        self.closed = true;
    }

    fn base(&self) -> &str {
        &self.scenario.demo.base
    }

    pub async fn goto(&self, path: &str) {
        let url = format!("{}{path}", self.base());
        self.goto_url(&url).await;
    }

    pub async fn goto_url(&self, url: &str) {
        self.c.goto(url).await.unwrap_or_else(|e| panic!("{}: cannot open {url}: {e}", self.who));
        self.auto_check().await;
    }

    pub async fn path(&self) -> String {
        let url = self.c.current_url().await.unwrap_or_else(|e| panic!("{e}"));
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        }
    }

    /// The page's visible text.
    pub async fn text(&self) -> String {
        let v = self.js("return document.body ? document.body.innerText : ''", vec![]).await;
        v.as_str().unwrap_or_default().to_owned()
    }

    /// The page says `what` (or the test fails, quoting the page).
    pub async fn see(&self, what: &str) {
        let text = self.text().await;
        assert!(
            text.contains(what),
            "{}: expected {what:?} at {}; the page says:\n{text}",
            self.who,
            self.path().await
        );
    }

    pub async fn see_not(&self, what: &str) {
        let text = self.text().await;
        assert!(
            !text.contains(what),
            "{}: did not expect {what:?} at {}; the page says:\n{text}",
            self.who,
            self.path().await
        );
    }

    pub async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.c.execute(script, args).await.unwrap_or_else(|e| panic!("{}: script failed: {e}\n{script}", self.who))
    }

    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        match self.c.find(Locator::Css(css)).await {
            Ok(element) => element,
            Err(e) => panic!("{}: no {css} at {}: {e}\n{}", self.who, self.path().await, self.text().await),
        }
    }

    pub async fn fill(&self, css: &str, value: &str) {
        let field = self.find(css).await;
        field.clear().await.unwrap_or_else(|e| panic!("{e}"));
        field.send_keys(value).await.unwrap_or_else(|e| panic!("{}: cannot type into {css}: {e}", self.who));
    }

    pub async fn click(&self, css: &str) {
        let element = self.find(css).await;
        element.click().await.unwrap_or_else(|e| panic!("{}: cannot click {css}: {e}", self.who));
    }

    /// Click the button or link whose text is exactly `label`.
    pub async fn press(&self, label: &str) {
        let xpath = format!("//button[normalize-space()={q}] | //a[normalize-space()={q}]", q = xpath_literal(label));
        let Ok(element) = self.c.find(Locator::XPath(&xpath)).await else {
            panic!("{}: no button or link {label:?} at {}:\n{}", self.who, self.path().await, self.text().await)
        };
        self.mark_document().await;
        element.click().await.unwrap_or_else(|e| panic!("{}: cannot click {label:?}: {e}", self.who));
        self.wait_for_new_document(label).await;
    }

    /// Open a `<details>` by its summary (no navigation).
    pub async fn reveal(&self, summary: &str) {
        let xpath = format!("//summary[normalize-space()={}]", xpath_literal(summary));
        let Ok(element) = self.c.find(Locator::XPath(&xpath)).await else {
            panic!("{}: no {summary:?} to open at {}", self.who, self.path().await)
        };
        element.click().await.unwrap_or_else(|e| panic!("{}: cannot open {summary:?}: {e}", self.who));
    }

    /// Tag the page shown now, so that [`Browser::wait_for_new_document`] knows when another replaced it
    /// (a form posted to the page's own address looks the same by its URL).
    pub async fn mark_document(&self) {
        self.js("window.__e2eOld = true; return true", vec![]).await;
    }

    pub async fn wait_for_new_document(&self, after: &str) {
        for _ in 0..600 {
            let state = self
                .c
                .execute("return window.__e2eOld === true ? 'old' : document.readyState", vec![])
                .await
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned));
            if state.as_deref() == Some("complete") {
                self.auto_check().await;
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{}: no new page loaded after {after:?} (at {})", self.who, self.path().await);
    }

    /// Click the first link whose text contains `label`.
    pub async fn follow(&self, label: &str) {
        let xpath = format!("//a[contains(normalize-space(), {})]", xpath_literal(label));
        let Ok(element) = self.c.find(Locator::XPath(&xpath)).await else {
            panic!("{}: no link {label:?} at {}:\n{}", self.who, self.path().await, self.text().await)
        };
        self.mark_document().await;
        element.click().await.unwrap_or_else(|e| panic!("{}: cannot follow {label:?}: {e}", self.who));
        self.wait_for_new_document(label).await;
    }

    /// Tick the radio button or checkbox whose label contains `label`.
    pub async fn choose(&self, label: &str) {
        let xpath = format!("//label[contains(normalize-space(), {})]//input", xpath_literal(label));
        let Ok(element) = self.c.find(Locator::XPath(&xpath)).await else {
            panic!("{}: no choice {label:?} at {}:\n{}", self.who, self.path().await, self.text().await)
        };
        element.click().await.unwrap_or_else(|e| panic!("{}: cannot choose {label:?}: {e}", self.who));
    }

    /// The value beside the term `term` in the page's first description list that has it.
    pub async fn dd(&self, term: &str) -> String {
        let v = self
            .js(
                "const dt = [...document.querySelectorAll('dt')].find(d => d.textContent.trim() === arguments[0]);
                 return dt && dt.nextElementSibling ? dt.nextElementSibling.innerText.trim() : null;",
                vec![json!(term)],
            )
            .await;
        match v.as_str() {
            Some(s) => s.to_owned(),
            None => panic!("{}: no {term:?} at {}:\n{}", self.who, self.path().await, self.text().await),
        }
    }

    /// The next page is expected to be the refusal `status` (checked like any other page, but not failed
    /// for being an error page); [`Browser::see`] then tells which refusal it is.
    pub fn expect_error(&self, status: u16) {
        if let Ok(mut e) = self.expect_error.lock() {
            *e = Some(status);
        }
    }

    /// Press one key (fantoccini's `Key`, e.g. `Key::Tab`) on whatever has the focus.
    pub async fn key(&self, key: fantoccini::key::Key) {
        self.type_keys(&key.to_string()).await;
    }

    /// Type into whatever has the focus, as a keyboard does.
    pub async fn type_keys(&self, text: &str) {
        let active =
            self.c.active_element().await.unwrap_or_else(|e| panic!("{}: nothing has the focus: {e}", self.who));
        active.send_keys(text).await.unwrap_or_else(|e| panic!("{}: cannot type: {e}", self.who));
    }

    /// Press Tab until the focus is on `css` (at most 40 times), checking at every stop that the focus is
    /// visible (an outline of at least 2 px).
    pub async fn tab_to(&self, css: &str) {
        for _ in 0..40 {
            self.key(fantoccini::key::Key::Tab).await;
            let focus = self
                .js(
                    "const e = document.activeElement; const s = getComputedStyle(e);
                     return { here: e.matches(arguments[0]), what: e.outerHTML.slice(0, 120),
                              visible: s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2 };",
                    vec![json!(css)],
                )
                .await;
            assert_eq!(
                focus["visible"],
                json!(true),
                "{}: the keyboard focus is not visible on {}",
                self.who,
                focus["what"]
            );
            if focus["here"] == json!(true) {
                return;
            }
        }
        panic!("{}: Tab never reached {css} at {}", self.who, self.path().await);
    }

    /// Press a key that should load another page (Enter on a link or a button), and wait for it.
    pub async fn key_to_new_page(&self, key: fantoccini::key::Key) {
        self.mark_document().await;
        self.key(key).await;
        self.wait_for_new_document("a key").await;
    }

    async fn resize(&self, (width, height): (u32, u32)) {
        self.c.set_window_size(width, height).await.unwrap_or_else(|e| panic!("{e}"));
        // Headless windows have no frame, but measure to be sure: the viewport is what must be 390 wide.
        let inner = self.js("return [window.innerWidth, window.innerHeight]", vec![]).await;
        let (w, h) = (inner[0].as_u64().unwrap_or(0) as u32, inner[1].as_u64().unwrap_or(0) as u32);
        if w != width || h != height {
            let (dw, dh) = (width.saturating_sub(w), height.saturating_sub(h));
            self.c.set_window_size(width + dw, height + dh).await.unwrap_or_else(|e| panic!("{e}"));
        }
    }

    async fn save_screenshot(&self, path: &Path) {
        let png = self.c.screenshot().await.unwrap_or_else(|e| panic!("screenshot: {e}"));
        std::fs::write(path, png).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }

    async fn axe(&self, page: &str) {
        let tools = tools();
        let _ = self.js(&format!("{}\n;return typeof axe;", tools.axe), vec![]).await;
        let result =
            self.c.execute_async(AXE_RUN, vec![]).await.unwrap_or_else(|e| panic!("axe-core did not run: {e}"));
        if let Some(error) = result.get("error") {
            panic!("axe-core failed on {page}: {error}");
        }
        let mut bad = Vec::new();
        for v in result.as_array().cloned().unwrap_or_default() {
            let impact = v["impact"].as_str().unwrap_or("unknown");
            let line = format!(
                "{page}: {} ({impact}): {} — {}",
                v["id"].as_str().unwrap_or(""),
                v["help"].as_str().unwrap_or(""),
                v["nodes"]
            );
            match impact {
                "serious" | "critical" => bad.push(line),
                _ => self.scenario.note_finding(line),
            }
        }
        assert!(bad.is_empty(), "axe-core found serious or critical violations:\n{}", bad.join("\n"));
    }

    /// Every page a browser arrives at gets the checks, named by its heading: it is not an error page
    /// (unless one was expected), a screenshot at desktop and phone width, axe-core, labelled inputs, and at
    /// 390×844 no sideways scrolling and buttons at least 44 px high. A page is checked once.
    async fn auto_check(&self) {
        let checked = self.js("return window.__e2eChecked === true", vec![]).await;
        if checked == json!(true) {
            return;
        }
        let heading =
            self.js("const h = document.querySelector('h1'); return h ? h.innerText : document.title", vec![]).await;
        let name = slug(heading.as_str().unwrap_or("page"));
        self.page(&name).await;
    }

    /// A checkpoint in a scenario: the page shown now has had its checks (at arrival, named by its
    /// heading), or gets them now under `name` (a page that changed without loading anew).
    pub async fn page(&self, name: &str) {
        let checked = self.js("return window.__e2eChecked === true", vec![]).await;
        if checked == json!(true) {
            return;
        }
        let title: String = self.c.title().await.unwrap_or_default();
        let text = self.text().await;
        let page = format!("{} {name} ({})", self.who, self.path().await);
        let expected = self.expect_error.lock().ok().and_then(|mut e| e.take());
        let error_line = text.lines().find(|l| l.starts_with("Error ") && l.contains(" · request ")).map(str::to_owned);
        match expected {
            Some(status) => assert!(
                error_line.as_deref().is_some_and(|l| l.starts_with(&format!("Error {status} "))),
                "{page}: expected the refusal {status}; the page says:\n{text}"
            ),
            None => assert!(
                error_line.is_none() && !text.contains("Internal Server Error"),
                "{page} is an error page ({title}):\n{text}"
            ),
        }
        self.checks(name).await;
        self.js("window.__e2eChecked = true; return true", vec![]).await;
    }

    /// The page changed in place (a `<details>` opened, say): check it again, as `name`.
    pub async fn recheck(&self, name: &str) {
        self.js("window.__e2eChecked = false; return true", vec![]).await;
        self.page(name).await;
    }

    /// Screenshots, labels, axe-core and the phone-width checks, on whatever page is shown.
    async fn checks(&self, name: &str) {
        let page = format!("{} {name} ({})", self.who, self.path().await);
        // A resize keeps the document (and the mark that it was checked): the same page at two widths.
        let shot = self.scenario.next_shot(&self.who, name);
        self.save_screenshot(&shot.with_extension("png")).await;
        let unlabelled = self.js(UNLABELLED, vec![]).await;
        assert_eq!(unlabelled, json!([]), "{page}: inputs without a label");
        self.axe(&page).await;
        self.resize(PHONE).await;
        let phone = self.js(PHONE_CHECKS, vec![]).await;
        let mut phone_shot = shot.into_os_string();
        phone_shot.push("-phone.png");
        self.save_screenshot(Path::new(&phone_shot)).await;
        self.resize(DESKTOP).await;
        assert_eq!(phone["width"], json!(PHONE.0), "{page}: the phone viewport is not {} px wide", PHONE.0);
        assert_eq!(phone["problems"], json!([]), "{page} at {}×{}", PHONE.0, PHONE.1);
    }

    /// An email's HTML part, rendered in this browser and put through the same checks as a page.
    pub async fn email_page(&self, email: &Email, name: &str) {
        assert!(!email.html.is_empty(), "the email {:?} has no HTML part", email.subject);
        if let Ok(mut r) = self.scenario.rendered.lock() {
            r.insert(email.html.clone());
        }
        let n = self.scenario.counter.load(Ordering::SeqCst) + 1;
        let file = self.scenario.demo.dir.path().join(format!("email-{n}.html"));
        std::fs::write(&file, &email.html).unwrap_or_else(|e| panic!("{e}"));
        let url = format!("file://{}", file.display());
        self.c.goto(&url).await.unwrap_or_else(|e| panic!("{}: cannot open {url}: {e}", self.who));
        self.page(name).await;
    }

    /// Sign in at /signin with a password and, when `secret` is given, a computed TOTP code; each page checked.
    pub async fn sign_in(&self, login: &str, password: &str, secret: Option<&str>) {
        self.goto("/signin").await;
        self.page("sign-in").await;
        self.fill("#login", login).await;
        self.fill("#password", password).await;
        self.press("Sign in").await;
        if let Some(secret) = secret {
            self.page("second-factor").await;
            self.see("Two-step verification").await;
            let code = self.scenario.totp(secret).await;
            self.fill("#code", &code).await;
            self.press("Verify").await;
        }
    }

    /// The TOTP secret shown on the enrolment page ("Can't scan it?"), confirmed with a computed code; then
    /// the backup codes page, continued.
    pub async fn enrol_totp(&self) -> String {
        self.see("Set up two-step verification").await;
        self.page("enrol-authenticator").await;
        self.reveal("Can't scan it?").await;
        self.recheck("authenticator-key-shown").await;
        let secret = self.find("code.secret").await.text().await.unwrap_or_default().replace(' ', "");
        assert!(secret.len() >= 26, "no TOTP secret on the page: {secret:?}");
        let code = self.scenario.totp(&secret).await;
        self.fill("#code", &code).await;
        self.press("Confirm").await;
        self.see("Your backup codes").await;
        self.page("backup-codes").await;
        self.press("I have saved them, continue").await;
        secret
    }

    /// Give this browser a platform authenticator that keeps discoverable credentials and verifies its user
    /// (WebDriver's virtual authenticator: chromedriver's `/webauthn/authenticator`), as a laptop with a
    /// fingerprint reader would.
    pub async fn add_virtual_authenticator(&self) -> String {
        let answer = self
            .c
            .issue_cmd(VirtualAuthenticator)
            .await
            .unwrap_or_else(|e| panic!("{}: chromedriver added no virtual authenticator: {e}", self.who));
        answer.as_str().unwrap_or_else(|| panic!("no authenticator id in {answer}")).to_owned()
    }

    /// The credentials the virtual authenticator `id` holds: (whether discoverable, user handle).
    pub async fn authenticator_credentials(&self, id: &str) -> Vec<Value> {
        let answer = self
            .c
            .issue_cmd(AuthenticatorCredentials(id.to_owned()))
            .await
            .unwrap_or_else(|e| panic!("{}: cannot read the virtual authenticator: {e}", self.who));
        answer.as_array().cloned().unwrap_or_default()
    }

    /// The "Sign out" link every signed-in page has in its header, then the button on that page.
    pub async fn sign_out(&self) {
        self.goto("/").await;
        self.follow("Sign out").await;
        self.page("sign-out").await;
        self.press("Sign out").await;
        let path = self.path().await;
        assert!(path.starts_with("/signin"), "{}: signing out ends at the sign-in page, not {path}", self.who);
    }
}

/// WebDriver's "Add Virtual Authenticator" (WebAuthn Level 2, §11.3).
#[derive(Debug)]
struct VirtualAuthenticator;

impl fantoccini::wd::WebDriverCompatibleCommand for VirtualAuthenticator {
    fn endpoint(&self, base: &url::Url, session: Option<&str>) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/webauthn/authenticator", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (axum::http::Method, Option<String>) {
        let options = json!({
            "protocol": "ctap2",
            "transport": "internal",
            "hasResidentKey": true,
            "hasUserVerification": true,
            "isUserConsenting": true,
            "isUserVerified": true,
        });
        (axum::http::Method::POST, Some(options.to_string()))
    }
}

/// WebDriver's "Get Credentials" of one virtual authenticator.
#[derive(Debug)]
struct AuthenticatorCredentials(String);

impl fantoccini::wd::WebDriverCompatibleCommand for AuthenticatorCredentials {
    fn endpoint(&self, base: &url::Url, session: Option<&str>) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/webauthn/authenticator/{}/credentials", session.unwrap_or_default(), self.0))
    }

    fn method_and_body(&self, _: &url::Url) -> (axum::http::Method, Option<String>) {
        (axum::http::Method::GET, None)
    }
}

fn xpath_literal(s: &str) -> String {
    if !s.contains('\'') {
        format!("'{s}'")
    } else if !s.contains('"') {
        format!("\"{s}\"")
    } else {
        let parts: Vec<String> = s.split('\'').map(|p| format!("'{p}'")).collect();
        format!("concat({})", parts.join(", \"'\", "))
    }
}

/// The code an email's text part sets on a line of its own (indented four spaces: see the notice template).
pub fn code_in(text: &str) -> String {
    text.lines()
        .find(|l| l.starts_with("    ") && !l.trim().is_empty())
        .map(|l| l.trim().to_owned())
        .unwrap_or_else(|| panic!("no code in the email:\n{text}"))
}
