//! The scheduling examples (issue 10, "Beyond one machine"):
//! examples/kubernetes/, examples/cron/ and examples/systemd/ are checked as
//! the tools that read them would: every YAML document parses (PyYAML, the
//! YAML 1.1 that Kubernetes' own parser follows) and passes the Kubernetes
//! JSON schema, strictly (`kubernetes-validate`, no cluster needed); the
//! CronJob's Indexed Job has one shard per index and N agrees everywhere;
//! every ConfigMap, Secret, key, volume and variable a pod relies on is in
//! the examples; the config in the ConfigMap loads with `rcbackup config
//! check`; the systemd units pass `systemd-analyze verify`; the crontab
//! parses; and every example command line parses with the built binary.
//!
//! Two tests can only pass once the other parts of issue 10 are merged:
//! `the_config_in_the_configmap_loads` (tenants: `tenants_dir`, `--tenant`)
//! and `the_example_command_lines_parse` (`backup-all`, `--lock-wait`).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::Value;

/// The Kubernetes versions the manifests are checked against: the oldest
/// they support (backoffLimitPerIndex is GA from 1.33) and the newest
/// schema kubernetes-validate bundles (its default).
const KUBERNETES_OLDEST: &str = "1.33.0";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn examples(dir: &str) -> PathBuf {
    repo().join("examples").join(dir)
}

/// Every `*.yaml` file of examples/kubernetes/, sorted.
fn manifest_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(examples("kubernetes"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no manifests in examples/kubernetes/");
    files
}

/// One YAML document of a manifest file, as JSON.
struct Doc {
    file: String,
    value: Value,
}

impl Doc {
    fn kind(&self) -> &str {
        self.value["kind"].as_str().unwrap_or("")
    }
    fn name(&self) -> &str {
        self.value["metadata"]["name"].as_str().unwrap_or("")
    }
}

/// Every document of every manifest, parsed by PyYAML and handed over as
/// JSON. Panics, naming the file, if one does not parse.
fn documents() -> Vec<Doc> {
    let files = manifest_files();
    let script = r#"
import json, sys
try:
    import yaml
except ImportError:
    sys.exit("PyYAML is not installed for python3; run scripts/setup.sh")
out = []
for f in sys.argv[1:]:
    try:
        with open(f) as fh:
            out.append([f, list(yaml.safe_load_all(fh))])
    except yaml.YAMLError as e:
        sys.exit(f"{f} is not valid YAML: {e}")
json.dump(out, sys.stdout)
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(&files)
        .output()
        .expect("python3 runs; run scripts/setup.sh");
    assert!(
        out.status.success(),
        "the manifests do not parse: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let parsed: Vec<(String, Vec<Value>)> = serde_json::from_slice(&out.stdout).unwrap();
    let mut docs = Vec::new();
    for (file, values) in parsed {
        let file = Path::new(&file)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        for value in values {
            assert!(
                !value.is_null(),
                "{file} has an empty YAML document (a stray `---`?)"
            );
            docs.push(Doc {
                file: file.clone(),
                value,
            });
        }
    }
    docs
}

fn find<'a>(docs: &'a [Doc], kind: &str, name: &str) -> Option<&'a Doc> {
    docs.iter().find(|d| d.kind() == kind && d.name() == name)
}

/// The value at a dotted path (`spec.jobTemplate.spec`), or a panic naming
/// the path.
fn at<'a>(v: &'a Value, path: &str) -> &'a Value {
    let mut cur = v;
    for part in path.split('.') {
        cur = cur
            .get(part)
            .unwrap_or_else(|| panic!("no `{path}` (missing `{part}`) in {v:#}"));
    }
    cur
}

fn int(v: &Value, path: &str) -> i64 {
    at(v, path)
        .as_i64()
        .unwrap_or_else(|| panic!("`{path}` is not an integer: {}", at(v, path)))
}

fn text<'a>(v: &'a Value, path: &str) -> &'a str {
    at(v, path)
        .as_str()
        .unwrap_or_else(|| panic!("`{path}` is not a string: {}", at(v, path)))
}

fn array<'a>(v: &'a Value, path: &str) -> &'a Vec<Value> {
    at(v, path)
        .as_array()
        .unwrap_or_else(|| panic!("`{path}` is not a list: {}", at(v, path)))
}

/// The keys of a ConfigMap (`data`, `binaryData`) or Secret (`data`,
/// `stringData`), with their values as text.
fn keys_of(doc: &Doc) -> BTreeMap<String, String> {
    let mut keys = BTreeMap::new();
    for field in ["data", "stringData", "binaryData"] {
        if let Some(map) = doc.value.get(field).and_then(Value::as_object) {
            for (k, v) in map {
                keys.insert(k.clone(), v.as_str().unwrap_or("").to_string());
            }
        }
    }
    keys
}

