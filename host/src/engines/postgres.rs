//! PostgreSQL and PostGIS: `pg_dump --format=custom` to back up; to restore,
//! `pg_restore` turns the archive into SQL which the host relays into one
//! `psql` session inside a transaction. The host sends COMMIT only after the
//! backup was read to the end and matched its record, and pg_restore
//! succeeded; anything else kills psql, and the server rolls back.

use std::io::Write;
use std::process::{Command, Stdio};

use anyhow::Result;

use super::{consumer_error, password_env, Source, Streamed};
use crate::database::{Database, EngineKind};
use crate::exit;
use crate::pipeline::{self, End};
use crate::process::{widen_pipe, Proc};

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
    // No ~/.pgpass or service file surprises beyond what the user set.
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
    let mut pg_restore = Command::new("pg_restore");
    pg_restore.args([
        "--no-owner",
        "--no-acl",
        "--clean",
        "--if-exists",
        "--exit-on-error",
        "--file=-",
    ]);
    pg_restore.args(&db.restore_args);
    pg_restore.stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut pg_restore = Proc::spawn("pg_restore", &mut pg_restore)?;

    let mut psql = Command::new("psql");
    psql.args(["--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1"]);
    connection(&mut psql, db)?;
    psql.arg("--dbname").arg(&db.name);
    psql.stdin(Stdio::piped()).stdout(Stdio::null());
    let mut psql = Proc::spawn("psql", &mut psql)?;

    let mut sql_in = psql.take_stdin();
    let mut sql_out = pg_restore.take_stdout();
    let mut archive_in = pg_restore.take_stdin();
    widen_pipe(&archive_in);
    widen_pipe(&sql_in);
    let postgis = db.engine == EngineKind::Postgis;

    // pg_restore's SQL is relayed by a second thread; this one feeds it the
    // archive. The relay hands psql's stdin back so that COMMIT is our call.
    let (streamed, relayed) = std::thread::scope(|s| {
        let relay = s.spawn(move || {
            let mut preamble = String::from("BEGIN;\n");
            if postgis {
                preamble.push_str("CREATE EXTENSION IF NOT EXISTS postgis;\n");
            }
            if let Err(e) = sql_in.write_all(preamble.as_bytes()) {
                return (End::SinkFailed(e), sql_in);
            }
            let (end, _) = pipeline::relay(&mut sql_out, &mut sql_in, None);
            (end, sql_in)
        });
        let streamed = source.stream_into(&mut archive_in);
        drop(archive_in);
        if streamed
            .as_ref()
            .map_or(true, |s| !matches!(s, Streamed::Verified))
        {
            // Stop pg_restore so the relay sees EOF; nothing will commit.
            pg_restore.kill();
        }
        (streamed, relay.join().expect("relay thread"))
    });
    let (relay_end, mut sql_in) = relayed;

    // Which stage failed first: psql, then pg_restore, then the backup itself.
    if let End::SinkFailed(e) = relay_end {
        pg_restore.kill();
        drop(sql_in);
        return Err(consumer_error(psql, e));
    }
    let fail_all = |mut psql: Proc, err: anyhow::Error| {
        psql.kill();
        let _ = psql.wait();
        err
    };
    match streamed {
        Err(e) => {
            return Err(fail_all(
                psql,
                exit::with_note(e, "the database was left as it was"),
            ))
        }
        Ok(Streamed::ConsumerStopped(e)) => {
            return Err(fail_all(psql, consumer_error(pg_restore, e)))
        }
        Ok(Streamed::Verified) => {}
    }
    let pg_restore_end = pg_restore.wait()?;
    if !pg_restore_end.success() || !matches!(relay_end, End::SourceDone) {
        let why = exit::failed(format!(
            "restore failed: {}; the database was left as it was",
            pg_restore_end.describe()
        ));
        return Err(fail_all(psql, why));
    }
    let committed = sql_in.write_all(b"COMMIT;\n").and_then(|_| sql_in.flush());
    drop(sql_in);
    let psql_end = psql.wait()?;
    if committed.is_err() || !psql_end.success() {
        return Err(exit::failed(format!(
            "restore failed: {}; the transaction was rolled back",
            psql_end.describe()
        )));
    }
    Ok(())
}
