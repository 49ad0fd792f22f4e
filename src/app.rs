//! `App`: the whole server, started in dependency order and shut down in reverse.
//!
//! Start: database, then cache, then web. Shutdown follows ownership: the web server stops
//! accepting and finishes its requests, the cache stops its actors (each first drains its
//! mailbox and hands its writes to the database), and the workers commit them and exit.

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::accounts::Accounts;
use crate::cache::Cache;
use crate::config::{Config, DatabaseConfig};
use crate::database::{Database, DatabaseClosed, OpenError, StorageError};
use crate::remote;
use crate::web::edge::Edge;
use crate::web::{self, AppState, AuthConfig};

/// A running server.
pub struct App {
    cache: Cache,
    /// What `serve` runs, for callers without a socket (the benches). It holds the handlers'
    /// state, so shutdown drops it with the server.
    edge: Edge,
    /// Ends the event streams when shutdown starts.
    stopping: CancellationToken,
    watch_accounts: JoinHandle<()>,
    database_closed: DatabaseClosed,
    local_addr: SocketAddr,
    stop_web: oneshot::Sender<()>,
    web: JoinHandle<()>,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Storage could not be opened.
    #[error(transparent)]
    Database(#[from] OpenError),
    /// The HTTP address could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The account tables could not be read.
    #[error("cannot read the accounts")]
    Accounts(#[source] crate::database::StorageError),
    /// Protected mode: a non-loopback address and no account.
    #[error(
        "refusing to serve {addr} without accounts: anyone who can reach it could read and \
         change every list. Create an account first (todo user add NAME), or pass \
         --insecure-open to serve it open knowingly"
    )]
    Unprotected {
        /// The address.
        addr: SocketAddr,
    },
    /// The TLS certificate or key is not usable.
    #[error(transparent)]
    Tls(#[from] web::tls::TlsError),
}

impl App {
    /// Opens storage, starts the actor system, and serves HTTP on `config.web.addr`.
    pub async fn start(config: Config) -> Result<App, StartError> {
        // Bind first: a taken port then leaves no data directory behind.
        let addr = config.web.addr;
        let bind_error = |source| StartError::Bind { addr, source };
        let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
        let local_addr = listener.local_addr().map_err(bind_error)?;
        // For the start-up line; never the database URL, which may hold a password.
        let database_url = config.database.database_url.clone();
        let data_dir = config.database.data_dir.clone();
        let workers = config.database.n_workers();
        let tls = config
            .web
            .tls
            .as_ref()
            .map(web::tls::acceptor)
            .transpose()?;
        let (database, database_closed) = Database::start(config.database.clone()).await?;
        let allow_open = local_addr.ip().is_loopback() || config.web.insecure_open;
        let accounts = open_accounts(&config.database, allow_open).await?;
        if !allow_open && !accounts.exist() {
            return Err(StartError::Unprotected { addr: local_addr });
        }
        let watch_accounts = tokio::spawn(accounts.clone().watch());
        let cache = Cache::new(database, config.lists);
        let auth = AuthConfig {
            metrics_public: config.web.metrics_public,
            tls: tls.is_some(),
            insecure_open: config.web.insecure_open,
        };
        let state = AppState::new(cache.clone(), accounts, auth, &config.web);
        let stopping = state.stopping.clone();
        if let Some(url) = &database_url {
            tokio::spawn(remote::follow(url.clone(), cache.clone(), stopping.clone()));
        }
        let edge = web::router(state, &config.web);
        let (stop_web, stopped) = oneshot::channel::<()>();
        let max_connections = web::connections::cap(config.web.max_connections);
        let connections = web::connections::Connections::new(max_connections);
        let web = tokio::spawn(web::serve(
            listener,
            edge.clone(),
            tls,
            connections,
            async move {
                let _ = stopped.await;
            },
        ));
        let backend = if database_url.is_some() {
            "postgresql"
        } else {
            "sqlite"
        };
        let data_dir = std::fs::canonicalize(&data_dir).unwrap_or(data_dir);
        tracing::info!(
            version = env!("CARGO_PKG_VERSION"),
            %local_addr,
            tls = auth.tls,
            backend,
            data_dir = %data_dir.display(),
            workers,
            max_connections,
            "listening"
        );
        Ok(App {
            cache,
            edge,
            stopping,
            watch_accounts,
            database_closed,
            local_addr,
            stop_web,
            web,
        })
    }
}

/// Opens the accounts' own connection, on the blocking pool.
async fn open_accounts(config: &DatabaseConfig, allow_open: bool) -> Result<Accounts, StartError> {
    let config = config.clone();
    tokio::task::spawn_blocking(move || Accounts::open(&config, allow_open))
        .await
        .map_err(|_| StartError::Accounts(StorageError::Unavailable))?
        .map_err(StartError::Accounts)
}

impl App {
    /// The address the HTTP server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The cache of list actors, the way into the system without HTTP.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// The HTTP service the server runs, to call without a socket (benchmarks).
    pub fn edge(&self) -> &Edge {
        &self.edge
    }

