//! Telling a person about an unusual successful sign-in (ASVS 5.0 6.3.5): from a country or network their account
//! has not signed in from before, or after a burst of failures from strangers — the facts a dossier's risk flags
//! read (`assistance::dossier::sign_in_alerts`). The email carries a "this wasn't me" link; it, its link's secret
//! and an audit row are written together. The sign-in itself has already succeeded: an alert that cannot be
//! written is logged, never turned into a failed sign-in.

use crate::assistance::notify::{Alarm, Letters, alarm_notice};
use crate::audit::{Actor, AuditEntry};
use crate::domain::AccountId;
use crate::services::Core;
use crate::store::{DirectoryStore, EventStore, RecoveryChange, RecoveryStore, SignInEvent, StoreError};

/// After a successful sign-in recorded as `current` (the event the sign-in wrote, with its place and network):
/// email the person if it looks unusual.
pub(crate) async fn alert_if_unusual(
    core: &Core,
    store: &(impl EventStore + DirectoryStore + RecoveryStore + crate::store::AddressStore + ?Sized),
    letters: &dyn Letters,
    current: &SignInEvent,
) {
    if !core.settings.policy.notify_unusual_sign_ins {
        return;
    }
    let Some(account) = current.account_id else { return };
    if let Err(e) = try_alert(core, store, letters, account, current).await {
        tracing::warn!(account = account.0, error = %e, "the alert about an unusual sign-in could not be queued");
    }
}

async fn try_alert(
    core: &Core,
    store: &(impl EventStore + DirectoryStore + RecoveryStore + crate::store::AddressStore + ?Sized),
    letters: &dyn Letters,
    account: AccountId,
    current: &SignInEvent,
) -> Result<(), StoreError> {
    let now = core.now();
    // The events before this sign-in: the newest success from this address, within the last few seconds (the
    // request that recorded it may have crossed a second), is this one.
    let mut earlier = store.recent_sign_ins(account, 100).await?;
    if let Some(i) = earlier.iter().position(|e| {
        e.outcome == "success" && e.client_ip == current.client_ip && (0..=5).contains(&(current.at - e.at))
    }) {
        earlier.remove(i);
    }
    let reasons = crate::assistance::dossier::sign_in_alerts(current, &earlier, now);
    if reasons.is_empty() {
        return Ok(());
    }
    let Some(record) = store.account(account).await? else { return Ok(()) };
    let Some(person) = store.person(record.person_id).await? else { return Ok(()) };
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
        format!("We are telling you because {}. If this was you, there is nothing to do.", reasons.join("; and ")),
    ];
    let alarm = Alarm {
        subject: "A new sign-in to your account",
        paragraphs,
        reported_as: format!("the sign-in of {}", crate::assistance::dossier::when(now)),
    };
    let to = crate::addresses::of(store, &person).await?;
    let notices = alarm_notice(core, letters, &person, &record, alarm, &to).map_err(StoreError::Corrupt)?;
    let audit = AuditEntry::new(now, &Actor::System, "sign-in.alert", "success")
        .person(person.id)
        .account(account)
        .ip(current.client_ip.clone())
        .details(serde_json::json!({ "method": current.method, "reasons": reasons }).to_string());
    store
        .apply_recovery(&RecoveryChange::Issue { account }, &notices.secrets, &notices.emails, None, &audit, now)
        .await?;
    Ok(())
}
