//! Compiled lookups: hash set, per-prefix-length network tables, one Aho-Corasick automaton.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use ipnet::IpNet;
use tracehunt_event::Event;

use crate::{parse_addr, parse_net, FeedFormat, Ioc, IocKind, IocSet, MultiActor};

/// Event fields searched for domain, URL and IPv4 IOCs as text (names compare ASCII
/// case-insensitively, spaces ignored): Sysmon 22 `QueryName`/`QueryResults`, Sysmon 3
/// `DestinationHostname`/`SourceHostname`, process creation `CommandLine`/`ParentCommandLine`,
/// PowerShell 4104 `ScriptBlockText`, 4103 `Payload`/`ContextInfo`, classic PowerShell
/// `HostApplication`, registry `Details`, URL-like fields, and Zeek's `query` (dns),
/// `server_name` (ssl), `host` and `uri` (http).
pub const TEXT_FIELDS: &[&str] = &[
    "QueryName",
    "QueryResults",
    "DestinationHostname",
    "SourceHostname",
    "CommandLine",
    "ParentCommandLine",
    "ScriptBlockText",
    "Payload",
    "ContextInfo",
    "HostApplication",
    "Details",
    "Url",
    "URL",
    "RequestUrl",
    "cs-uri-stem",
    "c-uri",
    "TargetUrl",
    "ServiceFileName",
    "ImagePath",
    "query",
    "server_name",
    "host",
    "uri",
];

#[derive(Clone, Copy)]
enum PatKind {
    Domain,
    /// A URL with a scheme: a prefix ending at a non-alphanumeric byte.
    Url,
    /// A scheme-less `host/path` URL trail (maltrail): the host starts at a boundary, the
    /// path ends at a segment boundary unless the trail ends with `/`, `?` or `=`.
    HostPath,
    /// A path-only URL trail (`/dir/x.php`, maltrail): it must start a URL path — the field's
    /// first byte, or right after `scheme://host[:port]`.
    Path,
    Ipv4,
}

