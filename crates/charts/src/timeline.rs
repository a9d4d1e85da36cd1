//! Phase timelines: how long procurement, install, boot ... take in each series.

use crate::Scale;
use crate::axes::{frame, lin, x_axis};
use crate::scale::{human_duration, linear_duration_ticks, log_duration_ticks};
use crate::svg::{Area, CHAR_W, Svg, WIDTH, colour, esc, legend_height, num, text_width, truncate};

/// A Gantt-like chart of phases that run one after another, one bar per series in each
/// phase's row.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Timeline {
    /// The chart's title, also its accessible name.
    pub title: String,
    /// The phases in the order they run, e.g. procurement, install, boot.
    pub phases: Vec<String>,
    /// The series, each with one duration per phase.
    pub series: Vec<TimelineSeries>,
    /// `Linear` draws each phase from the end of the one before (a Gantt chart); `Log`
    /// draws each phase's duration from the axis start, so seconds and weeks both show.
    pub scale: Scale,
}

/// One series of a [`Timeline`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TimelineSeries {
    /// The series' name, shown in the legend and set as `data-series`.
    pub name: String,
    /// How long each phase takes, in seconds; `durations_s[k]` belongs to `phases[k]`.
    /// A missing, negative or non-finite duration draws no bar and takes no time.
    pub durations_s: Vec<f64>,
}

fn duration(s: &TimelineSeries, k: usize) -> Option<f64> {
    s.durations_s
        .get(k)
        .copied()
        .filter(|d| d.is_finite() && *d >= 0.0)
}

/// Draws a phase timeline as a self-contained `<svg>` element.
///
/// Each phase bar is a `rect` with `series-N`, `data-series` and `data-phase`, labelled
/// with its human duration ("45 s", "2.5 h", "30 d"); the axis ticks are round durations.
pub fn timeline(chart: &Timeline) -> String {
    let names: Vec<&str> = chart.series.iter().map(|s| s.name.as_str()).collect();
    let nphase = chart.phases.len();
    let nser = chart.series.len().max(1);
    let legend_y = 48.0;
    let top = legend_y + legend_height(&names) + 4.0;
    let height = (top + nphase as f64 * (nser as f64 * 18.0 + 14.0) + 56.0).max(240.0);
    let mut svg = Svg::open("timeline", &chart.title, height);
    let log = chart.scale == Scale::Log;

    // (series, phase, start, end) of every bar, in seconds.
    let mut spans = Vec::new();
    for (i, s) in chart.series.iter().enumerate() {
        let mut t = 0.0;
        for k in 0..nphase {
            if let Some(d) = duration(s, k) {
                if log {
                    spans.push((i, k, 0.0, d));
                } else {
                    spans.push((i, k, t, t + d));
                    t += d;
                }
            }
        }
    }
    let max = spans.iter().map(|s| s.3).fold(0.0, f64::max);
    let widest = chart
        .phases
        .iter()
        .map(|p| text_width(p))
        .fold(0.0, f64::max);
    let label_w = widest.clamp(40.0, 200.0);
    let area = Area {
        x0: label_w + 24.0,
        y0: top,
        x1: WIDTH - 64.0,
        y1: height - 52.0,
    };
    if spans.is_empty() || max <= 0.0 || !max.is_finite() {
        let why = if spans.is_empty() {
            "No data"
        } else {
            "No data: all durations are zero"
        };
        svg.legend(&names, legend_y, false);
        svg.no_data(&area, why);
        return svg.finish();
    }

    let (ticks, scale_x): (Vec<f64>, Box<dyn Fn(f64) -> f64>) = if log {
        let min_pos = spans
            .iter()
            .map(|s| s.3)
            .filter(|d| *d > 0.0)
            .fold(f64::INFINITY, f64::min);
        let t = log_duration_ticks(min_pos, max);
        let lo = t.first().copied().unwrap_or(1.0).ln();
        let hi = t.last().copied().unwrap_or(10.0).ln();
        let (x0, x1) = (area.x0, area.x1);
        (
            t,
            Box::new(move |v: f64| {
                lin(v.max(f64::MIN_POSITIVE).ln().clamp(lo, hi), lo, hi, x0, x1)
            }),
        )
    } else {
        let (t, _) = linear_duration_ticks(max);
        let (lo, hi, x0, x1) = (t.lo, t.hi, area.x0, area.x1);
        (t.values, Box::new(move |v: f64| lin(v, lo, hi, x0, x1)))
    };
    let pos: Vec<(f64, String)> = ticks
        .iter()
        .map(|&v| (scale_x(v), human_duration(v)))
        .collect();
    let title = if log {
        "duration (log scale)"
    } else {
        "elapsed time"
    };
    x_axis(&mut svg, &area, &pos, title);

    let band = area.height() / nphase.max(1) as f64;
    let bh = (band * 0.8 / nser as f64).min(24.0);
    let max_chars = ((label_w / CHAR_W) as usize).max(4);
    for (k, phase) in chart.phases.iter().enumerate() {
        let y_mid = area.y0 + band * (k as f64 + 0.5);
        svg.raw(&format!(
            "<text class=\"category\" x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"#333333\"><title>{}</title>{}</text>",
            num(area.x0 - 8.0),
            num(y_mid + 4.0),
            esc(phase),
            esc(&truncate(phase, max_chars))
        ));
    }
    for &(i, k, start, end) in &spans {
        let s = &chart.series[i];
        let y_mid = area.y0 + band * (k as f64 + 0.5);
        let y = y_mid - bh * nser as f64 / 2.0 + bh * i as f64;
        let (a, b) = (scale_x(start), scale_x(end));
        let w = (b - a).max(2.0);
        let name = esc(&s.name);
        let phase = esc(&chart.phases[k]);
        let label = human_duration(end - start);
        svg.raw(&format!(
            "<rect class=\"mark phase series-{i}\" data-series=\"{name}\" data-phase=\"{phase}\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"2.0\" fill=\"{}\"><title>{name} — {phase}: {label}</title></rect>",
            num(a),
            num(y + 1.0),
            num(w),
            num(bh - 2.0),
            colour(i),
        ));
        svg.raw(&format!(
            "<text class=\"value\" x=\"{}\" y=\"{}\" fill=\"#333333\" font-size=\"11\">{label}</text>",
            num(a + w + 4.0),
            num(y + bh / 2.0 + 4.0),
        ));
    }
    frame(&mut svg, &area);
    svg.legend(&names, legend_y, false);
    svg.finish()
}
