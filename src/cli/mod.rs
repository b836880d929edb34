//! The `lifeline` command line. Run by an operator on the host, it acts as the system, outside the
//! privilege tiers. Errors go to stderr with a non-zero exit; `--json` output goes to stdout.

use crate::app;
use crate::audit::{AuditKey, Verified};
use crate::config::{DEFAULT_DATABASE_URL, Settings};
use crate::domain::{AccountSource, DisplayName, EmailAddress, Grant, PersonStatus, Username};
use crate::store::{AuditStore, NewPerson, SqlStore};
use crate::totp::TotpSecret;
use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use std::io::Read;
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "lifeline", version, about = "Lifeline: sign-in and access recovery for your organisation")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Serve the web interface.
    Serve {
        /// Seed a demo organisation (in lifeline-demo.db unless LIFELINE_DATABASE_URL is set) and print its sign-ins.
        #[arg(long)]
        demo: bool,
        /// With --demo: start the demo again from scratch (removes lifeline-demo.db and the demo's mail).
        #[arg(long, requires = "demo")]
        reset: bool,
    },
    /// Create or upgrade the database schema.
    Migrate,
    /// Create the first administrator (DPA 3, expert mode, directory admin, auditor); password from stdin.
    Init {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        username: Option<String>,
    },
    /// Manage people.
    #[command(subcommand)]
    Person(PersonCommand),
    /// Check or export the audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Personal API tokens: a token acts as its person, with their permissions at each call.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Copy a whole database to another (e.g. SQLite to PostgreSQL). The target must be empty; it is migrated
    /// first. Keep the same key file. Sessions are not copied.
    CopyDb {
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
    },
}

#[derive(Subcommand)]
pub enum PersonCommand {
    /// Add a person with one account; the password (local and synchronized accounts) is read from stdin.
    Add(AddArgs),
    /// Show a person: status, lock fields, MFA state, permissions.
    Show {
        email: String,
        #[arg(long)]
        json: bool,
    },
    /// Set a person's permissions (replaces the previous grant).
    Grant {
        email: String,
        /// Data protection access level, 0 to 3.
        #[arg(long, value_parser = clap::value_parser!(u8).range(0..=3))]
        dpa: u8,
        #[arg(long)]
        expert: bool,
        #[arg(long)]
        auditor: bool,
        #[arg(long)]
        directory_admin: bool,
    },
    /// Lift the sign-in lock of a person's accounts (audited as the system, with the reason).
    Unlock {
        email: String,
        /// Why (kept in the audit log): e.g. "verified by call-back on the number on file".
        #[arg(long)]
        reason: String,
    },
    /// Reset the person's MFA (authenticator and backup codes; the policy stays): the next sign-in emails a
    /// device authorization code, then enrols a new authenticator. For the admin who lost their own.
    ResetMfa {
        email: String,
        #[arg(long)]
        reason: String,
    },
    /// Issue an enrolment code: with their username, the person adds a passkey at "Sign in with a code", once,
    /// within `recovery.enrolment_code_minutes` (an hour at most). No email carries it: this prints it, for you
    /// to hand over. With `reset-mfa`, how a last admin who lost everything gets back in.
    EnrolmentCode {
        email: String,
        #[arg(long)]
        reason: String,
    },
    /// Disable a person: every session ends and every link, code or pass handed out for them is revoked.
    Disable {
        email: String,
        #[arg(long)]
        reason: String,
    },
    /// Enable a disabled person again.
    Enable {
        email: String,
        #[arg(long)]
        reason: String,
    },
    /// Import people from a CSV file (columns: email, display_name, username, source, manager_email,
    /// department, phone, status). All rows or none.
    Import { file: PathBuf },
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Make a token for a person; it is printed once (only its keyed hash is kept).
    Create {
        #[arg(long)]
        person: String,
        /// What the token is for, shown in every audit row it makes (e.g. "ticketing bot").
        #[arg(long)]
        name: String,
        /// How long it lives: e.g. 30d, 12h, 45m (default 30d; an expert token at most an hour).
        #[arg(long)]
        expires: Option<String>,
        /// For expert actions: it stands in for the console's step-up, so it lives an hour at most.
        #[arg(long)]
        expert: bool,
        #[arg(long)]
        json: bool,
    },
    /// List tokens (never their secrets), of one person or of everyone.
    List {
        #[arg(long)]
        person: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token at once.
    Revoke { id: i64 },
}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Walk the chain with the key; exit 0 when every row matches, 1 naming every row that does not.
    Verify,
    /// Print the log as JSON lines (one row per line), oldest first.
    Export {
        /// Only rows at or after this time: RFC 3339 (2026-11-23T09:00:00Z) or a date (2026-11-23, UTC).
        #[arg(long)]
        since: Option<String>,
    },
}

