//! `GET /migrations/status`: the bearer token, the fields of SPEC §6, a run recorded by another
//! process, the migration in progress during `release --serve`, and a burst of requests served
//! from the cache rather than the database.

use std::time::{Duration, Instant};

use crate::support::{
    assert_secret_free, block_on, Db, Engine, Project, Run, Service, DB_PASSWORD, STATUS_TOKEN,
};

const BOUND: Duration = Duration::from_secs(15);

/// Polls the status document until `accept` takes it.
#[track_caller]
fn status_until(
    service: &Service,
    what: &str,
    mut accept: impl FnMut(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let response = service.poll(what, "/migrations/status", BOUND, |r| {
        r.status == 200 && accept(&r.json())
    });
    assert_secret_free("/migrations/status", &response.body);
    response.json()
}

#[test]
fn migrations_status_needs_the_token_and_shows_a_run_from_another_process() {
    let db = Db::new(Engine::Postgres);
    let p = Project::with_users();
    p.write(
        "2_plans.up.sql",
        "CREATE TABLE plans (id bigint PRIMARY KEY);\n",
    );
    let mut first = p.platform_command(&db, &["release"]);
    first.env("RAILWAY_DEPLOYMENT_ID", "dep-first");
    let first = Run::wait(first);
    first.code(0).secret_free();
    p.write(
        "3_teams.up.sql",
        "CREATE TABLE teams (id bigint PRIMARY KEY);\n",
    );

    let service = Service::start(p.platform_command(&db, &["serve"]));

    // 401 without the token, with a wrong one, and with the right one in the wrong scheme.
    let wrong_same_length = format!("Bearer {}", "x".repeat(STATUS_TOKEN.len()));
    let prefix = format!("Bearer {}", &STATUS_TOKEN[..STATUS_TOKEN.len() - 1]);
    let longer = format!("Bearer {STATUS_TOKEN}0");
    let basic = format!("Basic {STATUS_TOKEN}");
    for auth in [
        None,
        Some("Bearer wrong"),
        Some(wrong_same_length.as_str()),
        Some(prefix.as_str()),
        Some(longer.as_str()),
        Some(basic.as_str()),
        Some("Bearer "),
    ] {
        let r = service.get_as("/migrations/status", auth);
        assert_eq!(r.status, 401, "Authorization {auth:?}: {r:?}");
        assert_eq!(r.header("www-authenticate"), Some("Bearer"), "{r:?}");
        assert!(r.json()["error"].is_string(), "{r:?}");
        assert!(!r.body.contains("pending"), "no status leaks on 401: {r:?}");
    }
    let ok = service.get("/migrations/status");
    assert_eq!(ok.status, 200, "{ok:?}");
    assert!(
        ok.header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "{ok:?}"
    );

    // The fields of SPEC §6, once the cache has read the database.
    let s = status_until(&service, "the first refresh", |s| s["database_ok"] == true);
    assert_eq!(s["engine"], "postgres", "{s}");
    assert!(
        s["server_version"]
            .as_str()
            .is_some_and(|v| v.starts_with(|c: char| c.is_ascii_digit())),
        "{s}"
    );
    let database = s["database"].as_str().unwrap_or_default();
    assert!(
        database.contains(":***@") && database.contains(db.pg_name()),
        "{s}"
    );
    assert!(!database.contains(DB_PASSWORD), "{s}");
    assert_eq!(s["current_version"], 2, "{s}");
    assert_eq!(s["head_version"], 3, "{s}");
    assert_eq!(s["applied"], 2, "{s}");
    assert_eq!(
        s["pending"],
        serde_json::json!([{"version": 3, "name": "teams"}]),
        "{s}"
    );
    for empty in ["modified", "missing", "dirty", "out_of_order"] {
        assert_eq!(s[empty], serde_json::json!([]), "{empty}: {s}");
    }
    assert!(s["lock_holder"].is_null(), "{s}");
    assert!(
        s["in_progress"].is_null(),
        "no release runs in this process: {s}"
    );
    assert!(s["refreshed_at"].is_string(), "{s}");
    let run = &s["last_run"];
    let first_run_id = run["id"].as_i64().expect("a run id");
    assert_eq!(run["command"], "release", "{s}");
    assert_eq!(run["outcome"], "succeeded", "{s}");
    assert_eq!(run["applied"], 2, "{s}");
    assert_eq!(run["deploy_id"], "dep-first", "{s}");
    assert_eq!(run["host"], format!("it-host:{}", first.pid), "{s}");
    assert!(
        run["started_at"].is_string() && run["finished_at"].is_string(),
        "{s}"
    );
    assert_eq!(service.get("/health/ready").status, 503, "3 is pending");

    // A release in another process, while this one serves.
    let mut second = p.platform_command(&db, &["release"]);
    second.env("RAILWAY_DEPLOYMENT_ID", "dep-second");
    let second = Run::wait(second);
    second.code(0).secret_free();
    let s = status_until(&service, "the other process's run", |s| {
        s["last_run"]["deploy_id"] == "dep-second"
    });
    let run = &s["last_run"];
    assert_eq!(run["outcome"], "succeeded", "{s}");
    assert_eq!(run["applied"], 1, "{s}");
    assert_eq!(run["host"], format!("it-host:{}", second.pid), "{s}");
    assert!(
        run["id"].as_i64().is_some_and(|id| id > first_run_id),
        "{s}"
    );
    assert_eq!(s["current_version"], 3, "{s}");
    assert_eq!(s["pending"], serde_json::json!([]), "{s}");
    service.wait_ready(BOUND);

    service.terminate();
    service.wait(BOUND).code(0).secret_free();
}

#[test]
fn release_serve_shows_the_migration_in_progress_and_who_holds_the_lock() {
    let db = Db::new(Engine::Postgres);
    let p = Project::with_users();
    p.write(
        "2_backfill.up.sql",
        "CREATE TABLE backfill (id bigint);\nSELECT pg_sleep(3);\n",
    );

    let service = Service::start(p.platform_command(&db, &["release", "--serve"]));
    let s = status_until(
        &service,
        "migration 2 in progress with its lock holder",
        |s| s["in_progress"]["current"]["version"] == 2 && !s["lock_holder"].is_null(),
    );
    let progress = &s["in_progress"];
    assert_eq!(progress["current"]["name"], "backfill", "{s}");
    assert!(progress["current"]["started_at"].is_string(), "{s}");
    assert_eq!(progress["applied"], 1, "{s}");
    assert!(progress["run_id"].is_i64(), "{s}");
    let holder = &s["lock_holder"];
    assert!(holder["pid"].is_i64(), "{s}");
    assert!(
        holder["application"]
            .as_str()
            .is_some_and(|a| a.starts_with("shipgate")),
        "{s}"
    );
    let ready = service.get("/health/ready");
    assert_eq!(ready.status, 503, "{ready:?}");
    assert!(
        ready.body.contains("a release is running in this process"),
        "{ready:?}"
    );

    let run = service.wait(BOUND);
    run.code(0).secret_free();
    assert_eq!(db.versions(), [1, 2]);
}

/// Reads of the history table the server has counted for `db` (statistics reach the shared
/// counters within about a second). Every refresh reads it once, and so would any query a
/// request caused; unlike the database's transaction counter, nothing else moves it (that
/// counter also moved under a loaded suite with no statement in the database to show for it).
fn transactions(db: &Db) -> i64 {
    db.int(
        "SELECT COALESCE(seq_scan, 0) + COALESCE(idx_scan, 0) FROM pg_stat_user_tables \
         WHERE relname = 'shipgate_migrations'",
    )
}

#[test]
fn a_burst_of_1000_status_requests_costs_a_handful_of_queries() {
    const REQUESTS: usize = 1000;
    let db = Db::new(Engine::Postgres);
    let p = Project::with_users();
    Run::wait(p.platform_command(&db, &["release"]))
        .code(0)
        .secret_free();
    let service = Service::start(p.platform_command(&db, &["serve"]));
    status_until(&service, "the first refresh", |s| s["database_ok"] == true);
    // Let the statistics of the release and of the refresher's connection setup reach the
    // counters first: under load the server publishes them late, so wait until the counter
    // moves at the refresher's pace rather than a fixed time.
    for _ in 0..15 {
        let a = transactions(&db);
        std::thread::sleep(Duration::from_millis(1200));
        if transactions(&db) - a <= 3 {
            break;
        }
    }

    // Every transaction on this database from here on: the refresher's one statement a
    // second, and whatever the burst causes. Queried from another database, so the counting
    // does not count itself.
    let before = transactions(&db);
    let window = Instant::now();
    let url = format!("http://127.0.0.1:{}/migrations/status", service.port);
    let results = block_on(async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("an HTTP client");
        let mut burst = tokio::task::JoinSet::new();
        for _ in 0..REQUESTS {
            let (client, url) = (client.clone(), url.clone());
            burst.spawn(async move {
                let r = client.get(url).bearer_auth(STATUS_TOKEN).send().await?;
                let status = r.status().as_u16();
                let body = r.text().await?;
                Ok::<_, reqwest::Error>((status, body))
            });
        }
        let mut out = Vec::new();
        while let Some(joined) = burst.join_next().await {
            out.push(joined.expect("a request task").map_err(|e| e.to_string()));
        }
        out
    });
    let burst_took = window.elapsed();
    // Let the server publish the statistics of the last transactions.
    std::thread::sleep(Duration::from_millis(2500));
    let after = transactions(&db);
    let window = window.elapsed();

    assert_eq!(results.len(), REQUESTS);
    for r in &results {
        match r {
            Ok((200, body)) if body.contains("\"database_ok\":true") => {}
            other => panic!("a request of the burst failed: {other:?}"),
        }
    }
    let queries = after - before;
    // One refresh a second over the window, plus slack for statistics published late.
    let allowed = window.as_secs_f64().ceil() as i64 + 5;
    assert!(
        queries >= 1,
        "no transaction counted in {window:?}: the refresher stopped or the counter is wrong"
    );
    assert!(
        queries <= allowed,
        "{REQUESTS} requests in {burst_took:?} made {queries} transactions in {window:?} \
         (at most {allowed}: the cache refreshes once a second)"
    );

    service.terminate();
    service.wait(BOUND).code(0).secret_free();
}

