//! One module per command: each wires config, files and the engine for its command, prints
//! its results and returns an [`Exit`]. Command output (summaries, `--json` documents, tables)
//! goes to stdout; logs go to stderr through `telemetry`.

use std::io::Write;
use std::time::Duration;

use crate::config::{Config, DatabaseUrl};
use crate::exit::{Exit, Failure};
use crate::migrate::apply;
use crate::migrate::backend::Backend;

use crate::migrate::source::{self, MigrationSet};
use crate::migrate::{self, Interrupt};
use crate::version::Version;

pub mod adopt;
pub mod check;
pub mod completions;
pub mod down;
pub mod exec;
pub mod history;
pub mod new;
pub mod release;
pub mod repair;
pub mod serve;
pub mod status;
pub mod up;

fn load_set(config: &Config) -> Result<MigrationSet, Failure> {
    source::load(&config.migrations, &config.layout, config.database_engine())
        .map_err(|e| migrate::Error::Source(e).into())
}

/// The migration files and a connection to the configured database, read and made at once.
async fn load_and_connect(
    config: &Config,
    interrupt: &mut Interrupt,
) -> Result<(MigrationSet, Backend, apply::PlanHistory), Failure> {
    Ok(apply::load_and_connect(
        &config.migrations,
        &config.layout,
        &config.database,
        &config.engine,
        &config.deploy,
        interrupt,
    )
    .await?)
}

async fn connect(
    config: &Config,
    url: &DatabaseUrl,
    interrupt: &mut Interrupt,
) -> Result<Backend, Failure> {
    Ok(apply::connect(url, &config.engine, &config.deploy, interrupt).await?)
}

/// Finishes a run that used `backend`: on interruption end the server session so the lock and
/// the transaction go with it, otherwise close cleanly.
pub(crate) async fn finish<T>(
    backend: Backend,
    result: Result<T, migrate::Error>,
) -> Result<T, Failure> {
    match result {
        Err(e @ migrate::Error::Interrupted(..)) => {
            backend.abort(Duration::from_secs(5)).await;
            Err(e.into())
        }
        other => {
            backend.close().await;
            Ok(other?)
        }
    }
}

pub(crate) fn out(line: impl AsRef<str>) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{}", line.as_ref());
}

fn json_out(value: &serde_json::Value) {
    out(serde_json::to_string_pretty(value).unwrap_or_default());
}

fn version_text(v: Option<&Version>) -> String {
    v.map_or_else(|| "none".into(), Version::to_string)
}

/// Whether stdout and stderr are the same person's terminal: then a fact the logs carry (a
/// migration applied) is not printed on stdout again, which keeps its summary.
fn one_screen() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal() && std::io::stderr().is_terminal()
}

/// `baseline` and `repair`: the files, a connection, one change made under the lock (by
/// `change`), its summary printed.
async fn locked_change(
    config: &Config,
    mut interrupt: Interrupt,
    change: impl AsyncFnOnce(
        &mut Backend,
        &MigrationSet,
        &mut Interrupt,
    ) -> Result<crate::migrate::repair::Change, migrate::Error>,
) -> Result<Exit, Failure> {
    let set = load_set(config)?;
    let mut backend = connect(config, &config.database, &mut interrupt).await?;
    let result = change(&mut backend, &set, &mut interrupt).await;
    let change = finish(backend, result).await?;
    out(change.summary);
    Ok(Exit::Success)
}

/// `rows` under `header` as a table for stdout: on a terminal, ruled and fitted to its width
/// (long cells wrap); otherwise plain columns aligned with spaces, no rules and no wrapping,
/// one line per row, so a pipe to `grep` or `awk` keeps working (`--json` is the stable form).
///
/// On a terminal only the columns named in `wrap` may wrap; the others keep their content's
/// width (a version, a time or a checksum cut in two is harder to read than a long line).
fn table(header: &[&str], wrap: &[&str], rows: Vec<Vec<String>>) -> String {
    use comfy_table::{presets, ColumnConstraint, ContentArrangement, Table};
    use std::io::IsTerminal;
    let mut t = Table::new();
    let terminal = std::io::stdout().is_terminal();
    if terminal {
        t.load_preset(presets::UTF8_HORIZONTAL_ONLY);
        if let Some((_, width)) = console::Term::stdout().size_checked() {
            t.set_width(width);
            t.set_content_arrangement(ContentArrangement::Dynamic);
        }
    } else {
        t.load_preset(presets::NOTHING);
    }
    t.set_header(header.iter().copied());
    for row in rows {
        t.add_row(row);
    }
    for (column, name) in t.column_iter_mut().zip(header) {
        if !terminal {
            column.set_padding((0, 2));
        } else if !wrap.contains(name) {
            column.set_constraint(ColumnConstraint::ContentWidth);
        }
    }
    t.lines()
        .map(|l| l.trim_end().to_owned())
        .collect::<Vec<_>>()
        .join("\n")
}
