//! The harness of the end-to-end tests: a scratch folder, rclone remotes
//! defined through RCLONE_CONFIG_* variables, a real `rclone serve webdav`
//! on 127.0.0.1, database helpers for the real PostgreSQL and MariaDB
//! servers that scripts/setup.sh starts, and a runner for the built binary.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// The test role scripts/setup.sh creates on both servers.
pub const DB_USER: &str = "rcbackup";
pub const DB_PASSWORD: &str = "rcbackup-test-pw";
/// The variable the configs name in `password_env`.
pub const PASSWORD_VAR: &str = "RCBACKUP_TEST_DB_PASSWORD";

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_rcbackup")
}

/// A unique, valid database name for this test process.
pub fn unique_db_name(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "rcb_{prefix}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// Where backups go, and how rclone reaches it.
pub enum Remote {
    /// A `local` remote named `loc`: `remote = "loc:<store>"`.
    Local,
    /// `rclone serve webdav` of a local folder on 127.0.0.1.
    Webdav,
    /// A `crypt` remote over a local folder.
    Crypt,
}

/// One test's world: a scratch folder, the remote, extra environment.
pub struct World {
    pub dir: tempfile::TempDir,
    pub remote: String,
    /// The local folder that holds the remote's (possibly encrypted) files.
    pub store: PathBuf,
    pub env: Vec<(String, String)>,
    pub databases: String,
    pub settings: String,
    /// Folders put before PATH for the child (wrapper tools).
    pub path_prefix: Vec<PathBuf>,
    /// The webdav server of `Remote::Webdav`: set it to `None` to stop it.
    pub webdav: Option<Server>,
    /// See [`World::log_server_calls`].
    pub server_call_log: Option<PathBuf>,
}

/// A server the test started, killed when dropped.
pub struct Server {
    child: Child,
    pub port: u16,
}

impl Server {
    /// `rclone serve webdav` of `store` on 127.0.0.1:`port`, listening.
    pub fn webdav(store: &Path, port: u16) -> Server {
        let child = Command::new("rclone")
            .args(["serve", "webdav", "--addr"])
            .arg(format!("127.0.0.1:{port}"))
            .arg(store)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_for_port(port);
        Server { child, port }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for_port(port: u16) {
    let until = Instant::now() + Duration::from_secs(20);
    while Instant::now() < until {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("rclone serve webdav did not listen on 127.0.0.1:{port}");
}

pub fn obscure(secret: &str) -> String {
    let out = Command::new("rclone")
        .args(["obscure", secret])
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

impl World {
    pub fn new(remote: Remote) -> World {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        std::fs::create_dir_all(&store).unwrap();
        let mut env = vec![(PASSWORD_VAR.to_string(), DB_PASSWORD.to_string())];
        let mut webdav = None;
        let remote = match remote {
            Remote::Local => {
                env.push(("RCLONE_CONFIG_LOC_TYPE".into(), "local".into()));
                format!("loc:{}", store.display())
            }
            Remote::Webdav => {
                let port = free_port();
                webdav = Some(Server::webdav(&store, port));
                env.push(("RCLONE_CONFIG_DAV_TYPE".into(), "webdav".into()));
                env.push((
                    "RCLONE_CONFIG_DAV_URL".into(),
                    format!("http://127.0.0.1:{port}"),
                ));
                env.push(("RCLONE_CONFIG_DAV_VENDOR".into(), "other".into()));
                "dav:".to_string()
            }
            Remote::Crypt => {
                env.push(("RCLONE_CONFIG_SECRET_TYPE".into(), "crypt".into()));
                env.push((
                    "RCLONE_CONFIG_SECRET_REMOTE".into(),
                    store.display().to_string(),
                ));
                env.push((
                    "RCLONE_CONFIG_SECRET_PASSWORD".into(),
                    obscure("crypt-pw-1"),
                ));
                env.push((
                    "RCLONE_CONFIG_SECRET_PASSWORD2".into(),
                    obscure("crypt-salt-2"),
                ));
                "secret:".to_string()
            }
        };
        World {
            dir,
            remote,
            store,
            env,
            databases: String::new(),
            settings: String::new(),
            path_prefix: Vec::new(),
            webdav,
            server_call_log: None,
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Adds a top-level setting line, e.g. `db_cleanup_keep = 2`.
    pub fn setting(&mut self, line: &str) -> &mut Self {
        self.settings.push_str(line);
        self.settings.push('\n');
        self
    }

    /// A new SQLite file `<alias>.sqlite3` seeded with `rows` items, set up
    /// as database `alias`.
    pub fn seeded_sqlite(&mut self, alias: &str, rows: u32) -> PathBuf {
        let file = self.path(&format!("{alias}.sqlite3"));
        sqlite(&file, &seed_sql(rows));
        self.sqlite(alias, &file);
        file
    }

    pub fn sqlite(&mut self, alias: &str, file: &Path) -> &mut Self {
        self.databases.push_str(&format!(
            "[databases.{alias}]\nengine = \"sqlite\"\nname = \"{}\"\n",
            file.display()
        ));
        self
    }

    pub fn postgres(&mut self, alias: &str, name: &str) -> &mut Self {
        self.databases.push_str(&format!(
            "[databases.{alias}]\nengine = \"postgresql\"\nname = \"{name}\"\nhost = \"127.0.0.1\"\nuser = \"{DB_USER}\"\npassword_env = \"{PASSWORD_VAR}\"\n"
        ));
        self
    }

    pub fn mariadb(&mut self, alias: &str, name: &str) -> &mut Self {
        self.databases.push_str(&format!(
            "[databases.{alias}]\nengine = \"mariadb\"\nname = \"{name}\"\nhost = \"127.0.0.1\"\nport = 3306\nuser = \"{DB_USER}\"\npassword_env = \"{PASSWORD_VAR}\"\n"
        ));
        self
    }

    pub fn config_path(&self) -> PathBuf {
        self.path("rcbackup.toml")
    }

    fn write_config(&self) {
        let text = format!(
            "remote = \"{}\"\n{}\n{}",
            self.remote, self.settings, self.databases
        );
        // Unchanged: leave it, a running rcbackup may be reading it.
        // Changed: replace it whole (write + rename), never truncate it.
        if std::fs::read_to_string(self.config_path()).ok().as_deref() != Some(text.as_str()) {
            let tmp = self.path("rcbackup.toml.new");
            std::fs::write(&tmp, text).unwrap();
            std::fs::rename(&tmp, self.config_path()).unwrap();
        }
    }

    /// The command for `rcbackup ARGS` in this world, not yet run.
    pub fn command(&self, args: &[&str]) -> Command {
        self.write_config();
        let mut cmd = Command::new(bin());
        cmd.args(args)
            .current_dir(self.dir.path())
            .env("RCBACKUP_CONFIG", self.config_path())
            .env_remove("RCBACKUP_LOG")
            .stdin(Stdio::null());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        if !self.path_prefix.is_empty() {
            let mut paths = self.path_prefix.clone();
            paths.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap()));
            cmd.env("PATH", std::env::join_paths(paths).unwrap());
        }
        cmd
    }

    /// Sets `key` in the environment rcbackup runs with, replacing an
    /// earlier value.
    pub fn set_env(&mut self, key: &str, value: String) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.into(), value));
    }

    /// `rcbackup ARGS` on a pseudo-terminal (util-linux `script`), with the
    /// world's environment; stdout carries what the terminal showed.
    pub fn on_terminal_command(&self, args: &str) -> Command {
        let cmd = self.command(&[]);
        let mut script = Command::new("script");
        script
            .args(["-q", "-e", "-c"])
            .arg(format!("'{}' {args}", cmd.get_program().to_string_lossy()))
            .arg("/dev/null")
            .current_dir(self.dir.path());
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => script.env(k, v),
                None => script.env_remove(k),
            };
        }
        script
    }

    /// `rcbackup ARGS` on a pseudo-terminal, typing `answer` to it.
    pub fn run_on_terminal(&self, args: &str, answer: &str) -> Run {
        Run::from(run_with_input(self.on_terminal_command(args), answer))
    }

    /// Starts `rcbackup ARGS` with stdout and stderr piped, not waiting.
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    pub fn run(&self, args: &[&str]) -> Run {
        let out = self.command(args).output().unwrap();
        let run = Run::from(out);
        if let Some(log) = &self.server_call_log {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .unwrap();
            for line in run.stderr.lines() {
                if let Some((_, call)) = line.split_once("rclone call: ") {
                    writeln!(f, "{call}").unwrap();
                }
            }
        }
        run
    }

    /// With one rclone server per run, appends each call a run made to it
    /// (`cat PATH`, `rcat PATH`, ..., from its -v log) to `log`, one a line,
    /// for every later [`World::run`]. Nothing in per-call mode, where a
    /// wrapper sees each rclone process.
    pub fn log_server_calls(&mut self, log: &Path) {
        if rclone_server_mode() {
            self.set_env("RCBACKUP_LOG", "rcbackup::rclone=debug".into());
            self.server_call_log = Some(log.to_path_buf());
        }
    }

    /// Runs and insists on exit code 0.
    pub fn ok(&self, args: &[&str]) -> Run {
        let r = self.run(args);
        assert_eq!(r.code, 0, "rcbackup {args:?} failed:\n{}", r.stderr);
        r
    }

    /// `listbackups --json` as values.
    pub fn list(&self, alias: Option<&str>) -> Vec<serde_json::Value> {
        let mut args = vec!["listbackups", "--json"];
        if let Some(a) = alias {
            args.extend(["-d", a]);
        }
        let r = self.ok(&args);
        serde_json::from_str(&r.stdout)
            .unwrap_or_else(|e| panic!("listbackups --json gave {e}: {}", r.stdout))
    }

    /// The names of the complete (status `ok`) backups, newest first.
    pub fn names(&self, alias: Option<&str>) -> Vec<String> {
        self.list(alias)
            .iter()
            .filter(|b| b["status"] == "ok")
            .map(|b| b["name"].as_str().unwrap().to_string())
            .collect()
    }

    /// Wraps `tool` so that each run leaves a mark first; the returned
    /// path exists once the tool has been started (proof a dump ran).
    pub fn mark_runs_of(&mut self, tool: &str) -> PathBuf {
        let mark = self.path(&format!("{tool}-ran"));
        self.wrap_tool(
            tool,
            &format!("touch '{}'\nexec \"$REAL\" \"$@\"", mark.display()),
        );
        mark
    }

    /// Writes an executable wrapper script named `tool` in a folder put
    /// before PATH; `body` is bash, `$REAL` is the real tool's path.
    pub fn wrap_tool(&mut self, tool: &str, body: &str) {
        let real = which(tool);
        let dir = self.path("wrappers");
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join(tool);
        std::fs::write(
            &file,
            format!("#!/usr/bin/env bash\nREAL={}\n{body}\n", real.display()),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).unwrap();
        if !self.path_prefix.contains(&dir) {
            self.path_prefix.insert(0, dir);
        }
    }

    /// `rclone ARGS` with this world's remotes, e.g. to read a stored
    /// backup back through the remote (decrypting on a crypt remote).
    pub fn rclone(&self, args: &[&str]) -> Vec<u8> {
        let mut cmd = Command::new("rclone");
        cmd.args(args).stdin(Stdio::null());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "rclone {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// The full rclone path of `rel` below the configured remote.
    pub fn remote_path(&self, rel: &str) -> String {
        if self.remote.ends_with(':') || self.remote.ends_with('/') {
            format!("{}{rel}", self.remote)
        } else {
            format!("{}/{rel}", self.remote)
        }
    }

    /// Files below the store (the local folder behind the remote).
    pub fn stored_files(&self) -> Vec<PathBuf> {
        fn walk(p: &Path, out: &mut Vec<PathBuf>) {
            for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
                let path = e.path();
                if path.is_dir() {
                    walk(&path, out);
                } else {
                    out.push(path);
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.store, &mut out);
        out.sort();
        out
    }
}

/// Every live descendant of `pid` (children, grandchildren, ...), read
/// from /proc.
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut parent_of: Vec<(u32, u32)> = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        let Some(after) = stat.rsplit_once(')').map(|(_, a)| a) else {
            continue;
        };
        if let Some(ppid) = after.split_whitespace().nth(1).and_then(|x| x.parse().ok()) {
            parent_of.push((p, ppid));
        }
    }
    let mut out: Vec<u32> = Vec::new();
    let mut frontier = vec![pid];
    while let Some(q) = frontier.pop() {
        for &(p, pp) in &parent_of {
            if pp == q && !out.contains(&p) {
                out.push(p);
                frontier.push(p);
            }
        }
    }
    out
}

