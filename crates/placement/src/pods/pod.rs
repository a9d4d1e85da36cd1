//! Pod templates: what one replica of a workload asks of the scheduler.

use std::collections::BTreeMap;

use plinth_model::Resources;

use super::node::{LABEL_HOSTNAME, LABEL_ZONE, TaintEffect};

/// Operators of a node selector requirement (`nodeAffinity` `matchExpressions`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NodeOperator {
    /// The label's value is one of the values.
    In(Vec<String>),
    /// The label is absent or its value is none of the values.
    NotIn(Vec<String>),
    /// The label is present.
    Exists,
    /// The label is absent.
    DoesNotExist,
    /// The label is an integer greater than this one.
    Gt(i64),
    /// The label is an integer less than this one.
    Lt(i64),
}

/// One `matchExpressions` entry of a node selector term.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeRequirement {
    /// Node label key.
    pub key: String,
    /// How the label is tested.
    pub operator: NodeOperator,
}

impl NodeRequirement {
    /// A requirement on node label `key`.
    pub fn new(key: impl Into<String>, operator: NodeOperator) -> Self {
        Self {
            key: key.into(),
            operator,
        }
    }
}

/// A node selector term: every requirement must hold (terms themselves are ORed).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeSelectorTerm {
    /// Requirements, ANDed.
    pub match_expressions: Vec<NodeRequirement>,
}

/// A preferred node affinity term with its weight (1–100).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PreferredNodeTerm {
    /// Weight added to a node's raw score when the term matches.
    pub weight: i32,
    /// The term.
    pub term: NodeSelectorTerm,
}

/// Operators of a label selector requirement (pod selectors).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LabelOperator {
    /// The label's value is one of the values.
    In(Vec<String>),
    /// The label is absent or its value is none of the values.
    NotIn(Vec<String>),
    /// The label is present.
    Exists,
    /// The label is absent.
    DoesNotExist,
}

/// A Kubernetes label selector over pod labels: `matchLabels` and `matchExpressions`, ANDed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LabelSelector {
    /// Exact `key: value` matches.
    pub match_labels: BTreeMap<String, String>,
    /// Set-based requirements.
    pub match_expressions: Vec<(String, LabelOperator)>,
}

impl LabelSelector {
    /// A selector matching `key=value`.
    pub fn eq(key: impl Into<String>, value: impl Into<String>) -> Self {
        let mut match_labels = BTreeMap::new();
        match_labels.insert(key.into(), value.into());
        Self {
            match_labels,
            match_expressions: Vec::new(),
        }
    }

    /// True when `labels` satisfy every part of the selector (an empty selector matches all).
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|(key, op)| {
                let value = labels.get(key);
                match op {
                    LabelOperator::In(values) => value.is_some_and(|v| values.contains(v)),
                    LabelOperator::NotIn(values) => value.is_none_or(|v| !values.contains(v)),
                    LabelOperator::Exists => value.is_some(),
                    LabelOperator::DoesNotExist => value.is_none(),
                }
            })
    }
}

/// A pod (anti-)affinity term: pods matching `selector` in the same `topology_key` domain.
///
/// The selector looks at pods of the incoming pod's namespace, as Kubernetes does when the
/// term names no namespaces.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PodAffinityTerm {
    /// Which pods the term is about.
    pub selector: LabelSelector,
    /// The node label whose value defines a domain ([`LABEL_HOSTNAME`], [`LABEL_ZONE`], …).
    pub topology_key: String,
}

impl PodAffinityTerm {
    /// A term over pods matching `selector`, per node (`kubernetes.io/hostname`).
    pub fn per_node(selector: LabelSelector) -> Self {
        Self {
            selector,
            topology_key: LABEL_HOSTNAME.to_owned(),
        }
    }

    /// A term over pods matching `selector`, per zone (`topology.kubernetes.io/zone`).
    pub fn per_zone(selector: LabelSelector) -> Self {
        Self {
            selector,
            topology_key: LABEL_ZONE.to_owned(),
        }
    }
}

/// A preferred pod (anti-)affinity term with its weight (1–100).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WeightedPodAffinityTerm {
    /// Weight, 1–100.
    pub weight: i32,
    /// The term.
    pub term: PodAffinityTerm,
}

