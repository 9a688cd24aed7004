//! Where the database and the secrets come from: a platform deploy without a database URL is a
//! configuration error, never the embedded SQLite default; an empty variable is unset and
//! never empties a value from the config file; switches take the usual boolean spellings;
//! a deploy id too long to record is refused before anything connects.

use std::time::Duration;

use crate::support::{Db, Engine, Project, Run, Service, STATUS_TOKEN};

/// One variable per platform, as each sets it in its deploys.
const PLATFORMS: &[(&str, &str, &str)] = &[
    ("Railway", "RAILWAY_ENVIRONMENT", "production"),
    ("Railway", "RAILWAY_DEPLOYMENT_ID", "dep-1"),
    ("Heroku", "DYNO", "release.1"),
    ("Fly.io", "FLY_APP_NAME", "app"),
    ("Render", "RENDER", "true"),
    ("Kubernetes", "KUBERNETES_SERVICE_HOST", "10.0.0.1"),
];

#[test]
fn a_platform_deploy_without_a_database_url_is_refused_and_creates_nothing() {
    let p = Project::with_users();
    for (name, variable, value) in PLATFORMS {
        for args in [
            &["release"][..],
            &["up"],
            &["serve", "--migrate"],
            &["status"],
        ] {
            for url in [None, Some("")] {
                let mut cmd = p.command(None, args);
                cmd.env(variable, value).env("PORT", "0");
                if let Some(url) = url {
                    cmd.env("DATABASE_URL", url);
                }
                let run = Run::wait_within(cmd, Duration::from_secs(20));
                run.code(2)
                    .stderr_has(&["no database URL", "DATABASE_URL", name, variable]);
                assert!(
                    !p.root().join("shipgate.db").exists(),
                    "{args:?} on {name} created the embedded default"
                );
            }
        }
    }
    // `check` without a database and `new` need none.
    let mut check = p.command(None, &["check"]);
    check.env("RAILWAY_ENVIRONMENT", "production");
    Run::wait(check).code(0);
    // Off a platform the embedded default still works, with its one log line.
    p.run_offline(&["up"])
        .code(0)
        .stderr_has(&["using the embedded default"]);
    // On a platform, SQLite on purpose is an explicit URL.
    let mut explicit = p.command(None, &["up"]);
    explicit
        .env("RAILWAY_ENVIRONMENT", "production")
        .env("DATABASE_URL", "sqlite://on-purpose.db");
    Run::wait(explicit).code(0);
    assert!(p.root().join("on-purpose.db").exists());
}

#[test]
fn an_empty_variable_never_overrides_the_config_file() {
    let db = Db::new(Engine::Postgres);
    let p = Project::with_users();
    let config = p.write_root(
        "shipgate.toml",
        &format!(
            "database_url = \"{}\"\nstatus_token = \"{STATUS_TOKEN}\"\nlock_wait = \"30s\"\n",
            db.url()
        ),
    );
    let config = config.display().to_string();
    let mut cmd = p.command(None, &["--config", &config, "release"]);
    for variable in [
        "DATABASE_URL",
        "SHIPGATE_STATUS_TOKEN",
        "SHIPGATE_LOCK_WAIT",
        "SHIPGATE_MIGRATIONS",
        "SHIPGATE_STRICT",
        "SHIPGATE_DRY_RUN",
        "SHIPGATE_CONFIG",
    ] {
        cmd.env(variable, "");
    }
    Run::wait(cmd).code(0);
    assert_eq!(db.versions(), [1], "released into the configured database");
    assert!(
        !p.root().join("shipgate.db").exists(),
        "released into the embedded default"
    );

    // An empty token variable leaves the file's token in force.
    let mut serve = p.command(None, &["--config", &config, "serve"]);
    serve
        .env("SHIPGATE_STATUS_TOKEN", "")
        .env("DATABASE_URL", " ")
        .env("PORT", "0")
        .env("SHIPGATE_LOG_FORMAT", "json");
    let service = Service::start(serve);
    service.wait_ready(Duration::from_secs(15));
    assert_eq!(service.get_as("/migrations/status", None).status, 401);
    assert_eq!(service.get("/migrations/status").status, 200);
    service.terminate();
    service.wait(Duration::from_secs(15)).code(0).secret_free();
}

#[test]
fn switch_variables_take_the_usual_boolean_spellings() {
    let db = Db::new(Engine::Sqlite);
    let p = Project::with_users();
    for yes in ["true", "1", "yes", "on", "Y", "TRUE"] {
        let mut cmd = p.command(Some(&db), &["up"]);
        cmd.env("SHIPGATE_DRY_RUN", yes);
        Run::wait(cmd).code(0).stdout_has(&["dry run"]);
        assert!(
            !db.table_exists("shipgate_migrations"),
            "{yes} was not a dry run"
        );
    }
    let mut bad = p.command(Some(&db), &["up"]);
    bad.env("SHIPGATE_DRY_RUN", "perhaps");
    Run::wait(bad)
        .code(2)
        .stderr_has(&["perhaps", "not a boolean"]);
    for no in ["false", "0", "no", "off", ""] {
        let mut cmd = p.command(Some(&db), &["status"]);
        cmd.env("SHIPGATE_JSON", no);
        let run = Run::wait(cmd);
        run.code(0).stdout_has(&["pending"]);
        assert!(!run.stdout.trim_start().starts_with('{'), "{no}: {run:?}");
    }
}

#[test]
fn a_deploy_id_too_long_to_record_is_refused_before_connecting() {
    let db = Db::new(Engine::Mariadb);
    let p = Project::with_users();
    let long = "d".repeat(600);
    for variable in ["SHIPGATE_DEPLOY_ID", "RAILWAY_DEPLOYMENT_ID"] {
        let mut cmd = p.command(Some(&db), &["release"]);
        cmd.env(variable, &long);
        Run::wait(cmd)
            .code(2)
            .stderr_has(&["deploy_id", variable, "at most 255 characters"]);
    }
    assert!(!db.table_exists("shipgate_runs"), "nothing was written");
    let mut cmd = p.command(Some(&db), &["release"]);
    cmd.env("SHIPGATE_DEPLOY_ID", "d".repeat(255));
    Run::wait(cmd).code(0);
    assert_eq!(db.versions(), [1]);
}
