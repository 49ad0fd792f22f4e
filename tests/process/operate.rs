//! Operating the store with the real binary: `todo backup` while writers run, `todo restore`
//! refused beside a running server and then done, `todo check` finding damage, `todo ping`,
//! `/healthz` on damage found while serving, and `todo export`/`todo import` from SQLite to
//! PostgreSQL and back.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::helpers::{Server, add_user, client, get_json, login};

fn todo(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_todo"))
        .args(args)
        .env_remove("TODO_SERVER")
        .env_remove("TODO_DATA_DIR")
        .output()
        .expect("the todo binary runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The titles stored in a database file, read straight from SQLite.
fn titles_in(file: &Path) -> Vec<String> {
    let connection = rusqlite::Connection::open(file).expect("the file opens");
    let mut statement = connection.prepare("SELECT title FROM entries").unwrap();
    let titles = statement.query_map([], |row| row.get(0)).unwrap();
    titles.map(|title| title.unwrap()).collect()
}

#[tokio::test]
async fn a_backup_taken_under_writes_holds_every_write_acknowledged_before_it_and_restores() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let data_arg = data_dir.to_str().unwrap().to_owned();
    let server = Server::start(&data_dir, &[]);
    let http = client();
    let stop = Arc::new(AtomicBool::new(false));
    let acknowledged = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut writers = Vec::new();
    for writer in 0..4 {
        let (http, url, stop, acknowledged) = (
            http.clone(),
            server.url.clone(),
            stop.clone(),
            acknowledged.clone(),
        );
        writers.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let title = format!("w{writer}-{n}");
                let body = serde_json::json!({"date": "2026-12-03", "title": title});
                let url = format!("{url}/lists/list-{writer}/entries");
                if let Ok(response) = http.post(url).json(&body).send().await
                    && response.status() == 201
                {
                    acknowledged.lock().unwrap().push(title);
                }
                n += 1;
            }
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let before: Vec<String> = acknowledged.lock().unwrap().clone();
    let backup = dir.path().join("backup.sqlite3");
    let backup_arg = backup.to_str().unwrap().to_owned();
    let output = tokio::task::spawn_blocking({
        let (data_arg, backup_arg) = (data_arg.clone(), backup_arg.clone());
        move || todo(&["backup", "--data-dir", &data_arg, &backup_arg])
    })
    .await
    .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.await.unwrap();
    }
    let copied = titles_in(&backup);
    assert!(before.len() > 10, "the writers wrote: {}", before.len());
    for title in &before {
        assert!(
            copied.contains(title),
            "{title}, acknowledged before the backup, is missing"
        );
    }
    let total = acknowledged.lock().unwrap().len();
    println!(
        "backup under writes: {} acknowledged before, {} in the copy, {total} in all",
        before.len(),
        copied.len()
    );

    let refused = todo(&["restore", "--data-dir", &data_arg, &backup_arg]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("a todo server is running"),
        "{}",
        stderr(&refused)
    );
    drop(server);

    let restored = todo(&["restore", "--data-dir", &data_arg, &backup_arg]);
    assert!(restored.status.success(), "{}", stderr(&restored));
    let check = todo(&["check", "--data-dir", &data_arg]);
    assert!(check.status.success(), "{}", stderr(&check));
    let server = Server::start(&data_dir, &[]);
    let mut served = 0;
    for writer in 0..4 {
        let url = format!("{}/lists/list-{writer}/entries", server.url);
        let entries: serde_json::Value = http.get(url).send().await.unwrap().json().await.unwrap();
        served += entries.as_array().unwrap().len();
    }
    assert_eq!(
        served,
        copied.len(),
        "the restored server serves the backup"
    );
}

