//! Diagnostics as a compiler prints them: the message, the file:line:column, the source
//! line with a caret, and the suggested fix.

use std::ops::Range;

use codespan_reporting::diagnostic::{Diagnostic as Report, Label};
use codespan_reporting::files::SimpleFiles;
use codespan_reporting::term::{self, Config};
use plinth_model::{Diagnostic, Input, Severity};

/// Byte range of the token at (line, column) — to the end of the word, or one character.
fn span(text: &str, line: u32, column: u32) -> Range<usize> {
    let start_of_line: usize = text
        .split_inclusive('\n')
        .take(line.saturating_sub(1) as usize)
        .map(str::len)
        .sum();
    let rest = &text[start_of_line.min(text.len())..];
    let offset: usize = rest
        .chars()
        .take(column.saturating_sub(1) as usize)
        .map(char::len_utf8)
        .sum();
    let start = (start_of_line + offset).min(text.len());
    let word = text[start..]
        .find(|c: char| c.is_whitespace() || c == ':' || c == ',')
        .unwrap_or(text.len() - start);
    start..(start + word.max(1)).min(text.len())
}

/// Longest source line shown under a diagnostic; a longer one is named, not echoed.
const MAX_SHOWN_LINE: usize = 400;

/// The length in bytes of line `line` (1-based) of `text`, 0 past the end.
fn line_len(text: &str, line: u32) -> usize {
    text.split('\n')
        .nth(line.saturating_sub(1) as usize)
        .map_or(0, str::len)
}

/// Renders every diagnostic against the input's text.
pub(crate) fn render(input: &Input, diagnostics: &[Diagnostic]) -> String {
    let mut files = SimpleFiles::new();
    let ids: Vec<usize> = input
        .sources
        .iter()
        .map(|s| files.add(s.name.to_string(), s.text.to_string()))
        .collect();
    let config = Config::default();
    let mut out = String::new();
    for d in diagnostics {
        let report = match d.severity {
            Severity::Error => Report::error(),
            Severity::Warning => Report::warning(),
            Severity::Note => Report::note(),
        }
        .with_message(&d.message);
        let file = input.sources.iter().position(|s| s.name == d.location.file);
        let long = file.map(|i| line_len(&input.sources[i].text, d.location.line));
        let report = match (file, long) {
            (Some(_), Some(len)) if len > MAX_SHOWN_LINE => report.with_notes(vec![format!(
                "at {} (a line of {len} bytes, not shown)",
                d.location
            )]),
            (Some(i), _) => report.with_labels(vec![Label::primary(
                ids[i],
                span(&input.sources[i].text, d.location.line, d.location.column),
            )]),
            (None, _) => report.with_notes(vec![format!("at {}", d.location)]),
        };
        let report = match &d.help {
            Some(h) => report.with_notes(vec![format!("help: {h}")]),
            None => report,
        };
        if term::emit_to_string(&mut out, &config, &files, &report).is_err() {
            out.push_str(&format!("{d}\n"));
        }
    }
    out
}

/// `value` as block-style YAML. Strings are written as JSON strings, which YAML reads as
/// double-quoted scalars, so no value can change its type or meaning on the way.
pub(crate) fn to_yaml(value: &serde_json::Value) -> String {
    let mut out = String::new();
    yaml_node(value, 0, &mut out);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

fn yaml_scalar(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Object(m) if m.is_empty() => "{}".into(),
        serde_json::Value::Array(a) if a.is_empty() => "[]".into(),
        other => other.to_string(),
    }
}

fn yaml_node(value: &serde_json::Value, indent: usize, out: &mut String) {
    use serde_json::Value;
    let pad = " ".repeat(indent);
    match value {
        Value::Object(m) if !m.is_empty() => {
            for (k, v) in m {
                let key = Value::String(k.clone()).to_string();
                match v {
                    Value::Object(x) if !x.is_empty() => {
                        out.push_str(&format!("{pad}{key}:\n"));
                        yaml_node(v, indent + 2, out);
                    }
                    Value::Array(x) if !x.is_empty() => {
                        out.push_str(&format!("{pad}{key}:\n"));
                        yaml_node(v, indent, out);
                    }
                    _ => out.push_str(&format!("{pad}{key}: {}\n", yaml_scalar(v))),
                }
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for v in a {
                match v {
                    Value::Object(x) if !x.is_empty() => {
                        let mut inner = String::new();
                        yaml_node(v, indent + 2, &mut inner);
                        out.push_str(&format!("{pad}- {}", &inner[indent + 2..]));
                    }
                    Value::Array(x) if !x.is_empty() => {
                        out.push_str(&format!("{pad}-\n"));
                        yaml_node(v, indent + 2, out);
                    }
                    _ => out.push_str(&format!("{pad}- {}\n", yaml_scalar(v))),
                }
            }
        }
        other => out.push_str(&format!("{pad}{}\n", yaml_scalar(other))),
    }
}

#[cfg(test)]
mod tests {
    use super::span;

    #[test]
    fn spans_cover_the_word() {
        let text = "a: 1\n  replica: 3\n";
        assert_eq!(&text[span(text, 2, 3)], "replica");
        assert_eq!(&text[span(text, 9, 9)], "");
    }
}
