//! rcbackup's one door to rclone: the remote path rules, `--config` and
//! `rclone_flags`, and every listing, read, write, move and delete.
//!
//! A run starts one `rclone rcd` ([`server`]) and does all of that through
//! its HTTP API ([`api`]): rclone's start-up (~60 ms of CPU) is paid once,
//! not per operation. One rclone process per operation ([`per_call`]) is the
//! fallback, chosen automatically and reported at `-v`:
//! - when the server cannot start (an rclone without `rcd`, a wrapper
//!   script), or has ended during the run;
//! - for what the API cannot do: media transfers, which report each file
//!   in rclone's log, and media listings, which need names byte for byte
//!   (JSON turns invalid UTF-8 into U+FFFD), and the list of remotes asked
//!   after a failure (the API's leaves out remotes defined in the
//!   environment);
//! - when `RCBACKUP_RCLONE_MODE=per-call` asks for it.
//!
//! Both ways give the same results and the same errors' causes: the test
//! suite runs in each (scripts/test.sh).

mod api;
mod flags;
mod per_call;
mod server;
mod stall;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Result;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

pub use flags::{check_flags, check_remote, names_secret};
pub use per_call::is_not_found;
use server::{CallError, Server};
pub use stall::Stall;

use crate::config::Settings;
use crate::exit;
use crate::process::{Ended, Proc};

/// Chooses how a run reaches rclone: `server` (the default) or `per-call`.
pub const MODE_VAR: &str = "RCBACKUP_RCLONE_MODE";

#[derive(Clone)]
pub struct Rclone {
    pub binary: String,
    pub config: Option<PathBuf>,
    pub flags: Vec<String>,
    pub remote: String,
    server: Option<Arc<Server>>,
    /// How long a read or a listing may wait for a byte ([`stall`]).
    pub stall: Stall,
}

/// One entry of a listing (`rclone lsjson`, `operations/list`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Entry {
    pub path: String,
    pub name: String,
    pub size: i64,
    pub mod_time: DateTime<Utc>,
    pub is_dir: bool,
}

/// How an upload or a download ended.
#[derive(Debug)]
pub struct Outcome {
    ok: bool,
    not_found: bool,
    /// Who said what: "rclone exited with code 1: ..." or the server's words.
    said: String,
}

impl Outcome {
    fn done() -> Outcome {
        Outcome {
            ok: true,
            not_found: false,
            said: String::new(),
        }
    }

    fn from_call(e: CallError) -> Outcome {
        let (not_found, said) = match e {
            CallError::NotFound => (true, "rclone: object not found".to_string()),
            CallError::Rclone(s) => (false, format!("rclone said: {s}")),
            CallError::Transport(s) | CallError::Stalled(s) => (false, s),
        };
        Outcome {
            ok: false,
            not_found,
            said,
        }
    }

    pub fn success(&self) -> bool {
        self.ok
    }

    /// The object or folder did not exist.
    pub fn is_not_found(&self) -> bool {
        self.not_found
    }

    pub fn describe(&self) -> String {
        self.said.clone()
    }
}

/// Whether `RCBACKUP_RCLONE_MODE` asks for the server (the default) or
/// one process per call (`per-call`); exit 2 for another value.
fn server_mode() -> Result<bool> {
    match std::env::var(MODE_VAR).unwrap_or_default().as_str() {
        "" | "server" => Ok(true),
        "per-call" => Ok(false),
        other => Err(exit::usage(format!(
            "{MODE_VAR} is `{}`; it takes `server` (the default: one rclone for the run) or `per-call` (one rclone process per operation)",
            crate::naming::printable(other)
        ))),
    }
}

/// The rclones of a run that reaches many configs' remotes (`backup-all`,
/// `listbackups --all-tenants`): one per distinct `rclone_binary`,
/// `rclone_config` and `rclone_flags`, each started on first use
/// ([`Rclone::shared_for_run`]: call from the main thread) and shared by
/// every remote it serves.
#[derive(Default)]
pub struct Servers {
    started: std::collections::BTreeMap<(String, Option<PathBuf>, Vec<String>), Rclone>,
}