/// Every pod spec in the manifests (the CronJob's template, the toolbox
/// Pod), with a label for messages.
fn pod_specs(docs: &[Doc]) -> Vec<(String, &Value)> {
    let mut specs = Vec::new();
    for d in docs {
        match d.kind() {
            "CronJob" => specs.push((
                format!("CronJob {}", d.name()),
                at(&d.value, "spec.jobTemplate.spec.template.spec"),
            )),
            "Job" => specs.push((
                format!("Job {}", d.name()),
                at(&d.value, "spec.template.spec"),
            )),
            "Pod" => specs.push((format!("Pod {}", d.name()), at(&d.value, "spec"))),
            _ => {}
        }
    }
    specs
}

/// The CronJob `rcbackup`'s container `rcbackup`.
fn cronjob(docs: &[Doc]) -> &Value {
    &find(docs, "CronJob", "rcbackup")
        .expect("examples/kubernetes/ has no CronJob `rcbackup`")
        .value
}

fn container<'a>(pod: &'a Value, name: &str) -> &'a Value {
    array(pod, "containers")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no container `{name}` in {pod:#}"))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|s| {
            s.as_str()
                .unwrap_or_else(|| panic!("not a string: {s}"))
                .to_string()
        })
        .collect()
}

#[test]
fn the_manifests_are_the_expected_kubernetes_objects() {
    let docs = documents();
    let expected: BTreeSet<(&str, &str, &str)> = [
        ("v1", "ConfigMap", "rcbackup-config"),
        ("v1", "ConfigMap", "rcbackup-tenants"),
        ("v1", "Secret", "rcbackup-db"),
        ("v1", "Secret", "rcbackup-rclone"),
        ("batch/v1", "CronJob", "rcbackup"),
        ("v1", "Pod", "rcbackup-toolbox"),
    ]
    .into();
    let mut seen = BTreeSet::new();
    for d in &docs {
        let api = d.value["apiVersion"].as_str().unwrap_or("");
        let key = (api, d.kind(), d.name());
        assert!(
            expected.contains(&key),
            "{}: unexpected object {key:?}; expected only {expected:?}",
            d.file
        );
        assert!(seen.insert(key), "{}: {key:?} is defined twice", d.file);
        // The namespace is chosen with `kubectl -n`, never fixed in a file.
        assert!(
            d.value["metadata"].get("namespace").is_none(),
            "{}: {key:?} sets a namespace",
            d.file
        );
    }
    let missing: Vec<_> = expected.difference(&seen).collect();
    assert!(missing.is_empty(), "missing objects: {missing:?}");

    // No real secret in the repository: every Secret value is a placeholder.
    for d in docs.iter().filter(|d| d.kind() == "Secret") {
        assert!(
            d.value.get("data").is_none(),
            "Secret {} has base64 `data`: use readable `stringData` with REPLACE-ME placeholders",
            d.name()
        );
        for (k, v) in keys_of(d) {
            assert!(
                v.contains("REPLACE-ME"),
                "Secret {} key {k} holds no REPLACE-ME placeholder: a real secret in the examples?",
                d.name()
            );
        }
    }
}

#[test]
fn the_manifests_pass_the_kubernetes_schema() {
    // kubernetes-validate bundles the Kubernetes JSON schemas (PyPI;
    // scripts/setup.sh installs it): no cluster and no network needed.
    // --strict refuses fields the schema does not know, so a misspelt or
    // misplaced key (`backofLimit`, `completions` under the pod) fails.
    let tool = which("kubernetes-validate");
    for version in [Some(KUBERNETES_OLDEST), None] {
        let mut cmd = Command::new(&tool);
        cmd.arg("--strict");
        if let Some(v) = version {
            cmd.args(["--kubernetes-version", v]);
        }
        let out = cmd.args(manifest_files()).output().unwrap();
        let report = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && !report.contains("ERROR"),
            "kubernetes-validate --strict ({}) refused the manifests:\n{report}",
            version.unwrap_or("newest bundled")
        );
        // One "passed" line per object: none was skipped as unknown.
        assert_eq!(
            report.matches(" passed ").count(),
            documents().len(),
            "not every object was validated:\n{report}"
        );
    }
}

