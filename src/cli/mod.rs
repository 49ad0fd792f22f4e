//! The `todo` command: clap's `Cli`, its subcommands, and what each one does.
//!
//! `serve` turns flags (each also read from a `TODO_*` environment variable) into a `Config` and
//! runs the server; the client subcommands talk to a running server over HTTP; `bench` turns its
//! flags into a `BenchConfig` and runs the load generator.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, CommandFactory, Parser, Subcommand};
use serde_json::{Map, Value};
use tokio::signal::unix::{Signal, SignalKind, signal};

mod accounts;
mod argv;
mod config_file;
mod dates;
mod failure;
mod operate;
mod portable;

pub use accounts::{LinkCommand, StorageArgs, TokenCommand, UserCommand, connect, user};
pub use config_file::parse;
pub use operate::{backup, check, restore};

use crate::accounts::Role;
use crate::app::App;
use crate::bench::workload::Workload;
use crate::bench::{
    Api, BenchConfig, HttpConfig, InProcessConfig, LoadConfig, Scenario, Stop, Target,
};
use crate::client::{ClientError, EntriesFilter, ListRef, ServerEvent};
use crate::config::{Config, DatabaseConfig, ListsConfig, TlsConfig, WebConfig};
use crate::list::EntryId;
use crate::web::body::EntryBody;
pub use failure::{InvalidInput, USAGE, exit_code, to_json};

/// `todo --version`: the crate's version and the commit it was built from.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("TODO_GIT_COMMIT"),
    ")"
);

/// A concurrent, durable to-do list server, and its client.
#[derive(Debug, Parser)]
#[command(
    name = "todo",
    version = VERSION,
    about,
    after_help = "The client flags (--server, --token, --ca-cert, --json) go before or after \
                  the subcommand: todo --server https://todo.example lists"
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: CliCommand,
}

impl CliCommand {
    /// Whether the command was asked for JSON (`--json`), so that its errors are JSON too.
    pub fn wants_json(&self) -> bool {
        self.client().is_some_and(|client| client.json)
    }

