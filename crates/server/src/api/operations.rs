//! The operations an operator asks of the running control plane, each planned on the
//! placement as it is now by the function the CLI uses on an estate directory, so a dry run
//! here and `plinth VERB DIR --dry-run` give the same answer:
//! - `POST …/hosts/NAME/maintenance[?dryRun=All][&force=true]`
//!   ([`plinth_control::Control::maintenance_review`]): without a dry run it also requests
//!   the maintenance (the reconciler's `MaintenanceRequested`, the path the simulator and
//!   `plinth run` take) when no etcd quorum or PodDisruptionBudget breaks, or when forced,
//!   and answers 202; refused, it answers 409 naming what breaks. Hosts are written by the
//!   control plane only: this is how an operator asks for one's maintenance.
//! - `POST …/clusters/NAME/upgrade[?dryRun=All]` with `{"to": VERSION|IMAGE}`
//!   ([`plinth_control::Control::upgrade_plan`]): without a dry run it writes the version
//!   or image into the Cluster (checked as a `PUT` of it is), and the control plane rolls
//!   it out as any applied change; 202.
//! - `POST …/drs?dryRun=All` ([`plinth_control::Control::drs_review`]): the pass DRS
//!   would make now. Passes run by themselves while DRS is on; there is nothing to carry out.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use plinth_control::UpgradeKind;
use plinth_model::kinds::cluster::ClusterSpec;
use serde_json::Value;

use crate::Shared;
use crate::api::{ApiError, ApiResult, body, principal, store, store_object, write};
use crate::auth::{Principal, Role};
use crate::controller::{Ask, Reply};
use crate::events::{Reporter, Severity, event};
use crate::kinds::{ObjectKey, PLINTH_GROUP_VERSION, Resource};
use crate::wire::{ClusterUpgrade, DrsPass, HostMaintenance, UpgradeRequest};

/// The longest a request waits for the reconcile loop (a follower replica has none).
const ANSWER_WITHIN: Duration = Duration::from_secs(30);

/// What the query asks: a dry run, and whether to force; `takes` names the parameters this
/// operation reads (`dryRun`, and `force` when it can be forced).
fn options(query: &HashMap<String, String>, takes: &[&str]) -> Result<(bool, bool), ApiError> {
    if let Some(unknown) = query.keys().find(|k| !takes.contains(&k.as_str())) {
        let takes: Vec<String> = takes
            .iter()
            .map(|t| match *t {
                "dryRun" => "`dryRun=All`".to_owned(),
                other => format!("`{other}=true`"),
            })
            .collect();
        return Err(ApiError::bad_request(format!(
            "unknown query parameter `{unknown}`: this operation takes {}",
            takes.join(" and ")
        )));
    }
    let dry_run = match query.get("dryRun").map(String::as_str) {
        None => false,
        Some("All") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "dryRun={other}: the one dry run is `dryRun=All`, as in Kubernetes"
            )));
        }
    };
    let force = match query.get("force").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "force={other}: pass `force=true` or leave it out"
            )));
        }
    };
    Ok((dry_run, force))
}

/// Refuses `who` unless it has role `needs` for `what`.
fn require(who: &Principal, needs: Role, what: &str) -> Result<(), ApiError> {
    if who.role >= needs {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "Forbidden",
        format!(
            "token `{}` has role {}; {what} needs role {needs}, even as a dry run",
            who.name, who.role
        ),
    ))
}

/// Asks the reconcile loop (`ask` made with the reply channel) and waits for its answer.
async fn asked<T>(shared: &Shared, ask: impl FnOnce(Reply<T>) -> Ask) -> Result<T, ApiError> {
    let (reply, answer) = tokio::sync::oneshot::channel();
    shared.ask(ask(reply));
    let unanswered = || {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            format!(
                "no control plane answered within {} s: this replica may not lead (ask the leader), or it is stopping",
                ANSWER_WITHIN.as_secs()
            ),
        )
    };
    tokio::time::timeout(ANSWER_WITHIN, answer)
        .await
        .map_err(|_| unanswered())?
        .map_err(|_| unanswered())?
}

/// 200 for a dry run, 202 for an operation requested.
fn accepted(dry_run: bool) -> StatusCode {
    if dry_run {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    }
}

