//! JSON value of a document → typed value, checked key by key against the type's JSON
//! Schema first.
//!
//! serde stops at the first error, and the Kubernetes types of k8s-openapi silently drop
//! unknown fields: `resources.request:` would become zero requests and a silently wrong
//! answer. So every key of a document is checked against the schema of its type (the
//! same schema `plinth schema` writes), all unknown keys are reported at once with a
//! suggestion, and only then does serde decode the rest.

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::diag::{Diagnostic, Diagnostics, did_you_mean};
use crate::yaml::{Document, push_pointer};

/// A type's JSON Schema, generated once.
#[derive(Debug)]
pub struct TypeSchema {
    root: Value,
}

impl TypeSchema {
    /// The schema of `T`.
    pub fn of<T: JsonSchema>() -> Self {
        Self {
            root: schemars::schema_for!(T).to_value(),
        }
    }

    /// The schema as JSON.
    pub fn as_value(&self) -> &Value {
        &self.root
    }

    /// Follows `$ref`s and flattens `anyOf`/`oneOf`/`allOf` into the schemas that may
    /// describe one value.
    pub(crate) fn alternatives<'a>(
        &'a self,
        schema: &'a Value,
        out: &mut Vec<&'a Value>,
        depth: usize,
    ) {
        if depth > 32 {
            return;
        }
        if let Some(target) = schema.get("$ref").and_then(Value::as_str)
            && let Some(resolved) = target.strip_prefix('#').and_then(|p| self.root.pointer(p))
        {
            self.alternatives(resolved, out, depth + 1);
        }
        for combinator in ["anyOf", "oneOf", "allOf"] {
            for sub in schema
                .get(combinator)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                self.alternatives(sub, out, depth + 1);
            }
        }
        out.push(schema);
    }

    /// The field names an object described by `schemas` may have, or `None` when it may
    /// have any (a map, or free-form JSON).
    fn fields<'a>(schemas: &[&'a Value]) -> Option<Vec<&'a str>> {
        let mut names = Vec::new();
        let mut closed = false;
        for s in schemas {
            match (
                s.get("properties").and_then(Value::as_object),
                s.get("additionalProperties"),
            ) {
                (Some(props), extra) => {
                    names.extend(props.keys().map(String::as_str));
                    if matches!(extra, Some(Value::Object(_)) | Some(Value::Bool(true))) {
                        return None;
                    }
                    closed = true;
                }
                (None, Some(Value::Bool(false))) => closed = true,
                (None, Some(_)) => return None,
                (None, None) => {}
            }
        }
        closed.then_some(names)
    }

    /// The schemas describing member `key` (or, for arrays, items) of a value described by `schemas`.
    pub(crate) fn child<'a>(&'a self, schemas: &[&'a Value], key: Option<&str>) -> Vec<&'a Value> {
        let mut out = Vec::new();
        for s in schemas {
            let next = match key {
                Some(k) => s
                    .get("properties")
                    .and_then(|p| p.get(k))
                    .or_else(|| s.get("additionalProperties").filter(|v| v.is_object())),
                None => s.get("items").filter(|v| v.is_object()),
            };
            if let Some(next) = next {
                self.alternatives(next, &mut out, 0);
            }
        }
        out
    }
}

