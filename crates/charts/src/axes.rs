//! Drawing axes, ticks and grid lines onto a plot area.

use crate::scale::{Ticks, decimals_for, tick_label};
use crate::svg::{Area, Svg, esc, num, text_width};

/// Maps `v` from `[lo, hi]` onto `[a, b]`; a zero-width domain maps to the middle.
pub(crate) fn lin(v: f64, lo: f64, hi: f64, a: f64, b: f64) -> f64 {
    if hi - lo == 0.0 || !(hi - lo).is_finite() {
        return (a + b) / 2.0;
    }
    a + (v - lo) / (hi - lo) * (b - a)
}

/// Labels for linear ticks, with as many decimals as the step needs.
pub(crate) fn labels(ticks: &Ticks) -> Vec<String> {
    let d = decimals_for(ticks.step);
    ticks.values.iter().map(|&v| tick_label(v, d)).collect()
}

/// Room the left axis needs for these tick labels plus its rotated title.
pub(crate) fn left_margin(labels: &[String]) -> f64 {
    let widest = labels.iter().map(|l| text_width(l)).fold(0.0, f64::max);
    (widest + 40.0).max(56.0)
}

/// A value axis on the left: grid lines across the area at `positions`, labels, title.
pub(crate) fn y_axis(svg: &mut Svg, area: &Area, positions: &[(f64, String)], title: &str) {
    svg.raw("<g class=\"axis axis-y\">");
    for (y, label) in positions {
        svg.raw(&format!(
            "<g class=\"tick\"><line x1=\"{}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"#e3e3e3\"/>\
             <text x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"#444444\">{}</text></g>",
            num(area.x0),
            num(area.x1),
            num(area.x0 - 6.0),
            num(y + 4.0),
            esc(label),
            y = num(*y),
        ));
    }
    svg.raw(&format!(
        "<text class=\"axis-title\" transform=\"translate(14.0 {}) rotate(-90)\" text-anchor=\"middle\" fill=\"#444444\">{}</text>",
        num((area.y0 + area.y1) / 2.0),
        esc(title)
    ));
    svg.raw("</g>");
}

/// A value axis along the bottom: grid lines up the area at `positions`, labels, title.
pub(crate) fn x_axis(svg: &mut Svg, area: &Area, positions: &[(f64, String)], title: &str) {
    svg.raw("<g class=\"axis axis-x\">");
    for (x, label) in positions {
        svg.raw(&format!(
            "<g class=\"tick\"><line x1=\"{x}\" y1=\"{}\" x2=\"{x}\" y2=\"{}\" stroke=\"#e3e3e3\"/>\
             <text x=\"{x}\" y=\"{}\" text-anchor=\"middle\" fill=\"#444444\">{}</text></g>",
            num(area.y0),
            num(area.y1),
            num(area.y1 + 16.0),
            esc(label),
            x = num(*x),
        ));
    }
    svg.raw(&format!(
        "<text class=\"axis-title\" x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#444444\">{}</text>",
        num((area.x0 + area.x1) / 2.0),
        num(area.y1 + 36.0),
        esc(title)
    ));
    svg.raw("</g>");
}

/// The solid base lines along the left and bottom of the area.
pub(crate) fn frame(svg: &mut Svg, area: &Area) {
    svg.raw(&format!(
        "<path class=\"frame\" d=\"M{} {}V{}H{}\" fill=\"none\" stroke=\"#888888\"/>",
        num(area.x0),
        num(area.y0),
        num(area.y1),
        num(area.x1)
    ));
}
