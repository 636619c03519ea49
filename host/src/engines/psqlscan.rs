//! A conservative model of how psql reads pg_dump's plain SQL
//! (src/fe_utils/psqlscan.l and psql's COPY handling), byte by byte, to
//! find what psql would run on this machine before psql sees it.
//!
//! psql runs a backslash meta-command wherever its lexer is outside quotes,
//! comments, dollar-quotes and COPY data, several per line; a `--` comment
//! ends at `\n` or `\r`; block comments nest; COPY data starts only after a
//! real `COPY ... FROM stdin;` statement and ends at a line `\.`. This scan
//! follows those rules, and refuses whatever it cannot classify with
//! certainty and pg_dump never writes: a backslash outside quotes other than
//! pg_dump's own whole `\restrict KEY`/`\unrestrict KEY` lines, `\'` in a
//! string (read two ways by psql depending on standard_conforming_strings)
//! unless pg_dump's header line set it on and nothing names it after,
//! `client_encoding`/`standard_conforming_strings` anywhere else (server-side
//! code can change them; psql's `\restrict`, which restore requires, is the
//! guard behind this check),
//! a non-ASCII byte outside quotes and comments (read differently when the
//! client encoding is changed), psql variables (`:NAME`, `:'x'`), a NUL
//! byte, a COPY statement that is not pg_dump's `COPY table (cols) FROM
//! stdin;` on its own line (server-side `COPY ... PROGRAM` included), a
//! change of client_encoding to an encoding psql lexes differently, and
//! `\connect` (a dump made with `pg_dump --create`, refused as such).

/// Why a plain SQL dump is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// It holds something pg_dump never writes (a changed file).
    Altered(String),
    /// A genuine `pg_dump --create` dump: it holds `\connect`.
    Create(String),
    /// Possibly genuine pg_dump output that rcbackup cannot check (a
    /// psql-variable-looking token, `client_encoding` or
    /// `standard_conforming_strings` text outside pg_dump's header): not
    /// damaged, but not restored through psql.
    Unsupported(String),
}

