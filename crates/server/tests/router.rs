//! The API's router under bad requests: oversized, malformed, deeply nested and
//! wrongly-typed bodies, unknown paths, missing tokens — each a 4xx with a reason, never a
//! 500 and never a crash; and random requests thrown at it by proptest.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use plinth_server::Shared;
use plinth_server::auth::{Role, Tokens};
use plinth_server::objects::Objects;
use proptest::prelude::*;
use tower::ServiceExt as _;

struct Api {
    _dir: tempfile::TempDir,
    router: axum::Router,
    secret: String,
}

fn api() -> Api {
    let dir = tempfile::tempdir().expect("tempdir");
    let objects = Objects::sqlite(&dir.path().join("objects.db")).expect("store");
    let (secret, line) = Tokens::generate(Role::Admin, "test");
    let tokens = Tokens::parse(&line).expect("tokens");
    let shared = Arc::new(Shared::new(objects, tokens).expect("shared"));
    Api {
        _dir: dir,
        router: plinth_server::api::router(shared),
        secret,
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Sends one request; the status and the body.
fn send(api: &Api, method: Method, path: &str, body: Vec<u8>, token: bool) -> (StatusCode, String) {
    let mut request = Request::builder().method(method).uri(path);
    if token {
        request = request.header("Authorization", format!("Bearer {}", api.secret));
    }
    let request = request.body(Body::from(body)).expect("request");
    runtime().block_on(async {
        let response = api
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("an answer");
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("body");
        (status, String::from_utf8_lossy(&bytes).into_owned())
    })
}

fn assert_refused(status: StatusCode, body: &str, want: StatusCode) {
    assert_eq!(status, want, "{body}");
    let v: serde_json::Value = serde_json::from_str(body).expect("a Status object");
    assert_eq!(v["kind"], "Status", "{body}");
    assert!(
        !v["message"].as_str().unwrap_or_default().is_empty(),
        "{body}"
    );
}

const APPLY: &str = "/apis/plinth.dev/v1alpha1/apply";
const CLUSTER: &str = "/apis/plinth.dev/v1alpha1/clusters/a";

#[test]
fn an_object_read_back_can_be_written_back() {
    let api = api();
    let path = "/apis/plinth.dev/v1alpha1/clusters/apps";
    let cluster = r#"{"apiVersion": "plinth.dev/v1alpha1", "kind": "Cluster", "metadata": {"name": "apps"},
        "spec": {"kubernetesVersion": "1.31.4", "osImage": "ubuntu-24.04",
                 "controlPlane": {"replicas": 3, "vcpu": 4, "memory": "16Gi"}, "nodePools": []}}"#;
    let (status, body) = send(&api, Method::PUT, path, cluster.into(), true);
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (_, read) = send(&api, Method::GET, path, Vec::new(), true);
    let mut object: serde_json::Value = serde_json::from_str(&read).expect("json");
    assert!(object["metadata"]["generation"].is_number(), "{read}");
    object["spec"]["osImage"] = "ubuntu-26.04".into();
    let (status, body) = send(&api, Method::PUT, path, object.to_string().into(), true);
    assert_eq!(status, StatusCode::OK, "{body}");
    // The same read, written again, names a version that is no longer the stored one.
    let (status, _) = send(&api, Method::PUT, path, object.to_string().into(), true);
    assert_eq!(status, StatusCode::CONFLICT);
    // A version the running cluster could not be rolled to is refused; the next minor is not.
    let (_, read) = send(&api, Method::GET, path, Vec::new(), true);
    let mut object: serde_json::Value = serde_json::from_str(&read).expect("json");
    object["spec"]["kubernetesVersion"] = "1.33.0".into();
    let (status, body) = send(&api, Method::PUT, path, object.to_string().into(), true);
    assert_refused(status, &body, StatusCode::BAD_REQUEST);
    assert!(body.contains("skips a minor version"), "{body}");
    object["spec"]["kubernetesVersion"] = "1.32.0".into();
    let (status, body) = send(&api, Method::PUT, path, object.to_string().into(), true);
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[test]
fn same_named_workloads_of_two_guest_clusters_are_two_objects() {
    let api = api();
    let deployment = |cluster: &str, replicas: u32| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: storefront\n  namespace: shop\n  labels: {{plinth.dev/cluster: {cluster}}}\nspec:\n  replicas: {replicas}\n  selector: {{matchLabels: {{app: s}}}}\n  template:\n    metadata: {{labels: {{app: s}}}}\n    spec:\n      containers: [{{name: s, image: s, resources: {{requests: {{cpu: 100m, memory: 128Mi}}}}}}]\n"
        )
    };
    let apply = serde_json::json!({"sources": [
        {"name": "prod.yaml", "text": deployment("prod", 6)},
        {"name": "staging.yaml", "text": deployment("staging", 2)},
    ]});
    let (status, body) = send(&api, Method::POST, APPLY, apply.to_string().into(), true);
    assert_eq!(status, StatusCode::OK, "{body}");
    let list = "/apis/apps/v1/namespaces/shop/deployments";
    let (_, listed) = send(&api, Method::GET, list, Vec::new(), true);
    let listed: serde_json::Value = serde_json::from_str(&listed).expect("json");
    let replicas: Vec<&serde_json::Value> = listed["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|d| &d["spec"]["replicas"])
        .collect();
    assert_eq!(replicas, [6, 2], "both kept, prod first: {listed}");
    // One of them is named by its cluster; without one, the path is ambiguous.
    let one = format!("{list}/storefront");
    let (status, body) = send(
        &api,
        Method::GET,
        &format!("{one}?cluster=staging"),
        Vec::new(),
        true,
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("\"replicas\":2"), "{body}");
    let (status, body) = send(&api, Method::GET, &one, Vec::new(), true);
    assert_refused(status, &body, StatusCode::BAD_REQUEST);
    assert!(
        body.contains("prod, staging") && body.contains("?cluster="),
        "{body}"
    );
    // Deleting staging's leaves prod's, which the bare path then names.
    let (status, body) = send(
        &api,
        Method::DELETE,
        &format!("{one}?cluster=staging"),
        Vec::new(),
        true,
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = send(&api, Method::GET, &one, Vec::new(), true);
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("\"replicas\":6"), "{body}");
    // A cluster label that cannot name a cluster is refused with the place and the rule.
    let bad = serde_json::json!({"sources": [{"name": "bad.yaml", "text": deployment("a/b", 1)}]});
    let (status, body) = send(&api, Method::POST, APPLY, bad.to_string().into(), true);
    assert_refused(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("cluster label `a/b`"), "{body}");
    // A Plinth object has no guest cluster.
    let (status, body) = send(
        &api,
        Method::GET,
        &format!("{CLUSTER}?cluster=prod"),
        Vec::new(),
        true,
    );
    assert_refused(status, &body, StatusCode::BAD_REQUEST);
}

#[test]
fn the_console_page_needs_no_token_and_its_views_do() {
    let api = api();
    let (status, page) = send(&api, Method::GET, "/", Vec::new(), false);
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("/console/app.js"), "{page}");
    let (status, _) = send(&api, Method::GET, "/console/views/pool", Vec::new(), false);
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, view) = send(
        &api,
        Method::GET,
        "/console/views/clusters",
        Vec::new(),
        true,
    );
    assert_eq!(status, StatusCode::OK);
    assert!(view.contains("No valid estate"), "{view}");
    let (status, _) = send(
        &api,
        Method::GET,
        "/console/views/nothing",
        Vec::new(),
        true,
    );
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[test]
fn bad_requests_get_a_4xx_with_a_reason() {
    let api = api();
    let (s, b) = send(
        &api,
        Method::GET,
        "/apis/plinth.dev/v1alpha1/clusters",
        vec![],
        false,
    );
    assert_refused(s, &b, StatusCode::UNAUTHORIZED);
    let (s, b) = send(&api, Method::POST, APPLY, vec![b'{'; 9 << 20], true);
    assert_refused(s, &b, StatusCode::PAYLOAD_TOO_LARGE);
    let nested = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let (s, b) = send(&api, Method::PUT, CLUSTER, nested.into_bytes(), true);
    assert_refused(s, &b, StatusCode::BAD_REQUEST);
    let (s, b) = send(
        &api,
        Method::POST,
        APPLY,
        br#"{"sources": 7}"#.to_vec(),
        true,
    );
    assert_refused(s, &b, StatusCode::BAD_REQUEST);
    let wrong = br#"{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "a"}}"#;
    let (s, b) = send(&api, Method::PUT, CLUSTER, wrong.to_vec(), true);
    assert_refused(s, &b, StatusCode::BAD_REQUEST);
    let (s, b) = send(
        &api,
        Method::GET,
        "/apis/plinth.dev/v1alpha1/gadgets",
        vec![],
        true,
    );
    assert_refused(s, &b, StatusCode::NOT_FOUND);
    let (s, b) = send(
        &api,
        Method::PUT,
        "/apis/plinth.dev/v1alpha1/hosts/h1",
        b"{}".to_vec(),
        true,
    );
    assert_refused(s, &b, StatusCode::METHOD_NOT_ALLOWED);
    let (s, b) = send(
        &api,
        Method::GET,
        "/apis/plinth.dev/v1alpha1/clusters?watch=true&resourceVersion=x",
        vec![],
        true,
    );
    assert_refused(s, &b, StatusCode::BAD_REQUEST);
    let invalid = br#"{"sources": [{"name": "a.yaml", "text": "apiVersion: plinth.dev/v1alpha1\nkind: Cluster\nmetadata: {name: a}\nspec: {}\n"}]}"#;
    let (s, b) = send(&api, Method::POST, APPLY, invalid.to_vec(), true);
    assert_refused(s, &b, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(b.contains("\"file\":\"a.yaml\""), "{b}");
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        Just(Method::GET),
        Just(Method::PUT),
        Just(Method::DELETE),
        Just(Method::POST),
        Just(Method::PATCH)
    ]
}