impl Servers {
    /// The rclone for `s.remote`.
    pub fn for_settings(&mut self, s: &Settings) -> Result<Rclone> {
        let key = (
            s.rclone_binary.clone(),
            s.rclone_config.clone(),
            s.rclone_flags.clone(),
        );
        let base = match self.started.entry(key) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) => e.insert(Rclone::shared_for_run(s)?),
        };
        Ok(base.for_remote(&s.remote))
    }
}

/// Joins `remote` and a relative path. `name:` is the remote's root, so
/// `name:` + `db` is `name:db` (not `name:/db`, which is the filesystem root
/// on local and SFTP remotes); a trailing slash or none give the same path.
pub fn join(remote: &str, rel: &str) -> String {
    let rel = rel.trim_start_matches('/');
    if rel.is_empty() {
        return remote.to_string();
    }
    if remote.ends_with(':') {
        return format!("{remote}{rel}");
    }
    let base = remote.trim_end_matches('/');
    if base.is_empty() {
        // remote = "/" : the filesystem root, spelled as the user wrote it.
        return format!("/{rel}");
    }
    format!("{base}/{rel}")
}

/// Whether the run's server can be asked for an object of `remote`:
/// `/[fs]/path` is how it is asked, so a remote holding `]`, or a
/// connection string with options (`:webdav,url='http://h/':p`, whose `/`,
/// `:` and quotes do not survive that URL), goes to a process per call.
fn server_can_address(remote: &str) -> bool {
    !(remote.contains(']') || (remote.starts_with(':') && remote.contains(',')))
}

impl Rclone {
    /// Without a server: one rclone process per call.
    pub fn new(binary: &str, config: Option<PathBuf>, flags: Vec<String>, remote: &str) -> Rclone {
        Rclone {
            binary: binary.to_string(),
            config,
            stall: Stall::new(remote, &flags),
            flags,
            remote: remote.to_string(),
            server: None,
        }
    }

    /// [`Rclone::new`] from the config's settings.
    pub fn from_settings(s: &Settings) -> Rclone {
        Rclone::new(
            &s.rclone_binary,
            s.rclone_config.clone(),
            s.rclone_flags.clone(),
            &s.remote,
        )
    }

    /// For a run: starts the run's rclone server unless
    /// `RCBACKUP_RCLONE_MODE=per-call` (exit 2 for another value). Call it
    /// from the main thread: the server is tied to the thread that starts
    /// it (it is killed when that thread ends).
    pub fn for_run(s: &Settings) -> Result<Rclone> {
        if !server_can_address(&s.remote) && server_mode()? {
            tracing::debug!(
                "rclone: the server cannot be asked for objects of this remote; one process per call"
            );
            return Ok(Rclone::from_settings(s));
        }
        Rclone::shared_for_run(s)
    }

    /// [`Rclone::for_run`] for a run that reaches many remotes with the
    /// same `rclone_binary`, `rclone_config` and `rclone_flags` (the
    /// tenants of `backup-all`): one server, which [`Rclone::for_remote`]
    /// shares. Call it from the main thread.
    pub fn shared_for_run(s: &Settings) -> Result<Rclone> {
        let mut rc = Rclone::from_settings(s);
        if !server_mode()? {
            tracing::debug!("rclone: one process per call ({MODE_VAR}=per-call)");
            return Ok(rc);
        }
        rc.server = Server::start(&rc);
        Ok(rc)
    }

    /// The same rclone (binary, config, flags and server, if any) for
    /// another remote; reads of each remote are bounded on their own
    /// ([`Stall`]).
    pub fn for_remote(&self, remote: &str) -> Rclone {
        let mut rc = Rclone::new(
            &self.binary,
            self.config.clone(),
            self.flags.clone(),
            remote,
        );
        if !server_can_address(remote) {
            if self.server.is_some() {
                tracing::debug!(
                    "rclone: the server cannot be asked for objects of {remote}; one process per call for it"
                );
            }
        } else {
            rc.server = self.server.clone();
        }
        rc
    }

