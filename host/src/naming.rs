//! Backup file names: the `db_filename_template` and the `db_date_format`.
//!
//! A name is only a label: which database a backup belongs to and when it was
//! made are read from its integrity record, never parsed back out of the name,
//! so no template can make one database's backups look like another's. The
//! date format is still checked to parse back when the config loads, so that a
//! format which could not identify a time is caught at once.

use chrono::format::{Item, Parsed, StrftimeItems};
use chrono::{DateTime, TimeZone, Timelike, Utc};

/// Longest file name we produce; most remotes allow 255 bytes and crypt
/// remotes lengthen names.
pub const MAX_NAME_LEN: usize = 143;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilenameTemplate(String);

impl FilenameTemplate {
    pub const DEFAULT: &'static str = "{database}-{datetime}.{ext}";
    const PLACEHOLDERS: [&'static str; 3] = ["database", "datetime", "ext"];

    pub fn parse(t: &str) -> Result<Self, String> {
        let mut rest = t;
        let mut seen = Vec::new();
        while let Some(open) = rest.find('{') {
            let close = rest[open..]
                .find('}')
                .ok_or_else(|| format!("`{t}` has a `{{` without a closing `}}`"))?;
            let name = &rest[open + 1..open + close];
            if !Self::PLACEHOLDERS.contains(&name) {
                return Err(format!(
                    "`{t}` uses the unknown placeholder {{{name}}}; the placeholders are {{database}}, {{datetime}} and {{ext}}"
                ));
            }
            seen.push(name.to_string());
            rest = &rest[open + close + 1..];
        }
        if rest.contains('}') {
            return Err(format!("`{t}` has a `}}` without an opening `{{`"));
        }
        for needed in ["database", "datetime"] {
            if !seen.iter().any(|s| s == needed) {
                return Err(format!(
                    "`{t}` must contain {{{needed}}}, e.g. \"{}\"",
                    Self::DEFAULT
                ));
            }
        }
        check_file_name(&t.replace(['{', '}'], "")).map_err(|why| format!("`{t}` {why}"))?;
        Ok(FilenameTemplate(t.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn render(&self, database: &str, datetime: &str, ext: &str) -> String {
        self.0
            .replace("{database}", database)
            .replace("{datetime}", datetime)
            .replace("{ext}", ext)
    }
}

/// `name` with control characters escaped (`\n`, `\u{1b}`), for messages:
/// a stored name can never start a new line of output or steer a terminal.
pub fn printable(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Checks that `name` is a single, harmless file name.
pub fn check_file_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("gives an empty name".into());
    }
    if name.contains('/') || name.contains('\\') {
        return Err("contains a path separator; a backup name must be a plain file name".into());
    }
    if name == "." || name == ".." || name.contains("..") {
        return Err("contains `..`".into());
    }
    if name.starts_with('.') {
        return Err("starts with `.`; hidden names are reserved for rcbackup's own files".into());
    }
    if name.chars().any(|c| c.is_control()) {
        return Err("contains a control character".into());
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!("is longer than {MAX_NAME_LEN} bytes"));
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateFormat(String);

impl DateFormat {
    pub const DEFAULT: &'static str = "%Y-%m-%d-%H%M%S";

    /// Accepts a strftime format only if times formatted with it parse back
    /// to the calendar fields they show (so that no two times it shows can
    /// get the same name by accident: no `%I` without `%p`, no minutes
    /// without the hour, no unpadded fields running together), it needs at
    /// least a date, and what it writes is plain in an object name: ASCII
    /// letters, digits, `-`, `_` and `.`.
    pub fn parse(f: &str) -> Result<Self, String> {
        if StrftimeItems::new(f).any(|i| matches!(i, Item::Error)) {
            return Err(format!(
                "`{f}` has a directive rcbackup does not know; use directives such as %Y %m %d %H %M %S"
            ));
        }
        // Times chosen so that one-digit and two-digit fields, morning and
        // afternoon, and the pairs 10:24/22:24 and Jan 11/Nov 1 all occur.
        let probes = [
            Utc.with_ymd_and_hms(2031, 12, 27, 13, 45, 59).unwrap(),
            Utc.with_ymd_and_hms(2031, 1, 2, 3, 4, 5).unwrap(),
            Utc.with_ymd_and_hms(2031, 1, 11, 22, 24, 0).unwrap(),
            Utc.with_ymd_and_hms(2031, 11, 1, 10, 24, 0).unwrap(),
        ];
        for probe in probes {
            Self::parses_back(f, probe)?;
        }
        for probe in probes {
            let shown = probe.format(f).to_string();
            if let Some(c) = shown
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
            {
                let what = match c {
                    ' ' => "a space".to_string(),
                    c if c.is_whitespace() || c.is_control() => {
                        format!("the character {}", c.escape_default())
                    }
                    c => format!("`{c}`"),
                };
                return Err(format!(
                    "`{f}` puts {what} into backup names (`{}`); a date in an object name may hold only ASCII letters, digits, `-`, `_` and `.` \
                     (`:` is refused by Windows and SMB remotes and reads as a remote's name to rclone; spaces, `+`, `%`, `#`, `?` and `*` need quoting in shells and URLs). \
                     Use e.g. \"{}\"",
                    printable(&shown),
                    Self::DEFAULT
                ));
            }
            check_file_name(&shown).map_err(|why| format!("`{f}` {why}"))?;
        }
        Ok(DateFormat(f.to_string()))
    }

    /// `probe` shown with `f` reads back to the fields it shows.
    fn parses_back(f: &str, probe: DateTime<Utc>) -> Result<(), String> {
        let shown = probe.format(f).to_string();
        let mut parsed = Parsed::new();
        chrono::format::parse(&mut parsed, &shown, StrftimeItems::new(f)).map_err(|e| {
            format!(
                "`{f}` cannot be parsed back ({e}); use an unambiguous format such as \"{}\"",
                Self::DEFAULT
            )
        })?;
        let date = parsed
            .to_naive_date()
            .map_err(|_| format!("`{f}` does not identify a date; include %Y, %m and %d"))?;
        if date != probe.date_naive() {
            return Err(format!(
                "`{f}` does not parse back to the date it shows: {} is shown as `{}`, which reads back as {date}, so two dates would get the same name. \
                 Use zero-padded fields such as %m and %d, or separators, e.g. \"{}\"",
                probe.date_naive(),
                printable(&shown),
                Self::DEFAULT
            ));
        }
        let hour = match (parsed.hour_div_12, parsed.hour_mod_12) {
            (Some(d), Some(m)) => Some(d * 12 + m),
            (None, Some(_)) => {
                return Err(format!(
                    "`{f}` shows a 12-hour clock (%I or %l) without %p: 22:24 and 10:24 would get the same name. Add %p, or use %H"
                ))
            }
            _ => None,
        };
        if parsed.minute.is_some() && hour.is_none() {
            return Err(format!(
                "`{f}` shows minutes without the hour: 10:24 and 11:24 would get the same name. Add %H before %M"
            ));
        }
        if parsed.second.is_some() && parsed.minute.is_none() {
            return Err(format!(
                "`{f}` shows seconds without the minute: times a minute apart would get the same name. Add %M before %S"
            ));
        }
        let want = [probe.hour(), probe.minute(), probe.second()];
        let time_ok = [hour, parsed.minute, parsed.second]
            .iter()
            .zip(want)
            .all(|(got, want)| got.is_none_or(|g| g == want));
        if !time_ok {
            return Err(format!("`{f}` does not parse back to the time it shows"));
        }
        Ok(())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn render(&self, at: DateTime<Utc>) -> String {
        at.format(&self.0).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_template_renders() {
        let t = FilenameTemplate::parse(FilenameTemplate::DEFAULT).unwrap();
        assert_eq!(
            t.render("app", "2024-01-02-030405", "dump"),
            "app-2024-01-02-030405.dump"
        );
    }

    #[test]
    fn template_rejects_bad_input() {
        assert!(FilenameTemplate::parse("{database}/{datetime}.{ext}").is_err());
        assert!(FilenameTemplate::parse("{database}-{servername}-{datetime}").is_err());
        assert!(FilenameTemplate::parse("{database}.{ext}").is_err());
        assert!(FilenameTemplate::parse("{database-{datetime}").is_err());
    }

    #[test]
    fn date_formats() {
        assert!(DateFormat::parse("%Y-%m-%d-%H%M%S").is_ok());
        assert!(DateFormat::parse("%Y%m%dT%H%M%SZ").is_ok());
        assert!(DateFormat::parse("%Y-%m-%d").is_ok());
        assert!(DateFormat::parse("%Q").is_err());
        assert!(DateFormat::parse("%H%M%S").is_err());
        assert!(DateFormat::parse("%Y/%m/%d").is_err());
    }

    #[test]
    fn file_names_refused_one_check_at_a_time() {
        // Each name breaks exactly one rule, so removing any one check lets
        // its name through.
        let refused = [
            ("", "empty"),
            ("a/b", "path separator"),
            ("a\\b", "path separator"),
            ("a..b", "`..`"),
            ("..", "`..`"),
            (".hidden", "starts with `.`"),
            (".x.dump", "starts with `.`"),
            ("a\u{0}b", "control character"),
            ("a\nb", "control character"),
            ("a\u{7f}b", "control character"),
            ("tab\there", "control character"),
        ];
        for (name, why) in refused {
            let got = check_file_name(name).unwrap_err();
            assert!(got.contains(why), "{name:?}: {got}");
        }
        for ok in ["a.dump", "a-b_c.sql", "x", "dots.in.the.name", "ümlaut é"] {
            check_file_name(ok).unwrap_or_else(|e| panic!("{ok:?}: {e}"));
        }
    }

    #[test]
    fn file_names_are_at_most_143_bytes() {
        check_file_name(&"a".repeat(MAX_NAME_LEN)).unwrap();
        let why = check_file_name(&"a".repeat(MAX_NAME_LEN + 1)).unwrap_err();
        assert!(why.contains("longer than 143 bytes"), "{why}");
        // Bytes, not characters: 72 two-byte characters are 144 bytes.
        assert!(check_file_name(&"é".repeat(72)).is_err());
        check_file_name(&format!("{}a", "é".repeat(71))).unwrap();
        assert_eq!(MAX_NAME_LEN, 143);
    }

    #[test]
    fn template_applies_the_file_name_checks() {
        for (t, why) in [
            ("{database}\\{datetime}", "path separator"),
            (".{database}-{datetime}", "starts with `.`"),
            ("{database}\t{datetime}", "control character"),
            ("{database}..{datetime}", "`..`"),
        ] {
            let got = FilenameTemplate::parse(t).unwrap_err();
            assert!(got.contains(why), "{t:?}: {got}");
        }
        let long = format!("{{database}}-{{datetime}}{}", "x".repeat(130));
        assert!(FilenameTemplate::parse(&long).is_err());
        assert!(FilenameTemplate::parse("{database}-{datetime}}").is_err());
        assert!(FilenameTemplate::parse("{datetime}.{ext}").is_err());
        assert_eq!(
            FilenameTemplate::parse("{database}.{datetime}.{ext}")
                .unwrap()
                .as_str(),
            "{database}.{datetime}.{ext}"
        );
        assert_eq!(
            FilenameTemplate::parse("{datetime}_{database}")
                .unwrap()
                .render("db", "T", "x"),
            "T_db"
        );
    }

    /// Issue 8, item 10: formats whose names cannot be told apart, or
    /// that put characters awkward in object names, are refused at load.
    #[test]
    fn date_formats_whose_names_collide_or_are_awkward_are_refused() {
        for (f, why) in [
            // 22:24 and 10:24 would both be named ...-1024.
            ("%Y-%m-%d-%I%M", "%p"),
            // Space-padded and unreadable after %l.
            ("%Y-%m-%d-%l%M", "parsed back"),
            // Minutes without the hour: 10:24 and 11:24 share a name.
            ("%Y-%m-%d-%M", "hour"),
            ("%Y-%m-%d-%H%S", "minute"),
            // Unpadded fields run together: 2024-1-11 and 2024-11-1.
            ("%Y%-m%-d", "parse"),
            ("%Y%m%d-%-H%-M", "parse"),
            ("%Y-%m-%d %H%M", "space"),
            ("%Y-%m-%d-%H:%M", "`:`"),
            ("%Y-%m-%dT%T", "`:`"),
            ("%c", "space"),
            ("%Y-%m-%e", "space"),
            ("%Y-%m-%d+%H", "`+`"),
            ("%Y-%m-%d%z", "`+`"),
            ("%Y-%m-%d_%%", "`%`"),
            ("%Y-%m-%d*", "`*`"),
            ("%Y-%m-%d?%H", "`?`"),
            ("%Y-%m-%d#%H", "`#`"),
        ] {
            let got = DateFormat::parse(f).unwrap_err();
            assert!(got.contains(why), "{f:?}: {got}");
            assert!(got.contains(f), "{f:?} not named: {got}");
        }
        for ok in [
            "%Y-%m-%d-%I%M%p",
            "%Y-%m-%d-%I%M%P",
            "%Y%m%dT%H%M%SZ",
            "%Y-%m-%d",
            "%Y-%m-%d_%H.%M.%S",
            "%Y-%b-%d-%H%M",
            DateFormat::DEFAULT,
        ] {
            DateFormat::parse(ok).unwrap_or_else(|e| panic!("{ok:?}: {e}"));
        }
    }

    #[test]
    fn date_format_must_parse_back_to_its_time() {
        // Fewer fields than the default is fine, as long as a date is there.
        assert!(DateFormat::parse("%Y-%m-%d-%H%M").is_ok());
        assert!(DateFormat::parse("%m-%d").is_err());
        assert!(DateFormat::parse("%Y-%m-%d-%I%M%p").is_ok());
        let f = DateFormat::parse(DateFormat::DEFAULT).unwrap();
        let at = Utc.with_ymd_and_hms(2024, 1, 2, 3, 4, 5).unwrap();
        assert_eq!(f.render(at), "2024-01-02-030405");
        assert_eq!(f.as_str(), DateFormat::DEFAULT);
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(1024))]

            /// Whatever the format, parsing never panics; an accepted one
            /// names every time (1970..2100) plainly, and the name reads
            /// back to the fields it shows, so two times it shows apart
            /// never share a name.
            #[test]
            fn accepted_date_formats_name_every_time_plainly_and_read_back(
                f in "(%[YmdHMSIplkjbBaAyeFTzZsuwUVG%]|%-[mdHMIS]|[-_.: +TZ/]){0,8}",
                secs in 0i64..4_102_444_800,
            ) {
                if let Ok(format) = DateFormat::parse(&f) {
                    let at = DateTime::from_timestamp(secs, 0).unwrap();
                    let name = format.render(at);
                    prop_assert!(
                        name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')),
                        "{f:?} named {at} `{name}`"
                    );
                    prop_assert!(DateFormat::parses_back(&f, at).is_ok(), "{f:?} at {at}");
                }
            }

            #[test]
            fn any_text_as_a_date_format_never_panics(f in ".{0,16}") {
                if let Err(why) = DateFormat::parse(&f) {
                    prop_assert!(!why.is_empty());
                }
            }
        }
    }
}
