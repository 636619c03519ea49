//! Every policy role end to end through the CLI, with the ready-made Rust
//! policies, the Rust hook example and the Python example, against SQLite
//! and a local-folder rclone remote.

mod common;
mod policy_support;

use std::path::Path;

use common::{sqlite, World};
use policy_support::{python_guest, rust_guest, world};

fn add(w: &mut World, toml: &str) {
    w.databases.push_str(toml);
    w.databases.push('\n');
}

fn module(p: &Path) -> String {
    p.display().to_string()
}

/// Backs up `n` times; names differ because each run's name has the time.
fn backups(w: &World, n: usize) {
    for _ in 0..n {
        w.ok(&["dbbackup"]);
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
}

#[test]
fn wasm_keep_last_cleans_like_the_builtin() {
    let mut w = world();
    add(
        &mut w,
        &format!(
            "[policies.retention]\nmodule = \"{}\"\nconfig = {{ keep = 2 }}\n",
            module(&rust_guest("keep_last"))
        ),
    );
    backups(&w, 3);
    let before = w.names(None);
    assert_eq!(before.len(), 3);
    let dry = w.ok(&["dbbackup", "--clean", "--dry-run"]);
    assert!(
        dry.stdout.contains("would delete") && dry.stdout.contains("older than the newest 2"),
        "{}",
        dry.stdout
    );
    assert_eq!(w.names(None), before, "--dry-run deleted something");
    w.ok(&["dbbackup", "--clean"]);
    let after = w.names(None);
    assert_eq!(after.len(), 2, "{after:?}");
    assert_eq!(after[1], before[0], "the newest earlier backup survives");
}

#[test]
fn gfs_and_keep_within_decide_by_creation_time() {
    let input = |w: &World, body: &str| {
        let f = w.path("in.json");
        std::fs::write(&f, body).unwrap();
        f.display().to_string()
    };
    let w = world();
    let days: Vec<String> = (1..=9)
        .map(|d| format!("{{\"name\":\"d{d}\",\"created\":\"2024-03-0{d}T12:00:00Z\"}}"))
        .collect();
    let body = format!(
        "{{\"now\":\"2024-03-09T13:00:00Z\",\"config\":{{\"daily\":3,\"weekly\":2}},\"backups\":[{}]}}",
        days.join(",")
    );
    let r = w.ok(&[
        "policy",
        "test",
        &module(&rust_guest("gfs")),
        "--input",
        &input(&w, &body),
    ]);
    let kept: Vec<&str> = r
        .stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("keep"))
        .map(|l| l.split_whitespace().nth(1).unwrap())
        .collect();
    // Daily: 9, 8, 7. Weekly (weeks start Monday; 2024-03-04 was one): the
    // week of the 4th-9th has d9, the week before has d3.
    assert_eq!(kept, ["d9", "d8", "d7", "d3"], "{}", r.stdout);

    let body = body.replace("{\"daily\":3,\"weekly\":2}", "{\"within\":\"2d\"}");
    let r = w.ok(&[
        "policy",
        "test",
        &module(&rust_guest("keep_within")),
        "--input",
        &input(&w, &body),
    ]);
    let deleted = r.stdout.lines().filter(|l| l.contains("delete")).count();
    // now - 2d is 03-07 13:00: d8 and d9 stay, d1..d7 go.
    assert_eq!(deleted, 7, "{}", r.stdout);
}

#[test]
fn tenant_naming_names_the_backup() {
    let mut w = world();
    add(
        &mut w,
        &format!(
            "[policies.naming]\nmodule = \"{}\"\nconfig = {{ template = \"{{tenant}}-{{database}}-{{datetime}}.{{ext}}\", no_tenant = \"acme\" }}\n",
            module(&rust_guest("tenant_naming"))
        ),
    );
    w.ok(&["dbbackup"]);
    let names = w.names(None);
    assert_eq!(names.len(), 1);
    // acme-default-YYYYmmddTHHMMSSZ.sqlite3, the time of the backup's record.
    let created = w.list(None)[0]["created"].as_str().unwrap().to_string();
    let at = chrono::DateTime::parse_from_rfc3339(&created).unwrap();
    assert_eq!(
        names[0],
        format!("acme-default-{}.sqlite3", at.format("%Y%m%dT%H%M%SZ")),
        "created {created}"
    );
}