    /// The client flags of a command that talks to a server.
    fn client(&self) -> Option<&ClientArgs> {
        match self {
            CliCommand::Add { client, .. }
            | CliCommand::Entries { client, .. }
            | CliCommand::Show { client, .. }
            | CliCommand::Agenda { client, .. }
            | CliCommand::Done { client, .. }
            | CliCommand::Undone { client, .. }
            | CliCommand::RmList { client, .. }
            | CliCommand::Edit { client, .. }
            | CliCommand::Rm { client, .. }
            | CliCommand::Lists { client }
            | CliCommand::Ping { client }
            | CliCommand::Watch { client, .. }
            | CliCommand::Export { client, .. }
            | CliCommand::Import { client, .. }
            | CliCommand::Login { client, .. }
            | CliCommand::Logout { client }
            | CliCommand::Share { client, .. }
            | CliCommand::Unshare { client, .. }
            | CliCommand::Members { client, .. } => Some(client),
            CliCommand::Token(command) => Some(command.client()),
            CliCommand::Link(command) => Some(command.client()),
            CliCommand::Serve(_)
            | CliCommand::Backup { .. }
            | CliCommand::Restore { .. }
            | CliCommand::Check { .. }
            | CliCommand::Completions { .. }
            | CliCommand::Man
            | CliCommand::Bench(_)
            | CliCommand::User(_) => None,
        }
    }
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum CliCommand {
    /// Run the server (SQLite in --data-dir, HTTP on --addr).
    Serve(ServeArgs),
    /// Add an entry to a list.
    Add {
        #[command(flatten)]
        client: ClientArgs,
        /// The list.
        list: String,
        /// The date: YYYY-MM-DD, today, tomorrow, yesterday, a weekday (fri), +3d or -1w.
        #[arg(allow_hyphen_values = true)]
        date: String,
        /// What is to be done.
        title: String,
    },
    /// Show a list's entries, by date then id: all, one day's (--date), from or to a date,
    /// open or done ones.
    Entries {
        #[command(flatten)]
        client: ClientArgs,
        /// The list.
        list: String,
        /// Only entries on this date (YYYY-MM-DD, today, fri, +3d ...).
        #[arg(long, allow_hyphen_values = true, conflicts_with_all = ["from", "to"])]
        date: Option<String>,
        /// Only entries on this date or later.
        #[arg(long, allow_hyphen_values = true)]
        from: Option<String>,
        /// Only entries on this date or earlier.
        #[arg(long, allow_hyphen_values = true)]
        to: Option<String>,
        /// Only entries not done yet.
        #[arg(long, conflicts_with = "done")]
        open: bool,
        /// Only done entries.
        #[arg(long)]
        done: bool,
    },
    /// Show one entry.
    Show {
        #[command(flatten)]
        client: ClientArgs,
        /// The list.
        list: String,
        /// The entry id.
        id: u64,
    },
    /// Open entries across all your lists (and those shared with you), by date: overdue ones,
    /// then the next --days days.
    Agenda {
        #[command(flatten)]
        client: ClientArgs,
        /// How many days ahead, today included.
        #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=3660))]
        days: u32,
    },
    /// Mark an entry as done.
    Done {
        #[command(flatten)]
        client: ClientArgs,
        /// The list.
        list: String,
        /// The entry id.
        id: u64,
    },
    /// Mark an entry as not done.
    Undone {
        #[command(flatten)]
        client: ClientArgs,
        /// The list.
        list: String,
        /// The entry id.
        id: u64,
    },
    /// Delete a whole list with its entries (asks first, unless --yes).
    RmList {
        #[command(flatten)]
        client: ClientArgs,
        /// The list.
        list: String,
        /// Do not ask.
        #[arg(long)]
        yes: bool,
    },
    /// Change an entry's title or date.
    Edit {
        #[command(flatten)]
        client: ClientArgs,
        /// The list.
        list: String,
        /// The entry id.
        id: u64,
        /// A new title.
        #[arg(long)]
        title: Option<String>,
        /// A new date (YYYY-MM-DD, today, fri, +3d ...).
        #[arg(long, allow_hyphen_values = true)]
        date: Option<String>,
    },
    /// Delete an entry.
    Rm {
        #[command(flatten)]
        client: ClientArgs,
        /// The list.
        list: String,
        /// The entry id.
        id: u64,
    },
    /// Copy the SQLite store to FILE while the server runs, and check the copy.
    Backup {
        #[command(flatten)]
        storage: StorageArgs,
        /// Where to write the copy (a new file).
        file: PathBuf,
    },
    /// Replace the SQLite store of a stopped server with a checked backup.
    Restore {
        #[command(flatten)]
        storage: StorageArgs,
        /// The backup.
        file: PathBuf,
    },
    /// Check the store: SQLite's integrity and the project's invariants. Exits 1 on damage.
    Check {
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Ask a server whether it and its storage answer. Exits 0 when healthy.
    Ping {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Print a shell completion script: todo completions bash > /etc/bash_completion.d/todo
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff): todo man > /usr/local/share/man/man1/todo.1
    Man,
    /// Follow a list's changes as they are committed, until interrupted.
    Watch {
        #[command(flatten)]
        client: ClientArgs,
        /// The list.
        list: String,
    },
    /// Show the names of lists that hold entries.
    Lists {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Write lists as JSON Lines, with their ids, for `todo import` (on this server or another).
    Export {
        #[command(flatten)]
        client: ClientArgs,
        /// The lists to export; every list of your own when none is named.
        lists: Vec<String>,
        /// Every list on the server, each with its owner (admins only): what moves a whole
        /// server; `todo import` by an admin puts each back under its owner.
        #[arg(long, conflicts_with = "lists")]
        all: bool,
    },
    /// Import the lists of a `todo export`, keeping ids; a list already imported is left as
    /// it is, and one holding other entries is reported and left untouched (exit 1).
    Import {
        #[command(flatten)]
        client: ClientArgs,
        /// The export; standard input when absent.
        file: Option<PathBuf>,
    },
    /// Measure throughput and latency, in-process (--inproc) or against a server (--url).
    Bench(BenchArgs),
    /// Manage accounts on the server's storage (works while the server runs).
    #[command(subcommand)]
    User(UserCommand),
    /// Log in to a server and keep the session token for the other commands.
    Login {
        #[command(flatten)]
        client: ClientArgs,
        /// The user name [default: $USER].
        user: Option<String>,
        /// Read the password from the first line of standard input instead of prompting.
        #[arg(long)]
        password_stdin: bool,
    },
    /// End the session `todo login` started and forget its token.
    Logout {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Make, show and revoke API tokens for scripts and other programs.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Let another user read or change one of your lists.
    Share {
        #[command(flatten)]
        client: ClientArgs,
        /// Your list.
        list: String,
        /// The user to share it with.
        user: String,
        /// What they may do.
        #[arg(long, value_parser = accounts::parse_role)]
        role: Role,
    },
    /// Stop sharing one of your lists with a user.
    Unshare {
        #[command(flatten)]
        client: ClientArgs,
        /// Your list.
        list: String,
        /// The user.
        user: String,
    },
    /// Show who shares one of your lists.
    Members {
        #[command(flatten)]
        client: ClientArgs,
        /// Your list.
        list: String,
    },
    /// Make, show and revoke share links: URLs that open one list without logging in.
    #[command(subcommand)]
    Link(LinkCommand),
}

/// Flags of `todo serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on: HOST:PORT (a host name is resolved), or a bare PORT (or :PORT)
    /// on 127.0.0.1.
    #[arg(long, env = "TODO_ADDR", default_value = "127.0.0.1:5454", value_parser = parse_addr)]
    pub addr: SocketAddr,
    /// Directory of the embedded SQLite database.
    #[arg(long, env = "TODO_DATA_DIR", default_value = "todo-data")]
    pub data_dir: PathBuf,
    /// Store lists in this PostgreSQL database (postgres://user@host/db) instead of SQLite,
    /// so several nodes can share them.
    #[arg(long, env = "TODO_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Database workers, each with its own connection [default: 1 on SQLite, 3 on PostgreSQL].
    #[arg(long, env = "TODO_DB_WORKERS", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub db_workers: Option<u16>,
    /// Most writes per transaction; 1 turns group commit off.
    #[arg(long, env = "TODO_MAX_BATCH", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=65_536))]
    pub max_batch: u32,
    /// Capacity of each list's mailbox.
    #[arg(long, env = "TODO_MAILBOX_CAPACITY", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub mailbox_capacity: u32,
    /// How long a call waits for its list, such as 5s or 500ms.
    #[arg(long, env = "TODO_CALL_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    pub call_timeout: Duration,
    /// How long a list's actor waits for a message before it hibernates (frees its task and
    /// mailbox, keeping the list in memory), such as 1s.
    #[arg(long, env = "TODO_HIBERNATE_AFTER", default_value = "1s", value_parser = humantime::parse_duration)]
    pub hibernate_after: Duration,
    /// How long an idle list stays in memory, such as 10m.
    #[arg(long, env = "TODO_IDLE_TIMEOUT", default_value = "10m", value_parser = humantime::parse_duration)]
    pub idle_timeout: Duration,
    /// Most list actors kept in memory.
    #[arg(long, env = "TODO_MAX_LISTS_IN_MEMORY", default_value_t = 1_000_000)]
    pub max_lists_in_memory: usize,
    /// Most HTTP requests handled at once; more get 503.
    #[arg(long, env = "TODO_MAX_IN_FLIGHT", default_value_t = 4096)]
    pub max_in_flight: usize,
    /// Most connections open at once; more are answered 503 and closed [default: the
    /// file-descriptor limit (ulimit -n) less 256].
    #[arg(long, env = "TODO_MAX_CONNECTIONS", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: Option<u32>,
    /// Longest time a request may take before it gets 503.
    #[arg(long, env = "TODO_REQUEST_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,
    /// Longest time a client may take to send a request's body before it gets 408.
    #[arg(long, env = "TODO_BODY_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub body_timeout: Duration,
    /// Most event streams (GET /lists/{list}/events) open at once; more get 503.
    #[arg(long, env = "TODO_MAX_SUBSCRIBERS", default_value_t = 10_000)]
    pub max_subscribers: usize,
    /// Serve on a non-loopback address while no account exists, so anyone who reaches it
    /// may read and change every list. Without it, such a server refuses to start.
    #[arg(long, env = "TODO_INSECURE_OPEN")]
    pub insecure_open: bool,
    /// Let every signed-in user read /metrics, not only admins.
    #[arg(long, env = "TODO_METRICS_PUBLIC")]
    pub metrics_public: bool,
    /// Serve HTTPS with this PEM certificate chain (needs --tls-key).
    #[arg(long, env = "TODO_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, env = "TODO_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Log filter, such as info, todo=debug, or info,access=off (no access log).
    #[arg(long, env = "TODO_LOG", default_value = "info")]
    pub log: String,
    /// Log lines as text for people, or as JSON objects for log collectors.
    #[arg(long, env = "TODO_LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,
    /// A TOML file of these flags (`max-in-flight = 4096`); flags and TODO_* variables win.
    #[arg(long, env = "TODO_CONFIG")]
    pub config: Option<PathBuf>,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One readable line per event.
    Text,
    /// One JSON object per line.
    Json,
}

/// Flags of the client subcommands.
#[derive(Debug, Args)]
pub struct ClientArgs {
    /// The server to talk to (http:// or https://).
    #[arg(long, env = "TODO_SERVER", default_value = "http://127.0.0.1:5454", value_parser = server_arg)]
    pub server: String,
    /// The API token to send [default: the one `todo login` saved for --server].
    #[arg(long, env = "TODO_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Trust this PEM certificate for https:// (a server with its own certificate).
    #[arg(long, env = "TODO_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `--server` as given, or a usage error (exit 2) when it names a scheme other than `http`
/// or `https`: nothing else could ever answer, so retrying (exit 5) would not help.
fn server_arg(server: &str) -> Result<String, String> {
    let scheme = server.split_once("://").map(|(scheme, _)| scheme);
    // Only what RFC 3986 allows in a scheme is one; `host:port/x?u=http://...` has none.
    let scheme = scheme.filter(|scheme| {
        scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    });
    match scheme {
        Some(scheme)
            if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") =>
        {
            Err(format!(
                "{scheme}:// is not supported: use http:// or https://"
            ))
        }
        _ => Ok(server.to_owned()),
    }
}

/// Flags of `todo bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Run the actor system in this process, on a temporary data directory, without HTTP.
    #[arg(long, required_unless_present = "url", conflicts_with = "url")]
    pub inproc: bool,
    /// Drive the server at this URL over HTTP, such as http://127.0.0.1:5454 (or https://).
    #[arg(long)]
    pub url: Option<String>,
    /// With --url: the API token to send, for a server with accounts.
    #[arg(long, env = "TODO_TOKEN", hide_env_values = true, requires = "url")]
    pub token: Option<String>,
    /// With --url https://: trust this PEM certificate besides the public roots.
    #[arg(long, env = "TODO_CA_CERT", requires = "url")]
    pub ca_cert: Option<PathBuf>,
    /// With --url: run even though the server already holds lists of its users (the
    /// benchmark writes only to lists of its own, bench-1 to bench-N, but writes thousands).
    #[arg(long, requires = "url")]
    pub yes: bool,
    /// With --url: leave the benchmark's lists on the server (they are removed otherwise).
    #[arg(long, requires = "url")]
    pub keep: bool,
    /// What the clients send: mixed (80 % reads, 20 % writes), read, write, write-async, healthz;
    /// or watch: --clients subscribers follow --lists lists while writers add 200 entries/s.
    #[arg(long, default_value = "mixed")]
    pub workload: Workload,
    /// Which HTTP API to use: book (/add_entry, /entries) or json (/lists/{list}/entries).
    #[arg(long, default_value = "book")]
    pub api: Api,
    /// Simulated clients, each one task (and one connection over HTTP).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub clients: u32,
    /// Lists the requests are spread over: bench-1 to bench-N.
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub lists: u32,
    /// How long to measure, such as 10s.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Stop after this many requests instead of after --duration.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub requests: Option<u64>,
    /// How long the clients run before measuring starts, such as 1s or 0s.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub warmup: Duration,
    /// Seed of the clients' random choices; the same seed sends the same requests.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Read every list once before warming up, so the run measures a steady state with every
    /// list loaded rather than the server's start-up.
    #[arg(long)]
    pub preload: bool,
    /// With --inproc: most writes per commit; 1 turns group commit off.
    #[arg(long, conflicts_with = "url", value_parser = clap::value_parser!(u32).range(1..=65_536))]
    pub max_batch: Option<u32>,
    /// With --inproc: database workers.
    #[arg(long, conflicts_with = "url", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub db_workers: Option<u16>,
    /// With --inproc: where to create the temporary data directory.
    #[arg(long, conflicts_with = "url")]
    pub data_dir: Option<PathBuf>,
    /// With --url: the server's process id, to report its memory.
    #[arg(long, requires = "url")]
    pub pid: Option<u32>,
    /// With --inproc: start this many list actors and report the memory of each idle one.
    #[arg(long, conflicts_with_all = ["url", "cold_start"])]
    pub idle_lists: Option<usize>,
    /// With --inproc: store this many lists, restart, and time until every one answers.
    #[arg(long, conflicts_with = "url")]
    pub cold_start: Option<usize>,
    /// Entries per list for --cold-start.
    #[arg(long, default_value_t = 10)]
    pub entries_per_list: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

impl From<&BenchArgs> for BenchConfig {
    fn from(args: &BenchArgs) -> BenchConfig {
        let target = match &args.url {
            Some(url) => Target::Http(HttpConfig {
                url: url.clone(),
                api: args.api,
                pid: args.pid,
                token: args.token.clone().filter(|token| !token.is_empty()),
                ca_cert: args.ca_cert.clone(),
                yes: args.yes,
                keep: args.keep,
            }),
            None => Target::InProcess(InProcessConfig {
                data_dir: args.data_dir.clone(),
                max_batch: args.max_batch.map(|max| max as usize),
                db_workers: args.db_workers.map(usize::from),
            }),
        };
        let scenario = match (args.idle_lists, args.cold_start) {
            (Some(n_lists), _) => Scenario::IdleLists(n_lists),
            (None, Some(n_lists)) => Scenario::ColdStart {
                n_lists,
                entries_per_list: args.entries_per_list,
            },
            (None, None) if args.workload == Workload::Watch => Scenario::Watch,
            (None, None) => Scenario::Load,
        };
        BenchConfig {
            target,
            scenario,
            load: LoadConfig {
                workload: args.workload,
                clients: args.clients as usize,
                lists: args.lists as usize,
                stop: args
                    .requests
                    .map_or(Stop::After(args.duration), Stop::Requests),
                warmup: args.warmup,
                preload: args.preload,
                seed: args.seed,
            },
            progress: !args.json && std::io::stdout().is_terminal(),
        }
    }
}

/// Runs `todo bench` and prints its report.
pub async fn bench(args: BenchArgs) -> anyhow::Result<()> {
    let outcome = crate::bench::run(BenchConfig::from(&args)).await?;
    match args.json {
        true => println!("{}", serde_json::to_string_pretty(&outcome)?),
        false => print!("{}", outcome.to_text()),
    }
    Ok(())
}

impl From<&ServeArgs> for Config {
    fn from(args: &ServeArgs) -> Config {
        Config {
            database: DatabaseConfig {
                data_dir: args.data_dir.clone(),
                database_url: args.database_url.clone(),
                workers: args.db_workers.map(usize::from),
                max_batch: args.max_batch as usize,
            },
            lists: ListsConfig {
                mailbox_capacity: args.mailbox_capacity as usize,
                call_timeout: args.call_timeout,
                hibernate_after: args.hibernate_after,
                idle_timeout: args.idle_timeout,
                max_lists_in_memory: args.max_lists_in_memory,
            },
            web: WebConfig {
                addr: args.addr,
                max_in_flight: args.max_in_flight,
                max_connections: args.max_connections.map(|cap| cap as usize),
                request_timeout: args.request_timeout,
                body_timeout: args.body_timeout,
                insecure_open: args.insecure_open,
                max_subscribers: args.max_subscribers,
                metrics_public: args.metrics_public,
                tls: match (&args.tls_cert, &args.tls_key) {
                    (Some(cert), Some(key)) => Some(TlsConfig {
                        cert: cert.clone(),
                        key: key.clone(),
                    }),
                    _ => None,
                },
            },
        }
    }
}

/// `--addr`: an IP address and port, a host name and port (resolved now), or a port alone,
/// which listens on loopback only, so that opening the server to the network stays explicit.
fn parse_addr(text: &str) -> Result<SocketAddr, String> {
    let port_only = text.strip_prefix(':').unwrap_or(text);
    if let Ok(port) = port_only.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let resolved: Vec<SocketAddr> = std::net::ToSocketAddrs::to_socket_addrs(text)
        .map_err(|error| format!("expected HOST:PORT or PORT: cannot resolve {text:?} ({error})"))?
        .collect();
    // IPv4 first, so `localhost` means 127.0.0.1 wherever `::1` is listed before it.
    let ipv4 = resolved.iter().find(|addr| addr.is_ipv4());
    ipv4.or(resolved.first())
        .copied()
        .ok_or_else(|| format!("{text:?} resolves to no address"))
}

/// The exit code after a second stop signal: 128 + SIGINT, as a shell reports an interrupt.
pub const FORCED_EXIT_CODE: i32 = 130;

/// Runs the server until SIGINT, SIGTERM or SIGHUP, then shuts it down gracefully; a second
/// signal during the shutdown exits at once.
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut signals = StopSignals::listen().context("listening for signals")?;
    let app = App::start(Config::from(&args))
        .await
        .context("starting the server")?;
    // Scripts and tests read the address from this line, which matters with `--addr ...:0`.
    let scheme = if args.tls_cert.is_some() {
        "https"
    } else {
        "http"
    };
    println!("todo listening on {scheme}://{}", app.local_addr());
    let signal = signals.next().await;
    tracing::info!(
        signal,
        "stopping gracefully; send the signal again to exit at once"
    );
    tokio::select! {
        () = app.shutdown() => Ok(()),
        signal = signals.next() => {
            // Every acknowledged write is already committed; what is lost is only what was
            // not yet acknowledged (casts still queued, calls in flight).
            tracing::warn!(signal, "second signal: exiting without finishing the shutdown");
            std::process::exit(FORCED_EXIT_CODE)
        }
    }
}

/// The signals that stop the server. SIGHUP is one of them, so a closed terminal stops it
/// gracefully rather than killing it before it commits.
struct StopSignals {
    interrupt: Signal,
    terminate: Signal,
    hangup: Signal,
}

impl StopSignals {
    fn listen() -> std::io::Result<StopSignals> {
        Ok(StopSignals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
            hangup: signal(SignalKind::hangup())?,
        })
    }

    /// Waits for the next stop signal and returns its name.
    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "SIGINT",
            _ = self.terminate.recv() => "SIGTERM",
            _ = self.hangup.recv() => "SIGHUP",
        }
    }
}

