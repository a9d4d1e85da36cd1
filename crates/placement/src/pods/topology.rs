//! Indexes that make pod (anti-)affinity and topology spread cheap: node → domain per
//! topology key, and per (namespace, label selector, topology key) the number of matching
//! pods in each domain, kept up to date as pods come and go.

use std::collections::{BTreeMap, HashMap};

use super::node::Node;
use super::pod::LabelSelector;

/// Domain id of a node that lacks the topology label.
pub(crate) const NO_DOMAIN: u32 = u32::MAX;

/// The domains of one topology key: node slot → domain id.
#[derive(Clone, Debug)]
pub(crate) struct Topology {
    /// The node label key.
    pub(crate) key: String,
    /// Domain of each node slot, [`NO_DOMAIN`] when the label is missing.
    pub(crate) domain_of: Vec<u32>,
    /// Domain values by id.
    pub(crate) names: Vec<String>,
    by_name: HashMap<String, u32>,
}

impl Topology {
    fn new(key: &str) -> Self {
        Self {
            key: key.to_owned(),
            domain_of: Vec::new(),
            names: Vec::new(),
            by_name: HashMap::new(),
        }
    }

    /// Appends the domain of a new node slot; returns true when it opened a new domain.
    fn push_node(&mut self, node: &Node) -> bool {
        let (d, new) = self.domain(node);
        self.domain_of.push(d);
        new
    }

    /// Sets the domain of node slot `i` (a new slot when `i` is the number of slots);
    /// returns true when it opened a new domain.
    fn set_node(&mut self, i: usize, node: &Node) -> bool {
        let (d, new) = self.domain(node);
        match self.domain_of.get_mut(i) {
            Some(slot) => *slot = d,
            None => self.domain_of.push(d),
        }
        new
    }

    /// The domain of `node` ([`NO_DOMAIN`] without the label), and whether it is new.
    fn domain(&mut self, node: &Node) -> (u32, bool) {
        let Some(value) = node.labels.get(&self.key) else {
            return (NO_DOMAIN, false);
        };
        if let Some(&d) = self.by_name.get(value) {
            return (d, false);
        }
        let d = u32::try_from(self.names.len()).unwrap_or(NO_DOMAIN - 1);
        self.names.push(value.clone());
        self.by_name.insert(value.clone(), d);
        (d, true)
    }

    /// Number of domains.
    pub(crate) fn len(&self) -> usize {
        self.names.len()
    }
}

/// Pods matching one (namespace, selector) counted per domain of one topology key, and the
/// pods that carry the term themselves (for the symmetric rules).
#[derive(Clone, Debug)]
pub(crate) struct Term {
    pub(crate) namespace: String,
    pub(crate) selector: LabelSelector,
    pub(crate) topo: usize,
    /// Placed pods matching the selector, per domain.
    pub(crate) matched: Vec<u32>,
    /// Placed pods matching the selector, anywhere (including nodes without the label).
    pub(crate) total: u32,
    /// Placed pods carrying this term as required anti-affinity, per domain (allocated with
    /// the first carrier).
    pub(crate) anti_carriers: Vec<u32>,
    /// Sum over all domains of `anti_carriers`.
    pub(crate) anti_total: u32,
    /// Placed pods' preferred weights for this term (affinity +, anti-affinity −, required
    /// affinity +1), per domain: what an incoming pod matching the selector scores there
    /// (allocated with the first carrier).
    pub(crate) preferred: Vec<i64>,
    /// Placed pods carrying this term as preferred (or required) affinity/anti-affinity.
    pub(crate) preferred_carriers: u32,
}

/// An interned (namespace, labels) pair and the terms whose selectors match it.
#[derive(Clone, Debug)]
pub(crate) struct LabelSet {
    pub(crate) namespace: String,
    pub(crate) labels: BTreeMap<String, String>,
    /// Terms matching this label set, in creation order.
    pub(crate) matching: Vec<u32>,
}

