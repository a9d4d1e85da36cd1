//! The HTML report of `examples/enterprise` as a reader's browser shows it: headless Chromium
//! (through `scripts/render-html`) lays out marks for both environments in every chart, each
//! chart and the page are real pictures, and the page holds the 13-dimension table, the
//! recommendation, the break-even, what-if and provenance tables.
//!
//! Without Chromium the test prints why and passes, unless `CI` is set: then it fails. The
//! page and screenshot (1280 pixels wide, down to a few rows of the provenance table) stay in
//! `$CARGO_TARGET_TMPDIR/chromium-compare/`; with `PLINTH_WRITE_DOCS=1` the screenshot also
//! replaces `docs/compare-report.png`.

mod common;

use std::path::Path;

use anyhow::{Context, Result, ensure};
use common::{estate, options, report, root};
use plinth_browser_check::{
    Outcome, Region, Rendered, Screenshot, check_charts, page_height, render, with_probe,
};
use plinth_charts::PALETTE;
use plinth_compare::{Options, html, sensitivity};
use plinth_model::kinds::environment::EnvironmentType;
use scraper::{ElementRef, Html, Selector};

const SERIES: [&str; 2] = ["virtualized", "bare metal"];

/// Window width of the screenshot.
const WIDTH: u32 = 1280;
/// Pixels of the provenance section the screenshot shows: its heading and a few rows.
const PROVENANCE_SHOWN: u32 = 320;

fn sel(s: &str) -> Result<Selector> {
    Selector::parse(s).map_err(|e| anyhow::anyhow!("selector {s}: {e}"))
}

/// The first `<table>` after the `<h2>` whose text starts with `heading`.
fn table_after<'a>(doc: &'a Html, heading: &str) -> Result<ElementRef<'a>> {
    let h2 = doc
        .select(&sel("h2")?)
        .find(|h| h.text().collect::<String>().starts_with(heading))
        .with_context(|| format!("no heading {heading:?}"))?;
    // The next table among the heading's siblings, or inside one (a folded `<details>`).
    let table = sel("table")?;
    h2.next_siblings()
        .filter_map(ElementRef::wrap)
        .find_map(|e| {
            if e.value().name() == "table" {
                Some(e)
            } else {
                e.select(&table).next()
            }
        })
        .with_context(|| format!("no table after {heading:?}"))
}

/// Body rows (rows without `<th>`) of `table` matching `row`.
fn rows<'a>(table: ElementRef<'a>, row: &str) -> Result<Vec<ElementRef<'a>>> {
    let th = sel("th")?;
    Ok(table
        .select(&sel(row)?)
        .filter(|r| r.select(&th).next().is_none())
        .collect())
}

fn cells(row: ElementRef<'_>) -> Result<Vec<String>> {
    Ok(row
        .select(&sel("td")?)
        .map(|c| c.text().collect::<String>().trim().to_owned())
        .collect())
}

fn render_at(page: &Path, out: &Path, height: u32) -> Result<Option<Rendered>> {
    Ok(match render(page, out, Some((WIDTH, height)))? {
        Outcome::Rendered(r) => Some(r),
        Outcome::Skipped(why) => {
            println!("skipping the Chromium report test: {why}");
            None
        }
    })
}

