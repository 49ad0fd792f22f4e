//! A throwaway PostgreSQL cluster for tests: `initdb` in a temporary directory, a server on a
//! free loopback port, and everything removed on drop. Included from each test binary with
//! `#[path = "../support/postgres.rs"] mod postgres;`.

// Each test binary uses a different part of the harness.
#![allow(dead_code)]

use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use tempfile::TempDir;

/// Where Debian's packages put the server binaries, one directory per major version.
const POSTGRESQL_LIB: &str = "/usr/lib/postgresql";

/// The superuser `initdb` creates; with `-A trust` it needs no password on loopback.
const SUPERUSER: &str = "postgres";

/// How often `start` picks another port when the one it chose was taken meanwhile.
const START_ATTEMPTS: u32 = 5;

/// A running PostgreSQL server that only this test uses. Dropping it stops the server and
/// removes its directory.
pub struct PgCluster {
    bin: PathBuf,
    /// Holds the data directory, the log and the Unix socket.
    dir: TempDir,
    port: u16,
    /// `initdb` and `postgres` refuse to run as root; when the tests are root, they run as the
    /// `postgres` user instead.
    as_postgres_user: bool,
}

impl PgCluster {
    /// Creates a cluster in a fresh temporary directory and starts it on a free port of
    /// 127.0.0.1.
    ///
    /// # Panics
    ///
    /// If no PostgreSQL server binaries are installed, or the cluster does not start.
    pub fn start() -> PgCluster {
        let bin = server_binaries();
        let dir = tempfile::Builder::new()
            .prefix("todo-pg-")
            .tempdir()
            .expect("a temporary directory");
        let as_postgres_user = is_root();
        if as_postgres_user {
            run_checked(Command::new("chown").arg(SUPERUSER).arg(dir.path()));
        }
        let mut cluster = PgCluster {
            bin,
            dir,
            port: 0,
            as_postgres_user,
        };
        let data = cluster.data_dir();
        let mut initdb = cluster.command("initdb");
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", SUPERUSER, "--no-sync"]);
        run_checked(&mut initdb);
        for attempt in 1..=START_ATTEMPTS {
            cluster.port = free_port();
            match cluster.pg_ctl_start() {
                Ok(()) => return cluster,
                // Another process may have taken the port between our probe and the start.
                Err(_) if attempt < START_ATTEMPTS => continue,
                Err(message) => panic!("PostgreSQL does not start: {message}"),
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    /// The URL of database `db` on this cluster, as the superuser.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{db}", self.port)
    }

    /// Creates an empty database called `name`.
    pub async fn create_database(&self, name: &str) {
        create_database_at(&self.url("postgres"), name).await;
    }

    /// Stops the server (`pg_ctl -m fast`: clients are disconnected at once), keeping its data.
    pub fn stop(&self) {
        self.pg_ctl_stop("fast");
    }

    /// Starts the stopped server again, on the same data directory and port.
    pub fn start_again(&self) {
        if let Err(message) = self.pg_ctl_start() {
            panic!(
                "PostgreSQL does not start again on port {}: {message}",
                self.port
            );
        }
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn pg_ctl_start(&self) -> Result<(), String> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.path().display()
        );
        let mut pg_ctl = self.command("pg_ctl");
        pg_ctl
            .arg("-D")
            .arg(self.data_dir())
            .arg("-o")
            .arg(options)
            .arg("-l")
            .arg(self.dir.path().join("log"))
            .args(["-w", "start"]);
        let output = pg_ctl.output().expect("pg_ctl runs");
        match output.status.success() {
            true => Ok(()),
            false => Err(format!("{}\nlog:\n{}", describe(&output), self.log())),
        }
    }

    fn pg_ctl_stop(&self, mode: &str) {
        let mut pg_ctl = self.command("pg_ctl");
        pg_ctl
            .arg("-D")
            .arg(self.data_dir())
            .args(["-m", mode, "-w", "stop"]);
        run_checked(&mut pg_ctl);
    }

    /// The server's log so far, for failure messages.
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    /// A command running one of the server binaries, as the `postgres` user when needed.
    fn command(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        let mut command = match self.as_postgres_user {
            true => {
                let mut runuser = Command::new("runuser");
                runuser.args(["-u", SUPERUSER, "--"]).arg(program);
                runuser
            }
            false => Command::new(program),
        };
        // The `postgres` user may not be allowed into the test's working directory.
        command.current_dir(self.dir.path());
        command
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        // The server may already be stopped; either way the directory goes with `dir`.
        let mut pg_ctl = self.command("pg_ctl");
        pg_ctl
            .arg("-D")
            .arg(self.data_dir())
            .args(["-m", "immediate", "-w", "stop"]);
        let _ = pg_ctl.output();
    }
}

/// Creates an empty database `name` through the server at `admin_url`.
pub async fn create_database_at(admin_url: &str, name: &str) {
    let (client, connection) = tokio_postgres::connect(admin_url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|error| panic!("cannot connect to {admin_url}: {error}"));
    let connection = tokio::spawn(connection);
    client
        .batch_execute(&format!("CREATE DATABASE \"{name}\""))
        .await
        .unwrap_or_else(|error| panic!("cannot create database {name}: {error}"));
    drop(client);
    let _ = connection.await;
}

/// `url` with its database replaced by `db`.
pub fn with_database(url: &str, db: &str) -> String {
    let (without_query, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url, String::new()),
    };
    let authority_end = without_query
        .find("://")
        .map(|scheme| scheme + 3)
        .and_then(|start| without_query[start..].find('/').map(|slash| start + slash));
    let base = match authority_end {
        Some(slash) => &without_query[..slash],
        None => without_query,
    };
    format!("{base}/{db}{query}")
}

/// A database name no other test of this run, or of an earlier run, has used.
pub fn unique_database_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .subsec_nanos();
    format!(
        "test_{}_{nanos}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The `bin` directory of the newest PostgreSQL installed.
fn server_binaries() -> PathBuf {
    let newest = std::fs::read_dir(POSTGRESQL_LIB)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .max();
    match newest {
        Some((_, bin)) => bin,
        None => panic!(
            "no PostgreSQL server under {POSTGRESQL_LIB}/*/bin: install it with `apt-get install postgresql` (as .ci/run does)"
        ),
    }
}

fn is_root() -> bool {
    let output = Command::new("id").arg("-u").output().expect("`id -u` runs");
    String::from_utf8_lossy(&output.stdout).trim() == "0"
}

/// A loopback port nothing listens on right now.
fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("a free loopback port");
    listener.local_addr().expect("a bound address").port()
}

fn run_checked(command: &mut Command) {
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("cannot run {command:?}: {error}"));
    assert!(
        output.status.success(),
        "{command:?}: {}",
        describe(&output)
    );
}

fn describe(output: &Output) -> String {
    format!(
        "{}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}
