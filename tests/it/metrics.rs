//! `GET /metrics`: Prometheus text exposition format 0.0.4, parsed strictly here, with the
//! counters of a release run in the same process (`serve --migrate`) moving as it applies.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use crate::support::{assert_secret_free, Db, Engine, Project, Service};

const BOUND: Duration = Duration::from_secs(15);

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A parsed exposition: the samples, and each family's declared type.
#[derive(Debug, Default)]
struct Exposition {
    samples: Vec<Sample>,
    types: HashMap<String, String>,
}

impl Exposition {
    /// The value of the sample `name` whose labels include `labels`.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples
            .iter()
            .find(|s| {
                s.name == name
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|s| s.value)
    }
}

fn is_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A float as the format writes it (Go's ParseFloat, plus `+Inf`, `-Inf`, `NaN`).
fn parse_value(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => s.parse().ok(),
    }
}

/// `{a="x",b="y\"z"}` (after the metric name) → labels and the rest of the line.
fn parse_labels(mut rest: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut labels = BTreeMap::new();
    rest = rest.strip_prefix('{').ok_or("labels must start with {")?;
    loop {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix('}') {
            return Ok((labels, after));
        }
        let (name, after) = rest.split_once('=').ok_or("label without =")?;
        let name = name.trim();
        if !is_label_name(name) {
            return Err(format!("bad label name {name:?}"));
        }
        let mut chars = after
            .strip_prefix('"')
            .ok_or("label value not quoted")?
            .char_indices();
        let mut value = String::new();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c @ ('\\' | '"'))) => value.push(c),
                    other => return Err(format!("bad escape {other:?}")),
                },
                Some((i, '"')) => break i,
                Some((_, c)) => value.push(c),
                None => return Err("unterminated label value".into()),
            }
        };
        if labels.insert(name.to_owned(), value).is_some() {
            return Err(format!("label {name} repeated"));
        }
        rest = &after[end + 2..];
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix(',') {
            rest = after;
        } else if !rest.starts_with('}') {
            return Err("labels must be separated by ,".into());
        }
    }
}

/// The family a sample belongs to, given the declared types (`x_bucket` of histogram `x`).
fn family<'a>(name: &'a str, types: &HashMap<String, String>) -> &'a str {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix) {
            if matches!(
                types.get(base).map(String::as_str),
                Some("histogram" | "summary")
            ) {
                return base;
            }
        }
    }
    name
}

