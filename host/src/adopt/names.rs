//! The names django-rclone and django-dbbackup give their backups, read
//! back: which database a file is of, when it was made, and what its
//! extension says it holds.
//!
//! A name is matched against a template with one database's identifier put
//! in place of `{database}`/`{databasename}`, never by guessing where the
//! database part ends: `app-2026-...` is `app`'s and never `app2`'s, and a
//! name that two databases' identifiers both fit is reported as ambiguous
//! by the caller. The date is fixed-width (the directives below), so a
//! server name and an extension are the only parts of unknown length.

use chrono::{DateTime, Local, NaiveDateTime, TimeZone, Utc};

use crate::record::Origin;

/// How the time in a name is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zone {
    /// django-rclone and rcbackup: UTC.
    Utc,
    /// django-dbbackup: the naive local time of the machine that made it,
    /// read in this machine's zone.
    Local,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Lit(String),
    Database,
    Server,
    Datetime,
    Ext,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum DatePiece {
    Digits(usize),
    Lit(char),
}

/// One way backups were named: a template, a date format, the zone of its
/// times, and the tool it stands for.
#[derive(Debug, Clone)]
pub struct Pattern {
    pub origin: Origin,
    pub template: String,
    pub date_format: String,
    pub zone: Zone,
    pieces: Vec<Piece>,
    date: Vec<DatePiece>,
}

/// What a name says, once matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub created: DateTime<Utc>,
    /// Everything the template's `{ext}`/`{extension}` took, e.g.
    /// `psql.bin.gz`.
    pub ext: String,
}

impl Pattern {
    /// Accepts django-rclone's placeholders (`{database}`, `{datetime}`,
    /// `{ext}`) and django-dbbackup's (`{databasename}`, `{servername}`,
    /// `{datetime}`, `{extension}`, `{content_type}`, which is `db` for a
    /// database backup), and date directives of fixed width.
    pub fn new(
        template: &str,
        date_format: &str,
        origin: Origin,
        zone: Zone,
    ) -> Result<Pattern, String> {
        let mut pieces = Vec::new();
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                pieces.push(Piece::Lit(rest[..open].to_string()));
            }
            let close = rest[open..]
                .find('}')
                .ok_or_else(|| format!("template `{template}` has a `{{` without `}}`"))?;
            let field = &rest[open + 1..open + close];
            pieces.push(match field {
                "database" | "databasename" => Piece::Database,
                "servername" => Piece::Server,
                "datetime" => Piece::Datetime,
                "ext" | "extension" => Piece::Ext,
                "content_type" => Piece::Lit("db".into()),
                other => {
                    return Err(format!(
                        "template `{template}` has the placeholder `{{{other}}}`; adopt knows {{database}}, {{databasename}}, {{servername}}, {{datetime}}, {{ext}}, {{extension}}, {{content_type}}"
                    ))
                }
            });
            rest = &rest[open + close + 1..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Lit(rest.to_string()));
        }
        for (needed, what) in [
            (Piece::Database, "{database}"),
            (Piece::Datetime, "{datetime}"),
        ] {
            if !pieces.contains(&needed) {
                return Err(format!("template `{template}` has no {what}: adopt could not tell whose backup a file is or when it was made"));
            }
        }
        let date = date_pieces(date_format)?;
        Ok(Pattern {
            origin,
            template: template.to_string(),
            date_format: date_format.to_string(),
            zone,
            pieces,
            date,
        })
    }

    /// What `name` says if it is a name this pattern gives to a backup of
    /// the database known as `key`.
    pub fn parse(&self, name: &str, key: &str) -> Option<Parsed> {
        let mut found = None;
        self.walk(name, key, 0, None, None, &mut found);
        found
    }

    /// Matches `pieces[i..]` against `rest`, trying every length of the
    /// parts of unknown length; the first full match whose date is a real
    /// time wins.
    fn walk(
        &self,
        rest: &str,
        key: &str,
        i: usize,
        date: Option<&str>,
        ext: Option<&str>,
        found: &mut Option<Parsed>,
    ) {
        if found.is_some() {
            return;
        }
        let Some(piece) = self.pieces.get(i) else {
            if let (true, Some(d), Some(e)) = (rest.is_empty(), date, ext) {
                if let Some(created) = self.time(d) {
                    *found = Some(Parsed {
                        created,
                        ext: e.to_string(),
                    });
                }
            }
            return;
        };
        match piece {
            Piece::Lit(l) => {
                if let Some(r) = rest.strip_prefix(l.as_str()) {
                    self.walk(r, key, i + 1, date, ext, found);
                }
            }
            Piece::Database => {
                if let Some(r) = rest.strip_prefix(key) {
                    self.walk(r, key, i + 1, date, ext, found);
                }
            }
            Piece::Datetime => {
                if let Some(n) = self.date_len(rest) {
                    self.walk(&rest[n..], key, i + 1, Some(&rest[..n]), ext, found);
                }
            }
            Piece::Server | Piece::Ext => {
                for (n, _) in rest.char_indices().skip(1).chain([(rest.len(), ' ')]) {
                    if n == 0 {
                        continue;
                    }
                    let taken = &rest[..n];
                    let ext = if *piece == Piece::Ext {
                        Some(taken)
                    } else {
                        ext
                    };
                    self.walk(&rest[n..], key, i + 1, date, ext, found);
                }
            }
        }
    }

    /// How many bytes at the start of `s` have the date's shape.
    fn date_len(&self, s: &str) -> Option<usize> {
        let b = s.as_bytes();
        let mut at = 0;
        for p in &self.date {
            match p {
                DatePiece::Digits(n) => {
                    if b.len() < at + n || !b[at..at + n].iter().all(u8::is_ascii_digit) {
                        return None;
                    }
                    at += n;
                }
                DatePiece::Lit(c) => {
                    let mut buf = [0u8; 4];
                    let c = c.encode_utf8(&mut buf).as_bytes();
                    if !b[at..].starts_with(c) {
                        return None;
                    }
                    at += c.len();
                }
            }
        }
        Some(at)
    }

    fn time(&self, shown: &str) -> Option<DateTime<Utc>> {
        let naive = NaiveDateTime::parse_from_str(shown, &self.date_format)
            .ok()
            .or_else(|| {
                // A format without a time of day (`%Y-%m-%d`): midnight.
                chrono::NaiveDate::parse_from_str(shown, &self.date_format)
                    .ok()
                    .and_then(|d| d.and_hms_opt(0, 0, 0))
            })?;
        match self.zone {
            Zone::Utc => Some(naive.and_utc()),
            // A time that the clock showed twice (the hour a DST change
            // repeats) is taken as the earlier; one it skipped does not exist.
            Zone::Local => earlier(&Local, &naive),
        }
    }
}

