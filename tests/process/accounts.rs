//! Users and access with the real binary: protected mode at start, an account made by
//! `todo user add` beside a running server, the command line's login and tokens, secrets kept
//! out of the log, and HTTPS with a certificate of the server's own.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::{Server, client};

/// Runs `todo ARGS` with `stdin` as its input and the credentials kept under `config`.
fn todo(args: &[&str], stdin: &str, config: &Path) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_todo"))
        .args(args)
        .env("XDG_CONFIG_HOME", config)
        .env_remove("TODO_TOKEN")
        .env_remove("TODO_SERVER")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the todo binary runs");
    let mut input = child.stdin.take().expect("stdin is piped");
    input
        .write_all(stdin.as_bytes())
        .expect("stdin takes the input");
    drop(input);
    child.wait_with_output().expect("todo exits")
}

/// `todo ARGS`, which must succeed; its stdout.
fn ok(args: &[&str], stdin: &str, config: &Path) -> String {
    let output = todo(args, stdin, config);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "todo {args:?}: {stderr}");
    String::from_utf8(output.stdout).expect("UTF-8")
}

fn add_user(data_dir: &Path, name: &str, password: &str) {
    let data_dir = data_dir.to_str().unwrap();
    let args = [
        "user",
        "add",
        name,
        "--password-stdin",
        "--data-dir",
        data_dir,
    ];
    ok(&args, &format!("{password}\n"), data_dir.as_ref());
}

/// Starts `todo serve` with its log (at debug level) going to `log`; returns the process and
/// its URL.
fn serve_logging_to(data_dir: &Path, log: &Path, extra: &[&str]) -> (Child, String) {
    let log = std::fs::File::create(log).expect("the log file");
    let mut child = Command::new(env!("CARGO_BIN_EXE_todo"))
        .args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--log",
            "debug",
            "--data-dir",
        ])
        .arg(data_dir)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("the server starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .expect("the server prints its address");
    let url = line
        .trim()
        .strip_prefix("todo listening on ")
        .expect("an address")
        .to_owned();
    (child, url)
}

#[test]
fn without_accounts_a_network_address_is_refused_unless_told_insecure_open() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let data_arg = data_dir.to_str().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_todo"))
        .args(["serve", "--addr", "0.0.0.0:0", "--data-dir", data_arg])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("refusing to serve"), "{stderr}");
    assert!(stderr.contains("todo user add"), "{stderr}");
    assert!(stderr.contains("--insecure-open"), "{stderr}");

    // Bound only: nothing is sent to the non-loopback address.
    let open = Server::start_at(&data_dir, "0.0.0.0:0", &["--insecure-open"]);
    assert!(open.url.starts_with("http://0.0.0.0:"), "{}", open.url);
    drop(open);
    add_user(&data_dir, "alice", "alice-password");
    let protected = Server::start_at(&data_dir, "0.0.0.0:0", &[]);
    assert!(
        protected.url.starts_with("http://0.0.0.0:"),
        "{}",
        protected.url
    );
}

#[test]
fn account_commands_exit_as_the_same_failure_over_http_would() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let data_arg = data_dir.to_str().unwrap();
    add_user(&data_dir, "alice", "alice-password");
    let again = [
        "user",
        "add",
        "alice",
        "--password-stdin",
        "--data-dir",
        data_arg,
    ];
    let cases: [(&[&str], i32, &str); 4] = [
        (&again, 6, "already exists"),
        (
            &["user", "rm", "nobody", "--yes", "--data-dir", data_arg],
            3,
            "no user nobody",
        ),
        (
            &["user", "rm", "alice", "--data-dir", data_arg],
            4,
            "not removed",
        ),
        (
            &[
                "user",
                "add",
                "bоb",
                "--password-stdin",
                "--data-dir",
                data_arg,
            ],
            4,
            "mixes",
        ),
    ];
    for (args, code, fragment) in cases {
        let output = todo(args, "other-password\n", dir.path());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(code), "todo {args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains(fragment), "todo {args:?}: {stderr}");
    }
    let users = ok(&["user", "list", "--data-dir", data_arg], "", dir.path());
    assert_eq!(users.lines().count(), 1, "only alice: {users}");
}

