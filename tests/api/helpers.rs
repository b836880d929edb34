//! `each_backend(...)`: a real Lifeline on a random loopback port with a fresh database (SQLite, and
//! PostgreSQL when `LIFELINE_TEST_POSTGRES_URL` is set), its own key
//! file and the MaxMind test databases, plus typed helpers that speak HTTP to it like a browser would.

use lifeline::clock::Clock;
use lifeline::config::Settings;
use lifeline::domain::{AccountSource, DisplayName, EmailAddress, Grant, PersonStatus, Username};
use lifeline::http::AppState;
use lifeline::policy::lockout::LockoutPolicy;
use lifeline::policy::rate_limit::RateLimit;
use lifeline::store::NewPerson;
use lifeline::totp::TotpSecret;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

pub fn testdata(name: &str) -> PathBuf {
    // In the repository, so that `cargo test` needs nothing beside a fresh clone (README there says where
    // the files come from and under which licences).
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/geoip").join(name)
}

/// The system's proof for `A` (as the CLI gets it), to arrange what a test needs.
pub async fn system<A: lifeline::authz::Action>(
    state: &AppState,
    subject: Option<lifeline::domain::PersonId>,
) -> lifeline::authz::Proof<A> {
    let principal = lifeline::authz::Principal::System;
    state.authority.authorize::<A>(principal, subject).await.unwrap_or_else(|e| panic!("{e}"))
}

pub struct TestApp {
    pub address: String,
    pub state: AppState,
    /// The concrete store, for the tests' own SQL and for closing it.
    pub db: Arc<lifeline::store::SqlStore>,
    /// The app's clock: the real time, moved forward when a test says "five minutes later".
    pub clock: Arc<dyn TestClock>,
    _background: Background,
    pub _dir: tempfile::TempDir,
    _db: TestDb,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

/// The app's background tasks, stopped before its database goes away.
struct Background(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Background {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// A fresh database for one test: an SQLite file, or a PostgreSQL database created for the test and
/// dropped (connections and all) when this value is dropped, even when the test panics.
pub struct TestDb {
    pub label: &'static str,
    pub url: String,
    drop_pg: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((admin_url, name)) = self.drop_pg.take() else { return };
        // Drop runs inside the test's runtime; a thread of its own may block on a runtime of its own.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            rt.block_on(async {
                use sqlx::Connection;
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin_url).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                        .execute(&mut conn)
                        .await;
                }
            });
        })
        .join();
    }
}

/// The databases every black-box and conformance test runs on: SQLite always; PostgreSQL too when
/// `LIFELINE_TEST_POSTGRES_URL` is set (e.g. `postgres://postgres@127.0.0.1:5432/postgres`). A set
/// variable with an unreachable server fails the test: nothing is skipped silently.
pub async fn databases() -> Vec<TestDb> {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let sqlite = TestDb {
        label: "sqlite",
        url: format!("sqlite://{}", dir.path().join("lifeline.db").display()),
        drop_pg: None,
        _dir: Some(dir),
    };
    let mut dbs = vec![sqlite];
    if let Some(admin_url) = std::env::var("LIFELINE_TEST_POSTGRES_URL").ok().filter(|u| !u.is_empty()) {
        dbs.push(fresh_postgres(&admin_url).await);
    }
    dbs
}

/// An SQLite database file that already exists (a fixture copied into a test's directory).
pub fn existing_sqlite(path: &Path) -> TestDb {
    TestDb { label: "sqlite", url: format!("sqlite://{}", path.display()), drop_pg: None, _dir: None }
}

pub async fn fresh_postgres(admin_url: &str) -> TestDb {
    use sqlx::Connection;
    let name = format!("lifeline_test_{}", hex::encode(rand::random::<[u8; 6]>()));
    let mut conn = sqlx::PgConnection::connect(admin_url)
        .await
        .unwrap_or_else(|e| panic!("LIFELINE_TEST_POSTGRES_URL is set but PostgreSQL is unreachable: {e}"));
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let _ = conn.close().await;
    TestDb {
        label: "postgres",
        url: with_database(admin_url, &name),
        drop_pg: Some((admin_url.to_owned(), name)),
        _dir: None,
    }
}