/// The instant `naive` shows in `zone`; of two (the hour a DST change
/// repeats), the earlier by the clock of the world, whichever order the
/// zone gives them in (chrono's Local gives the later first).
pub(crate) fn earlier<Z: TimeZone>(zone: &Z, naive: &NaiveDateTime) -> Option<DateTime<Utc>> {
    use chrono::LocalResult;
    match zone.from_local_datetime(naive) {
        LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(a, b) => Some(a.with_timezone(&Utc).min(b.with_timezone(&Utc))),
        LocalResult::None => None,
    }
}

/// The fixed-width shape of a date format: django-dbbackup's own list of
/// directives that its cleanup can read back, less the names of days and
/// months (their width varies).
fn date_pieces(f: &str) -> Result<Vec<DatePiece>, String> {
    let mut out = Vec::new();
    let mut chars = f.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(DatePiece::Lit(c));
            continue;
        }
        let width = match chars.next() {
            Some('Y') => 4,
            Some('m' | 'd' | 'H' | 'M' | 'S' | 'y' | 'I' | 'U' | 'W') => 2,
            Some('j') => 3,
            Some('f') => 6,
            Some('w') => 1,
            Some('%') => {
                out.push(DatePiece::Lit('%'));
                continue;
            }
            Some(d) => {
                return Err(format!(
                    "date format `{f}` has `%{d}`, which adopt cannot read back; it reads %Y %m %d %H %M %S %f %j and literal text"
                ))
            }
            None => return Err(format!("date format `{f}` ends with a lone `%`")),
        };
        out.push(DatePiece::Digits(width));
    }
    Ok(out)
}

/// What an extension says about the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extension {
    /// `dump`, `psql`, `psql.bin`, `sql`, `sqlite3`, ...
    pub base: String,
    pub gzip: bool,
    pub gpg: bool,
}

/// Splits django-dbbackup's suffixes off: compressed first, then encrypted
/// (`psql.bin.gz.gpg`).
pub fn extension(ext: &str) -> Extension {
    let (rest, gpg) = match ext.strip_suffix(".gpg") {
        Some(r) => (r, true),
        None => (ext, false),
    };
    let (base, gzip) = match rest.strip_suffix(".gz") {
        Some(r) => (r, true),
        None => (rest, false),
    };
    Extension {
        base: base.to_string(),
        gzip,
        gpg,
    }
}

/// The base extensions a backup of an engine's family gets from either
/// tool: django-rclone `dump`/`sql`/`sqlite3`; django-dbbackup `psql`
/// (PgDumpConnector), `psql.bin` (PgDumpBinaryConnector, its default),
/// `dump` (MySQL, SqliteConnector's SQL, SqliteCPConnector's file copy),
/// `sqlite3` (SqliteBackupConnector, its default).
pub fn fits_engine(base: &str, engine: crate::database::EngineKind) -> bool {
    use crate::database::EngineKind::*;
    match engine {
        Postgresql | Postgis => matches!(base, "dump" | "psql" | "psql.bin"),
        Mysql | Mariadb => matches!(base, "dump" | "sql"),
        Sqlite => matches!(base, "dump" | "sqlite3"),
    }
}

