//! Typed configuration: defaults, then a TOML file (`LIFELINE_CONFIG`), then `LIFELINE_*` environment
//! variables (`__` separates sections: `LIFELINE_LOCKOUT__FAILED_ATTEMPTS_BEFORE_LOCK=10`).
//! Unknown keys are errors, and everything is validated before the server starts.

use crate::crypto::Argon2Settings;
use crate::policy::lockout::LockoutPolicy;
use crate::policy::permissions::PermissionSettings;
use crate::policy::rate_limit::RateLimit;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use ipnet::IpNet;
use serde::{Deserialize, Deserializer};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub const DEFAULT_DATABASE_URL: &str = "sqlite://lifeline.db";

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub listen: SocketAddr,
    /// Where Prometheus metrics are served (`/metrics`); off unless set. Keep it off the public network.
    pub metrics_listen: Option<SocketAddr>,
    /// The address people use to reach Lifeline; links in emails start with it, and `https` makes
    /// cookies `Secure`.
    pub public_url: String,
    pub database_url: String,
    pub mail_dir: PathBuf,
    pub smtp_url: Option<Redacted>,
    pub geoip_city: Option<PathBuf>,
    pub geoip_asn: Option<PathBuf>,
    #[serde(deserialize_with = "comma_separated_nets")]
    pub trusted_proxies: Vec<IpNet>,
    /// Where the 256-bit master key lives (created with mode 0600 on first start).
    pub key_file: PathBuf,
    /// The master key itself, 64 hex characters; when set, the key file is not used.
    pub secret_key: Option<Redacted>,
    pub organisation: String,
    /// The sender of every email.
    pub mail_from: String,
    pub policy: PolicySettings,
    pub assistance: AssistanceSettings,
    pub outbox: OutboxSettings,
    pub permissions: PermissionSettings,
    pub lockout: LockoutPolicy,
    pub argon2: Argon2Settings,
    pub help: HelpSettings,
    pub http: HttpSettings,
    pub retention: RetentionSettings,
    pub recovery: RecoverySettings,
    pub api: ApiSettings,
    pub team: TeamSettings,
    /// How the process logs (`LIFELINE_LOG_FORMAT`): read when the process starts, before the rest of the
    /// configuration; listed here so the configuration knows the name.
    pub log_format: LogFormat,
}

/// Text for people, JSON (one object a line) for machines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            metrics_listen: None,
            // `localhost`, not 127.0.0.1: passkeys (WebAuthn) need a domain name, and a browser treats
            // http://localhost as a secure context. The server still listens on 127.0.0.1 (`listen`).
            public_url: "http://localhost:8080".into(),
            database_url: DEFAULT_DATABASE_URL.into(),
            mail_dir: PathBuf::from("mail"),
            smtp_url: None,
            geoip_city: None,
            geoip_asn: None,
            trusted_proxies: Vec::new(),
            key_file: PathBuf::from("lifeline.key"),
            secret_key: None,
            organisation: "Lifeline".into(),
            mail_from: "Lifeline <lifeline@localhost>".into(),
            policy: PolicySettings::default(),
            assistance: AssistanceSettings::default(),
            outbox: OutboxSettings::default(),
            permissions: PermissionSettings::default(),
            lockout: LockoutPolicy::default(),
            argon2: Argon2Settings::default(),
            help: HelpSettings::default(),
            http: HttpSettings::default(),
            retention: RetentionSettings::default(),
            recovery: RecoverySettings::default(),
            api: ApiSettings::default(),
            team: TeamSettings::default(),
            log_format: LogFormat::default(),
        }
    }
}

/// The manager portal (SPEC §5).
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TeamSettings {
    /// A secure link (the temporary password, shown once) works this many hours.
    pub secure_link_hours: u32,
    /// A question to a line manager can be answered this long; a confirmation vouches for actions this long.
    pub attestation_hours: u32,
}

impl Default for TeamSettings {
    fn default() -> Self {
        Self { secure_link_hours: 24, attestation_hours: 24 }
    }
}

impl TeamSettings {
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=168).contains(&self.secure_link_hours) || !(1..=168).contains(&self.attestation_hours) {
            return Err("team.secure_link_hours and team.attestation_hours must be 1–168 (a week at most)".into());
        }
        Ok(())
    }
}

