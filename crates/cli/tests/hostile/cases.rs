//! The table: every hostile input and flag, by class. Large inputs are generated here,
//! not committed.

use crate::run::{Case, Sink};

/// The small example estate, as files below `in/`, for cases that change one thing.
fn small() -> Vec<(String, Vec<u8>)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/small");
    ["cluster.yaml", "inventory.yaml", "workloads.yaml"]
        .iter()
        .map(|f| {
            (
                format!("in/{f}"),
                std::fs::read(format!("{dir}/{f}")).unwrap_or_default(),
            )
        })
        .collect()
}

/// A case on the small estate (`in/`), plus `extra` as `in/extra.yaml`.
fn on_small(name: &str, args: &[&str], extra: &str, code: i32, fragment: &str) -> Case {
    let mut c = Case::new(name, args, code, fragment);
    c.files = small();
    if !extra.is_empty() {
        c = c.file("in/extra.yaml", extra);
    }
    c
}

/// Output that cannot be written: a closed pipe ends quietly with exit 0, a full disk
/// is a one-line error, an existing event log is not overwritten.
fn output() -> Vec<Case> {
    let mut out = Vec::new();
    for (name, args) in [
        ("validate", vec!["validate", "in"]),
        ("plan", vec!["plan", "in"]),
        ("plan-json", vec!["plan", "in", "-o", "json"]),
        ("explain", vec!["explain", "Cluster"]),
        ("schema", vec!["schema", "Cluster"]),
        (
            "simulate",
            vec!["simulate", "in", "--env", "virtualized", "--duration", "2d"],
        ),
        (
            "compare-json",
            vec![
                "compare",
                "in",
                "--seeds",
                "2",
                "--duration",
                "2d",
                "--no-sweep",
                "-o",
                "json",
            ],
        ),
    ] {
        out.push(on_small(&format!("closed-pipe-{name}"), &args, "", 0, "").stdout(Sink::Closed));
        out.push(
            on_small(
                &format!("full-disk-{name}"),
                &args,
                "",
                2,
                "cannot write to standard output",
            )
            .stdout(Sink::Full),
        );
    }
    let simulate = [
        "simulate",
        "in",
        "--env",
        "bare-metal",
        "--duration",
        "1d",
        "--events",
        "log.jsonl",
    ];
    out.push(
        on_small("events-file-exists", &simulate, "", 2, "pass --force")
            .file("log.jsonl", "keep me"),
    );
    out.push(
        on_small(
            "events-file-force",
            &[&simulate[..], &["--force"]].concat(),
            "",
            0,
            "",
        )
        .file("log.jsonl", "replace me"),
    );
    let compare = [
        "compare",
        "in",
        "--seeds",
        "2",
        "--duration",
        "1d",
        "--no-sweep",
        "--events",
        "logs",
    ];
    out.push(
        on_small("events-dir-exists", &compare, "", 2, "pass --force")
            .file("logs/virtualized-seed-1.jsonl", "keep me"),
    );
    out
}

/// Flags that contradict each other or the documented rules.
fn flags() -> Vec<Case> {
    let compare = |name: &str, extra: &[&str], fragment: &str| {
        on_small(
            name,
            &[&["compare", "in", "--no-sweep"][..], extra].concat(),
            "",
            2,
            fragment,
        )
    };
    vec![
        compare(
            "compare-seeds-flag-max",
            &["--seeds", "10000"],
            "out of range",
        ),
        compare("compare-seeds-one", &["--seeds", "1"], "out of range"),
        compare("compare-seeds-negative", &["--seeds", "-3"], "error"),
        compare(
            "compare-run-years",
            &["--seeds", "1000", "--duration", "365d"],
            "run-years",
        ),
        compare(
            "compare-duration-10000y",
            &["--duration", "10000y"],
            "out of range",
        ),
        compare(
            "compare-duration-banana",
            &["--duration", "banana"],
            "not a duration",
        ),
        on_small(
            "simulate-duration-10000y",
            &[
                "simulate",
                "in",
                "--env",
                "virtualized",
                "--duration",
                "10000y",
            ],
            "",
            2,
            "out of range",
        ),
        on_small(
            "simulate-duration-overflow",
            &[
                "simulate",
                "in",
                "--env",
                "virtualized",
                "--duration",
                "99999999999999999999y",
            ],
            "",
            2,
            "--duration",
        ),
        on_small(
            "no-sweep-with-sweep-runs",
            &["compare", "in", "--no-sweep", "--sweep-runs", "5"],
            "",
            2,
            "cannot be used with",
        ),
        on_small(
            "force-without-events",
            &["simulate", "in", "--env", "virtualized", "--force"],
            "",
            2,
            "--events",
        ),
        on_small(
            "simulate-duration-zero",
            &["simulate", "in", "--env", "virtualized", "--duration", "0s"],
            "",
            2,
            "--duration",
        ),
        on_small(
            "compare-duration-zero",
            &["compare", "in", "--duration", "0s", "--no-sweep"],
            "",
            2,
            "--duration",
        ),
    ]
}

