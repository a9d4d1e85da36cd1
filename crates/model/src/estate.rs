//! An estate: all documents of one input, validated and with defaults filled in.
//!
//! One input = one estate: every source handed to [`load`] belongs to it. It has exactly
//! one Inventory and at most one Scenario, PriceSheet and Environment per type; a missing
//! one is the embedded default, and [`Origin::Default`] says so for every report.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::diag::Diagnostics;
use crate::kinds::calibration::CalibrationSpec;
use crate::kinds::cluster::ClusterSpec;
use crate::kinds::environment::{self, BareMetalSpec, VirtualizedSpec};
use crate::kinds::inventory::{HostClass, HostRole, InventorySpec};
use crate::kinds::price_sheet::PriceSheetSpec;
use crate::kinds::scenario::ScenarioSpec;
use crate::kinds::vm_set::VmSetSpec;
use crate::source::{Location, SourceFile};
use crate::workload::{DisruptionBudget, Workload};
use crate::yaml::LocationIndex;

/// Where a singleton document came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Declared in the input, at this place.
    Declared(Location),
    /// Not in the input: the embedded default.
    Default,
}

impl Origin {
    /// True for the embedded default.
    pub fn is_default(&self) -> bool {
        matches!(self, Self::Default)
    }
}

/// A named document's spec and where it was written.
#[derive(Clone, Debug, PartialEq)]
pub struct Named<S> {
    /// `metadata.name`.
    pub name: String,
    /// The spec, defaults filled in.
    pub spec: S,
    /// Where the document starts.
    pub location: Location,
    /// Where each of its fields was written.
    pub index: Arc<LocationIndex>,
}

impl<S> Named<S> {
    /// Where the value at `pointer` (`/spec/nodePools/0/vcpu`) was written, or its
    /// nearest written ancestor.
    pub fn at(&self, pointer: &str) -> Location {
        self.index.value(pointer)
    }

    /// Where the key of the member at `pointer` was written.
    pub fn key_at(&self, pointer: &str) -> Location {
        self.index.key(pointer)
    }
}

/// A singleton spec and its origin.
#[derive(Clone, Debug, PartialEq)]
pub struct Provided<S> {
    /// The spec.
    pub spec: S,
    /// Declared or default.
    pub origin: Origin,
}

/// One physical host of the inventory, expanded from its entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Host {
    /// Unique name.
    pub name: String,
    /// Index into `InventorySpec::host_classes`.
    pub class: usize,
    /// Index into `InventorySpec::racks`.
    pub rack: usize,
    /// Active or cold spare.
    pub role: HostRole,
}

/// A validated estate.
#[derive(Clone, Debug)]
pub struct Estate {
    /// What exists and what can be bought.
    pub inventory: Named<InventorySpec>,
    /// Every host, expanded from the inventory's entries, in declaration order.
    pub hosts: Vec<Host>,
    /// The virtualized Environment.
    pub virtualized: Provided<VirtualizedSpec>,
    /// The bare-metal Environment.
    pub bare_metal: Provided<BareMetalSpec>,
    /// The Scenario.
    pub scenario: Provided<ScenarioSpec>,
    /// The PriceSheet.
    pub price_sheet: Provided<PriceSheetSpec>,
    /// A Calibration, if one was given.
    pub calibration: Option<Named<CalibrationSpec>>,
    /// Clusters, in input order.
    pub clusters: Vec<Named<ClusterSpec>>,
    /// Non-Kubernetes VM sets.
    pub vm_sets: Vec<Named<VmSetSpec>>,
    /// Workloads, in input order.
    pub workloads: Vec<Workload>,
    /// PodDisruptionBudgets.
    pub disruption_budgets: Vec<DisruptionBudget>,
    /// StorageClass name → whether its volumes are node-local.
    pub storage_classes: BTreeMap<String, bool>,
}

impl Estate {
    /// The class of `host`.
    pub fn class_of(&self, host: &Host) -> &HostClass {
        &self.inventory.spec.host_classes[host.class]
    }

    /// The cluster called `name`.
    pub fn cluster(&self, name: &str) -> Option<&Named<ClusterSpec>> {
        self.clusters.iter().find(|c| c.name == name)
    }

