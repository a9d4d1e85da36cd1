//! JSON Schemas of Plinth's kinds, for `plinth schema` (editor completion) and
//! `plinth explain` (field documentation, like `kubectl explain`). Both come from the same
//! types the loader decodes with, so they cannot drift.

use std::fmt::Write as _;

use serde_json::{Map, Value, json};

use crate::decode::TypeSchema;
use crate::diag::did_you_mean;
use crate::document::{PLINTH_KINDS, SCHEMAS};

/// The schemas describing `kind` (two for Environment: virtualized and bareMetal).
fn schemas_of(kind: &str) -> Option<Vec<&'static TypeSchema>> {
    let s = &*SCHEMAS;
    Some(match kind {
        "Inventory" => vec![&s.inventory],
        "Environment" => vec![&s.virtualized, &s.bare_metal],
        "Cluster" => vec![&s.cluster],
        "VirtualMachineSet" => vec![&s.vm_set],
        "Scenario" => vec![&s.scenario],
        "PriceSheet" => vec![&s.price_sheet],
        "Calibration" => vec![&s.calibration],
        _ => return None,
    })
}

/// Why an explain or schema request failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SchemaError {
    /// The kind is not one of Plinth's.
    #[error("unknown kind `{kind}`{}", hint(.suggestion))]
    UnknownKind {
        /// What was asked for.
        kind: String,
        /// The nearest kind.
        suggestion: Option<String>,
    },
    /// A Kubernetes kind: Plinth reads it as Kubernetes defines it.
    #[error(
        "`{kind}` is a Kubernetes kind, read as Kubernetes defines it (see `kubectl explain {kind}`)"
    )]
    KubernetesKind {
        /// What was asked for.
        kind: String,
    },
    /// A field along the path does not exist.
    #[error("`{kind}` has no field `{path}`{}", hint(.suggestion))]
    UnknownField {
        /// The kind.
        kind: String,
        /// The path up to and including the unknown field.
        path: String,
        /// The nearest field at that level.
        suggestion: Option<String>,
    },
}

fn hint(s: &Option<String>) -> String {
    s.as_ref()
        .map(|s| format!(" (did you mean `{s}`?)"))
        .unwrap_or_default()
}

/// The JSON Schema of one kind, self-contained (Environment is a `oneOf` of its two types).
pub fn json_schema(kind: &str) -> Result<Value, SchemaError> {
    let schemas = schemas_of(kind).ok_or_else(|| unknown_kind(kind))?;
    if let [one] = schemas.as_slice() {
        return Ok(one.as_value().clone());
    }
    let mut defs = Map::new();
    let mut variants = Vec::new();
    for s in schemas {
        let mut v = s.as_value().clone();
        if let Some(Value::Object(d)) = v.as_object_mut().and_then(|o| o.remove("$defs")) {
            defs.extend(d);
        }
        if let Some(o) = v.as_object_mut() {
            o.remove("$schema");
        }
        variants.push(v);
    }
    Ok(json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": kind,
        "oneOf": variants,
        "$defs": defs,
    }))
}

fn unknown_kind(kind: &str) -> SchemaError {
    if crate::document::KUBERNETES_KINDS
        .iter()
        .any(|(k, _)| *k == kind)
    {
        return SchemaError::KubernetesKind {
            kind: kind.to_owned(),
        };
    }
    SchemaError::UnknownKind {
        kind: kind.to_owned(),
        suggestion: did_you_mean(kind, PLINTH_KINDS).map(str::to_owned),
    }
}

/// A short type name for a schema node: `string`, `integer`, `[]NodePool`, `map[string]string`, `strict | soft`.
fn type_name(node: &Value) -> String {
    if let Some(r) = node.get("$ref").and_then(Value::as_str) {
        return r.rsplit('/').next().unwrap_or(r).to_owned();
    }
    for combinator in ["anyOf", "oneOf"] {
        if let Some(alts) = node.get(combinator).and_then(Value::as_array) {
            let names: Vec<String> = alts
                .iter()
                .filter(|a| a.get("type") != Some(&json!("null")))
                .map(type_name)
                .collect();
            return names.join(" | ");
        }
    }
    if let Some(values) = node.get("enum").and_then(Value::as_array) {
        return values
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" | ");
    }
    if let Some(c) = node.get("const").and_then(Value::as_str) {
        return c.to_owned();
    }
    match node.get("type") {
        Some(Value::String(t)) if t == "array" => {
            format!("[]{}", node.get("items").map(type_name).unwrap_or_default())
        }
        Some(Value::String(t)) if t == "object" => match node.get("additionalProperties") {
            Some(v @ Value::Object(_)) => format!("map[string]{}", type_name(v)),
            _ => "object".to_owned(),
        },
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .filter(|t| *t != "null")
            .collect::<Vec<_>>()
            .join(" | "),
        _ => "any".to_owned(),
    }
}

