//! The user's plain Kubernetes workloads, read with the k8s-openapi types and reduced to
//! what placement and simulation need: a pod template, its requests, a replica count,
//! storage, a usage profile, and the cluster it belongs to.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::core::v1::{PodSpec, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use crate::kinds::{UsageProfile, VolumeStorage};
use crate::quantity::{Duration, KubeQuantity, QuantityError};
use crate::source::Location;
use crate::units::Resources;

/// Annotation that says where a workload's volumes live: `shared` or `local`.
pub const STORAGE_ANNOTATION: &str = "plinth.dev/storage";
/// Annotation: mean use as a fraction of requests.
pub const USAGE_MEAN_ANNOTATION: &str = "plinth.dev/usage-mean";
/// Annotation: peak use as a fraction of requests.
pub const USAGE_PEAK_ANNOTATION: &str = "plinth.dev/usage-peak";
/// Annotation: the daily peak window, `HH-HH`.
pub const USAGE_PEAK_HOURS_ANNOTATION: &str = "plinth.dev/usage-peak-hours";
/// Annotation: how long one run of a Job takes.
pub const DURATION_ANNOTATION: &str = "plinth.dev/duration";
/// Label that binds a workload to a Cluster.
pub const CLUSTER_LABEL: &str = "plinth.dev/cluster";

/// How long a Job runs when it does not say (default 10m; an assumption).
pub const DEFAULT_JOB_DURATION: Duration = Duration(10 * 60 * 1000);

/// Provisioners whose volumes live on one node's disks.
pub const NODE_LOCAL_PROVISIONERS: [&str; 5] = [
    "kubernetes.io/no-provisioner",
    "rancher.io/local-path",
    "topolvm.io",
    "openebs.io/local",
    "local.csi.openebs.io",
];

/// The Kubernetes workload kinds Plinth reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WorkloadKind {
    /// apps/v1 Deployment.
    Deployment,
    /// apps/v1 StatefulSet.
    StatefulSet,
    /// apps/v1 DaemonSet: one pod per eligible node.
    DaemonSet,
    /// apps/v1 ReplicaSet.
    ReplicaSet,
    /// batch/v1 Job: runs `parallelism` pods for its duration.
    Job,
    /// batch/v1 CronJob: a Job started on its schedule.
    CronJob,
    /// v1 Pod.
    Pod,
}

impl fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A workload's identity: (cluster, namespace, kind, name).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkloadId {
    /// The Cluster it runs in.
    pub cluster: String,
    /// Its namespace (`default` when unset).
    pub namespace: String,
    /// Its kind.
    pub kind: WorkloadKind,
    /// Its name.
    pub name: String,
}

impl fmt::Display for WorkloadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}/{}",
            self.cluster, self.namespace, self.kind, self.name
        )
    }
}

impl WorkloadId {
    /// The workload as messages name it: `Deployment shop/web`.
    pub fn object(&self) -> String {
        format!("{} {}/{}", self.kind, self.namespace, self.name)
    }
}

/// A workload reduced to what Plinth models.
#[derive(Clone, Debug, PartialEq)]
pub struct Workload {
    /// Identity.
    pub id: WorkloadId,
    /// Pods wanted (for a DaemonSet: 0, one per eligible node is decided by placement).
    pub replicas: u32,
    /// Labels of its pods.
    pub pod_labels: BTreeMap<String, String>,
    /// The pod spec, with affinity, tolerations, topology spread and node selector.
    pub pod: PodSpec,
    /// Requests of one pod (containers summed; init containers by their maximum; a
    /// container with limits but no requests requests its limits, as Kubernetes defaults).
    pub requests: Resources,
    /// Where its persistent volumes live.
    pub storage: PodStorage,
    /// How much of its requests it uses over a day.
    pub usage: UsageProfile,
    /// For Jobs and CronJobs: how long one run takes.
    pub run_duration: Option<Duration>,
    /// For CronJobs: the schedule, as written.
    pub schedule: Option<String>,
    /// Where the document starts.
    pub location: Location,
}

/// Where a workload's persistent data lives, which decides whether its pods can restart
/// on another node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PodStorage {
    /// No persistent volumes: pods restart anywhere.
    Stateless,
    /// Decided by the annotation, a hostPath volume or a StorageClass.
    Declared(VolumeStorage),
    /// Claims on the default (or an undeclared) StorageClass: the Environment's
    /// `volumeStorage` decides, so it differs between the two designs.
    EnvironmentDefault,
}

