//! Log output: the only caller of `tracing_subscriber`.
//!
//! Text when stderr (where logs go) is a terminal; otherwise one JSON object per line with a top-level `message`, a
//! lowercase `level` and flat fields (`migration_version`, `duration_ms`, `deploy_id`), as
//! Railway's log view expects. `RUST_LOG` overrides the level chosen by `-v`/`-q`. Logs go to
//! stderr so that stdout carries only command output (`status --json`, summaries). Driver events
//! known to print secrets are dropped here, whatever `RUST_LOG` says.
//!
//! Text logs on a terminal get a progress display (indicatif): the migration being applied, its
//! elapsed time and what its heartbeat found, on one line redrawn in place, instead of the start
//! and heartbeat lines (`shipgate::progress::start`/`beat`). Other lines are printed above it;
//! it is cleared when the migration ends (`shipgate::progress::end`, on every path) or an error
//! is logged. Elsewhere (JSON, a pipe, a file) those events are ordinary lines with fields.

use std::fmt;
use std::io::IsTerminal;

use tracing::field::{Field, Visit};
use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::EnvFilter;

use crate::cli::Color;
use crate::config::LogFormat;

/// The log format when none is configured: text when stderr, where logs go, is a terminal (a
/// person reads them, whatever stdout is redirected to), JSON lines otherwise.
pub fn default_format() -> LogFormat {
    if std::io::stderr().is_terminal() {
        LogFormat::Text
    } else {
        LogFormat::Json
    }
}

/// Whether text logs are coloured: `--color`, and under `auto` only on a terminal and only
/// when `NO_COLOR` is absent or empty (no-color.org).
fn colored(color: Color, no_color: Option<&std::ffi::OsStr>) -> bool {
    match color {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => no_color.is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal(),
    }
}

/// Installs the global subscriber. `verbosity` is `-v` count minus `-q` count.
pub fn init(format: Option<LogFormat>, verbosity: i8, color: Color) {
    let level = match verbosity {
        ..=-2 => "error",
        -1 => "warn",
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("warn,shipgate={level}")));
    let format = format.unwrap_or_else(default_format);
    // The guard is a global filter on top of `RUST_LOG`: no directive can turn it off.
    let guard = filter_fn(|meta| !echoes_secrets(meta));
    let ansi = colored(color, std::env::var_os("NO_COLOR").as_deref());
    if format == LogFormat::Text && std::io::stderr().is_terminal() {
        let display = Display::default();
        let writer = display.clone();
        // The start and heartbeat lines are the display's; every other line is printed above it.
        let lines = tracing_subscriber::fmt::layer()
            .with_target(false)
            .with_ansi(ansi)
            .with_writer(move || Above(writer.clone()))
            .with_filter(filter_fn(|meta| !transient(meta.target())));
        let result = tracing_subscriber::registry()
            .with(filter)
            .with(guard)
            // The display first: an end event clears it before its line is written.
            .with(display)
            .with(lines)
            .try_init();
        drop(result);
        return;
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Text => builder
            .with_target(false)
            .with_ansi(ansi)
            .finish()
            .with(guard)
            .try_init(),
        LogFormat::Json => builder
            .event_format(FlatJson)
            .finish()
            .with(guard)
            .try_init(),
    };
    // A second init (tests calling `run` twice in one process) keeps the first subscriber.
    drop(result);
}

/// Events of the database driver that print what shipgate must not: sqlx warns about every
/// connection parameter it does not know *with its value* (`?sslpassword=…`, `?PASSWORD=…`),
/// and about a malformed `.pgpass` line by printing the line, password included. Those are
/// dropped whatever the level; shipgate reports connection problems itself, redacted.
fn echoes_secrets(meta: &Metadata<'_>) -> bool {
    match meta.target() {
        "sqlx_postgres::options::parse" => true,
        "sqlx_postgres::options::pgpass" => meta.fields().field("line").is_some(),
        _ => false,
    }
}

/// One JSON object per event: timestamp, lowercase level, message, then the event's fields.
struct FlatJson;

impl<S, N> FormatEvent<S, N> for FlatJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut map = serde_json::Map::new();
        map.insert("timestamp".into(), crate::migrate::now_rfc3339().into());
        map.insert(
            "level".into(),
            event
                .metadata()
                .level()
                .as_str()
                .to_ascii_lowercase()
                .into(),
        );
        map.insert("message".into(), String::new().into());
        map.insert("target".into(), event.metadata().target().into());
        if let Some(span) = ctx.lookup_current() {
            map.insert("span".into(), span.name().into());
        }
        event.record(&mut Fields(&mut map));
        let line = serde_json::to_string(&map).map_err(|_| fmt::Error)?;
        writeln!(writer, "{line}")
    }
}

struct Fields<'a>(&'a mut serde_json::Map<String, serde_json::Value>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().into(), format!("{value:?}").into());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.insert(field.name().into(), value.to_string().into());
    }
}

/// Whether events of `target` are the progress display's own (start and heartbeat lines).
fn transient(target: &str) -> bool {
    matches!(
        target,
        "shipgate::progress::start" | "shipgate::progress::beat"
    )
}

/// The terminal's progress display: one spinner line for the migration being applied.
#[derive(Clone, Default)]
struct Display(std::sync::Arc<std::sync::Mutex<Shown>>);

#[derive(Default)]
struct Shown {
    bar: Option<indicatif::ProgressBar>,
    /// The start line's text, which heartbeats extend.
    applying: String,
}

impl Display {
    fn shown(&self) -> std::sync::MutexGuard<'_, Shown> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn start(&self, message: String) {
        let style = indicatif::ProgressStyle::with_template("{spinner} {msg} {took}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner())
            .with_key(
                "took",
                |state: &indicatif::ProgressState, w: &mut dyn fmt::Write| {
                    let _ = write!(w, "{}", crate::migrate::human(state.elapsed()));
                },
            );
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(style);
        bar.set_message(message.clone());
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        let mut shown = self.shown();
        if let Some(old) = shown.bar.replace(bar) {
            old.finish_and_clear();
        }
        shown.applying = message;
    }

    fn beat(&self, waiting_for: Option<String>) {
        let shown = self.shown();
        if let Some(bar) = &shown.bar {
            let message = match waiting_for {
                Some(w) => format!("{}: waiting for {w}", shown.applying),
                None => shown.applying.clone(),
            };
            bar.set_message(message);
        }
    }

    fn clear(&self) {
        if let Some(bar) = self.shown().bar.take() {
            bar.finish_and_clear();
        }
    }

    /// Writes a log line above the display.
    fn print(&self, buf: &[u8]) -> std::io::Result<()> {
        use std::io::Write as _;
        let shown = self.shown();
        match &shown.bar {
            Some(bar) => bar.suspend(|| std::io::stderr().write_all(buf)),
            None => std::io::stderr().write_all(buf),
        }
    }
}

impl<S: Subscriber> Layer<S> for Display {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let target = event.metadata().target();
        if !target.starts_with("shipgate::progress::") {
            if *event.metadata().level() == tracing::Level::ERROR {
                self.clear();
            }
            return;
        }
        let mut fields = serde_json::Map::new();
        event.record(&mut Fields(&mut fields));
        let text = |key: &str| fields.get(key).and_then(|v| v.as_str()).map(str::to_owned);
        match target {
            "shipgate::progress::start" => self.start(text("message").unwrap_or_default()),
            "shipgate::progress::beat" => self.beat(text("waiting_for")),
            _ => self.clear(),
        }
    }
}

/// The log writer under the progress display.
struct Above(Display);

impl std::io::Write for Above {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.print(buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
