//! Renders every chart type in headless Chromium (through `scripts/render-html`) and checks
//! what a reader would see: the browser lays out marks for both series in every chart, and
//! the screenshot is a real picture in the palette's colours, not a blank page.
//!
//! Without Chromium the test prints why and passes, unless `CI` is set (`CI=true` on CI):
//! then it fails.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result, ensure};
use plinth_browser_check::{Outcome, Screenshot, check_charts, render, with_probe};
use plinth_charts::{
    Axis, BarSeries, CSS, GroupedBars, Histogram, LineChart, LineSeries, Orientation, PALETTE,
    Samples, Scale, StackedBar, StackedBars, Timeline, TimelineSeries, grouped_bars, histogram,
    line_chart, stacked_bars, timeline,
};

const SERIES: [&str; 2] = ["virtualized", "bare metal"];

fn charts() -> Vec<(&'static str, String)> {
    let hourly = |scale: f64, phase: f64| -> Vec<(f64, f64)> {
        (0..8760)
            .map(|h| {
                let t = h as f64;
                (
                    t / 24.0,
                    40.0 + scale * (t / 700.0 + phase).sin() + ((h * 7919) % 13) as f64 * 0.8,
                )
            })
            .collect()
    };
    let line = LineChart {
        title: "Pods unavailable over a simulated year".into(),
        x: Axis::new("time", "days"),
        y: Axis::new("pods unavailable", "pods"),
        series: SERIES
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let points = hourly(10.0 + 8.0 * i as f64, i as f64);
                let band = points.iter().map(|&(x, y)| (x, y - 4.0, y + 6.0)).collect();
                LineSeries {
                    name: (*name).into(),
                    points,
                    band: Some(band),
                }
            })
            .collect(),
    };
    let series = |values: [[f64; 4]; 2], errors: bool| -> Vec<BarSeries> {
        SERIES
            .iter()
            .zip(values)
            .map(|(name, v)| BarSeries {
                name: (*name).into(),
                values: v.to_vec(),
                errors: errors.then(|| v.iter().map(|x| (x * 0.97, x * 1.02)).collect()),
            })
            .collect()
    };
    let dimensions = GroupedBars {
        title: "Score by dimension".into(),
        categories: vec![
            "availability".into(),
            "recovery".into(),
            "cost".into(),
            "operability".into(),
        ],
        value_axis: Axis::new("score", "points"),
        series: series([[82.0, 64.0, 71.0, 58.0], [76.0, 55.0, 80.0, 49.0]], true),
        orientation: Orientation::Vertical,
    };
    let workloads = GroupedBars {
        title: "Availability by workload".into(),
        categories: vec![
            "payments-api (3 replicas, anti-affinity)".into(),
            "postgres-primary <stateful>".into(),
            "search & indexing".into(),
            "batch".into(),
        ],
        value_axis: Axis::new("availability", "%"),
        series: series([[99.95, 99.7, 99.9, 99.2], [99.9, 99.1, 99.8, 99.5]], true),
        orientation: Orientation::Horizontal,
    };
    let cost = StackedBars {
        title: "Yearly cost of ownership".into(),
        categories: vec![
            "hardware".into(),
            "licences".into(),
            "power".into(),
            "labour".into(),
        ],
        value_axis: Axis::new("cost", "EUR/year"),
        bars: vec![
            StackedBar {
                name: SERIES[0].into(),
                values: vec![420_000.0, 180_000.0, 60_000.0, 150_000.0],
            },
            StackedBar {
                name: SERIES[1].into(),
                values: vec![480_000.0, 0.0, 70_000.0, 190_000.0],
            },
        ],
    };
    let blast = Histogram {
        title: "Blast radius: pods hit per host failure".into(),
        value_axis: Axis::new("pods hit per failure", "pods"),
        count_label: "failures".into(),
        max_bins: 12,
        normalize: true,
        series: vec![
            Samples {
                name: SERIES[0].into(),
                values: (0..200).map(|i| ((i * 37) % 11) as f64).collect(),
            },
            Samples {
                name: SERIES[1].into(),
                values: (0..120).map(|i| 4.0 + ((i * 53) % 29) as f64).collect(),
            },
        ],
    };
    let phases = |scale| Timeline {
        title: format!(
            "Time to new capacity ({} scale)",
            if scale == Scale::Log { "log" } else { "linear" }
        ),
        phases: vec![
            "procurement".into(),
            "rack and cable".into(),
            "install".into(),
            "boot".into(),
        ],
        series: vec![
            TimelineSeries {
                name: SERIES[0].into(),
                durations_s: vec![0.0, 0.0, 1800.0, 45.0],
            },
            TimelineSeries {
                name: SERIES[1].into(),
                durations_s: vec![21.0 * 86_400.0, 2.0 * 86_400.0, 4.0 * 3600.0, 420.0],
            },
        ],
        scale,
    };
    vec![
        ("line", line_chart(&line)),
        ("grouped-vertical", grouped_bars(&dimensions)),
        ("grouped-horizontal", grouped_bars(&workloads)),
        ("stacked", stacked_bars(&cost)),
        ("histogram", histogram(&blast)),
        ("timeline-linear", timeline(&phases(Scale::Linear))),
        ("timeline-log", timeline(&phases(Scale::Log))),
    ]
}

fn page(charts: &[(&str, String)]) -> String {
    let mut html = String::from(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Plinth charts</title><style>\
         body { font-family: system-ui, sans-serif; margin: 24px; background: #ffffff; color: #1a1a1a; }\
         main { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 8px 24px; }\n",
    );
    html.push_str(CSS);
    html.push_str("</style></head><body><h1>Plinth charts</h1><main>");
    for (id, svg) in charts {
        let _ = write!(
            html,
            "<figure class=\"plinth-figure\" id=\"{id}\">{svg}</figure>"
        );
    }
    html.push_str("</main></body></html>");
    html
}

#[test]
fn every_chart_renders_both_series_in_chromium() -> Result<()> {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("chromium-charts");
    let out = dir.join("out");
    std::fs::create_dir_all(&out).context("creating the output directory")?;
    let input = dir.join("charts.html");
    let charts = charts();
    std::fs::write(&input, with_probe(&page(&charts))?).context("writing the page")?;

    let rendered = match render(&input, &out, None)? {
        Outcome::Rendered(r) => r,
        Outcome::Skipped(why) => {
            println!("skipping the Chromium render test: {why}");
            return Ok(());
        }
    };
    let figures = check_charts(&rendered.dom, "figure.plinth-figure", &SERIES)?;
    let names: Vec<&str> = figures.iter().map(|f| f.name.as_str()).collect();
    let ids: Vec<&str> = charts.iter().map(|(id, _)| *id).collect();
    ensure!(names == ids, "figures {names:?}, expected {ids:?}");

    let shot = Screenshot::open(&rendered.screenshot)?;
    shot.check_not_blank("the page", shot.full(), &PALETTE[..2], 2_000)?;
    for f in &figures {
        shot.check_not_blank(&f.name, f.region, &PALETTE[..2], 100)?;
    }
    println!(
        "rendered {} charts: {}",
        charts.len(),
        rendered.screenshot.display()
    );
    Ok(())
}