#[test]
fn the_enterprise_report_shows_every_chart_and_table_in_chromium() -> Result<()> {
    let estate = estate(&["examples/enterprise"]);
    let mut r = report(&estate, &options(3, 120));
    let sweep = Options {
        runs: 2,
        ..r.options
    };
    let sweeps = sensitivity::Sweeps::new(&estate, &sweep)?;
    r.sensitivity = sweeps.break_even(&|| {})?;
    // As `plinth compare` does: the rest stays where the recommendation puts it.
    let rest_on = match r.recommendation.as_ref().map(|x| x.environment) {
        Some("bare-metal") => EnvironmentType::BareMetal,
        _ => EnvironmentType::Virtualized,
    };
    r.what_if = sweeps.what_if(rest_on, &|| {})?.moved;
    r.merge_what_if = sweeps.merge_what_if()?;
    ensure!(
        r.dimensions.len() == 13,
        "{} dimensions",
        r.dimensions.len()
    );
    ensure!(!r.provenance.is_empty(), "the report has no provenance");
    let title = format!(
        "Plinth: virtualized vs bare-metal Kubernetes nodes for {}",
        estate.inventory.name
    );

    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("chromium-compare");
    let out = dir.join("out");
    std::fs::create_dir_all(&out).context("creating the output directory")?;
    let page = dir.join("report.html");
    std::fs::write(&page, with_probe(&html::render(&r, &title))?).context("writing the page")?;

    // Render once to measure the page, then in a window that ends a few rows into the
    // provenance table (a long list), which keeps the screenshot small.
    let Some(first) = render_at(&page, &out, 4000)? else {
        return Ok(());
    };
    let provenance_top = Html::parse_document(&first.dom)
        .select(&sel("h2[data-box]")?)
        .find(|h| h.text().collect::<String>().starts_with("Provenance"))
        .and_then(|h| h.value().attr("data-box").and_then(Region::parse))
        .context("the probe measured no provenance heading")?
        .y;
    let page_height = page_height(&first.dom).context("the probe measured no page height")?;
    let height = (provenance_top + PROVENANCE_SHOWN).min(page_height);
    let Some(rendered) = render_at(&page, &out, height)? else {
        return Ok(());
    };

    let figures = check_charts(&rendered.dom, "figure.plinth-figure", &SERIES)?;
    ensure!(
        figures.len() == 6,
        "{} chart figures, expected 6",
        figures.len()
    );
    let shot = Screenshot::open(&rendered.screenshot)?;
    shot.check_not_blank("the report", shot.full(), &PALETTE[..2], 2_000)?;
    for f in &figures {
        shot.check_not_blank(&f.label, f.region, &PALETTE[..2], 100)?;
    }

    let doc = Html::parse_document(&rendered.dom);
    let heading = doc
        .select(&sel("h1")?)
        .next()
        .context("no title")?
        .text()
        .collect::<String>();
    ensure!(heading == title, "title {heading:?}");

    let verdict = doc
        .select(&sel("p.verdict")?)
        .next()
        .context("no recommendation")?
        .text()
        .collect::<String>();
    ensure!(
        verdict.starts_with("Run these clusters"),
        "recommendation {verdict:?}"
    );
    let reasons = doc.select(&sel("p.verdict ~ ol > li")?).count();
    ensure!(reasons > 0, "the recommendation gives no reasons");

    let dims = rows(table_after(&doc, "The 13 dimensions")?, "tr")?;
    let winners: Vec<Vec<String>> = dims
        .into_iter()
        .filter(|row| sel("td[class^=win-]").is_ok_and(|w| row.select(&w).next().is_some()))
        .map(cells)
        .collect::<Result<_>>()?;
    ensure!(winners.len() == 13, "{} dimension rows", winners.len());
    for (i, row) in winners.iter().enumerate() {
        ensure!(row.len() == 7, "dimension row {row:?}");
        ensure!(row[0] == (i + 1).to_string(), "dimension row {row:?}");
        ensure!(
            matches!(
                row[6].as_str(),
                "virtualized" | "bare metal" | "tie" | "no material difference"
            ),
            "winner cell {:?}",
            row[6]
        );
    }

    let roles = rows(table_after(&doc, "Why these servers")?, "tr")?;
    let declared: usize = r.designs.iter().map(|d| d.roles.len()).sum();
    ensure!(
        roles.len() == declared && declared > 1,
        "{} role rows, the designs have {declared}",
        roles.len()
    );

    let break_even = rows(table_after(&doc, "What would change the answer")?, "tr")?;
    ensure!(
        break_even.len() == sensitivity::PARAMETERS.len(),
        "{} break-even rows",
        break_even.len()
    );
    for row in break_even {
        let c = cells(row)?;
        ensure!(
            c.len() == 3 && c.iter().all(|x| !x.is_empty()),
            "break-even row {c:?}"
        );
    }
    let moves = rows(table_after(&doc, "Moving one cluster")?, "tr")?;
    ensure!(
        moves.len() == estate.clusters.len(),
        "{} what-if rows for {} clusters",
        moves.len(),
        estate.clusters.len()
    );
    // The report's design and the merged one, four totals each.
    let merge = rows(table_after(&doc, "Merging every cluster")?, "tr")?;
    ensure!(merge.len() == 2, "{} merge rows", merge.len());
    for row in merge {
        let c = cells(row)?;
        ensure!(
            c.len() == 5 && c.iter().all(|x| !x.is_empty()),
            "merge row {c:?}"
        );
    }
    let provenance = rows(table_after(&doc, "Provenance")?, "tr")?;
    ensure!(
        provenance.len() == r.provenance.len(),
        "{} provenance rows, the report has {}",
        provenance.len(),
        r.provenance.len()
    );

    if std::env::var_os("PLINTH_WRITE_DOCS").is_some_and(|v| v == "1") {
        let docs = root().join("docs/compare-report.png");
        std::fs::copy(&rendered.screenshot, &docs)
            .with_context(|| format!("copying the screenshot to {}", docs.display()))?;
    }
    println!(
        "rendered the report ({} figures, {}x{height}): {}",
        figures.len(),
        WIDTH,
        rendered.screenshot.display()
    );
    Ok(())
}
