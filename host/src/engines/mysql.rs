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
    consumer_ended, describe_restore_tool, password_env, restore_failed, Source, Streamed,
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
    if db.scratch || !db.ambient_credentials {
        // Must come first. Option files are read by every client after
        // the environment: a `password=` there would replace the drill
        // user's, an `init-command` would run as it; and a tenant's
        // connection must not log in with the operator's `~/.my.cnf`.
        cmd.arg("--no-defaults");
    }
    if !db.ambient_credentials {
        for var in [
            "MYSQL_PWD",
            "MYSQL_HOST",
            "MYSQL_TCP_PORT",
            "MYSQL_UNIX_PORT",
        ] {
            cmd.env_remove(var);
        }
        // `localhost` means the local socket to MariaDB's tools, unless
        // the protocol is given (see Database::ambient_credentials).
        cmd.arg("--protocol=TCP");
    }
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

/// The server's `VERSION()`, asked by the client connecting exactly as the
/// dump tool does, to the database (`rcbackup config check`).
pub fn server_version(db: &Database) -> Result<String> {
    use std::io::Read;
    let name = tool("mariadb", "mysql");
    let mut cmd = Command::new(name);
    connection(&mut cmd, db)?;
    cmd.args([
        "--batch",
        "--skip-column-names",
        "--execute=SELECT VERSION()",
    ]);
    cmd.arg("--").arg(&db.name);
    cmd.stdin(Stdio::null()).stdout(Stdio::piped());
    let mut client = Proc::spawn(name, &mut cmd)?;
    let mut out = String::new();
    let _ = client.take_stdout().read_to_string(&mut out);
    let end = client.wait()?;
    if !end.success() {
        return Err(exit::failed(format!(
            "cannot connect: {}. Check host, port, user, the password's variable and name in the config",
            end.describe()
        )));
    }
    Ok(out.trim().to_string())
}

/// What a failure after the client started means for the database.
const PARTLY: &str =
    "the database may be partly restored: fix the cause and run the restore again before using it";
/// What a client that never connected (or was refused the database) changed.
const UNTOUCHED: &str = "nothing was restored";

/// The state the database is in after the client ended with `stderr`: an
/// error of a statement says `ERROR n (state) at line m`; one without a
/// line is the connection's (access denied, unknown database, no server),
/// before any statement ran.
fn state_after(stderr: &str) -> &'static str {
    let refused_at_connect = stderr
        .lines()
        .find(|l| l.starts_with("ERROR "))
        .is_some_and(|l| !l.contains(" at line "));
    if refused_at_connect {
        UNTOUCHED
    } else {
        PARTLY
    }
}

pub fn restore(db: &Database, source: &Source) -> Result<()> {
    // First pass: the whole backup must be intact before anything changes.
    source
        .verify()
        .map_err(|e| restore_failed(db, e, "nothing was restored"))?;

    let name = tool("mariadb", "mysql");
    let mut cmd = Command::new(name);
    connection(&mut cmd, db)?;
    // A backup is SQL for the server, nothing else: the client's own
    // commands (`\!`, `system`, `source`, `connect`) and LOAD DATA LOCAL
    // would reach this machine, or another server. --binary-mode parses
    // no client command but `\C` and DELIMITER, and passes bytes as they
    // are; --sandbox (which mariadb-dump's first line turns on, and an
    // altered backup may leave out) alone still allows `connect HOST`,
    // which would hand the password to a server the backup names.
    // --comments: comments in routine and trigger bodies are kept, as
    // they were written (the client strips them by default).
    cmd.args(["--local-infile=0", "--binary-mode", "--comments"]);
    if super::tool_knows(name, "--help", "--sandbox") {
        cmd.arg("--sandbox");
    } else {
        super::without_confinement(db, name, "--sandbox")?;
    }
    cmd.args(&db.restore_args);
    cmd.arg(format!("--database={}", db.name));
    cmd.stdin(Stdio::piped()).stdout(Stdio::null());
    crate::process::die_with_parent(&mut cmd);
    let mut client = Proc::spawn(name, &mut cmd)?;
    let mut stdin = client.take_stdin();
    widen_pipe(&stdin);
    match source.stream_into(&mut stdin) {
        Ok(Streamed::Verified) => {}
        Ok(Streamed::ConsumerStopped(e)) => {
            drop(stdin);
            let end = client.wait()?;
            let state = state_after(&end.stderr_tail);
            return Err(restore_failed(db, consumer_ended(&end, e), state));
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
        return Err(restore_failed(db, e, state_after(&end.stderr_tail)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_connection_restored_nothing() {
        let denied =
            "ERROR 1045 (28000): Access denied for user 'x'@'localhost' (using password: YES)";
        assert_eq!(state_after(denied), UNTOUCHED);
        assert_eq!(
            state_after("ERROR 1049 (42000): Unknown database 'nope'"),
            UNTOUCHED
        );
        let statement = "ERROR 1064 (42000) at line 17: You have an error in your SQL syntax";
        assert_eq!(state_after(statement), PARTLY);
        assert_eq!(state_after("mariadb: killed"), PARTLY);
    }

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
