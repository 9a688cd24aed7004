//! `GET /`, the status page: a real headless Chromium renders it from a real `serve` against a
//! real PostgreSQL in four states (normal, pending, in progress, dirty) and the test reads the
//! DOM Chromium built; each state's screenshot is taken too. Then the sign-in: the form, the
//! cookie (HttpOnly, SameSite=Strict, not the token), and the token never accepted from a URL.
//!
//! Chromium: `SHIPGATE_TEST_CHROMIUM`, else `chromium` on PATH (Debian's package; `.ci/run`
//! installs it). With `SHIPGATE_UPDATE_SCREENSHOTS=1` the screenshots are also copied to
//! `docs/status-page/` (the ones the README shows).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{
    assert_secret_free, connect, read_response, Db, Engine, HttpResponse, Project, Run, Service,
    STATUS_TOKEN,
};

const BOUND: Duration = Duration::from_secs(20);
/// What one Chromium run may take (a cold start on a loaded two-core machine).
const BROWSER_BOUND: Duration = Duration::from_secs(60);

/// A no-transaction file that stops at its second statement: the page must show the error,
/// whose text carries markup that has to stay inert.
const BROKEN: &str = "-- shipgate:no-transaction\n\
CREATE TABLE audit (id integer);\n\
SELECT '<script>document.title=\"pwned\"</script>'::integer;\n";

fn chromium() -> String {
    std::env::var("SHIPGATE_TEST_CHROMIUM").unwrap_or_else(|_| "chromium".into())
}

/// Runs headless Chromium with `args` then `url`; its stdout, or a panic with what it printed.
fn browser(url: &str, args: &[String], profile: &Path) -> String {
    let out = tempfile::NamedTempFile::new().expect("a temp file");
    let err = tempfile::NamedTempFile::new().expect("a temp file");
    let mut child = Command::new(chromium())
        .args([
            "--headless=new",
            // Root in a container has no user namespace for the sandbox.
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(out.reopen().expect("reopening the temp file"))
        .stderr(err.reopen().expect("reopening the temp file"))
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} ({e}): install Debian's `chromium` package or set \
                 SHIPGATE_TEST_CHROMIUM",
                chromium()
            )
        });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("polling chromium") {
            break status;
        }
        if started.elapsed() > BROWSER_BOUND {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "chromium did not finish within {BROWSER_BOUND:?}: {}",
                std::fs::read_to_string(err.path()).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = std::fs::read_to_string(out.path()).unwrap_or_default();
    assert!(
        status.success(),
        "chromium failed ({status}): {}",
        std::fs::read_to_string(err.path()).unwrap_or_default()
    );
    stdout
}

/// The DOM Chromium built from the page, serialised.
fn dom(service: &Service, profile: &Path) -> String {
    let url = format!("http://127.0.0.1:{}/", service.port);
    let dom = browser(&url, &["--dump-dom".into()], profile);
    assert!(dom.contains("<html"), "no document: {dom}");
    dom
}

/// A screenshot of the page at 1280×900 under `dir`, checked to be a PNG, and copied to
/// `docs/status-page/` when `SHIPGATE_UPDATE_SCREENSHOTS=1`.
fn screenshot(service: &Service, profile: &Path, dir: &Path, state: &str) -> PathBuf {
    let path = dir.join(format!("{state}.png"));
    let url = format!("http://127.0.0.1:{}/", service.port);
    browser(
        &url,
        &[
            format!("--screenshot={}", path.display()),
            "--window-size=1280,900".into(),
        ],
        profile,
    );
    let png = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        png.len() > 10_000 && png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is not a screenshot ({} bytes)",
        path.display(),
        png.len()
    );
    if std::env::var("SHIPGATE_UPDATE_SCREENSHOTS").as_deref() == Ok("1") {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/status-page");
        std::fs::create_dir_all(&docs).expect("creating docs/status-page");
        std::fs::copy(&path, docs.join(format!("{state}.png"))).expect("copying the screenshot");
    }
    path
}