/// A document of `kind` whose spec holds `extra` spec lines (after `type:` for an
/// Environment) and then `path: value` as nested keys, the value on the last line. Returns
/// the YAML and the line of the value.
fn nested(kind: &str, extra: &[&str], path: &[&str], value: &str) -> (String, usize) {
    let mut text =
        format!("apiVersion: plinth.dev/v1alpha1\nkind: {kind}\nmetadata:\n  name: x\nspec:\n");
    for line in extra {
        text.push_str(&format!("  {line}\n"));
    }
    for (depth, key) in path.iter().enumerate() {
        let pad = "  ".repeat(depth + 1);
        if depth + 1 == path.len() {
            text.push_str(&format!("{pad}{key}: {value}\n"));
        } else {
            text.push_str(&format!("{pad}{key}:\n"));
        }
    }
    (text, 5 + extra.len() + path.len())
}

/// `validate` must refuse `value` at `path` of a `kind` document with a range error
/// located at the value's own line.
fn out_of_range(kind: &str, extra: &[&str], path: &[&str], value: &str) -> Case {
    let (text, line) = nested(kind, extra, path, value);
    on_small(
        &format!("range-{kind}-{}-{value}", path.join(".")),
        &["validate", "in"],
        &text,
        1,
        &format!("in/extra.yaml:{line}:"),
    )
    .also("out of range")
}

/// Every quantity that drives the event rate or the size of a plan, outside its range.
fn ranges() -> Vec<Case> {
    let virt = ["type: virtualized"];
    let metal = ["type: bareMetal"];
    let mut out = Vec::new();
    for (path, value) in [
        (&["duration"][..], "0s"),
        (&["duration"], "10000y"),
        (&["runs"], "0"),
        (&["runs"], "5000"),
        (&["failures", "hosts", "mtbf"], "1s"),
        (&["failures", "hosts", "mtbf"], "0s"),
        (&["failures", "hosts", "repairTime"], "0s"),
        (&["failures", "hosts", "shape"], "0"),
        (&["failures", "hosts", "shape"], "0.001"),
        (&["failures", "hosts", "shape"], "-1"),
        (&["failures", "racks", "mtbf"], "1s"),
        (&["failures", "racks", "repairTime"], "400d"),
        (&["failures", "byClass", "standard", "mtbf"], "1s"),
        (&["operations", "kubernetesUpgradesPerYear"], "1000000"),
        (&["operations", "osPatchingInterval"], "1ms"),
        (&["operations", "hostPatchingInterval"], "0s"),
        (&["materiality", "cost"], "-1"),
        (&["materiality", "cost"], "1e300"),
    ] {
        out.push(out_of_range("Scenario", &[], path, value));
    }
    for (path, value) in [
        (&["drs", "interval"][..], "0s"),
        (&["drs", "interval"], "1ms"),
        (&["drs", "maxMovesPerInterval"], "1000000"),
        (&["drs", "threshold"], "-1"),
        (&["ha", "heartbeatInterval"], "1ms"),
        (&["ha", "fenceFailureProbability"], "2"),
        (&["ha", "failureDetectionTimeout"], "1000y"),
        (&["overcommit", "cpu"], "0"),
        (&["overcommit", "memory"], "1000"),
        (&["performanceOverhead", "cpu"], "1"),
        (&["timings", "migrationGbps"], "0"),
        (&["timings", "dirtyRate"], "5"),
        (&["timings", "vmBoot"], "1000y"),
        (&["storage", "replicationFactor"], "100"),
    ] {
        out.push(out_of_range("Environment", &virt, path, value));
    }
    for (path, value) in [(&["osInstall"][..], "1000y"), (&["reimage"], "100y")] {
        out.push(out_of_range("Environment", &metal, path, value));
    }
    for (path, value) in [
        (&["horizonYears"][..], "4000000000"),
        (&["horizonYears"], "0"),
        (&["power", "pue"], "0.5"),
        (&["power", "pricePerKwh"], "-1"),
        (&["labour", "ratePerHour"], "1e15"),
        (&["labour", "hours", "hostPatching"], "-3"),
        (&["defaultServerPrice"], "-5"),
    ] {
        out.push(out_of_range("PriceSheet", &["currency: EUR"], path, value));
    }
    for (extra, path, value) in [
        (&["vcpu: 2", "memory: 4Gi"][..], "count", "4000000000"),
        (&["count: 2", "memory: 4Gi"], "vcpu", "0"),
        (&["count: 2", "vcpu: 2"], "memory", "1Ei"),
    ] {
        out.push(out_of_range("VirtualMachineSet", extra, &[path], value));
    }
    out
}

