//! Incremental operations (remove a pod, remove a node and reschedule its pods, cordon),
//! DaemonSets, and the shared-failure-domain report.

use plinth_model::Resources;
use plinth_model::units::GIB;
use plinth_placement::pods::*;

fn node(name: &str, host: &str, zone: &str) -> Node {
    Node::new(name, host, zone, Resources::new(4000, 8 * GIB, 100 * GIB))
}

fn pod(owner: &str, cpu: u64) -> PodTemplate {
    PodTemplate::new(owner, Resources::new(cpu, GIB, 0))
}

fn name(s: &Scheduler, id: NodeId) -> String {
    s.node(id).map(|n| n.name.clone()).unwrap_or_default()
}

#[test]
fn two_replicas_on_two_nodes_of_one_host_are_reported() {
    // Two VM nodes on host h1, one on h2. Anti-affinity per node is satisfied by a and b,
    // yet one host failure takes both replicas.
    let nodes = vec![
        node("a", "h1", "r1"),
        node("b", "h1", "r1"),
        node("c", "h2", "r1"),
    ];
    let mut s = Scheduler::new(nodes, ScoringStrategy::LeastAllocated).expect("nodes");
    // Fill c so the replicas land on a and b.
    let mut filler = pod("filler", 4000);
    filler
        .node_selector
        .insert(LABEL_HOSTNAME.into(), "c".into());
    s.schedule(&filler).expect("fits");
    let mut web = pod("web", 1000);
    web.pod_anti_affinity
        .push(PodAffinityTerm::per_node(web.own_selector()));
    let out = s.schedule_replicas(&web, 2).expect("valid");
    assert_eq!(out.pending, 0);
    assert_eq!(
        s.shared_failure_domains(),
        vec![SharedFailureDomain {
            owner: "web".into(),
            host: "h1".into(),
            nodes: vec!["a".into(), "b".into()],
            pods: 2
        }]
    );
}

#[test]
fn replicas_on_distinct_hosts_are_not_reported() {
    let nodes = vec![node("a", "h1", "r1"), node("b", "h2", "r1")];
    let mut s = Scheduler::new(nodes, ScoringStrategy::LeastAllocated).expect("nodes");
    let mut web = pod("web", 1000);
    web.pod_anti_affinity
        .push(PodAffinityTerm::per_node(web.own_selector()));
    s.schedule_replicas(&web, 2).expect("valid");
    assert_eq!(s.shared_failure_domains(), vec![]);
}

#[test]
fn removing_a_node_evicts_its_pods_for_rescheduling() {
    let nodes = vec![
        node("a", "h1", "r1"),
        node("b", "h2", "r1"),
        node("c", "h3", "r2"),
    ];
    let mut s = Scheduler::new(nodes, ScoringStrategy::LeastAllocated).expect("nodes");
    let mut web = pod("web", 1000);
    web.pod_anti_affinity
        .push(PodAffinityTerm::per_node(web.own_selector()));
    let out = s.schedule_replicas(&web, 3).expect("valid");
    assert_eq!(out.pending, 0);
    let evicted = s.remove_node("b").expect("known node");
    assert_eq!(evicted.len(), 1);
    assert_eq!(s.node_count(), 2);
    assert_eq!(s.pod_count(), 2);
    // Anti-affinity still holds: the evicted replica has nowhere to go.
    let err = s.schedule(&evicted[0].template).expect_err("no node left");
    assert_eq!(
        err.to_string(),
        "pod of web unschedulable: 0/2 nodes are available: 2 node(s) didn't match pod anti-affinity rules"
    );
    // A replacement node joins: the replica goes there.
    s.add_node(node("d", "h4", "r2")).expect("new name");
    let b = s.schedule(&evicted[0].template).expect("fits on d");
    assert_eq!(name(&s, b.node), "d");
    assert!(matches!(
        s.remove_node("b"),
        Err(PodsError::UnknownNode { .. })
    ));
}

#[test]
fn removing_a_pod_frees_its_resources_and_its_anti_affinity() {
    let mut s = Scheduler::new(vec![node("a", "h1", "r1")], ScoringStrategy::LeastAllocated)
        .expect("nodes");
    let mut web = pod("web", 3000);
    web.pod_anti_affinity
        .push(PodAffinityTerm::per_node(web.own_selector()));
    let first = s.schedule(&web).expect("fits");
    assert!(s.schedule(&web).is_err());
    assert_eq!(s.requested(first.node).cpu_millis, 3000);
    s.remove_pod(first.pod).expect("bound");
    assert_eq!(s.requested(first.node), Resources::ZERO);
    assert!(s.schedule(&web).is_ok());
    assert!(matches!(
        s.remove_pod(PodId(99)),
        Err(PodsError::UnknownPod { .. })
    ));
}

