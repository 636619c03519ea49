//! The one `rclone rcd` of a run: started when the config is loaded, asked
//! over HTTP on 127.0.0.1 with a user and password made for this run (given
//! to rclone in its environment, never on its command line), stopped when
//! the run ends.
//!
//! - It is in a process group of its own, so a Ctrl-C at the terminal
//!   reaches rcbackup (which then cleans up through it) and not the server.
//! - It dies with rcbackup: the kernel sends it SIGKILL when rcbackup ends
//!   in any way (PR_SET_PDEATHSIG), SIGKILL included; an orderly end stops
//!   it with SIGTERM.
//! - If it cannot start, or ends during the run, the run goes on with one
//!   rclone process per call; the operation it was serving fails with an
//!   error that says the server ended and how.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::Rclone;

/// How long rclone may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Lines of the server's log kept for error messages.
const LOG_TAIL_LINES: usize = 40;

pub struct Server {
    child: Mutex<Child>,
    pid: u32,
    state: Mutex<State>,
    /// `Basic ...` for the Authorization header.
    pub(super) auth: String,
    pub(super) agent: ureq::Agent,
    log_tail: Arc<Mutex<Vec<String>>>,
    /// Set once [`Server::stop`] has reaped it: its pid may be anyone's now.
    stopped: std::sync::atomic::AtomicBool,
}

enum State {
    /// Started; the address comes from its log.
    Starting(mpsc::Receiver<String>),
    Ready(String),
    /// Never started, or ended: the run uses one process per call.
    Gone,
}

/// Why a call to the server failed.
#[derive(Debug)]
pub enum CallError {
    /// rclone answered 404: the object or folder does not exist.
    NotFound,
    /// rclone answered with an error (its own words).
    Rclone(String),
    /// The call did not get an answer: the server ended, or the connection
    /// broke. The text says which.
    Transport(String),
    /// No byte of the answer came within the stall limit: the remote
    /// stopped answering (the words name it; see the `stall` module).
    Stalled(String),
}

