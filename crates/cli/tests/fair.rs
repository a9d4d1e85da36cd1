//! A fair comparison (issue 12), through the CLI: the reference estates get the article's
//! answers without being edited, a declared requirement disqualifies a design, and the
//! break-even search finds the price that flips the answer.

mod common;

use common::{plinth, plinth_streams};
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
    // The six clusters of six versions merged into one bare-metal cluster: one control
    // plane instead of six takes fewer servers.
    let merge = &r["mergeWhatIf"];
    assert_eq!(
        merge["clusters"].as_array().map(Vec::len),
        Some(6),
        "{merge:#}"
    );
    assert_eq!(merge["stacks"], 6);
    let servers = |k: &str| merge[k]["servers"].as_f64().expect("servers");
    assert!(servers("merged") < servers("design"), "{merge:#}");
}

/// Estate B's clusters and workloads on its sixteen servers, in the racks `racks` names
/// (`r1 r2`: as declared; `r1`: all in one), with racks that lose power every 60 days for
/// 3 hours and hosts that never fail; written to a directory of its own.
fn b_with_racks(racks: &[&str]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "plinth-fair-{}-{}",
        std::process::id(),
        racks.join("-")
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let b = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/estates/b");
    for f in ["clusters.yaml", "workloads.yaml"] {
        std::fs::copy(b.join(f), dir.join(f)).expect("copy");
    }
    let declared: String = racks.iter().map(|r| format!("    - name: {r}\n")).collect();
    let hosts: String = ["r1", "r2"]
        .iter()
        .map(|r| {
            let rack = if racks.contains(r) { r } else { &racks[0] };
            format!("    - class: general\n      rack: {rack}\n      count: 8\n")
        })
        .collect();
    let inventory = std::fs::read_to_string(b.join("inventory.yaml")).expect("read");
    let (head, _) = inventory.split_once("  racks:\n").expect("racks");
    std::fs::write(
        dir.join("inventory.yaml"),
        format!("{head}  racks:\n{declared}  hosts:\n{hosts}"),
    )
    .expect("write inventory");
    std::fs::write(
        dir.join("scenario.yaml"),
        "apiVersion: plinth.dev/v1alpha1\nkind: Scenario\nmetadata:\n  name: rack-power\n\
         spec:\n  failures:\n    hosts:\n      mtbf: 100000d\n    racks:\n      mtbf: 60d\n      \
         repairTime: 3h\n",
    )
    .expect("write scenario");
    dir
}

/// HA restarts a rack's control-plane VMs elsewhere only when there is an elsewhere: with
/// every host in one rack, a rack's power loss keeps the virtualized control planes down
/// for the rack's repair, as on bare metal (before, the restart time was credited anyway).
#[test]
fn a_rack_holding_every_host_gets_no_ha_restart_credit() {
    let hours = |racks: &[&str]| {
        let dir = b_with_racks(racks);
        let r = no_sweep(&[dir.to_str().expect("utf-8")]);
        std::fs::remove_dir_all(&dir).ok();
        let d = dimension(&r, "reliability");
        (
            d["virtualized"]["mean"].as_f64().unwrap_or(f64::NAN),
            d["bareMetal"]["mean"].as_f64().unwrap_or(f64::NAN),
        )
    };
    let (two_racks, _) = hours(&["r1", "r2"]);
    let (one_rack, bare_metal) = hours(&["r1"]);
    assert!(
        one_rack > 10.0 * two_racks,
        "one rack {one_rack} h/year against two racks {two_racks}"
    );
    // Six clusters down 3 h every 60 days each: ≈ 6 × 8,760 × 3 / 1,443 ≈ 109 h/year.
    assert!(
        (80.0..140.0).contains(&one_rack),
        "one rack: {one_rack} h/year (bare metal {bare_metal})"
    );
}

/// Estate A in a directory of its own (`name`), with `inserted` added after the line
/// `after` of its file `file`; the other files copied as they are.
fn a_with(name: &str, file: &str, after: &str, inserted: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("plinth-fair-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let a = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/estates/a");
    for f in ["inventory.yaml", "cluster.yaml", "workloads.yaml"] {
        let text = std::fs::read_to_string(a.join(f)).expect("read");
        let text = if f == file {
            assert!(text.contains(after), "{f} has the line {after:?}");
            text.replacen(after, &format!("{after}{inserted}"), 1)
        } else {
            text
        };
        std::fs::write(dir.join(f), text).expect("write");
    }
    dir
}