fn path() -> impl Strategy<Value = String> {
    let segment = prop_oneof![
        Just("apis".to_owned()),
        Just("api".to_owned()),
        Just("plinth.dev".to_owned()),
        Just("v1alpha1".to_owned()),
        Just("v1".to_owned()),
        Just("apps".to_owned()),
        Just("namespaces".to_owned()),
        Just("clusters".to_owned()),
        Just("deployments".to_owned()),
        Just("pods".to_owned()),
        Just("apply".to_owned()),
        Just("events".to_owned()),
        "[a-z0-9.%-]{0,12}",
    ];
    (
        prop::collection::vec(segment, 0..7),
        prop_oneof![Just(""), Just("?watch=false"), Just("?resourceVersion=abc")],
    )
        .prop_map(|(s, q)| format!("/{}{q}", s.join("/")))
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200),
        Just(br#"{"sources": [{"name": "x", "text": "kind: Inventory"}]}"#.to_vec()),
        Just(br#"{"apiVersion": "plinth.dev/v1alpha1", "kind": "Cluster", "metadata": {"name": "a", "resourceVersion": 5}}"#.to_vec()),
        "[ -~]{0,100}".prop_map(String::into_bytes),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn random_requests_never_get_a_server_error(method in method(), path in path(), body in body(), token in any::<bool>()) {
        let api = api();
        let (status, text) = send(&api, method, &path, body, token);
        prop_assert!(!status.is_server_error(), "{status}: {text}");
    }
}
