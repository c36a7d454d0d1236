//! Where the operator may send requests: the endpoint policy.
//!
//! Tenants choose the URLs the operator calls (`spec.endpoint`, `spec.invitation.webhook.url`),
//! so without a policy the shared operator would post signed requests to cluster-internal
//! services, its own loopback or the cloud's metadata service on their behalf. The policy is
//! enforced on the addresses a host name resolves to, at connection time (a DNS answer that
//! changes between a check and the connection cannot get around it), and on IP literals before
//! anything is sent. Redirects are never followed: a 3xx would otherwise carry the request to a
//! URL no one checked.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use reqwest::{
    Url,
    dns::{Addrs, Name, Resolve, Resolving},
};

/// What a cluster admin allows beyond the public internet: one `--endpoint-allowlist` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AllowEntry {
    /// Addresses in this network, e.g. `127.0.0.0/8` or `fd00::/8`; a bare address is a /32
    /// (or /128).
    Network {
        /// The network's first address.
        address: IpAddr,
        /// Its prefix length.
        prefix: u8,
    },
    /// This host name, whatever it resolves to (e.g. an in-cluster gateway the admin runs).
    Host(String),
    /// Every host name under this domain: `*.example.com` allows `api.example.com`.
    Domain(String),
}

impl std::str::FromStr for AllowEntry {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let invalid = || {
            format!(
                "{text:?} is not an allowlist entry: use a network (127.0.0.0/8, ::1/128), an \
                 address, a host name (devcenter-gw.payments.svc) or *.domain"
            )
        };
        if let Some((address, prefix)) = text.split_once('/') {
            let address: IpAddr = address.parse().map_err(|_| invalid())?;
            let prefix: u8 = prefix.parse().map_err(|_| invalid())?;
            let max = if address.is_ipv4() { 32 } else { 128 };
            if prefix > max {
                return Err(invalid());
            }
            return Ok(AllowEntry::Network { address, prefix });
        }
        if let Ok(address) = text.parse::<IpAddr>() {
            let prefix = if address.is_ipv4() { 32 } else { 128 };
            return Ok(AllowEntry::Network { address, prefix });
        }
        let host_name = |name: &str| {
            !name.is_empty()
                && name.split('.').all(|label| {
                    !label.is_empty()
                        && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                })
        };
        match text.strip_prefix("*.") {
            Some(domain) if host_name(domain) => Ok(AllowEntry::Domain(domain.to_lowercase())),
            None if host_name(text) => Ok(AllowEntry::Host(text.to_lowercase())),
            _ => Err(invalid()),
        }
    }
}

impl AllowEntry {
    fn allows_address(&self, address: IpAddr) -> bool {
        let AllowEntry::Network {
            address: network,
            prefix,
        } = self
        else {
            return false;
        };
        let (network, address, bits) = match (network, canonical(address)) {
            (IpAddr::V4(n), IpAddr::V4(a)) => (u32::from(*n).into(), u32::from(a).into(), 32),
            (IpAddr::V6(n), IpAddr::V6(a)) => (u128::from(*n), u128::from(a), 128),
            _ => return false,
        };
        let shift = bits - u32::from(*prefix);
        shift >= bits || network >> shift == address >> shift
    }

    fn allows_host(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_lowercase();
        match self {
            AllowEntry::Host(name) => host == *name,
            AllowEntry::Domain(domain) => host
                .strip_suffix(domain.as_str())
                .is_some_and(|rest| rest.ends_with('.')),
            AllowEntry::Network { .. } => false,
        }
    }
}

/// The operator's endpoint policy: the public internet, plus what the allowlist names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointPolicy {
    /// Whether every address is allowed (only for clients outside the shared operator).
    any_address: bool,
    allowlist: Vec<AllowEntry>,
}

impl Default for EndpointPolicy {
    /// The operator's default: public addresses only.
    fn default() -> Self {
        Self::allowing(Vec::new())
    }
}

/// A request the endpoint policy refuses. Its text names the policy and what the tenant wrote,
/// never what resolution or a connection found (that would make the operator a probe).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PolicyRefusal(String);

const REFUSED_HOST: &str = "the endpoint's host resolves to no address the operator's endpoint \
     policy allows (loopback, private, link-local and metadata addresses are refused unless the \
     cluster admin allows them with --endpoint-allowlist)";

impl EndpointPolicy {
    /// Public addresses, plus whatever `allowlist` names.
    pub fn allowing(allowlist: Vec<AllowEntry>) -> Self {
        Self {
            any_address: false,
            allowlist,
        }
    }

    /// Every address: for a client a user runs against an endpoint of their own choosing (the
    /// `plan`/`state` commands, tests), never for the operator, which serves many tenants.
    pub fn any_address() -> Self {
        Self {
            any_address: true,
            allowlist: Vec::new(),
        }
    }

