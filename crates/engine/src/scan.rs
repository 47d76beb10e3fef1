//! Per-thread scanning.

use crate::compile::Ruleset;
use crate::matcher::{EventView, FieldId};
use foldhash::{HashMap, HashMapExt};
use std::sync::Arc;
use tracehunt_event::{Event, Value};

/// What an event of one (channel, EventID) needs: its candidate rules and
/// which needle automata can mark one of them.
struct Route {
    /// `(rule index, source index)` pairs in rule order.
    cands: Box<[(u32, u32)]>,
    /// Per interned field id: some prefiltered candidate has a needle in
    /// that field's automaton (the others are not run: their marks could
    /// only reach rules this event is never evaluated against).
    scan_field: Box<[bool]>,
    /// Some candidate is prefiltered (else no automaton runs).
    any_prefiltered: bool,
    /// The keyword needles of this route's candidates (the any-field
    /// automaton restricted to them: e.g. a Sysmon event meets the ~20
    /// needles of the Windows keyword rules, not the ~600 of all products).
    keywords: Option<crate::compile::SubIndex>,
    /// The sources of `cands` with derived fields, ascending: their
    /// derivations are computed for each event of the route.
    derived: Box<[u32]>,
}

/// The routes of one (channel, EventID) key.
struct RouteEntry {
    /// The key's EventID.
    eid: Option<u32>,
    /// Every rule of the key's sources.
    full: Arc<Route>,
    /// `full` without the rules whose detection pins other EventIDs
    /// ([`Ruleset::event_ids`](crate::compile::Ruleset)); used when the
    /// event's one `EventID` value is canonical and equals `eid`.
    narrow: Arc<Route>,
}

/// The EventID a value states canonically: `Value::Int` in `u32` range, or
/// text that is exactly a `u32`'s decimal form (no sign, space or leading
/// zero). Only then do the rules' `EventID` matchers (numeric equality and
/// exact text) agree with a plain comparison against the number.
fn canonical_event_id(v: &Value) -> Option<u32> {
    match v {
        Value::Int(i) => u32::try_from(*i).ok(),
        Value::Str(s) => {
            let b = s.as_bytes();
            let ok =
                !b.is_empty() && b.iter().all(u8::is_ascii_digit) && (b[0] != b'0' || b.len() == 1);
            if ok {
                s.parse().ok()
            } else {
                None
            }
        }
        _ => None,
    }
}

/// Most (channel, EventID) keys a scanner caches before starting over.
const MAX_ROUTE_KEYS: usize = 1 << 16;

/// Most channels whose events a [`Scanner`] counts
/// ([`Scanner::channel_events`]).
pub const MAX_COUNTED_CHANNELS: usize = 1024;

/// Most raw field names a scanner caches (with their interned id) before
/// starting over: a log that invents a field name per event cannot grow it.
const MAX_NAME_CACHE: usize = 1 << 12;

/// Scans events against a [`Ruleset`]. One per thread: it owns the scratch
/// space (field positions, case-folded values, routing cache, prefilter
/// marks); the ruleset stays shared and untouched.
pub struct Scanner<'r> {
    rs: &'r Ruleset,
    /// Routing cache: lower-case channel → EventID → route.
    routes: HashMap<String, HashMap<Option<u32>, Arc<RouteEntry>>>,
    /// Number of (channel, EventID) keys in `routes` (bounded by
    /// [`MAX_ROUTE_KEYS`]).
    route_keys: usize,
    /// Events scanned per lower-case channel (at most
    /// [`MAX_COUNTED_CHANNELS`] channels; [`Scanner::channel_events`]).
    channel_events: HashMap<String, u64>,
    /// Routes by candidate list: keys with the same candidates share one
    /// route (and one keyword automaton), so a log with many distinct
    /// channels or EventIDs builds only as many as there are distinct
    /// candidate sets.
    by_cands: HashMap<Box<[(u32, u32)]>, Arc<Route>>,
    slots: Vec<Vec<u32>>,
    touched: Vec<FieldId>,
    /// Text of non-string values, concatenated; spans per field.
    text_buf: String,
    text_span: Vec<(u32, u32)>,
    /// Per field position: its interned id, if any rule names it.
    ids: Vec<Option<FieldId>>,
    /// Raw field name (as the reader spells it) → interned id, so a
    /// name is folded with [`field_key`] once, not once per event.
    name_ids: HashMap<Box<str>, Option<FieldId>>,
    /// Case-folded text of every value, concatenated; spans per field.
    lower_buf: String,
    lower_span: Vec<(u32, u32)>,
    /// Values made for the current event: trimmed padded values and
    /// derived fields' values, with what each stands for.
    synth: Vec<Value>,
    synth_at: Vec<Synth>,
    memo: Vec<u8>,
    key: String,
    lname: String,
    /// Prefilter marks: a needle/rule is hit in the current event when its
    /// stamp equals `stamp`.
    needle_stamp: Vec<u32>,
    rule_stamp: Vec<u32>,
    stamp: u32,
}

