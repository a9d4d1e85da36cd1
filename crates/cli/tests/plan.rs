//! `plinth plan` on the bundled examples: both environments planned, minimality named.

mod common;

fn plan(args: &[&str]) -> (i32, String) {
    common::plinth(&[&["plan"], args].concat())
}

#[test]
fn enterprise_plans_both_environments() {
    let (code, text) = plan(&["examples/enterprise", "-o", "json"]);
    assert_eq!(code, 0, "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    let virt = &v["virtualized"];
    assert!(virt["hosts"].as_u64().is_some_and(|h| h > 0), "{virt}");
    assert!(
        virt["oneFewerFails"]["condition"].is_string(),
        "a plan names what one host fewer breaks: {virt}"
    );
    let bm = &v["bareMetal"];
    let servers = bm["servers"].as_u64().expect("servers");
    let allocations = bm["allocations"].as_array().expect("allocations");
    let control_plane: u64 = allocations
        .iter()
        .filter(|a| a["role"] == "control plane")
        .map(|a| a["nodes"].as_u64().unwrap_or(0))
        .sum();
    // Four clusters with 3 control-plane members and dev with 1: each member is a whole server.
    assert_eq!(control_plane, 13, "{bm}");
    assert!(
        servers > control_plane,
        "workers and surge need servers of their own: {bm}"
    );
    assert!(
        bm["vmPool"]["hosts"].as_u64().is_some_and(|h| h > 0),
        "the legacy VMs need a pool of their own: {bm}"
    );
    assert!(virt["headroom"].as_array().is_some_and(|h| !h.is_empty()));
}

#[test]
fn env_flag_plans_one_environment() {
    let (code, text) = plan(&["examples/small", "--env", "bare-metal", "-o", "json"]);
    assert_eq!(code, 0, "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert!(v.get("virtualized").is_none() && v.get("bareMetal").is_some());
    assert_eq!(
        v["defaults"].as_array().map(Vec::len),
        Some(4),
        "small uses every embedded default: {v}"
    );
}

#[test]
fn invalid_input_exits_1() {
    let (code, _) = plan(&["tests/manifests/broken/unknown-kind.yaml"]);
    assert_eq!(code, 1);
}
