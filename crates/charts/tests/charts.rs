//! Every chart: well-formed SVG, accessible, marks for each series, escaping, and a
//! visible note instead of a panic on empty or degenerate data.

use plinth_charts::{
    Axis, BarSeries, GroupedBars, Histogram, LineChart, LineSeries, MAX_POINTS_PER_SERIES,
    Orientation, Samples, Scale, StackedBar, StackedBars, Timeline, TimelineSeries, grouped_bars,
    histogram, human_duration, line_chart, stacked_bars, timeline,
};

const SERIES: [&str; 2] = ["virtualized", "bare metal"];

/// Parses `svg` and checks what every chart must have; returns the document text.
fn check<'a>(svg: &'a str, title: &str) -> roxmltree::Document<'a> {
    let doc = match roxmltree::Document::parse(svg) {
        Ok(doc) => doc,
        Err(e) => panic!("not well-formed XML: {e}\n{svg}"),
    };
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    assert_eq!(
        root.tag_name().namespace(),
        Some("http://www.w3.org/2000/svg")
    );
    assert_eq!(root.attribute("aria-label"), Some(title));
    assert_eq!(root.attribute("role"), Some("img"));
    assert!(
        root.attribute("viewBox").is_some(),
        "responsive through viewBox"
    );
    let first = root.first_element_child().expect("a first child");
    assert_eq!(first.tag_name().name(), "title");
    assert_eq!(first.text(), Some(title));
    doc
}

/// Data marks (rect, path, circle) of the series called `name`, each with its class.
fn marks(doc: &roxmltree::Document<'_>, index: usize, name: &str) -> usize {
    doc.descendants()
        .filter(|n| matches!(n.tag_name().name(), "rect" | "path" | "circle"))
        .filter(|n| n.attribute("data-series") == Some(name))
        .inspect(|n| {
            let class = n.attribute("class").unwrap_or("");
            assert!(
                class.split(' ').any(|c| c == format!("series-{index}")),
                "mark of {name} lacks series-{index}: {class}"
            );
        })
        .count()
}

fn texts(doc: &roxmltree::Document<'_>) -> Vec<String> {
    doc.descendants()
        .filter(|n| n.tag_name().name() == "text")
        .map(|n| {
            n.descendants()
                .filter(|d| d.is_text() && d.parent() == Some(n))
                .filter_map(|d| d.text())
                .collect()
        })
        .collect()
}

fn has_no_data_note(doc: &roxmltree::Document<'_>) -> bool {
    texts(doc).iter().any(|t| t.starts_with("No data"))
}

fn line(series: Vec<LineSeries>) -> LineChart {
    LineChart {
        title: "Pods unavailable".into(),
        x: Axis::new("time", "days"),
        y: Axis::new("pods unavailable", "pods"),
        series,
    }
}

fn hourly(name: &str, scale: f64) -> LineSeries {
    let points: Vec<(f64, f64)> = (0..8760)
        .map(|h| {
            (
                h as f64 / 24.0,
                scale * ((h as f64 / 500.0).sin() + 1.0) + (h % 7) as f64,
            )
        })
        .collect();
    let band = points.iter().map(|&(x, y)| (x, y - 1.0, y + 1.5)).collect();
    LineSeries {
        name: name.into(),
        points,
        band: Some(band),
    }
}

#[test]
fn line_chart_draws_both_series_and_stays_small_for_a_year_of_hours() {
    let chart = line(vec![hourly(SERIES[0], 3.0), hourly(SERIES[1], 5.0)]);
    let svg = line_chart(&chart);
    let doc = check(&svg, "Pods unavailable");
    for (i, name) in SERIES.iter().enumerate() {
        assert_eq!(marks(&doc, i, name), 2, "a line and a band for {name}");
        let line = doc
            .descendants()
            .find(|n| {
                n.attribute("data-series") == Some(*name)
                    && n.attribute("class").is_some_and(|c| c.contains("line"))
            })
            .expect("a line");
        let vertices = line
            .attribute("d")
            .unwrap_or("")
            .matches(['M', 'L'])
            .count();
        assert!(
            vertices <= MAX_POINTS_PER_SERIES && vertices > 100,
            "{vertices} vertices"
        );
    }
    assert!(
        svg.len() < 80_000,
        "two year-long hourly series take {} bytes",
        svg.len()
    );
    let t = texts(&doc);
    assert!(
        t.contains(&"time (days)".to_owned()) && t.contains(&"pods unavailable (pods)".to_owned())
    );
    assert!(
        t.contains(&SERIES[0].to_owned()) && t.contains(&SERIES[1].to_owned()),
        "legend"
    );
    assert_eq!(svg, line_chart(&chart), "deterministic");
}

