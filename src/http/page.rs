//! The status page's markup: every byte of HTML `serve` sends, written with maud, whose
//! `html!` escapes every value it interpolates. Values from the database (migration names,
//! errors, deploy ids, the lock holder's application name) are untrusted: none is ever
//! written with `PreEscaped`.
//!
//! Pure: functions from what the handlers read (the cached snapshot, the release in this
//! process) to markup. No I/O, no clock but the one the caller passes.

use std::time::Duration;

use maud::{html, Markup, DOCTYPE};

use crate::migrate::apply::ProgressState;
use crate::migrate::backend::RunRow;
use crate::migrate::plan::{Dirty, HistoryRow, State};
use crate::migrate::source::Version;
use crate::status::{AlembicState, BuildState, Snapshot, SqlState};

/// How often the page reloads itself (`<meta http-equiv="refresh">`, no JavaScript).
pub const REFRESH_SECONDS: u32 = 5;

/// The inline style sheet: the page loads nothing else.
const STYLE: &str = "\
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;background:#f6f7f9;color:#1d2430}\
header{background:#1d2430;color:#fff;padding:12px 24px;display:flex;gap:16px;align-items:baseline;flex-wrap:wrap}\
header h1{font-size:18px;margin:0}header .meta{opacity:.8}\
main{padding:16px 24px;display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:16px}\
section{background:#fff;border:1px solid #dde1e7;border-radius:6px;padding:12px 16px;overflow-x:auto}\
section.wide{grid-column:1/-1}h2{font-size:15px;margin:0 0 8px}* + h2{margin-top:14px}\
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:3px 8px 3px 0;vertical-align:top;border-bottom:1px solid #eef0f3}\
th{font-weight:600;color:#4a5568;white-space:nowrap}td.num{text-align:right;font-variant-numeric:tabular-nums}\
code,pre{font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,monospace}pre{white-space:pre-wrap;background:#f1f3f6;padding:8px;margin:4px 0;max-height:240px;overflow:auto}\
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-weight:600;font-size:12px}\
.ok{background:#d9f2e3;color:#17603a}.warn{background:#fdf0d5;color:#7a5200}.bad{background:#fbdcdc;color:#8a1c1c}.info{background:#dde9fb;color:#1e4e8c}\
ul{margin:4px 0;padding-left:20px}.muted{color:#6b7482}\
form{max-width:360px;margin:64px auto;background:#fff;border:1px solid #dde1e7;border-radius:6px;padding:20px}\
input{width:100%;box-sizing:border-box;padding:6px;margin:6px 0 12px;font:inherit}button{font:inherit;padding:6px 14px}\
svg text{font:10px system-ui,sans-serif;fill:#4a5568}";

/// What the page shows besides the snapshot: facts of this process, read by the handler.
#[derive(Debug, Default)]
pub struct Live {
    /// The release running in this process, if one runs.
    pub in_progress: Option<ProgressState>,
    /// Why this process's release failed, if it did.
    pub release_error: Option<String>,
    /// Why readiness answers 503, if it does.
    pub not_ready: Vec<String>,
    /// Now, RFC 3339 (the caller's clock).
    pub now: String,
}

/// The whole status page.
pub fn status(snapshot: &Snapshot, live: &Live) -> Markup {
    let title = if live.in_progress.is_some() {
        "migrating"
    } else if live.not_ready.is_empty() {
        "ready"
    } else {
        "not ready"
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta http-equiv="refresh" content=(REFRESH_SECONDS);
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "shipgate · " (title) }
                style { (maud::PreEscaped(STYLE)) }
            }
            body {
                header {
                    h1 { "shipgate" }
                    span #verdict .badge.(verdict_class(live)) { (title) }
                    span .meta { (snapshot.engine) " · " code { (snapshot.database) } }
                    @if let Some(v) = &snapshot.server_version {
                        span .meta { "server " (v) }
                    }
                    span .meta {
                        "read " (snapshot.refreshed_at.as_deref().unwrap_or("never"))
                        " · page " (live.now) " · reloads every " (REFRESH_SECONDS) " s"
                    }
                }
                main {
                    (readiness(snapshot, live))
                    (release(live))
                    (database(snapshot, live))
                    (lock(snapshot))
                    (runs(&snapshot.recent_runs))
                    (history(&snapshot.recent_history))
                    (chart(&snapshot.recent_history))
                }
            }
        }
    }
}

