//! `todo`: a concurrent, durable to-do list server.
//!
//! The system of *Elixir in Action*, chapter 7, in Rust: a pure `TodoList` (`list`), one actor per
//! list (`server`), a `cache` that starts actors on demand, and a `database` whose pool of workers
//! commits writes in groups. `app` starts them in that order. Read the modules in this order.

pub mod list;
pub mod config;
pub mod database;
pub mod server;
pub mod cache;
pub mod app;
#[cfg(any(test, feature = "fault-injection"))]
pub mod fault;
