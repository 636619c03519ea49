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

use std::io::{Read, Write};
use std::process::{Command, Stdio};

use anyhow::Result;

use super::framing::{psql_command_found, NoPsqlMetaCommands};
use super::psqlscan::Refused;
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
    if !db.ambient_credentials {
        // A path no file can have (/dev/null is no folder): libpq then
        // reads no passfile, service file or client key of this machine.
        const NO_FILE: &str = "/dev/null/rcbackup-none";
        for var in [
            "PGPASSWORD",
            "PGSERVICE",
            "PGUSER",
            "PGHOST",
            "PGHOSTADDR",
            "PGPORT",
            "PGDATABASE",
            "PGOPTIONS",
        ] {
            cmd.env_remove(var);
        }
        for var in [
            "PGPASSFILE",
            "PGSERVICEFILE",
            "PGSYSCONFDIR",
            "PGSSLCERT",
            "PGSSLKEY",
        ] {
            cmd.env(var, NO_FILE);
        }
    }
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

/// The pg_dump options rcbackup must see in `dump_args`, however written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Watched {
    Format,
    File,
    Compress,
}

/// pg_dump's short options that take a value (PostgreSQL 15 to 17): in a
/// bundle (`-vZ9`), the rest of the argument, or the next one, is the value.
const SHORT_WITH_VALUE: &str = "dEefFhjnNpStTUZ";
/// pg_dump's long options that take a value (PostgreSQL 15 to 17): without
/// `=`, the next argument is the value.
const LONG_WITH_VALUE: [&str; 28] = [
    "compress",
    "dbname",
    "encoding",
    "exclude-extension",
    "exclude-schema",
    "exclude-table",
    "exclude-table-and-children",
    "exclude-table-data",
    "exclude-table-data-and-children",
    "extension",
    "extra-float-digits",
    "file",
    "filter",
    "format",
    "host",
    "include-foreign-data",
    "jobs",
    "lock-wait-timeout",
    "port",
    "role",
    "rows-per-insert",
    "schema",
    "section",
    "snapshot",
    "superuser",
    "table",
    "table-and-children",
    "username",
];

/// The watched options in `args`, with their values, read the way pg_dump's
/// getopt reads them: short options bundled (`-vZ9` is `-v -Z 9`), long
/// options abbreviated to any prefix that is not ambiguous (`--comp=9` is
/// `--compress=9`), and a value in the next argument skipped, not read as
/// an option. A prefix pg_dump would find ambiguous is watched too: pg_dump
/// refuses it anyway.
fn watched_options(args: &[String]) -> Vec<(Watched, String, String)> {
    const LONG: [(&str, usize, Watched); 3] = [
        ("format", 2, Watched::Format),
        ("file", 3, Watched::File),
        ("compress", 3, Watched::Compress),
    ];
    let mut found = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        let next = args.get(i + 1).cloned().unwrap_or_default();
        i += 1;
        if a == "--" {
            break;
        }
        if let Some(long) = a.strip_prefix("--") {
            let (name, value) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (long, None),
            };
            let takes_value = !name.is_empty()
                && value.is_none()
                && LONG_WITH_VALUE.iter().any(|o| o.starts_with(name));
            let value = match value {
                Some(v) => v,
                None if takes_value => {
                    i += 1;
                    next.clone()
                }
                None => String::new(),
            };
            let hit = LONG
                .iter()
                .find(|(full, min, _)| name.len() >= *min && full.starts_with(name));
            if let Some((_, _, w)) = hit {
                found.push((*w, a.to_string(), value));
            }
            continue;
        }
        let Some(bundle) = a.strip_prefix('-').filter(|b| !b.is_empty()) else {
            continue;
        };
        for (at, c) in bundle.char_indices() {
            if !SHORT_WITH_VALUE.contains(c) {
                continue;
            }
            let rest = &bundle[at + c.len_utf8()..];
            let value = if rest.is_empty() {
                i += 1;
                next.clone()
            } else {
                rest.to_string()
            };
            let watched = match c {
                'F' => Some(Watched::Format),
                'f' => Some(Watched::File),
                'Z' => Some(Watched::Compress),
                _ => None,
            };
            if let Some(w) = watched {
                found.push((w, a.to_string(), value));
            }
            break;
        }
    }
    found
}

