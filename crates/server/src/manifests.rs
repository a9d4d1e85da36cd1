//! Manifests in and out of the object store: an apply's files checked with `plinth
//! validate`'s own per-object rules and split into objects; the stored objects assembled
//! into an estate again, with what only the whole estate can show (a pool naming an
//! unknown host class, a workload bound to no cluster) found per object, for its
//! conditions.

use std::collections::BTreeMap;
use std::sync::Arc;

use plinth_model::workload::CLUSTER_LABEL;
use plinth_model::yaml::parse_documents;
use plinth_model::{Diagnostic, Estate, Input, Severity, SourceFile, check_objects, load};
use serde_json::Value;

use crate::kinds::{ObjectKey, Resource};
use crate::wire::{ApplyRequest, Skipped, WireDiagnostic};

/// The namespace of a namespaced object that names none.
pub const DEFAULT_NAMESPACE: &str = "default";

/// An apply's files, split.
#[derive(Debug, Default)]
pub struct Split {
    /// The objects to store, in order.
    pub objects: Vec<(ObjectKey, Value)>,
    /// Objects of kinds Plinth does not read, counted per kind.
    pub skipped: Vec<Skipped>,
    /// Every diagnostic of the per-object checks.
    pub diagnostics: Vec<WireDiagnostic>,
}

impl Split {
    /// Whether any diagnostic is an error: nothing may be stored.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(WireDiagnostic::is_error)
    }
}

/// The input of `request`, as `plinth validate` would read it.
fn input(request: &ApplyRequest) -> Input {
    let mut input = Input::default();
    for s in &request.sources {
        let source = SourceFile::new(s.name.as_str(), s.text.as_str());
        match request.bindings.get(&s.name) {
            Some(cluster) => input.add_bound(source, cluster.clone()),
            None => input.add(source),
        }
    }
    input
}

/// Checks each object of `request` on its own and splits the files into objects.
pub fn split(request: &ApplyRequest) -> Split {
    let input = input(request);
    let mut out = Split {
        diagnostics: check_objects(&input)
            .iter()
            .map(WireDiagnostic::from)
            .collect(),
        ..Split::default()
    };
    if out.has_errors() {
        return out;
    }
    let mut skipped: BTreeMap<(String, String), usize> = BTreeMap::new();
    for source in &input.sources {
        let binding = input.bindings.get(&source.name);
        let (docs, _) = parse_documents(source);
        for doc in docs {
            for object in items(doc.value) {
                let object = bind(object, binding);
                match key_of(&object) {
                    Ok(key) => out.objects.push((key, object)),
                    Err((kind, api_version)) => {
                        *skipped.entry((kind, api_version)).or_default() += 1
                    }
                }
            }
        }
    }
    out.skipped = skipped
        .into_iter()
        .map(|((kind, api_version), count)| Skipped {
            kind,
            api_version,
            count,
        })
        .collect();
    out
}

/// A document's objects: a `List`'s items (which may leave out their kind), else itself.
fn items(value: Value) -> Vec<Value> {
    let kind = value
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let Some(item_kind) = kind.strip_suffix("List") else {
        return vec![value];
    };
    let api_version = value.get("apiVersion").cloned().unwrap_or(Value::Null);
    let item_kind = item_kind.to_owned();
    let Some(Value::Array(list)) = value.get("items").cloned() else {
        return Vec::new();
    };
    list.into_iter()
        .map(|mut item| {
            if let Some(map) = item.as_object_mut() {
                if !item_kind.is_empty() {
                    map.entry("kind")
                        .or_insert_with(|| Value::from(item_kind.clone()));
                }
                map.entry("apiVersion")
                    .or_insert_with(|| api_version.clone());
            }
            item
        })
        .collect()
}