    /// The server, when the run has one that is up. One that has ended
    /// since the last call is noticed here (and reported once), so the call
    /// goes to a process of its own instead of failing.
    fn server(&self) -> Option<&Server> {
        let s = self.server.as_deref()?;
        s.url()?;
        if s.has_exited() {
            s.ended();
            return None;
        }
        Some(s)
    }

    /// Whether a call got no answer because the server has ended: a read or
    /// a delete is then made again by a process of its own (repeating one is
    /// harmless), as every later call is.
    fn server_ended(&self, s: &Server, e: &CallError) -> bool {
        matches!(e, CallError::Transport(_)) && s.ended().is_some()
    }

    /// Logs a call to the server at -v, as the per-call mode logs each
    /// process's argv: `rclone call: cat db/NAME`.
    fn note(&self, verb: &str, rel: &str) {
        tracing::debug!("rclone call: {verb} {}", self.path(rel));
    }

    /// The full rclone path of `rel` below the configured remote.
    pub fn path(&self, rel: &str) -> String {
        join(&self.remote, rel)
    }

    /// `rclone <args> [--config F] <rclone_flags>`, stdio null.
    pub fn command<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Command {
        let mut cmd = Command::new(&self.binary);
        cmd.args(args);
        if let Some(c) = &self.config {
            cmd.arg("--config").arg(c);
        }
        cmd.args(&self.flags);
        cmd.stdin(Stdio::null()).stdout(Stdio::null());
        without_rc_settings(&mut cmd);
        cmd
    }

    /// Lists the files (not folders) of `rel`, non-recursively. A folder that
    /// does not exist is `None`: no backups yet, not an error.
    pub fn list_files(&self, rel: &str) -> Result<Option<Vec<Entry>>> {
        match self.server() {
            Some(s) => self.list_by(s, rel, 1),
            None => per_call::lsjson(self, rel, &["--files-only"]),
        }
    }

    /// Lists the files of `rel` and its subfolders down to `depth` levels;
    /// `Entry::path` is relative to `rel`.
    pub fn list_files_recursive(&self, rel: &str, depth: u32) -> Result<Option<Vec<Entry>>> {
        match self.server() {
            Some(s) => self.list_by(s, rel, depth),
            None => per_call::lsjson(
                self,
                rel,
                &["--files-only", "-R", "--max-depth", &depth.to_string()],
            ),
        }
    }

    /// `operations/list` of the files of `rel` down to `depth` levels, with
    /// paths made relative to `rel` as `lsjson`'s are. (rclone 1.60's list
    /// has no depth option: deeper files are dropped here.)
    fn list_by(&self, s: &Server, rel: &str, depth: u32) -> Result<Option<Vec<Entry>>> {
        let rel = rel.trim_matches('/');
        self.note("lsjson", rel);
        let answer = s.call_watched(
            "operations/list",
            json!({
                "fs": self.remote,
                "remote": rel,
                "opt": {"recurse": depth > 1, "filesOnly": true, "noMimeType": true},
            }),
            &self.stall,
        );
        let answer = match answer {
            Ok(a) => a,
            Err(CallError::NotFound) => return Ok(None),
            Err(e) if self.server_ended(s, &e) => {
                return match depth {
                    1 => per_call::lsjson(self, rel, &["--files-only"]),
                    d => per_call::lsjson(
                        self,
                        rel,
                        &["--files-only", "-R", "--max-depth", &d.to_string()],
                    ),
                }
            }
            Err(e) => return Err(self.call_failed(&format!("listing {}", self.path(rel)), e)),
        };
        let list = answer.get("list").cloned().unwrap_or(Value::Null);
        let mut entries: Vec<Entry> = serde_json::from_value(list).map_err(|e| {
            exit::failed(format!(
                "rclone's listing of {} gave an answer rcbackup cannot read: {e}",
                self.path(rel)
            ))
        })?;
        let prefix = if rel.is_empty() {
            String::new()
        } else {
            format!("{rel}/")
        };
        for e in &mut entries {
            if let Some(below) = e.path.strip_prefix(&prefix) {
                e.path = below.to_string();
            }
        }
        entries.retain(|e| e.path.matches('/').count() < depth as usize);
        Ok(Some(entries))
    }

