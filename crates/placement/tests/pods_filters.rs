//! Table-driven cases for each pod filter, and the kube-scheduler style explanation.

use plinth_model::Resources;
use plinth_model::units::GIB;
use plinth_placement::pods::*;

fn node(name: &str, host: &str, zone: &str, cpu: u64, mem_gib: u64) -> Node {
    Node::new(
        name,
        host,
        zone,
        Resources::new(cpu, mem_gib * GIB, 100 * GIB),
    )
}

fn pod(owner: &str, cpu: u64, mem_gib: u64) -> PodTemplate {
    PodTemplate::new(owner, Resources::new(cpu, mem_gib * GIB, GIB))
}

fn names(s: &Scheduler, bound: &[Binding]) -> Vec<String> {
    bound
        .iter()
        .map(|b| s.node(b.node).map(|n| n.name.clone()).unwrap_or_default())
        .collect()
}

/// Schedules `pod` once onto a fresh cluster; the node name or the explanation text.
fn outcome(
    nodes: Vec<Node>,
    before: &[(PodTemplate, u32)],
    pod: &PodTemplate,
) -> Result<String, String> {
    let mut s =
        Scheduler::new(nodes, ScoringStrategy::LeastAllocated).map_err(|e| e.to_string())?;
    for (p, n) in before {
        let out = s.schedule_replicas(p, *n).map_err(|e| e.to_string())?;
        assert_eq!(
            out.pending, 0,
            "setup pod of {} must fit: {:?}",
            p.owner, out.explanation
        );
    }
    match s.schedule(pod) {
        Ok(b) => Ok(s.node(b.node).map(|n| n.name.clone()).unwrap_or_default()),
        Err(PodsError::Unschedulable { explanation, .. }) => Err(explanation.to_string()),
        Err(e) => Err(format!("error: {e}")),
    }
}

/// (name, nodes, pods bound first with their replicas, the pod, its node or the explanation)
type Case = (
    &'static str,
    Vec<Node>,
    Vec<(PodTemplate, u32)>,
    PodTemplate,
    Result<&'static str, &'static str>,
);

