//! The hunt's context table: for every detection, the host it was seen on
//! and the rare entities of its event (users, IPs, logon ids, process
//! GUIDs, hashes, domains; `tracehunt_incidents::extract`), interned once
//! per distinct combination. An index [`Entry`](crate::Entry) holds a
//! context id where it held a host id, so it stays 40 bytes while incident
//! grouping can see every detection's entities.
//!
//! Ids are assigned in the order workers first ask for a combination, so
//! they depend on thread scheduling: nothing in the output may depend on
//! their values, only on the names they resolve to.

use foldhash::HashMap;
use tracehunt_incidents::EntityKind;

/// Context id of a detection without host and without entities.
pub const NO_CONTEXT: u32 = u32::MAX;

/// Most (host, entity set) contexts a hunt keeps (about 60 MB at most):
/// past it, detections get their host's context without entities, so
/// memory stays bounded when every event carries unique values (a million
/// logons from a million source addresses). Which detections came first
/// depends on scheduling, so a hunt whose table filled uses no entities at
/// all: incidents are grouped by host and time only, not merged across
/// hosts ([`Contexts::capped`] says so; the incidents table prints it).
pub const CONTEXT_CAP: usize = 1 << 17;

/// Interned hosts, entities and (host, entity set) contexts of one hunt.
pub struct Contexts {
    /// Most contexts with entities ([`CONTEXT_CAP`], or the hidden
    /// environment variable `TRACEHUNT_CONTEXT_CAP` for tests).
    cap: usize,
    hosts: Vec<String>,
    host_ids: HashMap<String, u32>,
    entities: Vec<(EntityKind, String)>,
    entity_ids: HashMap<(EntityKind, String), u32>,
    /// Per context: host id ([`tracehunt_incidents::NO_HOST`] for none) and entity ids.
    contexts: Vec<(u32, Box<[u32]>)>,
    context_ids: HashMap<(u32, Box<[u32]>), u32>,
    /// Detection events given their host's context without entities because
    /// the table was full (counted by the workers, added at the end).
    pub(crate) capped: u64,
}

impl Default for Contexts {
    fn default() -> Self {
        let cap = std::env::var("TRACEHUNT_CONTEXT_CAP")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(CONTEXT_CAP);
        Contexts {
            cap,
            hosts: Vec::new(),
            host_ids: HashMap::default(),
            entities: Vec::new(),
            entity_ids: HashMap::default(),
            contexts: Vec::new(),
            context_ids: HashMap::default(),
            capped: 0,
        }
    }
}

impl Contexts {
    /// The id of the context (`host`, `entities`), added if new;
    /// [`NO_CONTEXT`] when both are empty.
    pub fn id(&mut self, host: Option<&str>, entities: &[(EntityKind, String)]) -> u32 {
        if host.is_none() && entities.is_empty() {
            return NO_CONTEXT;
        }
        let entities = if self.is_full() && !entities.is_empty() {
            self.capped += 1;
            if host.is_none() {
                return NO_CONTEXT;
            }
            &[]
        } else {
            entities
        };
        let h = match host {
            None => tracehunt_incidents::NO_HOST,
            Some(h) => match self.host_ids.get(h) {
                Some(&i) => i,
                None => {
                    let i = self.hosts.len() as u32;
                    self.hosts.push(h.to_owned());
                    self.host_ids.insert(h.to_owned(), i);
                    i
                }
            },
        };
        let mut ids: Vec<u32> = entities
            .iter()
            .map(|e| match self.entity_ids.get(e) {
                Some(&i) => i,
                None => {
                    let i = self.entities.len() as u32;
                    self.entities.push(e.clone());
                    self.entity_ids.insert(e.clone(), i);
                    i
                }
            })
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let key = (h, ids.into_boxed_slice());
        if let Some(&i) = self.context_ids.get(&key) {
            return i;
        }
        let i = self.contexts.len() as u32;
        self.contexts.push(key.clone());
        self.context_ids.insert(key, i);
        i
    }

    /// Host name of context `ctx` (`None`: no host, or [`NO_CONTEXT`]).
    pub fn host(&self, ctx: u32) -> Option<&str> {
        let &(h, _) = self.contexts.get(ctx as usize)?;
        self.hosts.get(h as usize).map(String::as_str)
    }

    /// Host id of context `ctx` ([`tracehunt_incidents::NO_HOST`] for none).
    pub fn host_id(&self, ctx: u32) -> u32 {
        self.contexts
            .get(ctx as usize)
            .map_or(tracehunt_incidents::NO_HOST, |c| c.0)
    }

    /// Entity ids of context `ctx`.
    pub fn entities(&self, ctx: u32) -> &[u32] {
        self.contexts.get(ctx as usize).map_or(&[], |c| &c.1)
    }

    /// Host id of host name `name`, when a detection was seen on it.
    pub fn host_id_of(&self, name: &str) -> Option<u32> {
        self.host_ids.get(name).copied()
    }

    /// Host name of host id `h`.
    pub fn host_name(&self, h: u32) -> Option<&str> {
        self.hosts.get(h as usize).map(String::as_str)
    }

    /// Kind and value of entity id `e`.
    pub fn entity(&self, e: u32) -> (EntityKind, &str) {
        let (k, v) = &self.entities[e as usize];
        (*k, v)
    }

    /// How many detection events were given their host's context without
    /// their entities because the table held [`CONTEXT_CAP`] contexts (0: none).
    pub fn capped(&self) -> u64 {
        self.capped
    }

    /// The table holds [`CONTEXT_CAP`] contexts: new ones get no entities.
    pub fn is_full(&self) -> bool {
        self.contexts.len() >= self.cap
    }

    /// The table's capacity ([`CONTEXT_CAP`] unless a test set another).
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// Number of distinct contexts, hosts and entities (memory accounting).
    pub fn counts(&self) -> (usize, usize, usize) {
        (self.contexts.len(), self.hosts.len(), self.entities.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contexts_intern_host_and_entity_set_regardless_of_entity_order() {
        let mut c = Contexts::default();
        let u = (EntityKind::User, "corp\\bob".to_owned());
        let ip = (EntityKind::Ip, "10.1.2.3".to_owned());
        let a = c.id(Some("pc1"), &[u.clone(), ip.clone()]);
        let b = c.id(Some("pc1"), &[ip.clone(), u.clone()]);
        assert_eq!(a, b);
        let d = c.id(Some("pc2"), std::slice::from_ref(&u));
        assert_ne!(a, d);
        assert_eq!(c.host(a), Some("pc1"));
        assert_eq!(c.host(d), Some("pc2"));
        assert_eq!(c.entities(a).len(), 2);
        assert_eq!(c.entity(c.entities(d)[0]), (EntityKind::User, "corp\\bob"));
        assert_eq!(c.id(None, &[]), NO_CONTEXT);
        assert_eq!(c.host(NO_CONTEXT), None);
        let e = c.id(None, std::slice::from_ref(&ip));
        assert_eq!(c.host(e), None);
        assert_eq!(c.host_id(e), tracehunt_incidents::NO_HOST);
        assert_eq!(c.counts(), (3, 2, 2));
    }
}
