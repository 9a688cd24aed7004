//! `shipgate serve [--migrate]`: the HTTP service (health, status, metrics) and its status
//! refresher; `--migrate` and `release --serve` run the release flow inside it, readiness
//! answering 503 while the release runs.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::cli;
use crate::config::{Config, RunnerKind};
use crate::exit::{Exit, Failure};
use crate::http::{self, AppState, Metrics, Phase};
use crate::migrate::apply::Progress;
use crate::migrate::{source, Interrupt};
use crate::status;

use super::release::run;

/// `shipgate serve [--migrate]`: serves until SIGTERM/SIGINT, then exits 0.
pub async fn serve(
    args: &cli::Serve,
    config: &Config,
    mut interrupt: Interrupt,
) -> Result<Exit, Failure> {
    let service = Service::start(config, interrupt.clone()).await?;
    if args.migrate {
        service.phase.migrating.store(true, Ordering::SeqCst);
        let exit = run(config, None, interrupt.clone(), &service.progress).await;
        service.phase.migrating.store(false, Ordering::SeqCst);
        match exit {
            Ok(Exit::Success) => {}
            Ok(code @ (Exit::Interrupted | Exit::Terminated)) => {
                // The same signal shuts the server down: readiness 503, delay, drain.
                service.finish().await;
                return Ok(code);
            }
            Ok(code) => {
                // Keep serving so operators can read /migrations/status; readiness stays 503.
                let message = format!("exit code {}", code as u8);
                *service
                    .phase
                    .release_error
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(message);
            }
            Err(f) => {
                *service
                    .phase
                    .release_error
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) =
                    Some(format!("{:#}", f.error));
            }
        }
    }
    // The server shuts itself down on the signal (readiness 503, delay, drain); wait for it.
    interrupt.wait().await;
    service.finish().await;
    Ok(Exit::Success)
}

/// The HTTP service with its status refresher, owned by the command that started it.
pub(crate) struct Service {
    pub(crate) phase: Arc<Phase>,
    pub(crate) progress: Progress,
    stop_refresher: watch::Sender<bool>,
    stop_server: watch::Sender<bool>,
    refresher: tokio::task::JoinHandle<()>,
    server: tokio::task::JoinHandle<()>,
    delay: Duration,
    drain: Duration,
}

impl Service {
    pub(crate) async fn start(
        config: &Config,
        mut interrupt: Interrupt,
    ) -> Result<Service, Failure> {
        let metrics = Metrics::install().map_err(|e| {
            Failure::new(
                Exit::MigrationFailed,
                anyhow::anyhow!("installing the metrics recorder: {e}"),
            )
        })?;
        let listener = bind(config.service.port).await?;
        if let Ok(addr) = listener.local_addr() {
            tracing::info!(address = %addr, port = addr.port(), "listening");
        }
        // Readiness compares the database with what this build's runner applies: shipgate's
        // files (`sql`), the Alembic project's graph (`alembic`, loaded once here), or nothing
        // (`command`: its project may have no migrations directory at all).
        let build = match config.runner.kind {
            RunnerKind::Sql => status::Build::Sql(
                source::load(&config.migrations, &config.layout, config.database_engine())
                    .map_err(|e| e.to_string()),
            ),
            RunnerKind::Alembic => status::Build::Alembic(
                crate::runner::alembic::load(config)
                    .map(|(project, sources)| (project, sources.cwd))
                    .map_err(|e| e.to_string()),
            ),
            RunnerKind::Command => status::Build::Command,
        };
        let (stop_refresher, stop_rx) = watch::channel(false);
        let (cache, refresher) = status::spawn(config.clone(), build, stop_rx);
        let phase = Arc::new(Phase::default());
        let progress = Progress::default();
        let state = AppState {
            cache,
            progress: progress.clone(),
            phase: phase.clone(),
            token: config.service.status_token.clone(),
            session: config
                .service
                .status_token
                .as_ref()
                .map(http::home::session_cookie),
            policy: config.policy.clone(),
            metrics,
            started: Instant::now(),
        };
        let app = http::router(state);
        let (stop_server, mut stop_server_rx) = watch::channel(false);
        let shutdown_phase = phase.clone();
        let delay = config.service.shutdown_delay;
        let shutdown = async move {
            tokio::select! {
                biased;
                signal = interrupt.wait() => {
                    // Readiness turns 503 first and stays reachable for a while, so the
                    // platform's next probe sees it and stops routing traffic here.
                    shutdown_phase.shutting_down.store(true, Ordering::SeqCst);
                    tracing::info!(signal = %signal, delay_ms = delay.as_millis() as u64, "shutting down: readiness answers 503 until the listener closes");
                    tokio::time::sleep(delay).await;
                }
                _ = stop_server_rx.changed() => {}
            }
            shutdown_phase.shutting_down.store(true, Ordering::SeqCst);
        };
        let drain = config.service.shutdown_timeout;
        let server = tokio::spawn(http::serve(
            listener,
            app,
            config.service.request_timeout,
            shutdown,
            drain,
        ));
        Ok(Service {
            phase,
            progress,
            stop_refresher,
            stop_server,
            refresher,
            server,
            delay,
            drain,
        })
    }

    /// Stops accepting now (no readiness delay: nothing routes traffic to a release's
    /// endpoints), drains in-flight requests within the bound, stops the refresher.
    pub(crate) async fn stop(self) {
        let _ = self.stop_server.send(true);
        self.finish().await;
    }

    /// Waits for the server to end (after a signal it turns readiness 503, waits the shutdown
    /// delay, then drains), then stops the refresher.
    pub(crate) async fn finish(self) {
        let bound = self.delay + self.drain + Duration::from_secs(1);
        if tokio::time::timeout(bound, self.server).await.is_err() {
            tracing::warn!("HTTP server did not stop within the shutdown bound");
        }
        let _ = self.stop_refresher.send(true);
        if tokio::time::timeout(Duration::from_secs(5), self.refresher)
            .await
            .is_err()
        {
            tracing::warn!("status refresher did not stop in time");
        }
    }
}

async fn bind(port: u16) -> Result<TcpListener, Failure> {
    match TcpListener::bind(("::", port)).await {
        Ok(l) => Ok(l),
        // A host without IPv6: all IPv4 interfaces instead.
        Err(e)
            if e.kind() == std::io::ErrorKind::AddrNotAvailable || e.raw_os_error() == Some(97) =>
        {
            TcpListener::bind(("0.0.0.0", port)).await.map_err(|e| {
                Failure::new(
                    Exit::Usage,
                    anyhow::anyhow!("cannot listen on 0.0.0.0:{port}: {e}"),
                )
            })
        }
        Err(e) => Err(Failure::new(
            Exit::Usage,
            anyhow::anyhow!("cannot listen on [::]:{port}: {e}"),
        )),
    }
}
