//! Sysmon for Linux events: the Windows Sysmon event XML
//! (`<Event><System>…</System><EventData><Data Name="…">…</Data>…`) that
//! Sysinternals' SysmonForLinux writes to syslog, one event per line
//! (`… sysmon: <Event>…</Event>`), also found in the `SyslogMessage` column
//! of Microsoft Sentinel `Syslog` exports.
//!
//! The XML is scanned, not validated, so that damaged events are recovered:
//! * entities whose `;` became a space (`&lt unknown process&gt `, `&quot
//!   SELECT`, seen in the OTRF Sentinel export) are decoded, the space
//!   taken as the lost `;`, and counted in the event's `XmlDamage`
//!   field;
//! * an event cut short (the OTRF row cut at 2,012 characters) keeps every
//!   `Data` element before the cut; a value cut inside its text is kept as
//!   far as it goes; [`Parsed::cut`] says where it was cut.
//!
//! Fields (as Windows Sysmon, so SigmaHQ's linux `process_creation`,
//! `network_connection`, `file_event`… rules match): `EventID`
//! ([`Value::Int`]), `Provider_Name`, `Computer`, `EventRecordID`, then
//! every `<Data Name="X">` as `X` (`Image`, `CommandLine`, `ParentImage`,
//! `User`, `TargetFilename`, `DestinationIp`…), values as written (`-`,
//! `(null)` and `<unknown process>` are Sysmon's own placeholders). A
//! damaged event also gets `XmlDamage` (where it was cut, how many entities
//! were repaired).

use chrono::{DateTime, Utc};
use tracehunt_event::{Event, EventMeta, Value};

/// The `meta.channel` of Sysmon for Linux events (its `<Channel>`).
pub(crate) const CHANNEL: &str = "Linux-Sysmon/Operational";

/// A Sysmon event recovered from (possibly damaged) XML.
#[derive(Debug)]
pub(crate) struct Parsed {
    /// The event (channel [`CHANNEL`], `event_id`, `record_id` =
    /// EventRecordID, `timestamp` = TimeCreated, `computer`).
    pub(crate) event: Event,
    /// `Some(what)` when the XML ends before `</Event>`: the element cut.
    pub(crate) cut: Option<String>,
}

/// True when `msg` (a syslog message) holds a Sysmon event.
pub(crate) fn is_sysmon_xml(msg: &str) -> bool {
    msg.trim_start().starts_with("<Event>") || msg.trim_start().starts_with("<Event ")
}

/// Decodes XML entities in `s`; `&name ` (space for the lost `;`) is
/// repaired and counted. Unknown entities stay as written.
fn unescape(s: &str, repaired: &mut usize) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let end = after
            .char_indices()
            .find(|(_, c)| *c == ';' || *c == ' ' || *c == '&' || *c == '<');
        let decoded = end.and_then(|(j, c)| {
            let name = &after[..j];
            let ch = match name {
                "lt" => Some('<'),
                "gt" => Some('>'),
                "amp" => Some('&'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                _ => name
                    .strip_prefix("#x")
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .or_else(|| name.strip_prefix('#').and_then(|d| d.parse().ok()))
                    .and_then(char::from_u32),
            }?;
            match c {
                ';' => Some((ch, j + 1, false)),
                ' ' => Some((ch, j + 1, true)),
                _ => None,
            }
        });
        match decoded {
            Some((ch, used, fixed)) => {
                out.push(ch);
                *repaired += usize::from(fixed);
                rest = &after[used..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The text of the first `<tag>…</tag>` (or `<tag attr…>…</tag>`).
fn tag_text<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}");
    let mut from = 0;
    while let Some(i) = xml[from..].find(&open) {
        let start = from + i + open.len();
        match xml[start..].chars().next() {
            Some('>') => {
                let body = &xml[start + 1..];
                return Some(&body[..body.find('<').unwrap_or(body.len())]);
            }
            Some(' ') => {
                let gt = xml[start..].find('>')? + start;
                if xml[..gt].ends_with('/') {
                    return Some("");
                }
                let body = &xml[gt + 1..];
                return Some(&body[..body.find('<').unwrap_or(body.len())]);
            }
            _ => from = start,
        }
    }
    None
}

/// The value of attribute `attr` of the first `<tag …>`.
fn attr<'a>(xml: &'a str, tag: &str, attr: &str) -> Option<&'a str> {
    let i = xml.find(&format!("<{tag} "))?;
    let el = &xml[i..];
    let el = &el[..el.find('>').unwrap_or(el.len())];
    let key = format!(" {attr}=\"");
    let j = el.find(&key)? + key.len();
    let v = &el[j..];
    Some(&v[..v.find('"')?])
}

