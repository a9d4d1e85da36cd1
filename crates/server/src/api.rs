//! The HTTP API: Kubernetes-style resource paths over the object store, the apply
//! endpoint, watch as JSON lines, bearer tokens with roles, and the audit trail.
//!
//! Paths: `/apis/GROUP/VERSION/[namespaces/NS/]PLURAL[/NAME]` (and `/api/v1/…` for
//! Pods). `GET` lists or reads (`?watch=true[&resourceVersion=R]` streams changes as one
//! JSON object per line), `PUT` creates or replaces one object (its
//! `metadata.resourceVersion`, when given, must be the stored one: else 409), `DELETE`
//! deletes (`?resourceVersion=R` as a precondition). `POST /apis/plinth.dev/v1alpha1/apply`
//! takes manifest files and stores all their objects or none. `GET
//! /apis/plinth.dev/v1alpha1/comparison` answers the comparison of the applied estate
//! (`api/comparison.rs`). The web console is served at `/` (`api/console/`). `/healthz`, `/readyz`
//! and the console's page and assets need no token; everything else does.

mod comparison;
mod console;
mod operations;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::stream;
use serde_json::{Value, json};

use crate::Shared;
use crate::auth::{Principal, Role};
use crate::error::ObjectsError;
use crate::events::{Reporter, Severity, event};
use crate::kinds::{ObjectKey, Resource, Writer};
use crate::manifests;
use crate::objects::{Filter, Outcome, Txn, named_version};
use crate::watch_cache::{Read, WatchCache};
use crate::wire::{
    APPLY_PATH, AppliedObject, ApplyRequest, ApplyResponse, COMPARISON_PATH, DRS_PATH,
    MAINTENANCE_PATH, Source, Status, UPGRADE_PATH,
};

/// The largest request body accepted, bytes.
pub const MAX_BODY: usize = 8 << 20;
/// Changes read from the store per round of a watch.
const WATCH_BATCH: usize = 500;

/// A failed request.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    reason: &'static str,
    message: String,
    diagnostics: Vec<crate::wire::WireDiagnostic>,
}

impl ApiError {
    /// An error answered with `status`, a Kubernetes `reason` and a message with the fix.
    pub(crate) fn new(
        status: StatusCode,
        reason: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            reason,
            message: message.into(),
            diagnostics: Vec::new(),
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }

    fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NotFound", message)
    }

    fn status(&self) -> Status {
        Status {
            kind: "Status".into(),
            api_version: "v1".into(),
            status: "Failure".into(),
            code: self.status.as_u16(),
            reason: self.reason.into(),
            message: self.message.clone(),
            diagnostics: self.diagnostics.clone(),
        }
    }
}

impl From<ObjectsError> for ApiError {
    fn from(e: ObjectsError) -> Self {
        let (status, reason) = match &e {
            ObjectsError::Conflict { .. } | ObjectsError::Refused(_) => {
                (StatusCode::CONFLICT, "Conflict")
            }
            ObjectsError::Expired { .. } => (StatusCode::GONE, "Expired"),
            ObjectsError::Invalid(_) => (StatusCode::BAD_REQUEST, "BadRequest"),
            ObjectsError::Backend(_) | ObjectsError::Commit(_) => {
                tracing::error!(error = %e, "object store");
                (StatusCode::SERVICE_UNAVAILABLE, "StoreUnavailable")
            }
            ObjectsError::Corrupt(_) => {
                tracing::error!(error = %e, "object store");
                (StatusCode::INTERNAL_SERVER_ERROR, "InternalError")
            }
        };
        Self::new(status, reason, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.status())).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// A handler's answer.
pub(crate) type ApiResult = Result<Response, ApiError>;

/// The router of the whole API.
pub fn router(shared: Arc<Shared>) -> Router {
    let authed = Router::new()
        .route(APPLY_PATH, post(apply))
        .route("/metrics", get(metrics))
        .route(
            "/openapi/v3",
            get(|| async { axum::Json(crate::openapi::document()) }),
        )
        .route(crate::serial::LOG_PATH, get(vm_log))
        .route(COMPARISON_PATH, get(comparison::get))
        .route(MAINTENANCE_PATH, post(operations::maintenance))
        .route(UPGRADE_PATH, post(operations::upgrade))
        .route(DRS_PATH, post(operations::drs))
        .merge(console::views())
        .route("/apis/{*rest}", get(read).put(put).delete(delete))
        .route("/api/{*rest}", get(read).put(put).delete(delete))
        .route_layer(middleware::from_fn_with_state(shared.clone(), authenticate));
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .merge(console::assets())
        .merge(authed)
        .fallback(|| async {
            ApiError::not_found(
                "no such path: resources are under /apis/GROUP/VERSION/… and /api/v1/…",
            )
        })
        .layer(middleware::from_fn_with_state(shared.clone(), count))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(MAX_BODY))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(shared)
}

