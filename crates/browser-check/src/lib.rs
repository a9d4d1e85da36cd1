//! Test support for Plinth's HTML output: renders a page in headless Chromium through
//! `scripts/render-html` and checks what a reader would see — every chart figure has
//! laid-out marks for each series and a screenshot that is not blank.
//!
//! It owns running the script (with the rule that a missing Chromium skips the check unless
//! `CI` is set), the layout probe injected into a copy of the page, the DOM checks of
//! `svg.plinth-chart` figures and the screenshot checks. It must not build pages or know any
//! report's content: callers hand it HTML, selectors, series names and colours.
//!
//! [`live`] drives a page that keeps running (the console of `plinth serve`) over the
//! DevTools protocol: evaluate, wait for an expression, press keys, take screenshots;
//! [`axe`] runs axe-core (installed by `scripts/axe-core`) in such a page.

pub mod axe;
pub mod live;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Errors from rendering or checking a page.
#[derive(Debug, thiserror::Error)]
pub enum BrowserCheckError {
    /// Reading or writing a file, or starting the script, failed.
    #[error("{what} {path}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// `CI` is set, so a missing Chromium is a failure rather than a skip.
    #[error("CI is set but Chromium is missing: {stderr}")]
    ChromiumMissing {
        /// What the script said.
        stderr: String,
    },
    /// `CI` is set, so axe-core that cannot be installed is a failure rather than a skip.
    #[error("CI is set but axe-core could not be installed (scripts/axe-core): {stderr}")]
    AxeCoreMissing {
        /// What the script said.
        stderr: String,
    },
    /// `scripts/render-html` failed.
    #[error("render-html failed ({status}): {stderr}")]
    Render {
        /// Its exit status.
        status: String,
        /// What it said.
        stderr: String,
    },
    /// The page has no `</body>` to put the probe before.
    #[error("the page has no </body>")]
    NoBody,
    /// The dumped DOM shows the probe never ran.
    #[error("the layout probe did not run in Chromium")]
    NotProbed,
    /// No element matches the figure selector.
    #[error("no figure matches {selector}")]
    NoFigures {
        /// The selector.
        selector: String,
    },
    /// A CSS selector does not parse.
    #[error("selector {selector}: {reason}")]
    Selector {
        /// The selector.
        selector: String,
        /// Why it does not parse.
        reason: String,
    },
    /// A chart figure is not as a reader should see it.
    #[error("figure {figure}: {problem}")]
    Figure {
        /// The figure's id or position.
        figure: String,
        /// What is wrong.
        problem: String,
    },
    /// The screenshot does not decode.
    #[error("decoding {path}")]
    Png {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: png::DecodingError,
    },
    /// A palette colour is not `#RRGGBB`.
    #[error("colour {colour}: expected #RRGGBB")]
    Colour {
        /// The colour as given.
        colour: String,
    },
    /// A DevTools command failed or Chromium could not be driven.
    #[error("DevTools, {what}: {message}")]
    DevTools {
        /// What was being done.
        what: &'static str,
        /// What went wrong.
        message: String,
    },
    /// JavaScript evaluated in a live page threw.
    #[error("`{expression}` threw: {message}")]
    Script {
        /// The expression.
        expression: String,
        /// The exception.
        message: String,
    },
    /// An expression did not hold within its time.
    #[error("`{expression}` did not hold within {waited:?} (last value: {last})")]
    Timeout {
        /// The expression.
        expression: String,
        /// How long it was tried.
        waited: std::time::Duration,
        /// Its last value, as JSON.
        last: String,
    },
    /// The screenshot, or a region of it, looks blank.
    #[error("{what} looks blank: {reason}")]
    Blank {
        /// The page or the figure.
        what: String,
        /// Which test failed.
        reason: String,
    },
}

/// Errors of this crate.
pub type Result<T, E = BrowserCheckError> = std::result::Result<T, E>;

/// Marks each chart mark the browser laid out with a non-empty box, each `figure` and `h2`
/// with its box in page pixels (`data-box="x y width height"`, see [`Region::parse`]), and
/// the body with the page height and
/// `data-probed` once done, so the dumped DOM says what was rendered rather than what was
/// written.
pub const PROBE: &str = r#"
for (const m of document.querySelectorAll('svg [data-series]')) {
  const b = m.getBBox();
  const shown = getComputedStyle(m).display !== 'none' && (b.width > 0 || b.height > 0);
  if (m instanceof SVGGraphicsElement && shown) m.setAttribute('data-laid-out', 'yes');
}
for (const f of document.querySelectorAll('figure, h2')) {
  const r = f.getBoundingClientRect();
  const box = [r.left + window.scrollX, r.top + window.scrollY, r.width, r.height];
  f.setAttribute('data-box', box.map(Math.round).join(' '));
}
document.body.setAttribute('data-page-height', String(document.documentElement.scrollHeight));
document.body.setAttribute('data-probed', 'yes');
"#;