/// argv of a live process, NULs as spaces ("" once it is gone).
pub fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

/// Is `pid` running (not gone, not a zombie waiting to be reaped)?
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, a)| a.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// A snapshot of processes (pid and argv), e.g. a command's descendants.
pub fn snapshot(pids: &[u32]) -> Vec<(u32, String)> {
    pids.iter().map(|&p| (p, cmdline(p))).collect()
}

/// SIGKILLs those of `procs` that still run the same argv (so that a pid
/// reused since the snapshot is left alone).
pub fn kill_leftovers(procs: &[(u32, String)]) {
    for (pid, argv) in procs {
        if !argv.is_empty() && cmdline(*pid) == *argv {
            sigkill(*pid);
        }
    }
}

/// Sends SIGKILL to one process by id.
pub fn sigkill(pid: u32) {
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGKILL);
    }
}

/// Waits until `cond` holds, panicking with `what` after `secs` seconds.
pub fn wait_until(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Whether runs in this test run reach rclone through one server per run
/// (the default) or one process per call: `RCBACKUP_RCLONE_MODE`, which
/// scripts/test.sh sets for its second pass and every run inherits.
pub fn rclone_server_mode() -> bool {
    std::env::var("RCBACKUP_RCLONE_MODE").as_deref() != Ok("per-call")
}

/// The rclone process that carries a transfer whose per-call verb is
/// `verb` (`rcat` for an upload, `cat` for a download): the run's server
/// (`rclone rcd`) in server mode.
pub fn rclone_carrier(verb: &'static str) -> &'static str {
    if rclone_server_mode() {
        "rcd"
    } else {
        verb
    }
}

/// What rcbackup names when the rclone process carrying a transfer was
/// SIGKILLed.
pub fn rclone_killed() -> &'static str {
    if rclone_server_mode() {
        "rclone server of this run (rclone rcd, pid"
    } else {
        "rclone was killed by signal 9"
    }
}

pub fn which(tool: &str) -> PathBuf {
    std::env::split_paths(&std::env::var_os("PATH").unwrap())
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{tool} is not installed; run scripts/setup.sh"))
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Flips one byte in the middle of a file, keeping its size.
pub fn flip_byte(file: &Path) {
    let mut b = std::fs::read(file).unwrap();
    let i = b.len() / 2;
    b[i] ^= 0x55;
    std::fs::write(file, b).unwrap();
}

/// Runs `cmd` with `input` on its stdin, collecting its output.
pub fn run_with_input(mut cmd: Command, input: &str) -> Output {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

// ---- databases -----------------------------------------------------------

/// Runs a database client with `sql` on its stdin (a seed can be larger
/// than an argument may be).
fn run_client(cmd: Command, sql: &str) -> String {
    let what = format!("{:?} {}", cmd.get_program(), &sql[..sql.len().min(80)]);
    let out = run_with_input(cmd, sql);
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub fn sqlite(file: &Path, sql: &str) -> String {
    let mut cmd = Command::new("sqlite3");
    cmd.arg("-bail").arg(file);
    run_client(cmd, sql)
}

pub fn psql(db: &str, sql: &str) -> String {
    let mut cmd = Command::new("psql");
    cmd.args([
        "-X",
        "-q",
        "-t",
        "-A",
        "-v",
        "ON_ERROR_STOP=1",
        "-h",
        "127.0.0.1",
        "-U",
        DB_USER,
        "-d",
        db,
    ])
    .env("PGPASSWORD", DB_PASSWORD);
    run_client(cmd, sql)
}

pub fn mariadb(db: Option<&str>, sql: &str) -> String {
    let mut cmd = Command::new("mariadb");
    cmd.args(["-h", "127.0.0.1", "-u", DB_USER, "-N", "-B"])
        .env("MYSQL_PWD", DB_PASSWORD);
    if let Some(d) = db {
        cmd.arg(d);
    }
    run_client(cmd, sql)
}

/// A PostgreSQL database dropped when the guard goes.
pub struct PgDb(pub String);

impl PgDb {
    pub fn create(prefix: &str) -> PgDb {
        let name = unique_db_name(prefix);
        psql("postgres", &format!("DROP DATABASE IF EXISTS {name}"));
        psql("postgres", &format!("CREATE DATABASE {name}"));
        PgDb(name)
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([
                "-X",
                "-q",
                "-h",
                "127.0.0.1",
                "-U",
                DB_USER,
                "-d",
                "postgres",
                "-c",
            ])
            // Quoted: a test may name a database `dbname=...`.
            .arg(format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.0.replace('"', "\"\"")
            ))
            .env("PGPASSWORD", DB_PASSWORD)
            .output();
    }
}

/// A MariaDB database dropped when the guard goes.
pub struct MyDb(pub String);

impl MyDb {
    pub fn create(prefix: &str) -> MyDb {
        let name = unique_db_name(prefix);
        mariadb(
            None,
            &format!("DROP DATABASE IF EXISTS {name}; CREATE DATABASE {name}"),
        );
        MyDb(name)
    }
}

impl Drop for MyDb {
    fn drop(&mut self) {
        let _ = Command::new("mariadb")
            .args(["-h", "127.0.0.1", "-u", DB_USER, "-e"])
            .arg(format!("DROP DATABASE IF EXISTS {}", self.0))
            .env("MYSQL_PWD", DB_PASSWORD)
            .output();
    }
}

/// The same small schema and rows for every engine: `rows` rows in `items`
/// and a second table, so that a restore must bring back more than one.
pub fn seed_sql(rows: u32) -> String {
    let mut s = String::from(
        "CREATE TABLE items (id INTEGER PRIMARY KEY, label VARCHAR(64) NOT NULL, qty INTEGER NOT NULL);\n\
         CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);\n",
    );
    for chunk in (1..=rows).collect::<Vec<_>>().chunks(500) {
        let values: Vec<String> = chunk
            .iter()
            .map(|i| format!("({i}, 'item-{i}-{}', {})", i * 7919 % 1000, i % 97))
            .collect();
        s.push_str(&format!("INSERT INTO items VALUES {};\n", values.join(",")));
    }
    s.push_str("INSERT INTO notes VALUES (1, 'first note'), (2, 'second ''quoted'' note');\n");
    s
}

/// Row count and SHA-256 of the ordered contents of both tables, as the
/// engine's client prints them.
pub const CONTENT_QUERY: &str =
    "SELECT id, label, qty FROM items ORDER BY id; SELECT id, body FROM notes ORDER BY id;";

pub fn fingerprint(rows_text: &str) -> (usize, String) {
    (rows_text.lines().count(), sha256_hex(rows_text.as_bytes()))
}

/// Adds a table `big` of `rows` rows of 64 hex characters (hard to
/// compress), so that a dump runs long enough, and is large enough, to
/// outgrow rclone's 100 KiB streaming cutoff and the pipes' buffers.
pub fn pg_big_table(db: &str, rows: u32) {
    psql(
        db,
        &format!(
            "CREATE TABLE big (id INTEGER PRIMARY KEY, v TEXT NOT NULL);
             INSERT INTO big SELECT g, md5(g::text) || md5((g * 7)::text) FROM generate_series(1, {rows}) g;
             CREATE TABLE big2 AS SELECT * FROM big;"
        ),
    );
}

/// The MariaDB twin of [`pg_big_table`] (the SEQUENCE engine's seq_1_to_N).
pub fn mariadb_big_table(db: &str, rows: u32) {
    mariadb(
        Some(db),
        &format!(
            "CREATE TABLE big (id INTEGER PRIMARY KEY, v TEXT NOT NULL);
             INSERT INTO big SELECT seq, concat(md5(seq), md5(seq * 7)) FROM seq_1_to_{rows};
             CREATE TABLE big2 AS SELECT * FROM big;"
        ),
    );
}

/// Asserts that `text` (a command's stderr, say) contains every needle.
#[track_caller]
pub fn assert_mentions(text: &str, needles: &[&str]) {
    for n in needles {
        assert!(text.contains(n), "expected {n:?} in:\n{text}");
    }
}

/// Asserts that `text` contains none of the needles.
#[track_caller]
pub fn assert_lacks(text: &str, needles: &[&str]) {
    for n in needles {
        assert!(!text.contains(n), "did not expect {n:?} in:\n{text}");
    }
}

/// A run held at failpoints (host/src/failpoint.rs): the test decides when
/// it goes on, or delivers a fault while it waits.
pub struct Held {
    pub child: Child,
    pub dir: tempfile::TempDir,
}

impl World {
    /// Starts `rcbackup ARGS` to hold at each of `steps` (comma-separated).
    pub fn spawn_held(&self, args: &[&str], steps: &str) -> Held {
        let dir = tempfile::tempdir().unwrap();
        let child = self
            .command(args)
            .env("RCBACKUP_TEST_PAUSE", steps)
            .env("RCBACKUP_TEST_PAUSE_DIR", dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Held { child, dir }
    }
}

impl Held {
    /// Waits until the run holds at `step`.
    pub fn wait_at(&mut self, step: &str) {
        let marker = self
            .dir
            .path()
            .join(format!("{step}.{}.reached", self.child.id()));
        let until = Instant::now() + Duration::from_secs(60);
        while !marker.exists() {
            if let Ok(Some(status)) = self.child.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = self.child.stderr.take() {
                    use std::io::Read;
                    let _ = e.read_to_string(&mut err);
                }
                panic!("rcbackup ended ({status}) before reaching `{step}`: {err}");
            }
            assert!(Instant::now() < until, "rcbackup never reached `{step}`");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Lets the run go on past `step`.
    pub fn release(&self, step: &str) {
        std::fs::write(
            self.dir
                .path()
                .join(format!("{step}.{}.go", self.child.id())),
            b"",
        )
        .unwrap();
    }

    pub fn signal(&self, sig: i32) {
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, sig);
        }
    }

    /// Waits for the run to end.
    pub fn finish(self) -> Run {
        Run::from(self.child.wait_with_output().unwrap())
    }
}

/// Sets a file's modification time to 2001 (older than any
/// `abandoned_after_hours`).
pub fn age(file: &Path) {
    let long_ago = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    let f = std::fs::File::options().write(true).open(file).unwrap();
    f.set_modified(long_ago).unwrap();
}

// ---- the fault matrix ----------------------------------------------------
// Shared by tests/fault_matrix_backup.rs and tests/fault_matrix_restore.rs.

use std::collections::{BTreeMap, BTreeSet};

/// Every file below the store, as paths relative to it.
pub fn store_files(world: &World) -> BTreeSet<String> {
    world
        .stored_files()
        .into_iter()
        .map(|p| p.strip_prefix(&world.store).unwrap().display().to_string())
        .collect()
}

/// Makes everything on the store look abandoned: claims and partial uploads
/// get a run id of 2001 (their names carry the run's start time), and every
/// file's modification time is set to 2001 (see `age`).
pub fn abandon_everything(world: &World) {
    for rel in store_files(world) {
        let mut p = world.store.join(&rel);
        let parent = p.parent().unwrap().file_name().unwrap().to_owned();
        if parent == "claims" || parent == "partial" {
            let name = p.file_name().unwrap().to_str().unwrap().to_string();
            if let Some((stem, run)) = name.rsplit_once('.') {
                if let Some((_, pid)) = run.split_once('-') {
                    let old = p.with_file_name(format!("{stem}.1000000000-{pid}"));
                    std::fs::rename(&p, &old).unwrap();
                    p = old;
                }
            }
        }
        age(&p);
    }
}

/// A small tmpfs mounted over a folder (the tests run as root), unmounted
/// when dropped: a remote that can fill up.
pub struct SmallDisk {
    pub dir: PathBuf,
}

impl SmallDisk {
    pub fn mount(dir: &Path, size: &str) -> SmallDisk {
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mount tmpfs on {}: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        SmallDisk {
            dir: dir.to_path_buf(),
        }
    }

    /// Fills the disk to the last byte with one file, which it returns.
    pub fn fill(&self) -> PathBuf {
        use std::io::Write;
        let file = self.dir.join("filler.bin");
        let mut f = std::fs::File::create(&file).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        loop {
            match f.write(&chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        // Fill the last partial chunk too.
        while let Ok(n) = f.write(&chunk[..1]) {
            if n == 0 {
                break;
            }
        }
        file
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).output();
    }
}

impl World {
    /// Starts `rclone serve webdav` again on the port of `Remote::Webdav`
    /// (after a test stopped it by dropping `webdav`).
    pub fn restart_webdav(&mut self) {
        let url = self
            .env
            .iter()
            .find(|(k, _)| k == "RCLONE_CONFIG_DAV_URL")
            .map(|(_, v)| v.clone())
            .expect("a webdav world");
        let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
        self.webdav = None;
        self.webdav = Some(Server::webdav(&self.store, port));
    }
}

/// The engines the matrix walks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
    Mariadb,
}

impl Engine {
    /// The dump tool as it appears in argv.
    pub fn dump_tool(self) -> &'static str {
        match self {
            Engine::Sqlite => "sqlite3",
            Engine::Postgres => "pg_dump",
            Engine::Mariadb => "mariadb-dump",
        }
    }

    /// The restore tool as it appears in argv.
    pub fn restore_tool(self) -> &'static str {
        match self {
            Engine::Sqlite => "sqlite3",
            Engine::Postgres => "pg_restore",
            Engine::Mariadb => "mariadb",
        }
    }
}

enum DbHandle {
    Sqlite(PathBuf),
    Pg(PgDb),
    My(MyDb),
}

/// A scratch database of one engine, configured as alias `default`, with
/// the seed rows of [`seed_sql`] and a `big` table that makes a dump large
/// enough to be mid-stream while a run is held.
pub struct TestDb {
    pub engine: Engine,
    handle: DbHandle,
}

impl TestDb {
    pub fn create(world: &mut World, engine: Engine, rows: u32, big_rows: u32) -> TestDb {
        let handle = match engine {
            Engine::Sqlite => {
                let file = world.path("default.sqlite3");
                sqlite(
                    &file,
                    &format!(
                        "{}\nCREATE TABLE big (id INTEGER PRIMARY KEY, v TEXT NOT NULL);\n\
                         WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {big_rows})\n\
                         INSERT INTO big SELECT x, hex(randomblob(32)) FROM c;\n",
                        seed_sql(rows)
                    ),
                );
                world.sqlite("default", &file);
                DbHandle::Sqlite(file)
            }
            Engine::Postgres => {
                let db = PgDb::create("matrix");
                psql(&db.0, &seed_sql(rows));
                if big_rows > 0 {
                    pg_big_table(&db.0, big_rows);
                }
                world.postgres("default", &db.0);
                DbHandle::Pg(db)
            }
            Engine::Mariadb => {
                let db = MyDb::create("matrix");
                mariadb(Some(&db.0), &seed_sql(rows));
                if big_rows > 0 {
                    mariadb_big_table(&db.0, big_rows);
                }
                world.mariadb("default", &db.0);
                DbHandle::My(db)
            }
        };
        TestDb { engine, handle }
    }

    /// Runs SQL with the engine's client and returns what it printed.
    pub fn exec(&self, sql: &str) -> String {
        match &self.handle {
            DbHandle::Sqlite(f) => sqlite(f, sql),
            DbHandle::Pg(d) => psql(&d.0, sql),
            DbHandle::My(d) => mariadb(Some(&d.0), sql),
        }
    }

    /// Row count and SHA-256 of the seeded tables' contents.
    pub fn fingerprint(&self) -> (usize, String) {
        fingerprint(&self.exec(CONTENT_QUERY))
    }
}

/// What a fault case knows when it ends, for [`check_invariants`].
#[derive(Default, Debug)]
pub struct Expected {
    /// Backups that existed before the fault, by name, with the content
    /// each was made from.
    pub before: BTreeMap<String, (usize, String)>,
    /// The content any backup made during the case was made from.
    pub new_content: Option<(usize, String)>,
    /// Backups the case's run may have deleted (retention).
    pub may_go: BTreeSet<String>,
    /// A backup made during the case was reported made (exit 0), or was
    /// listed while the run was held after publishing.
    pub new_reported: bool,
    /// Backups whose object or record the test damaged or deleted.
    pub touched: BTreeSet<String>,
    /// The test damaged the object or record of the backup being made.
    pub touched_new: bool,
    /// Files (relative to the store) the test put there itself.
    pub test_files: BTreeSet<String>,
}

/// The promises of the README after any fault, checked on `world` whose
/// backups are of `db`:
/// - `listbackups --json` works; every backup that existed before (and
///   was neither deleted by retention nor damaged by the test) is `ok`, and
///   so is a new backup that was reported made;
/// - every `ok` backup either verifies and restores to exactly the content
///   it was made from, or (only if the test damaged it) fails `verify` with
///   exit 4 and its restore is refused leaving the database unchanged;
/// - every name that is not `ok` fails `verify` and `dbrestore -i`, leaving
///   the database unchanged; `dbrestore` of the newest either restores the
///   newest `ok` backup or fails leaving the database unchanged;
/// - once everything is aged, `dbbackup --clean` succeeds and leaves no
///   leftover, and no file on the store that is not a listed backup, its
///   record, or a file the test put there.
#[track_caller]
pub fn check_invariants(world: &mut World, db: &TestDb, expected: &Expected) {
    let list = world.list(None);
    let status_of = |name: &str| -> Vec<String> {
        list.iter()
            .filter(|e| e["name"] == name)
            .map(|e| e["status"].as_str().unwrap().to_string())
            .collect()
    };
    let ok: Vec<String> = list
        .iter()
        .filter(|e| e["status"] == "ok")
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect();
    let new_ok: Vec<&String> = ok
        .iter()
        .filter(|n| !expected.before.contains_key(*n))
        .collect();
    for name in expected.before.keys() {
        if !expected.may_go.contains(name) && !expected.touched.contains(name) {
            assert!(
                ok.contains(name),
                "backup {name} was lost: it is {:?} in {list:#?}",
                status_of(name)
            );
        }
    }
    assert!(
        new_ok.len() <= 1,
        "one run made several backups: {new_ok:?}"
    );
    if expected.new_reported && !expected.touched_new {
        assert_eq!(
            new_ok.len(),
            1,
            "a backup reported made is not listed: {list:#?}"
        );
    }
    let content_of = |name: &str| -> (usize, String) {
        expected
            .before
            .get(name)
            .cloned()
            .or_else(|| expected.new_content.clone())
            .unwrap_or_else(|| panic!("no content known for {name}"))
    };
    let touched = |name: &str| {
        expected.touched.contains(name)
            || (expected.touched_new && !expected.before.contains_key(name))
    };

    // Every ok backup: verifies and restores exactly, or (damaged by the
    // test) is refused by both, leaving the database as it was.
    for name in &ok {
        let v = world.run(&["verify", "-i", name]);
        assert_lacks(&v.stderr, &["panicked"]);
        let before = db.fingerprint();
        let r = world.run(&["dbrestore", "--noinput", "-i", name]);
        if v.code == 0 {
            assert_eq!(
                r.code, 0,
                "{name} verified but does not restore: {}",
                r.stderr
            );
            assert_eq!(
                db.fingerprint(),
                content_of(name),
                "{name} verified and restored, but not to the content it was made from"
            );
        } else {
            assert_eq!(v.code, 4, "verify -i {name}: {}", v.stderr);
            assert!(
                touched(name),
                "{name} is listed ok, the test did not damage it, yet verify fails: {}",
                v.stderr
            );
            assert_eq!(r.code, 4, "restore of damaged {name}: {}", r.stderr);
            assert_eq!(
                db.fingerprint(),
                before,
                "a refused restore of {name} changed the database"
            );
        }
    }
    // Every other name: refused, nothing changed.
    let others: BTreeSet<String> = list
        .iter()
        .filter(|e| e["status"] != "ok")
        .map(|e| e["name"].as_str().unwrap().to_string())
        .filter(|n| !ok.contains(n))
        .collect();
    for name in &others {
        let v = world.run(&["verify", "-i", name]);
        assert!(
            v.code == 1 || v.code == 4,
            "verify -i {name} ({:?}) gave {}: {}",
            status_of(name),
            v.code,
            v.stderr
        );
        let before = db.fingerprint();
        let r = world.run(&["dbrestore", "--noinput", "-i", name]);
        assert!(
            r.code == 1 || r.code == 4,
            "dbrestore -i {name} ({:?}) gave {}: {}",
            status_of(name),
            r.code,
            r.stderr
        );
        assert_eq!(
            db.fingerprint(),
            before,
            "a refused restore of {name} changed the database"
        );
    }
    // The newest: the newest ok backup, or a refusal that changes nothing.
    let before = db.fingerprint();
    let r = world.run(&["dbrestore", "--noinput"]);
    assert_lacks(&r.stderr, &["panicked"]);
    // listbackups lists newest first at full precision; `created` is shown
    // to the second, so two backups of one second cannot be told apart by it.
    let newest_ok = list
        .iter()
        .find(|e| e["status"] == "ok")
        .map(|e| e["name"].as_str().unwrap().to_string());
    if r.code == 0 {
        let newest = newest_ok.expect("restored with no ok backup");
        assert_eq!(
            db.fingerprint(),
            content_of(&newest),
            "dbrestore restored something other than {newest}"
        );
    } else {
        assert!(
            r.code == 1 || r.code == 4,
            "dbrestore gave {}: {}",
            r.code,
            r.stderr
        );
        assert_eq!(
            db.fingerprint(),
            before,
            "a refused dbrestore changed the database"
        );
        let any_damaged = list.iter().any(|e| e["status"] == "damaged");
        assert!(
            any_damaged || newest_ok.as_deref().is_none_or(touched),
            "dbrestore refused with intact backups: {}\n{list:#?}",
            r.stderr
        );
    }

    // Cleanup of everything abandoned leaves only backups and the test's files.
    abandon_everything(world);
    if world.webdav.is_some() {
        // The server caches listings: let it see the aged files.
        world.restart_webdav();
    }
    world.settings = world
        .settings
        .lines()
        .filter(|l| !l.starts_with("db_cleanup_keep"))
        .map(|l| format!("{l}\n"))
        .collect();
    world.setting("db_cleanup_keep = 50");
    let c = world.run(&["dbbackup", "--clean"]);
    assert_eq!(c.code, 0, "dbbackup --clean after the fault: {}", c.stderr);
    let after = world.list(None);
    let leftovers: Vec<_> = after.iter().filter(|e| e["status"] == "leftover").collect();
    assert!(
        leftovers.is_empty(),
        "--clean left leftovers: {leftovers:#?}"
    );
    let ok_after = after.iter().filter(|e| e["status"] == "ok").count();
    assert_eq!(ok_after, ok.len() + 1, "--clean lost a backup: {after:#?}");
    let mut allowed = expected.test_files.clone();
    for e in &after {
        let name = e["name"].as_str().unwrap();
        match e["status"].as_str().unwrap() {
            "ok" | "damaged" => {}
            "foreign" => assert!(
                touched(name)
                    || expected
                        .test_files
                        .iter()
                        .any(|f| f.ends_with(&format!("/{name}"))),
                "{name} is foreign, but the test put no such file: {after:#?}"
            ),
            s => panic!("unexpected status {s} of {name}"),
        }
        allowed.insert(format!("db/{name}"));
        allowed.insert(format!("db/.rcbackup/records/{name}.json"));
    }
    let stray: Vec<String> = store_files(world)
        .into_iter()
        .filter(|f| !allowed.contains(f))
        .collect();
    assert!(
        stray.is_empty(),
        "files on the store that are no listed backup, record or test file: {stray:?}\n{after:#?}"
    );
}

/// How the test damages a stored file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Damage {
    /// One byte in the middle changed, size kept.
    Flip,
    /// Cut to half its size.
    Truncate,
    Delete,
    /// A copy under another name beside it.
    Duplicate,
}

