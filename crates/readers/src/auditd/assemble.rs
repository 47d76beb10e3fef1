//! Assembly of auditd records into process-creation events
//! (`linux:process_creation`), bounded in memory.
//!
//! Records of one audit event share `node` + `msg=audit(<time>:<serial>)`
//! (the whole id is the key, so the serial rollover 4294967295 → 0 needs no
//! arithmetic: the times differ). Events interleave and may arrive out of
//! order or lose records, so an open event is complete when
//! * its `EOE` record arrives, or
//! * [`GRACE_RECORDS`] records of other events arrived since its last record, or
//! * more than [`MAX_OPEN`] events are open (the oldest is completed), or
//! * the file ends (all open events, oldest first).
//!
//! A completed event becomes a process-creation event when its `SYSCALL`
//! record is a successful `execve`/`execveat` and it has an `EXECVE` record
//! (a failed exec created no process). `ParentImage`/`ParentCommandLine`
//! come from the last completed event of the parent pid on the same node
//! earlier in the file (best effort; at most [`MAX_PIDS`] pids remembered).

use super::record::Record;
use std::collections::{HashMap, VecDeque};
use tracehunt_event::{Event, EventMeta, Value};

/// Records of other events after which an open event is taken as complete.
pub(crate) const GRACE_RECORDS: u64 = 512;
/// Most audit events held open at once.
pub(crate) const MAX_OPEN: usize = 4096;
/// Most pids whose image is remembered for `ParentImage` (then forgotten).
pub(crate) const MAX_PIDS: usize = 65_536;
/// Most bytes of `EXECVE` arguments kept per event (breaker finding: 3,000
/// records with one audit id piled 3 GB of arguments into one open event);
/// the arguments past it are dropped and counted in `tracehunt.dropped_fields`.
pub(crate) const MAX_ARG_BYTES: usize = 1 << 20;
/// Most bytes of images and command lines remembered for `ParentImage` and
/// `ParentCommandLine` (then forgotten, as at [`MAX_PIDS`]).
pub(crate) const MAX_PARENT_BYTES: usize = 64 << 20;

/// The `meta.channel` of assembled process events.
pub(crate) const CHANNEL: &str = "linux:process_creation";

type Key = (Option<String>, String);

#[derive(Default)]
struct Pending {
    gen: u64,
    first_line: u64,
    last_seen: u64,
    node: Option<String>,
    id: String,
    secs: i64,
    millis: u32,
    syscall: Option<Vec<(String, String)>>,
    args: Option<Vec<(usize, String)>>,
    /// Bytes of `args`, and the arguments dropped past [`MAX_ARG_BYTES`].
    arg_bytes: usize,
    args_dropped: u64,
    cwd: Option<String>,
    proctitle: Option<String>,
}

/// Groups records by event and emits process-creation events.
#[derive(Default)]
pub(crate) struct Assembler {
    open: HashMap<Key, Pending>,
    order: VecDeque<(Key, u64)>,
    seen: u64,
    gen: u64,
    parents: HashMap<(Option<String>, String), (String, Option<String>)>,
    /// Bytes held in `parents` (images and command lines).
    parent_bytes: usize,
}

impl Assembler {
    /// Feeds one record (read at line `line`); completed process events
    /// are appended to `out`.
    pub(crate) fn push(&mut self, rec: &Record, line: u64, out: &mut VecDeque<Event>) {
        self.seen += 1;
        let key = (rec.node.clone(), rec.id.clone());
        if rec.rtype == "EOE" {
            if let Some(p) = self.open.remove(&key) {
                self.complete(p, out);
            }
        } else {
            let seen = self.seen;
            let p = match self.open.get_mut(&key) {
                Some(p) => p,
                None => {
                    self.gen += 1;
                    self.order.push_back((key.clone(), self.gen));
                    self.open.entry(key).or_insert(Pending {
                        gen: self.gen,
                        first_line: line,
                        node: rec.node.clone(),
                        id: rec.id.clone(),
                        secs: rec.secs,
                        millis: rec.millis,
                        ..Pending::default()
                    })
                }
            };
            p.last_seen = seen;
            absorb(p, rec);
        }
        self.expire(out);
    }

    /// How many audit events are open.
    #[cfg(test)]
    pub(crate) fn open_len(&self) -> usize {
        self.open.len()
    }

    /// Completes every open event, oldest first (end of file).
    pub(crate) fn finish(&mut self, out: &mut VecDeque<Event>) {
        while let Some((key, gen)) = self.order.pop_front() {
            if let Some(p) = self.take(&key, gen) {
                self.complete(p, out);
            }
        }
    }

    fn take(&mut self, key: &Key, gen: u64) -> Option<Pending> {
        match self.open.get(key) {
            Some(p) if p.gen == gen => self.open.remove(key),
            _ => None,
        }
    }

    fn expire(&mut self, out: &mut VecDeque<Event>) {
        while let Some((key, gen)) = self.order.front().cloned() {
            let stale = match self.open.get(&key) {
                Some(p) if p.gen == gen => {
                    p.last_seen + GRACE_RECORDS < self.seen || self.open.len() > MAX_OPEN
                }
                _ => true, // already completed by its EOE: drop the entry
            };
            if !stale {
                break;
            }
            self.order.pop_front();
            if let Some(p) = self.take(&key, gen) {
                self.complete(p, out);
            }
        }
    }

