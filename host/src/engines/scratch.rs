//! Scratch databases for `rcbackup drill`, on the server of a configured
//! PostgreSQL or MariaDB database: create one (marked with a comment, so
//! that cleanup can tell it from a database that merely looks like one),
//! list them, drop one, and count the rows of every table of a restored
//! database (SQLite too). Every statement here names its database
//! explicitly; none runs in, or names, the configured (live) database:
//! PostgreSQL's are run from the maintenance database (`postgres`, else
//! `template1`), MariaDB's without a default database. The caller (the
//! drill) makes sure the name it passes is never the live one.

use std::io::{Read, Write};
use std::process::{Command, Stdio};

use anyhow::Result;

use super::{mysql, postgres};
use crate::database::{Database, EngineKind};
use crate::exit;
use crate::process::{Ended, Proc};

/// The comment every scratch database carries.
pub const MARK: &str = "rcbackup drill scratch database";

/// A scratch database found on the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub name: String,
    /// It carries [`MARK`].
    pub marked: bool,
}

/// One table of a restored database and its rows.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TableRows {
    /// PostgreSQL only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    pub name: String,
    pub rows: u64,
}

/// Runs a client with `input` on its stdin; its stdout and how it ended.
fn client(tool: &str, cmd: &mut Command, input: String) -> Result<(Ended, Vec<u8>)> {
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
    crate::process::die_with_parent(cmd);
    let mut p = Proc::spawn(tool, cmd)?;
    let mut stdin = p.take_stdin();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let mut out = Vec::new();
    let _ = p.take_stdout().read_to_end(&mut out);
    let _ = writer.join();
    Ok((p.wait()?, out))
}

fn pg_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn sql_text(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn my_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// psql against database `dbname` of `db`'s server, NUL-separated output.
fn psql(db: &Database, dbname: &str, sql: String) -> Result<(Ended, Vec<u8>)> {
    let mut cmd = Command::new("psql");
    cmd.args([
        "--no-psqlrc",
        "--quiet",
        "--tuples-only",
        "--no-align",
        "--field-separator-zero",
        "--record-separator-zero",
        "--set=ON_ERROR_STOP=1",
    ]);
    postgres::connection(&mut cmd, db)?;
    cmd.arg(postgres::dbname_arg(dbname));
    client("psql", &mut cmd, sql)
}

/// psql from the maintenance database: `postgres`, else `template1` (as
/// createdb does), never the configured one.
fn pg_admin(db: &Database, sql: &str) -> Result<(Ended, Vec<u8>)> {
    let (end, out) = psql(db, "postgres", sql.to_string())?;
    let unreachable = !end.success()
        && end.stderr_tail.contains("\"postgres\"")
        && (end.stderr_tail.contains("does not exist")
            || end.stderr_tail.contains("permission denied")
            || end.stderr_tail.contains("pg_hba.conf"));
    if unreachable {
        return psql(db, "template1", sql.to_string());
    }
    Ok((end, out))
}

/// The MariaDB client on `db`'s server, in `database` if given.
fn mariadb(db: &Database, database: Option<&str>, sql: String) -> Result<(Ended, Vec<u8>)> {
    let name = mysql::tool("mariadb", "mysql");
    let mut cmd = Command::new(name);
    mysql::connection(&mut cmd, db)?;
    cmd.args([
        "--batch",
        "--skip-column-names",
        "--default-character-set=utf8mb4",
    ]);
    if let Some(d) = database {
        cmd.arg(format!("--database={d}"));
    }
    client(name, &mut cmd, sql)
}

fn fields(out: &[u8]) -> Vec<String> {
    out.split(|b| *b == 0)
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect()
}

fn user_of(db: &Database) -> String {
    db.user
        .clone()
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "the role".into())
}

