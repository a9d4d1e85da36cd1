//! Provenance: every setting of the Environments, the Scenario and the PriceSheet whose
//! value is the embedded default, with the source its documentation gives (or "no source").
//! The documentation is the one `plinth explain` prints, so the report and the reference
//! cannot disagree.

use plinth_model::estate::{Estate, default_environments};
use plinth_model::kinds::inventory::{Watts, default_lead_time, default_rack_units};
use plinth_model::kinds::price_sheet::{LABOUR_OPERATIONS, PriceSheetSpec};
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

/// Adds the fields of `used` (a `kind` spec, shown as `label`) equal to `default`.
fn entries<T: Serialize>(
    kind: &str,
    label: &str,
    used: &T,
    default: &T,
    out: &mut Vec<Provenance>,
) {
    let (Ok(u), Ok(d)) = (serde_json::to_value(used), serde_json::to_value(default)) else {
        return;
    };
    let mut leaves = Vec::new();
    equal_leaves(&format!("{kind}.spec"), &u, &d, &mut leaves);
    for (path, value) in leaves {
        push(out, format!("{label}{}", &path[kind.len()..]), &path, value);
    }
}

/// Adds `field`, documented at `explain_path`.
fn push(out: &mut Vec<Provenance>, field: String, explain_path: &str, value: String) {
    let (source, sourced) = documented(explain_path);
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

/// Every default value the comparison used.
pub fn provenance(estate: &Estate) -> Vec<Provenance> {
    let (virtualized, bare_metal) = default_environments();
    let mut out = Vec::new();
    for class in &estate.inventory.spec.host_classes {
        let at = format!("Inventory.spec.hostClasses[{}]", class.name);
        if class.watts == Watts::default() {
            let w = class.watts;
            let value = format!("idle {} W, peak {} W", w.idle, w.peak);
            let doc = "Inventory.spec.hostClasses.watts.idle";
            push(&mut out, format!("{at}.watts"), doc, value);
        }
        if class.lead_time == default_lead_time() {
            let value = class.lead_time.to_string();
            let doc = "Inventory.spec.hostClasses.leadTime";
            push(&mut out, format!("{at}.leadTime"), doc, value);
        }
        if class.rack_units == default_rack_units() {
            let doc = "Inventory.spec.hostClasses.rackUnits";
            let value = class.rack_units.to_string();
            push(&mut out, format!("{at}.rackUnits"), doc, value);
        }
    }
    let virtualized_label = "Environment(virtualized)";
    let used = &estate.virtualized.spec;
    entries(
        "Environment",
        virtualized_label,
        used,
        &virtualized,
        &mut out,
    );
    let used = &estate.bare_metal.spec;
    entries(
        "Environment",
        "Environment(bareMetal)",
        used,
        &bare_metal,
        &mut out,
    );
    let used = &estate.scenario.spec;
    entries(
        "Scenario",
        "Scenario",
        used,
        &ScenarioSpec::default(),
        &mut out,
    );
    let used = &estate.price_sheet.spec;
    entries(
        "PriceSheet",
        "PriceSheet",
        used,
        &PriceSheetSpec::default(),
        &mut out,
    );
    let hours = &estate.price_sheet.spec.labour.hours;
    for (op, h, why) in LABOUR_OPERATIONS {
        if !hours.contains_key(op) {
            out.push(Provenance {
                field: format!("PriceSheet.spec.labour.hours.{op}"),
                value: format!("{h} h"),
                sourced: cites_a_source(why),
                source: why.to_owned(),
            });
        }
    }
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
