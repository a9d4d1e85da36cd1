//! Property: however lopsided the pool, DRS plans never break a strict placement group or a
//! host's capacity — checked with the plan in progress, after every pass, before any of
//! its migrations completes — and every VM stays on exactly one host.

use std::collections::BTreeMap;

use plinth_control::{
    CommandKind, Control, ControlConfig, Deadlines, DrsConfig, HaConfig, Observation,
};
use plinth_model::Resources;
use plinth_model::policy::{PlacementPolicy, PlacementStrategy, Scope, SpreadMode};
use plinth_placement::{
    AdmissionPolicy, Group, GroupId, HostId, HostSpec, HostStatus, Overcommit, Pool, PoolConfig,
    PoolState, RackId, VmSpec,
};
use proptest::prelude::*;

const GIB: u64 = 1 << 30;

fn state(hosts: usize, vms: &[(u64, u64, Option<u32>)], groups: u32) -> PoolState {
    let specs = (0..hosts)
        .map(|i| {
            HostSpec::new(
                format!("h{i}"),
                RackId(0),
                Resources::new(32_000, 128 * GIB, 0),
            )
        })
        .collect();
    let groups = (0..groups)
        .map(|g| Group {
            name: format!("g{g}"),
            policy: PlacementPolicy {
                spread_over: Scope::Host,
                mode: SpreadMode::Strict,
                max_per_domain: None,
            },
        })
        .collect();
    let config = PoolConfig {
        overcommit: Overcommit::NONE,
        vm_overhead: Resources::ZERO,
        strategy: PlacementStrategy::Spread,
        admission: AdmissionPolicy::Disabled,
    };
    let pool = Pool::new(specs, vec!["r".into()], groups, Vec::new(), config).expect("pool");
    let mut s = PoolState::new(pool);
    // Only the first half of the hosts is up while placing: a lopsided start.
    let up = hosts.div_ceil(2);
    for h in up..hosts {
        s.set_status(HostId(h as u32), HostStatus::Maintenance)
            .expect("empty");
    }
    for (i, (cpu, mem, g)) in vms.iter().enumerate() {
        let mut spec = VmSpec::new(
            format!("vm-{i:03}"),
            Resources::new(cpu * 1000, mem * GIB, 0),
        );
        if let Some(g) = g {
            spec = spec.in_group(GroupId(*g));
        }
        let _ = s.place(spec);
    }
    for h in up..hosts {
        s.set_status(HostId(h as u32), HostStatus::Up).expect("up");
    }
    s
}

fn check(c: &Control) -> Result<(), TestCaseError> {
    let s = c.pool().expect("virtualized");
    let mut per_group: BTreeMap<(u32, HostId), u32> = BTreeMap::new();
    let mut used: BTreeMap<HostId, u64> = BTreeMap::new();
    let mut seen = BTreeMap::new();
    for (vm, host) in s.placements() {
        let spec = s.vm(vm).expect("spec");
        prop_assert!(
            seen.insert(spec.name.clone(), host).is_none(),
            "{} twice",
            spec.name
        );
        if let Some(g) = spec.group {
            let n = per_group.entry((g.0, host)).or_insert(0);
            *n += 1;
            prop_assert!(*n <= 1, "strict group g{} twice on host {}", g.0, host.0);
        }
        *used.entry(host).or_insert(0) += spec.demand.cpu_millis;
    }
    for (h, cpu) in used {
        prop_assert!(
            cpu <= s.pool().host(h).capacity.cpu_millis,
            "host {} over capacity",
            h.0
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn drs_never_breaks_anti_affinity_or_capacity(
        hosts in 3usize..8,
        groups in 1u32..4,
        vms in prop::collection::vec((1u64..8, 1u64..16, prop::option::of(0u32..3)), 4..40),
        max_moves in 1u32..6,
    ) {
        let vms: Vec<_> = vms.into_iter().map(|(c, m, g)| (c, m, g.filter(|g| *g < groups))).collect();
        let cfg = ControlConfig {
            ha: HaConfig {
                enabled: true,
                detection_timeout: 15_000,
                fence_retry: 60_000,
                heartbeat_interval: 1_000,
            self_fence_timeout: 60_000,
                self_fence_margin: 10_000,
                restart_outside_zone: true,
                restart_beside_group: false,
            },
            drs: DrsConfig { enabled: true, threshold: 0.05, interval: 300_000, max_moves },
            deadlines: Deadlines {
                vm_boot: 60_000,
                vm_clone: 30_000,
                fence: 10_000,
                reboot: 300_000,
                install: 2_700_000,
                reimage: 1_800_000,
                migration_gbps: 10.0,
                dirty_rate: 0.1,
                switchover: 1_000,
            },
        };
        let mut c = Control::virtualized(cfg, state(hosts, &vms, groups));
        check(&c)?;
        for _ in 0..10 {
            let now = c.next_wakeup().expect("DRS timer");
            let cmds = c.handle(now, Observation::Timer).commands;
            prop_assert!(cmds.len() <= max_moves as usize);
            check(&c)?;
            for cmd in cmds {
                prop_assert!(
                    matches!(cmd.kind, CommandKind::MigrateVm { .. }),
                    "only migrations"
                );
                let _ = c.handle(now + 1_000, Observation::CommandCompleted { id: cmd.id });
            }
            check(&c)?;
        }
    }
}