#[derive(Args)]
pub struct AddArgs {
    #[arg(long)]
    email: String,
    #[arg(long)]
    name: String,
    #[arg(long)]
    username: Option<String>,
    /// local, synchronized or sso.
    #[arg(long, default_value = "local")]
    source: String,
    /// The manager's email address.
    #[arg(long)]
    manager: Option<String>,
    #[arg(long)]
    department: Option<String>,
    #[arg(long)]
    phone: Option<String>,
    /// Enrol TOTP now and print the otpauth:// URI and backup codes.
    #[arg(long)]
    totp: bool,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// Read a password from stdin: everything up to the first line break.
fn password_from_stdin() -> anyhow::Result<Option<String>> {
    let mut input = String::new();
    std::io::stdin().take(64 * 1024).read_to_string(&mut input).context("cannot read the password from stdin")?;
    let line = input.lines().next().unwrap_or_default().to_owned();
    Ok(if line.is_empty() { None } else { Some(line) })
}

/// Remove the demo database (and its WAL files) and the mail folder's `.eml` files, so the next start seeds
/// the demo afresh. Only the demo's own file: a database named by `LIFELINE_DATABASE_URL` is never touched.
fn reset_demo(settings: &Settings) -> anyhow::Result<()> {
    if settings.database_url != "sqlite://lifeline-demo.db" {
        anyhow::bail!(
            "--reset only removes the demo's own lifeline-demo.db; LIFELINE_DATABASE_URL names another database \
             ({}), which it leaves alone",
            app::redact_url(&settings.database_url)
        );
    }
    for file in ["lifeline-demo.db", "lifeline-demo.db-wal", "lifeline-demo.db-shm"] {
        match std::fs::remove_file(file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot remove {file}")),
        }
    }
    if let Ok(entries) = std::fs::read_dir(&settings.mail_dir) {
        for entry in entries.flatten() {
            if entry.path().extension().is_some_and(|e| e == "eml") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    println!("The demo starts again from scratch.");
    Ok(())
}

fn parse<T>(r: Result<T, crate::domain::ParseError>) -> anyhow::Result<T> {
    r.map_err(|e| anyhow::anyhow!("{e}"))
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut settings = Settings::load()?;
    crate::mail::check_sender(&settings.mail_from)?;
    match cli.command {
        Command::Serve { demo, reset } => {
            if demo {
                if settings.database_url == DEFAULT_DATABASE_URL {
                    settings.database_url = "sqlite://lifeline-demo.db".into();
                }
                if reset {
                    reset_demo(&settings)?;
                }
                settings.policy.qa_enabled = true;
            }
            serve(settings, demo).await
        }
        Command::Migrate => {
            let store = crate::store::SqlStore::connect(&settings.database_url)
                .await
                .with_context(|| format!("cannot open the database at {}", app::redact_url(&settings.database_url)))?;
            let applied = store.migrate().await?;
            if applied.is_empty() {
                println!("The database is up to date.");
            } else {
                for name in applied {
                    println!("applied {name}");
                }
            }
            Ok(())
        }
        Command::Init { email, name, username } => {
            let app = app::build(settings).await?;
            if app.state.directory.has_directory_admin().await? {
                bail!(
                    "this directory already has an administrator; use `lifeline person add` and `lifeline person grant`"
                );
            }
            let email = parse(EmailAddress::parse(&email))?;
            let username = parse(match username {
                Some(u) => Username::parse(&u),
                None => Username::from_email(&email),
            })?;
            let password = password_from_stdin()?.context("give the administrator's password on stdin")?;
            let new = NewPerson {
                display_name: parse(DisplayName::parse(&name))?,
                email,
                username,
                source: AccountSource::Local,
                manager_email: None,
                department: None,
                phone: None,
                status: PersonStatus::Active,
                password_hash: None,
                require_change_password: false,
                grant: Grant { dpa_level: 3, expert_mode: true, auditor: true, directory_admin: true },
            };
            let (person, account) =
                app.state.directory.add_person(system(&app, None).await?, new, Some(&password)).await?;
            println!(
                "Created administrator {} ({}), username {}.",
                person.display_name, person.email, account.username
            );
            println!(
                "Sign in at {}/signin; you will set up two-step verification on first sign-in.",
                app.core.settings.public_url
            );
            Ok(())
        }
        Command::Person(cmd) => person(settings, cmd).await,
        Command::Audit(cmd) => audit(settings, cmd).await,
        Command::Token(cmd) => token(settings, cmd).await,
        Command::CopyDb { from, to } => {
            let open = |url: String| async move {
                crate::store::SqlStore::connect(&url)
                    .await
                    .with_context(|| format!("cannot open the database at {}", app::redact_url(&url)))
            };
            let source = open(from).await?;
            source.migrate().await.context("the source database could not be brought up to date")?;
            let target = open(to).await?;
            let counts = crate::store::copy::copy(&source, &target).await?;
            for (table, rows) in counts {
                println!("{table}: {rows} rows");
            }
            println!("Copied. Point LIFELINE_DATABASE_URL at the new database and keep the same key file.");
            Ok(())
        }
    }
}

async fn person(settings: Settings, cmd: PersonCommand) -> anyhow::Result<()> {
    let app = app::build(settings).await?;
    let (signin, directory) = (&app.state.signin, &app.state.directory);
    match cmd {
        PersonCommand::Add(a) => {
            let email = parse(EmailAddress::parse(&a.email))?;
            let source: AccountSource = parse(a.source.parse())?;
            let username = parse(match &a.username {
                Some(u) => Username::parse(u),
                None => Username::from_email(&email),
            })?;
            let password = if source == AccountSource::Sso { None } else { password_from_stdin()? };
            if source == AccountSource::Local && password.is_none() {
                bail!(
                    "give the password on stdin (local accounts need one), e.g. `echo '...' | lifeline person add ...`"
                );
            }
            if a.totp && source == AccountSource::Sso {
                bail!("--totp does not apply to sso accounts: their second factor is the identity provider's");
            }
            let new = NewPerson {
                display_name: parse(DisplayName::parse(&a.name))?,
                email,
                username,
                source,
                manager_email: a
                    .manager
                    .as_deref()
                    .map(EmailAddress::parse)
                    .transpose()
                    .map_err(|e| anyhow::anyhow!("--manager: {e}"))?,
                department: a.department,
                phone: a.phone,
                status: PersonStatus::Active,
                password_hash: None,
                require_change_password: false,
                grant: Grant::default(),
            };
            let (person, account) = directory.add_person(system(&app, None).await?, new, password.as_deref()).await?;
            let mut output = serde_json::json!({
                "person_id": person.id,
                "email": person.email.as_str(),
                "username": account.username,
                "source": account.source,
            });
            let mut text = format!("Added {} ({}), username {}.", person.display_name, person.email, account.username);
            if a.totp {
                let secret = TotpSecret::generate();
                let codes = signin.enrol_totp_now(system(&app, Some(person.id)).await?, account.id, &secret).await?;
                let uri = secret.otpauth_uri(&app.core.settings.organisation, &account.username);
                text.push_str(&format!("\notpauth URI: {uri}\nbackup codes (shown once):\n  {}", codes.join("\n  ")));
                output["otpauth_uri"] = serde_json::Value::String(uri);
                output["backup_codes"] = serde_json::json!(codes);
            }
            if a.json {
                println!("{}", serde_json::to_string_pretty(&output)?);
            } else {
                println!("{text}");
            }
        }
        PersonCommand::Show { email, json } => {
            let view = directory.person_view(&email).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&view)?);
            } else {
                println!("{} <{}> — {}, rank {}", view.display_name, view.email, view.status, view.rank);
                let p = view.permissions;
                println!(
                    "permissions: DPA {}, expert mode {}, auditor {}, directory admin {}",
                    p.dpa_level, p.expert_mode, p.auditor, p.directory_admin
                );
                for a in &view.accounts {
                    println!(
                        "account {} ({}): {}; TOTP {}; {} unused backup codes; {} failed attempts",
                        a.username,
                        a.source,
                        if a.locked {
                            format!(
                                "LOCKED since {} ({})",
                                a.locked_at.as_deref().unwrap_or("?"),
                                a.lock_reason.as_deref().unwrap_or("?")
                            )
                        } else {
                            "not locked".into()
                        },
                        if a.mfa.totp_enabled { "on" } else { "off" },
                        a.mfa.backup_codes_unused,
                        a.failed_attempts,
                    );
                }
            }
        }
        PersonCommand::Grant { email, dpa, expert, auditor, directory_admin } => {
            let grant = Grant { dpa_level: dpa, expert_mode: expert, auditor, directory_admin };
            let view = directory.set_grant(system(&app, Some(directory.find(&email).await?.id)).await?, grant).await?;
            println!(
                "{} now has DPA {dpa}, expert mode {expert}, auditor {auditor}, directory admin {directory_admin} (rank {}).",
                view.email, view.rank
            );
        }
        PersonCommand::Unlock { email, reason } => {
            let reason = crate::domain::Reason::parse(&reason).map_err(|e| anyhow::anyhow!("--{e}"))?;
            match directory.unlock(system(&app, Some(directory.find(&email).await?.id)).await?, &reason).await? {
                0 => println!("{email} has no locked account; nothing changed."),
                n => println!("Unlocked {n} account{} of {email}.", if n == 1 { "" } else { "s" }),
            }
        }
        PersonCommand::ResetMfa { email, reason } => {
            let proof = system::<crate::authz::ResetMfa>(&app, Some(directory.find(&email).await?.id)).await?;
            recover(&app, proof, &reason).await?;
        }
        PersonCommand::EnrolmentCode { email, reason } => {
            let proof =
                system::<crate::authz::IssueEnrolmentCode>(&app, Some(directory.find(&email).await?.id)).await?;
            recover(&app, proof, &reason).await?;
        }
        PersonCommand::Disable { email, reason } => {
            let proof = system::<crate::authz::Disable>(&app, Some(directory.find(&email).await?.id)).await?;
            recover(&app, proof, &reason).await?;
        }
        PersonCommand::Enable { email, reason } => {
            let proof = system::<crate::authz::Enable>(&app, Some(directory.find(&email).await?.id)).await?;
            recover(&app, proof, &reason).await?;
        }
        PersonCommand::Import { file } => {
            let data = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let rows = directory.parse_import(&data).await?;
            let bar = indicatif::ProgressBar::new(rows.len() as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} people")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            let from = file.display().to_string();
            let count =
                directory.import(system(&app, None).await?, &rows, &from, &|n| bar.set_position(n as u64)).await?;
            bar.finish_and_clear();
            println!("Imported {count} people from {}.", file.display());
        }
    }
    Ok(())
}

