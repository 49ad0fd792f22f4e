//! `LoginLimiter`: failed logins per user name and per client address, in fixed windows, so a
//! password cannot be guessed at the speed of the server.
//!
//! The counts live in this node's memory: with several nodes behind a proxy that routes by
//! list, a guesser gets each node's allowance, which is still a few guesses a minute.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Failed logins of one user name allowed per window.
pub const MAX_FAILURES_PER_USER: u32 = 5;
/// Failed logins from one address allowed per window (a shared NAT may hold several people).
pub const MAX_FAILURES_PER_ADDRESS: u32 = 20;
/// How long failures count.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Most counters kept; past it, expired ones are dropped first.
const MAX_COUNTERS: usize = 100_000;

/// Who failed: a user name (existing or not) or a client address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    User(String),
    Address(IpAddr),
}

/// Failure counters, each in a window that starts at its first failure.
#[derive(Debug, Default)]
pub struct LoginLimiter {
    counters: Mutex<Counters>,
}

impl LoginLimiter {
    /// Counts a login attempt as a failure before its password is checked, unless `user` or
    /// `address` is already over its limit (`Err(wait)`); one lock for both, so concurrent
    /// guesses cannot all pass the check first. `succeeded` takes the count back.
    pub fn attempt(&self, user: &str, address: Option<IpAddr>) -> Result<(), Duration> {
        let mut counters = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        over_limit(&counters, user, address)?;
        count_failure(&mut counters, user, address);
        Ok(())
    }

    /// Takes back the attempt of a user who just logged in (attempts are counted as failures
    /// before the password is checked, so concurrent guesses count too) and forgets the user's
    /// failures.
    pub fn succeeded(&self, user: &str, address: Option<IpAddr>) {
        let mut counters = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        counters.remove(&Key::User(user.to_owned()));
        if let Some(address) = address
            && let Some((_, failures)) = counters.get_mut(&Key::Address(address))
        {
            *failures = failures.saturating_sub(1);
        }
    }
}

type Counters = HashMap<Key, (Instant, u32)>;

fn over_limit(counters: &Counters, user: &str, address: Option<IpAddr>) -> Result<(), Duration> {
    let now = Instant::now();
    let mut wait = Duration::ZERO;
    for (key, limit) in keys(user, address) {
        if let Some((start, failures)) = counters.get(&key) {
            let age = now.duration_since(*start);
            if age < WINDOW && *failures >= limit {
                wait = wait.max(WINDOW - age);
            }
        }
    }
    if wait.is_zero() { Ok(()) } else { Err(wait) }
}

fn count_failure(counters: &mut Counters, user: &str, address: Option<IpAddr>) {
    let now = Instant::now();
    if counters.len() >= MAX_COUNTERS {
        counters.retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
    }
    for (key, _) in keys(user, address) {
        let counter = counters.entry(key).or_insert((now, 0));
        if now.duration_since(counter.0) >= WINDOW {
            *counter = (now, 0);
        }
        counter.1 += 1;
    }
}

fn keys(user: &str, address: Option<IpAddr>) -> impl Iterator<Item = (Key, u32)> {
    let user = (Key::User(user.to_owned()), MAX_FAILURES_PER_USER);
    let address = address.map(|address| (Key::Address(address), MAX_FAILURES_PER_ADDRESS));
    std::iter::once(user).chain(address)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_is_limited_after_five_failures_from_anywhere() {
        let limiter = LoginLimiter::default();
        for n in 0..MAX_FAILURES_PER_USER {
            let address = Some(IpAddr::from([10, 0, 0, n as u8]));
            assert!(limiter.attempt("alice", address).is_ok(), "failure {n}");
        }
        let wait = limiter.attempt("alice", None).unwrap_err();
        assert!(wait > Duration::from_secs(50) && wait <= WINDOW);
        assert!(limiter.attempt("bob", None).is_ok());
        limiter.succeeded("alice", None);
        assert!(limiter.attempt("alice", None).is_ok());
    }

    #[test]
    fn an_address_is_limited_across_user_names() {
        let limiter = LoginLimiter::default();
        let address = Some(IpAddr::from([192, 0, 2, 1]));
        for n in 0..MAX_FAILURES_PER_ADDRESS {
            assert!(limiter.attempt(&format!("user{n}"), address).is_ok());
        }
        assert!(limiter.attempt("someone-new", address).is_err());
        assert!(limiter.attempt("someone-new", None).is_ok());
    }
}
