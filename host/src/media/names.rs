//! File names the way rclone sees them, so that every comparison, list and
//! message of the media commands agrees with what rclone does.
//!
//! rclone never works with a local file's bytes as they are: its local
//! backend (encoding `Slash,Dot`, rclone 1.60's default on Linux) decodes a
//! name and then re-encodes it into rclone's *standard* encoding, in which
//! control characters are the Unicode "symbol for" characters (`\n` is `␊`,
//! `\t` is `␉`, DEL is `␡`, NUL is `␀`), a literal `‛` (rclone's quote
//! character) is doubled, and invalid UTF-8 bytes pass through as they are.
//! That standard name is what `rclone lsf` prints, what `--files-from-raw`
//! matches, what the JSON log names, and what every remote stores (each
//! backend converts it to its own encoding and back).
//!
//! rcbackup keeps each name as text in that standard encoding, with each
//! invalid UTF-8 byte written `‛XX` (hex, as rclone's `InvalidUtf8`
//! encoding writes it). That text is one-to-one with rclone's name: in a
//! standard name every `‛` is followed by `‛`, `␀`, `／`, `␡`, `␁`..`␟` or
//! `．`, never by a hex digit. It holds no control character, so it can go
//! into a JSON file list, one line of `--files-from-raw` and one line of
//! output.
//!
//! One kind of local name cannot be read by rclone 1.60 at all: a `‛` that
//! is not followed by one of the characters above (`it‛s.txt`). The local
//! backend decodes it unchanged but encodes it back doubled, and then opens
//! `it‛‛s.txt`, which does not exist. [`representable`] finds such names so
//! that a backup refuses them up front, naming the file.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

const QUOTE: char = '\u{201B}';
const SYMBOL_NUL: u32 = 0x2400;
const FULL_SLASH: char = '\u{FF0F}';
const SYMBOL_DEL: char = '\u{2421}';
const FULL_DOT: &str = "\u{FF0E}";

/// Which rclone encoder flags are on (the subset the local backend and the
/// standard encoding use; NUL is always encoded).
#[derive(Clone, Copy)]
struct Mask {
    slash: bool,
    ctl: bool,
    del: bool,
    dot: bool,
}

/// `--local-encoding` default on Linux: `Slash,Dot`.
const LOCAL: Mask = Mask {
    slash: true,
    ctl: false,
    del: false,
    dot: true,
};
/// rclone's internal, standard encoding: `Zero,Slash,Ctl,Del,Dot`.
const STANDARD: Mask = Mask {
    slash: true,
    ctl: true,
    del: true,
    dot: true,
};

/// A character, or one byte that is not valid UTF-8 (as Go's `range` over a
/// string yields them).
enum Token {
    Char(char),
    Byte(u8),
}

fn tokens(bytes: &[u8]) -> Vec<Token> {
    let mut out = Vec::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        out.extend(chunk.valid().chars().map(Token::Char));
        out.extend(chunk.invalid().iter().map(|b| Token::Byte(*b)));
    }
    out
}

fn push(out: &mut Vec<u8>, c: char) {
    let mut buf = [0u8; 4];
    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
}

fn is_ctl_symbol(c: char) -> bool {
    (SYMBOL_NUL + 1..=SYMBOL_NUL + 0x1F).contains(&(c as u32))
}

/// rclone's `MultiEncoder.Encode` for the flags in `mask`.
fn encode(mask: Mask, name: &[u8]) -> Vec<u8> {
    if mask.dot {
        let dot2 = format!("{FULL_DOT}{FULL_DOT}");
        match name {
            b"." => return FULL_DOT.as_bytes().to_vec(),
            b".." => return dot2.into_bytes(),
            n if n == FULL_DOT.as_bytes() => return format!("{QUOTE}{FULL_DOT}").into_bytes(),
            n if n == dot2.as_bytes() => {
                return format!("{QUOTE}{FULL_DOT}{QUOTE}{FULL_DOT}").into_bytes()
            }
            _ => {}
        }
    }
    let mut out = Vec::with_capacity(name.len());
    for t in tokens(name) {
        let c = match t {
            Token::Byte(b) => {
                out.push(b);
                continue;
            }
            Token::Char(c) => c,
        };
        let code = c as u32;
        if c == '\0' {
            push(&mut out, char::from_u32(SYMBOL_NUL).unwrap());
        } else if code == SYMBOL_NUL || c == QUOTE {
            push(&mut out, QUOTE);
            push(&mut out, c);
        } else if mask.slash && c == '/' {
            push(&mut out, FULL_SLASH);
        } else if mask.slash && c == FULL_SLASH {
            push(&mut out, QUOTE);
            push(&mut out, c);
        } else if mask.del && c == '\u{7f}' {
            push(&mut out, SYMBOL_DEL);
        } else if mask.del && c == SYMBOL_DEL {
            push(&mut out, QUOTE);
            push(&mut out, c);
        } else if mask.ctl && (1..=0x1F).contains(&code) {
            push(&mut out, char::from_u32(SYMBOL_NUL + code).unwrap());
        } else if mask.ctl && is_ctl_symbol(c) {
            push(&mut out, QUOTE);
            push(&mut out, c);
        } else {
            push(&mut out, c);
        }
    }
    out
}