/// Parses Prometheus text format 0.0.4 strictly: every line is blank, a comment, `# HELP`,
/// `# TYPE` (once per family, before its samples) or a sample with a valid name, labels and
/// value; histograms have `le` buckets ending in `+Inf` equal to `_count`.
fn parse(text: &str) -> Result<Exposition, String> {
    let mut out = Exposition::default();
    let mut seen_samples: Vec<String> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let at = |e: String| format!("line {}: {e}: {line:?}", n + 1);
        if line.trim().is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let words: Vec<&str> = comment.split_whitespace().collect();
            match words.as_slice() {
                ["TYPE", name, kind] => {
                    if !is_metric_name(name) {
                        return Err(at("bad metric name".into()));
                    }
                    if !matches!(
                        *kind,
                        "counter" | "gauge" | "histogram" | "summary" | "untyped"
                    ) {
                        return Err(at(format!("unknown type {kind}")));
                    }
                    if seen_samples.iter().any(|s| s == name) {
                        return Err(at("TYPE after the family's samples".into()));
                    }
                    if out
                        .types
                        .insert((*name).to_owned(), (*kind).to_owned())
                        .is_some()
                    {
                        return Err(at("second TYPE for the family".into()));
                    }
                }
                ["TYPE", ..] => return Err(at("malformed TYPE".into())),
                ["HELP", name, ..] if is_metric_name(name) => {}
                ["HELP", ..] => return Err(at("malformed HELP".into())),
                _ => {}
            }
            continue;
        }
        let name_end = line.find(['{', ' ']).ok_or_else(|| at("no value".into()))?;
        let name = &line[..name_end];
        if !is_metric_name(name) {
            return Err(at(format!("bad metric name {name:?}")));
        }
        let (labels, rest) = if line[name_end..].starts_with('{') {
            parse_labels(&line[name_end..]).map_err(at)?
        } else {
            (BTreeMap::new(), &line[name_end..])
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let value = match fields.as_slice() {
            [v] => parse_value(v),
            [v, ts] if ts.parse::<i64>().is_ok() => parse_value(v),
            _ => None,
        }
        .ok_or_else(|| at("bad value".into()))?;
        let fam = family(name, &out.types).to_owned();
        if out.types.get(&fam).map(String::as_str) == Some("counter")
            && (value.is_nan() || value < 0.0)
        {
            return Err(at("negative counter".into()));
        }
        if name.ends_with("_bucket") && fam != name && !labels.contains_key("le") {
            return Err(at("bucket without le".into()));
        }
        seen_samples.push(fam);
        out.samples.push(Sample {
            name: name.to_owned(),
            labels,
            value,
        });
    }
    for (fam, kind) in &out.types {
        if kind != "histogram" {
            continue;
        }
        let buckets: Vec<&Sample> = out
            .samples
            .iter()
            .filter(|s| s.name == format!("{fam}_bucket"))
            .collect();
        if buckets.is_empty() {
            continue;
        }
        let mut previous = 0.0;
        for b in &buckets {
            if b.value < previous {
                return Err(format!("{fam}: buckets not cumulative"));
            }
            previous = b.value;
        }
        let inf = out.value(&format!("{fam}_bucket"), &[("le", "+Inf")]);
        let count = out.value(&format!("{fam}_count"), &[]);
        if inf.is_none() || inf != count {
            return Err(format!(
                "{fam}: +Inf bucket {inf:?} differs from _count {count:?}"
            ));
        }
    }
    Ok(out)
}

#[test]
fn the_exposition_parser_rejects_malformed_text() {
    let good = "# HELP a_total things\n# TYPE a_total counter\na_total{x=\"1\",y=\"q\\\"z\"} 3\n\n\
                # TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 1.5\nh_count 2\n";
    let parsed = parse(good).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(parsed.value("a_total", &[("y", "q\"z")]), Some(3.0));
    for bad in [
        "a b c\n",
        "9metric 1\n",
        "m{x=1} 1\n",
        "m{x=\"1\" 1\n",
        "m one\n",
        "# TYPE m counter\nm -1\n",
        "# TYPE m counter\n# TYPE m gauge\nm 1\n",
        "# TYPE m wat\n",
        "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_count 3\n",
        "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n",
    ] {
        assert!(parse(bad).is_err(), "accepted {bad:?}");
    }
}

/// Scrapes `/metrics`, checks the content type and parses it.
#[track_caller]
fn scrape(service: &Service) -> Exposition {
    let r = service.get("/metrics");
    assert_eq!(r.status, 200, "{r:?}");
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("text/plain") && c.contains("version=0.0.4")),
        "{r:?}"
    );
    assert_secret_free("/metrics", &r.body);
    parse(&r.body).unwrap_or_else(|e| panic!("/metrics is not Prometheus text: {e}\n{}", r.body))
}

