//! Attempts on an account and from a client address: admitted (counted) before they are checked, and always
//! settled — see `policy::lockout` for the decisions and `signin` for the sequence.

use super::{RequestContext, SignIn, SignInError};
use crate::domain::{Account, Timestamp};
use crate::policy::lockout::{AttemptState, Refusal};
use crate::policy::rate_limit::{RateLimit, client_key};
use crate::store::{StoreError, ThrottleStore};

/// Run an attempt to its end even if the request that asked for it goes away (a client that closes the
/// connection, a request timeout): once an attempt is counted, it must settle — give its count back or record
/// its failure — or the account would wait for it. (`policy::lockout::SETTLE_SECONDS` is the backstop for a
/// crash.)
pub(super) async fn settled<T: Send + 'static>(
    attempt: impl std::future::Future<Output = Result<T, SignInError>> + Send + 'static,
) -> Result<T, SignInError> {
    tokio::spawn(attempt).await.map_err(|e| SignInError::Unexpected(format!("a sign-in task failed: {e}")))?
}

/// An attempt admitted on an account: counted as a failure until it proves correct.
pub(super) struct Admitted {
    pub(super) at: Timestamp,
    pub(super) previous_last_failed_at: Option<Timestamp>,
}

/// One failed attempt taken from a client address's window.
pub(crate) struct ClientSlot {
    bucket: String,
    window_start: Timestamp,
}

/// Take one attempt from the client address's window of failed sign-ins, or say how long to wait. Every way
/// of proving who you are from the outside (password, second factor, recovery code, one-time password,
/// temporary access pass, device code, set-password link) draws on this one window, so an address cannot
/// get a fresh budget by switching forms.
pub(crate) async fn reserve_client(
    store: &(impl ThrottleStore + ?Sized),
    limit: RateLimit,
    ctx: &RequestContext,
    now: Timestamp,
) -> Result<Result<ClientSlot, u64>, StoreError> {
    let slot = ClientSlot { bucket: format!("sign-in:{}", client_key(ctx.ip)), window_start: limit.window_start(now) };
    if store.reserve_client_attempt(&slot.bucket, slot.window_start, limit.max).await? {
        Ok(Ok(slot))
    } else {
        Ok(Err(limit.retry_after(now)))
    }
}

/// Give back an attempt that succeeded: only failures count against the address.
pub(crate) async fn release_client(store: &(impl ThrottleStore + ?Sized), slot: &ClientSlot) -> Result<(), StoreError> {
    store.release_client_attempt(&slot.bucket, slot.window_start).await
}

impl SignIn {
    pub(super) async fn reserve_client(
        &self,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<Result<ClientSlot, u64>, SignInError> {
        Ok(reserve_client(&*self.store, self.core.settings.lockout.per_client, ctx, now).await?)
    }

    pub(super) async fn release_client(&self, slot: &ClientSlot) -> Result<(), SignInError> {
        Ok(release_client(&*self.store, slot).await?)
    }

    /// Admit one attempt on `account` (compare-and-set against what was read; re-read and decide again
    /// when another attempt got there first). Heavy contention ends in a refusal rather than a spin.
    pub(super) async fn admit(
        &self,
        account: &Account,
        now: Timestamp,
    ) -> Result<Result<Admitted, Refusal>, SignInError> {
        let policy = &self.core.settings.lockout;
        let mut seen = AttemptState::of(account);
        for _ in 0..8 {
            let next = match policy.admit(&seen, now) {
                Ok(next) => next,
                Err(refusal) => return Ok(Err(refusal)),
            };
            if self.store.admit_attempt(account.id, &seen, &next).await? {
                return Ok(Ok(Admitted { at: now, previous_last_failed_at: seen.last_failed_at }));
            }
            match self.store.account(account.id).await? {
                Some(fresh) => seen = AttemptState::of(&fresh),
                None => break,
            }
        }
        Ok(Err(Refusal::InFlight))
    }

    /// The sign-in event's outcome for an attempt that was not admitted.
    pub(super) fn refused_outcome(refusal: Refusal) -> &'static str {
        match refusal {
            Refusal::Locked { .. } => "locked",
            Refusal::Delayed { .. } | Refusal::InFlight => "delayed",
        }
    }

    /// Wait out the floor that every failed attempt is answered after.
    pub(super) async fn failure_floor(&self, started: std::time::Instant) {
        super::failure_floor(&self.core, started).await
    }
}
