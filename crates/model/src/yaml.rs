//! YAML text → JSON values with a location for every node.
//!
//! Built on the event stream of `saphyr-parser` with an explicit stack, so no input can
//! recurse the parser into a stack overflow: nesting depth, the number of nodes and the
//! bytes of scalar text (alias expansion included in both) are bounded, and a breach is
//! an ordinary error.
//! Scalars resolve by the YAML 1.2 core schema; quoted scalars are always strings.

use std::collections::HashMap;
use std::sync::Arc;

use saphyr_parser::{Event, Marker, Parser, ScalarStyle, ScanError};
use serde_json::{Map, Number, Value};

use crate::diag::Diagnostic;
use crate::source::{Location, SourceFile};

/// Deepest nesting accepted; real manifests stay under 20.
pub const MAX_DEPTH: usize = 64;
/// Most nodes one file may expand to, aliases included.
pub const MAX_NODES: usize = 1_000_000;
/// Most bytes of scalar text one file may expand to, aliases included: a 1 MB string
/// aliased a thousand times is refused here instead of taking gigabytes.
pub const MAX_EXPANDED_BYTES: usize = 32 << 20;
/// Longest mapping key, in characters (YAML itself limits implicit keys to 1024).
pub const MAX_KEY_CHARS: usize = 1024;
/// Most bytes of JSON pointers the location index of one file may hold; with the key and
/// depth limits this bounds the index's memory whatever the input's shape.
pub const MAX_INDEX_BYTES: usize = 64 << 20;

/// One YAML document of a file, as a JSON value plus where each of its nodes was written.
#[derive(Clone, Debug)]
pub struct Document {
    /// The document's content.
    pub value: Value,
    /// Locations of the nodes, by JSON pointer.
    pub index: LocationIndex,
    /// Where the document starts.
    pub start: Location,
}

/// Where the nodes of one document are, keyed by JSON pointer (`/spec/replicas`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocationIndex {
    file: Arc<str>,
    nodes: HashMap<String, NodeLocation>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct NodeLocation {
    key: Option<(u32, u32)>,
    value: (u32, u32),
    /// Written as a plain (unquoted) scalar: `1.30` there is a number, not a string.
    plain_scalar: bool,
}

impl LocationIndex {
    fn at(&self, (line, column): (u32, u32)) -> Location {
        Location::new(self.file.clone(), line, column)
    }

    /// The nearest recorded node at or above `pointer` (aliases and missing fields resolve
    /// to their closest written ancestor).
    fn nearest(&self, pointer: &str) -> Option<&NodeLocation> {
        let mut p = pointer;
        loop {
            if let Some(n) = self.nodes.get(p) {
                return Some(n);
            }
            p = &p[..p.rfind('/')?];
        }
    }

    /// Where the value at `pointer` was written.
    pub fn value(&self, pointer: &str) -> Location {
        self.nearest(pointer).map_or_else(
            || Location::start_of(self.file.clone()),
            |n| self.at(n.value),
        )
    }

    /// Where the key of the member at `pointer` was written (its value's place for list items).
    pub fn key(&self, pointer: &str) -> Location {
        self.nearest(pointer).map_or_else(
            || Location::start_of(self.file.clone()),
            |n| self.at(n.key.unwrap_or(n.value)),
        )
    }

    /// The index of each item of the sequence at `pointer`, re-rooted at the item, in
    /// one pass over the nodes (a `List`'s items become documents of their own).
    pub fn split_items(&self, pointer: &str, count: usize) -> Vec<Self> {
        let mut out = vec![
            Self {
                file: self.file.clone(),
                nodes: HashMap::new(),
            };
            count
        ];
        for (p, node) in &self.nodes {
            let Some(rest) = p.strip_prefix(pointer).and_then(|r| r.strip_prefix('/')) else {
                continue;
            };
            let (index, below) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            if let Some(item) = index.parse::<usize>().ok().and_then(|i| out.get_mut(i)) {
                item.nodes.insert(below.to_owned(), *node);
            }
        }
        out
    }

    /// True when the node at exactly `pointer` is an unquoted scalar.
    pub fn is_plain_scalar(&self, pointer: &str) -> bool {
        self.nodes.get(pointer).is_some_and(|n| n.plain_scalar)
    }
}