    /// The contents of the files in folder `rel` (not below) whose names
    /// end in `suffix`, concatenated in no promised order; `None` when the
    /// folder does not exist. A file deleted between the listing and its
    /// reading is left out.
    pub fn cat_folder(&self, rel: &str, suffix: &str) -> Result<Option<Vec<u8>>> {
        let Some(s) = self.server() else {
            return per_call::cat_folder(self, rel, suffix);
        };
        let Some(files) = self.list_by(s, rel, 1)? else {
            return Ok(None);
        };
        let names: Vec<String> = files
            .into_iter()
            .filter(|e| e.name.ends_with(suffix))
            .map(|e| format!("{}/{}", rel.trim_matches('/'), e.name))
            .collect();
        // A few at a time: each is one small request on a kept connection.
        let parts = std::thread::scope(|scope| {
            let readers: Vec<_> = names
                .chunks(names.len().div_ceil(READERS).max(1))
                .map(|batch| {
                    scope.spawn(move || {
                        batch
                            .iter()
                            .map(|n| self.cat_by(s, n))
                            .collect::<Result<Vec<_>>>()
                    })
                })
                .collect();
            readers
                .into_iter()
                .map(|r| r.join().expect("record reader"))
                .collect::<Result<Vec<_>>>()
        })?;
        Ok(Some(
            parts.into_iter().flatten().flatten().flatten().collect(),
        ))
    }

    /// Starts an upload into `rel`: the caller writes the object into
    /// [`Upload::take_input`] and closes it, then waits for the outcome.
    pub fn upload(&self, rel: &str) -> Result<Upload> {
        let Some(s) = self.server() else {
            return per_call::upload(self, rel);
        };
        let rel = rel.trim_matches('/');
        let (dir, name) = rel.rsplit_once('/').unwrap_or(("", rel));
        if name.chars().any(|c| c.is_control() || c == '"') {
            // Cannot be written in a multipart header as it is.
            return per_call::upload(self, rel);
        }
        self.note("rcat", rel);
        let (read, write) =
            std::io::pipe().map_err(|e| exit::failed(format!("cannot make a pipe: {e}")))?;
        let abandoned = Arc::new(AtomicBool::new(false));
        let body = api::Guarded {
            inner: read,
            abandoned: abandoned.clone(),
        };
        let server = self.server.clone().expect("server() was Some");
        let sender = server.clone();
        let (fs, dir, name) = (self.remote.clone(), dir.to_string(), name.to_string());
        let (done, sending) = std::sync::mpsc::sync_channel(1);
        std::thread::spawn(move || {
            let _ = done.send(match sender.upload(&fs, &dir, &name, body) {
                Ok(()) => Outcome::done(),
                Err(e) => Outcome::from_call(e),
            });
        });
        Ok(Upload {
            input: Some(write),
            pid: s.pid(),
            run: UploadRun::Server {
                sending,
                abandoned,
                server,
            },
        })
    }

    /// Starts reading object `rel`.
    pub fn download(&self, rel: &str) -> Result<Download> {
        let Some(s) = self.server() else {
            return per_call::download(self, rel);
        };
        self.note("cat", rel);
        let server = self.server.clone().expect("server() was Some");
        Ok(match s.get(&self.remote, rel, &self.stall) {
            Err(e) if self.server_ended(s, &e) => return per_call::download(self, rel),
            Ok(body) => Download {
                reader: Box::new(api::Interruptible(body)),
                run: DownloadRun::Server(Outcome::done(), server, rel.to_string()),
            },
            Err(e) => Download {
                reader: Box::new(std::io::empty()),
                run: DownloadRun::Server(Outcome::from_call(e), server, rel.to_string()),
            },
        })
    }

