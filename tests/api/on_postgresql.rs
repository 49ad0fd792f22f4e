//! The whole suite once more on the PostgreSQL backend: a throwaway cluster, and this test
//! binary run again with `TODO_TEST_DATABASE_URL` pointing at it.

use crate::helpers::TEST_DATABASE_URL;
use crate::postgres::PgCluster;

/// This test's own name, skipped in the second run.
const THIS_TEST: &str = "on_postgresql::the_api_suite_passes_on_postgresql";

#[tokio::test]
async fn the_api_suite_passes_on_postgresql() {
    let cluster = PgCluster::start();
    let url = cluster.url("postgres");
    let n_passed = rerun("on PostgreSQL", (TEST_DATABASE_URL, &url), &[THIS_TEST]).await;

    // Each app got its own database, so the second run really used this cluster.
    let (client, connection) =
        tokio_postgres::connect(&cluster.url("postgres"), tokio_postgres::NoTls)
            .await
            .expect("the cluster still answers");
    tokio::spawn(connection);
    let n_databases: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_database WHERE datname LIKE 'test\\_%'",
            &[],
        )
        .await
        .expect("pg_database is readable")
        .get(0);
    assert!(n_databases > 0, "the second run created no database");
    println!("on PostgreSQL: {n_passed} tests passed, using {n_databases} databases");
}

/// Runs this test binary again with the environment variable `variable`, skipping the tests
/// whose names start with one of `skipped`; asserts it passes and returns how many tests did.
pub async fn rerun(label: &str, variable: (&str, &str), skipped: &[&str]) -> usize {
    let test_binary = std::env::current_exe().expect("the test binary's path");
    let mut command = tokio::process::Command::new(test_binary);
    for skipped in skipped {
        command.args(["--skip", skipped]);
    }
    let output = command
        .env(variable.0, variable.1)
        .output()
        .await
        .expect("the test binary runs again");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the API suite fails {label}:\n{stdout}\n{stderr}"
    );
    let n_passed = passed(&stdout);
    assert!(n_passed > 0, "the second run ran no test:\n{stdout}");
    n_passed
}

/// The number of passed tests in libtest's summary line (`test result: ok. N passed; ...`).
fn passed(stdout: &str) -> usize {
    stdout
        .lines()
        .find_map(|line| line.strip_prefix("test result: ok. "))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}
