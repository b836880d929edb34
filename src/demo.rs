//! The demo organisation for `lifeline serve --demo`: one of each kind of person the seeds talk about.
//!
//! Passwords and TOTP secrets are fixed and printed, so that a newcomer can sign in at once (with
//! `oathtool --totp -b SECRET` for the codes). That is exactly why the demo must never hold real data.

use crate::app::App;
use crate::audit::{Actor, AuditEntry};
use crate::authz::{AddPerson, EnrolTotp, Principal};
use crate::domain::{AccountSource, DisplayName, EmailAddress, Grant, LockReason, PersonStatus, Username};
use crate::store::{CredentialStore, DirectoryStore, EventStore, NewPerson};
use crate::totp::TotpSecret;
use anyhow::Context;

pub struct DemoPerson {
    pub role: &'static str,
    pub name: &'static str,
    pub email: &'static str,
    pub username: &'static str,
    pub source: AccountSource,
    pub manager: Option<&'static str>,
    pub password: Option<&'static str>,
    pub totp: Option<&'static str>,
    pub grant: Grant,
    pub locked: bool,
}

const fn grant(dpa_level: u8, expert_mode: bool, auditor: bool, directory_admin: bool) -> Grant {
    Grant { dpa_level, expert_mode, auditor, directory_admin }
}

pub const PEOPLE: &[DemoPerson] = &[
    DemoPerson {
        role: "admin (DPA 3, expert mode, directory admin, auditor)",
        name: "Ada Admin",
        email: "ada.admin@demo.example",
        username: "ada",
        source: AccountSource::Local,
        manager: None,
        password: Some("amber-falcon-harbour-42"),
        totp: Some("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"),
        grant: grant(3, true, true, true),
        locked: false,
    },
    DemoPerson {
        role: "helpdesk admin (DPA 1)",
        name: "Harry Helpdesk",
        email: "harry.helpdesk@demo.example",
        username: "harry",
        source: AccountSource::Local,
        manager: Some("ada.admin@demo.example"),
        password: Some("quiet-meadow-lantern-17"),
        totp: Some("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"),
        grant: grant(1, false, false, false),
        locked: false,
    },
    DemoPerson {
        role: "senior helpdesk admin (DPA 2, expert mode): the second pair of eyes",
        name: "Olga Oncall",
        email: "olga.oncall@demo.example",
        username: "olga",
        source: AccountSource::Local,
        manager: Some("ada.admin@demo.example"),
        password: Some("tangerine-walrus-obelisk-73"),
        totp: Some("5RLN6QGUV5SXFINNI32LZNPWKTTMXIZW"),
        grant: grant(2, true, false, false),
        locked: false,
    },
    DemoPerson {
        role: "line manager of Sam, Lou, Sid and Sue",
        name: "Mona Manager",
        email: "mona.manager@demo.example",
        username: "mona",
        source: AccountSource::Local,
        manager: Some("ada.admin@demo.example"),
        password: Some("copper-river-sketch-88"),
        totp: Some("MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U"),
        grant: grant(0, false, false, false),
        locked: false,
    },
    DemoPerson {
        role: "staff, no authenticator yet (enrols at first sign-in; security questions set)",
        name: "Sam Staff",
        email: "sam.staff@demo.example",
        username: "sam",
        source: AccountSource::Local,
        manager: Some("mona.manager@demo.example"),
        password: Some("violet-tundra-pebble-35"),
        totp: None,
        grant: grant(0, false, false, false),
        locked: false,
    },
    DemoPerson {
        role: "locked after failed sign-ins",
        name: "Lou Locked",
        email: "lou.locked@demo.example",
        username: "lou",
        source: AccountSource::Local,
        manager: Some("mona.manager@demo.example"),
        password: Some("silver-canyon-whistle-63"),
        totp: Some("ONSWG4TFORZWK3DMMVZXG5DFON2GK43U"),
        grant: grant(0, false, false, false),
        locked: true,
    },
    DemoPerson {
        role: "synchronized account (password mastered on premises)",
        name: "Sid Synced",
        email: "sid.synced@demo.example",
        username: "sid",
        source: AccountSource::Synchronized,
        manager: Some("mona.manager@demo.example"),
        password: Some("maple-comet-harvest-21"),
        totp: Some("KRUGS4ZANFZSAYJAMRSW233TMVRXEZLU"),
        grant: grant(0, false, false, false),
        locked: false,
    },
    DemoPerson {
        role: "SSO account (signs in at the identity provider)",
        name: "Sue Sso",
        email: "sue.sso@demo.example",
        username: "sue",
        source: AccountSource::Sso,
        manager: Some("mona.manager@demo.example"),
        password: None,
        totp: None,
        grant: grant(0, false, false, false),
        locked: false,
    },
];

