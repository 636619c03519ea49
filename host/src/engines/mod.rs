//! Database engines: the command that dumps, and how a verified stream is
//! restored. Each engine restores as safely as it allows (see README,
//! "What a restore guarantees"):
//! - PostgreSQL/PostGIS: one transaction, which pg_restore can only commit
//!   after the whole stream was read and matched its record;
//! - SQLite: into a new file beside the database, renamed over it only
//!   when the replay was clean and the new file passed its integrity check;
//! - MariaDB/MySQL: the backup is read and checked once before the restore
//!   starts (their DDL commits implicitly, so there is no undo).
//!
//! Every dump is checked as it streams ([`dump_check`]): a dump tool that
//! exits 0 with an empty or unframed output is a failed backup.

mod framing;
mod mysql;
mod postgres;
mod psqlscan;
pub mod scratch;
mod sqlite;

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::Command;

use anyhow::Result;
use chrono::Utc;

pub use framing::{framing_of, sniff, CheckedRead, CheckedWrite, DumpCheck, Framing};

use crate::compression::{Compression, Decompressor};
use crate::database::{Database, EngineKind};
use crate::exit;
use crate::pipeline::{self, End, Tally};
use crate::process::{Ended, Proc};
use crate::progress;
use crate::rclone::Rclone;
use crate::record::{BackupRecord, Layout};

/// File extension of a dump, as django-rclone names them.
pub fn extension(kind: EngineKind) -> &'static str {
    match kind {
        EngineKind::Postgresql | EngineKind::Postgis => "dump",
        EngineKind::Mysql | EngineKind::Mariadb => "sql",
        EngineKind::Sqlite => "sqlite3",
    }
}

/// Can a backup made by `made_by` be restored into `into`?
pub fn compatible(made_by: EngineKind, into: EngineKind) -> bool {
    use EngineKind::*;
    let family = |k| match k {
        Postgresql | Postgis => 0,
        Mysql | Mariadb => 1,
        Sqlite => 2,
    };
    family(made_by) == family(into)
}

/// The dump command: its stdout is the backup. The tool name is for errors.
/// `dump_args` that would remove the framing [`dump_check`] relies on are
/// refused here (exit 2).
pub fn dump_command(db: &Database, compression: Compression) -> Result<(String, Command)> {
    match db.engine {
        EngineKind::Postgresql | EngineKind::Postgis => postgres::dump(db, compression),
        EngineKind::Mysql | EngineKind::Mariadb => mysql::dump(db),
        EngineKind::Sqlite => sqlite::dump(db),
    }
}

/// The server's version (SQLite: the library's), asked by connecting the
/// way a backup does, with the config's credentials: what `rcbackup config
/// check` reports. PostgreSQL gives `server_version_num` (150004).
pub fn server_version(db: &Database) -> Result<String> {
    match db.engine {
        EngineKind::Postgresql | EngineKind::Postgis => {
            postgres::server_version_num(db).map(|n| n.to_string())
        }
        EngineKind::Mysql | EngineKind::Mariadb => mysql::server_version(db),
        EngineKind::Sqlite => sqlite::server_version(db),
    }
}

/// A dump tool's own compression in `dump_args` beside rcbackup's (only
/// pg_dump's changes the stored dump: mariadb-dump's `--compress` is the
/// client protocol's). The error says why, without the key.
pub fn refuse_own_compression(
    engine: EngineKind,
    dump_args: &[String],
    compression: Compression,
) -> std::result::Result<(), String> {
    match engine {
        EngineKind::Postgresql | EngineKind::Postgis => {
            postgres::refuse_own_compression(dump_args, compression)
        }
        EngineKind::Mysql | EngineKind::Mariadb | EngineKind::Sqlite => Ok(()),
    }
}

/// The check a dump of `db` must pass, fed every chunk as it streams and
/// judged before anything is published.
pub fn dump_check(db: &Database) -> DumpCheck {
    DumpCheck::new(framing(db.engine))
}