/// Runs one client subcommand and returns what it prints on stdout.
pub async fn run_client(command: CliCommand) -> anyhow::Result<String> {
    let output = match command {
        CliCommand::Serve(_) => unreachable!("main runs serve itself"),
        CliCommand::Bench(_) => unreachable!("main runs bench itself"),
        CliCommand::User(_) => unreachable!("main runs user itself"),
        CliCommand::Watch { .. } => unreachable!("main runs watch itself"),
        CliCommand::Backup { .. } | CliCommand::Restore { .. } | CliCommand::Check { .. } => {
            unreachable!("main runs the storage commands itself")
        }
        CliCommand::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "todo", &mut script);
            String::from_utf8(script)?
        }
        CliCommand::Man => {
            let mut page = Vec::new();
            clap_mangen::Man::new(Cli::command()).render(&mut page)?;
            String::from_utf8(page)?
        }
        CliCommand::Ping { client } => {
            let health = connect(&client)?.health().await?;
            format!("{health}\n")
        }
        CliCommand::Login {
            client,
            user,
            password_stdin,
        } => accounts::login(client, user, password_stdin).await?,
        CliCommand::Logout { client } => accounts::logout(client).await?,
        CliCommand::Token(command) => accounts::token(command).await?,
        CliCommand::Share {
            client,
            list,
            user,
            role,
        } => accounts::share(client, list, user, role).await?,
        CliCommand::Unshare { client, list, user } => accounts::unshare(client, list, user).await?,
        CliCommand::Members { client, list } => accounts::members(client, list).await?,
        CliCommand::Link(command) => accounts::link(command).await?,
        CliCommand::Add {
            client,
            list,
            date,
            title,
        } => {
            let date = dates::resolve(&date, dates::today())?;
            let entry = connect(&client)?
                .add(&list_name(&list)?, &date, &title)
                .await?;
            entries_output(&client, &[entry], true)
        }
        CliCommand::Entries {
            client,
            list,
            date,
            from,
            to,
            open,
            done,
        } => {
            let filter = entries_filter(date, from, to, (open || done).then_some(done))?;
            let mut entries = connect(&client)?
                .entries(&list_name(&list)?, &filter)
                .await?;
            if entries.is_empty() && !client.json {
                let filtered =
                    filter.date.is_some() || filter.from.is_some() || filter.to.is_some();
                match filtered || filter.done.is_some() {
                    true => eprintln!("{list}: no entries match"),
                    false => eprintln!("{list}: no entries"),
                }
                return Ok(String::new());
            }
            entries.sort_by(|a, b| (&a.date, a.id).cmp(&(&b.date, b.id)));
            entries_output(&client, &entries, false)
        }
        CliCommand::Show { client, list, id } => {
            let entry = connect(&client)?
                .entry(&list_name(&list)?, entry_id(id)?)
                .await?;
            entries_output(&client, &[entry], true)
        }
        CliCommand::Agenda { client, days } => agenda(&client, days).await?,
        CliCommand::Done { client, list, id } => set_done(&client, &list, id, true).await?,
        CliCommand::Undone { client, list, id } => set_done(&client, &list, id, false).await?,
        CliCommand::RmList { client, list, yes } => {
            let list = list_name(&list)?;
            if !yes && !confirm(&format!("delete the list {list} and all its entries?"))? {
                let message = format!("{list} not deleted (answer yes, or pass --yes)");
                return Err(InvalidInput::new(message).into());
            }
            connect(&client)?.delete_list(&list).await?;
            match client.json {
                true => format!("{}\n", serde_json::json!({ "deleted": list.to_string() })),
                false => format!("deleted the list {list}\n"),
            }
        }
        CliCommand::Edit {
            client,
            list,
            id,
            title,
            date,
        } => {
            let mut changes = Map::new();
            if let Some(title) = title {
                changes.insert("title".to_owned(), Value::String(title));
            }
            if let Some(date) = date {
                let date = dates::resolve(&date, dates::today())?;
                changes.insert("date".to_owned(), Value::String(date));
            }
            if changes.is_empty() {
                let message = "nothing to change: give --title or --date";
                return Err(InvalidInput::new(message).into());
            }
            let entry = connect(&client)?
                .update(&list_name(&list)?, entry_id(id)?, Value::Object(changes))
                .await?;
            entries_output(&client, &[entry], true)
        }
        CliCommand::Rm { client, list, id } => {
            let id = entry_id(id)?;
            connect(&client)?.delete(&list_name(&list)?, id).await?;
            match client.json {
                true => format!("{}\n", serde_json::json!({ "deleted": id.get() })),
                false => format!("deleted {id}\n"),
            }
        }
        CliCommand::Export { client, lists, all } => portable::export(&client, lists, all).await?,
        CliCommand::Import { client, file } => portable::import(&client, file).await?,
        CliCommand::Lists { client } => {
            let names = connect(&client)?.lists(false).await?;
            match client.json {
                true => format!("{}\n", Value::from(names)),
                false => names.iter().map(|name| format!("{name}\n")).collect(),
            }
        }
    };
    Ok(output)
}

