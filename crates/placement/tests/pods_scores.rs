//! Table-driven cases for each pod score and the tie-break by node name.

use plinth_model::Resources;
use plinth_model::units::GIB;
use plinth_placement::pods::*;

fn node(name: &str, zone: &str, cpu: u64, mem_gib: u64) -> Node {
    Node::new(
        name,
        format!("host-{name}"),
        zone,
        Resources::new(cpu, mem_gib * GIB, 100 * GIB),
    )
}

fn pod(owner: &str, cpu: u64, mem_gib: u64) -> PodTemplate {
    PodTemplate::new(owner, Resources::new(cpu, mem_gib * GIB, 0))
}

/// Binds `before` (pod, node name) exactly where said, by making that node the only choice
/// through a node selector on the hostname label; then schedules `pod` and names its node.
fn chosen(
    nodes: Vec<Node>,
    strategy: ScoringStrategy,
    before: &[(PodTemplate, &str)],
    pod: &PodTemplate,
) -> String {
    let mut s = Scheduler::new(nodes, strategy).expect("nodes");
    for (p, on) in before {
        let mut pinned = p.clone();
        pinned
            .node_selector
            .insert(LABEL_HOSTNAME.into(), (*on).into());
        s.schedule(&pinned).expect("setup pod fits");
    }
    let b = s.schedule(pod).expect("fits somewhere");
    s.node(b.node).map(|n| n.name.clone()).unwrap_or_default()
}

/// (name, nodes, strategy, pods pinned first, the pod, the node it must land on)
type Case = (
    &'static str,
    Vec<Node>,
    ScoringStrategy,
    Vec<(PodTemplate, &'static str)>,
    PodTemplate,
    &'static str,
);

#[test]
fn each_score_prefers_what_kube_scheduler_prefers() {
    use ScoringStrategy::{LeastAllocated as Least, MostAllocated as Most};
    let two = || vec![node("a", "z1", 8000, 16), node("b", "z1", 8000, 16)];
    let with = |f: &dyn Fn(&mut PodTemplate)| {
        let mut p = pod("web", 500, 1);
        f(&mut p);
        p
    };
    let weighted = |w: i32, app: &str| WeightedPodAffinityTerm {
        weight: w,
        term: PodAffinityTerm::per_node(LabelSelector::eq("app", app)),
    };
    let cases: Vec<Case> = vec![
        (
            "tie breaks by name",
            two(),
            Least,
            vec![],
            pod("web", 500, 1),
            "a",
        ),
        (
            "least allocated spreads",
            two(),
            Least,
            vec![(pod("x", 2000, 4), "a")],
            pod("web", 500, 1),
            "b",
        ),
        (
            "most allocated packs",
            two(),
            Most,
            vec![(pod("x", 2000, 4), "a")],
            pod("web", 500, 1),
            "a",
        ),
        (
            // Both nodes equally used overall; on b the pod evens CPU and memory out.
            "balanced allocation",
            two(),
            Least,
            vec![(pod("x", 4000, 2), "a"), (pod("y", 2000, 10), "b")],
            pod("web", 2000, 0),
            "b",
        ),
        (
            "preferred affinity attracts",
            two(),
            Least,
            vec![(pod("db", 1000, 2), "a")],
            with(&|p| p.preferred_pod_affinity.push(weighted(100, "db"))),
            "a",
        ),
        (
            "preferred anti-affinity repels",
            two(),
            Most,
            vec![(pod("db", 1000, 2), "a")],
            with(&|p| p.preferred_pod_anti_affinity.push(weighted(100, "db"))),
            "b",
        ),
        (
            "existing pods' preferred affinity attracts (symmetry)",
            two(),
            Least,
            vec![(
                {
                    let mut db = pod("db", 1000, 2);
                    db.preferred_pod_affinity.push(weighted(100, "web"));
                    db
                },
                "a",
            )],
            pod("web", 500, 1),
            "a",
        ),
        (
            "schedule-anyway spread prefers the emptier zone",
            vec![node("a", "z1", 8000, 16), node("b", "z2", 8000, 16)],
            Most,
            vec![(pod("web", 500, 1), "a")],
            with(&|p| {
                p.topology_spread.push(TopologySpreadConstraint {
                    max_skew: 1,
                    topology_key: LABEL_ZONE.into(),
                    when_unsatisfiable: WhenUnsatisfiable::ScheduleAnyway,
                    selector: LabelSelector::eq("app", "web"),
                })
            }),
            "b",
        ),
        (
            "PreferNoSchedule taint avoided",
            vec![
                node("a", "z1", 8000, 16).with_taint(Taint::new(
                    "spot",
                    "",
                    TaintEffect::PreferNoSchedule,
                )),
                node("b", "z1", 8000, 16),
            ],
            Most,
            vec![(pod("x", 2000, 4), "a")],
            pod("web", 500, 1),
            "b",
        ),
        (
            "preferred node affinity",
            vec![
                node("a", "z1", 8000, 16),
                node("b", "z1", 8000, 16).with_label("disk", "ssd"),
            ],
            Least,
            vec![],
            with(&|p| {
                p.preferred_node_affinity.push(PreferredNodeTerm {
                    weight: 50,
                    term: NodeSelectorTerm {
                        match_expressions: vec![NodeRequirement::new("disk", NodeOperator::Exists)],
                    },
                })
            }),
            "b",
        ),
    ];
    for (name, nodes, strategy, before, p, want) in cases {
        assert_eq!(chosen(nodes, strategy, &before, &p), want, "case {name}");
    }
}

#[test]
fn tie_break_follows_names_not_insertion_order() {
    let nodes = vec![
        node("zeta", "z1", 4000, 8),
        node("alpha", "z1", 4000, 8),
        node("mid", "z1", 4000, 8),
    ];
    assert_eq!(
        chosen(
            nodes,
            ScoringStrategy::LeastAllocated,
            &[],
            &pod("web", 100, 1)
        ),
        "alpha"
    );
}
