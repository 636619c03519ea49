//! A remote that stops answering ends each read with an error that names
//! it, and never holds a run: `verify --all` against a WebDAV server that
//! was stopped (SIGSTOP: connections open, no byte ever comes) in the
//! middle of the run, in both ways of reaching rclone; `config check`
//! against a listener that accepts and never answers.

mod common;

use std::net::TcpListener;
use std::process::Child;
use std::time::{Duration, Instant};

use common::*;

/// The `rclone serve webdav` behind a webdav world, found by its address.
fn webdav_pid(world: &World) -> u32 {
    let port = world.webdav.as_ref().expect("a webdav world").port;
    let addr = format!("--addr 127.0.0.1:{port} ");
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
        .find(|&p| {
            let c = cmdline(p);
            c.contains("serve webdav") && c.contains(&addr)
        })
        .expect("the webdav server runs")
}

fn signal(pid: u32, sig: i32) {
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

/// Waits for `child` to end, for at most `secs` seconds: a run still going
/// then is killed and the test fails (it hung).
fn finish_within(mut child: Child, secs: u64, what: &str) -> Run {
    let until = Instant::now() + Duration::from_secs(secs);
    loop {
        if child.try_wait().unwrap().is_some() {
            return Run::from(child.wait_with_output().unwrap());
        }
        if Instant::now() >= until {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{what} still ran after {secs} s (it hung); stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Three backups on a webdav remote; `verify --all --json` held before its
/// first read while the webdav server is stopped, then let go: each backup
/// is an error, the first saying the remote gave no data for the limit,
/// the others not tried; exit 1 with the JSON document, in seconds.
fn verify_with_a_stalled_remote(mode: &str) {
    let mut world = World::new(Remote::Webdav);
    world.seeded_sqlite("default", 200);
    world.setting(r#"rclone_flags = ["--retries", "1", "--low-level-retries", "1"]"#);
    world.set_env("RCBACKUP_RCLONE_MODE", mode.into());
    for _ in 0..3 {
        world.ok(&["dbbackup"]);
    }
    world.set_env("RCBACKUP_TEST_STALL_SECS", "3".into());
    let mut held = world.spawn_held(&["verify", "--all", "--json"], "verify-next");
    held.wait_at("verify-next");
    let dav = webdav_pid(&world);
    signal(dav, libc::SIGSTOP);
    let started = Instant::now();
    held.release("verify-next");
    let Held { child, dir: _dir } = held;
    // rclone's own limit (--timeout, 5 min) is far away: only rcbackup's
    // bound can end the reads this soon.
    let run = finish_within(child, 90, &format!("verify --all ({mode})"));
    let took = started.elapsed();
    signal(dav, libc::SIGCONT);
    assert_eq!(
        run.code, 1,
        "stdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
    let doc: serde_json::Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("verify --json gave {e}:\n{}", run.stdout));
    let checked = doc["checked"].as_array().unwrap();
    assert_eq!(checked.len(), 3, "{doc:#}");
    assert_eq!(doc["errors"], 3, "{doc:#}");
    assert!(checked.iter().all(|c| c["status"] == "error"), "{doc:#}");
    let problem = |i: usize| checked[i]["problem"].as_str().unwrap().to_string();
    assert_mentions(&problem(0), &["no data from the remote dav: for 3 s"]);
    for i in 1..3 {
        assert_mentions(
            &problem(i),
            &["not tried: the remote dav: stopped answering earlier in this run"],
        );
    }
    assert_mentions(&run.stderr, &["3 of 3 backups could not be read"]);
    assert!(
        took < Duration::from_secs(40),
        "verify took {took:?} with a 3 s stall limit"
    );
}

#[test]
fn verify_all_ends_when_the_remote_stops_answering_server_mode() {
    verify_with_a_stalled_remote("server");
}

#[test]
fn verify_all_ends_when_the_remote_stops_answering_per_call() {
    verify_with_a_stalled_remote("per-call");
}

/// As above, with rclone's own idle limit short (`--timeout 2s`) and
/// rcbackup's left at its default (minutes): rclone gives up on the first
/// read, as it does on a silent remote with its 5 minutes, and the other
/// backups are not asked for (before, each waited rclone's limit again).
fn verify_after_rclone_gives_up(mode: &str) {
    let mut world = World::new(Remote::Webdav);
    world.seeded_sqlite("default", 200);
    world.setting(
        r#"rclone_flags = ["--retries", "1", "--low-level-retries", "1", "--timeout", "2s"]"#,
    );
    world.set_env("RCBACKUP_RCLONE_MODE", mode.into());
    for _ in 0..4 {
        world.ok(&["dbbackup"]);
    }
    let mut held = world.spawn_held(&["verify", "--all", "--json"], "verify-next");
    held.wait_at("verify-next");
    let dav = webdav_pid(&world);
    signal(dav, libc::SIGSTOP);
    held.release("verify-next");
    let Held { child, dir: _dir } = held;
    let run = finish_within(child, 90, &format!("verify --all ({mode})"));
    signal(dav, libc::SIGCONT);
    assert_eq!(
        run.code, 1,
        "stdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
    let doc: serde_json::Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("verify --json gave {e}:\n{}", run.stdout));
    let checked = doc["checked"].as_array().unwrap();
    assert_eq!(checked.len(), 4, "{doc:#}");
    assert!(checked.iter().all(|c| c["status"] == "error"), "{doc:#}");
    for c in &checked[1..] {
        assert_mentions(
            c["problem"].as_str().unwrap(),
            &[
                "not tried: the remote dav: stopped answering earlier in this run (no data for ",
                " s, then rclone gave up)",
            ],
        );
    }
    assert_mentions(&run.stderr, &["the remote dav: stopped answering"]);
}

#[test]
fn verify_all_stops_asking_once_rclone_gives_up_server_mode() {
    verify_after_rclone_gives_up("server");
}

#[test]
fn verify_all_stops_asking_once_rclone_gives_up_per_call() {
    verify_after_rclone_gives_up("per-call");
}

/// A TCP listener on 127.0.0.1 that accepts connections and never sends
/// a byte (nor closes them) while the test runs.
fn silent_listener() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().flatten() {
            held.push(s);
        }
    });
    port
}

#[test]
fn config_check_gives_up_on_a_remote_that_never_answers() {
    let port = silent_listener();
    let mut world = World::new(Remote::Local);
    world.seeded_sqlite("default", 10);
    world.remote = "silent:".into();
    world.set_env("RCLONE_CONFIG_SILENT_TYPE", "webdav".into());
    world.set_env(
        "RCLONE_CONFIG_SILENT_URL",
        format!("http://127.0.0.1:{port}"),
    );
    world.set_env("RCLONE_CONFIG_SILENT_VENDOR", "other".into());
    // Both at once: the test waits for the deadline once.
    let started = Instant::now();
    let text = world.spawn(&["config", "check"]);
    let json = world.spawn(&["config", "check", "--json"]);
    let text = finish_within(text, 55, "config check");
    let json = finish_within(json, 55, "config check --json");
    let took = started.elapsed();

    assert_eq!(
        text.code, 1,
        "stdout:\n{}\nstderr:\n{}",
        text.stdout, text.stderr
    );
    let line = text
        .stdout
        .lines()
        .find(|l| l.starts_with("error") && l.contains("remote:"))
        .unwrap_or_else(|| panic!("no failed remote line:\n{}", text.stdout));
    assert_mentions(
        line,
        &[
            "listing silent:db failed: the remote silent: did not answer within 30 s",
            "Check that the remote is reachable",
        ],
    );
    // Not blamed on rclone: it was stopped by rcbackup.
    assert_lacks(line, &["signal", "rclone exited"]);
    // The database's check still ran after it.
    assert_mentions(&text.stdout, &["ok      database default:"]);

    assert_eq!(json.code, 1, "stderr:\n{}", json.stderr);
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(doc["ok"], false);
    let remote = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "remote")
        .unwrap_or_else(|| panic!("no remote check: {doc:#}"));
    assert_eq!(remote["status"], "error", "{doc:#}");
    assert_mentions(
        remote["message"].as_str().unwrap(),
        &["the remote silent: did not answer within 30 s"],
    );
    assert!(took < Duration::from_secs(50), "config check took {took:?}");
}
