//! Invariants over random pools: capacity is never exceeded, hard group limits never
//! broken, the admission reserve holds, the same input gives the same placement — also
//! after host failures and restarts.

use std::collections::BTreeMap;

use plinth_model::Resources;
use plinth_model::policy::{PlacementPolicy, PlacementStrategy, Scope, SpreadMode};
use plinth_placement::admission::percentage_holds;
use plinth_placement::headroom::{Headroom, headroom};
use plinth_placement::{
    AdmissionPolicy, Group, GroupId, HostId, HostSpec, HostStatus, Pool, PoolConfig, PoolState,
    RackId, VmSpec, place_all,
};
use proptest::prelude::*;

#[derive(Clone, Debug)]
struct Case {
    hosts: Vec<(u64, u64, u32)>,
    groups: Vec<(bool, u8, u32)>,
    vms: Vec<(u64, u64, Option<usize>)>,
    pack: bool,
    admission: u8,
    fail: Vec<usize>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec((4u64..32, 8u64..128, 0u32..3), 1..12),
        prop::collection::vec((any::<bool>(), 0u8..3, 1u32..3), 0..4),
        prop::collection::vec((1u64..8, 1u64..32, prop::option::of(0usize..4)), 0..60),
        any::<bool>(),
        0u8..3,
        prop::collection::vec(0usize..12, 0..3),
    )
        .prop_map(|(hosts, groups, vms, pack, admission, fail)| Case {
            hosts,
            groups,
            vms,
            pack,
            admission,
            fail,
        })
}

fn build(c: &Case) -> (Pool, Vec<VmSpec>) {
    let hosts = c
        .hosts
        .iter()
        .enumerate()
        .map(|(i, (cpu, mem, rack))| {
            HostSpec::new(
                format!("h{i:02}"),
                RackId(*rack),
                Resources::new(cpu * 1000, *mem, 0),
            )
        })
        .collect();
    let groups: Vec<Group> = c
        .groups
        .iter()
        .enumerate()
        .map(|(i, (rack, mode, max))| Group {
            name: format!("g{i}"),
            policy: PlacementPolicy {
                spread_over: if *rack { Scope::Rack } else { Scope::Host },
                mode: [SpreadMode::Strict, SpreadMode::Soft, SpreadMode::AtMost][*mode as usize],
                max_per_domain: Some(*max),
            },
        })
        .collect();
    let vms = c
        .vms
        .iter()
        .enumerate()
        .map(|(i, (cpu, mem, g))| {
            let vm = VmSpec::new(format!("v{i:02}"), Resources::new(cpu * 1000, *mem, 0));
            match g {
                Some(g) if *g < groups.len() => vm.in_group(GroupId(*g as u32)),
                _ => vm,
            }
        })
        .collect();
    let admission = match c.admission {
        0 => AdmissionPolicy::Disabled,
        1 => AdmissionPolicy::Percentage { host_failures: 1 },
        _ => AdmissionPolicy::Slots { host_failures: 1 },
    };
    let strategy = if c.pack {
        PlacementStrategy::Pack
    } else {
        PlacementStrategy::Spread
    };
    let config = PoolConfig {
        strategy,
        admission,
        ..PoolConfig::default()
    };
    (
        Pool::new(
            hosts,
            (0..3).map(|r| format!("r{r}")).collect(),
            groups,
            vec![],
            config,
        )
        .expect("valid"),
        vms,
    )
}

/// Recounts the state from its placements alone and checks every hard invariant.
fn check(state: &PoolState) -> Result<(), TestCaseError> {
    let pool = state.pool();
    let mut used = vec![Resources::ZERO; pool.hosts().len()];
    let mut members: BTreeMap<(u32, u32), u32> = BTreeMap::new();
    for (vm, host) in state.placements() {
        prop_assert_eq!(
            state.status(host),
            HostStatus::Up,
            "VM on a host that is not up"
        );
        let spec = state.vm(vm).expect("held");
        used[host.index()] += pool.footprint(spec);
        if let Some(g) = spec.group {
            let domain = match pool.groups()[g.0 as usize].policy.spread_over {
                Scope::Host => host.0,
                Scope::Rack => pool.host(host).rack.0,
            };
            *members.entry((g.0, domain)).or_insert(0) += 1;
        }
    }
    for (h, u) in used.iter().enumerate() {
        prop_assert!(
            u.fits_in(&pool.host(HostId(h as u32)).capacity),
            "host {h} over capacity"
        );
        prop_assert_eq!(*u, state.used(HostId(h as u32)));
    }
    for ((g, _), n) in members {
        if let Some(limit) = pool.groups()[g as usize].policy.hard_limit() {
            prop_assert!(n <= limit, "group {g} has {n} > {limit} in a domain");
        }
    }
    Ok(())
}