/// The system's proof for `A`: the CLI is run by an operator on the host, outside grants and tiers, but it
/// goes through the same one function as the console.
/// Run a recovery action as the system (outside tiers and four-eyes; audited as the CLI, with the reason).
async fn recover<A: crate::authz::Recover>(
    app: &app::App,
    proof: crate::authz::Proof<A>,
    reason: &str,
) -> anyhow::Result<()> {
    let form = crate::recovery::ActionForm { method: reason.to_owned(), ..Default::default() };
    match app.state.recovery.execute(proof, &form, None).await {
        Ok(crate::recovery::Outcome::Done { summary, pass }) => {
            println!("{summary}");
            if let Some(pass) = pass {
                let until = crate::assistance::dossier::when(pass.expires_at);
                let what = if pass.enrolment { "Enrolment code" } else { "Temporary access pass" };
                println!(
                    "{what} (shown only now; works once, until {until} UTC, at Sign in with a code): {}",
                    pass.pass
                );
            }
            Ok(())
        }
        Ok(crate::recovery::Outcome::Pending { .. }) => anyhow::bail!("the action is waiting for approval"),
        Err(e) => Err(anyhow::anyhow!("{e}")),
    }
}

async fn system<A: crate::authz::Action>(
    app: &app::App,
    subject: Option<crate::domain::PersonId>,
) -> anyhow::Result<crate::authz::Proof<A>> {
    Ok(app.state.authority.authorize::<A>(crate::authz::Principal::System, subject).await?)
}

