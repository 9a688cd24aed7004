//! `shipgate baseline` and `shipgate repair`: history changed by hand, under the lock, audited.

use crate::cli;
use crate::config::Config;
use crate::exit::{Exit, Failure};
use crate::migrate::repair::{self, Action};
use crate::migrate::Interrupt;

use super::locked_change;

/// `shipgate baseline VERSION --reason …`.
pub async fn baseline(
    args: &cli::Baseline,
    config: &Config,
    interrupt: Interrupt,
) -> Result<Exit, Failure> {
    locked_change(config, interrupt, async |backend, set, interrupt| {
        repair::baseline(
            backend,
            set,
            args.version.clone(),
            args.reason.as_deref(),
            &config.engine,
            &config.deploy,
            interrupt,
        )
        .await
    })
    .await
}

/// `shipgate repair --mark-applied | --mark-rolled-back | --accept-checksum V --reason …`.
pub async fn repair(
    args: &cli::Repair,
    config: &Config,
    interrupt: Interrupt,
) -> Result<Exit, Failure> {
    let action = match (
        &args.mark_applied,
        &args.mark_rolled_back,
        &args.accept_checksum,
    ) {
        (Some(v), None, None) => Action::MarkApplied(v.clone()),
        (None, Some(v), None) => Action::MarkRolledBack(v.clone()),
        (None, None, Some(v)) => Action::AcceptChecksum(v.clone()),
        _ => {
            return Err(Failure::new(
                Exit::Usage,
                anyhow::anyhow!(
                "repair takes exactly one of --mark-applied, --mark-rolled-back, --accept-checksum"
            ),
            ))
        }
    };
    // Every repair rewrites history by hand: the audit row must say why.
    if matches!(args.reason.as_deref().map(str::trim), None | Some("")) {
        let (flag, why) = match action {
            Action::AcceptChecksum(_) => ("--accept-checksum", "why the edit is safe"),
            Action::MarkApplied(_) => ("--mark-applied", "how the migration was finished"),
            Action::MarkRolledBack(_) => ("--mark-rolled-back", "how its changes were undone"),
        };
        return Err(Failure::new(
            Exit::Usage,
            anyhow::anyhow!(
                "{flag} needs --reason \"{why}\" (written to the audit table); nothing was changed"
            ),
        ));
    }
    // An edited file is what accept-checksum is for; other problems in the set still stop it.
    locked_change(config, interrupt, async |backend, set, interrupt| {
        repair::repair(
            backend,
            set,
            action,
            args.reason.as_deref(),
            &config.engine,
            &config.deploy,
            interrupt,
        )
        .await
    })
    .await
}