/// Returns `html` with [`PROBE`] in a `<script>` just before `</body>`.
pub fn with_probe(html: &str) -> Result<String> {
    let at = html.rfind("</body>").ok_or(BrowserCheckError::NoBody)?;
    Ok(format!(
        "{}<script>{PROBE}</script>{}",
        &html[..at],
        &html[at..]
    ))
}

/// A page as headless Chromium rendered it.
#[derive(Clone, Debug)]
pub struct Rendered {
    /// The DOM after parsing and scripts (`OUT_DIR/dom.html`).
    pub dom: String,
    /// The screenshot (`OUT_DIR/shot.png`).
    pub screenshot: PathBuf,
}

/// What [`render`] did.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// Chromium rendered the page.
    Rendered(Rendered),
    /// Chromium is missing and `CI` is not set: the caller should say why and pass.
    Skipped(String),
}

/// Whether `CI` is set to something other than empty, `0` or `false`.
pub fn on_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.as_str(), "" | "0" | "false"))
}

/// The repository's `scripts/render-html`.
pub fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/render-html")
}

/// Renders the HTML file `page` with `scripts/render-html` into `out` (which gets
/// `dom.html` and `shot.png`), in a window of `size` (width, height) pixels or the script's
/// default 1280×4000. A missing Chromium gives [`Outcome::Skipped`], or an error when
/// [`on_ci`].
pub fn render(page: &Path, out: &Path, size: Option<(u32, u32)>) -> Result<Outcome> {
    let script = script();
    let mut command = Command::new(&script);
    command.arg(page).arg(out);
    if let Some((w, h)) = size {
        command.arg(format!("{w}x{h}"));
    }
    let run = command.output().map_err(|source| BrowserCheckError::Io {
        what: "running",
        path: script.clone(),
        source,
    })?;
    let stderr = String::from_utf8_lossy(&run.stderr).trim().to_owned();
    if run.status.code() == Some(127) && stderr.contains("chromium not found") {
        if on_ci() {
            return Err(BrowserCheckError::ChromiumMissing { stderr });
        }
        return Ok(Outcome::Skipped(stderr));
    }
    if !run.status.success() {
        return Err(BrowserCheckError::Render {
            status: run.status.to_string(),
            stderr,
        });
    }
    let dom_path = out.join("dom.html");
    let dom = std::fs::read_to_string(&dom_path).map_err(|source| BrowserCheckError::Io {
        what: "reading",
        path: dom_path,
        source,
    })?;
    Ok(Outcome::Rendered(Rendered {
        dom,
        screenshot: out.join("shot.png"),
    }))
}

/// A rectangle in page pixels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Region {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
}

/// One chart figure that passed [`check_charts`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Figure {
    /// Its `id`, or `#N` (1-based position) without one.
    pub name: String,
    /// The chart's `aria-label`.
    pub label: String,
    /// Where the probe found it on the page.
    pub region: Region,
}

fn selector(s: &str) -> Result<scraper::Selector> {
    scraper::Selector::parse(s).map_err(|e| BrowserCheckError::Selector {
        selector: s.to_owned(),
        reason: e.to_string(),
    })
}

/// The page height the probe measured, in pixels, if it ran.
pub fn page_height(dom: &str) -> Option<u32> {
    let doc = scraper::Html::parse_document(dom);
    let body = selector("body[data-page-height]").ok()?;
    doc.select(&body)
        .next()?
        .value()
        .attr("data-page-height")?
        .parse()
        .ok()
}

