//! Scale-out with the real binary: two `todo serve` nodes on one throwaway PostgreSQL database,
//! each with its own data directory. Concurrent writers on both nodes, SIGKILL of one node under
//! load, reads on one node after writes on the other, and a database that goes away and returns.

use std::collections::{BTreeMap, HashSet};
use std::process::Child;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tempfile::TempDir;

use crate::helpers::{client, spawn_serve};
use crate::postgres::PgCluster;

const DATE: &str = "2018-12-19";

/// Writers per test; half of them start on each node.
const WRITERS: usize = 8;

/// Lists every writer shares, so both nodes keep changing the lists the other has loaded.
const LISTS: usize = 3;

/// How long the polling loops wait between two looks; they give up after `POLLS` looks.
const POLL_INTERVAL: Duration = Duration::from_millis(20);
const POLLS: usize = 3_000;

/// A `todo serve` process on PostgreSQL, with its own data directory (which holds only its
/// lock). Like `helpers::Server`, but it logs errors only: two nodes writing the same lists log
/// a warning for every write refused after a conflict, thousands per test.
struct Node {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    url: String,
    /// `None` once `kill` has handed it back.
    dir: Option<TempDir>,
}

impl Node {
    fn start(database_url: &str) -> Node {
        Node::start_in(
            tempfile::tempdir().expect("a temporary directory"),
            database_url,
        )
    }

    /// Starts a node over `dir` and waits until it listens.
    fn start_in(dir: TempDir, database_url: &str) -> Node {
        let (child, url) = spawn_serve(dir.path(), "error", &["--database-url", database_url]);
        Node {
            child,
            url,
            dir: Some(dir),
        }
    }

    fn url(&self) -> &str {
        &self.url
    }

    /// SIGKILL: no chance to finish anything. Returns the data directory, for a restart.
    fn kill(mut self) -> TempDir {
        self.child.kill().expect("SIGKILL is delivered");
        self.child.wait().expect("the killed node is reaped");
        self.dir.take().expect("only kill takes the directory")
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh cluster with one empty database, and that database's URL.
async fn database() -> (PgCluster, String) {
    let cluster = PgCluster::start();
    cluster.create_database("todo").await;
    let url = cluster.url("todo");
    (cluster, url)
}

fn shared_list(n: usize) -> String {
    format!("shared-{}", n % LISTS)
}

fn shared_lists() -> Vec<String> {
    (0..LISTS).map(shared_list).collect()
}

/// The two ways to add an entry.
#[derive(Debug, Clone, Copy)]
enum Endpoint {
    /// `POST /lists/{list}/entries`, answering 201 with the entry.
    Json,
    /// The book's `POST /add_entry`, answering 200 `OK`.
    Book,
}

/// Why a write's fate is unknown when the connection failed (a dead node).
const NO_ANSWER: &str = "no answer";

/// What a client learned about one write.
#[derive(Debug)]
enum Outcome {
    /// Committed; the JSON API also tells the id.
    Acknowledged(Option<u64>),
    /// A 409: the write met another node's change twice and was not applied.
    Conflict,
    /// A 503, or a connection that failed: the write may or may not be stored.
    Unknown(String),
}

/// Adds an entry titled `title` through `endpoint` of the node at `node`.
async fn add(
    client: &reqwest::Client,
    node: &str,
    endpoint: Endpoint,
    list: &str,
    title: &str,
) -> Outcome {
    let request = match endpoint {
        Endpoint::Json => client
            .post(format!("{node}/lists/{list}/entries"))
            .json(&json!({"date": DATE, "title": title})),
        Endpoint::Book => client.post(format!("{node}/add_entry")).query(&[
            ("list", list),
            ("date", DATE),
            ("title", title),
        ]),
    };
    let response = match request.send().await {
        Ok(response) => response,
        Err(error) if error.is_timeout() => return Outcome::Unknown("timed out".into()),
        Err(_) => return Outcome::Unknown(NO_ANSWER.into()),
    };
    let status = response.status().as_u16();
    let body = match response.text().await {
        Ok(body) => body,
        Err(_) => return Outcome::Unknown(format!("{status} with a cut body")),
    };
    match (endpoint, status) {
        (Endpoint::Json, 201) => {
            let entry: Value = serde_json::from_str(&body).expect("a created entry is JSON");
            Outcome::Acknowledged(Some(entry["id"].as_u64().expect("an id")))
        }
        (Endpoint::Book, 200) if body == "OK" => Outcome::Acknowledged(None),
        (_, 409) => Outcome::Conflict,
        (_, 503) => Outcome::Unknown(format!("503 {}", error_code(&body))),
        _ => panic!("{endpoint:?} write {title} on {node}: unexpected {status} {body}"),
    }
}

/// The `code` of a JSON error body, or the body itself.
fn error_code(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|value| value["error"]["code"].as_str().map(str::to_owned))
        .unwrap_or_else(|| body.to_owned())
}

/// One acknowledged write.
#[derive(Debug, Clone)]
struct Acknowledged {
    list: String,
    title: String,
    /// The id the JSON API returned; the book's interface returns none.
    id: Option<u64>,
    /// Which node acknowledged it.
    node: usize,
}

/// Everything the writers learned.
#[derive(Debug, Default)]
struct History {
    acknowledged: Vec<Acknowledged>,
    /// Writes answered 409, which must not be stored.
    conflicts: Vec<(String, String)>,
    /// Writes whose fate is unknown, with the reason.
    unknown: Vec<(String, String, String)>,
}

impl History {
    fn record(&mut self, list: &str, title: &str, node: usize, outcome: Outcome) {
        let (list, title) = (list.to_owned(), title.to_owned());
        match outcome {
            Outcome::Acknowledged(id) => self.acknowledged.push(Acknowledged {
                list,
                title,
                id,
                node,
            }),
            Outcome::Conflict => self.conflicts.push((list, title)),
            Outcome::Unknown(reason) => self.unknown.push((list, title, reason)),
        }
    }

