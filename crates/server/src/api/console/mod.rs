//! The web console at `/`: a page and a small script embedded in the binary (no CDN, no
//! external request), and the views it shows, rendered here as HTML fragments from the
//! same objects the API serves.
//!
//! - `GET /`, `/console/app.js`, `/console/style.css`: the page and its assets. They hold
//!   no data and need no token.
//! - `GET /console/views/{pool,clusters,timeline}` (bearer token): one view's fragment.
//!   Action forms are drawn only for a token whose role may write Clusters; the API
//!   checks every write anyway.
//! - `GET /console/views/decide` (bearer token): what would change the comparison's
//!   answer — break-even and per-cluster what-ifs — from the kept comparison's report
//!   ([`crate::api::comparison`]); it waits for that comparison and its sweeps.
//! - `GET /console/watch` (bearer token): every change from now on, as the watch API's
//!   JSON lines, so the page redraws a view when an object it shows changes, never by
//!   polling.
//!
//! The views hold no decisions: placement-group violations are the pools' own policies
//! ([`plinth_model::policy::PlacementPolicy::hard_limit`]) checked against where the
//! control plane reports the VMs.

mod clusters;
mod decide;
mod objects;
mod pool;
mod timeline;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use maud::Markup;

use crate::Shared;
use crate::api::{ApiError, ApiResult, blocking, principal, store, watch};
use crate::auth::Role;
use crate::kinds::Resource;
use crate::objects::Filter;

use objects::Snapshot;

const INDEX: &str = include_str!("../../../console/index.html");
const SCRIPT: &str = include_str!("../../../console/app.js");
const STYLE: &str = include_str!("../../../console/style.css");

/// One of the console's views drawn on the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum View {
    /// Hosts by rack with their VMs.
    Pool,
    /// Clusters, their pools, conditions and rollouts.
    Clusters,
    /// Events, newest first, and host failures in phases.
    Timeline,
}

impl View {
    /// The view a path segment names.
    pub(crate) fn named(name: &str) -> Option<Self> {
        match name {
            "pool" => Some(Self::Pool),
            "clusters" => Some(Self::Clusters),
            "timeline" => Some(Self::Timeline),
            _ => None,
        }
    }

    /// Draws the view of `snapshot`; `can_write` draws the action forms.
    pub(crate) fn render(self, snapshot: &Snapshot, can_write: bool) -> Markup {
        match self {
            Self::Pool => pool::render(snapshot, can_write),
            Self::Clusters => clusters::render(snapshot, can_write),
            Self::Timeline => timeline::render(snapshot),
        }
    }
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; frame-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:",
        ),
    );
    response
}

/// The page and its assets: no token, no data.
pub(crate) fn assets() -> Router<Arc<Shared>> {
    Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", INDEX) }),
        )
        .route(
            "/console/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }),
        )
        .route(
            "/console/style.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE) }),
        )
}

/// The views and the change stream: behind the API's bearer tokens.
pub(crate) fn views() -> Router<Arc<Shared>> {
    Router::new()
        .route("/console/views/decide", get(decide_view))
        .route("/console/views/{view}", get(view))
        .route("/console/watch", get(changes))
}

fn html_response(html: String) -> Response {
    let mut response = html.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

/// The Decide view's break-even and what-ifs, from the kept comparison.
async fn decide_view(State(shared): State<Arc<Shared>>) -> ApiResult {
    let report = crate::api::comparison::swept(&shared).await?;
    Ok(html_response(decide::render(&report).into_string()))
}

async fn view(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    request: Request,
) -> ApiResult {
    let who = principal(request.extensions())?;
    let view = View::named(&name).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("no console view `{name}`: pool, clusters, timeline or decide"),
        )
    })?;
    let can_write = who.role >= Role::to_write(Resource::Cluster);
    let html = blocking(move || {
        let snapshot = shared.with_objects(Snapshot::read)?;
        Ok(view.render(&snapshot, can_write).into_string())
    })
    .await?;
    Ok(html_response(html))
}

/// Every change after the current revision.
async fn changes(State(shared): State<Arc<Shared>>) -> ApiResult {
    let now = store(&shared, |o| o.revision()).await?;
    watch(shared, Filter::default(), Some(now)).await
}
