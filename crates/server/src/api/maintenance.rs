//! `POST /apis/plinth.dev/v1alpha1/hosts/NAME/maintenance[?dryRun=All][&force=true]`: a
//! host's maintenance asked of the running control plane. It plans on the placement as it
//! is now ([`plinth_control::Control::maintenance_review`], the plan `plinth maintenance
//! DIR --dry-run` prints for an estate directory) and answers it; without a dry run it also
//! requests the maintenance (the reconciler's `MaintenanceRequested`, the path the
//! simulator and `plinth run` take) when no etcd quorum or PodDisruptionBudget breaks, or
//! when forced, and answers 202; refused, it answers 409 naming what breaks. Hosts are
//! written by the control plane only: this is how an operator asks for one's maintenance.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;

use crate::Shared;
use crate::api::{ApiError, ApiResult, principal, write};
use crate::auth::Role;
use crate::controller::Ask;
use crate::events::{Reporter, Severity, event};
use crate::kinds::{ObjectKey, PLINTH_GROUP_VERSION, Resource};
use crate::wire::HostMaintenance;

/// The longest a request waits for the reconcile loop (a follower replica has none).
const ANSWER_WITHIN: Duration = Duration::from_secs(30);

/// What the query asks: a dry run, and whether to force.
fn options(query: &HashMap<String, String>) -> Result<(bool, bool), ApiError> {
    if let Some(unknown) = query
        .keys()
        .find(|k| !["dryRun", "force"].contains(&k.as_str()))
    {
        return Err(ApiError::bad_request(format!(
            "unknown query parameter `{unknown}`: a maintenance takes `dryRun=All` and `force=true`"
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

pub(crate) async fn post(
    State(shared): State<Arc<Shared>>,
    Path(host): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    request: Request,
) -> ApiResult {
    let who = principal(request.extensions())?;
    let needs = Role::Operator;
    if who.role < needs {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "Forbidden",
            format!(
                "token `{}` has role {}; a host's maintenance needs role {needs}, even as a dry run",
                who.name, who.role
            ),
        ));
    }
    let (dry_run, force) = options(&query)?;
    let (reply, answer) = tokio::sync::oneshot::channel();
    shared.ask(Ask::Maintenance {
        host: host.clone(),
        force,
        dry_run,
        reply,
    });
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
    let review = tokio::time::timeout(ANSWER_WITHIN, answer)
        .await
        .map_err(|_| unanswered())?
        .map_err(|_| unanswered())??;
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
    let status = if dry_run {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    let body = HostMaintenance {
        api_version: PLINTH_GROUP_VERSION.to_owned(),
        kind: "HostMaintenance".to_owned(),
        host,
        dry_run,
        review,
    };
    Ok((status, axum::Json(body)).into_response())
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
        assert_eq!(options(&query(&[])).ok(), Some((false, false)));
        assert_eq!(
            options(&query(&[("dryRun", "All"), ("force", "true")])).ok(),
            Some((true, true))
        );
        for (bad, names) in [
            (query(&[("dryRun", "true")]), "dryRun=true"),
            (query(&[("force", "yes")]), "force=yes"),
            (query(&[("drain", "1")]), "`drain`"),
        ] {
            let e = options(&bad).expect_err("refused");
            assert_eq!(e.status, StatusCode::BAD_REQUEST);
            assert!(e.message.contains(names), "{}", e.message);
        }
    }
}
