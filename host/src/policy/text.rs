//! Guest text made safe to show. Everything a guest says (log messages,
//! stdout and stderr, reasons, errors, names) reaches rcbackup's log or a
//! terminal only through [`escape`], so a guest cannot start a line of its
//! own (and pass it off as rcbackup's), move the cursor, recolour or clear
//! the screen, or reorder what follows with a bidirectional control.

use std::borrow::Cow;

/// Whether `c` must not reach a log or a terminal as it is: control
/// characters (C0, DEL, C1: newline, carriage return, tab, ESC...), the line
/// and paragraph separators, and the bidirectional controls (marks,
/// embeddings, overrides, isolates).
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
        )
}

/// `text` with every unsafe character written as its Rust escape (`\n`,
/// `\t`, `\u{1b}`, `\u{202e}`); every other character, backslashes and
/// quotes included, is left as it is.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_unsafe(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn forged_lines_and_escapes_are_shown_escaped() {
        assert_eq!(
            escape("ok\nERROR forged\r\u{1b}[2J\u{202e}gpj.exe\t\u{85}"),
            "ok\\nERROR forged\\r\\u{1b}[2J\\u{202e}gpj.exe\\t\\u{85}"
        );
        assert_eq!(
            escape("plain \"text\" \\n ünïcödé ✓"),
            "plain \"text\" \\n ünïcödé ✓"
        );
    }

    proptest! {
        #[test]
        fn no_unsafe_character_comes_out(text in any::<String>()) {
            let out = escape(&text);
            prop_assert!(!out.chars().any(is_unsafe), "{:?}", out);
            prop_assert!(!out.contains('\n') && !out.contains('\u{1b}'), "{:?}", out);
        }

        #[test]
        fn safe_text_is_unchanged(text in any::<String>()) {
            let safe: String = text.chars().filter(|c| !is_unsafe(*c)).collect();
            prop_assert_eq!(escape(&safe), safe.as_str());
        }

        #[test]
        fn nothing_is_lost(text in any::<String>()) {
            // Every character is either kept or written as an escape that
            // names it: the output is never shorter, and every safe character
            // keeps its order.
            let out = escape(&text);
            prop_assert!(out.chars().count() >= text.chars().count());
            let kept: String = text.chars().filter(|c| !is_unsafe(*c)).collect();
            let mut rest = out.chars();
            for c in kept.chars() {
                prop_assert!(rest.any(|o| o == c), "{c:?} lost from {:?}", out);
            }
        }
    }
}
