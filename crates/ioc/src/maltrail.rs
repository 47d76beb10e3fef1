//! maltrail static trail files (`trails/static/malware/apt_*.txt` of stamparm/maltrail, MIT).
//!
//! The format, as maltrail's own loader reads it (`trails/static/__init__.py`, `fetch()`, at
//! commit 8adace159e): one trail a line; lines starting with `#` are comments; a trailing
//! `# comment` after a value is stripped (`re.sub(r"\s*#.*", "", line)`); a value with `://`
//! loses its scheme and, when no path follows the host, becomes `host/` (every HTTP request to
//! that host); a value with a `/` is a URL trail (trailing `/` removed when it has more than
//! one); an `a.b.c.d` value is an address; anything else a domain (leading/trailing dots
//! stripped). The file name is the trail's "info" (`apt_12.txt` → `apt 12`). Comment lines
//! `# Aliases: a, b, …` name the actor's other names and `# Reference: URL` lines head a
//! "pile" of trails: maltrail's server cites, for a trail, the nearest `# Reference:` block
//! above it (`core/httpd.py`, "the reference is per-PILE").
//!
//! What this loader makes of it:
//!
//! * The actor ([`crate::Actor`]) of every trail of an `apt_*.txt` file: `apt_<digits>` →
//!   `APT<digits>`, else the rest of the file name (`apt_lotusblossom.txt` → `lotusblossom`),
//!   with the `# Aliases:` names as synonyms (and their MISP galaxy ATT&CK ids, as for every
//!   feed). Other maltrail files (`malware/emotet.txt`) name malware, not actors: their trails
//!   load without an actor (hits are reported, no attribution evidence).
//! * Each trail's [`crate::IocSource`]: `id` = `line N` of the file, `title` = the URLs of
//!   its pile's `# Reference:` lines (also the misspelt `# Referemce:`/`# Referecne:` seen in
//!   the files), comma-separated.
//! * `ip:port` trails (maltrail `IPORT`) load as the address ([`crate::IocKind::Ip`]); the port
//!   is kept in the source id (`line 17, port 8080`) but not matched (Sysmon network events
//!   carry it in another field).
//! * URL trails (`host/path`, `host/`, path-only `/path/x.php`) load as scheme-less
//!   [`crate::IocKind::Url`] values, lower-case, matched as URL **prefixes** at a boundary:
//!   `host/dir` matches `http://HOST/dir`, `host/dir/x.php?a=1` and `host/dir/`, not
//!   `host/directory` nor `evilhost/dir`; a path-only trail matches where a URL path starts
//!   (`cs-uri-stem` values, or after a host). This generalises maltrail's sensor, which tries
//!   the request path, the path without its query, the path up to `=` and the path's parent
//!   directory, each alone and behind the `Host` header (`sensor/src/protocols/http.rs`,
//!   `build_checks`): a directory trail matches the files in it.

use crate::{Actor, FeedFormat, IocKind, IocSetBuilder, IocSource, LoadReport, Origin};

/// True when `text` reads as a maltrail trail file: a `# Reference:`/`# Aliases:` comment line
/// or the maltrail copyright header, and no value line holding a `,` (a `type,value` CSV).
pub(crate) fn looks_like(text: &str) -> bool {
    let mut marker = false;
    for line in text.lines().take(10_000) {
        let l = line.trim();
        if let Some(c) = l.strip_prefix('#') {
            let c = c.trim_start().to_ascii_lowercase();
            if c.starts_with("aliases:") || is_reference(&c) || c.contains("maltrail developers") {
                marker = true;
            }
        } else if strip_comment(l).contains(',') {
            return false;
        }
    }
    marker
}

/// `reference:` and the misspellings seen in the trail files (`referemce:`, `referecne:`).
fn is_reference(lower_comment: &str) -> bool {
    lower_comment.starts_with("refer") && lower_comment.split_once(':').is_some()
}

/// The value part of a trail line: a trailing `# comment` removed, trimmed.
fn strip_comment(line: &str) -> &str {
    line.split_once('#').map_or(line, |(v, _)| v).trim()
}

