//! shipgate's integration tests: the real binary against real PostgreSQL, SQLite and MariaDB
//! databases.
//!
//! One binary (`cargo test --test it`). Every test creates its own database and migrations
//! directory (`support`), so tests run in parallel and in any order. The behaviour is one
//! conformance suite: each test body is written once and instantiated per engine with
//! `on_every_engine!`; where an engine legitimately differs (MySQL's statement-by-statement
//! apply), the body states that engine's expected outcome. A server that is down fails the
//! suite; no engine is ever skipped.

#[macro_use]
mod support;

mod adopt;
mod alembic;
mod alembic_check;
mod alembic_runner;
mod apply;
mod cli;
mod command_runner;
mod concurrency;
mod config_env;
mod connect;
mod corpus;
mod deploy_files;
mod deploy_tools;
mod drift;
mod drift_runners;
mod edits;
mod failures;
mod fault;
mod foreign;
mod layouts;
mod layouts_prisma_atlas;
mod lint;
mod lock;
mod logs;
mod metrics;
mod middleware;
mod pgguard;
mod platform;
mod pooler;
mod progress;
mod real_tools;
mod realworld_constructs;
mod repeatables;
mod runs;
mod secrets;
mod session;
mod shutdown;
mod source;
mod statements;
mod status;
mod status_page;
mod transaction_mode;
mod versions;
mod webhooks;