/// The admin JSON API's personal tokens.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiSettings {
    /// An ordinary token lives at most this many days (`token create --expires` within it).
    pub token_max_days: u32,
    /// An expert token (for expert actions: it stands in for the console's step-up) lives at most this long.
    pub expert_token_max_minutes: u32,
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self { token_max_days: 90, expert_token_max_minutes: 60 }
    }
}

impl ApiSettings {
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=366).contains(&self.token_max_days) || !(1..=24 * 60).contains(&self.expert_token_max_minutes) {
            return Err("api.token_max_days must be 1–366 and api.expert_token_max_minutes 1–1440".into());
        }
        Ok(())
    }
}

/// Recovery actions (SPEC §4): how long what they hand out lives, how admins verify, who is told.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecoverySettings {
    /// The verification methods an admin picks from (the "Reason" of every action). An entry starting with
    /// "Other" needs details.
    pub verification_methods: Vec<String>,
    /// Access email and magic link: the set-new-password link lives this long (NIST: at most 24 h).
    pub link_minutes: u32,
    /// Recovery code email (seed 001: one hour).
    pub recovery_code_minutes: u32,
    /// One-time password (ASVS 6.5: at most 10 minutes).
    pub one_time_password_minutes: u32,
    /// Device authorization code after an MFA reset (an out-of-band code: at most 10 minutes).
    pub device_code_minutes: u32,
    /// Temporary access pass: the admin picks a lifetime within these bounds.
    pub pass_min_minutes: u32,
    pub pass_max_minutes: u32,
    pub pass_default_minutes: u32,
    /// Issue enrolment code: the code lets the person add a passkey for this long (at most an hour).
    pub enrolment_code_minutes: u32,
    /// The "this wasn't me" link in every notification works this long.
    pub not_me_days: u32,
    /// Email the person about every recovery action on their account.
    pub notify_user: bool,
    /// Name the admin in that email (default: only the role, "an administrator").
    pub notify_actor_name: bool,
    /// Expert actions need the admin's second factor within this long.
    pub step_up_minutes: u32,
    /// A four-eyes request waits this long for a second admin, then expires.
    pub approval_hours: u32,
}

impl Default for RecoverySettings {
    fn default() -> Self {
        Self {
            verification_methods: vec![
                "Identity verified by callback to the number on file".into(),
                "Verified in person".into(),
                "Verified with line manager".into(),
                "Other (see details)".into(),
            ],
            link_minutes: 24 * 60,
            recovery_code_minutes: 60,
            one_time_password_minutes: 10,
            device_code_minutes: 10,
            pass_min_minutes: 10,
            pass_max_minutes: 8 * 60,
            pass_default_minutes: 60,
            enrolment_code_minutes: 60,
            not_me_days: 7,
            notify_user: true,
            notify_actor_name: false,
            step_up_minutes: 10,
            approval_hours: 24,
        }
    }
}