/// What a value made by the scanner stands for.
#[derive(Clone, Copy)]
enum Synth {
    /// The value at this position, without its padding.
    Replace(u32),
    /// One more value of this (virtual) field.
    Add(FieldId),
}

struct View<'a> {
    fields: &'a [&'a Value],
    /// Positions below this are the event's own fields; above, derived
    /// values (never searched by keywords).
    real: u32,
    slots: &'a [Vec<u32>],
    text_buf: &'a str,
    text_span: &'a [(u32, u32)],
    lower_buf: &'a str,
    lower_span: &'a [(u32, u32)],
}

impl EventView for View<'_> {
    fn positions(&self, id: FieldId) -> &[u32] {
        self.slots.get(id as usize).map_or(&[], |v| &v[..])
    }
    fn all_positions(&self) -> std::ops::Range<u32> {
        0..self.real
    }
    fn value(&self, pos: u32) -> &Value {
        self.fields[pos as usize]
    }
    fn text(&self, pos: u32) -> &str {
        match self.fields[pos as usize] {
            Value::Str(s) => s,
            _ => {
                let (a, b) = self.text_span[pos as usize];
                &self.text_buf[a as usize..b as usize]
            }
        }
    }
    fn lower(&self, pos: u32) -> &str {
        let (a, b) = self.lower_span[pos as usize];
        &self.lower_buf[a as usize..b as usize]
    }
}

/// The key a field name is interned under: ASCII lower-case with spaces
/// removed, so `Threat Name` (Defender EventData) and `ThreatName` (the
/// Sigma rule's spelling) are the same field, as in Hayabusa and pySigma's
/// Windows pipelines.
pub(crate) fn field_key(name: &str, out: &mut String) {
    out.clear();
    out.extend(
        name.chars()
            .filter(|c| *c != ' ')
            .map(|c| c.to_ascii_lowercase()),
    );
}

/// `s` case-folded as event values are: each character's Unicode lower
/// case on its own (`char::to_lowercase`), with no context rule. Rule
/// values must be folded with this too, not `str::to_lowercase`, whose
/// final-sigma rule turns a word-final `Σ` into `ς` where an event value's
/// `Σ` becomes `σ` (breaker finding: `contains: 'ΟΔΟΣ'` did not match the
/// value `ΟΔΟΣ`, and the prefilter dropped a `|cased` rule that matched).
/// Folding character by character also keeps `fold(a + b) = fold(a) +
/// fold(b)`, which the prefilter needs.
pub(crate) fn fold_case(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    push_lower(&mut out, s);
    out
}

/// Appends `s` case-folded (Unicode lower case): its ASCII runs copied and
/// lower-cased in place, each other character through `char::to_lowercase`.
/// Folding every character of a value with a few non-ASCII ones one by one
/// (through `String: Extend<char>`, out of line) was 5-6 % of the flat JSON
/// lane's CPU in one build.
fn push_lower(buf: &mut String, s: &str) {
    let mut rest = s;
    while !rest.is_empty() {
        let n = rest
            .bytes()
            .position(|b| !b.is_ascii())
            .unwrap_or(rest.len());
        let start = buf.len();
        buf.push_str(&rest[..n]);
        // ASCII lower-casing keeps UTF-8 validity.
        buf[start..].make_ascii_lowercase();
        rest = &rest[n..];
        let mut chars = rest.chars();
        if let Some(c) = chars.next() {
            for l in c.to_lowercase() {
                buf.push(l);
            }
            rest = chars.as_str();
        }
    }
}