/// `postgres://user@host:port/db?x` with another database name.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let authority_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_part = match base[authority_end..].find('/') {
        Some(i) => &base[..authority_end + i],
        None => base,
    };
    format!("{host_part}/{name}{query}")
}

/// Run `test` once per database in `databases()`, each time against a freshly spawned app.
pub async fn each_backend(test: impl AsyncFn(TestApp)) {
    each_backend_with(|_| {}, test).await
}

pub async fn each_backend_with(adjust: impl Fn(&mut Settings), test: impl AsyncFn(TestApp)) {
    for db in databases().await {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut settings = test_settings(dir.path());
        settings.database_url = db.url.clone();
        adjust(&mut settings);
        println!("--- on {}", db.label);
        test(spawn_in(dir, settings, db).await).await;
    }
}

/// Settings for a test instance: everything under `dir`, loopback trusted as a proxy, GeoIP test data.
pub fn test_settings(dir: &Path) -> Settings {
    Settings {
        database_url: format!("sqlite://{}", dir.join("lifeline.db").display()),
        key_file: dir.join("lifeline.key"),
        mail_dir: dir.join("mail"),
        listen: "127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}")),
        trusted_proxies: vec!["127.0.0.1/32".parse().unwrap_or_else(|e| panic!("{e}"))],
        geoip_city: Some(testdata("GeoIP2-City-Test.mmdb")),
        geoip_asn: Some(testdata("GeoLite2-ASN-Test.mmdb")),
        // Most tests type wrong passwords in quick succession from one address; the tests of the delays
        // and of the per-client throttle turn them back on.
        lockout: LockoutPolicy {
            delay_base_seconds: 0,
            per_client: RateLimit { max: 10_000, window_seconds: 600 },
            ..Default::default()
        },
        // Tests sign in from many made-up addresses; the email about an unusual sign-in has tests of its own.
        policy: lifeline::config::PolicySettings { notify_unusual_sign_ins: false, ..Default::default() },
        ..Default::default()
    }
}

/// The environment that gives a `lifeline` process the same lockout settings as [`test_settings`].
pub const TEST_LOCKOUT_ENV: &[(&str, &str)] = &[
    ("LIFELINE_LOCKOUT__DELAY_BASE_SECONDS", "0"),
    ("LIFELINE_LOCKOUT__PER_CLIENT__MAX", "10000"),
    ("LIFELINE_POLICY__NOTIFY_UNUSUAL_SIGN_INS", "false"),
];

/// Spawn Lifeline on a random loopback port over `db`.
pub async fn spawn_in(dir: tempfile::TempDir, settings: Settings, db: TestDb) -> TestApp {
    spawn_with_clock(dir, settings, db, Arc::new(ShiftedClock::default())).await
}

/// A clock the test sets and moves on; it never moves by itself.
pub struct ManualClock(std::sync::atomic::AtomicI64);

impl ManualClock {
    pub fn at(now: i64) -> std::sync::Arc<Self> {
        std::sync::Arc::new(Self(std::sync::atomic::AtomicI64::new(now)))
    }

    pub fn advance(&self, seconds: i64) {
        self.0.fetch_add(seconds, std::sync::atomic::Ordering::SeqCst);
    }
}