/// Appends `segment` to a JSON pointer, escaping `~` and `/` as RFC 6901 says.
pub fn push_pointer(pointer: &str, segment: &str) -> String {
    let mut out = String::with_capacity(pointer.len() + segment.len() + 1);
    out.push_str(pointer);
    out.push('/');
    for c in segment.chars() {
        match c {
            '~' => out.push_str("~0"),
            '/' => out.push_str("~1"),
            c => out.push(c),
        }
    }
    out
}

fn pos(m: &Marker) -> (u32, u32) {
    let clamp = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
    (clamp(m.line()), clamp(m.col()).saturating_add(1))
}

/// A container being built.
enum Frame {
    Seq {
        items: Vec<Value>,
        pointer: String,
        anchor: usize,
        nodes: usize,
    },
    Map {
        map: Map<String, Value>,
        key: Option<(String, (u32, u32))>,
        pointer: String,
        anchor: usize,
        nodes: usize,
    },
}

struct Builder {
    file: Arc<str>,
    stack: Vec<Frame>,
    /// Anchored values with their node count and scalar bytes.
    anchors: HashMap<usize, (Value, usize, usize)>,
    nodes: HashMap<String, NodeLocation>,
    total_nodes: usize,
    total_bytes: usize,
    /// Bytes of JSON pointers kept in `nodes`.
    index_bytes: usize,
    done: Option<Value>,
}

enum Slot {
    /// The node is a mapping key.
    Key,
    /// The node is a value at this pointer, written after this key (if any).
    Value(String, Option<(u32, u32)>),
}

impl Builder {
    fn new(file: Arc<str>) -> Self {
        Self {
            file,
            stack: Vec::new(),
            anchors: HashMap::new(),
            nodes: HashMap::new(),
            total_nodes: 0,
            total_bytes: 0,
            index_bytes: 0,
            done: None,
        }
    }

    fn error(&self, at: (u32, u32), message: impl Into<String>) -> Diagnostic {
        Diagnostic::error(Location::new(self.file.clone(), at.0, at.1), message)
    }

    /// What the next node is: a key, or a value at which pointer.
    fn slot(&self) -> Slot {
        match self.stack.last() {
            None => Slot::Value(String::new(), None),
            Some(Frame::Seq { items, pointer, .. }) => {
                Slot::Value(push_pointer(pointer, &items.len().to_string()), None)
            }
            Some(Frame::Map { key: None, .. }) => Slot::Key,
            Some(Frame::Map {
                key: Some((k, at)),
                pointer,
                ..
            }) => Slot::Value(push_pointer(pointer, k), Some(*at)),
        }
    }

    /// Remembers where the node at `pointer` is, within a budget for the whole file.
    fn record(
        &mut self,
        pointer: String,
        key: Option<(u32, u32)>,
        at: (u32, u32),
        plain_scalar: bool,
    ) -> Result<(), Diagnostic> {
        self.index_bytes = self.index_bytes.saturating_add(pointer.len());
        if self.index_bytes > MAX_INDEX_BYTES {
            return Err(self
                .error(
                    at,
                    "the document's keys are too long or too deeply nested to index",
                )
                .with_help("split the input into smaller files, or shorten its keys"));
        }
        self.nodes.insert(
            pointer,
            NodeLocation {
                key,
                value: at,
                plain_scalar,
            },
        );
        Ok(())
    }

    fn count(&mut self, n: usize, bytes: usize, at: (u32, u32)) -> Result<(), Diagnostic> {
        self.total_nodes = self.total_nodes.saturating_add(n);
        self.total_bytes = self.total_bytes.saturating_add(bytes);
        if self.total_bytes > MAX_EXPANDED_BYTES {
            return Err(self
                .error(
                    at,
                    format!(
                        "more than {} MiB of YAML text (after alias expansion)",
                        MAX_EXPANDED_BYTES >> 20
                    ),
                )
                .with_help("split the input into smaller files, or alias fewer large values"));
        }
        if self.total_nodes > MAX_NODES {
            return Err(self
                .error(
                    at,
                    format!("more than {MAX_NODES} YAML nodes (after alias expansion)"),
                )
                .with_help("split the input into smaller files, or remove recursive aliases"));
        }
        for frame in &mut self.stack {
            match frame {
                Frame::Seq { nodes, .. } | Frame::Map { nodes, .. } => {
                    *nodes = nodes.saturating_add(n)
                }
            }
        }
        Ok(())
    }