impl RecoverySettings {
    pub fn validate(&self) -> Result<(), String> {
        if self.verification_methods.is_empty()
            || self.verification_methods.iter().any(|m| m.trim().len() < 3 || m.chars().count() > 200)
        {
            return Err("recovery.verification_methods must list at least one method of 3 to 200 characters".into());
        }
        if !(1..=24 * 60).contains(&self.link_minutes) || !(1..=24 * 60).contains(&self.recovery_code_minutes) {
            return Err(
                "recovery.link_minutes and recovery.recovery_code_minutes must be 1–1440 (NIST: 24 h at most)".into()
            );
        }
        if !(1..=10).contains(&self.one_time_password_minutes) || !(1..=10).contains(&self.device_code_minutes) {
            return Err("recovery.one_time_password_minutes and recovery.device_code_minutes must be 1–10".into());
        }
        if !(1..=self.pass_max_minutes).contains(&self.pass_min_minutes)
            || self.pass_max_minutes > 7 * 24 * 60
            || !(self.pass_min_minutes..=self.pass_max_minutes).contains(&self.pass_default_minutes)
        {
            return Err(
                "recovery.pass_min_minutes ≤ pass_default_minutes ≤ pass_max_minutes ≤ 10080, and at least 1".into()
            );
        }
        if !(1..=60).contains(&self.enrolment_code_minutes) {
            return Err("recovery.enrolment_code_minutes must be 1–60 (an hour at most)".into());
        }
        if !(1..=90).contains(&self.not_me_days) || !(1..=60).contains(&self.step_up_minutes) {
            return Err("recovery.not_me_days must be 1–90 and recovery.step_up_minutes 1–60".into());
        }
        if !(1..=24 * 7).contains(&self.approval_hours) {
            return Err("recovery.approval_hours must be 1–168".into());
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicySettings {
    /// Every account must have a second factor; people without one enrol at their next sign-in.
    pub mfa_required: bool,
    /// Self-service password reset with security questions. Off by default: knowledge-based
    /// authentication does not meet NIST SP 800-63B-4 or ASVS 5.0 (6.4.2); see docs/decisions.md.
    pub qa_enabled: bool,
    /// The questions every enrolled person answers.
    pub qa_questions: Vec<String>,
    /// Lifetime of a signed-in session.
    pub session_minutes: u32,
    /// Lifetime of a half-finished sign-in (password accepted, second factor not yet).
    pub pending_sign_in_minutes: u32,
    /// A failed password attempt is answered after at least this long, known login or not.
    pub failed_sign_in_floor_ms: u32,
    /// Anyone who holds an admin permission (a DPA level, expert mode, auditor, directory admin) signs in with a
    /// passkey: one who has none adds one right after the password and code; one who has one cannot use a
    /// code instead. Off by default.
    pub admins_require_passkey: bool,
    /// Email a person after a successful sign-in from a country or network their account has not signed in from
    /// before, or after a burst of failures from strangers (ASVS 5.0 6.3.5).
    pub notify_unusual_sign_ins: bool,
}

impl Default for PolicySettings {
    fn default() -> Self {
        Self {
            mfa_required: true,
            qa_enabled: false,
            qa_questions: vec![
                "What was the name of your first school?".into(),
                "In which city did you start your first job?".into(),
                "What is the title of a book you would read again?".into(),
            ],
            session_minutes: 8 * 60,
            pending_sign_in_minutes: 10,
            failed_sign_in_floor_ms: 300,
            admins_require_passkey: false,
            notify_unusual_sign_ins: true,
        }
    }
}

/// Access assistance requests ("Can't sign in?").
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AssistanceSettings {
    /// Requests from one client IP.
    pub per_ip: RateLimit,
    /// Requests naming one email address.
    pub per_email: RateLimit,
    /// All requests together.
    pub global: RateLimit,
    /// A repeat of the same email and problem within this time joins the open request.
    pub repeat_window_seconds: u32,
    /// Every answer takes at least this long, so its timing says nothing about the account.
    pub response_floor_ms: u32,
    /// How long an instance holds a request it is processing before another instance may take it over.
    pub processing_lease_seconds: u32,
    pub digest: DigestSettings,
}

impl Default for AssistanceSettings {
    fn default() -> Self {
        Self {
            per_ip: RateLimit { max: 5, window_seconds: 900 },
            per_email: RateLimit { max: 3, window_seconds: 3600 },
            global: RateLimit { max: 300, window_seconds: 60 },
            repeat_window_seconds: 3600,
            response_floor_ms: 400,
            processing_lease_seconds: 120,
            digest: DigestSettings::default(),
        }
    }
}

/// When requests come faster than admins can read them (a flood, an outage), one digest per interval.
#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct DigestSettings {
    /// Emails about single requests (new ones, and repeats from somewhere new) per interval; beyond this,
    /// and for the whole next interval too, the admins get one digest per interval instead.
    pub individual_per_interval: u32,
    pub interval_seconds: u32,
}

impl Default for DigestSettings {
    fn default() -> Self {
        Self { individual_per_interval: 10, interval_seconds: 300 }
    }
}

/// How long personal data that has done its job is kept; the periodic job removes what is older.
/// The audit log is kept whatever these say.
#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionSettings {
    /// Sign-in events (time, IP, place, network, user agent of every attempt).
    pub sign_in_events_days: u32,
    /// Resolved and dismissed assistance requests, with their dossiers and repeats.
    pub closed_requests_days: u32,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        Self { sign_in_events_days: 365, closed_requests_days: 180 }
    }
}

