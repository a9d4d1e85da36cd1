//! `docs/openapi.json` is the document the code generates: this fails when it is stale.

#[test]
fn the_committed_openapi_document_is_the_generated_one() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
    let committed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("docs/openapi.json exists"))
            .expect("docs/openapi.json is JSON");
    assert!(
        committed == plinth_server::openapi::document(),
        "docs/openapi.json is stale: run `cargo run -q -p plinth-cli -- schema --openapi > docs/openapi.json`"
    );
}
