//! A workload's Kubernetes pod spec (`k8s-openapi`) as the scheduler's [`PodTemplate`]:
//! node selector, node affinity, tolerations, pod (anti-)affinity and topology spread, with
//! Kubernetes' own defaults (an empty `topologyKey` is invalid, `maxSkew` at least 1, a
//! spread selector applies to the pod's namespace). The one place that reads those fields.

use k8s_openapi::api::core::v1 as k8s;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use plinth_model::workload::Workload;

use super::PodsError;
use super::node::TaintEffect;
use super::pod::{
    LabelOperator, LabelSelector, NodeOperator, NodeRequirement, NodeSelectorTerm, PodAffinityTerm,
    PodTemplate, PreferredNodeTerm, Toleration, TolerationOperator, TopologySpreadConstraint,
    WeightedPodAffinityTerm, WhenUnsatisfiable,
};

impl PodTemplate {
    /// One replica of `w` as the scheduler sees it. Fails on what the API server would
    /// refuse (an unknown operator, a non-integer `Gt`/`Lt` value).
    pub fn of_workload(w: &Workload) -> Result<Self, PodsError> {
        let owner = w.id.to_string();
        let invalid = |reason: String| PodsError::InvalidPod {
            owner: owner.clone(),
            reason,
        };
        let spec = &w.pod;
        let affinity = spec.affinity.as_ref();
        let node = affinity.and_then(|a| a.node_affinity.as_ref());
        let pod = affinity.and_then(|a| a.pod_affinity.as_ref());
        let anti = affinity.and_then(|a| a.pod_anti_affinity.as_ref());
        let node_affinity = node
            .and_then(|n| {
                n.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .map(|s| s.node_selector_terms.iter().map(node_term).collect())
            .transpose()
            .map_err(invalid)?
            .unwrap_or_default();
        let preferred_node_affinity = node
            .and_then(|n| {
                n.preferred_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .into_iter()
            .flatten()
            .map(|p| {
                Ok(PreferredNodeTerm {
                    weight: p.weight,
                    term: node_term(&p.preference)?,
                })
            })
            .collect::<Result<_, String>>()
            .map_err(invalid)?;
        let required = |terms: Option<&Vec<k8s::PodAffinityTerm>>| {
            terms
                .into_iter()
                .flatten()
                .map(pod_term)
                .collect::<Result<Vec<_>, String>>()
        };
        let preferred = |terms: Option<&Vec<k8s::WeightedPodAffinityTerm>>| {
            terms
                .into_iter()
                .flatten()
                .map(|w| {
                    Ok(WeightedPodAffinityTerm {
                        weight: w.weight,
                        term: pod_term(&w.pod_affinity_term)?,
                    })
                })
                .collect::<Result<Vec<_>, String>>()
        };
        Ok(Self {
            owner: owner.clone(),
            namespace: w.id.namespace.clone(),
            labels: w.pod_labels.clone(),
            requests: w.requests,
            node_selector: spec.node_selector.clone().unwrap_or_default(),
            node_affinity,
            preferred_node_affinity,
            tolerations: spec
                .tolerations
                .iter()
                .flatten()
                .map(toleration)
                .collect::<Result<_, String>>()
                .map_err(invalid)?,
            pod_affinity: required(pod.and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
            }))
            .map_err(invalid)?,
            pod_anti_affinity: required(anti.and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
            }))
            .map_err(invalid)?,
            preferred_pod_affinity: preferred(pod.and_then(|a| {
                a.preferred_during_scheduling_ignored_during_execution
                    .as_ref()
            }))
            .map_err(invalid)?,
            preferred_pod_anti_affinity: preferred(anti.and_then(|a| {
                a.preferred_during_scheduling_ignored_during_execution
                    .as_ref()
            }))
            .map_err(invalid)?,
            topology_spread: spec
                .topology_spread_constraints
                .iter()
                .flatten()
                .map(spread)
                .collect::<Result<_, String>>()
                .map_err(invalid)?,
        })
    }
}