    fn extend(&mut self, other: History) {
        self.acknowledged.extend(other.acknowledged);
        self.conflicts.extend(other.conflicts);
        self.unknown.extend(other.unknown);
    }

    fn acknowledged_by(&self, node: usize) -> usize {
        self.acknowledged
            .iter()
            .filter(|write| write.node == node)
            .count()
    }

    /// Prints the counts, so a run shows how often nodes conflicted.
    fn report(&self, label: &str) {
        let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
        for (_, _, reason) in &self.unknown {
            *reasons.entry(reason.as_str()).or_default() += 1;
        }
        println!(
            "{label}: {} acknowledged ({} by node 0, {} by node 1), {} answered 409, {} unknown {reasons:?}",
            self.acknowledged.len(),
            self.acknowledged_by(0),
            self.acknowledged_by(1),
            self.conflicts.len(),
            self.unknown.len(),
        );
    }
}

/// `GET url`, answered with a status and a body.
async fn get(client: &reqwest::Client, url: &str) -> (u16, String) {
    let response = client
        .get(url)
        .send()
        .await
        .unwrap_or_else(|error| panic!("GET {url}: {error}"));
    let status = response.status().as_u16();
    (status, response.text().await.expect("a body"))
}

/// Every entry of `list` as the node at `node` reads it: `(id, title)` in id order.
async fn entries(client: &reqwest::Client, node: &str, list: &str) -> Vec<(u64, String)> {
    let (status, body) = get(client, &format!("{node}/lists/{list}/entries")).await;
    assert_eq!(status, 200, "GET {list} on {node}: {body}");
    let entries: Vec<Value> = serde_json::from_str(&body).expect("entries are JSON");
    entries
        .iter()
        .map(|entry| {
            let id = entry["id"].as_u64().expect("an id");
            (id, entry["title"].as_str().expect("a title").to_owned())
        })
        .collect()
}

/// Every entry in the database, read with SQL rather than through a node.
async fn stored_in_postgres(database_url: &str) -> BTreeMap<String, Vec<(u64, String)>> {
    let (client, connection) = tokio_postgres::connect(database_url, tokio_postgres::NoTls)
        .await
        .expect("the database answers");
    tokio::spawn(connection);
    let rows = client
        .query("SELECT list, id, title FROM entries ORDER BY list, id", &[])
        .await
        .expect("the entries table exists");
    let mut stored: BTreeMap<String, Vec<(u64, String)>> = BTreeMap::new();
    for row in rows {
        let id: i64 = row.get(1);
        let id = u64::try_from(id).expect("ids are positive");
        stored.entry(row.get(0)).or_default().push((id, row.get(2)));
    }
    stored
}

/// Checks the database against the history, and that every node in `nodes` reads exactly what
/// the database holds.
async fn check(history: &History, nodes: &[&str], database_url: &str) {
    let stored = stored_in_postgres(database_url).await;
    let client = client();
    for list in shared_lists() {
        let in_database = stored.get(&list).cloned().unwrap_or_default();
        for node in nodes {
            assert_eq!(
                entries(&client, node, &list).await,
                in_database,
                "{node} reads {list} as the database holds it"
            );
        }
    }
    for (list, entries) in &stored {
        let ids: HashSet<u64> = entries.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids.len(), entries.len(), "ids are unique in {list}");
    }
    let count = |list: &str, title: &str| {
        stored.get(list).map_or(0, |entries| {
            entries.iter().filter(|(_, t)| t == title).count()
        })
    };
    for write in &history.acknowledged {
        let Acknowledged {
            list, title, id, ..
        } = write;
        assert_eq!(
            count(list, title),
            1,
            "acknowledged {title} is stored exactly once"
        );
        if let Some(id) = id {
            assert!(
                stored[list].contains(&(*id, title.clone())),
                "{title} kept its id {id}"
            );
        }
    }
    for (list, title) in &history.conflicts {
        assert_eq!(count(list, title), 0, "{title} answered 409 but is stored");
    }
    let sent: HashSet<&str> = history
        .acknowledged
        .iter()
        .map(|write| write.title.as_str())
        .chain(history.unknown.iter().map(|(_, title, _)| title.as_str()))
        .collect();
    for (list, entries) in &stored {
        for (_, title) in entries {
            assert!(
                sent.contains(title.as_str()),
                "{title} in {list} was never sent"
            );
            assert_eq!(count(list, title), 1, "{title} is stored at most once");
        }
    }
}

