//! The control-plane conformance suite: scenario bodies written once, generic over a
//! [`Lab`] — a driver together with the world behind it — asserting the end states a user
//! relies on. The simulator implements [`Lab`] (`plinth_sim::SimLab`); the QEMU driver will
//! implement it too, and the same bodies then run against real VMs (turmoil's pattern of
//! one test body over simulated and real I/O).
//!
//! This crate owns the *expectations*; it makes no decision and drives no world itself.
//! Its bodies panic on a broken expectation, as test code does.

use plinth_control::{ClusterTopology, Condition, FailureRecord, Observation, UpgradeKind};

/// One minute, ms.
pub const MINUTE: u64 = 60_000;
/// One hour, ms.
pub const HOUR: u64 = 60 * MINUTE;

/// A driver with its world: the control loop runs inside, the suite injects desired-state
/// changes and faults and reads the ground truth.
pub trait Lab {
    /// Runs the control loop until `done` holds or `ms` has passed (virtual time in the
    /// simulator, the wall clock on a real lab, where a lab may cap it); whether `done`
    /// held. Bodies wait for what they expect rather than for a fixed time, so the same
    /// body suits a simulated hour and a real minute.
    fn run_until(&mut self, ms: u64, done: &dyn Fn(&Self) -> bool) -> bool
    where
        Self: Sized;
    /// The lab's clock, ms: virtual time in the simulator, the wall clock on a real lab.
    fn now(&self) -> u64;
    /// Hands the control plane a desired-state change (scale, upgrade, maintenance, …).
    fn request(&mut self, change: Observation);
    /// Changes `cluster`'s node OS image to `image` in the desired state, as applying the
    /// Cluster with another `osImage` does, and asks for the rolling upgrade.
    fn change_image(&mut self, cluster: &str, image: &str);
    /// Powers `host` off as a failure would; it comes back after its repair time.
    fn crash(&mut self, host: &str);
    /// Cuts `host` off from the control plane; it keeps running its VMs until its agent's
    /// self-fence.
    fn partition(&mut self, host: &str);
    /// Ends `host`'s partition.
    fn heal(&mut self, host: &str);
    /// Crashes the control plane and restarts it from its store.
    fn restart_control_plane(&mut self);
    /// The clusters, by name.
    fn clusters(&self) -> Vec<String>;
    /// A cluster as the control plane sees it.
    fn cluster(&self, name: &str) -> Option<ClusterTopology>;
    /// The hosts, by name.
    fn hosts(&self) -> Vec<String>;
    /// Where `vm` really runs (ground truth), if anywhere.
    fn running_on(&self, vm: &str) -> Option<String>;
    /// The VMs really running on `host`.
    fn running(&self, host: &str) -> Vec<String>;
    /// Times a VM was started while another copy of it ran: 0 on a correct control plane.
    fn double_starts(&self) -> u64;
    /// Conditions in force.
    fn conditions(&self) -> Vec<Condition>;
    /// Whether the control plane has nothing under way
    /// ([`plinth_control::Control::settled`]): every cluster built, every node running.
    fn settled(&self) -> bool;
    /// The host failures the control plane handled, with the time of each phase
    /// ([`plinth_control::Control::failures`]), on the lab's clock.
    fn failures(&self) -> Vec<FailureRecord>;
}

/// Every node of `cluster` (control plane first), as the control plane sees it.
fn nodes(lab: &impl Lab, cluster: &str) -> Vec<String> {
    let topo = lab.cluster(cluster).expect("cluster known");
    std::iter::once(&topo.control_plane)
        .chain(&topo.pools)
        .flat_map(|p| p.nodes.clone())
        .collect()
}

/// The first cluster with a worker pool, and that pool's name.
fn cluster_with_pool(lab: &impl Lab) -> (String, String) {
    lab.clusters()
        .into_iter()
        .find_map(|c| {
            let pool = lab.cluster(&c)?.pools.first()?.name.clone();
            Some((c, pool))
        })
        .expect("a cluster with a worker pool")
}

