//! One raw auditd record line → its header and decoded fields.
//!
//! Record format (Linux audit userspace, `audit.log` as written by
//! `auditd`, see auditd(8) / the audit-userspace "Audit event format"
//! notes): `[node=<host> ]type=<TYPE> msg=audit(<epoch>.<ms>:<serial>): `
//! then space-separated `key=value` pairs. Values are `"quoted"` text,
//! unquoted hex of the bytes (the kernel's `audit_log_untrustedstring`:
//! used when a value holds a space, a quote, a control or non-ASCII byte),
//! or unquoted plain tokens (numbers, `(null)`, `?`). User-space records
//! (PAM, `USER_*`, `SERVICE_*`) nest a second list in `msg='…'`.
//! Enriched logs (`log_format = ENRICHED`) append `\x1d` (GS) and
//! upper-case interpreted fields (`UID="root" SYSCALL=execve`).

use super::syscalls;

/// A parsed record: header plus `(name, value)` fields in line order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Record {
    /// `node=` prefix (the host), if any.
    pub(crate) node: Option<String>,
    /// `type=` value, e.g. `SYSCALL`, `EXECVE`, `USER_ACCT`, `UNKNOWN[1334]`.
    pub(crate) rtype: String,
    /// Seconds since the epoch (UTC).
    pub(crate) secs: i64,
    /// Milliseconds (0–999).
    pub(crate) millis: u32,
    /// The event serial (u32 in the kernel; wraps 4294967295 → 0).
    pub(crate) serial: u64,
    /// `<epoch>.<ms>:<serial>` as written: the key records of one event share.
    pub(crate) id: String,
    /// Decoded fields (see [`parse`]).
    pub(crate) fields: Vec<(String, String)>,
    /// Pieces of split EXECVE arguments not yet joined into `fields`.
    pub(crate) pieces: Vec<Piece>,
}

impl Record {
    /// The first value of field `name` (exact name).
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Keys whose unquoted value is hex-encoded text when it is all hex digits
/// (audit-userspace's "encoded" field types: untrusted strings, paths,
/// command lines). `aN` arguments of `EXECVE` records are handled apart.
const HEX_KEYS: &[&str] = &[
    "proctitle",
    "exe",
    "comm",
    "name",
    "cwd",
    "path",
    "cmd",
    "acct",
    "data",
    "key",
    "ocomm",
    "watch",
    "dir",
    "file",
    "vm",
    "cgroup",
    "root_dir",
];

#[derive(Clone, Copy, PartialEq)]
enum Quote {
    None,
    Double,
    Single,
}

/// Splits `s` into `(key, value, quote)` tokens. Tokens without `=`
/// (`avc:  denied  { read } for`, `user` in old USER_CMD records) are
/// skipped. An unterminated quote is an error.
fn tokens(s: &str) -> Result<Vec<(&str, &str, Quote)>, String> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let start = i;
        while i < b.len() && b[i] != b'=' && b[i] != b' ' {
            i += 1;
        }
        if i >= b.len() || b[i] == b' ' {
            continue; // a bare word
        }
        let key = &s[start..i];
        i += 1; // '='
        let (q, close) = match b.get(i) {
            Some(b'"') => (Quote::Double, b'"'),
            Some(b'\'') => (Quote::Single, b'\''),
            _ => (Quote::None, b' '),
        };
        if q == Quote::None {
            let vs = i;
            while i < b.len() && b[i] != b' ' {
                i += 1;
            }
            out.push((key, &s[vs..i], q));
        } else {
            let vs = i + 1;
            match memchr::memchr(close, &b[vs..]) {
                Some(n) => {
                    out.push((key, &s[vs..vs + n], q));
                    i = vs + n + 1;
                }
                None => return Err(format!("unterminated quote in the value of `{key}`")),
            }
        }
    }
    Ok(out)
}

fn is_hex(v: &str) -> bool {
    !v.is_empty() && v.len().is_multiple_of(2) && v.bytes().all(|c| c.is_ascii_hexdigit())
}

