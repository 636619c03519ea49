//! Operator experience, part A: the live progress line on a terminal and
//! the progress log line without one, `--log-format json`, and the
//! Prometheus metrics file (`--metrics-file`).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;

/// A SQLite world whose dump tool writes the dump, then waits `secs`
/// before it exits: a dump that is still running while progress is drawn
/// or logged. Restores (also sqlite3) are not slowed.
fn slow_dump_world(secs: f64) -> World {
    let mut world = World::new(Remote::Local);
    world.seeded_sqlite("default", 500);
    world.wrap_tool(
        "sqlite3",
        &format!(
            r#"case "$*" in *.dump*) "$REAL" "$@"; rc=$?; sleep {secs}; exit $rc;; *) exec "$REAL" "$@";; esac"#
        ),
    );
    world
}

// ---------------------------------------------------------------- progress

/// Text of a live progress line (its figures), whichever command drew it.
const LIVE: &[&str] = &["dumped", "stored", "/s"];

#[test]
fn progress_is_absent_when_stderr_is_piped() {
    let world = slow_dump_world(1.5);
    let r = world.ok(&["dbbackup"]);
    assert_lacks(&r.stderr, &["dumped", "\r", "\x1b["]);
    // The result and the log line are still there, as before.
    assert_mentions(&r.stderr, &["backed up `default`"]);
}

#[test]
fn progress_is_drawn_on_a_terminal() {
    let world = slow_dump_world(1.5);
    let out = world
        .on_terminal_command("dbbackup")
        .output()
        .expect("script runs");
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{shown}");
    assert_mentions(&shown, LIVE);
    assert_mentions(&shown, &["KiB", "elapsed"]);
    // The line was cleared before the run's last log line: that line is
    // whole, not drawn into the bar.
    let last = shown
        .rsplit('\r')
        .find(|s| s.contains("backed up"))
        .unwrap_or_else(|| panic!("no result line in {shown:?}"));
    assert!(!last.contains("dumped"), "{last:?}");

    // verify knows the total: a bar with a percentage and the total.
    let out = world
        .on_terminal_command("verify")
        .output()
        .expect("script runs");
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{shown}");
    assert_mentions(&shown, &["verifying", "%", " of "]);
    assert_mentions(&shown, &[": OK ("]);
}

#[test]
fn quiet_draws_no_progress_on_a_terminal() {
    let world = slow_dump_world(1.5);
    let out = world
        .on_terminal_command("-q dbbackup")
        .output()
        .expect("script runs");
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{shown}");
    assert_lacks(&shown, &["dumped", "elapsed"]);
}

#[test]
fn without_a_terminal_progress_is_a_log_line_every_interval() {
    let mut world = slow_dump_world(3.0);
    world.set_env("RCBACKUP_PROGRESS_INTERVAL", "1".into());
    let r = world.ok(&["dbbackup"]);
    let lines: Vec<&str> = r.stderr.lines().filter(|l| l.contains("dumped")).collect();
    assert!(
        lines.len() >= 2,
        "expected a progress line every second of a 3 s dump:\n{}",
        r.stderr
    );
    for l in &lines {
        assert!(l.contains("INFO"), "{l}");
        assert_mentions(l, &["stored", "/s", "elapsed"]);
    }
    // Nothing drawn.
    assert_lacks(&r.stderr, &["\r", "\x1b["]);
    // -q: none.
    let r = world.ok(&["-q", "dbbackup"]);
    assert_lacks(&r.stderr, &["dumped"]);
}

#[test]
fn a_bad_progress_interval_is_a_warning() {
    let mut world = World::new(Remote::Local);
    world.seeded_sqlite("default", 10);
    world.set_env("RCBACKUP_PROGRESS_INTERVAL", "soon".into());
    let r = world.ok(&["dbbackup"]);
    assert_mentions(&r.stderr, &["RCBACKUP_PROGRESS_INTERVAL", "60"]);
}

// ---------------------------------------------------------------- JSON logs