#[test]
fn the_cronjob_runs_one_shard_per_index() {
    let docs = documents();
    let cj = cronjob(&docs);
    assert_eq!(text(cj, "spec.concurrencyPolicy"), "Forbid");
    let starting = int(cj, "spec.startingDeadlineSeconds");
    // The controller looks every 10 s: a smaller deadline may never start.
    assert!(
        (10..=6 * 3600).contains(&starting),
        "startingDeadlineSeconds {starting}"
    );

    let job = at(cj, "spec.jobTemplate.spec");
    assert_eq!(text(job, "completionMode"), "Indexed");
    let completions = int(job, "completions");
    let parallelism = int(job, "parallelism");
    let per_index = int(job, "backoffLimitPerIndex");
    let backoff = int(job, "backoffLimit");
    let deadline = int(job, "activeDeadlineSeconds");
    assert!(
        (1..=3).contains(&per_index),
        "backoffLimitPerIndex {per_index}"
    );
    // The schedule is daily: the window must end before the next night.
    assert!(
        (3600..24 * 3600).contains(&deadline),
        "activeDeadlineSeconds {deadline}"
    );

    let pod = at(job, "template.spec");
    assert_eq!(text(pod, "restartPolicy"), "Never");
    let c = container(pod, "rcbackup");
    // rcbackup is the container's process, so SIGTERM reaches it (a shell
    // in between would not pass it on, and the pod would be SIGKILLed).
    assert_eq!(strings(at(c, "command")), ["rcbackup"]);
    let args = strings(at(c, "args"));
    let shard = args
        .iter()
        .position(|a| a == "--shard")
        .and_then(|i| args.get(i + 1))
        .unwrap_or_else(|| panic!("no `--shard VALUE` in args {args:?}"));
    let n: i64 = shard
        .strip_prefix("$(JOB_COMPLETION_INDEX)/")
        .unwrap_or_else(|| panic!("--shard {shard}: expected $(JOB_COMPLETION_INDEX)/N"))
        .parse()
        .unwrap_or_else(|_| panic!("--shard {shard}: N is not a number"));
    assert!(n >= 1);
    assert_eq!(
        (completions, parallelism),
        (n, n),
        "completions and parallelism must both be the N of --shard {shard}"
    );
    assert_eq!(
        backoff,
        n * (per_index + 1),
        "backoffLimit must be N x (backoffLimitPerIndex + 1): lower, other shards' failures \
         stop a shard that still has a retry left"
    );
    assert!(args.iter().any(|a| a == "backup-all"), "args {args:?}");
    assert!(args.iter().any(|a| a == "--clean"), "args {args:?}");
    assert!(args.iter().any(|a| a == "--lock-wait"), "args {args:?}");

    // A config error (exit 2) fails its index at once; an eviction is not
    // a failure.
    let rules = array(job, "podFailurePolicy.rules");
    assert!(
        rules.iter().any(|r| r["action"] == "FailIndex"
            && r["onExitCodes"]["operator"] == "In"
            && r["onExitCodes"]["containerName"] == "rcbackup"
            && r["onExitCodes"]["values"]
                .as_array()
                .is_some_and(|v| v.contains(&Value::from(2)))),
        "no FailIndex rule for exit code 2: {rules:?}"
    );
    assert!(
        rules
            .iter()
            .any(|r| r["action"] == "Ignore"
                && r["onPodConditions"][0]["type"] == "DisruptionTarget"),
        "no Ignore rule for DisruptionTarget: {rules:?}"
    );

    // Time to clean up after SIGTERM.
    assert!(int(pod, "terminationGracePeriodSeconds") >= 60);
    assert_hardened(&format!("CronJob {}", text(cj, "metadata.name")), pod, c);
}

#[test]
fn every_pod_is_hardened() {
    let docs = documents();
    for (label, pod) in pod_specs(&docs) {
        for c in array(pod, "containers") {
            assert_hardened(&label, pod, c);
        }
    }
}

/// Non-root, read-only root file system with an emptyDir on /tmp, no
/// privilege escalation or capabilities, resources set.
fn assert_hardened(label: &str, pod: &Value, c: &Value) {
    let ps = at(pod, "securityContext");
    assert_eq!(ps["runAsNonRoot"], true, "{label}: runAsNonRoot");
    assert!(
        ps["runAsUser"].as_i64().is_some_and(|u| u > 0),
        "{label}: runAsUser"
    );
    assert_eq!(
        ps["seccompProfile"]["type"], "RuntimeDefault",
        "{label}: seccomp"
    );
    assert_eq!(
        pod["automountServiceAccountToken"], false,
        "{label}: automountServiceAccountToken"
    );
    let cs = at(c, "securityContext");
    assert_eq!(
        cs["readOnlyRootFilesystem"], true,
        "{label}: readOnlyRootFilesystem"
    );
    assert_eq!(
        cs["allowPrivilegeEscalation"], false,
        "{label}: allowPrivilegeEscalation"
    );
    assert_eq!(
        strings(&cs["capabilities"]["drop"]),
        ["ALL"],
        "{label}: capabilities"
    );
    for r in ["requests.cpu", "requests.memory", "limits.memory"] {
        at(at(c, "resources"), r);
    }
    let tmp = array(c, "volumeMounts")
        .iter()
        .find(|m| m["mountPath"] == "/tmp")
        .unwrap_or_else(|| panic!("{label}: nothing mounted on /tmp"));
    let vol = volume(pod, text(tmp, "name"));
    assert!(
        vol.get("emptyDir").is_some(),
        "{label}: /tmp is not an emptyDir: {vol}"
    );
    // Everything rcbackup and rclone write goes there.
    let env = env_values(c);
    for var in ["HOME", "TMPDIR", "RCBACKUP_CACHE_DIR"] {
        assert!(
            env.get(var).is_some_and(|v| v.starts_with("/tmp")),
            "{label}: {var} is not under /tmp: {env:?}"
        );
    }
}

fn volume<'a>(pod: &'a Value, name: &str) -> &'a Value {
    array(pod, "volumes")
        .iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no volume `{name}`"))
}

