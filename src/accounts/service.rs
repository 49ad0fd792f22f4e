//! `Accounts`: the server's way to the account tables, with a short memory.
//!
//! Every request of a protected server needs its token looked up, and every `OWNER:LIST` its
//! role. Each answer is kept for `FRESH_FOR` at most, so a busy client costs one query per
//! half second, and a revocation or role change made on any node (or by `todo user` on the
//! storage directly) takes effect everywhere within that time. The queries run on their own
//! connection on the blocking pool, never on a database worker, so they never wait behind a
//! group commit.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use crate::config::DatabaseConfig;
use crate::database::StorageError;
use crate::database::sql::CommitSteps;
use crate::database::storage::Storage;
use crate::list::ListName;

use super::store::{self, LinkRow, TokenKind, TokenRow, UserRow};
use super::{AccountError, Principal, Role, UserName, now, secret};

/// Longest time an answer about tokens, roles, links or whether accounts exist is reused.
pub const FRESH_FOR: Duration = Duration::from_millis(500);
/// How long a login lasts.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);
/// A token's last use is written at most this often, so reads do not become writes.
const TOUCH_EVERY_SECONDS: i64 = 60;
/// When a running server learns that accounts exist, how long after the first it gives leftover
/// lists to the first admin once more: longer than a request may take (`--request-timeout`'s
/// default is 30 s).
const ADOPT_AGAIN_AFTER: Duration = Duration::from_secs(60);
/// Most answers kept per kind; past it, stale ones are dropped.
const MAX_REMEMBERED: usize = 100_000;

/// What a name in a request means for its caller: the list's storage key, and what the
/// caller may do with it (`None`: everything, as its owner).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The storage key (`OWNER_ID:NAME`, or the bare name while no account exists).
    pub key: ListName,
    /// The caller's role; `None` for the owner.
    pub role: Option<Role>,
}

/// A new login.
#[derive(Debug, Clone)]
pub struct Session {
    /// The session token, shown once.
    pub token: String,
    /// When it stops working, in Unix seconds.
    pub expires_at: i64,
}

/// The account tables, shared by every request handler.
#[derive(Clone)]
pub struct Accounts {
    inner: Arc<Inner>,
}

struct Inner {
    config: DatabaseConfig,
    storage: Mutex<Option<Storage>>,
    /// Whether some account exists, as last read.
    exist: AtomicBool,
    /// Whether the server may serve without credentials while no account exists: it is on
    /// loopback, or was told `--insecure-open`.
    allow_open: bool,
    /// Argon2 takes ~19 MiB and tens of milliseconds per hash: a few at a time, or a login
    /// flood would take the machine's memory.
    hashing: Semaphore,
    tokens: Remembered<String, Option<Principal>>,
    owners: Remembered<String, Option<i64>>,
    roles: Remembered<(ListName, i64), Option<Role>>,
    links: Remembered<String, Option<Resolved>>,
}

impl Accounts {
    /// Opens a connection of its own to the configured storage and reads whether accounts
    /// exist; `allow_open` says whether the server may then serve without credentials.
    /// Blocking: call it on the blocking pool.
    pub fn open(config: &DatabaseConfig, allow_open: bool) -> Result<Accounts, StorageError> {
        let mut storage = Storage::open(config)?;
        let n_users = storage.transaction(false, store::count_users)?;
        let n_hashing = std::thread::available_parallelism().map_or(2, usize::from);
        Ok(Accounts {
            inner: Arc::new(Inner {
                config: config.clone(),
                storage: Mutex::new(Some(storage)),
                exist: AtomicBool::new(n_users > 0),
                allow_open,
                hashing: Semaphore::new(n_hashing),
                tokens: Remembered::default(),
                owners: Remembered::default(),
                roles: Remembered::default(),
                links: Remembered::default(),
            }),
        })
    }

    /// Whether requests need no credentials (protected mode is off). A server that may not
    /// run open stays protected also when the last account is removed.
    pub fn is_open(&self) -> bool {
        self.inner.allow_open && !self.exist()
    }

    /// Whether some account exists, as read within the last `FRESH_FOR`.
    pub fn exist(&self) -> bool {
        self.inner.exist.load(Ordering::Relaxed)
    }