fn description(nodes: &[&Value]) -> String {
    nodes
        .iter()
        .rev()
        .find_map(|n| n.get("description").and_then(Value::as_str))
        .unwrap_or_default()
        .to_owned()
}

/// Documentation of `KIND[.field.path]`, as `kubectl explain` prints it.
pub fn explain(target: &str) -> Result<String, SchemaError> {
    let mut parts = target.split('.');
    let kind = parts.next().unwrap_or_default();
    let schemas = schemas_of(kind).ok_or_else(|| unknown_kind(kind))?;
    let path: Vec<&str> = parts.filter(|p| !p.is_empty()).collect();
    let mut out = String::new();
    let mut found = false;
    for schema in schemas {
        let mut nodes = Vec::new();
        schema.alternatives(schema.as_value(), &mut nodes, 0);
        let mut raw: &Value = schema.as_value();
        let mut ok = true;
        for (i, field) in path.iter().enumerate() {
            let props: Vec<&str> = nodes
                .iter()
                .filter_map(|n| n.get("properties").and_then(Value::as_object))
                .flat_map(|p| p.keys().map(String::as_str))
                .collect();
            let next_raw = nodes
                .iter()
                .find_map(|n| n.get("properties").and_then(|p| p.get(*field)));
            let next = schema.child(&nodes, Some(field));
            match next_raw {
                Some(r) if !next.is_empty() => {
                    raw = r;
                    // Lists are explained by their items, as `kubectl explain` does.
                    let items = schema.child(&next, None);
                    nodes = if items.is_empty() { next } else { items };
                }
                _ => {
                    ok = false;
                    if !found && schemas_of(kind).is_some_and(|s| s.len() == 1) {
                        return Err(SchemaError::UnknownField {
                            kind: kind.to_owned(),
                            path: path[..=i].join("."),
                            suggestion: did_you_mean(field, props.iter().copied())
                                .map(str::to_owned),
                        });
                    }
                    break;
                }
            }
        }
        if !ok {
            continue;
        }
        found = true;
        let _ = writeln!(out, "KIND:     {kind}");
        if !path.is_empty() {
            let _ = writeln!(out, "FIELD:    {} <{}>", path.join("."), type_name(raw));
        }
        if let Some(d) = raw.get("default") {
            let _ = writeln!(out, "DEFAULT:  {d}");
        }
        let _ = writeln!(
            out,
            "\nDESCRIPTION:\n    {}",
            description(&[raw]).replace('\n', "\n    ")
        );
        let mut fields: Vec<(String, String, String, Option<&Value>)> = Vec::new();
        for n in &nodes {
            for (name, field) in n
                .get("properties")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                let required = n
                    .get("required")
                    .and_then(Value::as_array)
                    .is_some_and(|r| r.iter().any(|x| x == name));
                let first_line = field
                    .get("description")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                let ty = format!(
                    "<{}>{}",
                    type_name(field),
                    if required { " -required-" } else { "" }
                );
                if !fields.iter().any(|f| f.0 == *name) {
                    fields.push((name.clone(), ty, first_line, field.get("default")));
                }
            }
        }
        if !fields.is_empty() {
            let _ = writeln!(out, "\nFIELDS:");
            for (name, ty, desc, default) in fields {
                let _ = writeln!(out, "  {name}\t{ty}");
                if !desc.is_empty() {
                    let _ = writeln!(out, "    {desc}");
                }
                if let Some(d) = default {
                    let _ = writeln!(out, "    default: {d}");
                }
            }
        }
        out.push('\n');
    }
    if !found {
        return Err(SchemaError::UnknownField {
            kind: kind.to_owned(),
            path: path.join("."),
            suggestion: None,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explains_nested_fields_with_defaults() {
        let text = explain("Cluster.spec.nodePools.maxPods").expect("known field");
        assert!(
            text.contains("FIELD:    spec.nodePools.maxPods <integer>"),
            "{text}"
        );
        assert!(text.contains("DEFAULT:  110"), "{text}");
    }

    #[test]
    fn suggests_near_misses() {
        let err = explain("Cluster.spec.nodePools.replica").unwrap_err();
        assert_eq!(
            err.to_string(),
            "`Cluster` has no field `spec.nodePools.replica` (did you mean `replicas`?)"
        );
        assert_eq!(
            explain("Clustr").unwrap_err().to_string(),
            "unknown kind `Clustr` (did you mean `Cluster`?)"
        );
    }

    #[test]
    fn environment_covers_both_types() {
        let text = explain("Environment.spec").expect("known");
        assert!(
            text.contains("overcommit") && text.contains("osInstall"),
            "{text}"
        );
        let schema = json_schema("Environment").expect("known");
        assert_eq!(schema["oneOf"].as_array().map(Vec::len), Some(2));
    }
}
