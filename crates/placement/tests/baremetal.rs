//! Servers onto bare-metal clusters: exclusive whole servers, control plane apart, pools by
//! the node-count formula under the headroom rule, owned first, the rest to buy.

mod common;

use common::gib;
use plinth_model::Resources;
use plinth_placement::HeadroomRule;
use plinth_placement::baremetal::{
    BareMetalProblem, ClusterDemand, NodePoolDemand, Role, Server, ServerClass, SpareScope,
    allocate_servers,
};
use plinth_placement::nodes::{Kubelet, NodeTerm, PodShape};

fn kubelet() -> Kubelet {
    Kubelet {
        reserved: Resources::new(1000, gib(4), 0),
        ..Kubelet::default()
    }
}

fn problem() -> BareMetalProblem {
    BareMetalProblem {
        classes: vec![
            ServerClass {
                name: "std".into(),
                capacity: Resources::new(32_000, gib(256), 0),
                cores: 16,
                price: 9_000,
            },
            ServerClass {
                name: "big".into(),
                capacity: Resources::new(64_000, gib(512), 0),
                cores: 32,
                price: 20_000,
            },
        ],
        servers: (1..=5)
            .map(|i| Server {
                name: format!("s{i:02}"),
                class: 0,
                rack: 0,
            })
            .collect(),
        clusters: vec![ClusterDemand {
            name: "prod".into(),
            control_plane: NodePoolDemand {
                name: "control-plane".into(),
                replicas: 3,
                scheduling: 0,
                declared_size: None,
                pods: vec![PodShape {
                    requests: Resources::new(2000, gib(8), 0),
                    count: 1,
                }],
                kubelet: kubelet(),
            },
            pools: vec![NodePoolDemand {
                name: "workers".into(),
                replicas: 2,
                scheduling: 0,
                declared_size: None,
                pods: vec![PodShape {
                    requests: Resources::new(2000, gib(16), 0),
                    count: 40,
                }],
                kubelet: kubelet(),
            }],
            stacked: false,
        }],
        rule: HeadroomRule {
            host_failures: 1,
            maintenance: 1,
            surge: 1,
        },
        spares: SpareScope::Cluster,
    }
}

#[test]
fn control_plane_apart_pools_on_the_cheapest_class_owned_first_rest_to_buy() {
    let plan = allocate_servers(&problem()).expect("every pod fits some class");
    let roles: Vec<_> = plan
        .allocations
        .iter()
        .map(|a| (a.role.clone(), a.class.as_str(), a.nodes, a.term))
        .collect();
    assert_eq!(
        roles,
        vec![
            (Role::ControlPlane, "std", 3, NodeTerm::Declared),
            // std holds 15 pods a node → 3 + 2 = 5 servers, 2 of them owned: 3 × 9,000 to
            // buy; big holds 31 → 2 + 2 = 4, all bought: 4 × 20,000. The cheaper wins.
            (Role::Pool("workers".into()), "std", 5, NodeTerm::Headroom),
            (Role::Surge, "std", 1, NodeTerm::Headroom),
        ]
    );
    assert_eq!(plan.allocations[0].owned, ["s01", "s02", "s03"]);
    assert_eq!(plan.allocations[1].owned, ["s04", "s05"]);
    assert_eq!(plan.allocations[1].fit_nodes, 3);
    assert_eq!(
        plan.to_buy.get("std"),
        Some(&4),
        "beyond the inventory is bought, not an error"
    );
    assert!(plan.spare.is_empty());
    assert_eq!(
        plan.allocations[1].stranded(),
        Resources::new(5 * 31_000 - 80_000, gib(5 * 252 - 640), 0)
    );
}

#[test]
fn a_role_takes_owned_servers_round_robin_over_racks() {
    let mut p = problem();
    for (i, s) in p.servers.iter_mut().enumerate() {
        s.rack = usize::from(i >= 3);
    }
    let plan = allocate_servers(&p).expect("fits");
    // s01–s03 in rack 0, s04–s05 in rack 1: the control plane gets both racks.
    assert_eq!(plan.allocations[0].owned, ["s01", "s04", "s02"]);
}

#[test]
fn a_stacked_control_plane_takes_no_servers_of_its_own_and_counts_as_pods() {
    let mut p = problem();
    p.clusters[0].stacked = true;
    let plan = allocate_servers(&p).expect("fits");
    assert!(plan.stacked("prod"));
    assert!(
        plan.allocations
            .iter()
            .all(|a| a.role != Role::ControlPlane)
    );
    let workers = &plan.allocations[0];
    assert_eq!(workers.role, Role::Pool("workers".into()));
    // 40 pods and 3 members of 2 CPU and 8 GiB: 3 std nodes still hold them (15 a node
    // by CPU), plus the headroom.
    assert_eq!(
        (workers.class.as_str(), workers.fit_nodes, workers.nodes),
        ("std", 3, 5)
    );
}