/// The templates adopt always knows: each tool's default.
pub fn defaults() -> Vec<Pattern> {
    let f = crate::naming::DateFormat::DEFAULT;
    vec![
        Pattern::new(
            "{database}-{datetime}.{ext}",
            f,
            Origin::DjangoRclone,
            Zone::Utc,
        )
        .expect("django-rclone's default"),
        Pattern::new(
            "{databasename}-{servername}-{datetime}.{extension}",
            f,
            Origin::DjangoDbbackup,
            Zone::Local,
        )
        .expect("django-dbbackup's default"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rclone() -> Pattern {
        defaults().remove(0)
    }

    fn dbbackup_utc() -> Pattern {
        Pattern::new(
            "{databasename}-{servername}-{datetime}.{extension}",
            "%Y-%m-%d-%H%M%S",
            Origin::DjangoDbbackup,
            Zone::Utc,
        )
        .unwrap()
    }

    #[test]
    fn the_defaults_read_their_names() {
        let p = rclone()
            .parse("default-2026-11-29-043457.dump", "default")
            .unwrap();
        assert_eq!(p.ext, "dump");
        assert_eq!(p.created.to_rfc3339(), "2026-11-29T04:34:57+00:00");
        assert_eq!(
            rclone().parse("default-2026-11-29-043457.dump", "defaul"),
            None
        );
        assert_eq!(rclone().parse("app2-2026-11-29-043457.dump", "app"), None);
        let p = dbbackup_utc()
            .parse("default-web-1-2026-11-28-223504.psql.bin.gz", "default")
            .unwrap();
        assert_eq!(p.ext, "psql.bin.gz");
        assert_eq!(p.created.to_rfc3339(), "2026-11-28T22:35:04+00:00");
        // Not a date: no match, whatever the split.
        assert_eq!(
            dbbackup_utc().parse("default-web1-2026-13-28-223504.psql", "default"),
            None
        );
        assert_eq!(
            rclone()
                .parse("default-2026-11-29-043457.dump.partial-ab12", "default")
                .map(|p| p.ext),
            Some("dump.partial-ab12".into())
        );
        assert_eq!(
            extension("psql.bin.gz.gpg"),
            Extension {
                base: "psql.bin".into(),
                gzip: true,
                gpg: true
            }
        );
        assert_eq!(
            extension("sqlite3"),
            Extension {
                base: "sqlite3".into(),
                gzip: false,
                gpg: false
            }
        );
    }

    #[test]
    fn unknown_placeholders_and_directives_are_refused() {
        assert!(Pattern::new(
            "{database}-{when}.{ext}",
            "%Y",
            Origin::DjangoRclone,
            Zone::Utc
        )
        .is_err());
        assert!(Pattern::new("{datetime}.{ext}", "%Y", Origin::DjangoRclone, Zone::Utc).is_err());
        let e = Pattern::new(
            "{database}-{datetime}.{ext}",
            "%d-%b-%Y",
            Origin::DjangoRclone,
            Zone::Utc,
        )
        .unwrap_err();
        assert!(e.contains("%b"), "{e}");
        let p = Pattern::new(
            "{database}_{datetime}.{ext}",
            "%Y%m%d",
            Origin::DjangoRclone,
            Zone::Utc,
        )
        .unwrap();
        assert_eq!(
            p.parse("x_20260102.dump", "x")
                .unwrap()
                .created
                .to_rfc3339(),
            "2026-01-02T00:00:00+00:00"
        );
    }

    proptest! {
        /// Any name a template gives (any alias, server name and
        /// extension, unicode included) reads back to its database's key,
        /// time and extension; another key that is not a prefix-equal of
        /// the name does not read it.
        #[test]
        fn names_read_back(
            db in "[\\PC&&[^/{}]]{1,12}",
            server in "[\\PC&&[^/{}]]{1,12}",
            ext in "(dump|psql|psql\\.bin|sqlite3|sql)(\\.gz)?(\\.gpg)?",
            secs in 0i64..4_102_444_800,
            other in "[a-z]{1,5}",
        ) {
            let at = DateTime::<Utc>::from_timestamp(secs, 0).unwrap();
            let shown = at.format("%Y-%m-%d-%H%M%S").to_string();
            for (p, name) in [
                (rclone(), format!("{db}-{shown}.{ext}")),
                (dbbackup_utc(), format!("{db}-{server}-{shown}.{ext}")),
            ] {
                let got = p.parse(&name, &db);
                prop_assert!(got.is_some(), "{} {}", p.template, name);
                let got = got.unwrap();
                prop_assert_eq!(got.created, at);
                prop_assert_eq!(&got.ext, &ext);
                if !name.starts_with(&other) {
                    prop_assert_eq!(p.parse(&name, &other), None);
                }
            }
        }

        #[test]
        fn any_name_never_panics(name in "\\PC{0,60}", key in "\\PC{0,8}") {
            for p in defaults() {
                let _ = p.parse(&name, &key);
            }
        }
    }
}