/// The small estate with the first `from` replaced by `to` in `file`: an error at the line
/// of that `from` (found in the file, so an edit of the example moves it along).
fn edited(name: &str, file: &str, from: &str, to: &str) -> Case {
    let mut files = small();
    let mut line = None;
    for (path, content) in &mut files {
        if path.as_str() == format!("in/{file}") {
            let text = String::from_utf8_lossy(content).into_owned();
            let at = text
                .find(from)
                .unwrap_or_else(|| panic!("{name}: no `{from}` in examples/small/{file}"));
            line = Some(text[..at].matches('\n').count() + 1);
            *content = text.replacen(from, to, 1).into_bytes();
        }
    }
    let line = line.unwrap_or_else(|| panic!("{name}: no examples/small/{file}"));
    let mut c = Case::new(name, &["validate", "in"], 1, &format!("in/{file}:{line}:"));
    c.files = files;
    c
}

/// Sizes of hardware, nodes and workloads that would overflow sums or exhaust memory.
fn sizes() -> Vec<Case> {
    vec![
        edited(
            "sockets-u32-max",
            "inventory.yaml",
            "sockets: 2",
            "sockets: 4294967295",
        ),
        edited(
            "cores-per-socket-zero",
            "inventory.yaml",
            "coresPerSocket: 16",
            "coresPerSocket: 0",
        ),
        edited(
            "threads-per-core-huge",
            "inventory.yaml",
            "threadsPerCore: 2",
            "threadsPerCore: 4000000000",
        ),
        edited(
            "server-memory-zero",
            "inventory.yaml",
            "memory: 384Gi",
            "memory: 0",
        ),
        edited(
            "disk-count-huge",
            "inventory.yaml",
            "count: 2",
            "count: 4000000000",
        ),
        edited(
            "watts-huge",
            "inventory.yaml",
            "peak: 464",
            "peak: 4294967295",
        ),
        edited(
            "pool-replicas-billion",
            "cluster.yaml",
            "replicas: 12",
            "replicas: 1000000000",
        ),
        edited(
            "control-plane-replicas-huge",
            "cluster.yaml",
            "replicas: 3",
            "replicas: 100000",
        ),
        edited("pool-vcpu-zero", "cluster.yaml", "vcpu: 16", "vcpu: 0").also("out of range"),
        edited(
            "deployment-replicas-billion",
            "workloads.yaml",
            "replicas: 3",
            "replicas: 1000000000",
        ),
        edited(
            "deployment-replicas-negative",
            "workloads.yaml",
            "replicas: 3",
            "replicas: -1",
        ),
        on_small(
            "job-parallelism-billion",
            &["validate", "in"],
            "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: j\nspec:\n  parallelism: 1000000000\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n        - name: c\n          image: busybox\n",
            1,
            "in/extra.yaml:6:",
        ),
    ]
}

