//! The article's conclusions, from inputs: the reference estates of tests/estates (committed
//! before this code) and the flips when an input flips. Every assertion is a computed
//! relation; none names a verdict by hand.

mod common;

use common::{dimension, estate, options, report};
use plinth_compare::Winner;
use plinth_model::quantity::Money;

#[test]
fn a_one_dedicated_cluster_bare_metal_wins_performance_and_cost() {
    let a = estate(&["tests/estates/a"]);
    let r = report(&a, &options(6, 120));
    assert_eq!(dimension(&r, "performance").winner, Winner::BareMetal);
    assert_eq!(dimension(&r, "cost").winner, Winner::BareMetal);
}

#[test]
fn a_flips_performance_when_the_hypervisor_costs_nothing() {
    let mut a = estate(&["tests/estates/a"]);
    a.virtualized.spec.performance_overhead.cpu = 0.0;
    let r = report(&a, &options(4, 60));
    assert_eq!(dimension(&r, "performance").winner, Winner::Tie);
}

#[test]
fn b_many_clusters_virtualization_wins_utilization_agility_availability_and_is_not_dearer() {
    let b = estate(&["tests/estates/b"]);
    let r = report(&b, &options(16, 365));
    for key in ["utilization", "agility", "availability"] {
        let d = dimension(&r, key);
        assert_eq!(
            d.winner,
            Winner::Virtualized,
            "{key}: virtualized {:?} vs bare metal {:?}",
            d.virtualized,
            d.bare_metal
        );
    }
    let cost = dimension(&r, "cost");
    assert!(
        cost.virtualized.mean <= cost.bare_metal.mean,
        "virtualized {} vs bare metal {}",
        cost.virtualized.mean,
        cost.bare_metal.mean
    );
}

#[test]
fn b_flips_to_cheaper_bare_metal_under_a_much_dearer_virtualization_licence() {
    let mut b = estate(&["tests/estates/b"]);
    let licence = &mut b.price_sheet.spec.virtualization_licence.price_per_year;
    licence.0 *= 10;
    let r = report(&b, &options(4, 120));
    assert_eq!(dimension(&r, "cost").winner, Winner::BareMetal);
}

#[test]
fn c_one_pool_for_nodes_and_vms_costs_less_than_bare_metal_plus_a_vm_pool() {
    let b = report(&estate(&["tests/estates/b"]), &options(4, 120));
    let c = report(
        &estate(&["tests/estates/b", "tests/estates/c"]),
        &options(4, 120),
    );
    let (cb, cc) = (dimension(&b, "cost"), dimension(&c, "cost"));
    assert_eq!(cc.winner, Winner::Virtualized);
    // The VMs add less to the shared pool than the separate pool adds to bare metal.
    assert!(
        cc.virtualized.mean - cb.virtualized.mean < cc.bare_metal.mean - cb.bare_metal.mean,
        "pool adds {} vs separate pool {}",
        cc.virtualized.mean - cb.virtualized.mean,
        cc.bare_metal.mean - cb.bare_metal.mean
    );
}

/// A dearer virtualization licence does not flip C: the bare-metal design's separate VM
/// pool pays it too. What does is a Kubernetes subscription counted the way OpenShift
/// counts it (REFERENCES.md §5): per core pair (4 vCPUs) on VMs, per socket pair on bare
/// metal. With CPU overcommitted, the pool's node VMs hold many more vCPUs than the
/// bare-metal servers have socket pairs.
#[test]
fn c_flips_under_a_subscription_counted_per_vcpu_on_vms() {
    let mut c = estate(&["tests/estates/b", "tests/estates/c"]);
    let sub = &mut c.price_sheet.spec.kubernetes_subscription;
    sub.virtualized.price_per_year = Money::from_units(6_000);
    sub.bare_metal.price_per_year = Money::from_units(6_000);
    let r = report(&c, &options(4, 120));
    assert_eq!(dimension(&r, "cost").winner, Winner::BareMetal);
}