#[test]
fn each_filter_accepts_and_rejects_as_kubernetes_does() {
    let small = || vec![node("a", "h1", "z1", 2000, 4)];
    let with = |f: &dyn Fn(&mut PodTemplate)| {
        let mut p = pod("web", 100, 1);
        f(&mut p);
        p
    };
    let mut ssd = NodeSelectorTerm::default();
    ssd.match_expressions.push(NodeRequirement::new(
        "disk",
        NodeOperator::In(vec!["ssd".into()]),
    ));
    let anti = with(&|p| {
        p.pod_anti_affinity
            .push(PodAffinityTerm::per_node(LabelSelector::eq("app", "db")))
    });
    let aff = with(&|p| {
        p.pod_affinity
            .push(PodAffinityTerm::per_node(LabelSelector::eq("app", "db")))
    });
    let mut db_anti = pod("db", 100, 1);
    db_anti
        .pod_anti_affinity
        .push(PodAffinityTerm::per_node(LabelSelector::eq("app", "web")));
    let cases: Vec<Case> = vec![
        ("fits", small(), vec![], pod("web", 2000, 4), Ok("a")),
        (
            "cpu",
            small(),
            vec![],
            pod("web", 2001, 1),
            Err("0/1 nodes are available: 1 insufficient cpu"),
        ),
        (
            "memory",
            small(),
            vec![],
            pod("web", 1, 5),
            Err("0/1 nodes are available: 1 insufficient memory"),
        ),
        (
            "disk",
            small(),
            vec![],
            PodTemplate::new("web", Resources::new(1, 1, 101 * GIB)),
            Err("0/1 nodes are available: 1 insufficient ephemeral-storage"),
        ),
        (
            "cpu used by earlier pods",
            small(),
            vec![(pod("x", 1500, 1), 1)],
            pod("web", 600, 1),
            Err("0/1 nodes are available: 1 insufficient cpu"),
        ),
        (
            "max pods",
            vec![node("a", "h1", "z1", 8000, 8).with_pod_limits(2, 0)],
            vec![(pod("x", 1, 0), 2)],
            pod("web", 1, 0),
            Err("0/1 nodes are available: 1 too many pods"),
        ),
        (
            "pods per core",
            vec![node("a", "h1", "z1", 2000, 8).with_pod_limits(110, 1)],
            vec![(pod("x", 1, 0), 2)],
            pod("web", 1, 0),
            Err("0/1 nodes are available: 1 too many pods"),
        ),
        (
            "node selector",
            vec![
                node("a", "h1", "z1", 2000, 4),
                node("b", "h1", "z1", 2000, 4).with_label("disk", "ssd"),
            ],
            vec![],
            with(&|p| {
                p.node_selector.insert("disk".into(), "ssd".into());
            }),
            Ok("b"),
        ),
        (
            "node selector nowhere",
            small(),
            vec![],
            with(&|p| {
                p.node_selector.insert("disk".into(), "ssd".into());
            }),
            Err("0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector"),
        ),
        (
            "required node affinity",
            vec![
                node("a", "h1", "z1", 2000, 4),
                node("b", "h1", "z1", 2000, 4).with_label("disk", "ssd"),
            ],
            vec![],
            with(&|p| p.node_affinity.push(ssd.clone())),
            Ok("b"),
        ),
        (
            "control-plane taint by default",
            vec![node("cp", "h1", "z1", 8000, 8).control_plane()],
            vec![],
            pod("web", 100, 1),
            Err(
                "0/1 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }",
            ),
        ),
        (
            "control-plane toleration",
            vec![node("cp", "h1", "z1", 8000, 8).control_plane()],
            vec![],
            with(&|p| p.tolerations.push(Toleration::control_plane())),
            Ok("cp"),
        ),
        (
            "cordoned",
            vec![Node {
                unschedulable: true,
                ..node("a", "h1", "z1", 2000, 4)
            }],
            vec![],
            pod("web", 100, 1),
            Err("0/1 nodes are available: 1 node(s) were unschedulable"),
        ),
        (
            "required anti-affinity per node",
            vec![
                node("a", "h1", "z1", 8000, 8),
                node("b", "h1", "z1", 8000, 8),
            ],
            vec![(pod("db", 7000, 1), 1)],
            anti.clone(),
            Ok("b"),
        ),
        (
            "required anti-affinity per node, no room",
            vec![node("a", "h1", "z1", 8000, 8)],
            vec![(pod("db", 100, 1), 1)],
            anti.clone(),
            Err("0/1 nodes are available: 1 node(s) didn't match pod anti-affinity rules"),
        ),
        (
            "required anti-affinity per zone",
            vec![
                node("a", "h1", "z1", 8000, 8),
                node("b", "h2", "z1", 8000, 8),
                node("c", "h3", "z2", 1000, 2),
            ],
            vec![(pod("db", 100, 1), 1)],
            with(&|p| {
                p.pod_anti_affinity
                    .push(PodAffinityTerm::per_zone(LabelSelector::eq("app", "db")))
            }),
            Ok("c"),
        ),
        (
            "existing pod's anti-affinity",
            vec![node("a", "h1", "z1", 8000, 8)],
            vec![(db_anti.clone(), 1)],
            pod("web", 100, 1),
            Err(
                "0/1 nodes are available: 1 node(s) didn't satisfy existing pods anti-affinity rules",
            ),
        ),
        (
            "required affinity follows its target",
            vec![
                node("a", "h1", "z1", 8000, 8),
                node("b", "h1", "z1", 8000, 8),
            ],
            vec![(pod("db", 7000, 1), 1)],
            aff.clone(),
            Ok("a"),
        ),
        (
            "required affinity with no target anywhere",
            vec![node("a", "h1", "z1", 8000, 8)],
            vec![],
            aff,
            Err("0/1 nodes are available: 1 node(s) didn't match pod affinity rules"),
        ),
    ];
    for (name, nodes, before, p, want) in cases {
        let got = outcome(nodes, &before, &p);
        assert_eq!(got.as_deref().map_err(String::as_str), want, "case {name}");
    }
}

#[test]
fn first_replica_may_satisfy_its_own_affinity() {
    let mut p = pod("cache", 100, 1);
    p.pod_affinity
        .push(PodAffinityTerm::per_zone(p.own_selector()));
    let nodes = vec![
        node("a", "h1", "z1", 8000, 8),
        node("b", "h2", "z2", 8000, 8),
    ];
    let mut s = Scheduler::new(nodes, ScoringStrategy::LeastAllocated).expect("nodes");
    let out = s.schedule_replicas(&p, 4).expect("valid");
    let zones: Vec<_> = names(&s, &out.bound);
    assert_eq!(out.pending, 0);
    assert!(
        zones.iter().all(|z| *z == zones[0]),
        "all in one zone: {zones:?}"
    );
}

