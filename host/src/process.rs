//! Child processes: spawning with a readable error when the tool is missing,
//! keeping the tail of their stderr for error messages, and describing how
//! they ended.

use std::io::Read;
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;

use anyhow::Result;

use crate::exit;

/// Makes the child die with rcbackup: the kernel sends it SIGKILL when
/// rcbackup ends in any way, SIGKILL included (PR_SET_PDEATHSIG), so a
/// restore tool never goes on with a stream nobody checks, and a server
/// never outlives its run. The signal follows the *thread* that started
/// the child, so this binds only children started from the main thread
/// (whose end is the process's); from another thread it does nothing.
pub fn die_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: getpid and gettid cannot fail.
    let main_thread = unsafe { libc::getpid() == libc::gettid() };
    if !main_thread {
        return;
    }
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            // rcbackup died before the line above: do not outlive it.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
}

/// How much of a child's stderr is kept for the error message.
const STDERR_TAIL: usize = 4096;

/// A running child whose stderr is being collected.
pub struct Proc {
    pub tool: String,
    child: Child,
    stderr: Option<JoinHandle<String>>,
}

/// How a child ended.
#[derive(Debug)]
pub struct Ended {
    pub tool: String,
    pub status: ExitStatus,
    pub stderr_tail: String,
}

impl Ended {
    pub fn success(&self) -> bool {
        self.status.success()
    }

    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// "pg_dump exited with code 1: <last lines of stderr>"
    pub fn describe(&self) -> String {
        use std::os::unix::process::ExitStatusExt;
        let how = match (self.status.code(), self.status.signal()) {
            (Some(c), _) => format!("exited with code {c}"),
            (None, Some(s)) => format!("was killed by signal {s}"),
            _ => "ended abnormally".to_string(),
        };
        let tail = self.stderr_tail.trim();
        if tail.is_empty() {
            format!("{} {how}", self.tool)
        } else {
            format!("{} {how}: {tail}", self.tool)
        }
    }
}

impl Proc {
    /// Spawns `cmd`; stderr is captured, stdin/stdout as the caller set them
    /// (null when unset). argv is logged at debug level: it never holds a secret.
    pub fn spawn(tool: &str, cmd: &mut Command) -> Result<Proc> {
        cmd.stderr(Stdio::piped());
        without_config_secrets(cmd);
        // argv only: Command's Debug would print the environment, which
        // holds the database password.
        let argv: Vec<_> = std::iter::once(cmd.get_program())
            .chain(cmd.get_args())
            .collect();
        tracing::debug!(tool, ?argv, "spawning");
        if crate::interrupt::shielded() {
            // Its own process group: a terminal's Ctrl-C, sent to the whole
            // foreground group, does not reach it either.
            std::os::unix::process::CommandExt::process_group(cmd, 0);
        }
        let mut child = cmd.spawn().map_err(|e| {
            let program = cmd.get_program().to_string_lossy().into_owned();
            if e.kind() == std::io::ErrorKind::NotFound {
                exit::failed(format!(
                    "cannot run `{program}`: it is not installed or not on PATH. {}",
                    install_hint(tool)
                ))
            } else {
                exit::failed(format!("cannot run `{program}`: {e}"))
            }
        })?;
        crate::interrupt::track(child.id());
        let stderr = child.stderr.take().map(|mut err| {
            std::thread::spawn(move || {
                let mut tail: Vec<u8> = Vec::new();
                let mut buf = [0u8; 8192];
                while let Ok(n) = err.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    tail.extend_from_slice(&buf[..n]);
                    if tail.len() > 2 * STDERR_TAIL {
                        tail.drain(..tail.len() - STDERR_TAIL);
                    }
                }
                if tail.len() > STDERR_TAIL {
                    tail.drain(..tail.len() - STDERR_TAIL);
                }
                String::from_utf8_lossy(&tail).into_owned()
            })
        });
        Ok(Proc {
            tool: tool.to_string(),
            child,
            stderr,
        })
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    pub fn take_stdin(&mut self) -> ChildStdin {
        self.child.stdin.take().expect("stdin was piped")
    }