async fn count(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    shared
        .metrics
        .request(&method, response.status(), started.elapsed());
    response
}

/// Runs the write `f` in the next group commit; answered once it is durable.
pub(crate) async fn write<T: Send + 'static>(
    shared: &Arc<Shared>,
    f: impl FnMut(&mut Txn<'_>) -> Result<T, ObjectsError> + Send + 'static,
) -> Result<T, ApiError> {
    shared.write(f).await.map_err(ApiError::from)
}

/// Runs `f` on the object store off the async workers (SQLite writes wait for fsync).
pub(crate) async fn store<T: Send + 'static>(
    shared: &Arc<Shared>,
    f: impl FnMut(&mut Txn<'_>) -> Result<T, ObjectsError> + Send + 'static,
) -> Result<T, ApiError> {
    let shared = shared.clone();
    blocking(move || shared.with_objects(f).map_err(ApiError::from)).await
}

/// Runs `f` off the async workers (blocking I/O, CPU work); a panic in it is a 500.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            e.to_string(),
        )
    })?
}

async fn authenticate(
    State(shared): State<Arc<Shared>>,
    mut request: Request,
    next: Next,
) -> Response {
    let bearer = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let Some(secret) = bearer else {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "no bearer token: send `Authorization: Bearer TOKEN` (plinth serve printed where the admin token is)",
        )
        .into_response();
    };
    let Some(principal) = shared.tokens.authenticate(secret).cloned() else {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "the bearer token is not in the server's tokens file",
        )
        .into_response();
    };
    request.extensions_mut().insert(principal);
    next.run(request).await
}

pub(crate) fn principal(headers: &axum::http::Extensions) -> Result<Principal, ApiError> {
    headers.get::<Principal>().cloned().ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "not authenticated",
        )
    })
}

fn allow(who: &Principal, resource: Resource) -> Result<(), ApiError> {
    if resource.info().writer == Writer::ControlPlane {
        return Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            format!(
                "{resource} are reported by the control plane and cannot be written; change the Cluster or Inventory instead"
            ),
        ));
    }
    let needs = Role::to_write(resource);
    if who.role < needs {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "Forbidden",
            format!(
                "token `{}` has role {}; writing {resource} needs role {needs}",
                who.name, who.role
            ),
        ));
    }
    Ok(())
}