    /// Whether `host` may be reached at `address`.
    pub fn allows(&self, host: &str, address: IpAddr) -> bool {
        self.any_address
            || self.allowlist.iter().any(|entry| entry.allows_host(host))
            || self
                .allowlist
                .iter()
                .any(|entry| entry.allows_address(address))
            || forbidden_class(address).is_none()
    }

    /// Checks what can be checked before resolving: the scheme (https when `https_only`) and a
    /// host given as an IP address.
    pub fn check_url(&self, url: &Url, https_only: bool) -> Result<(), PolicyRefusal> {
        match url.scheme() {
            "https" => {}
            "http" if !https_only => {}
            "http" => {
                return Err(PolicyRefusal(
                    "a Production application's endpoint must be an https:// URL: TLS protects \
                     the Agent-Tokens in the answers"
                        .to_owned(),
                ));
            }
            other => {
                return Err(PolicyRefusal(format!(
                    "the scheme {other:?} is not http or https"
                )));
            }
        }
        let Some(host) = url.host_str() else {
            return Err(PolicyRefusal("the URL has no host".to_owned()));
        };
        // IPv6 literals come bracketed; a host name is checked once it resolves.
        let Ok(address) = host.trim_start_matches('[').trim_end_matches(']').parse() else {
            return Ok(());
        };
        if self.allows("", address) {
            return Ok(());
        }
        let class = forbidden_class(address).unwrap_or("reserved");
        Err(PolicyRefusal(format!(
            "{address} is a {class} address, which the operator's endpoint policy refuses \
             unless the cluster admin allows it with --endpoint-allowlist"
        )))
    }

    /// An HTTP client that connects only where this policy allows, follows no redirect and
    /// uses no proxy (a proxy would resolve the host itself, out of the policy's sight).
    pub fn http_client(
        self: &Arc<Self>,
        timeout: Duration,
        https_only: bool,
    ) -> reqwest::Result<reqwest::Client> {
        reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .https_only(https_only)
            .dns_resolver(PolicyResolver {
                policy: self.clone(),
            })
            .build()
    }
}

/// The error chain of a failed request holds a [`PolicyRefusal`] if the policy refused it.
pub fn refusal_in<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a PolicyRefusal> {
    let mut source = Some(error);
    while let Some(cause) = source {
        if let Some(refusal) = cause.downcast_ref::<PolicyRefusal>() {
            return Some(refusal);
        }
        source = cause.source();
    }
    None
}

/// Resolves with the system resolver and keeps only the addresses the policy allows.
struct PolicyResolver {
    policy: Arc<EndpointPolicy>,
}

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let resolved = tokio::net::lookup_host((host.as_str(), 0)).await;
            // A name that does not resolve and one that resolves only to refused addresses
            // look the same to the tenant: otherwise the error would tell which internal
            // names exist. The admin sees the difference at debug level.
            let allowed: Vec<SocketAddr> = match resolved {
                Ok(addresses) => addresses
                    .filter(|address| {
                        let allowed = policy.allows(&host, address.ip());
                        if !allowed {
                            tracing::debug!(%host, %address, "endpoint address refused by policy");
                        }
                        allowed
                    })
                    .collect(),
                Err(error) => {
                    tracing::debug!(%host, %error, "endpoint host does not resolve");
                    Vec::new()
                }
            };
            if allowed.is_empty() {
                let refusal: Box<dyn std::error::Error + Send + Sync> =
                    Box::new(PolicyRefusal(REFUSED_HOST.to_owned()));
                return Err(refusal);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// An IPv6 address that embeds an IPv4 one (mapped, or NAT64) is judged as that IPv4 address.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None if v6.segments()[..6] == [0x64, 0xff9b, 0, 0, 0, 0] => {
                let [.., a, b, c, d] = v6.octets();
                IpAddr::V4(Ipv4Addr::new(a, b, c, d))
            }
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// Which refused class `address` falls in, if any.
pub fn forbidden_class(address: IpAddr) -> Option<&'static str> {
    match canonical(address) {
        IpAddr::V4(v4) => v4_class(v4),
        IpAddr::V6(v6) => v6_class(v6),
    }
}

fn v4_class(v4: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, d] = v4.octets();
    Some(match (a, b) {
        // Cloud metadata services: AWS, GCP, Azure, OpenStack; Alibaba Cloud; Oracle Cloud.
        _ if [a, b, c, d] == [169, 254, 169, 254]
            || [a, b, c, d] == [100, 100, 100, 200]
            || [a, b, c, d] == [192, 0, 0, 192] =>
        {
            "metadata"
        }
        (0, _) => "unspecified",
        (127, _) => "loopback",
        (10, _) | (192, 168) => "private",
        (172, 16..=31) => "private",
        (169, 254) => "link-local",
        (100, 64..=127) => "shared (carrier-grade NAT)",
        (192, 0) if c == 0 => "reserved",
        (198, 18..=19) => "reserved",
        (224..=239, _) => "multicast",
        (240..=255, _) => "reserved",
        _ => return None,
    })
}

