//! The scheduler: a cluster's nodes and bound pods, per-node counters kept as flat arrays,
//! and the filter-then-score pass over every node for each pod.

use std::collections::HashMap;
use std::sync::Arc;

use plinth_model::Resources;

use super::filter::{
    self, REASON_AFFINITY, REASON_ANTI_AFFINITY, REASON_EXISTING_ANTI_AFFINITY, REASON_SPREAD,
};
use super::filter::{
    REASON_CPU, REASON_DISK, REASON_MEMORY, REASON_SPREAD_LABEL, REASON_TOO_MANY_PODS,
};
use super::node::{LABEL_HOST, LABEL_RACK, Node};
use super::pod::{PodTemplate, WhenUnsatisfiable};
use super::score::{self, ScoringStrategy};
use super::topology::{Index, NO_DOMAIN};
use super::{NodeId, PodId, PodsError};
use crate::Explanation;

/// Static filter outcome of a node for a pod: passes.
pub(crate) const OK: u8 = 0;
/// Static filter outcome: the node slot was removed (not a candidate at all).
pub(crate) const GONE: u8 = 1;
/// Static filter outcome: cordoned.
pub(crate) const CORDONED: u8 = 2;
/// Static filter outcome: an untolerated `NoSchedule`/`NoExecute` taint.
pub(crate) const TAINTED: u8 = 3;
/// Static filter outcome: node selector or required node affinity does not match.
pub(crate) const AFFINITY: u8 = 4;

/// A pod bound to a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Binding {
    /// The pod.
    pub pod: PodId,
    /// Its node.
    pub node: NodeId,
}

/// A pod taken off a removed node; the caller reschedules its template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Evicted {
    /// The id the pod had (now free).
    pub pod: PodId,
    /// What the pod was.
    pub template: Arc<PodTemplate>,
}

/// The result of scheduling a workload's replicas one after another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchOutcome {
    /// The replicas bound, in order.
    pub bound: Vec<Binding>,
    /// Replicas left pending (once one fails, the rest would fail identically).
    pub pending: u32,
    /// Why the first pending replica fits nowhere.
    pub explanation: Option<Explanation>,
}

/// A term reference of a compiled pod.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TermRef {
    pub(crate) term: u32,
    pub(crate) topo: u32,
    /// The pod's own labels match the term's selector.
    pub(crate) self_match: bool,
}

/// A compiled topology spread constraint.
#[derive(Clone, Debug)]
pub(crate) struct Spread {
    pub(crate) term: TermRef,
    pub(crate) max_skew: u32,
    /// Domains of the nodes that pass the pod's node selector and affinity.
    pub(crate) eligible: Vec<u32>,
}

/// A pod template resolved against the scheduler's indexes.
#[derive(Clone, Debug)]
pub(crate) struct Compiled {
    pub(crate) template: Arc<PodTemplate>,
    pub(crate) label_set: u32,
    pub(crate) req: Resources,
    pub(crate) nz_cpu: u64,
    pub(crate) nz_mem: u64,
    pub(crate) hard_spread: Vec<Spread>,
    pub(crate) soft_spread: Vec<Spread>,
    pub(crate) affinity: Vec<TermRef>,
    pub(crate) anti: Vec<TermRef>,
    /// Preferred affinity (+weight) and anti-affinity (−weight) terms.
    pub(crate) preferred: Vec<(TermRef, i64)>,
}

impl Compiled {
    fn has_pod_filters(&self) -> bool {
        !self.hard_spread.is_empty() || !self.affinity.is_empty() || !self.anti.is_empty()
    }
}

/// Per-template results of the node-only filters and scores.
#[derive(Clone, Debug, Default)]
pub(crate) struct Static {
    /// [`OK`], [`GONE`], [`CORDONED`], [`TAINTED`] or [`AFFINITY`] per node slot.
    pub(crate) code: Vec<u8>,
    /// Untolerated `PreferNoSchedule` taints per node slot, when any node has one.
    pub(crate) taint_raw: Option<Vec<f64>>,
    /// Preferred node affinity raw score per node slot, when the pod has such terms.
    pub(crate) node_affinity_raw: Option<Vec<f64>>,
    /// 0 where `code` is [`OK`], −∞ elsewhere: added to scores, so the hot loop has no branch.
    pub(crate) penalty: Vec<f64>,
    /// How many node slots fail the node-only filters (none: `penalty` is all zero).
    pub(crate) failing: usize,
}

/// Sets `v[i]`, or appends it when `i` is `v`'s length.
fn put<T>(v: &mut Vec<T>, i: usize, value: T) {
    match v.get_mut(i) {
        Some(slot) => *slot = value,
        None => v.push(value),
    }
}

impl Static {
    /// Sets node slot `i` (a new slot when `i` is the number of slots): its outcome, and
    /// its raw taint and node affinity scores where the pass keeps them.
    fn set_node(&mut self, i: usize, code: u8, taint: Option<f64>, affinity: Option<f64>) {
        if self.code.get(i).is_some_and(|&k| k != OK) {
            self.failing -= 1;
        }
        if code != OK {
            self.failing += 1;
        }
        put(&mut self.code, i, code);
        put(
            &mut self.penalty,
            i,
            if code == OK { 0.0 } else { f64::NEG_INFINITY },
        );
        if let (Some(raw), Some(v)) = (&mut self.taint_raw, taint) {
            put(raw, i, v);
        }
        if let (Some(raw), Some(v)) = (&mut self.node_affinity_raw, affinity) {
            put(raw, i, v);
        }
    }
}

/// Per-pod values that change as pods are bound (minimum spread counts, symmetric terms).
#[derive(Clone, Debug, Default)]
pub(crate) struct PodState {
    /// Minimum matching count over eligible domains, per hard spread constraint.
    pub(crate) mins: Vec<u32>,
    /// Terms that bound pods carry as required anti-affinity and that match this pod.
    pub(crate) sym_anti: Vec<(u32, u32)>,
    /// Terms that bound pods carry as preferences and that match this pod.
    pub(crate) sym_pref: Vec<(u32, u32)>,
}