/// The framing every complete dump of `engine` has.
fn framing(engine: EngineKind) -> Framing {
    match engine {
        EngineKind::Postgresql | EngineKind::Postgis => Framing::PgCustom,
        EngineKind::Mysql | EngineKind::Mariadb => Framing::MysqlDump,
        EngineKind::Sqlite => Framing::SqliteDump,
    }
}

/// Restores `source` into `db`. On any failure the error names the first
/// cause; an integrity failure has exit code 4, an interruption 130.
///
/// An adopted backup is restored as what it holds (its record's layout):
/// PostgreSQL plain SQL through psql, a SQLite database file copied in;
/// the others as rcbackup's own backups of the engine.
pub fn restore(db: &Database, source: &Source) -> Result<()> {
    crate::failpoint::reached("restore-started");
    if crate::interrupt::interrupted() {
        return Err(exit::interrupted_at(format!(
            "interrupted before the restore of `{}` started; nothing was changed",
            db.alias
        )));
    }
    let layout = source.record.layout();
    if !layout.fits(db.engine) {
        return Err(exit::usage(format!(
            "backup {} holds a {} dump, which does not restore into {} database `{}`; nothing was changed",
            source.record.name,
            layout.as_str(),
            db.engine.as_str(),
            db.alias
        )));
    }
    match (db.engine, layout) {
        (_, Layout::PgPlain) => postgres::restore_plain(db, source),
        (_, Layout::SqliteFile) => sqlite::restore(db, source, sqlite::Input::File),
        (EngineKind::Postgresql | EngineKind::Postgis, _) => postgres::restore(db, source),
        (EngineKind::Mysql | EngineKind::Mariadb, _) => mysql::restore(db, source),
        (EngineKind::Sqlite, _) => sqlite::restore(db, source, sqlite::Input::Dump),
    }
}

/// A stored backup to be read back, with the record it must match.
pub struct Source<'a> {
    pub rclone: &'a Rclone,
    /// Path of the data object relative to the remote.
    pub path: String,
    pub record: &'a BackupRecord,
    /// Whether the restore may still commit (its locks are held): asked
    /// right before the live database is replaced where that is one step
    /// (SQLite's swap); an error leaves it as it was.
    pub may_commit: Option<&'a dyn Fn() -> Result<()>>,
}

/// How streaming into a consumer ended, when the backup itself was fine so far.
#[derive(Debug)]
pub enum Streamed {
    /// Every byte was delivered and matched the record.
    Verified,
    /// The consumer stopped reading: its own exit tells why.
    ConsumerStopped(io::Error),
}

