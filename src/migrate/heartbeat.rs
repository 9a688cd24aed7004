//! The heartbeat of a long migration: while a statement runs past a few seconds, a line every
//! few seconds with the elapsed time and, read from a second connection, what the statement
//! waits for and who holds it.
//!
//! Owns the timing of the beats and the second connection (opened per beat, bounded by
//! `connect_timeout`, closed after). It must never delay or change the migration: the
//! migration's future is polled all the while, a beat is abandoned the moment the migration
//! ends, and a failure of the second connection is logged once at debug, after which the beats
//! carry on with the elapsed time only. The catalog queries live in the engine modules.

use std::future::Future;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::backend::Backend;
use super::human;
use crate::config::{DatabaseUrl, DeployInfo, Engine, EngineSettings};

/// The first beat comes this long after a migration started (or half of `lock_timeout`, when
/// that is sooner: a statement waiting on a lock is caught waiting before it gives up), then
/// one every [`EVERY`].
pub const FIRST: Duration = Duration::from_secs(5);
/// Time between beats.
pub const EVERY: Duration = Duration::from_secs(5);

/// What a statement waits for, as the server's catalogs tell it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Wait {
    /// The lock waited for: a relation's name (`users`) or, without one, the lock's type
    /// (`transactionid`).
    pub lock: Option<String>,
    /// The session holding it, when the server names one.
    pub holder: Option<Holder>,
    /// What the server says the statement is doing (MySQL's processlist state, e.g.
    /// `Waiting for table metadata lock`).
    pub state: Option<String>,
    /// Where the holder was read (MySQL: [`METADATA_LOCKS`], or [`OPEN_TRANSACTIONS`] when no
    /// metadata lock instrumentation is available: then `holder` is the oldest open transaction
    /// on the database, the likely holder, not a certain one). `None` on PostgreSQL, whose
    /// `pg_blocking_pids` is certain.
    pub via: Option<&'static str>,
}

/// MySQL's metadata lock instrumentation (`performance_schema.metadata_locks`): the session
/// holding the lock the statement waits for.
pub const METADATA_LOCKS: &str = "performance_schema.metadata_locks";
/// Without it (MariaDB's default): `information_schema.INNODB_TRX` and the processlist, the
/// oldest open transaction of another session on the same database.
pub const OPEN_TRANSACTIONS: &str = "information_schema.INNODB_TRX";

/// The session a statement waits for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Holder {
    /// Server process (PostgreSQL) or connection (MySQL) id.
    pub pid: i64,
    /// Its `application_name`.
    pub application: Option<String>,
    /// Its client address (none over a Unix socket).
    pub client: Option<String>,
    /// Its state (`idle in transaction`, `active`).
    pub state: Option<String>,
    /// How long it has been in that state, in milliseconds.
    pub state_ms: Option<u64>,
    /// How long its transaction has been open, in milliseconds.
    pub xact_ms: Option<u64>,
}

impl std::fmt::Display for Wait {
    /// `a lock on users held by pid 4242 (app, idle in transaction for 3m12s)`; with only a
    /// likely holder (MySQL without instrumentation): `a lock (Waiting for table metadata
    /// lock); the oldest open transaction on this database: pid 12 (…)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.lock {
            Some(lock) => write!(f, "a lock on {lock}")?,
            None => write!(f, "a lock")?,
        }
        if let Some(h) = &self.holder {
            if self.via == Some(OPEN_TRANSACTIONS) {
                if let Some(state) = &self.state {
                    write!(f, " ({state})")?;
                }
                write!(
                    f,
                    "; the oldest open transaction on this database: pid {}",
                    h.pid
                )?;
            } else {
                write!(f, " held by pid {}", h.pid)?;
            }
            let mut about = Vec::new();
            if let Some(app) = h.application.as_deref().filter(|a| !a.is_empty()) {
                about.push(app.to_owned());
            }
            if let Some(client) = &h.client {
                about.push(format!("from {client}"));
            }
            match (&h.state, h.state_ms) {
                (Some(state), Some(ms)) => {
                    about.push(format!("{state} for {}", human(Duration::from_millis(ms))))
                }
                (Some(state), None) => about.push(state.clone()),
                _ => {}
            }
            if !about.is_empty() {
                write!(f, " ({})", about.join(", "))?;
            }
        } else if let Some(state) = &self.state {
            write!(f, " ({state})")?;
        }
        Ok(())
    }
}

/// How to open the second connection, and which server session to ask about.
#[derive(Debug, Clone)]
pub struct Probe {
    url: DatabaseUrl,
    settings: EngineSettings,
    deploy: DeployInfo,
    /// The run's server session; `None` where the engine has none to ask about (SQLite), or
    /// it is unknown: the beats then carry the elapsed time only.
    session: Option<i64>,
}