fn v6_class(v6: Ipv6Addr) -> Option<&'static str> {
    let first = v6.segments()[0];
    Some(match first {
        // AWS's IPv6 metadata address.
        _ if v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) => "metadata",
        _ if v6.is_unspecified() => "unspecified",
        _ if v6.is_loopback() => "loopback",
        0xfc00..=0xfdff => "private",
        0xfe80..=0xfebf => "link-local",
        // Site-local, deprecated but still routed by some networks.
        0xfec0..=0xfeff => "private",
        0xff00..=0xffff => "multicast",
        // 6to4 embeds an IPv4 address: judged by it.
        0x2002 => {
            let [_, _, a, b, c, d, ..] = v6.octets();
            return v4_class(Ipv4Addr::new(a, b, c, d));
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn internal_and_metadata_addresses_are_refused_by_default() {
        let policy = EndpointPolicy::default();
        for refused in [
            "127.0.0.1",
            "127.3.4.5",
            "10.96.0.1",
            "172.20.0.5",
            "192.168.1.1",
            "169.254.169.254",
            "169.254.1.1",
            "100.100.100.200",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "::",
            "fd00:ec2::254",
            "fd12:3456::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "2002:7f00:1::",
            "224.0.0.1",
        ] {
            assert!(!policy.allows("example.com", ip(refused)), "{refused}");
        }
        for public in [
            "203.0.113.7",
            "8.8.8.8",
            "2001:db8::1",
            "172.32.0.1",
            "100.128.0.1",
        ] {
            assert!(policy.allows("example.com", ip(public)), "{public}");
        }
        assert_eq!(forbidden_class(ip("169.254.169.254")), Some("metadata"));
    }

    #[test]
    fn the_allowlist_admits_networks_and_hosts() {
        let entries: Vec<AllowEntry> = ["127.0.0.0/8", "::1", "gw.payments.svc", "*.corp.example"]
            .iter()
            .map(|e| e.parse().unwrap())
            .collect();
        let policy = EndpointPolicy::allowing(entries);
        assert!(policy.allows("localhost", ip("127.0.0.1")));
        assert!(policy.allows("localhost", ip("::1")));
        assert!(policy.allows("", ip("::ffff:127.0.0.1")));
        assert!(!policy.allows("", ip("10.0.0.1")));
        assert!(policy.allows("gw.payments.svc", ip("10.0.0.1")));
        assert!(policy.allows("GW.payments.svc.", ip("10.0.0.1")));
        assert!(policy.allows("api.corp.example", ip("10.0.0.1")));
        assert!(!policy.allows("corp.example", ip("10.0.0.1")));
        assert!(!policy.allows("evilcorp.example", ip("10.0.0.1")));
        assert!(!policy.allows("gw.payments.svc.evil", ip("169.254.169.254")));
    }

    #[test]
    fn allowlist_entries_are_checked() {
        for bad in [
            "127.0.0.0/33",
            "not a host",
            "*.",
            "",
            "http://x",
            "10.0.0.0/x",
        ] {
            let error = bad.parse::<AllowEntry>().unwrap_err();
            assert!(error.contains("is not an allowlist entry"), "{error}");
        }
        assert_eq!(
            "0.0.0.0/0".parse::<AllowEntry>().unwrap(),
            AllowEntry::Network {
                address: ip("0.0.0.0"),
                prefix: 0
            }
        );
        let everything = EndpointPolicy::allowing(vec!["0.0.0.0/0".parse().unwrap()]);
        assert!(everything.allows("", ip("10.1.2.3")));
    }

    #[test]
    fn literal_addresses_and_schemes_are_checked_before_sending() {
        let policy = EndpointPolicy::default();
        let check = |url: &str, https_only| policy.check_url(&url.parse().unwrap(), https_only);
        let refused = check("http://169.254.169.254/latest", false).unwrap_err();
        assert!(
            refused.to_string().contains("is a metadata address"),
            "{refused}"
        );
        assert!(check("http://[::1]:8080/", false).is_err());
        assert_eq!(check("https://203.0.113.7/", true), Ok(()));
        assert_eq!(check("http://devcenter.example.com/", false), Ok(()));
        let plain = check("http://devcenter.example.com/", true).unwrap_err();
        assert!(
            plain.to_string().contains("must be an https:// URL"),
            "{plain}"
        );
    }
}
