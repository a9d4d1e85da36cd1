//! Published installs, in look-alikes written for these tests (`tests/manifests/real-world/`),
//! validated together with a small Plinth estate through the `plinth` binary: what is read,
//! what is skipped (one line per kind, each object with `--verbose`), what is refused with
//! the fix, what is warned, and `--strict`.

mod common;

use common::plinth_streams;

/// What one run of `plinth` printed, and how it ended.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `plinth ARGS...`.
fn run(args: &[&str]) -> Run {
    let (code, stdout, stderr) = plinth_streams(args);
    Run {
        code,
        stdout,
        stderr,
    }
}

const DIR: &str = "tests/manifests/real-world";
const ESTATE: &str = "tests/manifests/real-world/estate.yaml";

/// `plinth validate ESTATE FILE FLAGS...`.
fn validate(file: &str, flags: &[&str]) -> Run {
    let path = format!("{DIR}/{file}");
    let mut args = vec!["validate", ESTATE, path.as_str()];
    args.extend_from_slice(flags);
    run(&args)
}

/// `DIR/file:line:column` of the `nth` (from 0) line of `file` that holds just `content`
/// (after its indentation and a list item's `- `), at the column `content` starts, plus
/// `shift` columns: the place an object's diagnostics must point at.
fn place(file: &str, content: &str, nth: usize, shift: usize) -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let text = std::fs::read_to_string(root.join(DIR).join(file)).expect("corpus file");
    let (line, column) = text
        .lines()
        .enumerate()
        .filter_map(|(i, l)| {
            let body = l.trim_start();
            let body = body.strip_prefix("- ").unwrap_or(body);
            (body == content).then(|| (i + 1, l.len() - body.len() + 1))
        })
        .nth(nth)
        .expect("content in file");
    format!("{DIR}/{file}:{line}:{}", column + shift)
}

/// The numbers of the `---` lines of `file`.
fn separator_lines(file: &str) -> Vec<usize> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let text = std::fs::read_to_string(root.join(DIR).join(file)).expect("corpus file");
    text.lines()
        .enumerate()
        .filter(|(_, l)| *l == "---")
        .map(|(i, _)| i + 1)
        .collect()
}

/// The place of the `nth` `kind: KIND` line of `file`.
fn kind_line(file: &str, kind: &str, nth: usize) -> String {
    place(file, &format!("kind: {kind}"), nth, 0)
}

/// True when `report` holds a diagnostic whose first line is `message` (it may go on with
/// more lines) and whose source snippet is at `at`.
fn located(report: &str, message: &str, at: &str) -> bool {
    let (first, rest) = message.split_once('\n').unwrap_or((message, ""));
    let lines: Vec<&str> = report.lines().collect();
    lines.iter().enumerate().any(|(i, l)| {
        *l == first
            && rest
                .lines()
                .enumerate()
                .all(|(j, r)| lines.get(i + 1 + j) == Some(&r))
            && lines
                .get(i + 1 + rest.lines().count())
                .is_some_and(|next| next.trim_start() == format!("┌─ {at}"))
    })
}

/// The `note: skipped N KIND (…); first at …` summary lines of a report.
fn skip_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.starts_with("note: skipped ") && l.contains("; first at "))
        .collect()
}

