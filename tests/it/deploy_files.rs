//! The deploy files in the repository, read as each platform reads them: every shipgate
//! command line they contain names a real subcommand with real flags (clap parses it), every
//! environment variable they set for shipgate is one it reads, every path they name exists,
//! and the health checks point at `/health` (liveness) and `/health/ready` (readiness).

use std::path::{Path, PathBuf};

use crate::support::{Project, Run};

/// The repository: the build context of every deploy file.
pub(crate) fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[track_caller]
fn read(file: &str) -> String {
    std::fs::read_to_string(repo().join(file)).unwrap_or_else(|e| panic!("reading {file}: {e}"))
}

/// Splits a command line into words: whitespace-separated, with '…' and "…" quoting.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(word);
    }
    out
}

/// Collects the problems of the deploy files and reports them all at once.
pub(crate) struct Checker {
    project: Project,
    problems: Vec<String>,
    /// The image's ENTRYPOINT, from deploy/Dockerfile.
    entrypoint: Vec<String>,
}

impl Checker {
    pub(crate) fn new() -> Checker {
        Checker {
            project: Project::new(),
            problems: Vec::new(),
            entrypoint: dockerfile_entrypoint(),
        }
    }

    pub(crate) fn problem(&mut self, origin: &str, message: impl std::fmt::Display) {
        self.problems.push(format!("{origin}: {message}"));
    }

    pub(crate) fn check(&mut self, origin: &str, ok: bool, message: impl std::fmt::Display) {
        if !ok {
            self.problem(origin, message);
        }
    }

    /// A path named by a deploy file, relative to the repository (the build context).
    fn path(&mut self, origin: &str, path: &str) {
        self.path_under(origin, &repo(), path);
    }

    /// A path named by a deploy file, relative to `base`.
    fn path_under(&mut self, origin: &str, base: &Path, path: &str) {
        let relative = path.trim_start_matches("./");
        let exists = relative.is_empty() || relative == "." || base.join(relative).exists();
        self.check(
            origin,
            exists,
            format!(
                "names {path}, which does not exist under {}",
                base.display()
            ),
        );
    }

    /// A platform file that the platform reads only at the root of the repository it deploys:
    /// it is there, and no copy of it elsewhere in the repository suggests another place.
    fn at_root(&mut self, name: &str) {
        self.check(
            name,
            repo().join(name).is_file(),
            "is not at the repository root, the only place its platform reads it",
        );
        let stray = repo().join("deploy").join(name);
        self.check(
            name,
            !stray.exists(),
            format!(
                "{} exists, where its platform never reads it",
                stray.display()
            ),
        );
    }

    /// The help of `shipgate <args> --help`, or the parse error.
    fn help(&self, args: &[String]) -> Run {
        let mut with_help: Vec<&str> = args.iter().map(String::as_str).collect();
        with_help.push("--help");
        self.project.run_offline(&with_help)
    }

    /// A shipgate command line: the subcommand exists, clap accepts every flag and value, and
    /// each flag is documented in that subcommand's help. Returns the subcommand.
    fn command(&mut self, origin: &str, line: &[String]) -> Option<String> {
        let Some((program, args)) = line.split_first() else {
            self.problem(origin, "empty command");
            return None;
        };
        if program != "shipgate" && !program.ends_with("/shipgate") {
            self.problem(origin, format!("runs {program:?}, not shipgate: {line:?}"));
            return None;
        }
        let run = self.help(args);
        if run.code != Some(0) {
            self.problem(
                origin,
                format!(
                    "`{}` is not a valid shipgate command line: {}",
                    line.join(" "),
                    run.stderr.trim()
                ),
            );
            return None;
        }
        let usage = run
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("Usage: shipgate "))
            .unwrap_or_default();
        let subcommand = usage
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned();
        if subcommand.starts_with(['[', '<']) || subcommand.is_empty() || subcommand == "help" {
            self.problem(origin, format!("`{}` names no subcommand", line.join(" ")));
            return None;
        }
        for flag in args.iter().filter(|a| a.starts_with("--") && a.len() > 2) {
            let name = flag.split('=').next().unwrap_or(flag);
            let documented = run
                .stdout
                .lines()
                .any(|l| l.trim_start().split([' ', ',']).any(|w| w == name));
            self.check(
                origin,
                documented,
                format!("{name} is not in `shipgate {subcommand} --help`"),
            );
        }
        Some(subcommand)
    }

    /// A command line given as one string.
    fn command_line(&mut self, origin: &str, line: &str) -> Option<String> {
        self.command(origin, &words(line))
    }

    /// What a container runs: the image's ENTRYPOINT plus `args`, or `command` plus `args`.
    fn container(&mut self, origin: &str, command: &[String], args: &[String]) -> Option<String> {
        let mut line = if command.is_empty() {
            self.entrypoint.clone()
        } else {
            command.to_vec()
        };
        line.extend_from_slice(args);
        self.command(origin, &line)
    }

    /// Environment variables a deploy file sets for `shipgate <subcommand>`: each must be one
    /// that `--help` documents.
    fn env_names(&mut self, origin: &str, subcommand: &str, names: &[String]) {
        let help = self.help(&[subcommand.to_owned()]);
        // Help text wraps anywhere, even inside `[env: …]`.
        let help = help.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
        for name in names {
            let documented = help.contains(&format!("[env: {name}="))
                || help.contains(&format!("[env: {name}]"));
            self.check(
                origin,
                documented,
                format!("sets {name}, which `shipgate {subcommand}` does not read"),
            );
        }
    }

    #[track_caller]
    pub(crate) fn finish(self) {
        assert!(
            self.problems.is_empty(),
            "deploy file problems:\n{}",
            self.problems.join("\n")
        );
    }
}

