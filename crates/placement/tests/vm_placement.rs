//! VM → host placement: groups, rules, strategy, overcommit, batches, HA restart, DRS moves.

mod common;

use common::*;
use plinth_model::Resources;
use plinth_model::policy::{PlacementStrategy, RuleKind, Scope, SpreadMode};
use plinth_placement::{
    AdmissionPolicy, GroupId, HostId, HostRuleSpec, HostStatus, Migration, Overcommit,
    PlacementError, Pool, PoolConfig, PoolState, RestartPriority, RestartScope, RuleId, VmSpec,
    place_all,
};

fn vm(name: &str, cpu: u64, mem_gib: u64) -> VmSpec {
    VmSpec::new(name, Resources::new(cpu, gib(mem_gib), 0))
}

#[test]
fn strict_anti_affinity_refuses_a_second_member_per_host_and_explains() {
    let pool = pool(
        3,
        3,
        16_000,
        64,
        vec![group("prod-cp", Scope::Host, SpreadMode::Strict, None)],
        PoolConfig::default(),
    );
    let mut s = PoolState::new(pool);
    let mut used = Vec::new();
    for i in 0..3 {
        let (_, h) = s
            .place(vm(&format!("cp-{i}"), 2000, 4).in_group(GroupId(0)))
            .expect("fits");
        used.push(h);
    }
    used.sort();
    used.dedup();
    assert_eq!(used.len(), 3);
    let err = s
        .place(vm("cp-3", 2000, 4).in_group(GroupId(0)))
        .expect_err("no fourth host");
    assert_eq!(
        err.to_string(),
        "cp-3 cannot be placed: 0/3 hosts are available: 3 placement group prod-cp already on host"
    );
}

#[test]
fn rack_scope_at_most_two_per_rack() {
    let pool = pool(
        6,
        3,
        16_000,
        64,
        vec![group("etcd", Scope::Rack, SpreadMode::AtMost, Some(2))],
        PoolConfig::default(),
    );
    let mut s = PoolState::new(pool);
    for i in 0..4 {
        s.place(vm(&format!("e{i}"), 1000, 1).in_group(GroupId(0)))
            .expect("two racks of two");
    }
    let err = s
        .place(vm("e4", 1000, 1).in_group(GroupId(0)))
        .expect_err("both racks full");
    assert!(
        err.to_string()
            .ends_with("6 placement group etcd has 2 on rack"),
        "{err}"
    );
}

#[test]
fn soft_anti_affinity_spreads_then_co_locates() {
    let cfg = strategy(PlacementStrategy::Pack);
    let pool = pool(
        2,
        2,
        16_000,
        64,
        vec![group("w", Scope::Host, SpreadMode::Soft, None)],
        cfg,
    );
    let mut s = PoolState::new(pool);
    let (_, a) = s
        .place(vm("w0", 1000, 1).in_group(GroupId(0)))
        .expect("fits");
    let (_, b) = s
        .place(vm("w1", 1000, 1).in_group(GroupId(0)))
        .expect("fits");
    assert_ne!(a, b, "pack would co-locate, the soft group spreads");
    s.place(vm("w2", 1000, 1).in_group(GroupId(0)))
        .expect("soft never blocks");
}

#[test]
fn spread_takes_the_emptiest_host_pack_the_fullest() {
    for (strategy, expect) in [
        (PlacementStrategy::Spread, "h01"),
        (PlacementStrategy::Pack, "h00"),
    ] {
        let mut s = PoolState::new(pool(2, 2, 16_000, 64, vec![], common::strategy(strategy)));
        let (_, first) = s.place(vm("a", 1000, 1)).expect("fits");
        assert_eq!(name(s.pool(), first), "h00", "equal hosts: name order");
        let (_, second) = s.place(vm("b", 1000, 1)).expect("fits");
        assert_eq!(name(s.pool(), second), expect, "{strategy:?}");
    }
}