/// Hex text → bytes (the caller checked [`is_hex`]).
fn unhex(v: &str) -> Vec<u8> {
    v.as_bytes()
        .chunks_exact(2)
        .filter_map(|p| u8::from_str_radix(std::str::from_utf8(p).ok()?, 16).ok())
        .collect()
}

/// `a12` → true (an EXECVE argument key).
fn is_arg(key: &str) -> bool {
    key.len() > 1 && key.starts_with('a') && key[1..].bytes().all(|c| c.is_ascii_digit())
}

/// `a1[0]` → `Some("a1")` (a piece of a split EXECVE argument).
fn arg_piece(key: &str) -> Option<&str> {
    let (base, rest) = key.split_once('[')?;
    (is_arg(base) && rest.ends_with(']')).then_some(base)
}

/// Decodes one value: hex for [`HEX_KEYS`] and EXECVE arguments
/// (`proctitle`: NUL between arguments → space), `key` values holding
/// several keys (`\x01`-separated) stay joined by `\x01` for the caller.
fn decode(rtype: &str, key: &str, value: &str, q: Quote) -> String {
    if q != Quote::None {
        return value.to_owned();
    }
    let hex_key = HEX_KEYS.contains(&key) || (rtype == "EXECVE" && is_arg(key));
    if !(hex_key && is_hex(value)) {
        return value.to_owned();
    }
    let bytes = unhex(value);
    let text = String::from_utf8_lossy(&bytes);
    if key == "proctitle" {
        text.replace('\0', " ").trim_end().to_owned()
    } else {
        text.into_owned()
    }
}

/// One piece of a split EXECVE argument (`a1[0]=…`): the argument's key
/// (`a1`), the value as written, and whether it is unquoted hex.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Piece {
    pub(crate) base: String,
    pub(crate) value: String,
    pub(crate) hex: bool,
}

/// Pushes decoded fields of `toks` into `out`; pieces of split EXECVE
/// arguments (`a1[0]=…`) go to `pieces` as written (the kernel spreads them
/// over several EXECVE records; [`Record::finish_pieces`] joins them);
/// `msg='…'` is flattened into its own key=value pairs when it has any,
/// else kept as `msg`.
fn push_fields(
    rtype: &str,
    toks: &[(&str, &str, Quote)],
    out: &mut Vec<(String, String)>,
    pieces: &mut Vec<Piece>,
) {
    for &(key, value, q) in toks {
        if rtype == "EXECVE" {
            if let Some(base) = arg_piece(key) {
                pieces.push(Piece {
                    base: base.to_owned(),
                    value: value.to_owned(),
                    hex: q == Quote::None && is_hex(value),
                });
                continue;
            }
        }
        if key == "msg" && q == Quote::Single {
            if let Ok(inner) = tokens(value) {
                if !inner.is_empty() {
                    push_fields(rtype, &inner, out, pieces);
                    continue;
                }
            }
        }
        let v = decode(rtype, key, value, q);
        if key == "key" && v.contains('\x01') {
            for k in v.split('\x01') {
                out.push((key.to_owned(), k.to_owned()));
            }
        } else {
            out.push((key.to_owned(), v));
        }
    }
}

impl Record {
    /// The `aN_len` declarations of this record: `(aN, hex chars)`.
    pub(crate) fn split_lens(&self) -> Vec<(String, usize)> {
        self.fields
            .iter()
            .filter_map(|(k, v)| {
                let base = k.strip_suffix("_len")?;
                is_arg(base).then(|| Some((base.to_owned(), v.parse().ok()?)))?
            })
            .collect()
    }

    /// True when every `aN_len` of this record is covered by its pieces.
    pub(crate) fn pieces_complete(&self) -> bool {
        self.split_lens().iter().all(|(base, n)| {
            let have: usize = self
                .pieces
                .iter()
                .filter(|p| &p.base == base)
                .map(|p| p.value.len())
                .sum();
            have >= *n
        })
    }

