//! The run's one rclone server (README, "One rclone per run"): reachable
//! only from 127.0.0.1 and only with the run's credentials, which are on no
//! command line; out of reach of a Ctrl-C to the run's process group; gone
//! when the run ends in any way; and replaced by one process per call when
//! it cannot start. Tests that need the server return early when the suite
//! runs with `RCBACKUP_RCLONE_MODE=per-call`.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Stdio;

use common::*;

fn sqlite_world() -> (World, PathBuf) {
    let mut world = World::new(Remote::Local);
    let file = world.seeded_sqlite("default", 2000);
    (world, file)
}

/// The run's `rclone rcd`, found among its children.
fn server_of(held: &Held) -> u32 {
    live_child(held.child.id(), "rclone", &["rcd"]).expect("the run has an rclone server")
}

/// The TCP addresses (`a.b.c.d:port`) process `pid` listens on, read from
/// /proc: its socket descriptors matched against the kernel's table.
fn listening(pid: u32) -> Vec<String> {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
        })
        .collect();
    let mut out = Vec::new();
    for table in ["tcp", "tcp6"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // f[1] local address, f[3] state (0A: listening), f[9] inode.
            if f.len() > 9 && f[3] == "0A" && inodes.iter().any(|i| i == f[9]) {
                let (addr, port) = f[1].split_once(':').unwrap();
                let port = u16::from_str_radix(port, 16).unwrap();
                let ip = if addr.len() == 8 {
                    let n = u32::from_str_radix(addr, 16).unwrap();
                    std::net::Ipv4Addr::from(n.swap_bytes()).to_string()
                } else {
                    format!("[ipv6 {addr}]")
                };
                out.push(format!("{ip}:{port}"));
            }
        }
    }
    out
}

/// The status code of a POST to `core/version` at `addr`, with the given
/// Authorization header (or none).
fn status_of(addr: &str, auth: Option<&str>) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    let auth = auth
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "POST /core/version HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
    )
    .unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer.split_whitespace().nth(1).unwrap_or("").to_string()
}

fn environ(pid: u32) -> Vec<(String, String)> {
    std::fs::read(format!("/proc/{pid}/environ"))
        .unwrap()
        .split(|b| *b == 0)
        .filter_map(|kv| {
            let kv = String::from_utf8_lossy(kv);
            let (k, v) = kv.split_once('=')?;
            Some((k.to_string(), v.to_string()))
        })
        .collect()
}

