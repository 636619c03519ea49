//! SQLite: the `sqlite3` shell's `.dump` (SQL text, read inside one read
//! transaction, so it is consistent while the application writes) to back
//! up. The dump waits up to [`BUSY_TIMEOUT_MS`] for a writer holding the
//! database, and its output is checked (no error line, a closing
//! `COMMIT;`) before it is published.
//!
//! Restore builds a new database file (the staging file, named with the
//! restoring pid) beside the database from the stream, and renames it over
//! the old one only when the stream matched its record, the shell exited 0
//! and wrote no error, the replayed stream had a complete dump's framing and
//! `PRAGMA integrity_check` says `ok`; the new file gets the owner, group
//! and mode of the one it replaces. A symlinked database path is restored
//! into the file the link points to, keeping the link. So a restore never
//! duplicates rows, and a failure leaves the old file untouched. Staging
//! files of restores that are no longer running (killed with SIGKILL) are
//! removed by the next restore of that database.
//!
//! A backup adopted from django-dbbackup may be a SQLite database file
//! itself (its SqliteBackupConnector): it is written into the staging file
//! as it streams, and goes through the same checks (the file's size as its
//! header gives it, `PRAGMA integrity_check`) and the same swap.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::Result;
use chrono::{DateTime, Utc};

use super::framing::{self, CheckedWrite, DumpCheck, Framing, NoShellCommands};
use super::{consumer_error, describe_restore_tool, restore_failed, LocalLeftover};
use super::{Source, Streamed};
use crate::database::Database;
use crate::exit;
use crate::process::{widen_pipe, Proc};

/// How long the dump waits for a writer that holds the database.
const BUSY_TIMEOUT_MS: u32 = 30_000;

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
    cmd.args(["-bail", "-readonly", "-cmd"])
        .arg(format!(".timeout {BUSY_TIMEOUT_MS}"));
    cmd.args(&db.dump_args);
    cmd.arg(path).arg(".dump");
    Ok(("sqlite3".into(), cmd))
}

/// The SQLite library's version, after opening the file read-only and
/// reading its schema (`rcbackup config check`): a missing file or one
/// that is not a database fails.
pub fn server_version(db: &Database) -> Result<String> {
    let path = Path::new(&db.name);
    if !path.is_file() {
        return Err(exit::failed(format!(
            "SQLite database {} does not exist or is not a file; check `name` in the config",
            path.display()
        )));
    }
    let mut cmd = Command::new("sqlite3");
    cmd.args(["-bail", "-readonly", "-cmd"])
        .arg(format!(".timeout {BUSY_TIMEOUT_MS}"))
        .arg(path)
        .arg("SELECT sqlite_version() FROM (SELECT count(*) FROM sqlite_master)");
    cmd.stdin(Stdio::null()).stdout(Stdio::piped());
    let mut p = Proc::spawn("sqlite3", &mut cmd)?;
    let mut out = String::new();
    let _ = p.take_stdout().read_to_string(&mut out);
    let end = p.wait()?;
    if !end.success() {
        return Err(exit::failed(format!(
            "cannot read {}: {}",
            path.display(),
            end.describe()
        )));
    }
    Ok(out.trim().to_string())
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

/// The file `path` names, following symlinks (a dangling link gives the
/// path it points to, where the restore will create the file).
fn resolve(path: &Path) -> Result<PathBuf> {
    let mut p = path.to_path_buf();
    for _ in 0..40 {
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let link = std::fs::read_link(&p).map_err(|e| {
                    exit::failed(format!("reading the symlink {}: {e}", p.display()))
                })?;
                p = match p.parent() {
                    Some(dir) if link.is_relative() => dir.join(link),
                    _ => link,
                };
            }
            _ => return Ok(p),
        }
    }
    Err(exit::failed(format!(
        "SQLite database path {} is a loop of symlinks; check `name` in the config",
        path.display()
    )))
}