/// Reusable buffers of the scoring pass.
#[derive(Clone, Debug, Default)]
struct Scratch {
    scores: Vec<f64>,
    feasible: Vec<u32>,
    base: Vec<f64>,
    raw: Vec<f64>,
    missing: Vec<bool>,
    total: Vec<f64>,
}

/// A shared template compiled once, with its static pass, reused while the node set stays
/// the same (a cordon change updates the static pass in place).
#[derive(Clone, Debug)]
struct Prepared {
    compiled: Arc<Compiled>,
    stat: Static,
}

#[derive(Clone, Debug)]
struct Placed {
    compiled: Arc<Compiled>,
    node: u32,
}

/// One cluster's nodes and bound pods; schedules pods with kube-scheduler's semantics.
#[derive(Clone, Debug)]
pub struct Scheduler {
    strategy: ScoringStrategy,
    pub(crate) nodes: Vec<Node>,
    by_name: HashMap<String, u32>,
    /// Position of each node slot in name order (ties break to the lowest rank).
    rank: Vec<u32>,
    /// The nodes' slots in name order (equal names in the order they were added): `rank`'s
    /// inverse. A removed node's slot leaves it (its `rank` is stale until reused).
    order: Vec<u32>,
    /// Slots of removed nodes, reused by the next nodes added (last freed first).
    free_slots: Vec<u32>,
    pub(crate) base_code: Vec<u8>,
    any_prefer_taint: bool,
    free_cpu: Vec<u64>,
    free_mem: Vec<u64>,
    free_disk: Vec<u64>,
    pods_free: Vec<u32>,
    used_cpu: Vec<u64>,
    used_mem: Vec<u64>,
    nz_cpu: Vec<u64>,
    nz_mem: Vec<u64>,
    hot: Hot,
    pub(crate) node_pods: Vec<Vec<PodId>>,
    pods: Vec<Option<Placed>>,
    free_ids: Vec<u32>,
    alive: usize,
    pub(crate) index: Index,
    scratch: Scratch,
    /// Templates scheduled through [`Scheduler::schedule_shared`], by the address of the
    /// shared template (which the compiled template keeps alive, so it is not reused).
    prepared: HashMap<usize, Prepared>,
}

/// The largest value, with four independent accumulators so the loop is not one long chain
/// of dependent comparisons.
fn max_of(values: &[f64]) -> f64 {
    let mut m = [f64::NEG_INFINITY; 4];
    let chunks = values.chunks_exact(4);
    let rest = chunks.remainder();
    for c in chunks {
        for k in 0..4 {
            m[k] = if c[k] > m[k] { c[k] } else { m[k] };
        }
    }
    for &v in rest {
        m[0] = if v > m[0] { v } else { m[0] };
    }
    m[0].max(m[1]).max(m[2].max(m[3]))
}

fn inverse(x: u64) -> f64 {
    if x == 0 { 0.0 } else { 1.0 / x as f64 }
}

impl Scheduler {
    /// A scheduler over `nodes` with the given NodeResourcesFit strategy.
    pub fn new(nodes: Vec<Node>, strategy: ScoringStrategy) -> Result<Self, PodsError> {
        let mut s = Self {
            strategy,
            nodes: Vec::with_capacity(nodes.len()),
            by_name: HashMap::with_capacity(nodes.len()),
            rank: Vec::new(),
            order: Vec::new(),
            free_slots: Vec::new(),
            base_code: Vec::new(),
            any_prefer_taint: false,
            free_cpu: Vec::new(),
            free_mem: Vec::new(),
            free_disk: Vec::new(),
            pods_free: Vec::new(),
            used_cpu: Vec::new(),
            used_mem: Vec::new(),
            nz_cpu: Vec::new(),
            nz_mem: Vec::new(),
            hot: Hot::default(),
            node_pods: Vec::new(),
            pods: Vec::new(),
            free_ids: Vec::new(),
            alive: 0,
            index: Index::default(),
            scratch: Scratch::default(),
            prepared: HashMap::new(),
        };
        for node in nodes {
            s.push_node(node)?;
        }
        s.rank_all();
        Ok(s)
    }

    /// Puts `node` in the most recently freed slot, else in a new one.
    fn push_node(&mut self, node: Node) -> Result<NodeId, PodsError> {
        if self.by_name.contains_key(&node.name) {
            return Err(PodsError::DuplicateNode { name: node.name });
        }
        let i = match self.free_slots.pop() {
            Some(slot) => slot as usize,
            None => self.grow(),
        };
        let id = u32::try_from(i).unwrap_or(u32::MAX);
        self.by_name.insert(node.name.clone(), id);
        self.base_code[i] = Self::node_code(&node);
        let prefer_taint = self.any_prefer_taint;
        self.any_prefer_taint |= node.taints.iter().any(|t| !t.effect.is_hard());
        let a = node.allocatable;
        self.free_cpu[i] = a.cpu_millis;
        self.free_mem[i] = a.memory_bytes;
        self.free_disk[i] = a.disk_bytes;
        self.pods_free[i] = node.pod_limit();
        self.used_cpu[i] = 0;
        self.used_mem[i] = 0;
        self.nz_cpu[i] = 0;
        self.nz_mem[i] = 0;
        self.hot.set(i, &a, node.pod_limit());
        self.index.set_node(i, &node);
        if i == self.nodes.len() {
            self.nodes.push(node);
        } else {
            self.nodes[i] = node;
        }
        self.alive += 1;
        self.update_prepared(i, prefer_taint);
        Ok(NodeId(id))
    }

    /// A new, empty slot at the end of every per-slot array but `nodes`; its index.
    fn grow(&mut self) -> usize {
        self.base_code.push(GONE);
        self.free_cpu.push(0);
        self.free_mem.push(0);
        self.free_disk.push(0);
        self.pods_free.push(0);
        self.used_cpu.push(0);
        self.used_mem.push(0);
        self.nz_cpu.push(0);
        self.nz_mem.push(0);
        self.hot.grow();
        self.node_pods.push(Vec::new());
        self.nodes.len()
    }

    fn node_code(node: &Node) -> u8 {
        if node.unschedulable {
            CORDONED
        } else if node.taints.iter().any(|t| t.effect.is_hard()) {
            TAINTED
        } else {
            OK
        }
    }

