//! JSON value of a document → typed value, checked key by key against the type's JSON
//! Schema first.
//!
//! serde stops at the first error, and the Kubernetes types of k8s-openapi silently drop
//! unknown fields: `resources.request:` would become zero requests and a silently wrong
//! answer. So every key of a document is checked against the schema of its type (the
//! same schema `plinth schema` writes), all unknown keys are reported at once with a
//! suggestion, and only then does serde decode the rest.

use std::borrow::Cow;

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

/// A key the schema does not know: the pointer of its object in the document, the key,
/// and the fields the object may have (empty when the schema does not list them).
struct UnknownKey<'s> {
    object: String,
    key: String,
    known: Vec<&'s str>,
}

/// Collects every unknown key below `node`. Recursion depth is bounded by the YAML
/// loader's nesting limit; `pointer` is one buffer reused for the whole walk.
fn find_unknown_keys<'s>(
    schema: &'s TypeSchema,
    node: &Value,
    schemas: &[&'s Value],
    pointer: &mut String,
    out: &mut Vec<UnknownKey<'s>>,
) {
    match node {
        Value::Object(map) => {
            let fields = TypeSchema::fields(schemas);
            for (key, child) in map {
                let len = pointer.len();
                if let Some(known) = fields.as_ref().filter(|f| !f.contains(&key.as_str())) {
                    out.push(UnknownKey {
                        object: pointer.clone(),
                        key: key.clone(),
                        known: known.clone(),
                    });
                    continue;
                }
                let next = schema.child(schemas, Some(key));
                if !next.is_empty() && (child.is_object() || child.is_array()) {
                    *pointer = push_pointer(pointer, key);
                    find_unknown_keys(schema, child, &next, pointer, out);
                    pointer.truncate(len);
                }
            }
        }
        Value::Array(items) => {
            let next = schema.child(schemas, None);
            if next.is_empty() {
                return;
            }
            for (i, child) in items
                .iter()
                .enumerate()
                .filter(|(_, c)| c.is_object() || c.is_array())
            {
                let len = pointer.len();
                *pointer = push_pointer(pointer, &i.to_string());
                find_unknown_keys(schema, child, &next, pointer, out);
                pointer.truncate(len);
            }
        }
        _ => {}
    }
}

/// Reports every key of `value` its schema does not know and returns the value without
/// them (borrowed when there were none, the common case), with the (object pointer,
/// suggested field) pairs of the typos, so that a follow-up "missing field" for the same
/// field is not reported twice.
fn strip_unknown_keys<'v>(
    schema: &TypeSchema,
    doc: &Document,
    base: &str,
    value: &'v Value,
    diags: &mut Diagnostics,
) -> (Cow<'v, Value>, Vec<(String, String)>) {
    let mut root = Vec::new();
    schema.alternatives(&schema.root, &mut root, 0);
    let mut unknown = Vec::new();
    let mut pointer = base.to_owned();
    find_unknown_keys(schema, value, &root, &mut pointer, &mut unknown);
    if unknown.is_empty() {
        return (Cow::Borrowed(value), Vec::new());
    }
    let mut suggested = Vec::new();
    let mut clean = value.clone();
    for u in &unknown {
        let relative = &u.object[base.len()..];
        if let Some(Value::Object(map)) = clean.pointer_mut(relative) {
            map.remove(&u.key);
        }
        let at = doc.index.key(&push_pointer(&u.object, &u.key));
        let mut d = Diagnostic::error(
            at,
            format!("unknown field `{}`", crate::diag::excerpt(&u.key)),
        );
        if let Some(near) = did_you_mean(&u.key, u.known.iter().copied()) {
            d = d.with_help(format!("did you mean `{near}`?"));
            suggested.push((u.object.clone(), near.to_owned()));
        } else if !u.known.is_empty() {
            let mut list: Vec<_> = u.known.iter().map(|k| format!("`{k}`")).collect();
            list.sort();
            d = d.with_help(format!("expected one of {}", list.join(", ")));
        }
        diags.push(d);
    }
    (Cow::Owned(clean), suggested)
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
    match serde_path_to_error::deserialize::<_, T>(clean.as_ref()) {
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