/// A container's literal `env` values.
fn env_values(c: &Value) -> BTreeMap<String, String> {
    c.get("env")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| Some((e["name"].as_str()?.into(), e["value"].as_str()?.into())))
        .collect()
}

/// For a configMap or secret volume: the object's kind and name, and the
/// files it projects (item paths, or every key without `items`) with the
/// key each comes from.
fn projected(docs: &[Doc], label: &str, vol: &Value) -> Option<(String, BTreeMap<String, String>)> {
    let (kind, name) = if let Some(cm) = vol.get("configMap") {
        ("ConfigMap", text(cm, "name"))
    } else if let Some(s) = vol.get("secret") {
        ("Secret", text(s, "secretName"))
    } else {
        return None;
    };
    let src = &vol[if kind == "ConfigMap" {
        "configMap"
    } else {
        "secret"
    }];
    let doc = find(docs, kind, name).unwrap_or_else(|| {
        panic!(
            "{label}: volume `{}` uses {kind} {name}, which the examples do not define",
            vol["name"]
        )
    });
    let keys = keys_of(doc);
    let mut files = BTreeMap::new();
    match src.get("items").and_then(Value::as_array) {
        Some(items) => {
            for it in items {
                let key = text(it, "key");
                assert!(
                    keys.contains_key(key),
                    "{label}: volume `{}` projects key `{key}`, which {kind} {name} lacks (keys: {:?})",
                    vol["name"],
                    keys.keys()
                );
                files.insert(text(it, "path").to_string(), key.to_string());
            }
        }
        None => {
            for k in keys.keys() {
                files.insert(k.clone(), k.clone());
            }
        }
    }
    Some((format!("{kind} {name}"), files))
}

#[test]
fn every_object_a_pod_uses_is_in_the_examples() {
    let docs = documents();
    for (label, pod) in pod_specs(&docs) {
        let volumes = array(pod, "volumes");
        let mut mounted = BTreeSet::new();
        for c in array(pod, "containers") {
            for m in c
                .get("volumeMounts")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let name = text(m, "name");
                let vol = volumes
                    .iter()
                    .find(|v| v["name"] == name)
                    .unwrap_or_else(|| panic!("{label}: mounts volume `{name}`, which it lacks"));
                mounted.insert(name.to_string());
                if let Some(sub) = m.get("subPath").and_then(Value::as_str) {
                    let (what, files) = projected(&docs, &label, vol)
                        .unwrap_or_else(|| panic!("{label}: subPath {sub} of a volume that is neither configMap nor secret"));
                    assert!(
                        files.contains_key(sub),
                        "{label}: subPath `{sub}` of volume `{name}` is not a file of {what} ({:?})",
                        files.keys()
                    );
                }
            }
            for e in c
                .get("envFrom")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                for (field, kind) in [("secretRef", "Secret"), ("configMapRef", "ConfigMap")] {
                    if let Some(r) = e.get(field) {
                        let name = text(r, "name");
                        assert!(
                            find(&docs, kind, name).is_some(),
                            "{label}: envFrom {kind} {name}, which the examples do not define"
                        );
                    }
                }
            }
            for e in c.get("env").and_then(Value::as_array).into_iter().flatten() {
                for (field, kind) in [("secretKeyRef", "Secret"), ("configMapKeyRef", "ConfigMap")]
                {
                    if let Some(r) = e.get("valueFrom").and_then(|v| v.get(field)) {
                        let (name, key) = (text(r, "name"), text(r, "key"));
                        let doc = find(&docs, kind, name).unwrap_or_else(|| {
                            panic!("{label}: env {} from {kind} {name}, which the examples do not define", e["name"])
                        });
                        assert!(
                            keys_of(doc).contains_key(key),
                            "{label}: env {} from key {key} of {kind} {name}, which it lacks",
                            e["name"]
                        );
                    }
                }
            }
        }
        for v in volumes {
            projected(&docs, &label, v);
            let name = text(v, "name");
            assert!(
                mounted.contains(name),
                "{label}: volume `{name}` is never mounted"
            );
        }
    }
}

/// What a pod sees of the examples: its files (mount path -> content) and
/// its environment (literal values and every key of its envFrom Secrets).
struct PodView {
    files: BTreeMap<PathBuf, String>,
    /// Folders mounted whole: mount path -> (file name -> content).
    folders: BTreeMap<PathBuf, BTreeMap<String, String>>,
    env: BTreeMap<String, String>,
}

