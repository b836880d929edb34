//! Where a request comes from: the client IP (socket peer, or the right-most untrusted address of
//! `X-Forwarded-For` when the peer is a trusted proxy), and its city, country and network from MaxMind
//! DB files (GeoIP2/GeoLite2 City and ASN). Without databases every location reads "unknown"; without
//! an ASN record the network is the address's /24 (IPv4) or /48 (IPv6) prefix.

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use maxminddb::{Reader, geoip2};
use std::net::IpAddr;
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct Location {
    pub city: Option<String>,
    /// ISO 3166 alpha-2 code, e.g. "GB".
    pub country: Option<String>,
    pub asn: Option<u32>,
    /// "AS1221 Telstra Pty Ltd", or the prefix "81.2.69.0/24" when no ASN is known.
    pub network: String,
}

impl Location {
    pub fn place(&self) -> String {
        match (&self.city, &self.country) {
            (Some(city), Some(country)) => format!("{city}, {country}"),
            (None, Some(country)) => country.clone(),
            (Some(city), None) => city.clone(),
            (None, None) => "unknown".into(),
        }
    }
}

#[derive(Default)]
pub struct Geo {
    city: Option<Reader<Vec<u8>>>,
    asn: Option<Reader<Vec<u8>>>,
}

#[derive(Debug, thiserror::Error)]
#[error("GeoIP database {path}: {message}")]
pub struct GeoError {
    path: String,
    message: String,
}

fn open(path: &Path) -> Result<Reader<Vec<u8>>, GeoError> {
    Reader::open_readfile(path).map_err(|e| GeoError { path: path.display().to_string(), message: e.to_string() })
}

impl Geo {
    pub fn open(city: Option<&Path>, asn: Option<&Path>) -> Result<Self, GeoError> {
        Ok(Self { city: city.map(open).transpose()?, asn: asn.map(open).transpose()? })
    }

    pub fn locate(&self, ip: IpAddr) -> Location {
        let mut location = Location { network: prefix(ip).to_string(), ..Default::default() };
        if let Some(reader) = &self.city
            && let Ok(result) = reader.lookup(ip)
            && let Ok(Some(record)) = result.decode::<geoip2::City>()
        {
            location.city = record.city.names.english.map(str::to_owned);
            location.country = record.country.iso_code.map(str::to_owned);
        }
        if let Some(reader) = &self.asn
            && let Ok(result) = reader.lookup(ip)
            && let Ok(Some(record)) = result.decode::<geoip2::Asn>()
            && let Some(number) = record.autonomous_system_number
        {
            location.asn = Some(number);
            location.network = match record.autonomous_system_organization {
                Some(org) => format!("AS{number} {org}"),
                None => format!("AS{number}"),
            };
        }
        location
    }
}

/// The /24 or /48 that stands for an unknown network.
pub fn prefix(ip: IpAddr) -> IpNet {
    match ip {
        IpAddr::V4(v4) => IpNet::V4(Ipv4Net::new(v4, 24).map(|n| n.trunc()).unwrap_or_else(|_| Ipv4Net::from(v4))),
        IpAddr::V6(v6) => IpNet::V6(Ipv6Net::new(v6, 48).map(|n| n.trunc()).unwrap_or_else(|_| Ipv6Net::from(v6))),
    }
}

/// The client's address: the peer, unless the peer is a trusted proxy; then walk `X-Forwarded-For`
/// from the right and take the first address that is not itself a trusted proxy. Garbage in the header
/// stops the walk at the last good address (a client can write anything to the left of what its
/// proxies appended).
pub fn client_ip(peer: IpAddr, forwarded_for: &[&str], trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(&canonical(*ip)));
    if !is_trusted(&peer) {
        return canonical(peer);
    }
    let mut current = peer;
    for hop in forwarded_for.iter().rev().flat_map(|h| h.rsplit(',')) {
        match hop.trim().parse::<IpAddr>() {
            Ok(ip) => {
                current = ip;
                if !is_trusted(&ip) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    canonical(current)
}

/// IPv4-mapped IPv6 addresses (from dual-stack sockets) become plain IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn testdata(name: &str) -> std::path::PathBuf {
        // The test databases live with the workspace's tests (tests/data/geoip), two levels up.
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/geoip").join(name)
    }

    #[test]
    fn client_ip_trusts_only_configured_proxies() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap_or_else(|e| panic!("{e}"))];
        assert_eq!(client_ip(ip("203.0.113.9"), &["81.2.69.142"], &trusted), ip("203.0.113.9"));
        assert_eq!(client_ip(ip("10.0.0.2"), &["81.2.69.142"], &trusted), ip("81.2.69.142"));
        assert_eq!(client_ip(ip("10.0.0.2"), &["1.2.3.4, 81.2.69.142, 10.0.0.7"], &trusted), ip("81.2.69.142"));
        assert_eq!(client_ip(ip("10.0.0.2"), &["1.2.3.4", "81.2.69.142"], &trusted), ip("81.2.69.142"));
        assert_eq!(client_ip(ip("10.0.0.2"), &["garbage, 10.0.0.9"], &trusted), ip("10.0.0.9"));
        assert_eq!(client_ip(ip("10.0.0.2"), &[], &trusted), ip("10.0.0.2"));
        assert_eq!(client_ip(ip("::ffff:81.2.69.142"), &[], &trusted), ip("81.2.69.142"));
    }

    #[test]
    fn locations_come_from_the_maxmind_test_databases() {
        let geo = Geo::open(Some(&testdata("GeoIP2-City-Test.mmdb")), Some(&testdata("GeoLite2-ASN-Test.mmdb")))
            .unwrap_or_else(|e| panic!("{e}"));
        let london = geo.locate(ip("81.2.69.142"));
        assert_eq!((london.city.as_deref(), london.country.as_deref()), (Some("London"), Some("GB")));
        assert_eq!(london.network, "81.2.69.0/24");
        let sweden = geo.locate(ip("89.160.20.112"));
        assert_eq!((sweden.city.as_deref(), sweden.country.as_deref()), (Some("Linköping"), Some("SE")));
        let telstra = geo.locate(ip("1.128.0.1"));
        assert_eq!((telstra.asn, telstra.network.as_str()), (Some(1221), "AS1221 Telstra Pty Ltd"));
        let nowhere = Geo::default().locate(ip("2001:db8::1"));
        assert_eq!((nowhere.place().as_str(), nowhere.network.as_str()), ("unknown", "2001:db8::/48"));
    }

    #[test]
    fn a_missing_database_is_a_clear_error() {
        let err =
            Geo::open(Some(Path::new("/nonexistent.mmdb")), None).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("/nonexistent.mmdb"));
    }
}