/// The text of the element with `id` in a serialised DOM (tags stripped), or a panic.
#[track_caller]
fn text_of(dom: &str, id: &str) -> String {
    let marker = format!("id=\"{id}\"");
    let at = dom
        .find(&marker)
        .unwrap_or_else(|| panic!("no element #{id} in the page: {dom}"));
    let open = dom[..at]
        .rfind('<')
        .expect("an element starts before its id");
    let tag: String = dom[open + 1..]
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect();
    let body_start = at + dom[at..].find('>').expect("the start tag ends") + 1;
    let close = format!("</{tag}>");
    let end = body_start + dom[body_start..].find(&close).unwrap_or(0);
    let mut text = String::new();
    let mut in_tag = false;
    for c in dom[body_start..end].chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                text.push(' ');
            }
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `serve` without a status token (the page is open), once its snapshot has read the database.
fn open_service(p: &Project, db: &Db, args: &[&str]) -> Service {
    let mut cmd = p.platform_command(db, args);
    cmd.env_remove("SHIPGATE_STATUS_TOKEN");
    Service::start(cmd)
}

fn wait_read(service: &Service) {
    service.poll(
        "the first database read",
        "/migrations/status",
        BOUND,
        |r| r.status == 200 && r.json()["database_ok"] == true,
    );
}

