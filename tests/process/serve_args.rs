//! `todo serve`'s address and data directory, as a user types them: a bare port, `:PORT` and a
//! host name listen; a taken port and a data directory that is a file fail with one clear line
//! each, and leave nothing behind; a `--config` file sets flags, below the environment and the
//! command line.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// A port that was free a moment ago.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Starts `todo serve --addr ADDR` and returns the address it says it listens on.
fn listening_address(addr: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_todo"));
    command
        .args(["serve", "--log", "warn", "--addr", addr, "--data-dir"])
        .arg(dir.path());
    first_line(command)
}

#[test]
fn a_bare_port_a_colon_port_and_a_host_name_listen() {
    for form in ["{port}", ":{port}", "localhost:{port}"] {
        let port = free_port();
        let addr = form.replace("{port}", &port.to_string());
        let expected = format!("todo listening on http://127.0.0.1:{port}");
        assert_eq!(listening_address(&addr), expected, "--addr {addr}");
    }
}

/// Runs `todo serve` expecting it to fail; returns its stderr.
fn failing_serve(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_todo"))
        .arg("serve")
        .args(args)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "todo serve {args:?}");
    String::from_utf8(output.stderr).unwrap()
}

#[test]
fn a_taken_port_is_one_line_and_creates_no_data_directory() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let parent = tempfile::tempdir().unwrap();
    let data_dir = parent.path().join("data");
    let data_dir_arg = data_dir.to_str().unwrap();
    let stderr = failing_serve(&["--addr", &addr, "--data-dir", data_dir_arg]);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert_eq!(
        stderr.matches("Address already in use").count(),
        1,
        "{stderr}"
    );
    assert!(!data_dir.exists(), "the data directory was not created");
}

#[test]
fn a_data_directory_that_is_a_file_says_so() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let stderr = failing_serve(&["--addr", &addr, "--data-dir", file.path().to_str().unwrap()]);
    assert!(stderr.contains("is not a directory"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

/// Starts `command` (a `todo serve`), reads the address it listens on, and stops it.
fn first_line(mut command: Command) -> String {
    let mut child = command.stdout(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    line.trim().to_owned()
}

#[test]
fn a_config_file_sets_flags_and_the_environment_and_flags_win() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("from-the-file");
    let (from_file, from_env, from_flag) = (free_port(), free_port(), free_port());
    let config = dir.path().join("todo.toml");
    let text = format!(
        "addr = \"127.0.0.1:{from_file}\"\ndata_dir = {:?}\nlog = \"warn\"\nmetrics-public = false\n",
        data_dir.to_str().unwrap()
    );
    std::fs::write(&config, text).unwrap();
    let serve = || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_todo"));
        command.args(["serve", "--config"]).arg(&config);
        command.env_remove("TODO_ADDR");
        command
    };

    let line = first_line(serve());
    assert_eq!(
        line,
        format!("todo listening on http://127.0.0.1:{from_file}")
    );
    assert!(
        data_dir.join("todo.sqlite3").exists(),
        "the file's data directory"
    );

    let mut with_env = serve();
    with_env.env("TODO_ADDR", format!("127.0.0.1:{from_env}"));
    assert_eq!(
        first_line(with_env),
        format!("todo listening on http://127.0.0.1:{from_env}")
    );

    let mut with_flag = serve();
    with_flag.env("TODO_ADDR", format!("127.0.0.1:{from_env}"));
    with_flag.args(["--addr", &format!("127.0.0.1:{from_flag}")]);
    assert_eq!(
        first_line(with_flag),
        format!("todo listening on http://127.0.0.1:{from_flag}")
    );

    for (text, says) in [
        ("max_inflight = 5", "unknown key \"max_inflight\""),
        (
            "max-in-flight = \"lots\"",
            "invalid value 'lots' for '--max-in-flight",
        ),
        ("insecure-open = \"yes\"", "insecure-open in"),
        ("addr = [1]", "must be a string, a number or true/false"),
    ] {
        std::fs::write(&config, text).unwrap();
        let output = serve().output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{text}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(says), "{text}: {stderr}");
    }
}