#[test]
fn check_reports_broken_invariants_and_damaged_pages_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let data_arg = data_dir.to_str().unwrap();
    let server = Server::start(&data_dir, &[]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        for n in 0..3 {
            let body = serde_json::json!({"date": "2026-12-03", "title": format!("entry {n}")});
            let url = format!("{}/lists/home/entries", server.url);
            assert_eq!(
                client()
                    .post(url)
                    .json(&body)
                    .send()
                    .await
                    .unwrap()
                    .status(),
                201
            );
        }
    });
    let ping = todo(&["ping", "--server", &server.url]);
    assert!(ping.status.success(), "{}", stderr(&ping));
    drop(server);
    let down = todo(&["ping", "--server", "http://127.0.0.1:9"]);
    assert_eq!(down.status.code(), Some(5), "unavailable");

    let check = todo(&["check", "--data-dir", data_arg]);
    assert!(check.status.success(), "{}", stderr(&check));
    assert!(String::from_utf8_lossy(&check.stdout).contains("ok, 1 lists, 3 entries"));

    let database = data_dir.join("todo.sqlite3");
    let connection = rusqlite::Connection::open(&database).unwrap();
    connection
        .execute("UPDATE lists SET next_id = 2", [])
        .unwrap();
    drop(connection);
    let check = todo(&["check", "--data-dir", data_arg]);
    assert_eq!(check.status.code(), Some(1));
    assert!(
        stderr(&check).contains("ids would be reused"),
        "{}",
        stderr(&check)
    );

    // Garbage over a page in the middle of the file.
    let bytes = std::fs::read(&database).unwrap();
    let mut damaged = bytes.clone();
    let page = 4096;
    let end = damaged.len().min(2 * page);
    damaged[page..end].fill(0xff);
    std::fs::write(&database, damaged).unwrap();
    let check = todo(&["check", "--data-dir", data_arg]);
    assert_eq!(check.status.code(), Some(1), "{}", stderr(&check));
    assert!(
        stderr(&check).contains("damaged") || stderr(&check).contains("malformed"),
        "{}",
        stderr(&check)
    );
    let nowhere = todo(&[
        "check",
        "--data-dir",
        dir.path().join("nowhere").to_str().unwrap(),
    ]);
    assert_eq!(nowhere.status.code(), Some(1));
    assert!(
        stderr(&nowhere).contains("holds no todo database"),
        "{}",
        stderr(&nowhere)
    );
}

#[test]
fn a_damaged_or_emptied_store_is_refused_at_start_with_its_path_and_what_to_run() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let data_arg = data_dir.to_str().unwrap();
    // A graceful stop, so the WAL is folded in and gone: the file alone is the store.
    assert_eq!(Server::start(&data_dir, &[]).terminate(), Some(0));
    let database = data_dir.join("todo.sqlite3");
    // Under `timeout`, so that a server that wrongly starts fails the test instead of
    // hanging it.
    let serve = || {
        Command::new("timeout")
            .args([
                "20",
                env!("CARGO_BIN_EXE_todo"),
                "serve",
                "--addr",
                "127.0.0.1:0",
            ])
            .args(["--data-dir", data_arg])
            .output()
            .unwrap()
    };

    // Garbage over the header.
    let mut bytes = std::fs::read(&database).unwrap();
    bytes[..100].fill(0x42);
    std::fs::write(&database, &bytes).unwrap();
    let refused = serve();
    assert_eq!(refused.status.code(), Some(1));
    let message = stderr(&refused);
    assert!(message.contains(database.to_str().unwrap()), "{message}");
    assert!(message.contains("todo check --data-dir"), "{message}");

    // Emptied after use.
    std::fs::write(&database, b"").unwrap();
    let refused = serve();
    assert_eq!(refused.status.code(), Some(1));
    let message = stderr(&refused);
    assert!(message.contains("it is empty"), "{message}");
    assert!(message.contains("todo restore --data-dir"), "{message}");
}