/// Checks, in a DOM dumped from a page with [`PROBE`], that at least one element matches
/// `figures` and each holds an `svg.plinth-chart` with an `aria-label`, a `<title>` and, for
/// each of `series` (in order), at least one mark of class `series-N` with that
/// `data-series` that Chromium laid out. Returns the figures in page order.
pub fn check_charts(dom: &str, figures: &str, series: &[&str]) -> Result<Vec<Figure>> {
    let doc = scraper::Html::parse_document(dom);
    if doc
        .select(&selector("body[data-probed=yes]")?)
        .next()
        .is_none()
    {
        return Err(BrowserCheckError::NotProbed);
    }
    let svg_sel = selector("svg.plinth-chart")?;
    let title_sel = selector("title")?;
    let mut out = Vec::new();
    for (n, figure) in doc.select(&selector(figures)?).enumerate() {
        let name = figure
            .value()
            .id()
            .map_or_else(|| format!("#{}", n + 1), str::to_owned);
        let fail = |problem: String| BrowserCheckError::Figure {
            figure: name.clone(),
            problem,
        };
        let svg = figure
            .select(&svg_sel)
            .next()
            .ok_or_else(|| fail("no svg.plinth-chart".into()))?;
        let label = svg
            .value()
            .attr("aria-label")
            .filter(|l| !l.is_empty())
            .ok_or_else(|| fail("the chart has no aria-label".into()))?
            .to_owned();
        if svg.select(&title_sel).next().is_none() {
            return Err(fail(format!("{label:?} has no <title>")));
        }
        for (i, s) in series.iter().enumerate() {
            let marks = selector(&format!(
                "rect.series-{i}[data-series=\"{s}\"][data-laid-out=yes], \
                 path.series-{i}[data-series=\"{s}\"][data-laid-out=yes], \
                 circle.series-{i}[data-series=\"{s}\"][data-laid-out=yes]"
            ))?;
            if svg.select(&marks).next().is_none() {
                return Err(fail(format!(
                    "{label:?}: Chromium laid out no marks for series {s}"
                )));
            }
        }
        let region = figure
            .value()
            .attr("data-box")
            .and_then(Region::parse)
            .ok_or_else(|| fail("the probe recorded no box".into()))?;
        out.push(Figure {
            name,
            label,
            region,
        });
    }
    if out.is_empty() {
        return Err(BrowserCheckError::NoFigures {
            selector: figures.to_owned(),
        });
    }
    Ok(out)
}

impl Region {
    /// Reads a `data-box` the [`PROBE`] wrote: `x y width height`.
    pub fn parse(s: &str) -> Option<Self> {
        let v: Vec<f64> = s
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()
            .ok()?;
        let px = |x: f64| x.max(0.0) as u32;
        match v[..] {
            [x, y, w, h] => Some(Self {
                x: px(x),
                y: px(y),
                width: px(w),
                height: px(h),
            }),
            _ => None,
        }
    }
}

/// Pixel counts of a screenshot or a region of it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Pixels looked at.
    pub pixels: usize,
    /// Distinct colours.
    pub colours: usize,
    /// Pixels that are not pure white.
    pub non_white: usize,
    /// For each palette colour asked about, the pixels within 12 of it on every channel.
    pub palette: Vec<usize>,
}

/// A decoded screenshot, 8-bit RGB.
#[derive(Clone, Debug)]
pub struct Screenshot {
    width: u32,
    height: u32,
    rgb: Vec<u8>,
}

fn hex(colour: &str) -> Result<[u8; 3]> {
    let bad = || BrowserCheckError::Colour {
        colour: colour.to_owned(),
    };
    let h = colour
        .strip_prefix('#')
        .filter(|h| h.len() == 6)
        .ok_or_else(bad)?;
    let byte = |i: usize| {
        h.get(i..i + 2)
            .and_then(|b| u8::from_str_radix(b, 16).ok())
            .ok_or_else(bad)
    };
    Ok([byte(0)?, byte(2)?, byte(4)?])
}

