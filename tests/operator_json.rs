//! Issue 11, part B: `--json` on dbbackup, mediabackup, verify, prune and
//! policy test (every document checked key by key and type by type against
//! the shapes docs/json.md documents, and docs/json.md's own examples
//! against the same checks), `rcbackup prune` and `verify --all`.

mod common;
mod policy_support;

use std::collections::BTreeSet;
use std::process::Stdio;

use common::{flip_byte, Remote, World};
use serde_json::Value;

// ---- the documented shapes ----------------------------------------------

#[derive(Clone, Copy)]
enum T {
    Str,
    Int,
    Bool,
    /// RFC 3339 in UTC, whole seconds: `2026-11-28T10:00:00Z`.
    Time,
    /// `null` or the inner type.
    Opt(&'static T),
    /// An array whose elements pass the check.
    Arr(fn(&Value, &str)),
    /// An object that passes the check.
    Obj(fn(&Value, &str)),
    StrArr,
    /// One of these strings.
    OneOf(&'static [&'static str]),
}

fn check_type(v: &Value, t: T, at: &str) {
    match t {
        T::Str => assert!(v.is_string(), "{at}: not a string: {v}"),
        T::Int => assert!(v.is_u64(), "{at}: not a non-negative integer: {v}"),
        T::Bool => assert!(v.is_boolean(), "{at}: not a boolean: {v}"),
        T::Time => {
            let s = v
                .as_str()
                .unwrap_or_else(|| panic!("{at}: not a string: {v}"));
            assert!(
                s.len() == 20 && s.ends_with('Z'),
                "{at}: not RFC 3339 UTC: {s}"
            );
            chrono::DateTime::parse_from_rfc3339(s)
                .unwrap_or_else(|e| panic!("{at}: not RFC 3339 ({e}): {s}"));
        }
        T::Opt(inner) => {
            if !v.is_null() {
                check_type(v, *inner, at)
            }
        }
        T::Arr(each) => {
            let a = v
                .as_array()
                .unwrap_or_else(|| panic!("{at}: not an array: {v}"));
            for (i, e) in a.iter().enumerate() {
                each(e, &format!("{at}[{i}]"));
            }
        }
        T::Obj(check) => check(v, at),
        T::StrArr => {
            let a = v
                .as_array()
                .unwrap_or_else(|| panic!("{at}: not an array: {v}"));
            assert!(a.iter().all(Value::is_string), "{at}: not strings: {v}");
        }
        T::OneOf(words) => {
            let s = v
                .as_str()
                .unwrap_or_else(|| panic!("{at}: not a string: {v}"));
            assert!(words.contains(&s), "{at}: `{s}` is not one of {words:?}");
        }
    }
}

/// `v` is an object with exactly the `required` keys, perhaps some of the
/// `optional` ones, and nothing else, each of its type.
fn keys(v: &Value, at: &str, required: &[(&str, T)], optional: &[(&str, T)]) {
    let o = v
        .as_object()
        .unwrap_or_else(|| panic!("{at}: not an object: {v}"));
    for (k, t) in required {
        let x = o
            .get(*k)
            .unwrap_or_else(|| panic!("{at}: no `{k}` in {v:#}"));
        check_type(x, *t, &format!("{at}.{k}"));
    }
    for (k, t) in optional {
        if let Some(x) = o.get(*k) {
            check_type(x, *t, &format!("{at}.{k}"));
        }
    }
    // A tenant's run: every versioned document has `"tenant"` after
    // `"version"` (docs/json.md).
    let versioned = o.contains_key("version");
    if versioned {
        if let Some(t) = o.get("tenant") {
            check_type(t, T::Str, &format!("{at}.tenant"));
        }
    }
    for k in o.keys() {
        if versioned && k == "tenant" {
            continue;
        }
        assert!(
            required.iter().chain(optional).any(|(r, _)| r == k),
            "{at}: `{k}` is not documented: {v:#}"
        );
    }
}

const COMPRESSION: T = T::OneOf(&["zstd", "none"]);
const ENGINE: T = T::OneOf(&["postgresql", "postgis", "mysql", "mariadb", "sqlite"]);
const LEFTOVER_KIND: T = T::OneOf(&[
    "partial-upload",
    "stale-claim",
    "unrecorded-data",
    "record-without-data",
    "restore-staging",
]);

fn made_backup(v: &Value, at: &str) {
    keys(
        v,
        at,
        &[
            ("database", T::Str),
            ("name", T::Str),
            ("path", T::Str),
            ("engine", ENGINE),
            ("size", T::Int),
            ("sha256", T::Str),
            ("compression", COMPRESSION),
            ("created", T::Time),
            ("duration_ms", T::Int),
        ],
        &[("tenant", T::Str)],
    );
    assert_eq!(v["sha256"].as_str().unwrap().len(), 64, "{at}.sha256");
}

fn planned_backup(v: &Value, at: &str) {
    keys(
        v,
        at,
        &[
            ("database", T::Str),
            ("name", T::Str),
            ("path", T::Str),
            ("engine", ENGINE),
            ("compression", COMPRESSION),
        ],
        &[],
    );
}

fn decision(v: &Value, at: &str) {
    keys(
        v,
        at,
        &[
            ("name", T::Str),
            ("action", T::OneOf(&["keep", "delete"])),
            ("reason", T::Str),
            ("created", T::Time),
        ],
        &[],
    );
}

fn damaged_skipped(v: &Value, at: &str) {
    keys(v, at, &[("name", T::Str), ("problem", T::Str)], &[]);
}

fn leftover(v: &Value, at: &str) {
    keys(
        v,
        at,
        &[
            ("kind", LEFTOVER_KIND),
            ("paths", T::StrArr),
            ("last_seen", T::Time),
        ],
        &[],
    );
}

fn cleanup(v: &Value, at: &str) {
    keys(
        v,
        at,
        &[
            ("rule", T::Str),
            ("decisions", T::Arr(decision)),
            ("damaged", T::Arr(damaged_skipped)),
            ("leftovers", T::Arr(leftover)),
        ],
        &[],
    );
}

fn series(v: &Value, at: &str) {
    keys(
        v,
        at,
        &[
            ("database", T::Str),
            ("rule", T::Str),
            ("decisions", T::Arr(decision)),
            ("damaged", T::Arr(damaged_skipped)),
        ],
        &[],
    );
}

fn checked(v: &Value, at: &str) {
    keys(
        v,
        at,
        &[
            ("status", T::OneOf(&["ok", "damaged", "error"])),
            ("name", T::Str),
            ("path", T::Str),
        ],
        &[
            ("database", T::Str),
            ("size", T::Int),
            ("sha256", T::Str),
            ("created", T::Time),
            ("problem", T::Str),
        ],
    );
    let ok = v["status"] == "ok";
    assert_eq!(ok, v.get("problem").is_none(), "{at}: problem iff not ok");
    if ok {
        for k in ["database", "size", "sha256", "created"] {
            assert!(v.get(k).is_some(), "{at}: an ok backup has `{k}`");
        }
    }
}

fn count(v: &Value, at: &str) {
    keys(
        v,
        at,
        &[("files", T::Int), ("bytes", T::Opt(&T::Int))],
        &[("paths", T::StrArr)],
    );
    if let Some(p) = v.get("paths") {
        assert_eq!(
            p.as_array().unwrap().len() as u64,
            v["files"].as_u64().unwrap()
        );
    }
}

fn listed(v: &Value, at: &str) {
    keys(
        v,
        at,
        &[
            (
                "status",
                T::OneOf(&["ok", "damaged", "leftover", "foreign"]),
            ),
            ("name", T::Str),
            ("path", T::Str),
        ],
        &[
            ("database", T::Str),
            ("tenant", T::Str),
            ("engine", ENGINE),
            ("size", T::Int),
            ("created", T::Time),
            ("sha256", T::Str),
            ("compression", COMPRESSION),
            ("problem", T::Str),
            ("kind", LEFTOVER_KIND),
            ("last_seen", T::Time),
        ],
    );
}

fn media_backup_row(v: &Value, at: &str) {
    keys(
        v,
        at,
        &[
            ("stamp", T::Str),
            ("complete", T::Bool),
            ("restorable", T::Bool),
            ("version_files", T::Int),
            ("version_size", T::Int),
        ],
        &[],
    );
}

/// A `backup-all` row's `backup`: a `dbbackup` entry without `duration_ms`
/// (the row has it).
fn backed_up(v: &Value, at: &str) {
    keys(
        v,
        at,
        &[
            ("database", T::Str),
            ("name", T::Str),
            ("path", T::Str),
            ("engine", ENGINE),
            ("size", T::Int),
            ("sha256", T::Str),
            ("compression", COMPRESSION),
            ("created", T::Time),
        ],
        &[("tenant", T::Str)],
    );
}