/// The key of an object Plinth stores (a workload's guest cluster from its
/// `plinth.dev/cluster` label), or its kind and apiVersion when it is skipped.
pub fn key_of(object: &Value) -> Result<ObjectKey, (String, String)> {
    let text = |p: &str| {
        object
            .pointer(p)
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    let (kind, api_version) = (text("/kind"), text("/apiVersion"));
    let resource = Resource::of_kind(api_version, kind)
        .filter(|r| r.info().writer == crate::kinds::Writer::User)
        .ok_or_else(|| (kind.to_owned(), api_version.to_owned()))?;
    let (cluster, namespace) = if resource.info().namespaced {
        let cluster = object
            .pointer("/metadata/labels")
            .and_then(|l| l.get(CLUSTER_LABEL))
            .and_then(Value::as_str)
            .unwrap_or_default();
        let namespace = match text("/metadata/namespace") {
            "" => DEFAULT_NAMESPACE,
            ns => ns,
        };
        (cluster.to_owned(), namespace.to_owned())
    } else {
        (String::new(), String::new())
    };
    Ok(ObjectKey {
        resource,
        cluster,
        namespace,
        name: text("/metadata/name").to_owned(),
    })
}

/// A workload of a file bound with `--cluster NAME=PATH` carries the binding as its
/// `plinth.dev/cluster` label, so the stored object says which cluster it belongs to.
fn bind(mut object: Value, cluster: Option<&String>) -> Value {
    let Some(cluster) = cluster else {
        return object;
    };
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        let labels = meta
            .entry("labels")
            .or_insert_with(|| Value::Object(serde_json::Map::new()));
        if let Some(labels) = labels.as_object_mut() {
            labels.insert(CLUSTER_LABEL.to_owned(), Value::from(cluster.as_str()));
        }
    }
    object
}

/// The source name of a stored object in an assembled estate: its API path (with
/// `?cluster=` for a guest cluster's workload), which is what the estate's diagnostics then
/// point at.
pub fn source_name(key: &ObjectKey) -> String {
    let ns = (!key.namespace.is_empty()).then_some(key.namespace.as_str());
    let path = key.resource.info().path(ns, Some(&key.name));
    if key.cluster.is_empty() {
        path
    } else {
        format!("{path}?cluster={}", key.cluster)
    }
}

/// The stored objects as the input `plinth validate` would read: one source per object,
/// named by its API path ([`source_name`]).
pub fn estate_input(objects: &[(ObjectKey, Value)]) -> Input {
    let mut input = Input::default();
    for (key, object) in objects {
        let text = serde_json::to_string_pretty(object).unwrap_or_default();
        input.add(SourceFile::new(source_name(key), text));
    }
    input
}

/// The estate the stored objects form, and each object's problems that only the whole
/// estate shows (errors and warnings, by key). `None` while any error remains.
pub fn assemble(
    objects: &[(ObjectKey, Value)],
) -> (Option<Estate>, BTreeMap<ObjectKey, Vec<Diagnostic>>) {
    let input = estate_input(objects);
    let by_source: BTreeMap<Arc<str>, &ObjectKey> = objects
        .iter()
        .map(|(key, _)| (Arc::from(source_name(key)), key))
        .collect();
    let loaded = load(&input);
    let mut problems: BTreeMap<ObjectKey, Vec<Diagnostic>> = BTreeMap::new();
    for d in loaded.diagnostics.iter() {
        if d.severity == Severity::Note {
            continue;
        }
        if let Some(key) = by_source.get(&d.location.file) {
            problems.entry((*key).clone()).or_default().push(d.clone());
        } else if let Some((key, _)) = objects.first() {
            // A problem of the estate as a whole (no Inventory yet): on the first object.
            problems.entry(key.clone()).or_default().push(d.clone());
        }
    }
    (loaded.estate, problems)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Source;

    fn request(text: &str) -> ApplyRequest {
        ApplyRequest {
            sources: vec![Source {
                name: "input.yaml".into(),
                text: text.into(),
            }],
            bindings: BTreeMap::new(),
        }
    }

    #[test]
    fn lists_are_read_item_by_item_and_other_kinds_are_counted() {
        let split = split(&request(
            "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: c}\n- apiVersion: v1\n  kind: Pod\n  metadata: {name: p}\n  spec:\n    containers: [{name: a, image: a}]\n",
        ));
        assert!(!split.has_errors(), "{:?}", split.diagnostics);
        assert_eq!(split.objects.len(), 1);
        assert_eq!(split.objects[0].0.namespace, DEFAULT_NAMESPACE);
        assert_eq!(split.skipped[0].kind, "ConfigMap");
    }

    #[test]
    fn a_mistake_one_object_shows_is_located_in_the_file_sent() {
        let split = split(&request(
            "apiVersion: plinth.dev/v1alpha1\nkind: Cluster\nmetadata: {name: a}\nspec:\n  kubernetesVersion: 1.33.1\n",
        ));
        assert!(split.has_errors());
        let d = split
            .diagnostics
            .iter()
            .find(|d| d.is_error())
            .expect("an error");
        // `spec` lacks required fields: the error points at `spec:` in the file sent.
        assert_eq!((d.file.as_str(), d.line), ("input.yaml", 4), "{d:?}");
    }
}