/// A node VM's serial console, from its host's agent; `?follow=true` keeps reading.
async fn vm_log(
    State(shared): State<Arc<Shared>>,
    axum::extract::Path(name): axum::extract::Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult {
    let follow = matches!(query.get("follow").map(String::as_str), Some("true" | "1"));
    let vm_key = ObjectKey::global(Resource::VirtualMachine, &name);
    let (vm, host) = store(&shared, move |t| {
        let vm = t.get(&vm_key)?;
        let on = vm
            .as_ref()
            .and_then(|v| v.pointer("/status/host"))
            .and_then(Value::as_str)
            .map(|h| ObjectKey::global(Resource::Host, h));
        let host = match on {
            Some(key) => t.get(&key)?,
            None => None,
        };
        Ok((vm, host))
    })
    .await?;
    crate::serial::stream(shared, name, vm, host, follow)
        .await
        .map_err(|(status, reason, message)| ApiError::new(status, reason, message))
}

async fn readyz(State(shared): State<Arc<Shared>>) -> ApiResult {
    store(&shared, |o| o.revision()).await?;
    Ok("ok".into_response())
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        shared.metrics.render(),
    )
        .into_response()
}

/// A resource path, parsed, with the guest cluster `?cluster=` names.
#[derive(Debug, PartialEq, Eq)]
struct Target {
    resource: Resource,
    cluster: Option<String>,
    namespace: Option<String>,
    name: Option<String>,
}

impl Target {
    /// `path`, and `query`'s `cluster`: the guest cluster of a workload (two clusters may
    /// each have `shop/storefront`).
    fn of(path: &str, query: &HashMap<String, String>) -> Result<Self, ApiError> {
        let mut target = Self::parse(path)?;
        if let Some(cluster) = query.get("cluster") {
            if !target.resource.info().namespaced {
                return Err(ApiError::bad_request(format!(
                    "?cluster= picks a guest cluster's workloads; {} are Plinth's own objects: leave it out",
                    target.resource
                )));
            }
            target.cluster = Some(cluster.clone());
        }
        Ok(target)
    }

    fn parse(path: &str) -> Result<Self, ApiError> {
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let (group, version, rest) = match segments.as_slice() {
            ["apis", group, version, rest @ ..] => (*group, *version, rest),
            ["api", version, rest @ ..] => ("", *version, rest),
            _ => return Err(ApiError::not_found(format!("no such path `{path}`"))),
        };
        let (namespace, plural, name) = match rest {
            [plural] => (None, *plural, None),
            [plural, name] => (None, *plural, Some(*name)),
            ["namespaces", ns, plural] => (Some(*ns), *plural, None),
            ["namespaces", ns, plural, name] => (Some(*ns), *plural, Some(*name)),
            _ => return Err(ApiError::not_found(format!("no such path `{path}`"))),
        };
        let resource = Resource::at(group, version, plural).ok_or_else(|| {
            ApiError::not_found(format!(
                "no resource `{plural}` in {}: `plinth get --help` lists them",
                if group.is_empty() {
                    version.to_owned()
                } else {
                    format!("{group}/{version}")
                }
            ))
        })?;
        if namespace.is_some() && !resource.info().namespaced {
            return Err(ApiError::not_found(format!(
                "{resource} are not namespaced: {}",
                resource.info().path(None, name)
            )));
        }
        Ok(Self {
            resource,
            cluster: None,
            namespace: namespace.map(str::to_owned),
            name: name.map(str::to_owned),
        })
    }

    fn key(&self) -> Result<ObjectKey, ApiError> {
        let name = self.name.clone().ok_or_else(|| {
            ApiError::bad_request("this request needs an object's path, with its name")
        })?;
        let namespace = if self.resource.info().namespaced {
            self.namespace
                .clone()
                .unwrap_or_else(|| manifests::DEFAULT_NAMESPACE.to_owned())
        } else {
            String::new()
        };
        Ok(ObjectKey {
            resource: self.resource,
            cluster: self.cluster.clone().unwrap_or_default(),
            namespace,
            name,
        })
    }

