//! One generation of what the live hunt matches with: rules, correlations,
//! IOC feeds and the ATT&CK knowledge base, swapped whole on reload.

use std::sync::Arc;
use tracehunt_attack::ActorKb;
use tracehunt_correlate::Input;
use tracehunt_ioc::IocSet;
use tracehunt_pipeline::Loaded;

/// Rules, feeds and the knowledge base of one generation. Immutable and
/// `Send + Sync`: scan workers and the ordered stage share it by `Arc`; a
/// reload builds a new one (`generation` + 1) and the batches queued after
/// it are scanned and correlated with it.
pub struct Rules {
    /// The compiled Sigma rules and correlations.
    pub loaded: Loaded,
    /// IOC feeds, if any.
    pub iocs: Option<Arc<IocSet>>,
    /// ATT&CK intrusion sets for attribution.
    pub kb: Arc<ActorKb>,
    /// 0 for the first load, then one more per reload.
    pub generation: u64,
    /// Rules some correlation reads (their hits are kept whole for it).
    pub(crate) correlated: Vec<bool>,
    /// Rules whose own hits are not reported (correlation `generate: false`).
    pub(crate) suppressed: Vec<bool>,
    /// Per correlation: what must be equal for its window state to survive a
    /// reload ([`Rules::correlation_map`]).
    fingerprints: Vec<String>,
}

impl Rules {
    /// Wraps loaded rules; `generation` numbers reloads (0 first).
    pub fn new(
        mut loaded: Loaded,
        iocs: Option<Arc<IocSet>>,
        kb: Arc<ActorKb>,
        generation: u64,
    ) -> Arc<Rules> {
        // Software and groups named in emerging-threats folders and titles
        // become attribution evidence (issue #18 item 5).
        loaded.resolve_names(&kb);
        let n = loaded.ruleset.len();
        let cs = &loaded.correlations;
        let correlated = (0..n).map(|r| cs.is_referenced(r)).collect();
        let suppressed = (0..n).map(|r| cs.is_suppressed(r)).collect();
        let fingerprints = cs
            .correlations()
            .iter()
            .map(|c| {
                // The compiled form without rule indices (they move when
                // rules are added or removed) plus the ids of what it reads.
                let mut bare = c.clone();
                let inputs = std::mem::take(&mut bare.inputs);
                let mut fp = format!("{bare:?}");
                for i in inputs {
                    match i {
                        Input::Rule(r) => {
                            fp.push_str("|rule:");
                            fp.push_str(&loaded.ruleset.rule(r).id);
                        }
                        Input::Correlation(k) => {
                            fp.push_str("|corr:");
                            fp.push_str(&cs.correlation(k).meta.id);
                        }
                    }
                }
                fp
            })
            .collect();
        Arc::new(Rules {
            loaded,
            iocs,
            kb,
            generation,
            correlated,
            suppressed,
            fingerprints,
        })
    }

    /// For each correlation of `old`, its index here when it is unchanged
    /// (same compiled form, reading rules of the same ids), else `None`:
    /// what [`tracehunt_correlate::Correlator::resume`] takes so a reload
    /// keeps the open windows of unchanged correlations.
    pub fn correlation_map(&self, old: &Rules) -> Vec<Option<usize>> {
        old.fingerprints
            .iter()
            .map(|fp| self.fingerprints.iter().position(|f| f == fp))
            .collect()
    }
}