    /// Ranks every node slot by name (a stable sort: equal names keep slot order).
    fn rank_all(&mut self) {
        let mut order: Vec<u32> =
            (0..u32::try_from(self.nodes.len()).unwrap_or(u32::MAX)).collect();
        order.sort_by(|a, b| {
            self.nodes[*a as usize]
                .name
                .cmp(&self.nodes[*b as usize].name)
        });
        self.order = order;
        self.rank = vec![0; self.order.len()];
        self.rerank_from(0);
    }

    /// Ranks the node just put in slot `id` among the others: where a stable sort by name
    /// puts it (after every equal name), shifting the ranks behind it.
    fn rank_new(&mut self, id: u32) {
        let name = &self.nodes[id as usize].name;
        let nodes = &self.nodes;
        let at = self
            .order
            .partition_point(|&j| nodes[j as usize].name <= *name);
        self.order.insert(at, id);
        if self.rank.len() <= id as usize {
            self.rank.resize(id as usize + 1, 0);
        }
        self.rerank_from(at);
    }

    /// Sets `rank` from `order` at positions `from..`.
    fn rerank_from(&mut self, from: usize) {
        for (r, &i) in self.order.iter().enumerate().skip(from) {
            self.rank[i as usize] = u32::try_from(r).unwrap_or(u32::MAX);
        }
    }

    /// Adds a node (a new VM or server joined the cluster).
    pub fn add_node(&mut self, node: Node) -> Result<NodeId, PodsError> {
        let id = self.push_node(node)?;
        self.rank_new(id.0);
        Ok(id)
    }

    /// Removes a node and evicts its pods, returned in the order they were bound there.
    pub fn remove_node(&mut self, name: &str) -> Result<Vec<Evicted>, PodsError> {
        let i = self.lookup(name)?;
        let pods = std::mem::take(&mut self.node_pods[i as usize]);
        let mut evicted = Vec::with_capacity(pods.len());
        for pod in pods {
            if let Some(template) = self.unbind(pod) {
                evicted.push(Evicted { pod, template });
            }
        }
        self.by_name.remove(name);
        self.base_code[i as usize] = GONE;
        self.pods_free[i as usize] = 0;
        self.refresh(i as usize);
        self.alive -= 1;
        self.update_prepared(i as usize, self.any_prefer_taint);
        if let Some(at) = self.order.iter().position(|&slot| slot == i) {
            self.order.remove(at);
            self.rerank_from(at);
        }
        self.free_slots.push(i);
        Ok(evicted)
    }

    /// Cordons (`true`) or uncordons a node; bound pods stay.
    pub fn set_unschedulable(&mut self, name: &str, unschedulable: bool) -> Result<(), PodsError> {
        let i = self.lookup(name)? as usize;
        self.nodes[i].unschedulable = unschedulable;
        self.base_code[i] = Self::node_code(&self.nodes[i]);
        self.update_prepared(i, self.any_prefer_taint);
        Ok(())
    }

    /// The node now runs on physical host `host` in `rack` (its VM migrated or restarted
    /// there): its host and its [`LABEL_HOST`] and [`LABEL_RACK`] labels change; its zone
    /// does not (a zone label that changed would not move the pods already placed by it), and
    /// its bound pods stay.
    pub fn move_node(&mut self, name: &str, host: &str, rack: &str) -> Result<(), PodsError> {
        let i = self.lookup(name)? as usize;
        // The bound pods count in their node's domains: out of the old ones, into the new.
        let compiled: Vec<Arc<Compiled>> = self.node_pods[i]
            .iter()
            .filter_map(|p| self.placed(*p).map(|placed| Arc::clone(&placed.compiled)))
            .collect();
        for c in &compiled {
            self.count(c, i, -1);
        }
        let node = &mut self.nodes[i];
        node.host = host.to_owned();
        node.labels.insert(LABEL_HOST.to_owned(), host.to_owned());
        node.labels.insert(LABEL_RACK.to_owned(), rack.to_owned());
        self.index.set_node(i, &self.nodes[i]);
        for c in &compiled {
            self.count(c, i, 1);
        }
        self.base_code[i] = Self::node_code(&self.nodes[i]);
        self.update_prepared(i, self.any_prefer_taint);
        Ok(())
    }

    /// Brings the prepared templates up to date after node slot `i` changed (added, removed
    /// or cordoned), as if each were prepared again. Templates with topology spread
    /// constraints are dropped (their eligible domains depend on the node set), and all are
    /// when the first `PreferNoSchedule` taint arrived (`prefer_taint` is whether there was
    /// one before).
    fn update_prepared(&mut self, i: usize, prefer_taint: bool) {
        if prefer_taint != self.any_prefer_taint {
            self.prepared.clear();
            return;
        }
        let mut prepared = std::mem::take(&mut self.prepared);
        prepared
            .retain(|_, p| p.compiled.hard_spread.is_empty() && p.compiled.soft_spread.is_empty());
        for p in prepared.values_mut() {
            let pod = &p.compiled.template;
            let node = &self.nodes[i];
            let code = self.static_code(pod, i, false);
            let taint = p
                .stat
                .taint_raw
                .as_ref()
                .map(|_| f64::from(filter::untolerated_preferences(node, &pod.tolerations)));
            let affinity = p
                .stat
                .node_affinity_raw
                .as_ref()
                .map(|_| filter::preferred_node_affinity(pod, &node.labels) as f64);
            p.stat.set_node(i, code, taint, affinity);
        }
        self.prepared = prepared;
    }

    fn lookup(&self, name: &str) -> Result<u32, PodsError> {
        self.by_name
            .get(name)
            .copied()
            .ok_or_else(|| PodsError::UnknownNode {
                name: name.to_owned(),
            })
    }

    /// The node with this id (a removed node stays readable until its slot is reused).
    pub fn node(&self, id: NodeId) -> Option<&Node> {
        self.nodes.get(id.0 as usize)
    }

    /// The id of the node called `name`, if it is in the cluster.
    pub fn node_id(&self, name: &str) -> Option<NodeId> {
        self.by_name.get(name).map(|&i| NodeId(i))
    }