fn folder_of(p: &Path) -> PathBuf {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// `.<file>.rcbackup-restore-`: the start of a staging file's name. A long
/// file name is shortened (its start, and a digest of the whole name) so
/// that the staging file and its journal stay within the 255-byte limit
/// of file names.
fn staging_prefix(target: &Path) -> String {
    use sha2::Digest as _;
    /// Room left for `.`, `.rcbackup-restore-`, a pid and `-journal`.
    const ROOM: usize = 200;
    let file_name = target
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    if file_name.len() <= ROOM {
        return format!(".{file_name}.rcbackup-restore-");
    }
    let mut cut = 120;
    while !file_name.is_char_boundary(cut) {
        cut -= 1;
    }
    let digest = hex::encode(&sha2::Sha256::digest(file_name.as_bytes())[..8]);
    format!(".{}~{digest}.rcbackup-restore-", &file_name[..cut])
}

/// The pid in a staging file's (or its journal's) name, if `name` is one
/// for the database whose staging names start with `prefix`.
fn staging_pid(name: &str, prefix: &str) -> Option<u32> {
    let rest = name.strip_prefix(prefix)?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let pid = rest[..digits].parse().ok()?;
    matches!(&rest[digits..], "" | "-journal" | "-wal" | "-shm").then_some(pid)
}

fn pid_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    // SAFETY: signal 0 only checks that the process exists.
    let r = unsafe { libc::kill(pid as libc::pid_t, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Staging files (and journals) beside `target`.
fn leftovers_of(target: &Path) -> Vec<LocalLeftover> {
    let prefix = staging_prefix(target);
    let Ok(entries) = std::fs::read_dir(folder_of(target)) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = staging_pid(&name, &prefix) else {
            continue;
        };
        let last_seen = e
            .metadata()
            .and_then(|m| m.modified())
            .map(DateTime::<Utc>::from)
            .unwrap_or_else(|_| Utc::now());
        out.push(LocalLeftover {
            path: e.path(),
            last_seen,
            running: pid_alive(pid),
        });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// Staging files of `db`'s restores: beside the file its path resolves to,
/// and beside the configured path itself if that is a symlink elsewhere.
pub fn leftovers(db: &Database) -> Vec<LocalLeftover> {
    let named = PathBuf::from(&db.name);
    let mut out = leftovers_of(&named);
    if let Ok(real) = resolve(&named) {
        if folder_of(&real) != folder_of(&named) || real.file_name() != named.file_name() {
            out.extend(leftovers_of(&real));
        }
    }
    out
}

/// Removes what earlier restores, no longer running, left.
fn remove_stale(db: &Database) {
    for l in leftovers(db).into_iter().filter(|l| !l.running) {
        match super::remove_local_leftover(&l) {
            Ok(()) => tracing::info!(
                "removed {}, left by an interrupted restore",
                l.path.display()
            ),
            Err(e) => tracing::warn!("{e:#}"),
        }
    }
}

/// What the backup's stream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// SQL for the sqlite3 shell (`.dump`).
    Dump,
    /// A database file (adopted from django-dbbackup).
    File,
}

pub fn restore(db: &Database, source: &Source, input: Input) -> Result<()> {
    let target = resolve(Path::new(&db.name))?;
    let dir = folder_of(&target);
    if !dir.is_dir() {
        return Err(exit::failed(format!(
            "the folder of SQLite database {} does not exist",
            target.display()
        )));
    }
    remove_stale(db);
    let staging = dir.join(format!("{}{}", staging_prefix(&target), std::process::id()));
    let _ = std::fs::remove_file(&staging);
    let _ = std::fs::remove_file(sidecar(&staging, "-journal"));
    let mut guard = Staging(Some(staging.clone()));
    let left = format!("{} was left as it was", target.display());
    match input {
        Input::Dump => replay(db, source, &staging, &left)?,
        Input::File => copy_in(db, source, &staging, &left)?,
    }
    integrity_check(&staging).map_err(|e| restore_failed(db, e, &left))?;
    keep_owner_and_mode(&target, &staging).map_err(|e| restore_failed(db, e, &left))?;

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
                "cannot checkpoint the write-ahead log of {} ({}); stop the application using it and retry; {left}",
                target.display(),
                end.describe()
            )));
        }
    }
    crate::failpoint::reached("restore-swap");
    if crate::interrupt::interrupted() {
        return Err(restore_failed(
            db,
            exit::interrupted_at("interrupted"),
            &left,
        ));
    }
    if let Some(check) = source.may_commit {
        check().map_err(|e| restore_failed(db, e, &left))?;
    }
    std::fs::rename(&staging, &target).map_err(|e| {
        exit::failed(format!(
            "replacing {} with the restored copy: {e}; {left}",
            target.display()
        ))
    })?;
    guard.0 = None;
    for suffix in ["-wal", "-shm", "-journal"] {
        let _ = std::fs::remove_file(sidecar(&target, suffix));
    }
    let _ = std::fs::remove_file(sidecar(&staging, "-journal"));
    Ok(())
}