    /// Reads every `FRESH_FOR` whether accounts exist, and drops expired tokens once a
    /// minute, until the server stops; errors are logged and retried.
    ///
    /// When accounts appear, lists written under their old keys meanwhile (by requests in
    /// flight as the first account was made) are given to the first admin: at once, and again
    /// once requests that were in flight then have surely ended.
    pub async fn watch(self) {
        let mut ticks = 0u64;
        let mut adopt_at = Vec::new();
        loop {
            tokio::time::sleep(FRESH_FOR).await;
            ticks += 1;
            let sweep = ticks.is_multiple_of(120);
            let adopt = adopt_at.first().is_some_and(|at| Instant::now() >= *at);
            if adopt {
                adopt_at.remove(0);
            }
            let result = self
                .run(sweep || adopt, move |steps| {
                    if sweep {
                        store::remove_expired_tokens(steps, now())?;
                    }
                    if adopt {
                        let adopted = store::adopt_leftovers(steps)?;
                        if adopted > 0 {
                            tracing::info!(
                                adopted,
                                "lists without an owner given to the first admin"
                            );
                        }
                    }
                    Ok(store::count_users(steps)?)
                })
                .await;
            match result {
                Ok(n_users) => {
                    let exist = n_users > 0;
                    if self.inner.exist.swap(exist, Ordering::Relaxed) != exist {
                        tracing::info!(protected = exist, n_users, "accounts changed");
                        if exist {
                            adopt_at = vec![Instant::now(), Instant::now() + ADOPT_AGAIN_AFTER];
                        }
                    }
                }
                Err(error) => tracing::warn!(%error, "cannot read the accounts"),
            }
        }
    }

    /// The user a token belongs to, if the accounts remember it (`None`: not remembered,
    /// ask `authenticate`).
    pub fn remembered(&self, token: &str) -> Option<Option<Principal>> {
        self.inner.tokens.get(&secret::secret_hash(token))
    }

    /// The user a token belongs to, if it is valid and not expired.
    pub async fn authenticate(&self, token: &str) -> Result<Option<Principal>, AccountError> {
        let hash = secret::secret_hash(token);
        if let Some(known) = self.inner.tokens.get(&hash) {
            return Ok(known);
        }
        let ticket = self.inner.tokens.ticket();
        let lookup = hash.clone();
        let found = self
            .run(false, move |steps| {
                let Some(owner) = store::token_owner(steps, &lookup)? else {
                    return Ok(None);
                };
                let valid = secret::same_hash(&owner.hash, &lookup)
                    && owner.expires_at.is_none_or(|expiry| expiry > now());
                Ok(valid.then_some(owner))
            })
            .await?;
        let principal = found.as_ref().map(|owner| Principal {
            id: owner.user.id,
            name: owner.user.name.clone(),
            admin: owner.user.admin,
            token_id: owner.token_id,
        });
        self.inner.tokens.put(hash, principal.clone(), ticket);
        if let Some(owner) = found {
            self.touch(owner.token_id, owner.last_used_at).await;
        }
        Ok(principal)
    }

    /// Records a token's use at most once a minute, in a write transaction of its own (a read
    /// transaction that starts writing may fail on SQLite while the workers commit). Best
    /// effort: the request does not depend on it.
    async fn touch(&self, token: i64, last_used_at: Option<i64>) {
        let now = now();
        if last_used_at.is_some_and(|used| now - used < TOUCH_EVERY_SECONDS) {
            return;
        }
        let touched = self
            .run(true, move |steps| {
                Ok(store::touch_token(steps, token, now)?)
            })
            .await;
        if let Err(error) = touched {
            tracing::debug!(%error, "cannot record a token's use");
        }
    }