    /// Writes a small object in one go.
    pub fn put(&self, rel: &str, bytes: &[u8]) -> Result<()> {
        let Some(server) = self.server() else {
            return per_call::put(self, rel, bytes);
        };
        let path = self.path(rel);
        let mut upload = self.upload(rel)?;
        let mut input = upload.take_input();
        // Written from a thread: an object larger than the pipe would
        // otherwise wait for a reader that starts only after this write.
        let outcome = std::thread::scope(|scope| {
            let writer = scope.spawn(move || {
                let wrote = input.write_all(bytes);
                drop(input);
                wrote
            });
            let outcome = upload.wait();
            (writer.join().expect("writer"), outcome)
        });
        match outcome {
            (Ok(()), Ok(end)) if end.success() => Ok(()),
            // The server ended under the write (a multi-threaded process
            // is reapable a moment after its socket closes, so the check
            // before the call can miss it): the whole object is in hand,
            // and writing it again by a process of its own is harmless.
            (_, Ok(end)) if server.ended().is_some() => {
                tracing::debug!("rclone: writing {path} again: {}", end.describe());
                per_call::put(self, rel, bytes)
            }
            (_, Ok(end)) => Err(self.failed(&format!("writing {path}"), &end)),
            (_, Err(e)) => Err(e),
        }
    }

    /// Moves `from` to `to` unless `to` exists. `Ok(false)`: `to` existed,
    /// nothing moved. rclone reports success either way, so the outcome is
    /// read from whether `from` is still there.
    pub fn move_no_clobber(&self, from: &str, to: &str) -> Result<bool> {
        let Some(s) = self.server() else {
            return per_call::move_no_clobber(self, from, to);
        };
        let what = format!("moving {} to {}", self.path(from), self.path(to));
        self.note("moveto", &format!("{from} {to}"));
        s.call(
            "operations/movefile",
            json!({
                "srcFs": self.remote, "srcRemote": from.trim_matches('/'),
                "dstFs": self.remote, "dstRemote": to.trim_matches('/'),
                "_config": {"IgnoreExisting": true},
            }),
        )
        .map_err(|e| self.call_failed(&what, e))?;
        Ok(!self.exists_by(s, from)?)
    }

    /// Whether the file `rel` is there (`operations/stat`).
    fn exists_by(&self, s: &Server, rel: &str) -> Result<bool> {
        self.note("stat", rel);
        match s.call_watched(
            "operations/stat",
            json!({"fs": self.remote, "remote": rel.trim_matches('/')}),
            &self.stall,
        ) {
            Ok(answer) => Ok(answer.get("item").is_some_and(|i| !i.is_null())),
            Err(CallError::NotFound) => Ok(false),
            Err(e) if self.server_ended(s, &e) => per_call::exists(self, rel),
            Err(e) => Err(self.call_failed(&format!("looking for {}", self.path(rel)), e)),
        }
    }

    /// One small file's contents, or `None` when it does not exist.
    pub fn cat(&self, rel: &str) -> Result<Option<Vec<u8>>> {
        match self.server() {
            Some(s) => self.cat_by(s, rel),
            None => per_call::cat(self, rel),
        }
    }

    fn cat_by(&self, s: &Server, rel: &str) -> Result<Option<Vec<u8>>> {
        let what = || format!("reading {}", self.path(rel));
        self.note("cat", rel);
        let mut body = match s.get(&self.remote, rel, &self.stall) {
            Ok(b) => b,
            Err(CallError::NotFound) => return Ok(None),
            Err(e) if self.server_ended(s, &e) => return per_call::cat(self, rel),
            Err(e) => return Err(self.call_failed(&what(), e)),
        };
        let mut out = Vec::new();
        body.read_to_end(&mut out).map_err(|e| {
            if stall::is_stall(&e) {
                return remote_error(&what(), &e.to_string());
            }
            let why = s.ended().unwrap_or_else(|| e.to_string());
            exit::failed(format!("{} failed: {why}", what()))
        })?;
        Ok(Some(out))
    }