#[test]
fn line_chart_ticks_are_round_numbers() {
    let chart = line(vec![LineSeries {
        name: "a".into(),
        points: vec![(0.0, 3.0), (365.0, 97.0)],
        band: None,
    }]);
    let svg = line_chart(&chart);
    let doc = check(&svg, "Pods unavailable");
    let t = texts(&doc);
    for tick in ["0", "20", "40", "100", "50", "350"] {
        assert!(t.contains(&tick.to_owned()), "tick {tick} in {t:?}");
    }
}

#[test]
fn line_chart_degenerate_inputs_do_not_panic() {
    let empty = line(vec![]);
    assert!(has_no_data_note(&check(
        &line_chart(&empty),
        "Pods unavailable"
    )));
    let nan = line(vec![LineSeries {
        name: "a".into(),
        points: vec![(f64::NAN, 1.0), (1.0, f64::INFINITY)],
        band: None,
    }]);
    assert!(has_no_data_note(&check(
        &line_chart(&nan),
        "Pods unavailable"
    )));
    let one = line(vec![LineSeries {
        name: "a".into(),
        points: vec![(5.0, 5.0)],
        band: None,
    }]);
    let svg = line_chart(&one);
    let doc = check(&svg, "Pods unavailable");
    assert_eq!(marks(&doc, 0, "a"), 1, "a single point is drawn as a dot");
    let zero = line(vec![LineSeries {
        name: "a".into(),
        points: vec![(0.0, 0.0), (1.0, 0.0)],
        band: None,
    }]);
    assert_eq!(
        marks(&check(&line_chart(&zero), "Pods unavailable"), 0, "a"),
        1
    );
}

fn bars(orientation: Orientation) -> GroupedBars {
    GroupedBars {
        title: "Availability by workload".into(),
        categories: vec![
            "web".into(),
            "payments <critical> & \"tier-1\"".into(),
            "batch".into(),
        ],
        value_axis: Axis::new("availability", "%"),
        series: SERIES
            .iter()
            .enumerate()
            .map(|(i, name)| BarSeries {
                name: (*name).into(),
                values: vec![99.9 - i as f64, 99.5, 98.0 + i as f64],
                errors: Some(vec![(99.0, 99.95), (f64::NAN, 99.9), (97.0, 99.5)]),
            })
            .collect(),
        orientation,
    }
}

#[test]
fn grouped_bars_draw_bars_and_error_bars_per_series_both_ways() {
    for orientation in [Orientation::Vertical, Orientation::Horizontal] {
        let chart = bars(orientation);
        let svg = grouped_bars(&chart);
        let doc = check(&svg, "Availability by workload");
        for (i, name) in SERIES.iter().enumerate() {
            assert_eq!(
                marks(&doc, i, name),
                3 + 2,
                "3 bars and 2 finite error bars for {name}"
            );
        }
        assert!(
            svg.contains("payments &lt;critical&gt; &amp; &quot;tier-1&quot;"),
            "escaped category"
        );
        assert!(texts(&doc).contains(&"availability (%)".to_owned()));
    }
}

#[test]
fn grouped_bars_escape_series_names_and_titles() {
    let mut chart = bars(Orientation::Vertical);
    chart.title = "<script>alert('x')</script>".into();
    chart.series[0].name = "a&b\"<".into();
    let svg = grouped_bars(&chart);
    assert!(!svg.contains("<script>"));
    let doc = check(&svg, "<script>alert('x')</script>");
    assert_eq!(marks(&doc, 0, "a&b\"<"), 5);
}

#[test]
fn grouped_bars_degenerate_inputs_show_a_note() {
    let mut chart = bars(Orientation::Vertical);
    for s in &mut chart.series {
        s.values = vec![0.0; 3];
        s.errors = None;
    }
    assert!(has_no_data_note(&check(
        &grouped_bars(&chart),
        "Availability by workload"
    )));
    for s in &mut chart.series {
        s.values = vec![f64::NAN];
    }
    assert!(has_no_data_note(&check(
        &grouped_bars(&chart),
        "Availability by workload"
    )));
    let empty = GroupedBars {
        title: "t".into(),
        ..Default::default()
    };
    assert!(has_no_data_note(&check(&grouped_bars(&empty), "t")));
    let mut horizontal = bars(Orientation::Horizontal);
    horizontal.categories.clear();
    assert!(has_no_data_note(&check(
        &grouped_bars(&horizontal),
        "Availability by workload"
    )));
}

fn costs() -> StackedBars {
    StackedBars {
        title: "Yearly cost".into(),
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
    }
}

#[test]
fn stacked_bars_stack_each_series_with_value_labels() {
    let svg = stacked_bars(&costs());
    let doc = check(&svg, "Yearly cost");
    assert_eq!(marks(&doc, 0, SERIES[0]), 4);
    assert_eq!(marks(&doc, 1, SERIES[1]), 3, "a zero part draws no segment");
    let t = texts(&doc);
    assert!(t.contains(&"810,000".to_owned()), "total label in {t:?}");
    assert!(t.contains(&"420,000".to_owned()), "segment label");
    assert!(t.contains(&"cost (EUR/year)".to_owned()));
    assert!(t.contains(&"licences".to_owned()), "legend of categories");
}

