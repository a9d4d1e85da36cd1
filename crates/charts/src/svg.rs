//! Writing SVG text: escaping, fixed-precision numbers, the chart frame, legend and notes.

use crate::PALETTE;

/// Width of every chart's view box, in user units.
pub(crate) const WIDTH: f64 = 760.0;

/// Approximate advance of one character of 12-unit text, used to lay out labels without
/// font metrics.
pub(crate) const CHAR_W: f64 = 6.6;

/// Escapes text for XML content and attribute values, dropping characters XML forbids.
pub(crate) fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' | '\r' => out.push(' '),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

/// A coordinate with one decimal; never `-0.0`, never `NaN`.
pub(crate) fn num(v: f64) -> String {
    if !v.is_finite() {
        return "0.0".to_owned();
    }
    let s = format!("{:.1}", v);
    if s == "-0.0" { "0.0".to_owned() } else { s }
}

/// Shortens `text` to at most `max_chars` characters, ending it with an ellipsis if cut.
pub(crate) fn truncate(text: &str, max_chars: usize) -> String {
    let count = text.chars().count();
    if count <= max_chars {
        return text.to_owned();
    }
    let keep = max_chars.saturating_sub(1);
    let mut out: String = text.chars().take(keep).collect();
    out.push('…');
    out
}

/// The colour of series or category `i`.
pub(crate) fn colour(i: usize) -> &'static str {
    PALETTE[i % PALETTE.len()]
}

/// A text colour readable on top of palette colour `i`.
pub(crate) fn ink_on(i: usize) -> &'static str {
    // Okabe-Ito blue, vermillion, purple and black take white text; the light ones black.
    match colour(i) {
        "#0072B2" | "#D55E00" | "#CC79A7" | "#000000" | "#009E73" => "#ffffff",
        _ => "#1a1a1a",
    }
}

/// Estimated width of `text` at the default font size.
pub(crate) fn text_width(text: &str) -> f64 {
    text.chars().count() as f64 * CHAR_W
}

/// An SVG document being written.
pub(crate) struct Svg {
    out: String,
}

impl Svg {
    /// Opens the root element of a chart of `kind` ("line", "bars", ...) and writes its
    /// accessible name and visible title ("Chart" when `title` is blank).
    pub(crate) fn open(kind: &str, title: &str, height: f64) -> Self {
        let t = esc(if title.trim().is_empty() {
            "Chart"
        } else {
            title
        });
        let mut out = String::with_capacity(8 * 1024);
        out.push_str(&format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"plinth-chart plinth-{kind}\" \
             viewBox=\"0 0 {} {}\" role=\"img\" aria-label=\"{t}\" \
             font-family=\"system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif\" \
             font-size=\"12\">",
            num(WIDTH),
            num(height)
        ));
        out.push_str(&format!("<title>{t}</title>"));
        out.push_str(&format!(
            "<rect class=\"background\" x=\"0\" y=\"0\" width=\"{}\" height=\"{}\" fill=\"#ffffff\"/>",
            num(WIDTH),
            num(height)
        ));
        out.push_str(&format!(
            "<text class=\"chart-title\" x=\"16.0\" y=\"24.0\" font-size=\"15\" font-weight=\"600\" fill=\"#1a1a1a\">{t}</text>"
        ));
        Svg { out }
    }

    /// Appends raw, already escaped SVG.
    pub(crate) fn raw(&mut self, s: &str) {
        self.out.push_str(s);
    }

    /// Writes a legend whose items are laid out in rows from `y`; returns the y below it.
    /// `line` draws line swatches instead of boxes.
    pub(crate) fn legend(&mut self, names: &[&str], y: f64, line: bool) -> f64 {
        let rows = legend_rows(names);
        self.out.push_str("<g class=\"legend\">");
        let mut row_y = y;
        for row in &rows {
            let mut x = 16.0;
            for &(i, name) in row {
                let c = colour(i);
                if line {
                    self.out.push_str(&format!(
                        "<line class=\"legend-swatch\" x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{c}\" stroke-width=\"3\"/>",
                        num(x),
                        num(row_y - 4.0),
                        num(x + 14.0),
                        num(row_y - 4.0)
                    ));
                } else {
                    self.out.push_str(&format!(
                        "<rect class=\"legend-swatch\" x=\"{}\" y=\"{}\" width=\"12.0\" height=\"12.0\" rx=\"2.0\" fill=\"{c}\"/>",
                        num(x),
                        num(row_y - 10.0)
                    ));
                }
                let label = truncate(name, 40);
                self.out.push_str(&format!(
                    "<text x=\"{}\" y=\"{}\" fill=\"#333333\">{}</text>",
                    num(x + 19.0),
                    num(row_y),
                    esc(&label)
                ));
                x += legend_item_width(&label);
            }
            row_y += 18.0;
        }
        self.out.push_str("</g>");
        row_y
    }

    /// Writes a visible "no data" note centred in the given plot area.
    pub(crate) fn no_data(&mut self, area: &Area, why: &str) {
        self.out.push_str(&format!(
            "<g class=\"no-data\"><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"#fafafa\" stroke=\"#bbbbbb\" stroke-dasharray=\"4 4\"/>\
             <text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"14\" font-style=\"italic\" fill=\"#555555\">{}</text></g>",
            num(area.x0),
            num(area.y0),
            num(area.width()),
            num(area.height()),
            num((area.x0 + area.x1) / 2.0),
            num((area.y0 + area.y1) / 2.0),
            esc(why)
        ));
    }

    /// Closes the root element and returns the document.
    pub(crate) fn finish(mut self) -> String {
        self.out.push_str("</svg>");
        self.out
    }
}

fn legend_item_width(label: &str) -> f64 {
    19.0 + text_width(label) + 18.0
}

/// Splits legend items into rows that fit the chart width.
fn legend_rows<'a>(names: &[&'a str]) -> Vec<Vec<(usize, &'a str)>> {
    let mut rows: Vec<Vec<(usize, &'a str)>> = vec![Vec::new()];
    let mut x = 16.0;
    for (i, &name) in names.iter().enumerate() {
        let w = legend_item_width(&truncate(name, 40));
        if x + w > WIDTH - 16.0 && rows.last().is_some_and(|r| !r.is_empty()) {
            rows.push(Vec::new());
            x = 16.0;
        }
        if let Some(row) = rows.last_mut() {
            row.push((i, name));
        }
        x += w;
    }
    rows
}

/// How many rows a legend of these names takes.
pub(crate) fn legend_height(names: &[&str]) -> f64 {
    if names.is_empty() {
        0.0
    } else {
        legend_rows(names).len() as f64 * 18.0
    }
}

/// The plot area inside a chart, in view-box units.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Area {
    pub(crate) x0: f64,
    pub(crate) y0: f64,
    pub(crate) x1: f64,
    pub(crate) y1: f64,
}

impl Area {
    pub(crate) fn width(&self) -> f64 {
        self.x1 - self.x0
    }
    pub(crate) fn height(&self) -> f64 {
        self.y1 - self.y0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_drops_control_characters() {
        assert_eq!(esc("a<b>&\"c'\u{1}"), "a&lt;b&gt;&amp;&quot;c&#39;");
    }

    #[test]
    fn numbers_have_one_decimal_and_no_negative_zero() {
        assert_eq!(num(1.26), "1.3");
        assert_eq!(num(-0.01), "0.0");
        assert_eq!(num(f64::NAN), "0.0");
        assert_eq!(num(3.0), "3.0");
    }

    #[test]
    fn truncation_keeps_short_text_and_marks_cuts() {
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("abcdef", 4), "abc…");
    }
}
