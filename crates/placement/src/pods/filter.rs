//! The node-only filters (cordon, taints, node selector and affinity) and the reason texts
//! every filter reports, worded as kube-scheduler words them.

use std::collections::BTreeMap;

use super::node::{Node, Taint, TaintEffect};
use super::pod::{NodeOperator, NodeSelectorTerm, PodTemplate, Toleration, TolerationOperator};

/// Reason: the node is cordoned.
pub const REASON_UNSCHEDULABLE: &str = "node(s) were unschedulable";
/// Reason: `nodeSelector` or required node affinity does not match.
pub const REASON_NODE_AFFINITY: &str = "node(s) didn't match Pod's node affinity/selector";
/// Reason: the node already runs `maxPods` pods.
pub const REASON_TOO_MANY_PODS: &str = "too many pods";
/// Reason: not enough CPU left.
pub const REASON_CPU: &str = "insufficient cpu";
/// Reason: not enough memory left.
pub const REASON_MEMORY: &str = "insufficient memory";
/// Reason: not enough disk (ephemeral storage) left.
pub const REASON_DISK: &str = "insufficient ephemeral-storage";
/// Reason: a `DoNotSchedule` spread constraint's topology label is missing on the node.
pub const REASON_SPREAD_LABEL: &str =
    "node(s) didn't match pod topology spread constraints (missing required label)";
/// Reason: placing the pod would exceed a `DoNotSchedule` constraint's `maxSkew`.
pub const REASON_SPREAD: &str = "node(s) didn't match pod topology spread constraints";
/// Reason: a required pod affinity term has no matching pod in the node's domain.
pub const REASON_AFFINITY: &str = "node(s) didn't match pod affinity rules";
/// Reason: a required pod anti-affinity term has a matching pod in the node's domain.
pub const REASON_ANTI_AFFINITY: &str = "node(s) didn't match pod anti-affinity rules";
/// Reason: a pod already in the node's domain has required anti-affinity against this pod.
pub const REASON_EXISTING_ANTI_AFFINITY: &str =
    "node(s) didn't satisfy existing pods anti-affinity rules";

/// True when `toleration` tolerates `taint` (Kubernetes `ToleratesTaint`).
pub fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    if toleration
        .effect
        .is_some_and(|effect| effect != taint.effect)
    {
        return false;
    }
    if toleration.key.as_ref().is_some_and(|key| *key != taint.key) {
        return false;
    }
    match &toleration.operator {
        TolerationOperator::Exists => true,
        TolerationOperator::Equal(value) => toleration.key.is_some() && *value == taint.value,
    }
}

/// The first `NoSchedule`/`NoExecute` taint of `node` that no toleration tolerates.
pub(crate) fn untolerated_taint<'a>(
    node: &'a Node,
    tolerations: &[Toleration],
) -> Option<&'a Taint> {
    node.taints
        .iter()
        .find(|taint| taint.effect.is_hard() && !tolerations.iter().any(|t| tolerates(t, taint)))
}

/// How many `PreferNoSchedule` taints of `node` no toleration tolerates (the TaintToleration
/// score's raw value; fewer is better).
pub(crate) fn untolerated_preferences(node: &Node, tolerations: &[Toleration]) -> u32 {
    let count = node
        .taints
        .iter()
        .filter(|taint| {
            taint.effect == TaintEffect::PreferNoSchedule
                && !tolerations.iter().any(|t| tolerates(t, taint))
        })
        .count();
    u32::try_from(count).unwrap_or(u32::MAX)
}

/// True when every requirement of `term` holds for `labels` (an empty term matches nothing,
/// as in Kubernetes).
pub fn node_term_matches(term: &NodeSelectorTerm, labels: &BTreeMap<String, String>) -> bool {
    !term.match_expressions.is_empty()
        && term.match_expressions.iter().all(|req| {
            let value = labels.get(&req.key);
            match &req.operator {
                NodeOperator::In(values) => value.is_some_and(|v| values.contains(v)),
                NodeOperator::NotIn(values) => value.is_none_or(|v| !values.contains(v)),
                NodeOperator::Exists => value.is_some(),
                NodeOperator::DoesNotExist => value.is_none(),
                NodeOperator::Gt(bound) => value
                    .and_then(|v| v.parse::<i64>().ok())
                    .is_some_and(|v| v > *bound),
                NodeOperator::Lt(bound) => value
                    .and_then(|v| v.parse::<i64>().ok())
                    .is_some_and(|v| v < *bound),
            }
        })
}