fn verdict_class(live: &Live) -> &'static str {
    if live.in_progress.is_some() {
        "info"
    } else if live.not_ready.is_empty() {
        "ok"
    } else {
        "bad"
    }
}

fn readiness(snapshot: &Snapshot, live: &Live) -> Markup {
    html! {
        section #readiness {
            h2 { "Readiness" }
            @if live.not_ready.is_empty() {
                p { span .badge.ok { "ready" } " /health/ready answers 200" }
            } @else {
                p { span .badge.bad { "not ready" } " /health/ready answers 503:" }
                ul { @for reason in &live.not_ready { li { (reason) } } }
            }
            @if let Some(e) = &live.release_error {
                p { span .badge.bad { "release failed" } } pre #release-error { (e) }
            }
            @if let Some(e) = &snapshot.error {
                p { "Last read of the database: " } pre { (e) }
            }
            @if let Some(e) = &snapshot.files_error {
                p { "The build's migrations cannot be read:" } pre { (e) }
            }
        }
    }
}

fn release(live: &Live) -> Markup {
    let Some(progress) = &live.in_progress else {
        return html! {};
    };
    html! {
        section #in-progress .wide {
            h2 { "Release in progress in this process" }
            table {
                tr { th { "run" } td { (opt(progress.run_id)) } }
                tr { th { "applied so far" } td { (progress.applied) } }
                @if let Some(c) = &progress.current {
                    tr { th { "migration" } td #current-migration { code { (c.version) } " " (c.name) } }
                    tr { th { "started" } td { (c.started_at) } }
                    @if let (Some(done), Some(total)) = (c.statements_done, c.statements_total) {
                        tr { th { "statements committed" } td { (done) " of " (total) } }
                    }
                    tr {
                        th { "current statement" }
                        td {
                            @match &c.statement {
                                Some(s) => {
                                    "statement " (s.number) ", line " (s.line)
                                    pre #current-statement { (s.sql) }
                                }
                                None => {
                                    span .muted { "the whole file, as one transaction (the server does not say which of its statements runs)" }
                                    @if let Some(sql) = &c.file_sql {
                                        pre #current-statement { (sql) }
                                    }
                                },
                            }
                        }
                    }
                } @else {
                    tr { th { "migration" } td .muted { "between migrations (planning, locking or recording)" } }
                }
            }
        }
    }
}

fn database(snapshot: &Snapshot, live: &Live) -> Markup {
    // The `running` row of the migration this process applies now is not a crash.
    let applying = live
        .in_progress
        .as_ref()
        .and_then(|p| p.current.as_ref())
        .map(|c| &c.version);
    html! {
        section #database {
            h2 { "Database" }
            @match &snapshot.build {
                BuildState::Sql(s) => (sql_state(s, applying)),
                BuildState::Alembic(a) => (alembic_state(a)),
                BuildState::Command { .. } => p .muted { "Runner `command`: its migrations are its own; shipgate cannot tell what is pending." },
            }
        }
    }
}