    /// Attaches a finished node to its parent (or finishes the document).
    fn attach(&mut self, value: Value, at: (u32, u32)) -> Result<(), Diagnostic> {
        match self.stack.last_mut() {
            None => self.done = Some(value),
            Some(Frame::Seq { items, .. }) => items.push(value),
            Some(Frame::Map { map, key, .. }) => match key.take() {
                Some((k, _)) => {
                    map.insert(k, value);
                }
                None => {
                    let Value::String(k) = value else {
                        return Err(self.error(at, "a mapping key must be a plain scalar"));
                    };
                    if map.contains_key(&k) {
                        return Err(self
                            .error(at, format!("duplicate key `{k}`"))
                            .with_help("remove one of the two"));
                    }
                    if let Some(Frame::Map { key, .. }) = self.stack.last_mut() {
                        *key = Some((k, at));
                    }
                }
            },
        }
        Ok(())
    }

    fn scalar(
        &mut self,
        text: &str,
        style: ScalarStyle,
        anchor: usize,
        tagged_str: bool,
        at: (u32, u32),
    ) -> Result<(), Diagnostic> {
        self.count(1, text.len(), at)?;
        let plain = style == ScalarStyle::Plain && !tagged_str;
        let slot = self.slot();
        if matches!(slot, Slot::Key) && text.chars().count() > MAX_KEY_CHARS {
            return Err(self
                .error(
                    at,
                    format!("a mapping key longer than {MAX_KEY_CHARS} characters"),
                )
                .with_help("shorten the key"));
        }
        let value = match slot {
            Slot::Key => Value::String(text.to_owned()),
            Slot::Value(..) if plain => resolve_plain(text),
            Slot::Value(..) => Value::String(text.to_owned()),
        };
        if let Slot::Value(pointer, key) = slot {
            self.record(pointer, key, at, plain)?;
        }
        if anchor > 0 {
            self.anchors.insert(anchor, (value.clone(), 1, text.len()));
        }
        self.attach(value, at)
    }

    fn open(&mut self, map: bool, anchor: usize, at: (u32, u32)) -> Result<(), Diagnostic> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(self.error(at, format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        self.count(1, 0, at)?;
        let pointer = match self.slot() {
            Slot::Key => {
                return Err(
                    self.error(at, "a mapping key must be a plain scalar, not a collection")
                );
            }
            Slot::Value(pointer, key) => {
                self.record(pointer.clone(), key, at, false)?;
                pointer
            }
        };
        self.stack.push(if map {
            Frame::Map {
                map: Map::new(),
                key: None,
                pointer,
                anchor,
                nodes: 1,
            }
        } else {
            Frame::Seq {
                items: Vec::new(),
                pointer,
                anchor,
                nodes: 1,
            }
        });
        Ok(())
    }

    fn close(&mut self, at: (u32, u32)) -> Result<(), Diagnostic> {
        let (value, anchor, nodes) = match self.stack.pop() {
            Some(Frame::Seq {
                items,
                anchor,
                nodes,
                ..
            }) => (Value::Array(items), anchor, nodes),
            Some(Frame::Map {
                map, anchor, nodes, ..
            }) => (Value::Object(map), anchor, nodes),
            None => return Err(self.error(at, "unbalanced YAML collection")),
        };
        if anchor > 0 {
            let bytes = text_bytes(&value);
            self.anchors.insert(anchor, (value.clone(), nodes, bytes));
        }
        self.attach(value, at)
    }

    fn alias(&mut self, id: usize, at: (u32, u32)) -> Result<(), Diagnostic> {
        let Some(&(_, size, bytes)) = self.anchors.get(&id) else {
            return Err(self.error(at, "alias to an unknown anchor"));
        };
        self.count(size, bytes, at)?;
        let Some((value, ..)) = self.anchors.get(&id).cloned() else {
            return Err(self.error(at, "alias to an unknown anchor"));
        };
        if let Slot::Value(pointer, key) = self.slot() {
            self.record(pointer, key, at, false)?;
        }
        self.attach(value, at)
    }
}

/// Bytes of text in `value`: its strings and keys (8 for a number or other scalar).
/// Recursion is bounded by [`MAX_DEPTH`].
fn text_bytes(value: &Value) -> usize {
    match value {
        Value::String(s) => s.len(),
        Value::Array(a) => a.iter().map(text_bytes).sum(),
        Value::Object(m) => m.iter().map(|(k, v)| k.len() + text_bytes(v)).sum(),
        _ => 8,
    }
}

/// Resolves a plain scalar by the YAML 1.2 core schema.
fn resolve_plain(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(i) = text.parse::<i64>() {
            return Value::Number(i.into());
        }
        if let Ok(u) = text.trim_start_matches('+').parse::<u64>() {
            return Value::Number(u.into());
        }
    }
    if let Some(hex) = text.strip_prefix("0x")
        && let Ok(u) = u64::from_str_radix(hex, 16)
    {
        return Value::Number(u.into());
    }
    if let Some(oct) = text.strip_prefix("0o")
        && let Ok(u) = u64::from_str_radix(oct, 8)
    {
        return Value::Number(u.into());
    }
    let looks_float = digits.bytes().any(|b| b.is_ascii_digit())
        && digits
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'))
        && digits
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_digit() || b == b'.');
    if looks_float && let Some(n) = text.parse::<f64>().ok().and_then(Number::from_f64) {
        return Value::Number(n);
    }
    Value::String(text.to_owned())
}