    /// Stops everything, returning once every queued write is committed and storage is closed.
    pub async fn shutdown(self) {
        let App {
            cache,
            edge,
            stopping,
            watch_accounts,
            database_closed,
            stop_web,
            web,
            ..
        } = self;
        watch_accounts.abort();
        // Dropped first: the handlers' state must not outlive the server's own copy of it.
        // Its accounts may own a PostgreSQL runtime, which panics if its last handle is
        // dropped on an async task such as this one.
        drop(edge);
        stopping.cancel();
        tracing::info!("shutting down: no new connections; waiting for the requests in flight");
        let _ = stop_web.send(());
        if let Err(error) = web.await {
            tracing::error!(%error, "the web server task failed");
        }
        let n_lists = cache.len();
        let n_queued = cache.mailbox_depth();
        tracing::info!(
            n_lists,
            n_queued,
            "stopping the list actors after their queued requests"
        );
        cache.shutdown().await;
        let n_writes = cache.database().queue_depth();
        tracing::info!(n_writes, "committing the queued writes and closing storage");
        cache.database().close().await;
        database_closed.wait().await;
        tracing::info!("stopped; every queued write is committed");
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::list::{Date, EntryId, ListName, NewEntry, Title};
    use crate::lists::{Command, Created, EntriesQuery};

    pub(crate) fn config(dir: &std::path::Path) -> Config {
        let mut config = Config::with_data_dir(dir);
        config.web.addr = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        config
    }

    pub(crate) async fn start(dir: &std::path::Path) -> App {
        App::start(config(dir))
            .await
            .expect("app starts on a fresh directory")
    }

    pub(crate) fn entry(day: &str, title: &str) -> NewEntry {
        NewEntry::new(Date::parse(day).unwrap(), Title::parse(title).unwrap())
    }

    /// An add to cast.
    pub(crate) fn add(day: &str, title: &str) -> Command {
        Command::AddEntry {
            entry: entry(day, title),
            idempotency_key: None,
        }
    }

    pub(crate) fn name(text: &str) -> ListName {
        ListName::parse(text).unwrap()
    }

    async fn all_titles(app: &App, list: &str) -> Vec<(u64, String)> {
        let entries = app.cache().entries(&name(list), EntriesQuery::All).await;
        entries
            .unwrap()
            .into_iter()
            .map(|e| (e.id.get(), e.title.to_string()))
            .collect()
    }

    #[tokio::test]
    async fn entries_survive_a_restart_and_ids_continue() {
        let dir = tempfile::tempdir().unwrap();
        let app = start(dir.path()).await;
        for title in ["Dentist", "Movies"] {
            app.cache()
                .add_entry(&name("bob"), entry("2018-12-19", title), None)
                .await
                .unwrap();
        }
        app.cache()
            .delete_entry(&name("bob"), EntryId::new(2).unwrap())
            .await
            .unwrap();
        app.shutdown().await;

        let app = start(dir.path()).await;
        assert_eq!(all_titles(&app, "bob").await, [(1, "Dentist".to_string())]);
        let created = app
            .cache()
            .add_entry(&name("bob"), entry("2018-12-20", "Shopping"), None)
            .await
            .unwrap();
        assert_eq!(
            created.entry.id.get(),
            3,
            "ids are never reused, also across restarts"
        );
        app.shutdown().await;
    }

    #[tokio::test]
    async fn an_idempotent_retry_returns_the_first_entry_also_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let keyed = |app: &App, list: &str| {
            let cache = app.cache().clone();
            let list = name(list);
            async move {
                let dentist = entry("2018-12-19", "Dentist");
                cache.add_entry(&list, dentist, Some("key-1".into())).await
            }
        };
        let app = start(dir.path()).await;
        let first = keyed(&app, "bob").await.unwrap();
        let Created {
            entry: original,
            replayed: false,
        } = first
        else {
            panic!("{first:?}")
        };
        app.shutdown().await;

        let app = start(dir.path()).await;
        let retry = keyed(&app, "bob").await.unwrap();
        assert_eq!(
            retry,
            Created {
                entry: original.clone(),
                replayed: true
            }
        );
        let other_list = keyed(&app, "alice").await.unwrap();
        assert!(!other_list.replayed, "keys are per list");
        assert_eq!(
            all_titles(&app, "bob").await,
            [(original.id.get(), "Dentist".to_string())]
        );
        app.shutdown().await;
    }