/// Rack space is priced per rack unit of every server a design uses, in both designs, from
/// the host class's `rackUnits` and the PriceSheet's `rackSpace`: 4U servers at 1,000 a
/// unit a year cost 20,000 each over the 5-year horizon, and the report's "rack space"
/// line says so for each design's server count.
#[test]
fn rack_space_is_priced_per_unit_of_every_server_used() {
    let dir = a_with(
        "rack-space",
        "inventory.yaml",
        "      nicGbps: 25\n",
        "      rackUnits: 4\n",
    );
    let prices = "apiVersion: plinth.dev/v1alpha1\nkind: PriceSheet\nmetadata:\n  name: p\n\
                  spec:\n  horizonYears: 5\n  rackSpace:\n    pricePerUnitPerYear: 1000\n";
    std::fs::write(dir.join("prices.yaml"), prices).expect("write prices");
    let r = no_sweep(&[dir.to_str().expect("utf-8 path")]);
    let detail = |key: &str, name: &str| {
        dimension(&r, key)["details"]
            .as_array()
            .and_then(|d| d.iter().find(|d| d["name"] == name))
            .unwrap_or_else(|| panic!("no detail {name}"))
            .clone()
    };
    let (servers, space) = (
        detail("utilization", "servers required"),
        detail("cost", "rack space"),
    );
    for env in ["virtualized", "bareMetal"] {
        let n = servers[env].as_f64().expect("servers");
        let want = n * 4.0 * 1000.0 * 5.0;
        let got = space[env].as_f64().expect("rack space");
        assert!(
            n > 0.0 && (got - want).abs() < want * 1e-3,
            "{env}: {got} for {n} servers"
        );
    }
    // Declared, so neither is listed among the defaults the report used.
    let defaults = r["provenance"].to_string();
    assert!(
        !defaults.contains("rackUnits") && !defaults.contains("rackSpace"),
        "{defaults}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// Scalability counts in one unit on both designs, allocatable CPU: an owned server left
/// unused adds a node of the cluster's pool, its CPU less what the pool's kubelet reserves,
/// just as a node VM adds its allocatable. With every server of one class, the bare-metal
/// growth is the unused servers over the worker nodes, however much the kubelet reserves
/// (before, a server counted its whole CPU against the workers' allocatable: 16 reserved
/// CPUs of 64 read as a third more growth than there is).
#[test]
fn scalability_counts_an_unused_server_as_the_node_it_would_be() {
    let dir = a_with(
        "scalability",
        "cluster.yaml",
        "      replicas: 12\n",
        "      reserved:\n        systemCpu: 16\n",
    );
    let r = no_sweep(&[dir.to_str().expect("utf-8 path")]);
    let bare_metal = r["designs"]
        .as_array()
        .and_then(|d| d.iter().find(|d| d["env"] == "bare-metal"))
        .expect("a bare-metal design");
    let unused = bare_metal["surplus"].as_f64().expect("surplus");
    let workers = bare_metal["nodes"].as_f64().expect("nodes");
    let growth = dimension(&r, "scalability")["bareMetal"]["mean"]
        .as_f64()
        .expect("growth");
    assert!(unused > 0.0, "estate a leaves owned servers unused");
    let want = 100.0 * unused / workers;
    assert!((growth - want).abs() < 1e-6, "{growth} % against {want} %");
    // Not declared here: the report lists the assumed 2U among its defaults.
    let defaults = r["provenance"].to_string();
    assert!(
        defaults.contains("hostClasses[compute].rackUnits"),
        "{defaults}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// The bare-metal design of `r`, as the report's JSON has it.
fn bare_metal_design(r: &Value) -> &Value {
    r["designs"]
        .as_array()
        .and_then(|d| d.iter().find(|d| d["env"] == "bare-metal"))
        .expect("a bare-metal design")
}

/// Spares shared by the estate (the default) against each cluster's own
/// (`spares.scope: cluster`) on estate `b`'s six clusters: one `spare` row for every
/// cluster instead of a surge server per cluster and two more servers per pool, so fewer
/// servers and a lower bare-metal cost; and the simulated year still ends with every pod
/// placed, although servers given back by one cluster become nodes of another.
#[test]
fn spares_shared_by_the_estate_replace_each_clusters_own() {
    let dir = std::env::temp_dir().join(format!("plinth-fair-spares-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let own = dir.join("environment.yaml");
    std::fs::write(
        &own,
        "apiVersion: plinth.dev/v1alpha1\nkind: Environment\nmetadata:\n  name: metal\n\
         spec:\n  type: bareMetal\n  spares:\n    scope: cluster\n",
    )
    .expect("write");
    let shared = no_sweep(&["tests/estates/b"]);
    let kept = no_sweep(&["tests/estates/b", own.to_str().expect("utf-8 path")]);
    let rows = |r: &Value, role: &str| -> Vec<(String, u64)> {
        bare_metal_design(r)["roles"]
            .as_array()
            .expect("roles")
            .iter()
            .filter(|x| x["role"] == role)
            .map(|x| {
                (
                    x["cluster"].as_str().unwrap_or_default().to_owned(),
                    x["servers"].as_u64().unwrap_or_default(),
                )
            })
            .collect()
    };
    // 1 host failure + 1 surge, for every cluster at once.
    assert_eq!(rows(&shared, "spare"), [(String::new(), 2)]);
    assert!(rows(&shared, "surge").is_empty());
    assert_eq!(rows(&kept, "surge").len(), 6, "a surge server per cluster");
    assert!(rows(&kept, "spare").is_empty());
    let servers = |r: &Value| bare_metal_design(r)["servers"].as_u64().expect("servers");
    assert!(
        servers(&shared) < servers(&kept),
        "{} shared vs {} each cluster's own",
        servers(&shared),
        servers(&kept)
    );
    let cost = |r: &Value| {
        dimension(r, "cost")["bareMetal"]["mean"]
            .as_f64()
            .expect("cost")
    };
    assert!(cost(&shared) < cost(&kept));

    let events = dir.join("events.jsonl");
    let (code, out) = plinth(&[
        "simulate",
        "tests/estates/b",
        "--env",
        "bare-metal",
        "--seed",
        "1",
        "-o",
        "json",
        "--events",
        events.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(code, 0, "{out}");
    let summary: Value = serde_json::from_str(&out).expect("JSON summary");
    assert_eq!(summary["podsPendingAtEnd"], 0, "{summary:#}");
    // Some server was a node of two clusters in the year.
    let mut clusters_of: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> =
        Default::default();
    for line in std::fs::read_to_string(&events).expect("events").lines() {
        let e: Value = serde_json::from_str(line).expect("event");
        if e["event"] == "nodeAdded" {
            let pool = e["pool"].as_str().unwrap_or_default();
            let cluster = pool.split_once('/').map_or(pool, |(c, _)| c);
            clusters_of
                .entry(e["node"].as_str().unwrap_or_default().to_owned())
                .or_default()
                .insert(cluster.to_owned());
        }
    }
    assert!(
        clusters_of.values().any(|c| c.len() > 1),
        "no server moved between clusters: {clusters_of:?}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// `shareServers: true` merges the clusters of one OS image and Kubernetes version into one
/// bare-metal cluster (`shop` and `blog` of `tests/estates/share-servers`, both in a
/// namespace `web`): `validate` says which, `plan` plans one control plane for both, and
/// `compare` needs fewer servers, reports every workload under its own name, and counts the
/// merged pair as sharing servers and settings.
#[test]
fn shared_servers_merge_the_clusters_of_one_version_into_one() {
    let apart = ["tests/estates/share-servers"];
    let shared = [
        "tests/estates/share-servers",
        "tests/estates/share-servers-on",
    ];
    let (code, _, notes) = plinth_streams(&["validate", shared[0], shared[1]]);
    assert_eq!(code, 0, "{notes}");
    assert!(notes.contains("shop, blog into `shop`"), "{notes}");

    let (code, out) = plinth(&[
        "plan",
        shared[0],
        shared[1],
        "--env",
        "bare-metal",
        "-o",
        "json",
    ]);
    assert_eq!(code, 0, "{out}");
    let plan: Value = serde_json::from_str(&out).expect("JSON plan");
    let bm = &plan["bareMetal"];
    assert_eq!(
        bm["merges"][0]["members"],
        serde_json::json!(["shop", "blog"])
    );
    let control_planes: Vec<&str> = bm["allocations"]
        .as_array()
        .expect("allocations")
        .iter()
        .filter(|a| a["role"] == "control plane")
        .filter_map(|a| a["cluster"].as_str())
        .collect();
    assert_eq!(control_planes, ["ml", "shop"]);

    let (a, s) = (no_sweep(&apart), no_sweep(&shared));
    let servers = |r: &Value| bare_metal_design(r)["servers"].as_u64().expect("servers");
    assert!(
        servers(&s) < servers(&a),
        "{} vs {}",
        servers(&s),
        servers(&a)
    );
    let workloads = |r: &Value| -> Vec<String> {
        r["availability"]
            .as_array()
            .expect("availability")
            .iter()
            .filter(|w| w["bareMetal"].is_number())
            .filter_map(|w| w["workload"].as_str().map(str::to_owned))
            .collect()
    };
    assert_eq!(
        workloads(&s),
        workloads(&a),
        "the input's names, both designs"
    );
    let bm = |r: &Value, key: &str| dimension(r, key)["bareMetal"]["mean"].as_f64();
    assert_eq!(bm(&a, "isolation"), Some(0.0));
    assert_eq!(
        bm(&s, "isolation"),
        Some(1.0),
        "shop and blog share servers"
    );
    assert!(bm(&s, "independence") < bm(&a, "independence"));
}