/// Email delivery from the outbox.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutboxSettings {
    /// The first retry after a failed delivery; each further one waits twice as long (at most an hour).
    pub retry_base_seconds: u32,
    /// The longest wait between two attempts.
    pub retry_max_seconds: u32,
    /// How long an instance holds an email it is delivering before another instance may take it over.
    pub lease_seconds: u32,
}

impl Default for OutboxSettings {
    fn default() -> Self {
        Self { retry_base_seconds: 15, retry_max_seconds: 3600, lease_seconds: 60 }
    }
}

/// The staff help page: whom people who cannot sign in should contact.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HelpSettings {
    pub contacts: Vec<String>,
}

impl Default for HelpSettings {
    fn default() -> Self {
        Self { contacts: vec!["Ask your line manager, or call your IT helpdesk.".into()] }
    }
}

/// A configuration value that must never appear in a log.
#[derive(Clone, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Redacted(pub String);

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {0} does not exist")]
    MissingFile(String),
    #[error("configuration: {0}")]
    Invalid(String),
}

impl Settings {
    /// Load from the file named by `LIFELINE_CONFIG` (if any) and the environment.
    pub fn load() -> Result<Self, ConfigError> {
        let file = std::env::var_os("LIFELINE_CONFIG").map(PathBuf::from);
        Self::load_from(file.as_deref(), Env::prefixed("LIFELINE_"))
    }

    pub fn load_from(file: Option<&Path>, env: Env) -> Result<Self, ConfigError> {
        // Defaults first, so that a file or variable may set one field of a section and keep the rest.
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError::MissingFile(path.display().to_string()));
            }
            figment = figment.merge(Toml::file(path));
        }
        // LIFELINE_CONFIG names the file and LIFELINE_TEST_* belong to the test suite: neither is a setting.
        let env = env.filter(|key| key != "config" && !key.as_str().to_lowercase().starts_with("test_")).split("__");
        let settings: Settings =
            figment.merge(env).extract().map_err(|e| ConfigError::Invalid(e.to_string().replace("default.", "")))?;
        settings.validate().map_err(ConfigError::Invalid)?;
        Ok(settings)
    }

    pub fn validate(&self) -> Result<(), String> {
        if !(self.public_url.starts_with("http://") || self.public_url.starts_with("https://")) {
            return Err(format!("public_url must start with http:// or https:// (got {:?})", self.public_url));
        }
        if !(self.database_url.starts_with("sqlite:")
            || self.database_url.starts_with("postgres://")
            || self.database_url.starts_with("postgresql://"))
        {
            return Err("database_url must be a sqlite: or postgres:// URL".into());
        }
        if self.policy.qa_enabled && self.policy.qa_questions.is_empty() {
            return Err("policy.qa_questions must not be empty when policy.qa_enabled is true".into());
        }
        if self.policy.session_minutes == 0 || self.policy.pending_sign_in_minutes == 0 {
            return Err("policy.session_minutes and policy.pending_sign_in_minutes must be at least 1".into());
        }
        if self.organisation.trim().is_empty() {
            return Err("organisation must not be empty".into());
        }
        self.lockout.validate()?;
        self.recovery.validate()?;
        self.api.validate()?;
        self.team.validate()?;
        let a = &self.assistance;
        a.per_ip.validate("assistance.per_ip")?;
        a.per_email.validate("assistance.per_email")?;
        a.global.validate("assistance.global")?;
        self.permissions.validate()?;
        if a.processing_lease_seconds == 0 || self.outbox.lease_seconds == 0 || self.outbox.retry_base_seconds == 0 {
            return Err("assistance.processing_lease_seconds, outbox.lease_seconds and outbox.retry_base_seconds must be at least 1".into());
        }
        if a.response_floor_ms > 10_000 {
            return Err("assistance.response_floor_ms must be at most 10000".into());
        }
        // Notification counts live in the rate-limit counter table, whose windows are swept after a day.
        if !(60..=86_400).contains(&a.digest.interval_seconds) {
            return Err("assistance.digest.interval_seconds must be between 60 and 86400".into());
        }
        if a.digest.individual_per_interval == 0 {
            return Err("assistance.digest.individual_per_interval must be at least 1".into());
        }
        // The dossier compares a request with a person's sign-ins: it needs the last few weeks at least.
        if !(30..=3650).contains(&self.retention.sign_in_events_days) {
            return Err("retention.sign_in_events_days must be between 30 and 3650".into());
        }
        if !(1..=3650).contains(&self.retention.closed_requests_days) {
            return Err("retention.closed_requests_days must be between 1 and 3650".into());
        }
        if crate::email::sender_address(&self.mail_from).is_none() {
            return Err("mail_from must be an address like \"Lifeline <lifeline@example.org>\"".into());
        }
        self.argon2.validate()?;
        self.http.validate()?;
        Ok(())
    }

    pub fn https(&self) -> bool {
        self.public_url.starts_with("https://")
    }
}

