//! Every document of an input → a typed document, or diagnostics saying why not.
//!
//! Dispatch is by `kind` and `apiVersion`: Plinth's kinds, the Kubernetes workload kinds
//! Plinth reads, known Kubernetes kinds it skips with a note, and anything else, which is
//! an error with the nearest known kind suggested.

use std::sync::{Arc, LazyLock};

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Pod, PodSpec, PodTemplateSpec};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::decode::{TypeSchema, decode};
use crate::diag::{Diagnostic, Diagnostics, did_you_mean};
use crate::estate::{Input, Named};
use crate::kinds::calibration::CalibrationSpec;
use crate::kinds::cluster::ClusterSpec;
use crate::kinds::environment::{BareMetalSpec, EnvironmentType, VirtualizedSpec};
use crate::kinds::inventory::InventorySpec;
use crate::kinds::price_sheet::PriceSheetSpec;
use crate::kinds::scenario::ScenarioSpec;
use crate::kinds::vm_set::VmSetSpec;
use crate::kinds::{API_VERSION, Manifest, UsageProfile, VolumeStorage};
use crate::quantity::Duration;
use crate::source::Location;
use crate::workload::{self, DisruptionBudget, Workload, WorkloadId, WorkloadKind};
use crate::yaml::{Document, parse_documents};

/// Plinth's own kinds.
pub const PLINTH_KINDS: [&str; 7] = [
    "Inventory",
    "Environment",
    "Cluster",
    "VirtualMachineSet",
    "Scenario",
    "PriceSheet",
    "Calibration",
];

/// Kubernetes kinds Plinth reads, with their apiVersion.
pub const KUBERNETES_KINDS: [(&str, &str); 9] = [
    ("Deployment", "apps/v1"),
    ("StatefulSet", "apps/v1"),
    ("DaemonSet", "apps/v1"),
    ("ReplicaSet", "apps/v1"),
    ("Job", "batch/v1"),
    ("CronJob", "batch/v1"),
    ("Pod", "v1"),
    ("PodDisruptionBudget", "policy/v1"),
    ("StorageClass", "storage.k8s.io/v1"),
];

/// Known Kubernetes kinds that do not change node infrastructure: skipped with a note.
pub const SKIPPED_KINDS: [&str; 23] = [
    "Service",
    "ConfigMap",
    "Secret",
    "Ingress",
    "IngressClass",
    "Namespace",
    "ServiceAccount",
    "Role",
    "RoleBinding",
    "ClusterRole",
    "ClusterRoleBinding",
    "NetworkPolicy",
    "HorizontalPodAutoscaler",
    "VerticalPodAutoscaler",
    "Kustomization",
    "PersistentVolumeClaim",
    "PersistentVolume",
    "CustomResourceDefinition",
    "LimitRange",
    "ResourceQuota",
    "PriorityClass",
    "Endpoints",
    "EndpointSlice",
];

/// Schemas of every kind, generated once per process.
pub(crate) struct Schemas {
    pub(crate) inventory: TypeSchema,
    pub(crate) virtualized: TypeSchema,
    pub(crate) bare_metal: TypeSchema,
    pub(crate) cluster: TypeSchema,
    pub(crate) vm_set: TypeSchema,
    pub(crate) scenario: TypeSchema,
    pub(crate) price_sheet: TypeSchema,
    pub(crate) calibration: TypeSchema,
    deployment: TypeSchema,
    stateful_set: TypeSchema,
    daemon_set: TypeSchema,
    replica_set: TypeSchema,
    job: TypeSchema,
    cron_job: TypeSchema,
    pod: TypeSchema,
    pdb: TypeSchema,
    storage_class: TypeSchema,
}

pub(crate) static SCHEMAS: LazyLock<Schemas> = LazyLock::new(|| Schemas {
    inventory: TypeSchema::of::<Manifest<InventorySpec>>(),
    virtualized: TypeSchema::of::<Manifest<VirtualizedSpec>>(),
    bare_metal: TypeSchema::of::<Manifest<BareMetalSpec>>(),
    cluster: TypeSchema::of::<Manifest<ClusterSpec>>(),
    vm_set: TypeSchema::of::<Manifest<VmSetSpec>>(),
    scenario: TypeSchema::of::<Manifest<ScenarioSpec>>(),
    price_sheet: TypeSchema::of::<Manifest<PriceSheetSpec>>(),
    calibration: TypeSchema::of::<Manifest<CalibrationSpec>>(),
    deployment: TypeSchema::of::<Deployment>(),
    stateful_set: TypeSchema::of::<StatefulSet>(),
    daemon_set: TypeSchema::of::<DaemonSet>(),
    replica_set: TypeSchema::of::<ReplicaSet>(),
    job: TypeSchema::of::<Job>(),
    cron_job: TypeSchema::of::<CronJob>(),
    pod: TypeSchema::of::<Pod>(),
    pdb: TypeSchema::of::<PodDisruptionBudget>(),
    storage_class: TypeSchema::of::<StorageClass>(),
});