#[test]
fn declared_replicas_win_when_larger() {
    let mut p = problem();
    p.clusters[0].pools[0].replicas = 9;
    p.rule = HeadroomRule::default();
    let plan = allocate_servers(&p).expect("fits");
    let workers = &plan.allocations[1];
    assert_eq!(
        (workers.nodes, workers.term, workers.class.as_str()),
        (9, NodeTerm::Declared, "std")
    );
    assert_eq!((workers.owned.len(), workers.to_buy), (2, 7));
}

#[test]
fn a_pod_larger_than_every_server_is_explained() {
    let mut p = problem();
    p.clusters[0].pools[0].pods[0].requests = Resources::new(100_000, gib(1), 0);
    let err = allocate_servers(&p).expect_err("no class holds it");
    assert_eq!(
        err.to_string(),
        "prod/workers cannot be placed: 0/2 server classes are available: 2 a pod's requests exceed a node's allocatable"
    );
}

#[test]
fn a_declared_pool_is_a_capacity_floor_in_whole_servers() {
    let size = Resources::new(16_000, gib(64), 0);
    let pool = NodePoolDemand {
        name: "workers".into(),
        replicas: 12,
        scheduling: 0,
        declared_size: Some(size),
        pods: Vec::new(),
        kubelet: kubelet(),
    };
    // 12 × 16 vCPU = 192 CPU over 64-thread servers: 3; 12 × 64 GiB = 768 GiB over
    // 384 GiB: 2. The larger wins.
    assert_eq!(pool.declared_nodes(&Resources::new(64_000, gib(384), 0)), 3);
    // Without a size, replicas count nodes (a control plane's etcd members).
    let members = NodePoolDemand {
        declared_size: None,
        ..pool
    };
    assert_eq!(
        members.declared_nodes(&Resources::new(64_000, gib(384), 0)),
        12
    );
}

/// `problem()` with a second cluster like the first, spares under `scope`, and the owned
/// servers s01–s05 in rack 0 and s06–s10 in rack 1.
fn two_clusters(scope: SpareScope) -> BareMetalProblem {
    let mut p = problem();
    let mut other = p.clusters[0].clone();
    other.name = "test".into();
    p.clusters.push(other);
    p.servers = (1..=10)
        .map(|i| Server {
            name: format!("s{i:02}"),
            class: 0,
            rack: usize::from(i > 5),
        })
        .collect();
    p.spares = scope;
    p
}

#[test]
fn shared_spares_replace_every_pools_headroom_with_one_set_per_class() {
    let own = allocate_servers(&two_clusters(SpareScope::Cluster)).expect("fits");
    let shared = allocate_servers(&two_clusters(SpareScope::Estate)).expect("fits");
    let nodes = |plan: &plinth_placement::BareMetalPlan, role: &Role| -> u32 {
        plan.allocations
            .iter()
            .filter(|a| &a.role == role)
            .map(|a| a.nodes)
            .sum()
    };
    let workers = Role::Pool("workers".into());
    // Each cluster's own: 3 + 2 per pool, a surge server per cluster.
    assert_eq!((nodes(&own, &workers), nodes(&own, &Role::Surge)), (10, 2));
    assert_eq!(nodes(&own, &Role::Spare), 0);
    // Shared: 3 + 1 in maintenance per pool, and 1 + 1 spares of std for both clusters.
    assert_eq!(
        (nodes(&shared, &workers), nodes(&shared, &Role::Surge)),
        (8, 0)
    );
    let spares: Vec<_> = shared
        .allocations
        .iter()
        .filter(|a| a.role == Role::Spare)
        .collect();
    assert_eq!(spares.len(), 1);
    assert_eq!(
        (
            spares[0].cluster.as_deref(),
            spares[0].class.as_str(),
            spares[0].nodes
        ),
        (None, "std", 2)
    );
    let total = |plan: &plinth_placement::BareMetalPlan| -> u32 {
        plan.allocations.iter().map(|a| a.nodes).sum()
    };
    assert_eq!(total(&own) - total(&shared), 2);
}

#[test]
fn rack_spares_are_kept_in_each_rack_a_pool_uses() {
    let mut p = two_clusters(SpareScope::Rack);
    p.rule.surge = 0;
    // Ten servers per rack: the clusters take 14, and each rack has some left.
    p.servers = (1..=20)
        .map(|i| Server {
            name: format!("s{i:02}"),
            class: 0,
            rack: usize::from(i > 10),
        })
        .collect();
    let plan = allocate_servers(&p).expect("fits");
    let mut spares: Vec<&str> = plan
        .allocations
        .iter()
        .filter(|a| a.role == Role::Spare)
        .flat_map(|a| a.owned.iter().map(String::as_str))
        .collect();
    spares.sort_unstable();
    // The pools' owned servers are in both racks: one spare in each.
    assert_eq!(spares.len(), 2, "{spares:?}");
    let rack = |s: &str| s > "s10";
    assert_ne!(rack(spares[0]), rack(spares[1]), "{spares:?}");
}