/// Whether a URL trail ending at `end` of `b` stops at a segment boundary (or needs none).
fn url_prefix_end(pattern_last: Option<u8>, b: &[u8], end: usize) -> bool {
    matches!(pattern_last, Some(b'/' | b'?' | b'=' | b'&'))
        || !b
            .get(end)
            .is_some_and(|&c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// Whether `start` of `b` is where a URL path begins: the start of the text, or right after
/// `scheme://host[:port]`.
fn starts_url_path(b: &[u8], start: usize) -> bool {
    if start == 0 {
        return true;
    }
    let pre = &b[..start];
    let Some(p) = pre.windows(3).rposition(|w| w == b"://") else {
        return false;
    };
    let host = &pre[p + 3..];
    !host.is_empty()
        && host
            .iter()
            .all(|&c| domain_byte(c) || matches!(c, b'.' | b':' | b'[' | b']' | b'@'))
}

pub(crate) struct Matcher {
    hashes: HashMap<String, Vec<usize>>,
    v4: HashMap<(u8, u32), Vec<usize>>,
    v4_lens: Vec<u8>,
    v6: HashMap<(u8, u128), Vec<usize>>,
    v6_lens: Vec<u8>,
    ac: Option<AhoCorasick>,
    /// Pattern id → (IOC index, boundary rule).
    pats: Vec<(usize, PatKind)>,
}

pub(crate) fn build(iocs: Vec<Ioc>, conjunctions: Vec<Vec<usize>>) -> IocSet {
    let mut hashes: HashMap<String, Vec<usize>> = HashMap::new();
    let mut v4: HashMap<(u8, u32), Vec<usize>> = HashMap::new();
    let mut v6: HashMap<(u8, u128), Vec<usize>> = HashMap::new();
    let mut v4_lens = HashSet::new();
    let mut v6_lens = HashSet::new();
    let mut patterns: Vec<String> = Vec::new();
    let mut pats = Vec::new();
    for (i, ioc) in iocs.iter().enumerate() {
        match ioc.kind {
            k if k.is_hash() => hashes.entry(ioc.value.clone()).or_default().push(i),
            IocKind::Ip => {
                let Some(net) = parse_net(&ioc.value) else {
                    continue;
                };
                match net {
                    IpNet::V4(n) => {
                        v4_lens.insert(n.prefix_len());
                        v4.entry((n.prefix_len(), u32::from(n.network())))
                            .or_default()
                            .push(i);
                        if n.prefix_len() == 32 {
                            patterns.push(n.addr().to_string());
                            pats.push((i, PatKind::Ipv4));
                        }
                    }
                    IpNet::V6(n) => {
                        v6_lens.insert(n.prefix_len());
                        v6.entry((n.prefix_len(), u128::from(n.network())))
                            .or_default()
                            .push(i);
                    }
                }
            }
            IocKind::Domain => {
                patterns.push(ioc.value.clone());
                pats.push((i, PatKind::Domain));
            }
            IocKind::Url => {
                patterns.push(ioc.value.clone());
                let kind = if ioc.value.contains("://") {
                    PatKind::Url
                } else if ioc.value.starts_with('/') {
                    PatKind::Path
                } else {
                    PatKind::HostPath
                };
                pats.push((i, kind));
            }
            _ => {}
        }
    }
    let ac = if patterns.is_empty() {
        None
    } else {
        AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .build(&patterns)
            .ok()
    };
    let mut v4_lens: Vec<u8> = v4_lens.into_iter().collect();
    v4_lens.sort_unstable_by(|a, b| b.cmp(a));
    let mut v6_lens: Vec<u8> = v6_lens.into_iter().collect();
    v6_lens.sort_unstable_by(|a, b| b.cmp(a));
    let listing = multi_actor(&iocs);
    IocSet {
        iocs,
        conjunctions,
        listing,
        m: Matcher {
            hashes,
            v4,
            v4_lens,
            v6,
            v6_lens,
            ac,
            pats,
        },
    }
}

/// Per feed format: actor-tied values, and those listed under 2+ distinct actor names.
fn multi_actor(iocs: &[Ioc]) -> BTreeMap<FeedFormat, MultiActor> {
    let mut out: BTreeMap<FeedFormat, MultiActor> = BTreeMap::new();
    for ioc in iocs {
        let mut names: Vec<&str> = Vec::new();
        let mut formats: Vec<FeedFormat> = Vec::new();
        for o in &ioc.origins {
            for a in &o.actors {
                if !names.contains(&a.name.as_str()) {
                    names.push(&a.name);
                }
                if !formats.contains(&o.source.format) {
                    formats.push(o.source.format);
                }
            }
        }
        for f in formats {
            let m = out.entry(f).or_default();
            m.values += 1;
            if names.len() > 1 {
                m.multi += 1;
            }
        }
    }
    out
}

/// ASCII case-insensitive equality ignoring spaces (the project's field-name rule).
fn name_eq(a: &str, b: &str) -> bool {
    let mut x = a.bytes().filter(|c| *c != b' ');
    let mut y = b.bytes().filter(|c| *c != b' ');
    loop {
        match (x.next(), y.next()) {
            (None, None) => return true,
            (Some(p), Some(q)) if p.eq_ignore_ascii_case(&q) => {}
            _ => return false,
        }
    }
}

fn ends_with_ci(s: &str, suffix: &str) -> bool {
    s.len() >= suffix.len()
        && s.as_bytes()[s.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes())
}

fn is_hash_field(name: &str) -> bool {
    name.as_bytes()
        .windows(4)
        .any(|w| w.eq_ignore_ascii_case(b"hash"))
        || ["md5", "sha1", "sha256", "sha512", "imphash"]
            .iter()
            .any(|n| name.eq_ignore_ascii_case(n))
}

fn is_ip_field(name: &str) -> bool {
    // Zeek's connection endpoints: `id.resp_h`, `id.orig_h` (OTRF: `id_resp_h`).
    [
        "ip", "address", "ipv4", "ipv6", "ipaddr", "resp_h", "orig_h",
    ]
    .iter()
    .any(|s| ends_with_ci(name, s))
}

fn is_text_field(name: &str) -> bool {
    TEXT_FIELDS.iter().any(|f| name_eq(name, f))
}

fn hash_kind(alg: &str) -> Option<IocKind> {
    let a: String = alg
        .bytes()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase() as char)
        .collect();
    Some(match a.as_str() {
        "md5" => IocKind::Md5,
        "sha1" => IocKind::Sha1,
        "sha256" => IocKind::Sha256,
        "sha512" => IocKind::Sha512,
        "imphash" => IocKind::Imphash,
        _ => return None,
    })
}

fn domain_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-' || c == b'_'
}