    /// Checks a user's password; on success starts a session. `None` when the user does not
    /// exist or the password is wrong, which take the same time.
    pub async fn login(&self, user: &str, password: &str) -> Result<Option<Session>, AccountError> {
        let name = user.to_owned();
        let found = self
            .run(false, move |steps| {
                Ok(store::user_with_password(steps, &name)?)
            })
            .await?;
        let (user, hash) = match found {
            Some((user, hash)) => (Some(user), Some(hash)),
            None => (None, None),
        };
        let password = password.to_owned();
        let matches = self
            .hash(move || secret::verify_password(&password, hash.as_deref()))
            .await?;
        let (Some(user), true) = (user, matches) else {
            return Ok(None);
        };
        let token = secret::new_token()?;
        let hash = secret::secret_hash(&token);
        let expires_at = now() + SESSION_LIFETIME.as_secs() as i64;
        self.run(true, move |steps| {
            let kind = TokenKind::Session;
            Ok(store::create_token(
                steps,
                user.id,
                kind,
                "login",
                &hash,
                now(),
                Some(expires_at),
            )?)
        })
        .await?;
        Ok(Some(Session { token, expires_at }))
    }

    /// Ends the session (or revokes the token) a request came with.
    pub async fn logout(&self, principal: &Principal) -> Result<(), AccountError> {
        self.revoke_token(principal, principal.token_id).await?;
        Ok(())
    }

    /// Makes a user with a password (hashed here); see `store::create_user`.
    pub async fn create_user(
        &self,
        name: UserName,
        password: String,
        admin: bool,
    ) -> Result<UserRow, AccountError> {
        secret::check_password(&password)?;
        let hash = self
            .hash(move || secret::hash_password(&password))
            .await??;
        let (user, _) = self
            .run(true, move |steps| {
                store::create_user(steps, &name, &hash, admin, now())
            })
            .await?;
        // Protected from now on, not from the next look at the accounts.
        self.inner.exist.store(true, Ordering::Relaxed);
        Ok(user)
    }

    /// Every user.
    pub async fn users(&self) -> Result<Vec<UserRow>, AccountError> {
        self.run(false, |steps| Ok(store::users(steps)?)).await
    }

    /// Removes a user and everything they own; see `store::remove_user`.
    pub async fn remove_user(&self, name: UserName) -> Result<UserRow, AccountError> {
        let user = self
            .run(true, move |steps| store::remove_user(steps, &name))
            .await?;
        self.inner.tokens.clear();
        self.inner.roles.clear();
        self.inner.links.clear();
        self.inner.owners.clear();
        Ok(user)
    }

    /// Makes an API token for `principal`; returns it once, with its row.
    pub async fn create_token(
        &self,
        principal: &Principal,
        name: String,
        expires_at: Option<i64>,
    ) -> Result<(TokenRow, String), AccountError> {
        let token = secret::new_token()?;
        let hash = secret::secret_hash(&token);
        let user = principal.id;
        let row = self
            .run(true, move |steps| {
                let kind = TokenKind::Api;
                Ok(store::create_token(
                    steps,
                    user,
                    kind,
                    &name,
                    &hash,
                    now(),
                    expires_at,
                )?)
            })
            .await?;
        Ok((row, token))
    }

    /// The API tokens of `principal`.
    pub async fn tokens(&self, principal: &Principal) -> Result<Vec<TokenRow>, AccountError> {
        let user = principal.id;
        self.run(false, move |steps| Ok(store::tokens(steps, user)?))
            .await
    }

    /// Revokes a token of `principal`; whether it existed. This node forgets every token it
    /// knew, so the revocation is immediate here; other nodes see it within `FRESH_FOR`.
    pub async fn revoke_token(&self, principal: &Principal, id: i64) -> Result<bool, AccountError> {
        let user = principal.id;
        let revoked = self
            .run(true, move |steps| Ok(store::revoke_token(steps, user, id)?))
            .await?;
        self.inner.tokens.clear();
        Ok(revoked)
    }

    /// What `OWNER:LIST` (or `LIST`, with no owner) means for `caller`: `None` when the caller
    /// may not see it, which the API answers as "not found".
    pub async fn resolve(
        &self,
        caller: &Principal,
        owner: Option<&str>,
        list: &ListName,
    ) -> Result<Option<Resolved>, AccountError> {
        let owner = match owner {
            None => caller.id,
            Some(name) if name == caller.name.as_str() => caller.id,
            Some(name) => match self.owner_id(name).await? {
                Some(id) => id,
                None => return Ok(None),
            },
        };
        let key = ListName::owned(owner, list);
        if owner == caller.id {
            return Ok(Some(Resolved { key, role: None }));
        }
        let role = self.role(&key, caller.id).await?;
        Ok(role.map(|role| Resolved {
            key,
            role: Some(role),
        }))
    }

