//! Line charts over time, with optional min/max bands.

use crate::Axis;
use crate::axes::{frame, labels, left_margin, lin, x_axis, y_axis};
use crate::scale::{axis_title, nice_ticks};
use crate::svg::{Area, Svg, WIDTH, colour, esc, legend_height, num};

/// The most points one series is drawn with; longer series are downsampled to their
/// per-bucket minimum and maximum so peaks and troughs survive.
pub const MAX_POINTS_PER_SERIES: usize = 600;

const HEIGHT: f64 = 400.0;

/// A line chart: several series over a shared x axis (usually time).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LineChart {
    /// The chart's title, also its accessible name.
    pub title: String,
    /// The horizontal axis, e.g. `Axis::new("time", "days")`.
    pub x: Axis,
    /// The vertical axis, e.g. `Axis::new("pods unavailable", "pods")`.
    pub y: Axis,
    /// The lines, drawn in order with palette colours 0, 1, ...
    pub series: Vec<LineSeries>,
}

/// One line of a [`LineChart`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LineSeries {
    /// The series' name, shown in the legend and set as `data-series`.
    pub name: String,
    /// `(x, y)` points; sorted by x when drawn. Points with a non-finite coordinate are
    /// left out.
    pub points: Vec<(f64, f64)>,
    /// An optional shaded band as `(x, low, high)`, e.g. the min and max over seeds.
    pub band: Option<Vec<(f64, f64, f64)>>,
}

/// Draws a line chart as a self-contained `<svg>` element.
///
/// Each series becomes a `path.line` (a `circle` when it has a single point) and, with a
/// band, a `path.band`; all carry `series-N` and `data-series`. Series longer than
/// [`MAX_POINTS_PER_SERIES`] are downsampled deterministically.
pub fn line_chart(chart: &LineChart) -> String {
    let names: Vec<&str> = chart.series.iter().map(|s| s.name.as_str()).collect();
    let mut svg = Svg::open("line", &chart.title, HEIGHT);
    let legend_y = 48.0;
    let top = legend_y + legend_height(&names) + 4.0;

    let lines: Vec<Vec<(f64, f64)>> = chart
        .series
        .iter()
        .map(|s| downsample(&clean_points(&s.points), MAX_POINTS_PER_SERIES))
        .collect();
    let bands: Vec<Vec<(f64, f64, f64)>> = chart
        .series
        .iter()
        .map(|s| {
            downsample_band(
                &clean_band(s.band.as_deref().unwrap_or(&[])),
                MAX_POINTS_PER_SERIES,
            )
        })
        .collect();

    let xs = lines
        .iter()
        .flatten()
        .map(|p| p.0)
        .chain(bands.iter().flatten().map(|b| b.0));
    let ys = lines
        .iter()
        .flatten()
        .map(|p| p.1)
        .chain(bands.iter().flatten().flat_map(|b| [b.1, b.2]));
    let (xmin, xmax) = min_max(xs);
    let (ymin, ymax) = min_max(ys);

    let bottom = HEIGHT - 52.0;
    let x_title = axis_title(&chart.x.label, &chart.x.unit);
    let y_title = axis_title(&chart.y.label, &chart.y.unit);
    let (Some((xmin, xmax)), Some((ymin, ymax))) = (xmin.zip(xmax), ymin.zip(ymax)) else {
        let area = Area {
            x0: 64.0,
            y0: top,
            x1: WIDTH - 24.0,
            y1: bottom,
        };
        svg.legend(&names, legend_y, true);
        svg.no_data(&area, "No data");
        return svg.finish();
    };
    let ylo = if ymin >= 0.0 && ymin <= 0.5 * ymax {
        0.0
    } else {
        ymin
    };
    let yt = nice_ticks(ylo, ymax, 5);
    // The x axis spans the data exactly (a year ends at day 365, not 400); its ticks are
    // the round values inside that span.
    let mut xt = nice_ticks(xmin, xmax, 8);
    if xmax > xmin {
        let eps = (xmax - xmin) * 1e-9;
        xt.values.retain(|&v| v >= xmin - eps && v <= xmax + eps);
        xt.lo = xmin;
        xt.hi = xmax;
    }
    let ylabels = labels(&yt);
    let area = Area {
        x0: left_margin(&ylabels),
        y0: top,
        x1: WIDTH - 24.0,
        y1: bottom,
    };
    let px = |x: f64| lin(x, xt.lo, xt.hi, area.x0, area.x1);
    let py = |y: f64| lin(y, yt.lo, yt.hi, area.y1, area.y0);

    let ypos: Vec<(f64, String)> = yt.values.iter().map(|&v| py(v)).zip(ylabels).collect();
    y_axis(&mut svg, &area, &ypos, &y_title);
    let xpos: Vec<(f64, String)> = xt.values.iter().map(|&v| px(v)).zip(labels(&xt)).collect();
    x_axis(&mut svg, &area, &xpos, &x_title);

    for (i, (series, band)) in chart.series.iter().zip(&bands).enumerate() {
        if band.is_empty() {
            continue;
        }
        let mut d = String::new();
        for (k, &(x, _, hi)) in band.iter().enumerate() {
            d.push_str(if k == 0 { "M" } else { "L" });
            d.push_str(&format!("{} {}", num(px(x)), num(py(hi))));
        }
        for &(x, lo, _) in band.iter().rev() {
            d.push_str(&format!("L{} {}", num(px(x)), num(py(lo))));
        }
        d.push('Z');
        svg.raw(&format!(
            "<path class=\"mark band series-{i}\" data-series=\"{}\" d=\"{d}\" fill=\"{}\" fill-opacity=\"0.18\" stroke=\"none\"><title>{} (range)</title></path>",
            esc(&series.name),
            colour(i),
            esc(&series.name)
        ));
    }
    for (i, (series, points)) in chart.series.iter().zip(&lines).enumerate() {
        let name = esc(&series.name);
        match points.as_slice() {
            [] => {}
            [(x, y)] => svg.raw(&format!(
                "<circle class=\"mark point series-{i}\" data-series=\"{name}\" cx=\"{}\" cy=\"{}\" r=\"4.0\" fill=\"{}\"><title>{name}</title></circle>",
                num(px(*x)),
                num(py(*y)),
                colour(i)
            )),
            _ => {
                let mut d = String::with_capacity(points.len() * 14);
                for (k, &(x, y)) in points.iter().enumerate() {
                    d.push_str(if k == 0 { "M" } else { "L" });
                    d.push_str(&num(px(x)));
                    d.push(' ');
                    d.push_str(&num(py(y)));
                }
                svg.raw(&format!(
                    "<path class=\"mark line series-{i}\" data-series=\"{name}\" d=\"{d}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\" stroke-linejoin=\"round\" stroke-linecap=\"round\"><title>{name}</title></path>",
                    colour(i)
                ));
            }
        }
    }
    frame(&mut svg, &area);
    svg.legend(&names, legend_y, true);
    svg.finish()
}

