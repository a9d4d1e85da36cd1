//! The API's OpenAPI 3.1 document, generated from the code it describes: paths from the
//! resource table, Plinth's kinds from the schemas the manifest loader decodes with, the
//! apply and error bodies from the wire types. `docs/openapi.json` is this document; a test
//! fails when it is stale. Served at `/openapi/v3`.

use plinth_model::document::PLINTH_KINDS;
use plinth_model::schema::json_schema;
use schemars::JsonSchema;
use serde_json::{Map, Value, json};

use crate::kinds::{Info, TABLE, Writer};
use crate::wire::{
    APPLY_PATH, ApplyRequest, ApplyResponse, COMPARISON_PATH, DRS_PATH, MAINTENANCE_PATH, Status,
    UPGRADE_PATH, UpgradeRequest,
};

/// Where a schema goes in the document.
fn component(name: &str) -> String {
    format!("#/components/schemas/{name}")
}

/// Moves a JSON Schema's `$defs` into `components` as `PREFIX.NAME` and points its local
/// `$ref`s at them, so the schema is valid inside the document.
fn hoist(prefix: &str, mut schema: Value, components: &mut Map<String, Value>) -> Value {
    fn rewrite(prefix: &str, value: &mut Value) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get_mut("$ref")
                    && let Some(name) = r.strip_prefix("#/$defs/")
                {
                    *r = component(&format!("{prefix}.{name}"));
                }
                map.values_mut().for_each(|v| rewrite(prefix, v));
            }
            Value::Array(items) => items.iter_mut().for_each(|v| rewrite(prefix, v)),
            _ => {}
        }
    }
    if let Some(map) = schema.as_object_mut() {
        map.remove("$schema");
        if let Some(Value::Object(defs)) = map.remove("$defs") {
            for (name, mut def) in defs {
                rewrite(prefix, &mut def);
                components.insert(format!("{prefix}.{name}"), def);
            }
        }
    }
    rewrite(prefix, &mut schema);
    schema
}

fn wire<T: JsonSchema>(name: &str, components: &mut Map<String, Value>) {
    let schema = hoist(name, schemars::schema_for!(T).to_value(), components);
    components.insert(name.to_owned(), schema);
}

/// The schema of one resource's objects.
fn object_schema(info: &Info) -> Value {
    match info.writer {
        Writer::User if PLINTH_KINDS.contains(&info.kind) => json!({"$ref": component(info.kind)}),
        Writer::User => json!({
            "type": "object",
            "description": format!(
                "A Kubernetes {} {} as the Kubernetes API defines it; docs/manifests.md lists the fields Plinth reads.",
                info.api_version(), info.kind
            ),
            "externalDocs": {"url": "https://kubernetes.io/docs/reference/kubernetes-api/"},
        }),
        Writer::ControlPlane => json!({
            "type": "object",
            "description": format!(
                "A {} the control plane reports (read-only); docs/serve.md lists its status.",
                info.kind
            ),
        }),
    }
}

fn ok(schema: Value) -> Value {
    json!({
        "200": {"description": "OK", "content": {"application/json": {"schema": schema}}},
        "default": {"description": "A failure", "content": {"application/json": {"schema": {"$ref": component("Status")}}}},
    })
}

fn parameter(name: &str, place: &str, description: &str, required: bool) -> Value {
    json!({"name": name, "in": place, "required": required, "description": description, "schema": {"type": "string"}})
}

/// The paths of one resource.
fn paths_of(info: &Info, paths: &mut Map<String, Value>) {
    let object = object_schema(info);
    let list = json!({"type": "object", "properties": {
        "kind": {"const": format!("{}List", info.kind)},
        "metadata": {"type": "object", "properties": {"resourceVersion": {"type": "string"}}},
        "items": {"type": "array", "items": object},
    }});
    let watch = [
        parameter(
            "watch",
            "query",
            "`true`: stream changes as JSON lines ({type, object})",
            false,
        ),
        parameter(
            "resourceVersion",
            "query",
            "watch from this revision (410 when compacted)",
            false,
        ),
    ];
    let name = parameter("name", "path", "the object's name", true);
    let namespace = parameter("namespace", "path", "the object's namespace", true);
    let mut collections = vec![(info.path(None, None), Vec::new())];
    let mut objects = Vec::new();
    if info.namespaced {
        collections.push((
            info.path(Some("{namespace}"), None),
            vec![namespace.clone()],
        ));
        objects.push((
            info.path(Some("{namespace}"), Some("{name}")),
            vec![namespace, name],
        ));
    } else {
        objects.push((info.path(None, Some("{name}")), vec![name]));
    }
    for (path, params) in collections {
        let mut all = params;
        all.extend(watch.iter().cloned());
        paths.insert(path, json!({"get": {"summary": format!("List or watch {}", info.plural), "parameters": all, "responses": ok(list.clone())}}));
    }
    for (path, params) in objects {
        let mut ops = Map::new();
        ops.insert("get".into(), json!({"summary": format!("Read a {}", info.kind), "parameters": params, "responses": ok(object.clone())}));
        if info.writer == Writer::User {
            ops.insert("put".into(), json!({
                "summary": format!("Create or replace a {} (409 when its metadata.resourceVersion is not the stored one)", info.kind),
                "parameters": params,
                "requestBody": {"required": true, "content": {"application/json": {"schema": object}}},
                "responses": ok(object.clone()),
            }));
            let mut precondition = params.clone();
            precondition.push(parameter(
                "resourceVersion",
                "query",
                "delete only at this version",
                false,
            ));
            ops.insert(
                "delete".into(),
                json!({
                    "summary": format!("Delete a {}", info.kind),
                    "parameters": precondition,
                    "responses": ok(object.clone()),
                }),
            );
        }
        paths.insert(path, Value::Object(ops));
    }
}

