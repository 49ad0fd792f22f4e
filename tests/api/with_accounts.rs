//! The whole suite once more with accounts on: every app has one account, and every request of
//! the harness carries its token, so protected mode is checked to change nothing but access.

use crate::helpers::TEST_ACCOUNTS;

/// This test's own name, skipped in the second run, with the tests that are about the server
/// without accounts.
const SKIPPED: [&str; 3] = [
    "with_accounts::the_api_suite_passes_with_accounts",
    "on_postgresql::",
    "access::",
];

#[tokio::test]
async fn the_api_suite_passes_with_accounts() {
    let test_binary = std::env::current_exe().expect("the test binary's path");
    let mut command = tokio::process::Command::new(test_binary);
    for skipped in SKIPPED {
        command.args(["--skip", skipped]);
    }
    let output = command
        .env(TEST_ACCOUNTS, "1")
        .output()
        .await
        .expect("the test binary runs again");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the API suite fails with accounts:\n{stdout}\n{stderr}"
    );
    let n_passed = crate::on_postgresql::passed(&stdout);
    assert!(n_passed > 30, "the second run ran too few tests:\n{stdout}");
    println!("with accounts: {n_passed} tests passed");
}