/// Parses one Sysmon event; `None` when there is no numeric `<EventID>`
/// (not a Sysmon event, or cut before it).
pub(crate) fn parse(xml: &str) -> Option<Parsed> {
    let mut repaired = 0;
    let event_id: u32 = tag_text(xml, "EventID")?.trim().parse().ok()?;
    let timestamp = attr(xml, "TimeCreated", "SystemTime")
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc));
    let record_id = tag_text(xml, "EventRecordID").and_then(|v| v.trim().parse::<u64>().ok());
    let computer = tag_text(xml, "Computer").map(|c| unescape(c, &mut repaired));
    let provider = attr(xml, "Provider", "Name").map(str::to_owned);
    let meta = EventMeta {
        timestamp,
        computer: computer.clone(),
        channel: Some(CHANNEL.into()),
        provider: provider.clone(),
        event_id: Some(event_id),
        record_id,
    };
    let mut ev = Event::with_meta(meta);
    ev.push("EventID", Value::Int(i64::from(event_id)));
    if let Some(p) = provider {
        ev.push("Provider_Name", Value::Str(p));
    }
    if let Some(c) = computer {
        ev.push("Computer", Value::Str(c));
    }
    if let Some(r) = record_id {
        ev.push("EventRecordID", Value::Int(r as i64));
    }
    let mut cut = None;
    let mut rest = xml;
    const OPEN: &str = "<Data Name=\"";
    while let Some(i) = rest.find(OPEN) {
        let after = &rest[i + OPEN.len()..];
        let Some(q) = after.find('"') else {
            cut = Some(format!("the name of a Data element (`{}`)", after));
            break;
        };
        let name = &after[..q];
        let tail = &after[q + 1..];
        if let Some(t) = tail.strip_prefix("/>") {
            ev.push(name, Value::Str(String::new()));
            rest = t;
            continue;
        }
        let Some(body) = tail.strip_prefix('>') else {
            cut = Some(format!("Data `{name}` before its value"));
            break;
        };
        match body.find("</Data>") {
            Some(end) => {
                ev.push(name, Value::Str(unescape(&body[..end], &mut repaired)));
                rest = &body[end + "</Data>".len()..];
            }
            None => {
                // Cut inside the value (or its end tag): keep what is there.
                let v = &body[..body.find('<').unwrap_or(body.len())];
                ev.push(name, Value::Str(unescape(v, &mut repaired)));
                cut = Some(format!(
                    "the value of Data `{name}` (kept as far as it goes)"
                ));
                rest = "";
                break;
            }
        }
    }
    if cut.is_none() && !rest.contains("</Event>") {
        cut = Some("after the last complete Data element".into());
    }
    let mut damage = Vec::new();
    if let Some(c) = &cut {
        damage.push(format!("event XML cut at {} chars, in {c}", xml.len()));
    }
    if repaired > 0 {
        damage.push(format!("{repaired} entities without `;` repaired"));
    }
    if !damage.is_empty() {
        ev.push("XmlDamage", Value::Str(damage.join("; ")));
    }
    Some(Parsed { event: ev, cut })
}

#[cfg(test)]
mod tests {
    use super::*;

    const EV: &str = "<Event><System><Provider Name=\"Linux-Sysmon\" Guid=\"{ff032593-a8d3-4f13-b0d6-01fc615a0f97}\"/><EventID>1</EventID><TimeCreated SystemTime=\"2022-05-11T18:10:22.040138000Z\"/><EventRecordID>245767</EventRecordID><Channel>Linux-Sysmon/Operational</Channel><Computer>UBUNTU5</Computer><Security UserId=\"0\"/></System><EventData><Data Name=\"RuleName\">-</Data><Data Name=\"Image\">&lt unknown process&gt </Data><Data Name=\"CommandLine\">sh -c &quot SELECT x&quot  | grep = &amp;&amp; a&#x41;</Data><Data Name=\"Empty\"/></EventData></Event>";

    #[test]
    fn fields_and_repaired_entities() {
        let p = parse(EV).unwrap();
        let e = &p.event;
        assert_eq!(e.meta.event_id, Some(1));
        assert_eq!(e.meta.record_id, Some(245767));
        assert_eq!(e.meta.computer.as_deref(), Some("UBUNTU5"));
        assert_eq!(
            e.meta.timestamp.unwrap().to_rfc3339(),
            "2022-05-11T18:10:22.040138+00:00"
        );
        assert_eq!(e.first("EventID"), Some(&Value::Int(1)));
        let t = |n: &str| e.first(n).unwrap().to_text().into_owned();
        assert_eq!(t("Image"), "<unknown process>");
        assert_eq!(t("CommandLine"), "sh -c \"SELECT x\" | grep = && aA");
        assert_eq!(t("Empty"), "");
        assert!(p.cut.is_none());
        assert_eq!(t("XmlDamage"), "4 entities without `;` repaired");
    }

    #[test]
    fn cut_event_keeps_what_came_before() {
        for at in [
            EV.find("Data Name=\"CommandLine").unwrap() + 8,
            EV.find("SELECT").unwrap(),
        ] {
            let p = parse(&EV[..at]).unwrap();
            assert_eq!(
                p.event.first("Image").unwrap().as_str(),
                Some("<unknown process>")
            );
            assert!(p.cut.is_some());
            assert!(p.event.has("XmlDamage"));
        }
        // Cut before the EventID: nothing to recover.
        assert!(parse(&EV[..60]).is_none());
        assert!(parse("<Event>garbage").is_none());
    }
}