    /// Deletes folder `rel` and everything in it; a folder already gone is
    /// not an error.
    pub fn purge(&self, rel: &str) -> Result<()> {
        let Some(s) = self.server() else {
            return per_call::purge(self, rel);
        };
        self.note("purge", rel);
        match s.call(
            "operations/purge",
            json!({"fs": self.remote, "remote": rel.trim_matches('/')}),
        ) {
            Ok(_) | Err(CallError::NotFound) => Ok(()),
            Err(e) if self.server_ended(s, &e) => per_call::purge(self, rel),
            Err(e) => Err(self.call_failed(&format!("deleting folder {}", self.path(rel)), e)),
        }
    }

    /// Deletes one file; a file already gone is not an error.
    pub fn deletefile(&self, rel: &str) -> Result<()> {
        let Some(s) = self.server() else {
            return per_call::deletefile(self, rel);
        };
        self.note("deletefile", rel);
        match s.call(
            "operations/deletefile",
            json!({"fs": self.remote, "remote": rel.trim_matches('/')}),
        ) {
            Ok(_) | Err(CallError::NotFound) => Ok(()),
            Err(e) if self.server_ended(s, &e) => per_call::deletefile(self, rel),
            // Some backends report a missing file with a plain failure.
            Err(_) if matches!(self.exists_by(s, rel), Ok(false)) => Ok(()),
            Err(e) => Err(self.call_failed(&format!("deleting {}", self.path(rel)), e)),
        }
    }

    /// Runs a transfer (`sync`, `copy`, ...) with rclone's JSON log sent to
    /// `each_line`, one line per file acted on: always its own process,
    /// since the API does not report each file.
    pub fn transfer(
        &self,
        args: &[String],
        input: Option<Vec<u8>>,
        each_line: &mut dyn FnMut(&str),
    ) -> Result<Ended> {
        tracing::debug!("rclone: a media transfer runs its own rclone process (it reports each file in its log)");
        per_call::transfer(self, args, input, each_line)
    }
}

/// Readers of a records folder at once.
const READERS: usize = 8;

impl Rclone {
    /// An rclone process's failure, as [`remote_error`] words it, unless the
    /// cause is a remote that rclone's config does not define: that one is
    /// named first, with the fix.
    pub fn failure(&self, what: &str, end: &Ended) -> anyhow::Error {
        self.failed_saying(what, &end.describe())
    }

    /// [`Rclone::failure`] for an upload or a download.
    pub fn failed(&self, what: &str, end: &Outcome) -> anyhow::Error {
        self.failed_saying(what, &end.describe())
    }

    fn failed_saying(&self, what: &str, said: &str) -> anyhow::Error {
        self.missing_remote()
            .unwrap_or_else(|| remote_error(what, said))
    }

    fn call_failed(&self, what: &str, e: CallError) -> anyhow::Error {
        self.failed(what, &Outcome::from_call(e))
    }