impl lifeline::clock::Clock for ManualClock {
    fn now(&self) -> i64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl TestClock for ManualClock {
    fn advance(&self, seconds: i64) {
        ManualClock::advance(self, seconds);
    }
}

/// A clock a test can move forward: the app's services read it.
pub trait TestClock: Clock {
    fn advance(&self, seconds: i64);
}

/// Run `test` once per backend against an app whose services (and background work) read a manual clock
/// that starts at `start` each time.
pub async fn each_backend_with_clock(
    start: i64,
    adjust: impl Fn(&mut Settings),
    test: impl AsyncFn(TestApp, std::sync::Arc<ManualClock>),
) {
    for db in databases().await {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut settings = test_settings(dir.path());
        settings.database_url = db.url.clone();
        adjust(&mut settings);
        println!("--- on {}", db.label);
        let clock = ManualClock::at(start);
        test(spawn_with_clock(dir, settings, db, clock.clone()).await, clock).await;
    }
}

/// [`each_backend_with_clock`] with the default settings, the clock fixed at the real time the test starts.
pub async fn each_backend_on_a_fixed_clock(test: impl AsyncFn(TestApp, std::sync::Arc<ManualClock>)) {
    each_backend_with_clock(chrono::Utc::now().timestamp(), |_| {}, test).await;
}

/// A `public_url` that [`spawn_with_clock`] turns into `http://localhost:<port>`: passkeys need a domain name.
pub const LOCALHOST: &str = "http://localhost";

/// Settings for passkey tests: the app's public URL names `localhost`.
pub fn on_localhost(settings: &mut Settings) {
    settings.public_url = LOCALHOST.into();
}

/// Spawn Lifeline on a random loopback port over `db`, with its services reading `clock`.
pub async fn spawn_with_clock(
    dir: tempfile::TempDir,
    mut settings: Settings,
    db: TestDb,
    clock: Arc<dyn TestClock>,
) -> TestApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("{e}"));
    let address = format!("http://{}", listener.local_addr().unwrap_or_else(|e| panic!("{e}")));
    // `LOCALHOST` asks for the same port under the name `localhost`: WebAuthn needs a domain, not an IP. The
    // tests still connect to 127.0.0.1 (no Origin header is sent, and the server listens there).
    settings.public_url =
        if settings.public_url == LOCALHOST { address.replace("127.0.0.1", "localhost") } else { address.clone() };
    let built = lifeline::app::build_with_clock(settings, clock.clone()).await.unwrap_or_else(|e| panic!("{e:#}"));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server_state = built.state.clone();
    tokio::spawn(async move {
        let _ = lifeline::http::serve(listener, server_state, async {
            let _ = rx.await;
        })
        .await;
    });
    let background = Background(lifeline::app::spawn_background(&built));
    TestApp {
        address,
        state: built.state,
        db: built.store,
        clock,
        _background: background,
        _dir: dir,
        _db: db,
        _shutdown: tx,
    }
}

/// The real time plus an offset that a test moves forward, so "after the lock has run out" needs no wait.
#[derive(Default)]
pub struct ShiftedClock(AtomicI64);

impl TestClock for ShiftedClock {
    fn advance(&self, seconds: i64) {
        self.0.fetch_add(seconds, Ordering::SeqCst);
    }
}

impl Clock for ShiftedClock {
    fn now(&self) -> i64 {
        chrono::Utc::now().timestamp() + self.0.load(Ordering::SeqCst)
    }
}

/// A browser: its own cookie jar, and redirects left for the test to see.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_else(|e| panic!("{e}"))
}

pub struct Person {
    pub email: String,
    pub username: String,
    pub password: String,
    pub totp: Option<TotpSecret>,
    pub backup_codes: Vec<String>,
    pub account_id: lifeline::domain::AccountId,
}

pub const PASSWORD: &str = "amber-falcon-harbour-42";

/// The start of the one answer every failed sign-in gets (wrong password, unknown login, locked account).
pub const INVALID: &str = "The username or password is incorrect, or your account may be locked";

pub fn new_person(name: &str, email: &str, username: &str) -> NewPerson {
    NewPerson {
        display_name: DisplayName::parse(name).unwrap_or_else(|e| panic!("{e}")),
        email: EmailAddress::parse(email).unwrap_or_else(|e| panic!("{e}")),
        username: Username::parse(username).unwrap_or_else(|e| panic!("{e}")),
        source: AccountSource::Local,
        manager_email: None,
        department: None,
        phone: None,
        status: PersonStatus::Active,
        password_hash: None,
        require_change_password: false,
        grant: Grant::default(),
    }
}

pub fn csrf_of(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).unwrap_or_else(|| panic!("no CSRF field in:\n{html}")) + marker.len();
    html[start..].split('"').next().unwrap_or_default().to_owned()
}

impl TestApp {
    /// The app's working directory (its key file is here).
    pub fn dir(&self) -> &Path {
        self._dir.path()
    }

