//! Compression in the host (README, "Compression"): zstd by rcbackup by
//! default, `zstd:LEVEL`, `none`, `engine`; the record says how a backup is
//! stored, restore and verify check the stored bytes and decompress in the
//! stream, and the README's by-hand restore works as written.

mod common;

use common::*;

const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

fn stored(world: &World, name: &str) -> Vec<u8> {
    std::fs::read(world.store.join(format!("db/{name}"))).unwrap()
}

fn record(world: &World, name: &str) -> serde_json::Value {
    serde_json::from_slice(
        &std::fs::read(
            world
                .store
                .join(format!("db/.rcbackup/records/{name}.json")),
        )
        .unwrap(),
    )
    .unwrap()
}

/// Backs up, changes the data, restores, and checks the content came back;
/// returns the backup's name.
fn round_trip(world: &World, db: &TestDb) -> String {
    let before = db.fingerprint();
    world.ok(&["dbbackup"]);
    world.ok(&["verify"]);
    db.exec("DELETE FROM items;");
    assert_ne!(db.fingerprint(), before);
    world.ok(&["dbrestore", "--noinput"]);
    assert_eq!(db.fingerprint(), before, "restored");
    world.names(None).remove(0)
}

#[test]
fn every_engine_is_stored_as_zstd_by_default_and_restores() {
    for engine in [Engine::Sqlite, Engine::Postgres, Engine::Mariadb] {
        let mut world = World::new(Remote::Local);
        let db = TestDb::create(&mut world, engine, 500, 2000);
        let name = round_trip(&world, &db);
        assert!(name.ends_with(".zst"), "{engine:?}: {name}");
        let data = stored(&world, &name);
        assert_eq!(data[..4], ZSTD_MAGIC, "{engine:?}");
        let rec = record(&world, &name);
        assert_eq!(rec["compression"], "zstd", "{engine:?}");
        assert_eq!(rec["size"], data.len() as u64, "the stored bytes");
        assert_eq!(rec["sha256"], sha256_hex(&data), "the stored bytes");
        let listed = world.list(None);
        assert_eq!(listed[0]["compression"], "zstd");
    }
}

/// On a crypt remote the object is encrypted; what rclone hands back is
/// the zstd stream, and it restores.
#[test]
fn zstd_on_a_crypt_remote_restores() {
    let mut world = World::new(Remote::Crypt);
    let db = TestDb::create(&mut world, Engine::Sqlite, 500, 2000);
    let name = round_trip(&world, &db);
    let plain = world.rclone(&["cat", &world.remote_path(&format!("db/{name}"))]);
    assert_eq!(plain[..4], ZSTD_MAGIC);
}

#[test]
fn none_engine_and_levels_store_what_they_say() {
    let mut world = World::new(Remote::Local);
    let db = TestDb::create(&mut world, Engine::Postgres, 500, 20000);
    let mut sizes = Vec::new();
    for (setting, ext, zstd) in [
        ("compression = \"none\"", ".dump", false),
        ("compression = \"engine\"", ".dump", false),
        ("compression = \"zstd:1\"", ".dump.zst", true),
        ("compression = \"zstd:9\"", ".dump.zst", true),
    ] {
        let mut w = World::new(Remote::Local);
        w.databases = world.databases.clone();
        w.setting(setting);
        let name = round_trip(&w, &db);
        assert!(name.ends_with(ext), "{setting}: {name}");
        let data = stored(&w, &name);
        assert_eq!(data[..4] == ZSTD_MAGIC, zstd, "{setting}");
        if !zstd {
            assert_eq!(&data[..5], b"PGDMP", "{setting}");
            assert!(record(&w, &name).get("compression").is_none(), "{setting}");
        }
        sizes.push((setting, data.len()));
    }
    // pg_dump -Z0 (none) is larger than pg_dump's own zlib (engine), and
    // zstd:9 no larger than zstd:1.
    assert!(sizes[0].1 > sizes[1].1, "{sizes:?}");
    assert!(sizes[3].1 <= sizes[2].1, "{sizes:?}");
    // A per-database key wins over the top level's.
    world.setting("compression = \"none\"");
    world.databases.push_str("compression = \"zstd\"\n");
    world.ok(&["dbbackup"]);
    assert!(world.names(None)[0].ends_with(".zst"));
}