fn pod_view(docs: &[Doc], pod: &Value, container_name: &str) -> PodView {
    let c = container(pod, container_name);
    let mut view = PodView {
        files: BTreeMap::new(),
        folders: BTreeMap::new(),
        env: env_values(c),
    };
    for e in c
        .get("envFrom")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(r) = e.get("secretRef") {
            let doc = find(docs, "Secret", text(r, "name")).unwrap();
            view.env.extend(keys_of(doc));
        }
    }
    for m in array(c, "volumeMounts") {
        let vol = volume(pod, text(m, "name"));
        let Some((what, files)) = projected(docs, "pod", vol) else {
            continue;
        };
        let (kind, name) = what.split_once(' ').unwrap();
        let keys = keys_of(find(docs, kind, name).unwrap());
        let mount = PathBuf::from(text(m, "mountPath"));
        match m.get("subPath").and_then(Value::as_str) {
            Some(sub) => {
                view.files.insert(mount, keys[&files[sub]].clone());
            }
            None => {
                let folder = files
                    .iter()
                    .map(|(path, key)| (path.clone(), keys[key].clone()))
                    .collect();
                view.folders.insert(mount, folder);
            }
        }
    }
    view
}

/// `path` relative to the folder of `config` (as rcbackup resolves config
/// paths), or itself when absolute.
fn beside(config: &Path, path: &str) -> PathBuf {
    config.parent().unwrap().join(path)
}

#[test]
fn the_config_names_only_what_the_pod_has() {
    let docs = documents();
    let cj = cronjob(&docs);
    let pod = at(cj, "spec.jobTemplate.spec.template.spec");
    let view = pod_view(&docs, pod, "rcbackup");
    let config_path = PathBuf::from(
        view.env
            .get("RCBACKUP_CONFIG")
            .expect("the container sets RCBACKUP_CONFIG"),
    );
    let main_text = view.files.get(&config_path).unwrap_or_else(|| {
        panic!(
            "RCBACKUP_CONFIG is {}, which no volume mounts",
            config_path.display()
        )
    });
    let main: toml::Table = main_text.parse().expect("rcbackup.toml is TOML");

    // rclone's config: a file the pod has, defining every remote named.
    let rclone_conf = main
        .get("rclone_config")
        .and_then(|v| v.as_str())
        .expect("rclone_config is set");
    let rclone_text = view
        .files
        .get(&beside(&config_path, rclone_conf))
        .unwrap_or_else(|| panic!("rclone_config {rclone_conf} is not a file the pod has"));
    let remotes: BTreeSet<&str> = rclone_text
        .lines()
        .filter_map(|l| l.trim().strip_prefix('[')?.strip_suffix(']'))
        .collect();

    // The tenants: the folder tenants_dir names is the tenants ConfigMap.
    let tenants_dir = main
        .get("tenants_dir")
        .and_then(|v| v.as_str())
        .expect("tenants_dir is set");
    let folder = view
        .folders
        .get(&beside(&config_path, tenants_dir))
        .unwrap_or_else(|| panic!("tenants_dir {tenants_dir} is not a folder the pod mounts"));
    assert!(
        folder.len() >= 2,
        "the example has at least two tenant files"
    );
    let mut layers = vec![("rcbackup.toml".to_string(), main.clone())];
    for (file, content) in folder {
        let name = file
            .strip_suffix(".toml")
            .unwrap_or_else(|| panic!("tenant file {file} does not end in .toml"));
        assert!(
            is_tenant_name(name),
            "tenant file {file}: `{name}` is not a tenant name"
        );
        let table: toml::Table = content
            .parse()
            .unwrap_or_else(|e| panic!("tenant file {file} is not TOML: {e}"));
        assert!(
            table.get("tenants_dir").is_none() && table.get("tenants").is_none(),
            "tenant file {file} declares tenants"
        );
        layers.push((file.clone(), table));
    }
    if let Some(sections) = main.get("tenants").and_then(|t| t.as_table()) {
        for (name, t) in sections {
            assert!(is_tenant_name(name), "[tenants.{name}]: not a tenant name");
            layers.push((format!("[tenants.{name}]"), t.as_table().unwrap().clone()));
        }
    }

    let mut databases = 0;
    for (what, layer) in &layers {
        if let Some(remote) = layer.get("remote").and_then(|v| v.as_str()) {
            let name = remote.split(':').next().unwrap();
            assert!(
                remote.contains(':') && remotes.contains(name),
                "{what}: remote {remote} is not defined in rclone.conf (it defines {remotes:?})"
            );
        }
        for (alias, db) in layer
            .get("databases")
            .and_then(|d| d.as_table())
            .into_iter()
            .flatten()
        {
            databases += 1;
            for key in ["password_env", "url_env"] {
                if let Some(var) = db.get(key).and_then(|v| v.as_str()) {
                    assert!(
                        view.env.contains_key(var),
                        "{what} [databases.{alias}] {key} = {var}, which the pod's environment lacks (add it to Secret rcbackup-db)"
                    );
                }
            }
            assert!(
                db.get("password").is_none()
                    && db
                        .get("url")
                        .is_none_or(|u| !u.as_str().unwrap_or("").contains('@')),
                "{what} [databases.{alias}] holds a secret"
            );
        }
    }
    assert!(databases >= 3, "the example tenants have databases");
}

