//! End-to-end tests of the `todo` server over real sockets, in one binary (zero2prod's shape):
//! each module covers one face of the API, and `helpers` starts a fresh server per test.

mod book;
mod cli;
mod helpers;
mod json_api;
mod limits;
mod openapi;
mod ops;
mod restart;
mod todo_backend;