/// Reports every key of `value` its schema does not know, removes it, and returns what is
/// left with the (object pointer, suggested field) pairs of the typos found, so that a
/// follow-up "missing field" for the same field is not reported twice.
fn strip_unknown_keys(
    schema: &TypeSchema,
    doc: &Document,
    base: &str,
    value: &Value,
    diags: &mut Diagnostics,
) -> (Value, Vec<(String, String)>) {
    let mut suggested = Vec::new();
    let mut root = Vec::new();
    schema.alternatives(&schema.root, &mut root, 0);
    let mut out = value.clone();
    // Explicit stack: (pointer in the document, pointer in `out`, schemas).
    let mut stack = vec![(base.to_owned(), String::new(), root)];
    while let Some((doc_ptr, out_ptr, schemas)) = stack.pop() {
        let Some(node) = out.pointer_mut(&out_ptr) else {
            continue;
        };
        match node {
            Value::Object(map) => {
                let fields = TypeSchema::fields(&schemas);
                let mut unknown = Vec::new();
                for key in map.keys() {
                    if fields.as_ref().is_some_and(|f| !f.contains(&key.as_str())) {
                        unknown.push(key.clone());
                    }
                }
                for key in &unknown {
                    map.remove(key);
                    let at = doc.index.key(&push_pointer(&doc_ptr, key));
                    let mut d = Diagnostic::error(at, format!("unknown field `{key}`"));
                    let known = fields.as_deref().unwrap_or_default();
                    if let Some(near) = did_you_mean(key, known.iter().copied()) {
                        d = d.with_help(format!("did you mean `{near}`?"));
                        suggested.push((doc_ptr.clone(), near.to_owned()));
                    } else if !known.is_empty() {
                        let mut list: Vec<_> = known.iter().map(|k| format!("`{k}`")).collect();
                        list.sort();
                        d = d.with_help(format!("expected one of {}", list.join(", ")));
                    }
                    diags.push(d);
                }
                for key in map.keys() {
                    let child = schema.child(&schemas, Some(key));
                    if !child.is_empty() {
                        stack.push((
                            push_pointer(&doc_ptr, key),
                            push_pointer(&out_ptr, key),
                            child,
                        ));
                    }
                }
            }
            Value::Array(items) => {
                let child = schema.child(&schemas, None);
                if !child.is_empty() {
                    for i in 0..items.len() {
                        let i = i.to_string();
                        stack.push((
                            push_pointer(&doc_ptr, &i),
                            push_pointer(&out_ptr, &i),
                            child.clone(),
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    (out, suggested)
}

/// Converts a serde error path into a JSON pointer below `base`.
fn error_pointer(base: &str, path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut p = base.to_owned();
    for seg in path.iter() {
        match seg {
            Segment::Seq { index } => p = push_pointer(&p, &index.to_string()),
            Segment::Map { key } => p = push_pointer(&p, key),
            Segment::Enum { .. } | Segment::Unknown => {}
        }
    }
    p
}

/// Decodes `value` (the node at `base` in `doc`) into `T`, reporting every unknown key and
/// the first type error with their locations. `None` when anything was wrong.
pub fn decode<T: DeserializeOwned>(
    schema: &TypeSchema,
    doc: &Document,
    base: &str,
    value: &Value,
    diags: &mut Diagnostics,
) -> Option<T> {
    let before = diags.error_count();
    let (clean, suggested) = strip_unknown_keys(schema, doc, base, value, diags);
    match serde_path_to_error::deserialize::<_, T>(&clean) {
        Ok(t) => (diags.error_count() == before).then_some(t),
        Err(e) => {
            let pointer = error_pointer(base, e.path());
            let message = e.inner().to_string();
            let missing_field = message.starts_with("missing field");
            let field = message.split('`').nth(1).unwrap_or_default();
            if missing_field && suggested.iter().any(|(p, f)| *p == pointer && f == field) {
                return None;
            }
            let at = if missing_field {
                doc.index.key(&pointer)
            } else {
                doc.index.value(&pointer)
            };
            let mut d = Diagnostic::error(at, message.clone());
            if message.contains("expected a string") && doc.index.is_plain_scalar(&pointer) {
                d = d.with_help(
                    "YAML read this unquoted value as a number or boolean: quote it, e.g. \"1.30\"",
                );
            } else if missing_field {
                let place = if pointer.is_empty() {
                    "the document".to_owned()
                } else {
                    format!("`{}`", pointer.trim_start_matches('/').replace('/', "."))
                };
                d = d.with_help(format!("add `{field}` to {place}"));
            }
            diags.push(d);
            None
        }
    }
}