/// Replays a `.dump` into `staging` with the sqlite3 shell, confined, and
/// checks that the stream was a complete dump the shell took without error.
fn replay(db: &Database, source: &Source, staging: &Path, left: &str) -> Result<()> {
    let left = left.to_string();
    let mut cmd = Command::new("sqlite3");
    cmd.arg("-bail");
    // A backup is SQL for the new file, nothing else: dot-commands
    // (`.shell`, `.system`, `.output`) and ATTACH would reach this
    // machine, and other database files.
    if super::tool_knows("sqlite3", "-help", "-safe") {
        cmd.arg("-safe");
    } else {
        super::without_confinement(db, "sqlite3", "-safe")?;
    }
    cmd.args(&db.restore_args);
    cmd.arg(staging);
    cmd.stdin(Stdio::piped()).stdout(Stdio::null());
    crate::process::die_with_parent(&mut cmd);
    let mut shell = Proc::spawn("sqlite3", &mut cmd)?;
    let mut stdin = shell.take_stdin();
    widen_pipe(&stdin);
    // The replayed stream must be a complete dump: a backup made before
    // dumps were checked may end in `ROLLBACK; -- due to errors`, which
    // replays "successfully" into an empty file.
    let mut check = DumpCheck::new(Framing::SqliteDump);
    let mut guarded = NoShellCommands::new(&mut stdin);
    let streamed = source.stream_into(&mut CheckedWrite {
        inner: &mut guarded,
        check: &mut check,
    });
    if let Some(what) = guarded.found.take() {
        // Never passed on: what came before it went to the staging file,
        // which goes.
        shell.kill();
        let _ = shell.wait();
        return Err(restore_failed(
            db,
            exit::integrity(format!(
                "backup {} matches its record but {}: it was altered. Restore another backup (rcbackup listbackups)",
                source.record.name,
                framing::shell_command_found(&what)
            )),
            &left,
        ));
    }
    match streamed {
        Ok(Streamed::Verified) => {}
        Ok(Streamed::ConsumerStopped(e)) => {
            drop(stdin);
            return Err(restore_failed(db, consumer_error(shell, e), &left));
        }
        Err(e) => {
            shell.kill();
            let _ = shell.wait();
            return Err(restore_failed(db, e, &left));
        }
    }
    drop(stdin);
    let end = shell.wait()?;
    if !end.success() {
        let e = exit::failed(format!("restore failed: {}", describe_restore_tool(&end)));
        return Err(restore_failed(db, e, &left));
    }
    if !end.stderr_tail.trim().is_empty() {
        return Err(restore_failed(
            db,
            exit::failed(format!(
                "restore failed: sqlite3 reported errors while replaying the backup ({})",
                describe_restore_tool(&end)
            )),
            &left,
        ));
    }
    if let Err(why) = check.finish() {
        return Err(exit::failed(format!(
            "restore failed: backup {} is not a complete SQLite dump: {why}. It was probably made from a database sqlite3 could not read; restore an older backup (rcbackup listbackups); {left}",
            source.record.name
        )));
    }
    Ok(())
}