/// A workload whose cluster is not decided yet (binding needs every Cluster first).
#[derive(Debug)]
pub(crate) struct PendingWorkload {
    pub(crate) workload: Workload,
    /// `plinth.dev/cluster` label value and its place.
    pub(crate) label: Option<(String, Location)>,
    /// The source it came from (for `--cluster NAME=PATH`).
    pub(crate) source: Arc<str>,
    /// Storage classes of its claims (`None`: the cluster's default class).
    pub(crate) claims: Vec<Option<String>>,
    /// Uses a hostPath volume: its data is on its node.
    pub(crate) host_path: bool,
    /// The `plinth.dev/storage` annotation.
    pub(crate) storage_annotation: Option<VolumeStorage>,
}

/// A PodDisruptionBudget whose cluster is not decided yet.
#[derive(Debug)]
pub(crate) struct PendingBudget {
    pub(crate) budget: DisruptionBudget,
    pub(crate) label: Option<(String, Location)>,
    pub(crate) source: Arc<str>,
}

/// Every typed document of an input, by kind, in input order.
#[derive(Debug, Default)]
pub(crate) struct Collected {
    pub(crate) inventories: Vec<Named<InventorySpec>>,
    pub(crate) virtualized: Vec<Named<VirtualizedSpec>>,
    pub(crate) bare_metal: Vec<Named<BareMetalSpec>>,
    pub(crate) clusters: Vec<Named<ClusterSpec>>,
    pub(crate) vm_sets: Vec<Named<VmSetSpec>>,
    pub(crate) scenarios: Vec<Named<ScenarioSpec>>,
    pub(crate) price_sheets: Vec<Named<PriceSheetSpec>>,
    pub(crate) calibrations: Vec<Named<CalibrationSpec>>,
    pub(crate) workloads: Vec<PendingWorkload>,
    pub(crate) budgets: Vec<PendingBudget>,
    pub(crate) storage_classes: Vec<(String, bool)>,
    pub(crate) skipped: Vec<(String, Location)>,
    /// Whether any document said `kind: Inventory`, valid or not, or a syntax error hid
    /// the rest of a file (which may hold one).
    pub(crate) inventory_attempted: bool,
    /// Documents that said `kind: Cluster`, valid or not.
    pub(crate) cluster_documents: usize,
}

/// Parses every source of `input` and types every document.
pub(crate) fn collect(input: &Input, diags: &mut Diagnostics) -> Collected {
    let mut out = Collected::default();
    for source in &input.sources {
        let (docs, syntax_error) = parse_documents(source);
        for doc in &docs {
            type_document(doc, &source.name, &mut out, diags);
        }
        if let Some(d) = syntax_error {
            out.inventory_attempted = true;
            diags.push(d);
        }
    }
    out
}

fn str_at<'a>(doc: &'a Document, pointer: &str) -> Option<&'a str> {
    doc.value.pointer(pointer).and_then(Value::as_str)
}

fn plinth<S: DeserializeOwned>(
    schema: &TypeSchema,
    doc: &Document,
    diags: &mut Diagnostics,
) -> Option<Named<S>> {
    let m: Manifest<S> = decode(schema, doc, "", &doc.value, diags)?;
    if m.metadata.name.trim().is_empty() {
        diags.push(
            Diagnostic::error(
                doc.index.value("/metadata/name"),
                "`metadata.name` is empty",
            )
            .with_help("give the object a name"),
        );
        return None;
    }
    Some(Named {
        name: m.metadata.name,
        spec: m.spec,
        location: doc.start.clone(),
        index: Arc::new(doc.index.clone()),
    })
}