    /// Joins the split arguments into `aN` fields (hex pieces are joined
    /// before decoding, so a UTF-8 character cut between pieces survives),
    /// in the order their first piece came.
    pub(crate) fn finish_pieces(&mut self) {
        let pieces = std::mem::take(&mut self.pieces);
        let mut bases: Vec<&str> = Vec::new();
        for p in &pieces {
            if !bases.contains(&p.base.as_str()) {
                bases.push(&p.base);
            }
        }
        for base in bases {
            let mut bytes = Vec::new();
            for p in pieces.iter().filter(|p| p.base == base) {
                if p.hex {
                    bytes.extend(unhex(&p.value));
                } else {
                    bytes.extend_from_slice(p.value.as_bytes());
                }
            }
            let v = String::from_utf8_lossy(&bytes).into_owned();
            self.fields.push((base.to_owned(), v));
        }
    }
}

/// Parses one record line (without its line end).
///
/// Pieces of split EXECVE arguments stay in [`Record::pieces`] until
/// [`Record::finish_pieces`]. Fields: every `key=value` with quotes removed and hex decoded (see
/// [`decode`] / [`push_fields`]), then the enriched upper-case fields after
/// `\x1d` as written; when the record has a numeric `syscall` and no
/// enriched `SYSCALL`, a `SYSCALL` field with the name from
/// [`syscalls::name`] is appended.
///
/// # Errors
/// A reason when the line has no `type=` or no `msg=audit(<s>.<ms>:<serial>)`
/// header (an AUOMS `type=AUOMS_… audit(…)` row without `msg=` is named as
/// such), when the header's numbers do not parse, or a value's quote is not
/// closed (a cut line).
pub(crate) fn parse(line: &str) -> Result<Record, String> {
    let mut rest = line.trim_start();
    let mut node = None;
    if let Some(r) = rest.strip_prefix("node=") {
        let (n, r) = r.split_once(' ').unwrap_or((r, ""));
        node = Some(n.to_owned());
        rest = r.trim_start();
    }
    let r = rest
        .strip_prefix("type=")
        .ok_or("not an auditd record: no `type=` at the start")?;
    let (rtype, r) = r.split_once(' ').unwrap_or((r, ""));
    if rtype.is_empty()
        || !rtype
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'[' | b']' | b'-'))
    {
        return Err(format!("invalid record type `{rtype}`"));
    }
    let r = r.trim_start();
    let Some(r) = r.strip_prefix("msg=audit(") else {
        if r.starts_with("audit(") {
            return Err(format!(
                "`type={rtype} audit(…)` without `msg=` (an Azure AUOMS record, not auditd)"
            ));
        }
        return Err("no `msg=audit(<time>:<serial>)` after the record type".into());
    };
    let close = r
        .find(')')
        .ok_or("`msg=audit(` is not closed (a cut line?)")?;
    let id = &r[..close];
    let body = r[close + 1..].strip_prefix(':').unwrap_or(&r[close + 1..]);
    let (time, serial) = id
        .split_once(':')
        .ok_or_else(|| format!("audit id `{id}` is not <time>:<serial>"))?;
    let (s, ms) = time.split_once('.').unwrap_or((time, "0"));
    let bad = || format!("audit id `{id}` is not <epoch>.<ms>:<serial>");
    let secs: i64 = s.parse().map_err(|_| bad())?;
    let millis: u32 = ms.parse().map_err(|_| bad())?;
    let serial: u64 = serial.parse().map_err(|_| bad())?;
    if millis > 999 || !(0..=253_402_300_799).contains(&secs) {
        return Err(bad());
    }
    let (raw, enriched) = body.split_once('\x1d').unwrap_or((body, ""));
    let mut fields = Vec::new();
    let mut pieces = Vec::new();
    push_fields(rtype, &tokens(raw)?, &mut fields, &mut pieces);
    let mut has_syscall_name = false;
    for (k, v, _) in tokens(enriched)? {
        has_syscall_name |= k == "SYSCALL";
        fields.push((k.to_owned(), v.to_owned()));
    }
    if !has_syscall_name {
        let find = |n: &str| fields.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
        if let (Some(arch), Some(nr)) = (find("arch"), find("syscall")) {
            if let Some(name) = syscalls::name(arch, nr) {
                fields.push(("SYSCALL".into(), name.into()));
            }
        }
    }
    Ok(Record {
        node,
        rtype: rtype.to_owned(),
        secs,
        millis,
        serial,
        id: id.to_owned(),
        fields,
        pieces,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(r: &Record) -> Vec<String> {
        r.fields.iter().map(|(k, v)| format!("{k}={v}")).collect()
    }

    #[test]
    fn header_hex_and_enriched() {
        let r = parse("node=work type=SYSCALL msg=audit(1615114232.375:15558): arch=c000003e syscall=59 success=yes comm=\"whoami\" exe=2F7573722F62696E2F6964 key=(null)\x1dARCH=x86_64 SYSCALL=execve UID=\"root\"").unwrap();
        assert_eq!(r.node.as_deref(), Some("work"));
        assert_eq!(
            (r.rtype.as_str(), r.secs, r.millis, r.serial),
            ("SYSCALL", 1615114232, 375, 15558)
        );
        assert_eq!(
            f(&r),
            [
                "arch=c000003e",
                "syscall=59",
                "success=yes",
                "comm=whoami",
                "exe=/usr/bin/id",
                "key=(null)",
                "ARCH=x86_64",
                "SYSCALL=execve",
                "UID=root"
            ]
        );
        // No enrichment: the name comes from the table.
        let r =
            parse("type=SYSCALL msg=audit(1.002:3): arch=c000003e syscall=42 success=no").unwrap();
        assert_eq!(r.get("SYSCALL"), Some("connect"));
    }

    #[test]
    fn execve_split_args_proctitle_and_nested_msg() {
        let mut r = parse("type=EXECVE msg=audit(1.0:2): argc=3 a0=\"echo\" a1_len=10 a1[0]=616263 a1[1]=C3A9 a2=68692074686572650A").unwrap();
        assert!(r.pieces_complete());
        r.finish_pieces();
        assert_eq!(
            f(&r),
            [
                "argc=3",
                "a0=echo",
                "a1_len=10",
                "a2=hi there\n",
                "a1=abc\u{e9}"
            ]
        );
        let r = parse("type=PROCTITLE msg=audit(1.0:2): proctitle=7065726C002D65").unwrap();
        assert_eq!(r.get("proctitle"), Some("perl -e"));
        let r = parse("type=SERVICE_STOP msg=audit(1.0:2): pid=1 uid=0 msg='unit=ufw comm=\"systemd\" exe=\"/usr/lib/systemd/systemd\" res=success'").unwrap();
        assert_eq!(r.get("unit"), Some("ufw"));
        assert_eq!(r.get("res"), Some("success"));
        // Several keys in one hex value.
        let r = parse("type=SYSCALL msg=audit(1.0:2): key=61756F6D730164656C657465").unwrap();
        assert_eq!(f(&r), ["key=auoms", "key=delete"]);
    }

    #[test]
    fn wrong_shapes_are_errors() {
        for (line, why) in [
            (
                "type=AUOMS_EXECVE audit(1652292621.986:84138): a=1",
                "AUOMS",
            ),
            ("type=SYSCALL msg=audit(abc:1): x=1", "not <epoch>"),
            ("type=SYSCALL msg=audit(1.5", "not closed"),
            ("type=SYSCALL msg=audit(1.0:2): comm=\"cut", "unterminated"),
            ("hello world", "no `type=`"),
        ] {
            let e = parse(line).unwrap_err();
            assert!(e.contains(why), "{line}: {e}");
        }
    }
}
