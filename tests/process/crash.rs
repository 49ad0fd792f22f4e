//! Jepsen-style crash test: concurrent writers over the JSON and the book's endpoints, SIGKILL at
//! a random moment, restart on the same data directory, and check every acknowledged write.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::helpers::{Rng, Server, client};

const ROUNDS: u64 = 10;
const WRITERS: usize = 8;
const LISTS: usize = 3;
const SEED: u64 = 0x7dd0_c0de;

/// What one writer learned: writes the server acknowledged, and writes whose fate is unknown
/// (a 5xx, a timeout, or a connection cut by the kill).
#[derive(Default)]
struct Outcomes {
    /// `(list, title, id if the API returned one)`.
    acknowledged: Vec<(String, String, Option<u64>)>,
    unknown: Vec<(String, String)>,
}

async fn writer(url: String, round: u64, writer: usize, stop: Arc<AtomicBool>) -> Outcomes {
    let client = client();
    let mut outcomes = Outcomes::default();
    let list = format!("crash-{}", writer % LISTS);
    for n in 0.. {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let title = format!("r{round}-w{writer}-{n}");
        let (acknowledged, id) = match n % 2 {
            0 => {
                let body = serde_json::json!({"date": "2018-12-19", "title": title});
                match client
                    .post(format!("{url}/lists/{list}/entries"))
                    .json(&body)
                    .send()
                    .await
                {
                    Ok(response) if response.status() == 201 => {
                        let entry: serde_json::Value = response.json().await.unwrap_or_default();
                        (true, entry["id"].as_u64())
                    }
                    _ => (false, None),
                }
            }
            _ => {
                let query = [
                    ("list", list.as_str()),
                    ("date", "2018-12-19"),
                    ("title", title.as_str()),
                ];
                match client
                    .post(format!("{url}/add_entry"))
                    .query(&query)
                    .send()
                    .await
                {
                    Ok(response) if response.status() == 200 => {
                        (response.text().await.is_ok_and(|body| body == "OK"), None)
                    }
                    _ => (false, None),
                }
            }
        };
        match acknowledged {
            true => outcomes.acknowledged.push((list.clone(), title, id)),
            false => {
                // The server is probably dead; whatever happened to this write is unknown.
                outcomes.unknown.push((list.clone(), title));
                break;
            }
        }
    }
    outcomes
}

/// Reads every list and checks the history so far.
async fn check(url: &str, history: &Outcomes) {
    let client = client();
    let mut stored: HashMap<String, Vec<(u64, String)>> = HashMap::new();
    for list in 0..LISTS {
        let list = format!("crash-{list}");
        let response = client
            .get(format!("{url}/lists/{list}/entries"))
            .send()
            .await
            .expect("the restarted server answers");
        assert_eq!(response.status(), 200);
        let entries: Vec<serde_json::Value> = response.json().await.expect("entries are JSON");
        let entries = entries
            .iter()
            .map(|entry| {
                (
                    entry["id"].as_u64().unwrap(),
                    entry["title"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        stored.insert(list, entries);
    }
    for (list, entries) in &stored {
        let ids: HashSet<u64> = entries.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids.len(), entries.len(), "ids are unique in {list}");
    }
    let count = |list: &str, title: &str| {
        stored[list]
            .iter()
            .filter(|(_, stored)| stored == title)
            .count()
    };
    for (list, title, id) in &history.acknowledged {
        assert_eq!(
            count(list, title),
            1,
            "acknowledged write {title} is stored exactly once"
        );
        if let Some(id) = id {
            assert!(
                stored[list].contains(&(*id, title.clone())),
                "{title} kept its id {id}"
            );
        }
    }
    let known: HashSet<&str> = history
        .acknowledged
        .iter()
        .map(|(_, title, _)| title.as_str())
        .chain(history.unknown.iter().map(|(_, title)| title.as_str()))
        .collect();
    for (list, entries) in &stored {
        for (_, title) in entries {
            assert!(
                known.contains(title.as_str()),
                "{title} in {list} was never sent"
            );
            assert!(count(list, title) <= 1, "{title} is stored at most once");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(SEED);
    let mut history = Outcomes::default();
    let mut n_acknowledged_per_round = Vec::new();
    for round in 0..ROUNDS {
        let server = Server::start(dir.path(), &[]);
        check(&server.url, &history).await;
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..WRITERS)
            .map(|n| tokio::spawn(writer(server.url.clone(), round, n, stop.clone())))
            .collect();
        tokio::time::sleep(Duration::from_millis(50 + rng.below(300))).await;
        server.kill();
        stop.store(true, Ordering::Relaxed);
        let before = history.acknowledged.len();
        for writer in writers {
            let outcomes = writer.await.unwrap();
            history.acknowledged.extend(outcomes.acknowledged);
            history.unknown.extend(outcomes.unknown);
        }
        n_acknowledged_per_round.push(history.acknowledged.len() - before);
    }
    let server = Server::start(dir.path(), &[]);
    check(&server.url, &history).await;
    println!(
        "acknowledged per round: {n_acknowledged_per_round:?}; unknown: {}",
        history.unknown.len()
    );
    assert!(
        n_acknowledged_per_round.iter().all(|n| *n > 0),
        "every round acknowledged writes before the kill"
    );
}