    /// Nodes in the cluster, by slot (in the order they were added, a reused slot in place).
    pub fn nodes(&self) -> impl Iterator<Item = (NodeId, &Node)> {
        self.nodes
            .iter()
            .enumerate()
            .filter(|(i, _)| self.base_code[*i] != GONE)
            .map(|(i, n)| (NodeId(u32::try_from(i).unwrap_or(u32::MAX)), n))
    }

    /// How many nodes are in the cluster.
    pub fn node_count(&self) -> usize {
        self.alive
    }

    /// How many pods are bound.
    pub fn pod_count(&self) -> usize {
        self.pods.len() - self.free_ids.len()
    }

    /// Where a bound pod runs.
    pub fn node_of(&self, pod: PodId) -> Option<NodeId> {
        self.placed(pod).map(|p| NodeId(p.node))
    }

    /// The template of a bound pod.
    pub fn template(&self, pod: PodId) -> Option<&Arc<PodTemplate>> {
        self.placed(pod).map(|p| &p.compiled.template)
    }

    /// The pods bound to a node, in binding order.
    pub fn pods_on(&self, node: NodeId) -> &[PodId] {
        self.node_pods
            .get(node.0 as usize)
            .map_or(&[], Vec::as_slice)
    }

    /// The sum of the requests of the pods bound to a node.
    pub fn requested(&self, node: NodeId) -> Resources {
        let i = node.0 as usize;
        match self.nodes.get(i) {
            Some(n) => Resources::new(
                n.allocatable.cpu_millis.saturating_sub(self.free_cpu[i]),
                n.allocatable.memory_bytes.saturating_sub(self.free_mem[i]),
                n.allocatable.disk_bytes.saturating_sub(self.free_disk[i]),
            ),
            None => Resources::ZERO,
        }
    }

    fn placed(&self, pod: PodId) -> Option<&Placed> {
        self.pods.get(pod.0 as usize).and_then(Option::as_ref)
    }

    /// Schedules one pod: binds it to the best node, or explains why none fits.
    pub fn schedule(&mut self, pod: &PodTemplate) -> Result<Binding, PodsError> {
        let outcome = self.schedule_replicas(pod, 1)?;
        match (outcome.bound.first(), outcome.explanation) {
            (Some(binding), _) => Ok(*binding),
            (None, explanation) => Err(PodsError::Unschedulable {
                owner: pod.owner.clone(),
                explanation: explanation.unwrap_or_else(|| Explanation::new("nodes", self.alive)),
            }),
        }
    }

    /// Schedules `replicas` copies of a pod one after another, each seeing the ones before.
    /// Stops at the first replica that fits nowhere: the rest stay pending.
    pub fn schedule_replicas(
        &mut self,
        pod: &PodTemplate,
        replicas: u32,
    ) -> Result<BatchOutcome, PodsError> {
        let compiled = Arc::new(self.compile(pod)?);
        let stat = self.static_pass(&compiled, false);
        Ok(self.bind_replicas(&compiled, &stat, replicas))
    }

    /// Schedules one pod of a template shared by its replicas (`Arc`): like
    /// [`Scheduler::schedule`], but the template is compiled and its node-only filters run
    /// once, then reused for every replica until a node is added or removed.
    pub fn schedule_shared(&mut self, pod: &Arc<PodTemplate>) -> Result<Binding, PodsError> {
        let key = Arc::as_ptr(pod) as usize;
        let prepared = match self.prepared.remove(&key) {
            Some(p) => p,
            None => {
                let compiled = Arc::new(self.compile_shared(Arc::clone(pod))?);
                let stat = self.static_pass(&compiled, false);
                Prepared { compiled, stat }
            }
        };
        let outcome = self.bind_replicas(&prepared.compiled, &prepared.stat, 1);
        // A node added or removed meanwhile would have emptied the cache; none is.
        self.prepared.insert(key, prepared);
        match (outcome.bound.first(), outcome.explanation) {
            (Some(binding), _) => Ok(*binding),
            (None, explanation) => Err(PodsError::Unschedulable {
                owner: pod.owner.clone(),
                explanation: explanation.unwrap_or_else(|| Explanation::new("nodes", self.alive)),
            }),
        }
    }

    /// Binds `replicas` copies of a compiled pod one after another, each seeing the ones
    /// before; stops at the first that fits nowhere.
    fn bind_replicas(
        &mut self,
        compiled: &Arc<Compiled>,
        stat: &Static,
        replicas: u32,
    ) -> BatchOutcome {
        let mut state = PodState::default();
        let mut bound = Vec::with_capacity(replicas as usize);
        for done in 0..replicas {
            self.pod_state(compiled, &mut state);
            match self.select(compiled, stat, &state) {
                Some(node) => bound.push(self.bind(compiled, node)),
                None => {
                    let explanation = self.explain(compiled, stat, &state);
                    return BatchOutcome {
                        bound,
                        pending: replicas - done,
                        explanation: Some(explanation),
                    };
                }
            }
        }
        BatchOutcome {
            bound,
            pending: 0,
            explanation: None,
        }
    }

    /// Removes a bound pod (it finished, or the caller evicts it) and returns its template.
    pub fn remove_pod(&mut self, pod: PodId) -> Result<Arc<PodTemplate>, PodsError> {
        let node = self.placed(pod).ok_or(PodsError::UnknownPod { pod })?.node as usize;
        let list = &mut self.node_pods[node];
        if let Some(pos) = list.iter().position(|p| *p == pod) {
            list.remove(pos);
        }
        self.unbind(pod).ok_or(PodsError::UnknownPod { pod })
    }

    /// Checks a template and resolves its terms against the indexes.
    pub(crate) fn compile(&mut self, pod: &PodTemplate) -> Result<Compiled, PodsError> {
        self.compile_shared(Arc::new(pod.clone()))
    }