#[test]
fn cpu_overcommit_counts_vcpus_against_threads_times_ratio() {
    let cfg = PoolConfig {
        overcommit: Overcommit {
            cpu_permille: 4000,
            memory_permille: 1000,
        },
        vm_overhead: Resources::new(0, gib(1), 0),
        ..PoolConfig::default()
    };
    // 2 threads × 4 = 8 vCPUs; memory 16 GiB = 4 VMs of 3 GiB + 1 GiB overhead.
    let mut s = PoolState::new(pool(1, 1, 2000, 16, vec![], cfg));
    for i in 0..4 {
        s.place(vm(&format!("v{i}"), 2000, 3))
            .expect("8 vCPU and 16 GiB hold four");
    }
    let err = s.place(vm("v4", 1000, 0)).expect_err("vCPUs exhausted");
    assert!(err.to_string().contains("insufficient cpu"), "{err}");
}

#[test]
fn must_and_should_rules() {
    let (hosts, racks) = hosts(4, 4, 8000, 32);
    let rules = vec![
        HostRuleSpec {
            name: "licensed".into(),
            kind: RuleKind::Must,
            hosts: vec![HostId(2)],
        },
        HostRuleSpec {
            name: "near-storage".into(),
            kind: RuleKind::Should,
            hosts: vec![HostId(3)],
        },
    ];
    let pool = Pool::new(hosts, racks, vec![], rules, PoolConfig::default()).expect("valid");
    let mut s = PoolState::new(pool);
    let (_, h) = s
        .place(vm("db", 8000, 1).with_rule(RuleId(0)))
        .expect("host 2");
    assert_eq!(h, HostId(2));
    let err = s
        .place(vm("db2", 1000, 1).with_rule(RuleId(0)))
        .expect_err("host 2 full");
    assert_eq!(
        err.to_string(),
        "db2 cannot be placed: 0/4 hosts are available: 3 not in must rule licensed, 1 insufficient cpu"
    );
    assert_eq!(
        s.place(vm("app", 8000, 1).with_rule(RuleId(1)))
            .expect("preferred")
            .1,
        HostId(3)
    );
    let (_, h) = s
        .place(vm("app2", 1000, 1).with_rule(RuleId(1)))
        .expect("falls back");
    assert!(h == HostId(0) || h == HostId(1));
}

#[test]
fn slot_admission_refuses_what_would_break_the_reserve() {
    // The vSphere worked example as a pool: 5 VMs leave failover capacity 1.
    let hosts = vec![
        plinth_placement::HostSpec::new("a", Default::default(), Resources::new(9000, gib(9), 0)),
        plinth_placement::HostSpec::new("b", Default::default(), Resources::new(9000, gib(6), 0)),
        plinth_placement::HostSpec::new("c", Default::default(), Resources::new(6000, gib(6), 0)),
    ];
    let cfg = PoolConfig {
        admission: AdmissionPolicy::Slots { host_failures: 1 },
        ..PoolConfig::default()
    };
    let pool = Pool::new(hosts, vec!["r".into()], vec![], vec![], cfg).expect("valid");
    let mut s = PoolState::new(pool);
    for (i, (cpu, mem)) in [(2000, 1), (2000, 1), (1000, 2), (1000, 1), (1000, 1)]
        .into_iter()
        .enumerate()
    {
        s.place(vm(&format!("vm{i}"), cpu, mem)).expect("admitted");
    }
    let report = s.slot_report();
    assert_eq!(
        (report.slots_per_host.clone(), report.failover_capacity),
        (vec![4, 3, 3], 1)
    );
    s.place(vm("vm5", 1000, 1))
        .expect("6 VMs still fit in 6 surviving slots");
    let err = s.place(vm("vm6", 1000, 1)).expect_err("7 VMs do not");
    assert!(matches!(err, PlacementError::Admission { .. }));
    assert!(
        err.to_string()
            .contains("HA admission control (slots): 7 VMs would need more than the 6 slots"),
        "{err}"
    );
    assert_eq!(
        s.slot_report().failover_capacity,
        1,
        "the refused VM changed nothing"
    );
}

#[test]
fn percentage_admission_reserves_one_host_of_three() {
    let cfg = PoolConfig {
        admission: AdmissionPolicy::Percentage { host_failures: 1 },
        ..PoolConfig::default()
    };
    let mut s = PoolState::new(pool(3, 3, 10_000, 10, vec![], cfg));
    for i in 0..4 {
        s.place(vm(&format!("v{i}"), 5000, 1))
            .expect("20 of 30 cores");
    }
    let err = s
        .place(vm("v4", 1000, 1))
        .expect_err("would use the reserved third");
    assert!(
        err.to_string()
            .contains("CPU would cut into the 34% reserved for 1 of 3 hosts failing"),
        "{err}"
    );
}

