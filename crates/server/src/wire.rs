//! What the API's requests and answers hold beyond the objects themselves, shared by the
//! server and the CLI so both read one definition.

use std::collections::BTreeMap;
use std::sync::Arc;

use plinth_model::{Diagnostic, Location, Severity};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::objects::Applied;

/// The path of the apply endpoint.
pub const APPLY_PATH: &str = "/apis/plinth.dev/v1alpha1/apply";
/// Where the comparison of the applied estate is served (`GET`: JSON, or HTML with
/// `Accept: text/html`).
pub const COMPARISON_PATH: &str = "/apis/plinth.dev/v1alpha1/comparison";

/// Where a host's maintenance is asked for: `POST` plans it on the running placement and,
/// unless `?dryRun=All`, carries it out (`&force=true` past a broken quorum or budget).
pub const MAINTENANCE_PATH: &str = "/apis/plinth.dev/v1alpha1/hosts/{name}/maintenance";

/// [`MAINTENANCE_PATH`] for `host`.
pub fn maintenance_path(host: &str) -> String {
    MAINTENANCE_PATH.replace("{name}", host)
}

/// The answer to a maintenance request: the plan and its verdict, the same value `plinth
/// maintenance DIR --dry-run -o json` prints for an estate directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostMaintenance {
    /// `plinth.dev/v1alpha1`.
    pub api_version: String,
    /// `HostMaintenance`.
    pub kind: String,
    /// The host.
    pub host: String,
    /// Only planned; nothing was requested.
    pub dry_run: bool,
    /// The plan and its verdict.
    #[serde(flatten)]
    pub review: plinth_control::maintenance::Review,
}

/// Where a cluster's rolling upgrade is asked for: `POST` with an [`UpgradeRequest`] plans
/// it on the running placement and, unless `?dryRun=All`, writes the new version or image
/// into the Cluster, which the control plane rolls out as it does any applied change.
pub const UPGRADE_PATH: &str = "/apis/plinth.dev/v1alpha1/clusters/{name}/upgrade";

/// [`UPGRADE_PATH`] for `cluster`.
pub fn upgrade_path(cluster: &str) -> String {
    UPGRADE_PATH.replace("{name}", cluster)
}

/// What a cluster is to be upgraded to.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpgradeRequest {
    /// The Kubernetes version (`1.32.1`) or node OS image (`flatcar-4081`).
    pub to: String,
}

/// The answer to an upgrade request: the rollout as planned, the same value `plinth upgrade
/// DIR --dry-run -o json` prints for an estate directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterUpgrade {
    /// `plinth.dev/v1alpha1`.
    pub api_version: String,
    /// `ClusterUpgrade`.
    pub kind: String,
    /// Only planned; the Cluster is unchanged.
    pub dry_run: bool,
    /// The rollout.
    #[serde(flatten)]
    pub plan: plinth_control::upgrade::RolloutPlan,
}

/// Where the next DRS pass is asked for (`POST …?dryRun=All`): what the control plane would
/// move now to balance the pool. Passes run by themselves every interval while DRS is on.
pub const DRS_PATH: &str = "/apis/plinth.dev/v1alpha1/drs";

/// The answer to a DRS request, the same value `plinth drs DIR --dry-run -o json` prints
/// for an estate directory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DrsPass {
    /// `plinth.dev/v1alpha1`.
    pub api_version: String,
    /// `DrsPass`.
    pub kind: String,
    /// The pass.
    #[serde(flatten)]
    pub review: plinth_control::drs::Review,
}

/// An apply: manifest files as the user wrote them, checked and stored all or none.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApplyRequest {
    /// The files, each its name (for diagnostics) and text.
    pub sources: Vec<Source>,
    /// Source name → the cluster its workloads belong to (`--cluster NAME=PATH`).
    #[serde(default)]
    pub bindings: BTreeMap<String, String>,
}

/// One manifest file.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// Its name as the user gave it.
    pub name: String,
    /// Its text.
    pub text: String,
}

/// What an apply did.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplyResponse {
    /// Each object, and what became of it.
    pub objects: Vec<AppliedObject>,
    /// Objects not stored because Plinth does not read their kind, counted per kind.
    pub skipped: Vec<Skipped>,
    /// Warnings and notes `plinth validate` would print for these files.
    pub diagnostics: Vec<WireDiagnostic>,
}

/// One applied object.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppliedObject {
    /// `kind:`.
    pub kind: String,
    /// The guest cluster of a workload, empty for anything else.
    #[serde(default)]
    pub cluster: String,
    /// Namespace, empty when cluster-scoped.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// `created`, `configured` or `unchanged`.
    pub outcome: String,
    /// Its resourceVersion after the apply.
    pub resource_version: String,
}

impl From<&Applied> for AppliedObject {
    fn from(a: &Applied) -> Self {
        let outcome = serde_json::to_value(a.outcome)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        Self {
            kind: a.key.resource.info().kind.to_owned(),
            cluster: a.key.cluster.clone(),
            namespace: a.key.namespace.clone(),
            name: a.key.name.clone(),
            outcome,
            resource_version: a.resource_version.to_string(),
        }
    }
}

/// Objects of one kind an apply did not store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Skipped {
    /// `kind:`.
    pub kind: String,
    /// `apiVersion:`.
    pub api_version: String,
    /// How many.
    pub count: usize,
}

/// A diagnostic of `plinth validate`, on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WireDiagnostic {
    /// `error`, `warning` or `note`.
    pub severity: String,
    /// The file it is in.
    pub file: String,
    /// Line, from 1.
    pub line: u32,
    /// Column, from 1.
    pub column: u32,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
}

impl From<&Diagnostic> for WireDiagnostic {
    fn from(d: &Diagnostic) -> Self {
        Self {
            severity: d.severity.to_string(),
            file: d.location.file.to_string(),
            line: d.location.line,
            column: d.location.column,
            message: d.message.clone(),
            help: d.help.clone(),
        }
    }
}

impl WireDiagnostic {
    /// The diagnostic again, to render it as `plinth validate` does.
    pub fn to_diagnostic(&self) -> Diagnostic {
        let location = Location::new(Arc::from(self.file.as_str()), self.line, self.column);
        let d = match self.severity.as_str() {
            "error" => Diagnostic::error(location, self.message.clone()),
            "warning" => Diagnostic::warning(location, self.message.clone()),
            _ => Diagnostic::note(location, self.message.clone()),
        };
        match &self.help {
            Some(h) => d.with_help(h.clone()),
            None => d,
        }
    }

    /// Whether it is an error.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error.to_string()
    }
}

/// A failed request's answer, in the shape of Kubernetes' `Status`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// Always `Status`.
    pub kind: String,
    /// `v1`.
    pub api_version: String,
    /// `Failure`.
    pub status: String,
    /// The HTTP status code.
    pub code: u16,
    /// A word for programs: `Unauthorized`, `Forbidden`, `NotFound`, `Conflict`,
    /// `Invalid`, `Expired`, `BadRequest`, `MethodNotAllowed`, `InternalError`.
    pub reason: String,
    /// One sentence for people, with the fix.
    pub message: String,
    /// The diagnostics of an invalid apply, located in the files sent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub diagnostics: Vec<WireDiagnostic>,
}