/// A flipped byte in a stored zstd backup is found before anything
/// commits: exit 4, the database as it was; verify says so too.
#[test]
fn a_damaged_zstd_backup_changes_nothing() {
    let mut world = World::new(Remote::Local);
    let db = TestDb::create(&mut world, Engine::Sqlite, 500, 2000);
    world.ok(&["dbbackup"]);
    let name = world.names(None).remove(0);
    db.exec("DELETE FROM items;");
    let after_change = db.fingerprint();
    flip_byte(&world.store.join(format!("db/{name}")));
    assert_eq!(world.run(&["verify"]).code, 4);
    let r = world.run(&["dbrestore", "--noinput"]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert_eq!(db.fingerprint(), after_change, "nothing restored");
}

/// A record that says zstd over an object that is not (whose size and
/// SHA-256 match, so only decompressing can tell): exit 4 from verify and
/// restore, nothing changed.
#[test]
fn an_object_that_does_not_decompress_is_an_integrity_error() {
    let mut world = World::new(Remote::Local);
    world.setting("compression = \"none\"");
    let db = TestDb::create(&mut world, Engine::Sqlite, 500, 2000);
    world.ok(&["dbbackup"]);
    let name = world.names(None).remove(0);
    let file = world
        .store
        .join(format!("db/.rcbackup/records/{name}.json"));
    let mut rec = record(&world, &name);
    rec["compression"] = "zstd".into();
    std::fs::write(&file, format!("{rec}\n")).unwrap();
    db.exec("DELETE FROM items;");
    let after_change = db.fingerprint();
    let v = world.run(&["verify"]);
    assert_eq!(v.code, 4, "{}", v.stderr);
    assert_mentions(&v.stderr, &["does not decompress"]);
    let r = world.run(&["dbrestore", "--noinput"]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert_mentions(&r.stderr, &["does not decompress"]);
    assert_eq!(db.fingerprint(), after_change);
}

/// A backup made before compression existed (record without the field,
/// object as the dump tool wrote it) still restores.
#[test]
fn a_backup_from_before_compression_restores() {
    let mut world = World::new(Remote::Local);
    world.setting("compression = \"engine\"");
    let db = TestDb::create(&mut world, Engine::Postgres, 500, 2000);
    world.ok(&["dbbackup"]);
    let name = world.names(None).remove(0);
    assert!(record(&world, &name).get("compression").is_none());
    // The default (zstd) is on again: the old backup is restored as stored.
    world.settings = world.settings.replace("compression = \"engine\"", "");
    let before = db.fingerprint();
    db.exec("DELETE FROM items;");
    world.ok(&["dbrestore", "--noinput", "-i", &name]);
    assert_eq!(db.fingerprint(), before);
}

/// The README's restore by hand, without rcbackup, for each engine.
#[test]
fn the_readme_restore_by_hand_works() {
    for engine in [Engine::Sqlite, Engine::Postgres, Engine::Mariadb] {
        let mut world = World::new(Remote::Local);
        let db = TestDb::create(&mut world, engine, 500, 2000);
        let before = db.fingerprint();
        world.ok(&["dbbackup"]);
        let name = world.names(None).remove(0);
        let object = world.remote_path(&format!("db/{name}"));
        let target = db.target();
        let script = match engine {
            Engine::Postgres => format!(
                "rclone cat '{object}' | zstd -d | pg_restore --clean --if-exists --no-owner --single-transaction -h 127.0.0.1 -U rcbackup -d '{target}'"
            ),
            Engine::Mariadb => format!(
                "rclone cat '{object}' | zstd -d | mariadb -h 127.0.0.1 -u rcbackup -p\"$RCBACKUP_TEST_DB_PASSWORD\" '{target}'"
            ),
            Engine::Sqlite => format!(
                "rm -f '{target}.new' && rclone cat '{object}' | zstd -d | sqlite3 '{target}.new' && mv '{target}.new' '{target}'"
            ),
        };
        db.exec("DELETE FROM items;");
        let mut cmd = std::process::Command::new("bash");
        cmd.args(["-o", "pipefail", "-c", &script]);
        for (k, v) in &world.env {
            cmd.env(k, v);
        }
        cmd.env("PGPASSWORD", "rcbackup-test-pw")
            .env("RCBACKUP_TEST_DB_PASSWORD", "rcbackup-test-pw");
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{engine:?}: {script}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(db.fingerprint(), before, "{engine:?}");
    }
}

#[test]
fn a_bad_compression_setting_is_refused_at_load() {
    let mut world = World::new(Remote::Local);
    world.seeded_sqlite("default", 10);
    for (line, key) in [
        ("compression = \"gzip\"", "`compression`"),
        ("compression = \"zstd:10\"", "`compression`"),
    ] {
        let mut w = World::new(Remote::Local);
        w.databases = world.databases.clone();
        w.setting(line);
        let r = w.run(&["listbackups"]);
        assert_eq!(r.code, 2, "{line}: {}", r.stderr);
        assert_mentions(&r.stderr, &[key, "zstd:LEVEL"]);
    }
    let mut w = World::new(Remote::Local);
    let pg = PgDb::create("zflag");
    w.postgres("default", &pg.0);
    w.databases.push_str("dump_args = [\"-Z6\"]\n");
    let r = w.run(&["dbbackup"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_mentions(&r.stderr, &["dump_args", "-Z6", "compression = \"engine\""]);
    w.setting("compression = \"engine\"");
    w.ok(&["dbbackup"]);
}

/// A damaged `.zst` backup, where the whole dump decompresses before the
/// damage is found: restore must not hand the dump's end to the restore
/// tool (pg_restore and mariadb commit when the dump ends, not at EOF), so
/// the database keeps what it had, and verify and restore say exit 4.
/// - checksum: the frame's checksum flipped, the record made to match, so
///   only decompressing can tell ("does not decompress");
/// - cut: the frame cut short, the record made to match;
/// - flipped: a byte mid-frame flipped, the record made to match;
/// - appended: bytes after the frame the record does not count (found by
///   size before anything is read: "is damaged").
#[test]
fn a_damaged_zst_backup_never_reaches_the_end_of_the_restore() {
    for engine in [Engine::Sqlite, Engine::Postgres, Engine::Mariadb] {
        let mut w = World::new(Remote::Local);
        let db = TestDb::create(&mut w, engine, 3000, 20_000);
        w.ok(&["dbbackup"]);
        let name = w.names(None).remove(0);
        let data = w.store.join(format!("db/{name}"));
        let records = w.store.join(format!("db/.rcbackup/records/{name}.json"));
        let good = std::fs::read(&data).unwrap();
        let good_record = std::fs::read(&records).unwrap();
        db.exec("DELETE FROM items;");
        let changed = db.fingerprint();
        let flip = |at: usize| {
            let mut b = good.clone();
            b[at] ^= 0x55;
            b
        };
        let mut appended = good.clone();
        appended.extend_from_slice(&[0x28, 0xb5, 0x2f, 0xfd, 1, 2, 3, 4]);
        let undecodable = "matches its record but does not decompress";
        for (damage, bytes, rerecord, says) in [
            ("checksum", flip(good.len() - 1), true, undecodable),
            ("cut", good[..good.len() - 100].to_vec(), true, undecodable),
            ("flipped", flip(good.len() / 2), true, undecodable),
            ("appended", appended, false, "is damaged"),
        ] {
            let what = format!("{engine:?} {damage}");
            std::fs::write(&records, &good_record).unwrap();
            if rerecord {
                replace_matching(&w, &name, &bytes);
            } else {
                std::fs::write(&data, &bytes).unwrap();
            }
            for args in [
                &["verify", "-i", &name][..],
                &["dbrestore", "--noinput", "-i", &name],
            ] {
                let r = w.run(args);
                assert_eq!(r.code, 4, "{what} {args:?}: {}", r.stderr);
                assert_mentions(&r.stderr, &[says]);
                assert_eq!(
                    db.fingerprint(),
                    changed,
                    "{what} {args:?}: database changed"
                );
            }
        }
    }
}

/// Records: a compressed backup's is format 2 (an older rcbackup lists it
/// as newer than it reads, instead of handing zstd bytes to a restore
/// tool); an uncompressed one's stays format 1.
#[test]
fn only_a_compressed_backup_s_record_is_format_2() {
    let mut w = World::new(Remote::Local);
    w.seeded_sqlite("default", 50);
    w.ok(&["dbbackup"]);
    let zst = w.names(None).remove(0);
    assert_eq!(record(&w, &zst)["format"], 2);
    w.setting("compression = \"none\"");
    w.ok(&["dbbackup"]);
    let plain: Vec<String> = w.names(None).into_iter().filter(|n| *n != zst).collect();
    assert_eq!(plain.len(), 1, "{plain:?}");
    assert_eq!(record(&w, &plain[0])["format"], 1);
}

/// The name rule holds for every template: `.zst` is appended to a name
/// whose template has no `{ext}`, a `.zst` name is refused for a backup
/// that is not compressed, and a twin keeps `.sqlite3.zst` whole.
#[test]
fn a_compressed_backup_s_name_ends_in_zst_whatever_the_template() {
    let mut w = World::new(Remote::Local);
    w.seeded_sqlite("default", 50);
    w.setting("db_filename_template = \"{database}_{datetime}\"");
    w.ok(&["dbbackup"]);
    let names = w.names(None);
    assert!(
        names[0].starts_with("default_") && names[0].ends_with(".zst"),
        "{names:?}"
    );
    assert!(!names[0].contains(".sqlite3"), "{names:?}");
    w.settings =
        "db_filename_template = \"{database}-{datetime}.zst\"\ncompression = \"none\"\n".into();
    let r = w.run(&["dbbackup"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_mentions(
        &r.stderr,
        &[
            "ends in `.zst`, but the backup is not compressed",
            "db_filename_template",
        ],
    );
    // Two backups in one second: the twin keeps `.sqlite3.zst` whole.
    w.settings = "db_date_format = \"%Y-%m-%d\"\n".into();
    w.ok(&["dbbackup"]);
    w.ok(&["dbbackup"]);
    let names = w.names(None);
    assert!(
        names.iter().any(|n| n.ends_with("-2.sqlite3.zst")),
        "{names:?}"
    );
}

/// rcbackup's own peak memory with zstd is flat in the dump's size and
/// under 64 MiB (its `-v` log reports it at exit): a 20 MB and an 80 MB
/// dump of hard-to-compress rows (past the first few 2 MiB jobs, the
/// compressor's buffers are all in use and stop growing). Restoring the
/// larger one stays under the same bound.
#[test]
fn peak_memory_with_zstd_is_flat_and_under_64_mib() {
    let peak_of = |stderr: &str| -> u64 {
        stderr
            .split("peak_rss_kib=")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no peak_rss_kib in:\n{stderr}"))
            / 1024
    };
    let peak = |rows: u32| -> (u64, u64) {
        let mut w = World::new(Remote::Local);
        let file = w.path("big.sqlite3");
        sqlite(
            &file,
            &format!(
                "CREATE TABLE b (id INTEGER PRIMARY KEY, v BLOB NOT NULL);\n\
                 WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {rows})\n\
                 INSERT INTO b SELECT x, randomblob(1000) FROM c;\n"
            ),
        );
        w.sqlite("default", &file);
        let backup = w.ok(&["-v", "dbbackup"]);
        assert!(w.names(None)[0].ends_with(".zst"));
        let restore = w.ok(&["-v", "dbrestore", "--noinput"]);
        (peak_of(&backup.stderr), peak_of(&restore.stderr))
    };
    let (small, _) = peak(10_000);
    let (big, restore) = peak(40_000);
    assert!(big < 64, "backup peak {big} MiB for an 80 MB dump");
    assert!(restore < 64, "restore peak {restore} MiB for an 80 MB dump");
    // Flat: four times the data costs no more than a few MiB (allocator
    // arenas and thread timing on a busy machine vary by that much; a
    // buffer growing with the dump would add tens of MiB).
    assert!(
        big <= small + 8,
        "not flat: {small} MiB for 20 MB, {big} MiB for 80 MB"
    );
}

/// Rewrites backup `name`'s data object to `bytes` and its record to match
/// them: damage only a reader of the dump itself can find.
fn replace_matching(w: &World, name: &str, bytes: &[u8]) {
    std::fs::write(w.store.join(format!("db/{name}")), bytes).unwrap();
    let mut rec = record(w, name);
    rec["size"] = bytes.len().into();
    rec["sha256"] = sha256_hex(bytes).into();
    write_record(w, name, &rec);
}

/// Writes `rec` as backup `name`'s record.
fn write_record(w: &World, name: &str, rec: &serde_json::Value) {
    std::fs::write(
        w.store.join(format!("db/.rcbackup/records/{name}.json")),
        format!("{rec}\n"),
    )
    .unwrap();
}

fn zstd_of(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut z = std::process::Command::new("zstd")
        .args(["-q", "-c"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = z.stdin.take().unwrap();
    let data = data.to_vec();
    let feed = std::thread::spawn(move || stdin.write_all(&data).unwrap());
    let out = z.wait_with_output().unwrap();
    feed.join().unwrap();
    out.stdout
}

/// A MariaDB dump whose record was rewritten to match a dump cut before
/// its rows and trailer, an empty dump, or the dump with a second frame of
/// SQL after it: verify and restore refuse it (exit 4) before the client
/// runs a statement, so the database keeps what it had. (The client runs
/// statements as they come, so only the check before the restore can
/// stop it.)
#[test]
fn a_matching_but_incomplete_mariadb_dump_is_refused_before_a_statement_runs() {
    let mut w = World::new(Remote::Local);
    let db = TestDb::create(&mut w, Engine::Mariadb, 300, 0);
    w.ok(&["dbbackup"]);
    let name = w.names(None).remove(0);
    let dump = w.rclone(&["cat", &w.remote_path(&format!("db/{name}"))]);
    let plain = String::from_utf8(
        std::process::Command::new("bash")
            .args(["-c", "zstd -dc"])
            .stdin(std::fs::File::open(w.store.join(format!("db/{name}"))).unwrap())
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert!(plain.contains("-- Dump completed"), "{}", &plain[..200]);
    assert!(!dump.is_empty());
    let cut = plain.split("INSERT INTO").next().unwrap().to_string();
    let mut second = zstd_of(plain.as_bytes());
    second.extend(zstd_of(b"DELETE FROM items;\n"));
    db.exec("DELETE FROM notes;");
    let changed = db.fingerprint();
    for (what, bytes) in [
        ("cut", zstd_of(cut.as_bytes())),
        ("empty", zstd_of(b"")),
        ("second frame", second),
    ] {
        replace_matching(&w, &name, &bytes);
        for args in [
            &["verify", "-i", &name][..],
            &["dbrestore", "--noinput", "-i", &name],
        ] {
            let r = w.run(args);
            assert_eq!(r.code, 4, "{what} {args:?}: {}", r.stderr);
            assert_mentions(&r.stderr, &["does not hold a complete mariadb dump"]);
            assert_eq!(db.fingerprint(), changed, "{what} {args:?}");
        }
    }
}

/// A record of format 2 (compressed) without `compression`, edited by hand:
/// listed damaged, never restored as a plain dump (exit 4).
#[test]
fn a_format_2_record_without_compression_is_damaged() {
    let mut w = World::new(Remote::Local);
    let db = TestDb::create(&mut w, Engine::Sqlite, 100, 0);
    w.ok(&["dbbackup"]);
    let name = w.names(None).remove(0);
    let mut rec = record(&w, &name);
    assert_eq!(rec["format"], 2);
    rec.as_object_mut().unwrap().remove("compression");
    write_record(&w, &name, &rec);
    let listed = w.list(None);
    assert_eq!(listed[0]["status"], "damaged", "{listed:?}");
    db.exec("DELETE FROM items;");
    let changed = db.fingerprint();
    for args in [
        &["verify", "-i", &name][..],
        &["dbrestore", "--noinput", "-i", &name],
    ] {
        let r = w.run(args);
        assert_eq!(r.code, 4, "{args:?}: {}", r.stderr);
        assert_mentions(&r.stderr, &["`compression`"]);
    }
    assert_eq!(db.fingerprint(), changed);
}

/// pg_dump's compression however pg_dump's getopt reads it (bundled short
/// options, abbreviated long ones) is refused beside rcbackup's; mariadb-dump's
/// `--compress` (the client protocol's) is not compression of the dump.
#[test]
fn pg_dump_compression_is_refused_however_written() {
    for arg in ["-vZ9", "--comp=9", "-aZ"] {
        let mut w = World::new(Remote::Local);
        let pg = PgDb::create("zbundle");
        w.postgres("default", &pg.0);
        w.databases.push_str(&format!("dump_args = [\"{arg}\"]\n"));
        let r = w.run(&["dbbackup"]);
        assert_eq!(r.code, 2, "{arg}: {}", r.stderr);
        assert_mentions(&r.stderr, &["dump_args", arg, "pg_dump's own compression"]);
    }
    let mut w = World::new(Remote::Local);
    let my = MyDb::create("zproto");
    w.mariadb("default", &my.0);
    w.databases.push_str("dump_args = [\"--compress\"]\n");
    w.ok(&["dbbackup"]);
}

/// `-i NAME` without the `.zst` of a compressed backup says which name to
/// pass.
#[test]
fn a_name_without_its_zst_is_pointed_at_the_backup() {
    let mut w = World::new(Remote::Local);
    w.seeded_sqlite("default", 10);
    w.ok(&["dbbackup"]);
    let name = w.names(None).remove(0);
    let bare = name.strip_suffix(".zst").unwrap();
    let r = w.run(&["verify", "-i", bare]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_mentions(&r.stderr, &[&format!("pass `-i {name}`")]);
}