/// rclone's `MultiEncoder.Decode` for the flags in `mask`.
fn decode(mask: Mask, name: &[u8]) -> Vec<u8> {
    if mask.dot {
        let dot2 = format!("{FULL_DOT}{FULL_DOT}");
        match name {
            n if n == FULL_DOT.as_bytes() => return b".".to_vec(),
            n if n == dot2.as_bytes() => return b"..".to_vec(),
            n if n == format!("{QUOTE}{FULL_DOT}").as_bytes() => {
                return FULL_DOT.as_bytes().to_vec()
            }
            n if n == format!("{QUOTE}{FULL_DOT}{QUOTE}{FULL_DOT}").as_bytes() => {
                return dot2.into_bytes()
            }
            _ => {}
        }
    }
    let mut out = Vec::with_capacity(name.len());
    let mut unquote_next = false;
    for t in tokens(name) {
        let unquote = std::mem::replace(&mut unquote_next, false);
        let c = match t {
            Token::Byte(b) => {
                if unquote {
                    push(&mut out, QUOTE);
                }
                out.push(b);
                continue;
            }
            Token::Char(c) => c,
        };
        if c as u32 == SYMBOL_NUL {
            if unquote {
                push(&mut out, c)
            } else {
                out.push(0)
            }
        } else if c == QUOTE {
            if unquote {
                push(&mut out, c)
            } else {
                unquote_next = true
            }
        } else if mask.slash && c == FULL_SLASH {
            push(&mut out, if unquote { c } else { '/' });
        } else if mask.del && c == SYMBOL_DEL {
            push(&mut out, if unquote { c } else { '\u{7f}' });
        } else if mask.ctl && is_ctl_symbol(c) {
            let plain = char::from_u32(c as u32 - SYMBOL_NUL).unwrap();
            push(&mut out, if unquote { c } else { plain });
        } else {
            if unquote {
                push(&mut out, QUOTE);
            }
            push(&mut out, c);
        }
    }
    if unquote_next {
        push(&mut out, QUOTE);
    }
    out
}

/// The name rclone gives the local file name `raw` (one path component).
fn local_to_standard(raw: &[u8]) -> Vec<u8> {
    encode(STANDARD, &decode(LOCAL, raw))
}

/// Can rclone read and write the local file name `raw` under that name?
/// False for a lone `‛` (see the module comment).
pub fn representable(raw: &OsStr) -> bool {
    let raw = raw.as_bytes();
    encode(LOCAL, &decode(LOCAL, raw)) == raw
}

/// rclone's standard name as rcbackup's text: invalid UTF-8 bytes as `‛XX`.
pub fn to_text(standard: &[u8]) -> String {
    let mut out = String::with_capacity(standard.len());
    for chunk in standard.utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("{QUOTE}{b:02X}"));
        }
    }
    out
}

/// The bytes of rclone's standard name back from rcbackup's text (for
/// `--files-from-raw`).
pub fn to_standard(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(QUOTE) {
        out.extend_from_slice(&rest.as_bytes()[..i]);
        let after = &rest[i + QUOTE.len_utf8()..];
        if let Some(next) = after.strip_prefix(QUOTE) {
            push(&mut out, QUOTE);
            push(&mut out, QUOTE);
            rest = next;
            continue;
        }
        let hex = after.get(..2).filter(|h| {
            h.bytes()
                .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
        });
        match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
            Some(b) => {
                out.push(b);
                rest = &after[2..];
            }
            None => {
                push(&mut out, QUOTE);
                rest = after;
            }
        }
    }
    out.extend_from_slice(rest.as_bytes());
    out
}

/// The text name rclone gives the local relative path `rel`.
pub fn local_path_text(rel: &Path) -> String {
    rel.components()
        .map(|c| to_text(&local_to_standard(c.as_os_str().as_bytes())))
        .collect::<Vec<_>>()
        .join("/")
}