    /// Names of the singletons that are embedded defaults, for every report's provenance.
    pub fn defaulted(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.virtualized.origin.is_default() {
            out.push("Environment/virtualized");
        }
        if self.bare_metal.origin.is_default() {
            out.push("Environment/bareMetal");
        }
        if self.scenario.origin.is_default() {
            out.push("Scenario");
        }
        if self.price_sheet.origin.is_default() {
            out.push("PriceSheet");
        }
        out
    }
}

/// What one load produced: the estate when there were no errors, and every diagnostic.
#[derive(Debug)]
pub struct Loaded {
    /// The estate, `None` when any error was found.
    pub estate: Option<Estate>,
    /// Errors, warnings and notes, sorted by place.
    pub diagnostics: Diagnostics,
}

impl Loaded {
    /// `--strict`: every warning becomes an error, and an input with any has no estate.
    pub fn strict(mut self) -> Self {
        self.diagnostics.strict();
        if self.diagnostics.has_errors() {
            self.estate = None;
        }
        self
    }
}

/// One input: its sources, and for some of them the cluster their workloads belong to
/// (the CLI's `--cluster NAME=PATH`).
#[derive(Clone, Debug, Default)]
pub struct Input {
    /// The texts, in order.
    pub sources: Vec<SourceFile>,
    /// Source name → cluster its workloads are bound to.
    pub bindings: BTreeMap<Arc<str>, String>,
}

impl Input {
    /// Adds a source.
    pub fn add(&mut self, source: SourceFile) {
        self.sources.push(source);
    }

    /// Adds a source whose workloads belong to `cluster`.
    pub fn add_bound(&mut self, source: SourceFile, cluster: impl Into<String>) {
        self.bindings.insert(source.name.clone(), cluster.into());
        self.sources.push(source);
    }
}

/// Parses and validates every source of `input` into one estate.
pub fn load(input: &Input) -> Loaded {
    let mut diags = Diagnostics::default();
    let docs = crate::document::collect(input, &mut diags);
    let estate = crate::validate::assemble(docs, input, &mut diags);
    diags.sort();
    Loaded {
        estate: if diags.has_errors() { None } else { estate },
        diagnostics: diags,
    }
}

/// What each document of `input` shows on its own: syntax, fields, types, names and
/// ranges — the diagnostics of [`load`] except those that compare objects with each other
/// (a pool naming an unknown host class, a workload bound to no cluster, a missing
/// Inventory). A service checks an object with this when it is written, and reports the
/// rest as conditions once the objects it refers to are there.
pub fn check_objects(input: &Input) -> Diagnostics {
    let mut diags = Diagnostics::default();
    let docs = crate::document::collect(input, &mut diags);
    crate::validate::check_ranges(&docs, &mut diags);
    diags.sort();
    diags
}

/// The default Environments, for callers that need them without an input.
pub fn default_environments() -> (VirtualizedSpec, BareMetalSpec) {
    (
        environment::default_virtualized(),
        environment::default_bare_metal(),
    )
}

/// Expands inventory entries into hosts, naming counted ones `<rack>-<class>-<nn>`.
pub fn expand_hosts(inventory: &InventorySpec) -> Vec<Host> {
    let mut hosts = Vec::new();
    let mut taken = BTreeSet::new();
    let mut counters: BTreeMap<(usize, usize), u32> = BTreeMap::new();
    for entry in &inventory.hosts {
        let Some(class) = inventory
            .host_classes
            .iter()
            .position(|c| c.name == entry.class)
        else {
            continue;
        };
        let Some(rack) = inventory.racks.iter().position(|r| r.name == entry.rack) else {
            continue;
        };
        match &entry.name {
            Some(name) => {
                taken.insert(name.clone());
                hosts.push(Host {
                    name: name.clone(),
                    class,
                    rack,
                    role: entry.role,
                });
            }
            None => {
                for _ in 0..entry.count {
                    let n = counters.entry((class, rack)).or_insert(0);
                    let name = loop {
                        *n += 1;
                        let candidate = format!("{}-{}-{:02}", entry.rack, entry.class, n);
                        if !taken.contains(&candidate) {
                            break candidate;
                        }
                    };
                    taken.insert(name.clone());
                    hosts.push(Host {
                        name,
                        class,
                        rack,
                        role: entry.role,
                    });
                }
            }
        }
    }
    hosts
}
