//! Test helpers: detections written with names, interned with a shuffled
//! id assignment, fed to a `Grouper`.

#![allow(dead_code)]

use std::collections::HashMap;
use tracehunt_incidents::{Config, EntityKind, Grouper, Grouping, Names, NO_HOST};

/// One detection as a test writes it.
#[derive(Clone, Debug)]
pub struct Det {
    /// Unix seconds and nanoseconds.
    pub time: Option<(i64, u32)>,
    pub host: Option<String>,
    pub rule: String,
    pub level: u8,
    pub entities: Vec<(EntityKind, String)>,
}

/// A timed detection at `secs`.
pub fn det(secs: i64, host: &str, rule: &str, entities: &[(EntityKind, &str)]) -> Det {
    Det {
        time: Some((secs, 0)),
        host: Some(host.to_owned()),
        rule: rule.to_owned(),
        level: 2,
        entities: entities
            .iter()
            .map(|(k, v)| (*k, (*v).to_owned()))
            .collect(),
    }
}

/// An untimed detection.
pub fn untimed(host: &str, rule: &str, entities: &[(EntityKind, &str)]) -> Det {
    Det {
        time: None,
        ..det(0, host, rule, entities)
    }
}

/// The names behind ids assigned by [`run_seeded`].
#[derive(Default)]
pub struct Table {
    pub hosts: HashMap<u32, String>,
    pub entities: HashMap<u32, (EntityKind, String)>,
    pub rules: Vec<String>,
}

impl Names for Table {
    fn host(&self, id: u32) -> Option<&str> {
        self.hosts.get(&id).map(String::as_str)
    }
    fn entity(&self, id: u32) -> (EntityKind, &str) {
        let (k, v) = &self.entities[&id];
        (*k, v)
    }
    fn rule_id(&self, rule: u32) -> &str {
        &self.rules[rule as usize]
    }
}

/// SplitMix64: a small deterministic PRNG.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            v.swap(i, j);
        }
    }
}

/// Feeds `dets` in order with default thresholds and ids assigned in first-seen order.
pub fn run(dets: &[Det]) -> Grouping {
    run_seeded(Config::default(), dets, None)
}

/// Feeds `dets` in order. With a seed, host and entity ids are a shuffled,
/// sparse numbering (as a multi-threaded caller's interning could give);
/// rule numbers are always first-seen order.
pub fn run_seeded(cfg: Config, dets: &[Det], seed: Option<u64>) -> Grouping {
    let mut hosts: Vec<String> = Vec::new();
    let mut ents: Vec<(EntityKind, String)> = Vec::new();
    let mut table = Table::default();
    for d in dets {
        if let Some(h) = &d.host {
            if !hosts.contains(h) {
                hosts.push(h.clone());
            }
        }
        for e in &d.entities {
            if !ents.contains(e) {
                ents.push(e.clone());
            }
        }
        if !table.rules.contains(&d.rule) {
            table.rules.push(d.rule.clone());
        }
    }
    let mut host_ids: Vec<u32> = (0..hosts.len() as u32).collect();
    let mut ent_ids: Vec<u32> = (0..ents.len() as u32).collect();
    if let Some(seed) = seed {
        let mut rng = Rng(seed);
        rng.shuffle(&mut host_ids);
        rng.shuffle(&mut ent_ids);
        for id in host_ids.iter_mut().chain(ent_ids.iter_mut()) {
            *id = *id * 3 + (seed % 3) as u32;
        }
    }
    let host_id: HashMap<&str, u32> = hosts
        .iter()
        .zip(&host_ids)
        .map(|(h, &i)| (h.as_str(), i))
        .collect();
    let ent_id: HashMap<&(EntityKind, String), u32> =
        ents.iter().zip(ent_ids.iter().copied()).collect();
    for (h, &i) in &host_id {
        table.hosts.insert(i, (*h).to_owned());
    }
    for (e, &i) in &ent_id {
        table.entities.insert(i, (*e).clone());
    }
    let mut g = Grouper::new(cfg);
    let mut ids = Vec::new();
    for d in dets {
        ids.clear();
        ids.extend(d.entities.iter().map(|e| ent_id[e]));
        let host = d.host.as_deref().map_or(NO_HOST, |h| host_id[h]);
        let rule = table.rules.iter().position(|r| *r == d.rule).unwrap() as u32;
        g.push(d.time, host, rule, d.level, &ids);
    }
    g.finish(&table)
}
