//! Every document of an input → a typed document, or diagnostics saying why not.
//!
//! Dispatch is by `kind` and `apiVersion`: Plinth's kinds, the Kubernetes workload kinds
//! Plinth reads, `List`s read item by item, and everything else a real install holds —
//! objects that run no pods, custom resources — skipped with a note that reports
//! summarise per kind. Only a mistake is an error: an unknown `plinth.dev` kind, a known
//! kind under the wrong apiVersion, a typo of a workload kind.

use std::sync::{Arc, LazyLock};

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Pod, PodSpec, PodTemplateSpec};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::decode::{TypeSchema, decode};
use crate::diag::{Diagnostic, Diagnostics, Topic, did_you_mean};
use crate::estate::{Input, Named};
use crate::kinds::calibration::CalibrationSpec;
use crate::kinds::cluster::ClusterSpec;
use crate::kinds::environment::{BareMetalSpec, EnvironmentType, VirtualizedSpec};
use crate::kinds::inventory::InventorySpec;
use crate::kinds::price_sheet::PriceSheetSpec;
use crate::kinds::scenario::ScenarioSpec;
use crate::kinds::vm_set::VmSetSpec;
use crate::kinds::{API_VERSION, Manifest, UsageProfile, VolumeStorage};
use crate::names::NameRule;
use crate::quantity::Duration;
use crate::source::{Location, SourceFile};
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

/// The suffix of list kinds, read item by item: `List` itself, and `DeploymentList`-style
/// lists whose items may leave out their own kind.
pub const LIST_SUFFIX: &str = "List";

/// API groups Kubernetes builds in whose names hold a dot. Every group without a dot
/// (the core group, `apps`, `batch`, `policy`, `autoscaling`, …) is built in too: a
/// custom resource's group must hold one, so any other group is a custom resource's.
pub const BUILT_IN_GROUPS: [&str; 18] = [
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "apiregistration.k8s.io",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "certificates.k8s.io",
    "coordination.k8s.io",
    "discovery.k8s.io",
    "events.k8s.io",
    "flowcontrol.apiserver.k8s.io",
    "internal.apiserver.k8s.io",
    "networking.k8s.io",
    "node.k8s.io",
    "rbac.authorization.k8s.io",
    "resource.k8s.io",
    "scheduling.k8s.io",
    "storage.k8s.io",
    "storagemigration.k8s.io",
];

/// Built-in Kubernetes kinds Plinth does not read (they run no pods, or, for the legacy
/// ReplicationController, none Plinth models): skipped, summarised one line per kind.
/// Knowing them keeps a real kind from being taken for a typo of a workload kind.
pub const SKIPPED_KINDS: [&str; 52] = [
    "APIService",
    "Binding",
    "CertificateSigningRequest",
    "ClusterRole",
    "ClusterRoleBinding",
    "ClusterTrustBundle",
    "ComponentStatus",
    "ConfigMap",
    "ControllerRevision",
    "CSIDriver",
    "CSINode",
    "CSIStorageCapacity",
    "CustomResourceDefinition",
    "DeviceClass",
    "Endpoints",
    "EndpointSlice",
    "Event",
    "FlowSchema",
    "HorizontalPodAutoscaler",
    "Ingress",
    "IngressClass",
    "IPAddress",
    "Lease",
    "LimitRange",
    "MutatingAdmissionPolicy",
    "MutatingAdmissionPolicyBinding",
    "MutatingWebhookConfiguration",
    "Namespace",
    "NetworkPolicy",
    "Node",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "PodTemplate",
    "PriorityClass",
    "PriorityLevelConfiguration",
    "ReplicationController",
    "ResourceClaim",
    "ResourceClaimTemplate",
    "ResourceQuota",
    "ResourceSlice",
    "Role",
    "RoleBinding",
    "RuntimeClass",
    "Secret",
    "Service",
    "ServiceAccount",
    "ServiceCIDR",
    "StorageVersionMigration",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "ValidatingWebhookConfiguration",
    "VolumeAttachment",
];

