//! Backup file names: the `db_filename_template` and the `db_date_format`.
//!
//! A name is only a label: which database a backup belongs to and when it was
//! made are read from its integrity record, never parsed back out of the name,
//! so no template can make one database's backups look like another's. The
//! date format is still checked to parse back when the config loads, so that a
//! format which could not identify a time is caught at once.
//!
//! Every new backup name, from the template or from a naming policy, passes
//! [`check_file_name`] before anything is dumped. It refuses:
//! - names longer than [`MAX_NAME_LEN`] (120) bytes: a backup named N also
//!   writes `N.json` (its record) and `N.<run id>` (its upload in progress
//!   and its claim), and every object's name must fit the
//!   [`MAX_OBJECT_NAME_LEN`] (143) bytes a crypt remote allows;
//! - path separators (`/`, `\`) and `..`;
//! - control characters, Unicode format characters (bidirectional controls
//!   such as U+202E, which make `x\u{202E}gpj.exe` show as `xexe.jpg`;
//!   zero-width characters; the byte order mark), other invisible characters
//!   (fillers, joiners, variation selectors) and every space but U+0020;
//! - the characters in [`REFUSED_CHARS`]: those Windows forbids in file
//!   names (`: * ? " < > |`; OneDrive, SharePoint, SMB and Windows remotes
//!   store them as other characters), the wildcards of shells and of
//!   rclone's filters (`* ? [ ] { }`), what makes a shell run, redirect or
//!   expand something (`$`, a backquote, `' ; & ( ) !`), and `#`, `%` (special in
//!   the URLs of WebDAV and HTTP stores);
//! - the characters of rclone's own name encoding (control pictures such as
//!   `␊`, fullwidth punctuation, its quote `‛`): a remote would store
//!   another name, or a real control character;
//! - a leading `.` (hidden; reserved for rcbackup's own files), `-` (read as
//!   an option), `~` (a home folder to a shell) or space, and a trailing
//!   space or `.` (dropped by Windows and several stores); so a name of only
//!   spaces or dots is refused.
//!
//! Letters and digits of any script, `-`, `_`, `.`, `+`, `=`, `,`, `@`, `^`,
//! `~` and inner spaces are accepted.
//!
//! A backup that rcbackup compressed has a name ending in `.zst`, and no
//! other backup does ([`compressed_name`]): `{ext}` is `dump.zst`, and a
//! name from a template without `{ext}` or from a naming policy gets `.zst`
//! appended when it lacks it. The name alone then tells someone restoring
//! by hand to decompress first. Names of existing backups are never
//! changed: what a backup holds is read from its record.

use chrono::format::{Item, Parsed, StrftimeItems};
use chrono::{DateTime, TimeZone, Timelike, Utc};

use crate::compression::Codec;

/// The longest name (last path segment) of any object rcbackup writes. A
/// crypt remote with standard filename encryption stores a name as base32 of
/// the name padded to 16-byte blocks; with the 255 bytes most file systems
/// and stores allow, 143 bytes is the most that fits.
pub const MAX_OBJECT_NAME_LEN: usize = 143;

/// The longest run id, `<unix seconds>-<process id>` (see
/// `catalog::run_id`): 11 characters of seconds (a sign and ten digits, or
/// eleven digits until the year 5138) and 10 digits of a process id.
pub const MAX_RUN_ID_LEN: usize = 22;

/// The longest backup name: with `.<run id>` appended (the upload in
/// `partial/`, the claim in `claims/`), the longest name derived from it,
/// it still fits [`MAX_OBJECT_NAME_LEN`].
pub const MAX_NAME_LEN: usize = MAX_OBJECT_NAME_LEN - 1 - MAX_RUN_ID_LEN;

/// ASCII characters refused anywhere in a backup name (see the module's
/// comment for why each).
pub const REFUSED_CHARS: &str = "\\/:*?\"<>|[]{}$`';&()!#%";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilenameTemplate(String);

