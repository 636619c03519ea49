//! Hostile guests are contained: each ends with a clear error naming the
//! module and the cause, the host survives, and no backup is deleted. Also:
//! the ready-made keep-last agrees with the built-in rule on random inputs.

mod common;
mod policy_support;

use std::time::{Duration, Instant};

use common::{assert_mentions, World};

/// Rounds of the hostile guest's `busy` mode: about 0.9 s of work on the
/// 2-core test machine (2.2 ns a round, measured), between the 250 ms
/// deadline below and 8 x 250 ms. Load only makes it longer, so the test
/// never passes the wrong way; on a very loaded machine it may stop telling
/// 1x from 8x, never fail for the right code.
const BUSY_ROUNDS: u64 = 400_000_000;
use policy_support::{rust_guest, world};

/// A world with two backups and the hostile guest as `role` in `mode`.
fn hostile(section: &str, mode: &str, limits: &str) -> World {
    let mut w = world();
    w.ok(&["dbbackup"]);
    std::thread::sleep(Duration::from_millis(1100));
    w.ok(&["dbbackup"]);
    w.databases.push_str(&format!(
        "{section}\nmodule = \"{}\"\nconfig = {{ mode = \"{mode}\" }}\nlimits = {{ {limits} }}\n",
        rust_guest("hostile").display()
    ));
    w
}

