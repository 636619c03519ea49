//! MariaDB and MySQL: `mariadb-dump`/`mysqldump --single-transaction
//! --quick` to back up, the `mariadb`/`mysql` client to restore. Their DDL
//! commits implicitly, so no transaction can undo a half-done restore:
//! the backup is read and checked in full before the restore starts. Once
//! the client started, any failure says the database may be partly
//! restored. The dump must end with its `-- Dump completed` trailer, so
//! `dump_args` that remove the trailer are refused.

use std::process::{Command, Stdio};

use anyhow::Result;

use super::{
    consumer_error, describe_restore_tool, password_env, restore_failed, Source, Streamed,
};
use crate::database::Database;
use crate::exit;
use crate::process::{on_path, widen_pipe, Proc};

/// MariaDB's own names first; MySQL's where those are missing.
pub(super) fn tool(mariadb: &'static str, mysql: &'static str) -> &'static str {
    if on_path(mariadb) {
        mariadb
    } else {
        mysql
    }
}

pub(super) fn connection(cmd: &mut Command, db: &Database) -> Result<()> {
    if let Some(h) = &db.host {
        cmd.arg(format!("--host={h}"));
    }
    if let Some(p) = db.port {
        cmd.arg(format!("--port={p}"));
    }
    if let Some(u) = &db.user {
        cmd.arg(format!("--user={u}"));
    }
    // The URL's query string (ssl-mode, ssl-ca, ...) as client options:
    // paths and modes only, never a secret.
    cmd.args(&db.options.args);
    password_env(cmd, "MYSQL_PWD", db)
}

/// `dump_args` that remove the trailer the dump check relies on, or send
/// the dump somewhere other than stdout.
fn refuse_unframed(args: &[String]) -> Result<()> {
    for a in args {
        let (flag, value) = a.split_once('=').unwrap_or((a.as_str(), ""));
        let why = match flag {
            "--compact" | "--skip-comments" => "removes the `-- Dump completed` trailer",
            "--comments"
                if matches!(value.to_ascii_lowercase().as_str(), "0" | "off" | "false") =>
            {
                "removes the `-- Dump completed` trailer"
            }
            "--xml" | "-X" => "writes XML, which the mariadb client cannot restore",
            "--tab" | "-T" | "--result-file" | "-r" => {
                "writes the dump to files instead of its output"
            }
            _ if a.starts_with("-T") || a.starts_with("-r") => {
                "writes the dump to files instead of its output"
            }
            _ => continue,
        };
        return Err(exit::usage(format!(
            "`dump_args` holds `{a}`, which {why}: rcbackup checks every dump for that trailer, so every backup would fail. Remove it from dump_args"
        )));
    }
    Ok(())
}

pub fn dump(db: &Database) -> Result<(String, Command)> {
    refuse_unframed(&db.dump_args)?;
    let name = tool("mariadb-dump", "mysqldump");
    let mut cmd = Command::new(name);
    connection(&mut cmd, db)?;
    cmd.args(["--single-transaction", "--quick"]);
    cmd.args(&db.dump_args);
    cmd.arg("--").arg(&db.name);
    Ok((name.into(), cmd))
}

/// What a failure after the client started means for the database.
const PARTLY: &str =
    "the database may be partly restored: fix the cause and run the restore again before using it";

pub fn restore(db: &Database, source: &Source) -> Result<()> {
    // First pass: the whole backup must be intact before anything changes.
    source
        .verify()
        .map_err(|e| restore_failed(db, e, "nothing was restored"))?;

    let name = tool("mariadb", "mysql");
    let mut cmd = Command::new(name);
    connection(&mut cmd, db)?;
    cmd.args(&db.restore_args);
    cmd.arg(format!("--database={}", db.name));
    cmd.stdin(Stdio::piped()).stdout(Stdio::null());
    let mut client = Proc::spawn(name, &mut cmd)?;
    let mut stdin = client.take_stdin();
    widen_pipe(&stdin);
    match source.stream_into(&mut stdin) {
        Ok(Streamed::Verified) => {}
        Ok(Streamed::ConsumerStopped(e)) => {
            drop(stdin);
            return Err(restore_failed(db, consumer_error(client, e), PARTLY));
        }
        Err(e) => {
            // Stop the client before it reads the end of a stream that
            // failed: it was intact a moment ago, so it changed or could
            // not be read, or the run was interrupted.
            client.kill();
            let _ = client.wait();
            let e = if exit::code_for(&e) == exit::ExitCode::Integrity {
                exit::with_note(e, "the backup changed while it was being restored")
            } else {
                e
            };
            return Err(restore_failed(db, e, PARTLY));
        }
    }
    drop(stdin);
    let end = client.wait()?;
    if !end.success() {
        let e = exit::failed(format!("restore failed: {}", describe_restore_tool(&end)));
        return Err(restore_failed(db, e, PARTLY));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_args_that_remove_the_trailer() {
        let refused = |a: &str| refuse_unframed(&[a.to_string()]).is_err();
        for a in [
            "--compact",
            "--skip-comments",
            "--comments=0",
            "--xml",
            "-T/tmp",
            "--result-file=x",
        ] {
            assert!(refused(a), "{a}");
        }
        for a in [
            "--skip-dump-date",
            "--ignore-table=db.t",
            "--comments",
            "--routines",
        ] {
            assert!(!refused(a), "{a}");
        }
    }
}