/// Every line of `stderr` is a JSON object with an RFC 3339 UTC timestamp,
/// a level and a message; returns them.
fn json_lines(stderr: &str) -> Vec<serde_json::Value> {
    assert!(!stderr.trim().is_empty(), "no log at all");
    stderr
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {l:?}\nin:\n{stderr}"));
            let ts = v["timestamp"]
                .as_str()
                .unwrap_or_else(|| panic!("no timestamp: {l}"));
            let t = chrono::DateTime::parse_from_rfc3339(ts)
                .unwrap_or_else(|e| panic!("timestamp {ts:?} is not RFC 3339: {e}"));
            assert_eq!(t.offset().local_minus_utc(), 0, "{ts} is not UTC");
            assert!(ts.ends_with('Z'), "{ts}");
            assert!(
                ["ERROR", "WARN", "INFO", "DEBUG", "TRACE"]
                    .contains(&v["level"].as_str().unwrap_or("")),
                "{l}"
            );
            assert!(v["message"].is_string(), "no message: {l}");
            v
        })
        .collect()
}

#[test]
fn json_logs_parse_line_by_line() {
    let mut world = slow_dump_world(1.2);
    world.set_env("RCBACKUP_PROGRESS_INTERVAL", "0.5".into());
    let r = world.ok(&["--log-format", "json", "-v", "dbbackup"]);
    let lines = json_lines(&r.stderr);
    assert!(
        lines
            .iter()
            .any(|v| v["level"] == "INFO" && v["message"].as_str().unwrap().contains("backed up")),
        "{}",
        r.stderr
    );
    assert!(lines.iter().any(|v| v["level"] == "DEBUG"), "{}", r.stderr);
    // Progress is an ordinary event, with its figures as fields.
    let progress: Vec<_> = lines
        .iter()
        .filter(|v| v["dumped_bytes"].is_u64())
        .collect();
    assert!(!progress.is_empty(), "no progress event:\n{}", r.stderr);
    assert!(progress.iter().all(|v| v["elapsed_ms"].is_u64()));

    // A failing run: its closing error is a JSON line too, with its code.
    let r = world.run(&[
        "--log-format",
        "json",
        "-v",
        "dbrestore",
        "--noinput",
        "-i",
        "nope",
    ]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let lines = json_lines(&r.stderr);
    let last = lines.last().unwrap();
    assert_eq!(last["level"], "ERROR", "{last}");
    assert_eq!(last["exit_code"], 1, "{last}");
    assert!(last["message"].as_str().unwrap().contains("nope"), "{last}");

    // A usage error that the config finds (exit 2), and an integrity
    // failure (exit 4), without -v.
    std::fs::write(world.path("bad.toml"), "remote = 1\n").unwrap();
    let r = world
        .command(&[])
        .args(["--log-format", "json", "listbackups"])
        .env("RCBACKUP_CONFIG", world.path("bad.toml"))
        .output()
        .unwrap();
    let r = Run::from(r);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let lines = json_lines(&r.stderr);
    assert_eq!(lines.last().unwrap()["exit_code"], 2);
}

#[test]
fn json_logs_on_a_terminal_draw_no_bar() {
    let world = slow_dump_world(1.2);
    let out = world
        .on_terminal_command("--log-format json dbbackup")
        .output()
        .expect("script runs");
    let shown = String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n");
    assert!(out.status.success(), "{shown}");
    json_lines(&shown);
}

#[test]
fn log_format_is_checked() {
    let world = World::new(Remote::Local);
    let r = world.run(&["--log-format", "xml", "listbackups"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_mentions(&r.stderr, &["text", "json"]);
}

// ---------------------------------------------------------------- metrics

/// One sample of a Prometheus text-format file.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A strict parser of the Prometheus text format (version 0.0.4) for what
/// rcbackup writes: HELP and TYPE before a family's samples, valid names,
/// quoted and escaped label values, float values, a final newline.
fn parse_prometheus(text: &str) -> Vec<Sample> {
    assert!(text.ends_with('\n'), "no final newline: {text:?}");
    let valid_name = |n: &str| {
        !n.is_empty()
            && n.chars().enumerate().all(|(i, c)| {
                c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
            })
    };
    let mut typed: BTreeMap<String, String> = BTreeMap::new();
    let mut helped = std::collections::BTreeSet::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("HELP name text");
            assert!(valid_name(name) && !help.is_empty(), "{line}");
            assert!(helped.insert(name.to_string()), "second HELP: {line}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, ty) = rest.split_once(' ').expect("TYPE name type");
            assert!(valid_name(name), "{line}");
            assert!(
                ["counter", "gauge", "untyped", "summary", "histogram"].contains(&ty),
                "{line}"
            );
            assert!(
                typed.insert(name.to_string(), ty.to_string()).is_none(),
                "second TYPE: {line}"
            );
            continue;
        }
        assert!(
            !line.starts_with('#'),
            "a comment rcbackup does not write: {line}"
        );
        let (name, rest) = match line.find('{') {
            Some(i) => (&line[..i], &line[i..]),
            None => line
                .split_once(' ')
                .map(|(n, _)| (n, &line[n.len()..]))
                .unwrap(),
        };
        assert!(valid_name(name), "{line}");
        assert!(typed.contains_key(name), "sample before its TYPE: {line}");
        let mut labels = BTreeMap::new();
        let mut rest = rest;
        if let Some(body) = rest.strip_prefix('{') {
            let mut chars = body.char_indices().peekable();
            let end = loop {
                let (i, c) = chars.next().expect("unterminated labels");
                if c == '}' {
                    break i;
                }
                if c == ',' {
                    continue;
                }
                let start = i;
                let mut eq = i;
                for (j, c) in chars.by_ref() {
                    if c == '=' {
                        eq = j;
                        break;
                    }
                }
                let key = &body[start..eq];
                assert!(valid_name(key), "label name {key:?} in {line}");
                assert_eq!(chars.next().map(|(_, c)| c), Some('"'), "{line}");
                let mut value = String::new();
                loop {
                    let (_, c) = chars.next().expect("unterminated value");
                    match c {
                        '"' => break,
                        '\\' => match chars.next().expect("escape").1 {
                            'n' => value.push('\n'),
                            '\\' => value.push('\\'),
                            '"' => value.push('"'),
                            other => panic!("bad escape \\{other} in {line}"),
                        },
                        '\n' => panic!("raw newline in {line}"),
                        c => value.push(c),
                    }
                }
                assert!(labels.insert(key.to_string(), value).is_none(), "{line}");
            };
            rest = &body[end + 1..];
        }
        let value = rest.strip_prefix(' ').unwrap_or_else(|| panic!("{line}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            v => v
                .parse()
                .unwrap_or_else(|e| panic!("value {v:?} in {line}: {e}")),
        };
        samples.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    for name in typed.keys() {
        assert!(helped.contains(name), "no HELP for {name}");
    }
    samples
}

fn metrics(file: &Path) -> Vec<Sample> {
    let text = std::fs::read_to_string(file)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
    parse_prometheus(&text)
}

/// The value of `name` for one command and database, if present.
fn value(samples: &[Sample], name: &str, command: &str, database: &str) -> Option<f64> {
    let found: Vec<_> = samples
        .iter()
        .filter(|s| {
            s.name == name
                && s.labels.get("command").map(String::as_str) == Some(command)
                && s.labels.get("database").map(String::as_str) == Some(database)
        })
        .collect();
    assert!(found.len() <= 1, "{name} twice for {command}/{database}");
    found.first().map(|s| {
        assert_eq!(
            s.labels.get("tenant").map(String::as_str),
            Some(""),
            "{s:?}"
        );
        s.value
    })
}

fn two_sqlite_world() -> (World, PathBuf) {
    let mut world = World::new(Remote::Local);
    world.seeded_sqlite("alpha", 100);
    world.seeded_sqlite("beta", 50);
    let metrics = world.path("textfile/rcbackup.prom");
    std::fs::create_dir_all(metrics.parent().unwrap()).unwrap();
    (world, metrics)
}

fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[test]
fn metrics_file_holds_each_run() {
    let (mut world, file) = two_sqlite_world();
    let m = file.to_str().unwrap();
    let before = now_secs();
    world.ok(&["--metrics-file", m, "dbbackup", "-d", "alpha"]);
    let after = now_secs();
    let s = metrics(&file);
    let size = world.list(Some("alpha"))[0]["size"].as_u64().unwrap();
    assert_eq!(
        value(&s, "rcbackup_last_backup_size_bytes", "dbbackup", "alpha"),
        Some(size as f64)
    );
    assert_eq!(
        value(&s, "rcbackup_last_run_success", "dbbackup", "alpha"),
        Some(1.0)
    );
    assert_eq!(
        value(&s, "rcbackup_failures_total", "dbbackup", "alpha"),
        Some(0.0)
    );
    assert_eq!(
        value(&s, "rcbackup_last_run_exit_code", "dbbackup", "alpha"),
        Some(0.0)
    );
    let success = value(
        &s,
        "rcbackup_last_success_timestamp_seconds",
        "dbbackup",
        "alpha",
    )
    .unwrap();
    assert!(
        success >= before.floor() && success <= after.ceil(),
        "{success} not in {before}..{after}"
    );
    let ran = value(
        &s,
        "rcbackup_last_run_timestamp_seconds",
        "dbbackup",
        "alpha",
    )
    .unwrap();
    assert_eq!(ran, success);
    let took = value(
        &s,
        "rcbackup_last_run_duration_seconds",
        "dbbackup",
        "alpha",
    )
    .unwrap();
    assert!(took > 0.0 && took <= after - before + 1.0, "{took}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o644
    );

    // Another database's run keeps alpha's lines.
    world.ok(&["--metrics-file", m, "dbbackup", "-d", "beta"]);
    let s = metrics(&file);
    assert_eq!(
        value(&s, "rcbackup_last_run_success", "dbbackup", "alpha"),
        Some(1.0)
    );
    assert_eq!(
        value(&s, "rcbackup_last_run_success", "dbbackup", "beta"),
        Some(1.0)
    );

    // A verify of alpha: its own series, with the size it read.
    world.ok(&["--metrics-file", m, "verify", "-d", "alpha"]);
    let s = metrics(&file);
    assert_eq!(
        value(&s, "rcbackup_last_backup_size_bytes", "verify", "alpha"),
        Some(size as f64)
    );

    // A failing backup of alpha: success flips to 0, failures count, the
    // last success stays, beta is untouched.
    world.wrap_tool("sqlite3", r#"echo "simulated failure" >&2; exit 1"#);
    let r = world.run(&["--metrics-file", m, "dbbackup", "-d", "alpha"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let s = metrics(&file);
    assert_eq!(
        value(&s, "rcbackup_last_run_success", "dbbackup", "alpha"),
        Some(0.0)
    );
    assert_eq!(
        value(&s, "rcbackup_failures_total", "dbbackup", "alpha"),
        Some(1.0)
    );
    assert_eq!(
        value(&s, "rcbackup_last_run_exit_code", "dbbackup", "alpha"),
        Some(1.0)
    );
    assert_eq!(
        value(
            &s,
            "rcbackup_last_success_timestamp_seconds",
            "dbbackup",
            "alpha"
        ),
        Some(success)
    );
    assert!(
        value(
            &s,
            "rcbackup_last_run_timestamp_seconds",
            "dbbackup",
            "alpha"
        )
        .unwrap()
            >= ran
    );
    assert_eq!(
        value(&s, "rcbackup_last_run_success", "dbbackup", "beta"),
        Some(1.0)
    );
    let r = world.run(&["--metrics-file", m, "dbbackup", "-d", "alpha"]);
    assert_eq!(r.code, 1);
    let s = metrics(&file);
    assert_eq!(
        value(&s, "rcbackup_failures_total", "dbbackup", "alpha"),
        Some(2.0)
    );
    // The failing run's metrics did not change its exit code, nor did the
    // metrics file print anything on stdout.
    assert_eq!(r.stdout, "");
}

#[test]
fn metrics_of_a_damaged_backup_and_of_a_restore() {
    let (world, file) = two_sqlite_world();
    let m = file.to_str().unwrap();
    world.ok(&["dbbackup", "-d", "alpha"]);
    let size = world.list(Some("alpha"))[0]["size"].as_u64().unwrap();
    world.ok(&["--metrics-file", m, "dbrestore", "-d", "alpha", "--noinput"]);
    let s = metrics(&file);
    assert_eq!(
        value(&s, "rcbackup_last_run_success", "dbrestore", "alpha"),
        Some(1.0)
    );
    assert_eq!(
        value(&s, "rcbackup_last_backup_size_bytes", "dbrestore", "alpha"),
        Some(size as f64)
    );
    let data = world
        .stored_files()
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "zst"))
        .expect("a stored backup");
    flip_byte(&data);
    let r = world.run(&["--metrics-file", m, "verify", "-d", "alpha"]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    let s = metrics(&file);
    assert_eq!(
        value(&s, "rcbackup_last_run_success", "verify", "alpha"),
        Some(0.0)
    );
    assert_eq!(
        value(&s, "rcbackup_last_run_exit_code", "verify", "alpha"),
        Some(4.0)
    );
    assert_eq!(
        value(&s, "rcbackup_failures_total", "verify", "alpha"),
        Some(1.0)
    );
    assert_eq!(
        value(
            &s,
            "rcbackup_last_success_timestamp_seconds",
            "verify",
            "alpha"
        ),
        None,
        "verify never succeeded"
    );
    // The restore's series is untouched.
    assert_eq!(
        value(&s, "rcbackup_last_run_success", "dbrestore", "alpha"),
        Some(1.0)
    );
}

/// A drill records its own series: when a backup of the database was last
/// proven to restore; a drill of a damaged backup is a failure.
#[test]
fn metrics_of_a_drill() {
    let (world, file) = two_sqlite_world();
    let m = file.to_str().unwrap();
    world.ok(&["dbbackup", "-d", "alpha"]);
    let size = world.list(Some("alpha"))[0]["size"].as_u64().unwrap();
    let before = now_secs();
    world.ok(&["--metrics-file", m, "drill", "-d", "alpha"]);
    let s = metrics(&file);
    assert_eq!(
        value(&s, "rcbackup_last_run_success", "drill", "alpha"),
        Some(1.0)
    );
    assert_eq!(
        value(&s, "rcbackup_last_backup_size_bytes", "drill", "alpha"),
        Some(size as f64)
    );
    let proven = value(
        &s,
        "rcbackup_last_success_timestamp_seconds",
        "drill",
        "alpha",
    )
    .expect("a drill's success time");
    assert!(proven >= before.floor(), "{proven} < {before}");
    let data = world
        .stored_files()
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "zst"))
        .expect("a stored backup");
    flip_byte(&data);
    let r = world.run(&["--metrics-file", m, "drill", "-d", "alpha"]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    let s = metrics(&file);
    assert_eq!(
        value(&s, "rcbackup_last_run_exit_code", "drill", "alpha"),
        Some(4.0)
    );
    assert_eq!(
        value(&s, "rcbackup_failures_total", "drill", "alpha"),
        Some(1.0)
    );
    assert_eq!(
        value(
            &s,
            "rcbackup_last_success_timestamp_seconds",
            "drill",
            "alpha"
        ),
        Some(proven),
        "the last proof is kept"
    );
}

/// A `-d` that names no configured database (a typo) is filed under
/// `database=""`, never as a series of its own: label values stay the
/// configured aliases (and ""). A configured alias whose run fails before
/// it reaches its database (an unset url_env) keeps its own series; a
/// config that does not load tells no alias, so "" too.
#[test]
fn metrics_of_an_unknown_alias_go_under_the_empty_database() {
    let (mut world, file) = two_sqlite_world();
    world
        .databases
        .push_str("[databases.gamma]\nurl_env = \"RCBACKUP_TEST_UNSET_URL\"\n");
    let m = file.to_str().unwrap();
    let typo = "alpah-with-a-typo\u{202e}";
    for command in ["verify", "dbbackup", "dbrestore", "drill"] {
        let mut args = vec!["--metrics-file", m, command, "-d", typo];
        if command == "dbrestore" {
            args.push("--noinput");
        }
        let r = world.run(&args);
        assert_eq!(r.code, 2, "{command}: {}", r.stderr);
        let s = metrics(&file);
        assert!(
            s.iter()
                .all(|x| ["", "alpha", "beta", "gamma"].contains(&x.labels["database"].as_str())),
            "{command}: a series of an alias not in the config: {s:?}"
        );
        assert_eq!(
            value(&s, "rcbackup_last_run_exit_code", command, ""),
            Some(2.0),
            "{command}: the failure is visible under database=\"\""
        );
        assert_eq!(
            value(&s, "rcbackup_last_run_success", command, ""),
            Some(0.0)
        );
    }
    let r = world.run(&["--metrics-file", m, "dbbackup", "-d", "gamma"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let s = metrics(&file);
    assert_eq!(
        value(&s, "rcbackup_last_run_exit_code", "dbbackup", "gamma"),
        Some(2.0)
    );
    assert_eq!(
        value(&s, "rcbackup_failures_total", "dbbackup", ""),
        Some(1.0)
    );
    // A config that does not load: which aliases exist is unknown.
    world.setting("no_such_key = 1");
    let r = world.run(&["--metrics-file", m, "verify", "-d", "typo2"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let s = metrics(&file);
    assert!(s.iter().all(|x| x.labels["database"] != "typo2"), "{s:?}");
    assert_eq!(
        value(&s, "rcbackup_failures_total", "verify", ""),
        Some(2.0)
    );
}

#[test]
fn a_damaged_or_foreign_metrics_file_is_replaced_with_a_warning() {
    let (world, file) = two_sqlite_world();
    let m = file.to_str().unwrap();
    for previous in [
        "garbage\n",
        "# TYPE node_cpu_seconds_total counter\nnode_cpu_seconds_total{cpu=\"0\"} 12\n",
        "rcbackup_failures_total{command=\"dbbackup\",database=\"x\",tenant=\"\"} not-a-number\n",
        "\u{0}\u{1}binary",
    ] {
        std::fs::write(&file, previous).unwrap();
        let r = world.run(&["--metrics-file", m, "dbbackup", "-d", "beta"]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert_mentions(&r.stderr, &["WARN", "metrics", m]);
        let s = metrics(&file);
        assert_eq!(
            value(&s, "rcbackup_failures_total", "dbbackup", "beta"),
            Some(0.0)
        );
        assert!(s.iter().all(|x| x.name.starts_with("rcbackup_")));
    }
}

#[test]
fn a_metrics_file_that_cannot_be_written_is_only_a_warning() {
    let (world, file) = two_sqlite_world();
    let bad = world.path("no-such-folder/rcbackup.prom");
    let r = world.run(&[
        "--metrics-file",
        bad.to_str().unwrap(),
        "dbbackup",
        "-d",
        "alpha",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_mentions(&r.stderr, &["WARN", "metrics", "no-such-folder"]);
    // And a failing run keeps its own exit code.
    let r = world.run(&[
        "--metrics-file",
        bad.to_str().unwrap(),
        "verify",
        "-i",
        "nope",
    ]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(!file.exists());
}

/// RCBACKUP_METRICS_FILE set but empty (an environment template's blank)
/// is as if unset: the backup runs, no metrics are written.
#[test]
fn an_empty_metrics_variable_is_unset() {
    let (mut world, _file) = two_sqlite_world();
    world.set_env("RCBACKUP_METRICS_FILE", String::new());
    let r = world.run(&["dbbackup", "-d", "alpha"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_lacks(&r.stderr, &["metrics"]);
    // And set, it is used.
    let file = world.path("from-env.prom");
    world.set_env("RCBACKUP_METRICS_FILE", file.display().to_string());
    world.ok(&["dbbackup", "-d", "alpha"]);
    assert!(std::fs::read_to_string(&file)
        .unwrap()
        .contains("rcbackup_last_success_timestamp_seconds"));
}

/// A path that is not a regular file is never replaced or opened: a FIFO
/// (opening it would wait for a reader forever) stays a FIFO, the run ends
/// at once with its own exit code and a warning, and no lock file appears
/// beside it. (`/dev/null` was turned into a file this way.)
#[test]
fn a_metrics_path_that_is_not_a_file_is_left_alone() {
    use std::os::unix::fs::FileTypeExt;
    let (world, _) = two_sqlite_world();
    world.ok(&["dbbackup", "-d", "alpha"]);
    let fifo = world.path("metrics.fifo");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());
    let started = std::time::Instant::now();
    let child = world.spawn(&[
        "--metrics-file",
        fifo.to_str().unwrap(),
        "verify",
        "-d",
        "alpha",
    ]);
    let pid = child.id();
    let waiter = std::thread::spawn(move || child.wait_with_output().unwrap());
    common::wait_until(60, "the run to end", || !common::alive(pid));
    let r = common::Run::from(waiter.join().unwrap());
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_mentions(&r.stderr, &["WARN", "not a regular file"]);
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
    assert!(!world.path("metrics.fifo.lock").exists());
}

/// Two runs that write the file at once: the second waits for the first's
/// lock, so neither loses the other's database.
#[test]
fn concurrent_runs_keep_each_others_metrics() {
    let (world, file) = two_sqlite_world();
    let m = file.to_str().unwrap();
    world.ok(&["--metrics-file", m, "dbbackup", "-d", "beta"]);
    // alpha's run holds after reading the previous file, before writing.
    let mut held = world.spawn_held(
        &["--metrics-file", m, "dbbackup", "-d", "alpha"],
        "metrics-write",
    );
    held.wait_at("metrics-write");
    let other = world.spawn(&["--metrics-file", m, "verify", "-d", "beta"]);
    std::thread::sleep(Duration::from_millis(1500));
    held.release("metrics-write");
    let a = held.finish();
    assert_eq!(a.code, 0, "{}", a.stderr);
    let b = Run::from(other.wait_with_output().unwrap());
    assert_eq!(b.code, 0, "{}", b.stderr);
    let s = metrics(&file);
    assert_eq!(
        value(&s, "rcbackup_last_run_success", "dbbackup", "alpha"),
        Some(1.0)
    );
    assert_eq!(
        value(&s, "rcbackup_last_run_success", "dbbackup", "beta"),
        Some(1.0)
    );
    assert_eq!(
        value(&s, "rcbackup_last_run_success", "verify", "beta"),
        Some(1.0)
    );
}

/// A run killed while it writes the new file leaves the old one whole (and
/// node_exporter never reads its temporary file, which does not end in
/// .prom); the next run writes over both.
#[test]
fn a_run_killed_while_writing_metrics_leaves_the_old_file() {
    let (world, file) = two_sqlite_world();
    let m = file.to_str().unwrap();
    world.ok(&["--metrics-file", m, "dbbackup", "-d", "beta"]);
    let old = std::fs::read(&file).unwrap();
    let mut held = world.spawn_held(
        &["--metrics-file", m, "dbbackup", "-d", "alpha"],
        "metrics-rename",
    );
    held.wait_at("metrics-rename");
    sigkill(held.child.id());
    let _ = held.finish();
    assert_eq!(std::fs::read(&file).unwrap(), old, "the old file changed");
    let dir = file.parent().unwrap();
    let names = |dir: &Path| -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    let prom: Vec<_> = names(dir)
        .into_iter()
        .filter(|n| n.ends_with(".prom"))
        .collect();
    assert_eq!(prom, ["rcbackup.prom"], "only the real file ends in .prom");
    // Killed mid-dump as well: still the old file.
    let mut held = world.spawn_held(
        &["--metrics-file", m, "dbbackup", "-d", "alpha"],
        "dump-started",
    );
    held.wait_at("dump-started");
    sigkill(held.child.id());
    let _ = held.finish();
    assert_eq!(std::fs::read(&file).unwrap(), old);
    // The next run writes, and sweeps the killed run's temporary file.
    world.ok(&["--metrics-file", m, "dbbackup", "-d", "alpha"]);
    let s = metrics(&file);
    assert_eq!(
        value(&s, "rcbackup_last_run_success", "dbbackup", "alpha"),
        Some(1.0)
    );
    assert_eq!(
        value(&s, "rcbackup_last_run_success", "dbbackup", "beta"),
        Some(1.0)
    );
    let left: Vec<_> = names(dir)
        .into_iter()
        .filter(|n| n != "rcbackup.prom" && n != "rcbackup.prom.lock")
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// The alert rules in docs/monitoring.md name metrics rcbackup writes.
#[test]
fn documented_alert_rules_use_written_metrics() {
    let (world, file) = two_sqlite_world();
    world.ok(&[
        "--metrics-file",
        file.to_str().unwrap(),
        "dbbackup",
        "-d",
        "alpha",
    ]);
    let names: std::collections::BTreeSet<String> =
        metrics(&file).into_iter().map(|s| s.name).collect();
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/monitoring.md"
    ))
    .expect("docs/monitoring.md");
    let exprs: Vec<&str> = doc
        .lines()
        .filter_map(|l| l.trim().strip_prefix("expr:"))
        .collect();
    assert!(exprs.len() >= 2, "no alert rules found");
    for e in exprs {
        let used: Vec<&str> = e
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| w.starts_with("rcbackup_"))
            .collect();
        assert!(!used.is_empty(), "{e}");
        for u in used {
            assert!(
                names.contains(u),
                "the rule `{e}` uses {u}, which is not written"
            );
        }
    }
}

/// A media backup slowed to 1 MiB/s: its progress comes from rclone's
/// stats, as log lines without a terminal and as a live line on one.
#[test]
fn media_progress_comes_from_rclones_stats() {
    let mut world = World::new(Remote::Local);
    let root = world.path("media");
    std::fs::create_dir_all(&root).unwrap();
    for i in 0..3 {
        std::fs::write(root.join(format!("f{i}.bin")), vec![i as u8; 1024 * 1024]).unwrap();
    }
    world.setting(&format!("media_root = \"{}\"", root.display()));
    world.setting("rclone_flags = [\"--bwlimit\", \"1M\"]");
    world.set_env("RCBACKUP_PROGRESS_INTERVAL", "0.5".into());
    let r = world.ok(&["--log-format", "json", "mediabackup"]);
    let lines = json_lines(&r.stderr);
    let progress: Vec<_> = lines
        .iter()
        .filter(|v| v["transferred_bytes"].is_u64())
        .collect();
    assert!(progress.len() >= 2, "no media progress:\n{}", r.stderr);
    assert!(
        progress
            .iter()
            .any(|v| v["total_files"] == 3 && v["total_bytes"] == 3 * 1024 * 1024),
        "{}",
        r.stderr
    );
    // On a terminal: the live line, with files and bytes.
    std::fs::write(root.join("f3.bin"), vec![9u8; 2 * 1024 * 1024]).unwrap();
    let out = world
        .on_terminal_command("mediabackup")
        .output()
        .expect("script runs");
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{shown}");
    assert_mentions(&shown, &["of 1 files", "MiB", "media sync"]);
}

/// A step shorter than the progress interval ends when it ends: its meter
/// does not wait out the interval (a lost wake-up made every piped verify
/// take 60 s).
#[test]
fn a_short_step_does_not_wait_for_the_progress_interval() {
    let mut world = World::new(Remote::Local);
    world.seeded_sqlite("default", 10);
    world.ok(&["dbbackup"]);
    for _ in 0..3 {
        let started = std::time::Instant::now();
        world.ok(&["verify"]);
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "verify took {:?}",
            started.elapsed()
        );
    }
}

/// Ctrl-C typed on the terminal while the live line is drawn: the run
/// stops (exit 130), publishes nothing, and its last words are whole
/// lines, not drawn into the bar.
#[test]
fn ctrl_c_while_progress_is_drawn() {
    use std::io::Write;
    let world = slow_dump_world(30.0);
    let mut child = world
        .on_terminal_command("dbbackup")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("script runs");
    // The dump has been written (and drawn) well before its tool exits.
    std::thread::sleep(Duration::from_secs(3));
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"\x03").unwrap();
    stdin.flush().unwrap();
    let started = std::time::Instant::now();
    let out = child.wait_with_output().unwrap();
    drop(stdin);
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "Ctrl-C did not stop the run: {shown}"
    );
    assert_eq!(out.status.code(), Some(130), "{shown}");
    assert_mentions(&shown, LIVE);
    assert_mentions(&shown, &["interrupted", "nothing was published"]);
    let last = shown
        .rsplit('\r')
        .find(|s| s.contains("nothing was published"))
        .unwrap();
    assert!(!last.contains("dumped"), "{last:?}");
    assert_eq!(world.names(None), Vec::<String>::new());
}