/// Names that break the DNS-1123 rule of their kind, fields Kubernetes refuses, and
/// versions that are not versions.
fn names() -> Vec<Case> {
    let long = "a".repeat(100_000);
    let mut out = Vec::new();
    for (name, bad) in [
        ("slash", "a/b"),
        ("dotdot", "../../etc"),
        ("unicode", "café"),
        ("html", "<b>x</b>"),
        ("upper", "Apps"),
        ("dash-edge", "apps-"),
        ("long", long.as_str()),
    ] {
        out.push(
            edited(
                &format!("cluster-name-{name}"),
                "cluster.yaml",
                "name: apps",
                &format!("name: \"{bad}\""),
            )
            .also("DNS-1123 label"),
        );
        out.push(
            edited(
                &format!("deployment-name-{name}"),
                "workloads.yaml",
                "name: web",
                &format!("name: \"{bad}\""),
            )
            .also("name"),
        );
    }
    for (what, file, from) in [
        ("host-class", "inventory.yaml", "- name: standard"),
        ("rack", "inventory.yaml", "- name: r1"),
        ("pool", "cluster.yaml", "- name: workers"),
    ] {
        out.push(
            edited(&format!("{what}-name-slash"), file, from, "- name: \"a/b\"")
                .also("DNS-1123 label"),
        );
    }
    out.push(
        edited(
            "cluster-name-dot",
            "cluster.yaml",
            "name: apps",
            "name: apps.v2",
        )
        .also("DNS-1123 label"),
    );
    out.push(
        edited(
            "namespace-upper",
            "workloads.yaml",
            "namespace: shop",
            "namespace: Shop",
        )
        .also("DNS-1123 label"),
    );
    out.push(
        edited(
            "max-skew-zero",
            "workloads.yaml",
            "maxSkew: 1",
            "maxSkew: 0",
        )
        .also("maxSkew"),
    );
    out.push(
        edited(
            "kubernetes-version-banana",
            "cluster.yaml",
            "kubernetesVersion: \"1.31.4\"",
            "kubernetesVersion: \"banana\"",
        )
        .also("not a Kubernetes version"),
    );
    out.push(on_small(
        "timeline-version-banana",
        &["validate", "in"],
        "apiVersion: plinth.dev/v1alpha1\nkind: Scenario\nmetadata:\n  name: s\nspec:\n  operations:\n    timeline:\n      - at: 30d\n        action: upgradeKubernetes\n        cluster: apps\n        version: banana\n",
        1,
        "in/extra.yaml:11:",
    ).also("not a Kubernetes version"));
    let huge_key = format!(
        "apiVersion: plinth.dev/v1alpha1\nkind: Scenario\nmetadata:\n  name: s\nspec:\n  {}: 1\n",
        "k".repeat(10_000_000)
    );
    out.push(on_small(
        "ten-mb-plain-key-not-echoed",
        &["validate", "in"],
        &huge_key,
        1,
        "not shown",
    ));
    let explicit_key = format!(
        "apiVersion: plinth.dev/v1alpha1\nkind: Scenario\nmetadata:\n  name: s\nspec:\n  ? {}\n  : 1\n",
        "k".repeat(10_000_000)
    );
    out.push(on_small(
        "ten-mb-explicit-key-not-echoed",
        &["validate", "in"],
        &explicit_key,
        1,
        "not shown",
    ));
    out
}

/// An Environment naming `path` as its calibration.
fn env_with_calibration(path: &str) -> String {
    format!(
        "apiVersion: plinth.dev/v1alpha1\nkind: Environment\nmetadata:\n  name: pool\nspec:\n  type: virtualized\n  calibration: {path}\n"
    )
}

/// A valid Calibration document.
const CALIBRATION: &str = "apiVersion: plinth.dev/v1alpha1\nkind: Calibration\nmetadata:\n  name: lab\nspec:\n  accelerator: kvm\n  vmBoot: 20s\n";