fn basic(user: &str, pass: &str) -> String {
    // Test-side encoding, independent of rcbackup's.
    let out = std::process::Command::new("base64")
        .arg("-w0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin
                .take()
                .unwrap()
                .write_all(format!("{user}:{pass}").as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    format!("Basic {}", String::from_utf8(out.stdout).unwrap())
}

/// Only 127.0.0.1, only with the run's user and password; the password is
/// in the server's environment, not on its command line; the user's own
/// RCLONE_RC_* settings (no auth, another address) do not reach it.
#[test]
fn the_server_answers_only_the_run_on_loopback() {
    if !rclone_server_mode() {
        return;
    }
    let (mut world, _) = sqlite_world();
    world.set_env("RCLONE_RC_NO_AUTH", "true".into());
    world.set_env("RCLONE_RC_ADDR", "0.0.0.0:0".into());
    let mut held = world.spawn_held(&["dbbackup"], "uploaded");
    held.wait_at("uploaded");
    let server = server_of(&held);
    let addrs = listening(server);
    assert_eq!(addrs.len(), 1, "one listening socket: {addrs:?}");
    let addr = &addrs[0];
    assert!(addr.starts_with("127.0.0.1:"), "loopback only: {addr}");
    let env = environ(server);
    let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let (user, pass) = (
        get("RCLONE_RC_USER").unwrap(),
        get("RCLONE_RC_PASS").unwrap(),
    );
    assert!(
        pass.len() >= 32,
        "a long random password: {} chars",
        pass.len()
    );
    assert_eq!(
        get("RCLONE_RC_NO_AUTH"),
        None,
        "the user's rc settings are not passed"
    );
    assert!(!cmdline(server).contains(&pass), "not on the command line");
    assert_eq!(status_of(addr, None), "401", "no credentials, no answer");
    assert_eq!(status_of(addr, Some(&basic(&user, "wrong"))), "401");
    assert_eq!(status_of(addr, Some(&basic(&user, &pass))), "200");
    held.release("uploaded");
    let r = held.finish();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!alive(server), "the server is stopped when the run ends");
}

/// The server ends with the run, whichever way the run ends: success, a
/// failure, SIGTERM, SIGKILL (the kernel kills it, no handler runs).
#[test]
fn the_server_never_outlives_the_run() {
    if !rclone_server_mode() {
        return;
    }
    let (mut world, file) = sqlite_world();
    world.ok(&["dbbackup"]);
    for how in ["success", "failure", "SIGTERM", "SIGKILL"] {
        if how == "failure" {
            // The database goes away while the run is held: its dump fails.
            world.wrap_tool("sqlite3", "echo 'Error: gone' >&2; exit 1");
        } else {
            world.path_prefix.clear();
        }
        let mut held = world.spawn_held(&["dbbackup"], "dump-started");
        held.wait_at("dump-started");
        let server = server_of(&held);
        match how {
            "SIGTERM" => held.signal(libc::SIGTERM),
            "SIGKILL" => held.signal(libc::SIGKILL),
            _ => held.release("dump-started"),
        }
        let r = held.finish();
        let expected = match how {
            "success" => 0,
            "failure" => 1,
            "SIGTERM" => 130,
            _ => -1,
        };
        assert_eq!(r.code, expected, "{how}: {}", r.stderr);
        wait_until(10, &format!("the server to end after {how}"), || {
            !alive(server)
        });
    }
    assert!(file.exists());
}

/// Ctrl-C at a terminal signals the run's whole process group. The server
/// is not in it: the run cleans up through it and exits 130, leaving
/// nothing behind.
#[test]
fn a_ctrl_c_to_the_process_group_still_cleans_up() {
    let (world, _) = sqlite_world();
    world.ok(&["dbbackup"]);
    let before = store_files(&world);
    let pause = tempfile::tempdir().unwrap();
    let mut cmd = world.command(&["dbbackup"]);
    cmd.env("RCBACKUP_TEST_PAUSE", "uploaded")
        .env("RCBACKUP_TEST_PAUSE_DIR", pause.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let child = cmd.spawn().unwrap();
    let pid = child.id();
    let mut held = Held { child, dir: pause };
    held.wait_at("uploaded");
    // SAFETY: kill(2) on the process group the test made for the run.
    unsafe {
        libc::kill(-(pid as libc::pid_t), libc::SIGINT);
    }
    let r = held.finish();
    assert_eq!(r.code, 130, "{}", r.stderr);
    assert_eq!(store_files(&world), before, "the upload was removed");
}

/// An rclone that cannot serve (here a wrapper that refuses `rcd`): the
/// run goes on with one rclone process per call, and -v says so.
#[test]
fn without_a_server_the_run_uses_one_process_per_call() {
    let (mut world, file) = sqlite_world();
    // Asked for the server, whatever mode the suite runs in.
    world.set_env("RCBACKUP_RCLONE_MODE", "server".into());
    world.wrap_tool(
        "rclone",
        r#"[ "$1" = rcd ] && { echo "rcd is disabled here" >&2; exit 1; }; exec "$REAL" "$@""#,
    );
    let r = world.ok(&["-v", "dbbackup", "--clean"]);
    assert_mentions(
        &r.stderr,
        &["did not start listening", "one rclone process per call"],
    );
    sqlite(&file, "DELETE FROM items");
    world.ok(&["dbrestore", "--noinput"]);
    assert_eq!(sqlite(&file, "SELECT count(*) FROM items").trim(), "2000");
}

/// The mode variable takes two values; anything else is a usage error
/// that names both.
#[test]
fn an_unknown_rclone_mode_is_refused() {
    let (mut world, _) = sqlite_world();
    world.set_env("RCBACKUP_RCLONE_MODE", "fast".into());
    let r = world.run(&["listbackups"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_mentions(&r.stderr, &["RCBACKUP_RCLONE_MODE", "server", "per-call"]);
}

/// An `rclone_binary` wrapper that runs rclone as its child instead of
/// `exec`-ing it: the server is stopped with its whole process group, so
/// the wrapper's rclone does not outlive the run (it did: stopping the
/// wrapper left its rclone running, listening, forever).
#[test]
fn a_wrapper_that_does_not_exec_leaves_no_server_behind() {
    if !rclone_server_mode() {
        return;
    }
    let (mut world, _) = sqlite_world();
    world.ok(&["dbbackup"]);
    let pids = world.path("rclone-pids");
    world.wrap_tool(
        "rclone",
        &format!(r#""$REAL" "$@" & echo $! >> '{}'; wait $!"#, pids.display()),
    );
    let r = world.ok(&["listbackups"]);
    assert!(r.stdout.contains("default-"), "{}", r.stdout);
    let started: Vec<u32> = std::fs::read_to_string(&pids)
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert!(!started.is_empty());
    for pid in started {
        wait_until(5, "the wrapper's rclone to end", || !alive(pid));
    }
}