/// Plinth's API group.
const PLINTH_GROUP: &str = "plinth.dev";

/// The API group of an apiVersion: `apps` of `apps/v1`, empty for the core group (`v1`).
fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(g, _)| g)
}

/// True when Kubernetes builds the group in (see [`BUILT_IN_GROUPS`]).
fn built_in_group(group: &str) -> bool {
    !group.contains('.') || BUILT_IN_GROUPS.contains(&group)
}

/// Where an object's own diagnostics point: its `kind:` line (or its first line when it
/// has no kind), never the `---` before it.
fn object_at(doc: &Document) -> Location {
    doc.index.key("/kind")
}

/// An object as messages name it: `Deployment shop/web`, `ClusterRole ingress-nginx`.
fn object_name(kind: &str, doc: &Document) -> String {
    let name = str_at(doc, "/metadata/name").unwrap_or("(no name)");
    match str_at(doc, "/metadata/namespace") {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    }
}

/// What a document is, decided by its `kind` and `apiVersion`.
enum Class {
    /// One of Plinth's kinds.
    Plinth,
    /// A Kubernetes kind Plinth reads.
    Kubernetes,
    /// `List` or `*List`: its items are read one by one.
    List,
    /// Runs no pods, or is a custom resource: skipped, summarised.
    Skipped {
        /// A custom resource.
        custom: bool,
    },
    /// A mistake.
    Refused(Diagnostic),
}

/// Decides what a document of `kind` and `api_version` is. Only a `plinth.dev` kind Plinth
/// does not know, a Plinth or workload kind under the wrong apiVersion, and a typo of a
/// workload kind are mistakes; every other kind is a Kubernetes object that runs no pods
/// or a custom resource, and is skipped.
fn classify(kind: &str, api_version: &str, doc: &Document) -> Class {
    let group = group_of(api_version);
    let plinth_kind = PLINTH_KINDS.contains(&kind);
    let near_plinth = group == PLINTH_GROUP || did_you_mean(group, [PLINTH_GROUP]).is_some();
    if plinth_kind && (built_in_group(group) || near_plinth) {
        if api_version == API_VERSION {
            return Class::Plinth;
        }
        return Class::Refused(
            Diagnostic::error(
                doc.index.value("/apiVersion"),
                format!("`{kind}` is a Plinth kind, but apiVersion is `{api_version}`"),
            )
            .with_help(format!("write `apiVersion: {API_VERSION}`")),
        );
    }
    if group == PLINTH_GROUP {
        let d = Diagnostic::error(doc.index.value("/kind"), format!("unknown kind `{kind}`"));
        // Only a near spelling is suggested: a custom resource put under Plinth's group by
        // mistake (`Prometheus`) is not a misspelt `PriceSheet`.
        let near = did_you_mean(kind, PLINTH_KINDS)
            .filter(|k| strsim::levenshtein(&kind.to_lowercase(), &k.to_lowercase()) <= 2);
        return Class::Refused(match near {
            Some(near) => d.with_help(format!("did you mean `{near}`?")),
            None => d.with_help(format!("Plinth's kinds are {}", PLINTH_KINDS.join(", "))),
        });
    }
    if !built_in_group(group) {
        return Class::Skipped { custom: true };
    }
    if let Some((_, expected)) = KUBERNETES_KINDS.iter().find(|(k, _)| *k == kind) {
        if api_version == *expected {
            return Class::Kubernetes;
        }
        return Class::Refused(
            Diagnostic::error(
                doc.index.value("/apiVersion"),
                format!("`{kind}` needs apiVersion `{expected}`, found `{api_version}`"),
            )
            .with_help(format!("write `apiVersion: {expected}`")),
        );
    }
    if kind.ends_with(LIST_SUFFIX) {
        return Class::List;
    }
    if !SKIPPED_KINDS.contains(&kind)
        && let Some(near) = did_you_mean(kind, KUBERNETES_KINDS.iter().map(|(k, _)| *k))
    {
        return Class::Refused(
            Diagnostic::error(doc.index.value("/kind"), format!("unknown kind `{kind}`"))
                .with_help(format!("did you mean `{near}`?")),
        );
    }
    Class::Skipped { custom: false }
}

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
    /// Its required pod affinity and anti-affinity terms, checked once all are bound.
    pub(crate) required_terms: Vec<RequiredTerm>,
}

