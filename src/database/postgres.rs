//! The PostgreSQL backend, for several `todo` nodes on one database.
//!
//! Each database worker owns one connection, driven by a single-threaded runtime on the worker's
//! own thread, so the worker stays a plain blocking loop whatever the backend. The SQL stays
//! portable (no advisory locks, no extensions): the schema is migrated under a row lock, and
//! every commit locks the rows of the lists it writes in name order before checking versions.

use std::collections::HashMap;
use std::time::Duration;

use tokio::runtime::Runtime;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls, Transaction};

use crate::list::{ListName, TodoList};

use super::change::{Conflicts, StorageError, StoredList, VersionedChange};
use super::sql::{
    self, CommitSteps, Param, apply_versioned, corrupt, entry_id, for_postgres, stored_version,
};

/// The schema, one step per version; steps are only ever appended.
const MIGRATIONS: &[&str] = &[
    // 1: lists with their id counter and a version for compare-and-set, and entry rows.
    "CREATE TABLE lists (
        name TEXT PRIMARY KEY,
        next_id BIGINT NOT NULL,
        version BIGINT NOT NULL
    );
    CREATE TABLE entries (
        list TEXT NOT NULL,
        id BIGINT NOT NULL,
        date TEXT NOT NULL,
        title TEXT NOT NULL,
        done BOOLEAN NOT NULL,
        position BIGINT,
        PRIMARY KEY (list, id)
    );",
    // 2: idempotency keys of creates, written in the same transaction as the entry.
    "CREATE TABLE idempotency_keys (
        list TEXT NOT NULL,
        key TEXT NOT NULL,
        entry_id BIGINT NOT NULL,
        PRIMARY KEY (list, key)
    );",
    // 3: a fingerprint of the request that created each key, to refuse a key reused for
    // another request (NULL for keys stored before).
    "ALTER TABLE idempotency_keys ADD COLUMN fingerprint BIGINT;",
];

/// How often a migration is retried when another node is creating the same tables.
const MIGRATION_ATTEMPTS: u32 = 10;

/// One connection to PostgreSQL.
pub struct Postgres {
    runtime: Runtime,
    client: Client,
}

impl From<tokio_postgres::Error> for StorageError {
    fn from(error: tokio_postgres::Error) -> StorageError {
        StorageError::Backend(error.to_string())
    }
}

