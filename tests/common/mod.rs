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
        Run::from(out)
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
            .arg(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.0))
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