fn type_document(doc: &Document, source: &Arc<str>, out: &mut Collected, diags: &mut Diagnostics) {
    if !doc.value.is_object() {
        diags.push(Diagnostic::error(
            doc.start.clone(),
            "a document must be a mapping with `apiVersion`, `kind`, `metadata` and `spec`",
        ));
        return;
    }
    let Some(kind) = str_at(doc, "/kind") else {
        diags.push(
            Diagnostic::error(doc.index.key("/kind"), "missing `kind`")
                .with_help("add `kind:`, e.g. `kind: Cluster` or `kind: Deployment`"),
        );
        return;
    };
    let api_version = str_at(doc, "/apiVersion").unwrap_or_default();
    let schemas = &*SCHEMAS;
    if PLINTH_KINDS.contains(&kind) {
        if api_version != API_VERSION {
            diags.push(
                Diagnostic::error(
                    doc.index.value("/apiVersion"),
                    format!("`{kind}` is a Plinth kind, but apiVersion is `{api_version}`"),
                )
                .with_help(format!("write `apiVersion: {API_VERSION}`")),
            );
            return;
        }
        match kind {
            "Inventory" => {
                out.inventory_attempted = true;
                out.inventories
                    .extend(plinth(&schemas.inventory, doc, diags));
            }
            "Environment" => type_environment(doc, out, diags),
            "Cluster" => {
                out.cluster_documents += 1;
                out.clusters.extend(plinth(&schemas.cluster, doc, diags));
            }
            "VirtualMachineSet" => out.vm_sets.extend(plinth(&schemas.vm_set, doc, diags)),
            "Scenario" => out.scenarios.extend(plinth(&schemas.scenario, doc, diags)),
            "PriceSheet" => out
                .price_sheets
                .extend(plinth(&schemas.price_sheet, doc, diags)),
            _ => out
                .calibrations
                .extend(plinth(&schemas.calibration, doc, diags)),
        }
        return;
    }
    if let Some((_, expected)) = KUBERNETES_KINDS.iter().find(|(k, _)| *k == kind) {
        if api_version != *expected {
            diags.push(
                Diagnostic::error(
                    doc.index.value("/apiVersion"),
                    format!("`{kind}` needs apiVersion `{expected}`, found `{api_version}`"),
                )
                .with_help(format!("write `apiVersion: {expected}`")),
            );
            return;
        }
        type_kubernetes(kind, doc, source, out, diags);
        return;
    }
    if kind == "List" {
        diags.push(
            Diagnostic::error(doc.index.value("/kind"), "a `List` is not read: its items would be skipped silently")
                .with_help("write each item as its own document, separated by `---` (e.g. `kubectl get deploy -o yaml | yq '.items[] | split_doc'`)"),
        );
        return;
    }
    if SKIPPED_KINDS.contains(&kind) {
        diags.push(Diagnostic::note(
            doc.start.clone(),
            format!("skipped `{kind}`: it does not change node infrastructure"),
        ));
        out.skipped.push((kind.to_owned(), doc.start.clone()));
        return;
    }
    let known = PLINTH_KINDS
        .iter()
        .copied()
        .chain(KUBERNETES_KINDS.iter().map(|(k, _)| *k))
        .chain(SKIPPED_KINDS.iter().copied());
    let mut d = Diagnostic::error(doc.index.value("/kind"), format!("unknown kind `{kind}`"));
    d = match did_you_mean(kind, known) {
        Some(near) => d.with_help(format!("did you mean `{near}`?")),
        None => d.with_help(format!(
            "Plinth reads {} and the Kubernetes kinds {}",
            PLINTH_KINDS.join(", "),
            KUBERNETES_KINDS.map(|(k, _)| k).join(", ")
        )),
    };
    diags.push(d);
}

fn type_environment(doc: &Document, out: &mut Collected, diags: &mut Diagnostics) {
    let schemas = &*SCHEMAS;
    match str_at(doc, "/spec/type") {
        Some("virtualized") => out
            .virtualized
            .extend(plinth(&schemas.virtualized, doc, diags)),
        Some("bareMetal") => out
            .bare_metal
            .extend(plinth(&schemas.bare_metal, doc, diags)),
        other => {
            let found = other.map_or_else(|| "nothing".to_owned(), |t| format!("`{t}`"));
            let mut d = Diagnostic::error(
                doc.index.value("/spec/type"),
                format!("`spec.type` must be `virtualized` or `bareMetal`, found {found}"),
            );
            if let Some(near) =
                other.and_then(|t| did_you_mean(t, ["virtualized", "bareMetal", "bare-metal"]))
            {
                d = d.with_help(format!(
                    "did you mean `{}`?",
                    if near == "bare-metal" {
                        "bareMetal"
                    } else {
                        near
                    }
                ));
            }
            diags.push(d);
        }
    }
    // Keep the type check honest: the decoded `type` field agrees with the dispatch.
    debug_assert!(
        out.virtualized
            .iter()
            .all(|e| e.spec.kind == EnvironmentType::Virtualized)
    );
}