pub(crate) async fn maintenance(
    State(shared): State<Arc<Shared>>,
    Path(host): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    request: Request,
) -> ApiResult {
    let who = principal(request.extensions())?;
    require(&who, Role::Operator, "a host's maintenance")?;
    let (dry_run, force) = options(&query, &["dryRun", "force"])?;
    let review = asked(&shared, |reply| Ask::Maintenance {
        host: host.clone(),
        force,
        dry_run,
        reply,
    })
    .await?;
    if !dry_run {
        let key = ObjectKey::global(Resource::Host, host.clone());
        let forced = if review.forced {
            format!(", forced past: {}", review.refusals.join("; "))
        } else {
            String::new()
        };
        let message = format!(
            "maintenance of host {host} requested by {}{forced}",
            who.name
        );
        let user = who.name.clone();
        write(&shared, move |o| {
            o.record_events(&[event(
                &key,
                "MaintenanceRequested",
                &message,
                if forced.is_empty() {
                    Severity::Normal
                } else {
                    Severity::Warning
                },
                Reporter::Api { user: &user },
            )])
        })
        .await?;
    }
    let body = HostMaintenance {
        api_version: PLINTH_GROUP_VERSION.to_owned(),
        kind: "HostMaintenance".to_owned(),
        host,
        dry_run,
        review,
    };
    Ok((accepted(dry_run), axum::Json(body)).into_response())
}

pub(crate) async fn upgrade(
    State(shared): State<Arc<Shared>>,
    Path(cluster): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    request: Request,
) -> ApiResult {
    let who = principal(request.extensions())?;
    require(&who, Role::Operator, "a cluster's upgrade")?;
    let (dry_run, _) = options(&query, &["dryRun"])?;
    let bytes = body(request).await?;
    let UpgradeRequest { to } = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::bad_request(format!(
            "the body is not `{{\"to\": \"VERSION|IMAGE\"}}`: {e}"
        ))
    })?;
    // Planned from the Cluster as stored (what it asks for now, even before the control
    // plane has taken it), and written back on that version only.
    let key = ObjectKey::global(Resource::Cluster, cluster.clone());
    let read = key.clone();
    let mut object = store(&shared, move |o| o.get(&read))
        .await?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "NotFound",
                format!("{key} is not stored: `plinth get clusters` lists the clusters"),
            )
        })?;
    let spec: ClusterSpec = serde_json::from_value(object["spec"].clone()).map_err(|e| {
        ApiError::new(
            StatusCode::CONFLICT,
            "Conflict",
            format!("{key}'s stored spec does not decode ({e}): apply the Cluster again"),
        )
    })?;
    let plan = asked(&shared, |reply| Ask::Upgrade {
        cluster: cluster.clone(),
        spec: Box::new(spec),
        to,
        reply,
    })
    .await?;
    if !dry_run && plan.replaces {
        let field = match plan.change.kind {
            UpgradeKind::Kubernetes => "kubernetesVersion",
            UpgradeKind::Os => "osImage",
        };
        if let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) {
            spec.insert(field.to_owned(), Value::String(plan.change.to.clone()));
        }
        let message = format!(
            "{} upgrade of cluster {cluster} from {} to {} requested by {}",
            plan.change.kind, plan.change.from, plan.change.to, who.name
        );
        store_object(&shared, &who, key, object, "UpgradeRequested", message).await?;
    }
    // Nothing to roll out is no request either: 200, as for a dry run.
    let status = accepted(dry_run || !plan.replaces);
    let body = ClusterUpgrade {
        api_version: PLINTH_GROUP_VERSION.to_owned(),
        kind: "ClusterUpgrade".to_owned(),
        dry_run,
        plan,
    };
    Ok((status, axum::Json(body)).into_response())
}

pub(crate) async fn drs(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
    request: Request,
) -> ApiResult {
    let who = principal(request.extensions())?;
    require(&who, Role::Reader, "a DRS plan")?;
    let (dry_run, _) = options(&query, &["dryRun"])?;
    if !dry_run {
        return Err(ApiError::bad_request(
            "DRS passes run by themselves every interval while DRS is on (the Environment's `drs`); \
             ask with `dryRun=All` for the pass it would make now",
        ));
    }
    let review = asked(&shared, |reply| Ask::Drs { reply }).await?;
    let body = DrsPass {
        api_version: PLINTH_GROUP_VERSION.to_owned(),
        kind: "DrsPass".to_owned(),
        review,
    };
    Ok(axum::Json(body).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_query_says_dry_run_and_force_and_nothing_else() {
        let takes = ["dryRun", "force"];
        assert_eq!(options(&query(&[]), &takes).ok(), Some((false, false)));
        assert_eq!(
            options(&query(&[("dryRun", "All"), ("force", "true")]), &takes).ok(),
            Some((true, true))
        );
        let e = options(&query(&[("force", "true")]), &["dryRun"]).expect_err("no force");
        assert!(e.message.contains("takes `dryRun=All`"), "{}", e.message);
        for (bad, names) in [
            (query(&[("dryRun", "true")]), "dryRun=true"),
            (query(&[("force", "yes")]), "force=yes"),
            (query(&[("drain", "1")]), "`drain`"),
        ] {
            let e = options(&bad, &takes).expect_err("refused");
            assert_eq!(e.status, StatusCode::BAD_REQUEST);
            assert!(e.message.contains(names), "{}", e.message);
        }
    }
}
