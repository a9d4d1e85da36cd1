//! Properties over random clusters and workloads: node capacity and maxPods are never
//! exceeded, required anti-affinity is never violated, the same input gives the same
//! result, and a shared template (compiled once, as the simulator schedules) places pods
//! exactly where a fresh one does.

use std::sync::Arc;

use plinth_model::Resources;
use plinth_model::units::GIB;
use plinth_placement::pods::*;
use proptest::prelude::*;

#[derive(Clone, Debug)]
struct NodeSpec {
    cpu: u64,
    mem_gib: u64,
    max_pods: u32,
    zone: u8,
    host: u8,
    control_plane: bool,
}

#[derive(Clone, Debug)]
struct WorkloadSpec {
    cpu: u64,
    mem_gib: u64,
    /// 0 none, 1 per node, 2 per zone.
    anti: u8,
    /// Spread over zones with DoNotSchedule, maxSkew 1.
    spread: bool,
    tolerate: bool,
}

#[derive(Clone, Debug)]
enum Op {
    Schedule {
        workload: usize,
        replicas: u32,
    },
    RemovePod {
        nth: usize,
    },
    RemoveNode {
        nth: usize,
    },
    /// Cordons (or uncordons) a node.
    Cordon {
        nth: usize,
        on: bool,
    },
    /// Adds a copy of a node under a name that sorts right after it.
    AddNode {
        nth: usize,
    },
}

fn node_spec() -> impl Strategy<Value = NodeSpec> {
    (
        1_000u64..8_000,
        1u64..16,
        1u32..8,
        0u8..3,
        0u8..4,
        proptest::bool::weighted(0.2),
    )
        .prop_map(
            |(cpu, mem_gib, max_pods, zone, host, control_plane)| NodeSpec {
                cpu,
                mem_gib,
                max_pods,
                zone,
                host,
                control_plane,
            },
        )
}

fn workload_spec() -> impl Strategy<Value = WorkloadSpec> {
    (0u64..3_000, 0u64..6, 0u8..3, any::<bool>(), any::<bool>()).prop_map(
        |(cpu, mem_gib, anti, spread, tolerate)| WorkloadSpec {
            cpu,
            mem_gib,
            anti,
            spread,
            tolerate,
        },
    )
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0usize..4, 1u32..6).prop_map(|(workload, replicas)| Op::Schedule { workload, replicas }),
        2 => any::<usize>().prop_map(|nth| Op::RemovePod { nth }),
        1 => any::<usize>().prop_map(|nth| Op::RemoveNode { nth }),
        2 => (any::<usize>(), any::<bool>()).prop_map(|(nth, on)| Op::Cordon { nth, on }),
        1 => any::<usize>().prop_map(|nth| Op::AddNode { nth }),
    ]
}

fn build_nodes(specs: &[NodeSpec]) -> Vec<Node> {
    specs
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let node = Node::new(
                format!("n{i:02}"),
                format!("h{}", n.host),
                format!("z{}", n.zone),
                Resources::new(n.cpu, n.mem_gib * GIB, 100 * GIB),
            )
            .with_pod_limits(n.max_pods, 0);
            if n.control_plane {
                node.control_plane()
            } else {
                node
            }
        })
        .collect()
}

fn template(i: usize, w: &WorkloadSpec) -> PodTemplate {
    let mut p = PodTemplate::new(format!("w{i}"), Resources::new(w.cpu, w.mem_gib * GIB, 0));
    // Workloads 0 and 1 share the label tier=front, so anti-affinity crosses workloads.
    p.labels
        .insert("tier".into(), if i < 2 { "front" } else { "back" }.into());
    let selector = LabelSelector::eq("tier", if i < 2 { "front" } else { "back" });
    match w.anti {
        1 => p
            .pod_anti_affinity
            .push(PodAffinityTerm::per_node(selector.clone())),
        2 => p
            .pod_anti_affinity
            .push(PodAffinityTerm::per_zone(selector.clone())),
        _ => {}
    }
    if w.spread {
        p.topology_spread.push(TopologySpreadConstraint {
            max_skew: 1,
            topology_key: LABEL_ZONE.into(),
            when_unsatisfiable: WhenUnsatisfiable::DoNotSchedule,
            selector: p.own_selector(),
        });
    }
    if w.tolerate {
        p.tolerations.push(Toleration::control_plane());
    }
    p
}

