//! Every file in `tests/manifests/broken/` is an input with mistakes a user makes. Each
//! must be rejected with exit code 1, and the whole report — every error's text, place and
//! suggested fix on stderr, then the verdict on stdout — is checked against its snapshot.

mod common;

use std::path::Path;

use common::{plinth, plinth_streams};

/// `plinth validate PATH`: (exit code, the diagnostics on stderr followed by the verdict).
fn validate(path: &Path) -> (i32, String) {
    let (code, stdout, stderr) = plinth_streams(&[Path::new("validate"), path]);
    (code, format!("{stderr}{stdout}"))
}

#[test]
fn broken_manifests_report_every_error_with_place_and_fix() {
    insta::glob!("../../../tests/manifests/broken", "*.yaml", |path| {
        let relative = path
            .strip_prefix(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../..")
                    .canonicalize()
                    .expect("root"),
            )
            .unwrap_or(path);
        let (code, report) = validate(relative);
        assert_eq!(code, 1, "{} must be invalid:\n{report}", relative.display());
        assert!(report.contains("error"), "{report}");
        insta::assert_snapshot!(report);
    });
}

#[test]
fn examples_are_valid() {
    for example in ["examples/small", "examples/enterprise"] {
        let (code, report) = validate(Path::new(example));
        assert_eq!(code, 0, "{example}:\n{report}");
        assert!(
            !report.contains("warning"),
            "{example} has warnings:\n{report}"
        );
    }
}

#[test]
fn usage_and_io_errors_exit_2() {
    let (code, _) = validate(Path::new("no/such/path.yaml"));
    assert_eq!(code, 2);
}

#[test]
fn overlapping_paths_are_read_once() {
    let (code, report) = plinth(&[
        "validate",
        "examples/small",
        "examples/small/cluster.yaml",
        "--cluster",
        "apps=examples/small/workloads.yaml",
    ]);
    assert_eq!(code, 0, "{report}");
    assert!(report.contains("1 clusters; 11 workloads"), "{report}");
}

#[test]
fn a_machine_health_check_faster_than_ha_is_a_warning_at_its_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/small");
    for file in std::fs::read_dir(&root).expect("examples/small") {
        let file = file.expect("entry").path();
        std::fs::copy(&file, dir.path().join(file.file_name().expect("name"))).expect("copy");
    }
    let cluster = dir.path().join("cluster.yaml");
    let text = std::fs::read_to_string(&cluster).expect("cluster");
    // The default virtualized Environment: HA restarts after at most 1m 11s, boot 3m.
    let hasty = text.replacen(
        "spec:\n",
        "spec:\n  kubernetes:\n    machineHealthTimeout: 2m\n",
        1,
    );
    assert_ne!(hasty, text, "cluster.yaml has a spec");
    std::fs::write(&cluster, hasty).expect("write");
    let (code, report) = validate(dir.path());
    assert_eq!(code, 0, "{report}");
    assert!(
        report.contains("warning")
            && report.contains("before HA has it back (4m 11s at worst")
            && report.contains("make machineHealthTimeout more than 3m 21s")
            && report.contains("cluster.yaml:"),
        "{report}"
    );
    let (code, _, _) = plinth_streams(&[Path::new("validate"), dir.path(), Path::new("--strict")]);
    assert_eq!(code, 1, "--strict makes it an error");
}