/// Sam's security-question answers, in the order of the default questions.
pub const SAM_ANSWERS: [&str; 3] = ["Hillside Primary", "Leeds", "Dune"];

/// Create the demo organisation unless the directory already has people.
pub async fn seed(app: &App) -> anyhow::Result<()> {
    let (signin, store) = (&app.state.signin, &app.store);
    if store.count_people().await? > 0 {
        return Ok(());
    }
    for p in PEOPLE {
        let email = EmailAddress::parse(p.email)?;
        let new = NewPerson {
            display_name: DisplayName::parse(p.name)?,
            email,
            username: Username::parse(p.username)?,
            source: p.source,
            manager_email: p.manager.map(EmailAddress::parse).transpose()?,
            department: Some(if p.grant.dpa_level > 0 { "IT".into() } else { "Operations".into() }),
            phone: Some("+44 20 7946 0000".into()),
            status: PersonStatus::Active,
            password_hash: None,
            require_change_password: false,
            grant: p.grant,
        };
        let (_, account) = app
            .state
            .directory
            .add_person(app.state.authority.authorize::<AddPerson>(Principal::System, None).await?, new, p.password)
            .await
            .with_context(|| format!("demo person {}", p.email))?;
        if let Some(secret) = p.totp {
            let secret = TotpSecret::from_base32(secret).context("demo TOTP secret")?;
            let proof = app.state.authority.authorize::<EnrolTotp>(Principal::System, Some(account.person_id)).await?;
            signin.enrol_totp_now(proof, account.id, &secret).await?;
        }
        if p.locked {
            let audit = AuditEntry::new(signin.now(), &Actor::System, "account.lock", "locked")
                .person(account.person_id)
                .account(account.id)
                .reason("failures")
                .details("demo data");
            store.lock_account(account.id, LockReason::Failures, signin.now(), &audit).await?;
        }
        // A little history, so that a dossier has something to read: everyone signed in from the office
        // in London over the past days; Lou's lock came from a burst of failures from elsewhere.
        if p.password.is_some() {
            let now = signin.now();
            for days_ago in [1, 2, 5] {
                let at = now - days_ago * 86_400;
                store
                    .record_sign_in(&demo_event(
                        account.id,
                        at,
                        "success",
                        "81.2.69.142",
                        "London",
                        "GB",
                        "81.2.69.0/24",
                    ))
                    .await?;
            }
            if p.locked {
                for minute in 0..5 {
                    let at = now - 3600 + minute * 60;
                    store
                        .record_sign_in(&demo_event(
                            account.id,
                            at,
                            "bad_password",
                            "89.160.20.112",
                            "Linköping",
                            "SE",
                            "AS29518 Bredband2 AB",
                        ))
                        .await?;
                }
            }
        }
        if p.username == "sam" {
            let answers: Vec<String> = SAM_ANSWERS.iter().map(|s| s.to_string()).collect();
            signin.enrol_security_questions(account.id, &answers, true).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        }
    }
    Ok(())
}

fn demo_event(
    account: crate::domain::AccountId,
    at: i64,
    outcome: &str,
    ip: &str,
    city: &str,
    country: &str,
    network: &str,
) -> crate::store::SignInEvent {
    crate::store::SignInEvent {
        account_id: Some(account),
        at,
        outcome: outcome.into(),
        method: if outcome == "success" { "totp".into() } else { "password".into() },
        client_ip: ip.into(),
        city: Some(city.into()),
        country: Some(country.into()),
        asn: None,
        network: network.into(),
        user_agent: "demo data".into(),
    }
}

pub fn print_sign_ins(public_url: &str) {
    println!("Demo organisation — sign in at {public_url}/signin (demo data only: these passwords are public)");
    for p in PEOPLE {
        let password = p.password.unwrap_or("(none: SSO)");
        let code = p.totp.map(|s| format!("code: oathtool --totp -b {s}")).unwrap_or_else(|| "no authenticator".into());
        println!("  {:<8} {:<30} {:<26} {}\n           {}", p.username, p.email, password, p.role, code);
    }
    println!("  Sam's security-question answers (for /reset): {}", SAM_ANSWERS.join(" / "));
    println!("Ask for help at {public_url}/assistance; the admins' emails land in the mail folder as .eml files.");
}