    fn complete(&mut self, p: Pending, out: &mut VecDeque<Event>) {
        let Some(sys) = &p.syscall else { return };
        let get = |n: &str| sys.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
        let cmdline = p.args.as_ref().map(|a| {
            let mut a = a.clone();
            a.sort_by_key(|(i, _)| *i);
            a.into_iter().map(|(_, s)| s).collect::<Vec<_>>().join(" ")
        });
        let pid = get("pid").map(str::to_owned);
        let exe = get("exe").map(str::to_owned);
        let is_exec = matches!(get("SYSCALL"), Some("execve" | "execveat"));
        let ok = get("success") != Some("no");
        let mut ev = None;
        if is_exec && ok {
            if let Some(cmd) = &cmdline {
                ev = Some(self.process_event(&p, sys, cmd));
            }
        }
        if let (Some(pid), Some(exe)) = (pid, exe) {
            if self.parents.len() >= MAX_PIDS || self.parent_bytes >= MAX_PARENT_BYTES {
                self.parents.clear();
                self.parent_bytes = 0;
            }
            let key = (p.node.clone(), pid);
            let cmd = if is_exec && ok {
                cmdline
            } else {
                // Same image as known: keep its command line.
                self.parents
                    .get(&key)
                    .filter(|(e, _)| *e == exe)
                    .and_then(|(_, c)| c.clone())
            };
            self.parent_bytes += exe.len() + cmd.as_ref().map_or(0, String::len);
            self.parents.insert(key, (exe, cmd));
        }
        if let Some(ev) = ev {
            out.push_back(ev);
        }
    }

    fn process_event(&self, p: &Pending, sys: &[(String, String)], cmd: &str) -> Event {
        let get = |n: &str| sys.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
        let meta = EventMeta {
            timestamp: super::timestamp(p.secs, p.millis),
            computer: p.node.clone(),
            channel: Some(CHANNEL.into()),
            record_id: Some(p.first_line),
            ..EventMeta::default()
        };
        let mut ev = Event::with_meta(meta);
        let s = |v: &str| Value::Str(v.to_owned());
        let num = |v: &str| v.parse::<i64>().map_or_else(|_| s(v), Value::Int);
        if let Some(exe) = get("exe") {
            ev.push("Image", s(exe));
        }
        ev.push("CommandLine", s(cmd));
        if let Some(v) = get("pid") {
            ev.push("ProcessId", num(v));
        }
        if let Some(v) = get("ppid") {
            ev.push("ParentProcessId", num(v));
        }
        // The enriched name, else the uid (0 is always root).
        match (get("UID"), get("uid")) {
            (Some(name), _) => ev.push("User", s(name)),
            (None, Some("0")) => ev.push("User", s("root")),
            (None, Some(uid)) => ev.push("User", s(uid)),
            _ => {}
        }
        if let Some(v) = get("auid") {
            ev.push("LogonId", num(v));
        }
        if let Some(v) = &p.cwd {
            ev.push("CurrentDirectory", s(v));
        }
        if let Some(ppid) = get("ppid") {
            if let Some((img, pcmd)) = self.parents.get(&(p.node.clone(), ppid.to_owned())) {
                ev.push("ParentImage", s(img));
                if let Some(c) = pcmd {
                    ev.push("ParentCommandLine", s(c));
                }
            }
        }
        for k in [
            "SYSCALL", "syscall", "success", "exit", "comm", "exe", "uid", "auid", "euid", "gid",
            "egid", "ses", "tty", "key", "AUID", "EUID",
        ] {
            for (_, v) in sys.iter().filter(|(n, _)| n == k) {
                ev.push(k, s(v));
            }
        }
        if let Some(t) = &p.proctitle {
            ev.push("proctitle", s(t));
        }
        ev.push("audit_id", s(&p.id));
        if p.args_dropped > 0 {
            let n = i64::try_from(p.args_dropped).unwrap_or(i64::MAX);
            ev.push(crate::DROPPED_FIELD, Value::Int(n));
        }
        ev
    }
}

/// Takes what a process event needs from one record.
fn absorb(p: &mut Pending, rec: &Record) {
    match rec.rtype.as_str() {
        "SYSCALL" if p.syscall.is_none() => p.syscall = Some(rec.fields.clone()),
        "EXECVE" => {
            let args = p.args.get_or_insert_with(Vec::new);
            for (k, v) in &rec.fields {
                if let Some(i) = k.strip_prefix('a').and_then(|n| n.parse::<usize>().ok()) {
                    if p.arg_bytes + v.len() > MAX_ARG_BYTES {
                        p.args_dropped += 1;
                        continue;
                    }
                    p.arg_bytes += v.len();
                    args.push((i, v.clone()));
                }
            }
        }
        "CWD" => p.cwd = rec.get("cwd").map(str::to_owned),
        "PROCTITLE" => p.proctitle = rec.get("proctitle").map(str::to_owned),
        _ => {}
    }
}