impl Probe {
    /// A probe of the run on `backend`.
    pub fn of(backend: &Backend, settings: &EngineSettings, deploy: &DeployInfo) -> Probe {
        Probe {
            url: backend.url().clone(),
            settings: settings.clone(),
            deploy: deploy.clone(),
            session: match backend.engine() {
                Engine::Sqlite => None,
                _ => backend.session_id(),
            },
        }
    }

    /// When the first beat comes: see [`FIRST`].
    fn first(&self) -> Duration {
        match self.settings.lock_timeout / 2 {
            half if !half.is_zero() && half < FIRST => half,
            _ => FIRST,
        }
    }

    /// What the run's statement waits for, from a second connection; `Ok(None)` when it waits
    /// for nothing the server reports.
    async fn wait(&self) -> Result<Option<Wait>, String> {
        let Some(session) = self.session else {
            return Ok(None);
        };
        let connect = Backend::connect(&self.url, &self.settings, &self.deploy);
        let mut second = match tokio::time::timeout(self.settings.connect_timeout, connect).await {
            Ok(Ok(b)) => b,
            Ok(Err(e)) => return Err(e.to_string()),
            Err(_) => {
                return Err(format!(
                    "no connection within connect_timeout ({})",
                    human(self.settings.connect_timeout)
                ))
            }
        };
        // Bounded even when `io_timeout` is off: a beat that cannot answer in time says so.
        let wait = match tokio::time::timeout(EVERY, second.wait_of(session)).await {
            Ok(wait) => wait.map_err(|e| e.to_string()),
            Err(_) => Err(format!("no answer within {}", human(EVERY))),
        };
        second.close().await;
        wait
    }
}

/// One beat, for the log line and the progress display.
#[derive(Debug, Clone)]
pub struct Beat {
    /// Time since the migration started.
    pub elapsed: Duration,
    /// What it waits for, when the second connection could tell.
    pub wait: Option<Wait>,
}

/// Runs `work` to its end, calling `beat` every [`EVERY`] once it has run [`FIRST`] (or half
/// of `lock_timeout`). The work
/// is polled throughout: a beat in progress is dropped (its connection with it) when the work
/// ends, and nothing a beat does reaches the work.
pub async fn watched<T>(
    work: impl Future<Output = T>,
    probe: &Probe,
    mut beat: impl FnMut(&Beat),
) -> T {
    tokio::pin!(work);
    let started = Instant::now();
    let mut next = tokio::time::Instant::now() + probe.first();
    let mut quiet = false;
    loop {
        tokio::select! {
            out = &mut work => return out,
            () = tokio::time::sleep_until(next) => {}
        }
        let wait = tokio::select! {
            out = &mut work => return out,
            wait = probe.wait() => wait,
        };
        let wait = match wait {
            Ok(wait) => wait,
            Err(error) => {
                if !quiet {
                    tracing::debug!(error = %error, "heartbeat: the second connection could not say what the migration waits for; reporting elapsed time only");
                    quiet = true;
                }
                None
            }
        };
        beat(&Beat {
            elapsed: started.elapsed(),
            wait,
        });
        next = tokio::time::Instant::now() + EVERY;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_names_the_lock_and_its_holder() {
        let holder = Holder {
            pid: 4242,
            application: Some("app".into()),
            client: None,
            state: Some("idle in transaction".into()),
            state_ms: Some(192_000),
            xact_ms: Some(200_000),
        };
        let cases = [
            (
                Wait {
                    lock: Some("users".into()),
                    holder: Some(holder.clone()),
                    state: None,
                    via: None,
                },
                "a lock on users held by pid 4242 (app, idle in transaction for 3m12s)",
            ),
            (
                Wait {
                    lock: Some("transactionid".into()),
                    holder: Some(Holder {
                        client: Some("10.0.0.7".into()),
                        application: Some(String::new()),
                        ..holder.clone()
                    }),
                    state: None,
                    via: None,
                },
                "a lock on transactionid held by pid 4242 (from 10.0.0.7, idle in transaction for 3m12s)",
            ),
            (
                Wait {
                    lock: None,
                    holder: None,
                    state: Some("Waiting for table metadata lock".into()),
                    via: None,
                },
                "a lock (Waiting for table metadata lock)",
            ),
            (
                Wait {
                    lock: None,
                    holder: Some(Holder {
                        pid: 12,
                        application: None,
                        client: Some("10.0.0.7:5120".into()),
                        ..holder.clone()
                    }),
                    state: Some("Waiting for table metadata lock".into()),
                    via: Some(OPEN_TRANSACTIONS),
                },
                "a lock (Waiting for table metadata lock); the oldest open transaction on this database: pid 12 (from 10.0.0.7:5120, idle in transaction for 3m12s)",
            ),
        ];
        for (wait, text) in cases {
            assert_eq!(wait.to_string(), text);
        }
    }
}
