//! What every service shares: the core. `SignIn`, `Directory` and `Assistance` (and the recovery and
//! delegation services to come) are siblings, each holding a handle to one [`Core`] and only the store
//! capabilities it uses; none reaches another's internals.

use crate::clock::Clock;
use crate::config::Settings;
use crate::crypto::{Keys, PasswordHasher};
use crate::domain::Timestamp;
use crate::geo::Geo;
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