fn sql_state(s: &SqlState, applying: Option<&Version>) -> Markup {
    let here = |d: &Dirty| d.state == State::Running && Some(&d.version) == applying;
    html! {
        table {
            tr { th { "current" } td #current { (opt(s.current_version.as_ref())) } }
            tr { th { "head" } td #head { (opt(s.head_version.as_ref())) } }
            tr { th { "applied" } td { (s.applied) } }
            tr { th { "pending" } td #pending { (count_badge(s.pending.len(), "warn")) } }
            tr { th { "dirty" } td #dirty { (count_badge(s.dirty.len(), "bad")) } }
            tr { th { "modified" } td #modified { (count_badge(s.modified.len(), "bad")) } }
            tr { th { "missing" } td #missing { (count_badge(s.missing.len(), "warn")) } }
            @if !s.out_of_order.is_empty() {
                tr { th { "out of order" } td { (count_badge(s.out_of_order.len(), "warn")) } }
            }
            @if !s.pending_repeatables.is_empty() {
                tr { th { "repeatables to run" } td { (count_badge(s.pending_repeatables.len(), "warn")) } }
            }
        }
        @if !s.pending.is_empty() {
            h2 { "Pending" }
            ul #pending-list { @for e in &s.pending { li { code { (e.version) } " " (e.name) } } }
        }
        @if !s.dirty.is_empty() {
            h2 { "Dirty" }
            ul #dirty-list {
                @for d in &s.dirty {
                    li {
                        code { (d.version) } " " (d.name) " — " (d.state.as_str()) ", "
                        (d.statements_done) " statement(s) committed"
                        @if here(d) { " " span .badge.info { "being applied by this process" } }
                        @if let Some(e) = &d.error { pre { (e) } }
                    }
                }
            }
            @if s.dirty.iter().any(|d| !here(d)) {
                p .muted { "Finish or undo it by hand, then run " code { "shipgate repair" } "." }
            }
        }
        @if !s.modified.is_empty() {
            h2 { "Modified after being applied" }
            ul { @for m in &s.modified { li { code { (m.version) } " " (m.name) " " code { (m.file) } } } }
        }
        @if !s.missing.is_empty() {
            h2 { "Applied but not in this build" }
            ul { @for e in &s.missing { li { code { (e.version) } " " (e.name) } } }
        }
        @if !s.pending_repeatables.is_empty() {
            h2 { "Repeatables to run again" }
            ul { @for r in &s.pending_repeatables { li { (r.name) " " code { (r.file) } } } }
        }
    }
}

fn alembic_state(a: &AlembicState) -> Markup {
    html! {
        table {
            tr { th { "runner" } td { "alembic (" code { (a.version_table) } ")" } }
            tr { th { "current" } td #current { (list_or_none(&a.current_revisions)) } }
            tr { th { "head" } td #head { (list_or_none(&a.head_revisions)) } }
            tr { th { "applied" } td { (a.applied.len()) } }
            tr { th { "pending" } td #pending { (count_badge(a.pending.len(), "warn")) } }
            tr { th { "unknown" } td { (count_badge(a.unknown.len(), "warn")) } }
            tr { th { "overlapping" } td { (count_badge(a.overlapping.len(), "bad")) } }
        }
        @if !a.pending.is_empty() {
            h2 { "Pending" }
            ul #pending-list {
                @for r in &a.pending { li { code { (r.revision) } " " (r.message) " " code { (r.file) } } }
            }
        }
        @if !a.unknown.is_empty() {
            h2 { "Rows this build does not know" }
            ul { @for r in &a.unknown { li { code { (r) } } } }
        }
        @if !a.overlapping.is_empty() {
            h2 { "Overlapping rows" }
            ul { @for r in &a.overlapping { li { code { (r) } } } }
        }
    }
}

fn lock(snapshot: &Snapshot) -> Markup {
    html! {
        section #lock {
            h2 { "Migration lock" }
            @match &snapshot.lock_holder {
                None => p { span .badge.ok { "free" } },
                Some(h) => table #lock-holder {
                    tr { th { "pid" } td { (opt(h.pid)) } }
                    tr { th { "application" } td { (opt(h.application.as_ref())) } }
                    tr { th { "client" } td { (opt(h.client.as_ref())) } }
                    tr { th { "since" } td { (opt(h.since.as_ref())) } }
                },
            }
        }
    }
}

fn runs(runs: &[RunRow]) -> Markup {
    html! {
        section #runs .wide {
            h2 { "Last runs (shipgate_runs)" }
            @if runs.is_empty() {
                p .muted { "No run recorded yet." }
            } @else {
                table {
                    tr { th { "id" } th { "command" } th { "started" } th { "outcome" } th { "deploy" }
                         th { "duration" } th { "applied" } th { "host" } th { "error" } }
                    @for r in runs {
                        tr {
                            td .num { (r.id) }
                            td { (r.command) }
                            td { (opt(r.started_at.as_ref())) }
                            td { (outcome(r.outcome.as_deref())) }
                            td { (opt(r.deploy_id.as_ref())) }
                            td .num { (run_duration(r)) }
                            td .num { (r.applied) }
                            td { (opt(r.host.as_ref())) }
                            td { @if let Some(e) = &r.error { pre { (e) } } }
                        }
                    }
                }
            }
        }
    }
}

fn outcome(outcome: Option<&str>) -> Markup {
    let class = match outcome {
        Some("succeeded" | "nothing_to_do") => "ok",
        Some("failed") => "bad",
        Some("aborted") => "warn",
        _ => "info",
    };
    html! { span .badge.(class) { (outcome.unwrap_or("running")) } }
}

fn history(rows: &[HistoryRow]) -> Markup {
    html! {
        section #history .wide {
            h2 { "Recent history" }
            @if rows.is_empty() {
                p .muted { "Nothing applied yet." }
            } @else {
                table {
                    tr { th { "version" } th { "name" } th { "state" } th { "applied" } th { "duration" } th { "by" } th { "deploy" } }
                    @for h in rows.iter().rev().take(10) {
                        tr {
                            td { code { (h.version) } }
                            td { (h.name) }
                            td { (h.state.as_str()) }
                            td { (opt(h.applied_at.as_ref())) }
                            td .num { (millis(h.execution_ms)) }
                            td { (opt(h.applied_by.as_ref())) }
                            td { (opt(h.deploy_id.as_ref())) }
                        }
                    }
                }
            }
        }
    }
}

/// A bar per migration (oldest left), its height its duration: inline SVG, drawn here.
fn chart(rows: &[HistoryRow]) -> Markup {
    const WIDTH: f64 = 960.0;
    const HEIGHT: f64 = 180.0;
    const TOP: f64 = 16.0;
    const BOTTOM: f64 = 28.0;
    const LEFT: f64 = 48.0;
    let max = rows
        .iter()
        .map(|r| r.execution_ms)
        .max()
        .unwrap_or(0)
        .max(1);
    let slot = (WIDTH - LEFT) / rows.len().max(1) as f64;
    let plot = HEIGHT - TOP - BOTTOM;
    html! {
        section #durations .wide {
            h2 { "Migration durations (last " (rows.len()) ")" }
            @if rows.is_empty() {
                p .muted { "Nothing applied yet." }
            } @else {
                svg #duration-chart xmlns="http://www.w3.org/2000/svg" role="img" width="100%"
                    viewBox={ "0 0 " (WIDTH) " " (HEIGHT) }
                    aria-label={ "Durations of the last " (rows.len()) " migrations; longest " (millis(max)) } {
                    line x1=(LEFT) y1=(TOP) x2=(LEFT) y2=(HEIGHT - BOTTOM) stroke="#9aa4b2" {}
                    line x1=(LEFT) y1=(HEIGHT - BOTTOM) x2=(WIDTH) y2=(HEIGHT - BOTTOM) stroke="#9aa4b2" {}
                    text x=(LEFT - 4.0) y=(TOP + 4.0) text-anchor="end" { (millis(max)) }
                    text x=(LEFT - 4.0) y=(HEIGHT - BOTTOM) text-anchor="end" { "0" }
                    @for (i, r) in rows.iter().enumerate() {
                        @let h = (r.execution_ms.max(0) as f64 / max as f64 * plot).max(1.0);
                        @let x = LEFT + i as f64 * slot + slot * 0.15;
                        rect .bar x=(x) y=(HEIGHT - BOTTOM - h) width=(slot * 0.7) height=(h)
                            fill=(if r.state.as_str() == "applied" { "#3b7dd8" } else { "#d64545" }) {
                            title { (r.version) " " (r.name) ": " (millis(r.execution_ms)) }
                        }
                        text x=(x + slot * 0.35) y=(HEIGHT - BOTTOM + 12.0) text-anchor="middle" { (r.version) }
                    }
                }
            }
        }
    }
}

/// The small form a browser without the bearer header gets; `error` after a wrong token.
pub fn login(error: Option<&str>) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "shipgate · sign in" }
                style { (maud::PreEscaped(STYLE)) }
            }
            body {
                form #login method="post" action="/" {
                    h2 { "shipgate status" }
                    p .muted { "This page needs the status token (" code { "SHIPGATE_STATUS_TOKEN" } ")." }
                    @if let Some(e) = error { p #login-error .badge.bad { (e) } }
                    label for="token" { "Status token" }
                    input #token type="password" name="token" autocomplete="current-password" required autofocus;
                    button type="submit" { "Sign in" }
                }
            }
        }
    }
}

