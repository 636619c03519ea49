//! The integrity record stored on the remote beside every backup.
//!
//! A backup exists only when its record and its data object are both there
//! and agree on the size. The record carries what restore checks (size and
//! SHA-256) and what listing and retention read (database, engine, created
//! time), so nothing is ever parsed back out of a file name.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::compression::Codec;
use crate::database::EngineKind;

/// The newest record format this rcbackup reads.
///
/// - 1: the data object is the dump as the dump tool wrote it.
/// - 2: the record says `compression` (`"zstd"`): the data object is the
///   dump compressed by rcbackup.
/// - 3: the record says `adopted`: the data object was made by another tool
///   (django-rclone, django-dbbackup) and only recorded by `rcbackup adopt`;
///   `adopted.layout` says what it holds (a plain SQL dump is not a
///   custom-format one), `compression` may say `"gzip"`.
///
/// A record is written in the lowest format that describes it
/// ([`BackupRecord::compressed`]): an older rcbackup, which ignores fields it
/// does not know, still reads every backup it can restore, and lists a
/// compressed one as damaged ("newer than this rcbackup reads; upgrade
/// rcbackup"), never restoring, counting or deleting it, instead of handing
/// zstd bytes to pg_restore.
pub const RECORD_FORMAT: u32 = 3;
/// The format of a record of rcbackup's own backup compressed by rcbackup.
pub const ZSTD_FORMAT: u32 = 2;
/// The format of a record without `compression`.
pub const PLAIN_FORMAT: u32 = 1;
/// The format of a record of an adopted backup: an rcbackup that reads at
/// most format 2 lists it as "newer than this rcbackup reads" (or, gzip'd,
/// as a record it cannot read), never restoring, counting or deleting it:
/// it would hand a plain SQL dump to pg_restore.
pub const ADOPTED_FORMAT: u32 = 3;

/// Which tool made an adopted backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    DjangoRclone,
    DjangoDbbackup,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::DjangoRclone => "django-rclone",
            Origin::DjangoDbbackup => "django-dbbackup",
        }
    }
}

/// What an adopted backup's data object holds (once gunzipped): what
/// restore and verify read it as. Found from its bytes, not its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// `pg_dump --format=custom`: pg_restore.
    PgCustom,
    /// `pg_dump` plain SQL (django-dbbackup's PgDumpConnector `.psql`): psql.
    PgPlain,
    /// mysqldump/mariadb-dump SQL: mariadb.
    MysqlDump,
    /// `sqlite3 .dump` SQL text (django-rclone's `.sqlite3`): sqlite3.
    SqliteDump,
    /// A SQLite database file (django-dbbackup's SqliteBackupConnector
    /// `.sqlite3`): copied into place after its integrity check.
    SqliteFile,
}

impl Layout {
    pub fn as_str(self) -> &'static str {
        match self {
            Layout::PgCustom => "pg-custom",
            Layout::PgPlain => "pg-plain",
            Layout::MysqlDump => "mysql-dump",
            Layout::SqliteDump => "sqlite-dump",
            Layout::SqliteFile => "sqlite-file",
        }
    }

    /// The layout rcbackup's own backups of `engine` have.
    pub fn of_engine(engine: EngineKind) -> Layout {
        match engine {
            EngineKind::Postgresql | EngineKind::Postgis => Layout::PgCustom,
            EngineKind::Mysql | EngineKind::Mariadb => Layout::MysqlDump,
            EngineKind::Sqlite => Layout::SqliteDump,
        }
    }

    /// Whether a backup of this layout restores into `engine`.
    pub fn fits(self, engine: EngineKind) -> bool {
        crate::engines::compatible(self.engine(), engine)
    }

    fn engine(self) -> EngineKind {
        match self {
            Layout::PgCustom | Layout::PgPlain => EngineKind::Postgresql,
            Layout::MysqlDump => EngineKind::Mariadb,
            Layout::SqliteDump | Layout::SqliteFile => EngineKind::Sqlite,
        }
    }
}

/// What a record says of a backup `rcbackup adopt` recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Adopted {
    pub from: Origin,
    pub layout: Layout,
    /// When rcbackup adopted it, UTC (`created` is from its name).
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupRecord {
    pub format: u32,
    /// The data object's file name inside the backup folder.
    pub name: String,
    /// The alias of the database in the config, e.g. "default".
    pub database: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    pub engine: EngineKind,
    /// Size and SHA-256 of the stored bytes (compressed, if `compression`).
    pub size: u64,
    pub sha256: String,
    /// How rcbackup compressed the dump; absent when it is stored as the
    /// dump tool wrote it (every backup made before compression existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<Codec>,
    /// Set only for a backup another tool made (format 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adopted: Option<Adopted>,
    /// When the backup started (the time its name was made from), UTC.
    pub created: DateTime<Utc>,
    /// When the upload finished, UTC.
    pub finished: DateTime<Utc>,
    /// `rcbackup <version>` that wrote it.
    pub tool: String,
}