impl Matcher {
    /// Raw hits `(ioc, field, matched text)`, first per IOC.
    pub(crate) fn scan(&self, iocs: &[Ioc], ev: &Event) -> Vec<(usize, String, String)> {
        let mut out: Vec<(usize, String, String)> = Vec::new();
        let push = |out: &mut Vec<(usize, String, String)>, i: usize, f: &str, m: &str| {
            if !out.iter().any(|h| h.0 == i) {
                out.push((i, f.to_owned(), m.to_owned()));
            }
        };
        let mut buf = String::new();
        for (name, value) in ev.fields() {
            if value.is_null_or_empty() {
                continue;
            }
            let text = value.to_text();
            if !self.hashes.is_empty() && is_hash_field(name) {
                let implied = hash_kind(name);
                for tok in text.split([',', ';', ' ', '\t', '|', '\n']) {
                    let (alg, hex) = match tok.split_once('=') {
                        Some((a, h)) => (hash_kind(a), h.trim()),
                        None => (implied, tok.trim()),
                    };
                    if !matches!(hex.len(), 32 | 40 | 64 | 128) {
                        continue;
                    }
                    buf.clear();
                    buf.extend(hex.chars().map(|c| c.to_ascii_lowercase()));
                    if let Some(ids) = self.hashes.get(&buf) {
                        for &i in ids {
                            if alg.is_none_or(|k| k == iocs[i].kind) {
                                push(&mut out, i, name, hex);
                            }
                        }
                    }
                }
            }
            if (!self.v4.is_empty() || !self.v6.is_empty()) && is_ip_field(name) {
                if let Some(addr) = parse_addr(&text) {
                    for i in self.lookup_ip(addr) {
                        push(&mut out, i, name, text.trim());
                    }
                }
            }
            if let Some(ac) = &self.ac {
                if is_text_field(name) {
                    let b = text.as_bytes();
                    for m in ac.find_overlapping_iter(text.as_ref()) {
                        let (i, kind) = self.pats[m.pattern().as_usize()];
                        let prev = m.start().checked_sub(1).map(|p| b[p]);
                        let next = b.get(m.end()).copied();
                        let after_next = b.get(m.end() + 1).copied();
                        let ok = match kind {
                            PatKind::Domain => {
                                !prev.is_some_and(domain_byte)
                                    && !next.is_some_and(domain_byte)
                                    && (next != Some(b'.')
                                        || !after_next.is_some_and(|c| c.is_ascii_alphanumeric()))
                            }
                            PatKind::Url => !next.is_some_and(|c| c.is_ascii_alphanumeric()),
                            PatKind::HostPath => {
                                !prev.is_some_and(|c| domain_byte(c) || c == b'.')
                                    && url_prefix_end(
                                        iocs[i].value.as_bytes().last().copied(),
                                        b,
                                        m.end(),
                                    )
                            }
                            PatKind::Path => {
                                starts_url_path(b, m.start())
                                    && url_prefix_end(
                                        iocs[i].value.as_bytes().last().copied(),
                                        b,
                                        m.end(),
                                    )
                            }
                            PatKind::Ipv4 => {
                                !prev.is_some_and(|c| c.is_ascii_digit() || c == b'.')
                                    && !next.is_some_and(|c| c.is_ascii_digit())
                                    && (next != Some(b'.')
                                        || !after_next.is_some_and(|c| c.is_ascii_digit()))
                            }
                        };
                        if ok {
                            push(&mut out, i, name, &text[m.start()..m.end()]);
                        }
                    }
                }
            }
        }
        out
    }

    /// IOC indices whose network contains `addr` (exact addresses are /32 or /128 networks).
    fn lookup_ip(&self, addr: IpAddr) -> Vec<usize> {
        let mut out = Vec::new();
        match addr {
            IpAddr::V4(a) => {
                let x = u32::from(a);
                for &len in &self.v4_lens {
                    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
                    if let Some(ids) = self.v4.get(&(len, x & mask)) {
                        out.extend_from_slice(ids);
                    }
                }
            }
            IpAddr::V6(a) => {
                let x = u128::from(a);
                for &len in &self.v6_lens {
                    let mask = if len == 0 {
                        0
                    } else {
                        u128::MAX << (128 - len)
                    };
                    if let Some(ids) = self.v6.get(&(len, x & mask)) {
                        out.extend_from_slice(ids);
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_classes() {
        assert!(is_hash_field("Hashes"));
        assert!(is_hash_field("sha256"));
        assert!(!is_hash_field("Image"));
        assert!(is_ip_field("DestinationIp"));
        assert!(is_ip_field("IpAddress"));
        assert!(is_ip_field("ClientAddress"));
        assert!(is_ip_field("id.resp_h"));
        assert!(is_ip_field("id_orig_h"));
        assert!(!is_ip_field("Image"));
        assert!(is_text_field("commandline"));
        assert!(is_text_field("Script Block Text"));
    }
}
