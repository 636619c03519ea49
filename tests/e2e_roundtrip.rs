//! Backup, list, verify and restore for every engine on every kind of
//! remote, proving each time that the data came back.

mod support;

use support::*;

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
    assert!(b["size"].as_u64().unwrap() > 1000);
    let created = b["created"].as_str().unwrap();
    assert!(
        created.ends_with('Z') && created.len() == 20,
        "RFC 3339 UTC: {created}"
    );
    assert_eq!(b["sha256"].as_str().unwrap().len(), 64);

    let verified = world.ok(&["verify"]);
    assert!(verified.stdout.contains("OK"), "{}", verified.stdout);

    // Damage the data, then restore.
    db.sql("DELETE FROM items WHERE id > 10; UPDATE notes SET body = 'changed';");
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

/// `remote = "bk:"` is the remote's root: files land at bk:db/..., which for
/// this alias is <store>/db, never at the filesystem's /db.
#[test]
fn remote_root_and_trailing_slash() {
    let mut world = World::new(Remote::Local);
    let file = world.path("a.sqlite3");
    sqlite(&file, &seed_sql(10));
    world.sqlite("default", &file);
    world.ok(&["dbbackup"]);
    let stored = world.stored_files();
    let data: Vec<_> = stored
        .iter()
        .filter(|p| p.parent() == Some(&world.store.join("db")))
        .collect();
    assert_eq!(data.len(), 1, "{stored:?}");

    // A local path with and without a trailing slash names the same folder.
    let plain = world.store.display().to_string();
    for remote in [plain.clone(), format!("{plain}/")] {
        world.remote = remote;
        assert_eq!(world.list(None).len(), 1);
    }
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