    /// [`Scheduler::compile`] of a shared template, kept without a copy.
    fn compile_shared(&mut self, shared: Arc<PodTemplate>) -> Result<Compiled, PodsError> {
        let pod = shared.as_ref();
        let invalid = |reason: String| PodsError::InvalidPod {
            owner: pod.owner.clone(),
            reason,
        };
        let weights = pod
            .preferred_pod_affinity
            .iter()
            .chain(&pod.preferred_pod_anti_affinity)
            .map(|w| w.weight);
        if let Some(w) = weights
            .chain(pod.preferred_node_affinity.iter().map(|p| p.weight))
            .find(|w| !(1..=100).contains(w))
        {
            return Err(invalid(format!("preference weight {w} is outside 1..=100")));
        }
        let keys = pod
            .pod_affinity
            .iter()
            .chain(&pod.pod_anti_affinity)
            .map(|t| &t.topology_key)
            .chain(
                pod.preferred_pod_affinity
                    .iter()
                    .chain(&pod.preferred_pod_anti_affinity)
                    .map(|w| &w.term.topology_key),
            )
            .chain(pod.topology_spread.iter().map(|c| &c.topology_key));
        for key in keys {
            if key.is_empty() {
                return Err(invalid("empty topologyKey".to_owned()));
            }
        }
        if pod.topology_spread.iter().any(|c| c.max_skew == 0) {
            return Err(invalid(
                "topology spread maxSkew must be at least 1".to_owned(),
            ));
        }

        let label_set = self.index.label_set(&pod.namespace, &pod.labels);
        let term = |s: &mut Self, selector: &super::pod::LabelSelector, key: &str| -> TermRef {
            let topo = s.index.topology(key, &s.nodes);
            let placed = s
                .pods
                .iter()
                .flatten()
                .map(|p| (p.compiled.label_set, p.node));
            let id = s.index.term(&pod.namespace, selector, topo, placed);
            TermRef {
                term: id,
                topo: u32::try_from(topo).unwrap_or(u32::MAX),
                self_match: selector.matches(&pod.labels),
            }
        };
        let affinity = pod
            .pod_affinity
            .iter()
            .map(|t| term(self, &t.selector, &t.topology_key))
            .collect();
        let anti = pod
            .pod_anti_affinity
            .iter()
            .map(|t| term(self, &t.selector, &t.topology_key))
            .collect();
        let mut preferred: Vec<(TermRef, i64)> = Vec::new();
        for w in &pod.preferred_pod_affinity {
            preferred.push((
                term(self, &w.term.selector, &w.term.topology_key),
                i64::from(w.weight),
            ));
        }
        for w in &pod.preferred_pod_anti_affinity {
            preferred.push((
                term(self, &w.term.selector, &w.term.topology_key),
                -i64::from(w.weight),
            ));
        }
        let mut hard_spread = Vec::new();
        let mut soft_spread = Vec::new();
        for c in &pod.topology_spread {
            let t = term(self, &c.selector, &c.topology_key);
            let eligible = self.eligible_domains(pod, t.topo as usize);
            let spread = Spread {
                term: t,
                max_skew: c.max_skew,
                eligible,
            };
            match c.when_unsatisfiable {
                WhenUnsatisfiable::DoNotSchedule => hard_spread.push(spread),
                WhenUnsatisfiable::ScheduleAnyway => soft_spread.push(spread),
            }
        }
        let (nz_cpu, nz_mem) = score::non_zero(pod.requests.cpu_millis, pod.requests.memory_bytes);
        Ok(Compiled {
            template: Arc::clone(&shared),
            label_set,
            req: pod.requests,
            nz_cpu,
            nz_mem,
            hard_spread,
            soft_spread,
            affinity,
            anti,
            preferred,
        })
    }

    /// Domains (of topology `topo`) of the nodes that pass the pod's node selector and
    /// affinity (kube's default `nodeAffinityPolicy: Honor`, `nodeTaintsPolicy: Ignore`).
    fn eligible_domains(&self, pod: &PodTemplate, topo: usize) -> Vec<u32> {
        let topology = &self.index.topologies[topo];
        let mut seen = vec![false; topology.len()];
        for (i, node) in self.nodes.iter().enumerate() {
            let d = topology.domain_of[i];
            if self.base_code[i] != GONE
                && d != NO_DOMAIN
                && filter::node_affinity_matches(pod, &node.labels)
            {
                seen[d as usize] = true;
            }
        }
        seen.iter()
            .enumerate()
            .filter(|(_, s)| **s)
            .filter_map(|(d, _)| u32::try_from(d).ok())
            .collect()
    }

    /// The node-only filters and scores of a template. `daemon`: DaemonSet pods tolerate
    /// the unschedulable (cordon) taint.
    pub(crate) fn static_pass(&self, c: &Compiled, daemon: bool) -> Static {
        let pod = &c.template;
        let trivial = pod.node_selector.is_empty()
            && pod.node_affinity.is_empty()
            && pod.tolerations.is_empty();
        let code: Vec<u8> = (0..self.base_code.len())
            .map(|i| match self.base_code[i] {
                k if trivial && (k == OK || (k == TAINTED && !daemon)) => k,
                _ => self.static_code(pod, i, daemon),
            })
            .collect();
        let taint_raw = self.any_prefer_taint.then(|| {
            self.nodes
                .iter()
                .map(|n| f64::from(filter::untolerated_preferences(n, &pod.tolerations)))
                .collect()
        });
        let node_affinity_raw = (!pod.preferred_node_affinity.is_empty()).then(|| {
            self.nodes
                .iter()
                .map(|n| filter::preferred_node_affinity(pod, &n.labels) as f64)
                .collect()
        });
        let penalty = code
            .iter()
            .map(|&k| if k == OK { 0.0 } else { f64::NEG_INFINITY })
            .collect();
        let failing = code.iter().filter(|&&k| k != OK).count();
        Static {
            code,
            taint_raw,
            node_affinity_raw,
            penalty,
            failing,
        }
    }

    /// The node-only filter outcome of node slot `i` for `pod`: [`GONE`], [`CORDONED`],
    /// [`TAINTED`], [`AFFINITY`] or [`OK`].
    fn static_code(&self, pod: &PodTemplate, i: usize, daemon: bool) -> u8 {
        let node = &self.nodes[i];
        if self.base_code[i] == GONE {
            GONE
        } else if node.unschedulable && !daemon {
            CORDONED
        } else if filter::untolerated_taint(node, &pod.tolerations).is_some() {
            TAINTED
        } else if !filter::node_affinity_matches(pod, &node.labels) {
            AFFINITY
        } else {
            OK
        }
    }

