//! Per-thread scanning.

use crate::compile::Ruleset;
use crate::matcher::{EventView, FieldId};
use std::collections::HashMap;
use std::sync::Arc;
use tracehunt_event::{Event, Value};

/// `(lower-case channel, EventID)`.
type RouteKey = (String, Option<u32>);
/// `(rule index, source index)` pairs in rule order.
type Candidates = Arc<[(u32, u32)]>;

/// Scans events against a [`Ruleset`]. One per thread: it owns the scratch
/// space (field positions, case-folded values, routing cache), the ruleset
/// stays shared and untouched.
pub struct Scanner<'r> {
    rs: &'r Ruleset,
    /// `(lower-case channel, EventID)` → candidate `(rule, source)` pairs.
    routes: HashMap<RouteKey, Candidates>,
    slots: Vec<Vec<u32>>,
    touched: Vec<FieldId>,
    lower: Vec<Option<String>>,
    text: Vec<Option<String>>,
    memo: Vec<u8>,
    key: String,
}

struct View<'a, 'e> {
    ev: &'e Event,
    fields: Vec<&'e Value>,
    slots: &'a [Vec<u32>],
    lower: &'a mut Vec<Option<String>>,
    text: &'a mut Vec<Option<String>>,
}

impl EventView for View<'_, '_> {
    fn positions(&self, id: FieldId) -> &[u32] {
        self.slots.get(id as usize).map_or(&[], |v| &v[..])
    }
    fn all_positions(&self) -> std::ops::Range<u32> {
        0..self.ev.len() as u32
    }
    fn value(&self, pos: u32) -> &Value {
        self.fields[pos as usize]
    }
    fn text(&mut self, pos: u32) -> &str {
        let v = self.fields[pos as usize];
        if let Value::Str(s) = v {
            return s;
        }
        self.text[pos as usize].get_or_insert_with(|| v.to_text().into_owned())
    }
    fn lower(&mut self, pos: u32) -> &str {
        let v = self.fields[pos as usize];
        self.lower[pos as usize].get_or_insert_with(|| v.to_text().to_lowercase())
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

impl<'r> Scanner<'r> {
    /// A scanner over `ruleset`.
    pub fn new(ruleset: &'r Ruleset) -> Self {
        Scanner {
            rs: ruleset,
            routes: HashMap::new(),
            slots: vec![Vec::new(); ruleset.name_count],
            touched: Vec::new(),
            lower: Vec::new(),
            text: Vec::new(),
            memo: Vec::new(),
            key: String::new(),
        }
    }

    /// The ruleset this scanner reads.
    pub fn ruleset(&self) -> &'r Ruleset {
        self.rs
    }

    fn route(&mut self, ev: &Event) -> Arc<[(u32, u32)]> {
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
        if let Some(r) = self.routes.get(&(self.key.clone(), eid)) {
            return r.clone();
        }
        let mut cands: Vec<(u32, u32)> = Vec::new();
        for (si, s) in self.rs.sources.iter().enumerate() {
            let ch_ok = s.channels.is_empty() || s.channels.contains(&self.key);
            let id_ok = s.event_ids.is_empty() || eid.is_some_and(|e| s.event_ids.contains(&e));
            if ch_ok && id_ok {
                cands.extend(s.rules.iter().map(|&r| (r, si as u32)));
            }
        }
        // One entry per rule (first source wins), in rule order.
        cands.sort_by_key(|&(r, s)| (r, s));
        cands.dedup_by_key(|&mut (r, _)| r);
        let arc: Arc<[(u32, u32)]> = cands.into();
        self.routes.insert((self.key.clone(), eid), arc.clone());
        arc
    }

    /// Appends to `out` the index of every rule that matches `ev`, in
    /// ascending rule order (deterministic). Never panics on any event.
    pub fn scan(&mut self, ev: &Event, out: &mut Vec<usize>) {
        let cands = self.route(ev);
        if cands.is_empty() {
            return;
        }
        // Field positions by interned id.
        for &id in &self.touched {
            self.slots[id as usize].clear();
        }
        self.touched.clear();
        let mut lname = String::new();
        let mut fields = Vec::with_capacity(ev.len());
        for (pos, (name, v)) in ev.fields().enumerate() {
            fields.push(v);
            field_key(name, &mut lname);
            if let Some(&id) = self.rs.names.get(lname.as_str()) {
                let slot = &mut self.slots[id as usize];
                if slot.is_empty() {
                    self.touched.push(id);
                }
                slot.push(pos as u32);
            }
        }
        self.lower.clear();
        self.lower.resize(ev.len(), None);
        self.text.clear();
        self.text.resize(ev.len(), None);
        let mut view = View {
            ev,
            fields,
            slots: &self.slots,
            lower: &mut self.lower,
            text: &mut self.text,
        };
        for &(ri, si) in cands.iter() {
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
            if rule
                .cond
                .eval(&rule.dets, &mut self.memo, &mut view, &remap)
            {
                out.push(ri as usize);
            }
        }
    }
}
