//! Charts for Plinth's reports: pure functions that turn numbers into SVG text.
//!
//! This crate owns how a comparison looks: line charts over time with min/max bands,
//! grouped and stacked bars, histograms and phase timelines, each returned as one
//! self-contained `<svg>` element (inline presentation attributes, no scripts, no
//! external assets) that scales with its container through its `viewBox`. [`CSS`] holds
//! optional page styles for the charts; the page itself belongs to the caller
//! (`plinth compare`).
//!
//! It must not do I/O, read clocks or use randomness: the same input gives byte-identical
//! output. It never panics on data: empty, all-zero, single-point and non-finite inputs
//! render a visible "no data" note or the data that is there.
//!
//! Every chart is accessible (an `aria-label`, a `<title>`, a legend, axis titles with
//! units) and uses the Okabe-Ito colour-blind-safe [`PALETTE`]. Each data mark (`rect`,
//! `path` or `circle`) carries the class `series-N` and `data-series="<name>"` of the
//! series it draws, so tests and pages can find the marks of one series.
//!
//! ```
//! use plinth_charts::{Axis, BarSeries, GroupedBars, Orientation, grouped_bars};
//!
//! let svg = grouped_bars(&GroupedBars {
//!     title: "Availability by workload".into(),
//!     categories: vec!["web".into(), "payments".into()],
//!     value_axis: Axis::new("availability", "%"),
//!     series: vec![
//!         BarSeries { name: "virtualized".into(), values: vec![99.95, 99.9], errors: None },
//!         BarSeries { name: "bare metal".into(), values: vec![99.9, 99.7], errors: None },
//!     ],
//!     orientation: Orientation::Vertical,
//! });
//! assert!(svg.starts_with("<svg") && svg.contains(r#"data-series="bare metal""#));
//! ```

mod axes;
mod bars;
mod line;
mod scale;
mod stacked;
mod svg;
mod timeline;

pub use bars::{BarSeries, GroupedBars, Histogram, Samples, grouped_bars, histogram};
pub use line::{LineChart, LineSeries, MAX_POINTS_PER_SERIES, line_chart};
pub use scale::human_duration;
pub use stacked::{StackedBar, StackedBars, stacked_bars};
pub use timeline::{Timeline, TimelineSeries, timeline};

/// The Okabe-Ito palette, reordered so the first two series (the usual "virtualized" and
/// "bare metal") get blue and orange, the pair most readers tell apart.
pub const PALETTE: [&str; 8] = [
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#F0E442", "#000000",
];

/// An axis's title and unit; the chart writes them as "label (unit)".
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Axis {
    /// What the axis measures, e.g. "time" or "cost".
    pub label: String,
    /// The unit of its values, e.g. "days", "EUR/year"; empty for none.
    pub unit: String,
}

impl Axis {
    /// An axis with this label and unit.
    pub fn new(label: impl Into<String>, unit: impl Into<String>) -> Self {
        Axis {
            label: label.into(),
            unit: unit.into(),
        }
    }
}

/// Which way bars run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Orientation {
    /// Categories along the bottom, bars grow upwards.
    #[default]
    Vertical,
    /// Categories down the left side, bars grow rightwards; suits long category names.
    Horizontal,
}

/// How a duration axis maps time to length.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Scale {
    /// Equal lengths for equal durations.
    #[default]
    Linear,
    /// Equal lengths for equal ratios; shows seconds and weeks on one axis.
    Log,
}

/// Page styles for the charts, for the page that embeds them to inline in a `<style>`
/// element. The charts read correctly without it; it adds sizing, hover and print rules.
pub const CSS: &str = r#".plinth-figure { margin: 1.5rem 0; max-width: 960px; }
.plinth-figure figcaption { font-size: 0.9rem; color: #444444; margin-top: 0.25rem; }
svg.plinth-chart { display: block; width: 100%; height: auto; max-width: 960px; }
svg.plinth-chart text { font-variant-numeric: tabular-nums; }
svg.plinth-chart .tick text, svg.plinth-chart .axis-title { fill: #444444; }
svg.plinth-chart .mark { transition: opacity 0.15s; }
svg.plinth-chart .mark:hover { opacity: 0.75; }
svg.plinth-chart path.line:hover { stroke-width: 3.5; }
svg.plinth-chart .no-data text { fill: #555555; }
@media print { svg.plinth-chart { break-inside: avoid; } }
"#;