/// Writes a backup that is a database file into `staging` as it streams.
fn copy_in(db: &Database, source: &Source, staging: &Path, left: &str) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(staging)
        .map_err(|e| {
            exit::failed(format!(
                "restore failed: cannot create {}: {e}; {left}",
                staging.display()
            ))
        })?;
    let mut check = DumpCheck::new(Framing::SqliteFile);
    let streamed = source.stream_into(&mut CheckedWrite {
        inner: &mut file,
        check: &mut check,
    });
    match streamed {
        Ok(Streamed::Verified) => {}
        Ok(Streamed::ConsumerStopped(e)) => {
            return Err(restore_failed(
                db,
                exit::failed(format!(
                    "restore failed: writing {}: {e}",
                    staging.display()
                )),
                left,
            ))
        }
        Err(e) => return Err(restore_failed(db, e, left)),
    }
    file.sync_all().map_err(|e| {
        exit::failed(format!(
            "restore failed: writing {}: {e}; {left}",
            staging.display()
        ))
    })?;
    check.finish().map_err(|why| {
        exit::integrity(format!(
            "backup {} matches its record but is not a whole SQLite database file: {why}. Restore another backup (rcbackup listbackups); {left}",
            source.record.name
        ))
    })
}

/// `PRAGMA integrity_check` of the new file must say `ok`.
fn integrity_check(file: &Path) -> Result<()> {
    let mut cmd = Command::new("sqlite3");
    cmd.args(["-bail", "-readonly"])
        .arg(file)
        .arg("PRAGMA integrity_check;");
    cmd.stdin(Stdio::null()).stdout(Stdio::piped());
    let mut p = Proc::spawn("sqlite3", &mut cmd)?;
    let mut out = String::new();
    let read = p.take_stdout().read_to_string(&mut out);
    let end = p.wait()?;
    if !end.success() || read.is_err() || out.trim() != "ok" {
        let first = out.lines().next().unwrap_or("").trim().to_string();
        return Err(exit::failed(format!(
            "restore failed: the restored database failed PRAGMA integrity_check ({}); restore another backup (rcbackup listbackups)",
            if first.is_empty() {
                describe_restore_tool(&end)
            } else {
                super::framing::redact(&first)
            }
        )));
    }
    Ok(())
}

/// Gives the new file the owner, group and mode of the file it replaces.
fn keep_owner_and_mode(target: &Path, staging: &Path) -> Result<()> {
    let Ok(old) = std::fs::metadata(target) else {
        return Ok(()); // nothing to replace
    };
    std::os::unix::fs::chown(staging, Some(old.uid()), Some(old.gid())).map_err(|e| {
        exit::failed(format!(
            "restore failed: cannot give the restored copy the owner of {} (uid {}, gid {}): {e}. Run the restore as root or as that owner",
            target.display(),
            old.uid(),
            old.gid()
        ))
    })?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        staging,
        std::fs::Permissions::from_mode(old.mode() & 0o7777),
    )
    .map_err(|e| {
        exit::failed(format!(
            "restore failed: cannot give the restored copy the mode of {}: {e}",
            target.display()
        ))
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_names() {
        let p = staging_prefix(Path::new("/srv/app/db.sqlite3"));
        assert_eq!(p, ".db.sqlite3.rcbackup-restore-");
        assert_eq!(staging_pid(".db.sqlite3.rcbackup-restore-42", &p), Some(42));
        assert_eq!(
            staging_pid(".db.sqlite3.rcbackup-restore-42-journal", &p),
            Some(42)
        );
        assert_eq!(staging_pid(".db.sqlite3.rcbackup-restore-42x", &p), None);
        assert_eq!(staging_pid(".db.sqlite3.rcbackup-restore-", &p), None);
        assert_eq!(staging_pid(".other.rcbackup-restore-42", &p), None);
        // A 245-byte name still leaves a staging name under 255 bytes.
        let long = format!("/srv/{}.db", "a".repeat(242));
        let p = staging_prefix(Path::new(&long));
        assert!(p.len() + "4294967295-journal".len() <= 255, "{}", p.len());
        assert_ne!(
            p,
            staging_prefix(Path::new(&format!("/srv/{}.db", "a".repeat(243))))
        );
    }
}
