//! The OpenAPI document against the real server, checked from outside: openapi-spec-validator
//! finds the document valid, and schemathesis (a fixed seed; examples, coverage, fuzzing and
//! stateful phases; every check) finds no request the server answers otherwise than the
//! document says: once while no account exists, once with an admin's API token. The tools
//! live in `target/api-tools` (`bash .ci/api-tools` installs them; `.ci/run` does).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::helpers::{Server, add_user, client, login};

/// The settings of every run (`tests/contract/schemathesis.toml` says why).
const CONFIG: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/contract/schemathesis.toml"
);
/// Test cases per operation and phase: enough to reach every rule, small enough for CI.
const MAX_EXAMPLES: &str = "10";

/// The installed tool `name`, or a failure that says how to install it.
fn tool(name: &str) -> PathBuf {
    let dir = std::env::var_os("TODO_API_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/api-tools"));
    let path = dir.join("bin").join(name);
    assert!(
        path.exists(),
        "{} is missing: run `bash .ci/api-tools` once (`.ci/run` does)",
        path.display()
    );
    path
}

fn report(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    format!("{stdout}\n{stderr}")
}

/// Runs schemathesis against `url` with `extra` arguments, in a scratch directory (it keeps
/// a database of examples there); fails the test with its report when it finds anything.
fn schemathesis(url: &str, scratch: &Path, extra: &[&str]) {
    let output = Command::new(tool("schemathesis"))
        .current_dir(scratch)
        .args([
            "--config-file",
            CONFIG,
            "run",
            &format!("{url}/openapi.json"),
        ])
        .args([
            "--checks",
            "all",
            "--phases",
            "examples,coverage,fuzzing,stateful",
        ])
        .args(["--seed", "1", "--max-examples", MAX_EXAMPLES, "--no-color"])
        .args(extra)
        .output()
        .expect("schemathesis runs");
    let text = report(&output);
    assert!(
        output.status.success(),
        "schemathesis found failures:\n{text}"
    );
    assert!(text.contains("passed"), "schemathesis ran no test:\n{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_openapi_document_is_valid_openapi() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[]);
    let document = client()
        .get(format!("{}/openapi.json", server.url))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, &document).unwrap();
    let output = Command::new(tool("openapi-spec-validator"))
        .arg(&file)
        .output()
        .expect("openapi-spec-validator runs");
    let text = report(&output);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("OK"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn schemathesis_finds_nothing_while_no_account_exists() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[]);
    // The first account would end open mode halfway through; the other run covers accounts.
    schemathesis(&server.url, dir.path(), &["--exclude-name", "POST /users"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn schemathesis_finds_nothing_with_an_admins_token() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    add_user(&data_dir, "alice");
    let server = Server::start(&data_dir, &[]);
    let session = login(&server.url, "alice").await;
    let token: serde_json::Value = client()
        .post(format!("{}/tokens", server.url))
        .bearer_auth(&session)
        .json(&serde_json::json!({"name": "schemathesis"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let header = format!("Authorization: Bearer {}", token["token"].as_str().unwrap());
    // Left out: what would end the run's own credentials (its token, its user).
    let excluded = [
        "POST /auth/logout",
        "DELETE /tokens/{id}",
        "DELETE /users/{name}",
    ];
    let mut args = vec!["-H", header.as_str()];
    for name in &excluded {
        args.extend(["--exclude-name", name]);
    }
    schemathesis(&server.url, dir.path(), &args);
}
