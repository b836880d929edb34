//! Assembling the application from settings: storage, keys, hashing, GeoIP.

use crate::clock::{Clock, SystemClock};
use crate::config::Settings;
use crate::crypto::{Keys, MasterKey, PasswordHasher};
use crate::geo::Geo;
use crate::http::AppState;
use crate::mail::compose::Templates;
use crate::mail::outbox::OutboxWorker;
use crate::mail::{MailDir, Mailer, Smtp};
use crate::services::Core;
use crate::store::{AuditStore, RateLimitStore, Sealing, SessionStore, SqlStore, ThrottleStore};
use anyhow::Context;
use std::sync::Arc;

/// A built application: the services the fronts use (`state`), and what only the process itself needs —
/// the concrete store (to close it; the tests' SQL), the mailer and the core for the background work.
#[derive(Clone)]
pub struct App {
    pub state: AppState,
    pub core: Arc<Core>,
    pub store: Arc<SqlStore>,
    pub mailer: Arc<dyn Mailer>,
}

/// Open the database (running migrations), load or create the master key, open GeoIP databases.
pub async fn build(settings: Settings) -> anyhow::Result<App> {
    build_with_clock(settings, Arc::new(SystemClock)).await
}

pub async fn build_with_clock(mut settings: Settings, clock: Arc<dyn Clock>) -> anyhow::Result<App> {
    let (db, keys) = open_with_key(&settings, true, clock.now()).await?;
    // The keys are derived: the master key's hex form has no reader left, so it does not stay in the settings
    // every service can read for as long as the process lives.
    settings.secret_key = None;
    let db = db.with_audit_key(keys.audit_key());
    seal_audit_chain(&db, clock.now()).await?;
    let geo = Geo::open(settings.geoip_city.as_deref(), settings.geoip_asn.as_deref())?;
    let hasher = PasswordHasher::new(settings.argon2)?;
    let mailer: Arc<dyn Mailer> = match &settings.smtp_url {
        Some(url) => Arc::new(Smtp::from_url(&url.0)?),
        None => Arc::new(MailDir::new(settings.mail_dir.clone())),
    };
    let store = Arc::new(db);
    let core = Arc::new(Core { settings, clock, keys, hasher, geo });
    let services = crate::services::assemble(core.clone(), store.clone(), Arc::new(Templates));
    let state = AppState {
        signin: services.signin,
        authority: services.authority,
        directory: services.directory,
        assistance: services.assistance,
        recovery: services.recovery,
        audit_log: services.audit_log,
        tokens: services.tokens,
        gauges: services.gauges,
        team: services.team,
        passkeys: services.passkeys,
        addresses: services.addresses,
        readiness: store.clone(),
    };
    Ok(App { state, core, store, mailer })
}

/// Start the background work of an instance: request processing, email delivery, housekeeping. Every
/// instance runs all of it; claims and locks in the database keep them from doing the same work twice.
pub fn spawn_background(app: &App) -> Vec<tokio::task::JoinHandle<()>> {
    let outbox = OutboxWorker {
        store: app.store.clone(),
        mailer: app.mailer.clone(),
        from: app.core.settings.mail_from.clone(),
        clock: app.core.clock.clone(),
        wake: app.state.assistance.wake_outbox.clone(),
        settings: app.core.settings.outbox.clone(),
    };
    vec![
        tokio::spawn(app.state.assistance.clone().run_processor()),
        tokio::spawn(outbox.run()),
        tokio::spawn(periodic_jobs(app.core.clone(), app.store.clone())),
    ]
}

/// Housekeeping that every instance runs; each job is idempotent, so several instances on one database
/// may run it at the same time.
pub async fn periodic_jobs(core: Arc<Core>, store: Arc<SqlStore>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(600));
    loop {
        tick.tick().await;
        let now = core.now();
        match store.delete_expired_sessions(now).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!("removed {n} expired sessions"),
            Err(e) => tracing::warn!("expired-session cleanup failed: {e}"),
        }
        // No rate-limit or throttle window is longer than a day.
        if let Err(e) = store.delete_old_rate_limit_windows(now - 86_400).await {
            tracing::warn!("rate-limit cleanup failed: {e}");
        }
        if let Err(e) = store.delete_old_throttle_windows(now - 86_400).await {
            tracing::warn!("sign-in throttle cleanup failed: {e}");
        }
        match crate::retention::run(store.as_ref(), &core.settings.retention, now).await {
            Ok(removed) if removed != crate::retention::Removed::default() => tracing::info!(
                "retention removed {} sign-in events and {} closed assistance requests",
                removed.sign_in_events,
                removed.closed_requests
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!("retention failed: {e}"),
        }
    }
}

/// The file an `sqlite:` URL names (`sqlite://path?options` or `sqlite:path`); `None` for other databases,
/// in-memory ones, and paths with percent escapes (sqlx decodes those; better no check than a wrong one).
fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let in_memory = path == ":memory:" || query.split('&').any(|o| o == "mode=memory");
    (!path.is_empty() && !in_memory && !path.contains('%')).then(|| std::path::PathBuf::from(path))
}

