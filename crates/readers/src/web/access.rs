//! Apache / Nginx access logs in the common and combined formats (Apache
//! mod_log_config: `"%h %l %u %t \"%r\" %>s %b"` and combined's
//! `\"%{Referer}i\" \"%{User-agent}i\"`; nginx's default `combined` is the
//! same), read into W3C field names.

use super::lines::{Line, LineParser};
use super::{int_or_text, CHANNEL};
use chrono::{DateTime, Utc};
use tracehunt_event::{Event, EventMeta, Value};

/// One parsed access-log line, borrowing from the line.
#[derive(Debug, PartialEq)]
pub(super) struct Entry<'a> {
    host: &'a str,
    ident: &'a str,
    user: &'a str,
    time: DateTime<Utc>,
    request: String,
    status: &'a str,
    bytes: &'a str,
    referer: Option<String>,
    agent: Option<String>,
}

/// A tiny cursor over one line.
struct Cur<'a> {
    s: &'a str,
    i: usize,
}

impl<'a> Cur<'a> {
    /// The text up to the next space (at least one byte), and the space.
    fn token(&mut self) -> Option<&'a str> {
        let rest = &self.s[self.i..];
        let end = rest.find(' ').unwrap_or(rest.len());
        if end == 0 {
            return None;
        }
        self.i += end;
        Some(&rest[..end])
    }

    fn eat(&mut self, b: u8) -> Option<()> {
        (self.s.as_bytes().get(self.i) == Some(&b)).then(|| self.i += 1)
    }

    fn at_end(&self) -> bool {
        self.i >= self.s.len()
    }

    /// A `[...]` field's inside.
    fn bracketed(&mut self) -> Option<&'a str> {
        self.eat(b'[')?;
        let rest = &self.s[self.i..];
        let end = rest.find(']')?;
        self.i += end + 1;
        Some(&rest[..end])
    }

    /// A `"..."` field's inside, with Apache's `\"` and `\\` escapes
    /// undone (other `\xhh` escapes are kept as written).
    fn quoted(&mut self) -> Option<String> {
        self.eat(b'"')?;
        let b = self.s.as_bytes();
        let start = self.i;
        let mut out = String::new();
        let mut from = start;
        while self.i < b.len() {
            match b[self.i] {
                b'\\' if matches!(b.get(self.i + 1), Some(b'"' | b'\\')) => {
                    out.push_str(&self.s[from..self.i]);
                    out.push(char::from(b[self.i + 1]));
                    self.i += 2;
                    from = self.i;
                }
                b'"' => {
                    out.push_str(&self.s[from..self.i]);
                    self.i += 1;
                    return Some(out);
                }
                _ => self.i += 1,
            }
        }
        None
    }
}

fn is_status(t: &str) -> bool {
    t == "-" || t.len() == 3 && t.bytes().all(|b| b.is_ascii_digit())
}

fn is_bytes(t: &str) -> bool {
    t == "-" || !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit())
}

/// `"request" status bytes`. The request normally ends at its first
/// unescaped `"`; servers that do not escape quotes in `%r` (Tomcat's
/// AccessLogValve: `"GET /x?postdata="><script>… HTTP/1.1" 404 997`) are
/// read by taking the first later `"` that is followed by a status and a
/// byte count and then the end of the line or ` "`.
fn request_status_bytes<'a>(c: &mut Cur<'a>) -> Option<(String, &'a str, &'a str)> {
    let save = c.i;
    let strict = (|| {
        let request = c.quoted()?;
        c.eat(b' ')?;
        let status = c.token().filter(|t| is_status(t))?;
        c.eat(b' ')?;
        let bytes = c.token().filter(|t| is_bytes(t))?;
        (c.at_end() || c.s[c.i..].starts_with(" \"")).then_some((request, status, bytes))
    })();
    if strict.is_some() {
        return strict;
    }
    c.i = save;
    c.eat(b'"')?;
    let open = c.i;
    let s = c.s;
    for (q, _) in s[open..].match_indices('"') {
        let q = open + q;
        let mut t = Cur { s, i: q + 1 };
        let found = (|| {
            t.eat(b' ')?;
            let status = t.token().filter(|x| is_status(x))?;
            t.eat(b' ')?;
            let bytes = t.token().filter(|x| is_bytes(x))?;
            (t.at_end() || s[t.i..].starts_with(" \"")).then_some((status, bytes))
        })();
        if let Some((status, bytes)) = found {
            c.i = t.i;
            return Some((s[open..q].to_owned(), status, bytes));
        }
    }
    None
}

/// Parses one common/combined line; `None` when it is not one. Trailing
/// fields after the user agent (nginx `$http_x_forwarded_for`, timings)
/// are ignored.
pub(super) fn parse_entry(line: &str) -> Option<Entry<'_>> {
    let mut c = Cur { s: line, i: 0 };
    let host = c.token()?;
    c.eat(b' ')?;
    let ident = c.token()?;
    c.eat(b' ')?;
    let user = c.token()?;
    c.eat(b' ')?;
    let time = DateTime::parse_from_str(c.bracketed()?, "%d/%b/%Y:%H:%M:%S %z")
        .ok()?
        .with_timezone(&Utc);
    c.eat(b' ')?;
    let (request, status, bytes) = request_status_bytes(&mut c)?;
    let (mut referer, mut agent) = (None, None);
    if !c.at_end() {
        c.eat(b' ')?;
        referer = Some(c.quoted()?);
        c.eat(b' ')?;
        agent = Some(c.quoted()?);
    }
    Some(Entry {
        host,
        ident,
        user,
        time,
        request,
        status,
        bytes,
        referer,
        agent,
    })
}