fn backup_all_row(v: &Value, at: &str) {
    keys(
        v,
        at,
        &[
            ("tenant", T::Opt(&T::Str)),
            ("database", T::Opt(&T::Str)),
            (
                "status",
                T::OneOf(&["ok", "failed", "interrupted", "not-run"]),
            ),
            ("exit_code", T::Opt(&T::Int)),
            ("duration_ms", T::Opt(&T::Int)),
            ("backup", T::Opt(&T::Obj(backed_up))),
            ("error", T::Opt(&T::Str)),
        ],
        &[],
    );
    let status = v["status"].as_str().unwrap();
    assert_eq!(
        status == "ok",
        !v["backup"].is_null(),
        "{at}: backup iff ok"
    );
    assert_eq!(
        status == "ok",
        v["error"].is_null(),
        "{at}: error iff not ok"
    );
    assert_eq!(
        status == "ok",
        v["exit_code"] == 0,
        "{at}: exit_code 0 iff ok"
    );
    assert_eq!(
        status == "not-run",
        v["exit_code"].is_null() && v["duration_ms"].is_null(),
        "{at}: no exit_code or duration_ms iff not run"
    );
    if v["database"].is_null() {
        assert_eq!(
            status, "failed",
            "{at}: only a broken tenant has no database"
        );
    }
}

fn adopted_row(v: &Value, at: &str) {
    keys(
        v,
        at,
        &[
            ("name", T::Str),
            ("database", T::Str),
            ("created", T::Time),
            ("from", T::OneOf(&["django-rclone", "django-dbbackup"])),
            ("layout", T::Opt(&T::Str)),
            ("compression", T::OneOf(&["gzip", "none"])),
            ("size", T::Opt(&T::Int)),
            ("sha256", T::Opt(&T::Str)),
        ],
        &[("connector", T::Str)],
    );
}

fn not_adopted_row(v: &Value, at: &str) {
    keys(
        v,
        at,
        &[
            ("name", T::Str),
            ("reason", T::Str),
            ("damaged", T::Bool),
            ("unsupported", T::Bool),
        ],
        &[],
    );
}

fn backup_all_counts(v: &Value, at: &str) {
    keys(
        v,
        at,
        &[
            ("ok", T::Int),
            ("failed", T::Int),
            ("interrupted", T::Int),
            ("not_run", T::Int),
        ],
        &[],
    );
}

/// Checks a document of `kind` (a section of docs/json.md) against its
/// documented shape.
fn check_shape(kind: &str, v: &Value) {
    let versioned = |v: &Value| assert_eq!(v["version"], 1, "{kind}: version 1: {v:#}");
    match kind {
        "listbackups" => {
            let a = v
                .as_array()
                .unwrap_or_else(|| panic!("{kind}: not an array"));
            for (i, e) in a.iter().enumerate() {
                listed(e, &format!("{kind}[{i}]"));
            }
        }
        "listbackups-media" => keys(
            v,
            kind,
            &[
                ("mirror", T::Str),
                ("files", T::Int),
                ("size", T::Int),
                ("backups", T::Arr(media_backup_row)),
            ],
            &[],
        ),
        "dbbackup" => {
            versioned(v);
            let dry = v["dry_run"]
                .as_bool()
                .unwrap_or_else(|| panic!("dry_run: {v}"));
            keys(
                v,
                kind,
                &[
                    ("version", T::Int),
                    ("dry_run", T::Bool),
                    (
                        "backups",
                        T::Arr(if dry { planned_backup } else { made_backup }),
                    ),
                ],
                &[("cleanup", T::Obj(cleanup))],
            );
            assert_eq!(v["backups"].as_array().unwrap().len(), 1, "{v:#}");
        }
        "prune" => {
            versioned(v);
            keys(
                v,
                kind,
                &[
                    ("version", T::Int),
                    ("dry_run", T::Bool),
                    ("databases", T::Arr(series)),
                    ("damaged", T::Arr(damaged_skipped)),
                    ("leftovers", T::Arr(leftover)),
                ],
                &[],
            );
        }
        "verify" => {
            versioned(v);
            keys(
                v,
                kind,
                &[
                    ("version", T::Int),
                    ("checked", T::Arr(checked)),
                    ("ok", T::Int),
                    ("damaged", T::Int),
                    ("errors", T::Int),
                ],
                &[],
            );
            let c = v["checked"].as_array().unwrap();
            for (status, key) in [("ok", "ok"), ("damaged", "damaged"), ("error", "errors")] {
                let n = c.iter().filter(|e| e["status"] == status).count() as u64;
                assert_eq!(
                    v[key].as_u64().unwrap(),
                    n,
                    "{key} counts the {status} entries"
                );
            }
        }
        "mediabackup" => {
            versioned(v);
            let dry = v["dry_run"].as_bool().unwrap();
            let mut required = vec![
                ("version", T::Int),
                ("dry_run", T::Bool),
                ("stamp", T::Str),
                ("version_folder", T::Opt(&T::Str)),
                ("copied", T::Obj(count)),
                ("replaced", T::Obj(count)),
                ("deleted", T::Obj(count)),
            ];
            if dry {
                for k in ["copied", "replaced", "deleted"] {
                    assert!(v[k].get("paths").is_some(), "a dry run lists paths: {v:#}");
                }
            } else {
                required.push(("duration_ms", T::Int));
                for k in ["copied", "replaced", "deleted"] {
                    assert!(
                        v[k].get("paths").is_none(),
                        "a real run lists no paths: {v:#}"
                    );
                }
            }
            keys(v, kind, &required, &[]);
        }
        "policy-test" => {
            versioned(v);
            let role = v["role"].as_str().unwrap_or_else(|| panic!("role: {v}"));
            let mut required = vec![
                ("version", T::Int),
                (
                    "role",
                    T::OneOf(&["retention", "naming", "restore-approval", "hooks"]),
                ),
                ("accepted", T::Bool),
            ];
            let mut optional = vec![("refused_because", T::Str)];
            fn guest_decision(v: &Value, at: &str) {
                keys(
                    v,
                    at,
                    &[
                        ("name", T::Str),
                        ("action", T::OneOf(&["keep", "delete"])),
                        ("reason", T::Str),
                    ],
                    &[],
                );
            }
            match role {
                "retention" => required.push(("decisions", T::Arr(guest_decision))),
                "naming" => required.push(("name", T::Str)),
                "restore-approval" => {
                    required.push(("decision", T::OneOf(&["allow", "ask-user", "deny"])));
                    optional.push(("reason", T::Str));
                }
                _ => {
                    fn request(v: &Value, at: &str) {
                        keys(
                            v,
                            at,
                            &[
                                ("method", T::Str),
                                ("url", T::Str),
                                ("outcome", T::Str),
                                ("sent", T::Bool),
                            ],
                            &[],
                        );
                    }
                    required.push(("event", T::Str));
                    required.push(("outcome", T::OneOf(&["ok", "veto", "failed"])));
                    required.push(("requests", T::Arr(request)));
                    optional.push(("reason", T::Str));
                }
            }
            keys(v, kind, &required, &optional);
            assert_eq!(
                v["accepted"] == false,
                v.get("refused_because").is_some(),
                "refused_because iff not accepted: {v:#}"
            );
        }
        "backup-all" => {
            versioned(v);
            keys(
                v,
                kind,
                &[
                    ("version", T::Int),
                    ("interrupted", T::Bool),
                    ("jobs", T::Int),
                    ("shard", T::Opt(&T::Str)),
                    ("counts", T::Obj(backup_all_counts)),
                    ("databases", T::Arr(backup_all_row)),
                ],
                &[],
            );
            let rows = v["databases"].as_array().unwrap();
            for (status, key) in [
                ("ok", "ok"),
                ("failed", "failed"),
                ("interrupted", "interrupted"),
                ("not-run", "not_run"),
            ] {
                let n = rows.iter().filter(|r| r["status"] == status).count() as u64;
                assert_eq!(v["counts"][key], n, "{kind}: counts.{key}");
            }
        }
        "adopt" => {
            versioned(v);
            keys(
                v,
                kind,
                &[
                    ("version", T::Int),
                    ("dry_run", T::Bool),
                    ("adopted", T::Arr(adopted_row)),
                    ("not_adopted", T::Arr(not_adopted_row)),
                    ("already_adopted", T::Int),
                    ("interrupted", T::Bool),
                    ("dbbackup_zone", T::Opt(&T::Str)),
                    ("not_reached", T::StrArr),
                ],
                &[],
            );
            if v["interrupted"] == false {
                assert_eq!(v["not_reached"], serde_json::json!([]), "{kind}: {v:#}");
            }
        }
        other => panic!("no shape `{other}`"),
    }
}

