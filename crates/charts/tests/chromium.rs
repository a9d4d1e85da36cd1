//! Renders every chart type in headless Chromium (through `scripts/render-html`) and checks
//! what a reader would see: the browser lays out marks for both series in every chart, and
//! the screenshot is a real picture in the palette's colours, not a blank page.
//!
//! Without Chromium the test prints why and passes, unless `CI` is set (`CI=true` on CI):
//! then it fails.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};
use plinth_charts::{
    Axis, BarSeries, CSS, GroupedBars, Histogram, LineChart, LineSeries, Orientation, Samples,
    Scale, StackedBar, StackedBars, Timeline, TimelineSeries, grouped_bars, histogram, line_chart,
    stacked_bars, timeline,
};

const SERIES: [&str; 2] = ["virtualized", "bare metal"];

/// Marks each chart mark the browser laid out with a non-empty box, and the body once done,
/// so the dumped DOM says what was rendered rather than what was written.
const PROBE: &str = r#"
for (const m of document.querySelectorAll('svg [data-series]')) {
  const b = m.getBBox();
  const shown = getComputedStyle(m).display !== 'none' && (b.width > 0 || b.height > 0);
  if (m instanceof SVGGraphicsElement && shown) m.setAttribute('data-laid-out', 'yes');
}
document.body.setAttribute('data-probed', 'yes');
"#;

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
    html.push_str("</main><script>");
    html.push_str(PROBE);
    html.push_str("</script></body></html>");
    html
}

fn scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts")
}

#[test]
fn every_chart_renders_both_series_in_chromium() -> Result<()> {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("chromium-charts");
    let out = dir.join("out");
    std::fs::create_dir_all(&out).context("creating the output directory")?;
    let input = dir.join("charts.html");
    let charts = charts();
    std::fs::write(&input, page(&charts)).context("writing the page")?;

    let script = scripts_dir().join("render-html");
    let run = Command::new(&script)
        .arg(&input)
        .arg(&out)
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    let stderr = String::from_utf8_lossy(&run.stderr);
    if run.status.code() == Some(127) && stderr.contains("chromium not found") {
        let ci = std::env::var("CI").is_ok_and(|v| !matches!(v.as_str(), "" | "0" | "false"));
        if ci {
            bail!("CI is set but chromium is missing: {stderr}");
        }
        println!("skipping the Chromium render test: {stderr}");
        return Ok(());
    }
    ensure!(
        run.status.success(),
        "render-html failed ({}): {stderr}",
        run.status
    );

    check_dom(
        &std::fs::read_to_string(out.join("dom.html")).context("reading dom.html")?,
        &charts,
    )?;
    check_screenshot(&out.join("shot.png"))?;
    println!(
        "rendered {} charts: {}",
        charts.len(),
        out.join("shot.png").display()
    );
    Ok(())
}

fn check_dom(dom: &str, charts: &[(&str, String)]) -> Result<()> {
    let doc = scraper::Html::parse_document(dom);
    let sel =
        |s: &str| scraper::Selector::parse(s).map_err(|e| anyhow::anyhow!("selector {s}: {e}"));
    ensure!(
        doc.select(&sel("body[data-probed=yes]")?).next().is_some(),
        "the layout probe did not run in Chromium"
    );
    for (id, _) in charts {
        let figure = doc
            .select(&sel(&format!("figure#{id}"))?)
            .next()
            .with_context(|| format!("no figure {id}"))?;
        let svg = figure
            .select(&sel("svg.plinth-chart")?)
            .next()
            .with_context(|| format!("no svg in {id}"))?;
        ensure!(
            svg.value()
                .attr("aria-label")
                .is_some_and(|l| !l.is_empty()),
            "{id} has no aria-label"
        );
        ensure!(
            svg.select(&sel("title")?).next().is_some(),
            "{id} has no title"
        );
        for (i, name) in SERIES.iter().enumerate() {
            let marks = sel(&format!(
                "rect.series-{i}[data-series=\"{name}\"][data-laid-out=yes], \
                 path.series-{i}[data-series=\"{name}\"][data-laid-out=yes], \
                 circle.series-{i}[data-series=\"{name}\"][data-laid-out=yes]"
            ))?;
            let count = svg.select(&marks).count();
            ensure!(
                count > 0,
                "{id}: Chromium laid out no marks for series {name}"
            );
        }
    }
    Ok(())
}

fn check_screenshot(path: &Path) -> Result<()> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().context("reading the PNG header")?;
    let mut buf = vec![0; reader.output_buffer_size().context("PNG too large")?];
    let info = reader.next_frame(&mut buf).context("decoding the PNG")?;
    let channels = info.color_type.samples();
    ensure!(
        channels >= 3,
        "expected a colour screenshot, got {:?}",
        info.color_type
    );
    let pixels = buf[..info.buffer_size()]
        .chunks_exact(channels)
        .map(|p| (p[0], p[1], p[2]));

    let mut colours = HashSet::new();
    let (mut total, mut non_white, mut blue, mut orange) = (0usize, 0usize, 0usize, 0usize);
    let near = |p: (u8, u8, u8), q: (u8, u8, u8)| {
        p.0.abs_diff(q.0) <= 12 && p.1.abs_diff(q.1) <= 12 && p.2.abs_diff(q.2) <= 12
    };
    for p in pixels {
        total += 1;
        colours.insert(p);
        if p != (255, 255, 255) {
            non_white += 1;
        }
        // The first two palette colours: #0072B2 and #E69F00.
        blue += usize::from(near(p, (0x00, 0x72, 0xB2)));
        orange += usize::from(near(p, (0xE6, 0x9F, 0x00)));
    }
    ensure!(
        colours.len() > 50,
        "only {} distinct colours: the page looks blank",
        colours.len()
    );
    ensure!(
        non_white * 50 > total,
        "only {non_white} of {total} pixels are not white"
    );
    ensure!(
        blue > 2_000,
        "the first series' blue covers only {blue} pixels"
    );
    ensure!(
        orange > 2_000,
        "the second series' orange covers only {orange} pixels"
    );
    Ok(())
}
