//! A run's output split into lines, in time and memory linear in its size, never cutting a
//! secret (see [`LineSplitter`]).

/// The longest line of output passed on whole, in bytes; a longer one is passed on in pieces of
/// at most this size. 64 KiB is far beyond any line a person reads, and four times the largest
/// secret there can be (a run's whole environment fits in one 16 KiB frame), so a piece can
/// always end before a secret instead of inside it.
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
/// passed on in pieces as it grows, so at most the limit plus one chunk (and the longest
/// `keep_whole` string) is ever held. A piece is cut at the limit, moved back to the start of a
/// UTF-8 character and out of any `keep_whole` string it would split (a run's secrets, so that
/// redaction, which works on each piece, still finds each one whole).
pub struct LineSplitter {
    partial: Vec<u8>,
    /// How many bytes at the start of `partial` are known to hold no newline.
    scanned: usize,
    max: usize,
    keep_whole: Vec<Vec<u8>>,
    /// The length of the longest `keep_whole` string.
    guard: usize,
}

impl LineSplitter {
    /// A splitter passing on lines of at most `max` bytes (at least 16), never cutting inside
    /// one of `keep_whole` (strings longer than a quarter of `max` are not considered).
    pub fn new(max: usize, keep_whole: &[String]) -> LineSplitter {
        let max = max.max(16);
        let keep_whole: Vec<Vec<u8>> = keep_whole
            .iter()
            .filter(|s| !s.is_empty() && s.len() <= max / 4)
            .map(|s| s.as_bytes().to_vec())
            .collect();
        LineSplitter {
            partial: Vec::new(),
            scanned: 0,
            max,
            guard: keep_whole.iter().map(Vec::len).max().unwrap_or(0),
            keep_whole,
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
        // What is left has no newline: pass on pieces while enough follows each cut to see
        // whether a secret straddles it.
        while self.partial.len() - start > self.max + self.guard {
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
    /// character, then to the start of any `keep_whole` string the cut would split, but never
    /// below half of `max` (only a string repeated back to back, like `aa` in `aaaa…`, could
    /// push it there; it is then cut).
    fn cut(&self, buf: &[u8]) -> usize {
        let mut cut = self.max;
        let starts_char = |at: usize| buf.get(at).is_some_and(|&b| b & 0xC0 != 0x80);
        if let Some(back) = (0..4).find(|&b| starts_char(cut - b)) {
            cut -= back;
        }
        let floor = self.max / 2;
        'moved: loop {
            for s in &self.keep_whole {
                let from = cut + 1 - s.len();
                let to = (cut + s.len() - 1).min(buf.len());
                let found = buf
                    .get(from..to)
                    .and_then(|near| near.windows(s.len()).position(|w| w == s));
                if let Some(at) = found.filter(|at| from + at > floor) {
                    cut = from + at;
                    continue 'moved;
                }
            }
            return cut;
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
        let mut s = LineSplitter::new(MAX_LINE, &[]);
        assert!(s.push(b"hel").is_empty());
        assert_eq!(texts(&s.push(b"lo\nwor")), [("hello", true)]);
        assert_eq!(texts(&s.push(b"ld\n\nx")), [("world", true), ("", true)]);
        assert_eq!(texts(&s.finish()), [("x", false)]);
        assert!(s.finish().is_empty());
    }

    /// Feeds `input` in chunks of `chunk` bytes; returns every line and piece, and the most
    /// bytes the splitter held between two chunks.
    fn split(max: usize, secrets: &[String], input: &[u8], chunk: usize) -> (Vec<Line>, usize) {
        let mut s = LineSplitter::new(max, secrets);
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
        let (lines, held) = split(1000, &[], &input, 8192);
        assert_eq!(lines.len(), 1000);
        assert!(lines.iter().all(|l| l.text.len() == 1000));
        assert!(lines.iter().all(|l| !l.newline), "no newline came");
        assert!(held < 4 * (1000 + 8192), "held {held} bytes");
        // The pieces are the input, nothing lost or added.
        let joined: String = lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(joined.as_bytes(), &input[..]);
        // A long line that does end is cut the same way, its last piece with the newline.
        let (lines, _) = split(1000, &[], &[&input[..2500], b"\nz"].concat(), 8192);
        assert_eq!(
            lines
                .iter()
                .map(|l| (l.text.len(), l.newline))
                .collect::<Vec<_>>(),
            [(1000, false), (1000, false), (500, true), (1, false)]
        );
    }

    #[test]
    fn pieces_never_split_a_character_or_a_secret() {
        // 999 ASCII bytes then two-byte characters: the cut at 1000 would split one.
        let mut input = vec![b'x'; 999];
        input.extend("é".repeat(1000).as_bytes());
        let (lines, _) = split(1000, &[], &input, 100);
        assert_eq!(lines[0].text.len(), 999);
        assert!(lines.iter().all(|l| !l.text.contains('\u{fffd}')));
        // A secret across the cut at 1000 moves the cut to the secret's start, whatever the
        // chunk size.
        let secret = "SECRET-value".to_string();
        for chunk in [1, 7, 100, 5000] {
            let input = format!("{}{secret}{}", "y".repeat(995), "z".repeat(3000));
            let (lines, _) = split(1000, std::slice::from_ref(&secret), input.as_bytes(), chunk);
            assert_eq!(lines[0].text.len(), 995, "chunk {chunk}");
            assert!(lines[1].text.starts_with(&secret));
            assert!(lines.iter().all(|l| l.text.len() <= 1000));
        }
    }

    #[test]
    fn splitting_is_linear_in_the_input() {
        // 20 MB without a newline in 8 KiB chunks: each byte is scanned once, so this takes
        // a few hundred milliseconds; re-scanning the partial line on every chunk, as before,
        // took minutes. (No time is asserted: a hang would show as a test that never ends.)
        let input = vec![b'a'; 20_000_000];
        let (lines, held) = split(MAX_LINE, &[], &input, 8192);
        assert_eq!(
            lines.iter().map(|l| l.text.len()).sum::<usize>(),
            input.len()
        );
        assert!(held <= 4 * (MAX_LINE + 8192), "held {held} bytes");
    }
}