impl Postgres {
    /// Connects to `url` and migrates the schema, safely when several nodes start at once.
    pub fn connect(url: &str) -> Result<Postgres, StorageError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|error| StorageError::Backend(error.to_string()))?;
        let (client, connection) = runtime.block_on(tokio_postgres::connect(url, NoTls))?;
        // The connection makes progress whenever the worker blocks on this runtime.
        runtime.spawn(async move {
            if let Err(error) = connection.await {
                tracing::warn!(%error, "the PostgreSQL connection ended");
            }
        });
        let mut postgres = Postgres { runtime, client };
        postgres.migrate()?;
        Ok(postgres)
    }

    fn migrate(&mut self) -> Result<(), StorageError> {
        let mut attempt = 1;
        loop {
            match self.try_migrate() {
                Ok(()) => return Ok(()),
                // Two nodes creating the same table at once: one fails; the retry sees it.
                Err(error) if attempt < MIGRATION_ATTEMPTS => {
                    tracing::debug!(%error, attempt, "retrying the migration");
                    std::thread::sleep(Duration::from_millis(50 * u64::from(attempt)));
                    attempt += 1;
                }
                Err(error) => return Err(error),
            }
        }
    }

    fn try_migrate(&mut self) -> Result<(), StorageError> {
        let Postgres { runtime, client } = self;
        runtime.block_on(async {
            client
                .batch_execute(
                    "SET client_min_messages = warning;
                     CREATE TABLE IF NOT EXISTS schema_lock (id INTEGER PRIMARY KEY);
                     INSERT INTO schema_lock VALUES (1) ON CONFLICT DO NOTHING;",
                )
                .await?;
            let transaction = client.transaction().await?;
            // Whoever holds this row lock migrates; the others wait, then find nothing to do.
            transaction
                .execute("SELECT id FROM schema_lock WHERE id = 1 FOR UPDATE", &[])
                .await?;
            transaction
                .batch_execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY)",
                )
                .await?;
            let current: i64 = transaction
                .query_one(
                    "SELECT coalesce(max(version), 0) FROM schema_migrations",
                    &[],
                )
                .await?
                .get(0);
            for (index, migration) in MIGRATIONS.iter().enumerate() {
                let version = index as i64 + 1;
                if version > current {
                    transaction.batch_execute(migration).await?;
                    transaction
                        .execute("INSERT INTO schema_migrations VALUES ($1)", &[&version])
                        .await?;
                }
            }
            transaction.commit().await?;
            Ok(())
        })
    }

    /// Reads one list with its entries, idempotency keys and version.
    pub fn load(&mut self, name: &ListName) -> Result<StoredList, StorageError> {
        let Postgres { runtime, client } = self;
        let name = &name.as_str();
        runtime.block_on(async {
            let row = client
                .query_opt(&for_postgres(sql::SELECT_LIST), &[name])
                .await?;
            let Some(row) = row else {
                return Ok(StoredList::default());
            };
            let (next_id, version) = (entry_id(row.get(0))?, stored_version(row.get(1))?);
            let rows = client
                .query(&for_postgres(sql::SELECT_ENTRIES), &[name])
                .await?;
            let mut entries = Vec::with_capacity(rows.len());
            for row in rows {
                entries.push(sql::entry(
                    row.get(0),
                    row.get(1),
                    row.get(2),
                    row.get(3),
                    row.get(4),
                )?);
            }
            let mut idempotency_keys = HashMap::new();
            for row in client
                .query(&for_postgres(sql::SELECT_KEYS), &[name])
                .await?
            {
                let keyed = sql::keyed_add(row.get(1), row.get(2))?;
                idempotency_keys.insert(row.get::<_, String>(0), keyed);
            }
            let list = TodoList::from_entries(next_id, entries);
            Ok(StoredList {
                list,
                idempotency_keys,
                version,
            })
        })
    }

    /// The list's version, 0 if it has no row.
    pub fn version(&mut self, name: &ListName) -> Result<u64, StorageError> {
        let Postgres { runtime, client } = self;
        let sql = for_postgres(sql::SELECT_VERSION);
        let row = runtime.block_on(client.query_opt(&sql, &[&name.as_str()]))?;
        row.map_or(Ok(0), |row| stored_version(row.get(0)))
    }

    /// Applies the changes in one transaction, with a compare-and-set on each list's version.
    pub fn commit(&mut self, changes: &[VersionedChange<'_>]) -> Result<Conflicts, StorageError> {
        let Postgres { runtime, client } = self;
        let transaction = runtime.block_on(client.transaction())?;
        let mut steps = Steps {
            runtime,
            transaction: &transaction,
        };
        let conflicts = apply_versioned(&mut steps, changes)?;
        runtime
            .block_on(transaction.commit())
            .map_err(commit_error)?;
        Ok(conflicts)
    }

    /// Names of lists holding entries, after `after` in byte order, at most `limit`.
    pub fn list_names(&mut self, after: &str, limit: usize) -> Result<Vec<ListName>, StorageError> {
        let Postgres { runtime, client } = self;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = runtime.block_on(client.query(
            "SELECT name FROM lists WHERE name COLLATE \"C\" > $1
               AND EXISTS (SELECT 1 FROM entries WHERE entries.list = lists.name)
             ORDER BY name COLLATE \"C\" LIMIT $2",
            &[&after, &limit],
        ))?;
        rows.iter()
            .map(|row| ListName::parse(row.get(0)).map_err(corrupt))
            .collect()
    }

    /// Runs a trivial query.
    pub fn ping(&mut self) -> Result<(), StorageError> {
        let Postgres { runtime, client } = self;
        runtime.block_on(client.execute("SELECT 1", &[]))?;
        Ok(())
    }

    /// Whether the connection has closed, so a new one is needed.
    pub fn is_broken(&self) -> bool {
        // The connection task only runs while the worker blocks on the runtime; one turn lets
        // it notice a socket the server has closed since the last statement.
        self.runtime.block_on(tokio::task::yield_now());
        self.client.is_closed()
    }
}

/// An error from `COMMIT`: the server's refusal means rolled back; a lost connection means the
/// commit may or may not have happened.
fn commit_error(error: tokio_postgres::Error) -> StorageError {
    match error.as_db_error() {
        Some(_) => StorageError::from(error),
        None => StorageError::OutcomeUnknown(error.to_string()),
    }
}

/// The transaction, for `apply_versioned`; each statement blocks on the runtime.
struct Steps<'a, 't> {
    runtime: &'a Runtime,
    transaction: &'a Transaction<'t>,
}

impl CommitSteps for Steps<'_, '_> {
    fn execute(&mut self, sql: &'static str, params: &[Param<'_>]) -> Result<u64, StorageError> {
        let params: Vec<&(dyn ToSql + Sync)> = params.iter().map(as_sql).collect();
        let statement = for_postgres(sql);
        // Under READ COMMITTED a second node's claim of a list waits for the first's commit,
        // then finds the version moved on and matches no row: a conflict, never a lost update.
        Ok(self
            .runtime
            .block_on(self.transaction.execute(&statement, &params))?)
    }
}

fn as_sql<'a>(param: &'a Param<'_>) -> &'a (dyn ToSql + Sync) {
    match param {
        Param::Text(text) => text,
        Param::Int(int) => int,
        Param::OptionalInt(int) => int,
        Param::Bool(value) => value,
    }
}