    /// The storage key of `OWNER:LIST`, whoever asks; `None` when no user has that name. Only
    /// for an admin's export and import, which move every list with its owner.
    pub async fn owned_key(
        &self,
        owner: &str,
        list: &ListName,
    ) -> Result<Option<ListName>, AccountError> {
        let id = self.owner_id(owner).await?;
        Ok(id.map(|id| ListName::owned(id, list)))
    }

    async fn owner_id(&self, name: &str) -> Result<Option<i64>, AccountError> {
        if let Some(known) = self.inner.owners.get(name) {
            return Ok(known);
        }
        let ticket = self.inner.owners.ticket();
        let lookup = name.to_owned();
        let id = self
            .run(false, move |steps| {
                Ok(store::user_row(steps, &lookup)?.map(|user| user.id))
            })
            .await?;
        self.inner.owners.put(name.to_owned(), id, ticket);
        Ok(id)
    }

    async fn role(&self, key: &ListName, user: i64) -> Result<Option<Role>, AccountError> {
        let remembered = (key.clone(), user);
        if let Some(known) = self.inner.roles.get(&remembered) {
            return Ok(known);
        }
        let ticket = self.inner.roles.ticket();
        let lookup = key.clone();
        let role = self
            .run(false, move |steps| store::role(steps, &lookup, user))
            .await?;
        self.inner.roles.put(remembered, role, ticket);
        Ok(role)
    }

    /// The lists shared with `principal`, as `OWNER:LIST`.
    pub async fn shared_with(&self, principal: &Principal) -> Result<Vec<String>, AccountError> {
        let user = principal.id;
        self.run(false, move |steps| Ok(store::shared_with(steps, user)?))
            .await
    }

    /// Gives the user named `member` a role in the list `key` of `owner`. `Ok(false)` when no
    /// such user exists; sharing with oneself is refused by the caller.
    pub async fn share(
        &self,
        owner: &Principal,
        key: ListName,
        member: UserName,
        role: Role,
    ) -> Result<bool, AccountError> {
        let owner = owner.id;
        let shared = self
            .run(true, move |steps| {
                let Some(user) = store::user_row(steps, member.as_str())? else {
                    return Ok(false);
                };
                store::share(steps, &key, owner, user.id, role)?;
                Ok(true)
            })
            .await?;
        self.inner.roles.clear();
        Ok(shared)
    }

    /// Takes a member's role in the list `key` away; whether they had one.
    pub async fn unshare(&self, key: ListName, member: UserName) -> Result<bool, AccountError> {
        let removed = self
            .run(true, move |steps| {
                let Some(user) = store::user_row(steps, member.as_str())? else {
                    return Ok(false);
                };
                Ok(store::unshare(steps, &key, user.id)?)
            })
            .await?;
        self.inner.roles.clear();
        Ok(removed)
    }

    /// The members of the list `key`.
    pub async fn members(&self, key: ListName) -> Result<Vec<(UserName, Role)>, AccountError> {
        self.run(false, move |steps| store::members(steps, &key))
            .await
    }

    /// Makes a share link to the list `key`; returns its row and its secret, shown once.
    pub async fn create_link(
        &self,
        key: ListName,
        role: Role,
    ) -> Result<(LinkRow, String), AccountError> {
        let secret = secret::new_link_secret()?;
        let hash = secret::secret_hash(&secret);
        let row = self
            .run(true, move |steps| {
                Ok(store::create_link(steps, &key, role, &hash, now())?)
            })
            .await?;
        Ok((row, secret))
    }

    /// The share links of the list `key`.
    pub async fn links(&self, key: ListName) -> Result<Vec<LinkRow>, AccountError> {
        self.run(false, move |steps| store::links(steps, &key))
            .await
    }