fn opt(v: Option<impl std::fmt::Display>) -> String {
    v.map_or_else(|| "—".to_owned(), |v| v.to_string())
}

fn list_or_none(v: &[String]) -> String {
    if v.is_empty() {
        "none".to_owned()
    } else {
        v.join(", ")
    }
}

fn count_badge(n: usize, class: &str) -> Markup {
    html! {
        @if n == 0 { span .badge.ok { "0" } } @else { span .badge.(class) { (n) } }
    }
}

fn millis(ms: i64) -> String {
    crate::migrate::human(Duration::from_millis(ms.max(0) as u64))
}

fn run_duration(r: &RunRow) -> String {
    let parse = |s: &Option<String>| {
        s.as_deref().and_then(|s| {
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
        })
    };
    match (parse(&r.started_at), parse(&r.finished_at)) {
        (Some(a), Some(b)) => millis((b - a).whole_milliseconds() as i64),
        _ => "—".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(version: &str, name: &str, ms: i64) -> HistoryRow {
        HistoryRow {
            version: version.parse().expect("a version"),
            name: name.into(),
            checksum: String::new(),
            state: State::Applied,
            statements_done: 0,
            error: None,
            applied_at: Some("2026-01-01T00:00:00Z".into()),
            execution_ms: ms,
            applied_by: None,
            deploy_id: None,
            app_version: None,
        }
    }

    #[test]
    fn values_from_the_database_render_inert() {
        let evil = "<script>alert(1)</script>";
        let markup = history(&[row("1", evil, 5)]).into_string()
            + &chart(&[row("1", evil, 5)]).into_string()
            + &login(Some(evil)).into_string();
        assert!(!markup.contains("<script>"), "{markup}");
        assert!(
            markup.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{markup}"
        );
    }

    #[test]
    fn an_alembic_database_shows_revisions_and_escapes_their_messages() {
        let state = AlembicState {
            runner: "alembic",
            version_table: "alembic_version".into(),
            current_revisions: vec!["ae10".into()],
            head_revisions: vec!["be20".into(), "ce30".into()],
            applied: vec!["ae10".into()],
            pending: vec![crate::status::AlembicRevision {
                revision: "be20".into(),
                message: "add <b>plans</b>".into(),
                file: "versions/be20_plans.py".into(),
            }],
            unknown: Vec::new(),
            overlapping: vec!["0f00".into()],
        };
        let html = alembic_state(&state).into_string();
        assert!(html.contains("<td id=\"current\">ae10</td>"), "{html}");
        assert!(html.contains("<td id=\"head\">be20, ce30</td>"), "{html}");
        assert!(html.contains("add &lt;b&gt;plans&lt;/b&gt;"), "{html}");
        assert!(html.contains("versions/be20_plans.py"), "{html}");
        assert!(html.contains("Overlapping rows"), "{html}");
        assert!(!html.contains("<b>"), "{html}");
    }

    #[test]
    fn a_transactional_file_in_progress_shows_its_sql_escaped() {
        let current = crate::migrate::apply::InProgress {
            version: "7".parse().expect("a version"),
            name: "backfill".into(),
            started_at: "2026-01-01T00:00:00Z".into(),
            statements_done: None,
            statements_total: None,
            statement: None,
            file_sql: Some("UPDATE users SET n = 1 WHERE id <b> 5;".into()),
            waiting_for: None,
        };
        let live = Live {
            in_progress: Some(ProgressState {
                run_id: Some(3),
                current: Some(current),
                applied: 0,
            }),
            release_error: None,
            not_ready: Vec::new(),
            now: "2026-01-01T00:00:01Z".into(),
        };
        let html = release(&live).into_string();
        assert!(
            html.contains("the whole file, as one transaction"),
            "{html}"
        );
        assert!(
            html.contains(
                "<pre id=\"current-statement\">UPDATE users SET n = 1 WHERE id &lt;b&gt; 5;</pre>"
            ),
            "{html}"
        );
        assert!(!html.contains("statements committed"), "{html}");
    }

    #[test]
    fn the_chart_scales_bars_to_the_longest_migration() {
        let svg = chart(&[row("1", "a", 100), row("2", "b", 400)]).into_string();
        assert_eq!(svg.matches("<rect").count(), 2, "{svg}");
        // The plot is 136 px tall: the longest bar fills it, the other is a quarter of it.
        assert!(svg.contains("height=\"136\""), "{svg}");
        assert!(svg.contains("height=\"34\""), "{svg}");
        assert!(svg.contains("400ms"), "{svg}");
    }
}
