//! End-to-end tests of the `todo` server over real sockets, in one binary (zero2prod's shape):
//! each module covers one face of the API, and `helpers` starts a fresh server per test.
//! `on_postgresql` runs the whole binary once more against a throwaway PostgreSQL cluster.

mod access;
mod book;
mod calendar;
mod cli;
mod edge;
mod events;
mod helpers;
mod json_api;
mod limits;
mod on_postgresql;
mod openapi;
mod ops;
mod portable;
#[path = "../support/postgres.rs"]
mod postgres;
mod restart;
mod todo_backend;
mod webapp;
mod with_accounts;