    /// Refreshes the per-pod values that depend on what is bound now.
    pub(crate) fn pod_state(&self, c: &Compiled, state: &mut PodState) {
        let terms = &self.index.terms;
        state.mins.clear();
        for s in &c.hard_spread {
            let matched = &terms[s.term.term as usize].matched;
            state.mins.push(
                s.eligible
                    .iter()
                    .map(|d| matched[*d as usize])
                    .min()
                    .unwrap_or(0),
            );
        }
        state.sym_anti.clear();
        state.sym_pref.clear();
        for &t in &self.index.label_sets[c.label_set as usize].matching {
            let term = &terms[t as usize];
            let topo = u32::try_from(term.topo).unwrap_or(u32::MAX);
            if term.anti_total > 0 {
                state.sym_anti.push((t, topo));
            }
            if term.preferred_carriers > 0 {
                state.sym_pref.push((t, topo));
            }
        }
    }

    /// The first resource filter node slot `i` fails (NodeResourcesFit).
    #[inline]
    pub(crate) fn resource_reason(&self, c: &Compiled, i: usize) -> Option<&'static str> {
        if self.pods_free[i] == 0 {
            Some(REASON_TOO_MANY_PODS)
        } else if self.free_cpu[i] < c.req.cpu_millis {
            Some(REASON_CPU)
        } else if self.free_mem[i] < c.req.memory_bytes {
            Some(REASON_MEMORY)
        } else if self.free_disk[i] < c.req.disk_bytes {
            Some(REASON_DISK)
        } else {
            None
        }
    }

    #[inline]
    fn domain(&self, topo: u32, i: usize) -> u32 {
        self.index.topologies[topo as usize].domain_of[i]
    }

    /// The first pod filter node slot `i` fails: PodTopologySpread, then InterPodAffinity.
    #[inline]
    pub(crate) fn pod_reason(
        &self,
        c: &Compiled,
        state: &PodState,
        i: usize,
    ) -> Option<&'static str> {
        let terms = &self.index.terms;
        for (s, min) in c.hard_spread.iter().zip(&state.mins) {
            let d = self.domain(s.term.topo, i);
            if d == NO_DOMAIN {
                return Some(REASON_SPREAD_LABEL);
            }
            let count =
                terms[s.term.term as usize].matched[d as usize] + u32::from(s.term.self_match);
            if count.saturating_sub(*min) > s.max_skew {
                return Some(REASON_SPREAD);
            }
        }
        for t in &c.affinity {
            let d = self.domain(t.topo, i);
            let term = &terms[t.term as usize];
            let first_of_group = term.total == 0 && t.self_match;
            if d == NO_DOMAIN || (term.matched[d as usize] == 0 && !first_of_group) {
                return Some(REASON_AFFINITY);
            }
        }
        for t in &c.anti {
            let d = self.domain(t.topo, i);
            if d != NO_DOMAIN && terms[t.term as usize].matched[d as usize] > 0 {
                return Some(REASON_ANTI_AFFINITY);
            }
        }
        for &(t, topo) in &state.sym_anti {
            let d = self.domain(topo, i);
            if d != NO_DOMAIN && terms[t as usize].anti_carriers[d as usize] > 0 {
                return Some(REASON_EXISTING_ANTI_AFFINITY);
            }
        }
        None
    }

    /// Filters and scores every node; the best node slot, or `None` when none is feasible.
    pub(crate) fn select(&mut self, c: &Compiled, stat: &Static, state: &PodState) -> Option<u32> {
        let mut sc = std::mem::take(&mut self.scratch);
        let n = self.nodes.len();
        let (h, p, out) = (&self.hot, &stat.penalty, &mut sc.scores);
        match (self.strategy, stat.failing == 0) {
            (ScoringStrategy::LeastAllocated, true) => h.score_all::<false, false>(c, p, out),
            (ScoringStrategy::LeastAllocated, false) => h.score_all::<false, true>(c, p, out),
            (ScoringStrategy::MostAllocated, true) => h.score_all::<true, false>(c, p, out),
            (ScoringStrategy::MostAllocated, false) => h.score_all::<true, true>(c, p, out),
        }
        if c.has_pod_filters() || !state.sym_anti.is_empty() {
            for (i, s) in sc.scores.iter_mut().enumerate() {
                if *s > f64::NEG_INFINITY && self.pod_reason(c, state, i).is_some() {
                    *s = f64::NEG_INFINITY;
                }
            }
        }
        let normalized = !c.preferred.is_empty()
            || !state.sym_pref.is_empty()
            || !c.soft_spread.is_empty()
            || stat.taint_raw.is_some()
            || stat.node_affinity_raw.is_some();
        let best = if normalized {
            sc.feasible.clear();
            sc.base.clear();
            for (i, &s) in sc.scores[..n].iter().enumerate() {
                if s > f64::NEG_INFINITY {
                    sc.feasible.push(i as u32);
                    sc.base.push(s);
                }
            }
            if sc.feasible.is_empty() {
                None
            } else {
                self.normalized_best(c, stat, state, &mut sc)
            }
        } else {
            let max = max_of(&sc.scores);
            if max == f64::NEG_INFINITY {
                None
            } else {
                let rank = &self.rank[..n];
                let mut best: Option<(u32, u32)> = None;
                for (i, &s) in sc.scores[..n].iter().enumerate() {
                    if s == max && best.is_none_or(|(r, _)| rank[i] < r) {
                        best = Some((rank[i], i as u32));
                    }
                }
                best.map(|(r, i)| (max, r, i))
            }
        };
        self.scratch = sc;
        best.map(|(_, _, i)| i)
    }

    /// The scores that kube-scheduler normalizes over the feasible nodes, then the best.
    fn normalized_best(
        &self,
        c: &Compiled,
        stat: &Static,
        state: &PodState,
        sc: &mut Scratch,
    ) -> Option<(f64, u32, u32)> {
        let terms = &self.index.terms;
        sc.total.clear();
        sc.total.extend_from_slice(&sc.base);
        let add = |total: &mut Vec<f64>, raw: &[f64], weight: f64| {
            for (t, r) in total.iter_mut().zip(raw) {
                *t += weight * r;
            }
        };
        if !c.preferred.is_empty() || !state.sym_pref.is_empty() {
            sc.raw.clear();
            for &i in &sc.feasible {
                let i = i as usize;
                let mut raw = 0_i64;
                for (t, w) in &c.preferred {
                    let d = self.domain(t.topo, i);
                    if d != NO_DOMAIN {
                        raw += w * i64::from(terms[t.term as usize].matched[d as usize]);
                    }
                }
                for &(t, topo) in &state.sym_pref {
                    let d = self.domain(topo, i);
                    if d != NO_DOMAIN {
                        raw += terms[t as usize].preferred[d as usize];
                    }
                }
                sc.raw.push(raw as f64);
            }
            score::normalize_min_max(&mut sc.raw);
            add(&mut sc.total, &sc.raw, score::WEIGHT_INTER_POD_AFFINITY);
        }
        if !c.soft_spread.is_empty() {
            sc.raw.clear();
            sc.missing.clear();
            for &i in &sc.feasible {
                let i = i as usize;
                let mut raw = 0.0;
                let mut missing = false;
                for s in &c.soft_spread {
                    let d = self.domain(s.term.topo, i);
                    if d == NO_DOMAIN {
                        missing = true;
                        break;
                    }
                    let weight = ((s.eligible.len() + 2) as f64).ln();
                    let count = f64::from(terms[s.term.term as usize].matched[d as usize]);
                    raw += count * weight + f64::from(s.max_skew - 1);
                }
                sc.raw.push(raw);
                sc.missing.push(missing);
            }
            score::normalize_spread(&mut sc.raw, &sc.missing);
            add(&mut sc.total, &sc.raw, score::WEIGHT_TOPOLOGY_SPREAD);
        }
        for (values, reverse, weight) in [
            (&stat.taint_raw, true, score::WEIGHT_TAINT_TOLERATION),
            (&stat.node_affinity_raw, false, score::WEIGHT_NODE_AFFINITY),
        ] {
            if let Some(values) = values {
                sc.raw.clear();
                sc.raw
                    .extend(sc.feasible.iter().map(|&i| values[i as usize]));
                score::normalize(&mut sc.raw, reverse);
                add(&mut sc.total, &sc.raw, weight);
            }
        }
        let mut best: Option<(f64, u32, u32)> = None;
        for (&i, &s) in sc.feasible.iter().zip(&sc.total) {
            let rank = self.rank[i as usize];
            if best.is_none_or(|(bs, br, _)| s > bs || (s == bs && rank < br)) {
                best = Some((s, rank, i));
            }
        }
        best
    }

    /// Why every node rejects the pod, one reason per node (the first filter it fails).
    pub(crate) fn explain(&self, c: &Compiled, stat: &Static, state: &PodState) -> Explanation {
        let mut e = Explanation::new("nodes", self.alive);
        for (i, node) in self.nodes.iter().enumerate() {
            let reason = match stat.code[i] {
                GONE => continue,
                OK => self
                    .resource_reason(c, i)
                    .or_else(|| self.pod_reason(c, state, i))
                    .map(str::to_owned),
                _ => filter::node_only_reason(node, &c.template),
            };
            if let Some(reason) = reason {
                e.reject(reason);
            }
        }
        e
    }

    /// Binds a compiled pod to node slot `i` and updates every counter and index.
    pub(crate) fn bind(&mut self, c: &Arc<Compiled>, i: u32) -> Binding {
        let n = i as usize;
        self.free_cpu[n] -= c.req.cpu_millis;
        self.free_mem[n] -= c.req.memory_bytes;
        self.free_disk[n] -= c.req.disk_bytes;
        self.pods_free[n] -= 1;
        self.used_cpu[n] += c.req.cpu_millis;
        self.used_mem[n] += c.req.memory_bytes;
        self.nz_cpu[n] += c.nz_cpu;
        self.nz_mem[n] += c.nz_mem;
        self.refresh(n);
        self.count(c, n, 1);
        let placed = Placed {
            compiled: Arc::clone(c),
            node: i,
        };
        let id = match self.free_ids.pop() {
            Some(id) => {
                self.pods[id as usize] = Some(placed);
                id
            }
            None => {
                self.pods.push(Some(placed));
                u32::try_from(self.pods.len() - 1).unwrap_or(u32::MAX)
            }
        };
        self.node_pods[n].push(PodId(id));
        Binding {
            pod: PodId(id),
            node: NodeId(i),
        }
    }

    /// Frees a pod's id and resources (the caller has taken it off its node's list).
    fn unbind(&mut self, pod: PodId) -> Option<Arc<PodTemplate>> {
        let placed = self.pods.get_mut(pod.0 as usize)?.take()?;
        let (c, n) = (placed.compiled, placed.node as usize);
        self.free_cpu[n] += c.req.cpu_millis;
        self.free_mem[n] += c.req.memory_bytes;
        self.free_disk[n] += c.req.disk_bytes;
        self.pods_free[n] += 1;
        self.used_cpu[n] -= c.req.cpu_millis;
        self.used_mem[n] -= c.req.memory_bytes;
        self.nz_cpu[n] -= c.nz_cpu;
        self.nz_mem[n] -= c.nz_mem;
        self.refresh(n);
        self.count(&c, n, -1);
        self.free_ids.push(pod.0);
        Some(Arc::clone(&c.template))
    }

    /// Copies node slot `n`'s counters into the scoring arrays.
    fn refresh(&mut self, n: usize) {
        let h = &mut self.hot;
        h.pods_free[n] = f64::from(self.pods_free[n]);
        h.free_cpu[n] = self.free_cpu[n] as f64;
        h.free_mem[n] = self.free_mem[n] as f64;
        h.free_disk[n] = self.free_disk[n] as f64;
        h.nz_cpu[n] = self.nz_cpu[n] as f64 * h.inv_cpu[n];
        h.nz_mem[n] = self.nz_mem[n] as f64 * h.inv_mem[n];
        h.used_cpu[n] = self.used_cpu[n] as f64 * h.inv_cpu[n];
        h.used_mem[n] = self.used_mem[n] as f64 * h.inv_mem[n];
    }

    /// Adds (`sign` 1) or removes (−1) a pod on node slot `n` in every term it touches.
    fn count(&mut self, c: &Compiled, n: usize, sign: i64) {
        let Index {
            topologies,
            terms,
            label_sets,
            ..
        } = &mut self.index;
        let step = |v: &mut u32| {
            *v = if sign > 0 {
                *v + 1
            } else {
                v.saturating_sub(1)
            }
        };
        for &t in &label_sets[c.label_set as usize].matching {
            let term = &mut terms[t as usize];
            step(&mut term.total);
            let d = topologies[term.topo].domain_of[n];
            if d != NO_DOMAIN {
                step(&mut term.matched[d as usize]);
            }
        }
        for t in &c.anti {
            let term = &mut terms[t.term as usize];
            let d = topologies[term.topo].domain_of[n];
            if d != NO_DOMAIN {
                if term.anti_carriers.is_empty() {
                    term.anti_carriers.resize(topologies[term.topo].len(), 0);
                }
                step(&mut term.anti_carriers[d as usize]);
                step(&mut term.anti_total);
            }
        }
        let carried = c
            .preferred
            .iter()
            .copied()
            .chain(c.affinity.iter().map(|t| (*t, 1)));
        for (t, w) in carried {
            let term = &mut terms[t.term as usize];
            step(&mut term.preferred_carriers);
            let d = topologies[term.topo].domain_of[n];
            if d != NO_DOMAIN {
                if term.preferred.is_empty() {
                    term.preferred.resize(topologies[term.topo].len(), 0);
                }
                term.preferred[d as usize] += sign * w;
            }
        }
    }
}

