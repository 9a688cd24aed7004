//! `shipgate history`: the history table as recorded.

use crate::cli;
use crate::config::Config;
use crate::exit::{Exit, Failure};
use crate::migrate::{self, Interrupt};

use super::{connect, finish, json_out, out};

/// `shipgate history [--json]`.
pub async fn history(
    args: &cli::History,
    config: &Config,
    mut interrupt: Interrupt,
) -> Result<Exit, Failure> {
    let mut backend = connect(config, &config.database, &mut interrupt).await?;
    let result = backend
        .read_history()
        .await
        .map_err(migrate::Error::db("reading migration history"));
    let rows = finish(backend, result).await?.unwrap_or_default();
    if args.json {
        json_out(&serde_json::to_value(&rows).unwrap_or_default());
        return Ok(Exit::Success);
    }
    if rows.is_empty() {
        out("no migrations applied");
    }
    for r in &rows {
        out(format!(
            "{:<16} {:<8} {:<25} {:>7} ms  {}  deploy {}  by {}  {}",
            r.version,
            r.state.as_str(),
            r.applied_at.as_deref().unwrap_or("-"),
            r.execution_ms,
            &r.checksum[..r.checksum.len().min(12)],
            r.deploy_id.as_deref().unwrap_or("-"),
            r.applied_by.as_deref().unwrap_or("-"),
            r.name
        ));
    }
    Ok(Exit::Success)
}
