//! The `todo` command's client subcommands, run as the built binary against an in-process
//! server: readable tables by default, `--json` for scripts, and one `error:` line on failure.

use std::process::{Command, Output};

use serde_json::{Value, json};

use crate::helpers::{HARNESS_TOKEN, TEST_ACCOUNTS, TestApp, spawn_app};

/// Runs `todo ARGS...` without blocking the runtime that serves it.
async fn todo(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|arg| arg.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_todo"));
        if std::env::var_os(TEST_ACCOUNTS).is_some() {
            command.env("TODO_TOKEN", HARNESS_TOKEN);
        }
        command
            .args(&args)
            .env_remove("TODO_SERVER")
            .env_remove("HTTP_PROXY")
            .env_remove("http_proxy")
            .env_remove("ALL_PROXY")
            .env_remove("all_proxy")
            .output()
            .expect("the todo binary runs")
    })
    .await
    .unwrap()
}

/// Runs a client subcommand against `app`, asserts it succeeded, and returns its stdout.
async fn ok(app: &TestApp, args: &[&str]) -> String {
    let mut full = vec![args[0], "--server", &app.address];
    full.extend_from_slice(&args[1..]);
    let output = todo(&full).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "todo {args:?} failed: {stderr}");
    assert_eq!(stderr, "", "todo {args:?} printed on stderr");
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