fn node_term(t: &k8s::NodeSelectorTerm) -> Result<NodeSelectorTerm, String> {
    let int = |values: &[String], op: &str| -> Result<i64, String> {
        match values {
            [v] => v
                .parse()
                .map_err(|_| format!("node affinity `{op}` needs an integer value, not `{v}`")),
            _ => Err(format!("node affinity `{op}` needs exactly one value")),
        }
    };
    let match_expressions = t
        .match_expressions
        .iter()
        .flatten()
        .map(|e| {
            let values = e.values.clone().unwrap_or_default();
            let operator = match e.operator.as_str() {
                "In" => NodeOperator::In(values),
                "NotIn" => NodeOperator::NotIn(values),
                "Exists" => NodeOperator::Exists,
                "DoesNotExist" => NodeOperator::DoesNotExist,
                "Gt" => NodeOperator::Gt(int(&values, "Gt")?),
                "Lt" => NodeOperator::Lt(int(&values, "Lt")?),
                other => return Err(format!("unknown node selector operator `{other}`")),
            };
            Ok(NodeRequirement::new(e.key.clone(), operator))
        })
        .collect::<Result<_, String>>()?;
    Ok(NodeSelectorTerm { match_expressions })
}

/// A Kubernetes label selector; `None` (no selector) matches nothing in affinity terms,
/// as in Kubernetes, which is what an impossible `In` of no values gives.
fn selector(s: Option<&meta::LabelSelector>) -> Result<LabelSelector, String> {
    let Some(s) = s else {
        return Ok(LabelSelector {
            match_labels: Default::default(),
            match_expressions: vec![(String::new(), LabelOperator::In(Vec::new()))],
        });
    };
    let match_expressions = s
        .match_expressions
        .iter()
        .flatten()
        .map(|e| {
            let values = e.values.clone().unwrap_or_default();
            let op = match e.operator.as_str() {
                "In" => LabelOperator::In(values),
                "NotIn" => LabelOperator::NotIn(values),
                "Exists" => LabelOperator::Exists,
                "DoesNotExist" => LabelOperator::DoesNotExist,
                other => return Err(format!("unknown label selector operator `{other}`")),
            };
            Ok((e.key.clone(), op))
        })
        .collect::<Result<_, String>>()?;
    Ok(LabelSelector {
        match_labels: s.match_labels.clone().unwrap_or_default(),
        match_expressions,
    })
}

fn pod_term(t: &k8s::PodAffinityTerm) -> Result<PodAffinityTerm, String> {
    if t.topology_key.is_empty() {
        return Err("a pod affinity term has an empty topologyKey".to_owned());
    }
    Ok(PodAffinityTerm {
        selector: selector(t.label_selector.as_ref())?,
        topology_key: t.topology_key.clone(),
    })
}

fn effect(e: Option<&str>) -> Result<Option<TaintEffect>, String> {
    match e.unwrap_or_default() {
        "" => Ok(None),
        "NoSchedule" => Ok(Some(TaintEffect::NoSchedule)),
        "PreferNoSchedule" => Ok(Some(TaintEffect::PreferNoSchedule)),
        "NoExecute" => Ok(Some(TaintEffect::NoExecute)),
        other => Err(format!("unknown taint effect `{other}`")),
    }
}

fn toleration(t: &k8s::Toleration) -> Result<Toleration, String> {
    let operator = match t.operator.as_deref().unwrap_or("Equal") {
        "Exists" => TolerationOperator::Exists,
        "Equal" => TolerationOperator::Equal(t.value.clone().unwrap_or_default()),
        other => return Err(format!("unknown toleration operator `{other}`")),
    };
    Ok(Toleration {
        key: t.key.clone().filter(|k| !k.is_empty()),
        operator,
        effect: effect(t.effect.as_deref())?,
    })
}

fn spread(c: &k8s::TopologySpreadConstraint) -> Result<TopologySpreadConstraint, String> {
    let when_unsatisfiable = match c.when_unsatisfiable.as_str() {
        "DoNotSchedule" => WhenUnsatisfiable::DoNotSchedule,
        "ScheduleAnyway" => WhenUnsatisfiable::ScheduleAnyway,
        other => return Err(format!("unknown whenUnsatisfiable `{other}`")),
    };
    let max_skew = u32::try_from(c.max_skew)
        .ok()
        .filter(|&s| s >= 1)
        .ok_or_else(|| format!("topology spread maxSkew {} must be at least 1", c.max_skew))?;
    if c.topology_key.is_empty() {
        return Err("a topology spread constraint has an empty topologyKey".to_owned());
    }
    // Kubernetes: a spread constraint without a selector counts no pods; with one, the
    // pods of the incoming pod's namespace that match it.
    Ok(TopologySpreadConstraint {
        max_skew,
        topology_key: c.topology_key.clone(),
        when_unsatisfiable,
        selector: selector(c.label_selector.as_ref())?,
    })
}
