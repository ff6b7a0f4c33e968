//! The API keeps its published contract: the fuzzer schemathesis (PyPI) generates requests from
//! `/openapi.json`, valid and invalid, and checks every answer against it: no server error, only
//! documented statuses, content types, bodies and headers. CI installs it and sets
//! KEYLEDGER_SCHEMATHESIS (see .ci/run); locally the test is skipped with a note when `st` is
//! not installed.

use keyledger_tests::{both, tool, TestApp};

const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
                      response_schema_conformance,response_headers_conformance";

/// The operation that deletes admin tokens deletes the fuzzer's own once it finds its id, after
/// which every answer is 401: it runs on its own, last.
const DELETES_TOKENS: &str = "DELETE /v1/admin-tokens/{id}";

/// Live usage answers a stream that does not end while the client stays: the fuzzer would wait
/// for each answer forever. Its refusals and its events are tested in `usage_stream.rs`.
const STREAMS: &str = "GET /v1/usage/stream";

both!(the_api_keeps_its_openapi_contract_under_fuzzing, fuzz);
async fn fuzz(app: TestApp) -> TestApp {
    let Some(st) = tool("KEYLEDGER_SCHEMATHESIS", "st", true) else {
        return app;
    };
    // Alone, the deleting operation has no link to follow: no stateful phase for it.
    let every_phase = ["--phases", "examples,coverage,fuzzing,stateful"];
    let stateless = ["--phases", "examples,coverage,fuzzing"];
    for (filter, phases) in [
        (
            &["--exclude-name", DELETES_TOKENS, "--exclude-name", STREAMS][..],
            every_phase,
        ),
        (&["--include-name", DELETES_TOKENS][..], stateless),
    ] {
        let mut command = std::process::Command::new(&st);
        command
            .arg("run")
            .arg(app.url("/openapi.json"))
            .args(["--checks", CHECKS, "--max-examples", "20", "--seed", "1"])
            .args(["--no-color", "--warnings", "off", "--generation-database", "none"])
            .arg("--header")
            .arg(format!("Authorization: Bearer {}", app.token))
            .args(filter)
            .args(phases);
        // Blocking: the server under test runs on this runtime's other worker.
        let out = tokio::task::spawn_blocking(move || command.output())
            .await
            .expect("join")
            .expect("run schemathesis");
        assert!(
            out.status.success(),
            "schemathesis found contract failures ({filter:?}):\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    app
}
