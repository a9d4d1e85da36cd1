//! The HTML report: one self-contained file (inline CSS and SVG, no scripts, no external
//! assets) a manager can read — the recommendation, the dimension table, charts of both
//! environments, the break-even table, the per-cluster what-ifs and the provenance.

use std::fmt::Write;

use plinth_charts::{
    Axis, BarSeries, GroupedBars, Histogram, LineChart, LineSeries, Orientation, Samples, Scale,
    Timeline, TimelineSeries, grouped_bars, histogram, line_chart, timeline,
};

use crate::{Report, Winner, fmt_num};

const NAMES: [&str; 2] = ["virtualized", "bare metal"];

/// Minutes in a year.
const YEAR_MINUTES: f64 = 525_600.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const STYLE: &str = "
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;color:#1a1a1a;background:#fff}
main{max-width:1180px;margin:0 auto;padding:24px 32px 64px}
h1{font-size:1.7rem;margin:.2em 0}h2{font-size:1.25rem;margin-top:2em;border-bottom:1px solid #ddd;padding-bottom:.2em}
.verdict{font-size:1.3rem;padding:14px 18px;border-radius:8px;background:#f2f6fa;border-left:6px solid #0072B2}
.verdict.bare-metal{border-left-color:#E69F00}
table{border-collapse:collapse;width:100%;font-size:.9rem;margin:.6em 0}
table.compact{width:auto;min-width:50%}
th,td{padding:5px 8px;border-bottom:1px solid #e4e4e4;text-align:left;vertical-align:top}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
table.dims td:nth-child(3){min-width:15em}td[class^=win-]{white-space:nowrap}
tbody.dim{border-top:1px solid #bbb}tbody.dim tr.note td{border:0;padding:1px 8px;font-size:.8rem}
.ci{font-size:.8em;color:#666}td.field{font-family:ui-monospace,monospace;font-size:.8rem}
.nosrc{font-size:.75rem;color:#9a6a00;background:#fff6e0;padding:0 4px;border-radius:3px}
.worse{color:#b00020}.better{color:#1b7f3b}
details summary{cursor:pointer;margin:.5em 0}
.win-virtualized{color:#005a8c;font-weight:600}.win-bare-metal{color:#9a6a00;font-weight:600}.win-tie{color:#666}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(760px,1fr));gap:24px;align-items:start}
.grid .plinth-figure{margin:0}.grid .wide{grid-column:1/-1}
.note{color:#555;font-size:.85rem}
.warn{background:#fff6e0;padding:8px 12px;border-radius:6px}
";

fn chart_block(out: &mut String, svg: &str) {
    let _ = write!(out, "<figure class=\"plinth-figure\">{svg}</figure>");
}

fn wide_chart_block(out: &mut String, svg: &str) {
    let _ = write!(out, "<figure class=\"plinth-figure wide\">{svg}</figure>");
}

/// How an environment is named in prose.
fn display(env: &str) -> &'static str {
    match env {
        "virtualized" => NAMES[0],
        _ => NAMES[1],
    }
}

/// A dimension's unit, money in the report's currency.
fn unit<'a>(unit: &'a str, currency: &'a str) -> &'a str {
    if unit == "currency" { currency } else { unit }
}

/// Renders `report` as one HTML page.
pub fn render(report: &Report, title: &str) -> String {
    let mut o = String::new();
    let _ = write!(
        o,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <style>{STYLE}{css}</style></head><body><main><h1>{t}</h1>",
        t = esc(title),
        css = plinth_charts::CSS
    );
    let opts = &report.options;
    let _ = write!(
        o,
        "<p class=\"note\">{} paired runs per environment from seed {}, {:.0} simulated days each; \
         costs in {} over {} years.</p>",
        opts.runs,
        opts.seed,
        opts.duration_ms as f64 / 86_400_000.0,
        esc(&report.currency),
        report.horizon_years
    );
    summary(&mut o, report);
    dimensions(&mut o, report);
    charts(&mut o, report);
    sensitivity(&mut o, report);
    merge_what_if(&mut o, report);
    provenance(&mut o, report);
    o.push_str("</main></body></html>\n");
    o
}

fn summary(o: &mut String, report: &Report) {
    o.push_str("<h2>Recommendation</h2>");
    match &report.recommendation {
        Some(r) => {
            let _ = write!(
                o,
                "<p class=\"verdict {}\">Run these clusters <b>{}</b>.</p><ol>",
                r.environment,
                match r.environment {
                    "virtualized" => "on the virtualization pool",
                    "bare-metal" => "on bare metal",
                    "neither" => "on neither design as it stands: both violate a requirement",
                    _ => "on either: neither requirements nor money separate them",
                },
            );
            for reason in &r.reasons {
                let _ = write!(o, "<li>{}</li>", esc(reason));
            }
            o.push_str("</ol>");
            money(o, report, r);
        }
        None => o.push_str(
            "<p class=\"verdict\">No recommendation: a design fails the service check.</p>",
        ),
    }
    for w in &report.warnings {
        let _ = write!(o, "<p class=\"warn\">{}</p>", esc(w));
    }
    o.push_str(
        "<h2>Designs</h2><table class=compact><tr><th>environment</th><th class=n>servers</th>\
         <th class=n>owned</th><th class=n>bought</th><th class=n>owned, unused</th>\
         <th class=n>nodes</th><th>service check</th></tr>",
    );
    for d in &report.designs {
        let _ = write!(
            o,
            "<tr><td>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td>\
             <td class=n>{}</td><td class=n>{}</td><td>{}</td></tr>",
            display(d.env),
            d.servers,
            d.owned,
            d.bought,
            d.surplus,
            d.nodes,
            if d.failures.is_empty() {
                "passes".to_owned()
            } else {
                esc(&d.failures.join("; "))
            }
        );
    }
    o.push_str("</table>");
    roles(o, report);
}

/// Why each design has its servers: a table by role.
fn roles(o: &mut String, report: &Report) {
    o.push_str(
        "<h2>Why these servers</h2><table class=roles><tr><th>design</th><th>cluster</th>\
         <th>role</th><th class=n>servers</th><th>why</th></tr>",
    );
    for d in &report.designs {
        for r in &d.roles {
            let _ = write!(
                o,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=n>{}</td><td>{}</td></tr>",
                display(d.env),
                esc(&r.cluster),
                esc(&r.role),
                r.servers,
                esc(&r.why)
            );
        }
    }
    o.push_str("</table>");
}

/// The priced totals of both environments.
fn money(o: &mut String, report: &Report, r: &crate::Recommendation) {
    let _ = write!(
        o,
        "<table class=compact><tr><th>{} over {} years</th><th class=n>TCO</th>\
         <th class=n>downtime</th><th class=n>delay</th><th class=n>priced total</th></tr>",
        esc(&report.currency),
        report.horizon_years
    );
    for m in &r.money {
        let _ = write!(
            o,
            "<tr><td>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td>\
             <td class=n>{}</td></tr>",
            display(m.env),
            fmt_num(m.tco),
            fmt_num(m.downtime),
            fmt_num(m.delay),
            fmt_num(m.total.mean)
        );
    }
    o.push_str(
        "</table><p class=note>Downtime and delay count only when the PriceSheet prices them \
         (<code>downtimePerWorkloadHour</code>, <code>delayPerNodeHour</code>); a difference \
         is material when its interval excludes zero and it is at least the Scenario's \
         <code>materiality</code> (default 5 %) of the larger mean.</p>",
    );
}

fn dimensions(o: &mut String, report: &Report) {
    if report.dimensions.is_empty() {
        return;
    }
    o.push_str(
        "<h2>The 13 dimensions</h2><table class=dims><thead><tr><th>#</th><th>dimension</th>\
         <th>metric</th><th class=n>virtualized</th><th class=n>bare metal</th>\
         <th class=n>difference (virtualized − bare metal)</th><th>better</th></tr></thead>",
    );
    let ci = |e: &crate::stats::Estimate| {
        if e.low == e.high {
            fmt_num(e.mean)
        } else {
            format!(
                "{}<br><span class=ci>{} – {}</span>",
                fmt_num(e.mean),
                fmt_num(e.low),
                fmt_num(e.high)
            )
        }
    };
    for d in &report.dimensions {
        let (class, who) = match (d.winner, d.material) {
            (Winner::Virtualized, true) => ("virtualized", NAMES[0]),
            (Winner::BareMetal, true) => ("bare-metal", NAMES[1]),
            (Winner::Tie, _) => ("tie", "tie"),
            (_, false) => ("tie", "no material difference"),
        };
        let _ = write!(
            o,
            "<tbody class=dim><tr><td>{}</td><td>{}</td><td>{} <span class=note>({})</span></td>\
             <td class=n>{}</td><td class=n>{}</td><td class=n>{}</td>\
             <td class=\"win-{class}\">{who}</td></tr>",
            d.spec.number,
            esc(d.spec.title),
            esc(d.spec.metric),
            esc(unit(d.spec.unit, &report.currency)),
            ci(&d.virtualized),
            ci(&d.bare_metal),
            ci(&d.difference),
        );
        for x in &d.details {
            let _ = write!(
                o,
                "<tr class=note><td></td><td></td><td>{} <span class=note>({})</span></td>\
                 <td class=n>{}</td><td class=n>{}</td><td></td><td></td></tr>",
                esc(&x.name),
                esc(unit(&x.unit, &report.currency)),
                fmt_num(x.virtualized),
                fmt_num(x.bare_metal)
            );
        }
        o.push_str("</tbody>");
    }
    o.push_str("</table>");
}

/// A workload id (`cluster/namespace/Kind/name`) short enough for a chart label.
fn short(workload: &str) -> String {
    let parts: Vec<&str> = workload.split('/').collect();
    match parts.as_slice() {
        [cluster, _, _, name] => format!("{cluster}/{name}"),
        _ => workload.to_owned(),
    }
}

/// Workloads shown in the unavailability chart.
const TOP_WORKLOADS: usize = 15;

/// Capital and operating cash per year of both environments, with their totals: capital
/// (servers bought) is spent in year 1, operating cost in every year.
fn cash_chart(o: &mut String, report: &Report) {
    let years = report.series.first().map_or(0, |s| s.cash.len());
    let total = |s: &crate::Series| s.cash.iter().map(|(c, x)| c + x).sum::<f64>();
    let mut categories = vec!["capital, year 1".to_owned()];
    categories.extend((1..=years).map(|y| format!("operating, year {y}")));
    chart_block(
        o,
        &grouped_bars(&GroupedBars {
            title: format!(
                "Cash per year: capital and operating (totals: virtualized {}, bare metal {})",
                fmt_num(report.series.first().map_or(0.0, total)),
                fmt_num(report.series.get(1).map_or(0.0, total)),
            ),
            categories,
            value_axis: Axis::new("cash", &report.currency),
            series: report
                .series
                .iter()
                .zip(NAMES)
                .map(|(s, name)| BarSeries {
                    name: name.into(),
                    values: std::iter::once(s.cash.first().map_or(0.0, |c| c.0))
                        .chain(s.cash.iter().map(|c| c.1))
                        .collect(),
                    errors: None,
                })
                .collect(),
            orientation: Orientation::Vertical,
        }),
    );
}

fn charts(o: &mut String, report: &Report) {
    o.push_str("<h2>Charts</h2><div class=grid>");
    let s = &report.series;
    chart_block(
        o,
        &line_chart(&LineChart {
            title: "Physical CPU utilization (daily mean, band: lowest to highest hour)".into(),
            x: Axis::new("day", "d"),
            y: Axis::new("CPU utilization", "%"),
            series: s
                .iter()
                .zip(NAMES)
                .map(|(s, name)| LineSeries {
                    name: name.into(),
                    points: s
                        .daily_cpu
                        .iter()
                        .enumerate()
                        .map(|(d, u)| (d as f64, u.0))
                        .collect(),
                    band: Some(
                        s.daily_cpu
                            .iter()
                            .enumerate()
                            .map(|(d, u)| (d as f64, u.1, u.2))
                            .collect(),
                    ),
                })
                .collect(),
        }),
    );
    chart_block(
        o,
        &grouped_bars(&GroupedBars {
            title: format!(
                "{}-year cost by category (virtualized {}, bare metal {})",
                report.horizon_years,
                fmt_num(s.first().map_or(0.0, |s| s.cost.iter().sum())),
                fmt_num(s.get(1).map_or(0.0, |s| s.cost.iter().sum())),
            ),
            categories: crate::cost::Cost::CATEGORIES.map(String::from).to_vec(),
            value_axis: Axis::new("cost", &report.currency),
            series: s
                .iter()
                .zip(NAMES)
                .map(|(s, name)| BarSeries {
                    name: name.into(),
                    values: s.cost.to_vec(),
                    errors: None,
                })
                .collect(),
            orientation: Orientation::Vertical,
        }),
    );
    cash_chart(o, report);
    // The workloads down longest in either environment, longest first.
    let down = |w: &crate::WorkloadAvailability| 100.0 - w.virtualized.min(w.bare_metal);
    let mut workloads: Vec<&crate::WorkloadAvailability> = report.availability.iter().collect();
    workloads.sort_by(|a, b| down(b).total_cmp(&down(a)));
    let shown = workloads.len().min(TOP_WORKLOADS);
    let cut = workloads.len() - shown;
    workloads.truncate(shown);
    wide_chart_block(
        o,
        &grouped_bars(&GroupedBars {
            title: if cut > 0 {
                format!(
                    "Unavailability per workload (minutes per year), the {shown} longest; {cut} more below"
                )
            } else {
                "Unavailability per workload (minutes per year)".into()
            },
            categories: workloads.iter().map(|w| short(&w.workload)).collect(),
            value_axis: Axis::new("unavailable", "min/year"),
            series: [0, 1]
                .into_iter()
                .map(|k| BarSeries {
                    name: NAMES[k].into(),
                    values: workloads
                        .iter()
                        .map(|w| {
                            let a = if k == 0 { w.virtualized } else { w.bare_metal };
                            (100.0 - a) / 100.0 * YEAR_MINUTES
                        })
                        .collect(),
                    errors: None,
                })
                .collect(),
            orientation: Orientation::Horizontal,
        }),
    );
    chart_block(
        o,
        &histogram(&Histogram {
            title: "Blast radius: pods one server failure hits".into(),
            value_axis: Axis::new("pods hit", "pods"),
            count_label: "servers".into(),
            max_bins: 0,
            normalize: true,
            series: s
                .iter()
                .zip(NAMES)
                .map(|(s, name)| Samples {
                    name: name.into(),
                    values: s.pods_per_server.clone(),
                })
                .collect(),
        }),
    );
    let phases: Vec<String> = {
        let mut p: Vec<String> = Vec::new();
        for s in s {
            for (name, _) in &s.add_node {
                if !p.contains(name) {
                    p.push(name.clone());
                }
            }
        }
        p
    };
    chart_block(
        o,
        &timeline(&Timeline {
            title: "Time to add a node, by phase".into(),
            phases: phases.clone(),
            series: s
                .iter()
                .zip(NAMES)
                .map(|(s, name)| TimelineSeries {
                    name: name.into(),
                    durations_s: phases
                        .iter()
                        .map(|p| {
                            s.add_node
                                .iter()
                                .find(|(n, _)| n == p)
                                .map_or(0.0, |(_, d)| *d)
                        })
                        .collect(),
                })
                .collect(),
            scale: Scale::Log,
        }),
    );
    o.push_str("</div>");
}

fn sensitivity(o: &mut String, report: &Report) {
    if !report.sensitivity.is_empty() {
        o.push_str("<h2>What would change the answer</h2>");
        if report.sensitivity.iter().all(|b| b.flips_at.is_none()) {
            o.push_str(
                "<p>No single input flips the recommendation anywhere between a tenth and ten \
                 times its value.</p>",
            );
        }
        o.push_str(
            "<table class=compact><tr><th>input</th><th>value now</th><th>break-even</th></tr>",
        );
        for b in &report.sensitivity {
            let _ = write!(
                o,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(b.parameter),
                esc(&b.value),
                esc(&b.summary)
            );
        }
        o.push_str("</table>");
    }
    if !report.what_if.is_empty() {
        let _ = write!(
            o,
            "<h2>Moving one cluster</h2><p class=note>Each row moves one cluster to the other \
             environment and keeps the rest where the recommendation puts them; changes are \
             against keeping everything together (<span class=worse>red</span>: worse, \
             <span class=better>green</span>: better).</p><table class=compact><tr>\
             <th>cluster moved</th><th>to</th><th class=n>cost ({})</th>\
             <th class=n>pod-min/year</th><th class=n>servers</th><th class=n>hands-on h/year</th></tr>",
            esc(&report.currency)
        );
        for w in &report.what_if {
            // Every column is better lower.
            let d = |a: f64, b: f64| {
                let x = b - a;
                let class = if x > 0.0 { "worse" } else { "better" };
                let text = if x > 0.0 {
                    format!("+{}", fmt_num(x))
                } else {
                    fmt_num(x)
                };
                format!("<span class={class}>{text}</span>")
            };
            let _ = write!(
                o,
                "<tr><td>{}</td><td>{}</td><td class=n>{}</td><td class=n>{}</td>\
                 <td class=n>{}</td><td class=n>{}</td></tr>",
                esc(&w.cluster),
                display(w.moved_to),
                d(w.all_together.cost, w.split.cost),
                d(w.all_together.pod_minutes, w.split.pod_minutes),
                d(w.all_together.servers, w.split.servers),
                d(w.all_together.hands_on, w.split.hands_on),
            );
        }
        o.push_str("</table>");
    }
}

/// Every cluster merged into one on bare metal, against the report's bare-metal design.
fn merge_what_if(o: &mut String, report: &Report) {
    let Some(m) = &report.merge_what_if else {
        return;
    };
    let _ = write!(
        o,
        "<h2>Merging every cluster</h2><p class=note>The {} clusters ({}) merged into one \
         bare-metal cluster with a namespace each ({}), simulated like the report's \
         bare-metal design.</p><table class=compact><tr><th></th><th class=n>cost ({})</th>\
         <th class=n>pod-min/year</th><th class=n>servers</th><th class=n>hands-on h/year</th></tr>",
        m.clusters.len(),
        esc(&m.clusters.join(", ")),
        esc(&m.versions()),
        esc(&report.currency)
    );
    for (label, t) in [("the report's design", &m.design), ("merged", &m.merged)] {
        let _ = write!(
            o,
            "<tr><td>{label}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td>\
             <td class=n>{}</td></tr>",
            fmt_num(t.cost),
            fmt_num(t.pod_minutes),
            fmt_num(t.servers),
            fmt_num(t.hands_on)
        );
    }
    o.push_str("</table>");
}

fn provenance(o: &mut String, report: &Report) {
    let unsourced = report.provenance.iter().filter(|p| !p.sourced).count();
    let _ = write!(
        o,
        "<h2>Provenance: values that came from defaults</h2><details><summary>{} values came \
         from defaults, {} of them without a published source (show)</summary><table><tr>\
         <th>field</th><th>value</th><th>source</th></tr>",
        report.provenance.len(),
        unsourced
    );
    for p in &report.provenance {
        let _ = write!(
            o,
            "<tr><td class=field>{}</td><td>{}</td><td>{}{}</td></tr>",
            esc(&p.field),
            esc(&p.value),
            if p.sourced {
                ""
            } else {
                "<span class=nosrc>no source</span> "
            },
            esc(&p.source)
        );
    }
    o.push_str("</table></details>");
}