/// `dump_args` that choose a format other than custom, or write elsewhere
/// than stdout.
fn refuse_unframed(args: &[String]) -> Result<()> {
    for (option, arg, value) in watched_options(args) {
        let why = match option {
            Watched::Format if !matches!(value.as_str(), "c" | "custom") => {
                "chooses a format other than custom, which has no PGDMP header and cannot be streamed into pg_restore"
            }
            Watched::File => "writes the dump to a file instead of its output",
            Watched::Format | Watched::Compress => continue,
        };
        return Err(exit::usage(format!(
            "`dump_args` holds `{}`, which {why}: rcbackup needs pg_dump's custom format on its output. Remove it from dump_args",
            crate::naming::printable(&arg)
        )));
    }
    Ok(())
}

/// pg_dump's own compression (`-Z`, `--compress`, however written) in
/// `dump_args` beside rcbackup's: the dump would be compressed twice, or
/// `none` would not hold.
pub fn refuse_own_compression(
    args: &[String],
    compression: Compression,
) -> std::result::Result<(), String> {
    if compression.by_engine() {
        return Ok(());
    }
    match watched_options(args)
        .into_iter()
        .find(|(w, _, _)| *w == Watched::Compress)
    {
        Some((_, arg, _)) => Err(format!(
            "holds `{}`, pg_dump's own compression, while `compression` is `{compression}`; \
             remove it, or set compression = \"engine\" to let pg_dump compress",
            crate::naming::printable(&arg)
        )),
        None => Ok(()),
    }
}

