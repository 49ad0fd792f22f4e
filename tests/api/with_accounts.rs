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
    let n_passed =
        crate::on_postgresql::rerun("with accounts", (TEST_ACCOUNTS, "1"), &SKIPPED).await;
    assert!(
        n_passed > 30,
        "the second run ran too few tests: {n_passed}"
    );
    println!("with accounts: {n_passed} tests passed");
}