/// All topology, term and label-set indexes of a scheduler.
#[derive(Clone, Debug, Default)]
pub(crate) struct Index {
    pub(crate) topologies: Vec<Topology>,
    topo_by_key: HashMap<String, usize>,
    pub(crate) terms: Vec<Term>,
    term_by_key: HashMap<(String, LabelSelector, usize), u32>,
    pub(crate) label_sets: Vec<LabelSet>,
    label_set_by_key: HashMap<(String, BTreeMap<String, String>), u32>,
}

impl Index {
    /// Records the node of slot `i` (a new slot when `i` is the number of slots) in every
    /// topology, growing the terms of new domains.
    pub(crate) fn set_node(&mut self, i: usize, node: &Node) {
        for (t, topo) in self.topologies.iter_mut().enumerate() {
            if topo.set_node(i, node) {
                for term in self.terms.iter_mut().filter(|term| term.topo == t) {
                    term.matched.push(0);
                    if !term.anti_carriers.is_empty() {
                        term.anti_carriers.push(0);
                    }
                    if !term.preferred.is_empty() {
                        term.preferred.push(0);
                    }
                }
            }
        }
    }

    /// The topology of `key`, built over `nodes` on first use.
    pub(crate) fn topology(&mut self, key: &str, nodes: &[Node]) -> usize {
        if let Some(&t) = self.topo_by_key.get(key) {
            return t;
        }
        let mut topo = Topology::new(key);
        for node in nodes {
            topo.push_node(node);
        }
        self.topologies.push(topo);
        self.topo_by_key
            .insert(key.to_owned(), self.topologies.len() - 1);
        self.topologies.len() - 1
    }

    /// The label set of (`namespace`, `labels`), matched against every term on first use.
    pub(crate) fn label_set(&mut self, namespace: &str, labels: &BTreeMap<String, String>) -> u32 {
        let key = (namespace.to_owned(), labels.clone());
        if let Some(&id) = self.label_set_by_key.get(&key) {
            return id;
        }
        let matching = self
            .terms
            .iter()
            .enumerate()
            .filter(|(_, term)| term.namespace == namespace && term.selector.matches(labels))
            .filter_map(|(i, _)| u32::try_from(i).ok())
            .collect();
        let id = u32::try_from(self.label_sets.len()).unwrap_or(u32::MAX);
        self.label_sets.push(LabelSet {
            namespace: key.0.clone(),
            labels: key.1.clone(),
            matching,
        });
        self.label_set_by_key.insert(key, id);
        id
    }

    /// The term of (`namespace`, `selector`, `topo`). A new term is matched against every
    /// label set and counts the placed pods given as (label set, node slot) pairs.
    pub(crate) fn term(
        &mut self,
        namespace: &str,
        selector: &LabelSelector,
        topo: usize,
        placed: impl Iterator<Item = (u32, u32)>,
    ) -> u32 {
        let key = (namespace.to_owned(), selector.clone(), topo);
        if let Some(&id) = self.term_by_key.get(&key) {
            return id;
        }
        let id = u32::try_from(self.terms.len()).unwrap_or(u32::MAX);
        let mut hits = vec![false; self.label_sets.len()];
        for (ls, set) in self.label_sets.iter_mut().enumerate() {
            if set.namespace == namespace && selector.matches(&set.labels) {
                set.matching.push(id);
                hits[ls] = true;
            }
        }
        let domains = self.topologies[topo].len();
        let mut term = Term {
            namespace: namespace.to_owned(),
            selector: selector.clone(),
            topo,
            matched: vec![0; domains],
            total: 0,
            anti_carriers: Vec::new(),
            anti_total: 0,
            preferred: Vec::new(),
            preferred_carriers: 0,
        };
        let domain_of = &self.topologies[topo].domain_of;
        for (ls, node) in placed {
            if hits.get(ls as usize).copied().unwrap_or(false) {
                term.total += 1;
                let d = domain_of[node as usize];
                if d != NO_DOMAIN {
                    term.matched[d as usize] += 1;
                }
            }
        }
        self.terms.push(term);
        self.term_by_key.insert(key, id);
        id
    }
}
