//! The Decide view's answer to "what would change it": the break-even of each input and
//! what moving one cluster to the other environment changes, from the report the kept
//! comparison's sweeps filled in ([`crate::sweeps::add`], as `plinth compare` does). The
//! comparison itself is the page `plinth compare --html` writes, which the view shows
//! beside this.

use maud::{Markup, html};
use plinth_compare::sensitivity::WhatIf;
use plinth_compare::{Report, fmt_num};

/// The environment's name as the report's readers know it.
fn display(env: &str) -> &str {
    match env {
        "virtualized" => "virtualized",
        "bare-metal" => "bare metal",
        other => other,
    }
}

/// A change where lower is better: signed, and `worse` or `better`.
fn change(now: f64, then: f64) -> Markup {
    let by = then - now;
    let (class, sign) = if by > 0.0 {
        ("worse", "+")
    } else {
        ("better", "")
    };
    html! { span class=(class) { (sign) (fmt_num(by)) } }
}

fn what_if_row(w: &WhatIf) -> Markup {
    let (now, then) = (&w.all_together, &w.split);
    html! {
        tr data-cluster=(w.cluster) {
            th scope="row" { (w.cluster) }
            td { (display(w.moved_to)) }
            td.n { (change(now.cost, then.cost)) }
            td.n { (change(now.pod_minutes, then.pod_minutes)) }
            td.n { (change(now.servers, then.servers)) }
            td.n { (change(now.hands_on, then.hands_on)) }
        }
    }
}

/// The break-even and what-if tables of `report`.
pub(crate) fn render(report: &Report) -> Markup {
    let Some(recommended) = &report.recommendation else {
        return html! {
            p.empty { "No recommendation to change: a design fails the service check (see the report below)." }
        };
    };
    let rest_on = report.what_if.first().map_or("", |w| w.rest_on);
    html! {
        section.break-even aria-labelledby="break-even-title" {
            h3 #break-even-title { "What would change the answer" }
            p { "Recommended now: " strong { (display(recommended.environment)) } "." }
            @if report.sensitivity.iter().all(|b| b.flips_at.is_none()) {
                p { "No single input flips the recommendation anywhere in the range searched." }
            }
            table.compact {
                thead { tr { th scope="col" { "Input" } th scope="col" { "Value now" } th scope="col" { "Break-even" } } }
                tbody {
                    @for b in &report.sensitivity {
                        tr data-parameter=(b.parameter) {
                            th scope="row" { (b.parameter) }
                            td { (b.value) }
                            td { (b.summary) }
                        }
                    }
                }
            }
        }
        @if !report.what_if.is_empty() {
            section.what-ifs aria-labelledby="what-if-title" {
                h3 #what-if-title { "Moving one cluster" }
                p.note {
                    "Each row moves one cluster to the other environment and keeps the rest on "
                    (display(rest_on)) ", against keeping everything together; every column is better lower."
                }
                table.compact {
                    thead { tr {
                        th scope="col" { "Cluster moved" } th scope="col" { "To" }
                        th.n scope="col" { "Cost (" (report.currency) ")" } th.n scope="col" { "Pod-min/year" }
                        th.n scope="col" { "Servers" } th.n scope="col" { "Hands-on h/year" }
                    } }
                    tbody { @for w in &report.what_if { (what_if_row(w)) } }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_is_signed_and_says_whether_it_is_worse() {
        assert_eq!(
            change(10.0, 12.5).into_string(),
            format!("<span class=\"worse\">+{}</span>", fmt_num(2.5))
        );
        assert_eq!(
            change(10.0, 7.0).into_string(),
            format!("<span class=\"better\">{}</span>", fmt_num(-3.0))
        );
    }
}
