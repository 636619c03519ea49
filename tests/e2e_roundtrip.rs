//! Backup, list, verify and restore for every engine on every kind of
//! remote, proving each time that the data came back.

mod common;

use common::*;

/// One database under test, whatever its engine.
enum Db {
    Sqlite(std::path::PathBuf),
    Pg(PgDb),
    My(MyDb),
}

impl Db {
    fn create(world: &mut World, engine: &str) -> Db {
        let seed = seed_sql(1200);
        match engine {
            "sqlite" => {
                let file = world.path("app.sqlite3");
                sqlite(&file, &seed);
                world.sqlite("default", &file);
                Db::Sqlite(file)
            }
            "postgresql" => {
                let db = PgDb::create("rt");
                psql(&db.0, &seed);
                world.postgres("default", &db.0);
                Db::Pg(db)
            }
            "mariadb" => {
                let db = MyDb::create("rt");
                mariadb(Some(&db.0), &seed);
                world.mariadb("default", &db.0);
                Db::My(db)
            }
            other => panic!("unknown engine {other}"),
        }
    }

    fn sql(&self, sql: &str) -> String {
        match self {
            Db::Sqlite(f) => sqlite(f, sql),
            Db::Pg(db) => psql(&db.0, sql),
            Db::My(db) => mariadb(Some(&db.0), sql),
        }
    }

    fn fingerprint(&self) -> (usize, String) {
        fingerprint(&self.sql(CONTENT_QUERY))
    }
}

fn round_trip(engine: &str, remote: Remote) {
    let mut world = World::new(remote);
    let db = Db::create(&mut world, engine);
    let before = db.fingerprint();
    assert_eq!(before.0, 1202);

    // No backup folder yet: an empty list, not an error.
    assert!(world.list(None).is_empty());

    world.ok(&["dbbackup"]);
    let list = world.list(None);
    assert_eq!(list.len(), 1, "{list:?}");
    let b = &list[0];
    let name = b["name"].as_str().unwrap();
    assert_eq!(b["database"], "default");
    assert!(name.starts_with("default-"), "{name}");
    let size = b["size"].as_u64().unwrap();
    assert!(size > 1000, "{b}");
    let created = b["created"].as_str().unwrap();
    assert!(
        created.ends_with('Z') && created.len() == 20,
        "RFC 3339 UTC: {created}"
    );
    let created_at = chrono::DateTime::parse_from_rfc3339(created).unwrap();
    let age = chrono::Utc::now().signed_duration_since(created_at);
    assert!(age.num_seconds().abs() < 120, "created {created} is now");
    // The listed size and SHA-256 are those of the object rclone reads back
    // (decrypted, on the crypt remote).
    let stored = world.rclone(&["cat", &world.remote_path(&format!("db/{name}"))]);
    assert_eq!(stored.len() as u64, size);
    assert_eq!(b["sha256"].as_str().unwrap(), sha256_hex(&stored));

    let verified = world.ok(&["verify"]);
    assert!(verified.stdout.contains("OK"), "{}", verified.stdout);

    // Change the data every way (delete, update, insert), then restore.
    db.sql(
        "DELETE FROM items WHERE id > 10; UPDATE notes SET body = 'changed'; \
         INSERT INTO items VALUES (999999, 'added after the backup', 1);",
    );
    assert_ne!(db.fingerprint(), before);
    world.ok(&["dbrestore", "--noinput"]);
    assert_eq!(db.fingerprint(), before, "the data came back exactly");

    // Restoring again over the restored database does not duplicate rows.
    world.ok(&["dbrestore", "--noinput", "-i", name]);
    assert_eq!(db.fingerprint(), before);
}

/// One test per engine and remote, so a failure names both.
macro_rules! round_trips {
    ($($test:ident: $engine:literal on $remote:ident,)*) => {$(
        #[test]
        fn $test() {
            round_trip($engine, Remote::$remote);
        }
    )*};
}

round_trips! {
    sqlite_local: "sqlite" on Local,
    sqlite_webdav: "sqlite" on Webdav,
    sqlite_crypt: "sqlite" on Crypt,
    postgresql_local: "postgresql" on Local,
    postgresql_webdav: "postgresql" on Webdav,
    postgresql_crypt: "postgresql" on Crypt,
    mariadb_local: "mariadb" on Local,
    mariadb_webdav: "mariadb" on Webdav,
    mariadb_crypt: "mariadb" on Crypt,
}