#[test]
fn the_status_page_renders_in_a_browser_when_normal_pending_in_progress_and_dirty() {
    let db = Db::new(Engine::Postgres);
    let p = Project::with_users();
    p.write(
        "2_plans.up.sql",
        "CREATE TABLE plans (id bigint PRIMARY KEY);\nSELECT pg_sleep(0.3);\n",
    );
    let mut release = p.platform_command(&db, &["release"]);
    release.env("RAILWAY_DEPLOYMENT_ID", "dep-normal");
    Run::wait(release).code(0);
    let shots = tempfile::tempdir().expect("a temp dir");
    let profile = tempfile::tempdir().expect("a temp dir");

    // Normal: everything applied, the run recorded, a bar per migration.
    let service = open_service(&p, &db, &["serve"]);
    wait_read(&service);
    let page = dom(&service, profile.path());
    assert_eq!(text_of(&page, "verdict"), "ready", "{page}");
    assert_eq!(text_of(&page, "current"), "2", "{page}");
    assert_eq!(text_of(&page, "head"), "2", "{page}");
    assert_eq!(text_of(&page, "pending"), "0", "{page}");
    assert_eq!(text_of(&page, "dirty"), "0", "{page}");
    let runs = text_of(&page, "runs");
    assert!(
        runs.contains("succeeded") && runs.contains("dep-normal"),
        "{runs}"
    );
    let history = text_of(&page, "history");
    assert!(
        history.contains("plans") && history.contains("users"),
        "{history}"
    );
    assert_eq!(page.matches("class=\"bar\"").count(), 2, "{page}");
    assert!(!page.contains("id=\"in-progress\""), "{page}");
    screenshot(&service, profile.path(), shots.path(), "normal");
    drop(service);

    // Pending: a new file in the build.
    p.write(
        "3_teams.up.sql",
        "-- shipgate:no-transaction\nCREATE TABLE teams (id bigint PRIMARY KEY);\nSELECT pg_sleep(30);\n",
    );
    let service = open_service(&p, &db, &["serve"]);
    wait_read(&service);
    let page = dom(&service, profile.path());
    assert_eq!(text_of(&page, "verdict"), "not ready", "{page}");
    assert_eq!(text_of(&page, "head"), "3", "{page}");
    assert_eq!(text_of(&page, "pending"), "1", "{page}");
    assert_eq!(text_of(&page, "pending-list"), "3 teams", "{page}");
    assert!(
        text_of(&page, "readiness").contains("1 migration(s) pending"),
        "{page}"
    );
    screenshot(&service, profile.path(), shots.path(), "pending");
    drop(service);

    // In progress: `release --serve` sits in the second statement of migration 3 (30 s: time
    // for a browser to start on a loaded machine while it still runs).
    let mut cmd = p.platform_command(&db, &["release", "--serve"]);
    cmd.env_remove("SHIPGATE_STATUS_TOKEN")
        .env("RAILWAY_DEPLOYMENT_ID", "dep-slow");
    let service = Service::start(cmd);
    service.poll(
        "migration 3 at its second statement",
        "/migrations/status",
        BOUND,
        |r| {
            let s = r.json();
            // The refresher's read must show the lock and the `running` row too (it runs once a
            // second, apart from this process's own progress).
            s["in_progress"]["current"]["version"] == 3
                && s["in_progress"]["current"]["statements_done"] == 1
                && !s["lock_holder"].is_null()
                && s["dirty"].as_array().is_some_and(|d| !d.is_empty())
        },
    );
    let page = dom(&service, profile.path());
    assert_eq!(text_of(&page, "verdict"), "migrating", "{page}");
    assert_eq!(text_of(&page, "current-migration"), "3 teams", "{page}");
    assert_eq!(
        text_of(&page, "current-statement"),
        "SELECT pg_sleep(30)",
        "{page}"
    );
    let database = text_of(&page, "dirty-list");
    assert!(
        database.contains("being applied by this process"),
        "{database}"
    );
    assert!(!page.contains("then run <code>shipgate repair"), "{page}");
    let release = text_of(&page, "in-progress");
    assert!(
        release.contains("statement 2, line 3") && release.contains("1 of 2"),
        "{release}"
    );
    let lock = text_of(&page, "lock-holder");
    assert!(lock.contains("shipgate"), "{lock}");
    screenshot(&service, profile.path(), shots.path(), "in-progress");
    service.wait(Duration::from_secs(60)).code(0);

    // Dirty: a no-transaction file failed part-way; its error carries markup.
    p.write("4_audit.up.sql", BROKEN);
    let mut release = p.platform_command(&db, &["release"]);
    release.env("RAILWAY_DEPLOYMENT_ID", "dep-broken");
    Run::wait(release).code(1);
    let service = open_service(&p, &db, &["serve"]);
    wait_read(&service);
    let page = dom(&service, profile.path());
    assert_eq!(text_of(&page, "verdict"), "not ready", "{page}");
    assert_eq!(text_of(&page, "dirty"), "1", "{page}");
    let dirty = text_of(&page, "dirty-list");
    assert!(
        dirty.contains("4 audit") && dirty.contains("failed, 1 statement(s) committed"),
        "{dirty}"
    );
    let runs = text_of(&page, "runs");
    assert!(
        runs.contains("failed") && runs.contains("dep-broken"),
        "{runs}"
    );
    // The markup in the error is text: escaped in the DOM, never an element, never run.
    assert!(!page.contains("<script"), "{page}");
    assert!(page.contains("&lt;script&gt;document.title"), "{page}");
    assert!(
        page.contains("<title>shipgate · not ready</title>"),
        "{page}"
    );
    assert!(page.contains("then run <code>shipgate repair"), "{page}");
    screenshot(&service, profile.path(), shots.path(), "dirty");
}

/// `POST path` with a form body and extra headers, over a fresh connection.
fn post(port: u16, path: &str, form: &str, headers: &[(&str, &str)]) -> HttpResponse {
    let mut stream = connect(port).expect("connecting");
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
        form.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(form);
    stream.write_all(request.as_bytes()).expect("sending");
    read_response(&mut stream).expect("reading the response")
}

fn get_with(service: &Service, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
    crate::support::http_get(service.port, path, headers).expect("GET")
}