/// Open the database and the master key that belongs to it. The database records the key's fingerprint on
/// first use; from then on a key that does not match is refused (naming the key and the database) before it
/// can seal a secret or sign an audit row, and no new key file is ever created for it. A database that holds
/// data but no fingerprint yet (written before fingerprints) gets one only from a key that opens its sealed
/// secrets; a new key file is created only for an empty database, and only when `create` (starting a server,
/// adding people) allows it.
pub async fn open_with_key(
    settings: &Settings,
    create: bool,
    now: crate::domain::Timestamp,
) -> anyhow::Result<(SqlStore, Keys)> {
    use crate::store::KeyStore;
    let database = redact_url(&settings.database_url);
    if !create && let Some(path) = sqlite_file(&settings.database_url).filter(|p| !p.exists()) {
        // A command that only reads (audit verify, export) must not leave an empty database behind.
        anyhow::bail!(
            "there is no database at {}: set LIFELINE_DATABASE_URL to the one to read (the demo's is \
             sqlite://lifeline-demo.db); nothing was created",
            path.display()
        );
    }
    let db = open_store(settings).await?;
    let source = match &settings.secret_key {
        Some(_) => "LIFELINE_SECRET_KEY".to_owned(),
        None => format!("the key file {}", settings.key_file.display()),
    };
    let recorded = db.key_fingerprint().await?;
    let may_create = create && recorded.is_none() && !db.holds_data().await?;
    let master = master_key(settings, may_create).with_context(|| match &recorded {
        Some(_) => format!(
            "the database at {database} was set up with a key: point LIFELINE_KEY_FILE at that key file (or set \
             LIFELINE_SECRET_KEY); no new key is made for a database that has one"
        ),
        None if create => format!(
            "the database at {database} holds people, so it needs the key it was set up with, and no new one is made \
             for it: {source} cannot be read"
        ),
        None => format!("the database at {database} needs its key: {source} cannot be read"),
    })?;
    let keys = Keys::new(&master);
    let mismatch = || {
        anyhow::anyhow!(
            "{source} does not belong to the database at {database}: it was set up with another key. Point \
             LIFELINE_KEY_FILE (or LIFELINE_SECRET_KEY) at the key this database was set up with; nothing was changed."
        )
    };
    let fingerprint = keys.fingerprint();
    match recorded {
        Some(recorded) if !crate::crypto::ct_eq(recorded.as_bytes(), fingerprint.as_bytes()) => return Err(mismatch()),
        Some(_) => {}
        None => {
            // Written before fingerprints: the key must open what it sealed before it is recorded as the key.
            if let Some((account, sealed)) = db.any_sealed_secret().await?
                && keys.open(&sealed, &format!("totp:{account}")).is_err()
            {
                return Err(mismatch());
            }
            let in_force = db.record_key_fingerprint(&fingerprint, now).await?;
            if !crate::crypto::ct_eq(in_force.as_bytes(), fingerprint.as_bytes()) {
                return Err(mismatch());
            }
        }
    }
    Ok((db, keys))
}

/// The master key from `LIFELINE_SECRET_KEY` or the key file; `create` makes a new key file when there is none
/// (starting a server), which a command that checks existing data must not do.
pub fn master_key(settings: &Settings, create: bool) -> anyhow::Result<MasterKey> {
    Ok(match &settings.secret_key {
        Some(hex) => MasterKey::from_hex(&hex.0).context("LIFELINE_SECRET_KEY")?,
        None if create => MasterKey::load_or_create(&settings.key_file)?,
        None => MasterKey::load(&settings.key_file)?,
    })
}

/// Seal the audit chain's head with the key on the first start with it (see docs/decisions.md, "Audit chain").
/// A head sealed by another key stops the start: most likely the key file is not this database's.
async fn seal_audit_chain(db: &SqlStore, now: crate::domain::Timestamp) -> anyhow::Result<()> {
    match db.seal_audit_chain(now).await.context("cannot start with this audit log")? {
        Sealing::AlreadySealed => {}
        Sealing::NewLog => tracing::info!("audit log: a new log, its head sealed with the key"),
        Sealing::PinnedLegacyRows { legacy_rows, seal_row } => tracing::warn!(
            "audit log: {legacy_rows} rows written before the chain was keyed are pinned by row {seal_row} \
             (audit.seal); `lifeline audit verify` checks them with plain SHA-256"
        ),
    }
    Ok(())
}

pub async fn open_store(settings: &Settings) -> anyhow::Result<SqlStore> {
    let store = SqlStore::connect(&settings.database_url)
        .await
        .with_context(|| format!("cannot open the database at {}", redact_url(&settings.database_url)))?;
    store.migrate().await.context("database migration failed")?;
    Ok(store)
}

/// A database URL fit for an error message: any password replaced.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}://{user}:***@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_in_database_urls_are_hidden() {
        assert_eq!(super::redact_url("postgres://app:s3cret@db/lifeline"), "postgres://app:***@db/lifeline");
        assert_eq!(super::redact_url("sqlite://lifeline.db"), "sqlite://lifeline.db");
    }
}