/// Creates the scratch database `name` on `live`'s server.
pub fn create(live: &Database, name: &str) -> Result<()> {
    match live.engine {
        EngineKind::Postgresql | EngineKind::Postgis => {
            // template0: an empty database, whatever template1 holds, as
            // pg_dump's documentation advises for a restore. psql runs each
            // statement on its own (CREATE DATABASE cannot be in a
            // transaction).
            let sql = format!(
                "CREATE DATABASE {q} TEMPLATE template0;\nCOMMENT ON DATABASE {q} IS {};\n",
                sql_text(MARK),
                q = pg_ident(name)
            );
            let (end, _) = pg_admin(live, &sql)?;
            if end.success() {
                return Ok(());
            }
            if end
                .stderr_tail
                .contains("permission denied to create database")
            {
                let user = user_of(live);
                return Err(exit::failed(format!(
                    "cannot create the scratch database `{name}` for the drill of `{}`: the role `{user}` lacks the CREATEDB privilege. \
                     A drill restores into a new database on the same server, never into `{}`; grant it (ALTER ROLE \"{user}\" CREATEDB;) or run drills as a role that has it",
                    live.alias, live.name
                )));
            }
            Err(exit::failed(format!(
                "cannot create the scratch database `{name}` for the drill of `{}`: {}",
                live.alias,
                end.describe()
            )))
        }
        EngineKind::Mysql | EngineKind::Mariadb => {
            let sql = format!(
                "CREATE DATABASE {} COMMENT {};\n",
                my_ident(name),
                sql_text(MARK)
            );
            let (end, _) = mariadb(live, None, sql)?;
            if end.success() {
                return Ok(());
            }
            // 1045 is the login's refusal: no privilege would help.
            if !end.stderr_tail.contains("1045")
                && (end.stderr_tail.contains("Access denied") || end.stderr_tail.contains("1044"))
            {
                return Err(exit::failed(format!(
                    "cannot create the scratch database `{name}` for the drill of `{}`: the user `{}` may not create it. \
                     A drill restores into a new database on the same server, never into `{}`, as a temporary user whose only privileges are on that database; \
                     the configured user needs: {} ({})",
                    live.alias,
                    user_of(live),
                    live.name,
                    mariadb_grants(live),
                    end.describe()
                )));
            }
            Err(exit::failed(format!(
                "cannot create the scratch database `{name}` for the drill of `{}`: {}",
                live.alias,
                end.describe()
            )))
        }
        EngineKind::Sqlite => Ok(()),
    }
}

/// The MariaDB account a drill restores as: named after its scratch
/// database (so that the cleanup of an orphan finds it), within MySQL's
/// 32-character limit on user names.
pub fn drill_user(scratch: &str) -> String {
    use sha2::Digest as _;
    let digest = hex::encode(sha2::Sha256::digest(scratch.as_bytes()));
    format!("rcbackup_drill_{}", &digest[..12])
}

