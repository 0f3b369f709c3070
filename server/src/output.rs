//! A run's output split into lines, in time and memory linear in its size (see
//! [`LineSplitter`]).

/// The longest line of output passed on whole, in bytes; a longer one is passed on in pieces of
/// at most this size. 64 KiB is far beyond any line a person reads.
pub const MAX_LINE: usize = 64 * 1024;

/// A line of output without its newline, or a piece of a line longer than the splitter's limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The text (invalid UTF-8 replaced by U+FFFD).
    pub text: String,
    /// Whether a newline ended it: false for a piece that the next one continues, and for a last
    /// line without a newline.
    pub newline: bool,
}

/// Splits a stream of output chunks into lines, in time and memory linear in the input whatever
/// its shape: each byte is looked at once for a newline, and a line longer than the limit is
/// passed on in pieces as it grows, so at most the limit plus one chunk is ever held. A piece
/// is cut at the limit, moved back to the start of a UTF-8 character. (A run's secrets are
/// redacted before its output is split, by [`crate::environment::Redactor`].)
pub struct LineSplitter {
    partial: Vec<u8>,
    /// How many bytes at the start of `partial` are known to hold no newline.
    scanned: usize,
    max: usize,
}

impl LineSplitter {
    /// A splitter passing on lines of at most `max` bytes (at least 16).
    pub fn new(max: usize) -> LineSplitter {
        LineSplitter {
            partial: Vec::new(),
            scanned: 0,
            max: max.max(16),
        }
    }

    /// Adds a chunk; returns the lines (and pieces of long lines) it completed.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<Line> {
        self.partial.extend_from_slice(chunk);
        let mut lines = Vec::new();
        let mut start = 0;
        while let Some(at) = self
            .partial
            .get(start + self.scanned..)
            .and_then(|rest| rest.iter().position(|&b| b == b'\n'))
        {
            let end = start + self.scanned + at;
            self.pieces(start, end, true, &mut lines);
            start = end + 1;
            self.scanned = 0;
        }
        // What is left has no newline: pass on the pieces it makes.
        while self.partial.len() - start > self.max {
            let rest = self.partial.get(start..).unwrap_or_default();
            let cut = self.cut(rest);
            lines.push(piece(rest.get(..cut).unwrap_or_default(), false));
            start += cut;
        }
        self.partial.drain(..start);
        self.scanned = self.partial.len();
        lines
    }

    /// The end of the stream: the last line if it had no newline (in pieces if it is long).
    pub fn finish(&mut self) -> Vec<Line> {
        let mut lines = Vec::new();
        if !self.partial.is_empty() {
            self.pieces(0, self.partial.len(), false, &mut lines);
        }
        self.partial.clear();
        self.scanned = 0;
        lines
    }

    /// Passes on `partial[start..end]` as pieces of at most `max` bytes, the last one ending
    /// with a newline or not.
    fn pieces(&self, mut start: usize, end: usize, newline: bool, lines: &mut Vec<Line>) {
        let line = self.partial.get(..end).unwrap_or_default();
        while end - start > self.max {
            let rest = line.get(start..).unwrap_or_default();
            let cut = self.cut(rest);
            lines.push(piece(rest.get(..cut).unwrap_or_default(), false));
            start += cut;
        }
        lines.push(piece(line.get(start..).unwrap_or_default(), newline));
    }

    /// Where to cut `buf` (longer than `max`): at `max`, moved back to the start of a UTF-8
    /// character.
    fn cut(&self, buf: &[u8]) -> usize {
        let starts_char = |at: usize| buf.get(at).is_some_and(|&b| b & 0xC0 != 0x80);
        match (0..4).find(|&b| starts_char(self.max - b)) {
            Some(back) => self.max - back,
            None => self.max,
        }
    }
}

fn piece(bytes: &[u8], newline: bool) -> Line {
    Line {
        text: String::from_utf8_lossy(bytes).into_owned(),
        newline,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(lines: &[Line]) -> Vec<(&str, bool)> {
        lines.iter().map(|l| (l.text.as_str(), l.newline)).collect()
    }

    #[test]
    fn lines_are_split_across_chunks() {
        let mut s = LineSplitter::new(MAX_LINE);
        assert!(s.push(b"hel").is_empty());
        assert_eq!(texts(&s.push(b"lo\nwor")), [("hello", true)]);
        assert_eq!(texts(&s.push(b"ld\n\nx")), [("world", true), ("", true)]);
        assert_eq!(texts(&s.finish()), [("x", false)]);
        assert!(s.finish().is_empty());
    }

    /// Feeds `input` in chunks of `chunk` bytes; returns every line and piece, and the most
    /// bytes the splitter held between two chunks.
    fn split(max: usize, input: &[u8], chunk: usize) -> (Vec<Line>, usize) {
        let mut s = LineSplitter::new(max);
        let mut lines = Vec::new();
        let mut held = 0;
        for c in input.chunks(chunk) {
            lines.extend(s.push(c));
            held = held.max(s.partial.capacity());
        }
        lines.extend(s.finish());
        (lines, held)
    }

    #[test]
    fn a_long_line_comes_in_pieces_and_memory_stays_bounded() {
        let input = vec![b'a'; 1_000_000];
        let (lines, held) = split(1000, &input, 8192);
        assert_eq!(lines.len(), 1000);
        assert!(lines.iter().all(|l| l.text.len() == 1000));
        assert!(lines.iter().all(|l| !l.newline), "no newline came");
        assert!(held < 4 * (1000 + 8192), "held {held} bytes");
        // The pieces are the input, nothing lost or added.
        let joined: String = lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(joined.as_bytes(), &input[..]);
        // A long line that does end is cut the same way, its last piece with the newline.
        let (lines, _) = split(1000, &[&input[..2500], b"\nz"].concat(), 8192);
        assert_eq!(
            lines
                .iter()
                .map(|l| (l.text.len(), l.newline))
                .collect::<Vec<_>>(),
            [(1000, false), (1000, false), (500, true), (1, false)]
        );
    }

    #[test]
    fn pieces_never_split_a_character() {
        // 999 ASCII bytes then two-byte characters: the cut at 1000 would split one.
        let mut input = vec![b'x'; 999];
        input.extend("é".repeat(1000).as_bytes());
        let (lines, _) = split(1000, &input, 100);
        assert_eq!(lines[0].text.len(), 999);
        assert!(lines.iter().all(|l| !l.text.contains('\u{fffd}')));
    }

    #[test]
    fn splitting_is_linear_in_the_input() {
        // 20 MB without a newline in 8 KiB chunks: each byte is scanned once, so this takes
        // a few hundred milliseconds; re-scanning the partial line on every chunk, as before,
        // took minutes. (No time is asserted: a hang would show as a test that never ends.)
        let input = vec![b'a'; 20_000_000];
        let (lines, held) = split(MAX_LINE, &input, 8192);
        assert_eq!(
            lines.iter().map(|l| l.text.len()).sum::<usize>(),
            input.len()
        );
        assert!(held <= 4 * (MAX_LINE + 8192), "held {held} bytes");
    }
}
