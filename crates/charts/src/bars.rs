//! Grouped bars (categories × series, optional error bars) and histograms built on them.

use crate::axes::{frame, labels, left_margin, lin, x_axis, y_axis};
use crate::scale::{axis_title, nice_step, nice_ticks, tick_label, value_label};
use crate::svg::{Area, CHAR_W, Svg, WIDTH, colour, esc, legend_height, num, text_width, truncate};
use crate::{Axis, Orientation};

/// Bars for several series side by side in each category.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GroupedBars {
    /// The chart's title, also its accessible name.
    pub title: String,
    /// Category names, e.g. workloads or dimensions, in display order.
    pub categories: Vec<String>,
    /// The axis the bar lengths are read on, e.g. `Axis::new("availability", "%")`.
    pub value_axis: Axis,
    /// One entry per series; `values[k]` belongs to `categories[k]`.
    pub series: Vec<BarSeries>,
    /// Vertical bars, or horizontal ones for long category names.
    pub orientation: Orientation,
}

/// One series of a [`GroupedBars`] chart.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BarSeries {
    /// The series' name, shown in the legend and set as `data-series`.
    pub name: String,
    /// One value per category; a missing or non-finite value draws no bar.
    pub values: Vec<f64>,
    /// Optional error bars as `(low, high)` per category, e.g. a confidence interval;
    /// non-finite ends draw no error bar.
    pub errors: Option<Vec<(f64, f64)>>,
}

/// A histogram: samples of each series counted into shared round bins, drawn as grouped
/// bars (e.g. the blast radius: pods hit per failure, per environment).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Histogram {
    /// The chart's title, also its accessible name.
    pub title: String,
    /// The axis of the sampled values, e.g. `Axis::new("pods hit per failure", "pods")`.
    pub value_axis: Axis,
    /// What one sample is, for the count axis, e.g. "failures".
    pub count_label: String,
    /// The most bins to use (at least 1; 0 means 12). Integer samples get whole bins.
    pub max_bins: usize,
    /// Show each bin as a percentage of its series' samples instead of a count, so series
    /// with different sample counts compare.
    pub normalize: bool,
    /// The samples, one set per series.
    pub series: Vec<Samples>,
}

/// The raw samples of one series of a [`Histogram`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Samples {
    /// The series' name, shown in the legend and set as `data-series`.
    pub name: String,
    /// The samples; non-finite ones are ignored.
    pub values: Vec<f64>,
}

/// Draws grouped bars as a self-contained `<svg>` element.
///
/// Each bar is a `rect` and each error bar a `path`, both with `series-N` and
/// `data-series`; every bar has a `<title>` tooltip with its exact value.
pub fn grouped_bars(chart: &GroupedBars) -> String {
    render(chart, "bars", None)
}

/// Draws a histogram as a self-contained `<svg>` element (vertical grouped bars, one
/// group per bin).
pub fn histogram(chart: &Histogram) -> String {
    let max_bins = if chart.max_bins == 0 {
        12
    } else {
        chart.max_bins
    };
    let all: Vec<f64> = chart
        .series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .filter(|v| v.is_finite())
        .collect();
    let bins = bins(&all, max_bins);
    let series = chart
        .series
        .iter()
        .map(|s| {
            let finite: Vec<f64> = s.values.iter().copied().filter(|v| v.is_finite()).collect();
            let mut counts = vec![0.0; bins.len()];
            for v in &finite {
                if let Some(k) = bins.iter().rposition(|b| *v >= b.lo) {
                    counts[k] += 1.0;
                }
            }
            if chart.normalize && !finite.is_empty() {
                let n = finite.len() as f64;
                counts.iter_mut().for_each(|c| *c = *c * 100.0 / n);
            }
            BarSeries {
                name: s.name.clone(),
                values: counts,
                errors: None,
            }
        })
        .collect();
    let unit = if chart.normalize { "%" } else { "count" };
    let label = if chart.normalize {
        format!("share of {}", chart.count_label)
    } else {
        chart.count_label.clone()
    };
    let bars = GroupedBars {
        title: chart.title.clone(),
        categories: bins.iter().map(|b| b.label.clone()).collect(),
        value_axis: Axis::new(label, unit),
        series,
        orientation: Orientation::Vertical,
    };
    let value_title = axis_title(&chart.value_axis.label, &chart.value_axis.unit);
    render(&bars, "histogram", Some(&value_title))
}

struct Bin {
    lo: f64,
    label: String,
}