/// Parses a `--json` stdout: one document, and for versioned shapes an
/// object whose first key is `"version": 1`.
fn document(kind: &str, stdout: &str) -> Value {
    let v: Value = serde_json::from_str(stdout)
        .unwrap_or_else(|e| panic!("{kind} --json is not one JSON document ({e}): {stdout}"));
    if v.is_object() && !kind.starts_with("listbackups") {
        let first = stdout.trim_start().trim_start_matches('{').trim_start();
        assert!(
            first.starts_with("\"version\": 1,"),
            "{kind}: \"version\" is not the first key: {stdout}"
        );
    }
    check_shape(kind, &v);
    v
}

fn docs_json() -> String {
    std::fs::read_to_string(policy_support::repo().join("docs/json.md")).unwrap()
}

/// docs/json.md's examples: each ```json block whose info string names its
/// shape (```json dbbackup).
fn doc_examples() -> Vec<(String, String)> {
    let text = docs_json();
    let mut out = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in text.lines() {
        match &mut current {
            None => {
                if let Some(kind) = line.strip_prefix("```json ") {
                    current = Some((kind.trim().to_string(), String::new()));
                }
            }
            Some((kind, body)) => {
                if line.starts_with("```") {
                    out.push((kind.clone(), body.clone()));
                    current = None;
                } else {
                    body.push_str(line);
                    body.push('\n');
                }
            }
        }
    }
    out
}

// ---- helpers -----------------------------------------------------------

fn sqlite_world(remote: Remote) -> World {
    let mut w = World::new(remote);
    w.seeded_sqlite("default", 20);
    w
}