#[test]
fn failover_hosts_stand_by_until_a_failure() {
    let cfg = PoolConfig {
        admission: AdmissionPolicy::FailoverHosts {
            hosts: vec![HostId(2)],
        },
        ..PoolConfig::default()
    };
    let mut s = PoolState::new(pool(3, 3, 8000, 8, vec![], cfg));
    let a = s.place(vm("a", 8000, 1)).expect("h0 or h1").0;
    s.place(vm("b", 8000, 1)).expect("the other");
    let err = s
        .place(vm("c", 1000, 1))
        .expect_err("the failover host takes nothing");
    assert!(
        err.to_string().contains("1 dedicated failover host"),
        "{err}"
    );
    let host_a = s.host_of(a).expect("placed");
    let ev = s.fail_host(host_a).expect("known host");
    assert_eq!(ev.restarted, vec![(a, HostId(2))]);
    assert_eq!(s.status(HostId(2)), HostStatus::Up);
}

/// Zone a = h0, h1; zone b = h2, h3. h0 runs a 6 GiB and a 4 GiB VM; h1 has room for one
/// of them only.
fn zoned_failure(
    outside: bool,
) -> (
    PoolState,
    [plinth_placement::VmId; 2],
    Vec<(plinth_placement::VmId, String)>,
    plinth_placement::Evacuation,
) {
    let mut s = PoolState::new(pool(
        4,
        2,
        8000,
        8,
        vec![],
        strategy(PlacementStrategy::Pack),
    ));
    let big = s.place(vm("big", 1000, 6)).expect("fits").0;
    let small = s.place(vm("small", 1000, 2)).expect("fits").0;
    assert_eq!(s.host_of(big), Some(HostId(0)));
    assert_eq!(s.host_of(small), Some(HostId(0)));
    let (_, h) = s.place(vm("fill", 1000, 2)).expect("fits");
    assert_eq!(h, HostId(1));
    let zone = [HostId(0), HostId(1)];
    let ev = s
        .fail_host_in(
            HostId(0),
            RestartScope {
                zone: &zone,
                homes: &[],
                outside,
                beside_group: false,
            },
        )
        .expect("known host");
    let stranded = ev
        .stranded
        .iter()
        .map(|(v, _, e)| (*v, e.to_string()))
        .collect();
    (s, [big, small], stranded, ev)
}

#[test]
fn ha_restarts_inside_the_failed_host_s_zone_and_outside_only_as_a_recorded_exception() {
    // Allowed: big fits h1 (of its zone); small does not any more, so it restarts in zone b
    // and is listed as a zone exception.
    let (s, [big, small], stranded, ev) = zoned_failure(true);
    assert!(stranded.is_empty(), "{stranded:?}");
    assert_eq!(s.host_of(big), Some(HostId(1)));
    let outside = s.host_of(small).expect("restarted");
    assert!(outside == HostId(2) || outside == HostId(3), "{outside:?}");
    assert_eq!(ev.outside_zone, vec![small]);

    // Refused: small stays down, and the reason names its zone.
    let (s, [big, small], stranded, ev) = zoned_failure(false);
    assert_eq!(s.host_of(big), Some(HostId(1)));
    assert!(ev.outside_zone.is_empty());
    assert_eq!(
        stranded,
        vec![(
            small,
            "small cannot be placed: 0/2 hosts of its zone are available: 1 host failed, 1 insufficient memory"
                .to_string()
        )]
    );
}

