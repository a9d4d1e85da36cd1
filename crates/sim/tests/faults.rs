//! The control plane's contract under faults: over many seeded years of `examples/small`
//! with host failures, partitions (some healing before the agent's self-fence, some
//! after), lost, delayed and duplicated agent answers, and control-plane crashes (each
//! after a step's records were written and before its commands were sent) with a restore
//! from the store, no VM ever runs on two hosts at once and no acknowledged desired state
//! is lost: every rollout and every host maintenance requested finishes.

use plinth_control::store::MemoryStore;
mod common;

use common::example;
use plinth_events::InputDigest;
use plinth_model::Estate;
use plinth_model::kinds::environment::EnvironmentType;
use plinth_sim::faults::Faults;
use plinth_sim::{Options, Run, World, run_restarting, setup};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

const DAY: u64 = 86_400_000;

fn small() -> Estate {
    example("small", "")
}

/// Partitions every 20 days per host lasting 90 s on average (so about half outlast the
/// 60 s self-fence), 2 % of answers lost, 2 % duplicated, up to 5 s of delay.
const FAULTS: Faults = Faults {
    partition_mtbf: Some(20 * DAY),
    partition_mean: 90_000,
    answer_loss: 0.02,
    duplicate: 0.02,
    max_delay: 5_000,
};

/// Control-plane crashes per simulated year.
const CRASHES: usize = 12;
const YEAR: u64 = 365 * DAY;

fn year(estate: &Estate, seed: u64) -> Run {
    let options = Options {
        env: EnvironmentType::Virtualized,
        seed,
        duration: YEAR,
        input: InputDigest::default(),
    };
    let s = setup(estate, &options).expect("setup");
    let fresh = s.control.clone();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut crashes: Vec<u64> = (0..CRASHES).map(|_| rng.random_range(0..YEAR)).collect();
    crashes.sort_unstable();
    let world = World::new(s, &options, |_| {}).with_faults(FAULTS);
    let mut store = MemoryStore::default();
    run_restarting(|| fresh.clone(), world, &mut store, &crashes)
        .expect("the store takes every write")
}

/// Rollouts requested at least two days before the end that never finished.
fn lost_rollouts(run: &Run) -> usize {
    let mut open = 0usize;
    for line in String::from_utf8_lossy(&run.log).lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("json line");
        let t = v["t"].as_u64().unwrap_or(0);
        match v["event"].as_str() {
            Some("upgradeRequested") if t + 2 * DAY < YEAR => open += 1,
            Some("upgradeFinished") => open = open.saturating_sub(1),
            _ => {}
        }
    }
    open
}

fn lines(run: &Run, event: &str) -> usize {
    let needle = format!("\"event\":\"{event}\"");
    String::from_utf8_lossy(&run.log)
        .lines()
        .filter(|l| l.contains(&needle))
        .count()
}

#[test]
fn no_vm_runs_twice_and_no_rollout_or_maintenance_is_lost_over_500_faulty_years() {
    let estate = small();
    let seeds: Vec<u64> = (1..=500).collect();
    let failed: Vec<(u64, String)> = seeds
        .par_iter()
        .filter_map(|&seed| {
            let run = year(&estate, seed);
            let s = &run.summary;
            if s.second_copies > 0 {
                return Some((seed, format!("{} second copies", s.second_copies)));
            }
            let lost = lost_rollouts(&run);
            if lost > 0 {
                return Some((
                    seed,
                    format!("{lost} rollouts requested and never finished"),
                ));
            }
            let open = s.maintenance_open_longest_ms;
            if open > 2 * DAY {
                return Some((
                    seed,
                    format!(
                        "a host maintenance open for {} h at the end",
                        open / 3_600_000
                    ),
                ));
            }
            None
        })
        .collect();
    assert!(
        failed.is_empty(),
        "failing seeds (pin each as a named test): {failed:?}"
    );
}

#[test]
fn a_faulty_year_exercises_partitions_self_fences_and_lost_answers() {
    let estate = small();
    let run = year(&estate, 7);
    assert_eq!(lines(&run, "controlPlaneRestarted"), CRASHES);
    assert!(lines(&run, "hostPartitioned") > 0);
    assert!(
        lines(&run, "selfFenced") > 0,
        "some partitions outlast the self-fence"
    );
    assert!(
        lines(&run, "partitionHealed") > lines(&run, "selfFenced"),
        "some heal before"
    );
    let log = String::from_utf8_lossy(&run.log);
    assert!(
        log.contains("\"kind\":\"reportInventory\""),
        "lost answers are resolved by asking"
    );
    assert_eq!(run.summary.second_copies, 0);
    // The same seed gives the same log.
    assert_eq!(year(&estate, 7).log, run.log);
}

/// Seed 12 once started a VM elsewhere though its host had healed and answered while its
/// fence was in flight (the heartbeat was dropped, the fence then failed, and the
/// self-fence deadline restarted the VM): a host heard after its failure is alive.
#[test]
fn a_host_heard_while_its_fence_is_in_flight_keeps_its_vms() {
    let run = year(&small(), 12);
    assert!(String::from_utf8_lossy(&run.log).contains("\"event\":\"partitionHealed\""));
    assert_eq!(run.summary.second_copies, 0);
}

/// Seed 149 has a partition of 118 ms: the heal's heartbeat arrives before the missed
/// heartbeat the cut produced, the host is declared failed though heard since, and its
/// unconfirmed fence once let the known-dead rule restart its VMs elsewhere while they
/// ran. A host heard after the last heartbeat of its failure is alive.
#[test]
fn a_host_heard_before_its_stale_missed_heartbeat_keeps_its_vms() {
    let run = year(&small(), 149);
    assert_eq!(run.summary.second_copies, 0);
}
