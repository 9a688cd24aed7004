//! `shipgate adopt`: take another tool's history over.

use crate::cli;
use crate::config::Config;
use crate::exit::{Exit, Failure};
use crate::migrate::{self, Interrupt};

use super::locked_change;

/// `shipgate adopt [--from TOOL] [--dry-run] --reason …`.
pub async fn adopt(
    args: &cli::Adopt,
    config: &Config,
    interrupt: Interrupt,
) -> Result<Exit, Failure> {
    if !args.dry_run && matches!(args.reason.as_deref().map(str::trim), None | Some("")) {
        return Err(Failure::new(
            Exit::Usage,
            anyhow::anyhow!(
                "adopt needs --reason \"why\" (written to the audit table); nothing was changed"
            ),
        ));
    }
    locked_change(config, interrupt, async |backend, set, interrupt| {
        migrate::adopt::adopt(
            backend,
            set,
            args.from.as_deref(),
            args.dry_run,
            args.reason.as_deref(),
            &config.engine,
            &config.deploy,
            interrupt,
        )
        .await
    })
    .await
}