/// Appends the text and the case-folded text of `v` (for its position)
/// to the scanner's buffers; the folded text is followed by a NUL.
fn push_texts(
    v: &Value,
    text_buf: &mut String,
    text_span: &mut Vec<(u32, u32)>,
    lower_buf: &mut String,
    lower_span: &mut Vec<(u32, u32)>,
) {
    let a = text_buf.len() as u32;
    let lower_a = lower_buf.len() as u32;
    match v {
        Value::Str(s) => push_lower(lower_buf, s),
        // Digits have no case: no allocation, no folding.
        Value::Int(i) => {
            let mut b = itoa::Buffer::new();
            let t = b.format(*i);
            text_buf.push_str(t);
            lower_buf.push_str(t);
        }
        other => {
            let t = other.to_text();
            text_buf.push_str(&t);
            push_lower(lower_buf, &t);
        }
    }
    text_span.push((a, text_buf.len() as u32));
    lower_span.push((lower_a, lower_buf.len() as u32));
    // Values are NUL-separated so that the keyword automaton runs
    // once over the whole buffer (no needle holds a NUL; a needle
    // straddling two values could only add a rule to evaluate).
    lower_buf.push('\0');
}

/// The decimal form of a `0x…` hexadecimal text (4688's process ids).
fn hex_value(s: &str) -> Option<i64> {
    let h = s.trim();
    let h = h.strip_prefix("0x").or_else(|| h.strip_prefix("0X"))?;
    if h.is_empty() || h.len() > 15 {
        return None;
    }
    i64::from_str_radix(h, 16).ok()
}

/// Computes the derived values of `d` for one event (fields `fields`,
/// positions by id `slots`) into `synth`/`synth_at`.
fn derive(
    d: &crate::compile::CompiledDerived,
    fields: &[&Value],
    slots: &[Vec<u32>],
    synth: &mut Vec<Value>,
    synth_at: &mut Vec<Synth>,
) {
    let positions = |f: FieldId| slots.get(f as usize).map_or(&[][..], |v| &v[..]);
    if let Some(sep) = &d.join {
        let mut out = String::new();
        for (i, &f) in d.from.iter().enumerate() {
            let Some(&p) = positions(f).first() else {
                return;
            };
            let t = fields[p as usize].to_text();
            if t.is_empty() {
                return;
            }
            if i > 0 {
                out.push_str(sep);
            }
            out.push_str(&t);
        }
        synth.push(Value::Str(out));
        synth_at.push(Synth::Add(d.to));
        return;
    }
    for &f in &d.from {
        for &p in positions(f) {
            let v = fields[p as usize];
            synth.push(v.clone());
            synth_at.push(Synth::Add(d.to));
            let t = v.to_text();
            if !d.values.is_empty() {
                let key = t.trim().to_ascii_lowercase();
                if let Some(m) = d.values.get(&key) {
                    synth.push(Value::Str(m.clone()));
                    synth_at.push(Synth::Add(d.to));
                }
            }
            if d.hex {
                if let Some(n) = hex_value(&t) {
                    synth.push(Value::Int(n));
                    synth_at.push(Synth::Add(d.to));
                }
            }
        }
    }
}