#[test]
fn failed_host_restarts_by_priority_within_groups() {
    let groups = vec![group("cp", Scope::Host, SpreadMode::Strict, None)];
    let mut s = PoolState::new(pool(
        3,
        3,
        8000,
        16,
        groups,
        strategy(PlacementStrategy::Pack),
    ));
    let mut put = |spec: VmSpec, expect: u32| {
        let (v, h) = s.place(spec).expect("fits");
        assert_eq!(h, HostId(expect));
        v
    };
    let cp0 = put(vm("cp0", 1000, 1).in_group(GroupId(0)), 0);
    put(vm("cp1", 1000, 1).in_group(GroupId(0)), 1);
    let high = put(vm("high", 1000, 4).with_priority(RestartPriority::High), 0);
    let low = put(vm("low", 1000, 8).with_priority(RestartPriority::Low), 0);
    let off = put(
        vm("off", 1000, 1).with_priority(RestartPriority::Disabled),
        0,
    );
    put(vm("fill", 1000, 12), 1);
    put(vm("fill2", 1000, 6), 2);

    let ev = s.fail_host(HostId(0)).expect("known host");
    // High first; cp0 would fit on h01 by size but its group already has cp1 there.
    assert_eq!(ev.restarted, vec![(high, HostId(2)), (cp0, HostId(2))]);
    let stranded: Vec<_> = ev
        .stranded
        .iter()
        .map(|(v, _, e)| (*v, e.to_string()))
        .collect();
    assert_eq!(
        stranded,
        vec![
            (
                low,
                "low cannot be placed: 0/3 hosts are available: 2 insufficient memory, 1 host failed"
                    .to_string()
            ),
            (off, "off has restart priority disabled".to_string()),
        ]
    );
    assert_eq!(s.host_of(low), None, "stranded VMs are powered off");
}

#[test]
fn failed_batch_changes_nothing() {
    let groups = vec![group("cp", Scope::Host, SpreadMode::Strict, None)];
    let mut s = PoolState::new(pool(2, 2, 8000, 16, groups, PoolConfig::default()));
    s.place(vm("other", 1000, 1)).expect("fits");
    let before = s.clone();
    let batch: Vec<_> = (0..3)
        .map(|i| vm(&format!("cp{i}"), 1000, 1).in_group(GroupId(0)))
        .collect();
    let err = s.place_batch(batch).expect_err("three members, two hosts");
    assert!(matches!(err, PlacementError::Unplaceable { .. }));
    assert_eq!(s, before);
}

#[test]
fn reservations_block_a_concurrent_batch_from_breaking_the_group() {
    let groups = vec![group("cp", Scope::Host, SpreadMode::Strict, None)];
    let mut s = PoolState::new(pool(3, 3, 8000, 16, groups, PoolConfig::default()));
    let first = s
        .reserve(
            (0..2)
                .map(|i| vm(&format!("a{i}"), 1000, 1).in_group(GroupId(0)))
                .collect(),
        )
        .expect("fits");
    assert!(s.is_reserved(first.placements()[0].0));
    let second = s.reserve(
        (0..2)
            .map(|i| vm(&format!("b{i}"), 1000, 1).in_group(GroupId(0)))
            .collect(),
    );
    assert!(second.is_err(), "only one host is left for the group");
    let placed = s.commit(first).expect("open");
    assert_eq!(placed.len(), 2);
    assert!(!s.is_reserved(placed[0].0));
}

#[test]
fn copies_fit_counts_what_the_groups_and_capacity_allow_and_changes_nothing() {
    let groups = vec![group("cp", Scope::Host, SpreadMode::Strict, None)];
    let mut s = PoolState::new(pool(3, 3, 8000, 16, groups, PoolConfig::default()));
    let (gone, _) = s.place(vm("gone", 1000, 1)).expect("fits");
    s.place(vm("cp0", 1000, 1).in_group(GroupId(0)))
        .expect("fits");
    s.remove(gone).expect("placed");
    let before = s.clone();
    let member = vm("cp-new", 1000, 1).in_group(GroupId(0));
    assert_eq!(
        s.copies_fit(&member, 5),
        2,
        "one host per member, one is taken"
    );
    assert_eq!(s.copies_fit(&member, 1), 1, "bounded by max");
    assert_eq!(
        s.copies_fit(&vm("big", 7000, 1), 9),
        3,
        "one per host by CPU"
    );
    assert_eq!(
        s, before,
        "every trial copy is removed, ids to reuse included"
    );
    let (reused, _) = s.place(vm("next", 1000, 1)).expect("fits");
    assert_eq!(reused, gone, "a removed VM's id is still the next one used");
}

