//! Fixed-window rate limits. The counters live in the database (shared by instances, kept across
//! restarts); the store takes a hit from every bucket of a request or from none (a refused request is
//! charged nothing), and what to tell the client is decided here.

use crate::domain::Timestamp;
use serde::Deserialize;
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Requests allowed per window.
    pub max: u32,
    pub window_seconds: u32,
}

impl RateLimit {
    pub fn validate(&self, name: &str) -> Result<(), String> {
        if self.max == 0 || self.window_seconds == 0 {
            return Err(format!("{name}: max and window_seconds must be at least 1"));
        }
        // Counter windows older than a day are swept away by the periodic clean-up.
        if self.window_seconds > 86_400 {
            return Err(format!("{name}: window_seconds must be at most 86400 (one day)"));
        }
        Ok(())
    }

    /// The start of the window `now` falls in.
    pub fn window_start(&self, now: Timestamp) -> Timestamp {
        now - now.rem_euclid(i64::from(self.window_seconds))
    }

    /// How long a refused client waits: until this window ends.
    pub fn retry_after(&self, now: Timestamp) -> u64 {
        (self.window_start(now) + i64::from(self.window_seconds) - now).max(1).unsigned_abs()
    }
}

/// The per-client bucket an address counts in. An IPv6 client is its /64: one subscriber line or host
/// usually has a whole /64 and can pick a new address from it for every request, so counting single
/// IPv6 addresses would not limit anyone.
pub fn client_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        // An IPv4 client seen through an IPv6 socket is still that IPv4 client.
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() => {
            v6.to_ipv4_mapped().map(|v4| v4.to_string()).unwrap_or_default()
        }
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            format!("{}/64", std::net::Ipv6Addr::from(prefix))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_request_waits_for_the_window_to_end() {
        let limit = RateLimit { max: 3, window_seconds: 60 };
        assert_eq!(limit.window_start(125), 120);
        assert_eq!(limit.retry_after(125), 55);
        assert_eq!(limit.retry_after(179), 1);
        assert_eq!(limit.retry_after(180), 60);
        assert!(RateLimit { max: 0, window_seconds: 60 }.validate("x").is_err());
        assert!(RateLimit { max: 1, window_seconds: 86_401 }.validate("x").is_err());
    }

    #[test]
    fn ipv6_clients_count_per_64_and_ipv4_clients_per_address() {
        let key = |s: &str| client_key(s.parse().unwrap_or_else(|e| panic!("{e}")));
        assert_eq!(key("2001:db8:1:2::17"), "2001:db8:1:2::/64");
        assert_eq!(key("2001:db8:1:2:ffff:ffff:ffff:ffff"), key("2001:db8:1:2::1"));
        assert_ne!(key("2001:db8:1:3::1"), key("2001:db8:1:2::1"));
        assert_eq!(key("81.2.69.142"), "81.2.69.142");
    }
}