/// What to do when a topology spread constraint cannot be met.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WhenUnsatisfiable {
    /// A filter: nodes that would break `maxSkew` are rejected.
    DoNotSchedule,
    /// A score: nodes that keep the spread even are preferred.
    ScheduleAnyway,
}

/// A `topologySpreadConstraints` entry.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TopologySpreadConstraint {
    /// Largest allowed difference between a domain's matching pods and the emptiest
    /// eligible domain's (at least 1).
    pub max_skew: u32,
    /// The node label whose value defines a domain.
    pub topology_key: String,
    /// Filter or score.
    pub when_unsatisfiable: WhenUnsatisfiable,
    /// Which pods are counted (usually the workload's own).
    pub selector: LabelSelector,
}

/// Toleration operator.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TolerationOperator {
    /// Tolerates a taint with this exact value.
    Equal(String),
    /// Tolerates a taint of any value.
    Exists,
}

/// A pod toleration.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Toleration {
    /// Taint key; `None` with [`TolerationOperator::Exists`] tolerates every taint.
    pub key: Option<String>,
    /// How the value is compared.
    pub operator: TolerationOperator,
    /// Effect tolerated; `None` tolerates all effects.
    pub effect: Option<TaintEffect>,
}

impl Toleration {
    /// Tolerates any taint with `key`, whatever its value and effect.
    pub fn exists(key: impl Into<String>) -> Self {
        Self {
            key: Some(key.into()),
            operator: TolerationOperator::Exists,
            effect: None,
        }
    }

    /// Tolerates the control-plane `NoSchedule` taint.
    pub fn control_plane() -> Self {
        Self {
            key: Some(super::node::CONTROL_PLANE_TAINT_KEY.to_owned()),
            operator: TolerationOperator::Exists,
            effect: Some(TaintEffect::NoSchedule),
        }
    }
}

/// One replica of a workload, as the scheduler sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodTemplate {
    /// The workload the pod belongs to (`namespace/kind/name`, say); reports group by it.
    pub owner: String,
    /// Namespace; pod (anti-)affinity selectors look only at pods of the same namespace.
    pub namespace: String,
    /// Pod labels.
    pub labels: BTreeMap<String, String>,
    /// Sum of the containers' requests (init containers folded in by the caller).
    pub requests: Resources,
    /// `nodeSelector`: every `key: value` must be a node label.
    pub node_selector: BTreeMap<String, String>,
    /// Required node affinity terms, ORed (empty = no constraint).
    pub node_affinity: Vec<NodeSelectorTerm>,
    /// Preferred node affinity terms.
    pub preferred_node_affinity: Vec<PreferredNodeTerm>,
    /// Tolerations.
    pub tolerations: Vec<Toleration>,
    /// Required pod affinity terms.
    pub pod_affinity: Vec<PodAffinityTerm>,
    /// Required pod anti-affinity terms.
    pub pod_anti_affinity: Vec<PodAffinityTerm>,
    /// Preferred pod affinity terms.
    pub preferred_pod_affinity: Vec<WeightedPodAffinityTerm>,
    /// Preferred pod anti-affinity terms.
    pub preferred_pod_anti_affinity: Vec<WeightedPodAffinityTerm>,
    /// Topology spread constraints.
    pub topology_spread: Vec<TopologySpreadConstraint>,
}

impl PodTemplate {
    /// A pod of `owner` in namespace `default` requesting `requests`, labelled `app=<owner>`.
    pub fn new(owner: impl Into<String>, requests: Resources) -> Self {
        let owner = owner.into();
        let mut labels = BTreeMap::new();
        labels.insert("app".to_owned(), owner.clone());
        Self {
            owner,
            namespace: "default".to_owned(),
            labels,
            requests,
            ..Self::default()
        }
    }

    /// The selector `app=<owner>` that [`PodTemplate::new`] labels pods with.
    pub fn own_selector(&self) -> LabelSelector {
        LabelSelector {
            match_labels: self.labels.clone(),
            match_expressions: Vec::new(),
        }
    }
}
