//! Taking the migration lock: poll with jitter up to the lock wait, say who holds it.
//!
//! Never a blocking acquire: a waiter blocked in the server would sit in the lock queue behind
//! (and deadlock with) `CREATE INDEX CONCURRENTLY`. The holder is logged when the wait starts
//! and every 5 s after.

use std::time::{Duration, Instant};

use super::backend::{Backend, ErrorKind};
use super::{Error, Interrupt};
use crate::retry::Backoff;

const HOLDER_LOG_EVERY: Duration = Duration::from_secs(5);
const POLL_MIN: Duration = Duration::from_millis(50);
const POLL_MAX: Duration = Duration::from_secs(1);
/// The lock is polled (a try, never a blocking wait that would hold a server session in a
/// queue), on the shared schedule: 50 ms doubling to 1 s, jittered.
const POLL: Backoff = Backoff::new(POLL_MIN, POLL_MAX);

/// Takes the lock within `wait`; returns how long it took.
#[tracing::instrument(skip_all, fields(lock_wait_ms = wait.as_millis() as u64))]
pub async fn acquire(
    backend: &mut Backend,
    wait: Duration,
    interrupt: &mut Interrupt,
) -> Result<Duration, Error> {
    let started = Instant::now();
    let mut polls = POLL.delays();
    let mut next_log = started;
    loop {
        let taken = match backend.try_lock().await {
            Ok(taken) => taken,
            Err(error) if error.kind == ErrorKind::Config => {
                return Err(Error::Config {
                    url: backend.url().redacted(),
                    error,
                })
            }
            Err(e) => return Err(Error::db("taking the migration lock")(e)),
        };
        if taken {
            let waited = started.elapsed();
            if waited > POLL_MIN {
                tracing::info!(
                    waited_ms = waited.as_millis() as u64,
                    "migration lock acquired"
                );
            }
            return Ok(waited);
        }
        let elapsed = started.elapsed();
        if elapsed >= wait {
            let holder = backend.lock_holder().await.ok().flatten();
            return Err(Error::LockTimeout {
                waited: elapsed,
                holder,
            });
        }
        if Instant::now() >= next_log {
            match backend.lock_holder().await {
                Ok(Some(h)) => tracing::warn!(
                    holder_pid = h.pid,
                    holder_application = h.application.as_deref().unwrap_or("?"),
                    holder_client = h.client.as_deref().unwrap_or("?"),
                    holder_since = h.since.as_deref().unwrap_or("?"),
                    waited_ms = elapsed.as_millis() as u64,
                    "waiting for the migration lock held by another session"
                ),
                Ok(None) => tracing::warn!(
                    waited_ms = elapsed.as_millis() as u64,
                    "waiting for the migration lock"
                ),
                Err(e) => {
                    tracing::warn!(error = %e, "waiting for the migration lock; its holder could not be read")
                }
            }
            next_log += HOLDER_LOG_EVERY;
        }
        let sleep = polls
            .next()
            .unwrap_or(POLL_MAX)
            .min(wait.saturating_sub(elapsed))
            .max(Duration::from_millis(1));
        tokio::select! {
            () = tokio::time::sleep(sleep) => {}
            signal = interrupt.wait() => return Err(Error::Interrupted(signal, super::Stage::Waiting)),
        }
    }
}

/// Releases the lock and says so when it was not held (it was lost mid-run).
pub async fn release(backend: &mut Backend) {
    match backend.unlock().await {
        Ok(true) => tracing::debug!("migration lock released"),
        Ok(false) => tracing::warn!(
            "the migration lock was not held at release; another session may have run concurrently"
        ),
        Err(e) => {
            tracing::warn!(error = %e, "releasing the migration lock failed; it goes with the session when the connection closes")
        }
    }
}
