//! End-to-end tests of the real `todo` binary as a separate process: the guarantees that only a
//! process boundary can show (SIGKILL, SIGTERM, memory under overload, what lands on disk, and
//! several nodes on one PostgreSQL database).

mod accounts;
mod bad_input;
mod bench;
mod browser;
mod contract;
mod crash;
mod fsync_failure;
mod helpers;
mod multinode;
mod operate;
mod overload;
mod packaging;
#[path = "../support/postgres.rs"]
mod postgres;
mod serve_args;
mod shutdown;