/// The actor a trail file's name stands for: `apt_12.txt` → `APT12`, `apt_unc2447.txt` →
/// `unc2447`; `None` for files not named `apt_*`.
pub(crate) fn actor_name(origin: &str) -> Option<String> {
    let file = origin.rsplit(['/', '\\']).next().unwrap_or(origin);
    let stem = file.strip_suffix(".txt").unwrap_or(file);
    let rest = stem.strip_prefix("apt_")?.trim();
    if rest.is_empty() {
        return None;
    }
    Some(if rest.bytes().all(|c| c.is_ascii_digit()) {
        format!("APT{rest}")
    } else {
        rest.to_owned()
    })
}

/// A URL trail as maltrail keys it, or `None` when the value is not one.
fn url_trail(v: &str) -> Option<String> {
    let mut t = match v.split_once("://") {
        Some((_, rest)) if !rest.contains('/') => format!("{rest}/"),
        Some((_, rest)) => rest.to_owned(),
        None if v.contains('/') => v.to_owned(),
        None => return None,
    };
    if t.matches('/').count() > 1 {
        while t.ends_with('/') {
            t.pop();
        }
    }
    while t.contains("//") {
        t = t.replace("//", "/");
    }
    let ok = t.len() >= 3
        && !t
            .bytes()
            .any(|c| c.is_ascii_whitespace() || c.is_ascii_control())
        && t.is_ascii();
    ok.then(|| t.to_ascii_lowercase())
}