/// The document.
pub fn document() -> Value {
    let mut components = Map::new();
    for kind in PLINTH_KINDS {
        if let Ok(schema) = json_schema(kind) {
            let schema = hoist(kind, schema, &mut components);
            components.insert(kind.to_owned(), schema);
        }
    }
    wire::<ApplyRequest>("ApplyRequest", &mut components);
    wire::<UpgradeRequest>("UpgradeRequest", &mut components);
    wire::<ApplyResponse>("ApplyResponse", &mut components);
    wire::<Status>("Status", &mut components);
    let mut paths = Map::new();
    for info in &TABLE {
        paths_of(info, &mut paths);
    }
    paths.insert(APPLY_PATH.to_owned(), json!({"post": {
        "summary": "Apply manifest files: every object checked as `plinth validate` checks it, then stored all or none (422 with located diagnostics otherwise)",
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": component("ApplyRequest")}}}},
        "responses": ok(json!({"$ref": component("ApplyResponse")})),
    }}));
    paths.insert(crate::serial::LOG_PATH.to_owned(), json!({"get": {
        "summary": "A node VM's serial console, read from the agent of the host it runs on (`plinth logs`)",
        "parameters": [
            parameter("name", "path", "The VirtualMachine.", true),
            parameter("follow", "query", "`true`: keep streaming what the console writes.", false),
        ],
        "responses": {"200": {"description": "The console as it is written", "content": {"text/plain": {"schema": {"type": "string"}}}}},
    }}));
    paths.insert(COMPARISON_PATH.to_owned(), json!({"get": {
        "summary": "The comparison of the applied estate, virtualized against bare metal (`plinth compare --no-sweep` of the stored objects, with the Scenario's runs): the report as JSON, or the HTML page with `Accept: text/html`; 409 while the estate is not valid",
        "responses": ok(json!({"type": "object", "description": "The report `plinth compare -o json` prints"})),
    }}));
    paths.insert(MAINTENANCE_PATH.to_owned(), json!({"post": {
        "summary": "A host's maintenance, planned on the running placement: which VMs move where and when, which stop and why, every etcd quorum and PodDisruptionBudget (the plan `plinth maintenance DIR --dry-run -o json` prints). Without a dry run the control plane carries it out (202); 409 when a quorum or budget would break and it is not forced; needs role operator",
        "parameters": [
            parameter("name", "path", "The Host.", true),
            parameter("dryRun", "query", "`All`: only plan, change nothing.", false),
            parameter("force", "query", "`true`: go ahead even when an etcd quorum or a PodDisruptionBudget breaks.", false),
        ],
        "responses": ok(json!({"type": "object", "description": "HostMaintenance: host, dryRun, plan, safe, refusals, forced"})),
    }}));
    paths.insert(UPGRADE_PATH.to_owned(), json!({"post": {
        "summary": "A cluster's rolling upgrade, planned on the running placement: whether machines are replaced, surge or remove-then-add per pool, the order, the fewest nodes available and the duration (the plan `plinth upgrade DIR --dry-run -o json` prints). Without a dry run the version or image is written into the Cluster and rolled out (202); 422 when the version skew policy forbids the version; needs role operator",
        "parameters": [
            parameter("name", "path", "The Cluster.", true),
            parameter("dryRun", "query", "`All`: only plan, change nothing.", false),
        ],
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": component("UpgradeRequest")}}}},
        "responses": ok(json!({"type": "object", "description": "ClusterUpgrade: dryRun, cluster, change, replaces, stages, durationMs"})),
    }}));
    paths.insert(DRS_PATH.to_owned(), json!({"post": {
        "summary": "The DRS pass the control plane would make now: its moves, control-plane VMs last and one at a time, and the imbalance before and after (what `plinth drs DIR --dry-run -o json` prints). Only as a dry run: passes run by themselves while DRS is on",
        "parameters": [
            parameter("dryRun", "query", "`All` (required).", true),
        ],
        "responses": ok(json!({"type": "object", "description": "DrsPass: enabled, threshold, intervalMs, maxMovesPerInterval, imbalanceBefore, imbalanceAfter, moves"})),
    }}));
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Plinth", "version": env!("CARGO_PKG_VERSION"), "description": "The control plane of `plinth serve` (docs/serve.md)."},
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": paths,
    })
}