/// The tenant name rule: 1-63 lowercase ASCII letters, digits, `-`, `_`,
/// starting with a letter or digit.
fn is_tenant_name(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

// Needs tenants (issue 10, "Tenants": `tenants_dir`, `--tenant`, and
// `config check` reporting a broken tenant). Until that part is merged it
// fails at its first step: exit 2, "key `tenants_dir` is not a known key".
#[test]
fn the_config_in_the_configmap_loads() {
    let docs = documents();
    let cj = cronjob(&docs);
    let pod = at(cj, "spec.jobTemplate.spec.template.spec");
    let view = pod_view(&docs, pod, "rcbackup");

    // The pod's /etc/rcbackup, laid out in a scratch folder.
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("etc-rcbackup");
    let map = |p: &Path| -> PathBuf {
        root.join(
            p.strip_prefix("/etc/rcbackup")
                .unwrap_or_else(|_| panic!("{} is not under /etc/rcbackup", p.display())),
        )
    };
    for (path, content) in &view.files {
        let dest = map(path);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::write(dest, content).unwrap();
    }
    let mut tenants = Vec::new();
    let mut tenants_dir = None;
    for (path, files) in &view.folders {
        let dest = map(path);
        std::fs::create_dir_all(&dest).unwrap();
        for (file, content) in files {
            std::fs::write(dest.join(file), content).unwrap();
            tenants.push(file.trim_end_matches(".toml").to_string());
        }
        tenants_dir = Some(dest);
    }
    let tenants_dir = tenants_dir.expect("the pod mounts the tenants' folder");
    assert!(tenants.len() >= 2, "{tenants:?}");
    let config = map(Path::new(&view.env["RCBACKUP_CONFIG"]));

    // Only 127.0.0.1: every remote's endpoint is a closed local port, path
    // style (no bucket host name to look up), and PATH holds rclone but no
    // database client, so no check connects to the example's hosts (a
    // missing tool is an error, never a config error). The Secret's
    // variables are set, as envFrom sets them.
    let bin_dir = tmp.path().join("bin");
    std::fs::create_dir(&bin_dir).unwrap();
    std::os::unix::fs::symlink(which("rclone"), bin_dir.join("rclone")).unwrap();
    let remotes: Vec<String> = view.files[&PathBuf::from("/etc/rcbackup/rclone.conf")]
        .lines()
        .filter_map(|l| Some(l.trim().strip_prefix('[')?.strip_suffix(']')?.to_string()))
        .collect();
    let check = |tenant: Option<&str>| -> Run {
        let mut cmd = Command::new(bin());
        cmd.env_clear()
            .env("PATH", &bin_dir)
            .env("HOME", tmp.path())
            .env("RCBACKUP_CACHE_DIR", tmp.path().join("cache"))
            .env("RCBACKUP_CONFIG", &config);
        for (k, v) in &view.env {
            if !["RCBACKUP_CONFIG", "HOME", "TMPDIR", "RCBACKUP_CACHE_DIR"].contains(&k.as_str()) {
                cmd.env(k, v);
            }
        }
        for r in &remotes {
            let r = r.to_ascii_uppercase();
            cmd.env(format!("RCLONE_CONFIG_{r}_ENDPOINT"), "http://127.0.0.1:9")
                .env(format!("RCLONE_CONFIG_{r}_FORCE_PATH_STYLE"), "true");
        }
        if let Some(t) = tenant {
            cmd.args(["--tenant", t]);
        }
        cmd.args(["config", "check", "--json"]);
        Run::from(cmd.output().unwrap())
    };
    // Loads: the `config` check passes and no failed check is a config
    // error (exit 2); the remotes do not answer and the tools are missing
    // here, so exit 1 is expected.
    let loads = |what: &str, run: &Run| -> bool {
        let json: Value = serde_json::from_str(&run.stdout).unwrap_or(Value::Null);
        json["checks"][0]["check"] == "config"
            && json["checks"][0]["status"] == "ok"
            && (run.code == 0 || run.code == 1)
            || {
                eprintln!("{what}: exit {}\n{}\n{}", run.code, run.stdout, run.stderr);
                false
            }
    };
    assert!(
        loads("config check", &check(None)),
        "the example config does not load (see above)"
    );
    for t in &tenants {
        assert!(
            loads(&format!("config check --tenant {t}"), &check(Some(t))),
            "tenant {t}'s file does not load (see above)"
        );
    }

    // The same check finds a broken tenant file, so the passes above mean
    // the example's files were read and found right.
    std::fs::write(
        tenants_dir.join("broken.toml"),
        "db_cleanup_kep = 3\n[databases.main]\nengine = \"sqlite\"\nname = \"main.db\"\n",
    )
    .unwrap();
    for tenant in [None, Some("broken")] {
        let run = check(tenant);
        assert!(
            run.code == 2 && format!("{}{}", run.stdout, run.stderr).contains("db_cleanup_kep"),
            "config check{} does not report the broken tenant file (exit {}):\n{}\n{}",
            tenant.map(|t| format!(" --tenant {t}")).unwrap_or_default(),
            run.code,
            run.stdout,
            run.stderr
        );
    }
}

/// The rcbackup command lines of the examples: the CronJob's and the
/// toolbox's documented ones, cron's and systemd's, as argument lists.
fn example_command_lines(docs: &[Doc]) -> Vec<(String, Vec<String>)> {
    let mut lines = Vec::new();
    let c = container(
        at(cronjob(docs), "spec.jobTemplate.spec.template.spec"),
        "rcbackup",
    );
    // Kubernetes gives pod I `$(JOB_COMPLETION_INDEX)` = I.
    let args = strings(at(c, "args"))
        .into_iter()
        .map(|a| a.replace("$(JOB_COMPLETION_INDEX)", "0"))
        .collect();
    lines.push(("cronjob.yaml".to_string(), args));

    let cron = std::fs::read_to_string(examples("cron").join("rcbackup")).unwrap();
    for (i, line) in cron.lines().enumerate() {
        let line = line.trim_start_matches('#').trim();
        if let Some(rest) = line.split_once("exec rcbackup ").map(|(_, r)| r) {
            let cmd = rest.split('>').next().unwrap();
            lines.push((
                format!("examples/cron/rcbackup line {}", i + 1),
                cmd.split_whitespace().map(String::from).collect(),
            ));
        }
    }
    let unit = std::fs::read_to_string(examples("systemd").join("rcbackup.service")).unwrap();
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart= in rcbackup.service");
    lines.push((
        "rcbackup.service ExecStart".to_string(),
        exec.split_whitespace().skip(1).map(String::from).collect(),
    ));
    let readme = std::fs::read_to_string(examples("kubernetes").join("README.md")).unwrap();
    for (i, line) in readme.lines().enumerate() {
        if let Some(rest) = line.split_once(" -- rcbackup ").map(|(_, r)| r) {
            let cmd = rest.split('#').next().unwrap();
            lines.push((
                format!("examples/kubernetes/README.md line {}", i + 1),
                cmd.split_whitespace().map(String::from).collect(),
            ));
        }
    }
    lines
}

// Needs `backup-all` and the locks' `--lock-wait` (issue 10); fails with
// exit 2 ("unrecognized subcommand") until those parts are merged.
#[test]
fn the_example_command_lines_parse() {
    let docs = documents();
    let lines = example_command_lines(&docs);
    assert!(lines.len() >= 5, "{lines:?}");
    for (what, args) in lines {
        // clap parses every argument (and its value) up to `--help`, then
        // prints the subcommand's help: exit 0 only if each one exists.
        let out = Command::new(bin())
            .args(&args)
            .arg("--help")
            .env_remove("RCBACKUP_CONFIG")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{what}: `rcbackup {}` does not parse:\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A unit file's `Key=value` lines by section, in order.
fn unit_keys(file: &Path) -> BTreeMap<String, Vec<(String, String)>> {
    let mut sections: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let mut current = String::new();
    for line in std::fs::read_to_string(file).unwrap().lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = s.to_string();
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("{}: not Key=value: {line}", file.display()));
        sections
            .entry(current.clone())
            .or_default()
            .push((k.to_string(), v.to_string()));
    }
    sections
}

fn unit_value<'a>(
    sections: &'a BTreeMap<String, Vec<(String, String)>>,
    section: &str,
    key: &str,
) -> Vec<&'a str> {
    sections
        .get(section)
        .into_iter()
        .flatten()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .collect()
}

