//! `todo`: a concurrent, durable to-do list server.
//!
//! The system of *Elixir in Action*, chapter 7, in Rust: a pure `TodoList` (`list`), one actor per
//! list (`lists`), a `cache` that starts actors on demand, and a `database` whose pool of workers
//! commits writes in groups. `app` starts them in that order and serves them over HTTP (`web`);
//! `remote` carries other nodes' changes to this node's subscribers. `cli` is the `todo` command,
//! and `bench` its load generator. Read the modules in this order.

pub mod accounts;
pub mod app;
pub mod bench;
pub mod cache;
pub mod cli;
pub mod client;
pub mod config;
pub mod credentials;
pub mod database;
#[cfg(test)]
mod fault;
pub mod list;
pub mod lists;
pub mod remote;
pub mod web;