/// A MariaDB string literal (backslash escapes on, as the servers'
/// default sql_mode has them).
fn my_text(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// Runs `statement` (ending with an account: `... TO ` or `DROP USER IF
/// EXISTS `) for `user` at the host part of the connecting account
/// (`CURRENT_USER()`): the drill's user connects exactly as the configured
/// one does, from any machine that runs the same config.
fn for_drill_user(statement: &str, user: &str, tail: &str) -> String {
    format!(
        "SET @rcbackup_sql = CONCAT({}, QUOTE({}), '@', QUOTE(SUBSTRING_INDEX(CURRENT_USER(), '@', -1)), {});\n\
         PREPARE rcbackup_statement FROM @rcbackup_sql;\nEXECUTE rcbackup_statement;\nDEALLOCATE PREPARE rcbackup_statement;\n",
        my_text(statement),
        my_text(user),
        my_text(tail)
    )
}

/// Who restores into the scratch database.
pub struct Restorer {
    pub user: String,
    pub password: String,
}

/// MariaDB/MySQL: creates the temporary user a drill restores as, whose
/// only privileges are on the scratch database `name`. A dump is SQL that
/// may name any database (`--databases` dumps start with `DROP DATABASE`,
/// `CREATE DATABASE`, `USE`; an altered one may write `live.t` in any
/// statement), and no client option confines it: only the server's
/// privileges do. PostgreSQL and SQLite: `None` (see docs/drill.md).
pub fn restorer(live: &Database, name: &str) -> Result<Option<Restorer>> {
    if !matches!(live.engine, EngineKind::Mysql | EngineKind::Mariadb) {
        return Ok(None);
    }
    let user = drill_user(name);
    let password = crate::random::hex(16)
        .ok_or_else(|| exit::failed("cannot read /dev/urandom for the drill user's password"))?;
    // `_` is a wildcard in a grant's database name: escaped, the grant
    // covers this scratch database and no other.
    let grant_on = format!(
        "GRANT ALL PRIVILEGES ON {}.* TO ",
        my_ident(&name.replace('_', "\\_"))
    );
    let sql = for_drill_user(
        "CREATE USER ",
        &user,
        &format!(" IDENTIFIED BY {}", my_text(&password)),
    ) + &for_drill_user(&grant_on, &user, "");
    let (end, _) = mariadb(live, None, sql)?;
    if end.success() {
        return Ok(Some(Restorer { user, password }));
    }
    // Whatever part was made goes.
    let _ = mariadb(
        live,
        None,
        for_drill_user("DROP USER IF EXISTS ", &user, ""),
    );
    let denied = !end.stderr_tail.contains("1045")
        && (end.stderr_tail.contains("Access denied") || end.stderr_tail.contains("1227"));
    let detail = if denied {
        format!(
            "the user `{}` may not create it, or not grant it the scratch database. A MariaDB drill restores as a temporary user whose only privileges are on the scratch database, \
             so that no statement of a backup can reach another database; the configured user needs: {} ({})",
            user_of(live),
            mariadb_grants(live),
            end.describe()
        )
    } else {
        end.describe()
    };
    Err(exit::failed(format!(
        "cannot create the temporary user of the drill of `{}`: {detail}",
        live.alias
    )))
}

/// The grants a MariaDB user needs to run drills.
fn mariadb_grants(live: &Database) -> String {
    let u = user_of(live);
    format!(
        "GRANT ALL PRIVILEGES ON `rcbackup\\_drill\\_%`.* TO '{u}'@'<host>' WITH GRANT OPTION; GRANT CREATE USER ON *.* TO '{u}'@'<host>';"
    )
}

/// Drops the scratch database `name` if it exists (closing connections
/// still open to it: a killed drill's restore tool).
pub fn drop(live: &Database, name: &str) -> Result<()> {
    let end = match live.engine {
        EngineKind::Postgresql | EngineKind::Postgis => {
            let (end, _) = pg_admin(
                live,
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE);\n", pg_ident(name)),
            )?;
            if !end.success() && end.stderr_tail.contains("syntax error") {
                // Before PostgreSQL 13: no FORCE.
                pg_admin(
                    live,
                    &format!("DROP DATABASE IF EXISTS {};\n", pg_ident(name)),
                )?
                .0
            } else {
                end
            }
        }
        EngineKind::Mysql | EngineKind::Mariadb => {
            // The drill's user first. A user who may not create users
            // (CREATE USER privilege) never made one, and may not run
            // DROP USER even for one that does not exist.
            let (end, _) = mariadb(
                live,
                None,
                for_drill_user("DROP USER IF EXISTS ", &drill_user(name), ""),
            )?;
            if !end.success() && !end.stderr_tail.contains("CREATE USER") {
                return Err(exit::failed(format!(
                    "cannot drop `{}`, the temporary user of the drill of `{}`: {}; drop it by hand (DROP USER)",
                    drill_user(name),
                    live.alias,
                    end.describe()
                )));
            }
            // A bounded wait: a lock the drop cannot get (a prepared XA
            // transaction a backup left, which outlives its session) would
            // hold every later drill for the server's whole wait.
            let (end, _) = mariadb(
                live,
                None,
                format!(
                    "SET SESSION lock_wait_timeout = 20;\nDROP DATABASE IF EXISTS {};\n",
                    my_ident(name)
                ),
            )?;
            if !end.success() && end.stderr_tail.contains("Lock wait timeout") {
                let (_, out) = mariadb(live, None, "XA RECOVER FORMAT='SQL';\n".into())?;
                let xids: Vec<String> = String::from_utf8_lossy(&out)
                    .lines()
                    .filter_map(|l| l.split('\t').nth(3).map(str::to_string))
                    .collect();
                return Err(exit::failed(format!(
                    "cannot drop the scratch database `{name}` of the drill of `{}`: a transaction holds a lock on it{}. \
                     If it is one the backup left prepared (XA PREPARE), end it with XA ROLLBACK <xid>; then drop the database by hand or run `rcbackup drill --cleanup`",
                    live.alias,
                    if xids.is_empty() {
                        String::new()
                    } else {
                        format!(" (prepared XA transactions on the server: {})", xids.join(", "))
                    }
                )));
            }
            end
        }
        EngineKind::Sqlite => return Ok(()),
    };
    if end.success() {
        Ok(())
    } else {
        Err(exit::failed(format!(
            "cannot drop the scratch database `{name}` of the drill of `{}`: {}; drop it by hand (it is a copy, never the live database)",
            live.alias,
            end.describe()
        )))
    }
}

