//! Stacked bars: one bar per series, stacked by category, with value labels.

use crate::Axis;
use crate::axes::{frame, labels, left_margin, lin, y_axis};
use crate::scale::{axis_title, nice_ticks, value_label};
use crate::svg::{
    Area, CHAR_W, Svg, WIDTH, colour, esc, ink_on, legend_height, num, text_width, truncate,
};

const HEIGHT: f64 = 420.0;

/// One bar per series, each stacked from its categories' values (e.g. the yearly cost of
/// each environment split into its cost categories).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StackedBars {
    /// The chart's title, also its accessible name.
    pub title: String,
    /// The stacked parts, bottom first; they take palette colours 0, 1, ... and the legend.
    pub categories: Vec<String>,
    /// The axis of the stacked totals, e.g. `Axis::new("cost", "EUR/year")`.
    pub value_axis: Axis,
    /// The bars, left to right.
    pub bars: Vec<StackedBar>,
}

/// One bar of a [`StackedBars`] chart: a series.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StackedBar {
    /// The series' name, written under the bar and set as `data-series`.
    pub name: String,
    /// One value per category; negative, missing and non-finite values add nothing.
    pub values: Vec<f64>,
}

fn part(bar: &StackedBar, k: usize) -> f64 {
    bar.values
        .get(k)
        .copied()
        .filter(|v| v.is_finite() && *v > 0.0)
        .unwrap_or(0.0)
}

/// Draws stacked bars as a self-contained `<svg>` element.
///
/// Each segment is a `rect` with the bar's `series-N` and `data-series`, plus
/// `category-K` and `data-category`; segments tall enough carry their value, and each
/// bar's total is written above it.
pub fn stacked_bars(chart: &StackedBars) -> String {
    let names: Vec<&str> = chart.categories.iter().map(String::as_str).collect();
    let mut svg = Svg::open("stacked", &chart.title, HEIGHT);
    let legend_y = 48.0;
    let top = legend_y + legend_height(&names) + 16.0;
    let value_title = axis_title(&chart.value_axis.label, &chart.value_axis.unit);
    let ncat = chart.categories.len();
    let totals: Vec<f64> = chart
        .bars
        .iter()
        .map(|b| (0..ncat).map(|k| part(b, k)).sum())
        .collect();
    let max = totals.iter().copied().fold(0.0, f64::max);
    if chart.bars.is_empty() || ncat == 0 || max <= 0.0 || !max.is_finite() {
        let why = if chart.bars.is_empty() || ncat == 0 {
            "No data"
        } else {
            "No data: all values are zero"
        };
        svg.legend(&names, legend_y, false);
        svg.no_data(
            &Area {
                x0: 64.0,
                y0: top,
                x1: WIDTH - 24.0,
                y1: HEIGHT - 40.0,
            },
            why,
        );
        return svg.finish();
    }
    let vt = nice_ticks(0.0, max, 5);
    let vlabels = labels(&vt);
    let area = Area {
        x0: left_margin(&vlabels),
        y0: top,
        x1: WIDTH - 24.0,
        y1: HEIGHT - 40.0,
    };
    let py = |v: f64| lin(v, vt.lo, vt.hi, area.y1, area.y0);
    let pos: Vec<(f64, String)> = vt.values.iter().map(|&v| py(v)).zip(vlabels).collect();
    y_axis(&mut svg, &area, &pos, &value_title);

    let slot = area.width() / chart.bars.len() as f64;
    let bw = (slot * 0.55).min(140.0);
    let max_chars = ((slot / CHAR_W) as usize).max(3);
    for (i, bar) in chart.bars.iter().enumerate() {
        let name = esc(&bar.name);
        let x_mid = area.x0 + slot * (i as f64 + 0.5);
        let x = x_mid - bw / 2.0;
        let mut base = 0.0;
        for (k, cat) in chart.categories.iter().enumerate() {
            let v = part(bar, k);
            if v <= 0.0 {
                continue;
            }
            let (y_top, y_bottom) = (py(base + v), py(base));
            let h = y_bottom - y_top;
            let label = value_label(v);
            svg.raw(&format!(
                "<rect class=\"mark segment series-{i} category-{k}\" data-series=\"{name}\" data-category=\"{c}\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\" stroke=\"#ffffff\" stroke-width=\"1\"><title>{name} — {c}: {} {}</title></rect>",
                num(x),
                num(y_top),
                num(bw),
                num(h),
                colour(k),
                esc(&label),
                esc(&chart.value_axis.unit),
                c = esc(cat),
            ));
            if h >= 16.0 && text_width(&label) + 8.0 <= bw {
                svg.raw(&format!(
                    "<text class=\"value\" x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"{}\" font-size=\"11\">{}</text>",
                    num(x_mid),
                    num(y_top + h / 2.0 + 4.0),
                    ink_on(k),
                    esc(&label)
                ));
            }
            base += v;
        }
        svg.raw(&format!(
            "<text class=\"total\" x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-weight=\"600\" fill=\"#1a1a1a\">{}</text>",
            num(x_mid),
            num(py(base) - 6.0),
            esc(&value_label(base))
        ));
        svg.raw(&format!(
            "<text class=\"category\" x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#333333\"><title>{name}</title>{}</text>",
            num(x_mid),
            num(area.y1 + 18.0),
            esc(&truncate(&bar.name, max_chars))
        ));
    }
    frame(&mut svg, &area);
    svg.legend(&names, legend_y, false);
    svg.finish()
}
