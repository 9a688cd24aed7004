//! The deploy files checked by their platforms' own validators, where one installs from the
//! registries CI reaches. `.ci/run` puts them, pinned, in one virtualenv (`../tools-ci/deploy-check`,
//! or `SHIPGATE_TEST_DEPLOY_CHECK`): Helm's Go library (the helm-python-sdk wheel carries it; no
//! helm binary installs from those registries) lints the chart strictly and renders it as
//! `helm template` does; kubernetes-validate checks every Kubernetes object, rendered or plain,
//! against the API's own schemas (strict: unknown fields are errors); check-jsonschema checks
//! the GitHub workflow against GitHub's workflow schema; hadolint lints the Dockerfile.

use std::path::PathBuf;
use std::process::Command;

use crate::deploy_files::{kubernetes_object, object_name, repo, yaml_documents, Checker};

/// The oldest Kubernetes release the manifests are checked against: the Job's deploy id reads
/// the `batch.kubernetes.io/controller-uid` label, which pods carry from 1.27 on.
const OLDEST_KUBERNETES: &str = "1.27.0";

/// A validator in the virtualenv `.ci/run` installs.
fn tool(name: &str) -> PathBuf {
    let venv = std::env::var_os("SHIPGATE_TEST_DEPLOY_CHECK")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("..").join("tools-ci").join("deploy-check"));
    let path = venv.join("bin").join(name);
    assert!(
        path.is_file(),
        "{} is not installed: `bash .ci/run` installs it (or set SHIPGATE_TEST_DEPLOY_CHECK)",
        path.display()
    );
    path
}

/// Runs a validator: (success, stdout, stderr).
fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd
        .current_dir(repo())
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[track_caller]
fn passes(cmd: &mut Command) -> String {
    let (ok, stdout, stderr) = run(cmd);
    assert!(ok, "{cmd:?} failed:\n{stdout}\n{stderr}");
    stdout
}

/// `helm lint --strict` and `helm template` of the chart with `values`, as release `name` at
/// `revision`: the rendered stream, or Helm's error.
fn helm(values: serde_json::Value, name: &str, revision: u32) -> Result<String, String> {
    let (ok, stdout, stderr) = run(Command::new(tool("python"))
        .arg(repo().join("tests/deploy/helm.py"))
        .arg("deploy/helm/shipgate")
        .arg(values.to_string())
        .arg(name)
        .arg(revision.to_string()));
    if ok {
        Ok(stdout)
    } else {
        Err(stderr)
    }
}

/// kubernetes-validate --strict of one YAML stream, against the oldest and the newest
/// Kubernetes release it knows.
#[track_caller]
fn kubernetes_validate(what: &str, yaml: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir
        .path()
        .join(format!("{}.yaml", what.replace(['/', ' '], "_")));
    std::fs::write(&file, yaml).expect("write manifest");
    for version in [Some(OLDEST_KUBERNETES), None] {
        let mut cmd = Command::new(tool("kubernetes-validate"));
        cmd.arg("--strict");
        if let Some(v) = version {
            cmd.args(["-k", v]);
        }
        let out = passes(cmd.arg(&file));
        assert!(
            out.contains("passed"),
            "{what}: kubernetes-validate checked nothing:\n{out}"
        );
    }
}

/// An env var of a container: its literal value or its secretKeyRef (name, key).
fn env_of<'a>(container: &'a serde_yaml::Value, name: &str) -> &'a serde_yaml::Value {
    container["env"]
        .as_sequence()
        .and_then(|env| env.iter().find(|e| e["name"].as_str() == Some(name)))
        .unwrap_or(&serde_yaml::Value::Null)
}

fn first_container(doc: &serde_yaml::Value) -> &serde_yaml::Value {
    &doc["spec"]["template"]["spec"]["containers"][0]
}

