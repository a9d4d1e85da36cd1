//! `GET /apis/plinth.dev/v1alpha1/comparison`: the comparison of the applied estate,
//! virtualized against bare metal on the 13 dimensions — what `plinth compare --no-sweep`
//! makes of the same objects, with the Scenario's seeds, runs and duration. JSON (the
//! report `plinth compare -o json` prints) or, with `Accept: text/html`, the page `compare
//! --html` writes, from the one renderer. The console's Decide view shows the page.
//!
//! A comparison is simulated once per estate: it is kept, keyed by the digest of the
//! applied objects, until they change. Requests meanwhile wait for the one run. What would
//! change its answer (the break-even search and the per-cluster what-ifs,
//! [`crate::sweeps::add`]) takes many times longer: it is added to a copy of the kept
//! report only when the console's Decide view asks ([`swept`]), and kept the same way.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use plinth_compare::{CompareError, Options, Report};
use plinth_events::InputDigest;
use plinth_model::{Estate, load};
use tokio::sync::Mutex;

use crate::Shared;
use crate::api::{ApiError, ApiResult, blocking, store};
use crate::manifests::estate_input;

/// The newest comparison and the estate it is of. One per process: a service serves one
/// estate, and the key keeps another store's estate from ever reading it.
static NEWEST: Mutex<Option<Compared>> = Mutex::const_new(None);

/// The newest comparison with what would change its answer, and the estate it is of.
static SWEPT: Mutex<Option<(InputDigest, Arc<Report>)>> = Mutex::const_new(None);

/// A comparison of one estate.
#[derive(Clone)]
struct Compared {
    input: InputDigest,
    estate: Arc<Estate>,
    options: Options,
    report: Arc<Report>,
    html: Arc<str>,
}

/// The title `plinth compare --html` gives the same estate's page.
fn title(estate: &Estate) -> String {
    format!(
        "Plinth: virtualized vs bare-metal Kubernetes nodes for {}",
        estate.inventory.name
    )
}

/// The runs of a comparison of `estate`: the Scenario's.
fn options(estate: &Estate, input: InputDigest) -> Result<Options, ApiError> {
    let scenario = &estate.scenario.spec;
    if scenario.runs < 2 {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "Conflict",
            format!(
                "the Scenario sets runs: {}: a comparison needs at least 2 paired runs; raise Scenario.spec.runs",
                scenario.runs
            ),
        ));
    }
    Ok(Options {
        seed: scenario.seed,
        runs: scenario.runs,
        duration_ms: scenario.duration.millis(),
        input,
    })
}

fn refused(e: CompareError) -> ApiError {
    let status = match e {
        CompareError::Design { .. } | CompareError::Run { .. } => StatusCode::CONFLICT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let mut message = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    ApiError::new(status, "Conflict", message)
}

/// Simulates and renders the comparison of the estate `input` forms.
fn compare(input: &plinth_model::Input, digest: InputDigest) -> Result<Compared, ApiError> {
    let estate = load(input).estate.ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "Conflict",
            "the applied estate is not valid yet, so there is nothing to compare: see the objects' Accepted conditions",
        )
    })?;
    let options = options(&estate, digest)?;
    let report = plinth_compare::compare(&estate, &options, &|| {}).map_err(refused)?;
    let html = plinth_compare::html::render(&report, &title(&estate));
    Ok(Compared {
        input: digest,
        estate: Arc::new(estate),
        options,
        report: Arc::new(report),
        html: Arc::from(html),
    })
}

/// The comparison of the applied estate: the kept one while the objects are unchanged.
async fn newest(shared: &Arc<Shared>) -> Result<Compared, ApiError> {
    let (desired, _) = store(shared, |o| o.desired_objects()).await?;
    let input = estate_input(&desired);
    let digest = InputDigest::of(&input);
    let mut newest = NEWEST.lock().await;
    if let Some(kept) = newest.as_ref().filter(|c| c.input == digest) {
        return Ok(kept.clone());
    }
    let compared = blocking(move || compare(&input, digest)).await?;
    *newest = Some(compared.clone());
    Ok(compared)
}

/// The kept comparison of the applied estate with its break-even search and per-cluster
/// what-ifs, as `plinth compare` adds them (each point over
/// [`crate::sweeps::DEFAULT_RUNS`] runs): the one kept while the objects are unchanged.
pub(crate) async fn swept(shared: &Arc<Shared>) -> Result<Arc<Report>, ApiError> {
    let compared = newest(shared).await?;
    let mut swept = SWEPT.lock().await;
    if let Some((_, kept)) = swept.as_ref().filter(|(input, _)| *input == compared.input) {
        return Ok(kept.clone());
    }
    let report = blocking(move || {
        let mut report = Report::clone(&compared.report);
        crate::sweeps::add(
            &compared.estate,
            &compared.options,
            crate::sweeps::DEFAULT_RUNS,
            &mut report,
            &|| {},
        )
        .map_err(refused)?;
        Ok((compared.input, Arc::new(report)))
    })
    .await?;
    let kept = report.1.clone();
    *swept = Some(report);
    Ok(kept)
}

/// Whether the client asked for the HTML page.
fn wants_html(request: &Request) -> bool {
    request
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

/// `GET` [`crate::wire::COMPARISON_PATH`].
pub(crate) async fn get(State(shared): State<Arc<Shared>>, request: Request) -> ApiResult {
    let compared = newest(&shared).await?;
    if wants_html(&request) {
        let mut response = compared.html.to_string().into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        return Ok(response);
    }
    Ok(axum::Json(&*compared.report).into_response())
}
