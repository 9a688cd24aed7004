//! `shipgate drift`: the live schema against the snapshot stored after the last release (of
//! whichever runner: its key is read where `runner::keyed` says), each difference in words and
//! DDL; `--accept` stores the live schema as the new snapshot.

use crate::cli;
use crate::config::Config;
use crate::exit::{Exit, Failure};
use crate::migrate::schema::{self, Verdict};
use crate::migrate::{self, Interrupt};

use super::{connect, finish, json_out, out};

/// `shipgate drift [--json] [--accept [--reason R]]`: exit 0 without drift (and, with a warning,
/// when no snapshot exists yet — nothing to compare is not drift, and a database migrated
/// before snapshots existed must not fail a pipeline — or when a run in progress holds the
/// lock), 5 with drift.
pub async fn drift(
    args: &cli::Drift,
    config: &Config,
    mut interrupt: Interrupt,
) -> Result<Exit, Failure> {
    let mut backend = connect(config, &config.database, &mut interrupt).await?;
    if args.accept {
        let result = schema::accept(
            &mut backend,
            crate::runner::keyed(config),
            &config.drift.ignore,
            args.reason.as_deref(),
            &config.engine,
            &config.deploy,
            &mut interrupt,
        )
        .await;
        let accepted = finish(backend, result).await?;
        if args.json {
            json_out(&serde_json::to_value(&accepted).unwrap_or_default());
        } else {
            out(format!("before: {}", accepted.before.summary()));
            for d in &accepted.before.differences {
                out(format!("  accepted: {d}"));
            }
            out(format!(
                "stored the live schema ({} objects) as the snapshot of {}",
                accepted.objects, accepted.key
            ));
        }
        return Ok(Exit::Success);
    }
    let result = async {
        let keyed = crate::runner::keyed(config);
        let key = schema::head(&mut backend, keyed)
            .await
            .map_err(migrate::Error::db("reading where the database stands"))?;
        schema::compare(&mut backend, keyed, key.as_ref(), &config.drift.ignore)
            .await
            .map_err(migrate::Error::db("reading the schema for the drift check"))
    }
    .await;
    let report = finish(backend, result).await?;
    if args.json {
        json_out(&serde_json::to_value(&report).unwrap_or_default());
    } else {
        out(report.summary());
        for d in &report.differences {
            out(format!("  {d}"));
        }
    }
    match report.state {
        Verdict::Drift => Ok(Exit::Invalid),
        Verdict::NoSnapshot | Verdict::Busy => {
            tracing::warn!("{}", report.summary());
            Ok(Exit::Success)
        }
        Verdict::NoHistory | Verdict::Clean => Ok(Exit::Success),
    }
}