impl Server {
    /// Starts `rclone rcd`; `None` (with the reason at -v) when it cannot
    /// be started at all. Does not wait for it to listen: the first call does.
    pub fn start(rc: &Rclone) -> Option<Arc<Server>> {
        let pass = crate::random::hex(24)?;
        let mut cmd = Command::new(&rc.binary);
        cmd.args([
            "rcd",
            "--rc-addr",
            "127.0.0.1:0",
            "--rc-serve",
            // A dump may stream for many hours: no server-side time limit
            // on one request (rclone's default is one hour).
            "--rc-server-read-timeout",
            "8760h",
            "--rc-server-write-timeout",
            "8760h",
        ]);
        if let Some(c) = &rc.config {
            cmd.arg("--config").arg(c);
        }
        cmd.args(&rc.flags);
        // Only our own rc settings: an RCLONE_RC_* variable of the user's
        // (no auth, another address, a web GUI) must not reach this server.
        super::without_rc_settings(&mut cmd);
        crate::process::without_config_secrets(&mut cmd);
        cmd.env("RCLONE_RC_USER", "rcbackup")
            .env("RCLONE_RC_PASS", &pass)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        // Started from the main thread (at config load), so it is bound.
        crate::process::die_with_parent(&mut cmd);
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(
                    "rclone: cannot start `{} rcd` ({e}); one rclone process per call",
                    rc.binary
                );
                return None;
            }
        };
        let pid = child.id();
        let (tx, rx) = mpsc::channel();
        let log_tail = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("stderr was piped");
        let tail = log_tail.clone();
        std::thread::spawn(move || read_log(stderr, tx, &tail));
        let agent = ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                // Loopback only: no proxy from the environment.
                .proxy(None)
                .max_idle_connections_per_host(8)
                // Upload chunks the size of the relay's reads (pipeline.rs).
                .output_buffer_size(256 * 1024)
                .build(),
        );
        Some(Arc::new(Server {
            child: Mutex::new(child),
            pid,
            state: Mutex::new(State::Starting(rx)),
            auth: format!("Basic {}", base64(format!("rcbackup:{pass}").as_bytes())),
            agent,
            log_tail,
            stopped: false.into(),
        }))
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The server's base URL (`http://127.0.0.1:PORT`), waiting for it to
    /// listen the first time; `None` when it never did or has ended.
    pub fn url(&self) -> Option<String> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let State::Starting(rx) = &*state {
            let started = Instant::now();
            match rx.recv_timeout(START_TIMEOUT) {
                Ok(url) => {
                    tracing::debug!(
                        pid = self.pid,
                        "rclone: one server for this run (rclone rcd on {url}, ready in {} ms)",
                        started.elapsed().as_millis()
                    );
                    *state = State::Ready(url);
                }
                Err(_) => {
                    match self.ended_how(Duration::from_millis(200)) {
                        // An rclone (or wrapper) without `rcd`: the fallback
                        // is the expected way, at -v.
                        Some(how) => tracing::debug!(
                            "rclone: `rclone rcd` did not start listening ({how}); one rclone process per call"
                        ),
                        // A server that hangs cost this run the wait: say so.
                        None => tracing::warn!(
                            "rclone: `rclone rcd` did not start listening (no answer in {} s); one rclone process per call",
                            START_TIMEOUT.as_secs()
                        ),
                    }
                    self.stop();
                    *state = State::Gone;
                }
            }
        }
        match &*state {
            State::Ready(url) => Some(url.clone()),
            _ => None,
        }
    }

    /// After a call got no answer: if the server has ended, says how (and
    /// the run goes on without it); `None` if it still runs.
    pub fn ended(&self) -> Option<String> {
        let how = self.ended_how(Duration::from_millis(500))?;
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if !matches!(*state, State::Gone) {
            tracing::warn!(
                "the rclone server of this run (rclone rcd, pid {}) ended: {how}; the rest of the run starts one rclone process per call",
                self.pid
            );
            *state = State::Gone;
        }
        Some(format!(
            "the rclone server of this run (rclone rcd, pid {}) ended: {how}",
            self.pid
        ))
    }

    /// Whether the server process has ended (without waiting).
    pub fn has_exited(&self) -> bool {
        self.peek_exit().is_some()
    }

    /// How the server process ended, if it has, without reaping it: until
    /// [`Server::stop`] reaps it, its pid (which is also its process
    /// group's id) cannot be taken by another process, so signalling the
    /// group never reaches a stranger.
    fn peek_exit(&self) -> Option<String> {
        let _child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: waitid(2) with WNOWAIT on our own child only reads its state.
        let info = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            let r = libc::waitid(
                libc::P_PID,
                self.pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            );
            if r != 0 || info.si_pid() == 0 {
                return None;
            }
            info
        };
        // SAFETY: filled in by waitid for an exited child.
        let status = unsafe { info.si_status() };
        Some(match info.si_code {
            libc::CLD_EXITED => format!("exited with code {status}"),
            _ => format!("killed by signal {status}"),
        })
    }

    /// How the process ended, waiting up to `patience` for it to be
    /// reapable (a socket closes a moment before its process is gone).
    fn ended_how(&self, patience: Duration) -> Option<String> {
        let until = Instant::now() + patience;
        loop {
            if let Some(how) = self.peek_exit() {
                let said = self.last_error();
                return Some(match said {
                    Some(line) => format!("{how}; its last error: {line}"),
                    None => how,
                });
            }
            if Instant::now() >= until {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The last ERROR line of the server's log, if any; `about` narrows it
    /// to lines naming that call (e.g. `operations/uploadfile`).
    pub fn last_error_about(&self, about: &str) -> Option<String> {
        let tail = self.log_tail.lock().unwrap_or_else(|e| e.into_inner());
        tail.iter()
            .rev()
            .find(|l| l.contains("ERROR") && l.contains(about))
            .map(|l| short_log_line(l))
    }

    /// [`Self::last_error_about`], waiting up to `within` for the line: the
    /// server may log an error only as it closes the failed answer, and its
    /// log is read on another thread.
    pub fn error_about_soon(&self, about: &str, within: Duration) -> Option<String> {
        let until = Instant::now() + within;
        loop {
            let found = self.last_error_about(about);
            if found.is_some() || Instant::now() >= until {
                return found;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn last_error(&self) -> Option<String> {
        self.last_error_about("")
    }

    /// SIGTERM, then SIGKILL if it has not ended within two seconds; to
    /// its whole process group, so that an `rclone_binary` wrapper script
    /// that runs rclone without `exec` leaves no rclone behind either.
    fn stop(&self) {
        use std::sync::atomic::Ordering;
        if self.stopped.swap(true, Ordering::SeqCst) {
            return;
        }
        let group = -(self.pid as libc::pid_t);
        // SAFETY: kill(2) on the process group made for the server: its
        // leader is our child, reaped only below, so the id is still ours.
        let signal_group = |sig| unsafe {
            libc::kill(group, sig);
        };
        if self.peek_exit().is_none() {
            signal_group(libc::SIGTERM);
            let until = Instant::now() + Duration::from_secs(2);
            while Instant::now() < until && self.peek_exit().is_none() {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        // Whatever of the group is left (a wrapper's rclone, or a server
        // that ignored SIGTERM); nothing when the group is empty.
        signal_group(libc::SIGKILL);
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        let _ = child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Reads the server's log: the address it serves on goes to `ready`, and
/// the last lines are kept for error messages.
fn read_log(stderr: impl Read, ready: mpsc::Sender<String>, tail: &Mutex<Vec<String>>) {
    const MARK: &str = "Serving remote control on ";
    let mut ready = Some(ready);
    for line in BufReader::new(stderr).split(b'\n') {
        let Ok(line) = line else { break };
        let line = String::from_utf8_lossy(&line).into_owned();
        if let Some(at) = line.find(MARK) {
            let url = line[at + MARK.len()..].trim().trim_end_matches('/');
            if let Some(tx) = ready.take() {
                let _ = tx.send(url.to_string());
            }
        }
        tracing::trace!(target: "rclone", "{line}");
        let mut t = tail.lock().unwrap_or_else(|e| e.into_inner());
        t.push(line);
        if t.len() > 2 * LOG_TAIL_LINES {
            let excess = t.len() - LOG_TAIL_LINES;
            t.drain(..excess);
        }
    }
}

/// A log line without its date and level prefix:
/// `2026/11/28 05:59:54 ERROR : rc: "x": error: y` → `rc: "x": error: y`.
fn short_log_line(line: &str) -> String {
    match line.find("ERROR : ") {
        Some(at) => line[at + "ERROR : ".len()..].trim().to_string(),
        None => line.trim().to_string(),
    }
}

fn base64(data: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_rfc4648() {
        for (plain, coded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(super::base64(plain.as_bytes()), coded);
        }
    }

    #[test]
    fn log_lines_lose_their_prefix() {
        assert_eq!(
            super::short_log_line(
                "2026/11/28 05:59:54 ERROR : rc: \"operations/list\": error: directory not found"
            ),
            "rc: \"operations/list\": error: directory not found"
        );
    }
}