/// The databases on `live`'s server whose names start with `prefix`.
pub fn list(live: &Database, prefix: &str) -> Result<Vec<Found>> {
    let like = prefix
        .replace('\\', "\\\\")
        .replace('_', "\\_")
        .replace('%', "\\%");
    match live.engine {
        EngineKind::Postgresql | EngineKind::Postgis => {
            let sql = format!(
                "SELECT datname, coalesce(shobj_description(oid, 'pg_database'), '') FROM pg_database WHERE datname LIKE {} ORDER BY 1;\n",
                sql_text(&format!("{like}%"))
            );
            let (end, out) = pg_admin(live, &sql)?;
            if !end.success() {
                return Err(exit::failed(format!(
                    "cannot list the scratch databases of earlier drills of `{}`: {}",
                    live.alias,
                    end.describe()
                )));
            }
            let f = fields(&out);
            Ok(f.chunks(2)
                .filter(|c| c.len() == 2)
                .map(|c| Found {
                    name: c[0].clone(),
                    marked: c[1] == MARK,
                })
                .collect())
        }
        EngineKind::Mysql | EngineKind::Mariadb => {
            let sql = format!(
                "SELECT HEX(SCHEMA_NAME), HEX(SCHEMA_COMMENT) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE {} ORDER BY 1;\n",
                sql_text(&format!("{like}%").replace('\\', "\\\\"))
            );
            let (end, out) = mariadb(live, None, sql)?;
            if !end.success() {
                return Err(exit::failed(format!(
                    "cannot list the scratch databases of earlier drills of `{}`: {}",
                    live.alias,
                    end.describe()
                )));
            }
            let text = String::from_utf8_lossy(&out);
            Ok(text
                .lines()
                .filter_map(|l| {
                    let (n, c) = l.split_once('\t').unwrap_or((l, ""));
                    let name = String::from_utf8(hex::decode(n.trim()).ok()?).ok()?;
                    let comment = hex::decode(c.trim()).ok()?;
                    Some(Found {
                        name,
                        marked: comment == MARK.as_bytes(),
                    })
                })
                .collect())
        }
        EngineKind::Sqlite => Ok(Vec::new()),
    }
}