/// The entries filter of `todo entries`, with dates resolved; a reversed range is an error.
fn entries_filter(
    date: Option<String>,
    from: Option<String>,
    to: Option<String>,
    done: Option<bool>,
) -> anyhow::Result<EntriesFilter> {
    let today = dates::today();
    let resolve = |text: Option<String>| text.map(|text| dates::resolve(&text, today)).transpose();
    let (date, from, to) = (resolve(date)?, resolve(from)?, resolve(to)?);
    if let (Some(from), Some(to)) = (&from, &to)
        && from > to
    {
        let message = format!("--from {from} is after --to {to}: no date is in that range");
        return Err(InvalidInput::new(message).into());
    }
    Ok(EntriesFilter {
        date,
        from,
        to,
        done,
    })
}

/// `todo done` and `todo undone`.
async fn set_done(client: &ClientArgs, list: &str, id: u64, done: bool) -> anyhow::Result<String> {
    let changes = Value::Object(Map::from_iter([("done".to_owned(), Value::Bool(done))]));
    let entry = connect(client)?
        .update(&list_name(list)?, entry_id(id)?, changes)
        .await?;
    Ok(entries_output(client, &[entry], true))
}

/// `todo agenda`: open entries of every list the caller can see, up to `days` days ahead
/// (overdue ones included), by date, then list, then id.
async fn agenda(client: &ClientArgs, days: u32) -> anyhow::Result<String> {
    let server = connect(client)?;
    let today = dates::today();
    let last = today + chrono::Days::new(u64::from(days - 1));
    let filter = EntriesFilter {
        to: Some(last.format("%Y-%m-%d").to_string()),
        done: Some(false),
        ..EntriesFilter::default()
    };
    let mut rows = Vec::new();
    for name in server.lists(false).await? {
        let entries = server.entries(&list_name(&name)?, &filter).await?;
        rows.extend(entries.into_iter().map(|entry| (name.clone(), entry)));
    }
    rows.sort_by(|(a_list, a), (b_list, b)| (&a.date, a_list, a.id).cmp(&(&b.date, b_list, b.id)));
    if client.json {
        let rows: Vec<Value> = rows
            .iter()
            .map(|(list, entry)| serde_json::json!({"list": list, "entry": entry}))
            .collect();
        return Ok(format!("{}\n", Value::from(rows)));
    }
    if rows.is_empty() {
        eprintln!("nothing open until {last}");
        return Ok(String::new());
    }
    let today = today.format("%Y-%m-%d").to_string();
    let width = rows
        .iter()
        .map(|(list, _)| list.chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut text = format!("{:<10}  {:<width$}  {:>4}  TITLE\n", "DATE", "LIST", "ID");
    for (list, entry) in &rows {
        let late = if entry.date < today {
            "  (overdue)"
        } else {
            ""
        };
        let line = format!(
            "{:<10}  {list:<width$}  {:>4}  {}{late}\n",
            entry.date, entry.id, entry.title
        );
        text.push_str(&line);
    }
    Ok(text)
}

/// Asks `question` on the terminal; anything but y or yes is a no. Without a terminal to
/// ask on, the answer is no: a script must say --yes.
pub(crate) fn confirm(question: &str) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        return Ok(false);
    }
    eprint!("{question} [y/N] ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

fn list_name(text: &str) -> anyhow::Result<ListRef> {
    ListRef::parse(text)
}

fn entry_id(id: u64) -> anyhow::Result<EntryId> {
    EntryId::new(id).with_context(|| format!("invalid entry id {id}: expected a positive integer"))
}

/// `todo watch LIST`: prints the list, then one line per change as it is committed (one JSON
/// object per line with `--json`); reconnects where it left off when the connection drops.
pub async fn watch(client: ClientArgs, list: String) -> anyhow::Result<()> {
    let list = list_name(&list)?;
    let server = connect(&client)?;
    let mut seen = None;
    loop {
        let mut events = match server.events(&list, seen).await {
            Ok(events) => events,
            Err(error @ ClientError::Server { .. }) => return Err(error.into()),
            Err(error) if seen.is_none() => return Err(error.into()),
            Err(_) => {
                tokio::time::sleep(WATCH_RETRY).await;
                continue;
            }
        };
        while let Ok(Some(event)) = events.next().await {
            seen = Some(event.id);
            let text = match client.json {
                true => format!("{}\n", serde_json::to_string(&event)?),
                false => watch_line(&event),
            };
            if !write_out(&text)? {
                return Ok(());
            }
        }
        tokio::time::sleep(WATCH_RETRY).await;
    }
}

/// How long `todo watch` waits before reconnecting.
const WATCH_RETRY: Duration = Duration::from_secs(1);

/// A change as one line; a snapshot as the list's table.
fn watch_line(event: &ServerEvent) -> String {
    let entry = || serde_json::from_value::<EntryBody>(event.data.clone()).ok();
    match (event.event.as_str(), entry()) {
        ("snapshot", _) => {
            let entries: Vec<EntryBody> =
                serde_json::from_value(event.data.clone()).unwrap_or_default();
            table(&entries)
        }
        ("added" | "updated", Some(entry)) => {
            let done = if entry.done { "done" } else { "open" };
            format!(
                "{} {} {} {done} {}\n",
                event.event, entry.id, entry.date, entry.title
            )
        }
        ("deleted", _) => format!("deleted {}\n", event.data["id"]),
        (other, _) => format!("{other}\n"),
    }
}

/// Writes `text` to stdout at once; `false` when the reader went away (`todo watch | head`).
fn write_out(text: &str) -> anyhow::Result<bool> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(error) => Err(error.into()),
    }
}

/// Entries as an aligned table, or as JSON (one object when `single`).
fn entries_output(args: &ClientArgs, entries: &[EntryBody], single: bool) -> String {
    if args.json {
        let json = match (single, entries) {
            (true, [entry]) => serde_json::to_string(entry),
            _ => serde_json::to_string(entries),
        };
        return format!("{}\n", json.expect("entries serialize"));
    }
    table(entries)
}

fn table(entries: &[EntryBody]) -> String {
    let id_width = entries
        .iter()
        .map(|entry| entry.id.to_string().len())
        .max()
        .unwrap_or(0)
        .max(2);
    let mut text = format!(
        "{:>id_width$}  {:<10}  {:<4}  TITLE\n",
        "ID", "DATE", "DONE"
    );
    for entry in entries {
        let done = if entry.done { "yes" } else { "no" };
        text += &format!(
            "{:>id_width$}  {:<10}  {:<4}  {}\n",
            entry.id, entry.date, done, entry.title
        );
    }
    text
}