fn reserve_holds(state: &PoolState) -> bool {
    let up: Vec<HostId> = (0..state.pool().hosts().len() as u32)
        .map(HostId)
        .filter(|h| state.status(*h) == HostStatus::Up)
        .collect();
    let failures = state.failures_covered();
    match state.pool().config().admission {
        AdmissionPolicy::Percentage { .. } => {
            let cap = up
                .iter()
                .fold(Resources::ZERO, |a, h| a + state.pool().host(*h).capacity);
            let used = up.iter().fold(Resources::ZERO, |a, h| a + state.used(*h));
            percentage_holds(&cap, &used, up.len() as u32, failures)
        }
        AdmissionPolicy::Slots { .. } => {
            let report = state.slot_report();
            report.used_slots == 0 || report.failover_capacity >= failures
        }
        _ => true,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn invariants_hold_through_placement_and_failures(c in case()) {
        let (pool, vms) = build(&c);
        let out = place_all(pool.clone(), vms.clone());
        check(&out.state)?;
        prop_assert!(reserve_holds(&out.state), "admission reserve broken after placement");
        prop_assert_eq!(&out, &place_all(pool, vms), "same input, same placement");
        let mut state = out.state;
        for f in &c.fail {
            if *f < state.pool().hosts().len() {
                state.fail_host(HostId(*f as u32)).expect("known host");
                check(&state)?;
                prop_assert!(reserve_holds(&state), "admission reserve broken after a restart");
            }
        }
    }

    #[test]
    fn a_refused_batch_leaves_the_state_unchanged(c in case()) {
        let (pool, vms) = build(&c);
        let half = vms.len() / 2;
        let mut state = place_all(pool, vms[..half].to_vec()).state;
        let before = state.clone();
        match state.place_batch(vms[half..].to_vec()) {
            Ok(_) => check(&state)?,
            Err(_) => prop_assert_eq!(state, before),
        }
    }
}

/// Headroom as its definition reads: copies placed one by one on a plain copy of the state.
fn headroom_by_definition(state: &PoolState, shape: &VmSpec, limit: u32) -> Headroom {
    let mut trial = state.clone();
    for more in 0..limit {
        let copy = VmSpec {
            name: format!("{}+{}", shape.name, more + 1),
            ..shape.clone()
        };
        if let Err(e) = trial.place(copy) {
            return Headroom {
                more,
                stopped_by: Some(e),
            };
        }
    }
    Headroom {
        more: limit,
        stopped_by: None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The headroom trial skips hosts that can take no more copies: the count and the
    /// reason it stops (with every host's reason) are those of the plain definition.
    #[test]
    fn headroom_answers_as_its_definition(
        c in case(),
        shape in (1u64..8, 1u64..32, prop::option::of(0usize..4)),
        limit in 0u32..80,
    ) {
        let (pool, vms) = build(&c);
        let mut state = place_all(pool, vms).state;
        for f in &c.fail {
            if *f < state.pool().hosts().len() {
                state.fail_host(HostId(*f as u32)).expect("known host");
            }
        }
        let groups = state.pool().groups().len();
        let spec = VmSpec::new("copy", Resources::new(shape.0 * 1000, shape.1, 0));
        let spec = match shape.2 {
            Some(g) if g < groups => spec.in_group(GroupId(g as u32)),
            _ => spec,
        };
        prop_assert_eq!(
            headroom(&state, &spec, limit),
            headroom_by_definition(&state, &spec, limit)
        );
    }
}