/// Nodes of the first worker pool of `cluster`.
fn lab_pool_size(lab: &impl Lab, cluster: &str) -> u32 {
    lab.cluster(cluster)
        .and_then(|c| c.pools.first().map(|p| p.nodes.len() as u32))
        .unwrap_or(0)
}

/// The host running the most VMs.
fn busiest(lab: &impl Lab) -> String {
    lab.hosts()
        .into_iter()
        .max_by_key(|h| (lab.running(h).len(), std::cmp::Reverse(h.clone())))
        .expect("a host")
}

fn all_running(lab: &impl Lab, cluster: &str) {
    for n in nodes(lab, cluster) {
        assert!(lab.running_on(&n).is_some(), "{n} of {cluster} runs");
    }
}

/// Whether every node of `cluster` runs.
fn runs_all(lab: &impl Lab, cluster: &str) -> bool {
    nodes(lab, cluster)
        .iter()
        .all(|n| lab.running_on(n).is_some())
}

/// Whether every one of `vms` runs on a host other than `host`.
fn moved_off(lab: &impl Lab, vms: &[String], host: &str) -> bool {
    vms.iter()
        .all(|vm| lab.running_on(vm).is_some_and(|on| on != host))
}

/// Asserts that every one of `vms` runs on a host other than `host`.
fn assert_moved_off(lab: &impl Lab, vms: &[String], host: &str) {
    for vm in vms {
        let on = lab.running_on(vm);
        assert!(
            on.is_some() && on.as_deref() != Some(host),
            "{vm} runs elsewhere than {host}: {on:?}"
        );
    }
}

/// Whether every node of `cluster` was replaced (none of `before` is left), every new
/// one runs, and nothing waits.
fn rolled(lab: &impl Lab, cluster: &str, before: &[String]) -> bool {
    let after = nodes(lab, cluster);
    after.len() == before.len()
        && after.iter().all(|n| !before.contains(n))
        && runs_all(lab, cluster)
        && lab.conditions().is_empty()
}

fn no_double_start(lab: &impl Lab) {
    assert_eq!(lab.double_starts(), 0, "a VM was started twice");
}

/// Each cluster's control-plane members run on distinct hosts (a strict placement group).
pub fn control_plane_spread_by_a_strict_group(lab: &mut impl Lab) {
    // Built: every node of every cluster, workers too, runs (a member alone is not enough:
    // a pool still being created would be placed while the bodies inject faults).
    lab.run_until(30 * MINUTE, &|l| {
        l.settled() && l.clusters().iter().all(|c| runs_all(l, c))
    });
    for c in lab.clusters() {
        let topo = lab.cluster(&c).expect("cluster");
        let hosts: Vec<String> = topo
            .control_plane
            .nodes
            .iter()
            .filter_map(|n| lab.running_on(n))
            .collect();
        let mut distinct = hosts.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(
            hosts.len(),
            topo.control_plane.nodes.len(),
            "{c}: every member runs; waiting: {:?}",
            lab.conditions()
        );
        assert_eq!(
            distinct.len(),
            hosts.len(),
            "{c}: one member per host: {hosts:?}"
        );
    }
}

/// A pool scaled up by one gets one more running node.
pub fn pool_scaled(lab: &mut impl Lab) {
    let (cluster, pool) = cluster_with_pool(lab);
    let before = lab.cluster(&cluster).expect("cluster").pools[0].nodes.len() as u32;
    lab.request(Observation::ScaleRequested {
        cluster: cluster.clone(),
        pool,
        replicas: before + 1,
    });
    lab.run_until(HOUR, &|l| {
        runs_all(l, &cluster) && lab_pool_size(l, &cluster) == before + 1
    });
    let after = lab.cluster(&cluster).expect("cluster").pools[0]
        .nodes
        .clone();
    assert_eq!(after.len() as u32, before + 1);
    all_running(lab, &cluster);
    no_double_start(lab);
}

