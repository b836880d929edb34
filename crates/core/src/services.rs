//! What every service shares: the core. `SignIn`, `Directory` and `Assistance` (and the recovery and
//! delegation services to come) are siblings, each holding a handle to one [`Core`] and only the store
//! capabilities it uses; none reaches another's internals.

use crate::assistance::Assistance;
use crate::assistance::notify::Letters;
use crate::authz::Authority;
use crate::clock::Clock;
use crate::config::Settings;
use crate::crypto::{Keys, PasswordHasher};
use crate::directory::Directory;
use crate::domain::Timestamp;
use crate::geo::Geo;
use crate::recovery::Recovery;
use crate::signin::SignIn;
use crate::store::Store;
use std::sync::Arc;

/// The clock, the settings, the keys, the password hasher and the GeoIP databases.
pub struct Core {
    pub settings: Settings,
    pub clock: Arc<dyn Clock>,
    pub keys: Keys,
    pub hasher: PasswordHasher,
    pub geo: Geo,
}

impl Core {
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }
}

/// Every service, over one core and one store: the only place they are made, so no front can build a service
/// (or an `Authority` that makes proofs) over a store of its own.
pub struct Services {
    pub signin: Arc<SignIn>,
    pub directory: Arc<Directory>,
    pub assistance: Arc<Assistance>,
    pub recovery: Arc<Recovery>,
    pub audit_log: Arc<crate::auditing::AuditLog>,
    pub tokens: Arc<crate::tokens::Tokens>,
    pub gauges: Arc<crate::gauges::Gauges>,
    pub team: Arc<crate::team::Team>,
    pub passkeys: Arc<crate::passkeys::Passkeys>,
    pub addresses: Arc<crate::addresses::Addresses>,
    /// The one maker of proofs of authorisation.
    pub authority: Arc<Authority>,
}

pub fn assemble<S: Store + 'static>(core: Arc<Core>, store: Arc<S>, letters: Arc<dyn Letters>) -> Services {
    Services {
        signin: Arc::new(SignIn::new(core.clone(), store.clone(), letters.clone())),
        directory: Arc::new(Directory::new(core.clone(), store.clone())),
        assistance: Arc::new(Assistance::new(core.clone(), store.clone(), letters.clone())),
        recovery: Arc::new(Recovery::new(core.clone(), store.clone(), letters.clone())),
        passkeys: Arc::new(crate::passkeys::Passkeys::new(core.clone(), store.clone(), letters.clone())),
        addresses: Arc::new(crate::addresses::Addresses::new(core.clone(), store.clone(), letters.clone())),
        team: Arc::new(crate::team::Team::new(core.clone(), store.clone(), letters)),
        audit_log: Arc::new(crate::auditing::AuditLog::new(core.clone(), store.clone())),
        tokens: Arc::new(crate::tokens::Tokens::new(core.clone(), store.clone())),
        gauges: Arc::new(crate::gauges::Gauges::new(core.clone(), store.clone())),
        authority: Arc::new(Authority::new(core, store)),
    }
}