/// What every workload kind shares once its own shape is unpacked.
struct Unpacked<'a> {
    kind: WorkloadKind,
    meta: &'a ObjectMeta,
    replicas: Option<i32>,
    template: Option<&'a PodTemplateSpec>,
    template_pointer: &'static str,
    claims: Vec<Option<String>>,
    schedule: Option<String>,
}

fn type_kubernetes(
    kind: &str,
    doc: &Document,
    source: &Arc<str>,
    out: &mut Collected,
    diags: &mut Diagnostics,
) {
    let s = &*SCHEMAS;
    match kind {
        "Deployment" => {
            let Some(d) = decode::<Deployment>(&s.deployment, doc, "", &doc.value, diags) else {
                return;
            };
            let spec = d.spec.as_ref();
            let u = Unpacked {
                kind: WorkloadKind::Deployment,
                meta: &d.metadata,
                replicas: spec.and_then(|s| s.replicas),
                template: spec.map(|s| &s.template),
                template_pointer: "/spec/template",
                claims: Vec::new(),
                schedule: None,
            };
            push_workload(u, doc, source, out, diags);
        }
        "ReplicaSet" => {
            let Some(d) = decode::<ReplicaSet>(&s.replica_set, doc, "", &doc.value, diags) else {
                return;
            };
            let spec = d.spec.as_ref();
            let u = Unpacked {
                kind: WorkloadKind::ReplicaSet,
                meta: &d.metadata,
                replicas: spec.and_then(|s| s.replicas),
                template: spec.and_then(|s| s.template.as_ref()),
                template_pointer: "/spec/template",
                claims: Vec::new(),
                schedule: None,
            };
            push_workload(u, doc, source, out, diags);
        }
        "StatefulSet" => {
            let Some(d) = decode::<StatefulSet>(&s.stateful_set, doc, "", &doc.value, diags) else {
                return;
            };
            let spec = d.spec.as_ref();
            let claims = spec
                .and_then(|s| s.volume_claim_templates.as_ref())
                .into_iter()
                .flatten()
                .map(|c| c.spec.as_ref().and_then(|s| s.storage_class_name.clone()))
                .collect();
            let u = Unpacked {
                kind: WorkloadKind::StatefulSet,
                meta: &d.metadata,
                replicas: spec.and_then(|s| s.replicas),
                template: spec.map(|s| &s.template),
                template_pointer: "/spec/template",
                claims,
                schedule: None,
            };
            push_workload(u, doc, source, out, diags);
        }
        "DaemonSet" => {
            let Some(d) = decode::<DaemonSet>(&s.daemon_set, doc, "", &doc.value, diags) else {
                return;
            };
            let u = Unpacked {
                kind: WorkloadKind::DaemonSet,
                meta: &d.metadata,
                replicas: Some(0),
                template: d.spec.as_ref().map(|s| &s.template),
                template_pointer: "/spec/template",
                claims: Vec::new(),
                schedule: None,
            };
            push_workload(u, doc, source, out, diags);
        }
        "Job" => {
            let Some(d) = decode::<Job>(&s.job, doc, "", &doc.value, diags) else {
                return;
            };
            let spec = d.spec.as_ref();
            let u = Unpacked {
                kind: WorkloadKind::Job,
                meta: &d.metadata,
                replicas: spec.and_then(|s| s.parallelism),
                template: spec.map(|s| &s.template),
                template_pointer: "/spec/template",
                claims: Vec::new(),
                schedule: None,
            };
            push_workload(u, doc, source, out, diags);
        }
        "CronJob" => {
            let Some(d) = decode::<CronJob>(&s.cron_job, doc, "", &doc.value, diags) else {
                return;
            };
            let job = d.spec.as_ref().and_then(|s| s.job_template.spec.as_ref());
            let u = Unpacked {
                kind: WorkloadKind::CronJob,
                meta: &d.metadata,
                replicas: job.and_then(|s| s.parallelism),
                template: job.map(|s| &s.template),
                template_pointer: "/spec/jobTemplate/spec/template",
                claims: Vec::new(),
                schedule: d.spec.as_ref().map(|s| s.schedule.clone()),
            };
            push_workload(u, doc, source, out, diags);
        }
        "Pod" => {
            let Some(p) = decode::<Pod>(&s.pod, doc, "", &doc.value, diags) else {
                return;
            };
            let template = PodTemplateSpec {
                metadata: Some(p.metadata.clone()),
                spec: p.spec.clone(),
            };
            let u = Unpacked {
                kind: WorkloadKind::Pod,
                meta: &p.metadata,
                replicas: Some(1),
                template: Some(&template),
                template_pointer: "",
                claims: Vec::new(),
                schedule: None,
            };
            push_workload(u, doc, source, out, diags);
        }
        "PodDisruptionBudget" => {
            let Some(p) = decode::<PodDisruptionBudget>(&s.pdb, doc, "", &doc.value, diags) else {
                return;
            };
            let Some(name) = named(&p.metadata, doc, diags) else {
                return;
            };
            let spec = p.spec.unwrap_or_default();
            let text = |v: Option<IntOrString>| {
                v.map(|v| match v {
                    IntOrString::Int(i) => i.to_string(),
                    IntOrString::String(s) => s,
                })
            };
            let budget = DisruptionBudget {
                cluster: String::new(),
                namespace: p
                    .metadata
                    .namespace
                    .clone()
                    .unwrap_or_else(|| "default".into()),
                name,
                selector: spec.selector,
                min_available: text(spec.min_available),
                max_unavailable: text(spec.max_unavailable),
                location: doc.start.clone(),
            };
            out.budgets.push(PendingBudget {
                budget,
                label: cluster_label(&p.metadata, doc),
                source: source.clone(),
            });
        }
        _ => {
            let Some(c) = decode::<StorageClass>(&s.storage_class, doc, "", &doc.value, diags)
            else {
                return;
            };
            let Some(name) = named(&c.metadata, doc, diags) else {
                return;
            };
            let local = workload::NODE_LOCAL_PROVISIONERS.contains(&c.provisioner.as_str());
            out.storage_classes.push((name, local));
        }
    }
}