impl FilenameTemplate {
    pub const DEFAULT: &'static str = "{database}-{datetime}.{ext}";
    /// `{tenant}` is the tenant's name: filled in when a tenant's config
    /// is resolved ([`FilenameTemplate::for_tenant`]), so what a tenant
    /// renders has no placeholder left; the top level's own databases have
    /// no tenant, and a top level with databases refuses the template.
    const PLACEHOLDERS: [&'static str; 4] = ["database", "datetime", "ext", "tenant"];

    pub fn parse(t: &str) -> Result<Self, String> {
        // Shown with control and invisible characters escaped.
        let shown = printable(t);
        let mut rest = t;
        let mut seen = Vec::new();
        while let Some(open) = rest.find('{') {
            let close = rest[open..]
                .find('}')
                .ok_or_else(|| format!("`{shown}` has a `{{` without a closing `}}`"))?;
            let name = &rest[open + 1..open + close];
            if !Self::PLACEHOLDERS.contains(&name) {
                return Err(format!(
                    "`{shown}` uses the unknown placeholder {{{}}}; the placeholders are {{database}}, {{datetime}}, {{ext}} and {{tenant}}",
                    printable(name)
                ));
            }
            seen.push(name.to_string());
            rest = &rest[open + close + 1..];
        }
        if rest.contains('}') {
            return Err(format!("`{shown}` has a `}}` without an opening `{{`"));
        }
        for needed in ["database", "datetime"] {
            if !seen.iter().any(|s| s == needed) {
                return Err(format!(
                    "`{shown}` must contain {{{needed}}}, e.g. \"{}\"",
                    Self::DEFAULT
                ));
            }
        }
        // The rules hold for the template's text (with each placeholder's
        // name standing for its value); the length is checked on what the
        // template alone adds, as the values' lengths are not known yet.
        check_name_rules(&t.replace(['{', '}'], "")).map_err(|why| format!("`{shown}` {why}"))?;
        let fixed = Self::PLACEHOLDERS
            .iter()
            .fold(t.to_string(), |t, p| t.replace(&format!("{{{p}}}"), ""));
        if fixed.len() > MAX_NAME_LEN {
            return Err(format!(
                "`{shown}` has {} bytes of text besides its placeholders; a backup name may be at most {MAX_NAME_LEN} bytes (see \"Backup names\" in the README)",
                fixed.len()
            ));
        }
        Ok(FilenameTemplate(t.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the template names the tenant.
    pub fn uses_tenant(&self) -> bool {
        self.0.contains("{tenant}")
    }

    /// The template with `{tenant}` filled in with `tenant` (checked again:
    /// the name counts towards the longest name).
    pub fn for_tenant(&self, tenant: &str) -> Result<Self, String> {
        FilenameTemplate::parse(&self.0.replace("{tenant}", tenant))
    }

    pub fn render(&self, database: &str, datetime: &str, ext: &str) -> String {
        self.0
            .replace("{database}", database)
            .replace("{datetime}", datetime)
            .replace("{ext}", ext)
    }
}

/// `name` with control, format and invisible characters and unusual
/// spaces escaped (`\n`, `\u{1b}`, `\u{202e}`), for messages: a stored name
/// can never start a new line of output, steer a terminal, or show as
/// another name.
pub fn printable(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_control() || is_invisible(c) || (c.is_whitespace() && c != ' ') {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Characters of rclone's name encoding (lib/encoder): the control
/// pictures standing for control characters and DEL (U+2400–U+2421), the
/// fullwidth forms standing for ASCII punctuation, and `‛` (U+201B), which
/// quotes one of those that is meant literally. A name holding one is
/// stored as another name on some remotes (or with a real control
/// character), and its record then names another backup.
fn is_rclone_encoding(c: char) -> bool {
    matches!(c as u32,
        0x2400..=0x2421 | 0x201B
        | 0xFF01..=0xFF0F | 0xFF1A..=0xFF20 | 0xFF3B..=0xFF40 | 0xFF5B..=0xFF5E)
}

/// Bidirectional controls: they reorder how the text around them is shown.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Unicode format characters (general category Cf, Unicode 15) and other
/// characters that show as nothing: fillers, joiners, variation selectors.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        // Cf
        '\u{00AD}'
            | '\u{0600}'..='\u{0605}'
            | '\u{061C}'
            | '\u{06DD}'
            | '\u{070F}'
            | '\u{0890}'..='\u{0891}'
            | '\u{08E2}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{110BD}'
            | '\u{110CD}'
            | '\u{13430}'..='\u{1343F}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0001}'
            | '\u{E0020}'..='\u{E007F}'
            // Invisible letters and marks: the combining grapheme joiner,
            // Hangul and Khmer fillers, Mongolian and other variation
            // selectors.
            | '\u{034F}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{17B4}'
            | '\u{17B5}'
            | '\u{180B}'..='\u{180D}'
            | '\u{180F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FFA0}'
            | '\u{E0100}'..='\u{E01EF}'
    )
}

/// Why a character may not be in a backup name, if it may not.
fn refused_char(c: char) -> Option<String> {
    let code = || format!("U+{:04X}", c as u32);
    // In backquotes, as the messages show code; a backquote in double ones.
    let q = if c == '`' {
        "`` ` ``".to_string()
    } else {
        format!("`{c}`")
    };
    const FIX: &str = "use letters, digits, `-`, `_` and `.`";
    let why = match c {
        '/' | '\\' => {
            return Some(
                "contains a path separator; a backup name must be a plain file name (the folder is db_backup_dir)".into(),
            )
        }
        _ if c.is_control() => format!("contains a control character ({})", code()),
        _ if is_bidi_control(c) => format!(
            "contains {}, a bidirectional control, which changes how the name is shown (`x` U+202E `gpj.exe` shows as `xexe.jpg`)",
            code()
        ),
        _ if is_invisible(c) => format!("contains {}, an invisible character", code()),
        _ if c.is_whitespace() && c != ' ' => format!(
            "contains {}, a space other than the plain space (U+0020)",
            code()
        ),
        ':' | '*' | '?' | '"' | '<' | '>' | '|' => format!(
            "contains {q}, which Windows file names may not hold (OneDrive, SMB and Windows remotes store it as another character) and shells treat specially"
        ),
        '[' | ']' | '{' | '}' => {
            format!("contains {q}, a wildcard in shell and rclone filter patterns")
        }
        '$' | '`' | '\'' | ';' | '&' | '(' | ')' | '!' => {
            format!("contains {q}, which makes a shell run or expand something")
        }
        '#' | '%' => format!(
            "contains {q}, which is special in the URLs of WebDAV and HTTP remotes"
        ),
        _ if is_rclone_encoding(c) => format!(
            "contains {q} ({}), a character rclone writes in place of one a store cannot hold (control pictures such as `␊`, fullwidth punctuation, its quote `‛`), so the name stored would not be the backup's name",
            code()
        ),
        _ => return None,
    };
    Some(format!("{why}; {FIX}"))
}

/// Checks that `name` is a single, harmless file name, short enough that
/// every object rcbackup writes for a backup of this name fits a crypt
/// remote. The rules are in the module's comment.
pub fn check_file_name(name: &str) -> Result<(), String> {
    check_name_rules(name)?;
    if name.len() > MAX_NAME_LEN {
        return Err(format!(
            "is {} bytes long; a backup name may be at most {MAX_NAME_LEN} bytes, so that the \
             objects rcbackup writes for it (`<name>.json`, `<name>.<run id>`) fit the \
             {MAX_OBJECT_NAME_LEN} bytes a crypt remote allows",
            name.len()
        ));
    }
    Ok(())
}

/// [`check_file_name`] but for the length.
fn check_name_rules(name: &str) -> Result<(), String> {
    const FIX: &str = "use letters, digits, `-`, `_` and `.`";
    if name.is_empty() {
        return Err("gives an empty name".into());
    }
    if let Some(why) = name.chars().find_map(refused_char) {
        return Err(why);
    }
    if name == "." || name == ".." || name.contains("..") {
        return Err("contains `..`".into());
    }
    if name.starts_with('.') {
        return Err("starts with `.`; hidden names are reserved for rcbackup's own files".into());
    }
    if name.starts_with('-') {
        return Err(format!(
            "starts with `-`, which commands read as an option; {FIX}"
        ));
    }
    if name.starts_with('~') {
        return Err(format!(
            "starts with `~`, which a shell reads as a home folder; {FIX}"
        ));
    }
    if name.starts_with(' ') || name.ends_with(' ') {
        return Err(
            "starts or ends with a space, which is easily lost and that several stores drop; remove it"
                .into(),
        );
    }
    if name.ends_with('.') {
        return Err("ends with `.`, which Windows and several stores drop; remove it".into());
    }
    Ok(())
}

/// The name of a new backup stored with `codec`: a compressed backup's name
/// ends in the codec's suffix (`.zst`), appended if `name` lacks it; an
/// uncompressed backup's name must not end in one (refused, saying why).
pub fn compressed_name(name: String, codec: Option<Codec>) -> Result<String, String> {
    let zst = Codec::Zstd.suffix();
    match codec {
        Some(c) if name.ends_with(c.suffix()) => Ok(name),
        Some(c) => Ok(name + c.suffix()),
        None if name.to_ascii_lowercase().ends_with(zst) => Err(format!(
            "ends in `{zst}`, but the backup is not compressed by rcbackup (compression is \"none\" or \"engine\"): the name would tell whoever restores it by hand to decompress it with zstd"
        )),
        None => Ok(name),
    }
}

/// `name` split before its extension (`.dump`, or `.dump.zst` for a
/// compressed backup): `("default-2025", ".dump.zst")`. A leading dot
/// starts no extension.
pub fn split_extension(name: &str) -> (&str, &str) {
    let at = |s: &str| s.rfind('.').filter(|&i| i > 0);
    match at(name) {
        Some(i) if &name[i..] == Codec::Zstd.suffix() => match at(&name[..i]) {
            Some(j) => (&name[..j], &name[j..]),
            None => (&name[..i], &name[i..]),
        },
        Some(i) => (&name[..i], &name[i..]),
        None => (name, ""),
    }
}

/// Checks the path of an object rcbackup is about to write for a backup:
/// no segment (a folder's or the object's name) longer than
/// [`MAX_OBJECT_NAME_LEN`] bytes.
pub fn check_object_path(path: &str) -> Result<(), String> {
    match path.split('/').find(|s| s.len() > MAX_OBJECT_NAME_LEN) {
        None => Ok(()),
        Some(seg) => Err(format!(
            "the path `{}` has a name of {} bytes (`{}`); a crypt remote allows at most {MAX_OBJECT_NAME_LEN}",
            printable(path),
            seg.len(),
            printable(seg)
        )),
    }
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
        if StrftimeItems::new(f).any(|i| {
            matches!(
                i,
                Item::Numeric(chrono::format::Numeric::YearMod100, _)
                    | Item::Numeric(chrono::format::Numeric::IsoYearMod100, _)
            )
        }) {
            return Err(format!(
                "`{f}` writes the year with two digits (%y or %g), so a backup of 2070 would read back as one of 1970; use %Y (e.g. \"{}\")",
                Self::DEFAULT
            ));
        }
        // Times chosen so that one-digit and two-digit fields, morning and
        // afternoon, and the pairs 10:24/22:24 and Jan 11/Nov 1 all occur;
        // the last lies past the turn of two-digit years.
        let probes = [
            Utc.with_ymd_and_hms(2031, 12, 27, 13, 45, 59).unwrap(),
            Utc.with_ymd_and_hms(2031, 1, 2, 3, 4, 5).unwrap(),
            Utc.with_ymd_and_hms(2031, 1, 11, 22, 24, 0).unwrap(),
            Utc.with_ymd_and_hms(2031, 11, 1, 10, 24, 0).unwrap(),
            Utc.with_ymd_and_hms(2070, 6, 15, 12, 30, 30).unwrap(),
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
    fn compressed_backups_and_only_they_end_in_zst() {
        let z = Some(Codec::Zstd);
        assert_eq!(
            compressed_name("a.dump.zst".into(), z).unwrap(),
            "a.dump.zst"
        );
        assert_eq!(compressed_name("a-2025".into(), z).unwrap(), "a-2025.zst");
        assert_eq!(compressed_name("a.dump".into(), z).unwrap(), "a.dump.zst");
        assert_eq!(compressed_name("a.dump".into(), None).unwrap(), "a.dump");
        let e = compressed_name("a.zst".into(), None).unwrap_err();
        assert!(e.contains("not compressed"), "{e}");
        assert!(compressed_name("a.ZSt".into(), None).is_err());
        assert_eq!(split_extension("a-1.dump.zst"), ("a-1", ".dump.zst"));
        assert_eq!(split_extension("a-1.zst"), ("a-1", ".zst"));
        assert_eq!(split_extension("a.b.sql"), ("a.b", ".sql"));
        assert_eq!(split_extension(".x.zst"), (".x", ".zst"));
        assert_eq!(split_extension(".hidden"), (".hidden", ""));
        assert_eq!(split_extension("plain"), ("plain", ""));
    }

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
            ("app\u{201B}2026", "rclone writes"),
            ("app\u{240A}2026", "rclone writes"),
            ("app\u{FF0F}2026", "rclone writes"),
            ("app\u{FF1F}2026", "rclone writes"),
            ("a\nb", "control character"),
            ("a\u{7f}b", "control character"),
            ("tab\there", "control character"),
            ("a\u{85}b", "control character"),
            // Issue 8, item 18: shown as `xexe.jpg`.
            ("x\u{202E}gpj.exe", "U+202E, a bidirectional control"),
            ("x\u{2066}y", "U+2066, a bidirectional control"),
            ("x\u{200F}y", "U+200F, a bidirectional control"),
            ("x\u{061C}y", "U+061C, a bidirectional control"),
            ("x\u{200B}y", "U+200B, an invisible character"),
            ("x\u{FEFF}y", "U+FEFF, an invisible character"),
            ("x\u{00AD}y", "U+00AD, an invisible character"),
            ("x\u{3164}y", "U+3164, an invisible character"),
            ("x\u{E0041}y", "U+E0041, an invisible character"),
            ("x\u{00A0}y", "U+00A0, a space other than the plain space"),
            ("x\u{2028}y", "U+2028, a space other than the plain space"),
            ("x\u{3000}y", "U+3000, a space other than the plain space"),
            ("*", "contains `*`"),
            ("a*.dump", "contains `*`"),
            ("a?.dump", "contains `?`"),
            ("a:b.dump", "contains `:`"),
            ("a\"b", "contains `\"`"),
            ("a<b", "contains `<`"),
            ("a>b", "contains `>`"),
            ("a|b", "contains `|`"),
            ("a[1]", "contains `[`"),
            ("a{b}", "contains `{`"),
            ("a$HOME", "contains `$`"),
            ("a`id`", "contains `` ` ``"),
            ("a'b", "contains `'`"),
            ("a;b", "contains `;`"),
            ("a&b", "contains `&`"),
            ("a(1)", "contains `(`"),
            ("a!b", "contains `!`"),
            ("a#b", "contains `#`"),
            ("a%20b", "contains `%`"),
            ("-rf.dump", "starts with `-`"),
            ("~x.dump", "starts with `~`"),
            (" ", "starts or ends with a space"),
            ("   ", "starts or ends with a space"),
            (" a.dump", "starts or ends with a space"),
            ("a.dump ", "starts or ends with a space"),
            ("a.", "ends with `.`"),
            ("...", "`..`"),
            (".", "`..`"),
        ];
        for (name, why) in refused {
            let got = check_file_name(name).unwrap_err();
            assert!(got.contains(why), "{name:?}: {got}");
            // The message shows no invisible character: it is safe to print.
            assert_eq!(printable(&got), got, "{name:?}");
        }
        for ok in [
            "a.dump",
            "a-b_c.sql",
            "x",
            "dots.in.the.name",
            "ümlaut é",
            "a b c.dump",
            "app+1=2,x@y^z~.sql",
            "データ-2024.dump",
            "_x",
            "1.dump",
        ] {
            check_file_name(ok).unwrap_or_else(|e| panic!("{ok:?}: {e}"));
        }
    }

    /// The documented set is exactly what is refused: every character of
    /// REFUSED_CHARS is, and no other printable ASCII character is (inside
    /// a name).
    #[test]
    fn refused_chars_are_the_documented_set() {
        for b in 0x20u8..0x7f {
            let c = b as char;
            let name = format!("a{c}b");
            let refused = check_file_name(&name).is_err();
            let documented = REFUSED_CHARS.contains(c);
            assert_eq!(refused, documented, "{c:?}");
        }
        assert!(check_file_name("a.b").is_ok());
    }

    #[test]
    fn file_names_leave_room_for_every_object() {
        assert_eq!(MAX_OBJECT_NAME_LEN, 143);
        assert_eq!(MAX_NAME_LEN, 120);
        check_file_name(&"a".repeat(MAX_NAME_LEN)).unwrap();
        for len in [MAX_NAME_LEN + 1, 130, 143] {
            let why = check_file_name(&"a".repeat(len)).unwrap_err();
            assert!(
                why.contains(&format!("is {len} bytes long"))
                    && why.contains("at most 120 bytes")
                    && why.contains("143 bytes a crypt remote allows"),
                "{why}"
            );
        }
        // Bytes, not characters: 61 two-byte characters are 122 bytes.
        assert!(check_file_name(&"é".repeat(61)).is_err());
        check_file_name(&"é".repeat(60)).unwrap();
    }

    #[test]
    fn object_paths_are_checked_segment_by_segment() {
        check_object_path(&format!("db/.rcbackup/x/{}", "a".repeat(143))).unwrap();
        let e = check_object_path(&format!("{}/x", "d".repeat(144))).unwrap_err();
        assert!(e.contains("a name of 144 bytes"), "{e}");
        assert!(e.contains("at most 143"), "{e}");
    }

    #[test]
    fn printable_escapes_what_hides_or_moves_text() {
        assert_eq!(printable("x\u{202E}gpj.exe"), "x\\u{202e}gpj.exe");
        assert_eq!(printable("a\nb"), "a\\nb");
        assert_eq!(printable("a\u{a0}b"), "a\\u{a0}b");
        assert_eq!(printable("a b é"), "a b é");
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
        let long = format!("{{database}}-{{datetime}}{}", "x".repeat(120));
        let why = FilenameTemplate::parse(&long).unwrap_err();
        assert!(
            why.contains("121 bytes of text besides its placeholders"),
            "{why}"
        );
        // Placeholders' names do not count: their values are checked at
        // each backup, before the dump.
        let fits = format!("{{database}}{}{{datetime}}.{{ext}}", "x".repeat(119));
        FilenameTemplate::parse(&fits).unwrap();
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
            ("%y%m%d-%H%M%S", "two digits"),
            ("%y%a%U", "two digits"),
            ("%G%g%m%d", "two digits"),
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

/// Property tests of the name guard and the template parser: outside input
/// (a config's template, a naming policy's answer) never panics them, and
/// whatever they accept is safe to print and fits every object.
#[cfg(test)]
pub(crate) mod props {
    use super::*;
    use proptest::prelude::*;

    /// Names likely to be accepted, names of any printable characters, and
    /// any string at all.
    pub(crate) fn names() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-zA-Z0-9é_][a-zA-Z0-9 ._~+=,@^é-]{0,125}",
            "\\PC{0,150}",
            any::<String>(),
        ]
    }

    proptest! {
        #[test]
        fn an_accepted_name_is_printable_and_fits_every_object(name in names()) {
            if check_file_name(&name).is_ok() {
                prop_assert_eq!(printable(&name), name.clone());
                prop_assert!(name.len() <= MAX_NAME_LEN);
                prop_assert!(!name.contains(|c| REFUSED_CHARS.contains(c)));
                let run = "9".repeat(MAX_RUN_ID_LEN);
                for object in [format!("{name}.json"), format!("{name}.{run}")] {
                    prop_assert!(check_object_path(&object).is_ok(), "{}", object);
                }
            }
        }

        #[test]
        fn a_refused_name_gets_a_printable_reason(name in names()) {
            if let Err(why) = check_file_name(&name) {
                prop_assert!(!why.is_empty());
                prop_assert_eq!(printable(&why), why);
            }
        }

        #[test]
        fn a_template_never_panics_and_renders_safe_names(
            t in prop_oneof![
                "[a-z{}._ -]{0,40}",
                "[a-z._-]{0,10}\\{database\\}[a-z._ -]{0,10}\\{datetime\\}[a-z._-]{0,10}(\\{ext\\})?",
                "\\PC{0,60}",
            ]
        ) {
            match FilenameTemplate::parse(&t) {
                Ok(tpl) => {
                    prop_assert_eq!(tpl.as_str(), t.as_str());
                    let name = tpl.render("db", "2024-01-02-030405", "dump");
                    if name.len() <= MAX_NAME_LEN {
                        prop_assert!(check_file_name(&name).is_ok(), "{:?}: {:?}", t, check_file_name(&name));
                    }
                }
                Err(why) => prop_assert!(why.contains(&format!("`{}`", printable(&t))), "{}", why),
            }
        }
    }
}
