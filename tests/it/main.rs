//! shipgate's integration tests: the real binary against real PostgreSQL and SQLite databases.
//!
//! One binary (`cargo test --test it`). Every test creates its own database and migrations
//! directory (`support`), so tests run in parallel and in any order. Behaviour shared by both
//! engines is written once and instantiated per engine with `on_both_engines!`.

#[macro_use]
mod support;

mod apply;
mod cli;
mod concurrency;
mod connect;
mod deploy_files;
mod edits;
mod failures;
mod lock;
mod logs;
mod metrics;
mod platform;
mod shutdown;
mod source;
mod status;
mod webhooks;