/// Polls `done` until it holds; panics with `what` if it never does.
async fn wait_until(what: &str, done: impl Fn() -> bool) {
    for _ in 0..POLLS {
        if done() {
            return;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    panic!("gave up waiting: {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_writing_the_same_lists_store_each_acknowledged_write_once() {
    const WRITES_PER_WRITER: usize = 150;
    let (_cluster, database_url) = database().await;
    let nodes = [Node::start(&database_url), Node::start(&database_url)];
    let urls: Vec<String> = nodes.iter().map(|node| node.url().to_owned()).collect();
    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let urls = urls.clone();
            tokio::spawn(async move {
                let client = client();
                let mut history = History::default();
                // Each writer moves between the nodes, the lists and both endpoints.
                for n in 0..WRITES_PER_WRITER {
                    let node = (writer + n) % 2;
                    let endpoint = match (n / 2) % 2 {
                        0 => Endpoint::Json,
                        _ => Endpoint::Book,
                    };
                    let list = shared_list(writer + n);
                    let title = format!("w{writer}-{n}");
                    let outcome = add(&client, &urls[node], endpoint, &list, &title).await;
                    history.record(&list, &title, node, outcome);
                }
                history
            })
        })
        .collect();
    let mut history = History::default();
    for writer in writers {
        history.extend(writer.await.expect("the writer finishes"));
    }
    history.report("two nodes, same lists");
    assert!(
        history.acknowledged_by(0) > 0 && history.acknowledged_by(1) > 0,
        "both nodes acknowledged writes"
    );
    check(&history, &[nodes[0].url(), nodes[1].url()], &database_url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_of_one_node_under_load_loses_nothing_and_the_other_keeps_serving() {
    const BEFORE_KILL: usize = 40;
    const AFTER_KILL: usize = 150;
    let (_cluster, database_url) = database().await;
    let victim = Node::start(&database_url);
    let survivor = Node::start(&database_url);
    let urls = [victim.url().to_owned(), survivor.url().to_owned()];
    let killed = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let acknowledged: Arc<[AtomicUsize; 2]> = Arc::default();
    let acknowledged_after_kill = Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let node = writer % 2;
            let url = urls[node].clone();
            let (killed, stop) = (killed.clone(), stop.clone());
            let acknowledged = acknowledged.clone();
            let acknowledged_after_kill = acknowledged_after_kill.clone();
            tokio::spawn(async move {
                let client = client();
                let mut history = History::default();
                for n in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let endpoint = match n % 2 {
                        0 => Endpoint::Json,
                        _ => Endpoint::Book,
                    };
                    let list = shared_list(writer + n);
                    let title = format!("w{writer}-{n}");
                    let was_killed = killed.load(Ordering::Relaxed);
                    let outcome = add(&client, &url, endpoint, &list, &title).await;
                    let is_acknowledged = matches!(outcome, Outcome::Acknowledged(_));
                    let is_dead =
                        matches!(&outcome, Outcome::Unknown(reason) if reason == NO_ANSWER);
                    history.record(&list, &title, node, outcome);
                    if is_acknowledged {
                        acknowledged[node].fetch_add(1, Ordering::Relaxed);
                        if was_killed {
                            acknowledged_after_kill.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    // Only the victim dies; a writer on the survivor that loses its connection
                    // fails the test when the survivor's reads are checked.
                    if is_dead {
                        break;
                    }
                }
                history
            })
        })
        .collect();
    wait_until("both nodes acknowledge writes", || {
        acknowledged
            .iter()
            .all(|n| n.load(Ordering::Relaxed) >= BEFORE_KILL)
    })
    .await;
    let victim_dir = victim.kill();
    killed.store(true, Ordering::Relaxed);
    wait_until("the surviving node keeps acknowledging writes", || {
        acknowledged_after_kill.load(Ordering::Relaxed) >= AFTER_KILL
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    let mut history = History::default();
    for writer in writers {
        history.extend(writer.await.expect("the writer finishes"));
    }
    history.report("SIGKILL of node 0");
    check(&history, &[survivor.url()], &database_url).await;

    // The killed node comes back on its own data directory and reads the same.
    let restarted = Node::start_in(victim_dir, &database_url);
    check(&history, &[survivor.url(), restarted.url()], &database_url).await;
}

/// Lists for the freshness tests: each list has its own actor on each node, so each list
/// checks the rule once more.
const FRESHNESS_LISTS: usize = 40;

/// Sends `request` and returns the status and the body.
async fn send(request: reqwest::RequestBuilder) -> (u16, String) {
    let response = request.send().await.expect("the node answers");
    let status = response.status().as_u16();
    (status, response.text().await.expect("a body"))
}

/// The titles of `list` as the node at `node` reads them.
async fn titles(client: &reqwest::Client, node: &str, list: &str) -> Vec<String> {
    let entries = entries(client, node, list).await;
    entries.into_iter().map(|(_, title)| title).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_acknowledged_by_one_node_is_seen_by_the_next_read_on_the_other() {
    let (_cluster, database_url) = database().await;
    let first = Node::start(&database_url);
    let second = Node::start(&database_url);
    let (a, b) = (first.url(), second.url());
    let client = client();
    for n in 0..FRESHNESS_LISTS {
        let list = format!("fresh-{n}");
        let path = format!("/lists/{list}/entries");
        // Both nodes load the list first, so each has an actor that the other's writes outdate.
        assert_eq!(entries(&client, a, &list).await, []);
        assert_eq!(entries(&client, b, &list).await, []);

        let body = json!({"date": DATE, "title": "from a"});
        let (status, _) = send(client.post(format!("{a}{path}")).json(&body)).await;
        assert_eq!(status, 201, "{list}");
        assert_eq!(entries(&client, b, &list).await, [(1, "from a".into())]);
        let (status, body) = get(&client, &format!("{b}{path}/1")).await;
        assert_eq!(status, 200, "{list}: {body}");
        assert_eq!(
            serde_json::from_str::<Value>(&body).unwrap()["title"],
            "from a"
        );

        let query = [("list", list.as_str()), ("date", DATE), ("title", "from b")];
        let (status, _) = send(client.post(format!("{b}/add_entry")).query(&query)).await;
        assert_eq!(status, 200, "{list}");
        let book_entries = format!("{a}/entries?list={list}&date={DATE}");
        assert_eq!(
            get(&client, &book_entries).await,
            (200, format!("{DATE} from a\n{DATE} from b")),
            "{list}"
        );

        // `b` has written since `a` last read, so `a`'s change meets a newer version first.
        let (status, body) = get(&client, &format!("{a}{path}")).await;
        assert_eq!(status, 200, "{list}: {body}");
        let query = [
            ("list", list.as_str()),
            ("date", DATE),
            ("title", "from b, 2"),
        ];
        let (status, _) = send(client.post(format!("{b}/add_entry")).query(&query)).await;
        assert_eq!(status, 200, "{list}");
        let patch = json!({"done": true});
        let (status, body) = send(client.patch(format!("{a}{path}/1")).json(&patch)).await;
        assert_eq!(status, 200, "PATCH on a stale node, {list}: {body}");
        let (_, body) = get(&client, &format!("{b}{path}/1")).await;
        assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["done"], true);

        let (status, _) = send(client.delete(format!("{b}{path}/1"))).await;
        assert_eq!(status, 204, "{list}");
        let (status, body) = get(&client, &format!("{a}{path}/1")).await;
        assert_eq!((status, error_code(&body)), (404, "entry_not_found".into()));
        assert_eq!(titles(&client, a, &list).await, ["from b", "from b, 2"]);

        let (status, _) = send(client.delete(format!("{a}/lists/{list}"))).await;
        assert_eq!(status, 204, "{list}");
        assert_eq!(entries(&client, b, &list).await, [], "{list}");
    }
    let (status, body) = get(&client, &format!("{b}/lists")).await;
    assert_eq!((status, body.as_str()), (200, r#"{"lists":[]}"#));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_sent_to_one_node_finds_an_entry_just_created_on_the_other() {
    let (_cluster, database_url) = database().await;
    let first = Node::start(&database_url);
    let second = Node::start(&database_url);
    let (a, b) = (first.url(), second.url());
    let client = client();
    for n in 0..FRESHNESS_LISTS {
        let list = format!("changed-{n}");
        let path = format!("/lists/{list}/entries");
        assert_eq!(entries(&client, a, &list).await, []);
        for title in ["patched", "deleted"] {
            let body = json!({"date": DATE, "title": title});
            let (status, _) = send(client.post(format!("{b}{path}")).json(&body)).await;
            assert_eq!(status, 201, "{list}");
        }
        // `a` has not read the list since `b` created both entries.
        let patch = json!({"done": true});
        let (status, body) = send(client.patch(format!("{a}{path}/1")).json(&patch)).await;
        assert_eq!(
            status, 200,
            "PATCH on a of {list}'s entry 1, created on b: {body}"
        );
        let (status, body) = send(client.delete(format!("{a}{path}/2"))).await;
        assert_eq!(
            status, 204,
            "DELETE on a of {list}'s entry 2, created on b: {body}"
        );
        for node in [a, b] {
            let (_, body) = get(&client, &format!("{node}{path}")).await;
            let entries: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(
                entries,
                json!([{"id": 1, "date": DATE, "title": "patched", "done": true}]),
                "{list} on {node}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_answers_503_while_its_database_is_down_and_recovers_on_its_own() {
    const ATTEMPTS: usize = 200;
    let (cluster, database_url) = database().await;
    let node = Node::start(&database_url);
    let url = node.url();
    let client = client();
    for title in ["before 1", "before 2"] {
        let outcome = add(&client, url, Endpoint::Json, "outage", title).await;
        assert!(matches!(outcome, Outcome::Acknowledged(_)), "{outcome:?}");
    }

    cluster.stop();
    let (status, body) = get(&client, &format!("{url}/healthz")).await;
    assert_eq!(status, 503, "healthz with the database down: {body}");
    let mut refused = Vec::new();
    for (n, (endpoint, list)) in [
        (Endpoint::Json, "outage"),
        (Endpoint::Book, "outage"),
        (Endpoint::Json, "new-during-outage"),
    ]
    .into_iter()
    .enumerate()
    {
        let title = format!("during {n}");
        match add(&client, url, endpoint, list, &title).await {
            Outcome::Unknown(reason) if reason == "503 storage_unavailable" => {
                refused.push((list, title))
            }
            outcome => panic!("{endpoint:?} write to {list} with the database down: {outcome:?}"),
        }
    }
    for path in [
        "/lists/outage/entries",
        "/lists",
        "/entries?list=outage&date=2018-12-19",
    ] {
        let (status, body) = get(&client, &format!("{url}{path}")).await;
        assert_eq!(status, 503, "GET {path} with the database down: {body}");
    }

    cluster.start_again();
    let mut healthy = false;
    for _ in 0..ATTEMPTS {
        if get(&client, &format!("{url}/healthz")).await.0 == 200 {
            healthy = true;
            break;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    assert!(healthy, "/healthz recovers once the database is back");
    let mut recovered = None;
    for attempt in 0..ATTEMPTS {
        let title = format!("after {attempt}");
        match add(&client, url, Endpoint::Json, "outage", &title).await {
            Outcome::Acknowledged(_) => {
                recovered = Some(title);
                break;
            }
            Outcome::Unknown(reason) if reason.starts_with("503") => {
                tokio::time::sleep(POLL_INTERVAL).await
            }
            outcome => panic!("write after the database returned: {outcome:?}"),
        }
    }
    let recovered = recovered.expect("writes succeed again once the database is back");
    let titles: Vec<String> = entries(&client, url, "outage")
        .await
        .into_iter()
        .map(|(_, title)| title)
        .collect();
    assert_eq!(titles, ["before 1", "before 2", recovered.as_str()]);
    for (list, title) in refused {
        let stored = entries(&client, url, list).await;
        assert!(
            stored.iter().all(|(_, stored)| *stored != title),
            "{title} was answered 503 storage_unavailable but is stored in {list}"
        );
    }
}

#[tokio::test]
async fn a_token_revoked_through_one_node_is_refused_by_the_other_within_a_second() {
    let (_cluster, database_url) = database().await;
    let user_add = std::process::Command::new(env!("CARGO_BIN_EXE_todo"))
        .args([
            "user",
            "add",
            "alice",
            "--password-stdin",
            "--database-url",
            &database_url,
        ])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(b"alice-password\n")?;
            child.wait()
        })
        .expect("todo user add runs");
    assert!(user_add.success());
    let first = Node::start(&database_url);
    let second = Node::start(&database_url);
    let client = client();
    let login = json!({"user": "alice", "password": "alice-password"});
    let (status, body) = send(
        client
            .post(format!("{}/auth/login", first.url()))
            .json(&login),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let session: Value = serde_json::from_str(&body).unwrap();
    let session = session["token"].as_str().unwrap().to_owned();
    let made = client
        .post(format!("{}/tokens", first.url()))
        .bearer_auth(&session);
    let (status, body) = send(made.json(&json!({"name": "ci"}))).await;
    assert_eq!(status, 201, "{body}");
    let token: Value = serde_json::from_str(&body).unwrap();
    let secret = token["token"].as_str().unwrap().to_owned();

    let lists = format!("{}/lists", second.url());
    let (status, _) = send(client.get(&lists).bearer_auth(&secret)).await;
    assert_eq!(status, 200, "the other node accepts the new token");
    let revoke = client.delete(format!("{}/tokens/{}", first.url(), token["id"]));
    let (status, _) = send(revoke.bearer_auth(&session)).await;
    assert_eq!(status, 204);
    let revoked_at = std::time::Instant::now();
    loop {
        let (status, _) = send(client.get(&lists).bearer_auth(&secret)).await;
        if status == 401 {
            break;
        }
        assert!(
            revoked_at.elapsed() < Duration::from_secs(1),
            "still accepted after 1 s"
        );
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    println!(
        "refused by the other node {:?} after the revocation",
        revoked_at.elapsed()
    );
}

/// An event stream being read: events arrive as `(name, data)` in order.
struct EventStream {
    response: reqwest::Response,
    buffer: String,
}

impl EventStream {
    async fn open(url: &str) -> EventStream {
        let response = reqwest::Client::new()
            .get(url)
            .send()
            .await
            .expect("the node answers");
        assert_eq!(response.status(), 200, "GET {url}");
        EventStream {
            response,
            buffer: String::new(),
        }
    }

    /// The next event, skipping heartbeats; panics after 10 s without one.
    async fn next(&mut self) -> (String, Value) {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let field = |name: &str| {
                    block
                        .lines()
                        .find_map(|line| line.strip_prefix(name))
                        .map(str::to_owned)
                };
                if let (Some(event), Some(data)) = (field("event: "), field("data: ")) {
                    return (event, serde_json::from_str(&data).expect("JSON data"));
                }
                continue;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.response.chunk());
            let chunk = chunk.await.expect("an event within 10 s");
            let chunk = chunk.expect("the stream stays open").expect("not ended");
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// Reads events until the list (as the events rebuild it) holds an entry titled `title`;
    /// returns how long that took.
    async fn until_title(&mut self, title: &str) -> Duration {
        let started = std::time::Instant::now();
        loop {
            let (event, data) = self.next().await;
            let entries = match event.as_str() {
                "snapshot" => data.as_array().cloned().unwrap_or_default(),
                "added" | "updated" => vec![data],
                _ => Vec::new(),
            };
            if entries.iter().any(|entry| entry["title"] == title) {
                return started.elapsed();
            }
        }
    }
}

#[tokio::test]
async fn a_subscriber_on_one_node_sees_writes_made_through_the_other() {
    let (cluster, database_url) = database().await;
    let writer = Node::start(&database_url);
    let reader = Node::start(&database_url);
    let http = client();
    let add = |title: &str| {
        let body = json!({"date": DATE, "title": title});
        http.post(format!("{}/lists/live/entries", writer.url()))
            .json(&body)
            .send()
    };
    assert_eq!(add("first").await.unwrap().status(), 201);

    let mut events = EventStream::open(&format!("{}/lists/live/events", reader.url())).await;
    let (event, entries) = events.next().await;
    assert_eq!(
        (event.as_str(), entries[0]["title"].as_str()),
        ("snapshot", Some("first"))
    );
    for n in 0..5 {
        let title = format!("through the writer {n}");
        assert_eq!(add(&title).await.unwrap().status(), 201);
        let took = events.until_title(&title).await;
        println!("cross-node delivery {n}: {took:?}");
    }

    // Notifications sent while the reader's listening connection was down are lost; it
    // catches up when it reconnects.
    cluster.stop();
    cluster.start_again();
    let started = std::time::Instant::now();
    let mut status = 0;
    while status != 201 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the writer never recovered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        status = add("after the outage")
            .await
            .map_or(0, |answer| answer.status().as_u16());
    }
    let took = events.until_title("after the outage").await;
    println!("delivery after the database came back: {took:?}");
}

#[tokio::test]
async fn a_subscriber_who_comes_back_to_a_node_gets_what_other_nodes_wrote_meanwhile() {
    let (_cluster, database_url) = database().await;
    let writer = Node::start(&database_url);
    let reader = Node::start(&database_url);
    let http = client();
    let add = |title: &str| {
        let body = json!({"date": DATE, "title": title});
        http.post(format!("{}/lists/back/entries", writer.url()))
            .json(&body)
            .send()
    };
    assert_eq!(add("before").await.unwrap().status(), 201);
    let url = format!("{}/lists/back/events", reader.url());
    let mut events = EventStream::open(&url).await;
    events.until_title("before").await;
    drop(events);
    // No one follows the list on the reader now, so it has no reason to reload it.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(add("while away").await.unwrap().status(), 201);
    let mut events = EventStream::open(&url).await;
    events.until_title("while away").await;
}