/// The one data object below `folder` (not counting .rcbackup/).
fn data_objects(folder: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(folder)
        .unwrap_or_else(|e| panic!("{}: {e}", folder.display()))
        .flatten()
        .filter(|e| e.path().is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// `remote = "loc:"` is the local remote's root, which rclone takes as the
/// working folder: files land at ./db/..., never at the filesystem's /db
/// (django-rclone's `loc:/db`).
#[test]
fn remote_root_is_the_remotes_root_not_the_filesystem_root() {
    let mut world = World::new(Remote::Local);
    world.seeded_sqlite("default", 10);
    world.remote = "loc:".into();
    world.ok(&["dbbackup"]);
    let name = world.names(None).remove(0);
    // The command runs in the world's folder.
    assert_eq!(data_objects(&world.path("db")), vec![name.clone()]);
    assert!(world
        .path(&format!("db/.rcbackup/records/{name}.json"))
        .is_file());
    assert!(!std::path::Path::new("/db").join(&name).exists());
    let listed = world.list(None);
    assert_eq!(listed[0]["path"], format!("loc:db/{name}"));
}

/// The same on a network remote: `dav:` is the served folder itself, and
/// `dav:sub` and `dav:sub/` give the very same paths.
#[test]
fn remote_root_and_trailing_slash_on_webdav() {
    let mut world = World::new(Remote::Webdav);
    world.seeded_sqlite("default", 10);
    world.ok(&["dbbackup"]);
    let root_name = world.names(None).remove(0);
    assert_eq!(data_objects(&world.store.join("db")), vec![root_name]);

    world.remote = "dav:sub/".into();
    assert!(world.list(None).is_empty(), "dav:sub/db does not exist yet");
    world.ok(&["dbbackup"]);
    let with_slash = world.list(None);
    assert_eq!(with_slash.len(), 1);
    let name = with_slash[0]["name"].as_str().unwrap().to_string();
    assert_eq!(
        data_objects(&world.store.join("sub/db")),
        vec![name.clone()]
    );
    assert_eq!(with_slash[0]["path"], format!("dav:sub/db/{name}"));

    world.remote = "dav:sub".into();
    let without = world.list(None);
    assert_eq!(without, with_slash, "the same backups, the same paths");
    world.ok(&["verify", "-i", &name]);
}

/// A remote folder that does not exist yet (not even its parents) holds no
/// backups: `[]` and exit 0, for the table too, and for verify/restore a
/// clear "no backup yet".
#[test]
fn missing_remote_folder_means_no_backups() {
    let mut world = World::new(Remote::Local);
    world.seeded_sqlite("default", 10);
    world.remote = format!("loc:{}/not/there/yet", world.store.display());
    let r = world.ok(&["listbackups", "--json"]);
    assert_eq!(r.stdout.trim(), "[]");
    let r = world.ok(&["listbackups"]);
    assert!(r.stdout.trim().is_empty() || !r.stdout.contains("default-"));
    let r = world.run(&["dbrestore", "--noinput"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("no complete backup"), "{}", r.stderr);
    assert!(!world.store.join("not").exists(), "listing created nothing");
}

/// The postgis engine creates the extension before restoring, so a dump
/// with geometry columns restores into a database that lacks PostGIS.
#[test]
fn postgis_round_trip_into_a_database_without_the_extension() {
    let mut world = World::new(Remote::Local);
    let source = PgDb::create("gis");
    psql(
        &source.0,
        "CREATE EXTENSION postgis;
         CREATE TABLE places (id INTEGER PRIMARY KEY, geom geometry(Point, 4326));
         INSERT INTO places VALUES (1, ST_SetSRID(ST_MakePoint(2.35, 48.85), 4326)),
                                   (2, ST_SetSRID(ST_MakePoint(-0.12, 51.5), 4326));",
    );
    let target = PgDb::create("gis_target");
    world
        .postgres("source", &source.0)
        .postgres("target", &target.0);
    world.databases = world.databases.replace("\"postgresql\"", "\"postgis\"");
    world.ok(&["dbbackup", "-d", "source"]);
    let name = world.names(Some("source")).remove(0);
    world.ok(&["dbrestore", "-d", "target", "-i", &name, "--noinput"]);
    let q = "SELECT id, ST_AsText(geom) FROM places ORDER BY id";
    assert_eq!(psql(&target.0, q), psql(&source.0, q));
    assert!(psql(&target.0, q).contains("POINT(2.35 48.85)"));
}
