//! SQLite: the `sqlite3` shell's `.dump` (SQL text, read inside one read
//! transaction, so it is consistent while the application writes) to back
//! up. Restore builds a new database file beside the old one from the
//! stream and renames it over the old one only when the stream matched its
//! record and the shell succeeded, so a restore never duplicates rows and a
//! failure leaves the old file untouched.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::Result;

use super::{consumer_error, Source, Streamed};
use crate::database::Database;
use crate::exit;
use crate::process::{widen_pipe, Proc};

pub fn dump(db: &Database) -> Result<(String, Command)> {
    let path = Path::new(&db.name);
    if !path.is_file() {
        return Err(exit::failed(format!(
            "SQLite database {} (database `{}`) does not exist or is not a file; check `name` in the config",
            path.display(),
            db.alias
        )));
    }
    let mut cmd = Command::new("sqlite3");
    cmd.args(["-bail", "-readonly"]);
    cmd.args(&db.dump_args);
    cmd.arg(path).arg(".dump");
    Ok(("sqlite3".into(), cmd))
}

/// Removes the new file unless the restore succeeded.
struct Staging(Option<PathBuf>);

impl Drop for Staging {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(&p);
            let _ = std::fs::remove_file(sidecar(&p, "-journal"));
        }
    }
}

fn sidecar(p: &Path, suffix: &str) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

pub fn restore(db: &Database, source: &Source) -> Result<()> {
    let target = PathBuf::from(&db.name);
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        return Err(exit::failed(format!(
            "the folder of SQLite database {} does not exist",
            target.display()
        )));
    }
    let file_name = target
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let staging = dir.join(format!(
        ".{file_name}.rcbackup-restore-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&staging);
    let mut guard = Staging(Some(staging.clone()));

    let mut cmd = Command::new("sqlite3");
    cmd.arg("-bail");
    cmd.args(&db.restore_args);
    cmd.arg(&staging);
    cmd.stdin(Stdio::piped()).stdout(Stdio::null());
    let mut shell = Proc::spawn("sqlite3", &mut cmd)?;
    let mut stdin = shell.take_stdin();
    widen_pipe(&stdin);
    match source.stream_into(&mut stdin) {
        Ok(Streamed::Verified) => {}
        Ok(Streamed::ConsumerStopped(e)) => {
            drop(stdin);
            let left = format!("{} was left as it was", target.display());
            return Err(exit::with_note(consumer_error(shell, e), &left));
        }
        Err(e) => {
            shell.kill();
            let left = format!("{} was left as it was", target.display());
            return Err(exit::with_note(e, &left));
        }
    }
    drop(stdin);
    let end = shell.wait()?;
    if !end.success() {
        return Err(exit::failed(format!(
            "restore failed: {}; {} was left as it was",
            end.describe(),
            target.display()
        )));
    }
    // A write-ahead log left by the old database would be replayed into the
    // new file: fold it into the old file first, then drop it.
    let wal = sidecar(&target, "-wal");
    if wal.metadata().is_ok_and(|m| m.len() > 0) {
        let mut ck = Command::new("sqlite3");
        ck.arg(&target).arg("PRAGMA wal_checkpoint(TRUNCATE);");
        ck.stdin(Stdio::null()).stdout(Stdio::null());
        let end = Proc::spawn("sqlite3", &mut ck)?.wait()?;
        if !end.success() {
            return Err(exit::failed(format!(
                "cannot checkpoint the write-ahead log of {} ({}); stop the application using it and retry",
                target.display(),
                end.describe()
            )));
        }
    }
    std::fs::rename(&staging, &target).map_err(|e| {
        exit::failed(format!(
            "replacing {} with the restored copy: {e}",
            target.display()
        ))
    })?;
    guard.0 = None;
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(sidecar(&target, suffix));
    }
    Ok(())
}