#[test]
fn the_systemd_units_verify() {
    let dir = examples("systemd");
    let service = unit_keys(&dir.join("rcbackup.service"));
    let timer = unit_keys(&dir.join("rcbackup.timer"));
    let one = |s: &BTreeMap<String, Vec<(String, String)>>, sec: &str, key: &str| -> String {
        let v = unit_value(s, sec, key);
        assert_eq!(v.len(), 1, "[{sec}] {key}= is set {} times", v.len());
        v[0].to_string()
    };
    assert_eq!(one(&service, "Service", "Type"), "oneshot");
    assert_eq!(one(&service, "Service", "ProtectSystem"), "strict");
    assert_eq!(one(&service, "Service", "PrivateTmp"), "yes");
    assert_eq!(one(&service, "Service", "NoNewPrivileges"), "yes");
    // SIGTERM to rcbackup alone: it needs its rclone to clean up.
    assert_eq!(one(&service, "Service", "KillMode"), "mixed");
    assert!(one(&service, "Service", "EnvironmentFile").starts_with('/'));
    // The wasm compiler writes code: this option would break policies.
    assert!(unit_value(&service, "Service", "MemoryDenyWriteExecute").is_empty());
    // Whatever the command writes is writable under ProtectSystem=strict.
    let exec = one(&service, "Service", "ExecStart");
    let words: Vec<&str> = exec.split_whitespace().collect();
    let metrics = words
        .iter()
        .position(|w| *w == "--metrics-file")
        .map(|i| Path::new(words[i + 1]))
        .expect("ExecStart writes a metrics file");
    let writable = unit_value(&service, "Service", "ReadWritePaths").join(" ");
    assert!(
        writable.split_whitespace().any(|p| metrics.starts_with(p)),
        "the metrics file {} is not under ReadWritePaths={writable}",
        metrics.display()
    );
    assert_eq!(one(&timer, "Timer", "Persistent"), "true");
    assert!(!one(&timer, "Timer", "RandomizedDelaySec").is_empty());
    assert!(!one(&timer, "Timer", "OnCalendar").is_empty());
    assert_eq!(one(&timer, "Timer", "Unit"), "rcbackup.service");
    assert_eq!(one(&timer, "Install", "WantedBy"), "timers.target");

    // systemd's own check: unknown keys, bad values, a calendar spec that
    // does not parse. ExecStart's binary must exist, so the copy runs the
    // binary under test; the man page in Documentation= is not installed here.
    let Some(analyze) = std::env::split_paths(&std::env::var_os("PATH").unwrap())
        .map(|d| d.join("systemd-analyze"))
        .find(|p| p.is_file())
    else {
        eprintln!("systemd-analyze is not installed: only the keys were checked");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let unit = std::fs::read_to_string(dir.join("rcbackup.service"))
        .unwrap()
        .replace(
            "ExecStart=/usr/local/bin/rcbackup ",
            &format!("ExecStart={} ", bin()),
        );
    assert!(
        unit.contains(bin()),
        "ExecStart is not /usr/local/bin/rcbackup"
    );
    std::fs::write(tmp.path().join("rcbackup.service"), unit).unwrap();
    std::fs::copy(
        dir.join("rcbackup.timer"),
        tmp.path().join("rcbackup.timer"),
    )
    .unwrap();
    let out = Command::new(analyze)
        .args(["verify", "--man=no", "rcbackup.service", "rcbackup.timer"])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify (exit {:?}):\n{stderr}",
        out.status.code()
    );
}

