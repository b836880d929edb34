//! Telling a person about an unusual successful sign-in (ASVS 5.0 6.3.5): from a country or network their account
//! has not signed in from before, or after a burst of failures from strangers — the facts a dossier's risk flags
//! read (`assistance::dossier::sign_in_alerts`). The email carries a "this wasn't me" link; it, its link's secret
//! and an audit row are written together. The sign-in itself has already succeeded: an alert that cannot be
//! written is logged, never turned into a failed sign-in.

use super::RequestContext;
use crate::assistance::notify::{Body, Letters, Notice};
use crate::audit::{Actor, AuditEntry};
use crate::crypto::random_token;
use crate::domain::AccountId;
use crate::email::OutgoingEmail;
use crate::services::Core;
use crate::store::{DirectoryStore, EventStore, NewSecret, RecoveryChange, RecoveryStore, SecretKind, StoreError};

/// After a successful sign-in of `account` by `method` from `ctx`: email the person if it looks unusual.
pub(crate) async fn alert_if_unusual(
    core: &Core,
    store: &(impl EventStore + DirectoryStore + RecoveryStore + ?Sized),
    letters: &dyn Letters,
    account: AccountId,
    method: &str,
    ctx: &RequestContext,
) {
    if !core.settings.policy.notify_unusual_sign_ins {
        return;
    }
    if let Err(e) = try_alert(core, store, letters, account, method, ctx).await {
        tracing::warn!(account = account.0, error = %e, "the alert about an unusual sign-in could not be queued");
    }
}

async fn try_alert(
    core: &Core,
    store: &(impl EventStore + DirectoryStore + RecoveryStore + ?Sized),
    letters: &dyn Letters,
    account: AccountId,
    method: &str,
    ctx: &RequestContext,
) -> Result<(), StoreError> {
    let now = core.now();
    let current = super::sign_in_event(core, Some(account), "success", method, ctx);
    // The events before this sign-in: the newest success from this address at this moment is this one.
    let mut earlier = store.recent_sign_ins(account, 100).await?;
    if let Some(i) =
        earlier.iter().position(|e| e.outcome == "success" && e.at == current.at && e.client_ip == current.client_ip)
    {
        earlier.remove(i);
    }
    let reasons = crate::assistance::dossier::sign_in_alerts(&current, &earlier, now);
    if reasons.is_empty() {
        return Ok(());
    }
    let Some(record) = store.account(account).await? else { return Ok(()) };
    let Some(person) = store.person(record.person_id).await? else { return Ok(()) };
    let settings = &core.settings;
    let not_me = random_token();
    let not_me_url = format!("{}/not-me?token={not_me}", settings.public_url.trim_end_matches('/'));
    let place = crate::geo::Location {
        city: current.city.clone(),
        country: current.country.clone(),
        asn: current.asn,
        network: String::new(),
    }
    .place();
    let paragraphs = vec![
        format!(
            "Someone signed in to your account {} on {} from {place} (network {}, IP address {}).",
            record.username,
            crate::assistance::dossier::when(now),
            current.network,
            current.client_ip
        ),
        format!("We are telling you because {}.", reasons.join("; and ")),
        "If this was you, there is nothing to do. If it was not, someone has your sign-in details: use the link \
         below to lock your account at once, then contact your helpdesk."
            .into(),
    ];
    let greeting = format!("Hello {},", person.display_name);
    let notice = Notice {
        greeting: &greeting,
        paragraphs: &paragraphs,
        code: None,
        link: None,
        not_me: Some(&not_me_url),
        organisation: &settings.organisation,
    };
    let Body { text, html } = letters.notice(&notice).map_err(StoreError::Corrupt)?;
    let domain = crate::email::sender_domain(&settings.mail_from);
    let subject = format!("{}: a new sign-in to your account", settings.organisation);
    let email = OutgoingEmail::new(&domain, person.email.as_str(), &subject, text, html);
    let secret = NewSecret {
        account,
        kind: SecretKind::NotMe,
        hash: crate::recovery::link_hash(core, &not_me),
        expires_at: now + i64::from(settings.recovery.not_me_days) * 86_400,
        multi_use: false,
        action: Some(format!("the sign-in of {}", crate::assistance::dossier::when(now))),
        reference: None,
    };
    let audit = AuditEntry::new(now, &Actor::System, "sign-in.alert", "success")
        .person(person.id)
        .account(account)
        .ip(current.client_ip.clone())
        .details(serde_json::json!({ "method": method, "reasons": reasons }).to_string());
    store.apply_recovery(&RecoveryChange::Issue { account }, &[secret], &[email], None, &audit, now).await?;
    Ok(())
}