impl Source<'_> {
    /// Streams the backup into `sink`, checking size and SHA-256 against the
    /// record. `Err` is a read failure or an integrity failure.
    ///
    /// The last chunk reaches `sink` only after the whole stream matched the
    /// record, so no consumer can finish (and commit) a damaged backup. When
    /// the consumer stops early, the rest is still read and checked: a
    /// damaged backup often makes the restore tool fail first, and the
    /// damage, not the tool's complaint, is the cause to report.
    ///
    /// Once the whole stream matched, the run holds at the failpoint
    /// `restore-streamed`; if it was interrupted by then, the consumer is
    /// not told to finish and the error is an interruption (exit 130).
    pub fn stream_into(&self, sink: &mut dyn Write) -> Result<Streamed> {
        self.stream(sink, true)
    }

    fn stream(&self, sink: &mut dyn Write, last_pass: bool) -> Result<Streamed> {
        let mut watched = HoldMidStream {
            inner: sink,
            pending: last_pass,
        };
        // A compressed backup is checked as stored and decompressed on its
        // way to the consumer; the decompressor holds back the end of the
        // dump until `finish`, below.
        let mut decoded =
            Decompressor::new(&mut watched as &mut dyn Write, self.record.compression)
                .map_err(|e| exit::failed(format!("cannot start decompressing: {e}")))?;
        let sink = &mut decoded;
        let mut cat = self.rclone.download(&self.path)?;
        let limit = Some(self.record.size);
        let mut tally = Tally::default();
        let mut held = Vec::new();
        let mut stopped = None;
        let what = if last_pass {
            "restoring from"
        } else {
            "verifying"
        };
        let meter = progress::Meter::read(format!("{what} {}", self.record.name), self.record.size);
        let mut counted =
            progress::Counting::new(cat.reader(), meter.counter(progress::Figure::Bytes));
        let out = &mut counted;
        let mut end = pipeline::relay_holding_last(out, sink, limit, &mut tally, &mut held);
        if let End::SinkFailed(e) = end {
            // The rest is still read, checked and decompressed (into
            // nothing): the damage, if any, is the cause to report. In
            // order: what the failed write left, the held chunk, the rest.
            stopped = Some(e);
            sink.discard();
            let _ = sink.write_all(&held);
            held.clear();
            end = pipeline::relay_counted(out, sink, limit, &mut tally);
            if matches!(end, End::SourceDone) {
                let _ = sink.finish();
            }
        }
        match end {
            End::SinkFailed(e) => unreachable!("a discarding decompressor never fails: {e}"),
            End::TooLong => {
                cat.abandon();
                let _ = cat.wait();
                return Err(self.mismatch(&format!(
                    "more than the {} bytes its record says",
                    self.record.size
                )));
            }
            End::SourceFailed(e) => {
                let why = cat.explain(e);
                if crate::rclone::says_crypt_damage(&why) {
                    return Err(self.crypt_damage(&why));
                }
                return Err(exit::failed(format!("reading {} failed: {why}", self.path)));
            }
            End::SourceDone => {}
        }
        let ended = cat.wait()?;
        if ended.is_not_found() && !self.still_listed() {
            return Err(exit::integrity(format!(
                "backup {}'s data object is missing: it was listed, then gone when read (deleted on the remote?). Restore another backup (rcbackup listbackups)",
                self.record.name
            )));
        }
        if !ended.success() {
            let said = ended.describe();
            if crate::rclone::says_crypt_damage(&said) {
                return Err(self.crypt_damage(&said));
            }
            return Err(crate::rclone::remote_error(
                &format!("reading backup {}", self.record.name),
                &said,
            ));
        }
        let digest = tally.finish();
        if digest.size != self.record.size {
            return Err(self.mismatch(&format!(
                "{} bytes, but its record says {}",
                digest.size, self.record.size
            )));
        }
        if digest.sha256 != self.record.sha256 {
            return Err(self.mismatch(&format!(
                "SHA-256 {}, but its record says {}",
                digest.sha256, self.record.sha256
            )));
        }
        if let Some(why) = sink.corrupt() {
            return Err(self.undecodable(why));
        }
        if let Some(e) = stopped {
            return Ok(Streamed::ConsumerStopped(e));
        }
        if last_pass {
            crate::failpoint::reached("restore-streamed");
        }
        if crate::interrupt::interrupted() {
            return Err(exit::interrupted_at("interrupted"));
        }
        // The held chunk, then the end of the frame checked and the dump's
        // held tail released: only now can the restore tool see its end.
        match sink.write_all(&held).and_then(|_| sink.finish()) {
            Ok(()) => Ok(Streamed::Verified),
            Err(_) if sink.corrupt().is_some() => {
                Err(self.undecodable(sink.corrupt().unwrap_or_default()))
            }
            Err(e) => Ok(Streamed::ConsumerStopped(e)),
        }
    }

    /// Whether a listing still shows the data object (or cannot tell): a
    /// read that says "not found" is damage only when the object is gone;
    /// a remote going away mid-run can make a read say so too, and that is
    /// a read failure (exit 1), not damage.
    fn still_listed(&self) -> bool {
        let (dir, name) = self.path.rsplit_once('/').unwrap_or(("", &self.path));
        match self.rclone.list_files(dir) {
            Ok(Some(entries)) => entries.iter().any(|e| e.name == name),
            Ok(None) => false,
            Err(_) => true,
        }
    }

    /// rclone's crypt found a block of the object that does not
    /// authenticate: it was changed or damaged on the remote (exit 4).
    fn crypt_damage(&self, said: &str) -> anyhow::Error {
        exit::integrity(format!(
            "backup {} is damaged: the crypt remote could not authenticate a block of its data object (rclone: {}); the stored object was changed or damaged (or the crypt password is not the one it was written with). Restore another backup (rcbackup listbackups)",
            self.record.name,
            said.lines()
                .rfind(|l| crate::rclone::says_crypt_damage(l))
                .unwrap_or(said)
                .trim()
        ))
    }

    /// The stored object matches its record but is not the zstd stream the
    /// record says: it was stored damaged (exit 4).
    fn undecodable(&self, why: &str) -> anyhow::Error {
        exit::integrity(format!(
            "backup {} matches its record but does not decompress ({why}): it was stored damaged. Restore another backup (rcbackup listbackups)",
            self.record.name
        ))
    }

    /// Reads the whole backup and checks it, touching nothing else: the
    /// stored bytes against the record, and the dump they hold against its
    /// engine's framing (a record rewritten to match a cut or forged dump
    /// is caught here, before MariaDB's restore runs a statement of it).
    pub fn verify(&self) -> Result<()> {
        let mut check = DumpCheck::new(framing_of(self.record.layout()));
        let mut sink = framing::CheckedWrite {
            inner: io::sink(),
            check: &mut check,
        };
        match self.stream(&mut sink, false)? {
            Streamed::Verified => {}
            Streamed::ConsumerStopped(e) => return Err(exit::failed(format!("verifying: {e}"))),
        }
        check.finish().map_err(|why| {
            exit::integrity(format!(
                "backup {} matches its record but does not hold a complete {} dump ({why}): it was stored damaged or replaced. Restore another backup (rcbackup listbackups)",
                self.record.name,
                self.record.engine.as_str()
            ))
        })
    }

    fn mismatch(&self, what: &str) -> anyhow::Error {
        exit::integrity(format!(
            "backup {} failed its integrity check: read {what}. The stored object is damaged or was changed; restore another backup (rcbackup listbackups)",
            self.record.name
        ))
    }
}