/// What Go's JSON encoder makes of a name: each invalid UTF-8 byte becomes
/// U+FFFD. rclone's JSON log names files this way.
pub fn json_form(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for chunk in to_standard(text).utf8_chunks() {
        out.push_str(chunk.valid());
        for _ in chunk.invalid() {
            out.push('\u{FFFD}');
        }
    }
    out
}

/// A local folder as an rclone argument: the standard-encoded path, which
/// rclone's local backend decodes back to these bytes. `None` when rclone
/// cannot name it (not UTF-8, or a component rclone cannot read).
pub fn local_root_arg(root: &Path) -> Option<String> {
    let text = root.to_str()?;
    let mut parts = Vec::new();
    for part in text.split('/') {
        // rclone cleans `.` and `..` away before it decodes the path.
        if part == "." || part == ".." {
            parts.push(part.to_string());
            continue;
        }
        if !representable(OsStr::new(part)) {
            return None;
        }
        parts.push(String::from_utf8(local_to_standard(part.as_bytes())).ok()?);
    }
    Some(parts.join("/"))
}

/// A name for one line of output or an error message: characters that a
/// terminal acts on (C0 and C1 controls, DEL, line and paragraph
/// separators, bidirectional overrides) as `\u{..}`, so that a name can
/// neither break a line nor rewrite what is shown.
pub fn shown(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        let odd = c.is_control()
            || matches!(
                c,
                '\u{2028}' | '\u{2029}' | '\u{200E}' | '\u{200F}' | '\u{061C}'
            )
            || ('\u{202A}'..='\u{202E}').contains(&c)
            || ('\u{2066}'..='\u{2069}').contains(&c);
        if odd {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// [`shown`] for a local path.
pub fn shown_path(p: &Path) -> String {
    shown(&p.to_string_lossy())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(raw: &[u8]) -> String {
        to_text(&local_to_standard(raw))
    }

    #[test]
    fn local_names_as_rclone_lists_them() {
        // What `rclone lsf` prints for these local names (rclone 1.60).
        assert_eq!(text(b"new\nline.txt"), "new\u{240a}line.txt");
        assert_eq!(text(b"tab\there.txt"), "tab\u{2409}here.txt");
        assert_eq!(text(b"del\x7f"), "del\u{2421}");
        assert_eq!(text(b" lead and trail "), " lead and trail ");
        assert_eq!(text("quote‛x".as_bytes()), "quote‛‛x");
        assert_eq!(text("quote‛‛x".as_bytes()), "quote‛‛x");
        assert_eq!(text("a\u{2400}b".as_bytes()), "a\u{2400}b");
        assert_eq!(text("lit\u{240a}".as_bytes()), "lit‛\u{240a}");
        assert_eq!(text("a／b".as_bytes()), "a／b");
        assert_eq!(text(b"bad\xff.txt"), "bad‛FF.txt");
        assert_eq!(text("\u{fffd}".as_bytes()), "\u{fffd}");
        assert_eq!(text("caf\u{e9}".as_bytes()), "caf\u{e9}");
        assert_eq!(text("cafe\u{301}".as_bytes()), "cafe\u{301}");
    }

    #[test]
    fn text_and_standard_bytes_round_trip() {
        for raw in [
            &b"bad\xff\xfe.txt"[..],
            "‛‛\u{240a}".as_bytes(),
            b"\xe2\x82x",
            "‛‛".as_bytes(),
            b"plain",
        ] {
            let standard = local_to_standard(raw);
            assert_eq!(to_standard(&to_text(&standard)), standard, "{raw:?}");
        }
        assert_eq!(json_form("bad‛FF‛FE"), "bad\u{fffd}\u{fffd}");
    }

    #[test]
    fn a_lone_quote_is_not_representable() {
        assert!(!representable(OsStr::new("it‛s")));
        assert!(!representable(OsStr::new("end‛")));
        assert!(representable(OsStr::new("it‛‛s")));
        assert!(representable(OsStr::new("‛／")));
        assert!(representable(OsStr::from_bytes(b"new\nline\xff")));
        assert!(representable(OsStr::new(" x ")));
        assert_eq!(
            local_root_arg(Path::new("/srv/a\nb")).unwrap(),
            "/srv/a\u{240a}b"
        );
        assert!(local_root_arg(Path::new("/srv/it‛s")).is_none());
        assert!(local_root_arg(Path::new(OsStr::from_bytes(b"/srv/\xff"))).is_none());
    }

    #[test]
    fn shown_escapes_what_a_terminal_acts_on() {
        assert_eq!(
            shown("a\u{85}b\u{202e}c\u{9b}"),
            "a\\u{85}b\\u{202e}c\\u{9b}"
        );
        assert_eq!(shown("new\u{240a}line é"), "new\u{240a}line é");
    }
}
