//! `shipgate down`: revert applied migrations, confirmed first (or `alembic downgrade`).

use std::io::{IsTerminal, Write};

use crate::cli;
use crate::config::{self, Config};
use crate::exit::{Exit, Failure};
use crate::migrate::apply::{self, DownRange};
use crate::migrate::plan::Policy;
use crate::migrate::{self, Interrupt};
use crate::version::Version;

use super::{connect, finish, load_set, out};

fn confirm(prompt: &str) -> bool {
    eprint!("{prompt} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).is_ok() && matches!(answer.trim(), "y" | "Y" | "yes")
}

/// Whether the operator agreed to revert `list`: `--yes`, or a yes on a terminal. Without a
/// terminal and without `--yes` it is a usage error, never a silent yes.
fn revert_confirmed(yes: bool, prompt: &str, list: &[String]) -> Result<bool, Failure> {
    if yes {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        return Err(Failure::new(
            Exit::Usage,
            anyhow::anyhow!(
                "refusing to revert {} without --yes: stdin is not a terminal",
                list.join(", ")
            ),
        ));
    }
    Ok(confirm(prompt))
}

/// `down` for an Alembic project: `alembic downgrade <rev>` under the lock, confirmed first,
/// with a `down` run row and an audit row (`runner::alembic::downgrade`).
async fn alembic_down(
    args: &cli::Down,
    config: &Config,
    mut interrupt: Interrupt,
) -> Result<Exit, Failure> {
    use crate::runner::alembic;
    let Some(target) = args.to.as_deref() else {
        return Err(Failure::new(
            Exit::Usage,
            anyhow::anyhow!(
                "down with runner alembic needs --to REVISION (a revision id, or base); --steps is for shipgate's own files"
            ),
        ));
    };
    let default = ["alembic".to_owned()];
    let argv = config.runner.command.as_deref().unwrap_or(&default);
    let prepared = alembic::prepare(config, argv).map_err(Failure::from)?;
    let mut backend = crate::runner::command::connect(config, &mut interrupt)
        .await
        .map_err(Failure::from)?;
    let rows = alembic::read_rows(&mut backend, config).await;
    backend.close().await;
    let rows = rows.map_err(Failure::from)?;
    let (target, steps) =
        alembic::to_revert(&prepared.project, &rows, target).map_err(Failure::from)?;
    if steps.is_empty() {
        out(format!("nothing to revert: the database is at {target}"));
        return Ok(Exit::Success);
    }
    let list: Vec<String> = steps
        .iter()
        .map(|s| format!("{} ({})", s.revision, s.message))
        .collect();
    if args.dry_run {
        out(format!(
            "dry run: alembic downgrade {target} would revert {} revision(s), newest first: {}; nothing was changed",
            steps.len(),
            list.join(", ")
        ));
        return Ok(Exit::Success);
    }
    let prompt = format!(
        "alembic downgrade {target}: revert {} revision(s): {}?",
        list.len(),
        list.join(", ")
    );
    if !revert_confirmed(args.yes, &prompt, &list)? {
        out("nothing reverted");
        return Ok(Exit::Success);
    }
    let expected: Vec<String> = steps.iter().map(|s| s.revision.clone()).collect();
    let reverted = alembic::downgrade(
        &prepared,
        config,
        &target,
        &expected,
        args.reason.as_deref(),
        &mut interrupt,
    )
    .await
    .map_err(Failure::from)?;
    out(format!(
        "reverted {} revision(s) with alembic downgrade {target}",
        reverted.len()
    ));
    Ok(Exit::Success)
}

/// `shipgate down --to VERSION | --steps N`.
pub async fn down(
    args: &cli::Down,
    config: &Config,
    mut interrupt: Interrupt,
) -> Result<Exit, Failure> {
    if config.runner.kind == config::RunnerKind::Alembic {
        return alembic_down(args, config, interrupt).await;
    }
    let range = match (&args.to, args.steps) {
        (Some(v), _) => DownRange::To(v.parse::<Version>().map_err(|why| {
            Failure::new(
                Exit::Usage,
                anyhow::anyhow!("invalid value '{v}' for '--to <VERSION>': {why}"),
            )
        })?),
        (None, Some(n)) => DownRange::Steps(n),
        (None, None) => {
            return Err(Failure::new(
                Exit::Usage,
                anyhow::anyhow!("down needs --to VERSION or --steps N"),
            ))
        }
    };
    let set = load_set(config)?;
    let mut backend = connect(config, &config.database, &mut interrupt).await?;
    let result = apply::plan(&mut backend, &set, &Policy::default()).await;
    let history = match result {
        Ok((history, _)) => history,
        Err(e) => return finish(backend, Err(e)).await,
    };
    if let Some(r) = history
        .iter()
        .find(|r| r.state == migrate::plan::State::Running)
    {
        tracing::info!(
            migration_version = r.version.field(),
            "migration {} is recorded as running: another run may be applying it; the revert waits for the migration lock and decides under it",
            r.version
        );
    }
    let targets = match apply::select_down(&history, &set, &range, apply::Seen::Unlocked) {
        Ok(t) => t,
        Err(e) => return finish(backend, Err(e)).await,
    };
    if targets.is_empty() {
        backend.close().await;
        out("nothing to revert");
        return Ok(Exit::Success);
    }
    let list: Vec<String> = targets
        .iter()
        .map(|m| format!("{} {}", m.version, m.name))
        .collect();
    if args.dry_run {
        backend.close().await;
        out(format!(
            "dry run: would revert {} migration(s), newest first; nothing was changed",
            targets.len()
        ));
        for m in &targets {
            let Some(down) = &m.down else { continue };
            out(format!(
                "\n-- {} {} ({})",
                m.version,
                m.name,
                down.path.display()
            ));
            out(down.sql.trim_end());
        }
        return Ok(Exit::Success);
    }
    let prompt = format!("revert {} migration(s): {}?", list.len(), list.join(", "));
    match revert_confirmed(args.yes, &prompt, &list) {
        Ok(true) => {}
        Ok(false) => {
            backend.close().await;
            out("nothing reverted");
            return Ok(Exit::Success);
        }
        Err(e) => {
            backend.close().await;
            return Err(e);
        }
    }
    let expected: Vec<Version> = targets.iter().map(|m| m.version.clone()).collect();
    let result = apply::down(
        &mut backend,
        &set,
        range,
        &expected,
        args.reason.as_deref(),
        &config.engine,
        &config.deploy,
        &mut interrupt,
    )
    .await;
    let reverted = finish(backend, result).await?;
    // As `up`: on one screen the log's end line carries each migration.
    if !super::one_screen() {
        for r in &reverted {
            out(format!(
                "reverted {} {} ({})",
                r.version,
                r.name,
                migrate::human(std::time::Duration::from_millis(r.duration_ms))
            ));
        }
    }
    out(format!("reverted {} migration(s)", reverted.len()));
    Ok(Exit::Success)
}
