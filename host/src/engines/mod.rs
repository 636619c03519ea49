//! Database engines: the command that dumps, and how a verified stream is
//! restored. Each engine restores as safely as it allows (see README,
//! "What a restore guarantees"):
//! - PostgreSQL/PostGIS: one transaction, which pg_restore can only commit
//!   after the whole stream was read and matched its record;
//! - SQLite: into a new file beside the database, renamed over it only on
//!   success;
//! - MariaDB/MySQL: the backup is read and checked once before the restore
//!   starts (their DDL commits implicitly, so there is no undo).

mod mysql;
mod postgres;
mod sqlite;

use std::io::{self, Write};
use std::process::Command;

use anyhow::Result;

use crate::database::{Database, EngineKind};
use crate::exit;
use crate::pipeline::{self, End, Tally};
use crate::process::Proc;
use crate::rclone::Rclone;
use crate::record::BackupRecord;

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
pub fn dump_command(db: &Database) -> Result<(String, Command)> {
    match db.engine {
        EngineKind::Postgresql | EngineKind::Postgis => postgres::dump(db),
        EngineKind::Mysql | EngineKind::Mariadb => mysql::dump(db),
        EngineKind::Sqlite => sqlite::dump(db),
    }
}

/// Restores `source` into `db`. On any failure the error names the first
/// cause; an integrity failure has exit code 4.
pub fn restore(db: &Database, source: &Source) -> Result<()> {
    match db.engine {
        EngineKind::Postgresql | EngineKind::Postgis => postgres::restore(db, source),
        EngineKind::Mysql | EngineKind::Mariadb => mysql::restore(db, source),
        EngineKind::Sqlite => sqlite::restore(db, source),
    }
}

/// A file a killed restore left beside a local database (placeholder until
/// the engines branch lands).
pub struct LocalLeftover {
    pub path: std::path::PathBuf,
    pub last_seen: chrono::DateTime<chrono::Utc>,
    pub running: bool,
}

pub fn restore_leftovers(_db: &Database) -> Vec<LocalLeftover> {
    Vec::new()
}

pub fn remove_local_leftover(l: &LocalLeftover) -> Result<()> {
    std::fs::remove_file(&l.path)
        .map_err(|e| exit::failed(format!("removing {}: {e}", l.path.display())))
}

/// A stored backup to be read back, with the record it must match.
pub struct Source<'a> {
    pub rclone: &'a Rclone,
    /// Path of the data object relative to the remote.
    pub path: String,
    pub record: &'a BackupRecord,
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
    pub fn stream_into(&self, sink: &mut dyn Write) -> Result<Streamed> {
        let mut cat = self.rclone.spawn_cat(&self.path)?;
        let mut out = cat.take_stdout();
        crate::process::widen_pipe(&out);
        let limit = Some(self.record.size);
        let mut tally = Tally::default();
        let mut held = Vec::new();
        let mut stopped = None;
        let mut end = pipeline::relay_holding_last(&mut out, sink, limit, &mut tally, &mut held);
        if let End::SinkFailed(e) = end {
            stopped = Some(e);
            end = pipeline::relay_counted(&mut out, &mut io::sink(), limit, &mut tally);
        }
        drop(out);
        match end {
            End::SinkFailed(e) => unreachable!("io::sink never fails: {e}"),
            End::TooLong => {
                cat.kill();
                let _ = cat.wait();
                return Err(self.mismatch(&format!(
                    "more than the {} bytes its record says",
                    self.record.size
                )));
            }
            End::SourceFailed(e) => {
                cat.kill();
                let _ = cat.wait();
                return Err(exit::failed(format!("reading {} failed: {e}", self.path)));
            }
            End::SourceDone => {}
        }
        let ended = cat.wait()?;
        if !ended.success() {
            return Err(crate::rclone::remote_error(
                &format!("reading backup {}", self.record.name),
                &ended,
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
        if let Some(e) = stopped {
            return Ok(Streamed::ConsumerStopped(e));
        }
        match sink.write_all(&held).and_then(|_| sink.flush()) {
            Ok(()) => Ok(Streamed::Verified),
            Err(e) => Ok(Streamed::ConsumerStopped(e)),
        }
    }

    /// Reads the whole backup and checks it, touching nothing else.
    pub fn verify(&self) -> Result<()> {
        match self.stream_into(&mut io::sink())? {
            Streamed::Verified => Ok(()),
            Streamed::ConsumerStopped(e) => Err(exit::failed(format!("verifying: {e}"))),
        }
    }

    fn mismatch(&self, what: &str) -> anyhow::Error {
        exit::integrity(format!(
            "backup {} failed its integrity check: read {what}. The stored object is damaged or was changed; restore another backup (rcbackup listbackups)",
            self.record.name
        ))
    }
}

/// Sets the password in the child's environment only; never in argv.
pub(crate) fn password_env(cmd: &mut Command, var: &str, db: &Database) -> Result<()> {
    if let Some(p) = db.password()? {
        cmd.env(var, p);
    }
    Ok(())
}

/// After a restore stopped, the error for the first cause: the consumer's
/// own failure if it ended badly, else how the stream ended.
pub(crate) fn consumer_error(tool: Proc, stopped: io::Error) -> anyhow::Error {
    match tool.wait() {
        Ok(end) if !end.success() => exit::failed(format!("restore failed: {}", end.describe())),
        Ok(end) => exit::failed(format!(
            "restore failed: {} stopped reading the backup early ({stopped})",
            end.tool
        )),
        Err(e) => e,
    }
}