#[test]
fn cordoned_nodes_take_no_new_pods_but_keep_theirs() {
    let mut s = Scheduler::new(
        vec![node("a", "h1", "r1"), node("b", "h2", "r1")],
        ScoringStrategy::LeastAllocated,
    )
    .expect("nodes");
    let first = s.schedule(&pod("web", 100)).expect("fits");
    assert_eq!(name(&s, first.node), "a");
    s.set_unschedulable("a", true).expect("known");
    let second = s.schedule(&pod("web", 100)).expect("fits");
    let third = s.schedule(&pod("web", 100)).expect("fits");
    assert_eq!(
        (name(&s, second.node), name(&s, third.node)),
        ("b".into(), "b".into())
    );
    assert_eq!(s.pods_on(first.node), &[first.pod]);
}

#[test]
fn daemonset_runs_one_pod_per_eligible_node() {
    let nodes = vec![
        node("cp", "h0", "r1").control_plane(),
        node("a", "h1", "r1"),
        node("b", "h2", "r1"),
        Node {
            unschedulable: true,
            ..node("c", "h3", "r2")
        },
        node("gpu", "h4", "r2").with_taint(Taint::new("gpu", "true", TaintEffect::NoSchedule)),
        node("full", "h5", "r2"),
    ];
    let mut s = Scheduler::new(nodes, ScoringStrategy::LeastAllocated).expect("nodes");
    let mut hog = pod("hog", 4000);
    hog.node_selector
        .insert(LABEL_HOSTNAME.into(), "full".into());
    s.schedule(&hog).expect("fits");
    let ds = pod("node-exporter", 100);
    let out = s.schedule_daemonset(&ds).expect("valid");
    let on: Vec<String> = out.bound.iter().map(|b| name(&s, b.node)).collect();
    assert_eq!(on, vec!["a", "b", "c"], "cordoned nodes still run daemons");
    assert_eq!(out.not_eligible, 2, "control plane and gpu taints");
    assert_eq!(out.pending.len(), 1);
    assert_eq!(
        (name(&s, out.pending[0].0), out.pending[0].1.as_str()),
        ("full".into(), REASON_CPU)
    );
    // Run again: nothing new; a new node gets its daemon.
    let again = s.schedule_daemonset(&ds).expect("valid");
    assert_eq!((again.bound.len(), again.already_running), (0, 3));
    s.add_node(node("d", "h6", "r2")).expect("new");
    let again = s.schedule_daemonset(&ds).expect("valid");
    assert_eq!(
        again
            .bound
            .iter()
            .map(|b| name(&s, b.node))
            .collect::<Vec<_>>(),
        vec!["d"]
    );
    // A toleration-everything daemon also covers tainted nodes.
    let mut all = pod("cni", 10);
    all.tolerations.push(Toleration {
        key: None,
        operator: TolerationOperator::Exists,
        effect: None,
    });
    let out = s.schedule_daemonset(&all).expect("valid");
    assert_eq!(
        (out.bound.len(), out.not_eligible, out.pending.len()),
        (6, 0, 1),
        "full stays full"
    );
}

#[test]
fn a_node_moved_to_another_host_takes_its_pods_into_that_host_s_domain() {
    // Anti-affinity over physical hosts (plinth.dev/host): at most one web replica per host.
    let nodes = vec![
        node("a", "h1", "z"),
        node("b", "h2", "z"),
        node("c", "h3", "z"),
    ];
    let mut s = Scheduler::new(nodes, ScoringStrategy::LeastAllocated).expect("nodes");
    let mut web = pod("web", 1000);
    web.pod_anti_affinity.push(PodAffinityTerm {
        selector: web.own_selector(),
        topology_key: LABEL_HOST.into(),
    });
    s.set_unschedulable("b", true).expect("known");
    s.set_unschedulable("c", true).expect("known");
    let first = s.schedule(&web).expect("a is free");
    assert_eq!(name(&s, first.node), "a");
    s.set_unschedulable("b", false).expect("known");
    s.set_unschedulable("c", false).expect("known");

    // b's VM moves onto h1, where the first replica runs: the second one goes to c.
    s.move_node("b", "h1", "r1").expect("known");
    let b = s.node(s.node_id("b").expect("b")).expect("b");
    assert_eq!(
        (b.host.as_str(), b.labels[LABEL_HOST].as_str()),
        ("h1", "h1")
    );
    assert_eq!(
        (b.labels[LABEL_RACK].as_str(), b.labels[LABEL_ZONE].as_str()),
        ("r1", "z")
    );
    let second = s.schedule(&web).expect("c is on a host of its own");
    assert_eq!(name(&s, second.node), "c");
    assert!(s.schedule(&web).is_err(), "b shares h1 with a");

    // a moves away with its replica: h1 is free, so b takes the third one.
    s.move_node("a", "h9", "r9").expect("known");
    let third = s.schedule(&web).expect("h1 is free now");
    assert_eq!(name(&s, third.node), "b");
    assert!(s.move_node("nope", "h1", "r1").is_err());
}