/// Runs a needle automaton over case-folded text and stamps every rule
/// whose needle occurs. `sub` is a route's smaller automaton over some of
/// `idx`'s needles (its pattern ids mapped to `idx`'s), or `None` to run
/// `idx`'s own.
fn mark(
    idx: &crate::compile::NeedleIndex,
    sub: Option<&crate::compile::SubIndex>,
    text: &str,
    needle_stamp: &mut [u32],
    rule_stamp: &mut [u32],
    stamp: u32,
) {
    let hit = |p: usize| {
        let pid = match sub {
            Some(s) => s.pats[p] as usize,
            None => p,
        };
        let g = idx.base + pid;
        if needle_stamp[g] != stamp {
            needle_stamp[g] = stamp;
            for &r in &idx.rules[pid] {
                rule_stamp[r as usize] = stamp;
            }
        }
    };
    let (search, count) = match sub {
        Some(s) => (s.ac.as_ref(), s.pats.len()),
        None => (idx.search(), idx.needles.len()),
    };
    match search {
        Some(search) => search.for_each_hit(text.as_bytes(), hit),
        // No automaton could be built: every needle counts as present.
        None => (0..count).for_each(hit),
    }
}

impl<'r> Scanner<'r> {
    /// A scanner over `ruleset`.
    pub fn new(ruleset: &'r Ruleset) -> Self {
        Scanner {
            rs: ruleset,
            routes: HashMap::new(),
            route_keys: 0,
            channel_events: HashMap::new(),
            by_cands: HashMap::new(),
            slots: vec![Vec::new(); ruleset.name_count],
            touched: Vec::new(),
            text_buf: String::new(),
            text_span: Vec::new(),
            ids: Vec::new(),
            name_ids: HashMap::new(),
            lower_buf: String::new(),
            lower_span: Vec::new(),
            synth: Vec::new(),
            synth_at: Vec::new(),
            memo: Vec::new(),
            key: String::new(),
            lname: String::new(),
            needle_stamp: vec![0; ruleset.needle_count],
            rule_stamp: vec![0; ruleset.rules.len()],
            stamp: 0,
        }
    }