/// MariaDB whose database collation differs from the connection's (Debian's defaults give
/// this): the status refresher's one statement joins shipgate's tables, casts and
/// `information_schema.PROCESSLIST` (utf8mb3), and must still read, so the service turns ready.
#[test]
fn mariadb_with_a_database_collation_unlike_the_connections_turns_ready() {
    let db = Db::new(Engine::Mariadb);
    db.exec(&format!(
        "ALTER DATABASE `{}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
        db.name()
    ));
    let p = Project::with_users();
    Run::wait(p.platform_command(&db, &["release"])).code(0);
    let service = Service::start(p.platform_command(&db, &["serve"]));
    let ready = service.wait_ready(BOUND);
    assert_eq!(ready.json()["status"], "pass", "{ready:?}");
    let status = status_until(&service, "status with history", |s| {
        s["current_version"] == 1
    });
    assert_eq!(status["pending"].as_array().map(Vec::len), Some(0));
    assert!(
        !service.stderr().contains("1271"),
        "collation errors: {}",
        service.stderr()
    );
    service.terminate();
    service.wait(BOUND).code(0);
}

/// While the database does not answer, the status still says which head this build expects
/// (it comes from the files), and readiness says why it is not ready.
#[test]
fn the_head_is_known_while_the_database_is_down() {
    let p = Project::with_users();
    p.write("2_more.up.sql", "CREATE TABLE more (id integer);\n");
    let mut cmd = p.command(None, &["serve", "--connect-timeout", "1s"]);
    cmd.env(
        "DATABASE_URL",
        format!("postgres://u:{DB_PASSWORD}@127.0.0.1:1/db"),
    )
    .env("SHIPGATE_LOG_FORMAT", "json")
    .env("SHIPGATE_STATUS_TOKEN", STATUS_TOKEN)
    .env("PORT", "0");
    let service = Service::start(cmd);
    let s = status_until(&service, "a refresh that failed", |s| {
        s["database_ok"] == false && s["error"] != "not read yet"
    });
    assert_eq!(s["head_version"], 2, "{s}");
    assert_eq!(s["current_version"], serde_json::Value::Null, "{s}");
    let ready = service.get("/health/ready");
    assert_eq!(ready.status, 503, "{ready:?}");
    service.terminate();
    service.wait(BOUND).code(0).secret_free();
}
