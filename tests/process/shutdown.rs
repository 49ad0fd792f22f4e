//! Graceful shutdown of the real binary: SIGTERM with casts still queued commits all of them.

use crate::helpers::{Server, client, stored_rows};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_commits_every_queued_cast() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--mailbox-capacity", "10000"]);
    let client = client();
    let mut accepted = 0;
    for n in 0..2_000 {
        let query = [
            ("list", format!("casts-{}", n % 4)),
            ("date", "2018-12-19".into()),
            ("title", format!("cast {n}")),
            ("async", "true".into()),
        ];
        let response = client
            .post(format!("{}/add_entry", server.url))
            .query(&query)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
        accepted += 1;
    }
    assert_eq!(server.terminate(), Some(0), "SIGTERM exits 0");
    assert_eq!(
        stored_rows(dir.path()).len(),
        accepted,
        "every accepted cast was committed before exit"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_on_the_same_data_dir_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let _first = Server::start(dir.path(), &[]);
    let second = std::process::Command::new(env!("CARGO_BIN_EXE_todo"))
        .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("in use by another todo server"), "{stderr}");
}