#[tokio::test]
async fn an_account_made_beside_a_running_server_protects_it_and_secrets_stay_out_of_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let (data_dir, config, log) = (
        dir.path().join("data"),
        dir.path().join("config"),
        dir.path().join("log"),
    );
    let (mut server, url) = serve_logging_to(&data_dir, &log, &[]);
    let http = client();
    let lists = format!("{url}/lists");
    assert_eq!(
        http.get(&lists).send().await.unwrap().status(),
        200,
        "open while no account exists"
    );
    let entry = serde_json::json!({"date": "2026-12-03", "title": "made before accounts"});
    let made = http
        .post(format!("{url}/lists/work/entries"))
        .json(&entry)
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), 201);

    // The server holds the data directory's lock; `todo user add` works beside it.
    let password = "correct horse battery";
    add_user(&data_dir, "alice", password);
    let started = Instant::now();
    while http.get(&lists).send().await.unwrap().status() != 401 {
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "still open after 2 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "protected {:?} after the account was made",
        started.elapsed()
    );

    let wrong = serde_json::json!({"user": "alice", "password": "wrong-password-123"});
    let refused = http
        .post(format!("{url}/auth/login"))
        .json(&wrong)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let server_arg = ["--server", url.as_str()];
    let login = ok(
        &[&["login", "alice", "--password-stdin"][..], &server_arg].concat(),
        &format!("{password}\n"),
        &config,
    );
    assert!(login.contains("logged in"), "{login}");
    let credentials = std::fs::read_to_string(config.join("todo/credentials")).unwrap();
    let mode = std::fs::metadata(config.join("todo/credentials")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
        0o600
    );
    let session: serde_json::Value = serde_json::from_str(&credentials).unwrap();
    let session = session[&url]
        .as_str()
        .expect("a token for this server")
        .to_owned();

    // The first account took over the list made before it, and the saved session works.
    let entries = ok(
        &[&["entries", "work"][..], &server_arg].concat(),
        "",
        &config,
    );
    assert!(entries.contains("made before accounts"), "{entries}");
    let token = ok(
        &[&["token", "create", "ci"][..], &server_arg].concat(),
        "",
        &config,
    );
    let token = token.trim().to_owned();
    assert!(token.starts_with("todo_"), "{token}");
    let with_token = http.get(&lists).bearer_auth(&token).send().await.unwrap();
    assert_eq!(with_token.status(), 200);
    let link = ok(
        &[&["link", "create", "work"][..], &server_arg].concat(),
        "",
        &config,
    );
    let link = link.trim().to_owned();
    let secret = link.rsplit('/').next().unwrap().to_owned();
    let links = ok(
        &[&["link", "list", "work"][..], &server_arg].concat(),
        "",
        &config,
    );
    let rows: Vec<&str> = links.lines().collect();
    assert_eq!(rows.len(), 2, "a header and the link: {links}");
    assert!(
        rows[0].contains("ROLE") && rows[1].contains("read"),
        "{links}"
    );
    let members = todo(
        &[&["members", "work"][..], &server_arg].concat(),
        "",
        &config,
    );
    assert!(members.status.success() && members.stdout.is_empty());
    let said = String::from_utf8_lossy(&members.stderr);
    assert_eq!(said, "work: shared with nobody\n");
    let by_link = http.get(format!("{link}/todos")).send().await.unwrap();
    assert_eq!(by_link.status(), 200);
    let logout = ok(&[&["logout"][..], &server_arg].concat(), "", &config);
    assert!(logout.contains("logged out"), "{logout}");
    let after = http.get(&lists).bearer_auth(&session).send().await.unwrap();
    assert_eq!(after.status(), 401, "the session ended on the server");

    server.kill().unwrap();
    server.wait().unwrap();
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(log.contains("failed login"), "the log was captured: {log}");
    // The access log names routes by their template, never by the path that holds a secret.
    assert!(
        log.contains(r#"route="/s/{secret}/todos" status=200"#),
        "{log}"
    );
    assert!(log.contains(r#"route="/auth/login" status=401"#), "{log}");
    for secret in [password, "wrong-password-123", &session, &token, &secret] {
        assert!(!log.contains(secret), "the log shows a secret {secret:?}");
    }
}

/// A self-signed certificate for `localhost` and 127.0.0.1, made by openssl: `(cert, key)`.
/// It says it is no CA: rustls refuses a CA certificate as a server's own.
fn self_signed(dir: &Path) -> (String, String) {
    let cert = dir.join("cert.pem").to_str().unwrap().to_owned();
    let key = dir.join("key.pem").to_str().unwrap().to_owned();
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .args(["-keyout", &key, "-out", &cert])
        .stderr(Stdio::null())
        .status()
        .expect("openssl runs (.ci/run installs it)");
    assert!(status.success());
    (cert, key)
}

#[tokio::test]
async fn https_serves_the_api_and_the_command_line_trusts_a_given_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path());
    let data_dir = dir.path().join("data");
    let config = dir.path().join("config");
    add_user(&data_dir, "alice", "alice-password");
    let server = Server::start(&data_dir, &["--tls-cert", &cert, "--tls-key", &key]);
    assert!(
        server.url.starts_with("https://127.0.0.1:"),
        "{}",
        server.url
    );
    let common = ["--server", server.url.as_str(), "--ca-cert", cert.as_str()];

    let untrusted = todo(&["lists", "--server", &server.url], "", &config);
    assert_eq!(untrusted.status.code(), Some(5), "unavailable");
    let stderr = String::from_utf8_lossy(&untrusted.stderr);
    assert!(
        stderr.starts_with("error: cannot reach the server"),
        "{stderr}"
    );

    ok(
        &[&["login", "alice", "--password-stdin"][..], &common].concat(),
        "alice-password\n",
        &config,
    );
    ok(
        &[&["add", "work", "2026-12-03", "over TLS"][..], &common].concat(),
        "",
        &config,
    );
    // The client flags may come before the subcommand as well.
    let entries = ok(&[&common[..], &["entries", "work"]].concat(), "", &config);
    assert!(entries.contains("over TLS"), "{entries}");

    let pem = std::fs::read(&cert).unwrap();
    let https = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    let body = serde_json::json!({"user": "alice", "password": "alice-password"});
    let login = https
        .post(format!("{}/auth/login", server.url))
        .json(&body)
        .send()
        .await
        .unwrap();
    let cookie = login.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("; Secure"), "{cookie}");
    let token: serde_json::Value = login.json().await.unwrap();
    let todos = https.get(format!("{}/lists/work/todos", server.url));
    let todos: serde_json::Value = todos
        .bearer_auth(token["token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let todo_url = todos[0]["url"].as_str().unwrap();
    assert!(todo_url.starts_with("https://"), "{todo_url}");

    // Plain HTTP to the TLS port gets no answer.
    let plain = client()
        .get(server.url.replace("https://", "http://") + "/healthz")
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP was answered: {plain:?}");
}

#[test]
fn unusable_tls_files_are_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let missing = missing.to_str().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let empty = empty.to_str().unwrap();
    let data_dir = dir.path().join("data");
    for (cert, key, expected) in [
        (missing, missing, "cannot read"),
        (empty, empty, "holds no PEM certificate"),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_todo"))
            .args([
                "serve",
                "--addr",
                "127.0.0.1:0",
                "--tls-cert",
                cert,
                "--tls-key",
                key,
                "--data-dir",
            ])
            .arg(&data_dir)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(expected), "{stderr}");
    }
}

#[tokio::test]
async fn over_tls_a_connection_over_the_cap_is_answered_503_after_the_handshake() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path());
    let server = Server::start(
        &dir.path().join("data"),
        &[
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--max-connections",
            "1",
        ],
    );
    // One client holds the only place, sending nothing, not even a handshake.
    let addr = server.url.trim_start_matches("https://").to_owned();
    let _held = std::net::TcpStream::connect(&addr).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let pem = std::fs::read(&cert).unwrap();
    let https = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    let refused = https
        .get(format!("{}/healthz", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 503);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_many_connections", "{body}");
}