/// Parse `--since`: an RFC 3339 time or a plain date (midnight UTC).
fn parse_since(text: &str) -> anyhow::Result<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.timestamp());
    }
    match chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        Ok(d) => Ok(d.and_hms_opt(0, 0, 0).map(|t| t.and_utc().timestamp()).unwrap_or_default()),
        Err(_) => bail!("--since {text:?}: give an RFC 3339 time (2026-11-23T09:00:00Z) or a date (2026-11-23)"),
    }
}

/// Audit rows read per query.
const PAGE: i64 = 1000;

async fn audit(settings: Settings, cmd: AuditCommand) -> anyhow::Result<()> {
    // Its errors name the database and the key (and a database that is not there).
    let (store, keys) = app::open_with_key(&settings, false, chrono::Utc::now().timestamp()).await?;
    match cmd {
        AuditCommand::Verify => {
            let verified = verify_audit_log(&store, &keys.audit_key()).await?;
            match verified.legacy_rows {
                0 => println!("audit log verified: {} rows, chain intact", verified.rows),
                n => println!(
                    "audit log verified: {} rows, chain intact (rows 1 to {n} were written before the chain was keyed: \
                     checked with plain SHA-256 and pinned by row {})",
                    verified.rows,
                    n + 1
                ),
            }
        }
        AuditCommand::Export { since } => {
            let since = since.as_deref().map(parse_since).transpose()?;
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            let mut after = 0;
            loop {
                let page = store.audit_records(after, PAGE).await?;
                for record in page.iter().filter(|r| since.is_none_or(|s| r.entry.at >= s)) {
                    serde_json::to_writer(&mut out, record)?;
                    std::io::Write::write_all(&mut out, b"\n")?;
                }
                match page.last() {
                    Some(last) => after = last.id,
                    None => break,
                }
            }
            std::io::Write::flush(&mut out)?;
        }
    }
    Ok(())
}