#[test]
fn room_stamps_mark_where_room_appeared_rack_wide_for_a_rack_spread_group() {
    // Two racks of two hosts; group 0 spreads over racks, at most one member per rack.
    let groups = vec![group("cp", Scope::Rack, SpreadMode::Strict, None)];
    let mut s = PoolState::new(pool(4, 2, 8000, 16, groups, PoolConfig::default()));
    let (member, at) = s
        .place(vm("cp0", 1000, 1).in_group(GroupId(0)))
        .expect("fits");
    let (plain, _) = s.place(vm("plain", 1000, 1)).expect("fits");
    let stamp = s.room_stamp();
    assert!(
        (0..4).all(|h| !s.room_since(HostId(h), stamp)),
        "placing makes no room"
    );
    let plain_host = s.host_of(plain).expect("placed");
    s.remove(plain).expect("placed");
    assert!(s.room_since(plain_host, stamp));
    let rack_mate = HostId(at.0 ^ 1);
    assert!(!s.room_since(rack_mate, stamp) || rack_mate == plain_host);
    let stamp = s.room_stamp();
    s.remove(member).expect("placed");
    assert!(
        s.room_since(at, stamp) && s.room_since(rack_mate, stamp),
        "the rack's count of the group went down: room on both of its hosts"
    );
    let other_rack = HostId((at.0 + 2) % 4);
    assert!(!s.room_since(other_rack, stamp));
}

#[test]
fn migrations_are_checked_against_the_plan_not_the_stale_state() {
    let mut s = PoolState::new(pool(
        3,
        3,
        8000,
        16,
        vec![],
        strategy(PlacementStrategy::Pack),
    ));
    let a = s.place(vm("a", 4000, 1)).expect("fits").0;
    let b = s.place(vm("b", 4000, 1)).expect("fits").0;
    assert_eq!(
        (s.host_of(a), s.host_of(b)),
        (Some(HostId(0)), Some(HostId(0)))
    );
    let c = s.place(vm("c", 6000, 1)).expect("fits").0;
    assert_eq!(s.host_of(c), Some(HostId(1)));
    let first = Migration {
        vm: a,
        from: HostId(0),
        to: HostId(2),
    };
    s.check_migration(&[], first).expect("h02 is empty");
    let second = Migration {
        vm: b,
        from: HostId(0),
        to: HostId(2),
    };
    s.check_migration(&[first], second)
        .expect("4000 + 4000 fit on h02");
    let third = Migration {
        vm: c,
        from: HostId(1),
        to: HostId(2),
    };
    s.check_migration(&[], third)
        .expect("fine against the stale state");
    let err = s
        .check_migration(&[first, second], third)
        .expect_err("plan fills h02");
    assert!(err.to_string().contains("insufficient cpu"), "{err}");
    let stale = s
        .check_migration(&[first], first)
        .expect_err("a already moved");
    assert!(matches!(stale, PlacementError::StalePlan { .. }));
    let proposal = s.propose_migration(&[first], b).expect("somewhere");
    assert_eq!(
        proposal.to,
        HostId(2),
        "once a moved, only h02 has room for b"
    );
    let c_move = s
        .propose_migration(&[first, second], c)
        .expect("the plan empties h00");
    assert_eq!(c_move.to, HostId(0));
}

#[test]
fn migrate_first_takes_the_first_target_that_fits_and_reports_the_last_refusal() {
    let mut s = PoolState::new(pool(
        3,
        3,
        8000,
        16,
        vec![],
        strategy(PlacementStrategy::Pack),
    ));
    let a = s.place(vm("a", 6000, 1)).expect("fits").0;
    let b = s.place(vm("b", 6000, 1)).expect("fits").0;
    let (ha, hb) = (s.host_of(a).expect("a"), s.host_of(b).expect("b"));
    assert_ne!(ha, hb);
    let empty = (0..3)
        .map(HostId)
        .find(|h| *h != ha && *h != hb)
        .expect("third host");
    let before = s.clone();
    // b's host has no room for a: refused, with migrate's own reason, and nothing changes.
    let refused = s.migrate_first(a, ha, [hb]).expect_err("h full");
    let mut alone = before.clone();
    let expected = alone
        .migrate(Migration {
            vm: a,
            from: ha,
            to: hb,
        })
        .expect_err("same refusal");
    assert_eq!(refused.map(|e| e.to_string()), Some(expected.to_string()));
    assert_eq!(s, before);
    // The refused target is skipped and the next one that fits takes the VM.
    let m = s
        .migrate_first(a, ha, [hb, empty])
        .expect("empty host fits");
    assert_eq!(
        m,
        Migration {
            vm: a,
            from: ha,
            to: empty
        }
    );
    assert_eq!(s.host_of(a), Some(empty));
    assert!(matches!(s.migrate_first(a, empty, []), Err(None)));
}