/// Loads one trail file (see the module docs).
pub(crate) fn load(b: &mut IocSetBuilder, text: &str, origin: &str) -> LoadReport {
    let mut report = LoadReport::new(FeedFormat::Maltrail);
    let mut synonyms: Vec<String> = Vec::new();
    for line in text.lines() {
        let l = line.trim();
        if let Some(c) = l.strip_prefix('#') {
            let c = c.trim_start();
            if c.to_ascii_lowercase().starts_with("aliases:") {
                synonyms.extend(
                    c["aliases:".len()..]
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned),
                );
            }
        }
    }
    let actors: Vec<Actor> = actor_name(origin)
        .map(|n| vec![Actor::new(&n, &synonyms)])
        .unwrap_or_default();
    for a in &actors {
        report.actor(a);
    }
    let mut references: Vec<String> = Vec::new();
    let mut in_pile_header = false;
    for (n, line) in text.trim_start_matches('\u{feff}').lines().enumerate() {
        let lineno = n + 1;
        let l = line.trim();
        if l.is_empty() {
            continue;
        }
        if let Some(c) = l.strip_prefix('#') {
            let c = c.trim_start();
            if is_reference(&c.to_ascii_lowercase()) {
                if !in_pile_header {
                    references.clear();
                    in_pile_header = true;
                }
                let url = c.split_once(':').map_or("", |(_, u)| u.trim());
                if !url.is_empty() {
                    references.push(url.to_owned());
                }
            }
            continue;
        }
        in_pile_header = false;
        let v = strip_comment(l);
        if v.is_empty() {
            continue;
        }
        report.entries += 1;
        let mut id = format!("line {lineno}");
        let url = url_trail(v);
        let (addr, port) = match v.rsplit_once(':') {
            Some((a, p)) if !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()) => (a, Some(p)),
            _ => (v, None),
        };
        let is_addr = url.is_none() && crate::parse_addr(addr).is_some();
        if let (true, Some(p)) = (is_addr, port) {
            id = format!("line {lineno}, port {p}");
        }
        let o = Origin {
            source: IocSource {
                format: FeedFormat::Maltrail,
                feed: origin.to_owned(),
                id,
                title: (!references.is_empty()).then(|| references.join(", ")),
            },
            actors: actors.clone(),
            conjunction: None,
        };
        let added = if let Some(u) = url {
            b.add(IocKind::Url, u, o);
            *report.loaded.entry(IocKind::Url).or_default() += 1;
            1
        } else if is_addr {
            b.add_typed("ip", addr, &o, &mut report)
        } else {
            b.add_typed("domain", v.trim_matches('.'), &o, &mut report)
        };
        if added == 0 {
            report
                .diagnostics
                .push(format!("{origin}:{lineno}: not loaded: {v:?}"));
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::IocSet;
    use tracehunt_event::{Event, Value};

    const TRAIL: &str =
        "# Copyright (c) 2014-2026 Maltrail developers (https://github.com/stamparm/maltrail/)\n\
# See the file 'LICENSE' for copying permission\n\
\n\
# Aliases: apt12, ixeshe\n\
\n\
# Reference: https://example.org/a\n\
# Reference: https://example.org/b\n\
\n\
http://141.108.2.157\n\
icc.ignorelist.com # C2\n\
\n\
# Reference: https://example.org/c\n\
\n\
178.128.110.214:8080\n\
horizons-tourisme.com/_vti_bin/_vti_msc/bb/\n\
/krsy/a.asp\n\
support\u{ac}forum.org\n";

    #[test]
    fn reads_a_trail_file_as_maltrail_means_it() {
        assert!(looks_like(TRAIL));
        assert!(!looks_like("type,value\n# Reference: x\ndomain,a.com\n"));
        assert_eq!(actor_name("/x/apt_12.txt").as_deref(), Some("APT12"));
        assert_eq!(actor_name("apt_unc2447.txt").as_deref(), Some("unc2447"));
        assert_eq!(actor_name("malware/emotet.txt"), None);
        let mut b = IocSet::builder();
        let r = b.load(TRAIL, "trails/apt_12.txt").unwrap();
        assert_eq!(r.format, Some(FeedFormat::Maltrail));
        assert_eq!(r.entries, 6);
        assert_eq!(r.loaded[&IocKind::Url], 3);
        assert_eq!(r.loaded[&IocKind::Domain], 1);
        assert_eq!(r.loaded[&IocKind::Ip], 1);
        assert_eq!(r.actors, ["APT12"]);
        assert_eq!(
            r.diagnostics,
            ["trails/apt_12.txt:17: not loaded: \"support\u{ac}forum.org\""]
        );
        let set = b.build();
        let values: Vec<&str> = set.iocs().iter().map(|i| i.value.as_str()).collect();
        assert_eq!(
            values,
            [
                "141.108.2.157/",
                "icc.ignorelist.com",
                "178.128.110.214",
                "horizons-tourisme.com/_vti_bin/_vti_msc/bb",
                "/krsy/a.asp"
            ]
        );
        let ip = &set.iocs()[2].origins[0];
        assert_eq!(ip.source.id, "line 14, port 8080");
        assert_eq!(ip.source.title.as_deref(), Some("https://example.org/c"));
        let dom = &set.iocs()[1].origins[0];
        assert_eq!(
            dom.source.title.as_deref(),
            Some("https://example.org/a, https://example.org/b")
        );
        assert_eq!(dom.actors[0].aliases[..2], ["apt12", "ixeshe"]);
    }

    #[test]
    fn url_trails_match_as_prefixes_at_a_boundary() {
        let mut b = IocSet::builder();
        b.load(TRAIL, "apt_12.txt").unwrap();
        let set = b.build();
        let hit = |field: &str, text: &str| -> Vec<String> {
            let mut ev = Event::default();
            ev.push(field, Value::from(text));
            set.matches(&ev).into_iter().map(|h| h.value).collect()
        };
        let dir = "horizons-tourisme.com/_vti_bin/_vti_msc/bb";
        for yes in [
            "curl http://HORIZONS-tourisme.com/_vti_bin/_vti_msc/bb/x.php?a=1",
            "iwr https://horizons-tourisme.com/_vti_bin/_vti_msc/bb",
        ] {
            assert_eq!(hit("CommandLine", yes), [dir], "{yes}");
        }
        for no in [
            "http://horizons-tourisme.com/_vti_bin/_vti_msc/bbc/x.php",
            "http://nothorizons-tourisme.com/_vti_bin/_vti_msc/bb/",
        ] {
            assert!(hit("CommandLine", no).is_empty(), "{no}");
        }
        assert_eq!(
            hit("CommandLine", "wget http://141.108.2.157/a.exe"),
            ["141.108.2.157/"]
        );
        assert!(hit("CommandLine", "ping 141.108.2.157").is_empty());
        assert_eq!(hit("cs-uri-stem", "/krsy/a.asp"), ["/krsy/a.asp"]);
        assert_eq!(
            hit("CommandLine", "http://x.example:8080/krsy/a.asp?q"),
            ["/krsy/a.asp"]
        );
        assert!(hit("CommandLine", "c:/tmp/krsy/a.asp").is_empty());
        assert_eq!(hit("DestinationIp", "178.128.110.214"), ["178.128.110.214"]);
    }
}