    #[tokio::test]
    async fn casts_queued_at_shutdown_are_committed() {
        let dir = tempfile::tempdir().unwrap();
        let app = start(dir.path()).await;
        for n in 0..200 {
            app.cache()
                .cast(&name("casts"), add("2018-12-19", &format!("cast {n}")))
                .unwrap();
        }
        app.shutdown().await;
        let app = start(dir.path()).await;
        assert_eq!(all_titles(&app, "casts").await.len(), 200);
        app.shutdown().await;
    }

    #[tokio::test]
    async fn a_second_app_on_the_same_directory_refuses_to_start() {
        let dir = tempfile::tempdir().unwrap();
        let app = start(dir.path()).await;
        let second = App::start(config(dir.path())).await;
        assert!(matches!(
            second,
            Err(StartError::Database(OpenError::Locked(_)))
        ));
        app.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_writer_sees_its_writes_stored_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let app = start(dir.path()).await;
        let n_writers = 20;
        let n_writes = 50;
        let mut writers = Vec::new();
        for writer in 0..n_writers {
            let cache = app.cache().clone();
            writers.push(tokio::spawn(async move {
                let mut ids = Vec::new();
                for n in 0..n_writes {
                    let title = format!("{writer}:{n}");
                    let reply = cache
                        .add_entry(&name("shared"), entry("2018-12-19", &title), None)
                        .await;
                    ids.push(reply.unwrap().entry.id.get());
                }
                ids
            }));
        }
        for writer in writers {
            let ids = writer.await.unwrap();
            assert!(
                ids.windows(2).all(|pair| pair[0] < pair[1]),
                "acknowledged ids increase: {ids:?}"
            );
        }
        app.shutdown().await;

        let app = start(dir.path()).await;
        let stored = all_titles(&app, "shared").await;
        assert_eq!(stored.len(), n_writers * n_writes);
        for writer in 0..n_writers {
            let sequence: Vec<usize> = stored
                .iter()
                .filter_map(|(_, title)| title.strip_prefix(&format!("{writer}:")))
                .map(|n| n.parse().unwrap())
                .collect();
            assert_eq!(
                sequence,
                (0..n_writes).collect::<Vec<_>>(),
                "writer {writer} stored in send order"
            );
        }
        app.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_are_committed_in_groups() {
        let dir = tempfile::tempdir().unwrap();
        let app = start(dir.path()).await;
        let writes = (0..1_000).map(|n| {
            let cache = app.cache().clone();
            tokio::spawn(async move {
                let list = name(&format!("list {}", n % 100));
                cache.add_entry(&list, entry("2018-12-19", "x"), None).await
            })
        });
        for write in writes.collect::<Vec<_>>() {
            assert!(write.await.unwrap().is_ok());
        }
        let stats = app.cache().database().stats();
        assert_eq!(stats.writes_committed(), 1_000);
        assert!(
            stats.commits() < 200,
            "1,000 concurrent writes took {} commits",
            stats.commits()
        );
        println!(
            "1,000 concurrent writes: {} commits, {:.1} writes per commit",
            stats.commits(),
            stats.writes_committed() as f64 / stats.commits() as f64
        );
        app.shutdown().await;
    }
}