/// Round bins covering `values`: whole-number bins for integer samples.
fn bins(values: &[f64], max_bins: usize) -> Vec<Bin> {
    let Some(lo) = values.iter().copied().reduce(f64::min) else {
        return Vec::new();
    };
    let hi = values.iter().copied().fold(lo, f64::max);
    let integer = values.iter().all(|v| v.fract() == 0.0 && v.abs() < 1e15);
    if hi == lo {
        return vec![Bin {
            lo,
            label: value_label(lo),
        }];
    }
    let width = if integer {
        let span = hi - lo + 1.0;
        if span <= max_bins as f64 {
            1.0
        } else {
            nice_step(span, max_bins).ceil().max(1.0)
        }
    } else {
        nice_step(hi - lo, max_bins)
    };
    let start = (lo / width).floor() * width;
    let n = ((hi - start) / width).floor() as usize + 1;
    let n = n.clamp(1, max_bins.saturating_mul(3).max(1));
    let d = crate::scale::decimals_for(width);
    (0..n)
        .map(|k| {
            let a = start + k as f64 * width;
            let label = if integer && width == 1.0 {
                tick_label(a, 0)
            } else if integer {
                format!("{}–{}", tick_label(a, 0), tick_label(a + width - 1.0, 0))
            } else {
                format!("{}–{}", tick_label(a, d), tick_label(a + width, d))
            };
            Bin { lo: a, label }
        })
        .collect()
}

fn value_at(s: &BarSeries, k: usize) -> Option<f64> {
    s.values.get(k).copied().filter(|v| v.is_finite())
}

fn error_at(s: &BarSeries, k: usize) -> Option<(f64, f64)> {
    s.errors
        .as_ref()
        .and_then(|e| e.get(k).copied())
        .filter(|(lo, hi)| lo.is_finite() && hi.is_finite())
        .map(|(lo, hi)| (lo.min(hi), lo.max(hi)))
}

