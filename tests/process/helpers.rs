//! Starting, signalling and inspecting a real `todo serve` process.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A running `todo serve` on a free loopback port.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

impl Server {
    /// Starts the binary on `data_dir` with extra flags and waits until it listens.
    pub fn start(data_dir: &Path, extra_args: &[&str]) -> Server {
        let (child, url) = spawn_serve(data_dir, "warn", extra_args);
        Server { child, url }
    }

    /// Starts the binary on `data_dir` listening on `addr` (such as `0.0.0.0:0`).
    pub fn start_at(data_dir: &Path, addr: &str, extra_args: &[&str]) -> Server {
        let command = Command::new(env!("CARGO_BIN_EXE_todo"));
        let (child, url) = spawn_command(command, data_dir, "warn", addr, extra_args);
        Server { child, url }
    }

    /// Starts the binary through `wrapper` (a program that runs its arguments, such as
    /// `fiu-run -x`), which must exec the server so that the child's id is the server's.
    pub fn start_under(wrapper: &[&str], data_dir: &Path) -> Server {
        let mut command = Command::new(wrapper[0]);
        command.args(&wrapper[1..]).arg(env!("CARGO_BIN_EXE_todo"));
        let (child, url) = spawn_command(command, data_dir, "warn", "127.0.0.1:0", &[]);
        Server { child, url }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL is delivered");
        self.child.wait().expect("the killed server is reaped");
    }

    /// SIGTERM, then waits for the exit; returns its exit code.
    pub fn terminate(mut self) -> Option<i32> {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        assert!(status.expect("kill runs").success());
        self.child.wait().expect("the server exits").code()
    }

    /// Sends the signal named `name` (`INT`, `HUP`, ...) without waiting.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args(["-s", name, &self.pid().to_string()])
            .status();
        assert!(status.expect("kill runs").success());
    }

    /// The exit code if the server has exited within `timeout`, polling; `None` if it still runs.
    pub fn exit_within(&mut self, timeout: std::time::Duration) -> Option<Option<i32>> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("the server can be waited for") {
                return Some(status.code());
            }
            if std::time::Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// Peak resident memory of the server in bytes (VmHWM).
    pub fn peak_rss_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("/proc is readable");
        let kib: u64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM is in /proc/PID/status");
        kib * 1024
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `todo serve` on a free loopback port with `data_dir`, a log level and extra flags,
/// and returns the process and its URL once it listens (read from its first line of output).
pub fn spawn_serve(data_dir: &Path, log: &str, extra_args: &[&str]) -> (Child, String) {
    spawn_command(
        Command::new(env!("CARGO_BIN_EXE_todo")),
        data_dir,
        log,
        "127.0.0.1:0",
        extra_args,
    )
}

fn spawn_command(
    mut command: Command,
    data_dir: &Path,
    log: &str,
    addr: &str,
    extra_args: &[&str],
) -> (Child, String) {
    let mut child = command
        .args(["serve", "--addr", addr, "--log", log, "--data-dir"])
        .arg(data_dir)
        .args(extra_args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the todo binary starts");
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("the server prints its address");
    let url = line
        .trim()
        .strip_prefix("todo listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    (child, url)
}

/// An HTTP client with a short timeout, so a dead server shows up as an error quickly.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .expect("the client builds")
}

/// `GET url` answered with a JSON body, read as JSON.
pub async fn get_json(url: &str) -> serde_json::Value {
    let answer = client().get(url).send().await.expect("the server answers");
    answer.json().await.expect("a JSON body")
}

/// Every entry of every list in the data directory, read straight from SQLite:
/// `(list, id, date, title, done)` in order.
pub fn stored_rows(data_dir: &Path) -> Vec<(String, i64, String, String, bool)> {
    let path = data_dir.join("todo.sqlite3");
    if !path.exists() {
        return Vec::new();
    }
    let connection = rusqlite::Connection::open(path).expect("the database opens");
    let mut statement = connection
        .prepare("SELECT list, id, date, title, done FROM entries ORDER BY list, id")
        .expect("the entries table exists");
    statement
        .query_map([], |row| {
            Ok((
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
            ))
        })
        .expect("the query runs")
        .map(|row| row.expect("rows read"))
        .collect()
}

/// A small deterministic random number generator (xorshift64*), so runs repeat from a seed.
pub struct Rng(u64);

impl Rng {
    /// A generator from a non-zero seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    /// A number in `0..bound`.
    pub fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % bound
    }
}

/// Makes `name` on the storage in `data_dir` (the first one is an admin).
pub fn add_user(data_dir: &Path, name: &str) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_todo"))
        .args(["user", "add", name, "--password-stdin", "--data-dir"])
        .arg(data_dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("todo user add runs");
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "{name}-password").unwrap();
    drop(stdin);
    assert!(child.wait().unwrap().success(), "todo user add {name}");
}

/// A session token of `user` on the server at `url`.
pub async fn login(url: &str, user: &str) -> String {
    let body = serde_json::json!({"user": user, "password": format!("{user}-password")});
    let answer = client()
        .post(format!("{url}/auth/login"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let answer: serde_json::Value = answer.json().await.unwrap();
    answer["token"].as_str().expect("logged in").to_owned()
}