/// The request line split the way W3C logs it: method, stem, query
/// (without `?`), version. `None` parts are absent from the line (an
/// HTTP/0.9 line has no version; a line that is not `METHOD TARGET
/// [HTTP/x]` — TLS bytes sent to a plain port — has none of them).
fn split_request(r: &str) -> (Option<&str>, Option<&str>, Option<&str>, Option<&str>) {
    const NONE: (Option<&str>, Option<&str>, Option<&str>, Option<&str>) = (None, None, None, None);
    let Some((method, rest)) = r.trim_start().split_once(' ') else {
        return NONE;
    };
    let rest = rest.trim();
    if method.is_empty()
        || rest.is_empty()
        || !method
            .bytes()
            .all(|b| b.is_ascii_alphabetic() || b == b'-' || b == b'_')
    {
        return NONE;
    }
    // The target ends at the last space before an `HTTP/` version, if any
    // (a target with raw spaces keeps them).
    let (target, version) = match rest.rfind(" HTTP/") {
        Some(v) => (rest[..v].trim_end(), Some(&rest[v + 1..])),
        None => (rest, None),
    };
    let (stem, query) = match target.split_once('?') {
        Some((s, q)) => (s, Some(q)),
        None => (target, None),
    };
    (Some(method), Some(stem), query, version)
}

fn push_str(ev: &mut Event, name: &'static str, v: Option<&str>) {
    if let Some(v) = v.filter(|v| *v != "-") {
        ev.push(name, Value::Str(v.to_owned()));
    }
}

/// The access-log parser (stateless).
pub(super) struct Access;

impl LineParser for Access {
    fn parse(&mut self, line: &Line<'_>) -> Result<Option<Event>, String> {
        let text = line.text.trim_start_matches('\u{feff}');
        if text.trim().is_empty() {
            return Ok(None);
        }
        let e = parse_entry(text).ok_or_else(|| {
            "not an access-log line (host ident user [time] \"request\" status bytes)".to_owned()
        })?;
        let mut ev = Event::with_meta(EventMeta {
            channel: Some(CHANNEL.into()),
            timestamp: Some(e.time),
            ..EventMeta::default()
        });
        push_str(&mut ev, "c-ip", Some(e.host));
        push_str(&mut ev, "ident", Some(e.ident));
        push_str(&mut ev, "cs-username", Some(e.user));
        ev.push("request", Value::Str(e.request.clone()));
        let (method, stem, query, version) = split_request(&e.request);
        push_str(&mut ev, "cs-method", method);
        push_str(&mut ev, "cs-uri-stem", stem);
        if let Some(q) = query {
            ev.push("cs-uri-query", Value::Str(q.to_owned()));
        }
        push_str(&mut ev, "cs-version", version);
        super::push_full_uri(&mut ev);
        if e.status != "-" {
            ev.push("sc-status", int_or_text(e.status));
        }
        if e.bytes != "-" {
            ev.push("sc-bytes", int_or_text(e.bytes));
        }
        push_str(&mut ev, "cs-referer", e.referer.as_deref());
        push_str(&mut ev, "cs-user-agent", e.agent.as_deref());
        Ok(Some(ev))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines() {
        assert_eq!(
            split_request("GET /a/b.php?x=1&y=2 HTTP/1.1"),
            (
                Some("GET"),
                Some("/a/b.php"),
                Some("x=1&y=2"),
                Some("HTTP/1.1")
            )
        );
        assert_eq!(split_request("GET /"), (Some("GET"), Some("/"), None, None));
        assert_eq!(
            split_request("GET /a b HTTP/1.0"),
            (Some("GET"), Some("/a b"), None, Some("HTTP/1.0"))
        );
        assert_eq!(split_request("\\x16\\x03\\x01"), (None, None, None, None));
        assert_eq!(split_request("-"), (None, None, None, None));
        assert_eq!(split_request(""), (None, None, None, None));
    }

    #[test]
    fn lines() {
        let l = r#"1.2.3.4 - bob [17/May/2015:10:05:03 +0200] "GET /x?\"q\" HTTP/1.1" 200 - "-" "UA \\ 1" extra"#;
        let e = parse_entry(l).unwrap();
        assert_eq!(e.user, "bob");
        assert_eq!(e.request, "GET /x?\"q\" HTTP/1.1");
        assert_eq!(e.agent.as_deref(), Some("UA \\ 1"));
        assert_eq!(e.time.to_rfc3339(), "2015-05-17T08:05:03+00:00");
        let common = r#"::1 - - [01/Jan/2020:00:00:00 +0000] "GET / HTTP/1.0" 404 12"#;
        assert!(parse_entry(common).unwrap().referer.is_none());
        // Tomcat writes quotes in the request unescaped.
        let tomcat = r#"192.168.105.83 - - [11/Jul/2018:09:32:27 +0300] "GET /WebID/IISWebAgentIF.dll?postdata="><script>foo</script> HTTP/1.1" 404 997"#;
        let e = parse_entry(tomcat).unwrap();
        assert_eq!(
            e.request,
            r#"GET /WebID/IISWebAgentIF.dll?postdata="><script>foo</script> HTTP/1.1"#
        );
        assert_eq!((e.status, e.bytes), ("404", "997"));
        for bad in [
            "",
            "May 17 10:05:03 host sshd[1]: Accepted",
            r#"1.2.3.4 - - [17/May/2015:10:05:03 +0000] "GET /" 2000 1"#,
            r#"1.2.3.4 - - [17/May/2015:10:05:03] "GET /" 200 1"#,
            r#"1.2.3.4 - - [17/May/2015:10:05:03 +0000] "GET / 200 1"#,
            r#"1.2.3.4 - - [17/May/2015:10:05:03 +0000] "GET /" 200 1 "ref"#,
        ] {
            assert!(parse_entry(bad).is_none(), "{bad}");
        }
    }
}