/// Holds at the failpoint `restore-streaming` once, after the first chunk
/// reached the restore tool: the stream is then mid-way (rclone cat still
/// runs unless the whole backup fit in its pipe).
struct HoldMidStream<'a> {
    inner: &'a mut dyn Write,
    pending: bool,
}

impl Write for HoldMidStream<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        if self.pending && n > 0 {
            self.pending = false;
            crate::failpoint::reached("restore-streaming");
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Sets the password in the child's environment only; never in argv.
pub(crate) fn password_env(cmd: &mut Command, var: &str, db: &Database) -> Result<()> {
    if let Some(p) = db.password()? {
        cmd.env(var, p);
    }
    Ok(())
}

/// Does `tool` know `option` (by its own help text, asked once per run)?
/// Options that confine a restore tool (`mariadb --sandbox`, `sqlite3
/// -safe`) are recent; an older tool lacks them.
pub(crate) fn tool_knows(tool: &str, help_arg: &str, option: &str) -> bool {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static KNOWN: OnceLock<Mutex<HashMap<(String, String), bool>>> = OnceLock::new();
    let key = (tool.to_string(), option.to_string());
    let mut known = KNOWN
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    *known.entry(key).or_insert_with(|| {
        let mut cmd = Command::new(tool);
        crate::process::without_config_secrets(&mut cmd);
        cmd.arg(help_arg)
            .stdin(std::process::Stdio::null())
            .output()
            .map(|o| {
                let text = [o.stdout, o.stderr].concat();
                String::from_utf8_lossy(&text)
                    .split(|c: char| c.is_whitespace() || c == ',' || c == '=')
                    .any(|w| w == option)
            })
            .unwrap_or(false)
    })
}

/// A restore tool without the option that stops a backup's own commands
/// from reaching the machine: a drill refuses to run it (an altered backup
/// could run shell commands through it); a restore warns.
pub(crate) fn without_confinement(db: &Database, tool: &str, option: &str) -> Result<()> {
    let why = format!(
        "`{tool}` has no `{option}` option, so a backup's own client commands (shell commands, reading files) would run on this machine"
    );
    let newer = if tool == "sqlite3" {
        "3.37 or later"
    } else {
        "a MariaDB client 10.5.25, 10.6.18, 10.11.8 or later"
    };
    if db.scratch {
        return Err(exit::failed(format!(
            "{why}; a drill restores backups it does not trust and needs `{tool}` {newer}; nothing was restored"
        )));
    }
    tracing::warn!("{why}: restore only backups you trust, or install `{tool}` {newer}");
    Ok(())
}

/// How a restore tool ended, with its stderr tail redacted: what the tools
/// echo of their input (row data) never reaches an error message.
pub(crate) fn describe_restore_tool(end: &Ended) -> String {
    use std::os::unix::process::ExitStatusExt;
    let how = match (end.status.code(), end.status.signal()) {
        (Some(c), _) => format!("exited with code {c}"),
        (None, Some(s)) => format!("was killed by signal {s}"),
        _ => "ended abnormally".to_string(),
    };
    // Control characters a tool echoed (of a garbled input) are shown, not
    // sent to the terminal.
    let tail: String = framing::redact(end.stderr_tail.trim())
        .chars()
        .flat_map(|c| match c {
            '\n' | '\t' => vec![c],
            c if c.is_control() => c.escape_default().collect(),
            c => vec![c],
        })
        .collect();
    if tail.trim().is_empty() {
        format!("{} {how}", end.tool)
    } else {
        format!("{} {how}: {}", end.tool, tail.trim())
    }
}

/// The error of a restore that failed with `err`, noting the state the
/// database is in; if the run was interrupted (Ctrl-C, SIGTERM), that is the
/// cause to name (exit 130), whatever the tools said when they were stopped.
pub(crate) fn restore_failed(db: &Database, err: anyhow::Error, state: &str) -> anyhow::Error {
    // A drill's scratch copy is dropped after any failure: what state it
    // was left in does not matter, and no advice about it applies.
    let state = if db.scratch && !state.contains("nothing was restored") {
        "the scratch copy is dropped"
    } else {
        state
    };
    if crate::interrupt::interrupted() {
        exit::interrupted_at(format!(
            "the restore of `{}` was interrupted; {state}",
            db.alias
        ))
    } else {
        exit::with_note(err, state)
    }
}

/// After a restore stopped, the error for the first cause: the consumer's
/// own failure if it ended badly, else how the stream ended.
pub(crate) fn consumer_error(tool: Proc, stopped: io::Error) -> anyhow::Error {
    match tool.wait() {
        Ok(end) => consumer_ended(&end, stopped),
        Err(e) => e,
    }
}

/// [`consumer_error`] once the tool's end is known.
pub(crate) fn consumer_ended(end: &Ended, stopped: io::Error) -> anyhow::Error {
    if end.success() {
        exit::failed(format!(
            "restore failed: {} stopped reading the backup early ({stopped})",
            end.tool
        ))
    } else {
        exit::failed(format!("restore failed: {}", describe_restore_tool(end)))
    }
}

/// A file a restore left on this machine (SQLite's staging file and its
/// journal), for `listbackups` to show and `--clean` to remove.
#[derive(Debug, Clone)]
pub struct LocalLeftover {
    pub path: PathBuf,
    /// When it was last modified.
    pub last_seen: chrono::DateTime<Utc>,
    /// The restore that made it is still running: leave it alone.
    pub running: bool,
}

/// What restores of `db` left beside it (SQLite only; empty for the other
/// engines, whose restores leave nothing on this machine).
pub fn restore_leftovers(db: &Database) -> Vec<LocalLeftover> {
    match db.engine {
        EngineKind::Sqlite => sqlite::leftovers(db),
        _ => Vec::new(),
    }
}

/// Removes one leftover; refuses one whose restore is still running.
pub fn remove_local_leftover(l: &LocalLeftover) -> Result<()> {
    if l.running {
        return Err(exit::failed(format!(
            "{} belongs to a restore that is still running; it was left in place",
            l.path.display()
        )));
    }
    match std::fs::remove_file(&l.path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(exit::failed(format!(
            "cannot remove {}, left by an interrupted restore: {e}; remove it by hand",
            l.path.display()
        ))),
    }
}