/// The per-node values the scoring loop reads, as `f64` arrays so that it runs without
/// branches or integer conversions. Counts and byte sizes below 2^53 are exact in `f64`, so
/// the fit comparisons are exact.
#[derive(Clone, Debug, Default)]
struct Hot {
    pods_free: Vec<f64>,
    free_cpu: Vec<f64>,
    free_mem: Vec<f64>,
    free_disk: Vec<f64>,
    /// Non-zero requests as fractions of allocatable (NodeResourcesFit).
    nz_cpu: Vec<f64>,
    nz_mem: Vec<f64>,
    /// Actual requests as fractions of allocatable (BalancedAllocation).
    used_cpu: Vec<f64>,
    used_mem: Vec<f64>,
    inv_cpu: Vec<f64>,
    inv_mem: Vec<f64>,
}

impl Hot {
    /// A new slot holding nothing.
    fn grow(&mut self) {
        for v in [
            &mut self.pods_free,
            &mut self.free_cpu,
            &mut self.free_mem,
            &mut self.free_disk,
            &mut self.nz_cpu,
            &mut self.nz_mem,
            &mut self.used_cpu,
            &mut self.used_mem,
            &mut self.inv_cpu,
            &mut self.inv_mem,
        ] {
            v.push(0.0);
        }
    }

