//! A fair comparison (issue 12), through the CLI: the reference estates get the article's
//! answers without being edited, a declared requirement disqualifies a design, and the
//! break-even search finds the price that flips the answer.

mod common;

use common::plinth;
use serde_json::Value;

/// `plinth compare PATHS... --seeds 3 --duration 90d --no-sweep -o json`, parsed.
fn compare(paths: &[&str], extra: &[&str]) -> Value {
    let mut args = vec!["compare"];
    args.extend(paths);
    args.extend(["--seeds", "3", "--duration", "90d", "-o", "json"]);
    args.extend(extra);
    let (code, out) = plinth(&args);
    assert_eq!(code, 0, "{out}");
    serde_json::from_str(&out).expect("JSON report")
}

fn no_sweep(paths: &[&str]) -> Value {
    compare(paths, &["--no-sweep"])
}

fn dimension<'a>(r: &'a Value, key: &str) -> &'a Value {
    r["dimensions"]
        .as_array()
        .and_then(|d| d.iter().find(|d| d["key"] == key))
        .unwrap_or_else(|| panic!("no dimension {key}"))
}

fn recommended(r: &Value) -> &str {
    r["recommendation"]["environment"]
        .as_str()
        .unwrap_or("none")
}

#[test]
fn a_one_dedicated_steady_cluster_recommends_bare_metal_cheaper_and_faster() {
    let r = no_sweep(&["tests/estates/a"]);
    assert_eq!(recommended(&r), "bare-metal", "{:#}", r["recommendation"]);
    assert_eq!(r["recommendation"]["decidedBy"], "money");
    for key in ["cost", "performance"] {
        assert_eq!(dimension(&r, key)["winner"], "bare-metal", "{key}");
    }
}

#[test]
fn b_and_b_with_c_recommend_virtualization_at_a_cost_not_higher() {
    for paths in [
        &["tests/estates/b"][..],
        &["tests/estates/b", "tests/estates/c"],
    ] {
        let r = no_sweep(paths);
        assert_eq!(recommended(&r), "virtualized", "{paths:?}");
        let cost = dimension(&r, "cost");
        let (v, b) = (
            cost["virtualized"]["mean"].as_f64(),
            cost["bareMetal"]["mean"].as_f64(),
        );
        assert!(v <= b, "{paths:?}: virtualized {v:?} vs bare metal {b:?}");
    }
}

#[test]
fn a_requirement_bare_metal_cannot_meet_disqualifies_it_with_the_reason() {
    let r = no_sweep(&["tests/estates/a", "tests/estates/a-owner"]);
    let rec = &r["recommendation"];
    assert_eq!(recommended(&r), "virtualized", "{rec:#}");
    assert_eq!(rec["decidedBy"], "requirement");
    assert_eq!(rec["violations"][0]["env"], "bare-metal");
    assert_eq!(rec["violations"][0]["requirement"], "maxTimeToAddNode");
    let first = rec["reasons"][0].as_str().unwrap_or_default();
    assert!(first.contains("maxTimeToAddNode"), "{first}");
}

#[test]
fn b_flips_to_bare_metal_at_a_virtualization_licence_price_the_search_finds() {
    let r = compare(&["tests/estates/b"], &["--sweep-runs", "2"]);
    assert_eq!(recommended(&r), "virtualized");
    let licence = r["sensitivity"]
        .as_array()
        .and_then(|s| {
            s.iter()
                .find(|b| b["parameter"] == "virtualization licence price")
        })
        .expect("the licence price is searched");
    assert_eq!(licence["flipsTo"], "bare-metal", "{licence:#}");
    let at = licence["flipsAt"].as_f64().unwrap_or(0.0);
    assert!(
        at > 1.0,
        "a dearer licence flips it, not a cheaper one: ×{at}"
    );
}