#[test]
fn topology_spread_do_not_schedule_keeps_max_skew() {
    // Zone z1 has room for everything and is emptier, but maxSkew 1 forces alternation.
    let nodes = vec![
        node("a", "h1", "z1", 64_000, 64),
        node("b", "h2", "z2", 8_000, 8),
        node("c", "h3", "z3", 8_000, 8),
    ];
    let mut p = pod("web", 1000, 1);
    p.topology_spread.push(TopologySpreadConstraint {
        max_skew: 1,
        topology_key: LABEL_ZONE.into(),
        when_unsatisfiable: WhenUnsatisfiable::DoNotSchedule,
        selector: p.own_selector(),
    });
    let mut s = Scheduler::new(nodes, ScoringStrategy::MostAllocated).expect("nodes");
    let out = s.schedule_replicas(&p, 9).expect("valid");
    assert_eq!(out.pending, 0);
    let mut per_node = std::collections::BTreeMap::new();
    for n in names(&s, &out.bound) {
        *per_node.entry(n).or_insert(0) += 1;
    }
    assert_eq!(per_node.into_values().collect::<Vec<_>>(), vec![3, 3, 3]);
    // Three 5-CPU replicas of the same workload fill b and c (3 + 5 = 8 CPUs): counts 4/4/4.
    let mut big = pod("web", 5000, 1);
    big.topology_spread = p.topology_spread.clone();
    let out = s.schedule_replicas(&big, 3).expect("valid");
    assert_eq!(out.pending, 0);
    // Only a has room: 5/4/4 is skew 1, allowed; 6/4/4 would be skew 2, refused.
    let out = s.schedule_replicas(&p, 3).expect("valid");
    assert_eq!(out.bound.len(), 1, "{:?}", out.explanation);
    assert_eq!(
        out.explanation.map(|e| e.to_string()).as_deref(),
        Some(
            "0/3 nodes are available: 2 insufficient cpu, 1 node(s) didn't match pod topology spread constraints"
        )
    );
}

#[test]
fn spread_rejects_nodes_without_the_topology_label() {
    let mut bare = node("x", "h9", "z9", 8000, 8);
    bare.labels.remove(LABEL_ZONE);
    let mut p = pod("web", 100, 1);
    p.topology_spread.push(TopologySpreadConstraint {
        max_skew: 1,
        topology_key: LABEL_ZONE.into(),
        when_unsatisfiable: WhenUnsatisfiable::DoNotSchedule,
        selector: p.own_selector(),
    });
    let got = outcome(vec![bare], &[], &p);
    assert_eq!(
        got.as_deref().map_err(String::as_str),
        Err(
            "0/1 nodes are available: 1 node(s) didn't match pod topology spread constraints (missing required label)"
        )
    );
}

#[test]
fn explanation_reads_like_kube_scheduler() {
    let mut nodes = Vec::new();
    for i in 0..16 {
        nodes.push(node(&format!("w{i:02}"), &format!("h{i}"), "z1", 16_000, 8));
    }
    for i in 0..8 {
        nodes.push(node(&format!("cp{i}"), &format!("h{i}"), "z1", 16_000, 64).control_plane());
    }
    let mut s = Scheduler::new(nodes, ScoringStrategy::LeastAllocated).expect("nodes");
    let err = s
        .schedule(&pod("analytics", 1000, 32))
        .expect_err("too big");
    assert_eq!(
        err.to_string(),
        "pod of analytics unschedulable: 0/24 nodes are available: 16 insufficient memory, \
         8 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }"
    );
    assert_eq!(s.pod_count(), 0, "a failed pod binds nothing");
}

#[test]
fn invalid_templates_are_errors_not_panics() {
    let mut s = Scheduler::new(
        vec![node("a", "h", "z", 1000, 1)],
        ScoringStrategy::LeastAllocated,
    )
    .expect("nodes");
    let mut p = pod("web", 1, 0);
    p.topology_spread.push(TopologySpreadConstraint {
        max_skew: 0,
        topology_key: LABEL_ZONE.into(),
        when_unsatisfiable: WhenUnsatisfiable::DoNotSchedule,
        selector: LabelSelector::default(),
    });
    assert!(matches!(s.schedule(&p), Err(PodsError::InvalidPod { .. })));
    let mut p = pod("web", 1, 0);
    p.preferred_pod_affinity.push(WeightedPodAffinityTerm {
        weight: 101,
        term: PodAffinityTerm::per_node(LabelSelector::default()),
    });
    assert!(matches!(s.schedule(&p), Err(PodsError::InvalidPod { .. })));
    let dup = Scheduler::new(
        vec![node("a", "h", "z", 1, 1), node("a", "h", "z", 1, 1)],
        ScoringStrategy::LeastAllocated,
    );
    assert!(matches!(dup, Err(PodsError::DuplicateNode { .. })));
}