/// Dockerfile instructions: continuation lines joined, comments dropped.
fn instructions(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        if let Some(head) = trimmed.strip_suffix('\\') {
            current.push_str(head);
            current.push(' ');
            continue;
        }
        current.push_str(trimmed);
        let (op, rest) = current
            .split_once(char::is_whitespace)
            .unwrap_or((&current, ""));
        out.push((op.to_ascii_uppercase(), rest.trim().to_owned()));
        current.clear();
    }
    out
}

/// An exec-form (`["a", "b"]`) or shell-form instruction argument as words.
fn exec_form(arg: &str) -> Vec<String> {
    serde_json::from_str::<Vec<String>>(arg).unwrap_or_else(|_| words(arg))
}

fn dockerfile_entrypoint() -> Vec<String> {
    instructions(&read("deploy/Dockerfile"))
        .into_iter()
        .filter(|(op, _)| op == "ENTRYPOINT")
        .map(|(_, arg)| exec_form(&arg))
        .next_back()
        .unwrap_or_default()
}

#[test]
fn the_dockerfile_is_multi_stage_glibc_non_root_and_copies_what_exists() {
    let mut c = Checker::new();
    let origin = "deploy/Dockerfile";
    let steps = instructions(&read(origin));
    let stages: Vec<&String> = steps
        .iter()
        .filter(|(op, _)| op == "FROM")
        .map(|(_, a)| a)
        .collect();
    c.check(
        origin,
        stages.len() >= 2,
        format!("not multi-stage: {stages:?}"),
    );
    let stage_names: Vec<String> = stages
        .iter()
        .filter_map(|a| {
            let w = words(a);
            let i = w.iter().position(|x| x.eq_ignore_ascii_case("as"))?;
            w.get(i + 1).cloned()
        })
        .collect();
    let last_from = steps.iter().rposition(|(op, _)| op == "FROM").unwrap_or(0);
    let base = stages.last().map(|s| s.as_str()).unwrap_or_default();
    c.check(
        origin,
        !["alpine", "musl", "scratch", "static"]
            .iter()
            .any(|m| base.contains(m)),
        format!("the runtime base {base:?} is not a glibc image"),
    );

    let mut copied = Vec::new();
    for (i, (op, arg)) in steps.iter().enumerate() {
        if op != "COPY" && op != "ADD" {
            continue;
        }
        let w = exec_form(arg);
        let (flags, paths): (Vec<&String>, Vec<&String>) =
            w.iter().partition(|x| x.starts_with("--"));
        if let Some(from) = flags.iter().find_map(|f| f.strip_prefix("--from=")) {
            c.check(
                origin,
                stage_names.iter().any(|n| n == from),
                format!("COPY --from={from} names no stage"),
            );
            continue;
        }
        let Some((_, sources)) = paths.split_last() else {
            c.problem(origin, format!("{op} without a destination: {arg}"));
            continue;
        };
        for s in sources {
            c.path(origin, s);
            if i > last_from {
                copied.push(s.trim_end_matches('/').to_owned());
            }
        }
    }
    for shipped in ["migrations", "config"] {
        c.check(
            origin,
            copied.iter().any(|s| s == shipped),
            format!("the image does not ship {shipped}/"),
        );
    }
    let user = steps[last_from..]
        .iter()
        .filter(|(op, _)| op == "USER")
        .map(|(_, a)| a.clone())
        .next_back()
        .unwrap_or_default();
    c.check(
        origin,
        !user.is_empty() && user != "root" && !user.starts_with("0"),
        format!("the runtime stage runs as {:?}, not a non-root user", user),
    );

    // What `docker run` runs by default.
    let cmd = steps
        .iter()
        .filter(|(op, _)| op == "CMD")
        .map(|(_, a)| exec_form(a))
        .next_back()
        .unwrap_or_default();
    let entrypoint = c.entrypoint.clone();
    let sub = c.container(&format!("{origin} ENTRYPOINT + CMD"), &entrypoint, &cmd);
    c.check(
        origin,
        sub.as_deref() == Some("serve"),
        format!("the default command runs {sub:?}, not serve"),
    );
    c.finish();
}