/// A required pod affinity or anti-affinity term: which pods it selects, and where.
#[derive(Debug)]
pub(crate) struct RequiredTerm {
    /// Anti-affinity (true) or affinity.
    pub(crate) anti: bool,
    /// Its `labelSelector`.
    pub(crate) selector: LabelSelector,
    /// The namespaces it looks in; `None`: every namespace (it has a `namespaceSelector`).
    pub(crate) namespaces: Option<Vec<String>>,
    /// Where its `labelSelector` was written.
    pub(crate) at: Location,
}

/// A PodDisruptionBudget whose cluster is not decided yet.
#[derive(Debug)]
pub(crate) struct PendingBudget {
    pub(crate) budget: DisruptionBudget,
    /// Where its `selector` was written.
    pub(crate) selector_at: Location,
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
        if let Some(d) = helm_template(source) {
            // The file may hold anything once rendered, an Inventory too.
            out.inventory_attempted = true;
            diags.push(d);
            continue;
        }
        let (docs, syntax_error) = parse_documents(source);
        for doc in &docs {
            type_document(doc, &source.name, &mut out, diags);
        }
        if let Some(mut d) = syntax_error {
            out.inventory_attempted = true;
            if d.help.is_none() && source.text.contains("{{") {
                d = d.with_help("`{{` is template syntax: render the template first (`helm template RELEASE CHART`) and pass its output");
            }
            diags.push(d);
        }
    }
    out
}

/// What only a Helm chart's templates say inside `{{ }}`: its built-in objects and
/// functions. Other `{{ }}` (an alerting rule's `{{ $labels.instance }}` in a ConfigMap)
/// are ordinary text.
const HELM_MARKERS: [&str; 9] = [
    ".Values",
    ".Release",
    ".Chart",
    ".Capabilities",
    ".Files",
    ".Template",
    "include ",
    "toYaml",
    "nindent",
];

/// Refuses a Helm template: the place of its first Helm action, with the fix.
fn helm_template(source: &SourceFile) -> Option<Diagnostic> {
    let text = &*source.text;
    let mut from = 0;
    while let Some(open) = text[from..].find("{{").map(|i| from + i) {
        let close = text[open..].find("}}").map(|i| open + i + 2)?;
        let action = &text[open..close];
        if HELM_MARKERS.iter().any(|m| action.contains(m)) {
            let before = &text[..open];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
            let at = Location::new(
                source.name.clone(),
                u32::try_from(line).unwrap_or(u32::MAX),
                u32::try_from(column).unwrap_or(u32::MAX),
            );
            let shown: String = action.chars().take(60).collect();
            return Some(
                Diagnostic::error(
                    at,
                    format!("`{shown}` is Helm template syntax: this file is a chart's template, not a manifest"),
                )
                .with_help("render the chart first and pass its output: `helm template RELEASE CHART > rendered.yaml`, or `helm template RELEASE CHART | plinth validate -`"),
            );
        }
        from = close;
    }
    None
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
    if let Some(d) = crate::names::diagnostic(&m.metadata.name, NameRule::Label, "name", || {
        doc.index.value("/metadata/name")
    }) {
        diags.push(d);
    }
    Some(Named {
        name: m.metadata.name,
        spec: m.spec,
        location: object_at(doc),
        index: Arc::new(doc.index.clone()),
    })
}

fn type_document(doc: &Document, source: &Arc<str>, out: &mut Collected, diags: &mut Diagnostics) {
    type_object(doc, source, out, diags, true);
}

