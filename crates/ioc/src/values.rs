//! Indicator values: defanging undone, normalisation by type, type inference for plain lists,
//! and the address checks every loader applies (non-routable and too-wide networks refused).

use std::net::IpAddr;

use ipnet::IpNet;

use crate::IocKind;

/// Undoes common defanging: `[.]`, `(.)`, `{.}`, `[dot]`, `hxxp`, `[:]`.
pub(crate) fn refang(s: &str) -> String {
    let mut t = s.trim().to_owned();
    for (a, b) in [
        ("[.]", "."),
        ("(.)", "."),
        ("{.}", "."),
        ("[dot]", "."),
        ("[:]", ":"),
        ("[://]", "://"),
    ] {
        if t.contains(a) {
            t = t.replace(a, b);
        }
    }
    let lower = t.to_ascii_lowercase();
    if lower.starts_with("hxxp") {
        t = format!("http{}", &t[4..]);
    } else if lower.starts_with("fxp") {
        t = format!("ftp{}", &t[3..]);
    }
    t
}

/// Normalises a value of a (lower-case) type name into an IOC, `None` when it is not valid.
pub(crate) fn normalise(type_name: &str, value: &str) -> Option<(IocKind, String)> {
    let v = value.trim();
    let hex = |len: &[usize]| {
        let h = v.to_ascii_lowercase();
        (len.contains(&h.len()) && h.bytes().all(|c| c.is_ascii_hexdigit())).then_some(h)
    };
    Some(match type_name {
        "md5" => (IocKind::Md5, hex(&[32])?),
        "sha1" => (IocKind::Sha1, hex(&[40])?),
        "sha256" => (IocKind::Sha256, hex(&[64])?),
        "sha512" => (IocKind::Sha512, hex(&[128])?),
        "imphash" => (IocKind::Imphash, hex(&[32])?),
        "hash" => {
            let h = hex(&[32, 40, 64, 128])?;
            let k = match h.len() {
                32 => IocKind::Md5,
                40 => IocKind::Sha1,
                64 => IocKind::Sha256,
                _ => IocKind::Sha512,
            };
            (k, h)
        }
        "domain" | "hostname" | "domain-name" => (IocKind::Domain, normalise_domain(v)?),
        "url" => {
            let u = refang(v);
            if !u.contains("://") && !u.contains('/') {
                // A bare host name filed as a URL (seen in ESET events).
                (IocKind::Domain, normalise_domain(&u)?)
            } else {
                if u.len() < 8 || u.chars().any(char::is_whitespace) {
                    return None;
                }
                (IocKind::Url, u)
            }
        }
        "ip" | "ip-dst" | "ip-src" | "ipv4" | "ipv6" | "cidr" | "ipv4-addr" | "ipv6-addr" => {
            let net = parse_net(&refang(v))?;
            (IocKind::Ip, net_text(&net))
        }
        _ => return None,
    })
}

/// The type names [`IocSetBuilder::add_typed`] knows (lower case), plus the
/// `type` header: a CSV whose first row starts with one of them is a
/// `type,value[,actor]` feed, anything else a plain list of indicators.
pub(crate) fn is_type_name(t: &str) -> bool {
    matches!(
        t.trim().to_ascii_lowercase().as_str(),
        "type"
            | "filename|md5"
            | "filename|sha1"
            | "filename|sha256"
            | "filename|sha512"
            | "domain|ip"
            | "ip-dst|port"
            | "ip-src|port"
            | "md5"
            | "sha1"
            | "sha256"
            | "sha512"
            | "hash"
            | "domain"
            | "hostname"
            | "url"
            | "ip"
            | "ip-dst"
            | "ip-src"
            | "ipv4"
            | "ipv6"
            | "cidr"
            | "ipv4-addr"
            | "ipv6-addr"
            | "domain-name"
    )
}

/// The type of a bare indicator of a plain list, inferred from its form:
/// `url` (has `://`, defanged `hxxp` too), `ip` (address or CIDR), `hash`
/// (32/40/64/128 hex digits), `domain` (dotted host name), else `None`.
pub(crate) fn infer_type(value: &str) -> Option<&'static str> {
    let r = refang(value).to_ascii_lowercase();
    if r.contains("://") || r.starts_with("hxxp") {
        return normalise("url", value).map(|_| "url");
    }
    ["ip", "hash", "domain"]
        .into_iter()
        .find(|t| normalise(t, value).is_some())
}