#[test]
fn railway_toml_builds_the_dockerfile_releases_serves_and_checks_readiness() {
    let mut c = Checker::new();
    let origin = "railway.toml";
    let doc: toml::Value =
        toml::from_str(&read(origin)).unwrap_or_else(|e| panic!("{origin}: {e}"));
    let build = &doc["build"];
    c.check(
        origin,
        build.get("builder").and_then(|b| b.as_str()) == Some("DOCKERFILE"),
        "builder is not DOCKERFILE",
    );
    match build.get("dockerfilePath").and_then(|p| p.as_str()) {
        Some(p) => c.path(origin, p),
        None => c.problem(origin, "no build.dockerfilePath"),
    }
    let deploy = doc
        .get("deploy")
        .and_then(|d| d.as_table())
        .cloned()
        .unwrap_or_default();
    // Railway accepts preDeployCommand as a string or a list of command lines.
    let pre: Vec<String> = match deploy.get("preDeployCommand") {
        Some(toml::Value::String(s)) => vec![s.clone()],
        Some(toml::Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    };
    c.check(origin, !pre.is_empty(), "no deploy.preDeployCommand");
    let pre_subs: Vec<Option<String>> = pre
        .iter()
        .map(|l| c.command_line(&format!("{origin} preDeployCommand"), l))
        .collect();
    c.check(
        origin,
        pre_subs.iter().any(|s| s.as_deref() == Some("release")),
        format!("preDeployCommand does not run shipgate release: {pre:?}"),
    );
    match deploy.get("startCommand").and_then(|s| s.as_str()) {
        Some(start) => {
            let sub = c.command_line(&format!("{origin} startCommand"), start);
            c.check(
                origin,
                sub.as_deref() == Some("serve"),
                format!("startCommand runs {sub:?}, not serve"),
            );
        }
        None => c.problem(origin, "no deploy.startCommand"),
    }
    c.check(
        origin,
        deploy.get("healthcheckPath").and_then(|p| p.as_str()) == Some("/health/ready"),
        format!(
            "healthcheckPath is {:?}, not \"/health/ready\"",
            deploy.get("healthcheckPath")
        ),
    );
    c.check(
        origin,
        deploy.contains_key("healthcheckTimeout"),
        "no healthcheckTimeout",
    );
    for (key, value) in &deploy {
        if key.ends_with("Timeout") || key.ends_with("Seconds") || key.ends_with("Retries") {
            c.check(
                origin,
                value.as_integer().is_some_and(|n| n > 0),
                format!("deploy.{key} = {value} is not a positive integer"),
            );
        }
    }
    c.finish();
}

#[test]
fn fly_toml_runs_the_release_command_and_checks_readiness() {
    let mut c = Checker::new();
    let origin = "fly.toml";
    // flyctl resolves build.dockerfile relative to fly.toml, and builds with the directory
    // `fly deploy` runs in (fly.toml's) as the context: the Dockerfile's COPY lines need the
    // repository root, so fly.toml must sit there.
    c.at_root(origin);
    let doc: toml::Value =
        toml::from_str(&read(origin)).unwrap_or_else(|e| panic!("{origin}: {e}"));
    let beside = repo().join(origin);
    let beside = beside.parent().unwrap_or(Path::new("/"));
    match doc
        .get("build")
        .and_then(|b| b.get("dockerfile"))
        .and_then(|d| d.as_str())
    {
        Some(p) => c.path_under(&format!("{origin} build.dockerfile"), beside, p),
        None => c.problem(origin, "no build.dockerfile"),
    }
    match doc
        .get("deploy")
        .and_then(|d| d.get("release_command"))
        .and_then(|r| r.as_str())
    {
        Some(line) => {
            let sub = c.command_line(&format!("{origin} release_command"), line);
            c.check(
                origin,
                sub.as_deref() == Some("release"),
                format!("release_command runs {sub:?}"),
            );
        }
        None => c.problem(origin, "no deploy.release_command"),
    }
    let env: Vec<String> = doc
        .get("env")
        .and_then(|e| e.as_table())
        .map(|t| t.keys().cloned().collect())
        .unwrap_or_default();
    c.env_names(&format!("{origin} [env]"), "serve", &env);
    let port = doc
        .get("env")
        .and_then(|e| e.get("PORT"))
        .and_then(|p| p.as_str());
    let service = doc.get("http_service");
    let internal = service
        .and_then(|s| s.get("internal_port"))
        .and_then(|p| p.as_integer());
    c.check(
        origin,
        port.is_some_and(|p| Some(p.parse::<i64>().unwrap_or(-1)) == internal),
        format!("internal_port {internal:?} is not the PORT shipgate listens on ({port:?})"),
    );
    let checks: Vec<&str> = service
        .and_then(|s| s.get("checks"))
        .and_then(|c| c.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|c| c.get("path").and_then(|p| p.as_str()))
                .collect()
        })
        .unwrap_or_default();
    c.check(
        origin,
        checks == ["/health/ready"],
        format!("http checks {checks:?}, not /health/ready"),
    );
    c.finish();
}

