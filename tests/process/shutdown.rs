//! Graceful shutdown of the real binary: SIGTERM or SIGHUP with casts still queued commits all
//! of them; a second signal during a shutdown exits at once.

use crate::helpers::{Server, client, stored_rows};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_commits_every_queued_cast() {
    every_queued_cast_is_committed_on("TERM", 2_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_is_a_graceful_shutdown_too() {
    every_queued_cast_is_committed_on("HUP", 500).await;
}

async fn every_queued_cast_is_committed_on(signal: &str, n_casts: usize) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--mailbox-capacity", "10000"]);
    let client = client();
    let mut accepted = 0;
    for n in 0..n_casts {
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
    let mut server = server;
    server.signal(signal);
    let exit = server.exit_within(std::time::Duration::from_secs(30));
    assert_eq!(exit, Some(Some(0)), "SIG{signal} exits 0");
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

/// A request whose body never comes holds the graceful shutdown up; a second SIGINT ends it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sigint_exits_at_once() {
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &["--body-timeout", "60s"]);
    let address = server.url.trim_start_matches("http://").to_owned();
    let mut stuck = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = "POST /lists/a/entries HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{";
    stuck.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;

    server.signal("INT");
    let waiting = server.exit_within(std::time::Duration::from_millis(500));
    assert_eq!(
        waiting, None,
        "the graceful shutdown waits for the request in flight"
    );
    server.signal("INT");
    let exit = server.exit_within(std::time::Duration::from_secs(5));
    assert_eq!(exit, Some(Some(130)), "the second signal exits at once");
}
