//! Kubernetes-style events: what happened to which object, why, and who did it — one
//! shape for the API's audit trail and the control plane's milestones.

use std::time::SystemTime;

use serde_json::{Value, json};

use crate::kinds::{ObjectKey, PLINTH_GROUP_VERSION};

/// Normal or Warning, as Kubernetes events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// Something went as intended.
    Normal,
    /// Something failed or waits.
    Warning,
}

/// Who reports an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reporter<'a> {
    /// The API, for a request of this user (the audit trail).
    Api {
        /// The token's name.
        user: &'a str,
    },
    /// The reconcile loop.
    ControlPlane,
}

/// An event's body (the store names it).
pub fn event(
    involved: &ObjectKey,
    reason: &str,
    message: &str,
    severity: Severity,
    reporter: Reporter<'_>,
) -> Value {
    let (component, user) = match reporter {
        Reporter::Api { user } => ("plinth-api", Some(user)),
        Reporter::ControlPlane => ("plinth-control-plane", None),
    };
    let mut body = json!({
        "apiVersion": PLINTH_GROUP_VERSION,
        "kind": "Event",
        "involvedObject": {
            "kind": involved.resource.info().kind,
            "namespace": involved.namespace,
            "name": involved.name,
        },
        "reason": reason,
        "message": message,
        "type": match severity { Severity::Normal => "Normal", Severity::Warning => "Warning" },
        "source": {"component": component},
        "eventTime": humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
    });
    if let (Some(user), Some(map)) = (user, body.as_object_mut()) {
        map.insert("user".into(), json!(user));
    }
    body
}
