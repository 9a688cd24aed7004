//! `/metrics`: Prometheus text from the process-wide recorder.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use super::Shared;

/// The Prometheus registry of this process.
#[derive(Clone)]
pub struct Metrics(PrometheusHandle);

const DURATION_BUCKETS: &[f64] = &[0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0, 600.0];

impl Metrics {
    /// Installs the process-wide recorder (once per process) and describes shipgate's metrics.
    pub fn install() -> Result<Metrics, String> {
        let handle = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), DURATION_BUCKETS)
            .map_err(|e| e.to_string())?
            .install_recorder()
            .map_err(|e| e.to_string())?;
        metrics::describe_gauge!(
            "shipgate_build_info",
            "shipgate's version, as a label; always 1"
        );
        metrics::describe_counter!(
            "shipgate_migrations_applied_total",
            "migrations applied by this process"
        );
        metrics::describe_counter!(
            "shipgate_migration_failures_total",
            "migrations that failed in this process"
        );
        metrics::describe_histogram!(
            "shipgate_migration_duration_seconds",
            "time to apply one migration"
        );
        metrics::describe_histogram!(
            "shipgate_lock_wait_seconds",
            "time spent waiting for the migration lock"
        );
        metrics::describe_gauge!(
            "shipgate_pending_migrations",
            "migrations in this build not yet applied"
        );
        metrics::describe_gauge!(
            "shipgate_dirty_migrations",
            "applied migrations left half-done (runner sql)"
        );
        metrics::describe_gauge!(
            "shipgate_modified_migrations",
            "applied migrations whose files changed since (runner sql)"
        );
        metrics::describe_gauge!(
            "shipgate_lock_held",
            "1 while any process holds the migration lock, else 0"
        );
        metrics::describe_gauge!(
            "shipgate_lock_held_seconds",
            "how long the lock holder has been at it (PostgreSQL: its session's age; MySQL: time in its current state; SQLite: since it took the lock); 0 when free"
        );
        metrics::describe_gauge!(
            "shipgate_last_success_timestamp_seconds",
            "end of the newest successful release (not a down), any process, from shipgate_runs"
        );
        metrics::describe_gauge!(
            "shipgate_last_down_timestamp_seconds",
            "end of the newest successful down, any process, from shipgate_runs"
        );
        metrics::gauge!("shipgate_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
        // Present from the first scrape, before anything has happened.
        metrics::counter!("shipgate_migrations_applied_total").absolute(0);
        metrics::counter!("shipgate_migration_failures_total").absolute(0);
        // Registering a histogram renders it with zero buckets until its first sample.
        let _ = metrics::histogram!("shipgate_migration_duration_seconds");
        let _ = metrics::histogram!("shipgate_lock_wait_seconds");
        Ok(Metrics(handle))
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        self.0.render()
    }
}

/// Prometheus text exposition format 0.0.4.
pub async fn render(State(state): State<Shared>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}