    /// Revokes a share link of the list `key`; whether it existed.
    pub async fn revoke_link(&self, key: ListName, id: i64) -> Result<bool, AccountError> {
        let revoked = self
            .run(true, move |steps| Ok(store::revoke_link(steps, &key, id)?))
            .await?;
        self.inner.links.clear();
        Ok(revoked)
    }

    /// The list a share-link secret opens, and with which role.
    pub async fn link(&self, secret: &str) -> Result<Option<Resolved>, AccountError> {
        let hash = secret::secret_hash(secret);
        if let Some(known) = self.inner.links.get(&hash) {
            return Ok(known);
        }
        let ticket = self.inner.links.ticket();
        let lookup = hash.clone();
        let resolved = self
            .run(false, move |steps| {
                let found = store::link(steps, &lookup)?;
                Ok(found
                    .filter(|(_, _, stored)| secret::same_hash(stored, &lookup))
                    .map(|(key, role, _)| Resolved {
                        key,
                        role: Some(role),
                    }))
            })
            .await?;
        self.inner.links.put(hash, resolved.clone(), ticket);
        Ok(resolved)
    }

    /// Runs `work` in one transaction on the accounts' connection, on the blocking pool;
    /// opens the connection again if it broke.
    async fn run<R: Send + 'static>(
        &self,
        writes: bool,
        work: impl FnOnce(&mut dyn CommitSteps) -> Result<R, AccountError> + Send + 'static,
    ) -> Result<R, AccountError> {
        let inner = self.inner.clone();
        let task = tokio::task::spawn_blocking(move || {
            let mut storage = inner.storage.lock().unwrap_or_else(PoisonError::into_inner);
            let reopen = storage.as_ref().is_none_or(Storage::is_broken);
            if reopen {
                *storage = None;
                *storage = Some(Storage::open(&inner.config)?);
            }
            let Some(storage) = storage.as_mut() else {
                return Err(AccountError::Storage(StorageError::Unavailable));
            };
            storage.transaction(writes, work)
        });
        task.await
            .map_err(|_| AccountError::Storage(StorageError::Unavailable))?
    }

    /// Runs a password hash on the blocking pool, a few at a time.
    async fn hash<R: Send + 'static>(
        &self,
        work: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R, AccountError> {
        let _permit = self
            .inner
            .hashing
            .acquire()
            .await
            .map_err(|_| AccountError::Storage(StorageError::Unavailable))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|error| AccountError::Secret(error.to_string()))
    }
}

/// Answers kept for `FRESH_FOR`. An answer whose query started before the last `clear` (a
/// revocation on this node) is not kept, so a revocation here holds at once.
struct Remembered<K, V> {
    /// The generation (bumped by `clear`) and the answers with when each was read.
    entries: Mutex<Answers<K, V>>,
}

type Answers<K, V> = (u64, HashMap<K, (Instant, V)>);

/// When a query for `Remembered` started, and the generation of the answers then.
#[derive(Clone, Copy)]
struct Ticket {
    at: Instant,
    generation: u64,
}

impl<K, V> Default for Remembered<K, V> {
    fn default() -> Self {
        Remembered {
            entries: Mutex::new((0, HashMap::new())),
        }
    }
}

impl<K: Eq + Hash, V: Clone> Remembered<K, V> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Answers<K, V>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        let entries = self.lock();
        let (at, value) = entries.1.get(key)?;
        (at.elapsed() < FRESH_FOR).then(|| value.clone())
    }

    /// Taken before a query, for `put`: the answer counts as read then.
    fn ticket(&self) -> Ticket {
        Ticket {
            at: Instant::now(),
            generation: self.lock().0,
        }
    }

    fn put(&self, key: K, value: V, ticket: Ticket) {
        let mut entries = self.lock();
        if entries.0 != ticket.generation {
            return;
        }
        if entries.1.len() >= MAX_REMEMBERED {
            entries.1.retain(|_, (at, _)| at.elapsed() < FRESH_FOR);
        }
        entries.1.insert(key, (ticket.at, value));
    }

    fn clear(&self) {
        let mut entries = self.lock();
        entries.0 += 1;
        entries.1.clear();
    }
}