#[tokio::test]
async fn a_damaged_page_found_while_serving_turns_healthz_to_storage_damaged() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let server = Server::start(&data_dir, &[]);
    let http = client();
    let title = "x".repeat(900);
    for n in 0..400 {
        let body = serde_json::json!({"date": "2026-12-03", "title": format!("{n} {title}")});
        let url = format!("{}/lists/big/entries", server.url);
        assert_eq!(
            http.post(url).json(&body).send().await.unwrap().status(),
            201
        );
    }
    assert_eq!(server.terminate(), Some(0));

    // Garbage over pages in the middle of the entries, which the start-up check (the header
    // and the schema) does not read.
    let database = data_dir.join("todo.sqlite3");
    let mut bytes = std::fs::read(&database).unwrap();
    let middle = bytes.len() / 2 / 4096 * 4096;
    bytes[middle..middle + 3 * 4096].fill(0xff);
    std::fs::write(&database, &bytes).unwrap();

    let server = Server::start(&data_dir, &[]);
    let healthz = format!("{}/healthz", server.url);
    assert_eq!(
        http.get(&healthz).send().await.unwrap().status(),
        200,
        "not yet read"
    );
    let read = http
        .get(format!("{}/lists/big/entries", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 503);
    let health = http.get(&healthz).send().await.unwrap();
    assert_eq!(health.status(), 503);
    let body: serde_json::Value = health.json().await.unwrap();
    assert_eq!(body["error"]["code"], "storage_damaged", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("todo check"), "{message}");
    assert!(
        !message.contains("malformed"),
        "no internal text: {message}"
    );
}

/// Every list of the server at `url` with its entries, as the API shows them.
async fn every_list(url: &str) -> Vec<(String, serde_json::Value)> {
    let lists = get_json(&format!("{url}/lists")).await;
    let mut every = Vec::new();
    for name in lists["lists"].as_array().unwrap() {
        let name = name.as_str().unwrap();
        let entries = get_json(&format!("{url}/lists/{name}/entries")).await;
        every.push((name.to_owned(), entries));
    }
    every
}

