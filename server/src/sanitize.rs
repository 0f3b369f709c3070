//! Text that comes from agents (facts, versions, error messages, script output) and from devices
//! (during `host deploy`) is input: made safe before a person sees it, so that it can neither
//! drive the operator's terminal (escape sequences, carriage returns, bidirectional overrides)
//! nor break a table or a log line.
//!
//! The rule: every control character (C0, DEL, C1), every bidirectional formatting character
//! (U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069) and the line and paragraph separators
//! (U+2028, U+2029) is shown as a Rust-style escape, `\u{1b}` for ESC. Backslashes are not
//! escaped: the aim is a safe terminal, not a reversible encoding (`--json` has the text itself,
//! JSON-escaped). Facts and messages are also cut to a bounded length, marked with `…`.

use std::borrow::Cow;
use std::fmt::Write as _;

/// The most characters kept of one fact of a heartbeat (host name, kernel, distribution, …) or
/// of the agent's version, after escaping.
pub const FIELD_MAX: usize = 256;

/// The most characters kept of an error message from an agent, after escaping.
pub const MESSAGE_MAX: usize = 1024;

/// Whether `c` must not reach a terminal as it is.
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
                | '\u{2028}'
                | '\u{2029}'
        )
}

/// How many characters `c` takes once shown.
fn shown_len(c: char, keep: impl Fn(char) -> bool) -> usize {
    if keep(c) || !is_unsafe(c) {
        1
    } else {
        // `\u{` + hex digits + `}`
        4 + format!("{:x}", u32::from(c)).len()
    }
}

/// `text` with every unsafe character not kept by `keep` escaped, cut to at most `max`
/// characters (the last one then `…`).
fn escape(text: &str, keep: impl Fn(char) -> bool + Copy, max: usize) -> Cow<'_, str> {
    let total: usize = text.chars().map(|c| shown_len(c, keep)).sum();
    let clean = text.chars().all(|c| keep(c) || !is_unsafe(c));
    if clean && total <= max {
        return Cow::Borrowed(text);
    }
    let budget = if total <= max {
        max
    } else {
        max.saturating_sub(1)
    };
    let mut out = String::with_capacity(text.len().min(budget.saturating_mul(4)));
    let mut shown = 0;
    for c in text.chars() {
        let len = shown_len(c, keep);
        if shown + len > budget {
            break;
        }
        shown += len;
        if keep(c) || !is_unsafe(c) {
            out.push(c);
        } else {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        }
    }
    if total > max {
        out.push('…');
    }
    Cow::Owned(out)
}

/// One value on one line (a fact, a table cell, a message): every unsafe character escaped,
/// tabs and newlines included, and at most `max` characters.
pub fn field(text: &str, max: usize) -> String {
    escape(text, |_| false, max).into_owned()
}

/// One line of a script's output for a terminal: unsafe characters escaped except tabs.
pub fn line(text: &str) -> Cow<'_, str> {
    escape(text, |c| c == '\t', usize::MAX)
}

/// Text of several lines (kept output, an error message): unsafe characters escaped except
/// newlines and tabs.
pub fn text(text: &str) -> Cow<'_, str> {
    escape(text, |c| c == '\t' || c == '\n', usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_visibly() {
        assert_eq!(field("a\u{1b}[2Jb", 100), "a\\u{1b}[2Jb");
        assert_eq!(
            field("x\r\n\t\0\u{7f}", 100),
            "x\\u{d}\\u{a}\\u{9}\\u{0}\\u{7f}"
        );
        assert_eq!(field("\u{9b}31m", 100), "\\u{9b}31m", "C1 CSI");
        assert_eq!(
            field("abc\u{202e}fed", 100),
            "abc\\u{202e}fed",
            "bidi override"
        );
        assert_eq!(line("a\tb\u{1b}c"), "a\tb\\u{1b}c");
        assert_eq!(text("one\ntwo\u{7}\n"), "one\ntwo\\u{7}\n");
        assert_eq!(field("Ünïcødé ok", 100), "Ünïcødé ok");
        assert!(matches!(line("plain"), Cow::Borrowed("plain")));
    }

    #[test]
    fn fields_are_bounded_and_escapes_never_cut() {
        assert_eq!(field("abcdef", 6), "abcdef");
        assert_eq!(field("abcdefg", 6), "abcde…");
        // An escape that does not fit is left out whole.
        assert_eq!(field("abc\u{1b}", 8), "abc…");
        assert_eq!(field(&"é".repeat(10_000), 256).chars().count(), 256);
        let hostile = "\u{1b}".repeat(10_000);
        let shown = field(&hostile, FIELD_MAX);
        assert_eq!(shown.chars().count(), 1 + 42 * 6, "{shown}");
        assert!(shown.ends_with("\\u{1b}…"));
        assert!(!shown.contains('\u{1b}'));
    }
}
