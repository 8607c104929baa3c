//! The OpenAPI document says what the server does: schemathesis (PyPI, pinned in
//! `tests/schemathesis/requirements.txt`, installed into `tests/schemathesis/.venv` by
//! `scripts/test`) reads the document a running bridge serves, sends the requests it generates
//! from it, with the token and API key `require` asks for, and checks every answer against it.

use std::path::Path;
use std::time::Instant;

use crate::identify::{spawn_api, KEY};

/// Examples per generation phase: enough to reach every field rule, bounded so the check takes
/// well under two minutes.
const MAX_EXAMPLES: &str = "150";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn schemathesis_finds_no_answer_the_openapi_document_does_not_describe() {
    let schemathesis =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schemathesis/.venv/bin/schemathesis");
    assert!(
        schemathesis.exists(),
        "{} is missing: scripts/test installs it (tests/schemathesis/requirements.txt)",
        schemathesis.display()
    );
    let api = spawn_api("").await;
    let work = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let output = tokio::process::Command::new(&schemathesis)
        .current_dir(work.path())
        .env("SCHEMATHESIS_TELEMETRY", "false")
        .args([
            "run",
            &api.app.url("/api/openapi.json"),
            "--experimental=openapi-3.1",
            "--validate-schema=true",
            "--checks=not_a_server_error,status_code_conformance,content_type_conformance,\
             response_headers_conformance,response_schema_conformance",
            // Requests the document allows. Negative generation also sends header values with
            // control characters, which HTTP forbids: hyper refuses those with a bare 400 before
            // the API sees them, which no document can describe.
            "--data-generation-method=positive",
            "--hypothesis-max-examples",
            MAX_EXAMPLES,
            "--hypothesis-database=none",
            "--hypothesis-suppress-health-check=all",
            "--experimental-no-failfast",
            "--request-timeout=10000",
            "--schemathesis-io-telemetry=false",
            "--header",
            &format!("Authorization: Bearer {}", api.token),
            "--header",
            &format!("KEY: {KEY}"),
        ])
        .output()
        .await
        .expect("schemathesis runs");
    let report = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "schemathesis found:\n{report}");
    assert!(
        report.contains("passed") && !report.contains("No API operations"),
        "{report}"
    );
    eprintln!("schemathesis took {:?}", started.elapsed());
}
