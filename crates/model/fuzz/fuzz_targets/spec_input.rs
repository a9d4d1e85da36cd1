//! The input a spec target decodes: one document of a kind whose `spec` is the fuzzed
//! text (indented under `spec:`), beside the small example's Inventory and Cluster, so the
//! decoder, the range checks and the cross-references (clusters, pools, hosts, classes
//! the spec names) all run. Shared by the fuzz targets and the corpus replay test.

use plinth_model::{Input, SourceFile};

/// A kind whose spec is fuzzed.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Kind {
    /// `Scenario`.
    Scenario,
    /// `Environment`.
    Environment,
}

impl Kind {
    /// The kind's name in a manifest, and its corpus directory in lower case.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Scenario => "Scenario",
            Self::Environment => "Environment",
        }
    }
}

const INVENTORY: &str = include_str!("../../../../examples/small/inventory.yaml");
const CLUSTER: &str = include_str!("../../../../examples/small/cluster.yaml");

/// The document of `kind` whose spec is `data` (read as lossy UTF-8).
pub(crate) fn document(kind: Kind, data: &[u8]) -> String {
    let mut doc = format!(
        "apiVersion: plinth.dev/v1alpha1\nkind: {}\nmetadata:\n  name: fuzzed\nspec:\n",
        kind.name()
    );
    for line in String::from_utf8_lossy(data).lines() {
        doc.push_str("  ");
        doc.push_str(line);
        doc.push('\n');
    }
    doc
}

/// The whole input: the small example's Inventory and Cluster and the fuzzed document.
pub(crate) fn input(kind: Kind, data: &[u8]) -> Input {
    let mut input = Input::default();
    input.add(SourceFile::new("inventory.yaml", INVENTORY));
    input.add(SourceFile::new("cluster.yaml", CLUSTER));
    input.add(SourceFile::new("fuzzed.yaml", document(kind, data)));
    input
}