/// `replicas` of `t` through [`Scheduler::schedule_shared`], one at a time, as a batch.
fn schedule_shared(s: &mut Scheduler, t: &Arc<PodTemplate>, replicas: u32) -> BatchOutcome {
    let mut bound = Vec::new();
    for done in 0..replicas {
        match s.schedule_shared(t) {
            Ok(b) => bound.push(b),
            Err(PodsError::Unschedulable { explanation, .. }) => {
                return BatchOutcome {
                    bound,
                    pending: replicas - done,
                    explanation: Some(explanation),
                };
            }
            Err(e) => panic!("valid template: {e}"),
        }
    }
    BatchOutcome {
        bound,
        pending: 0,
        explanation: None,
    }
}

/// Runs the ops, scheduling through shared templates when `shared`; returns a trace of
/// every outcome.
fn run_with(
    nodes: &[NodeSpec],
    workloads: &[WorkloadSpec],
    ops: &[Op],
    shared: bool,
) -> (Scheduler, Vec<String>) {
    let built = build_nodes(nodes);
    let mut s =
        Scheduler::new(built.clone(), ScoringStrategy::LeastAllocated).expect("unique names");
    let templates: Vec<_> = workloads
        .iter()
        .enumerate()
        .map(|(i, w)| Arc::new(template(i, w)))
        .collect();
    let mut added = 0;
    let mut bound: Vec<PodId> = Vec::new();
    let mut trace = Vec::new();
    for op in ops {
        match op {
            Op::Schedule { workload, replicas } => {
                let t = &templates[workload % templates.len()];
                let out = if shared {
                    schedule_shared(&mut s, t, *replicas)
                } else {
                    s.schedule_replicas(t, *replicas).expect("valid template")
                };
                for b in &out.bound {
                    bound.push(b.pod);
                    trace.push(format!("{} {} -> {}", t.owner, b.pod, b.node.0));
                }
                if let Some(e) = out.explanation {
                    trace.push(format!("{} pending {}: {e}", t.owner, out.pending));
                }
            }
            Op::RemovePod { nth } if !bound.is_empty() => {
                let pod = bound.swap_remove(nth % bound.len());
                s.remove_pod(pod).expect("bound pod");
                trace.push(format!("removed {pod}"));
            }
            Op::RemoveNode { nth } if s.node_count() > 1 => {
                let names: Vec<String> = s.nodes().map(|(_, n)| n.name.clone()).collect();
                let name = &names[nth % names.len()];
                let evicted = s.remove_node(name).expect("known node");
                bound.retain(|p| !evicted.iter().any(|e| e.pod == *p));
                trace.push(format!("removed {name}, evicted {}", evicted.len()));
            }
            Op::Cordon { nth, on } if s.node_count() > 0 => {
                let names: Vec<String> = s.nodes().map(|(_, n)| n.name.clone()).collect();
                let name = &names[nth % names.len()];
                s.set_unschedulable(name, *on).expect("known node");
                trace.push(format!("cordoned {name}: {on}"));
            }
            Op::AddNode { nth } => {
                let copy = &built[nth % built.len()];
                added += 1;
                let mut node = Node {
                    name: format!("{}+{added}", copy.name),
                    ..copy.clone()
                };
                node.labels.insert(LABEL_HOSTNAME.into(), node.name.clone());
                let id = s.add_node(node).expect("new name");
                trace.push(format!("added {}", id.0));
            }
            _ => {}
        }
    }
    (s, trace)
}

/// Runs the ops with a fresh template per schedule call.
fn run(nodes: &[NodeSpec], workloads: &[WorkloadSpec], ops: &[Op]) -> (Scheduler, Vec<String>) {
    run_with(nodes, workloads, ops, false)
}