#[test]
fn place_all_reports_what_does_not_fit() {
    let vms = vec![vm("small", 1000, 1), vm("huge", 100_000, 1)];
    let out = place_all(pool(2, 2, 8000, 16, vec![], PoolConfig::default()), vms);
    assert!(out.hosts[0].is_some());
    assert_eq!(out.unplaced.len(), 1);
    assert_eq!(
        out.unplaced[0].1.to_string(),
        "huge cannot be placed: 0/2 hosts are available: 2 insufficient cpu"
    );
}

#[test]
fn a_cordoned_host_keeps_its_vms_takes_no_new_one_and_a_move_back_still_lands() {
    let mut s = PoolState::new(pool(2, 2, 8000, 16, vec![], PoolConfig::default()));
    let (a, on) = s.place(vm("a", 1000, 1)).expect("fits");
    s.cordon(on, true).expect("a host");
    assert!(s.cordoned(on));
    let other = HostId(1 - on.0);
    for name in ["b", "c"] {
        let (_, at) = s.place(vm(name, 1000, 1)).expect("fits");
        assert_eq!(at, other, "{name} goes to the host not cordoned");
    }
    assert_eq!(s.vms_on(on).len(), 1, "what ran there stays");
    s.migrate(Migration {
        vm: a,
        from: on,
        to: other,
    })
    .expect("off the cordoned host");
    // An explicit move back (a migration found on its source) is a fact, not a choice.
    s.migrate(Migration {
        vm: a,
        from: other,
        to: on,
    })
    .expect("back onto the cordoned host");
    let failed = s.fail_host(other).expect("fails");
    assert!(
        failed.restarted.is_empty() && failed.stranded.len() == 2,
        "HA restarts nothing onto a cordoned host"
    );
    let stamp = s.room_stamp();
    s.cordon(on, false).expect("a host");
    assert!(s.room_since(on, stamp), "lifting a cordon makes room");
    assert!(s.place(vm("d", 1000, 1)).is_ok());
}

#[test]
fn ha_restarts_beside_a_full_strict_group_only_when_allowed_and_with_the_fewest_members() {
    // Four hosts, three strict members on h0..h2; h3 has no room. h0 fails.
    let failed = |beside_group: bool| {
        let mut s = PoolState::new(pool(
            4,
            4,
            8000,
            16,
            vec![group("cp", Scope::Host, SpreadMode::Strict, None)],
            strategy(PlacementStrategy::Spread),
        ));
        let members: Vec<_> = (0..3)
            .map(|i| {
                s.place(vm(&format!("cp{i}"), 1000, 4).in_group(GroupId(0)))
                    .expect("fits")
            })
            .collect();
        let (_, filler) = s.place(vm("filler", 8000, 16)).expect("fits");
        let (lost, host) = members[0];
        assert_ne!(host, filler);
        let ev = s
            .fail_host_in(
                host,
                RestartScope {
                    beside_group,
                    ..RestartScope::default()
                },
            )
            .expect("known host");
        (s, lost, ev)
    };
    let (s, lost, ev) = failed(false);
    assert!(ev.beside_group.is_empty());
    assert_eq!(ev.stranded.len(), 1);
    assert!(
        ev.stranded[0]
            .2
            .to_string()
            .contains("placement group cp already on host"),
        "{}",
        ev.stranded[0].2
    );
    assert_eq!(s.host_of(lost), None);

    let (s, lost, ev) = failed(true);
    assert!(ev.stranded.is_empty(), "{:?}", ev.stranded);
    assert_eq!(ev.beside_group, vec![lost]);
    assert!(s.crowded(lost), "it shares a host with a member");
    let at = s.host_of(lost).expect("restarted");
    assert!(
        s.vms_on(at).len() == 2,
        "beside exactly one member, on a host of the fewest"
    );
}