#[test]
fn the_systemd_secrets_file_holds_only_assignments() {
    // EnvironmentFile= and the cron example's `. file` both read it.
    let text = std::fs::read_to_string(examples("systemd").join("secrets.env")).unwrap();
    let mut names = 0;
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, value) = line.split_once('=').unwrap();
        assert!(
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'),
            "secrets.env: `{name}` is not a variable name"
        );
        assert!(
            value.contains("REPLACE-ME"),
            "secrets.env: {name} is not a placeholder"
        );
        names += 1;
    }
    assert!(names >= 3);
    // The shell reads it to the same values systemd does.
    let out = Command::new("sh")
        .arg("-c")
        .arg("set -a && . \"$1\" && env")
        .arg("sh")
        .arg(examples("systemd").join("secrets.env"))
        .env_clear()
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let env = String::from_utf8_lossy(&out.stdout);
    assert!(
        env.lines()
            .any(|l| l.starts_with("TENANT_GLOBEX_ANALYTICS_URL=postgres://")
                && l.ends_with("&application_name=rcbackup")),
        "the shell splits a quoted value:\n{env}"
    );
}

#[test]
fn the_crontab_is_well_formed() {
    let text = std::fs::read_to_string(examples("cron").join("rcbackup")).unwrap();
    let mut vars = BTreeMap::new();
    let mut jobs = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let first = line.split_whitespace().next().unwrap();
        if let Some((k, v)) = first.split_once('=') {
            if line.split_whitespace().count() == 1 {
                vars.insert(k.to_string(), v.to_string());
                continue;
            }
        }
        jobs.push(line);
    }
    assert!(vars.contains_key("MAILTO"), "no MAILTO: {vars:?}");
    assert!(vars.contains_key("PATH"), "no PATH: {vars:?}");
    assert!(!jobs.is_empty());
    for job in jobs {
        let mut parts = job.split_whitespace();
        let schedule: Vec<&str> = parts.by_ref().take(5).collect();
        let ranges = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)];
        for (field, (lo, hi)) in schedule.iter().zip(ranges) {
            for item in field.split(',') {
                let (range, step) = item.split_once('/').unwrap_or((item, "1"));
                assert!(step.parse::<u32>().is_ok_and(|s| s >= 1), "step in {field}");
                if range == "*" {
                    continue;
                }
                for n in range.split('-') {
                    let n: u32 = n.parse().unwrap_or_else(|_| panic!("cron field {field}"));
                    assert!(
                        (lo..=hi).contains(&n),
                        "cron field {field} out of {lo}-{hi}"
                    );
                }
            }
        }
        let user = parts.next().expect("a user column (/etc/cron.d format)");
        assert_eq!(user, "rcbackup");
        let command = job
            .split_once(&format!(" {user} "))
            .map(|(_, c)| c.trim())
            .unwrap();
        assert!(!command.is_empty(), "no command: {job}");
        // cron turns an unescaped % into a newline.
        assert!(!command.contains('%'), "a % in the command: {command}");
        // The locks replace flock; the metrics file is how it is watched.
        assert!(!command.contains("flock"), "{command}");
        assert!(command.contains("--metrics-file"), "{command}");
        assert!(command.contains("backup-all") && command.contains("--lock-wait"));
        let out = Command::new("sh")
            .args(["-n", "-c", command])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "sh -n: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