    /// `Some(error)` when `remote` names a remote that rclone's config
    /// lacks (asked with `rclone listremotes`, which also lists remotes
    /// defined by RCLONE_CONFIG_* variables; the API's `config/listremotes`
    /// leaves those out, so this is always a process of its own). Called
    /// only after a failure, so a run that works pays nothing for it.
    pub fn missing_remote(&self) -> Option<anyhow::Error> {
        let name = remote_name(&self.remote)?;
        let known = per_call::listremotes(self)?;
        if known.iter().any(|r| r == name) {
            return None;
        }
        let file = match &self.config {
            Some(c) => format!("rclone's config file {} (`rclone_config`)", c.display()),
            None => "rclone's default config file (`rclone config file` shows which; set `rclone_config` to use another)".to_string(),
        };
        let known = if known.is_empty() {
            "it defines no remotes".to_string()
        } else {
            format!(
                "it defines {}",
                known
                    .iter()
                    .map(|r| format!("{r}:"))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        };
        Some(exit::usage(format!(
            "the remote `{name}` (from `remote = \"{}\"`) is not defined in {file}; {known}. \
             Define it with `rclone config{}` (or RCLONE_CONFIG_{}_TYPE and the like in the environment), or fix `remote` in rcbackup's config",
            self.remote,
            self.config
                .as_ref()
                .map(|c| format!(" --config {}", c.display()))
                .unwrap_or_default(),
            name.to_uppercase().replace(['-', '.', ' '], "_")
        )))
    }
}

/// The configured remote's name in `name:path` (also `name,opt=v:path`);
/// `None` for a local path or an on-the-fly `:backend:` remote.
fn remote_name(remote: &str) -> Option<&str> {
    let (head, _) = remote.split_once(':')?;
    if head.contains(['/', '\\']) {
        return None;
    }
    let name = head.split(',').next()?;
    (!name.is_empty()).then_some(name)
}

/// Removes the user's `RCLONE_RC*` variables from a command's environment:
/// rcbackup decides whether and how rclone serves its API (`RCLONE_RC=true`
/// would make every call start a server; `RCLONE_RC_NO_AUTH` would open the
/// run's server to anyone on the machine).
fn without_rc_settings(cmd: &mut Command) {
    for (k, _) in std::env::vars_os() {
        let k_text = k.to_string_lossy();
        if k_text == "RCLONE_RC" || k_text.starts_with("RCLONE_RC_") {
            cmd.env_remove(k);
        }
    }
}

/// Whether rclone's error says a crypt remote's object failed its
/// authentication: its bytes were changed or damaged on the remote.
pub fn says_crypt_damage(said: &str) -> bool {
    said.contains("failed to authenticate decrypted block")
}

/// An rclone failure, with what to check.
pub fn remote_error(what: &str, said: &str) -> anyhow::Error {
    exit::failed(format!(
        "{what} failed: {said}. Check that the remote is reachable and `remote` in the config is right (try `rclone lsd` on it)"
    ))
}

/// An upload under way: see [`Rclone::upload`].
pub struct Upload {
    input: Option<std::io::PipeWriter>,
    pid: u32,
    run: UploadRun,
}

enum UploadRun {
    /// `rclone rcat` reading the pipe.
    Process(Proc),
    /// A thread sending the pipe's contents to the server.
    Server {
        sending: std::sync::mpsc::Receiver<Outcome>,
        abandoned: Arc<AtomicBool>,
        server: Arc<Server>,
    },
}

impl Upload {
    fn by_process(input: std::io::PipeWriter, p: Proc) -> Upload {
        Upload {
            input: Some(input),
            pid: p.id(),
            run: UploadRun::Process(p),
        }
    }

    /// The process doing the upload: `rclone rcat`, or the run's server.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Where the object's bytes go; closing it ends the object.
    pub fn take_input(&mut self) -> std::io::PipeWriter {
        self.input.take().expect("the upload's input is taken once")
    }

    /// Gives the upload up: nothing it stored counts as a whole object
    /// (the caller still deletes what may have been stored).
    pub fn abandon(&mut self) {
        match &mut self.run {
            UploadRun::Process(p) => p.kill(),
            UploadRun::Server { abandoned, .. } => {
                abandoned.store(true, Ordering::SeqCst);
                self.input.take();
            }
        }
    }

