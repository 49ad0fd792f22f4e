//! A failing fsync on a live server, injected with libfiu (Debian's `fiu-utils`): a write whose
//! commit failed at the fsync is answered `outcome_unknown`, never "not stored", and after a
//! SIGKILL and a restart storage holds exactly what the live server showed, give or take those
//! writes.

use std::collections::BTreeSet;
use std::process::Command;

use crate::helpers::{Server, client};

/// EIO, the error a failing disk gives.
const EIO: i32 = 5;

/// Runs `fiu-ctrl` on the server: `enable ...` or `disable ...` of a failure point.
fn fiu_ctrl(server: &Server, command: &str) {
    let status = Command::new("fiu-ctrl")
        .args(["-c", command, &server.pid().to_string()])
        .status()
        .expect("fiu-ctrl runs: install fiu-utils (.ci/run does)");
    assert!(status.success(), "fiu-ctrl -c {command:?} failed");
}

/// The titles of the list, once storage answers again: after a failed commit the server
/// reopens its connection, with a short back-off between attempts.
async fn titles(url: &str) -> BTreeSet<String> {
    let mut response = None;
    for _ in 0..100 {
        let answer = client()
            .get(format!("{url}/lists/disk/entries"))
            .send()
            .await
            .expect("the server answers");
        if answer.status() != 503 {
            response = Some(answer);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let response = response.expect("storage answers within 10 s of the fault being lifted");
    assert_eq!(response.status(), 200);
    let entries: Vec<serde_json::Value> = response.json().await.expect("a JSON array");
    entries
        .iter()
        .map(|entry| entry["title"].as_str().expect("a title").to_owned())
        .collect()
}

/// Adds an entry; returns the status and the error code, if any.
async fn add(url: &str, title: &str) -> (u16, Option<String>) {
    let body = serde_json::json!({"date": "2018-12-19", "title": title});
    let response = client()
        .post(format!("{url}/lists/disk/entries"))
        .json(&body)
        .send()
        .await
        .expect("the server answers");
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    let code = body["error"]["code"].as_str().map(str::to_owned);
    (status, code)
}

#[tokio::test]
async fn a_failed_fsync_is_an_unknown_outcome_and_recovery_shows_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_under(&["fiu-run", "-x"], dir.path());
    for n in 0..5 {
        assert_eq!(add(&server.url, &format!("before {n}")).await, (201, None));
    }

    fiu_ctrl(
        &server,
        &format!("enable name=posix/io/sync/fsync,failinfo={EIO}"),
    );
    let (mut unknown, mut not_stored) = (BTreeSet::new(), BTreeSet::new());
    for n in 0..5 {
        let title = format!("during {n}");
        match add(&server.url, &title).await {
            (503, Some(code)) if code == "outcome_unknown" => unknown.insert(title),
            (503, Some(code)) if code == "storage_unavailable" => not_stored.insert(title),
            other => panic!("{title}: expected a 503 while fsync fails, got {other:?}"),
        };
    }
    fiu_ctrl(&server, "disable name=posix/io/sync/fsync");
    let live = titles(&server.url).await;
    server.kill();

    assert!(
        !unknown.is_empty(),
        "a write whose fsync failed is answered outcome_unknown"
    );
    let server = Server::start(dir.path(), &[]);
    let recovered = titles(&server.url).await;
    assert!(
        (0..5).all(|n| live.contains(&format!("before {n}"))),
        "acknowledged writes are shown: {live:?}"
    );
    assert!(
        live.is_subset(&recovered),
        "everything the live server showed survives: {live:?} vs {recovered:?}"
    );
    let explained: BTreeSet<String> = live.union(&unknown).cloned().collect();
    assert!(
        recovered.is_subset(&explained),
        "recovery shows only what was shown or answered outcome_unknown: {recovered:?}"
    );
    assert!(
        recovered.is_disjoint(&not_stored),
        "writes answered storage_unavailable are not stored: {not_stored:?}"
    );
    println!(
        "fsync failing: {} outcome_unknown, {} storage_unavailable; recovered {} of the unknown",
        unknown.len(),
        not_stored.len(),
        recovered.intersection(&unknown).count()
    );
}
