//! Capacity planning: fewest hosts under the headroom rule, owned first, minimal in a
//! checked sense (one host fewer fails a named condition); headroom of a VM shape.

mod common;

use common::*;
use plinth_model::Resources;
use plinth_model::policy::{Scope, SpreadMode};
use plinth_placement::capacity::{ClassUsage, HostClass, OwnedHost, check_hosts};
use plinth_placement::{
    CapacityProblem, Condition, GroupId, HeadroomRule, PoolConfig, PoolState, RackId, VmSpec,
    headroom, plan_capacity,
};

fn classes() -> Vec<HostClass> {
    vec![
        HostClass {
            name: "big".into(),
            capacity: Resources::new(64_000, gib(512), gib(4096)),
            price: 20_000,
        },
        HostClass {
            name: "std".into(),
            capacity: Resources::new(32_000, gib(256), gib(4096)),
            price: 9_000,
        },
    ]
}

fn cp_problem(rule: HeadroomRule) -> CapacityProblem {
    // Five tiny members of a strict group: capacity needs one host, the group five.
    let vms = (0..5)
        .map(|i| {
            VmSpec::new(format!("cp{i}"), Resources::new(1000, gib(4), 0)).in_group(GroupId(0))
        })
        .collect();
    CapacityProblem {
        classes: classes(),
        owned: vec![],
        racks: vec!["r0".into()],
        groups: vec![group("cp", Scope::Host, SpreadMode::Strict, None)],
        vms,
        config: PoolConfig::default(),
        rule,
    }
}

/// Each term of the headroom rule adds one host, and removing that host fails the term
/// by name.
#[test]
fn one_host_fewer_fails_the_named_condition() {
    let table = [
        (
            HeadroomRule {
                host_failures: 0,
                maintenance: 0,
                surge: 0,
            },
            5,
            Condition::PlacementGroup,
        ),
        (
            HeadroomRule {
                host_failures: 0,
                maintenance: 0,
                surge: 1,
            },
            6,
            Condition::Surge,
        ),
        (
            HeadroomRule {
                host_failures: 0,
                maintenance: 1,
                surge: 1,
            },
            7,
            Condition::Maintenance,
        ),
        (
            HeadroomRule {
                host_failures: 1,
                maintenance: 1,
                surge: 1,
            },
            8,
            Condition::HaReserve,
        ),
    ];
    for (rule, hosts, condition) in table {
        let problem = cp_problem(rule);
        let plan = plan_capacity(&problem).expect("a plan");
        assert_eq!(plan.hosts, hosts, "{rule:?}");
        let fewer = plan.one_fewer.clone().expect("minimal");
        assert_eq!(fewer.condition, condition, "{rule:?}: {fewer}");
        assert!(
            fewer.detail.contains("placement group cp already on host"),
            "{fewer}"
        );
        // The plan's own hosts pass every condition.
        let hosts: Vec<_> = plan
            .host_names
            .iter()
            .map(|n| plinth_placement::HostSpec::new(n.clone(), RackId(0), classes()[1].capacity))
            .collect();
        assert_eq!(check_hosts(&problem, &hosts), Ok(()));
    }
}

#[test]
fn capacity_is_the_condition_when_volume_binds() {
    let vms = (0..7)
        .map(|i| VmSpec::new(format!("db{i}"), Resources::new(30_000, gib(200), 0)))
        .collect();
    let problem = CapacityProblem {
        vms,
        groups: vec![],
        ..cp_problem(HeadroomRule::default())
    };
    let plan = plan_capacity(&problem).expect("a plan");
    assert_eq!(
        plan.hosts, 7,
        "one per std host; big would need 4 at 80,000 > 7 × 9,000"
    );
    assert_eq!(plan.cost_to_buy, 63_000);
    let fewer = plan.one_fewer.expect("minimal");
    assert_eq!(fewer.condition, Condition::Capacity);
    assert!(fewer.detail.contains("insufficient"), "{fewer}");
}

#[test]
fn owned_hosts_are_used_first_then_the_cheapest_purchase() {
    let mut problem = cp_problem(HeadroomRule {
        host_failures: 1,
        maintenance: 1,
        surge: 1,
    });
    problem.owned = (0..3)
        .map(|i| OwnedHost {
            name: format!("own{i}"),
            class: 0,
            rack: RackId(0),
        })
        .collect();
    let plan = plan_capacity(&problem).expect("a plan");
    assert_eq!(plan.hosts, 8);
    assert_eq!(
        plan.per_class,
        vec![
            ClassUsage {
                class: "big".into(),
                owned_used: 3,
                owned_spare: 0,
                to_buy: 0
            },
            ClassUsage {
                class: "std".into(),
                owned_used: 0,
                owned_spare: 0,
                to_buy: 5
            },
        ]
    );
    assert_eq!(plan.host_names[..3], ["own0", "own1", "own2"]);
}

#[test]
fn spare_owned_hosts_are_reported() {
    let mut problem = cp_problem(HeadroomRule::default());
    problem.owned = (0..7)
        .map(|i| OwnedHost {
            name: format!("own{i}"),
            class: 1,
            rack: RackId(0),
        })
        .collect();
    let plan = plan_capacity(&problem).expect("a plan");
    assert_eq!(
        plan.per_class[1],
        ClassUsage {
            class: "std".into(),
            owned_used: 5,
            owned_spare: 2,
            to_buy: 0
        }
    );
    assert_eq!(plan.cost_to_buy, 0);
}

/// A plan that needs only some of the owned hosts takes them round-robin over the racks
/// (own0–own3 in r0, own4–own6 in r1): five hosts are three of r0 and two of r1, not the
/// first five by name, and listed by name.
#[test]
fn owned_hosts_a_plan_takes_spread_over_the_racks() {
    let mut problem = cp_problem(HeadroomRule::default());
    problem.racks = vec!["r0".into(), "r1".into()];
    problem.owned = (0..7)
        .map(|i| OwnedHost {
            name: format!("own{i}"),
            class: 1,
            rack: RackId(u32::from(i >= 4)),
        })
        .collect();
    let plan = plan_capacity(&problem).expect("a plan");
    assert_eq!(plan.host_names, ["own0", "own1", "own2", "own4", "own5"]);
}

#[test]
fn headroom_counts_copies_and_names_what_stops_them() {
    let mut s = PoolState::new(pool(2, 2, 8000, 64, vec![], PoolConfig::default()));
    s.place(VmSpec::new("existing", Resources::new(4000, gib(1), 0)))
        .expect("fits");
    let h = headroom(
        &s,
        &VmSpec::new("web", Resources::new(2000, gib(1), 0)),
        100,
    );
    assert_eq!(h.more, 6);
    let stop = h.stopped_by.expect("stopped").to_string();
    assert_eq!(
        stop,
        "web+7 cannot be placed: 0/2 hosts are available: 2 insufficient cpu"
    );
    assert_eq!(s.placements().count(), 1, "the state is unchanged");
    assert_eq!(
        headroom(&s, &VmSpec::new("web", Resources::new(2000, gib(1), 0)), 3).stopped_by,
        None
    );
}