fn check_invariants(s: &Scheduler) -> Result<(), TestCaseError> {
    let mut placed = Vec::new();
    for (id, node) in s.nodes() {
        let pods = s.pods_on(id);
        prop_assert!(
            pods.len() as u32 <= node.pod_limit(),
            "{} holds {} pods > {}",
            node.name,
            pods.len(),
            node.pod_limit()
        );
        let mut sum = Resources::ZERO;
        for p in pods {
            let t = s.template(*p).expect("bound pod has a template");
            sum += t.requests;
            placed.push((node, t.clone()));
        }
        prop_assert!(
            sum.fits_in(&node.allocatable),
            "{} requests {sum} > {}",
            node.name,
            node.allocatable
        );
        prop_assert_eq!(sum, s.requested(id));
    }
    for (i, (node, pod)) in placed.iter().enumerate() {
        for term in &pod.pod_anti_affinity {
            let Some(domain) = node.labels.get(&term.topology_key) else {
                continue;
            };
            for (j, (other_node, other)) in placed.iter().enumerate() {
                if i != j && other_node.labels.get(&term.topology_key) == Some(domain) {
                    prop_assert!(
                        !term.selector.matches(&other.labels),
                        "{} on {} and {} on {} share {} {}",
                        pod.owner,
                        node.name,
                        other.owner,
                        other_node.name,
                        term.topology_key,
                        domain
                    );
                }
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn capacity_and_anti_affinity_always_hold(
        nodes in proptest::collection::vec(node_spec(), 1..12),
        workloads in proptest::collection::vec(workload_spec(), 1..5),
        ops in proptest::collection::vec(op(), 1..30),
    ) {
        let (s, _) = run(&nodes, &workloads, &ops);
        check_invariants(&s)?;
    }

    #[test]
    fn shared_templates_place_pods_where_fresh_ones_do(
        nodes in proptest::collection::vec(node_spec(), 1..12),
        workloads in proptest::collection::vec(workload_spec(), 1..5),
        ops in proptest::collection::vec(op(), 1..40),
    ) {
        let (_, fresh) = run_with(&nodes, &workloads, &ops, false);
        let (_, shared) = run_with(&nodes, &workloads, &ops, true);
        prop_assert_eq!(fresh, shared);
    }

    #[test]
    fn same_input_same_result(
        nodes in proptest::collection::vec(node_spec(), 1..12),
        workloads in proptest::collection::vec(workload_spec(), 1..5),
        ops in proptest::collection::vec(op(), 1..30),
    ) {
        let (_, first) = run(&nodes, &workloads, &ops);
        let (_, second) = run(&nodes, &workloads, &ops);
        prop_assert_eq!(first, second);
    }

    #[test]
    fn node_order_does_not_change_where_pods_go(
        nodes in proptest::collection::vec(node_spec(), 1..10),
        workloads in proptest::collection::vec(workload_spec(), 1..4),
        ops in proptest::collection::vec((0usize..4, 1u32..5), 1..10),
    ) {
        // Ties break by name, so reversing the node list leaves every choice unchanged.
        let templates: Vec<_> = workloads.iter().enumerate().map(|(i, w)| template(i, w)).collect();
        let place = |list: Vec<Node>| {
            let mut s = Scheduler::new(list, ScoringStrategy::LeastAllocated).expect("unique names");
            let mut out = Vec::new();
            for (w, r) in &ops {
                let res = s.schedule_replicas(&templates[w % templates.len()], *r).expect("valid");
                out.extend(res.bound.iter().map(|b| s.node(b.node).map(|n| n.name.clone()).unwrap_or_default()));
                out.push(res.explanation.map(|e| e.to_string()).unwrap_or_default());
            }
            out
        };
        let forward = place(build_nodes(&nodes));
        let mut reversed = build_nodes(&nodes);
        reversed.reverse();
        prop_assert_eq!(forward, place(reversed));
    }
}