    fn filter(&self) -> Filter {
        Filter {
            resource: Some(self.resource),
            cluster: self.cluster.clone(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
        }
    }
}

/// The one object `target` names. A workload path without `?cluster=` names the object of
/// whichever guest cluster has it; when several have one of that name, the request must
/// say which.
async fn resolve(shared: &Arc<Shared>, target: &Target) -> Result<ObjectKey, ApiError> {
    let key = target.key()?;
    if target.cluster.is_some() || !target.resource.info().namespaced {
        return Ok(key);
    }
    let filter = Filter {
        namespace: Some(key.namespace.clone()),
        ..target.filter()
    };
    let (found, _) = store(shared, move |o| o.list(&filter)).await?;
    match found.as_slice() {
        [] => Ok(key),
        [(only, _)] => Ok(only.clone()),
        several => Err(ApiError::bad_request(format!(
            "{} {}/{} is in more than one guest cluster ({}): add ?cluster=NAME (`--cluster NAME` in the CLI)",
            target.resource,
            key.namespace,
            key.name,
            several
                .iter()
                .map(|(k, _)| k.cluster.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

fn query_version(query: &HashMap<String, String>) -> Result<Option<u64>, ApiError> {
    match query.get("resourceVersion").map(String::as_str) {
        None | Some("" | "0") => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| {
            ApiError::bad_request(format!(
                "resourceVersion `{v}` is not a number this server gave"
            ))
        }),
    }
}

async fn read(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
    request: Request,
) -> ApiResult {
    let target = Target::of(request.uri().path(), &query)?;
    let watching = matches!(query.get("watch").map(String::as_str), Some("true" | "1"));
    if watching {
        return watch(shared, target.filter(), query_version(&query)?).await;
    }
    if target.name.is_some() {
        let key = resolve(&shared, &target).await?;
        let object = store(&shared, {
            let key = key.clone();
            move |o| o.get(&key)
        })
        .await?;
        return object
            .map(|o| axum::Json(o).into_response())
            .ok_or_else(|| ApiError::not_found(format!("{key} not found")));
    }
    let filter = target.filter();
    let (items, revision) = store(&shared, move |o| o.list(&filter)).await?;
    let info = target.resource.info();
    let list = json!({
        "apiVersion": info.api_version(),
        "kind": format!("{}List", info.kind),
        "metadata": {"resourceVersion": revision.to_string()},
        "items": items.into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
    });
    Ok(axum::Json(list).into_response())
}

/// One line of a watch.
pub(crate) fn line(kind: &str, object: &Value) -> Bytes {
    let mut text = json!({"type": kind, "object": object}).to_string();
    text.push('\n');
    Bytes::from(text)
}

/// Streams the changes `filter` covers after `from` (or, without it, the current objects
/// as `ADDED`, then the changes after the list) as JSON lines, until the client goes away.
pub(crate) async fn watch(shared: Arc<Shared>, filter: Filter, from: Option<u64>) -> ApiResult {
    let mut pending: VecDeque<Bytes> = VecDeque::new();
    let after = match from {
        Some(r) => {
            // Refuse a compacted start at once, with 410, rather than mid-stream.
            let f = filter.clone();
            store(&shared, move |o| o.changes_since(r, &f, 1)).await?;
            r
        }
        None => {
            let f = filter.clone();
            let (items, revision) = store(&shared, move |o| o.list(&f)).await?;
            pending.extend(items.iter().map(|(_, v)| line("ADDED", v)));
            revision
        }
    };
    shared.metrics.watchers.fetch_add(1, Ordering::Relaxed);
    WatchCache::follow(&shared);
    let state = Watching {
        notified: shared.watch_cache.subscribe(),
        guard: WatchGuard(shared),
        filter,
        after,
        pending,
        ended: false,
    };
    let body = stream::unfold(state, |mut w| async move {
        let next = w.next().await?;
        Some((Ok::<_, std::io::Error>(next), w))
    });
    let mut response = Response::new(Body::from_stream(body));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; stream=watch"),
    );
    Ok(response)
}

/// A watch's state between lines.
struct Watching {
    notified: tokio::sync::watch::Receiver<u64>,
    guard: WatchGuard,
    filter: Filter,
    /// The revision read up to.
    after: u64,
    pending: VecDeque<Bytes>,
    /// An error line was sent: nothing follows it.
    ended: bool,
}

impl Watching {
    /// The next line: queued ones first, then changes read from the store, waiting for a
    /// newer revision when there are none. `None` ends the stream (after an error line, or
    /// when the server shuts down).
    async fn next(&mut self) -> Option<Bytes> {
        loop {
            if self.guard.0.closing.load(Ordering::SeqCst) {
                return None;
            }
            if let Some(next) = self.pending.pop_front() {
                return Some(next);
            }
            if self.ended {
                return None;
            }
            // Mark the cache's revision seen before reading, so a change cached after
            // the read wakes the wait below at once.
            self.notified.borrow_and_update();
            match self.read().await {
                Ok(Read { lines, read_to }) => {
                    let idle = lines.is_empty() && read_to >= *self.notified.borrow();
                    self.pending.extend(lines);
                    self.after = read_to;
                    // Nothing new and nothing left to scan: wait for a newer revision.
                    if idle && self.notified.changed().await.is_err() {
                        return None;
                    }
                }
                Err(e) => {
                    self.ended = true;
                    let status = serde_json::to_value(e.status()).unwrap_or_default();
                    self.pending.push_back(line("ERROR", &status));
                }
            }
        }
    }

    /// The changes after the watch's position: from the cache when it reaches back that
    /// far, else from the store.
    async fn read(&self) -> Result<Read, ApiError> {
        let shared = &self.guard.0;
        if let Some(read) = shared
            .watch_cache
            .read(self.after, &self.filter, WATCH_BATCH)
        {
            return Ok(read);
        }
        let (after, filter) = (self.after, self.filter.clone());
        let (changes, read_to) = store(shared, move |o| {
            o.changes_since(after, &filter, WATCH_BATCH)
        })
        .await?;
        Ok(Read {
            lines: changes
                .iter()
                .map(|c| line(c.kind.as_str(), &c.object))
                .collect(),
            read_to,
        })
    }
}

/// Counts a watch while its stream lives.
struct WatchGuard(Arc<Shared>);

impl Drop for WatchGuard {
    fn drop(&mut self) {
        self.0.metrics.watchers.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Checks the files of `request` object by object, off the async workers (parsing and
/// validation are CPU work).
async fn check(request: ApplyRequest) -> Result<manifests::Split, ApiError> {
    blocking(move || Ok(manifests::split(&request))).await
}

/// Checks `request` object by object, stores all or none, records the audit event.
async fn store_manifests(
    shared: &Arc<Shared>,
    who: &Principal,
    request: ApplyRequest,
) -> Result<ApplyResponse, ApiError> {
    let split = check(request).await?;
    if split.has_errors() {
        let count = split.diagnostics.iter().filter(|d| d.is_error()).count();
        let mut e = ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
            format!("{count} error(s) in the manifests: nothing was stored"),
        );
        e.diagnostics = split.diagnostics;
        return Err(e);
    }
    for (key, _) in &split.objects {
        allow(who, key.resource)?;
    }
    let objects = split.objects;
    let user = who.name.clone();
    let applied = write(shared, move |o| {
        check_upgrades(o, &objects)?;
        let applied = o.apply(&objects)?;
        let audit: Vec<Value> = applied
            .iter()
            .filter(|a| a.outcome != Outcome::Unchanged)
            .map(|a| {
                let what = if a.outcome == Outcome::Created {
                    "created"
                } else {
                    "configured"
                };
                event(
                    &a.key,
                    "Applied",
                    &format!("{} {what} by {user}", a.key),
                    Severity::Normal,
                    Reporter::Api { user: &user },
                )
            })
            .collect();
        o.record_events(&audit)?;
        Ok(applied)
    })
    .await?;
    if applied.iter().any(|a| a.outcome != Outcome::Unchanged) {
        shared.desired_changed();
    }
    Ok(ApplyResponse {
        objects: applied.iter().map(AppliedObject::from).collect(),
        skipped: split.skipped,
        diagnostics: split.diagnostics,
    })
}

/// Refuses a write that would roll a stored Cluster to a Kubernetes version the version
/// skew policy forbids (a minor version skipped, a downgrade): the running cluster could
/// not be upgraded to it.
fn check_upgrades(o: &mut Txn<'_>, objects: &[(ObjectKey, Value)]) -> Result<(), ObjectsError> {
    let version = |v: &Value| {
        v.pointer("/spec/kubernetesVersion")
            .and_then(Value::as_str)
            .and_then(|t| t.parse::<plinth_model::version::KubernetesVersion>().ok())
    };
    for (key, new) in objects
        .iter()
        .filter(|(k, _)| k.resource == Resource::Cluster)
    {
        let Some(old) = o.get(key)? else { continue };
        if let (Some(from), Some(to)) = (version(&old), version(new))
            && let Err(e) = from.upgrade_to(to)
        {
            return Err(ObjectsError::Invalid(format!(
                "cluster {} cannot be rolled to Kubernetes {to}: {e}",
                key.name
            )));
        }
    }
    Ok(())
}

/// A request's body, at most [`MAX_BODY`] bytes.
pub(crate) async fn body(request: Request) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(request.into_body(), MAX_BODY)
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLarge",
                format!("{e}: the limit is {MAX_BODY} bytes"),
            )
        })
}

async fn apply(State(shared): State<Arc<Shared>>, request: Request) -> ApiResult {
    let who = principal(request.extensions())?;
    let bytes = body(request).await?;
    let body: ApplyRequest = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::bad_request(format!(
            "the apply request is not `{{\"sources\": [{{\"name\", \"text\"}}]}}`: {e}"
        ))
    })?;
    let response = store_manifests(&shared, &who, body).await?;
    Ok(axum::Json(response).into_response())
}

async fn put(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
    request: Request,
) -> ApiResult {
    let who = principal(request.extensions())?;
    let target = Target::of(request.uri().path(), &query)?;
    let mut key = target.key()?;
    allow(&who, key.resource)?;
    let bytes = body(request).await?;
    let object: Value = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("the body is not one JSON object: {e}")))?;
    let info = key.resource.info();
    let said = |p: &str| {
        object
            .pointer(p)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    if said("/kind") != info.kind || said("/apiVersion") != info.api_version() {
        return Err(ApiError::bad_request(format!(
            "the body is `{} {}`, the path is {}: send `apiVersion: {}`, `kind: {}`",
            said("/apiVersion"),
            said("/kind"),
            info.plural,
            info.api_version(),
            info.kind
        )));
    }
    if said("/metadata/name") != key.name {
        return Err(ApiError::bad_request(format!(
            "metadata.name `{}` is not the name in the path, `{}`",
            said("/metadata/name"),
            key.name
        )));
    }
    // A workload's guest cluster is its label: a `?cluster=` must agree with it.
    let labelled = manifests::key_of(&object)
        .map(|k| k.cluster)
        .unwrap_or_default();
    if let Some(asked) = target.cluster.as_ref().filter(|c| **c != labelled) {
        return Err(ApiError::bad_request(format!(
            "?cluster={asked} but the object's `{}` label says `{labelled}`: make them agree",
            plinth_model::workload::CLUSTER_LABEL
        )));
    }
    key.cluster = labelled;
    named_version(&object).map_err(ApiError::bad_request)?;
    let message = format!("{key} written by {}", who.name);
    let (applied, served) = store_object(&shared, &who, key, object, "Applied", message).await?;
    let status = if applied == Some(Outcome::Created) {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(served.unwrap_or(Value::Null))).into_response())
}