impl BackupRecord {
    /// The record of a backup of `database` started at `created`; the
    /// upload finished now.
    pub fn new(
        name: &str,
        database: &str,
        engine: EngineKind,
        size: u64,
        sha256: String,
        created: DateTime<Utc>,
    ) -> BackupRecord {
        BackupRecord {
            format: PLAIN_FORMAT,
            name: name.to_string(),
            database: database.to_string(),
            tenant: None,
            engine,
            size,
            sha256,
            compression: None,
            adopted: None,
            created,
            finished: Utc::now(),
            tool: BackupRecord::tool_version(),
        }
    }

    /// The record of a backup made for `tenant` (`None`: the top level).
    pub fn of_tenant(self, tenant: Option<String>) -> BackupRecord {
        BackupRecord { tenant, ..self }
    }

    /// The record of a backup stored with `codec`, in the lowest format
    /// that says so.
    pub fn compressed(self, codec: Option<Codec>) -> BackupRecord {
        BackupRecord {
            format: if self.adopted.is_some() {
                ADOPTED_FORMAT
            } else if codec.is_some() {
                ZSTD_FORMAT
            } else {
                PLAIN_FORMAT
            },
            compression: codec,
            ..self
        }
    }

    /// The record of a backup another tool made, `gzip`'d or not.
    pub fn adopted(self, adopted: Adopted, gzip: bool) -> BackupRecord {
        BackupRecord {
            adopted: Some(adopted),
            ..self
        }
        .compressed(gzip.then_some(Codec::Gzip))
    }

    /// What the data object holds once decompressed.
    pub fn layout(&self) -> Layout {
        self.adopted
            .as_ref()
            .map_or(Layout::of_engine(self.engine), |a| a.layout)
    }