/// Waits for a spawned run for at most `secs`; a run still going then is
/// killed and the test fails (a hang must fail the test, not hold it).
fn finish_within(mut child: std::process::Child, secs: u64, what: &str) -> common::Run {
    let until = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            return common::Run::from(child.wait_with_output().unwrap());
        }
        if Instant::now() >= until {
            let _ = child.kill();
            let r = common::Run::from(child.wait_with_output().unwrap());
            panic!(
                "{what}: still running after {secs} s; killed. stderr:\n{}",
                r.stderr
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `--clean` with a hostile retention policy; nothing may be deleted.
fn clean_fails(mode: &str, limits: &str, cause: &str) -> String {
    let w = hostile("[policies.retention]", mode, limits);
    let before = w.stored_files();
    let started = Instant::now();
    let r = finish_within(w.spawn(&["dbbackup", "--clean"]), 60, mode);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "mode {mode} took {:?}",
        started.elapsed()
    );
    assert_eq!(r.code, 1, "mode {mode}: {}", r.stderr);
    assert!(
        r.stderr.contains("hostile.wasm"),
        "mode {mode}: {}",
        r.stderr
    );
    assert!(
        r.stderr.contains(cause),
        "mode {mode}, wanted `{cause}`: {}",
        r.stderr
    );
    assert!(
        !r.stderr.contains("thread 'main'"),
        "the host panicked: {}",
        r.stderr
    );
    let after = w.stored_files();
    // The new backup was made (before cleanup ran); nothing was removed.
    for f in &before {
        assert!(after.contains(f), "mode {mode} deleted {}", f.display());
    }
    assert_eq!(w.names(None).len(), 3, "mode {mode}");
    // The error says the new backup stands, naming it (a script reading
    // only stderr and the exit code must not think the backup failed).
    let newest = w.names(None).remove(0);
    assert!(
        r.stderr
            .contains(&format!("the backup was published: {newest} (")),
        "mode {mode}: {}",
        r.stderr
    );
    r.stderr
}

#[test]
fn infinite_loop_runs_out_of_fuel() {
    clean_fails("spin", "fuel = 50_000_000", "ran out of fuel");
}

#[test]
fn infinite_loop_hits_the_deadline() {
    let stderr = clean_fails(
        "spin",
        "fuel = 1_000_000_000_000, deadline_ms = 200",
        "deadline of 200 ms",
    );
    assert!(!stderr.contains("fuel ("), "{stderr}");
}

#[test]
fn memory_bomb_hits_the_memory_limit() {
    clean_fails("memory", "memory_mib = 32", "more than 32 MiB of memory");
}

/// Runs the hostile guest's naming role through `policy test` with
/// `config` and `limits` (JSON object bodies).
fn naming_under(w: &World, config: &str, limits: &str) -> common::Run {
    let input = w.path("naming-input.json");
    std::fs::write(
        &input,
        format!("{{\"config\":{{{config}}},\"limits\":{{{limits}}},\"naming\":{{}}}}"),
    )
    .unwrap();
    let hostile = rust_guest("hostile");
    w.run(&[
        "policy",
        "test",
        &hostile.display().to_string(),
        "--role",
        "naming",
        "--input",
        &input.display().to_string(),
    ])
}

/// A guest that needs 40 MiB runs under a 64 MiB limit and is stopped under
/// a 32 MiB one: the limit is the one configured, not a multiple of it.
#[test]
fn memory_limit_is_enforced_at_the_configured_size() {
    let w = world();
    let config = r#""mode":"alloc","mib":40"#;
    let r = naming_under(&w, config, r#""memory_mib":64"#);
    assert_eq!(r.code, 0, "40 MiB fits under 64 MiB: {}", r.stderr);
    assert!(r.stdout.contains("name: alloc"), "{}", r.stdout);
    let r = naming_under(&w, config, r#""memory_mib":32"#);
    assert_eq!(r.code, 1, "40 MiB does not fit under 32 MiB: {}", r.stderr);
    assert_mentions(&r.stderr, &["hostile.wasm", "more than 32 MiB of memory"]);
    // Just over the guest's own footprint is enough; 8 MiB less is not.
    let r = naming_under(&w, r#""mode":"alloc","mib":20"#, r#""memory_mib":24"#);
    assert_eq!(r.code, 0, "20 MiB fits under 24 MiB: {}", r.stderr);
    let r = naming_under(&w, r#""mode":"alloc","mib":20"#, r#""memory_mib":16"#);
    assert_eq!(r.code, 1, "20 MiB does not fit under 16 MiB: {}", r.stderr);
}

/// A guest that works for about 0.9 s (with fuel to spare) finishes under a
/// long deadline and is stopped under a 250 ms one: the deadline is the one
/// configured, not a multiple of it (8 x 250 ms would let it finish).
#[test]
fn deadline_is_enforced_at_the_configured_time() {
    let w = world();
    let config = format!(r#""mode":"busy","rounds":{BUSY_ROUNDS}"#);
    let fuel = r#""fuel":1000000000000"#;
    let started = Instant::now();
    let r = naming_under(&w, &config, &format!(r#"{fuel},"deadline_ms":20000"#));
    let took = started.elapsed();
    assert_eq!(r.code, 0, "finishes under 20 s: {}", r.stderr);
    assert!(r.stdout.contains("name: busy"), "{}", r.stdout);
    let started = Instant::now();
    let r = naming_under(&w, &config, &format!(r#"{fuel},"deadline_ms":250"#));
    let stopped = started.elapsed();
    assert_eq!(
        r.code, 1,
        "stopped at 250 ms (unbounded it took {took:?} in all): {}",
        r.stderr
    );
    assert_mentions(&r.stderr, &["hostile.wasm", "deadline of 250 ms"]);
    assert!(
        stopped < took,
        "stopped ({stopped:?}) before it would have finished ({took:?})"
    );
}

#[test]
fn log_flood_is_stopped() {
    clean_fails("log", "log_kib = 8", "logged more than 8 KiB");
    clean_fails("stdout", "log_kib = 8", "logged more than 8 KiB");
}

#[test]
fn trap_is_reported_with_its_message() {
    clean_fails("trap", "", "the guest panics on purpose");
}

#[test]
fn retention_naming_unknown_or_all_backups_is_refused_whole() {
    clean_fails("unknown", "", "not-a-backup.sqlite3");
    clean_fails("delete-all", "", "the newest backup");
    // Keeping all the others does not make deleting the newest acceptable.
    clean_fails("delete-newest", "", "the newest backup");
    clean_fails("twice", "", "twice");
    clean_fails("missing", "", "decided on 2 of the 3");
    clean_fails("huge-reason", "", "answer is larger than");
}

#[test]
fn the_guest_sees_no_environment_and_no_files() {
    let w = hostile("[policies.naming]", "read-env", "");
    let r = w.ok(&["dbbackup"]);
    let names = w.names(None);
    assert!(
        // The guest's name, with the `.zst` of a compressed backup.
        names.contains(&"env0-files0.zst".to_string()),
        "{names:?} {}",
        r.stderr
    );
}

#[test]
fn naming_with_a_path_stops_the_backup_before_the_dump() {
    for (mode, cause) in [
        ("../escape", "path separator"),
        ("..", "`..`"),
        ("trap", "trapped"),
        // Issue 8, item 18: shown as `xexe.jpg`; only spaces; a wildcard.
        ("x\u{202E}gpj.exe", "U+202E, a bidirectional control"),
        ("   ", "starts or ends with a space"),
        ("*", "contains `*`"),
    ] {
        let mut w = hostile("[policies.naming]", mode, "");
        // A dump that leaves a mark proves whether it ran.
        let mark = w.mark_runs_of("sqlite3");
        let r = w.run(&["dbbackup"]);
        assert_eq!(r.code, 1, "{mode}: {}", r.stderr);
        assert!(
            r.stderr.contains("naming policy hostile.wasm"),
            "{}",
            r.stderr
        );
        assert!(r.stderr.contains(cause), "{mode}: {}", r.stderr);
        assert!(!mark.exists(), "{mode}: the dump ran");
        assert_eq!(w.names(None).len(), 2);
    }
}

#[test]
fn naming_an_existing_backup_stops_the_backup() {
    let w = hostile("[policies.naming]", "fixed.sqlite3", "");
    w.ok(&["dbbackup"]);
    let r = w.run(&["dbbackup"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        // The policy's name, with the `.zst` of a compressed backup.
        r.stderr.contains("`fixed.sqlite3.zst` already exists"),
        "{}",
        r.stderr
    );
    assert_eq!(w.names(None).len(), 3);
}

#[test]
fn failing_approval_is_a_denial_and_a_vetoing_pre_hook_stops() {
    let w = hostile("[policies.restore_approval]", "spin", "fuel = 10_000_000");
    let r = w.run(&["dbrestore", "--noinput"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("denied") && r.stderr.contains("out of fuel"),
        "{}",
        r.stderr
    );

    let w = hostile("[[hooks]]", "no backups today", "");
    let r = w.run(&["dbbackup"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("no backups today"), "{}", r.stderr);
    assert_eq!(w.names(None).len(), 2);
}

/// The input of `policy test` for the hostile guest in `role`, in `mode`.
fn role_input(w: &World, role: &str, config: &str, limits: &str, now: &str) -> std::path::PathBuf {
    let body = match role {
        "retention" => r#""backups":[{"name":"a.sqlite3","created":"2024-05-01T00:00:00Z"}]"#,
        "naming" => r#""naming":{}"#,
        "restore-approval" => {
            r#""restore":{"backup":{"name":"a.sqlite3","created":"2024-05-01T00:00:00Z"}}"#
        }
        "hooks" => r#""event":{"kind":"pre-db-backup"}"#,
        other => panic!("no role {other}"),
    };
    let input = w.path(&format!("{role}-input.json"));
    std::fs::write(
        &input,
        format!("{{\"now\":\"{now}\",\"config\":{{{config}}},\"limits\":{{{limits}}},{body}}}"),
    )
    .unwrap();
    input
}

fn policy_test_args(role: &str, input: &std::path::Path) -> Vec<String> {
    vec![
        "policy".into(),
        "test".into(),
        rust_guest("hostile").display().to_string(),
        "--role".into(),
        role.into(),
        "--input".into(),
        input.display().to_string(),
    ]
}

const ROLES: [&str; 4] = ["retention", "naming", "restore-approval", "hooks"];
const NOW: &str = "2024-05-10T00:00:00Z";

/// A guest that waits inside a WASI call (std's sleep: a monotonic-clock
/// subscription and a blocking poll; or its own wasi:io/poll on a timer)
/// is stopped at its deadline, in every role, with the deadline's message.
#[test]
fn a_guest_waiting_inside_wasi_is_stopped_at_its_deadline_in_every_role() {
    let w = world();
    for role in ROLES {
        for mode in ["sleep", "poll-sleep"] {
            let input = role_input(
                &w,
                role,
                &format!(r#""mode":"{mode}""#),
                r#""deadline_ms":300"#,
                NOW,
            );
            let args = policy_test_args(role, &input);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let started = Instant::now();
            let r = finish_within(w.spawn(&args), 30, &format!("{role} {mode}"));
            let took = started.elapsed();
            assert_eq!(r.code, 1, "{role} {mode}: {}", r.stderr);
            assert_mentions(&r.stderr, &["hostile.wasm", "deadline of 300 ms"]);
            assert!(
                took < Duration::from_secs(10),
                "{role} {mode} took {took:?}"
            );
        }
    }
}

/// The issue's case: `dbbackup --clean` with a retention policy that sleeps
/// for an hour ends at its 1 s deadline, deleting nothing.
#[test]
fn dbbackup_clean_with_a_sleeping_policy_ends_at_its_deadline() {
    clean_fails("sleep", "deadline_ms = 1000", "deadline of 1000 ms");
}

/// Holds `args` at the `guest-call` step, lets the guest start its one-hour
/// wait, sends `signal` once, and returns the run: it must end by itself.
fn signal_while_guest_waits(w: &World, args: &[&str], signal: i32) -> common::Run {
    let mut held = w.spawn_held(args, "guest-call");
    held.wait_at("guest-call");
    held.release("guest-call");
    // The guest instantiates in about a millisecond, then waits; if the
    // signal came earlier, the call must still end with it.
    std::thread::sleep(Duration::from_millis(500));
    held.signal(signal);
    let started = Instant::now();
    let r = finish_within(held.child, 20, "after one signal");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "one signal took {:?} to stop the run",
        started.elapsed()
    );
    r
}

/// One SIGTERM or Ctrl-C stops rcbackup while a guest waits inside WASI or
/// computes: exit 130, one message, no deadline failure in its place.
#[test]
fn one_signal_stops_a_run_while_a_guest_waits_or_computes() {
    let w = world();
    for (mode, signal) in [("sleep", libc::SIGTERM), ("spin", libc::SIGINT)] {
        let input = role_input(
            &w,
            "naming",
            &format!(r#""mode":"{mode}""#),
            r#""deadline_ms":600000,"fuel":1000000000000000"#,
            NOW,
        );
        let args = policy_test_args("naming", &input);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = signal_while_guest_waits(&w, &args, signal);
        assert_eq!(r.code, 130, "{mode}: {}", r.stderr);
        assert_mentions(&r.stderr, &["interrupted", "hostile.wasm"]);
        assert!(!r.stderr.contains("deadline"), "{mode}: {}", r.stderr);
    }

    // In a real run: the backup stands, cleanup did not finish.
    let w = hostile("[policies.retention]", "sleep", "deadline_ms = 600_000");
    let r = signal_while_guest_waits(&w, &["dbbackup", "--clean"], libc::SIGTERM);
    assert_eq!(r.code, 130, "{}", r.stderr);
    assert_mentions(&r.stderr, &["interrupted after the backup was published"]);
    assert_eq!(w.names(None).len(), 3);

    // A hook that only warns on failure does not let the run go on.
    let w = hostile(
        "[[hooks]]\non_error = \"warn\"",
        "sleep",
        "deadline_ms = 600_000",
    );
    let mut w = w;
    let mark = w.mark_runs_of("sqlite3");
    let r = signal_while_guest_waits(&w, &["dbbackup"], libc::SIGTERM);
    assert_eq!(r.code, 130, "{}", r.stderr);
    assert!(!mark.exists(), "the dump ran after the interrupt");
    assert_eq!(w.names(None).len(), 2);
}

/// A guest that reads the clocks (WASI's and std's) and every random source
/// gives the same answer for the same input, run after run: the wall clock
/// reads the operation's time, the monotonic clock starts at 0, randomness
/// is seeded from the call's input (so another input draws other numbers).
#[test]
fn policy_test_reproduces_a_decision_that_reads_clocks_and_random() {
    let w = world();
    let name = |config: &str, now: &str| {
        let input = role_input(&w, "naming", config, "", now);
        let args = policy_test_args("naming", &input);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = w.ok(&args);
        r.stdout
            .lines()
            .find_map(|l| l.strip_prefix("name: "))
            .unwrap_or_else(|| panic!("no name in {}", r.stdout))
            .to_string()
    };
    let config = r#""mode":"clock-random""#;
    let first = name(config, NOW);
    let second = name(config, NOW);
    assert_eq!(first, second, "the same input decided twice");
    // 2024-05-10T00:00:00Z, from WASI and from std; the monotonic clock
    // starts at 0 and its first elapsed() is a fixed step.
    assert!(
        first.starts_with("w1715299200.0-s1715299200-m0-e"),
        "{first}"
    );
    let other_config = name(r#""mode":"clock-random","salt":1"#, NOW);
    let other_time = name(config, "2024-05-11T00:00:00Z");
    let random = |n: &str| n.split("-r").nth(1).unwrap().to_string();
    assert_ne!(random(&first), random(&other_config), "config is input");
    assert_ne!(random(&first), random(&other_time), "the time is input");
    assert!(other_time.starts_with("w1715385600.0-"), "{other_time}");
}

/// What each linked WASI interface gives a guest (docs/policies.md, "What
/// a guest can reach"): no environment, arguments or folders, an empty
/// stdin, and sockets that refuse to be made.
#[test]
fn wasi_gives_a_guest_only_what_the_docs_list() {
    let w = world();
    let input = role_input(&w, "naming", r#""mode":"wasi-probe""#, "", NOW);
    let args = policy_test_args("naming", &input);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = w.ok(&args);
    assert!(
        r.stdout.contains(
            "name: env0-args0-pre0-fs.NotFound-in.0-tcp.access-denied-udp.access-denied-dns.permanent-resolver-failure"
        ),
        "{}",
        r.stdout
    );
}

/// A small deterministic generator; the seed is printed on failure.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn keep_last_agrees_with_the_builtin_on_random_series() {
    use chrono::{TimeZone, Utc};
    use rcbackup::database::EngineKind;
    use rcbackup::policy::{runtime::Runtime, GuestPolicy, Policies};
    use rcbackup::record::BackupRecord;

    let _ = Runtime::global().unwrap();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    let mut rng = XorShift(seed);
    let module = rust_guest("keep_last");
    for round in 0..200 {
        let n = 1 + rng.below(40) as usize;
        let keep = 1 + rng.below(12) as usize;
        // Few distinct seconds and sub-second parts: ties are common.
        let series: Vec<BackupRecord> = (0..n)
            .map(|i| {
                let secs = 1_700_000_000 + rng.below(20) as i64;
                let nanos = (rng.below(3) * 300_000_000) as u32;
                BackupRecord {
                    format: 1,
                    name: format!("b{}-{i}", rng.below(5)),
                    database: "default".into(),
                    tenant: None,
                    engine: EngineKind::Sqlite,
                    size: 1,
                    sha256: String::new(),
                    compression: None,
                    adopted: None,
                    created: Utc.timestamp_opt(secs, nanos).unwrap(),
                    finished: Utc.timestamp_opt(secs, nanos).unwrap(),
                    tool: String::new(),
                }
            })
            .collect();
        let now = Utc::now();
        let builtin = Policies::builtin().retention(&series, now, keep).unwrap();
        let wasm = Policies::with_retention(
            GuestPolicy::open(&module, &format!("{{\"keep\":{keep}}}")).unwrap(),
        )
        .retention(&series, now, keep)
        .unwrap();
        let sorted = |mut d: Vec<rcbackup::retention::Decision>| {
            d.sort_by(|a, b| a.name.cmp(&b.name));
            d
        };
        assert_eq!(
            sorted(builtin),
            sorted(wasm),
            "seed {seed}, round {round}, keep {keep}"
        );
    }
}

/// The compiled-policy cache files in the world's cache folder.
fn cache_files(w: &World) -> Vec<std::path::PathBuf> {
    let Ok(dir) = std::fs::read_dir(w.path("cache")) else {
        return Vec::new();
    };
    let mut files: Vec<_> = dir
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect();
    files.sort();
    files
}

/// `rcbackup -v policy test keep_last.wasm` keeping 1 of 2 backups; the
/// decision proves whose code ran.
fn keep_last_decides(w: &World) -> common::Run {
    let input = w.path("k.json");
    std::fs::write(
        &input,
        r#"{"config":{"keep":1},"backups":[{"name":"old","created":"2024-01-01T00:00:00Z"},{"name":"new","created":"2024-01-02T00:00:00Z"}]}"#,
    )
    .unwrap();
    let r = w.run(&[
        "-v",
        "policy",
        "test",
        &rust_guest("keep_last").display().to_string(),
        "--role",
        "retention",
        "--input",
        &input.display().to_string(),
    ]);
    assert_eq!(r.code, 0, "keep_last's own code did not run: {}", r.stderr);
    common::assert_mentions(
        &r.stdout,
        &["delete  old  (older than the newest 1 (#2))", "keep  new"],
    );
    r
}

/// Outside review of issue 8, item 1: a cache file is native code that
/// rcbackup loads outside the sandbox. The reviewer's repro: the cached
/// artifact of the hostile module copied over keep_last's cache file made
/// `policy test keep_last.wasm` run the hostile module's code. Each cache
/// file is bound to the module it was compiled from; a file that is not is
/// compiled again, with a warning, and replaced.
#[test]
fn a_swapped_cache_file_never_runs_another_modules_code() {
    let w = world();
    let keep_last = rust_guest("keep_last").display().to_string();
    let hostile = rust_guest("hostile").display().to_string();
    w.ok(&["policy", "compile", &keep_last]);
    let k = cache_files(&w);
    assert_eq!(k.len(), 1, "{k:?}");
    w.ok(&["policy", "compile", &hostile]);
    let h = cache_files(&w)
        .into_iter()
        .find(|p| !k.contains(p))
        .expect("hostile's cache file");
    std::fs::copy(&h, &k[0]).unwrap();

    let r = keep_last_decides(&w);
    assert_mentions(
        &r.stderr,
        &[
            &k[0].display().to_string(),
            "was not compiled from keep_last.wasm",
        ],
    );
    common::assert_lacks(&r.stderr, &["loaded from the cache"]);
    // The entry is keep_last's own again: the next run loads it, silently.
    let r = keep_last_decides(&w);
    assert_mentions(&r.stderr, &["keep_last.wasm: loaded from the cache"]);
    common::assert_lacks(&r.stderr, &["WARN"]);
}

/// Outside review of issue 8, item 1: a cache folder or file that another
/// user could write is never loaded from or written to: the module is
/// compiled in memory, with one warning saying why and how to fix it.
#[test]
fn a_cache_folder_or_file_others_can_write_is_not_trusted() {
    use std::os::unix::fs::PermissionsExt;
    let w = world();
    let keep_last = rust_guest("keep_last").display().to_string();
    let cache = w.path("cache");
    std::fs::create_dir_all(&cache).unwrap();
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o1777)).unwrap();

    // `policy compile` is asked to cache: it cannot, and says why (exit 1).
    let r = w.run(&["policy", "compile", &keep_last]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_mentions(
        &r.stderr,
        &[
            &cache.display().to_string(),
            "writable by other users",
            "chmod go-w",
        ],
    );
    assert!(cache_files(&w).is_empty(), "{:?}", cache_files(&w));
    // A run that only needs the module compiles it in memory: one warning.
    let r = keep_last_decides(&w);
    assert_eq!(
        r.stderr.matches("writable by other users").count(),
        1,
        "{}",
        r.stderr
    );
    common::assert_lacks(&r.stderr, &["loaded from the cache"]);
    assert!(cache_files(&w).is_empty(), "{:?}", cache_files(&w));

    // A healthy folder is used.
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o700)).unwrap();
    w.ok(&["policy", "compile", &keep_last]);
    let r = keep_last_decides(&w);
    assert_mentions(&r.stderr, &["keep_last.wasm: loaded from the cache"]);
    let file = cache_files(&w).remove(0);

    // A file in it that others can write, or that another user owns, is not
    // loaded; it is replaced by the module's own.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
    let r = keep_last_decides(&w);
    common::assert_lacks(&r.stderr, &["loaded from the cache"]);
    assert_mentions(
        &r.stderr,
        &[&file.display().to_string(), "writable by other users"],
    );
    let r = keep_last_decides(&w);
    assert_mentions(&r.stderr, &["keep_last.wasm: loaded from the cache"]);

    std::os::unix::fs::chown(&file, Some(65534), Some(65534)).unwrap();
    let r = keep_last_decides(&w);
    common::assert_lacks(&r.stderr, &["loaded from the cache"]);
    assert_mentions(
        &r.stderr,
        &[&file.display().to_string(), "owned by another user"],
    );
}

/// Outside review of issue 8, item 4: a hook that fails on a `pre-` event
/// (traps, runs out of a limit) with on_error = "fail" fails the run (exit
/// 1, "failed"); only the hook's own error answer is a veto (exit 3).
#[test]
fn a_failing_pre_hook_is_a_failure_not_a_veto() {
    for (mode, limits, cause) in [
        ("trap", "", "it trapped"),
        ("spin", "fuel = 10_000_000", "it ran out of fuel"),
    ] {
        let mut w = hostile(
            "[[hooks]]\nevents = [\"pre-db-backup\", \"pre-db-restore\"]",
            mode,
            limits,
        );
        let mark = w.mark_runs_of("sqlite3");
        let r = w.run(&["dbbackup"]);
        assert_eq!(r.code, 1, "{mode}: {}", r.stderr);
        assert_mentions(&r.stderr, &["hostile.wasm", "pre-db-backup", cause]);
        common::assert_lacks(&r.stderr, &["vetoed", "veto"]);
        assert!(!mark.exists(), "{mode}: the dump ran");
        assert_eq!(w.names(None).len(), 2);
        let r = w.run(&["dbrestore", "--noinput"]);
        assert_eq!(r.code, 1, "{mode}: {}", r.stderr);
        assert_mentions(&r.stderr, &["hostile.wasm", "pre-db-restore", cause]);
        common::assert_lacks(&r.stderr, &["vetoed", "veto"]);
        assert!(!mark.exists(), "{mode}: the restore ran");
    }
}

/// Outside review of issue 8, item 5: what a failure says is true. A guest's
/// exit(3) is not reported as exit(1) (WASI 0.2 carries only success or
/// failure); an answer beyond what the runtime copies out of a guest in one
/// call is not reported as larger than an output_kib it is not larger than.
#[test]
fn exit_codes_and_oversized_answers_are_reported_truthfully() {
    let w = world();
    let input = role_input(&w, "naming", r#""mode":"exit3""#, "", NOW);
    let args = policy_test_args("naming", &input);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = w.run(&args);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_mentions(
        &r.stderr,
        &["hostile.wasm", "called exit with a failure status"],
    );
    common::assert_lacks(&r.stderr, &["exit(1)"]);

    // 20 reasons of 8 MiB: 160 MiB, under an output_kib of 1 GiB.
    let backups: Vec<String> = (0..20)
        .map(|i| format!(r#"{{"name":"b{i}","created":"2024-01-01T00:00:{i:02}Z"}}"#))
        .collect();
    let input = w.path("huge.json");
    std::fs::write(
        &input,
        format!(
            r#"{{"config":{{"mode":"huge-reason"}},"limits":{{"output_kib":1048576,"memory_mib":512,"deadline_ms":60000}},"backups":[{}]}}"#,
            backups.join(",")
        ),
    )
    .unwrap();
    let args = policy_test_args("retention", &input);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = w.run(&args);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_mentions(
        &r.stderr,
        &["its answer is larger than the runtime can take from a guest in one call"],
    );
    common::assert_lacks(&r.stderr, &["1048576 KiB", "trapped", "hostcalls"]);
}