/// Checks `object` as the user's manifest, without what the server owns (the
/// resourceVersion and generation of an object read back), and stores it as sent, with its
/// precondition, recording `reason`: `message` when it changed; the control plane re-reads
/// the estate then. What became of it, and the object as stored.
pub(crate) async fn store_object(
    shared: &Arc<Shared>,
    who: &Principal,
    key: ObjectKey,
    object: Value,
    reason: &'static str,
    message: String,
) -> Result<(Option<Outcome>, Option<Value>), ApiError> {
    let text = serde_json::to_string_pretty(&crate::objects::desired(&object)).unwrap_or_default();
    let request = ApplyRequest {
        sources: vec![Source {
            name: manifests::source_name(&key),
            text,
        }],
        bindings: Default::default(),
    };
    let split = check(request).await?;
    if split.has_errors() {
        let mut e = ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
            format!("{key} is invalid"),
        );
        e.diagnostics = split.diagnostics;
        return Err(e);
    }
    let user = who.name.clone();
    let (outcome, served) = write(shared, move |o| {
        let batch = [(key.clone(), object.clone())];
        check_upgrades(o, &batch)?;
        let outcome = o.apply(&batch)?.first().map(|a| a.outcome);
        if outcome.is_some_and(|a| a != Outcome::Unchanged) {
            let e = event(
                &key,
                reason,
                &message,
                Severity::Normal,
                Reporter::Api { user: &user },
            );
            o.record_events(&[e])?;
        }
        Ok((outcome, o.get(&key)?))
    })
    .await?;
    if outcome.is_some_and(|a| a != Outcome::Unchanged) {
        shared.desired_changed();
    }
    Ok((outcome, served))
}