#[test]
fn the_status_page_asks_a_browser_for_the_token_and_keeps_it_in_a_cookie_it_cannot_read() {
    let db = Db::new(Engine::Postgres);
    let p = Project::with_users();
    p.run(&db, &["up"]).code(0);
    let service = Service::start(p.platform_command(&db, &["serve"]));

    // Without the header or the cookie: the form, 401, in a browser too.
    let form = get_with(&service, "/", &[]);
    assert_eq!(form.status, 401, "{form:?}");
    assert_eq!(form.header("www-authenticate"), Some("Bearer"), "{form:?}");
    assert!(
        form.body
            .contains("<form id=\"login\" method=\"post\" action=\"/\">"),
        "{form:?}"
    );
    assert!(!form.body.contains("id=\"database\""), "{form:?}");
    let profile = tempfile::tempdir().expect("a temp dir");
    let page = dom(&service, profile.path());
    assert!(page.contains("name=\"token\""), "{page}");
    // A token in the URL is never accepted.
    let query = get_with(&service, &format!("/?token={STATUS_TOKEN}"), &[]);
    assert_eq!(query.status, 401, "{query:?}");

    // The bearer header works as on /migrations/status.
    let auth = format!("Bearer {STATUS_TOKEN}");
    let page = get_with(&service, "/", &[("Authorization", &auth)]);
    assert_eq!(page.status, 200, "{page:?}");
    assert!(page.body.contains("id=\"database\""), "{page:?}");
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(page.header("cache-control"), Some("no-store"));
    assert!(page
        .header("content-security-policy")
        .is_some_and(|c| c.starts_with("default-src 'none'")));

    // A wrong token: the form again with an error, and no cookie.
    let wrong = post(service.port, "/", "token=wrong", &[]);
    assert_eq!(wrong.status, 401, "{wrong:?}");
    assert!(wrong.body.contains("id=\"login-error\""), "{wrong:?}");
    assert!(wrong.header("set-cookie").is_none(), "{wrong:?}");

    // The right one: a redirect home with a cookie the page's scripts cannot read.
    let form_body = format!("token={STATUS_TOKEN}");
    let signed = post(service.port, "/", &form_body, &[]);
    assert_eq!(signed.status, 303, "{signed:?}");
    assert_eq!(signed.header("location"), Some("/"));
    let cookie = signed.header("set-cookie").expect("a cookie").to_owned();
    assert!(
        cookie.starts_with("shipgate_status=")
            && cookie.contains("; HttpOnly")
            && cookie.contains("; SameSite=Strict")
            && cookie.contains("; Path=/")
            && !cookie.contains("Secure"),
        "{cookie}"
    );
    assert!(!cookie.contains(STATUS_TOKEN), "{cookie}");
    let pair = cookie.split(';').next().expect("name=value").to_owned();
    let page = get_with(&service, "/", &[("Cookie", &pair)]);
    assert_eq!(page.status, 200, "{page:?}");
    assert!(page.body.contains("id=\"database\""), "{page:?}");
    // Among other cookies, too; a forged value is refused.
    let among = format!("theme=dark; {pair}");
    assert_eq!(get_with(&service, "/", &[("Cookie", &among)]).status, 200);
    let last = if pair.ends_with('0') { '1' } else { '0' };
    let forged = format!("{}{last}", &pair[..pair.len() - 1]);
    assert_eq!(get_with(&service, "/", &[("Cookie", &forged)]).status, 401);
    // The cookie is the page's only: the JSON endpoint still wants the header.
    let json = get_with(&service, "/migrations/status", &[("Cookie", &pair)]);
    assert_eq!(json.status, 401, "{json:?}");

    // Behind a proxy that terminated TLS, the cookie is Secure.
    let https = post(
        service.port,
        "/",
        &form_body,
        &[("X-Forwarded-Proto", "https")],
    );
    assert!(
        https
            .header("set-cookie")
            .is_some_and(|c| c.ends_with("; Secure")),
        "{https:?}"
    );

    service.terminate();
    let run = service.wait(BOUND);
    run.code(0);
    assert_secret_free("serve's output", &format!("{}{}", run.stdout, run.stderr));
}