/// A rolling upgrade to image `to` replaces every node of the first cluster with a worker
/// pool, and every new node runs; the cluster's name.
pub fn rolling_upgrade_to_another_image(lab: &mut impl Lab, to: &str) -> String {
    let (cluster, _) = cluster_with_pool(lab);
    let before = nodes(lab, &cluster);
    lab.change_image(&cluster, to);
    lab.run_until(12 * HOUR, &|l| rolled(l, &cluster, &before));
    let after = nodes(lab, &cluster);
    assert_eq!(after.len(), before.len());
    assert!(
        after.iter().all(|n| !before.contains(n)),
        "every node replaced: {before:?} → {after:?}"
    );
    all_running(lab, &cluster);
    assert!(lab.conditions().is_empty(), "{:?}", lab.conditions());
    no_double_start(lab);
    cluster
}

/// Host maintenance empties the host by live migration; its VMs run elsewhere while it is
/// down, and nothing waits afterwards.
pub fn host_maintenance_by_live_migration(lab: &mut impl Lab) {
    let host = busiest(lab);
    let vms = lab.running(&host);
    assert!(!vms.is_empty());
    lab.request(Observation::MaintenanceRequested { host: host.clone() });
    lab.run_until(5 * MINUTE, &|l| {
        l.running(&host).is_empty() && moved_off(l, &vms, &host)
    });
    assert!(lab.running(&host).is_empty(), "{host} emptied");
    assert_moved_off(lab, &vms, &host);
    lab.run_until(2 * HOUR, &|l| l.conditions().is_empty());
    assert!(lab.conditions().is_empty(), "{:?}", lab.conditions());
    for vm in &vms {
        assert!(lab.running_on(vm).is_some(), "{vm} runs");
    }
    no_double_start(lab);
}

/// A host failure: its VMs restart elsewhere within minutes.
pub fn host_failure_with_ha_restart(lab: &mut impl Lab) {
    let host = busiest(lab);
    let vms = lab.running(&host);
    lab.crash(&host);
    lab.run_until(5 * MINUTE, &|l| moved_off(l, &vms, &host));
    assert_moved_off(lab, &vms, &host);
    no_double_start(lab);
}

/// A host cut off from the control plane: its agent kills its VMs after the self-fence
/// timeout (or its BMC powers it off), they restart elsewhere exactly once, and none runs
/// on it when it returns.
pub fn host_partition_with_self_fence_and_restart_elsewhere(lab: &mut impl Lab) {
    let host = busiest(lab);
    let vms = lab.running(&host);
    lab.partition(&host);
    lab.run_until(5 * MINUTE, &|l| moved_off(l, &vms, &host));
    assert_moved_off(lab, &vms, &host);
    lab.heal(&host);
    lab.run_until(HOUR, &|l| {
        l.conditions().is_empty() && vms.iter().all(|vm| l.running_on(vm).is_some())
    });
    for vm in &vms {
        assert!(
            lab.running_on(vm).is_some(),
            "{vm} runs after the partition healed"
        );
    }
    no_double_start(lab);
}

/// A control-plane restart in the middle of a rollout: the rollout finishes, nothing runs
/// twice.
pub fn control_plane_restart_mid_rollout(lab: &mut impl Lab) {
    let (cluster, _) = cluster_with_pool(lab);
    let before = nodes(lab, &cluster);
    lab.request(Observation::UpgradeRequested {
        cluster: cluster.clone(),
        upgrade: UpgradeKind::Kubernetes,
    });
    // Restart once the rollout has replaced a node or two.
    lab.run_until(4 * MINUTE, &|l| {
        nodes(l, &cluster)
            .iter()
            .filter(|n| !before.contains(n))
            .count()
            >= 2
    });
    lab.restart_control_plane();
    lab.run_until(12 * HOUR, &|l| rolled(l, &cluster, &before));
    let after = nodes(lab, &cluster);
    assert!(
        after.iter().all(|n| !before.contains(n)),
        "every node replaced: {before:?} → {after:?}"
    );
    all_running(lab, &cluster);
    assert!(lab.conditions().is_empty(), "{:?}", lab.conditions());
    no_double_start(lab);
}