/// The node VMs a Cluster's status says it runs, when it runs any.
fn running_nodes(objects: &mut Txn<'_>, key: &ObjectKey) -> Result<Option<u64>, ObjectsError> {
    if key.resource != Resource::Cluster {
        return Ok(None);
    }
    let nodes = objects
        .get(key)?
        .and_then(|o| o.pointer("/status/nodes").and_then(Value::as_u64))
        .filter(|&n| n > 0);
    Ok(nodes)
}

async fn delete(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
    request: Request,
) -> ApiResult {
    let who = principal(request.extensions())?;
    let target = Target::of(request.uri().path(), &query)?;
    let key = resolve(&shared, &target).await?;
    allow(&who, key.resource)?;
    let expected = query_version(&query)?;
    let user = who.name.clone();
    let k = key.clone();
    let deleted = write(&shared, move |o| {
        if let Some(nodes) = running_nodes(o, &k)? {
            return Err(ObjectsError::Refused(format!(
                "{k} runs {nodes} node VM(s): deleting a running cluster is not supported yet (its VMs would run on unmanaged); scale its pools down first or keep it"
            )));
        }
        let deleted = o.delete(&k, expected)?;
        if deleted.is_some() {
            let e = event(
                &k,
                "Deleted",
                &format!("{k} deleted by {user}"),
                Severity::Normal,
                Reporter::Api { user: &user },
            );
            o.record_events(&[e])?;
        }
        Ok(deleted)
    })
    .await?;
    match deleted {
        Some(object) => {
            shared.desired_changed();
            Ok(axum::Json(object).into_response())
        }
        None => Err(ApiError::not_found(format!("{key} not found"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_parse_into_resources_and_refuse_what_is_not_one() {
        let t = Target::parse("/apis/apps/v1/namespaces/shop/deployments/web").expect("path");
        assert_eq!(t.resource, Resource::Deployment);
        assert_eq!(t.key().expect("key").namespace, "shop");
        let t = Target::parse("/api/v1/pods").expect("path");
        assert_eq!((t.resource, t.name), (Resource::Pod, None));
        assert!(Target::parse("/apis/plinth.dev/v1alpha1/namespaces/x/clusters").is_err());
        assert!(Target::parse("/apis/plinth.dev/v1alpha1/gadgets").is_err());
        assert!(Target::parse("/apis/a/b/c/d/e/f").is_err());
    }
}