    /// Reads one record file's contents. A record that does not read says
    /// why, naming the field at fault: "field `size`: invalid type ...",
    /// "missing field `sha256`".
    pub fn parse(bytes: &[u8]) -> Result<BackupRecord, String> {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let rec: BackupRecord = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if path == "." {
                inner.to_string()
            } else {
                format!("field `{path}`: {inner}")
            }
        })?;
        de.end().map_err(|e| e.to_string())?;
        match rec.inconsistency() {
            Some(why) => Err(why),
            None => Ok(rec),
        }
    }

    /// What makes a record that parses self-contradictory, if anything.
    /// Format 2 exists only to say how its backup is compressed: one without
    /// `compression` was edited, and reading its zstd bytes as a plain dump
    /// would hand them to the restore tool.
    pub fn inconsistency(&self) -> Option<String> {
        if self.format == ZSTD_FORMAT && self.compression != Some(Codec::Zstd) {
            return Some(format!(
                "field `compression`: missing from a format-{ZSTD_FORMAT} record, which must say how its backup is stored (\"zstd\")"
            ));
        }
        // An adopted backup is not what rcbackup's own restore path reads:
        // only format 3 may say so (an older rcbackup then refuses it), and
        // format 3 says nothing else.
        if (self.format == ADOPTED_FORMAT) != self.adopted.is_some() {
            return Some(if self.adopted.is_some() {
                format!("field `adopted`: only a format-{ADOPTED_FORMAT} record may have it")
            } else {
                format!("field `adopted`: missing from a format-{ADOPTED_FORMAT} record")
            });
        }
        if self.compression == Some(Codec::Gzip) && self.adopted.is_none() {
            return Some(
                "field `compression`: `gzip` only in a record of an adopted backup".into(),
            );
        }
        if self.compression == Some(Codec::Zstd) && self.adopted.is_some() {
            return Some("field `compression`: an adopted backup is never `zstd`".into());
        }
        if let Some(a) = &self.adopted {
            if !a.layout.fits(self.engine) {
                return Some(format!(
                    "fields `engine` and `adopted`: a {} backup does not restore into {}",
                    a.layout.as_str(),
                    self.engine.as_str()
                ));
            }
        }
        // The database names a lock folder and a table row: a record that
        // names one no config could have is not rcbackup's to trust.
        if let Err(why) = crate::database::check_alias(&self.database) {
            return Some(format!("field `database`: {why}"));
        }
        self.tenant
            .as_deref()
            .and_then(|t| crate::config::check_tenant_name(t).err())
            .map(|why| format!("field `tenant`: {why}"))
    }

    /// One JSON line: records are read back concatenated by one `rclone cat`.
    pub fn to_line(&self) -> String {
        let mut s = serde_json::to_string(self).expect("record serializes");
        s.push('\n');
        s
    }

    pub fn tool_version() -> String {
        format!("rcbackup {}", env!("CARGO_PKG_VERSION"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn engine() -> impl Strategy<Value = EngineKind> {
        prop_oneof![
            Just(EngineKind::Postgresql),
            Just(EngineKind::Postgis),
            Just(EngineKind::Mysql),
            Just(EngineKind::Mariadb),
            Just(EngineKind::Sqlite),
        ]
    }

    fn time() -> impl Strategy<Value = DateTime<Utc>> {
        // Years 1970 to 2200, to the nanosecond.
        (0i64..7_258_118_400, 0u32..1_000_000_000)
            .prop_map(|(s, n)| Utc.timestamp_opt(s, n).unwrap())
    }

    fn record() -> impl Strategy<Value = BackupRecord> {
        (
            // A database is an alias, a tenant a tenant name: any other
            // is an inconsistency (tested below).
            (any::<u32>(), any::<String>(), "[A-Za-z0-9_-]{1,20}"),
            proptest::option::of("[a-z0-9][a-z0-9_-]{0,20}"),
            engine(),
            any::<u64>(),
            "[0-9a-f]{64}",
            (
                time(),
                time(),
                any::<String>(),
                proptest::option::of(prop_oneof![Just(Codec::Zstd), Just(Codec::Gzip)]),
                proptest::option::of((
                    prop_oneof![Just(Origin::DjangoRclone), Just(Origin::DjangoDbbackup)],
                    any::<bool>(),
                    time(),
                )),
            ),
        )
            .prop_map(
                |(
                    (format, name, database),
                    tenant,
                    engine,
                    size,
                    sha256,
                    (created, finished, tool, compression, adopted),
                )| {
                    // Format 3 is adopted backups', which are never zstd;
                    // gzip is theirs only; format 2 says zstd.
                    let adopted = adopted.map(|(from, plain, at)| Adopted {
                        from,
                        layout: match (engine, plain) {
                            (EngineKind::Postgresql | EngineKind::Postgis, true) => Layout::PgPlain,
                            (EngineKind::Sqlite, true) => Layout::SqliteFile,
                            _ => Layout::of_engine(engine),
                        },
                        at,
                    });
                    let compression = match (compression, adopted.is_some()) {
                        (Some(_), true) => Some(Codec::Gzip),
                        (Some(_), false) => Some(Codec::Zstd),
                        (None, _) => None,
                    };
                    let format = match (format, adopted.is_some()) {
                        (_, true) => ADOPTED_FORMAT,
                        (ADOPTED_FORMAT, false) => PLAIN_FORMAT,
                        (ZSTD_FORMAT, false) if compression.is_none() => PLAIN_FORMAT,
                        (f, false) => f,
                    };
                    BackupRecord {
                        format,
                        adopted,
                        name,
                        database,
                        tenant,
                        engine,
                        size,
                        sha256,
                        compression,
                        created,
                        finished,
                        tool,
                    }
                },
            )
    }

    /// JSON values of every shape, with the record's own keys likely.
    fn json() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>().prop_map(serde_json::Value::from),
            any::<String>().prop_map(serde_json::Value::from),
            "postgresql|sqlite|2024-01-02T03:04:05Z".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(3, 32, 10, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                proptest::collection::btree_map(
                    "format|name|database|tenant|engine|size|sha256|created|finished|tool|compression|adopted|x",
                    inner,
                    0..10
                )
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn a_record_round_trips(rec in record()) {
            let line = rec.to_line();
            prop_assert!(line.ends_with('\n') && !line[..line.len() - 1].contains('\n'));
            prop_assert_eq!(BackupRecord::parse(line.as_bytes()), Ok(rec));
        }

        #[test]
        fn any_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = BackupRecord::parse(&bytes);
        }

        /// A record with one field of the wrong type, or one field missing,
        /// is rejected naming that field.
        #[test]
        fn a_rejected_record_names_the_field(
            rec in record(),
            field in 0usize..11,
            bad in json(),
        ) {
            let serde_json::Value::Object(mut map) = serde_json::to_value(&rec).unwrap() else {
                unreachable!()
            };
            let key = map.keys().nth(field % map.len()).unwrap().clone();
            let mut missing = map.clone();
            missing.remove(&key);
            let got = BackupRecord::parse(&serde_json::to_vec(&missing).unwrap());
            if key != "tenant" && key != "compression" && key != "adopted" {
                let why = got.unwrap_err();
                prop_assert!(why.contains(&format!("`{key}`")), "{}", why);
            }
            map.insert(key.clone(), bad);
            let bytes = serde_json::to_vec(&map).unwrap();
            if let Err(why) = BackupRecord::parse(&bytes) {
                // A nested field is named by its path: `adopted.from`.
                prop_assert!(why.contains(&format!("`{key}")), "{}", why);
            }
        }

        #[test]
        fn arbitrary_json_never_panics(v in json()) {
            let _ = BackupRecord::parse(&serde_json::to_vec(&v).unwrap());
        }
    }

    #[test]
    fn a_rejected_record_names_the_field_for_people() {
        let e = BackupRecord::parse(
            br#"{"format":1,"name":"a","database":"d","engine":"sqlite","size":"10"}"#,
        )
        .unwrap_err();
        assert!(e.starts_with("field `size`: invalid type"), "{e}");
        let e = BackupRecord::parse(br#"{"format":1}"#).unwrap_err();
        assert!(e.contains("missing field `name`"), "{e}");
        let good = BackupRecord::new("a", "d", EngineKind::Sqlite, 1, "00".into(), Utc::now());
        assert_eq!(
            BackupRecord::parse(good.to_line().as_bytes()),
            Ok(good.clone())
        );
        let e = BackupRecord::parse(format!("{} x", good.to_line()).as_bytes()).unwrap_err();
        assert!(e.contains("trailing"), "{e}");
    }

    /// Every record written before compression (format 1, no field) reads
    /// as a backup stored as the dump tool wrote it; a compressed one says
    /// so, in format 2, which an older rcbackup refuses to read as its own
    /// (catalog: "newer than this rcbackup reads").
    #[test]
    fn compression_is_a_field_of_format_2_only_when_compressed() {
        let old = r#"{"format":1,"name":"default-2025-01-01-000000.dump","database":"default","engine":"postgresql","size":10,"sha256":"00","created":"2025-01-01T00:00:00Z","finished":"2025-01-01T00:00:01Z","tool":"rcbackup 0.1.0"}"#;
        let rec = BackupRecord::parse(old.as_bytes()).unwrap();
        assert_eq!((rec.format, rec.compression), (1, None));
        let plain = rec.clone().compressed(None);
        assert_eq!(plain.format, PLAIN_FORMAT);
        assert!(
            !plain.to_line().contains("compression"),
            "{}",
            plain.to_line()
        );
        let zstd = rec.compressed(Some(Codec::Zstd));
        assert_eq!(zstd.format, ZSTD_FORMAT);
        const { assert!(RECORD_FORMAT > ZSTD_FORMAT && ZSTD_FORMAT > PLAIN_FORMAT) };
        assert!(
            zstd.to_line().contains(r#""compression":"zstd""#),
            "{}",
            zstd.to_line()
        );
        assert_eq!(BackupRecord::parse(zstd.to_line().as_bytes()), Ok(zstd));
        let two = old.replace(r#""format":1"#, r#""format":2"#);
        let e = BackupRecord::parse(two.as_bytes()).unwrap_err();
        assert!(e.starts_with("field `compression`: missing"), "{e}");
        let lz4 = old.replace(r#""tool""#, r#""compression":"lz4","tool""#);
        let e = BackupRecord::parse(lz4.as_bytes());
        assert!(e.unwrap_err().starts_with("field `compression`"));
    }

    /// An adopted backup's record is format 3 and says so; a format-1 or
    /// format-2 record that says `adopted` (which an older rcbackup would
    /// restore as its own) is refused, and so is a format 3 without it.
    #[test]
    fn adopted_records_are_format_3_only() {
        let base = BackupRecord::new(
            "default-web1-2026-11-28-223507.psql.gz",
            "default",
            EngineKind::Postgresql,
            10,
            "00".into(),
            Utc::now(),
        );
        let a = Adopted {
            from: Origin::DjangoDbbackup,
            layout: Layout::PgPlain,
            at: Utc::now(),
        };
        let rec = base.clone().adopted(a.clone(), true);
        assert_eq!(rec.format, ADOPTED_FORMAT);
        assert_eq!(rec.compression, Some(Codec::Gzip));
        assert_eq!(rec.layout(), Layout::PgPlain);
        let line = rec.to_line();
        assert!(
            line.contains(r#""adopted":{"from":"django-dbbackup","layout":"pg-plain""#),
            "{line}"
        );
        assert_eq!(BackupRecord::parse(line.as_bytes()), Ok(rec.clone()));
        for f in [PLAIN_FORMAT, ZSTD_FORMAT] {
            let older = line.replace(r#""format":3"#, &format!(r#""format":{f}"#));
            let e = BackupRecord::parse(older.as_bytes()).unwrap_err();
            assert!(
                e.contains("`adopted`") || e.contains("`compression`"),
                "{e}"
            );
        }
        let mut bare = rec.clone();
        bare.adopted = None;
        assert!(BackupRecord::parse(bare.to_line().as_bytes()).is_err());
        let sqlite = BackupRecord {
            engine: EngineKind::Sqlite,
            ..rec
        };
        let e = BackupRecord::parse(sqlite.to_line().as_bytes()).unwrap_err();
        assert!(e.contains("does not restore into"), "{e}");
        assert_eq!(base.layout(), Layout::PgCustom);
    }
}