fn scan_error(file: &Arc<str>, e: &ScanError) -> Diagnostic {
    let (line, column) = pos(e.marker());
    Diagnostic::error(
        Location::new(file.clone(), line, column),
        format!("invalid YAML: {}", e.info()),
    )
}

/// Parses every document of `source`. Documents before a syntax error are returned with it;
/// YAML cannot resynchronise after one, so the rest of the file is not read.
pub fn parse_documents(source: &SourceFile) -> (Vec<Document>, Option<Diagnostic>) {
    let file = source.name.clone();
    let mut docs = Vec::new();
    let mut builder = Builder::new(file.clone());
    let mut start = (1, 1);
    for item in Parser::new_from_str(&source.text) {
        let (event, span) = match item {
            Ok(ok) => ok,
            Err(e) => return (docs, Some(scan_error(&file, &e))),
        };
        let at = pos(&span.start);
        let step = match event {
            Event::DocumentStart(_) => {
                start = at;
                builder = Builder::new(file.clone());
                Ok(())
            }
            Event::DocumentEnd => {
                // An empty document (`---` at the end of a file) is no document.
                if let Some(value) = builder.done.take().filter(|v| !v.is_null()) {
                    let index = LocationIndex {
                        file: file.clone(),
                        nodes: std::mem::take(&mut builder.nodes),
                    };
                    docs.push(Document {
                        value,
                        index,
                        start: Location::new(file.clone(), start.0, start.1),
                    });
                }
                Ok(())
            }
            Event::Scalar(text, style, anchor, tag) => {
                let tagged_str = tag.as_ref().is_some_and(|t| t.suffix == "str");
                builder.scalar(&text, style, anchor, tagged_str, at)
            }
            Event::SequenceStart(anchor, _) => builder.open(false, anchor, at),
            Event::MappingStart(anchor, _) => builder.open(true, anchor, at),
            Event::SequenceEnd | Event::MappingEnd => builder.close(at),
            Event::Alias(id) => builder.alias(id, at),
            Event::StreamStart | Event::StreamEnd | Event::Nothing => Ok(()),
        };
        if let Err(d) = step {
            return (docs, Some(d));
        }
    }
    (docs, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(text: &str) -> (Vec<Document>, Option<Diagnostic>) {
        parse_documents(&SourceFile::new("t.yaml", text))
    }

    #[test]
    fn resolves_scalars_by_core_schema() {
        let (docs, err) =
            parse("a: 1\nb: 1.30\nc: '1.30'\nd: true\ne: ~\nf: 64Mi\ng: -3\nh: 0x1f\n");
        assert!(err.is_none());
        assert_eq!(
            docs[0].value,
            json!({"a": 1, "b": 1.3, "c": "1.30", "d": true, "e": null, "f": "64Mi", "g": -3, "h": 31})
        );
        assert!(docs[0].index.is_plain_scalar("/b"));
        assert!(!docs[0].index.is_plain_scalar("/c"));
    }

    #[test]
    fn locates_keys_and_values() {
        let (docs, _) = parse("---\nkind: X\nspec:\n  pools:\n    - name: a\n      replicas: 3\n");
        let idx = &docs[0].index;
        assert_eq!(idx.key("/spec/pools/0/replicas").to_string(), "t.yaml:6:7");
        assert_eq!(
            idx.value("/spec/pools/0/replicas").to_string(),
            "t.yaml:6:17"
        );
        // A missing field resolves to its nearest written ancestor.
        assert_eq!(idx.value("/spec/pools/0/missing").to_string(), "t.yaml:5:7");
    }

    #[test]
    fn list_items_get_their_own_index() {
        let (docs, _) = parse("kind: List\nitems:\n  - kind: A\n    spec: {x: 1}\n  - kind: B\n");
        let items = docs[0].index.split_items("/items", 2);
        assert_eq!(items[0].key("/kind").to_string(), "t.yaml:3:5");
        assert_eq!(items[0].value("/spec/x").to_string(), "t.yaml:4:15");
        assert_eq!(items[1].key("/kind").to_string(), "t.yaml:5:5");
        assert_eq!(items[1].value("/missing").to_string(), "t.yaml:5:5");
    }

    #[test]
    fn splits_documents() {
        let (docs, err) = parse("a: 1\n---\nb: 2\n---\n");
        assert!(err.is_none());
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].start.line, 2);
    }

    #[test]
    fn rejects_duplicate_keys() {
        let (_, err) = parse("a: 1\na: 2\n");
        assert_eq!(
            err.map(|d| d.to_string()).as_deref(),
            Some("t.yaml:2:1: error: duplicate key `a` (help: remove one of the two)")
        );
    }

    #[test]
    fn bounds_alias_bombs() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let prev = i - 1;
            text.push_str(&format!("a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"));
        }
        let (_, err) = parse(&text);
        assert!(err.is_some_and(|d| d.message.contains("alias expansion")));
    }

    #[test]
    fn bounds_the_bytes_aliases_expand_to() {
        let mut text = format!("big: &big {}\nall:\n", "x".repeat(1 << 20));
        for _ in 0..64 {
            text.push_str("  - *big\n");
        }
        let (_, err) = parse(&text);
        assert!(
            err.is_some_and(|d| d.message.contains("MiB of YAML text")),
            "64 aliases of 1 MiB are refused"
        );
    }

    #[test]
    fn bounds_key_length_and_index_size() {
        let long = format!("{}: 1\n", "k".repeat(MAX_KEY_CHARS + 1));
        let err = parse(&long).1.map(|d| d.message).unwrap_or_default();
        assert!(
            err.contains("longer than") || err.contains("invalid YAML"),
            "{err:?}"
        );
        // 1,000-character keys nested 60 deep with many leaves: the index budget stops it.
        let key = "k".repeat(1000);
        let mut text = String::new();
        for depth in 0..60 {
            text.push_str(&format!("{}{key}{depth}:\n", "  ".repeat(depth)));
        }
        for leaf in 0..2000 {
            text.push_str(&format!("{}x{leaf}: 1\n", "  ".repeat(60)));
        }
        assert!(
            parse(&text)
                .1
                .is_some_and(|d| d.message.contains("too long or too deeply nested"))
        );
    }

    #[test]
    fn bounds_nesting() {
        let text = "[".repeat(10_000);
        let (_, err) = parse(&text);
        assert!(err.is_some());
    }

    #[test]
    fn reports_syntax_errors_with_place() {
        let (_, err) = parse("a: [1, 2\nb: 3\n");
        let d = err.expect("syntax error");
        assert!(d.message.starts_with("invalid YAML"), "{d}");
    }
}