    /// Slot `i` holds an empty node of allocatable `a` and `pods` pods at most.
    fn set(&mut self, i: usize, a: &Resources, pods: u32) {
        self.pods_free[i] = f64::from(pods);
        self.free_cpu[i] = a.cpu_millis as f64;
        self.free_mem[i] = a.memory_bytes as f64;
        self.free_disk[i] = a.disk_bytes as f64;
        self.nz_cpu[i] = 0.0;
        self.nz_mem[i] = 0.0;
        self.used_cpu[i] = 0.0;
        self.used_mem[i] = 0.0;
        self.inv_cpu[i] = inverse(a.cpu_millis);
        self.inv_mem[i] = inverse(a.memory_bytes);
    }

    /// NodeResourcesFit (LeastAllocated, or MostAllocated when `MOST`) plus
    /// BalancedAllocation of the pod on every node slot, −∞ where it does not fit or
    /// `penalty` is −∞ (read only when `PENALTY`).
    fn score_all<const MOST: bool, const PENALTY: bool>(
        &self,
        c: &Compiled,
        penalty: &[f64],
        out: &mut Vec<f64>,
    ) {
        let n = self.pods_free.len();
        out.clear();
        out.resize(n, 0.0);
        let (out, penalty) = (&mut out[..n], &penalty[..n]);
        let (pods, fc, fm, fd) = (
            &self.pods_free[..n],
            &self.free_cpu[..n],
            &self.free_mem[..n],
            &self.free_disk[..n],
        );
        let (zc, zm, uc, um) = (
            &self.nz_cpu[..n],
            &self.nz_mem[..n],
            &self.used_cpu[..n],
            &self.used_mem[..n],
        );
        let (ic, im) = (&self.inv_cpu[..n], &self.inv_mem[..n]);
        let (rc, rm, rd) = (
            c.req.cpu_millis as f64,
            c.req.memory_bytes as f64,
            c.req.disk_bytes as f64,
        );
        let (zrc, zrm) = (c.nz_cpu as f64, c.nz_mem as f64);
        let strategy = if MOST {
            ScoringStrategy::MostAllocated
        } else {
            ScoringStrategy::LeastAllocated
        };
        for i in 0..n {
            let fits = (pods[i] >= 1.0) & (fc[i] >= rc) & (fm[i] >= rm) & (fd[i] >= rd);
            let cpu = zc[i] + zrc * ic[i];
            let mem = zm[i] + zrm * im[i];
            let fit = score::fit(strategy, cpu, mem);
            let balanced = score::balanced(uc[i] + rc * ic[i], um[i] + rm * im[i]);
            let s = score::WEIGHT_FIT * fit + score::WEIGHT_BALANCED * balanced;
            let s = if PENALTY { s + penalty[i] } else { s };
            out[i] = if fits { s } else { f64::NEG_INFINITY };
        }
    }
}
