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
//!
//! PostGIS: a dump made with a table or schema filter does not create the
//! extension; if the target lacks it, the backup is checked in full before
//! `CREATE EXTENSION postgis` runs, so a damaged backup changes nothing.
//!
//! The database name reaches every tool as a conninfo `dbname='...'`
//! (quoted), so a name holding `=` is never parsed as a connection string.
//! Only the custom format carries the `PGDMP` header the dump check relies
//! on (and streams into pg_restore), so `dump_args` choosing another format
//! or an output file are refused.

use std::io::Read;
use std::process::{Command, Stdio};

use anyhow::Result;

use super::{
    consumer_error, describe_restore_tool, password_env, restore_failed, Source, Streamed,
};
use crate::compression::Compression;
use crate::database::{Database, EngineKind};
use crate::exit;
use crate::process::{quiet, widen_pipe, Proc};

pub(super) fn connection(cmd: &mut Command, db: &Database) -> Result<()> {
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
    // The URL's query string (sslmode, sslrootcert, ...), as libpq's
    // environment; it may override the timeout above.
    for (var, value) in &db.options.env {
        cmd.env(var, value);
    }
    Ok(())
}

/// `--dbname` as a conninfo naming the database, quoted: libpq would
/// parse a bare name holding `=` as a connection string.
pub(super) fn dbname_arg(name: &str) -> String {
    let quoted = name.replace('\\', "\\\\").replace('\'', "\\'");
    format!("--dbname=dbname='{quoted}'")
}

/// `dump_args` that choose a format other than custom, or write elsewhere
/// than stdout.
fn refuse_unframed(args: &[String]) -> Result<()> {
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        let next = args.get(i + 1).map(String::as_str).unwrap_or("");
        let format = if let Some(v) = a.strip_prefix("--format=") {
            Some(v)
        } else if a == "--format" || a == "-F" {
            Some(next)
        } else {
            a.strip_prefix("-F")
        };
        let why = match format {
            Some(f) if !matches!(f, "c" | "custom") => {
                "chooses a format other than custom, which has no PGDMP header and cannot be streamed into pg_restore"
            }
            Some(_) => "",
            None if a == "-f" || a == "--file" || a.starts_with("--file=") || (a.starts_with("-f") && a.len() > 2) => {
                "writes the dump to a file instead of its output"
            }
            None => "",
        };
        if !why.is_empty() {
            return Err(exit::usage(format!(
                "`dump_args` holds `{a}`, which {why}: rcbackup needs pg_dump's custom format on its output. Remove it from dump_args"
            )));
        }
        i += 1;
    }
    Ok(())
}

pub fn dump(db: &Database, compression: Compression) -> Result<(String, Command)> {
    refuse_unframed(&db.dump_args)?;
    let mut cmd = Command::new("pg_dump");
    cmd.arg("--format=custom");
    if !compression.by_engine() {
        // rcbackup compresses (multi-threaded zstd), or nothing does.
        cmd.arg("--compress=0");
    }
    connection(&mut cmd, db)?;
    cmd.args(&db.dump_args);
    cmd.arg(dbname_arg(&db.name));
    Ok(("pg_dump".into(), cmd))
}

const LEFT: &str = "the database was left as it was";

pub fn restore(db: &Database, source: &Source) -> Result<()> {
    let mut verified = false;
    if !db.restore_args.is_empty() {
        source.verify().map_err(|e| restore_failed(db, e, LEFT))?;
        verified = true;
    }
    if db.engine == EngineKind::Postgis && !has_postgis(db)? {
        // Creating it is a change outside pg_restore's transaction: only
        // for a backup known to be intact.
        if !verified {
            source.verify().map_err(|e| restore_failed(db, e, LEFT))?;
        }
        create_postgis(db)?;
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
    cmd.arg(dbname_arg(&db.name));
    cmd.stdin(Stdio::piped()).stdout(Stdio::null());
    let mut pg_restore = Proc::spawn("pg_restore", &mut cmd)?;
    let mut stdin = pg_restore.take_stdin();
    widen_pipe(&stdin);
    let streamed = source.stream_into(&mut stdin);
    drop(stdin);
    match streamed {
        Ok(Streamed::Verified) => {}
        Ok(Streamed::ConsumerStopped(e)) => {
            return Err(restore_failed(db, consumer_error(pg_restore, e), LEFT))
        }
        Err(e) => {
            // Killed before it read the end: it never sent COMMIT.
            pg_restore.kill();
            let _ = pg_restore.wait();
            return Err(restore_failed(db, e, LEFT));
        }
    }
    let end = pg_restore.wait()?;
    if !end.success() {
        let e = exit::failed(format!(
            "restore failed: {}; the transaction was rolled back",
            describe_restore_tool(&end)
        ));
        return Err(restore_failed(db, e, LEFT));
    }
    Ok(())
}

/// Is PostGIS installed in the target database?
fn has_postgis(db: &Database) -> Result<bool> {
    let mut cmd = Command::new("psql");
    cmd.args([
        "--no-psqlrc",
        "--quiet",
        "--tuples-only",
        "--no-align",
        "--set=ON_ERROR_STOP=1",
    ]);
    connection(&mut cmd, db)?;
    cmd.arg(dbname_arg(&db.name));
    cmd.arg("--command=SELECT count(*) FROM pg_extension WHERE extname = 'postgis'");
    cmd.stdin(Stdio::null()).stdout(Stdio::piped());
    let mut psql = Proc::spawn("psql", &mut cmd)?;
    let mut out = String::new();
    let _ = psql.take_stdout().read_to_string(&mut out);
    let end = psql.wait()?;
    if !end.success() {
        return Err(exit::failed(format!(
            "cannot check for the postgis extension before restoring: {}; {LEFT}",
            end.describe()
        )));
    }
    Ok(out.trim() != "0")
}

/// PostGIS must exist before a dump that uses it can be restored.
fn create_postgis(db: &Database) -> Result<()> {
    let mut cmd = Command::new("psql");
    cmd.args(["--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1"]);
    connection(&mut cmd, db)?;
    cmd.arg(dbname_arg(&db.name));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_quoted_conninfo() {
        assert_eq!(dbname_arg("app"), "--dbname=dbname='app'");
        assert_eq!(dbname_arg("dbname=x y"), "--dbname=dbname='dbname=x y'");
        assert_eq!(dbname_arg(r"a'b\c"), r"--dbname=dbname='a\'b\\c'");
    }

    #[test]
    fn refuses_other_formats() {
        let refused = |a: &[&str]| {
            refuse_unframed(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>()).is_err()
        };
        for a in [
            &["--format=plain"][..],
            &["-Fp"],
            &["-F", "d"],
            &["--format", "tar"],
            &["-f", "x"],
            &["--file=x"],
        ] {
            assert!(refused(a), "{a:?}");
        }
        for a in [
            &["--format=custom"][..],
            &["-Fc"],
            &["-F", "c"],
            &["-Z0"],
            &["--table=t"],
        ] {
            assert!(!refused(a), "{a:?}");
        }
    }
}