/// Walk the whole log; every problem goes to stderr, one line per row, and the result is an error that counts them.
async fn verify_audit_log(store: &SqlStore, key: &AuditKey) -> anyhow::Result<Verified> {
    crate::auditing::walk(store, key).await?.map_err(|breaks| {
        for problem in &breaks {
            eprintln!("{problem}");
        }
        let problems = if breaks.len() == 1 { "problem" } else { "problems" };
        anyhow::anyhow!("audit log does not verify: {} {problems}, each named above", breaks.len())
    })
}

async fn serve(settings: Settings, demo: bool) -> anyhow::Result<()> {
    let listen = settings.listen;
    let metrics_listen = settings.metrics_listen;
    let public_url = settings.public_url.clone();
    // Before anything is recorded: the recorder is the process's.
    let metrics = metrics_listen.map(|_| crate::http::metrics::install()).transpose()?;
    let app = app::build(settings).await?;
    if demo {
        crate::demo::seed(&app).await?;
        crate::demo::print_sign_ins(&public_url);
    }
    let open_files = crate::http::raise_open_file_limit();
    tracing::info!(?open_files, "open-file limit");
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    let bound = listener.local_addr()?;
    tracing::info!("Lifeline listening on {bound} ({public_url})");
    println!("Lifeline is serving {public_url} (listening on {bound}). Stop it with Ctrl-C.");
    let _background = crate::app::spawn_background(&app);
    if let (Some(address), Some(handle)) = (metrics_listen, metrics) {
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .with_context(|| format!("cannot listen on {address} for metrics"))?;
        let bound = listener.local_addr()?;
        println!("Metrics at http://{bound}/metrics");
        let router = crate::http::metrics::router(app.state.clone(), handle);
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                tracing::error!(error = %e, "the metrics listener stopped");
            }
        });
    }
    crate::http::serve(listener, app.state, shutdown_signal()).await?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