/// Types one object: a document, or an item of a `List` (`list_allowed` false: Lists do
/// not nest).
fn type_object(
    doc: &Document,
    source: &Arc<str>,
    out: &mut Collected,
    diags: &mut Diagnostics,
    list_allowed: bool,
) {
    if !doc.value.is_object() {
        diags.push(Diagnostic::error(
            object_at(doc),
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
    match classify(kind, api_version, doc) {
        Class::Refused(d) => diags.push(d),
        Class::Kubernetes => type_kubernetes(kind, doc, source, out, diags),
        Class::List if list_allowed => type_list(kind, api_version, doc, source, out, diags),
        Class::List => diags.push(
            Diagnostic::error(object_at(doc), format!("a `{kind}` inside a List"))
                .with_help("Kubernetes does not nest Lists: move its items up into the outer List"),
        ),
        Class::Skipped { custom } => {
            let what = if custom { ", custom resource" } else { "" };
            diags.push(
                Diagnostic::note(
                    object_at(doc),
                    format!("skipped {} ({api_version}{what})", object_name(kind, doc)),
                )
                .with_topic(Topic::Skipped {
                    kind: kind.to_owned(),
                    api_version: api_version.to_owned(),
                    custom,
                }),
            );
        }
        Class::Plinth => match kind {
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
        },
    }
}

/// Reads the items of a `List` or `*List` as objects of their own. The items of a
/// `DeploymentList` may leave out their kind and apiVersion: they are the list's.
fn type_list(
    kind: &str,
    api_version: &str,
    doc: &Document,
    source: &Arc<str>,
    out: &mut Collected,
    diags: &mut Diagnostics,
) {
    let items = match doc.value.get("items") {
        None | Some(Value::Null) => return,
        Some(Value::Array(items)) => items,
        Some(_) => {
            diags.push(Diagnostic::error(
                doc.index.value("/items"),
                format!("`items` of a `{kind}` must be a list"),
            ));
            return;
        }
    };
    let item_kind = kind.strip_suffix(LIST_SUFFIX).filter(|k| !k.is_empty());
    let indexes = doc.index.split_items("/items", items.len());
    for (item, index) in items.iter().zip(indexes) {
        let mut value = item.clone();
        if let (Some(k), Some(map)) = (item_kind, value.as_object_mut()) {
            map.entry("kind").or_insert_with(|| Value::from(k));
            map.entry("apiVersion")
                .or_insert_with(|| Value::from(api_version));
        }
        let start = index.value("");
        let item_doc = Document {
            value,
            index,
            start,
        };
        type_object(&item_doc, source, out, diags, false);
    }
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
    /// Where `replicas` (or `parallelism`) is written.
    replicas_pointer: &'static str,
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
                replicas_pointer: "/spec/replicas",
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
                replicas_pointer: "/spec/replicas",
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
                replicas_pointer: "/spec/replicas",
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
                replicas_pointer: "/spec/replicas",
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
                replicas_pointer: "/spec/parallelism",
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
                replicas_pointer: "/spec/jobTemplate/spec/parallelism",
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
                replicas_pointer: "/spec/replicas",
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
                location: object_at(doc),
            };
            out.budgets.push(PendingBudget {
                budget,
                selector_at: doc.index.key("/spec/selector"),
                label: cluster_label(&p.metadata, doc, diags),
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
    if let Some(d) = meta.namespace.as_deref().and_then(|ns| {
        crate::names::diagnostic(ns, NameRule::Label, "namespace", || {
            doc.index.value("/metadata/namespace")
        })
    }) {
        diags.push(d);
    }
    match meta.name.as_deref().filter(|n| !n.trim().is_empty()) {
        Some(n) => {
            if let Some(d) = crate::names::diagnostic(n, NameRule::Subdomain, "name", || {
                doc.index.value("/metadata/name")
            }) {
                diags.push(d);
            }
            Some(n.to_owned())
        }
        None => {
            diags.push(
                Diagnostic::error(doc.index.key("/metadata/name"), "missing `metadata.name`")
                    .with_help("give the object a name"),
            );
            None
        }
    }
}

/// A workload's `plinth.dev/cluster` label and where it is; a value that cannot be a
/// cluster's name (a DNS-1123 label) is an error, and no binding.
fn cluster_label(
    meta: &ObjectMeta,
    doc: &Document,
    diags: &mut Diagnostics,
) -> Option<(String, Location)> {
    let value = meta.labels.as_ref()?.get(workload::CLUSTER_LABEL)?;
    let pointer = crate::yaml::push_pointer("/metadata/labels", workload::CLUSTER_LABEL);
    let at = doc.index.value(&pointer);
    if let Some(d) =
        crate::names::diagnostic(value, NameRule::Label, "cluster label", || at.clone())
    {
        diags.push(d);
        return None;
    }
    Some((value.clone(), at))
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
        Err((pointer, error)) => {
            let at = doc.index.value(&format!("{spec_pointer}{pointer}"));
            diags.push(Diagnostic::error(at, error.to_string()));
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
    let written = i64::from(u.replicas.unwrap_or(1));
    let replicas = match u32::try_from(written) {
        Ok(r) if crate::ranges::REPLICAS.contains(written) => r,
        _ => {
            diags.push(crate::ranges::out_of_range(
                doc.index.value(u.replicas_pointer),
                &crate::ranges::field_name(u.replicas_pointer),
                written,
                &crate::ranges::REPLICAS,
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
    for (i, c) in spec
        .topology_spread_constraints
        .iter()
        .flatten()
        .enumerate()
    {
        if c.max_skew < 1 {
            diags.push(
                Diagnostic::error(
                    doc.index.value(&format!(
                        "{spec_pointer}/topologySpreadConstraints/{i}/maxSkew"
                    )),
                    format!("`maxSkew` is {}, expected 1 or more", c.max_skew),
                )
                .with_help("Kubernetes refuses a skew below 1: 1 spreads evenly"),
            );
        }
    }
    let namespace = u.meta.namespace.clone().unwrap_or_else(|| "default".into());
    let required_terms = required_terms(spec, &spec_pointer, &namespace, doc);
    let workload = Workload {
        id: WorkloadId {
            cluster: String::new(),
            namespace,
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
        location: object_at(doc),
    };
    if requests.cpu_millis == 0 && requests.memory_bytes == 0 {
        diags.push(
            Diagnostic::warning(
                object_at(doc),
                format!(
                    "{} requests no CPU or memory: its pods are BestEffort and are planned with zero requests",
                    workload.id.object()
                ),
            )
            .with_help("set `resources.requests` on its containers")
            .with_topic(Topic::NoRequests),
        );
    }
    out.workloads.push(PendingWorkload {
        required_terms,
        workload,
        label: cluster_label(u.meta, doc, diags),
        source: source.clone(),
        claims,
        host_path,
        storage_annotation,
    });
}

/// The required pod affinity and anti-affinity terms of `spec` (at `spec_pointer`) with a
/// label selector, for the check that each selects some pod.
fn required_terms(
    spec: &PodSpec,
    spec_pointer: &str,
    namespace: &str,
    doc: &Document,
) -> Vec<RequiredTerm> {
    let Some(affinity) = spec.affinity.as_ref() else {
        return Vec::new();
    };
    let required = "requiredDuringSchedulingIgnoredDuringExecution";
    let anti = affinity
        .pod_anti_affinity
        .as_ref()
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        })
        .map(|terms| (true, "podAntiAffinity", terms));
    let pro = affinity
        .pod_affinity
        .as_ref()
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        })
        .map(|terms| (false, "podAffinity", terms));
    let mut out = Vec::new();
    for (anti, field, terms) in anti.into_iter().chain(pro) {
        for (i, term) in terms.iter().enumerate() {
            let Some(selector) = term.label_selector.clone() else {
                continue;
            };
            let namespaces = match (&term.namespace_selector, &term.namespaces) {
                (Some(_), _) => None,
                (None, Some(list)) if !list.is_empty() => Some(list.clone()),
                (None, _) => Some(vec![namespace.to_owned()]),
            };
            out.push(RequiredTerm {
                anti,
                selector,
                namespaces,
                at: doc.index.key(&format!(
                    "{spec_pointer}/affinity/{field}/{required}/{i}/labelSelector"
                )),
            });
        }
    }
    out
}