    /// The ruleset this scanner reads.
    pub fn ruleset(&self) -> &'r Ruleset {
        self.rs
    }

    fn route(&mut self, ev: &Event) -> Arc<RouteEntry> {
        let channel = ev
            .meta
            .channel
            .as_deref()
            .or_else(|| ev.first("Channel").and_then(Value::as_str))
            .unwrap_or("");
        let eid = ev.meta.event_id.or_else(|| {
            ev.first("EventID")
                .and_then(Value::as_i64)
                .map(|i| i as u32)
        });
        self.key.clear();
        self.key.push_str(channel);
        self.key.make_ascii_lowercase();
        let counted = self.channel_events.len();
        match self.channel_events.get_mut(self.key.as_str()) {
            Some(n) => *n += 1,
            None if counted < MAX_COUNTED_CHANNELS => {
                self.channel_events.insert(self.key.clone(), 1);
            }
            None => {}
        }
        if let Some(r) = self.routes.get(self.key.as_str()).and_then(|m| m.get(&eid)) {
            return r.clone();
        }
        let mut cands: Vec<(u32, u32)> = Vec::new();
        for (si, s) in self.rs.sources.iter().enumerate() {
            let ch_ok = if s.channels.is_empty() {
                !tracehunt_sigma::channel_listed(&s.not_channels, &self.key)
            } else {
                s.channels.contains(&self.key)
            };
            let id_ok = s.event_ids.is_empty() || eid.is_some_and(|e| s.event_ids.contains(&e));
            if ch_ok && id_ok {
                cands.extend(s.rules.iter().map(|&r| (r, si as u32)));
            }
        }
        // One entry per rule (first source wins), in rule order.
        cands.sort_by_key(|&(r, s)| (r, s));
        cands.dedup_by_key(|&mut (r, _)| r);
        let narrow: Vec<(u32, u32)> = match (eid, self.rs.eventid_field) {
            (Some(e), Some(f)) => cands
                .iter()
                .copied()
                .filter(|&(r, si)| {
                    match &self.rs.event_ids[r as usize] {
                        // A source that renames EventID reads another field.
                        Some(ids) => {
                            ids.binary_search(&e).is_ok()
                                || self.rs.sources[si as usize].remap.contains_key(&f)
                        }
                        None => true,
                    }
                })
                .collect(),
            _ => cands.clone(),
        };
        let route = Arc::new(RouteEntry {
            eid,
            full: self.shared_route(cands),
            narrow: self.shared_route(narrow),
        });
        // A hostile log can name millions of channels/EventIDs: the key
        // cache starts over rather than grow without bound.
        if self.route_keys >= MAX_ROUTE_KEYS {
            self.routes.clear();
            self.route_keys = 0;
        }
        self.route_keys += 1;
        self.routes
            .entry(self.key.clone())
            .or_default()
            .insert(eid, route.clone());
        route
    }

    /// The route of a candidate list, shared with every key that has it.
    fn shared_route(&mut self, cands: Vec<(u32, u32)>) -> Arc<Route> {
        match self.by_cands.get(&cands[..]) {
            Some(r) => r.clone(),
            None => {
                let r = Arc::new(self.build_route(cands.clone().into()));
                self.by_cands.insert(cands.into(), r.clone());
                r
            }
        }
    }

    fn build_route(&self, cands: Box<[(u32, u32)]>) -> Route {
        let mut scan_field = vec![false; self.rs.name_count];
        let mut any_prefiltered = false;
        let mut kw_rules = vec![false; self.rs.rules.len()];
        let mut any_keyword = false;
        let mut derived: Vec<u32> = cands
            .iter()
            .map(|&(_, si)| si)
            .filter(|&si| !self.rs.sources[si as usize].derived.is_empty())
            .collect();
        derived.sort_unstable();
        derived.dedup();
        for &(r, _) in cands.iter() {
            let r = r as usize;
            if self.rs.prefiltered[r] {
                any_prefiltered = true;
                if self.rs.any_field[r] {
                    any_keyword = true;
                    kw_rules[r] = true;
                }
                for &f in self.rs.rule_fields[r].iter() {
                    scan_field[f as usize] = true;
                }
            }
        }
        let keywords = match &self.rs.kw_prefilter {
            Some(kw) if any_keyword => kw.subset(|r| kw_rules[r as usize]),
            _ => None,
        };
        Route {
            cands,
            scan_field: scan_field.into(),
            any_prefiltered,
            keywords,
            derived: derived.into(),
        }
    }

    /// Events this scanner was given, per lower-case channel (`""`: no
    /// channel), for the channels first met while fewer than
    /// [`MAX_COUNTED_CHANNELS`] were counted.
    pub fn channel_events(&self) -> impl Iterator<Item = (&str, u64)> {
        self.channel_events.iter().map(|(c, n)| (c.as_str(), *n))
    }

    /// Appends to `out` the index of every rule that matches `ev`, in
    /// ascending rule order (deterministic). Never panics on any event.
    pub fn scan(&mut self, ev: &Event, out: &mut Vec<usize>) {
        let entry = self.route(ev);
        if entry.full.cands.is_empty() {
            return;
        }
        // Field positions by interned id; text and case-folded text once.
        for &id in &self.touched {
            self.slots[id as usize].clear();
        }
        self.touched.clear();
        self.text_buf.clear();
        self.text_span.clear();
        self.lower_buf.clear();
        self.lower_span.clear();
        self.ids.clear();
        self.synth.clear();
        self.synth_at.clear();
        let mut fields: Vec<&Value> = Vec::with_capacity(ev.len());
        for (pos, (name, v)) in ev.fields().enumerate() {
            fields.push(v);
            let id = match self.name_ids.get(name) {
                Some(&id) => id,
                None => {
                    field_key(name, &mut self.lname);
                    let id = self
                        .rs
                        .names
                        .get(self.lname.as_str())
                        .copied()
                        .filter(|&id| !self.rs.is_virtual[id as usize]);
                    if self.name_ids.len() >= MAX_NAME_CACHE {
                        self.name_ids.clear();
                    }
                    self.name_ids.insert(name.into(), id);
                    id
                }
            };
            self.ids.push(id);
            if let Some(id) = id {
                let slot = &mut self.slots[id as usize];
                if slot.is_empty() {
                    self.touched.push(id);
                }
                slot.push(pos as u32);
            }
            // A padded field (`"NtLmSsp "`) is compared without its padding.
            if let (Some(id), Value::Str(s)) = (id, v) {
                if self.rs.padded[id as usize] && s.ends_with(' ') {
                    self.synth
                        .push(Value::Str(s.trim_end_matches(' ').to_owned()));
                    self.synth_at.push(Synth::Replace(pos as u32));
                }
            }
            push_texts(
                v,
                &mut self.text_buf,
                &mut self.text_span,
                &mut self.lower_buf,
                &mut self.lower_span,
            );
        }
        let real = fields.len() as u32;
        // The keyword automaton reads the event's own values only.
        let kw_end = self.lower_buf.len();
        // Derived fields of the route's sources (issue #20 item 10: 4688's
        // MandatoryLabel SID as an IntegrityLevel name, Subject* as User).
        for &si in entry.full.derived.iter() {
            for d in &self.rs.sources[si as usize].derived {
                derive(d, &fields, &self.slots, &mut self.synth, &mut self.synth_at);
            }
        }
        for (v, at) in self.synth.iter().zip(self.synth_at.iter()) {
            match *at {
                Synth::Replace(pos) => {
                    fields[pos as usize] = v;
                    // Its folded text, for the matchers (the padded one stays
                    // in the keyword text, which only marks candidates).
                    let a = self.lower_buf.len() as u32;
                    if let Value::Str(s) = v {
                        push_lower(&mut self.lower_buf, s);
                    }
                    self.lower_span[pos as usize] = (a, self.lower_buf.len() as u32);
                    self.lower_buf.push('\0');
                }
                Synth::Add(id) => {
                    let pos = fields.len() as u32;
                    fields.push(v);
                    self.ids.push(Some(id));
                    let slot = &mut self.slots[id as usize];
                    if slot.is_empty() {
                        self.touched.push(id);
                    }
                    slot.push(pos);
                    push_texts(
                        v,
                        &mut self.text_buf,
                        &mut self.text_span,
                        &mut self.lower_buf,
                        &mut self.lower_span,
                    );
                }
            }
        }

        // Rules pinned to other EventIDs are left out when the event's one
        // EventID value is canonical (else every rule of the key is a
        // candidate).
        let trusted = match (entry.eid, self.rs.eventid_field) {
            (Some(e), Some(f)) => match self.slots[f as usize][..] {
                [p] => canonical_event_id(fields[p as usize]) == Some(e),
                _ => false,
            },
            _ => false,
        };
        let route = if trusted { &entry.narrow } else { &entry.full };
        let cands = &route.cands;
        if cands.is_empty() {
            return;
        }

        // Prefilter: mark the rules whose needles occur in some value.
        self.stamp = self.stamp.wrapping_add(1);
        if self.stamp == 0 {
            self.needle_stamp.iter_mut().for_each(|s| *s = 0);
            self.rule_stamp.iter_mut().for_each(|s| *s = 0);
            self.stamp = 1;
        }
        let stamp = self.stamp;
        if route.any_prefiltered {
            for (pos, &(a, b)) in self.lower_span.iter().enumerate() {
                let Some(id) = self.ids[pos] else { continue };
                if !route.scan_field[id as usize] {
                    continue;
                }
                if let Some(Some(idx)) = self.rs.field_prefilter.get(id as usize) {
                    mark(
                        idx,
                        None,
                        &self.lower_buf[a as usize..b as usize],
                        &mut self.needle_stamp,
                        &mut self.rule_stamp,
                        stamp,
                    );
                }
            }
            // Keyword selections may match in any field: one pass over all
            // values (one automaton call per event, not per field).
            if let (Some(kw), Some(sub)) = (&self.rs.kw_prefilter, &route.keywords) {
                mark(
                    kw,
                    Some(sub),
                    &self.lower_buf[..kw_end],
                    &mut self.needle_stamp,
                    &mut self.rule_stamp,
                    stamp,
                );
            }
        }

        let view = View {
            fields: &fields,
            real,
            slots: &self.slots,
            text_buf: &self.text_buf,
            text_span: &self.text_span,
            lower_buf: &self.lower_buf,
            lower_span: &self.lower_span,
        };
        for &(ri, si) in cands.iter() {
            if self.rs.prefiltered[ri as usize] && self.rule_stamp[ri as usize] != stamp {
                continue;
            }
            let rule = &self.rs.rules[ri as usize];
            let remap_map = &self.rs.sources[si as usize].remap;
            let remap = |id: FieldId| -> FieldId {
                if remap_map.is_empty() {
                    id
                } else {
                    remap_map.get(&id).copied().unwrap_or(id)
                }
            };
            self.memo.clear();
            self.memo.resize(rule.dets.len(), 0);
            if rule.cond.eval(&rule.dets, &mut self.memo, &view, &remap) {
                out.push(ri as usize);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{compile, CompileOptions};
    use tracehunt_event::EventMeta;

    /// Folding by ASCII runs gives what folding every character on its own
    /// gives (multi-character lower cases, final sigma, mixed text).
    #[test]
    fn push_lower_folds_ascii_runs_and_other_characters_alike() {
        for s in [
            "",
            "ABC",
            "C:\\Users\\ÉLODIE\\Ünïcode.EXE",
            "İSTANBUL",
            "ΟΔΟΣ x",
            "日本語ABC日本",
            "ẞ",
            "aé",
        ] {
            let want: String = s.chars().flat_map(char::to_lowercase).collect();
            let mut got = String::from("prefix");
            push_lower(&mut got, s);
            assert_eq!(got, format!("prefix{want}"), "{s:?}");
        }
    }

    /// Breaker-style input: every event names a channel of its own. The
    /// per-route state (keyword automaton, field mask) was built once per
    /// (channel, EventID) key; now once per distinct candidate set, and the
    /// key cache is bounded.
    #[test]
    fn a_new_channel_per_event_builds_one_route_and_bounded_keys() {
        let yaml = "title: K\nid: 00000000-0000-4000-8000-0000000000aa\nlogsource: {product: windows}\ndetection:\n  keywords:\n    - 'sekurlsa::'\n  condition: keywords\nlevel: high\n";
        let f = tracehunt_sigma::load_rules("k.yml", yaml);
        let (rs, d) = compile(f.rules, &CompileOptions::default());
        assert!(d.is_empty(), "{d:?}");
        let mut sc = Scanner::new(&rs);
        let mut out = Vec::new();
        let n = MAX_ROUTE_KEYS + 1000;
        let mut hits = 0;
        for i in 0..n {
            let mut ev = Event::with_meta(EventMeta {
                channel: Some(format!("chan-{i}")),
                event_id: Some(1),
                ..EventMeta::default()
            });
            let v = if i % 1000 == 0 {
                "x sekurlsa::logonpasswords"
            } else {
                "benign"
            };
            ev.push("Data", Value::from(v));
            out.clear();
            sc.scan(&ev, &mut out);
            hits += out.len();
        }
        assert_eq!(hits, n.div_ceil(1000));
        assert_eq!(sc.by_cands.len(), 1);
        assert!(sc.route_keys <= MAX_ROUTE_KEYS);
        assert_eq!(sc.route_keys, n - MAX_ROUTE_KEYS);
    }

    fn security_event(meta_eid: u32, eid: Value, logon_type: i64) -> Event {
        let mut ev = Event::with_meta(EventMeta {
            channel: Some("Security".into()),
            event_id: Some(meta_eid),
            ..EventMeta::default()
        });
        ev.push("EventID", eid);
        ev.push("LogonType", Value::Int(logon_type));
        ev
    }

    const LOGON_RULE: &str = "title: L\nid: 00000000-0000-4000-8000-0000000000bb\nlogsource: {product: windows, service: security}\ndetection:\n  sel:\n    EventID:\n      - 4624\n      - 4625\n    LogonType: 10\n  filter:\n    LogonType: 3\n  condition: sel and not filter\nlevel: high\n";

    /// A rule pinned to EventIDs 4624/4625 is no candidate of a 4688
    /// event (it was evaluated on every Security event), and still matches
    /// its own.
    #[test]
    fn rule_pinned_to_event_ids_is_left_out_of_other_event_ids() {
        let f = tracehunt_sigma::load_rules("l.yml", LOGON_RULE);
        let (rs, d) = compile(f.rules, &CompileOptions::default());
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(rs.event_ids[0].as_deref(), Some(&[4624, 4625][..]));
        let mut sc = Scanner::new(&rs);
        let mut out = Vec::new();
        sc.scan(&security_event(4688, Value::Int(4688), 10), &mut out);
        assert!(out.is_empty());
        let e = sc.routes["security"][&Some(4688)].clone();
        assert_eq!(e.full.cands.len(), 1);
        assert_eq!(e.narrow.cands.len(), 0);
        for eid in [Value::Int(4625), Value::from("4625")] {
            out.clear();
            sc.scan(&security_event(4625, eid, 10), &mut out);
            assert_eq!(out, vec![0]);
        }
        out.clear();
        sc.scan(&security_event(4625, Value::Int(4625), 3), &mut out);
        assert!(out.is_empty());
    }

    /// The narrowed candidates are only used when the event's EventID
    /// field states the routing EventID canonically: a padded or
    /// zero-led text value, a header EventID that disagrees with the field
    /// or a repeated EventID field all fall back to every rule (the
    /// matchers compare numerically and would match).
    #[test]
    fn event_id_routing_falls_back_when_the_field_is_not_canonical() {
        let f = tracehunt_sigma::load_rules("l.yml", LOGON_RULE);
        let (rs, _) = compile(f.rules, &CompileOptions::default());
        let mut sc = Scanner::new(&rs);
        let mut out = Vec::new();
        for (meta, v) in [
            (4688, Value::from(" 4624")),
            (4688, Value::from("04624")),
            (4688, Value::Float(4624.0)),
            (4688, Value::Int(4624)),
            (1, Value::from("4624")),
        ] {
            out.clear();
            sc.scan(&security_event(meta, v.clone(), 10), &mut out);
            assert_eq!(out, vec![0], "header {meta}, field {v:?}");
        }
        let mut ev = security_event(4688, Value::Int(4688), 10);
        ev.push("EventID", Value::Int(4624));
        out.clear();
        sc.scan(&ev, &mut out);
        assert_eq!(out, vec![0]);
    }

    /// `no_prefilter` (the differential tests' reference) pins nothing.
    #[test]
    fn no_prefilter_disables_event_id_routing() {
        let f = tracehunt_sigma::load_rules("l.yml", LOGON_RULE);
        let opts = CompileOptions {
            no_prefilter: true,
            ..CompileOptions::default()
        };
        let (rs, _) = compile(f.rules, &opts);
        assert_eq!(rs.event_ids[0], None);
    }

    /// Breaker-style input: every event invents field names. The raw-name
    /// cache stays bounded and a cleared cache still resolves the rule's
    /// field (its `Image` spelled `image` and `I MAGE` alike).
    #[test]
    fn a_new_field_name_per_event_keeps_the_name_cache_bounded() {
        let yaml = "title: W\nid: 00000000-0000-4000-8000-0000000000dd\nlogsource: {product: windows}\ndetection:\n  sel:\n    Image|endswith: '\\whoami.exe'\n  condition: sel\nlevel: high\n";
        let f = tracehunt_sigma::load_rules("w.yml", yaml);
        let (rs, d) = compile(f.rules, &CompileOptions::default());
        assert!(d.is_empty(), "{d:?}");
        let mut sc = Scanner::new(&rs);
        let mut out = Vec::new();
        let mut hits = 0;
        let n = 3 * MAX_NAME_CACHE;
        for i in 0..n {
            let mut ev = Event::with_meta(EventMeta {
                channel: Some("x".into()),
                ..EventMeta::default()
            });
            ev.push(format!("f{i}"), Value::Int(i as i64));
            let name = if i % 2 == 0 { "image" } else { "I MAGE" };
            ev.push(name, Value::from("C:\\Windows\\System32\\WHOAMI.EXE"));
            out.clear();
            sc.scan(&ev, &mut out);
            hits += out.len();
            assert!(sc.name_ids.len() <= MAX_NAME_CACHE);
        }
        assert_eq!(hits, n);
    }
}