fn min_max(values: impl Iterator<Item = f64>) -> (Option<f64>, Option<f64>) {
    values.fold((None, None), |(lo, hi), v| {
        (
            Some(lo.map_or(v, |l: f64| l.min(v))),
            Some(hi.map_or(v, |h: f64| h.max(v))),
        )
    })
}

fn clean_points(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut out: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    out
}

fn clean_band(band: &[(f64, f64, f64)]) -> Vec<(f64, f64, f64)> {
    let mut out: Vec<(f64, f64, f64)> = band
        .iter()
        .copied()
        .filter(|(x, lo, hi)| x.is_finite() && lo.is_finite() && hi.is_finite())
        .map(|(x, lo, hi)| (x, lo.min(hi), lo.max(hi)))
        .collect();
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    out
}

/// Index ranges of `n` items split into `buckets` nearly equal buckets.
fn buckets(n: usize, buckets: usize) -> impl Iterator<Item = std::ops::Range<usize>> {
    (0..buckets)
        .map(move |b| (b * n / buckets)..((b + 1) * n / buckets))
        .filter(|r| !r.is_empty())
}

/// Keeps at most `max` points: per bucket of the x-sorted points, its lowest and highest
/// point in their original order.
fn downsample(points: &[(f64, f64)], max: usize) -> Vec<(f64, f64)> {
    if points.len() <= max || max < 2 {
        return points.to_vec();
    }
    let mut out = Vec::with_capacity(max);
    for range in buckets(points.len(), max / 2) {
        let slice = &points[range];
        let mut lo = 0;
        let mut hi = 0;
        for (k, p) in slice.iter().enumerate() {
            if p.1 < slice[lo].1 {
                lo = k;
            }
            if p.1 > slice[hi].1 {
                hi = k;
            }
        }
        let (a, b) = (lo.min(hi), lo.max(hi));
        out.push(slice[a]);
        if b != a {
            out.push(slice[b]);
        }
    }
    out
}

/// Keeps at most `max` band vertices per side: per bucket, the lowest low and the highest
/// high at the bucket's first and last x.
fn downsample_band(band: &[(f64, f64, f64)], max: usize) -> Vec<(f64, f64, f64)> {
    if band.len() <= max || max < 2 {
        return band.to_vec();
    }
    let mut out = Vec::with_capacity(max);
    for range in buckets(band.len(), max / 2) {
        let slice = &band[range];
        let lo = slice.iter().map(|b| b.1).fold(f64::INFINITY, f64::min);
        let hi = slice.iter().map(|b| b.2).fold(f64::NEG_INFINITY, f64::max);
        let first = slice[0].0;
        let last = slice[slice.len() - 1].0;
        out.push((first, lo, hi));
        if last != first {
            out.push((last, lo, hi));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downsampling_keeps_the_envelope_and_the_limit() {
        let points: Vec<(f64, f64)> = (0..8760)
            .map(|h| {
                (
                    h as f64,
                    if h == 4321 {
                        99.0
                    } else if h == 77 {
                        -5.0
                    } else {
                        (h % 24) as f64
                    },
                )
            })
            .collect();
        let out = downsample(&points, MAX_POINTS_PER_SERIES);
        assert!(out.len() <= MAX_POINTS_PER_SERIES);
        assert!(out.len() > MAX_POINTS_PER_SERIES / 2);
        assert!(out.contains(&(4321.0, 99.0)), "the peak survives");
        assert!(out.contains(&(77.0, -5.0)), "the trough survives");
        assert!(out.windows(2).all(|w| w[0].0 <= w[1].0), "still in x order");
        assert_eq!(
            out,
            downsample(&points, MAX_POINTS_PER_SERIES),
            "deterministic"
        );
    }

    #[test]
    fn band_downsampling_keeps_extremes() {
        let band: Vec<(f64, f64, f64)> = (0..5000)
            .map(|i| {
                (
                    i as f64,
                    if i == 10 { -3.0 } else { 0.0 },
                    if i == 4000 { 9.0 } else { 1.0 },
                )
            })
            .collect();
        let out = downsample_band(&band, 600);
        assert!(out.len() <= 600);
        assert!(out.iter().any(|b| b.1 == -3.0));
        assert!(out.iter().any(|b| b.2 == 9.0));
    }
}
