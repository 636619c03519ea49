//! MariaDB and MySQL: `mariadb-dump`/`mysqldump --single-transaction
//! --quick` to back up, the `mariadb`/`mysql` client to restore. Their DDL
//! commits implicitly, so no transaction can undo a half-done restore:
//! the backup is read and checked in full before the restore starts.

use std::process::{Command, Stdio};

use anyhow::Result;

use super::{consumer_error, password_env, Source, Streamed};
use crate::database::Database;
use crate::exit;
use crate::process::{on_path, widen_pipe, Proc};

/// MariaDB's own names first; MySQL's where those are missing.
fn tool(mariadb: &'static str, mysql: &'static str) -> &'static str {
    if on_path(mariadb) {
        mariadb
    } else {
        mysql
    }
}

fn connection(cmd: &mut Command, db: &Database) -> Result<()> {
    if let Some(h) = &db.host {
        cmd.arg(format!("--host={h}"));
    }
    if let Some(p) = db.port {
        cmd.arg(format!("--port={p}"));
    }
    if let Some(u) = &db.user {
        cmd.arg(format!("--user={u}"));
    }
    password_env(cmd, "MYSQL_PWD", db)
}

pub fn dump(db: &Database) -> Result<(String, Command)> {
    let name = tool("mariadb-dump", "mysqldump");
    let mut cmd = Command::new(name);
    connection(&mut cmd, db)?;
    cmd.args(["--single-transaction", "--quick"]);
    cmd.args(&db.dump_args);
    cmd.arg("--").arg(&db.name);
    Ok((name.into(), cmd))
}

pub fn restore(db: &Database, source: &Source) -> Result<()> {
    // First pass: the whole backup must be intact before anything changes.
    source
        .verify()
        .map_err(|e| exit::with_note(e, "nothing was restored"))?;

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
            return Err(consumer_error(client, e));
        }
        Err(e) => {
            // Changed between the check and the restore: stop the client.
            client.kill();
            return Err(exit::with_note(
                e,
                "the backup changed while it was being restored; the database may be partly restored",
            ));
        }
    }
    drop(stdin);
    let end = client.wait()?;
    if !end.success() {
        return Err(exit::failed(format!("restore failed: {}", end.describe())));
    }
    Ok(())
}