/// `nodeSelector` and required node affinity (terms ORed; none = any node).
pub fn node_affinity_matches(pod: &PodTemplate, labels: &BTreeMap<String, String>) -> bool {
    pod.node_selector
        .iter()
        .all(|(k, v)| labels.get(k) == Some(v))
        && (pod.node_affinity.is_empty()
            || pod
                .node_affinity
                .iter()
                .any(|term| node_term_matches(term, labels)))
}

/// Sum of the weights of the preferred node affinity terms that match (NodeAffinity score).
pub(crate) fn preferred_node_affinity(pod: &PodTemplate, labels: &BTreeMap<String, String>) -> i64 {
    pod.preferred_node_affinity
        .iter()
        .filter(|p| node_term_matches(&p.term, labels))
        .map(|p| i64::from(p.weight))
        .sum()
}

/// The node-only filters in kube-scheduler's order (NodeUnschedulable, TaintToleration,
/// NodeAffinity): `None` when the node passes, else the reason.
pub(crate) fn node_only_reason(node: &Node, pod: &PodTemplate) -> Option<String> {
    if node.unschedulable {
        return Some(REASON_UNSCHEDULABLE.to_owned());
    }
    if let Some(taint) = untolerated_taint(node, &pod.tolerations) {
        return Some(format!("node(s) had untolerated taint {taint}"));
    }
    if !node_affinity_matches(pod, &node.labels) {
        return Some(REASON_NODE_AFFINITY.to_owned());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pods::pod::NodeRequirement;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn node_operators_follow_kubernetes() {
        let l = labels(&[("disk", "ssd"), ("gen", "5")]);
        let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        let cases = [
            (
                NodeRequirement::new("disk", NodeOperator::In(s(&["ssd", "nvme"]))),
                true,
            ),
            (
                NodeRequirement::new("disk", NodeOperator::In(s(&["hdd"]))),
                false,
            ),
            (
                NodeRequirement::new("disk", NodeOperator::NotIn(s(&["hdd"]))),
                true,
            ),
            (
                NodeRequirement::new("absent", NodeOperator::NotIn(s(&["x"]))),
                true,
            ),
            (NodeRequirement::new("disk", NodeOperator::Exists), true),
            (NodeRequirement::new("absent", NodeOperator::Exists), false),
            (
                NodeRequirement::new("absent", NodeOperator::DoesNotExist),
                true,
            ),
            (
                NodeRequirement::new("disk", NodeOperator::DoesNotExist),
                false,
            ),
            (NodeRequirement::new("gen", NodeOperator::Gt(4)), true),
            (NodeRequirement::new("gen", NodeOperator::Gt(5)), false),
            (NodeRequirement::new("gen", NodeOperator::Lt(6)), true),
            (NodeRequirement::new("disk", NodeOperator::Lt(6)), false),
        ];
        for (req, want) in cases {
            let term = NodeSelectorTerm {
                match_expressions: vec![req.clone()],
            };
            assert_eq!(node_term_matches(&term, &l), want, "{req:?}");
        }
    }

    #[test]
    fn tolerations_follow_kubernetes() {
        let taint = Taint::new("dedicated", "db", TaintEffect::NoSchedule);
        let eq = |v: &str, e| Toleration {
            key: Some("dedicated".to_owned()),
            operator: TolerationOperator::Equal(v.to_owned()),
            effect: e,
        };
        assert!(tolerates(&eq("db", None), &taint));
        assert!(tolerates(&eq("db", Some(TaintEffect::NoSchedule)), &taint));
        assert!(!tolerates(&eq("db", Some(TaintEffect::NoExecute)), &taint));
        assert!(!tolerates(&eq("web", None), &taint));
        assert!(tolerates(&Toleration::exists("dedicated"), &taint));
        let all = Toleration {
            key: None,
            operator: TolerationOperator::Exists,
            effect: None,
        };
        assert!(tolerates(&all, &taint));
        assert!(!tolerates(&Toleration::control_plane(), &taint));
    }
}
