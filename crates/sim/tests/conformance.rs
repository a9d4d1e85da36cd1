//! The conformance suite (`plinth-conformance`) on the simulator: each body runs on a
//! fresh lab of `examples/small` with no random failures or patching, so only what the
//! body does happens, and with BMCs that never confirm a fence, so a lost host's VMs
//! restart only by the known-dead rule (the hardest case).

mod common;

use common::small;
use plinth_conformance as suite;
use plinth_sim::SimLab;

fn lab() -> SimLab {
    SimLab::new(&small(1.0, "[]"), 1).expect("the lab builds")
}

#[test]
fn control_plane_spread_by_a_strict_group() {
    suite::control_plane_spread_by_a_strict_group(&mut lab());
}

#[test]
fn pool_scaled() {
    suite::pool_scaled(&mut lab());
}

#[test]
fn rolling_upgrade_to_another_image() {
    suite::rolling_upgrade_to_another_image(&mut lab(), "ubuntu-24.04");
}

#[test]
fn host_maintenance_by_live_migration() {
    suite::host_maintenance_by_live_migration(&mut lab());
}

#[test]
fn host_failure_with_ha_restart() {
    suite::host_failure_with_ha_restart(&mut lab());
}

#[test]
fn host_partition_with_self_fence_and_restart_elsewhere() {
    suite::host_partition_with_self_fence_and_restart_elsewhere(&mut lab());
}

#[test]
fn control_plane_restart_mid_rollout() {
    suite::control_plane_restart_mid_rollout(&mut lab());
}