    /// Stop this instance (server and background work) and keep its database, e.g. to start another.
    pub fn stop(self) -> (TestDb, tempfile::TempDir) {
        let TestApp { _db: db, _dir: dir, _background, _shutdown, .. } = self;
        drop(_background);
        drop(_shutdown);
        (db, dir)
    }

    pub fn db_url(&self) -> String {
        self._db.url.clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// Arrange: a person with a local account, password `PASSWORD`, and (when `totp`) an authenticator.
    pub async fn add_person(&self, username: &str, totp: bool) -> Person {
        self.add(new_person(&format!("Test {username}"), &format!("{username}@example.org"), username), totp).await
    }

    pub async fn add(&self, new: NewPerson, totp: bool) -> Person {
        let (email, username) = (new.email.to_string(), new.username.to_string());
        let (_, account) = self
            .state
            .directory
            .add_person(system(&self.state, None).await, new, Some(PASSWORD))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let (secret, backup_codes) = if totp {
            let secret = TotpSecret::generate();
            let codes = self
                .state
                .signin
                .enrol_totp_now(system(&self.state, Some(account.person_id)).await, account.id, &secret)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            (Some(secret), codes)
        } else {
            (None, Vec::new())
        };
        Person { email, username, password: PASSWORD.into(), totp: secret, backup_codes, account_id: account.id }
    }

    /// The CSRF token of this browser, read from a form the way a person's browser gets it: from the
    /// sign-in page, or the page a signed-in session is sent to from there.
    pub async fn csrf(&self, client: &reqwest::Client) -> String {
        let response = client.get(self.url("/signin")).send().await.unwrap_or_else(|e| panic!("{e}"));
        let response = if response.status().is_redirection() {
            client.get(self.url(&location(&response))).send().await.unwrap_or_else(|e| panic!("{e}"))
        } else {
            response
        };
        csrf_of(&response.text().await.unwrap_or_default())
    }

    pub async fn post_form(&self, client: &reqwest::Client, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let csrf = self.csrf(client).await;
        let mut form: Vec<(&str, &str)> = fields.to_vec();
        form.push(("csrf", &csrf));
        client.post(self.url(path)).form(&form).send().await.unwrap_or_else(|e| panic!("{e}"))
    }

    /// POST a form as if from `ip` (through the trusted loopback proxy).
    pub async fn post_form_from(
        &self,
        client: &reqwest::Client,
        ip: &str,
        path: &str,
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        let csrf = self.csrf(client).await;
        let mut form: Vec<(&str, &str)> = fields.to_vec();
        form.push(("csrf", &csrf));
        client
            .post(self.url(path))
            .header("x-forwarded-for", ip)
            .form(&form)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// A complete sign-in (password and TOTP) from `ip`; `step` picks a TOTP code not used before.
    /// A browser signed in as `person` (password, then the current TOTP code), each step checked.
    pub async fn sign_in(&self, person: &Person) -> reqwest::Client {
        self.sign_in_from(person, "127.0.0.1", 0).await
    }

    pub async fn sign_in_from(&self, person: &Person, ip: &str, step: i64) -> reqwest::Client {
        let client = browser();
        let first = self
            .post_form_from(&client, ip, "/signin", &[("login", &person.username), ("password", &person.password)])
            .await;
        assert_eq!(location(&first), "/signin/mfa");
        let secret = person.totp.as_ref().unwrap_or_else(|| panic!("{} has no TOTP", person.username));
        let second = self.post_form_from(&client, ip, "/signin/mfa", &[("code", &code(secret, step))]).await;
        if location(&second) != "/" {
            let status = second.status();
            panic!("sign-in of {} from {ip}: {status} {}", person.username, second.text().await.unwrap_or_default());
        }
        client
    }

    /// Ask for help as the public would, from `ip`.
    pub async fn post_assistance(&self, ip: &str, email: &str, problem: &str) -> reqwest::Response {
        self.post_form_from(&browser(), ip, "/assistance", &[("email", email), ("type", problem), ("description", "")])
            .await
    }

    /// Ask for help through the JSON API, from `ip` (through the trusted loopback proxy).
    pub async fn post_assistance_json(
        &self,
        ip: &str,
        email: &str,
        problem: &str,
        description: &str,
    ) -> reqwest::Response {
        browser()
            .post(self.url("/api/v1/assistance-requests"))
            .header("x-forwarded-for", ip)
            .json(&serde_json::json!({ "email": email, "type": problem, "description": description }))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// A person with a grant (and TOTP, so they may use the console).
    pub async fn add_admin(&self, username: &str, dpa_level: u8) -> Person {
        let person = self.add_person(username, true).await;
        let grant = lifeline::domain::Grant { dpa_level, ..Default::default() };
        let subject = self.state.directory.find(&person.email).await.unwrap_or_else(|e| panic!("{e}")).id;
        self.state
            .directory
            .set_grant(system(&self.state, Some(subject)).await, grant)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        person
    }

    pub async fn post_sign_in(&self, client: &reqwest::Client, login: &str, password: &str) -> reqwest::Response {
        self.post_form(client, "/signin", &[("login", login), ("password", password)]).await
    }

    pub async fn post_code(&self, client: &reqwest::Client, code: &str) -> reqwest::Response {
        self.post_form(client, "/signin/mfa", &[("code", code)]).await
    }

    pub async fn person_json(&self, email: &str) -> serde_json::Value {
        let view = self.state.directory.person_view(email).await.unwrap_or_else(|e| panic!("{e}"));
        serde_json::to_value(view).unwrap_or_else(|e| panic!("{e}"))
    }
}

/// The reference in an accepted JSON API request's answer ("" when there is none).
pub async fn json_reference(response: reqwest::Response) -> String {
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    body["reference"].as_str().unwrap_or_default().to_owned()
}

pub fn location(response: &reqwest::Response) -> String {
    response.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

/// A TOTP code that the server will accept once more for this secret: the next step's code (inside the
/// ±1 window) when the current one may have been used already.
pub fn code(secret: &TotpSecret, offset_steps: i64) -> String {
    lifeline::totp::code_at(secret, chrono::Utc::now().timestamp() + 30 * offset_steps)
}

/// Run the real `lifeline` binary in `dir` (its key file) on `db_url`, with `stdin` and extra `env`.
pub fn run_lifeline(dir: &Path, db_url: &str, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_lifeline"));
    command
        .args(args)
        .current_dir(dir)
        .env("LIFELINE_DATABASE_URL", db_url)
        .env("LIFELINE_KEY_FILE", dir.join("lifeline.key"))
        .env_remove("LIFELINE_CONFIG")
        .env("RUST_LOG", "warn")
        .envs(TEST_LOCKOUT_ENV.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().unwrap_or_else(|e| panic!("cannot run lifeline: {e}"));
    if let Some(mut input) = child.stdin.take() {
        let _ = input.write_all(stdin.as_bytes());
    }
    child.wait_with_output().unwrap_or_else(|e| panic!("{e}"))
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Every email for `to` (or for anyone), oldest first: (subject, text part). The outbox holds an email's
/// bodies until it is delivered and clears them then (they carry live secrets), so a delivered one is read,
/// and parsed, from the `.eml` file the mail folder received.
pub async fn emails_for(app: &TestApp, to: Option<&str>) -> Vec<(String, String)> {
    let rows: Vec<(String, String, String, Option<i64>, String)> = sqlx::query_as(
        "SELECT message_id, subject, text_body, sent_at, to_address FROM outbox_email ORDER BY outbox_email_id",
    )
    .fetch_all(app.db.pool())
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    rows.into_iter()
        .filter(|(_, _, _, _, address)| to.is_none_or(|t| t == address))
        .map(|(message_id, subject, text, sent_at, _)| {
            if sent_at.is_none() {
                return (subject, text);
            }
            let name: String =
                message_id.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect();
            let path = app.dir().join("mail").join(format!("{name}.eml"));
            let raw = std::fs::read(&path).unwrap_or_else(|e| panic!("{} (sent): {e}", path.display()));
            let message = mail_parser::MessageParser::default()
                .parse(&raw)
                .unwrap_or_else(|| panic!("{} does not parse", path.display()));
            (subject, message.body_text(0).map(|t| t.into_owned()).unwrap_or_default())
        })
        .collect()
}