#[test]
fn metrics_parse_and_count_the_release_run_by_serve_migrate() {
    let db = Db::new(Engine::Postgres);
    let p = Project::new();
    p.write(
        "1_slow.up.sql",
        "CREATE TABLE slow (id bigint);\nSELECT pg_sleep(2);\n",
    )
    .write("2_quick.up.sql", "CREATE TABLE quick (id bigint);\n");

    let service = Service::start(p.platform_command(&db, &["serve", "--migrate"]));
    // While migration 1 runs, nothing has been applied by this process.
    service.poll(
        "migration 1 in progress",
        "/migrations/status",
        BOUND,
        |r| r.json()["in_progress"]["current"]["version"] == 1,
    );
    let during = scrape(&service);
    assert_eq!(
        during.value("shipgate_migrations_applied_total", &[]),
        Some(0.0)
    );
    assert_eq!(
        during.value("shipgate_migration_failures_total", &[]),
        Some(0.0)
    );
    assert_eq!(service.get("/health/ready").status, 503);

    service.wait_ready(BOUND);
    let after = service.poll(
        "the last-success gauge after the release",
        "/metrics",
        BOUND,
        |r| r.body.contains("shipgate_last_success_timestamp_seconds "),
    );
    assert_secret_free("/metrics", &after.body);
    let after = parse(&after.body).unwrap_or_else(|e| panic!("{e}\n{}", after.body));
    assert_eq!(
        after.value("shipgate_migrations_applied_total", &[]),
        Some(2.0)
    );
    assert_eq!(
        after.value("shipgate_migration_failures_total", &[]),
        Some(0.0)
    );
    assert_eq!(
        after
            .types
            .get("shipgate_migrations_applied_total")
            .map(String::as_str),
        Some("counter")
    );
    assert_eq!(
        after
            .types
            .get("shipgate_migration_duration_seconds")
            .map(String::as_str),
        Some("histogram")
    );
    assert_eq!(
        after.value("shipgate_migration_duration_seconds_count", &[]),
        Some(2.0)
    );
    let total = after
        .value("shipgate_migration_duration_seconds_sum", &[])
        .unwrap_or_default();
    assert!(total >= 2.0, "the slow migration took 2 s: sum {total}");
    assert_eq!(
        after.value("shipgate_lock_wait_seconds_count", &[]),
        Some(1.0)
    );
    assert_eq!(after.value("shipgate_pending_migrations", &[]), Some(0.0));
    assert_eq!(
        after.value(
            "shipgate_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        Some(1.0)
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let last = after
        .value("shipgate_last_success_timestamp_seconds", &[])
        .unwrap_or_default();
    assert!(
        (now - last).abs() < 60.0,
        "last success at {last}, now {now}"
    );

    service.terminate();
    service.wait(BOUND).code(0).secret_free();
}

/// `extract(epoch …)` of the `finished_at` of the newest `shipgate_runs` row matching `filter`.
fn finished_at(db: &Db, filter: &str) -> f64 {
    let rows = db.query(&format!(
        "SELECT CAST(extract(epoch FROM finished_at) AS text) FROM shipgate_runs WHERE {filter} ORDER BY id DESC LIMIT 1"
    ));
    rows.first()
        .and_then(|r| r.first().cloned().flatten())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no run matching {filter}: {rows:?}"))
}

/// Scrapes until `probe` holds, then returns that exposition.
#[track_caller]
fn scrape_until(service: &Service, what: &str, probe: impl Fn(&Exposition) -> bool) -> Exposition {
    let r = service.poll(what, "/metrics", BOUND, |r| {
        parse(&r.body).is_ok_and(|e| probe(&e))
    });
    assert_secret_free("/metrics", &r.body);
    parse(&r.body).unwrap_or_else(|e| panic!("{e}\n{}", r.body))
}

#[test]
fn metrics_read_runs_and_state_from_the_database_and_keep_downs_apart() {
    let db = Db::new(Engine::Postgres);
    let p = Project::new();
    p.write("1_one.up.sql", "CREATE TABLE one (id bigint);\n")
        .write("1_one.down.sql", "DROP TABLE one;\n")
        .write("2_two.up.sql", "CREATE TABLE two (id bigint);\n")
        .write("2_two.down.sql", "DROP TABLE two;\n");
    p.run(&db, &["release"]).code(0);
    // Fails after holding the lock for 2 s.
    p.write(
        "3_broken.up.sql",
        "SELECT pg_sleep(2);\nSELECT no_such_function();\n",
    );
    p.run(&db, &["release"]).code(1);
    let succeeded = finished_at(&db, "outcome = 'succeeded'");
    assert_eq!(
        db.query("SELECT outcome FROM shipgate_runs ORDER BY id DESC LIMIT 1"),
        [[Some("failed".to_owned())]],
        "the newest run failed"
    );

    // A service started after [succeeded, failed]: the last success is the first run's end.
    let service = Service::start(p.platform_command(&db, &["serve"]));
    let start = scrape_until(&service, "the pending gauge", |e| {
        e.value("shipgate_pending_migrations", &[]).is_some()
    });
    let last = start.value("shipgate_last_success_timestamp_seconds", &[]);
    assert!(
        last.is_some_and(|l| (l - succeeded).abs() < 1.0),
        "last success {last:?}, the succeeded run ended at {succeeded}"
    );
    assert_eq!(
        start.value("shipgate_last_down_timestamp_seconds", &[]),
        None
    );
    assert_eq!(start.value("shipgate_pending_migrations", &[]), Some(1.0));
    assert_eq!(start.value("shipgate_dirty_migrations", &[]), Some(0.0));
    assert_eq!(start.value("shipgate_modified_migrations", &[]), Some(0.0));
    assert_eq!(start.value("shipgate_lock_held", &[]), Some(0.0));
    assert_eq!(start.value("shipgate_lock_held_seconds", &[]), Some(0.0));
    // Histograms are there before their first sample, with every bucket at zero.
    for h in [
        "shipgate_migration_duration_seconds",
        "shipgate_lock_wait_seconds",
    ] {
        assert_eq!(start.types.get(h).map(String::as_str), Some("histogram"));
        assert_eq!(start.value(&format!("{h}_count"), &[]), Some(0.0), "{h}");
        assert_eq!(
            start.value(&format!("{h}_bucket"), &[("le", "+Inf")]),
            Some(0.0),
            "{h}"
        );
        assert_eq!(
            start.value(&format!("{h}_bucket"), &[("le", "0.005")]),
            Some(0.0),
            "{h}"
        );
    }

    // A down is its own series and leaves the last success alone.
    p.run(&db, &["down", "--to", "1", "--yes"]).code(0);
    let down = finished_at(&db, "command = 'down'");
    let after = scrape_until(&service, "the down gauge", |e| {
        e.value("shipgate_last_down_timestamp_seconds", &[])
            .is_some()
    });
    let last_down = after.value("shipgate_last_down_timestamp_seconds", &[]);
    assert!(
        last_down.is_some_and(|d| (d - down).abs() < 1.0),
        "last down {last_down:?}, the down ended at {down}"
    );
    let last = after.value("shipgate_last_success_timestamp_seconds", &[]);
    assert!(
        last.is_some_and(|l| (l - succeeded).abs() < 1.0),
        "the down is not a release success: last success {last:?}, release at {succeeded}"
    );
    scrape_until(&service, "two pending after the down", |e| {
        e.value("shipgate_pending_migrations", &[]) == Some(2.0)
    });

    // The lock gauges while a release holds the lock (and fails on 3, leaving 1 pending).
    let mut release = p.command(Some(&db), &["release"]);
    let child = crate::support::spawn(&mut release);
    let held = scrape_until(&service, "the lock held", |e| {
        e.value("shipgate_lock_held", &[]) == Some(1.0)
    });
    let age = held
        .value("shipgate_lock_held_seconds", &[])
        .unwrap_or(-1.0);
    assert!((0.0..60.0).contains(&age), "lock held for {age} s");
    crate::support::Run::finish(child, std::time::Instant::now()).code(1);
    scrape_until(&service, "the lock free", |e| {
        e.value("shipgate_lock_held", &[]) == Some(0.0)
            && e.value("shipgate_pending_migrations", &[]) == Some(1.0)
    });

    // The state gauges follow the database.
    db.exec("UPDATE shipgate_migrations SET checksum = 'edited' WHERE version = '1'");
    scrape_until(&service, "one modified", |e| {
        e.value("shipgate_modified_migrations", &[]) == Some(1.0)
    });
    db.exec("UPDATE shipgate_migrations SET state = 'running' WHERE version = '1'");
    scrape_until(&service, "one dirty", |e| {
        e.value("shipgate_dirty_migrations", &[]) == Some(1.0)
    });

    service.terminate();
    service.wait(BOUND).code(0).secret_free();
}
