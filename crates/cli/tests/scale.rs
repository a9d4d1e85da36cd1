//! Issue 13's generated estates at a small scale, through the binary: the per-cluster
//! what-ifs are bounded and the report says which clusters were left out; `plan` answers
//! the headroom of every placement group. (Times are measured in docs/benchmarks.md, not
//! asserted here.)

mod common;

#[allow(
    dead_code,
    reason = "the example's full-size shapes are for measuring, not for tests"
)]
#[path = "../examples/scale_estate/estate.rs"]
mod estate;

use common::plinth;
use estate::Shape;

/// Ten clusters: two more than the what-ifs move.
const TEN_CLUSTERS: Shape = Shape {
    hosts: 60,
    clusters: 10,
    workloads: 20,
    vms: 10,
    vms_per_set: 5,
};

fn written(shape: &Shape) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    estate::write(dir.path(), shape).expect("estate written");
    dir
}

#[test]
fn what_ifs_move_the_eight_largest_clusters_and_say_which_were_left_out() {
    let dir = written(&TEN_CLUSTERS);
    let path = dir.path().display().to_string();
    let (code, out) = plinth(&[
        "compare",
        &path,
        "--seeds",
        "2",
        "--sweep-runs",
        "2",
        "--duration",
        "1d",
        "-o",
        "json",
    ]);
    assert_eq!(code, 0, "{out}");
    let report: serde_json::Value = serde_json::from_str(&out).expect("JSON report");
    let moved: Vec<&str> = report["whatIf"]
        .as_array()
        .expect("what-ifs")
        .iter()
        .filter_map(|w| w["cluster"].as_str())
        .collect();
    // Declared nodes: 3 control-plane members, 3 + c % 4 workers, 2 memory nodes when
    // c % 3 == 0; c004 and c008 have the fewest (6 each).
    assert_eq!(
        moved,
        [
            "c000", "c001", "c002", "c003", "c005", "c006", "c007", "c009"
        ]
    );
    let warnings = report["warnings"].as_array().expect("warnings");
    assert!(
        warnings
            .iter()
            .filter_map(|w| w.as_str())
            .any(|w| w.contains("8 of 10 clusters moved") && w.ends_with("not moved: c004, c008")),
        "{warnings:?}"
    );
}

#[test]
fn plan_answers_the_headroom_of_every_placement_group() {
    let dir = written(&Shape::SMALL);
    let path = dir.path().display().to_string();
    let (code, out) = plinth(&["plan", &path, "--env", "virtualized", "-o", "json"]);
    assert_eq!(code, 0, "{out}");
    let plan: serde_json::Value = serde_json::from_str(&out).expect("JSON plan");
    let groups: Vec<&str> = plan["virtualized"]["headroom"]
        .as_array()
        .expect("headroom")
        .iter()
        .filter_map(|h| h["group"].as_str())
        .collect();
    // Five clusters' control planes and pools (a memory pool in c000 and c003), two
    // VirtualMachineSets.
    for g in [
        "c000-cp",
        "c000-workers",
        "c000-memory",
        "c004-workers",
        "vms-0001",
    ] {
        assert!(groups.contains(&g), "{g} in {groups:?}");
    }
    assert_eq!(groups.len(), 5 * 2 + 2 + 2, "{groups:?}");
}