#[test]
fn render_yaml_runs_the_pre_deploy_command_and_checks_readiness() {
    let mut c = Checker::new();
    let origin = "render.yaml";
    // A Blueprint must be render.yaml at the repository root; its paths are relative to it.
    c.at_root(origin);
    let doc: serde_yaml::Value =
        serde_yaml::from_str(&read(origin)).unwrap_or_else(|e| panic!("{origin}: {e}"));
    let services = doc["services"].as_sequence().cloned().unwrap_or_default();
    c.check(origin, !services.is_empty(), "no services");
    for s in &services {
        let name = s["name"].as_str().unwrap_or("?");
        let here = format!("{origin} service {name}");
        for key in ["dockerfilePath", "dockerContext"] {
            match s[key].as_str() {
                Some(p) => c.path(&here, p),
                None => c.problem(&here, format!("no {key}")),
            }
        }
        match s["preDeployCommand"].as_str() {
            Some(line) => {
                let sub = c.command_line(&format!("{here} preDeployCommand"), line);
                c.check(
                    &here,
                    sub.as_deref() == Some("release"),
                    format!("preDeployCommand runs {sub:?}"),
                );
            }
            None => c.problem(&here, "no preDeployCommand"),
        }
        let start = s["dockerCommand"].as_str().or(s["startCommand"].as_str());
        match start {
            Some(line) => {
                let sub = c.command_line(&format!("{here} dockerCommand"), line);
                c.check(
                    &here,
                    sub.as_deref() == Some("serve"),
                    format!("dockerCommand runs {sub:?}"),
                );
            }
            None => c.problem(&here, "no dockerCommand"),
        }
        c.check(
            &here,
            s["healthCheckPath"].as_str() == Some("/health/ready"),
            format!("healthCheckPath is {:?}", s["healthCheckPath"]),
        );
        let env: Vec<String> = s["envVars"]
            .as_sequence()
            .map(|v| {
                v.iter()
                    .filter_map(|e| e["key"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        c.env_names(&format!("{here} envVars"), "serve", &env);
    }
    c.finish();
}

#[test]
fn the_procfile_has_a_release_process_and_a_web_process() {
    let mut c = Checker::new();
    let origin = "Procfile";
    // Heroku reads the Procfile only at the root of the app's repository.
    c.at_root(origin);
    let mut kinds = Vec::new();
    for line in read(origin)
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
    {
        let Some((kind, command)) = line.split_once(':') else {
            c.problem(origin, format!("not `type: command`: {line:?}"));
            continue;
        };
        let sub = c.command_line(&format!("{origin} {kind}"), command);
        kinds.push((kind.trim().to_owned(), sub));
    }
    for (kind, want) in [("release", "release"), ("web", "serve")] {
        c.check(
            origin,
            kinds
                .iter()
                .any(|(k, s)| k == kind && s.as_deref() == Some(want)),
            format!("no `{kind}: shipgate {want}` process: {kinds:?}"),
        );
    }
    c.finish();
}

/// The containers of a pod spec: (name, command, args, the container itself).
fn containers(
    pod: &serde_yaml::Value,
) -> Vec<(String, Vec<String>, Vec<String>, serde_yaml::Value)> {
    let strings = |v: &serde_yaml::Value| -> Vec<String> {
        v.as_sequence()
            .map(|s| {
                s.iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    pod["containers"]
        .as_sequence()
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    (
                        c["name"].as_str().unwrap_or("?").to_owned(),
                        strings(&c["command"]),
                        strings(&c["args"]),
                        c.clone(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The YAML documents of a multi-document stream, empty ones skipped.
pub(crate) fn yaml_documents(origin: &str, text: &str) -> Vec<serde_yaml::Value> {
    use serde::Deserialize as _;
    serde_yaml::Deserializer::from_str(text)
        .map(|d| serde_yaml::Value::deserialize(d).unwrap_or_else(|e| panic!("{origin}: {e}")))
        .filter(|d| !d.is_null())
        .collect()
}

/// A Kubernetes object's name, or its generateName prefix followed by `*`.
pub(crate) fn object_name(doc: &serde_yaml::Value) -> String {
    let meta = &doc["metadata"];
    match (meta["name"].as_str(), meta["generateName"].as_str()) {
        (Some(name), _) => name.to_owned(),
        (None, Some(prefix)) => format!("{prefix}*"),
        (None, None) => "?".to_owned(),
    }
}

/// One Kubernetes object: its containers run real shipgate command lines with environment
/// variables shipgate reads; a Deployment serves with liveness on `/health` and readiness on
/// `/health/ready` at a container port; a Job releases. Returns the object's kind.
pub(crate) fn kubernetes_object(c: &mut Checker, origin: &str, doc: &serde_yaml::Value) -> String {
    let kind = doc["kind"].as_str().unwrap_or("?").to_owned();
    let here = format!("{origin} {kind} {}", object_name(doc));
    if !["Deployment", "Job"].contains(&kind.as_str()) {
        return kind; // no pod template: nothing of shipgate's runs in it
    }
    let pod = &doc["spec"]["template"]["spec"];
    let list = containers(pod);
    c.check(&here, !list.is_empty(), "no containers");
    for (name, command, args, container) in list {
        let here = format!("{here} container {name}");
        let sub = c.container(&here, &command, &args);
        let env: Vec<String> = container["env"]
            .as_sequence()
            .map(|v| {
                v.iter()
                    .filter_map(|e| e["name"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        if let Some(sub) = &sub {
            c.env_names(&here, sub, &env);
        }
        if kind == "Deployment" {
            c.check(
                &here,
                sub.as_deref() == Some("serve"),
                format!("runs {sub:?}, not serve"),
            );
            let ports: Vec<(Option<String>, Option<i64>)> = container["ports"]
                .as_sequence()
                .map(|ps| {
                    ps.iter()
                        .map(|p| {
                            (
                                p["name"].as_str().map(str::to_owned),
                                p["containerPort"].as_i64(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            for (probe, path) in [
                ("livenessProbe", "/health"),
                ("readinessProbe", "/health/ready"),
            ] {
                let get = &container[probe]["httpGet"];
                c.check(
                    &here,
                    get["path"].as_str() == Some(path),
                    format!("{probe} path is {:?}, not {path}", get["path"]),
                );
                let port_ok = match (&get["port"], get["port"].as_i64()) {
                    (_, Some(n)) => ports.iter().any(|(_, p)| *p == Some(n)),
                    (serde_yaml::Value::String(s), _) => {
                        ports.iter().any(|(n, _)| n.as_deref() == Some(s))
                    }
                    _ => false,
                };
                c.check(
                    &here,
                    port_ok,
                    format!("{probe} port {:?} is no container port", get["port"]),
                );
            }
        }
        if kind == "Job" {
            c.check(
                &here,
                sub.as_deref() == Some("release"),
                format!("runs {sub:?}, not release"),
            );
        }
    }
    kind
}

#[test]
fn the_kubernetes_manifests_gate_on_readiness_and_run_the_release_first() {
    let mut c = Checker::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("deploy/k8s"))
        .expect("deploy/k8s exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    let mut kinds = Vec::new();
    for file in &files {
        let origin = file
            .strip_prefix(repo())
            .unwrap_or(Path::new("?"))
            .display()
            .to_string();
        let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{origin}: {e}"));
        for doc in yaml_documents(&origin, &text) {
            let kind = kubernetes_object(&mut c, &origin, &doc);
            if kind == "Job" {
                plain_job_can_be_created_again(&mut c, &origin, &text, &doc);
            }
            kinds.push(kind);
        }
    }
    for want in ["Deployment", "Job"] {
        c.check(
            "deploy/k8s",
            kinds.iter().any(|k| k == want),
            format!("no {want} in {kinds:?}"),
        );
    }
    c.finish();
}

/// A Job's pod template is immutable, so a Job with a fixed name cannot be applied a second
/// time: the plain Job has only a generateName, its file says to run it with `kubectl create`,
/// it is cleaned up after it finishes, and it carries no Helm hook annotations (which only mean
/// something inside a chart).
fn plain_job_can_be_created_again(
    c: &mut Checker,
    origin: &str,
    text: &str,
    doc: &serde_yaml::Value,
) {
    let meta = &doc["metadata"];
    c.check(
        origin,
        meta["name"].is_null() && meta["generateName"].as_str().is_some_and(|g| g.ends_with('-')),
        format!(
            "the Job has a fixed name ({:?}) instead of a generateName ending in '-': a second deploy could not create it",
            meta["name"]
        ),
    );
    c.check(
        origin,
        text.contains(&format!("kubectl create -f {origin}")),
        format!("does not say to run it with `kubectl create -f {origin}`"),
    );
    c.check(
        origin,
        doc["spec"]["ttlSecondsAfterFinished"]
            .as_i64()
            .is_some_and(|t| t > 0),
        "no positive spec.ttlSecondsAfterFinished: every deploy would leave a Job behind",
    );
    let hooks = meta["annotations"]
        .as_mapping()
        .map(|a| {
            a.keys()
                .filter_map(|k| k.as_str())
                .any(|k| k.starts_with("helm.sh/"))
        })
        .unwrap_or(false);
    c.check(origin, !hooks, "has Helm annotations outside a chart");
}

#[test]
fn the_github_workflow_runs_shipgate_check_on_paths_that_exist() {
    let mut c = Checker::new();
    let origin = "deploy/github/shipgate-check.yml";
    let doc: serde_yaml::Value =
        serde_yaml::from_str(&read(origin)).unwrap_or_else(|e| panic!("{origin}: {e}"));
    let mut subs = Vec::new();
    let jobs = doc["jobs"].as_mapping().cloned().unwrap_or_default();
    c.check(origin, !jobs.is_empty(), "no jobs");
    for (job, spec) in &jobs {
        let job = job.as_str().unwrap_or("?");
        for step in spec["steps"].as_sequence().cloned().unwrap_or_default() {
            let Some(script) = step["run"].as_str() else {
                continue;
            };
            for line in script.lines() {
                let w = words(line);
                if w.first()
                    .is_some_and(|p| p == "shipgate" || p.ends_with("/shipgate"))
                {
                    let sub = c.command(&format!("{origin} job {job}"), &w);
                    // Paths given to shipgate, e.g. --migrations DIR, exist.
                    for pair in w.windows(2) {
                        if pair[0] == "--migrations" || pair[0] == "--config" {
                            c.path(origin, &pair[1]);
                        }
                    }
                    subs.push(sub);
                }
            }
        }
    }
    c.check(
        origin,
        subs.iter().any(|s| s.as_deref() == Some("check")),
        format!("no step runs shipgate check: {subs:?}"),
    );
    // YAML reads the key `on` as the boolean true.
    let on = doc
        .get("on")
        .or_else(|| doc.get(serde_yaml::Value::Bool(true)))
        .cloned()
        .unwrap_or_default();
    let paths: Vec<String> = on["pull_request"]["paths"]
        .as_sequence()
        .map(|p| {
            p.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    for glob in &paths {
        let dir = glob.split(['*', '?', '[']).next().unwrap_or_default();
        c.path(
            &format!("{origin} on.pull_request.paths"),
            dir.trim_end_matches('/'),
        );
    }
    c.finish();
}

#[test]
fn the_dockerfile_builds_dependencies_in_their_own_layer_from_pinned_bases() {
    let mut c = Checker::new();
    let origin = "deploy/Dockerfile";
    let steps = instructions(&read(origin));
    let stage_names: Vec<String> = steps
        .iter()
        .filter(|(op, _)| op == "FROM")
        .filter_map(|(_, a)| {
            let w = words(a);
            let i = w.iter().position(|x| x.eq_ignore_ascii_case("as"))?;
            w.get(i + 1).cloned()
        })
        .collect();
    // Every base image is pinned: a digest, or a tag with an exact version (major.minor at
    // least), never `latest`, a bare major or a codename that moves.
    for (_, arg) in steps.iter().filter(|(op, _)| op == "FROM") {
        let image = words(arg)
            .into_iter()
            .find(|w| !w.starts_with("--"))
            .unwrap_or_default();
        if stage_names.contains(&image) {
            continue;
        }
        let tag = image
            .split_once('@')
            .map(|(_, d)| d.to_owned())
            .or_else(|| image.rsplit_once(':').map(|(_, t)| t.to_owned()))
            .unwrap_or_default();
        let versioned = tag.split(['-', '_']).any(|part| {
            let nums: Vec<&str> = part.split('.').collect();
            nums.len() >= 2
                && nums
                    .iter()
                    .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        });
        c.check(
            origin,
            tag.starts_with("sha256:") || versioned,
            format!("FROM {image} is not pinned to a digest or an exact version"),
        );
    }
    // The dependency layer: after Cargo.toml and Cargo.lock are copied and before src/ is,
    // a RUN builds (cargo build on a placeholder crate, or cargo chef cook).
    let position = |pred: &dyn Fn(&(String, String)) -> bool| steps.iter().position(pred);
    let manifests =
        position(&|(op, a)| op == "COPY" && a.contains("Cargo.toml") && a.contains("Cargo.lock"));
    let sources = position(&|(op, a)| {
        op == "COPY"
            && exec_form(a)
                .first()
                .is_some_and(|s| s.trim_start_matches("./").starts_with("src"))
    });
    let deps_build = |from: usize, to: usize| {
        steps[from..to].iter().any(|(op, a)| {
            op == "RUN" && (a.contains("cargo build") || a.contains("cargo chef cook"))
        })
    };
    match (manifests, sources) {
        (Some(m), Some(s)) if m < s => c.check(
            origin,
            deps_build(m, s),
            "no RUN builds the dependencies between COPY Cargo.toml Cargo.lock and COPY src: every change rebuilds them all",
        ),
        _ => c.problem(
            origin,
            format!("Cargo.toml and Cargo.lock are not copied before src/ ({manifests:?}, {sources:?})"),
        ),
    }
    // The final build runs after src/ is copied and is the release profile.
    let final_build = sources.and_then(|s| {
        steps[s..]
            .iter()
            .find(|(op, a)| op == "RUN" && a.contains("cargo build"))
            .map(|(_, a)| a.clone())
    });
    c.check(
        origin,
        final_build
            .as_deref()
            .is_some_and(|a| a.contains("--release") && a.contains("--locked")),
        format!(
            "the build after COPY src is not `cargo build --release --locked`: {final_build:?}"
        ),
    );
    c.finish();
}

#[test]
fn the_github_workflow_installs_shipgate_from_a_published_source_and_caches_it() {
    let mut c = Checker::new();
    let origin = "deploy/github/shipgate-check.yml";
    let doc: serde_yaml::Value =
        serde_yaml::from_str(&read(origin)).unwrap_or_else(|e| panic!("{origin}: {e}"));
    let steps: Vec<serde_yaml::Value> = doc["jobs"]
        .as_mapping()
        .map(|jobs| {
            jobs.values()
                .flat_map(|j| j["steps"].as_sequence().cloned().unwrap_or_default())
                .collect()
        })
        .unwrap_or_default();
    let runs: Vec<String> = steps
        .iter()
        .filter_map(|s| s["run"].as_str())
        .flat_map(|r| r.lines().map(str::to_owned).collect::<Vec<_>>())
        .collect();
    // Copied into a user's repository, `--path .` would build the user's code, and a
    // `uses: ./…` would name a file of shipgate's repository.
    let installs: Vec<Vec<String>> = runs
        .iter()
        .map(|l| words(l))
        .filter(|w| {
            w.windows(2).any(|p| p[0] == "cargo" && p[1] == "install")
                || w.windows(2).any(|p| p[0] == "pip" && p[1] == "install")
        })
        .collect();
    c.check(origin, !installs.is_empty(), "installs shipgate nowhere");
    for w in &installs {
        let line = w.join(" ");
        c.check(
            origin,
            !w.iter()
                .any(|x| x == "--path" || x.starts_with("--path=") || x == "--git"),
            format!("`{line}` installs from a path or a git repository, not a published package"),
        );
        c.check(
            origin,
            w.iter()
                .any(|x| x == "shipgate" || x.starts_with("shipgate==")),
            format!("`{line}` does not install the shipgate package"),
        );
        if w.contains(&"cargo".to_owned()) {
            c.check(
                origin,
                w.iter().any(|x| x == "--locked"),
                format!("`{line}` without --locked"),
            );
        }
    }
    let uses: Vec<&str> = steps.iter().filter_map(|s| s["uses"].as_str()).collect();
    for u in &uses {
        c.check(
            origin,
            !u.starts_with("./") && u.contains('@'),
            format!("uses {u}, which is not a pinned published action"),
        );
    }
    c.check(
        origin,
        uses.iter().any(|u| u.starts_with("actions/cache@")),
        "does not cache the installed shipgate: every run would compile it",
    );
    c.finish();
}

/// A Helm chart's files, parsed.
fn chart_yaml(file: &str) -> serde_yaml::Value {
    serde_yaml::from_str(&read(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

#[test]
fn the_helm_chart_runs_the_release_as_a_hook_and_its_values_name_the_url_secret() {
    let mut c = Checker::new();
    let dir = "deploy/helm/shipgate";
    let chart = chart_yaml(&format!("{dir}/Chart.yaml"));
    c.check(
        dir,
        chart["apiVersion"].as_str() == Some("v2"),
        "Chart.yaml apiVersion is not v2",
    );
    c.check(
        dir,
        chart["name"].as_str() == Some("shipgate"),
        "Chart.yaml name is not shipgate",
    );
    c.check(
        dir,
        chart["appVersion"].as_str() == Some(env!("CARGO_PKG_VERSION")),
        format!(
            "Chart.yaml appVersion {:?} is not the crate's version {}",
            chart["appVersion"],
            env!("CARGO_PKG_VERSION")
        ),
    );
    let values = chart_yaml(&format!("{dir}/values.yaml"));
    for (path, what) in [
        (&["image", "repository"][..], "the image"),
        (&["image", "tag"], "the image tag"),
        (
            &["database", "existingSecret"],
            "the DATABASE_URL secret's name",
        ),
        (&["database", "urlKey"], "the DATABASE_URL secret's key"),
        (&["deployId"], "the deploy id"),
        (&["release", "resources"], "the release Job's resources"),
        (
            &["release", "activeDeadlineSeconds"],
            "the release Job's deadline",
        ),
        (&["serve", "enabled"], "whether shipgate serve runs"),
        (&["serve", "resources"], "the Deployment's resources"),
    ] {
        let value = path.iter().fold(&values, |v, k| &v[*k]);
        c.check(
            dir,
            !value.is_null(),
            format!("values.yaml has no {} ({what})", path.join(".")),
        );
    }
    c.check(
        dir,
        values["release"]["backoffLimit"].as_i64() == Some(0),
        "release.backoffLimit is not 0: a failed release would be retried into a loop",
    );
    c.check(
        dir,
        values["image"]["tag"].as_str() == Some(env!("CARGO_PKG_VERSION")),
        format!(
            "image.tag {:?} is not the crate's version",
            values["image"]["tag"]
        ),
    );
    // Every shipgate command line in the templates parses (the rendered chart is checked in
    // full by deploy_tools.rs, with Helm itself).
    let mut commands = 0;
    let templates = repo().join(dir).join("templates");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&templates)
        .unwrap_or_else(|e| panic!("{}: {e}", templates.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    for file in files {
        let origin = format!(
            "{dir}/templates/{}",
            file.file_name().unwrap_or_default().to_string_lossy()
        );
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{origin}: {e}"));
        for line in text.lines() {
            if let Some(list) = line.trim().strip_prefix("command:") {
                let argv: Vec<String> =
                    serde_yaml::from_str(list).unwrap_or_else(|e| panic!("{origin}: {line}: {e}"));
                c.command(&origin, &argv);
                commands += 1;
            }
        }
    }
    c.check(
        dir,
        commands >= 2,
        format!("{commands} shipgate command lines in the templates, not 2 (release and serve)"),
    );
    c.finish();
}