#[test]
fn stacked_bars_degenerate_inputs_show_a_note() {
    let mut chart = costs();
    for b in &mut chart.bars {
        b.values = vec![0.0, f64::NAN, -5.0];
    }
    assert!(has_no_data_note(&check(
        &stacked_bars(&chart),
        "Yearly cost"
    )));
    chart.bars.clear();
    assert!(has_no_data_note(&check(
        &stacked_bars(&chart),
        "Yearly cost"
    )));
}

fn blast() -> Histogram {
    Histogram {
        title: "Blast radius".into(),
        value_axis: Axis::new("pods hit per failure", "pods"),
        count_label: "failures".into(),
        max_bins: 10,
        normalize: false,
        series: vec![
            Samples {
                name: SERIES[0].into(),
                values: vec![1.0, 2.0, 2.0, 3.0, 3.0, 3.0, 4.0],
            },
            Samples {
                name: SERIES[1].into(),
                values: vec![8.0, 8.0, 12.0, 30.0, f64::NAN],
            },
        ],
    }
}

#[test]
fn histogram_bins_samples_into_round_bins_per_series() {
    let svg = histogram(&blast());
    let doc = check(&svg, "Blast radius");
    let bins: Vec<_> = doc
        .descendants()
        .filter(|n| n.tag_name().name() == "rect" && n.attribute("data-series") == Some(SERIES[0]))
        .collect();
    assert!(bins.len() >= 3, "one bar per bin");
    assert!(marks(&doc, 1, SERIES[1]) >= 3);
    let t = texts(&doc);
    assert!(
        t.contains(&"0–4".to_owned()),
        "whole-number bins of width 5: {t:?}"
    );
    assert!(t.contains(&"pods hit per failure (pods)".to_owned()));
    assert!(t.contains(&"failures (count)".to_owned()));

    let mut share = blast();
    share.normalize = true;
    let svg = histogram(&share);
    let doc = check(&svg, "Blast radius");
    assert!(texts(&doc).contains(&"share of failures (%)".to_owned()));
}

#[test]
fn histogram_degenerate_inputs() {
    let mut h = blast();
    h.series.iter_mut().for_each(|s| s.values.clear());
    assert!(has_no_data_note(&check(&histogram(&h), "Blast radius")));
    h.series[0].values = vec![7.0];
    let svg = histogram(&h);
    let doc = check(&svg, "Blast radius");
    assert_eq!(marks(&doc, 0, SERIES[0]), 1, "one sample, one bin");
    h.max_bins = 0;
    h.series[0].values = vec![f64::NAN, f64::INFINITY];
    assert!(has_no_data_note(&check(&histogram(&h), "Blast radius")));
}

fn phases(scale: Scale) -> Timeline {
    Timeline {
        title: "Time to capacity".into(),
        phases: vec!["procurement".into(), "install".into(), "boot".into()],
        series: vec![
            TimelineSeries {
                name: SERIES[0].into(),
                durations_s: vec![0.0, 1800.0, 45.0],
            },
            TimelineSeries {
                name: SERIES[1].into(),
                durations_s: vec![30.0 * 86_400.0, 4.0 * 3600.0, 420.0],
            },
        ],
        scale,
    }
}

#[test]
fn timeline_draws_phases_per_series_with_human_durations() {
    for scale in [Scale::Linear, Scale::Log] {
        let svg = timeline(&phases(scale));
        let doc = check(&svg, "Time to capacity");
        assert_eq!(marks(&doc, 0, SERIES[0]), 3);
        assert_eq!(marks(&doc, 1, SERIES[1]), 3);
        let t = texts(&doc);
        assert!(t.contains(&"30 d".to_owned()), "{t:?}");
        assert!(t.contains(&"45 s".to_owned()));
        assert!(t.contains(&"7 min".to_owned()));
        if scale == Scale::Log {
            for tick in ["10 s", "1 min", "1 h", "1 d", "30 d"] {
                assert!(t.contains(&tick.to_owned()), "log tick {tick} in {t:?}");
            }
        }
    }
}

#[test]
fn timeline_degenerate_inputs_show_a_note() {
    let mut t = phases(Scale::Log);
    t.series
        .iter_mut()
        .for_each(|s| s.durations_s = vec![0.0, f64::NAN, -1.0]);
    assert!(has_no_data_note(&check(&timeline(&t), "Time to capacity")));
    t.phases.clear();
    assert!(has_no_data_note(&check(&timeline(&t), "Time to capacity")));
    assert!(has_no_data_note(&check(
        &timeline(&Timeline::default()),
        "Chart"
    )));
}

#[test]
fn human_durations_pick_a_readable_unit() {
    assert_eq!(human_duration(90.0), "1.5 min");
    assert_eq!(human_duration(36.0 * 3600.0), "1.5 d");
}