impl Refused {
    pub fn message(&self) -> &str {
        match self {
            Refused::Altered(m) | Refused::Create(m) | Refused::Unsupported(m) => m,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum St {
    /// psql's INITIAL state, between tokens.
    Init,
    Ident,
    Number,
    /// `$` then a tag being read: a dollar-quote delimiter or not.
    DollarOpen,
    Param,
    Minus,
    Slash,
    Colon,
    ColonQuote {
        quote: u8,
        n: usize,
    },
    LineComment,
    Block {
        depth: u32,
        prev: u8,
    },
    Quote {
        backslash: bool,
        /// An `E'...'` string: backslash escapes whatever the setting.
        ext: bool,
    },
    QuoteEnd {
        ext: bool,
    },
    DQuote,
    DQuoteEnd,
    Dollar {
        matched: usize,
    },
    /// A backslash line being held until its newline.
    Meta,
    /// After a COPY ... FROM stdin; statement: only its newline may follow.
    CopyEnd,
    /// COPY data: 0 at a line start, 1 after `\`, 2 after `\.`, 3 after
    /// `\.\r`, 4 elsewhere in a line.
    CopyData(u8),
}

/// The longest backslash line held (pg_dump's are about 80 bytes).
const MAX_META: usize = 512;
/// The longest statement text kept to judge a COPY or SET statement.
const MAX_KEPT: usize = 64 * 1024;

/// Server encodings (the only ones psql lexes byte-wise as ASCII-safe).
const SAFE_ENCODINGS: &[&str] = &[
    "UTF8",
    "SQL_ASCII",
    "EUC_JP",
    "EUC_CN",
    "EUC_KR",
    "EUC_TW",
    "EUC_JIS_2004",
    "LATIN1",
    "LATIN2",
    "LATIN3",
    "LATIN4",
    "LATIN5",
    "LATIN6",
    "LATIN7",
    "LATIN8",
    "LATIN9",
    "LATIN10",
    "WIN1256",
    "WIN1258",
    "WIN866",
    "WIN874",
    "KOI8R",
    "WIN1251",
    "WIN1252",
    "ISO_8859_5",
    "ISO_8859_6",
    "ISO_8859_7",
    "ISO_8859_8",
    "WIN1250",
    "WIN1253",
    "WIN1254",
    "WIN1255",
    "WIN1257",
    "KOI8U",
    "MULE_INTERNAL",
];

/// What a byte meant for the bytes before it reaching psql.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Passed (with every byte held before it).
    Pass,
    /// Held: part of a backslash line not yet judged.
    Hold,
    /// The held line (ending with this byte) is pg_dump's `\restrict` or
    /// `\unrestrict`: allowed, and not passed to psql (rcbackup restricts
    /// psql itself).
    DropHeld,
}

#[derive(Clone)]
pub struct PsqlScan {
    st: St,
    line: u64,
    at_line_start: bool,
    /// The current word (identifier or number), upper-cased.
    word: Vec<u8>,
    /// The tag of a dollar quote (being opened, or open).
    tag: Vec<u8>,
    meta: Vec<u8>,
    // The current statement, as psql delimits it.
    stmt_tokens: usize,
    stmt_first: Option<Vec<u8>>,
    stmt_at_line_start: bool,
    first_is_word: bool,
    kept: Vec<u8>,
    keeping: bool,
    paren: u32,
    // psql's heuristic for BEGIN ... END in CREATE FUNCTION/PROCEDURE.
    ident_count: usize,
    idents: [u8; 4],
    begin_depth: u32,
    begin_seen: bool,
    prev_begin_seen: bool,
    refused: Option<Refused>,
    /// The last bytes seen (lower-cased), a ring, to find setting names.
    recent: [u8; 32],
    recent_at: usize,
    /// `client_encoding` seen in the current statement.
    encoding_named: bool,
    /// pg_dump's `SET standard_conforming_strings = ...;` seen.
    scs_named: bool,
    /// standard_conforming_strings is on from the next line / is on.
    scs_pending: bool,
    scs_on: bool,
    /// The word before a quote was `E` (an escape string).
    word_was_e: bool,
}

impl Default for PsqlScan {
    fn default() -> Self {
        PsqlScan {
            st: St::Init,
            line: 1,
            at_line_start: true,
            word: Vec::new(),
            tag: Vec::new(),
            meta: Vec::new(),
            stmt_tokens: 0,
            stmt_first: None,
            stmt_at_line_start: false,
            first_is_word: false,
            kept: Vec::new(),
            keeping: false,
            paren: 0,
            ident_count: 0,
            idents: [0; 4],
            begin_depth: 0,
            begin_seen: false,
            prev_begin_seen: false,
            refused: None,
            recent: [0; 32],
            recent_at: 0,
            encoding_named: false,
            scs_named: false,
            scs_pending: false,
            scs_on: false,
            word_was_e: false,
        }
    }
}

fn ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn ident_cont(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$'
}

fn shown(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(&bytes[..bytes.len().min(60)]);
    s.trim_end().escape_default().to_string()
}

impl PsqlScan {
    fn altered(&mut self, what: String) -> Refused {
        let r = Refused::Altered(format!(
            "it holds {what} (line {}), which pg_dump never writes and psql could run on this machine or read otherwise than rcbackup checks it",
            self.line
        ));
        self.refused = Some(r.clone());
        r
    }

    fn unsupported(&mut self, what: String) -> Refused {
        let r = Refused::Unsupported(format!("{what} (line {})", self.line));
        self.refused = Some(r.clone());
        r
    }

    /// `client_encoding` or `standard_conforming_strings` ending at `b`
    /// (anywhere but COPY data): server-side code (set_config, DO blocks,
    /// functions) can change how psql reads the rest of the stream, which
    /// the scan cannot follow. Only pg_dump's own SET statements may
    /// name them (judged whole at their `;`).
    fn setting_named(&mut self, b: u8) -> Result<(), Refused> {
        let b = b.to_ascii_lowercase();
        self.recent[self.recent_at % 32] = b;
        self.recent_at += 1;
        if b != b'g' && b != b's' {
            return Ok(());
        }
        let ends_with = |name: &[u8]| {
            self.recent_at >= name.len()
                && name
                    .iter()
                    .rev()
                    .enumerate()
                    .all(|(i, &c)| self.recent[(self.recent_at - 1 - i) % 32] == c)
        };
        let (named, what) = if ends_with(b"client_encoding") {
            (
                &mut self.encoding_named,
                "it names `client_encoding` outside pg_dump's own `SET client_encoding` line: server-side code (set_config, a DO block, a function) could change the encoding psql reads the rest in, which rcbackup cannot follow",
            )
        } else if ends_with(b"standard_conforming_strings") {
            (
                &mut self.scs_named,
                "it names `standard_conforming_strings` outside pg_dump's own header line: a change of it changes how psql reads strings, which rcbackup cannot follow",
            )
        } else {
            return Ok(());
        };
        // Once per statement (client_encoding) or stream (the other).
        let set =
            matches!(self.stmt_first.as_deref(), Some(b"SET" | b"RESET")) && self.st == St::Ident;
        if set && !*named {
            *named = true;
            return Ok(());
        }
        Err(self.unsupported(what.into()))
    }

    /// Feeds every byte of `chunk`, calling `out` with each step.
    pub fn feed(&mut self, chunk: &[u8], mut out: impl FnMut(usize, Step)) -> Result<(), Refused> {
        if let Some(r) = &self.refused {
            return Err(r.clone());
        }
        for (i, &b) in chunk.iter().enumerate() {
            let step = self.byte(b)?;
            out(i, step);
            if b == b'\n' {
                self.line += 1;
                self.at_line_start = true;
                // psql reads the lines after pg_dump's SET line with it.
                if self.scs_pending {
                    self.scs_pending = false;
                    self.scs_on = true;
                }
            } else {
                self.at_line_start = false;
            }
        }
        Ok(())
    }

    /// Why the stream, were it to end here, is refused.
    pub fn verdict(&self) -> Option<Refused> {
        self.clone().finish().err()
    }

    /// At the end of the stream.
    pub fn finish(&mut self) -> Result<Step, Refused> {
        if let Some(r) = &self.refused {
            return Err(r.clone());
        }
        match self.st {
            // psql runs a last line without a newline too.
            St::Meta => self.judge_meta(),
            St::Ident | St::Number | St::Param | St::DollarOpen | St::ColonQuote { .. } => {
                self.byte(b' ')?;
                Ok(Step::Pass)
            }
            _ => Ok(Step::Pass),
        }
    }

    fn byte(&mut self, b: u8) -> Result<Step, Refused> {
        if b == 0 {
            return Err(self.altered("a NUL byte".into()));
        }
        if !matches!(self.st, St::CopyData(_) | St::CopyEnd) {
            self.setting_named(b)?;
        }
        if self.keeping {
            if self.kept.len() < MAX_KEPT {
                self.kept.push(b);
            } else {
                self.keeping = false;
                self.kept.clear();
                self.kept.extend_from_slice(b"\0too long");
            }
        }
        loop {
            match self.st.clone() {
                St::Init => return self.initial(b),
                St::Ident => {
                    if ident_cont(b) {
                        self.word.push(b.to_ascii_uppercase());
                        return Ok(Step::Pass);
                    }
                    self.word_was_e = b == b'\'' && self.word == b"E";
                    self.end_word();
                    self.st = St::Init;
                }
                St::Number => {
                    if b.is_ascii_alphanumeric() || b == b'_' || b == b'.' {
                        self.word.push(b.to_ascii_uppercase());
                        return Ok(Step::Pass);
                    }
                    let letters: Vec<u8> = self
                        .word
                        .iter()
                        .copied()
                        .filter(|c| !c.is_ascii_digit() && *c != b'.')
                        .collect();
                    if b == b'$' || !(letters.is_empty() || letters == b"E") {
                        let w = [self.word.as_slice(), &[b]].concat();
                        return Err(self.altered(format!(
                            "`{}`, a number run into other characters",
                            shown(&w)
                        )));
                    }
                    self.word.clear();
                    self.st = St::Init;
                }
                St::DollarOpen => {
                    if b == b'$' {
                        self.st = St::Dollar { matched: 0 };
                        return Ok(Step::Pass);
                    }
                    if self.tag.is_empty() && b.is_ascii_digit() {
                        self.st = St::Param;
                        return Ok(Step::Pass);
                    }
                    if ident_start(b) || (!self.tag.is_empty() && b.is_ascii_digit()) {
                        self.tag.push(b);
                        return Ok(Step::Pass);
                    }
                    // Not a delimiter: psql reads `$`, then the tag as a word.
                    if self.tag.is_empty() {
                        self.st = St::Init;
                    } else {
                        self.word = self.tag.to_ascii_uppercase();
                        self.tag.clear();
                        self.st = St::Ident;
                    }
                }
                St::Param => {
                    if b.is_ascii_digit() {
                        return Ok(Step::Pass);
                    }
                    if ident_cont(b) {
                        return Err(
                            self.altered("a `$n` parameter run into other characters".into())
                        );
                    }
                    self.st = St::Init;
                }
                St::Minus => {
                    if b == b'-' {
                        self.st = St::LineComment;
                        return Ok(Step::Pass);
                    }
                    self.st = St::Init;
                }
                St::Slash => {
                    if b == b'*' {
                        self.st = St::Block { depth: 0, prev: 0 };
                        return Ok(Step::Pass);
                    }
                    self.st = St::Init;
                }
                St::Colon => {
                    if b == b':' || b == b'=' {
                        self.st = St::Init;
                        return Ok(Step::Pass);
                    }
                    if b == b'{' || b.is_ascii_uppercase() {
                        return Err(self.unsupported(
                            "it holds `:` followed by a name (`:NAME`), which psql reads as one of its variables and replaces by its value: rcbackup cannot tell it from a psql variable, so it does not restore this dump through psql".into(),
                        ));
                    }
                    if b == b'\'' || b == b'"' {
                        self.st = St::ColonQuote { quote: b, n: 0 };
                        return Ok(Step::Pass);
                    }
                    self.st = St::Init;
                }
                St::ColonQuote { quote, n } => {
                    // psql's `:'NAME'`/`:"NAME"`: a variable's value quoted.
                    if b == quote && n > 0 {
                        let q = quote as char;
                        return Err(self.unsupported(format!(
                            "it holds `:{q}NAME{q}` (`:` then a quoted name), which psql reads as one of its variables and replaces by its value: rcbackup cannot tell it from a psql variable, so it does not restore this dump through psql"
                        )));
                    }
                    if b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80 {
                        self.st = St::ColonQuote { quote, n: n + 1 };
                        return Ok(Step::Pass);
                    }
                    // Not a variable: a string or quoted name from the quote
                    // on (what came after it holds no quote or backslash).
                    self.st = if quote == b'"' {
                        St::DQuote
                    } else {
                        St::Quote {
                            backslash: false,
                            ext: false,
                        }
                    };
                }
                St::LineComment => {
                    if b == b'\n' || b == b'\r' {
                        self.st = St::Init;
                        return self.initial(b);
                    }
                    return Ok(Step::Pass);
                }
                St::Block { depth, prev } => {
                    self.st = match (prev, b) {
                        (b'/', b'*') => St::Block {
                            depth: depth + 1,
                            prev: 0,
                        },
                        (b'*', b'/') if depth == 0 => St::Init,
                        (b'*', b'/') => St::Block {
                            depth: depth - 1,
                            prev: 0,
                        },
                        _ => St::Block { depth, prev: b },
                    };
                    return Ok(Step::Pass);
                }
                St::Quote { backslash, ext } => {
                    // A standard string (not `E'...'`) while pg_dump's
                    // header has standard_conforming_strings on, and
                    // nothing may change it after: `\` is a plain byte.
                    let standard = self.scs_on && !ext;
                    if b == b'\'' {
                        if backslash && !standard {
                            return Err(self.altered(
                                "`\\'` in a string, which psql reads two ways (as the string's end or not, by standard_conforming_strings)".into(),
                            ));
                        }
                        self.st = St::QuoteEnd { ext };
                    } else {
                        self.st = St::Quote {
                            backslash: b == b'\\',
                            ext,
                        };
                    }
                    return Ok(Step::Pass);
                }
                St::QuoteEnd { ext } => {
                    if b == b'\'' {
                        self.st = St::Quote {
                            backslash: false,
                            ext,
                        };
                        return Ok(Step::Pass);
                    }
                    self.st = St::Init;
                }
                St::DQuote => {
                    if b == b'"' {
                        self.st = St::DQuoteEnd;
                    }
                    return Ok(Step::Pass);
                }
                St::DQuoteEnd => {
                    if b == b'"' {
                        self.st = St::DQuote;
                        return Ok(Step::Pass);
                    }
                    self.st = St::Init;
                }
                St::Dollar { matched } => {
                    // The delimiter is `$tag$`; `$` is never in a tag.
                    let len = self.tag.len() + 2;
                    self.st = if b == b'$' {
                        if matched == len - 1 {
                            self.tag.clear();
                            St::Init
                        } else {
                            St::Dollar { matched: 1 }
                        }
                    } else if matched >= 1 && matched < len - 1 && self.tag[matched - 1] == b {
                        St::Dollar {
                            matched: matched + 1,
                        }
                    } else {
                        St::Dollar { matched: 0 }
                    };
                    return Ok(Step::Pass);
                }
                St::Meta => {
                    if b == b'\n' {
                        return self.judge_meta();
                    }
                    self.meta.push(b);
                    if self.meta.len() > MAX_META {
                        let m = self.meta.clone();
                        return Err(self.altered(format!("the psql meta-command `{}`", shown(&m))));
                    }
                    return Ok(Step::Hold);
                }
                St::CopyEnd => {
                    if b == b'\n' {
                        self.st = St::CopyData(0);
                        return Ok(Step::Pass);
                    }
                    return Err(self.altered(
                        "something after a `COPY ... FROM stdin;` on its line (psql reads it only after the COPY data)".into(),
                    ));
                }
                St::CopyData(at) => {
                    self.st = match (at, b) {
                        (2 | 3, b'\n') => St::Init,
                        (_, b'\n') => St::CopyData(0),
                        (0, b'\\') => St::CopyData(1),
                        (1, b'.') => St::CopyData(2),
                        (2, b'\r') => St::CopyData(3),
                        _ => St::CopyData(4),
                    };
                    return Ok(Step::Pass);
                }
            }
        }
    }

    /// A byte in psql's INITIAL state, between tokens.
    fn initial(&mut self, b: u8) -> Result<Step, Refused> {
        if b >= 0x80 {
            return Err(self.altered(
                "a non-ASCII byte outside quotes and comments (pg_dump quotes such names)".into(),
            ));
        }
        if b == b'\\' {
            if self.at_line_start {
                self.st = St::Meta;
                self.meta.clear();
                self.meta.push(b);
                return Ok(Step::Hold);
            }
            return Err(
                self.altered("a psql meta-command (`\\`) after other text on its line".into())
            );
        }
        let significant = !(b == b' ' || b == b'\t' || b == b'\n' || b == b'\r' || b == b'\x0c');
        let comment_start = b == b'-' || b == b'/';
        if significant && !comment_start && self.stmt_tokens == 0 {
            self.stmt_at_line_start = self.at_line_start;
            self.first_is_word = ident_start(b);
            self.keeping = true;
            self.kept.clear();
            self.kept.push(b);
        }
        if significant && !comment_start {
            self.stmt_tokens += 1;
        }
        match b {
            b'\'' => {
                self.st = St::Quote {
                    backslash: false,
                    ext: std::mem::take(&mut self.word_was_e),
                }
            }
            b'"' => self.st = St::DQuote,
            b'$' => {
                self.tag.clear();
                self.st = St::DollarOpen;
            }
            b'-' => self.st = St::Minus,
            b'/' => self.st = St::Slash,
            b':' => self.st = St::Colon,
            b'(' => self.paren += 1,
            b')' => self.paren = self.paren.saturating_sub(1),
            b';' if self.paren == 0 && self.begin_depth == 0 => return self.end_statement(),
            _ if ident_start(b) => {
                self.word.clear();
                self.word.push(b.to_ascii_uppercase());
                self.st = St::Ident;
            }
            _ if b.is_ascii_digit() => {
                self.word.clear();
                self.word.push(b);
                self.st = St::Number;
            }
            _ => {}
        }
        Ok(Step::Pass)
    }

    /// A word ended: psql's count of identifiers and its BEGIN/END depth.
    fn end_word(&mut self) {
        let w = std::mem::take(&mut self.word);
        if self.first_is_word {
            self.first_is_word = false;
            self.stmt_first = Some(w.clone());
        }
        if self.ident_count == 0 {
            self.idents = [0; 4];
        }
        if matches!(
            w.as_slice(),
            b"CREATE" | b"FUNCTION" | b"PROCEDURE" | b"OR" | b"REPLACE"
        ) && self.ident_count < 4
        {
            self.idents[self.ident_count] = w[0].to_ascii_lowercase();
        }
        self.ident_count += 1;
        let i = self.idents;
        let in_function = i[0] == b'c'
            && (i[1] == b'f'
                || i[1] == b'p'
                || (i[1] == b'o' && i[2] == b'r' && (i[3] == b'f' || i[3] == b'p')));
        if in_function && self.paren == 0 {
            match w.as_slice() {
                b"BEGIN" => {
                    self.begin_depth += 1;
                    self.begin_seen = true;
                }
                b"CASE" if self.begin_depth >= 1 => self.begin_depth += 1,
                b"END" => self.begin_depth = self.begin_depth.saturating_sub(1),
                _ => {}
            }
        }
    }

    fn end_statement(&mut self) -> Result<Step, Refused> {
        let first = self.stmt_first.take();
        let text = std::mem::take(&mut self.kept);
        let at_line_start = self.stmt_at_line_start;
        let after_function = self.prev_begin_seen;
        self.prev_begin_seen = self.begin_seen;
        self.begin_seen = false;
        self.stmt_tokens = 0;
        self.first_is_word = false;
        self.keeping = false;
        self.paren = 0;
        self.ident_count = 0;
        self.begin_depth = 0;
        self.encoding_named = false;
        match first.as_deref() {
            Some(b"COPY") => {
                if after_function || !at_line_start || !pg_dump_copy(&text) {
                    return Err(self.altered(format!(
                        "the COPY statement `{}`, not one pg_dump writes (`COPY table (columns) FROM stdin;` on its own line; server-side COPY reads and writes files and runs programs)",
                        shown(&text)
                    )));
                }
                self.st = St::CopyEnd;
            }
            // A rollback to a savepoint would undo pg_dump's header SETs.
            Some(b"SAVEPOINT" | b"ROLLBACK" | b"ABORT") => {
                return Err(self.altered(format!("`{}`", shown(&text))));
            }
            Some(word @ (b"DISCARD" | b"RESET"))
                if word == b"DISCARD" || text.to_ascii_uppercase().starts_with(b"RESET ALL") =>
            {
                return Err(self.unsupported(format!(
                    "it holds `{}`, which resets settings that decide how psql reads the rest (standard_conforming_strings, client_encoding)",
                    shown(&text)
                )));
            }
            Some(b"SET" | b"RESET") => {
                let lower = text.to_ascii_lowercase();
                if memchr::memmem::find(&lower, b"standard_conforming_strings").is_some() {
                    if text == b"SET standard_conforming_strings = on;" && at_line_start {
                        self.scs_pending = true;
                    } else if text != b"SET standard_conforming_strings = off;" {
                        return Err(self.unsupported(format!(
                            "it sets standard_conforming_strings otherwise than pg_dump's header line does (`{}`)",
                            shown(&text)
                        )));
                    }
                }
                let touches = memchr::memmem::find(&lower, b"client_encoding").is_some()
                    || memchr::memmem::find(&lower, b"names").is_some();
                if touches && !safe_encoding_set(&text) {
                    return Err(self.altered(format!(
                        "`{}`, a change of client encoding pg_dump does not write",
                        shown(&text)
                    )));
                }
            }
            _ => {}
        }
        Ok(Step::Pass)
    }

    fn judge_meta(&mut self) -> Result<Step, Refused> {
        let line = std::mem::take(&mut self.meta);
        self.st = St::Init;
        let key_line = |cmd: &[u8]| {
            line.strip_prefix(cmd)
                .is_some_and(|k| !k.is_empty() && k.iter().all(u8::is_ascii_alphanumeric))
        };
        if key_line(b"\\restrict ") || key_line(b"\\unrestrict ") {
            return Ok(Step::DropHeld);
        }
        if line.starts_with(b"\\connect ") || line.starts_with(b"\\c ") {
            let r = Refused::Create(format!(
                "it holds `{}` (line {}): it was made with `pg_dump --create`, and restoring it would connect to another database than the one configured. rcbackup restores into the configured database only: make such dumps without --create",
                shown(&line),
                self.line
            ));
            self.refused = Some(r.clone());
            return Err(r);
        }
        Err(self.altered(format!("the psql meta-command `{}`", shown(&line))))
    }
}

/// pg_dump's `COPY schema.table (col, ...) FROM stdin;` (or with no
/// column list: two spaces), names plain or double-quoted.
fn pg_dump_copy(text: &[u8]) -> bool {
    let Some(rest) = text.strip_prefix(b"COPY ") else {
        return false;
    };
    let Some(rest) = rest.strip_suffix(b" FROM stdin;") else {
        return false;
    };
    // A name: parts separated by `.`.
    let mut i = 0;
    let ident = |i: &mut usize| -> bool {
        if rest.get(*i) == Some(&b'"') {
            *i += 1;
            loop {
                match rest.get(*i) {
                    None | Some(b'\n' | b'\r') => return false,
                    Some(b'"') if rest.get(*i + 1) == Some(&b'"') => *i += 2,
                    Some(b'"') => {
                        *i += 1;
                        return true;
                    }
                    Some(_) => *i += 1,
                }
            }
        }
        let start = *i;
        while rest.get(*i).is_some_and(|&b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'$'
        }) {
            *i += 1;
        }
        *i > start && !rest[start].is_ascii_digit()
    };
    if !ident(&mut i) {
        return false;
    }
    while rest.get(i) == Some(&b'.') {
        i += 1;
        if !ident(&mut i) {
            return false;
        }
    }
    match &rest[i..] {
        b" " => true,
        cols if cols.starts_with(b" (") && cols.ends_with(b")") => {
            let mut j = i + 2;
            loop {
                if !ident(&mut j) {
                    return false;
                }
                match &rest[j..] {
                    b")" => return true,
                    r if r.starts_with(b", ") => j += 2,
                    _ => return false,
                }
            }
        }
        _ => false,
    }
}

/// pg_dump's `SET client_encoding = 'ENC';` with an encoding psql lexes
/// as ASCII-safe; RESET (back to rcbackup's UTF8) too.
fn safe_encoding_set(text: &[u8]) -> bool {
    if text.eq_ignore_ascii_case(b"RESET client_encoding;") {
        return true;
    }
    let Some(rest) = text.strip_prefix(b"SET client_encoding = '") else {
        return false;
    };
    let Some(enc) = rest.strip_suffix(b"';") else {
        return false;
    };
    SAFE_ENCODINGS.iter().any(|e| e.as_bytes() == enc)
}

/// Scans a whole stream.
#[cfg(test)]
pub fn scan(bytes: &[u8]) -> Result<(), Refused> {
    let mut s = PsqlScan::default();
    s.feed(bytes, |_, _| {})?;
    s.finish().map(|_| ())
}

#[cfg(test)]
mod tests;