pub fn dump(db: &Database, compression: Compression) -> Result<(String, Command)> {
    refuse_unframed(&db.dump_args)?;
    refuse_own_compression(&db.dump_args, compression).map_err(|why| {
        exit::usage(format!(
            "database `{}`: `dump_args` {why}",
            crate::naming::printable(&db.alias)
        ))
    })?;
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
    crate::process::die_with_parent(&mut cmd);
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

/// Restores pg_dump's plain SQL (adopted from django-dbbackup's
/// PgDumpConnector) with psql in one transaction that stops at the first
/// error (`--single-transaction`, `ON_ERROR_STOP`): psql commits only at
/// the end of its input, which it gets only once the whole stream matched
/// its record. psql meta-commands in the stream are refused before psql
/// sees them ([`NoPsqlMetaCommands`]). `restore_args` are pg_restore's
/// options and are not passed to psql.
pub fn restore_plain(db: &Database, source: &Source) -> Result<()> {
    if !db.restore_args.is_empty() {
        tracing::warn!(
            "backup {} is plain SQL, restored with psql: restore_args (pg_restore's options) are not used for it",
            source.record.name
        );
    }
    // psql's own guard is required: rcbackup's scan cannot follow the
    // encoding server-side code may switch psql to (set_config, DO).
    let key = restrict_key(&psql_version()).map_err(|e| restore_failed(db, e, LEFT))?;
    if db.engine == EngineKind::Postgis && !has_postgis(db)? {
        source.verify().map_err(|e| restore_failed(db, e, LEFT))?;
        create_postgis(db)?;
    }
    let mut cmd = Command::new("psql");
    cmd.args([
        "--no-psqlrc",
        "--quiet",
        "--set",
        "ON_ERROR_STOP=1",
        "--single-transaction",
        "--file",
        "-",
    ]);
    connection(&mut cmd, db)?;
    cmd.arg(dbname_arg(&db.name));
    // psql lexes the stream as UTF8 (an encoding it reads byte-wise, as
    // the scan does) whatever this machine's locale.
    cmd.env("PGCLIENTENCODING", "UTF8");
    cmd.stdin(Stdio::piped()).stdout(Stdio::null());
    crate::process::die_with_parent(&mut cmd);
    let mut psql = Proc::spawn("psql", &mut cmd)?;
    let mut stdin = psql.take_stdin();
    widen_pipe(&stdin);
    // Behind the scan, psql's own guard (15.14, 16.10, 17.6 and later):
    // restricted with a key the backup cannot know, it refuses every
    // meta-command the stream could still hold.
    if let Err(e) = stdin.write_all(format!("\\restrict {key}\n").as_bytes()) {
        return Err(restore_failed(db, consumer_error(psql, e), LEFT));
    }
    let mut guarded = NoPsqlMetaCommands::new(&mut stdin);
    let mut streamed = source.stream_into(&mut guarded);
    if matches!(streamed, Ok(Streamed::Verified)) {
        if let Err(e) = guarded.finish() {
            streamed = Ok(Streamed::ConsumerStopped(e));
        }
    }
    if let Some(r) = guarded.found.take() {
        psql.kill();
        let _ = psql.wait();
        let what = match &r {
            Refused::Create(_) | Refused::Unsupported(_) => format!(
                "backup {} {}. Restore another backup (rcbackup listbackups)",
                source.record.name,
                psql_command_found(&r)
            ),
            Refused::Altered(_) => format!(
                "backup {} matches its record but {}: it was altered. Restore another backup (rcbackup listbackups)",
                source.record.name,
                psql_command_found(&r)
            ),
        };
        return Err(restore_failed(db, exit::integrity(what), LEFT));
    }
    drop(guarded);
    match streamed {
        Ok(Streamed::Verified) => {}
        Ok(Streamed::ConsumerStopped(e)) => {
            drop(stdin);
            return Err(restore_failed(db, consumer_error(psql, e), LEFT));
        }
        Err(e) => {
            psql.kill();
            let _ = psql.wait();
            return Err(restore_failed(db, e, LEFT));
        }
    }
    drop(stdin);
    let end = psql.wait()?;
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

/// psql's version (`psql --version`), as (major, minor).
fn psql_version() -> Option<(u32, u32)> {
    let out = Command::new("psql").arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let v = text
        .split_whitespace()
        .find(|w| w.starts_with(|c: char| c.is_ascii_digit()))?;
    let mut parts = v.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().and_then(|m| m.parse().ok()).unwrap_or(0);
    Some((major, minor))
}

/// A fresh `\restrict` key; refused (exit 1) when psql (`version`) does
/// not know the command (before 13.22, 14.19, 15.14, 16.10, 17.6).
fn restrict_key(version: &Option<(u32, u32)>) -> Result<String> {
    let knows = match *version {
        Some((major, minor)) => match major {
            13 => minor >= 22,
            14 => minor >= 19,
            15 => minor >= 14,
            16 => minor >= 10,
            17 => minor >= 6,
            m => m >= 18,
        },
        None => false,
    };
    if !knows {
        let which = match version {
            Some((major, minor)) => format!("psql {major}.{minor} (`psql --version`)"),
            None => "psql, whose version `psql --version` does not tell,".to_string(),
        };
        return Err(exit::failed(format!(
            "cannot restore plain SQL safely: {which} lacks `\\restrict`, the guard that stops a backup from running commands on this machine through psql (rcbackup's own check cannot follow every change server-side code can make to how psql reads the stream); nothing was run. Upgrade psql (the PostgreSQL client package) to 13.22, 14.19, 15.14, 16.10, 17.6 or later (18)"
        )));
    }
    crate::random::hex(24)
        .ok_or_else(|| exit::failed("cannot make a random key for psql's \\restrict"))
}

/// The server's `server_version_num` (150004 for 15.4), asked by psql
/// connecting exactly as pg_dump does (`rcbackup config check`).
pub fn server_version_num(db: &Database) -> Result<u32> {
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
    cmd.arg("--command=SHOW server_version_num");
    cmd.stdin(Stdio::null()).stdout(Stdio::piped());
    let mut psql = Proc::spawn("psql", &mut cmd)?;
    let mut out = String::new();
    let _ = psql.take_stdout().read_to_string(&mut out);
    let end = psql.wait()?;
    if !end.success() {
        return Err(exit::failed(format!(
            "cannot connect: {}. Check host, port, user, the password's variable and name in the config",
            end.describe()
        )));
    }
    out.trim().parse().map_err(|_| {
        exit::failed("psql answered `SHOW server_version_num` with something that is not a number")
    })
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
            // A value that looks like an option is a value.
            &["-t", "-Fp"],
            &["--table", "-fx"],
            &["-v", "--", "-Fp"],
        ] {
            assert!(!refused(a), "{a:?}");
        }
        // The ways pg_dump's getopt reads them too: bundles and prefixes.
        for a in [
            &["-vFp"][..],
            &["-vF", "p"],
            &["--form=plain"],
            &["--fo", "tar"],
            &["-vfx"],
            &["--fil=x"],
        ] {
            assert!(refused(a), "{a:?}");
        }
    }

    #[test]
    fn refuses_its_own_compression_however_written() {
        let refused = |a: &[&str]| {
            let args: Vec<String> = a.iter().map(|s| s.to_string()).collect();
            refuse_own_compression(&args, Compression::DEFAULT).is_err()
        };
        for a in [
            &["-Z9"][..],
            &["-Z", "9"],
            &["--compress=5"],
            &["--compress", "zstd"],
            &["-vZ9"],
            &["-aZ", "9"],
            &["--comp=9"],
            &["--compres", "9"],
        ] {
            assert!(refused(a), "{a:?}");
            let args: Vec<String> = a.iter().map(|s| s.to_string()).collect();
            assert!(refuse_own_compression(&args, Compression::Engine).is_ok());
        }
        for a in [&["-v"][..], &["-t", "-Z9"], &["--column-inserts"], &["-tZ"]] {
            assert!(!refused(a), "{a:?}");
        }
    }
}
