//! Provenance: every setting of the Environments, the Scenario and the PriceSheet whose
//! value is the embedded default, with the source its documentation gives (or "no source").
//! The documentation is the one `plinth explain` prints, so the report and the reference
//! cannot disagree.

use plinth_model::estate::{Estate, default_environments};
use plinth_model::kinds::price_sheet::PriceSheetSpec;
use plinth_model::kinds::scenario::ScenarioSpec;
use plinth_model::schema::explain;
use serde::Serialize;
use serde_json::Value;

/// One value that came from a default.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Provenance {
    /// `KIND.spec.field.path`, as `plinth explain` takes it.
    pub field: String,
    /// The value used.
    pub value: String,
    /// Whether the documentation cites a published figure for it.
    pub sourced: bool,
    /// The field's documentation, source included.
    pub source: String,
}

/// The DESCRIPTION section of `plinth explain target`, on one line.
fn description(target: &str) -> String {
    let Ok(text) = explain(target) else {
        return String::new();
    };
    let Some((_, rest)) = text.split_once("DESCRIPTION:\n") else {
        return String::new();
    };
    rest.split("\n\n")
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether a field's documentation gives a reason for its default — `(default 15s,
/// vSphere HA)`, `(default 0.023: tuned KVM Linpack …, REFERENCES.md §1)` — rather than
/// none (`(default true)`) or an admitted assumption.
fn cites_a_source(doc: &str) -> bool {
    let lower = doc.to_lowercase();
    if ["assumption", "no source", "no published", "not found"]
        .iter()
        .any(|w| lower.contains(w))
    {
        return false;
    }
    if doc.contains("REFERENCES.md") || doc.contains('§') {
        return true;
    }
    lower.split("(default").skip(1).any(|rest| {
        let inner = rest.split(')').next().unwrap_or_default();
        inner
            .find([':', ',', ';'])
            .is_some_and(|at| inner[at + 1..].trim().len() > 2)
    })
}

/// The documentation of `field`, or of its nearest ancestor that gives a source.
fn documented(field: &str) -> (String, bool) {
    let own = description(field);
    if cites_a_source(&own) {
        return (own, true);
    }
    let mut path = field;
    while let Some((parent, _)) = path.rsplit_once('.') {
        if !parent.contains('.') || parent.ends_with(".spec") {
            break;
        }
        let doc = description(parent);
        if cites_a_source(&doc) {
            return (format!("{own} Of {parent}: {doc}"), true);
        }
        path = parent;
    }
    (own, false)
}

/// Scalar leaves of `used` equal to the same leaf of `default`.
fn equal_leaves(prefix: &str, used: &Value, default: &Value, out: &mut Vec<(String, String)>) {
    match (used, default) {
        (Value::Object(u), Value::Object(d)) => {
            for (k, v) in u {
                if k == "type" {
                    continue;
                }
                if let Some(dv) = d.get(k) {
                    equal_leaves(&format!("{prefix}.{k}"), v, dv, out);
                }
            }
        }
        (Value::Array(_), _) | (_, Value::Array(_)) | (Value::Null, _) => {}
        (u, d) if u == d => out.push((
            prefix.to_owned(),
            match u {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            },
        )),
        _ => {}
    }
}

fn entries<T: Serialize>(kind: &str, used: &T, default: &T, out: &mut Vec<Provenance>) {
    let (Ok(u), Ok(d)) = (serde_json::to_value(used), serde_json::to_value(default)) else {
        return;
    };
    let mut leaves = Vec::new();
    equal_leaves(&format!("{kind}.spec"), &u, &d, &mut leaves);
    for (field, value) in leaves {
        let (source, sourced) = documented(&field);
        out.push(Provenance {
            sourced,
            source: if source.is_empty() {
                "no source".into()
            } else {
                source
            },
            field,
            value,
        });
    }
}

/// Every default value the comparison used.
pub fn provenance(estate: &Estate) -> Vec<Provenance> {
    let (virtualized, bare_metal) = default_environments();
    let mut out = Vec::new();
    entries(
        "Environment",
        &estate.virtualized.spec,
        &virtualized,
        &mut out,
    );
    entries(
        "Environment",
        &estate.bare_metal.spec,
        &bare_metal,
        &mut out,
    );
    entries(
        "Scenario",
        &estate.scenario.spec,
        &ScenarioSpec::default(),
        &mut out,
    );
    entries(
        "PriceSheet",
        &estate.price_sheet.spec,
        &PriceSheetSpec::default(),
        &mut out,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_told_from_assumptions() {
        assert!(cites_a_source(
            "Power usage effectiveness (default 1.58, Uptime Institute 2023, REFERENCES.md §5)."
        ));
        assert!(!cites_a_source(
            "Price per kWh (default 0.15; an assumption, no source in REFERENCES.md)."
        ));
        assert!(!cites_a_source("Live-migration bandwidth (default 10)."));
        assert!(cites_a_source(
            "How often DRS looks (default 5m, vSphere DRS's cycle)."
        ));
        assert!(!cites_a_source("CPU reserved per host (default 4 cores)."));
    }

    #[test]
    fn the_pue_default_is_described_from_the_schema() {
        let d = description("PriceSheet.spec.power.pue");
        assert!(d.contains("1.58"), "{d}");
    }
}
