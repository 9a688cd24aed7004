//! `shipgate history`: the history table as recorded; for an Alembic project, the applied
//! revisions and, from shipgate's audit rows, which release applied each.

use serde_json::json;

use crate::cli;
use crate::config::{Config, RunnerKind};
use crate::exit::{Exit, Failure};
use crate::migrate::{self, Interrupt};

use super::{connect, finish, json_out, out};

/// `shipgate history [--json]`.
pub async fn history(
    args: &cli::History,
    config: &Config,
    mut interrupt: Interrupt,
) -> Result<Exit, Failure> {
    if config.runner.kind == RunnerKind::Alembic {
        return alembic_history(args, config, interrupt).await;
    }
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
        return Ok(Exit::Success);
    }
    let text = |v: Option<&str>| v.unwrap_or("-").to_owned();
    out(super::table(
        &[
            "version",
            "name",
            "state",
            "applied at",
            "took",
            "checksum",
            "deploy",
            "by",
        ],
        &["name", "deploy", "by"],
        rows.iter()
            .map(|r| {
                vec![
                    r.version.to_string(),
                    r.name.clone(),
                    r.state.as_str().to_owned(),
                    text(r.applied_at.as_deref()),
                    migrate::human(std::time::Duration::from_millis(
                        r.execution_ms.max(0) as u64
                    )),
                    r.checksum[..r.checksum.len().min(12)].to_owned(),
                    text(r.deploy_id.as_deref()),
                    text(r.applied_by.as_deref()),
                ]
            })
            .collect(),
    ));
    Ok(Exit::Success)
}

/// `history` of an Alembic project: the revisions `alembic_version`'s rows apply, in upgrade
/// order, each with its message and file and, when a shipgate release applied it, when, by
/// which run and deploy (alembic_version keeps no dates; the release's `upgrade` audit row
/// does); then the rows this build does not know.
async fn alembic_history(
    args: &cli::History,
    config: &Config,
    mut interrupt: Interrupt,
) -> Result<Exit, Failure> {
    use crate::runner::alembic::{applied_by_shipgate, load, read_rows, relative};
    let (project, sources) = load(config).map_err(Failure::from)?;
    let mut backend = connect(config, &config.database, &mut interrupt).await?;
    let result = async {
        let rows = read_rows(&mut backend, config).await;
        let audit = backend
            .read_audit()
            .await
            .map_err(migrate::Error::db("reading the audit table"))?;
        Ok::<_, migrate::Error>((rows, audit))
    }
    .await;
    let (rows, audit) = finish(backend, result).await?;
    let rows = rows.map_err(Failure::from)?;
    let state = project.state(&rows);
    let by = applied_by_shipgate(&audit);
    let applied: Vec<_> = state
        .applied
        .iter()
        .filter_map(|id| project.graph.get(id))
        .map(|r| {
            let by = by.get(r.id.as_str());
            json!({
                "revision": r.id,
                "message": r.message,
                "file": relative(&r.path, &sources.cwd),
                "applied_at": by.map(|b| &b.row.at),
                "run_id": by.and_then(|b| b.run_id),
                "deploy_id": by.and_then(|b| b.row.deploy_id.as_deref()),
                "applied_by": by.map(|b| &b.row.actor),
            })
        })
        .collect();
    if args.json {
        json_out(&json!({
            "runner": "alembic",
            "version_table": config.runner.alembic_version_table.1,
            "current_revisions": rows,
            "applied": applied,
            "unknown": state.unknown,
        }));
        return Ok(Exit::Success);
    }
    if applied.is_empty() && state.unknown.is_empty() {
        out("no revisions applied");
    }
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("-").to_owned();
    let outside = applied.iter().any(|a| a["run_id"].is_null());
    let version_table = &config.runner.alembic_version_table.1;
    let rows = applied
        .iter()
        .map(|a| {
            vec![
                text(&a["revision"]),
                text(&a["message"]),
                text(&a["applied_at"]),
                a["run_id"]
                    .as_i64()
                    .map_or_else(|| "-".to_owned(), |id| id.to_string()),
                text(&a["deploy_id"]),
                text(&a["applied_by"]),
                text(&a["file"]),
            ]
        })
        .chain(state.unknown.iter().map(|r| {
            vec![
                r.clone(),
                format!("unknown (in {version_table}, not in this build)"),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
            ]
        }))
        .collect::<Vec<_>>();
    if !rows.is_empty() {
        out(super::table(
            &[
                "revision",
                "message",
                "applied at",
                "run",
                "deploy",
                "by",
                "file",
            ],
            &["message", "deploy", "by", "file"],
            rows,
        ));
    }
    if outside {
        out("(a revision without a time was applied outside a shipgate release: alembic_version keeps no dates)");
    }
    Ok(Exit::Success)
}