    pub fn take_stdout(&mut self) -> ChildStdout {
        self.child.stdout.take().expect("stdout was piped")
    }

    /// Kills the child; harmless if it has already ended.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
    }

    pub fn wait(mut self) -> Result<Ended> {
        let status = self
            .child
            .wait()
            .map_err(|e| exit::failed(format!("waiting for {}: {e}", self.tool)))?;
        crate::interrupt::untrack(self.child.id());
        let stderr_tail = self
            .stderr
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default();
        for line in stderr_tail.lines().filter(|l| !l.trim().is_empty()) {
            tracing::debug!(tool = %self.tool, "{line}");
        }
        Ok(Ended {
            tool: self.tool.clone(),
            status,
            stderr_tail,
        })
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // A Proc dropped without wait() belongs to a failed run: never leave
        // the child behind writing or uploading.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        crate::interrupt::untrack(self.child.id());
    }
}

/// Makes a pipe hold more than the default 64 KiB, so that the host's
/// relay does fewer, larger reads and writes.
pub fn widen_pipe<F: std::os::fd::AsRawFd>(fd: &F) {
    #[cfg(target_os = "linux")]
    unsafe {
        libc::fcntl(fd.as_raw_fd(), libc::F_SETPIPE_SZ, 1 << 20);
    }
}

/// Null stdin and stdout, the defaults for a child we only need to wait for.
pub fn quiet(cmd: &mut Command) -> &mut Command {
    cmd.stdin(Stdio::null()).stdout(Stdio::null())
}

/// What to install when `tool` is missing.
pub fn install_hint(tool: &str) -> &'static str {
    match tool {
        "rclone" => "Install rclone (apt-get install rclone) or set rclone_binary in the config.",
        "pg_dump" | "pg_restore" | "psql" => {
            "Install the PostgreSQL client tools (apt-get install postgresql-client)."
        }
        "mysqldump" | "mysql" | "mariadb-dump" | "mariadb" => {
            "Install the MariaDB/MySQL client tools (apt-get install mariadb-client)."
        }
        "sqlite3" => "Install the sqlite3 command-line shell (apt-get install sqlite3).",
        _ => "Install it or fix PATH.",
    }
}

/// Is `program` on PATH?
pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false)
}

/// The names of every variable the config names with `password_env` or
/// `url_env`, at the top level and in every tenant (noted when the config
/// loads, broken tenants' too).
static SECRET_VARS: std::sync::Mutex<std::collections::BTreeSet<String>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

/// Notes variables that hold a database's password or URL.
pub fn note_secret_vars(names: impl IntoIterator<Item = String>) {
    let mut set = SECRET_VARS.lock().unwrap_or_else(|e| e.into_inner());
    set.extend(names);
}

/// Every child rcbackup starts goes through here (in [`Proc::spawn`], the
/// rclone server's start, a tool's `--help`): its environment loses every
/// variable the config names with `password_env` or `url_env`, of any
/// database of any tenant. A database's own password reaches its dump or
/// restore tool only the way the engine passes it (PGPASSWORD,
/// MYSQL_PWD, ..., set on `cmd` explicitly, which stays); another tenant's
/// secret reaches no child at all.
pub fn without_config_secrets(cmd: &mut Command) {
    let set_here: std::collections::BTreeSet<std::ffi::OsString> = cmd
        .get_envs()
        .filter(|(_, v)| v.is_some())
        .map(|(k, _)| k.to_os_string())
        .collect();
    let names = SECRET_VARS.lock().unwrap_or_else(|e| e.into_inner());
    for name in names.iter() {
        if !set_here.contains(std::ffi::OsStr::new(name)) {
            cmd.env_remove(name);
        }
    }
}
