//! axe-core, the accessibility engine, run in a live page: the engine installed from the
//! npm registry by `scripts/axe-core` (with the rule that a missing engine skips the check
//! unless `CI` is set), injected over the DevTools protocol, and the rules the page breaks
//! with the impact axe-core gives them.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::live::Live;
use crate::{BrowserCheckError, Result, on_ci};

/// The repository's `scripts/axe-core`.
fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/axe-core")
}

/// What [`engine`] found.
#[derive(Clone, Debug)]
pub enum Engine {
    /// The text of axe-core's `axe.min.js`.
    Loaded(String),
    /// It could not be installed and `CI` is not set: the caller should say why and pass.
    Skipped(String),
}

/// axe-core, installed by `scripts/axe-core` when missing.
///
/// # Errors
/// When it cannot be installed and [`on_ci`], or its script cannot be read.
pub fn engine() -> Result<Engine> {
    let script = script();
    let run = Command::new(&script)
        .output()
        .map_err(|source| BrowserCheckError::Io {
            what: "running",
            path: script.clone(),
            source,
        })?;
    if !run.status.success() {
        let stderr = String::from_utf8_lossy(&run.stderr).trim().to_owned();
        if on_ci() {
            return Err(BrowserCheckError::AxeCoreMissing { stderr });
        }
        return Ok(Engine::Skipped(format!(
            "axe-core could not be installed ({}): {stderr}",
            run.status
        )));
    }
    let path = PathBuf::from(String::from_utf8_lossy(&run.stdout).trim());
    std::fs::read_to_string(&path)
        .map(Engine::Loaded)
        .map_err(|source| BrowserCheckError::Io {
            what: "reading",
            path,
            source,
        })
}

/// A rule of axe-core the page breaks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The rule's id (`color-contrast`, `button-name`).
    pub rule: String,
    /// `minor`, `moderate`, `serious` or `critical`.
    pub impact: String,
    /// What the rule asks.
    pub help: String,
    /// The elements that break it, as CSS selectors.
    pub targets: Vec<String>,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}): {} — {}",
            self.rule,
            self.impact,
            self.help,
            self.targets.join(", ")
        )
    }
}

/// Runs axe-core over the whole document and maps each violation to what a report needs.
const RUN: &str = "axe.run(document, {resultTypes: ['violations']}).then(r => r.violations.map(v => ({rule: v.id, impact: v.impact || '', help: v.help, targets: v.nodes.map(n => n.target.join(' '))})))";

/// The violations of axe-core's answer, in its order.
fn violations(answer: &Value) -> Vec<Violation> {
    let text = |v: &Value, key: &str| v[key].as_str().unwrap_or_default().to_owned();
    answer
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| Violation {
            rule: text(v, "rule"),
            impact: text(v, "impact"),
            help: text(v, "help"),
            targets: v["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect(),
        })
        .collect()
}

/// The violations a user of assistive technology is blocked or seriously hindered by:
/// impact `serious` or `critical`.
pub fn serious(found: &[Violation]) -> Vec<&Violation> {
    found
        .iter()
        .filter(|v| matches!(v.impact.as_str(), "serious" | "critical"))
        .collect()
}

impl Live {
    /// Injects axe-core (`engine`, the text of its script) into the page, once per
    /// document, and returns every rule the page breaks now.
    ///
    /// # Errors
    /// As [`Live::eval`].
    pub fn axe(&mut self, engine: &str) -> Result<Vec<Violation>> {
        if self.eval("typeof axe === 'undefined'")? == Value::Bool(true) {
            self.eval(engine)?;
        }
        Ok(violations(&self.eval(RUN)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_serious_and_critical_violations_fail_a_page() {
        let answer = serde_json::json!([
            {"rule": "region", "impact": "moderate", "help": "landmarks", "targets": ["#a"]},
            {"rule": "color-contrast", "impact": "serious", "help": "contrast", "targets": ["#b", ".c"]},
            {"rule": "button-name", "impact": "critical", "help": "names", "targets": []},
        ]);
        let found = violations(&answer);
        let rules: Vec<&str> = serious(&found).iter().map(|v| v.rule.as_str()).collect();
        assert_eq!(rules, ["color-contrast", "button-name"]);
        assert_eq!(
            found[1].to_string(),
            "color-contrast (serious): contrast — #b, .c"
        );
    }
}