/// Trusted proxies come as a TOML list or, from the environment, as one comma-separated string.
/// A bare address means that one host (/32 or /128).
fn comma_separated_nets<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<IpNet>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Nets {
        One(String),
        Many(Vec<String>),
    }
    let items = match Nets::deserialize(deserializer)? {
        Nets::One(s) => s.split(',').map(str::to_owned).collect(),
        Nets::Many(v) => v,
    };
    items
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| serde::de::Error::custom(format!("{s:?} is not an IP address or CIDR network")))
        })
        .collect()
}

/// Limits on connections and requests.
#[derive(Debug, Clone, Copy, serde::Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    /// A connection must send a request's headers within this long, or it is closed.
    pub header_read_timeout_seconds: u32,
    /// A request is answered within this long (408 otherwise).
    pub request_timeout_seconds: u32,
    /// Connections open at once; more are closed as soon as they are accepted.
    pub max_connections: u32,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self { header_read_timeout_seconds: 10, request_timeout_seconds: 30, max_connections: 4096 }
    }
}

impl HttpSettings {
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=300).contains(&self.header_read_timeout_seconds) || !(1..=600).contains(&self.request_timeout_seconds)
        {
            return Err("http.header_read_timeout_seconds must be 1–300 and http.request_timeout_seconds 1–600".into());
        }
        if self.max_connections == 0 {
            return Err("http.max_connections must be at least 1".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::result_large_err)] // figment's own error type, in tests only
    /// Load settings inside a figment jail: a scratch directory and an environment of exactly `env`.
    fn load(toml: Option<&str>, env: &[(&str, &str)]) -> Result<Settings, String> {
        let mut out = None;
        figment::Jail::expect_with(|jail| {
            jail.clear_env();
            for (key, value) in env {
                jail.set_env(key, value);
            }
            if let Some(text) = toml {
                jail.create_file("lifeline.toml", text)?;
            }
            let file = toml.map(|_| Path::new("lifeline.toml"));
            out = Some(Settings::load_from(file, Env::prefixed("LIFELINE_")).map_err(|e| e.to_string()));
            Ok(())
        });
        out.unwrap_or_else(|| Err("the jail did not run".into()))
    }

    #[test]
    fn defaults_run_everything_embedded() {
        let s = load(None, &[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.database_url, "sqlite://lifeline.db");
        assert!(s.smtp_url.is_none() && s.geoip_city.is_none());
        assert_eq!(s.lockout.failed_attempts_before_lock, 5);
    }

    #[test]
    fn environment_overrides_file_and_nests_with_double_underscores() {
        let s = load(
            Some("listen = \"127.0.0.1:9000\"\n[lockout]\nfailed_attempts_before_lock = 7\n"),
            &[
                ("LIFELINE_LISTEN", "127.0.0.1:9100"),
                ("LIFELINE_TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1"),
                ("LIFELINE_CONFIG", "ignored.toml"),
                ("LIFELINE_TEST_POSTGRES_URL", "postgres://ignored"),
            ],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.listen.to_string(), "127.0.0.1:9100");
        assert_eq!(s.lockout.failed_attempts_before_lock, 7);
        assert_eq!(s.trusted_proxies.len(), 2);
        let s = load(None, &[("LIFELINE_LOCKOUT__FAILED_ATTEMPTS_BEFORE_LOCK", "9")]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.lockout.failed_attempts_before_lock, 9);
    }

    #[test]
    fn one_field_of_a_section_can_be_set_alone() {
        let s = load(None, &[("LIFELINE_ASSISTANCE__PER_IP__MAX", "50")]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((s.assistance.per_ip.max, s.assistance.per_ip.window_seconds), (50, 900));
        let s = load(Some("[assistance.global]\nmax = 7\n"), &[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((s.assistance.global.max, s.assistance.global.window_seconds), (7, 60));
    }

    #[test]
    fn digest_and_retention_have_defaults_and_can_be_set() {
        let s = load(None, &[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((s.assistance.digest.individual_per_interval, s.assistance.digest.interval_seconds), (10, 300));
        assert_eq!((s.retention.sign_in_events_days, s.retention.closed_requests_days), (365, 180));
        let s = load(
            None,
            &[
                ("LIFELINE_ASSISTANCE__DIGEST__INDIVIDUAL_PER_INTERVAL", "3"),
                ("LIFELINE_RETENTION__CLOSED_REQUESTS_DAYS", "30"),
            ],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((s.assistance.digest.individual_per_interval, s.assistance.digest.interval_seconds), (3, 300));
        assert_eq!((s.retention.sign_in_events_days, s.retention.closed_requests_days), (365, 30));
    }

    #[test]
    fn each_recovery_action_has_its_own_configurable_level() {
        let s = load(Some("[permissions.reset_mfa]\ndpa = 3\n"), &[("LIFELINE_PERMISSIONS__UNLOCK__DPA", "2")])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((s.permissions.reset_mfa.dpa, s.permissions.reset_mfa.expert), (3, false));
        assert_eq!(s.permissions.unlock.dpa, 2);
        assert!(s.permissions.send_recovery_code.expert, "the defaults stay for the rest");
        let e = load(None, &[("LIFELINE_PERMISSIONS__DISABLE__DPA", "4")]).err().unwrap_or_default();
        assert!(e.contains("permissions.disable.dpa"), "{e}");
        let e = load(Some("[permissions.reset_everything]\ndpa = 1\n"), &[]).err().unwrap_or_default();
        assert!(e.contains("reset_everything"), "{e}");
    }

    #[test]
    fn bad_values_get_clear_errors() {
        type Case<'a> = (Option<&'a str>, &'a [(&'a str, &'a str)], &'a str);
        let cases: [Case; 9] = [
            (None, &[("LIFELINE_ASSISTANCE__DIGEST__INTERVAL_SECONDS", "5")], "digest.interval_seconds"),
            (None, &[("LIFELINE_ASSISTANCE__DIGEST__INDIVIDUAL_PER_INTERVAL", "0")], "individual_per_interval"),
            (None, &[("LIFELINE_RETENTION__SIGN_IN_EVENTS_DAYS", "7")], "retention.sign_in_events_days"),
            (None, &[("LIFELINE_LISTEN", "not-an-address")], "listen"),
            (None, &[("LIFELINE_LOCKOUT__FAILED_ATTEMPTS_BEFORE_LOCK", "0")], "failed_attempts_before_lock"),
            (None, &[("LIFELINE_LOCKOUT__FAILED_ATTEMPTS_BEFORE_LOCK", "many")], "failed_attempts_before_lock"),
            (None, &[("LIFELINE_TRUSTED_PROXIES", "10.0.0.0/99")], "10.0.0.0/99"),
            (Some("no_such_key = 1\n"), &[], "no_such_key"),
            (None, &[("LIFELINE_PUBLIC_URL", "ftp://x")], "public_url"),
        ];
        for (toml, env, needle) in cases {
            match load(toml, env) {
                Ok(_) => panic!("{env:?} {toml:?} should be refused"),
                Err(e) => assert!(e.to_lowercase().contains(needle), "error {e} should mention {needle}"),
            }
        }
    }

    #[test]
    fn secrets_are_redacted_in_debug_output() {
        let s = load(None, &[("LIFELINE_SECRET_KEY", "ab"), ("LIFELINE_SMTP_URL", "smtp://u:hunter2@h")])
            .unwrap_or_else(|e| panic!("{e}"));
        let shown = format!("{s:?}");
        assert!(!shown.contains("hunter2") && shown.contains("<redacted>"));
    }
}
