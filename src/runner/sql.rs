//! The `sql` runner: shipgate's own engine over the migrations directory, exactly as releases
//! have always run it.
//!
//! `migrate::apply::up` keeps the lock and the run row inside the engine because its every-deploy
//! no-op must take no lock (history is read once, before it) and its release gate runs before
//! the lock; this module only wires the release's options and ends the session on every path.

use std::sync::Arc;
use std::time::Duration;

use crate::config::{AdoptMode, Config};
use crate::migrate::apply::{self, Progress, UpOptions, UpReport};
use crate::migrate::plan::Policy;
use crate::migrate::{self, Interrupt};

/// How long an interrupted run may take to end its server session.
const ABORT_BOUND: Duration = Duration::from_secs(5);

/// Reads the files and connects at once, then applies what is pending as a `release` run.
pub async fn release(
    config: &Config,
    policy: &Policy,
    interrupt: &mut Interrupt,
    progress: &Progress,
) -> Result<UpReport, migrate::Error> {
    let (set, mut backend, history) = apply::load_and_connect(
        &config.migrations,
        &config.layout,
        &config.database,
        &config.engine,
        &config.deploy,
        interrupt,
    )
    .await?;
    let options = UpOptions {
        record_run: Some("release"),
        progress: progress.clone(),
        gate: Some(Arc::new(crate::gate::ReleaseGate(config.lint.clone()))),
        auto_adopt: config.adopt == AdoptMode::Auto,
        drift: Some(Arc::new(crate::gate::DriftGate(config.drift.clone()))),
    };
    let result = apply::up(
        &mut backend,
        &set,
        history,
        policy,
        &config.engine,
        &config.deploy,
        interrupt,
        &options,
    )
    .await;
    match result {
        Err(e @ migrate::Error::Interrupted(..)) => {
            backend.abort(ABORT_BOUND).await;
            Err(e)
        }
        other => {
            backend.close().await;
            other
        }
    }
}