/// Rows of every table of `scratch` (a restored database: for PostgreSQL
/// every ordinary table of every schema but the system ones, for MariaDB
/// and SQLite every table), sorted by schema and name.
pub fn count_rows(scratch: &Database) -> Result<Vec<TableRows>> {
    let failed = |end: &Ended| {
        exit::failed(format!(
            "restored, but counting the rows of the scratch database failed: {}",
            super::describe_restore_tool(end)
        ))
    };
    let mut tables = match scratch.engine {
        EngineKind::Postgresql | EngineKind::Postgis => {
            // One query: query_to_xml runs each table's count(*).
            let sql = "SELECT n.nspname, c.relname, \
                 (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I.%I', n.nspname, c.relname), false, true, '')))[1]::text \
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
                 AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%';\n";
            let (end, out) = psql(scratch, &scratch.name, sql.to_string())?;
            if !end.success() {
                return Err(failed(&end));
            }
            let f = fields(&out);
            let mut t = Vec::new();
            for c in f.chunks(3).filter(|c| c.len() == 3) {
                t.push(TableRows {
                    schema: Some(c[0].clone()),
                    name: c[1].clone(),
                    rows: parse_count(&c[2])?,
                });
            }
            t
        }
        EngineKind::Mysql | EngineKind::Mariadb => {
            let (end, out) = mariadb(
                scratch,
                Some(&scratch.name),
                "SELECT HEX(TABLE_NAME) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() \
                 AND TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED') ORDER BY 1;\n"
                    .to_string(),
            )?;
            if !end.success() {
                return Err(failed(&end));
            }
            let names: Vec<String> = String::from_utf8_lossy(&out)
                .lines()
                .filter_map(|l| String::from_utf8(hex::decode(l.trim()).ok()?).ok())
                .collect();
            let mut t = Vec::new();
            for chunk in names.chunks(200) {
                let sql = chunk
                    .iter()
                    .enumerate()
                    .map(|(i, n)| format!("SELECT {i}, COUNT(*) FROM {}", my_ident(n)))
                    .collect::<Vec<_>>()
                    .join(" UNION ALL ")
                    + ";\n";
                let (end, out) = mariadb(scratch, Some(&scratch.name), sql)?;
                if !end.success() {
                    return Err(failed(&end));
                }
                let mut counts = vec![None; chunk.len()];
                for l in String::from_utf8_lossy(&out).lines() {
                    let (i, n) = l.split_once('\t').unwrap_or((l, ""));
                    if let Ok(i) = i.trim().parse::<usize>() {
                        if i < counts.len() {
                            counts[i] = Some(parse_count(n)?);
                        }
                    }
                }
                for (n, c) in chunk.iter().zip(counts) {
                    t.push(TableRows {
                        schema: None,
                        name: n.clone(),
                        rows: c.ok_or_else(|| {
                            exit::failed(format!(
                                "restored, but the rows of table `{}` could not be counted",
                                crate::naming::printable(n)
                            ))
                        })?,
                    });
                }
            }
            t
        }
        EngineKind::Sqlite => {
            let list = |sql: &str| -> Result<Vec<u8>> {
                let mut cmd = Command::new("sqlite3");
                cmd.args(["-bail", "-readonly", "-noheader", "-list"])
                    .arg(&scratch.name);
                let (end, out) = client("sqlite3", &mut cmd, sql.to_string())?;
                if !end.success() || !end.stderr_tail.trim().is_empty() {
                    return Err(failed(&end));
                }
                Ok(out)
            };
            let out = list("SELECT hex(name) FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY 1;\n")?;
            let names: Vec<String> = String::from_utf8_lossy(&out)
                .lines()
                .filter_map(|l| String::from_utf8(hex::decode(l.trim()).ok()?).ok())
                .collect();
            let mut t = Vec::new();
            for chunk in names.chunks(200) {
                let sql = chunk
                    .iter()
                    .map(|n| format!("SELECT count(*) FROM {};", pg_ident(n)))
                    .collect::<Vec<_>>()
                    .join("\n")
                    + "\n";
                let out = list(&sql)?;
                let text = String::from_utf8_lossy(&out);
                let counts: Vec<&str> = text.lines().collect();
                if counts.len() != chunk.len() {
                    return Err(exit::failed(
                        "restored, but sqlite3 did not count every table of the scratch database",
                    ));
                }
                for (n, c) in chunk.iter().zip(counts) {
                    t.push(TableRows {
                        schema: None,
                        name: n.clone(),
                        rows: parse_count(c)?,
                    });
                }
            }
            t
        }
    };
    tables.sort_by(|a, b| (&a.schema, &a.name).cmp(&(&b.schema, &b.name)));
    Ok(tables)
}

fn parse_count(s: &str) -> Result<u64> {
    s.trim().parse().map_err(|_| {
        exit::failed(format!(
            "restored, but a row count came back as `{}`, not a number",
            crate::naming::printable(s.trim())
        ))
    })
}