/// What is read and from where: size caps, FIFOs and devices, alias bombs, confined
/// calibration paths.
fn reading() -> Vec<Case> {
    let validate = ["validate", "in"];
    let mut bomb = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bomb\ndata:\n  big: &big \"{}\"\n  list:\n",
        "x".repeat(1 << 20)
    );
    for _ in 0..30_000 {
        bomb.push_str("    - *big\n");
    }
    vec![
        on_small("fifo-in-directory", &validate, "", 2, "not a regular file").fifo("in/pipe.yaml"),
        on_small(
            "fifo-as-path",
            &["validate", "in", "pipe.yaml"],
            "",
            2,
            "not a regular file",
        )
        .fifo("pipe.yaml"),
        on_small(
            "dev-zero-as-path",
            &["validate", "in", "/dev/zero"],
            "",
            2,
            "not a regular file",
        ),
        on_small(
            "dev-zero-link-in-directory",
            &validate,
            "",
            2,
            "not a regular file",
        )
        .link("in/zero.yaml", "/dev/zero"),
        on_small(
            "input-over-cap",
            &["validate", "in", "--max-input-mib", "1"],
            "",
            2,
            "--max-input-mib",
        )
        .file("in/big.yaml", format!("# {}\n", "x".repeat(2 << 20))),
        on_small(
            "stdin-over-cap",
            &["validate", "in", "-", "--max-input-mib", "1"],
            "",
            2,
            "--max-input-mib",
        )
        .stdin(format!("# {}\n", "x".repeat(2 << 20))),
        on_small("stdin-within-cap", &["validate", "in", "-"], "", 0, "valid")
            .stdin("# nothing here\n"),
        on_small(
            "alias-bomb-of-1mb-strings",
            &validate,
            &bomb,
            1,
            "MiB of YAML text",
        ),
        on_small(
            "calibration-etc-passwd",
            &validate,
            &env_with_calibration("/etc/passwd"),
            2,
            "--allow-outside-paths",
        ),
        on_small(
            "calibration-dotdot",
            &validate,
            &env_with_calibration("../outside.yaml"),
            2,
            "--allow-outside-paths",
        )
        .file("outside.yaml", CALIBRATION),
        on_small(
            "calibration-dotdot-allowed",
            &["validate", "in", "--allow-outside-paths"],
            &env_with_calibration("../outside.yaml"),
            0,
            "valid",
        )
        .file("outside.yaml", CALIBRATION),
        on_small(
            "calibration-beside",
            &validate,
            &env_with_calibration("cal/lab.yaml"),
            0,
            "valid",
        )
        .file("in/cal/lab.yaml", CALIBRATION),
        on_small(
            "calibration-dev-zero",
            &["validate", "in", "--allow-outside-paths"],
            &env_with_calibration("/dev/zero"),
            2,
            "not a regular file",
        ),
        on_small(
            "calibration-link-to-dev-zero",
            &validate,
            &env_with_calibration("zero.cal"),
            2,
            "--allow-outside-paths",
        )
        .link("in/zero.cal", "/dev/zero"),
        on_small(
            "calibration-fifo",
            &validate,
            &env_with_calibration("pipe.cal"),
            2,
            "not a regular file",
        )
        .fifo("in/pipe.cal"),
        on_small(
            "calibration-missing",
            &validate,
            &env_with_calibration("nothing.yaml"),
            2,
            "nothing.yaml",
        ),
        on_small("symlink-loop", &validate, "", 2, "loop.yaml").link("in/loop.yaml", "loop.yaml"),
        on_small("binary-garbage", &validate, "", 2, "not UTF-8")
            .file("in/garbage.yaml", vec![0xff, 0xfe, 0x00, 0x80]),
    ]
}

/// Failures at the floor of their ranges (every MTBF one day, one-minute repairs).
const BUSY: &str = "apiVersion: plinth.dev/v1alpha1
kind: Scenario
metadata:
  name: busy
spec:
  failures:
    hosts:
      mtbf: 1d
      repairTime: 1m
    racks:
      mtbf: 1d
      repairTime: 1m
";

/// The event budget: a day that takes more events than `--max-events-per-day` stops the
/// run with an error that names the input behind the rate (exit 1), in both commands.
fn budget() -> Vec<Case> {
    let simulate = [
        "simulate",
        "in",
        "--env",
        "virtualized",
        "--duration",
        "30d",
    ];
    let compare = [
        "compare",
        "in",
        "--seeds",
        "2",
        "--duration",
        "30d",
        "--no-sweep",
    ];
    vec![
        on_small(
            "budget-simulate",
            &[&simulate[..], &["--max-events-per-day", "100"]].concat(),
            BUSY,
            1,
            "took more than 100 events",
        )
        .also("spec.failures"),
        on_small(
            "budget-compare",
            &[&compare[..], &["--max-events-per-day", "100"]].concat(),
            BUSY,
            1,
            "took more than 100 events",
        )
        .also("spec.failures"),
        on_small(
            "budget-below-the-hourly-series",
            &[&simulate[..], &["--max-events-per-day", "10"]].concat(),
            "",
            2,
            "at least 100 events a day",
        ),
        on_small(
            "budget-default-holds-busy-failures",
            &simulate,
            BUSY,
            0,
            "host failures",
        ),
    ]
}

/// Every case, in the order they run.
pub(crate) fn all() -> Vec<Case> {
    [
        output(),
        flags(),
        ranges(),
        sizes(),
        names(),
        reading(),
        budget(),
    ]
    .into_iter()
    .flatten()
    .collect()
}