/// Asserts `output` is a failure with exit code `code` and one `error:` line on stderr;
/// returns it.
fn one_error_line(output: &Output, code: i32) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(code), "stderr: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "exactly one line: {stderr:?}");
    assert!(stderr.starts_with("error: "), "{stderr:?}");
    assert!(output.stdout.is_empty(), "nothing on stdout");
    stderr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_and_entries_print_aligned_tables() {
    let app = spawn_app().await;
    let out = ok(&app, &["add", "work", "2018-12-19", "Dentist"]).await;
    assert_eq!(
        out,
        "ID  DATE        DONE  TITLE\n 1  2018-12-19  no    Dentist\n"
    );
    ok(&app, &["add", "work", "2018-12-20", "Movies tonight"]).await;
    assert_eq!(app.titles("work").await, ["Dentist", "Movies tonight"]);

    let out = ok(&app, &["entries", "work"]).await;
    assert_eq!(
        out,
        "ID  DATE        DONE  TITLE\n 1  2018-12-19  no    Dentist\n 2  2018-12-20  no    Movies tonight\n"
    );
    let out = ok(&app, &["entries", "work", "--date", "2018-12-20"]).await;
    assert_eq!(
        out,
        "ID  DATE        DONE  TITLE\n 2  2018-12-20  no    Movies tonight\n"
    );
    let out = ok(
        &app,
        &[
            "entries",
            "work",
            "--from",
            "2018-12-01",
            "--to",
            "2018-12-19",
        ],
    )
    .await;
    assert_eq!(
        out,
        "ID  DATE        DONE  TITLE\n 1  2018-12-19  no    Dentist\n"
    );
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_output_is_machine_readable() {
    let app = spawn_app().await;
    let out = ok(&app, &["add", "--json", "my list", "2018-12-19", "Dentist"]).await;
    let added: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        added,
        json!({"id": 1, "date": "2018-12-19", "title": "Dentist", "done": false})
    );
    ok(&app, &["add", "my list", "2018-12-19", "Movies"]).await;

    let out = ok(&app, &["entries", "--json", "my list"]).await;
    let entries: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        entries,
        json!([
            {"id": 1, "date": "2018-12-19", "title": "Dentist", "done": false},
            {"id": 2, "date": "2018-12-19", "title": "Movies", "done": false},
        ])
    );
    let out = ok(
        &app,
        &["entries", "--json", "my list", "--date", "2018-01-01"],
    )
    .await;
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap(), json!([]));
    let out = ok(&app, &["lists", "--json"]).await;
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap(),
        json!(["my list"])
    );
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn done_edit_rm_and_lists_change_what_the_server_stores() {
    let app = spawn_app().await;
    ok(&app, &["add", "home", "2018-12-19", "Dentist"]).await;
    ok(&app, &["add", "home", "2018-12-19", "Movies"]).await;
    ok(&app, &["add", "away", "2018-12-19", "Trip"]).await;

    let out = ok(&app, &["done", "home", "1"]).await;
    assert_eq!(
        out,
        "ID  DATE        DONE  TITLE\n 1  2018-12-19  yes   Dentist\n"
    );
    assert_eq!(app.get_json("/lists/home/entries/1").await["done"], true);

    let out = ok(&app, &["edit", "home", "2", "--title", "Theatre"]).await;
    assert_eq!(
        out,
        "ID  DATE        DONE  TITLE\n 2  2018-12-19  no    Theatre\n"
    );
    ok(&app, &["edit", "home", "2", "--date", "2018-12-24"]).await;
    assert_eq!(
        app.get_json("/lists/home/entries/2").await,
        json!({"id": 2, "date": "2018-12-24", "title": "Theatre", "done": false})
    );

    assert_eq!(ok(&app, &["rm", "home", "1"]).await, "deleted 1\n");
    assert_eq!(app.titles("home").await, ["Theatre"]);
    assert_eq!(
        ok(&app, &["rm", "--json", "home", "2"]).await,
        "{\"deleted\":2}\n"
    );

    assert_eq!(ok(&app, &["lists"]).await, "away\n");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_is_one_error_line() {
    for args in [
        vec!["lists", "--server", "http://127.0.0.1:1"],
        vec![
            "add",
            "--server",
            "http://127.0.0.1:1",
            "l",
            "2018-12-19",
            "x",
        ],
    ] {
        let output = todo(&args).await;
        let stderr = one_error_line(&output, 5);
        assert!(stderr.contains("127.0.0.1:1"), "names the server: {stderr}");
    }
    // No retry makes a scheme other than HTTP(S) answer: a usage error, not "unavailable".
    let output = todo(&["lists", "--server", "ftp://127.0.0.1:1"]).await;
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("use http:// or https://"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_error_is_one_error_line_with_the_server_s_message() {
    let app = spawn_app().await;
    let server = app.address.as_str();
    let cases: [(&[&str], &str, i32); 8] = [
        (
            &["add", "--server", server, "l", "2018-13-01", "x"],
            "invalid date",
            4,
        ),
        (
            &["entries", "--server", server, "l", "--date", "2018-02-30"],
            "invalid date",
            4,
        ),
        (
            &[
                "entries",
                "--server",
                server,
                "l",
                "--from",
                "2018-12-20",
                "--to",
                "2018-12-19",
            ],
            "is after --to",
            4,
        ),
        (&["add", "--server", server, "l", "today", "  "], "blank", 4),
        (&["done", "--server", server, "l", "7"], "not found", 3),
        (&["rm", "--server", server, "l", "7"], "not found", 3),
        (&["show", "--server", server, "l", "7"], "not found", 3),
        (
            &["edit", "--server", server, "l", "1"],
            "nothing to change",
            4,
        ),
    ];
    for (args, fragment, code) in cases {
        let output = todo(args).await;
        let stderr = one_error_line(&output, code);
        assert!(stderr.contains(fragment), "todo {args:?}: {stderr}");
    }
    assert_eq!(app.get_json("/lists").await, json!({"lists": []}));
    app.shutdown().await;
}

/// `todo lists | head -0`: the reader goes away before the output is written.
#[tokio::test]
async fn a_closed_pipe_is_a_quiet_success() {
    let app = spawn_app().await;
    for n in 0..50 {
        app.add(&format!("list-{n}"), "2018-12-19", "x").await;
    }
    let server = app.address.clone();
    let token = app.token.clone().unwrap_or_default();
    let output = tokio::task::spawn_blocking(move || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_todo"))
            .args(["lists", "--server", &server])
            .env("TODO_TOKEN", token)
            .env_remove("HTTP_PROXY")
            .env_remove("http_proxy")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the todo binary runs");
        drop(child.stdout.take());
        child.wait_with_output().expect("todo exits")
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "exit {:?}: {stderr}",
        output.status
    );
    assert_eq!(stderr, "", "nothing on stderr");
    app.shutdown().await;
}

#[tokio::test]
async fn a_server_without_a_scheme_is_http() {
    let app = spawn_app().await;
    app.add("bob", "2018-12-19", "Dentist").await;
    let server = app.address.trim_start_matches("http://").to_owned();
    let output = todo(&["lists", "--server", &server]).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "bob\n");
    app.shutdown().await;
}

/// `todo watch --json LIST` prints the snapshot, then each change as it is committed.
#[tokio::test]
async fn watch_prints_each_committed_change_as_it_happens() {
    use std::io::{BufRead, BufReader};
    let app = spawn_app().await;
    app.add("watched", "2026-12-03", "already there").await;
    let mut command = Command::new(env!("CARGO_BIN_EXE_todo"));
    if std::env::var_os(TEST_ACCOUNTS).is_some() {
        command.env("TODO_TOKEN", HARNESS_TOKEN);
    }
    let mut child = command
        .args(["watch", "--json", "watched", "--server", &app.address])
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("todo watch starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next = move || {
        let line = lines.next().expect("a line").expect("readable");
        serde_json::from_str::<Value>(&line).expect("JSON")
    };
    let snapshot = tokio::task::spawn_blocking(move || (next(), next))
        .await
        .unwrap();
    let (snapshot, next) = snapshot;
    assert_eq!(snapshot["event"], "snapshot");
    assert_eq!(snapshot["data"][0]["title"], "already there");
    app.add("watched", "2026-12-04", "just added").await;
    let added = tokio::task::spawn_blocking(next).await.unwrap();
    assert_eq!(added["event"], "added");
    assert_eq!(added["data"]["title"], "just added");
    assert_eq!(added["id"], snapshot["id"].as_u64().unwrap() + 1);
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relative_dates_undone_show_agenda_and_rm_list() {
    let app = spawn_app().await;
    let today = chrono::Local::now().date_naive();
    let day = |n: i64| {
        (today + chrono::Duration::days(n))
            .format("%Y-%m-%d")
            .to_string()
    };
    ok(&app, &["add", "home", "tomorrow", "Milk"]).await;
    ok(&app, &["add", "home", "-1w", "Late"]).await;
    ok(&app, &["add", "work", "today", "Ship"]).await;
    ok(&app, &["add", "work", "+30d", "Later"]).await;
    let shown: Value =
        serde_json::from_str(&ok(&app, &["show", "home", "1", "--json"]).await).unwrap();
    assert_eq!(shown["date"], day(1), "tomorrow: {shown}");
    ok(&app, &["done", "home", "2"]).await;
    let undone: Value =
        serde_json::from_str(&ok(&app, &["undone", "home", "2", "--json"]).await).unwrap();
    assert_eq!(undone["done"], false);
    ok(&app, &["done", "work", "1"]).await;

    let open: Value =
        serde_json::from_str(&ok(&app, &["entries", "home", "--open", "--json"]).await).unwrap();
    let dates: Vec<&str> = open
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["date"].as_str().unwrap())
        .collect();
    assert_eq!(dates, [day(-7), day(1)], "by date, then id: {open}");
    let from: Value =
        serde_json::from_str(&ok(&app, &["entries", "work", "--from", "tomorrow", "--json"]).await)
            .unwrap();
    assert_eq!(from.as_array().unwrap().len(), 1, "--from alone: {from}");

    let agenda = ok(&app, &["agenda", "--days", "7"]).await;
    let lines: Vec<&str> = agenda.lines().collect();
    assert_eq!(
        lines.len(),
        3,
        "header, the late one, milk; not the done one, not +30d:\n{agenda}"
    );
    assert!(
        lines[1].starts_with(&day(-7))
            && lines[1].contains("Late")
            && lines[1].ends_with("(overdue)"),
        "{agenda}"
    );
    assert!(
        lines[2].starts_with(&day(1)) && lines[2].contains("home") && lines[2].contains("Milk"),
        "{agenda}"
    );

    let mut args = vec!["rm-list", "--server", app.address.as_str(), "work"];
    let asked = todo(&args).await;
    one_error_line(&asked, 4);
    assert_eq!(
        app.titles("work").await.len(),
        2,
        "without a terminal or --yes nothing is deleted"
    );
    args.push("--yes");
    assert!(todo(&args).await.status.success());
    assert!(app.titles("work").await.is_empty());
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_errors_carry_the_server_s_code_and_an_empty_list_says_so_on_stderr() {
    let app = spawn_app().await;
    let server = app.address.as_str();
    let output = todo(&["done", "--server", server, "l", "7", "--json"]).await;
    assert_eq!(output.status.code(), Some(3));
    let error: Value = serde_json::from_slice(&output.stderr).expect("a JSON error");
    assert_eq!(error["error"]["code"], "entry_not_found", "{error}");
    let message = error["error"]["message"].as_str().unwrap_or_default();
    assert!(
        !message.contains("404"),
        "the server's message alone: {message}"
    );
    // A value the command refuses before sending it has the code the server would give (no
    // server answers at port 1: sent, it would be `unreachable`).
    for (args, code) in [
        (["add", "l", "2018-13-01", "x"], "invalid_date"),
        (["add", "bоb", "2018-12-19", "x"], "mixed_scripts"),
    ] {
        let nowhere = ["--json", "--server", "http://127.0.0.1:1"];
        let output = todo(&[&nowhere[..], &args[..]].concat()).await;
        assert_eq!(output.status.code(), Some(4));
        let error: Value = serde_json::from_slice(&output.stderr).expect("a JSON error");
        assert_eq!(error["error"]["code"], code, "{error}");
    }
    // The same flags before the subcommand, and for a nested one.
    let output = todo(&["--json", "--server", server, "show", "l", "7"]).await;
    assert_eq!(output.status.code(), Some(3));
    let error: Value = serde_json::from_slice(&output.stderr).expect("a JSON error");
    assert_eq!(error["error"]["code"], "entry_not_found", "{error}");
    let output = todo(&[
        "--json",
        "--server",
        server,
        "link",
        "revoke",
        "nosuchlist",
        "9",
    ])
    .await;
    assert!(!output.status.success(), "no such list, no such link");
    let error: Value = serde_json::from_slice(&output.stderr).expect("a JSON error");
    assert!(error["error"]["code"].is_string(), "{error}");
    let output = todo(&["entries", "--server", server, "empty"]).await;
    assert!(output.status.success());
    assert!(output.stdout.is_empty());
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "empty: no entries\n"
    );
    app.shutdown().await;
}
