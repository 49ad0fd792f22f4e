//! The server's configuration as plain data: no clap types, no environment variables.
//!
//! `cli` builds a `Config` from flags and environment; tests build one directly. Each component
//! receives only its own part.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Everything `App::start` needs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Storage and its worker pool.
    pub database: DatabaseConfig,
    /// List actors and the cache that owns them.
    pub lists: ListsConfig,
    /// The HTTP server.
    pub web: WebConfig,
}

/// The database pool and its storage.
#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    /// Directory of the embedded SQLite database; it is created if missing. It also holds the
    /// lock that keeps a second server off the same data.
    pub data_dir: PathBuf,
    /// A PostgreSQL URL (`postgres://...`); when set, lists are stored there instead of SQLite.
    pub database_url: Option<String>,
    /// Number of database workers, each with its own connection; `None` chooses by backend
    /// (`DatabaseConfig::n_workers`).
    pub workers: Option<usize>,
    /// Most writes committed in one transaction; 1 turns group commit off.
    pub max_batch: usize,
}

/// The list actors.
#[derive(Debug, Clone)]
pub struct ListsConfig {
    /// Capacity of each list actor's mailbox.
    pub mailbox_capacity: usize,
    /// How long a call waits for a mailbox slot and then for its reply.
    pub call_timeout: Duration,
    /// How long a list actor waits for a message before it hibernates: its task and mailbox
    /// are freed, and its list stays in memory until used again.
    pub hibernate_after: Duration,
    /// How long a list stays in memory unused before it is forgotten (and reloaded from
    /// storage on its next use).
    pub idle_timeout: Duration,
    /// Most list actors kept alive; past it, the least recently used idle ones stop.
    pub max_lists_in_memory: usize,
}

/// The HTTP server.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// Address to listen on.
    pub addr: SocketAddr,
    /// Most requests handled at once; more get 503.
    pub max_in_flight: usize,
    /// Most connections open at once (more are answered 503 and closed); `None`: the
    /// file-descriptor limit less a reserve (`web::connections::cap`).
    pub max_connections: Option<usize>,
    /// Longest time a request may take before it gets 503.
    pub request_timeout: Duration,
    /// Longest time a client may take to send a request's body before it gets 408.
    pub body_timeout: Duration,
    /// Serve without accounts on a non-loopback address (protected mode refuses otherwise).
    pub insecure_open: bool,
    /// Let every signed-in user read `/metrics`, not only admins.
    pub metrics_public: bool,
    /// Serve HTTPS with this certificate chain and key.
    pub tls: Option<TlsConfig>,
    /// Most event streams (`GET /lists/{list}/events`) open at once.
    pub max_subscribers: usize,
}

/// PEM files for HTTPS.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Workers on SQLite when not configured: one. SQLite has a single write lock, so more workers
/// only take turns for it and commit smaller groups (BENCHMARKS.md).
pub const SQLITE_WORKERS: usize = 1;
/// Workers on PostgreSQL when not configured: the book's pool of three, which commit in
/// parallel there.
pub const POSTGRES_WORKERS: usize = 3;

impl DatabaseConfig {
    /// The number of workers to start: as configured, or the backend's default.
    pub fn n_workers(&self) -> usize {
        let default = match self.database_url {
            Some(_) => POSTGRES_WORKERS,
            None => SQLITE_WORKERS,
        };
        self.workers.unwrap_or(default).max(1)
    }
}

impl Default for DatabaseConfig {
    fn default() -> DatabaseConfig {
        DatabaseConfig {
            data_dir: PathBuf::from("todo-data"),
            database_url: None,
            workers: None,
            max_batch: 1_024,
        }
    }
}

impl Default for ListsConfig {
    fn default() -> ListsConfig {
        ListsConfig {
            mailbox_capacity: 256,
            call_timeout: Duration::from_secs(5),
            hibernate_after: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(600),
            max_lists_in_memory: 1_000_000,
        }
    }
}

impl Default for WebConfig {
    fn default() -> WebConfig {
        WebConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 5454)),
            max_in_flight: 4_096,
            max_connections: None,
            request_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(10),
            insecure_open: false,
            metrics_public: false,
            tls: None,
            max_subscribers: 10_000,
        }
    }
}

impl Config {
    /// The defaults, with data in `data_dir`: what tests and embedders usually want.
    pub fn with_data_dir(data_dir: impl Into<PathBuf>) -> Config {
        Config {
            database: DatabaseConfig {
                data_dir: data_dir.into(),
                ..DatabaseConfig::default()
            },
            lists: ListsConfig::default(),
            web: WebConfig::default(),
        }
    }
}
