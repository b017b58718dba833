//! The one escaping of text the system supplies (process names, mapping and module paths,
//! symbols, a traced command's arguments) before a sink writes it to a terminal or a
//! line-based format.
//!
//! Any user names a process (`prctl(PR_SET_NAME)` or an executable's file name) and any user
//! names files, so such text may hold an escape sequence that retitles or redraws a terminal,
//! or a newline that forges a line of a table or of folded stacks. Every control character
//! (C0, DEL and C1) is written as a visible escape, and a backslash as `\\`, so the result is
//! one line, holds no control character, and reads back unambiguously. JSON needs none of
//! this: serde escapes control characters itself, and the terminal view draws the text these
//! functions return where it shows the same cells as the text outputs.

use std::{borrow::Cow, fmt::Write as _};

/// True for a character [`escape`] rewrites.
fn needs_escape(c: char) -> bool {
    c.is_control() || c == '\\'
}

/// `text` with `\n`, `\t`, `\r`, `\e` (ESC) and `\\` for those characters, and `\xNN` for every
/// other control character (C0, DEL, and C1 as its code point); borrowed when nothing changes.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.contains(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut escaped = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '\n' => escaped.push_str("\\n"),
            '\t' => escaped.push_str("\\t"),
            '\r' => escaped.push_str("\\r"),
            '\x1b' => escaped.push_str("\\e"),
            c if c.is_control() => {
                // Every control character is at most U+009F, so two hex digits hold it.
                let _ = write!(escaped, "\\x{:02x}", u32::from(c));
            }
            c => escaped.push(c),
        }
    }
    Cow::Owned(escaped)
}

/// [`escape`] for a `String` the caller owns, without a copy when nothing changes.
pub fn escape_owned(text: String) -> String {
    match escape(&text) {
        Cow::Borrowed(_) => text,
        Cow::Owned(escaped) => escaped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        for text in [
            "",
            "main+0x4c alloc.c:31",
            "/usr/lib/libc.so.6",
            "ünïcode ☃",
        ] {
            assert!(matches!(escape(text), Cow::Borrowed(t) if t == text));
        }
    }

    #[test]
    fn a_terminal_title_sequence_and_a_newline_become_visible() {
        assert_eq!(escape("a\x1b]2;x\x07\nb"), r"a\e]2;x\x07\nb");
        assert_eq!(escape("tab\there\r"), r"tab\there\r");
        assert_eq!(escape("nul\0del\x7f"), r"nul\x00del\x7f");
        // C1 controls: U+009B is CSI to a terminal that takes 8-bit controls.
        assert_eq!(escape("\u{9b}31m\u{85}"), r"\x9b31m\x85");
    }

    #[test]
    fn a_backslash_is_doubled_so_an_escape_reads_back_one_way() {
        // A name spelling `\n` must not read as a name holding a newline.
        assert_eq!(escape(r"a\nb"), r"a\\nb");
        assert_ne!(escape(r"a\nb"), escape("a\nb"));
        assert_eq!(escape_owned(r"\e".to_owned()), r"\\e");
    }

    #[test]
    fn no_control_character_survives_any_input() {
        let every: String = (0u32..0x200).filter_map(char::from_u32).collect();
        let escaped = escape(&every);
        assert!(!escaped.contains(char::is_control), "{escaped:?}");
        assert_eq!(escaped.lines().count(), 1);
        // Every printable character is kept as it was.
        let printable: String = every.chars().filter(|c| !needs_escape(*c)).collect();
        let kept: String = escaped.chars().filter(|c| u32::from(*c) >= 0xa0).collect();
        assert_eq!(
            kept,
            printable
                .chars()
                .filter(|c| u32::from(*c) >= 0xa0)
                .collect::<String>()
        );
    }
}