impl Screenshot {
    /// Reads a PNG.
    pub fn open(path: &Path) -> Result<Self> {
        let png_err = |source| BrowserCheckError::Png {
            path: path.to_owned(),
            source,
        };
        let file = std::fs::File::open(path).map_err(|source| BrowserCheckError::Io {
            what: "opening",
            path: path.to_owned(),
            source,
        })?;
        let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
        decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
        let mut reader = decoder.read_info().map_err(png_err)?;
        let size = reader
            .output_buffer_size()
            .ok_or_else(|| BrowserCheckError::Blank {
                what: path.display().to_string(),
                reason: "the PNG is too large to decode".into(),
            })?;
        let mut buf = vec![0; size];
        let info = reader.next_frame(&mut buf).map_err(png_err)?;
        let channels = info.color_type.samples();
        if channels < 3 {
            return Err(BrowserCheckError::Blank {
                what: path.display().to_string(),
                reason: format!("expected a colour screenshot, got {:?}", info.color_type),
            });
        }
        let rgb = buf[..info.buffer_size()]
            .chunks_exact(channels)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect();
        Ok(Self {
            width: info.width,
            height: info.height,
            rgb,
        })
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// The whole screenshot as a region.
    pub fn full(&self) -> Region {
        Region {
            x: 0,
            y: 0,
            width: self.width,
            height: self.height,
        }
    }

    /// Counts the pixels of `region` (clipped to the screenshot) against `palette`
    /// (`#RRGGBB` colours).
    pub fn stats(&self, region: Region, palette: &[&str]) -> Result<Stats> {
        let palette = palette.iter().map(|c| hex(c)).collect::<Result<Vec<_>>>()?;
        let near = |p: &[u8], q: &[u8; 3]| p.iter().zip(q).all(|(a, b)| a.abs_diff(*b) <= 12);
        let x_end = region.x.saturating_add(region.width).min(self.width);
        let y_end = region.y.saturating_add(region.height).min(self.height);
        let mut stats = Stats {
            palette: vec![0; palette.len()],
            ..Stats::default()
        };
        let mut colours = HashSet::new();
        for y in region.y..y_end {
            let row = y as usize * self.width as usize;
            for x in region.x..x_end {
                let at = (row + x as usize) * 3;
                let p = &self.rgb[at..at + 3];
                stats.pixels += 1;
                colours.insert([p[0], p[1], p[2]]);
                if p != [255, 255, 255] {
                    stats.non_white += 1;
                }
                for (count, q) in stats.palette.iter_mut().zip(&palette) {
                    *count += usize::from(near(p, q));
                }
            }
        }
        stats.colours = colours.len();
        Ok(stats)
    }

    /// Checks that `region`, called `what` in errors, lies inside the screenshot and is a
    /// real picture: more than 50 distinct colours, more than 2 % of pixels not white, and
    /// more than `min_each` pixels of each `palette` colour.
    pub fn check_not_blank(
        &self,
        what: &str,
        region: Region,
        palette: &[&str],
        min_each: usize,
    ) -> Result<Stats> {
        let blank = |reason: String| BrowserCheckError::Blank {
            what: what.to_owned(),
            reason,
        };
        if region.y.saturating_add(region.height) > self.height
            || region.x.saturating_add(region.width) > self.width
        {
            return Err(blank(format!(
                "{region:?} reaches outside the {}x{} screenshot; use a larger window",
                self.width, self.height
            )));
        }
        let stats = self.stats(region, palette)?;
        if stats.colours <= 50 {
            return Err(blank(format!("only {} distinct colours", stats.colours)));
        }
        if stats.non_white * 50 <= stats.pixels {
            return Err(blank(format!(
                "only {} of {} pixels are not white",
                stats.non_white, stats.pixels
            )));
        }
        for (colour, count) in palette.iter().zip(&stats.palette) {
            if *count <= min_each {
                return Err(blank(format!("{colour} covers only {count} pixels")));
            }
        }
        Ok(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_goes_before_the_last_body_end() {
        let page = with_probe("<html><body><p>x</p></body></html>").unwrap();
        assert!(page.contains("<p>x</p><script>"));
        assert!(page.ends_with("</script></body></html>"));
        assert!(matches!(with_probe("<p>"), Err(BrowserCheckError::NoBody)));
    }

    #[test]
    fn a_figure_without_laid_out_marks_of_a_series_fails() {
        let dom = |second: &str| {
            format!(
                "<html><body data-probed=yes><figure id=f data-box=\"0 10 100 50\">\
                 <svg class=plinth-chart aria-label=chart><title>t</title>\
                 <rect class=series-0 data-series=a data-laid-out=yes></rect>\
                 <rect class=series-1 data-series=b {second}></rect></svg></figure></body></html>"
            )
        };
        let ok = check_charts(&dom("data-laid-out=yes"), "figure", &["a", "b"]).unwrap();
        assert_eq!(
            ok[0].region,
            Region {
                x: 0,
                y: 10,
                width: 100,
                height: 50
            }
        );
        let err = check_charts(&dom(""), "figure", &["a", "b"]).unwrap_err();
        assert!(err.to_string().contains("no marks for series b"), "{err}");
        assert!(matches!(
            check_charts(&dom(""), "figure.none", &["a"]),
            Err(BrowserCheckError::NoFigures { .. })
        ));
    }

    #[test]
    fn a_white_screenshot_is_blank() {
        let white = Screenshot {
            width: 4,
            height: 3,
            rgb: vec![255; 36],
        };
        let err = white
            .check_not_blank("page", white.full(), &["#0072B2"], 0)
            .unwrap_err();
        assert!(err.to_string().contains("distinct colours"), "{err}");
        let outside = Region {
            height: 4,
            ..white.full()
        };
        let err = white.check_not_blank("page", outside, &[], 0).unwrap_err();
        assert!(err.to_string().contains("outside"), "{err}");
        assert!(matches!(
            white.stats(white.full(), &["0072B2"]),
            Err(BrowserCheckError::Colour { .. })
        ));
    }
}