#[test]
fn ingress_controller_loads_with_one_skip_line_per_kind_and_a_best_effort_warning() {
    let f = "ingress-controller.yaml";
    let r = validate(f, &[]);
    assert_eq!(r.code, 0, "{}{}", r.stderr, r.stdout);
    assert!(
        r.stdout.contains("3 workloads (1 Deployment, 2 Job)"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("2 warning(s)"), "{}", r.stdout);
    let expected = [
        format!(
            "note: skipped 1 Namespace (v1); first at {}",
            kind_line(f, "Namespace", 0)
        ),
        format!(
            "note: skipped 2 ServiceAccount (v1); first at {}",
            kind_line(f, "ServiceAccount", 0)
        ),
        format!(
            "note: skipped 1 Role (rbac.authorization.k8s.io/v1); first at {}",
            kind_line(f, "Role", 0)
        ),
        format!(
            "note: skipped 1 RoleBinding (rbac.authorization.k8s.io/v1); first at {}",
            kind_line(f, "RoleBinding", 0)
        ),
        format!(
            "note: skipped 2 ClusterRole (rbac.authorization.k8s.io/v1); first at {}",
            kind_line(f, "ClusterRole", 0)
        ),
        format!(
            "note: skipped 1 ClusterRoleBinding (rbac.authorization.k8s.io/v1); first at {}",
            kind_line(f, "ClusterRoleBinding", 0)
        ),
        format!(
            "note: skipped 1 ConfigMap (v1); first at {}",
            kind_line(f, "ConfigMap", 0)
        ),
        format!(
            "note: skipped 2 Service (v1); first at {}",
            kind_line(f, "Service", 0)
        ),
        format!(
            "note: skipped 1 IngressClass (networking.k8s.io/v1); first at {}",
            kind_line(f, "IngressClass", 0)
        ),
        format!(
            "note: skipped 1 ValidatingWebhookConfiguration (admissionregistration.k8s.io/v1); first at {}",
            kind_line(f, "ValidatingWebhookConfiguration", 0)
        ),
    ];
    assert_eq!(skip_lines(&r.stderr), expected, "{}", r.stderr);
    let warning = format!(
        "warning: 2 workload(s) request no CPU or memory: their pods are BestEffort and are planned with zero requests; first at {}",
        kind_line(f, "Job", 0)
    );
    assert!(r.stderr.contains(&warning), "{}", r.stderr);
    assert!(
        r.stderr.contains("(--verbose lists each one)"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("skipped ClusterRole "), "{}", r.stderr);
}

#[test]
fn verbose_names_every_object_at_its_own_kind_line() {
    let f = "ingress-controller.yaml";
    let r = validate(f, &["--verbose"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(skip_lines(&r.stderr).is_empty(), "{}", r.stderr);
    let admission_role = kind_line(f, "ClusterRole", 1);
    for (message, at) in [
        (
            "note: skipped ClusterRole ingress-nginx-admission (rbac.authorization.k8s.io/v1)"
                .to_owned(),
            admission_role,
        ),
        (
            "note: skipped ValidatingWebhookConfiguration ingress-nginx-admission (admissionregistration.k8s.io/v1)".to_owned(),
            kind_line(f, "ValidatingWebhookConfiguration", 0),
        ),
        (
            "warning: Job ingress-nginx/ingress-nginx-admission-create requests no CPU or memory: its pods are BestEffort and are planned with zero requests".to_owned(),
            kind_line(f, "Job", 0),
        ),
    ] {
        assert!(
            located(&r.stderr, &message, &at),
            "missing {message} at {at} in:\n{}",
            r.stderr
        );
    }
    let skipped = r.stderr.matches("note: skipped ").count();
    assert_eq!(skipped, 13, "every skipped object once:\n{}", r.stderr);
    for separator in separator_lines(f) {
        let at = format!("{DIR}/{f}:{separator}:");
        assert!(
            !r.stderr.contains(&at),
            "points at a `---`: {at}\n{}",
            r.stderr
        );
    }
}

#[test]
fn strict_turns_the_warnings_into_errors_in_every_command() {
    let r = validate("ingress-controller.yaml", &["--strict"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stdout.contains("invalid: 2 error(s), 0 warning(s)"),
        "{}",
        r.stdout
    );
    assert!(
        r.stderr
            .contains("error: 2 workload(s) request no CPU or memory"),
        "{}",
        r.stderr
    );
    // `plan` reads its input with the same arguments and reports it the same way.
    let plan = run(&[
        "plan",
        ESTATE,
        &format!("{DIR}/ingress-controller.yaml"),
        "--strict",
    ]);
    assert_eq!(plan.code, 1, "{}", plan.stderr);
    assert_eq!(skip_lines(&plan.stderr), skip_lines(&r.stderr));
    assert!(
        plan.stderr
            .contains("error: 2 workload(s) request no CPU or memory"),
        "{}",
        plan.stderr
    );
}

#[test]
fn operator_crds_and_custom_resources_are_skipped_not_refused() {
    let f = "operator.yaml";
    let r = validate(f, &[]);
    assert_eq!(r.code, 0, "{}{}", r.stderr, r.stdout);
    assert!(
        r.stdout.contains("1 workloads (1 Deployment)"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("warning"), "{}", r.stdout);
    for line in [
        format!(
            "note: skipped 1 CustomResourceDefinition (apiextensions.k8s.io/v1); first at {}",
            kind_line(f, "CustomResourceDefinition", 0)
        ),
        format!(
            "note: skipped 1 Prometheus (monitoring.coreos.com/v1, custom resource); first at {}",
            // The first `kind: Prometheus` is the CRD's `names.kind`.
            kind_line(f, "Prometheus", 1)
        ),
        format!(
            "note: skipped 1 ServiceMonitor (monitoring.coreos.com/v1, custom resource); first at {}",
            kind_line(f, "ServiceMonitor", 0)
        ),
        format!(
            "note: skipped 1 Cluster (postgresql.cnpg.io/v1, custom resource); first at {}",
            kind_line(f, "Cluster", 0)
        ),
    ] {
        assert!(
            skip_lines(&r.stderr).contains(&line.as_str()),
            "missing {line}\n{}",
            r.stderr
        );
    }
    assert!(!r.stderr.contains("did you mean"), "{}", r.stderr);
}

#[test]
fn lists_are_read_item_by_item() {
    let f = "monitoring-stack.yaml";
    let r = validate(f, &[]);
    assert_eq!(r.code, 0, "{}{}", r.stderr, r.stdout);
    assert!(
        r.stdout.contains("3 workloads (3 Deployment)"),
        "{}",
        r.stdout
    );
    let expected = [
        format!(
            "note: skipped 1 ServiceAccount (v1); first at {}",
            kind_line(f, "ServiceAccount", 0)
        ),
        format!(
            "note: skipped 1 Service (v1); first at {}",
            kind_line(f, "Service", 0)
        ),
        // ConfigMapList items leave out their kind: each is found at its own first line.
        format!(
            "note: skipped 2 ConfigMap (v1); first at {}",
            place(f, "metadata:", 4, 0)
        ),
    ];
    assert_eq!(skip_lines(&r.stderr), expected, "{}", r.stderr);
    let verbose = validate(f, &["--verbose"]);
    assert!(
        verbose
            .stderr
            .contains("note: skipped ConfigMap monitoring/grafana-datasources (v1)"),
        "{}",
        verbose.stderr
    );
}

#[test]
fn a_kustomization_directory_is_refused_with_the_fix() {
    let r = run(&["validate", ESTATE, &format!("{DIR}/kustomize")]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    for fix in [
        "kustomize/kustomization.yaml` is a kustomization",
        "render it with `kubectl kustomize tests/manifests/real-world/kustomize`",
        "on standard input (`-`)",
        "--ignore-kustomization",
    ] {
        assert!(r.stderr.contains(fix), "missing {fix:?} in {}", r.stderr);
    }
    let anyway = run(&[
        "validate",
        ESTATE,
        &format!("{DIR}/kustomize"),
        "--ignore-kustomization",
    ]);
    assert_eq!(anyway.code, 0, "{}", anyway.stderr);
    assert!(
        anyway.stdout.contains("1 workloads (1 Deployment)"),
        "{}",
        anyway.stdout
    );
    assert!(
        anyway.stderr.contains(
            "note: skipped 1 Kustomization (kustomize.config.k8s.io/v1beta1, custom resource)"
        ),
        "{}",
        anyway.stderr
    );
}

#[test]
fn a_helm_template_is_refused_with_the_fix() {
    let f = "helm/deployment.yaml";
    let r = validate(f, &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "error: `{{ include \"shop.fullname\" . }}` is Helm template syntax: this file is a chart's template, not a manifest"
        ),
        "{}",
        r.stderr
    );
    let at = place(f, "name: {{ include \"shop.fullname\" . }}", 0, 6);
    assert!(
        located(
            &r.stderr,
            "error: `{{ include \"shop.fullname\" . }}` is Helm template syntax: this file is a chart's template, not a manifest",
            &at
        ),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("helm template RELEASE CHART"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("no Inventory"), "{}", r.stderr);
}

#[test]
fn selectors_that_match_no_pod_warn_at_the_selector_with_the_labels() {
    let f = "selectors-match-nothing.yaml";
    let path = format!("{DIR}/{f}");
    let r = run(&["validate", path.as_str()]);
    assert_eq!(r.code, 0, "{}{}", r.stderr, r.stdout);
    let anti = place(f, "labelSelector: {matchLabels: {app: postgres}}", 0, 0);
    let budget = place(f, "selector: {matchLabels: {app: postgress}}", 0, 0);
    let affinity = place(f, "labelSelector:", 0, 0);
    for (message, at) in [
        (
            "warning: StatefulSet default/pg: required pod anti-affinity selector `app=postgres` matches no pod: it keeps no pod apart",
            anti,
        ),
        (
            "warning: PodDisruptionBudget default/pg: selector `app=postgress` matches no pod in namespace `default` of cluster `prod`",
            budget,
        ),
        (
            "warning: Deployment default/api: required pod affinity selector `app in (redis,valkey)` matches no pod: Kubernetes keeps its pods Pending until such a pod runs",
            affinity,
        ),
    ] {
        assert!(
            located(&r.stderr, message, &at),
            "missing {message} at {at} in:\n{}",
            r.stderr
        );
    }
    for help in [
        "= help: its pod template's labels are `app=pg`; the selector usually matches them",
        "= help: pod template labels there: StatefulSet default/pg has app=pg; Deployment default/api has app=api",
    ] {
        assert!(r.stderr.contains(help), "missing {help} in:\n{}", r.stderr);
    }
    assert!(r.stdout.contains("3 warning(s)"), "{}", r.stdout);
    let strict = run(&["validate", path.as_str(), "--strict"]);
    assert_eq!(strict.code, 1, "{}", strict.stderr);
}

/// The published install selects `kubernetes.io/os: linux`, which every node carries: `plan`
/// places the controller's replicas on worker nodes in both designs and exits 0.
#[test]
fn the_ingress_controller_plans_on_nodes_with_the_well_known_labels() {
    let path = format!("{DIR}/ingress-controller.yaml");
    let r = run(&["plan", ESTATE, path.as_str(), "-o", "json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    for design in ["virtualized", "bareMetal"] {
        let controller = v[design]["placement"]
            .as_array()
            .and_then(|p| {
                p.iter().find(|w| {
                    w["workload"]
                        .as_str()
                        .is_some_and(|id| id.ends_with("Deployment/ingress-nginx-controller"))
                })
            })
            .unwrap_or_else(|| panic!("{design}: no controller placement: {v}"));
        assert_eq!(controller["pending"], 0, "{design}: {controller}");
        let bound: u64 = controller["nodes"]
            .as_object()
            .map(|n| n.values().filter_map(serde_json::Value::as_u64).sum())
            .unwrap_or(0);
        assert_eq!(bound, 2, "{design}: both replicas bound: {controller}");
    }
}