/// One fault the matrix delivers while a run is held at a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    SigkillRcbackup,
    SigtermRcbackup,
    /// SIGKILL to the run's child whose argv starts with this tool.
    KillChild(&'static str),
    /// The local remote's disk (a tmpfs) filled to the last byte.
    RemoteFull,
    /// The `rclone serve webdav` behind the remote stopped.
    RemoteGone,
    /// The data object (or the upload in progress) damaged.
    Object(Damage),
    /// The integrity record damaged.
    Record(Damage),
}

/// Applies `damage` to `file`; returns the copy's path for `Duplicate`.
pub fn damage_file(file: &Path, damage: Damage, copy_name: &str) -> Option<PathBuf> {
    assert!(file.is_file(), "nothing to damage at {}", file.display());
    match damage {
        Damage::Flip => flip_byte(file),
        Damage::Truncate => {
            let len = std::fs::metadata(file).unwrap().len();
            std::fs::File::options()
                .write(true)
                .open(file)
                .unwrap()
                .set_len(len / 2)
                .unwrap();
        }
        Damage::Delete => std::fs::remove_file(file).unwrap(),
        Damage::Duplicate => {
            let copy = file.with_file_name(copy_name);
            std::fs::copy(file, &copy).unwrap();
            return Some(copy);
        }
    }
    None
}