#[tokio::test]
async fn export_and_import_move_lists_from_sqlite_to_postgresql_and_back() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Server::start(&dir.path().join("sqlite"), &[]);
    let http = client();
    for (list, title) in [
        ("work", "Ship it, then; rest \\ 🎉"),
        ("work", "deleted before the export"),
        ("work", "done and ordered"),
        ("home", "Milk"),
    ] {
        let body = serde_json::json!({"date": "2026-12-03", "title": title});
        let url = format!("{}/lists/{list}/entries", sqlite.url);
        assert_eq!(
            http.post(url).json(&body).send().await.unwrap().status(),
            201
        );
    }
    let url = format!("{}/lists/work/entries", sqlite.url);
    assert_eq!(
        http.delete(format!("{url}/2"))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    let patch = serde_json::json!({"done": true, "order": -3});
    assert_eq!(
        http.patch(format!("{url}/3"))
            .json(&patch)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let original = every_list(&sqlite.url).await;

    let first = dir.path().join("from-sqlite.jsonl");
    let export = todo(&["export", "--server", &sqlite.url]);
    assert!(export.status.success(), "{}", stderr(&export));
    std::fs::write(&first, &export.stdout).unwrap();

    let cluster = crate::postgres::PgCluster::start();
    cluster.create_database("todo").await;
    let postgres = Server::start(
        &dir.path().join("pg"),
        &["--database-url", &cluster.url("todo")],
    );
    let first_arg = first.to_str().unwrap();
    let import = todo(&["import", first_arg, "--server", &postgres.url]);
    assert!(import.status.success(), "{}", stderr(&import));
    let report = String::from_utf8_lossy(&import.stdout);
    assert!(report.contains("work: imported 2 entries"), "{report}");
    assert_eq!(every_list(&postgres.url).await, original);

    let second = dir.path().join("from-postgresql.jsonl");
    let export = todo(&["export", "--server", &postgres.url]);
    assert!(export.status.success(), "{}", stderr(&export));
    std::fs::write(&second, &export.stdout).unwrap();
    let back = Server::start(&dir.path().join("sqlite-again"), &[]);
    let second_arg = second.to_str().unwrap();
    let import = todo(&["import", second_arg, "--server", &back.url]);
    assert!(import.status.success(), "{}", stderr(&import));
    assert_eq!(every_list(&back.url).await, original);
    let again = todo(&["import", second_arg, "--server", &back.url]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(
        String::from_utf8_lossy(&again.stdout),
        "home: unchanged\nwork: unchanged\n"
    );

    let body = serde_json::json!({"date": "2026-12-04", "title": "after the round trip"});
    let added: serde_json::Value = http
        .post(format!("{}/lists/work/entries", back.url))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(added["id"], 4, "the id counter came along: no id is reused");
}

/// `method path` with `token`'s rights; the status and the JSON answer (null when none).
async fn call(
    url: &str,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let mut request = client()
        .request(method, format!("{url}{path}"))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let answer = request.send().await.unwrap();
    let status = answer.status().as_u16();
    (
        status,
        answer.json().await.unwrap_or(serde_json::Value::Null),
    )
}

#[tokio::test]
async fn an_admins_export_moves_every_list_with_its_owner_to_another_server() {
    use reqwest::Method;
    let dir = tempfile::tempdir().unwrap();
    let (old_dir, new_dir) = (dir.path().join("old"), dir.path().join("new"));
    for data_dir in [&old_dir, &new_dir] {
        add_user(data_dir, "alice");
        add_user(data_dir, "bob");
    }
    let old = Server::start(&old_dir, &[]);
    let (alice, bob) = (login(&old.url, "alice").await, login(&old.url, "bob").await);
    let entry = |title: &str| Some(serde_json::json!({"date": "2026-12-03", "title": title}));
    for (token, list, title) in [
        (&alice, "work", "alice's"),
        (&bob, "work", "bob's"),
        (&bob, "gone", "soon emptied"),
    ] {
        let (status, _) = call(
            &old.url,
            token,
            Method::POST,
            &format!("/lists/{list}/entries"),
            entry(title),
        )
        .await;
        assert_eq!(status, 201);
    }
    assert_eq!(
        call(&old.url, &bob, Method::DELETE, "/lists/gone", None)
            .await
            .0,
        204
    );

    let refused = todo(&["export", "--all", "--server", &old.url, "--token", &bob]);
    assert!(!refused.status.success());
    assert!(stderr(&refused).contains("admin"), "{}", stderr(&refused));
    let export = todo(&["export", "--all", "--server", &old.url, "--token", &alice]);
    assert!(export.status.success(), "{}", stderr(&export));
    let text = String::from_utf8(export.stdout).unwrap();
    assert!(
        text.contains(r#"{"type":"list","owner":"bob","list":"gone","next_id":2"#),
        "{text}"
    );
    let file = dir.path().join("everything.jsonl");
    std::fs::write(&file, &text).unwrap();

    let new = Server::start(&new_dir, &[]);
    let alice_new = login(&new.url, "alice").await;
    let file_arg = file.to_str().unwrap();
    let import = todo(&[
        "import", file_arg, "--server", &new.url, "--token", &alice_new,
    ]);
    assert!(import.status.success(), "{}", stderr(&import));
    let report = String::from_utf8_lossy(&import.stdout);
    assert!(report.contains("bob:work: imported 1 entries"), "{report}");
    let bob_new = login(&new.url, "bob").await;
    for (token, owner) in [(&alice_new, "alice"), (&bob_new, "bob")] {
        let (_, entries) = call(&new.url, token, Method::GET, "/lists/work/entries", None).await;
        assert_eq!(
            entries[0]["title"],
            format!("{owner}'s"),
            "{owner}'s own list: {entries}"
        );
    }
    let (_, added) = call(
        &new.url,
        &bob_new,
        Method::POST,
        "/lists/gone/entries",
        entry("again"),
    )
    .await;
    assert_eq!(added["id"], 2, "the emptied list's counter came along");
}