#[test]
fn restore_approval_denies_protected_databases_outside_the_window() {
    let mut w = world();
    w.ok(&["dbbackup"]);
    add(
        &mut w,
        &format!(
            "[policies.restore_approval]\nmodule = \"{}\"\nconfig = {{ protected = [\"default\"], window = {{ start = \"00:00\", end = \"00:00\" }} }}\n",
            module(&rust_guest("protected_restore"))
        ),
    );
    // start == end: an empty window, never open.
    let r = w.run(&["dbrestore", "--noinput"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("protected") && r.stderr.contains("protected_restore.wasm"),
        "{}",
        r.stderr
    );
}

#[test]
fn restore_approval_allows_inside_the_window() {
    let mut w = world();
    let file = w.path("app.sqlite3");
    w.ok(&["dbbackup"]);
    sqlite(&file, "INSERT INTO t VALUES (2);");
    // A two-hour window around now (UTC), across midnight when now is near
    // it: open whatever the time of day the test runs.
    let now = chrono_minute();
    let hhmm = |m: u64| format!("{:02}:{:02}", m / 60, m % 60);
    let (start, end) = (hhmm((now + 1440 - 60) % 1440), hhmm((now + 60) % 1440));
    add(
        &mut w,
        &format!(
            "[policies.restore_approval]\nmodule = \"{}\"\nconfig = {{ protected = [\"default\"], window = {{ start = \"{start}\", end = \"{end}\" }} }}\n",
            module(&rust_guest("protected_restore"))
        ),
    );
    // No --noinput and no terminal: only an `allow` lets this through.
    let r = w.ok(&["dbrestore"]);
    assert_eq!(sqlite(&file, "SELECT count(*) FROM t;").trim(), "1");
    assert!(!r.stderr.contains("denied"), "{}", r.stderr);
}

#[test]
fn media_restore_approval_goes_through_the_policy() {
    let mut w = world();
    let root = w.path("media");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("a.txt"), "a").unwrap();
    w.setting(&format!("media_root = \"{}\"", root.display()));
    w.ok(&["mediabackup"]);
    add(
        &mut w,
        &format!(
            "[policies.restore_approval]\nmodule = \"{}\"\nconfig = {{ protect_media = true }}\n",
            module(&rust_guest("protected_restore"))
        ),
    );
    let r = w.run(&["mediarestore", "--noinput"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("the media folder is protected"),
        "{}",
        r.stderr
    );
}

fn chrono_minute() -> u64 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    secs % 86_400 / 60
}

#[test]
fn hooks_log_events_and_veto() {
    let mut w = world();
    add(
        &mut w,
        &format!(
            "[[hooks]]\nmodule = \"{}\"\n\n[[hooks]]\nmodule = \"{}\"\nevents = [\"pre-db-backup\", \"pre-db-restore\"]\nconfig = {{ frozen = [\"default\"], reason = \"frozen for the migration\" }}\n",
            module(&rust_guest("event_log")),
            module(&rust_guest("freeze_hook"))
        ),
    );
    let r = w.run(&["dbbackup"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("frozen for the migration"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("\"event\":\"pre-db-backup\""),
        "{}",
        r.stderr
    );
    assert!(w.names(None).is_empty(), "a vetoed backup was made");

    // Without the freeze, every event is one JSON line.
    let mut w2 = world();
    add(
        &mut w2,
        &format!(
            "[[hooks]]\nmodule = \"{}\"\n",
            module(&rust_guest("event_log"))
        ),
    );
    let r = w2.ok(&["dbbackup"]);
    let lines: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.contains("[event_log.wasm]"))
        .collect();
    assert_eq!(lines.len(), 2, "{}", r.stderr);
    assert!(
        lines[1].contains("\"event\":\"post-db-backup\"") && lines[1].contains("\"sha256\":\"")
    );
}

#[test]
fn post_hook_failure_fails_or_warns() {
    for (on_error, code) in [("fail", 1), ("warn", 0)] {
        let mut w = world();
        add(
            &mut w,
            &format!(
                "[[hooks]]\nmodule = \"{}\"\nevents = [\"post-db-backup\"]\non_error = \"{on_error}\"\nconfig = {{ veto = [\"post-db-backup\"] }}\n",
                module(&rust_guest("event_log"))
            ),
        );
        let r = w.run(&["dbbackup"]);
        assert_eq!(r.code, code, "on_error = {on_error}: {}", r.stderr);
        assert!(r.stderr.contains("event_log.wasm"), "{}", r.stderr);
    }
}

#[test]
fn python_retention_policy_runs_through_the_cli() {
    let mut w = world();
    add(
        &mut w,
        &format!(
            "[policies.retention]\nmodule = \"{}\"\nconfig = {{ keep = 1 }}\nlimits = {{ deadline_ms = 20000 }}\n",
            module(&python_guest())
        ),
    );
    backups(&w, 2);
    let before = w.list(None);
    assert_eq!(before.len(), 2);
    let r = w.ok(&["dbbackup", "--clean", "-v"]);
    assert!(
        r.stderr.contains("python retention: 3 backups"),
        "{}",
        r.stderr
    );
    // keep = 1: the new backup stays, and of the two older ones only those
    // made on the first day of a month (UTC), the policy's monthly archive.
    // Which ones those are is read from their records: exact on any date.
    let monthly: Vec<&str> = before
        .iter()
        .filter(|b| &b["created"].as_str().unwrap()[8..10] == "01")
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    let names = w.names(None);
    assert_eq!(names.len(), 1 + monthly.len(), "{names:?}");
    assert!(
        before.iter().all(|b| b["name"] != names[0].as_str()),
        "the newest is the new one: {names:?}"
    );
    assert_eq!(names[1..], monthly[..], "{names:?}");
}

#[test]
fn policy_test_and_compile_commands() {
    let w = world();
    let keep_last = module(&rust_guest("keep_last"));
    let r = w.ok(&["policy", "compile", &keep_last]);
    assert!(r.stdout.contains("roles: retention"), "{}", r.stdout);
    assert!(std::fs::read_dir(w.path("cache")).unwrap().count() >= 1);
    let f = w.path("in.json");
    std::fs::write(
        &f,
        r#"{"config":{"keep":1},"backups":[{"name":"old","created":"2024-01-01T00:00:00Z"},{"name":"new","created":"2024-01-02T00:00:00Z"}]}"#,
    )
    .unwrap();
    let r = w.ok(&[
        "policy",
        "test",
        &keep_last,
        "--role",
        "retention",
        "--input",
        &f.display().to_string(),
    ]);
    assert!(
        r.stdout
            .contains("delete  old  (older than the newest 1 (#2))"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("keep  new"), "{}", r.stdout);
}