/// The run's live child whose argv has `tool` as its program and contains
/// every word of `with`.
pub fn live_child(run_pid: u32, tool: &str, with: &[&str]) -> Option<u32> {
    descendants(run_pid).into_iter().find(|&p| {
        let argv = cmdline(p);
        // The program, or a script run by an interpreter (Debian's pg_dump
        // is a perl wrapper: `/usr/bin/perl /usr/bin/pg_dump ...`).
        let is_tool = |w: &str| w == tool || w.ends_with(&format!("/{tool}"));
        alive(p)
            && argv.split(' ').take(2).any(is_tool)
            && with.iter().all(|w| argv.split(' ').any(|a| a == *w))
    })
}

/// Runs fault-matrix cases, each on its own (`MATRIX_ONLY=text` keeps those
/// whose label contains it), and fails naming every case that failed.
pub fn run_cases(
    cases: Vec<(Engine, &'static str, Fault)>,
    run_case: fn(Engine, &'static str, Fault),
) {
    use std::panic::{catch_unwind, AssertUnwindSafe};
    let mut failed = Vec::new();
    let total = cases.len();
    for (engine, step, fault) in cases {
        let label = format!("{engine:?} at `{step}`: {fault:?}");
        if let Ok(only) = std::env::var("MATRIX_ONLY") {
            if !label.contains(&only) {
                continue;
            }
        }
        let started = Instant::now();
        if let Err(e) = catch_unwind(AssertUnwindSafe(|| run_case(engine, step, fault))) {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failed.push(format!("{label}\n    {msg}"));
        }
        eprintln!("case {label}: {:.1}s", started.elapsed().as_secs_f64());
    }
    assert!(
        failed.is_empty(),
        "{} of {total} cases failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
}

/// Delivers the faults aimed at processes: SIGKILL or SIGTERM to the held
/// run (which then must not be released), or SIGKILL to one of its children
/// (`KillChild("")` means `default_tool`; rclone is the one running
/// `rclone_verb`). Returns `None` for every other fault.
pub fn hit_process(
    held: &Held,
    fault: Fault,
    default_tool: &str,
    rclone_verb: &str,
    family: &[(u32, String)],
) -> Option<ProcessHit> {
    match fault {
        Fault::SigkillRcbackup => held.signal(libc::SIGKILL),
        Fault::SigtermRcbackup => held.signal(libc::SIGTERM),
        Fault::KillChild(tool) => {
            let tool = if tool.is_empty() { default_tool } else { tool };
            let with: &[&str] = if tool == "rclone" {
                &[rclone_verb]
            } else {
                &[]
            };
            let child = live_child(held.child.id(), tool, with).unwrap_or_else(|| {
                panic!("no live {tool} {with:?} under the held run: {family:?}")
            });
            sigkill(child);
            return Some(ProcessHit::ChildKilled(child));
        }
        _ => return None,
    }
    Some(ProcessHit::RunSignalled)
}

/// What [`hit_process`] did.
pub enum ProcessHit {
    RunSignalled,
    ChildKilled(u32),
}

impl TestDb {
    /// The database's name (the file's path for SQLite), for a client run
    /// by hand.
    pub fn target(&self) -> String {
        match &self.handle {
            DbHandle::Sqlite(f) => f.display().to_string(),
            DbHandle::Pg(d) => d.0.clone(),
            DbHandle::My(d) => d.0.clone(),
        }
    }
}