/// Backs up `n` times, a second apart (names carry the time).
fn backups(w: &World, args: &[&str], n: usize) {
    for _ in 0..n {
        w.ok(args);
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
}

fn json_run(w: &World, kind: &str, args: &[&str]) -> Value {
    let r = w.ok(args);
    document(kind, &r.stdout)
}

fn deleted_in(v: &Value) -> BTreeSet<String> {
    let mut series: Vec<&Value> = Vec::new();
    if let Some(dbs) = v.get("databases") {
        series.extend(dbs.as_array().unwrap());
    }
    if let Some(c) = v.get("cleanup") {
        series.push(c);
    }
    series
        .iter()
        .flat_map(|s| s["decisions"].as_array().unwrap())
        .filter(|d| d["action"] == "delete")
        .map(|d| d["name"].as_str().unwrap().to_string())
        .collect()
}

/// The store's path of a backup's data object (local remote).
fn data_object(w: &World, name: &str) -> std::path::PathBuf {
    w.store.join("db").join(name)
}

/// `rcbackup ARGS` with descriptor 1 closed (`>&-`).
fn run_stdout_closed(w: &World, args: &str) -> common::Run {
    let env = w.command(&[]);
    let mut cmd = std::process::Command::new("bash");
    cmd.arg("-c")
        .arg(format!("exec '{}' {args} >&-", common::bin()))
        .current_dir(w.dir.path());
    for (k, v) in env.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    common::Run::from(cmd.output().unwrap())
}

/// `prune`, SIGTERMed while rclone (one process per call) deletes an
/// object of `.rcbackup/<folder>/`, which takes `secs` more seconds.
fn prune_terminated_while_deleting(w: &mut World, folder: &str, secs: u32) -> common::Run {
    let mark = w.path("deleting");
    w.wrap_tool(
        "rclone",
        &format!(
            r#"if [ "$1" = deletefile ]; then case "$2" in *.rcbackup/{folder}/*) touch '{}'; sleep {secs};; esac; fi; exec "$REAL" "$@""#,
            mark.display()
        ),
    );
    let child = w.spawn(&["prune"]);
    common::wait_until(30, "the deletion to start", || mark.exists());
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    common::Run::from(child.wait_with_output().unwrap())
}

// ---- the tests ---------------------------------------------------------

/// docs/json.md and the code cannot drift: every example in it passes the
/// checks the real outputs pass, and every shape has an example.
#[test]
fn docs_examples_match_the_documented_shapes() {
    let examples = doc_examples();
    let kinds: BTreeSet<&str> = examples.iter().map(|(k, _)| k.as_str()).collect();
    for kind in [
        "listbackups",
        "listbackups-media",
        "dbbackup",
        "prune",
        "verify",
        "mediabackup",
        "policy-test",
        "backup-all",
        "adopt",
    ] {
        assert!(
            kinds.contains(kind),
            "docs/json.md has no example of {kind}"
        );
    }
    for (kind, body) in &examples {
        document(kind, body);
    }
}

/// `backup-all --json`: the top level and a tenant backed up, a broken
/// tenant failed; the document has the documented shape, printed although
/// the run fails (exit 1).
#[test]
fn backup_all_json_has_the_documented_shape() {
    let mut w = sqlite_world(Remote::Local);
    let file = w.path("acme.sqlite3");
    common::sqlite(&file, "CREATE TABLE t(x); INSERT INTO t VALUES (1);");
    w.setting(&format!(
        "[tenants.acme.databases.main]\nengine = \"sqlite\"\nname = \"{}\"\n[tenants.broken]\ndb_cleanup_keep = 0",
        file.display()
    ));
    let r = w.run(&["backup-all", "--json"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let v = document("backup-all", &r.stdout);
    assert_eq!(v["counts"]["ok"], 2, "{v:#}");
    assert_eq!(v["counts"]["failed"], 1, "{v:#}");
}

/// `dbbackup --json | jq -r '.backups[0].name'` names the backup just made,
/// as listbackups shows it; --dry-run --json plans without making anything.
#[test]
fn dbbackup_json_names_the_backup_listbackups_shows() {
    let mut w = sqlite_world(Remote::Local);
    w.setting("db_cleanup_keep = 1");
    let planned = json_run(
        &w,
        "dbbackup",
        &["dbbackup", "--json", "--dry-run", "--clean"],
    );
    assert_eq!(planned["dry_run"], true);
    assert!(w.names(None).is_empty(), "a dry run made a backup");

    let made = json_run(&w, "dbbackup", &["dbbackup", "--json"]);
    let b = &made["backups"][0];
    assert_eq!(made["dry_run"], false);
    assert!(made.get("cleanup").is_none(), "no cleanup without --clean");
    let listed = w.list(None);
    document("listbackups", &serde_json::to_string(&listed).unwrap());
    let entry = listed
        .iter()
        .find(|e| e["status"] == "ok")
        .expect("the backup is listed");
    for k in [
        "name",
        "path",
        "size",
        "sha256",
        "created",
        "compression",
        "database",
        "engine",
    ] {
        assert_eq!(
            b[k], entry[k],
            "`{k}` of dbbackup --json and listbackups --json"
        );
    }
    assert_eq!(b["database"], "default");
    // The object on the store is what the document says.
    let stored = std::fs::read(data_object(&w, b["name"].as_str().unwrap())).unwrap();
    assert_eq!(stored.len() as u64, b["size"].as_u64().unwrap());
    assert_eq!(common::sha256_hex(&stored), b["sha256"].as_str().unwrap());

    // With --clean: the older backup goes, and the document says so.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let cleaned = json_run(&w, "dbbackup", &["dbbackup", "--json", "--clean"]);
    let new_name = cleaned["backups"][0]["name"].as_str().unwrap().to_string();
    assert_eq!(
        deleted_in(&cleaned),
        BTreeSet::from([b["name"].as_str().unwrap().to_string()])
    );
    assert_eq!(cleaned["cleanup"]["rule"], "db_cleanup_keep = 1");
    assert_eq!(w.names(None), vec![new_name]);
}

/// Closed stdout with --json: exit 1, and the work stands (the backup is
/// published, prune's deletions are done).
#[test]
fn closed_stdout_with_json_is_an_error_and_undoes_nothing() {
    let mut w = sqlite_world(Remote::Local);
    let r = run_stdout_closed(&w, "dbbackup --json");
    assert_eq!(r.code, 1, "{}", r.stderr);
    common::assert_mentions(&r.stderr, &["standard output"]);
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    assert_eq!(w.names(None).len(), 1, "the backup stands");

    // `| head -0`: the reader is gone before the document is written.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let mut child = w
        .command(&["dbbackup", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(w.names(None).len(), 2, "the second backup stands");

    w.setting("db_cleanup_keep = 1");
    let r = run_stdout_closed(&w, "prune --json");
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(w.names(None).len(), 1, "prune's deletion is done");

    let r = run_stdout_closed(&w, "verify --all --json");
    assert_eq!(r.code, 1, "{}", r.stderr);
}

/// Prune deletes exactly what --dry-run said, for every database, and
/// removes abandoned leftovers; the dry run changes nothing.
#[test]
fn prune_deletes_exactly_what_dry_run_said() {
    let mut w = sqlite_world(Remote::Local);
    w.seeded_sqlite("other", 5);
    w.setting("db_cleanup_keep = 2");
    backups(&w, &["dbbackup", "-d", "default"], 4);
    backups(&w, &["dbbackup", "-d", "other"], 3);
    // An upload a killed run left two decades ago.
    let partial_dir = w.store.join("db/.rcbackup/partial");
    std::fs::create_dir_all(&partial_dir).unwrap();
    let partial = partial_dir.join("default-2001-09-09-014640.sqlite3.zst.1000000000-1");
    std::fs::write(&partial, b"half a dump").unwrap();
    common::age(&partial);

    let before: BTreeSet<String> = w.names(None).into_iter().collect();
    let files_before = common::store_files(&w);
    let dry = json_run(&w, "prune", &["prune", "--dry-run", "--json"]);
    assert_eq!(dry["dry_run"], true);
    assert_eq!(
        common::store_files(&w),
        files_before,
        "--dry-run changed the store"
    );
    let would = deleted_in(&dry);
    assert_eq!(
        would.len(),
        3,
        "two of default's four, one of other's three: {dry:#}"
    );
    let dbs: Vec<&str> = dry["databases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["database"].as_str().unwrap())
        .collect();
    assert_eq!(dbs, ["default", "other"]);
    for s in dry["databases"].as_array().unwrap() {
        for d in s["decisions"].as_array().unwrap() {
            let reason = d["reason"].as_str().unwrap();
            let want = if d["action"] == "keep" {
                "one of the newest 2"
            } else {
                "older than the newest 2"
            };
            assert!(reason.contains(want), "{d}");
        }
    }
    let leftovers = dry["leftovers"].as_array().unwrap();
    assert_eq!(leftovers.len(), 1, "{dry:#}");
    assert_eq!(leftovers[0]["kind"], "partial-upload");

    // The text form explains the same decisions.
    let text = w.ok(&["prune", "--dry-run"]);
    for name in &would {
        let line = text
            .stdout
            .lines()
            .find(|l| l.contains(name.as_str()))
            .unwrap_or_else(|| panic!("{name} not in {}", text.stdout));
        assert!(
            line.contains("would delete") && line.contains("older than the newest 2"),
            "{line}"
        );
    }

    let done = json_run(&w, "prune", &["prune", "--json"]);
    assert_eq!(done["dry_run"], false);
    assert_eq!(
        deleted_in(&done),
        would,
        "prune did other than --dry-run said"
    );
    let after: BTreeSet<String> = w.names(None).into_iter().collect();
    assert_eq!(after, &before - &would);
    assert!(!partial.exists(), "the abandoned upload is removed");
    assert!(
        w.list(None).iter().all(|e| e["status"] == "ok"),
        "nothing damaged or left over: {:#?}",
        w.list(None)
    );
    // Nothing left to do.
    let again = json_run(&w, "prune", &["prune", "--json"]);
    assert!(deleted_in(&again).is_empty(), "{again:#}");

    // -d restricts prune to one database.
    w.settings = w
        .settings
        .replace("db_cleanup_keep = 2", "db_cleanup_keep = 1");
    let one = json_run(&w, "prune", &["prune", "-d", "other", "--json"]);
    assert_eq!(one["databases"].as_array().unwrap().len(), 1);
    assert_eq!(w.names(Some("other")).len(), 1);
    assert_eq!(w.names(Some("default")).len(), 2, "default untouched");
    let r = w.run(&["prune", "-d", "nosuch"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
}

/// Prune with a retention policy: the policy decides, with its reasons,
/// and prune deletes what its dry run said.
#[test]
fn prune_with_a_retention_policy() {
    let mut w = policy_support::world();
    w.databases.push_str(&format!(
        "[policies.retention]\nmodule = \"{}\"\nconfig = {{ keep = 1 }}\n",
        policy_support::rust_guest("keep_last").display()
    ));
    backups(&w, &["dbbackup"], 3);
    let before = w.names(None);
    let dry = json_run(&w, "prune", &["prune", "--dry-run", "--json"]);
    let rule = dry["databases"][0]["rule"].as_str().unwrap();
    assert!(
        rule.starts_with("policy ") && rule.contains("keep_last"),
        "{rule}"
    );
    let would = deleted_in(&dry);
    assert_eq!(would, before[1..].iter().cloned().collect(), "{dry:#}");
    let done = json_run(&w, "prune", &["prune", "--json"]);
    assert_eq!(deleted_in(&done), would);
    assert_eq!(w.names(None), before[..1]);
}

/// verify --all with one damaged backup among good ones: every backup is
/// checked, the damaged one is named, exit 4; a backup the listing finds
/// damaged counts as damaged; --newest checks the newest of each database.
#[test]
fn verify_all_reports_every_backup_and_exits_4_on_damage() {
    let mut w = sqlite_world(Remote::Local);
    w.seeded_sqlite("other", 5);
    backups(&w, &["dbbackup"], 3);
    backups(&w, &["dbbackup", "-d", "other"], 1);
    let all = json_run(&w, "verify", &["verify", "--all", "--json"]);
    assert_eq!(all["ok"], 4);
    let names = w.names(Some("default"));
    let bad = names[1].clone();
    flip_byte(&data_object(&w, &bad));
    // The oldest's record no longer reads: the listing marks it damaged.
    let unreadable = names[2].clone();
    std::fs::write(
        w.store
            .join(format!("db/.rcbackup/records/{unreadable}.json")),
        b"{not json",
    )
    .unwrap();

    let r = w.run(&["verify", "--all"]);
    assert_eq!(r.code, 4, "{}\n{}", r.stdout, r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "one line per backup: {}", r.stdout);
    assert_eq!(
        lines.iter().filter(|l| l.contains(": OK (")).count(),
        2,
        "{}",
        r.stdout
    );
    for name in [&bad, &unreadable] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("{name}: DAMAGED"))),
            "{name}: {}",
            r.stdout
        );
        assert!(r.stderr.contains(name.as_str()), "{}", r.stderr);
    }

    let r = w.run(&["verify", "--all", "--json"]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    let v = document("verify", &r.stdout);
    assert_eq!(
        (v["ok"].as_u64(), v["damaged"].as_u64()),
        (Some(2), Some(2)),
        "{v:#}"
    );
    let status = |n: &str| {
        v["checked"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == n)
            .unwrap_or_else(|| panic!("{n} not checked: {v:#}"))["status"]
            .clone()
    };
    assert_eq!(status(&bad), "damaged");
    assert_eq!(status(&unreadable), "damaged");
    assert_eq!(status(&names[0]), "ok");

    // -d: only that database's (and unreadable records, which may be its).
    let r = w.run(&["verify", "--all", "-d", "other", "--json"]);
    let v = document("verify", &r.stdout);
    let checked: BTreeSet<&str> = v["checked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(
        checked.contains(w.names(Some("other"))[0].as_str()),
        "{v:#}"
    );
    assert!(!checked.contains(bad.as_str()), "{v:#}");

    // --newest: the newest of each database; both are intact (the backup
    // whose record does not read is older than both, so it is not either's
    // newest).
    let newest = json_run(&w, "verify", &["verify", "--all", "--newest", "--json"]);
    let got: BTreeSet<String> = newest["checked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    let want: BTreeSet<String> = [names[0].clone(), w.names(Some("other"))[0].clone()].into();
    assert_eq!(got, want, "{newest:#}");

    // A single verify of the damaged one, as JSON: the document, then exit 4.
    let r = w.run(&["verify", "-i", &bad, "--json"]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    let v = document("verify", &r.stdout);
    assert_eq!(v["checked"][0]["status"], "damaged");
    // A single verify of a good one, as before.
    let v = json_run(&w, "verify", &["verify", "--json"]);
    assert_eq!(v["checked"][0]["name"], names[0].as_str());

    assert_eq!(
        w.run(&["verify", "--newest"]).code,
        2,
        "--newest needs --all"
    );
}

/// mediabackup --json: counts and bytes of what was copied, replaced and
/// deleted, the version folder; --dry-run --json: the plan, paths listed.
#[test]
fn mediabackup_json_says_what_was_copied_replaced_and_deleted() {
    let mut w = World::new(Remote::Local);
    let root = w.path("media");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    w.setting(&format!("media_root = \"{}\"", root.display()));
    std::fs::write(root.join("a.txt"), b"aaaa").unwrap();
    std::fs::write(root.join("sub/b.txt"), b"bbbbbbbb").unwrap();
    let first = json_run(&w, "mediabackup", &["mediabackup", "--json"]);
    assert_eq!(first["copied"]["files"], 2, "{first:#}");
    assert_eq!(first["copied"]["bytes"], 12, "{first:#}");
    assert_eq!(
        first["version_folder"],
        Value::Null,
        "nothing was moved aside"
    );

    std::thread::sleep(std::time::Duration::from_millis(1100));
    std::fs::write(root.join("a.txt"), b"AAAAAA").unwrap();
    std::fs::remove_file(root.join("sub/b.txt")).unwrap();
    std::fs::write(root.join("c.txt"), b"c").unwrap();
    let plan = json_run(&w, "mediabackup", &["mediabackup", "--dry-run", "--json"]);
    assert_eq!(
        plan["copied"]["paths"],
        serde_json::json!(["c.txt"]),
        "{plan:#}"
    );
    assert_eq!(
        plan["replaced"]["paths"],
        serde_json::json!(["a.txt"]),
        "{plan:#}"
    );
    assert_eq!(
        plan["deleted"]["paths"],
        serde_json::json!(["sub/b.txt"]),
        "{plan:#}"
    );
    assert_eq!(plan["deleted"]["bytes"], 8, "{plan:#}");
    let done = json_run(&w, "mediabackup", &["mediabackup", "--json"]);
    for (k, files, bytes) in [
        ("copied", 1, Some(1)),
        ("replaced", 1, Some(6)),
        ("deleted", 1, None),
    ] {
        assert_eq!(done[k]["files"], files, "{k}: {done:#}");
        assert_eq!(done[k]["bytes"].as_u64(), bytes, "{k}: {done:#}");
    }
    let folder = done["version_folder"].as_str().expect("a version folder");
    assert!(
        folder.ends_with(done["stamp"].as_str().unwrap()),
        "{folder}"
    );
    let kept = w.rclone(&["cat", &format!("{folder}/sub/b.txt")]);
    assert_eq!(
        kept, b"bbbbbbbb",
        "the deleted file is in the version folder named"
    );

    let media = w.ok(&["listbackups", "--media", "--json"]);
    document("listbackups-media", &media.stdout);
}

/// Names in JSON are rclone's names (docs/json.md), not the bytes on disk:
/// a line break in a file name is `␊`, a Latin-1 byte is `‛E9`, as
/// `rclone lsf` names them; the backup folder's names likewise.
#[test]
fn json_names_are_rclones_names() {
    use std::os::unix::ffi::OsStrExt;
    let mut w = World::new(Remote::Local);
    let root = w.path("media");
    std::fs::create_dir_all(&root).unwrap();
    w.setting(&format!("media_root = \"{}\"", root.display()));
    std::fs::write(root.join("new\nline.txt"), b"n").unwrap();
    std::fs::write(root.join(std::ffi::OsStr::from_bytes(b"caf\xe9.txt")), b"c").unwrap();
    let plan = json_run(&w, "mediabackup", &["mediabackup", "--dry-run", "--json"]);
    let mut paths: Vec<&str> = plan["copied"]["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    paths.sort();
    assert_eq!(paths, ["caf‛E9.txt", "new␊line.txt"], "{plan:#}");
    // The backup folder: a file rcbackup did not make, listed by its
    // rclone name.
    std::fs::create_dir_all(w.store.join("db")).unwrap();
    std::fs::write(w.store.join("db/odd\nname.bin"), b"x").unwrap();
    let r = w.ok(&["listbackups", "--json"]);
    let v = document("listbackups", &r.stdout);
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["odd␊name.bin"], "{v:#}");
    let lsf = w.rclone(&["lsf", &w.remote_path("db")]);
    assert_eq!(String::from_utf8(lsf).unwrap(), "odd␊name.bin\n");
    // And docs/json.md says so, with these very examples.
    let docs = docs_json();
    common::assert_mentions(&docs, &["rclone's names", "new␊line.txt", "‛E9"]);
    common::assert_lacks(&docs, &["given as stored"]);
}

/// policy test --json: the decision as a document, for each role tried;
/// a refused answer is still printed, then exit 1.
#[test]
fn policy_test_json_gives_the_decision() {
    let w = policy_support::world();
    let input = |body: &str| {
        let f = w.path("in.json");
        std::fs::write(&f, body).unwrap();
        f.display().to_string()
    };
    let keep_last = policy_support::rust_guest("keep_last")
        .display()
        .to_string();
    let body = r#"{"config":{"keep":1},"backups":[{"name":"old","created":"2024-01-01T00:00:00Z"},{"name":"new","created":"2024-01-02T00:00:00Z"}]}"#;
    let v = json_run(
        &w,
        "policy-test",
        &[
            "policy",
            "test",
            &keep_last,
            "--input",
            &input(body),
            "--json",
        ],
    );
    assert_eq!(v["role"], "retention");
    assert_eq!(v["accepted"], true);
    let actions: Vec<(&str, &str)> = v["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["name"].as_str().unwrap(), d["action"].as_str().unwrap()))
        .collect();
    assert_eq!(actions, [("new", "keep"), ("old", "delete")]);

    // A result that deletes the newest: printed, refused, exit 1.
    let hostile = policy_support::rust_guest("hostile").display().to_string();
    let body_bad = body.replace("\"keep\":1", "\"mode\":\"delete-newest\"");
    let r = w.run(&[
        "policy",
        "test",
        &hostile,
        "--role",
        "retention",
        "--input",
        &input(&body_bad),
        "--json",
    ]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let v = document("policy-test", &r.stdout);
    assert_eq!(v["accepted"], false, "{v:#}");
    assert!(
        v["refused_because"].as_str().unwrap().contains("newest"),
        "{v:#}"
    );
    assert!(r.stderr.contains("would refuse"), "{}", r.stderr);

    let approval = policy_support::rust_guest("protected_restore")
        .display()
        .to_string();
    let body = r#"{"config":{"protected":["default"]},"restore":{"backup":{"name":"a","created":"2024-01-01T00:00:00Z"}}}"#;
    let v = json_run(
        &w,
        "policy-test",
        &[
            "policy",
            "test",
            &approval,
            "--input",
            &input(body),
            "--json",
        ],
    );
    assert_eq!(v["role"], "restore-approval");
    assert_eq!(v["decision"], "deny", "{v:#}");
    assert!(v["reason"].as_str().unwrap().contains("protected"), "{v:#}");
}

/// The store's path of a backup's record (local remote).
fn record_file(w: &World, name: &str) -> std::path::PathBuf {
    w.store.join(format!("db/.rcbackup/records/{name}.json"))
}

/// Every name `v` (a prune document) lists, with where: `damaged of DB`,
/// `damaged` (top level), `leftover KIND`.
fn listed_in_prune(v: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for s in v["databases"].as_array().unwrap() {
        for d in s["damaged"].as_array().unwrap() {
            out.push((
                d["name"].as_str().unwrap().to_string(),
                format!("damaged of {}", s["database"].as_str().unwrap()),
            ));
        }
    }
    for d in v["damaged"].as_array().unwrap() {
        out.push((d["name"].as_str().unwrap().to_string(), "damaged".into()));
    }
    for l in v["leftovers"].as_array().unwrap() {
        for p in l["paths"].as_array().unwrap() {
            let p = p.as_str().unwrap();
            let name = p.rsplit('/').next().unwrap().trim_end_matches(".json");
            out.push((name.to_string(), format!("leftover {}", l["kind"])));
        }
    }
    out
}

/// A backup whose data object is gone is a `record-without-data` leftover,
/// one story: while young it is warned about (not "remove it by hand":
/// cleanup will) and listed nowhere in prune's document; once
/// abandoned_after_hours old, prune removes its record and lists it once,
/// as a leftover, not also as damaged.
#[test]
fn a_record_without_data_is_a_leftover_not_also_damaged() {
    let mut w = sqlite_world(Remote::Local);
    w.setting("db_cleanup_keep = 5");
    backups(&w, &["dbbackup"], 2);
    let lost = w.names(None)[1].clone();
    std::fs::remove_file(data_object(&w, &lost)).unwrap();

    let r = w.ok(&["prune", "--json"]);
    let v = document("prune", &r.stdout);
    assert_eq!(listed_in_prune(&v), [], "a young leftover: {v:#}");
    common::assert_mentions(
        &r.stderr,
        &[&lost, "data object is missing", "abandoned_after_hours"],
    );
    common::assert_lacks(&r.stderr, &["by hand"]);
    assert!(record_file(&w, &lost).exists(), "young: kept");

    common::age(&record_file(&w, &lost));
    for dry in [true, false] {
        let mut args = vec!["prune", "--json"];
        if dry {
            args.push("--dry-run");
        }
        let r = w.ok(&args);
        let v = document("prune", &r.stdout);
        assert_eq!(
            listed_in_prune(&v),
            [(lost.clone(), "leftover \"record-without-data\"".to_string())],
            "dry run {dry}: {v:#}"
        );
        common::assert_lacks(&r.stderr, &["by hand", "is damaged"]);
        assert_eq!(record_file(&w, &lost).exists(), dry);
    }
    assert!(
        w.list(None).iter().all(|e| e["status"] == "ok"),
        "{:#?}",
        w.list(None)
    );
}

/// Damaged backups are matched to a database by the alias in their record,
/// never by the name: of `app` and `app2`, a damaged backup of `app2` is
/// never `app`'s; one whose record cannot be read belongs to no database
/// and is listed once, at the top level, whichever databases are pruned.
#[test]
fn damaged_backups_are_matched_by_their_records_alias() {
    let mut w = World::new(Remote::Local);
    w.seeded_sqlite("app", 5);
    w.seeded_sqlite("app2", 5);
    w.setting("db_cleanup_keep = 5");
    backups(&w, &["dbbackup", "-d", "app"], 1);
    backups(&w, &["dbbackup", "-d", "app2"], 2);
    let app2 = w.names(Some("app2"));
    let (unreadable, short) = (app2[0].clone(), app2[1].clone());
    std::fs::write(record_file(&w, &unreadable), b"{ not a record").unwrap();
    let data = data_object(&w, &short);
    let len = std::fs::metadata(&data).unwrap().len();
    std::fs::File::options()
        .write(true)
        .open(&data)
        .unwrap()
        .set_len(len - 1)
        .unwrap();

    let v = json_run(&w, "prune", &["prune", "--json"]);
    let mut listed = listed_in_prune(&v);
    listed.sort();
    let mut want = vec![
        (unreadable.clone(), "damaged".to_string()),
        (short.clone(), "damaged of app2".to_string()),
    ];
    want.sort();
    assert_eq!(listed, want, "{v:#}");
    for one in ["app", "app2"] {
        let v = json_run(&w, "prune", &["prune", "-d", one, "--json"]);
        let mut listed = listed_in_prune(&v);
        listed.sort();
        let mut want = vec![(unreadable.clone(), "damaged".to_string())];
        if one == "app2" {
            want.push((short.clone(), "damaged of app2".to_string()));
        }
        want.sort();
        assert_eq!(listed, want, "-d {one}: {v:#}");
    }
    // The text warns once about each.
    let r = w.ok(&["prune"]);
    let warned = |name: &str| {
        r.stderr
            .lines()
            .filter(|l| l.contains(name) && l.contains("damaged"))
            .count()
    };
    assert_eq!(
        (warned(&unreadable), warned(&short)),
        (1, 1),
        "{}",
        r.stderr
    );
}

/// SIGTERM in the middle of prune: exit 130, nothing on stdout, every
/// backup either gone whole or intact (none damaged), the newest kept; a
/// second prune finishes what the first said.
#[test]
fn prune_interrupted_midway_leaves_every_backup_whole() {
    let mut w = sqlite_world(Remote::Local);
    w.setting("db_cleanup_keep = 1");
    backups(&w, &["dbbackup"], 4);
    let before = w.names(None);
    let dry = json_run(&w, "prune", &["prune", "--dry-run", "--json"]);
    let would = deleted_in(&dry);
    assert_eq!(would.len(), 3);

    let mut held = w.spawn_held(&["prune", "--json"], "deleting");
    held.wait_at("deleting");
    held.signal(libc::SIGTERM);
    let r = held.finish();
    assert_eq!(r.code, 130, "{}", r.stderr);
    assert!(r.stdout.is_empty(), "nothing on stdout: {}", r.stdout);
    common::assert_mentions(&r.stderr, &["interrupted", "prune"]);

    let list = w.list(None);
    assert!(
        list.iter().all(|e| e["status"] != "damaged"),
        "an interrupted prune damaged a backup: {list:#?}"
    );
    let left = w.names(None);
    assert_eq!(left[0], before[0], "the newest stands");
    assert!(
        left.len() >= 2,
        "the prune stopped before its last deletion: {left:?}"
    );
    let gone: BTreeSet<String> = before
        .iter()
        .filter(|n| !left.contains(n))
        .cloned()
        .collect();
    assert!(gone.is_subset(&would), "{gone:?} not in {would:?}");
    // The error names the backups it deleted, and only those.
    for n in &would {
        assert_eq!(
            r.stderr.contains(n.as_str()),
            gone.contains(n),
            "{n}: {}",
            r.stderr
        );
    }
    // Every backup still listed reads back intact.
    w.ok(&["verify", "--all"]);

    w.ok(&["prune"]);
    assert_eq!(w.names(None), before[..1]);
}

/// SIGTERM while the rclone deleting a backup's record runs (one process
/// per call; with the server the delete is one HTTP call the signal does not
/// cut): the deletion completes, so no backup is left half-deleted (data gone,
/// record kept), and the error is the interrupt, not "rclone was killed".
#[test]
fn prune_interrupted_while_rclone_deletes_leaves_no_half_deleted_backup() {
    if common::rclone_server_mode() {
        return;
    }
    let mut w = sqlite_world(Remote::Local);
    backups(&w, &["dbbackup"], 3);
    w.setting("db_cleanup_keep = 1");
    let before = w.names(None);
    let r = prune_terminated_while_deleting(&mut w, "records", 1);
    assert_eq!(r.code, 130, "{}", r.stderr);
    common::assert_lacks(&r.stderr, &["killed by signal"]);
    w.path_prefix.clear();
    let damaged: Vec<Value> = w
        .list(None)
        .into_iter()
        .filter(|b| b["status"] == "damaged")
        .collect();
    assert!(damaged.is_empty(), "half-deleted: {damaged:?}");
    // The error names exactly the backups deleted (the one whose deletion
    // the signal met included), as in server mode.
    let left = w.names(None);
    let gone: Vec<&String> = before.iter().filter(|n| !left.contains(n)).collect();
    assert!(!gone.is_empty(), "the deletion that had begun finished");
    for n in &before {
        assert_eq!(
            r.stderr.contains(n.as_str()),
            gone.contains(&n),
            "{n}: {}",
            r.stderr
        );
    }
    common::assert_mentions(&r.stderr, &["Run `rcbackup prune` again"]);
    w.ok(&["verify", "--all"]);
}

/// SIGTERM while the rclone removing a leftover runs (one process per call,
/// after retention deleted backups): the error is the interrupt naming
/// exactly the backups deleted, not the rclone the signal stopped.
#[test]
fn prune_interrupted_while_rclone_removes_a_leftover_names_what_went() {
    if common::rclone_server_mode() {
        return;
    }
    let mut w = sqlite_world(Remote::Local);
    backups(&w, &["dbbackup"], 3);
    w.setting("db_cleanup_keep = 1");
    let before = w.names(None);
    let partial = w
        .store
        .join("db/.rcbackup/partial/default-x.sqlite3.zst.1000000000-42");
    std::fs::create_dir_all(partial.parent().unwrap()).unwrap();
    std::fs::write(&partial, b"half an upload").unwrap();
    common::age(&partial);
    let r = prune_terminated_while_deleting(&mut w, "partial", 5);
    assert_eq!(r.code, 130, "{}", r.stderr);
    w.path_prefix.clear();
    let left = w.names(None);
    assert_eq!(left, before[..1], "retention had finished");
    for n in &before[1..] {
        common::assert_mentions(&r.stderr, &[n.as_str()]);
    }
    common::assert_mentions(
        &r.stderr,
        &[
            "interrupted before pruning finished",
            "2 backup(s) were deleted",
        ],
    );
    common::assert_lacks(&r.stderr, &["killed by signal", &before[0]]);
    w.ok(&["prune"]);
    assert!(!partial.exists(), "the next prune removes the leftover");
}

/// verify --all when the remote goes away after the listing: every backup
/// is tried, each is an `error` (not `damaged`), exit 1; the document still
/// says so. Interrupted, it stops with 130 and prints nothing.
#[test]
fn verify_all_read_failures_exit_1_and_an_interrupt_130() {
    let mut w = sqlite_world(Remote::Webdav);
    w.setting(r#"rclone_flags = ["--retries", "1", "--low-level-retries", "1"]"#);
    backups(&w, &["dbbackup"], 2);

    let mut held = w.spawn_held(&["verify", "--all", "--json"], "verify-next");
    held.wait_at("verify-next");
    held.signal(libc::SIGTERM);
    let r = held.finish();
    assert_eq!(r.code, 130, "{}", r.stderr);
    assert!(r.stdout.is_empty(), "{}", r.stdout);

    let mut held = w.spawn_held(&["verify", "--all", "--json"], "verify-next");
    held.wait_at("verify-next");
    w.webdav = None; // the remote goes away
    held.release("verify-next");
    let r = held.finish();
    assert_eq!(r.code, 1, "{}", r.stderr);
    let v = document("verify", &r.stdout);
    assert_eq!(
        (v["errors"].as_u64(), v["damaged"].as_u64()),
        (Some(2), Some(0)),
        "{v:#}"
    );
    common::assert_mentions(&r.stderr, &["2 of 2 backups could not be read"]);
}

/// A data object deleted between the listing and its read is damage
/// (exit 4, "gone when read"): the read's "not found" is confirmed by a
/// listing. (A remote that went away instead is a read failure, exit 1:
/// the test above.)
#[test]
fn an_object_gone_between_listing_and_read_is_damage() {
    let w = sqlite_world(Remote::Local);
    backups(&w, &["dbbackup"], 1);
    let name = w.names(None).remove(0);
    let mut held = w.spawn_held(&["verify", "-i", &name], "verify-next");
    held.wait_at("verify-next");
    std::fs::remove_file(w.store.join(format!("db/{name}"))).unwrap();
    held.release("verify-next");
    let r = held.finish();
    assert_eq!(r.code, 4, "{}", r.stderr);
    common::assert_mentions(&r.stderr, &["gone when read"]);
}

/// A backup whose run is still going (its claim is held) is spared by
/// prune as by `dbbackup --clean`, and said so; once its run ended, the
/// next prune applies the rule to it.
#[test]
fn prune_spares_a_backup_whose_run_is_still_going() {
    let mut w = sqlite_world(Remote::Local);
    w.setting("db_cleanup_keep = 1");
    backups(&w, &["dbbackup"], 1);
    let oldest = w.names(None)[0].clone();
    let mut held = w.spawn_held(&["dbbackup"], "recorded");
    held.wait_at("recorded");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    // Its lock keeps other runs out (tests/locks.rs); removed by mistake,
    // the run's claim still spares its backup.
    w.ok(&["unlock", "--force"]);
    w.ok(&["dbbackup"]);
    let names = w.names(None);
    assert_eq!(names.len(), 3, "{names:?}");
    let (newest, going) = (names[0].clone(), names[1].clone());

    let dry = json_run(&w, "prune", &["prune", "--dry-run", "--json"]);
    let decisions = dry["databases"][0]["decisions"].as_array().unwrap();
    let of = |n: &str| decisions.iter().find(|d| d["name"] == n).unwrap().clone();
    assert_eq!(of(&going)["action"], "keep", "{dry:#}");
    assert!(of(&going)["reason"]
        .as_str()
        .unwrap()
        .contains("its run is still going"));
    assert_eq!(of(&oldest)["action"], "delete");
    let done = json_run(&w, "prune", &["prune", "--json"]);
    assert_eq!(deleted_in(&done), BTreeSet::from([oldest]));
    assert_eq!(w.names(None), [newest.clone(), going.clone()]);

    held.release("recorded");
    assert_eq!(held.finish().code, 0);
    w.ok(&["prune"]);
    assert_eq!(w.names(None), [newest]);
}

/// Names of any script with inner spaces come through --json exactly as
/// stored (and as listbackups shows them); a database whose url_env is
/// unset does not stop a prune of every database.
#[test]
fn odd_names_and_an_unset_url_env() {
    let mut w = World::new(Remote::Crypt);
    let file = w.path("app.sqlite3");
    common::sqlite(&file, &common::seed_sql(5));
    w.sqlite("zurich", &file);
    w.databases
        .push_str("[databases.elsewhere]\nurl_env = \"RCBACKUP_TEST_UNSET_URL\"\n");
    w.setting("db_filename_template = \"Ωmega {database} {datetime}.{ext}\"");
    w.setting("db_cleanup_keep = 1");
    let made = json_run(&w, "dbbackup", &["dbbackup", "-d", "zurich", "--json"]);
    let name = made["backups"][0]["name"].as_str().unwrap().to_string();
    assert!(name.starts_with("Ωmega zurich "), "{name}");
    assert_eq!(w.names(None), std::slice::from_ref(&name));
    std::thread::sleep(std::time::Duration::from_millis(1100));
    w.ok(&["dbbackup", "-d", "zurich"]);

    let v = json_run(&w, "verify", &["verify", "--all", "--json"]);
    assert_eq!(v["ok"], 2, "{v:#}");
    let pruned = json_run(&w, "prune", &["prune", "--json"]);
    assert_eq!(deleted_in(&pruned), BTreeSet::from([name]));
    let dbs: Vec<&str> = pruned["databases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["database"].as_str().unwrap())
        .collect();
    assert_eq!(dbs, ["elsewhere", "zurich"]);
    // -q: the result on stdout, no summary on stderr.
    let r = w.ok(&["-q", "prune", "--dry-run"]);
    assert!(r.stderr.is_empty(), "{}", r.stderr);
    assert!(r.stdout.contains("keep"), "{}", r.stdout);
}

/// A template holding a character of rclone's name encoding (`‛`, `␊`)
/// is refused when the config loads: the backup's stored name would not be
/// its name (`‛` doubled; `␊` a real newline), and every such backup would
/// be listed as damaged, never restored nor retained, while dbbackup said
/// it was made.
#[test]
fn a_template_with_rclones_encoding_characters_is_refused() {
    for template in [
        "{database}\u{201B}{datetime}.{ext}",
        "{database}\u{240A}{datetime}.{ext}",
    ] {
        let mut w = sqlite_world(Remote::Local);
        w.setting(&format!("db_filename_template = \"{template}\""));
        let r = w.run(&["dbbackup"]);
        assert_eq!(r.code, 2, "{template}: {}", r.stderr);
        common::assert_mentions(&r.stderr, &["rclone"]);
        let stored = std::fs::read_dir(w.store.join("db")).map_or(0, |d| d.count());
        assert_eq!(stored, 0, "{template}: something was stored");
    }
}

/// `verify --all` with nothing to check (a wiped remote, a wrong
/// db_backup_dir) fails as `verify` does: exit 1, nothing on stdout, and
/// the metrics file records a failure, so nightly monitoring does not stay
/// green.
#[test]
fn verify_all_with_no_backup_fails() {
    let w = sqlite_world(Remote::Local);
    let metrics = w.path("m.prom");
    let m = metrics.display().to_string();
    for args in [
        vec!["verify", "--all"],
        vec!["verify", "--all", "--json", "-d", "default"],
        vec![
            "--metrics-file",
            m.as_str(),
            "verify",
            "--all",
            "-d",
            "default",
        ],
    ] {
        let r = w.run(&args);
        assert_eq!(r.code, 1, "{args:?}: {}", r.stderr);
        assert_eq!(r.stdout, "", "{args:?}");
        common::assert_mentions(&r.stderr, &["no backups", "nothing was verified"]);
    }
    let text = std::fs::read_to_string(&metrics).unwrap();
    assert!(
        text.contains(
            "rcbackup_last_run_success{command=\"verify\",database=\"default\",tenant=\"\"} 0"
        ),
        "{text}"
    );
}

/// An aged upload left in `.rcbackup/partial/` under the raw file name `name`.
fn aged_partial(w: &World, name: &[u8]) -> std::path::PathBuf {
    use std::os::unix::ffi::OsStrExt;
    let dir = w.store.join("db/.rcbackup/partial");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(std::ffi::OsStr::from_bytes(name));
    std::fs::write(&file, b"half an upload").unwrap();
    common::age(&file);
    file
}

/// Second outside review of issue 11, finding 1: leftovers whose names
/// rclone cannot give back byte-exact (a Latin-1 byte, which rclone's JSON
/// listing turns into U+FFFD; a lone `‛`, rclone's quote character) are
/// skipped with a warning, never reported removed and never failing the
/// run; an ordinary leftover beside them is removed.
#[test]
fn leftovers_rclone_cannot_name_are_skipped_not_claimed() {
    let w = sqlite_world(Remote::Local);
    backups(&w, &["dbbackup"], 1);
    let latin1 = aged_partial(&w, b"default-caf\xe9.sqlite3.zst.1000000000-1");
    let quote = aged_partial(&w, "default-q‛x.sqlite3.zst.1000000000-2".as_bytes());
    let plain = aged_partial(&w, b"default-plain.sqlite3.zst.1000000000-3");
    for dry in [true, false] {
        let mut args = vec!["prune", "--json"];
        if dry {
            args.push("--dry-run");
        }
        let r = w.ok(&args);
        let v = document("prune", &r.stdout);
        let listed: Vec<String> = listed_in_prune(&v).into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            listed,
            ["default-plain.sqlite3.zst.1000000000-3"],
            "dry run {dry}: {v:#}"
        );
        let warned = r
            .stderr
            .lines()
            .filter(|l| l.contains("cannot be removed through rclone") && l.contains("by hand"))
            .count();
        assert_eq!(warned, 2, "dry run {dry}: {}", r.stderr);
        common::assert_lacks(&r.stderr, &["removed /", "removed \""]);
        assert_eq!(plain.exists(), dry);
    }
    assert!(latin1.exists() && quote.exists());
    // The next run says the same, and does not call them removed.
    let r = w.ok(&["prune"]);
    common::assert_mentions(&r.stderr, &["cannot be removed through rclone"]);
    common::assert_lacks(
        &r.stderr,
        &["1 leftover(s) removed", "2 leftover(s) removed"],
    );
}

/// A deletion rclone reports as done while the object stays is not
/// claimed: the leftover is not listed as removed, and the warning says
/// it is still there. (One process per call: a wrapper makes `rclone
/// deletefile` of a partial upload exit 0 without deleting.)
#[test]
fn a_removal_rclone_reports_but_did_not_do_is_not_claimed() {
    if common::rclone_server_mode() {
        return;
    }
    let mut w = sqlite_world(Remote::Local);
    backups(&w, &["dbbackup"], 1);
    let stays = aged_partial(&w, b"default-stays.sqlite3.zst.1000000000-1");
    w.wrap_tool(
        "rclone",
        r#"if [ "$1" = deletefile ]; then case "$2" in *.rcbackup/partial/*) exit 0;; esac; fi; exec "$REAL" "$@""#,
    );
    let r = w.ok(&["prune", "--json"]);
    let v = document("prune", &r.stdout);
    assert_eq!(listed_in_prune(&v), [], "{v:#}");
    common::assert_mentions(&r.stderr, &["default-stays", "still there"]);
    common::assert_lacks(&r.stderr, &["1 leftover(s) removed"]);
    assert!(stays.exists());
}

/// Finding 2: `dbbackup --clean` interrupted while its cleanup deletes
/// names the backup it published and exactly the backups the cleanup
/// deleted, as prune's interrupt message does.
#[test]
fn dbbackup_clean_interrupted_names_what_cleanup_deleted() {
    let mut w = sqlite_world(Remote::Local);
    backups(&w, &["dbbackup"], 3);
    w.setting("db_cleanup_keep = 1");
    let before = w.names(None);
    let mut held = w.spawn_held(&["dbbackup", "--clean"], "deleting");
    held.wait_at("deleting");
    held.signal(libc::SIGTERM);
    let r = held.finish();
    assert_eq!(r.code, 130, "{}", r.stderr);
    let left = w.names(None);
    let gone: Vec<&String> = before.iter().filter(|n| !left.contains(n)).collect();
    assert_eq!(gone.len(), 1, "the deletion under way finished: {left:?}");
    for n in &before {
        assert_eq!(
            r.stderr.contains(n.as_str()),
            gone.contains(&n),
            "{n}: {}",
            r.stderr
        );
    }
    common::assert_mentions(
        &r.stderr,
        &[left[0].as_str(), "is complete", "1 backup(s) were deleted"],
    );
}

/// Finding 3: an interrupt while rclone writes the claim (one process per
/// call; the signal stops that rclone) is the interrupt: nothing was
/// published, and no advice about the remote.
#[test]
fn an_interrupt_that_stops_rclone_is_not_blamed_on_the_remote() {
    if common::rclone_server_mode() {
        return;
    }
    let mut w = sqlite_world(Remote::Local);
    let mark = w.path("claiming");
    w.wrap_tool(
        "rclone",
        &format!(
            r#"if [ "$1" = rcat ]; then case "$2" in *.rcbackup/claims/*) touch '{}'; sleep 10;; esac; fi; exec "$REAL" "$@""#,
            mark.display()
        ),
    );
    let child = w.spawn(&["dbbackup"]);
    common::wait_until(30, "the claim's write to start", || mark.exists());
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let r = common::Run::from(child.wait_with_output().unwrap());
    assert_eq!(r.code, 130, "{}", r.stderr);
    common::assert_mentions(&r.stderr, &["interrupted", "nothing was published"]);
    common::assert_lacks(&r.stderr, &["Check that the remote", "killed by signal"]);
    w.path_prefix.clear();
    assert!(w.names(None).is_empty());
}

/// Finding 4: `prune -d app2` (and `dbbackup -d app2 --clean`) removes only
/// app2's leftovers: a record of app2 without data, an upload of an app2
/// backup. Another database's, one of a database not in the config, and
/// one that names no database are left alone, and said so.
#[test]
fn one_databases_cleanup_touches_only_its_leftovers() {
    let mut w = World::new(Remote::Local);
    w.seeded_sqlite("app", 5);
    w.seeded_sqlite("app2", 5);
    w.setting("db_cleanup_keep = 5");
    backups(&w, &["dbbackup", "-d", "app"], 1);
    backups(&w, &["dbbackup", "-d", "app2"], 2);
    let app_record = record_file(&w, &w.names(Some("app"))[0]);
    let app2_name = w.names(Some("app2"))[1].clone();
    let app2_record = record_file(&w, &app2_name);
    // A record of a database not in the config, without data.
    let gone_record = record_file(&w, "gone-2026-01-01-000000.sqlite3.zst");
    let text = std::fs::read_to_string(&app2_record)
        .unwrap()
        .replace(&app2_name, "gone-2026-01-01-000000.sqlite3.zst")
        .replace("\"app2\"", "\"gone\"");
    std::fs::write(&gone_record, text).unwrap();
    std::fs::remove_file(data_object(&w, &w.names(Some("app"))[0])).unwrap();
    std::fs::remove_file(data_object(&w, &app2_name)).unwrap();
    for f in [&app_record, &app2_record, &gone_record] {
        common::age(f);
    }
    let app_partial = aged_partial(&w, b"app-2026-01-01-000000.sqlite3.zst.1000000000-1");
    let app2_partial = aged_partial(&w, b"app2-2026-01-01-000000.sqlite3.zst.1000000000-2");
    let nobodys = aged_partial(&w, b"whose.sqlite3.zst.1000000000-3");

    for args in [
        &["prune", "-d", "app2", "--dry-run", "--json"][..],
        &["dbbackup", "-d", "app2", "--clean", "--dry-run", "--json"][..],
    ] {
        let r = w.ok(args);
        let v = document(args[0], &r.stdout);
        let leftovers = if args[0] == "prune" {
            &v["leftovers"]
        } else {
            &v["cleanup"]["leftovers"]
        };
        let mut paths: Vec<&str> = leftovers
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|l| l["paths"].as_array().unwrap())
            .map(|p| p.as_str().unwrap().rsplit('/').next().unwrap())
            .collect();
        paths.sort();
        let mut want = vec![
            "app2-2026-01-01-000000.sqlite3.zst.1000000000-2".to_string(),
            format!("{app2_name}.json"),
        ];
        want.sort();
        assert_eq!(paths, want, "{args:?}: {v:#}");
        common::assert_mentions(&r.stderr, &["4 leftover(s)", "left alone", "without -d"]);
    }
    w.ok(&["prune", "-d", "app2"]);
    assert!(!app2_partial.exists() && !app2_record.exists());
    assert!(app_partial.exists() && app_record.exists());
    assert!(gone_record.exists() && nobodys.exists());
    w.ok(&["prune"]);
    assert!(!app_partial.exists() && !app_record.exists());
    assert!(!gone_record.exists() && !nobodys.exists());
}

/// Finding 5: a damaged backup whose record names another backup is not
/// said to have a record that cannot be read.
#[test]
fn a_record_naming_another_backup_is_not_called_unreadable() {
    let w = sqlite_world(Remote::Local);
    backups(&w, &["dbbackup"], 2);
    let names = w.names(None);
    let text = std::fs::read_to_string(record_file(&w, &names[0]))
        .unwrap()
        .replace(&names[0], &names[1]);
    std::fs::write(record_file(&w, &names[0]), text).unwrap();
    let r = w.ok(&["prune"]);
    let line = r
        .stderr
        .lines()
        .find(|l| l.contains(names[0].as_str()) && l.contains("damaged"))
        .unwrap_or_else(|| panic!("{}", r.stderr));
    common::assert_mentions(
        line,
        &["names another backup", "no readable record of its own"],
    );
    common::assert_lacks(line, &["cannot be read"]);
}