impl PodStorage {
    /// The storage in an environment whose default volume storage is `default`.
    pub fn resolve(self, default: VolumeStorage) -> Option<VolumeStorage> {
        match self {
            Self::Stateless => None,
            Self::Declared(s) => Some(s),
            Self::EnvironmentDefault => Some(default),
        }
    }
}

/// A PodDisruptionBudget.
#[derive(Clone, Debug, PartialEq)]
pub struct DisruptionBudget {
    /// The cluster it applies in.
    pub cluster: String,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Which pods it protects; `None` (no selector) selects none, as in policy/v1.
    pub selector: Option<LabelSelector>,
    /// `minAvailable`, as written (a count or a percentage).
    pub min_available: Option<String>,
    /// `maxUnavailable`, as written.
    pub max_unavailable: Option<String>,
    /// Where the document starts.
    pub location: Location,
}

/// True when `selector` selects `labels` (matchLabels and matchExpressions, as Kubernetes).
pub fn selector_matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let labels_ok = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let exprs_ok = selector.match_expressions.iter().flatten().all(|e| {
        let values = e.values.as_deref().unwrap_or_default();
        let value = labels.get(&e.key);
        match e.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false,
        }
    });
    labels_ok && exprs_ok
}

/// A request that is not a resource amount: where (a JSON pointer below the pod spec) and why.
pub type RequestError = (String, QuantityError);

/// Labels as kubectl prints them: `app=web,tier=front`, `<none>` when there are none.
pub fn format_labels(labels: &BTreeMap<String, String>) -> String {
    if labels.is_empty() {
        return "<none>".to_owned();
    }
    let pairs: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    pairs.join(",")
}

/// A label selector as kubectl prints it: `app=web,tier in (a,b),!canary`; an empty
/// selector (which selects everything) is `<all>`.
pub fn format_selector(selector: &LabelSelector) -> String {
    let mut parts: Vec<String> = selector
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for e in selector.match_expressions.iter().flatten() {
        let values = e.values.as_deref().unwrap_or_default().join(",");
        parts.push(match e.operator.as_str() {
            "In" => format!("{} in ({values})", e.key),
            "NotIn" => format!("{} notin ({values})", e.key),
            "Exists" => e.key.clone(),
            "DoesNotExist" => format!("!{}", e.key),
            other => format!("{} {other} ({values})", e.key),
        });
    }
    if parts.is_empty() {
        return "<all>".to_owned();
    }
    parts.join(",")
}

/// One container's requests in Plinth units (CPU rounded up to whole millicores, bytes
/// rounded up, as Kubernetes rounds), or the place and error of one that did not parse.
fn container_requests(resources: Option<&ResourceRequirements>) -> Result<Resources, RequestError> {
    let mut out = Resources::ZERO;
    let Some(r) = resources else { return Ok(out) };
    let pick = |name: &str| -> Option<(&'static str, &Quantity)> {
        let key: &'static str = if r.requests.as_ref().is_some_and(|m| m.contains_key(name)) {
            "requests"
        } else {
            "limits"
        };
        let map = if key == "requests" {
            r.requests.as_ref()
        } else {
            r.limits.as_ref()
        };
        map.and_then(|m| m.get(name)).map(|q| (key, q))
    };
    for name in ["cpu", "memory", "ephemeral-storage"] {
        let Some((key, q)) = pick(name) else { continue };
        let parsed: KubeQuantity = q.0.parse().map_err(|e| (format!("{key}/{name}"), e))?;
        match name {
            "cpu" => out.cpu_millis = parsed.milli_value(),
            "memory" => out.memory_bytes = parsed.value(),
            _ => out.disk_bytes = parsed.value(),
        }
    }
    Ok(out)
}

/// Resource names Plinth models; `hugepages-*` and extended resources (`vendor/name`) are
/// accepted and not modelled.
pub const RESOURCE_NAMES: [&str; 3] = ["cpu", "memory", "ephemeral-storage"];