fn render(chart: &GroupedBars, kind: &str, category_title: Option<&str>) -> String {
    let names: Vec<&str> = chart.series.iter().map(|s| s.name.as_str()).collect();
    let ncat = chart.categories.len();
    let nser = chart.series.len().max(1);
    let horizontal = chart.orientation == Orientation::Horizontal;
    let legend_y = 48.0;
    let top = legend_y + legend_height(&names) + 4.0;
    let height = if horizontal {
        (top + ncat as f64 * (nser as f64 * 16.0 + 14.0) + 56.0).max(240.0)
    } else {
        400.0
    };
    let mut svg = Svg::open(kind, &chart.title, height);
    let value_title = axis_title(&chart.value_axis.label, &chart.value_axis.unit);

    let mut values = Vec::new();
    for s in &chart.series {
        for k in 0..ncat {
            values.extend(value_at(s, k));
            if let Some((lo, hi)) = error_at(s, k) {
                values.extend([lo, hi]);
            }
        }
    }
    let vmin = values.iter().copied().fold(0.0, f64::min);
    let vmax = values.iter().copied().fold(0.0, f64::max);
    let placeholder = Area {
        x0: 64.0,
        y0: top,
        x1: WIDTH - 24.0,
        y1: height - 52.0,
    };
    if values.is_empty() {
        svg.legend(&names, legend_y, false);
        svg.no_data(&placeholder, "No data");
        return svg.finish();
    }
    if vmin == 0.0 && vmax == 0.0 {
        svg.legend(&names, legend_y, false);
        svg.no_data(&placeholder, "No data: all values are zero");
        return svg.finish();
    }
    let vt = nice_ticks(vmin, vmax, 5);
    let vlabels = labels(&vt);

    if horizontal {
        let widest = chart
            .categories
            .iter()
            .map(|c| text_width(c))
            .fold(0.0, f64::max);
        let label_w = widest.clamp(40.0, 260.0);
        let area = Area {
            x0: label_w + 24.0,
            y0: top,
            x1: WIDTH - 32.0,
            y1: height - 52.0,
        };
        let px = |v: f64| lin(v, vt.lo, vt.hi, area.x0, area.x1);
        let pos: Vec<(f64, String)> = vt.values.iter().map(|&v| px(v)).zip(vlabels).collect();
        x_axis(&mut svg, &area, &pos, &value_title);
        let band = area.height() / ncat.max(1) as f64;
        let bh = (band * 0.8 / nser as f64).min(28.0);
        let max_chars = ((label_w / CHAR_W) as usize).max(4);
        for (k, cat) in chart.categories.iter().enumerate() {
            let y_mid = area.y0 + band * (k as f64 + 0.5);
            svg.raw(&format!(
                "<text class=\"category\" x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"#333333\"><title>{}</title>{}</text>",
                num(area.x0 - 8.0),
                num(y_mid + 4.0),
                esc(cat),
                esc(&truncate(cat, max_chars))
            ));
            let y_start = y_mid - bh * nser as f64 / 2.0;
            for (i, s) in chart.series.iter().enumerate() {
                let y = y_start + bh * i as f64;
                if let Some(v) = value_at(s, k) {
                    let (a, b) = (px(0.0).min(px(v)), px(0.0).max(px(v)));
                    bar(
                        &mut svg,
                        i,
                        s,
                        cat,
                        v,
                        &chart.value_axis.unit,
                        a,
                        y + 1.0,
                        b - a,
                        bh - 2.0,
                    );
                }
                if let Some((lo, hi)) = error_at(s, k) {
                    let (c, l, h) = (y + bh / 2.0, px(lo), px(hi));
                    let w = (bh / 4.0).min(5.0);
                    whisker(
                        &mut svg,
                        i,
                        s,
                        &format!(
                            "M{l} {c}H{h}M{l} {a}V{b}M{h} {a}V{b}",
                            l = num(l),
                            h = num(h),
                            c = num(c),
                            a = num(c - w),
                            b = num(c + w)
                        ),
                    );
                }
            }
        }
        frame(&mut svg, &area);
    } else {
        let x0 = left_margin(&vlabels);
        let bottom = if category_title.is_some() { 52.0 } else { 34.0 };
        let area = Area {
            x0,
            y0: top,
            x1: WIDTH - 24.0,
            y1: height - bottom,
        };
        let py = |v: f64| lin(v, vt.lo, vt.hi, area.y1, area.y0);
        let pos: Vec<(f64, String)> = vt.values.iter().map(|&v| py(v)).zip(vlabels).collect();
        y_axis(&mut svg, &area, &pos, &value_title);
        let slot = area.width() / ncat.max(1) as f64;
        let bw = (slot * 0.8 / nser as f64).min(56.0);
        let max_chars = ((slot / CHAR_W) as usize).max(3);
        for (k, cat) in chart.categories.iter().enumerate() {
            let x_mid = area.x0 + slot * (k as f64 + 0.5);
            svg.raw(&format!(
                "<text class=\"category\" x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#333333\"><title>{}</title>{}</text>",
                num(x_mid),
                num(area.y1 + 16.0),
                esc(cat),
                esc(&truncate(cat, max_chars))
            ));
            let x_start = x_mid - bw * nser as f64 / 2.0;
            for (i, s) in chart.series.iter().enumerate() {
                let x = x_start + bw * i as f64;
                if let Some(v) = value_at(s, k) {
                    let (a, b) = (py(0.0).min(py(v)), py(0.0).max(py(v)));
                    bar(
                        &mut svg,
                        i,
                        s,
                        cat,
                        v,
                        &chart.value_axis.unit,
                        x + 1.0,
                        a,
                        bw - 2.0,
                        b - a,
                    );
                }
                if let Some((lo, hi)) = error_at(s, k) {
                    let (c, l, h) = (x + bw / 2.0, py(lo), py(hi));
                    let w = (bw / 4.0).min(5.0);
                    whisker(
                        &mut svg,
                        i,
                        s,
                        &format!(
                            "M{c} {l}V{h}M{a} {l}H{b}M{a} {h}H{b}",
                            l = num(l),
                            h = num(h),
                            c = num(c),
                            a = num(c - w),
                            b = num(c + w)
                        ),
                    );
                }
            }
        }
        if let Some(title) = category_title {
            svg.raw(&format!(
                "<text class=\"axis-title\" x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#444444\">{}</text>",
                num((area.x0 + area.x1) / 2.0),
                num(area.y1 + 36.0),
                esc(title)
            ));
        }
        frame(&mut svg, &area);
    }
    svg.legend(&names, legend_y, false);
    svg.finish()
}

#[allow(clippy::too_many_arguments)]
fn bar(
    svg: &mut Svg,
    i: usize,
    s: &BarSeries,
    cat: &str,
    v: f64,
    unit: &str,
    x: f64,
    y: f64,
    w: f64,
    h: f64,
) {
    let unit = if unit.is_empty() {
        String::new()
    } else {
        format!(" {unit}")
    };
    svg.raw(&format!(
        "<rect class=\"mark bar series-{i}\" data-series=\"{name}\" data-category=\"{c}\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\"><title>{name} — {c}: {}{}</title></rect>",
        num(x),
        num(y),
        num(w.max(0.0)),
        num(h.max(0.0)),
        colour(i),
        esc(&value_label(v)),
        esc(&unit),
        name = esc(&s.name),
        c = esc(cat),
    ));
}

fn whisker(svg: &mut Svg, i: usize, s: &BarSeries, d: &str) {
    svg.raw(&format!(
        "<path class=\"mark error series-{i}\" data-series=\"{}\" d=\"{d}\" fill=\"none\" stroke=\"#222222\" stroke-width=\"1.3\"/>",
        esc(&s.name)
    ));
}