#[test]
fn helm_lints_and_renders_the_chart_into_a_release_hook_and_a_served_deployment() {
    let values = serde_json::json!({
        "image": {"repository": "registry.test/shop/shipgate"},
        "database": {"existingSecret": "shop-db", "urlKey": "url"},
        "deployId": "v42",
    });
    let rendered = helm(values, "shop", 3).unwrap_or_else(|e| panic!("helm: {e}"));
    let origin = "deploy/helm/shipgate (rendered)";
    let docs = yaml_documents(origin, &rendered);
    let mut c = Checker::new();
    let mut kinds = Vec::new();
    for doc in &docs {
        kinds.push(kubernetes_object(&mut c, origin, doc));
        if !["Deployment", "Job"].contains(&doc["kind"].as_str().unwrap_or("?")) {
            continue;
        }
        let here = format!("{origin} {}", object_name(doc));
        let container = first_container(doc);
        c.check(
            &here,
            container["image"].as_str()
                == Some(&format!(
                    "registry.test/shop/shipgate:{}",
                    env!("CARGO_PKG_VERSION")
                )),
            format!("image is {:?}", container["image"]),
        );
        let url = &env_of(container, "DATABASE_URL")["valueFrom"]["secretKeyRef"];
        c.check(
            &here,
            url["name"].as_str() == Some("shop-db") && url["key"].as_str() == Some("url"),
            format!("DATABASE_URL is not the values' secret shop-db/url: {url:?}"),
        );
        c.check(
            &here,
            env_of(container, "SHIPGATE_DEPLOY_ID")["value"].as_str() == Some("v42"),
            format!(
                "SHIPGATE_DEPLOY_ID is not the values' v42: {:?}",
                env_of(container, "SHIPGATE_DEPLOY_ID")
            ),
        );
    }
    let job = docs.iter().find(|d| d["kind"].as_str() == Some("Job"));
    match job {
        Some(job) => {
            let notes = &job["metadata"]["annotations"];
            let hooks: Vec<&str> = notes["helm.sh/hook"]
                .as_str()
                .unwrap_or_default()
                .split(',')
                .collect();
            c.check(
                origin,
                hooks.contains(&"pre-install") && hooks.contains(&"pre-upgrade"),
                format!("the Job's hooks are {hooks:?}, not pre-install,pre-upgrade"),
            );
            c.check(
                origin,
                notes["helm.sh/hook-delete-policy"].as_str().unwrap_or_default().split(',').any(|p| p == "before-hook-creation"),
                format!("the Job's delete policy {:?} lacks before-hook-creation: the next upgrade could not create it", notes["helm.sh/hook-delete-policy"]),
            );
            c.check(
                origin,
                job["spec"]["backoffLimit"].as_i64() == Some(0),
                "the Job's backoffLimit is not 0",
            );
            c.check(
                origin,
                job["spec"]["activeDeadlineSeconds"]
                    .as_i64()
                    .is_some_and(|s| s > 0),
                "the Job has no activeDeadlineSeconds",
            );
        }
        None => c.problem(origin, format!("no Job in {kinds:?}")),
    }
    c.check(
        origin,
        kinds.iter().any(|k| k == "Deployment"),
        format!("no Deployment in {kinds:?}"),
    );
    c.finish();
    kubernetes_validate(origin, &rendered);
}

#[test]
fn helm_defaults_the_deploy_id_to_release_and_revision_and_can_render_the_hook_alone() {
    let values = serde_json::json!({
        "image": {"repository": "registry.test/shipgate"},
        "serve": {"enabled": false},
    });
    let rendered = helm(values, "shop", 7).unwrap_or_else(|e| panic!("helm: {e}"));
    let docs = yaml_documents("rendered", &rendered);
    let kinds: Vec<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
    assert_eq!(
        kinds,
        ["Job"],
        "serve.enabled=false renders only the hook Job"
    );
    let container = first_container(&docs[0]);
    assert_eq!(
        env_of(container, "SHIPGATE_DEPLOY_ID")["value"].as_str(),
        Some("shop-7")
    );
    let url = &env_of(container, "DATABASE_URL")["valueFrom"]["secretKeyRef"];
    assert_eq!(
        (url["name"].as_str(), url["key"].as_str()),
        (Some("shipgate"), Some("database-url"))
    );
    kubernetes_validate("hook only", &rendered);
}

#[test]
fn helm_refuses_the_chart_without_an_image() {
    let err =
        helm(serde_json::json!({}), "shop", 1).expect_err("rendered without image.repository");
    assert!(err.contains("image.repository is required"), "{err}");
}

#[test]
fn kubernetes_validate_accepts_the_plain_manifests() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("deploy/k8s"))
        .expect("deploy/k8s exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    for file in files {
        let origin = file.display().to_string();
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{origin}: {e}"));
        let mut stream = String::new();
        for mut doc in yaml_documents(&origin, &text) {
            // The API server names a generateName object; the validator needs the name.
            if doc["metadata"]["name"].is_null() {
                let name = object_name(&doc).replace('*', "x1y2z");
                doc["metadata"]["name"] = serde_yaml::Value::String(name);
            }
            stream.push_str("---\n");
            stream.push_str(&serde_yaml::to_string(&doc).expect("yaml"));
        }
        kubernetes_validate(&origin, &stream);
    }
}

#[test]
fn the_workflow_matches_githubs_workflow_schema() {
    let out = passes(
        Command::new(tool("check-jsonschema"))
            .args(["--builtin-schema", "vendor.github-workflows"])
            .arg("deploy/github/shipgate-check.yml"),
    );
    assert!(out.contains("ok"), "{out}");
}

#[test]
fn hadolint_passes_the_dockerfile() {
    passes(Command::new(tool("hadolint")).arg("deploy/Dockerfile"));
}