fn named(meta: &ObjectMeta, doc: &Document, diags: &mut Diagnostics) -> Option<String> {
    match meta.name.as_deref().filter(|n| !n.trim().is_empty()) {
        Some(n) => Some(n.to_owned()),
        None => {
            diags.push(
                Diagnostic::error(doc.index.key("/metadata/name"), "missing `metadata.name`")
                    .with_help("give the object a name"),
            );
            None
        }
    }
}

fn cluster_label(meta: &ObjectMeta, doc: &Document) -> Option<(String, Location)> {
    let value = meta.labels.as_ref()?.get(workload::CLUSTER_LABEL)?;
    let pointer = crate::yaml::push_pointer("/metadata/labels", workload::CLUSTER_LABEL);
    Some((value.clone(), doc.index.value(&pointer)))
}

/// Reads one annotation with `parse`, reporting a bad value at its place.
fn annotation<T>(
    meta: &ObjectMeta,
    key: &str,
    doc: &Document,
    diags: &mut Diagnostics,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Option<T> {
    let text = meta.annotations.as_ref()?.get(key)?;
    match parse(text) {
        Ok(v) => Some(v),
        Err(e) => {
            let at = doc
                .index
                .value(&crate::yaml::push_pointer("/metadata/annotations", key));
            diags.push(Diagnostic::error(at, format!("annotation `{key}`: {e}")));
            None
        }
    }
}

fn fraction(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(v) if (0.0..=10.0).contains(&v) => Ok(v),
        _ => Err(format!(
            "`{text}` is not a fraction of requests (0 to 10, e.g. 0.4)"
        )),
    }
}