/// Resource names in requests or limits that Kubernetes would not know either — most
/// likely typos such as `memroy` — as (JSON pointer below the pod spec, name).
pub fn unknown_resource_names(spec: &PodSpec) -> Vec<(String, String)> {
    let containers = spec.containers.iter().map(|c| ("containers", c));
    let inits = spec
        .init_containers
        .iter()
        .flatten()
        .map(|c| ("initContainers", c));
    let mut out = Vec::new();
    let mut index: BTreeMap<&str, usize> = BTreeMap::new();
    for (list, c) in containers.chain(inits) {
        let i = index.entry(list).or_insert(0);
        for (key, map) in c
            .resources
            .iter()
            .flat_map(|r| [("requests", &r.requests), ("limits", &r.limits)])
        {
            for name in map.iter().flat_map(|m| m.keys()) {
                if !RESOURCE_NAMES.contains(&name.as_str())
                    && !name.contains('/')
                    && !name.starts_with("hugepages-")
                {
                    out.push((format!("/{list}/{i}/resources/{key}/{name}"), name.clone()));
                }
            }
        }
        *i += 1;
    }
    out
}

/// The requests of one pod of `spec`, or where and why one request is not a quantity.
pub fn pod_requests(spec: &PodSpec) -> Result<Resources, RequestError> {
    let mut sum = Resources::ZERO;
    for (i, c) in spec.containers.iter().enumerate() {
        sum += container_requests(c.resources.as_ref())
            .map_err(|(p, t)| (format!("/containers/{i}/resources/{p}"), t))?;
    }
    let mut init = Resources::ZERO;
    for (i, c) in spec.init_containers.iter().flatten().enumerate() {
        let r = container_requests(c.resources.as_ref())
            .map_err(|(p, t)| (format!("/initContainers/{i}/resources/{p}"), t))?;
        init = init.max_each(&r);
    }
    Ok(sum.max_each(&init))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Container;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn container(requests: &[(&str, &str)], limits: &[(&str, &str)]) -> Container {
        let map = |kv: &[(&str, &str)]| {
            (!kv.is_empty()).then(|| {
                kv.iter()
                    .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
                    .collect()
            })
        };
        Container {
            name: "c".into(),
            resources: Some(ResourceRequirements {
                requests: map(requests),
                limits: map(limits),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn sums_containers_and_defaults_requests_to_limits() {
        let spec = PodSpec {
            containers: vec![
                container(&[("cpu", "250m"), ("memory", "64Mi")], &[]),
                container(&[], &[("cpu", "1"), ("memory", "1.5G")]),
            ],
            init_containers: Some(vec![container(&[("cpu", "2")], &[])]),
            ..Default::default()
        };
        let r = pod_requests(&spec).expect("valid");
        assert_eq!(r.cpu_millis, 2000, "init container max wins for cpu");
        assert_eq!(r.memory_bytes, (64 << 20) + 1_500_000_000);
    }

    #[test]
    fn unknown_resource_names_are_found() {
        let spec = PodSpec {
            containers: vec![container(
                &[
                    ("cpu", "1"),
                    ("memroy", "8Gi"),
                    ("nvidia.com/gpu", "1"),
                    ("hugepages-2Mi", "1Gi"),
                ],
                &[],
            )],
            ..Default::default()
        };
        assert_eq!(
            unknown_resource_names(&spec),
            vec![(
                "/containers/0/resources/requests/memroy".to_string(),
                "memroy".to_string()
            )]
        );
    }

    #[test]
    fn bad_quantity_names_its_place() {
        let spec = PodSpec {
            containers: vec![container(&[("memory", "lots")], &[])],
            ..Default::default()
        };
        assert_eq!(
            pod_requests(&spec),
            Err((
                "/containers/0/resources/requests/memory".into(),
                QuantityError::Syntax {
                    text: "lots".into()
                }
            ))
        );
    }

    #[test]
    fn selectors_match_like_kubernetes() {
        let labels: BTreeMap<_, _> = [("app".to_string(), "db".to_string())].into();
        let sel = LabelSelector {
            match_labels: Some([("app".to_string(), "db".to_string())].into()),
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "tier".into(),
                operator: "DoesNotExist".into(),
                values: None,
            }]),
        };
        assert!(selector_matches(&sel, &labels));
        let other: BTreeMap<_, _> = [("app".to_string(), "web".to_string())].into();
        assert!(!selector_matches(&sel, &other));
        assert_eq!(format_selector(&sel), "app=db,!tier");
        assert_eq!(format_labels(&labels), "app=db");
        assert_eq!(format_selector(&LabelSelector::default()), "<all>");
    }
}