/// A lifetime such as `30d`, `12h` or `45m`, in minutes.
fn parse_lifetime(text: &str) -> anyhow::Result<u32> {
    let text = text.trim();
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let n: u32 =
        number.parse().map_err(|_| anyhow::anyhow!("--expires {text:?}: give a number and d, h or m, e.g. 30d"))?;
    let minutes = match unit {
        "d" => n.checked_mul(24 * 60),
        "h" => n.checked_mul(60),
        "m" => Some(n),
        _ => None,
    };
    minutes
        .filter(|m| *m > 0)
        .ok_or_else(|| anyhow::anyhow!("--expires {text:?}: give a number and d, h or m, e.g. 30d"))
}

fn when(at: i64) -> String {
    chrono::DateTime::from_timestamp(at, 0).map(|t| t.to_rfc3339()).unwrap_or_default()
}

async fn token(settings: Settings, cmd: TokenCommand) -> anyhow::Result<()> {
    let app = app::build(settings).await?;
    let tokens = &app.state.tokens;
    let person_of = async |email: &str| -> anyhow::Result<crate::domain::PersonId> {
        Ok(app.state.directory.find(email).await.with_context(|| format!("no person with the email {email}"))?.id)
    };
    match cmd {
        TokenCommand::Create { person, name, expires, expert, json } => {
            let id = person_of(&person).await?;
            let minutes = match expires.as_deref() {
                Some(text) => parse_lifetime(text)?,
                None if expert => app.core.settings.api.expert_token_max_minutes,
                None => 30 * 24 * 60,
            };
            let issued = tokens.create(system(&app, Some(id)).await?, &name, minutes, expert).await?;
            if json {
                let out = serde_json::json!({
                    "id": issued.id, "token": issued.secret, "expires_at": when(issued.expires_at), "expert": expert,
                });
                println!("{out}");
            } else {
                println!("{}", issued.secret);
                eprintln!(
                    "token {} for {person} (\"{name}\"{}), until {}: shown once, keep it like a password; send it as \
                     `Authorization: Bearer <token>`",
                    issued.id,
                    if expert { ", expert" } else { "" },
                    when(issued.expires_at)
                );
            }
        }
        TokenCommand::List { person, json } => {
            let person = match person.as_deref() {
                Some(email) => Some(person_of(email).await?),
                None => None,
            };
            let list = tokens.list(person).await?;
            let now = app.core.clock.now();
            let state = |t: &crate::store::ApiToken| t.state(now);
            if json {
                let rows: Vec<_> = list
                    .iter()
                    .map(|t| {
                        serde_json::json!({
                            "id": t.id, "account_id": t.account.0, "name": t.name, "expert": t.expert,
                            "created_at": when(t.created_at), "expires_at": when(t.expires_at),
                            "last_used_at": t.last_used_at.map(when), "state": state(t),
                        })
                    })
                    .collect();
                println!("{}", serde_json::Value::Array(rows));
            } else {
                for t in &list {
                    let account = app.state.directory.account(t.account).await?.map(|a| a.username).unwrap_or_default();
                    println!(
                        "{}\t{}\t{account}\t{}{}\tuntil {}\tlast used {}",
                        t.id,
                        state(t),
                        t.name,
                        if t.expert { " (expert)" } else { "" },
                        when(t.expires_at),
                        t.last_used_at.map(when).unwrap_or_else(|| "never".into())
                    );
                }
            }
        }
        TokenCommand::Revoke { id } => {
            if !tokens.revoke(&crate::audit::Actor::System, id).await? {
                bail!("token {id} was revoked already");
            }
            println!("token {id} revoked");
        }
    }
    Ok(())
}