fn usage(meta: &ObjectMeta, doc: &Document, diags: &mut Diagnostics) -> UsageProfile {
    let mut usage = UsageProfile::default();
    if let Some(v) = annotation(meta, workload::USAGE_MEAN_ANNOTATION, doc, diags, fraction) {
        usage.mean = v;
    }
    if let Some(v) = annotation(meta, workload::USAGE_PEAK_ANNOTATION, doc, diags, fraction) {
        usage.peak = v;
    }
    let window = annotation(
        meta,
        workload::USAGE_PEAK_HOURS_ANNOTATION,
        doc,
        diags,
        |t| {
            let probe = UsageProfile {
                peak_hours: t.to_owned(),
                ..UsageProfile::default()
            };
            probe.peak_window().map(|_| t.to_owned())
        },
    );
    if let Some(w) = window {
        usage.peak_hours = w;
    }
    usage
}

fn push_workload(
    u: Unpacked<'_>,
    doc: &Document,
    source: &Arc<str>,
    out: &mut Collected,
    diags: &mut Diagnostics,
) {
    let Some(name) = named(u.meta, doc, diags) else {
        return;
    };
    let Some(spec): Option<&PodSpec> = u.template.and_then(|t| t.spec.as_ref()) else {
        let at = doc.index.key(u.template_pointer);
        let place = if u.template_pointer.is_empty() {
            "spec".to_owned()
        } else {
            format!("{}/spec", u.template_pointer.trim_start_matches('/'))
        };
        diags.push(
            Diagnostic::error(
                at,
                format!("`{kind}` `{name}` has no pod spec", kind = u.kind),
            )
            .with_help(format!(
                "add `{}` with its containers",
                place.replace('/', ".")
            )),
        );
        return;
    };
    let spec_pointer = format!("{}/spec", u.template_pointer);
    let requests = match workload::pod_requests(spec) {
        Ok(r) => r,
        Err((pointer, text)) => {
            let at = doc.index.value(&format!("{spec_pointer}{pointer}"));
            diags.push(
                Diagnostic::error(at, format!("`{text}` is not a quantity"))
                    .with_help("write e.g. `250m` or `2` for CPU, `64Mi` or `1.5G` for memory"),
            );
            return;
        }
    };
    for (pointer, name) in workload::unknown_resource_names(spec) {
        let at = doc.index.key(&format!("{spec_pointer}{pointer}"));
        let d = Diagnostic::error(at, format!("unknown resource `{name}`"));
        diags.push(match did_you_mean(&name, workload::RESOURCE_NAMES) {
            Some(near) => d.with_help(format!("did you mean `{near}`?")),
            None => d.with_help("Kubernetes resources are cpu, memory, ephemeral-storage, hugepages-<size> or a vendor's `domain/name`"),
        });
    }
    let replicas = match u.replicas.unwrap_or(1) {
        r if r >= 0 => r.unsigned_abs(),
        r => {
            diags.push(Diagnostic::error(
                doc.index.value("/spec/replicas"),
                format!("replicas must not be negative, found {r}"),
            ));
            return;
        }
    };
    let storage_annotation =
        annotation(
            u.meta,
            workload::STORAGE_ANNOTATION,
            doc,
            diags,
            |t| match t {
                "shared" => Ok(VolumeStorage::Shared),
                "local" => Ok(VolumeStorage::Local),
                _ => Err(format!("`{t}` must be `shared` or `local`")),
            },
        );
    let is_job = matches!(u.kind, WorkloadKind::Job | WorkloadKind::CronJob);
    let run_duration = annotation(u.meta, workload::DURATION_ANNOTATION, doc, diags, |t| {
        t.parse::<Duration>()
    })
    .or(is_job.then_some(workload::DEFAULT_JOB_DURATION));
    let mut claims = u.claims;
    let mut host_path = false;
    for v in spec.volumes.iter().flatten() {
        if v.persistent_volume_claim.is_some() {
            claims.push(None);
        }
        host_path |= v.host_path.is_some();
    }
    let workload = Workload {
        id: WorkloadId {
            cluster: String::new(),
            namespace: u.meta.namespace.clone().unwrap_or_else(|| "default".into()),
            kind: u.kind,
            name,
        },
        replicas,
        pod_labels: u
            .template
            .and_then(|t| t.metadata.as_ref())
            .and_then(|m| m.labels.clone())
            .unwrap_or_default(),
        pod: spec.clone(),
        requests,
        storage: workload::PodStorage::Stateless,
        usage: usage(u.meta, doc, diags),
        run_duration,
        schedule: u.schedule,
        location: doc.start.clone(),
    };
    out.workloads.push(PendingWorkload {
        workload,
        label: cluster_label(u.meta, doc),
        source: source.clone(),
        claims,
        host_path,
        storage_annotation,
    });
}
