//! PostgreSQL and PostGIS: `pg_dump --format=custom` to back up,
//! `pg_restore --single-transaction` to restore.
//!
//! Why the restore cannot commit a damaged backup: pg_restore reads a
//! streamed custom-format archive in order and commits only after its last
//! data block, which ends at the archive's last byte; [`Source::stream_into`]
//! hands over the final chunk only once the whole stream matched its record.
//! On a mismatch pg_restore is killed before it could commit, and the server
//! rolls the transaction back. A restore that selects only part of the
//! archive (`restore_args` such as `-t`) may stop reading early, so it is
//! checked in full first.

use std::process::{Command, Stdio};

use anyhow::Result;

use super::{consumer_error, password_env, Source, Streamed};
use crate::database::{Database, EngineKind};
use crate::exit;
use crate::process::{quiet, widen_pipe, Proc};

fn connection(cmd: &mut Command, db: &Database) -> Result<()> {
    if let Some(h) = &db.host {
        cmd.arg("--host").arg(h);
    }
    if let Some(p) = db.port {
        cmd.arg("--port").arg(p.to_string());
    }
    if let Some(u) = &db.user {
        cmd.arg("--username").arg(u);
    }
    cmd.arg("--no-password");
    password_env(cmd, "PGPASSWORD", db)?;
    cmd.env("PGCONNECT_TIMEOUT", "15");
    Ok(())
}

pub fn dump(db: &Database) -> Result<(String, Command)> {
    let mut cmd = Command::new("pg_dump");
    cmd.arg("--format=custom");
    connection(&mut cmd, db)?;
    cmd.args(&db.dump_args);
    cmd.arg("--dbname").arg(&db.name);
    Ok(("pg_dump".into(), cmd))
}

pub fn restore(db: &Database, source: &Source) -> Result<()> {
    const LEFT: &str = "the database was left as it was";
    if !db.restore_args.is_empty() {
        source.verify().map_err(|e| exit::with_note(e, LEFT))?;
    }
    if db.engine == EngineKind::Postgis {
        ensure_postgis(db)?;
    }
    let mut cmd = Command::new("pg_restore");
    cmd.args([
        "--no-owner",
        "--no-acl",
        "--clean",
        "--if-exists",
        "--single-transaction",
    ]);
    connection(&mut cmd, db)?;
    cmd.args(&db.restore_args);
    cmd.arg("--dbname").arg(&db.name);
    cmd.stdin(Stdio::piped()).stdout(Stdio::null());
    let mut pg_restore = Proc::spawn("pg_restore", &mut cmd)?;
    let mut stdin = pg_restore.take_stdin();
    widen_pipe(&stdin);
    let streamed = source.stream_into(&mut stdin);
    drop(stdin);
    match streamed {
        Ok(Streamed::Verified) => {}
        Ok(Streamed::ConsumerStopped(e)) => {
            return Err(exit::with_note(consumer_error(pg_restore, e), LEFT))
        }
        Err(e) => {
            // Killed before it read the end: it never sent COMMIT.
            pg_restore.kill();
            let _ = pg_restore.wait();
            return Err(exit::with_note(e, LEFT));
        }
    }
    let end = pg_restore.wait()?;
    if !end.success() {
        return Err(exit::failed(format!(
            "restore failed: {}; the transaction was rolled back, {LEFT}",
            end.describe()
        )));
    }
    Ok(())
}

/// PostGIS must exist before a dump that uses it can be restored.
fn ensure_postgis(db: &Database) -> Result<()> {
    let mut cmd = Command::new("psql");
    cmd.args(["--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1"]);
    connection(&mut cmd, db)?;
    cmd.arg("--dbname").arg(&db.name);
    cmd.arg("--command=CREATE EXTENSION IF NOT EXISTS postgis");
    let end = Proc::spawn("psql", quiet(&mut cmd))?.wait()?;
    if !end.success() {
        return Err(exit::failed(format!(
            "cannot create the postgis extension before restoring: {}. Install PostGIS on the server (e.g. postgresql-15-postgis-3)",
            end.describe()
        )));
    }
    Ok(())
}