pub(crate) fn is_ip_type(t: &str) -> bool {
    matches!(
        t,
        "ip" | "ip-dst" | "ip-src" | "ipv4" | "ipv6" | "cidr" | "ipv4-addr" | "ipv6-addr"
    )
}

/// Why an address or network of an IP-typed feed entry (`type` as in
/// [`IocSetBuilder::add_typed`] or a STIX object path type such as
/// `ipv4-addr`) cannot be an indicator: `"network wider than /8"` (`/16`
/// for IPv6; `0.0.0.0/0` would match every address) or `"non-routable
/// address"` (see [`non_routable`]). `None` for usable values, for values
/// that do not parse and for other types. The CSV, MISP and STIX loaders
/// all refuse such entries, counted under `"<type>: <reason>"`.
pub(crate) fn unusable_ip(type_name: &str, value: &str) -> Option<&'static str> {
    if !is_ip_type(type_name) {
        return None;
    }
    let net = parse_net(&refang(value))?;
    let too_wide = match net {
        IpNet::V4(v) => v.prefix_len() < 8,
        IpNet::V6(v) => v.prefix_len() < 16,
    };
    if too_wide {
        Some(match net {
            IpNet::V4(_) => "network wider than /8",
            IpNet::V6(_) => "network wider than /16",
        })
    } else if non_routable(&net) {
        Some("non-routable address")
    } else {
        None
    }
}

/// Private (RFC 1918, RFC 4193), loopback, link-local, unspecified,
/// multicast or broadcast networks, and very wide prefixes (< /8, < /16 for
/// IPv6): never usable as indicators.
pub(crate) fn non_routable(n: &IpNet) -> bool {
    match n {
        IpNet::V4(v) => {
            let a = v.network();
            v.prefix_len() < 8
                || a.is_private()
                || a.is_loopback()
                || a.is_link_local()
                || a.is_unspecified()
                || a.is_multicast()
                || a.is_broadcast()
                || (a.octets()[0] == 100 && (a.octets()[1] & 0xc0) == 64) // 100.64/10 CGNAT
        }
        IpNet::V6(v) => {
            let a = v.network();
            let s0 = a.segments()[0];
            v.prefix_len() < 16
                || a.is_loopback()
                || a.is_unspecified()
                || a.is_multicast()
                || (s0 & 0xfe00) == 0xfc00
                || (s0 & 0xffc0) == 0xfe80
        }
    }
}

pub(crate) fn normalise_domain(v: &str) -> Option<String> {
    let mut d = refang(v).to_ascii_lowercase();
    if let Some(rest) = d.strip_prefix("*.") {
        d = rest.to_owned();
    }
    while d.ends_with('.') {
        d.pop();
    }
    let ok = d.contains('.')
        && d.len() >= 4
        && d.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'-' || c == b'_')
        && !d.starts_with('.')
        && d.parse::<IpAddr>().is_err();
    ok.then_some(d)
}

/// Parses `1.2.3.4`, `::1`, `10.0.0.0/8`, `10.0.0.5/8` (host bits cleared), `::ffff:1.2.3.4`.
pub(crate) fn parse_net(s: &str) -> Option<IpNet> {
    let s = s.trim();
    if s.contains('/') {
        let n: IpNet = s.parse().ok()?;
        let n = match n {
            IpNet::V6(v6) => match v6.addr().to_ipv4_mapped() {
                Some(v4) if v6.prefix_len() >= 96 => {
                    IpNet::V4(ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96).ok()?)
                }
                _ => n,
            },
            IpNet::V4(_) => n,
        };
        return Some(n.trunc());
    }
    let a = parse_addr(s)?;
    Some(IpNet::from(a))
}

/// Parses an address as found in event fields: plain, `::ffff:` mapped (→ IPv4),
/// `[v6]:port`, `v4:port`.
pub(crate) fn parse_addr(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    if s.is_empty() || s.len() > 64 {
        return None;
    }
    if let Ok(a) = s.parse::<IpAddr>() {
        return Some(a.to_canonical());
    }
    if let Ok(sa) = s.parse::<std::net::SocketAddr>() {
        return Some(sa.ip().to_canonical());
    }
    None
}

pub(crate) fn net_text(n: &IpNet) -> String {
    let full = match n {
        IpNet::V4(_) => 32,
        IpNet::V6(_) => 128,
    };
    if n.prefix_len() == full {
        n.addr().to_string()
    } else {
        n.to_string()
    }
}
