//! The deploy files in the repository, read as each platform reads them: every shipgate
//! command line they contain names a real subcommand with real flags (clap parses it), every
//! environment variable they set for shipgate is one it reads, every path they name exists,
//! and the health checks point at `/health` (liveness) and `/health/ready` (readiness).

use std::path::{Path, PathBuf};

use crate::support::{Project, Run};

/// The repository: the build context of every deploy file.
fn repo() -> PathBuf {
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
struct Checker {
    project: Project,
    problems: Vec<String>,
    /// The image's ENTRYPOINT, from deploy/Dockerfile.
    entrypoint: Vec<String>,
}

impl Checker {
    fn new() -> Checker {
        Checker {
            project: Project::new(),
            problems: Vec::new(),
            entrypoint: dockerfile_entrypoint(),
        }
    }

    fn problem(&mut self, origin: &str, message: impl std::fmt::Display) {
        self.problems.push(format!("{origin}: {message}"));
    }

    fn check(&mut self, origin: &str, ok: bool, message: impl std::fmt::Display) {
        if !ok {
            self.problem(origin, message);
        }
    }

    /// A path named by a deploy file, relative to the repository (the build context).
    fn path(&mut self, origin: &str, path: &str) {
        let relative = path.trim_start_matches("./");
        let exists = relative.is_empty() || relative == "." || repo().join(relative).exists();
        self.check(
            origin,
            exists,
            format!("names {path}, which does not exist"),
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
    fn finish(self) {
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
    let origin = "deploy/fly.toml";
    let doc: toml::Value =
        toml::from_str(&read(origin)).unwrap_or_else(|e| panic!("{origin}: {e}"));
    match doc
        .get("build")
        .and_then(|b| b.get("dockerfile"))
        .and_then(|d| d.as_str())
    {
        Some(p) => c.path(origin, p),
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
    let origin = "deploy/render.yaml";
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
    let origin = "deploy/Procfile";
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

#[test]
fn the_kubernetes_manifests_gate_on_readiness_and_run_the_release_first() {
    use serde::Deserialize as _;
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
        for document in serde_yaml::Deserializer::from_str(&text) {
            let doc = serde_yaml::Value::deserialize(document)
                .unwrap_or_else(|e| panic!("{origin}: {e}"));
            if doc.is_null() {
                continue;
            }
            let kind = doc["kind"].as_str().unwrap_or("?").to_owned();
            let here = format!(
                "{origin} {kind} {}",
                doc["metadata"]["name"].as_str().unwrap_or("?")
            );
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