    /// Waits for the upload to end; call it after the input was closed.
    pub fn wait(self) -> Result<Outcome> {
        drop(self.input);
        match self.run {
            UploadRun::Process(p) => Ok(p.wait()?.into()),
            UploadRun::Server {
                sending,
                abandoned,
                server,
            } => loop {
                use std::sync::mpsc::RecvTimeoutError;
                match sending.recv_timeout(std::time::Duration::from_millis(50)) {
                    Ok(outcome) => return Ok(outcome),
                    Err(RecvTimeoutError::Disconnected) => {
                        return Ok(Outcome::from_call(CallError::Transport(
                            "the upload thread failed".into(),
                        )))
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                }
                // Ctrl-C / SIGTERM: not waited for. What the sender handed
                // over may sit in the socket's buffer for a slow server
                // (--bwlimit) to read for minutes; the caller deletes what
                // was stored, and the server ends with the run.
                if crate::interrupt::interrupted() {
                    abandoned.store(true, Ordering::SeqCst);
                    return Ok(Outcome::from_call(CallError::Transport(
                        "interrupted".into(),
                    )));
                }
                // A sender waiting for its input (a dump that is silent
                // for minutes) would notice a dead server only at its next
                // write: watch the server itself.
                if server.has_exited() {
                    abandoned.store(true, Ordering::SeqCst);
                    let ended = server
                        .ended()
                        .unwrap_or_else(|| "the rclone server of this run ended".into());
                    return Ok(Outcome::from_call(CallError::Transport(ended)));
                }
            },
        }
    }
}

/// A download under way: see [`Rclone::download`].
pub struct Download {
    reader: Box<dyn Read + Send>,
    run: DownloadRun,
}

enum DownloadRun {
    /// `rclone cat` writing the pipe.
    Process(Proc),
    /// An answer of the server: how it began (an error has no body), and
    /// the object's path, as the server's log names it.
    Server(Outcome, Arc<Server>, String),
}

impl Download {
    fn by_process(reader: Box<dyn Read + Send>, p: Proc) -> Download {
        Download {
            reader,
            run: DownloadRun::Process(p),
        }
    }

    /// The object's bytes.
    pub fn reader(&mut self) -> &mut (dyn Read + Send) {
        &mut *self.reader
    }

    /// Stops reading early.
    pub fn abandon(&mut self) {
        self.reader = Box::new(std::io::empty());
        if let DownloadRun::Process(p) = &mut self.run {
            p.kill();
        }
    }

    /// How the download ended; call it once the reader gave out.
    pub fn wait(self) -> Result<Outcome> {
        drop(self.reader);
        match self.run {
            DownloadRun::Process(p) => Ok(p.wait()?.into()),
            DownloadRun::Server(o, _, _) => Ok(o),
        }
    }

    /// Why reading failed with `e`, stopping the download: the reader's
    /// error, or how the process or the server serving it ended.
    pub fn explain(mut self, e: std::io::Error) -> String {
        self.abandon();
        if stall::is_stall(&e) {
            // rclone is stopped here (or its answer abandoned): how it
            // then ended would only hide the cause.
            return format!("{e}. Check that the remote is reachable (try `rclone lsd` on it)");
        }
        match self.run {
            DownloadRun::Process(p) => match p.wait() {
                Ok(end) if !end.success() => end.describe(),
                _ => e.to_string(),
            },
            // A read that fails mid-answer (a crypt block that does not
            // authenticate, a remote gone) only cuts the connection; the
            // server's log says why.
            DownloadRun::Server(_, s, rel) => s
                .ended()
                .or_else(|| {
                    s.error_about_soon(rel.trim_matches('/'), std::time::Duration::from_millis(500))
                })
                .unwrap_or_else(|| e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{join, remote_name};

    #[test]
    fn remote_names() {
        assert_eq!(remote_name("backups:"), Some("backups"));
        assert_eq!(remote_name("s3:bucket/app"), Some("s3"));
        assert_eq!(remote_name("s3,region=eu:bucket"), Some("s3"));
        assert_eq!(remote_name(":local:/srv"), None);
        assert_eq!(remote_name("/srv/backups"), None);
        assert_eq!(remote_name("./rel/a:b"), None);
    }

    #[test]
    fn remote_root_is_not_filesystem_root() {
        assert_eq!(join("backups:", "db/x"), "backups:db/x");
        assert_eq!(join("s3:bucket/app", "db"), "s3:bucket/app/db");
        assert_eq!(join("s3:bucket/app/", "db"), "s3:bucket/app/db");
        assert_eq!(join("/srv/backups/", "db"), "/srv/backups/db");
        assert_eq!(join("/srv/backups", "/db"), "/srv/backups/db");
        assert_eq!(join("/", "db"), "/db");
    }
}
