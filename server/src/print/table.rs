//! Aligned tables for people: a header row, then rows of cells, each column as wide as its
//! widest cell, or on a terminal wrapped to its width. There only the long columns of free text
//! (groups, errors, what a host said) wrap, between words; the short ones (states, ports,
//! counts, times, ids) and every title keep their width. A list in a cell is written `a, b` so
//! that it breaks between its items.

use std::fmt::Write as _;

use comfy_table::{ColumnConstraint, Width};

use crate::sanitize;

/// A column whose cells and title are all at most this wide keeps its width on a terminal:
/// yes/no, ports, counts, ids, and the longest time or duration shown there (`59 min ago`,
/// `2 h 05 min`). Wider cells of one word keep their width too, as below.
const SHORT: usize = 10;
/// A longer column is never narrower than its title, nor than its longest word up to this
/// width (only a longer word may break).
const LONGEST_WORD: usize = 30;
/// The spaces after each column.
const GAP: u16 = 2;

/// How a column of `title` over `cells` may be sized on a terminal: short, at its content's
/// width; else wrapping, but not narrower than its title or (up to [`LONGEST_WORD`]) a word.
fn constraint<'a>(title: &str, cells: impl Iterator<Item = &'a str> + Clone) -> ColumnConstraint {
    let width = |text: &str| text.chars().count();
    let widest = cells
        .clone()
        .map(width)
        .max()
        .unwrap_or(0)
        .max(width(title));
    if widest <= SHORT {
        return ColumnConstraint::ContentWidth;
    }
    let word = cells
        .flat_map(str::split_whitespace)
        .map(width)
        .max()
        .unwrap_or(0)
        .min(LONGEST_WORD);
    let least = u16::try_from(word.max(width(title))).unwrap_or(u16::MAX);
    ColumnConstraint::LowerBoundary(Width::Fixed(least.saturating_add(GAP)))
}

/// A table: a header row and rows of cells, printed with aligned columns.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles.
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row. Its cells are shown with control characters escaped (see [`sanitize`]):
    /// they may hold what an agent said, and a newline or escape sequence would break the table.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(
            cells
                .iter()
                .map(|c| sanitize::field(c, usize::MAX))
                .collect(),
        );
    }

    /// The table as text, each line indented by `indent`.
    pub fn render(&self, indent: &str) -> String {
        let widths: Vec<usize> = (0..self.header.len())
            .map(|i| {
                std::iter::once(&self.header)
                    .chain(&self.rows)
                    .filter_map(|r| r.get(i))
                    .map(|c| c.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::from(indent);
            for (cell, width) in row.iter().zip(&widths) {
                let _ = write!(line, "{cell:<width$}  ");
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    /// The table as text for a terminal `width` columns wide: long cells wrap inside their
    /// column instead of stretching the table past the edge.
    pub fn render_wrapped(&self, width: u16) -> String {
        let mut t = comfy_table::Table::new();
        t.load_style(comfy_table::presets::NOTHING)
            .set_content_arrangement(comfy_table::ContentArrangement::Dynamic)
            .set_width(width)
            .set_header(&self.header);
        for row in &self.rows {
            t.add_row(row);
        }
        for column in t.column_iter_mut() {
            let i = column.index;
            let cells = self
                .rows
                .iter()
                .filter_map(move |r| r.get(i))
                .map(String::as_str);
            let title = self.header.get(i).map_or("", String::as_str);
            column
                .set_padding((0, GAP))
                .set_constraint(constraint(title, cells));
        }
        let mut out: String = t.lines().map(|l| l.trim_end().to_string() + "\n").collect();
        if out.is_empty() {
            out.push('\n');
        }
        out
    }
}

/// On a terminal (of a usable width), the table wrapped to its width; otherwise one aligned
/// line per row, for scripts that read it.
impl std::fmt::Display for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let terminal = comfy_table::Table::new().width();
        match terminal {
            Some(width @ 20..) if std::io::IsTerminal::is_terminal(&std::io::stdout()) => {
                f.write_str(&self.render_wrapped(width))
            }
            _ => f.write_str(&self.render("")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align() {
        let mut t = Table::new(&["host", "outcome"]);
        t.row(vec!["r1".into(), "exit 0".into()]);
        t.row(vec!["router-2".into(), "failed".into()]);
        assert_eq!(
            t.to_string(),
            "host      outcome\nr1        exit 0\nrouter-2  failed\n"
        );
        // A cell cannot break its line or reach the terminal as a control sequence.
        let mut t = Table::new(&["host", "said"]);
        t.row(vec!["r1".into(), "a\nb\u{1b}[2J".into()]);
        assert_eq!(t.to_string(), "host  said\nr1    a\\u{a}b\\u{1b}[2J\n");
    }

    #[test]
    fn long_cells_wrap_within_the_width() {
        let mut t = Table::new(&["host", "said"]);
        t.row(vec!["r1".into(), "word ".repeat(20)]);
        let text = t.render_wrapped(40);
        assert!(text.lines().count() > 2, "{text}");
        assert!(text.lines().all(|l| l.chars().count() <= 40), "{text}");
        assert!(text.contains("r1"), "{text}");
    }

    #[test]
    fn on_a_narrow_terminal_only_long_text_wraps_and_between_words() {
        let groups = "a-rather-long-group-name, another-long-group-name, and-a-third-one";
        let mut t = Table::new(&["host", "address", "groups", "last seen", "trust"]);
        t.row(vec![
            "r1".into(),
            "127.0.0.1:40000".into(),
            groups.into(),
            "3 min ago".into(),
            "pin on first contact".into(),
        ]);
        t.row(vec![
            "router-2".into(),
            "10.0.0.2:12444".into(),
            "core".into(),
            "yesterday".into(),
            "no agent key".into(),
        ]);
        let text = t.render_wrapped(60);
        let lines: Vec<&str> = text.lines().collect();
        // The titles and the short cells stay whole, on the first line of their row.
        for title in ["host", "address", "groups", "last seen", "trust"] {
            assert!(lines[0].contains(title), "{text}");
        }
        for short in ["127.0.0.1:40000", "3 min ago"] {
            assert!(lines[1].contains(short), "{text}");
        }
        // The groups wrap, between names.
        assert!(lines.len() > 3, "{text}");
        for group in groups.split(", ") {
            assert!(
                lines.iter().any(|l| l.contains(group)),
                "{group} split: {text}"
            );
        }
        let router = lines.iter().find(|l| l.starts_with("router-2")).unwrap();
        assert!(router.contains("yesterday"), "{text}");
    }

    #[test]
    fn columns_keep_their_width_unless_long() {
        let cells = |c: &'static [&'static str]| c.iter().copied();
        assert_eq!(
            constraint("last seen", cells(&["59 min ago", "yesterday"])),
            ColumnConstraint::ContentWidth
        );
        assert_eq!(
            constraint("address", cells(&["127.0.0.1:40000", "r1:22"])),
            ColumnConstraint::LowerBoundary(Width::Fixed(15 + GAP))
        );
        assert_eq!(
            constraint(
                "detail",
                cells(&["cannot connect: connection refused by the agent"])
            ),
            ColumnConstraint::LowerBoundary(Width::Fixed(10 + GAP))
        );
        assert_eq!(
            constraint(
                "memory free",
                cells(&["free: 1 KiB of 2 KiB, a lot less than before"])
            ),
            ColumnConstraint::LowerBoundary(Width::Fixed(11 + GAP))
        );
        let long_word = "x".repeat(100);
        assert_eq!(
            constraint("said", [long_word.as_str()].into_iter()),
            ColumnConstraint::LowerBoundary(Width::Fixed(30 + GAP))
        );
    }

    #[test]
    fn a_short_row_and_an_indent() {
        // A row may have fewer cells than the header (an unreachable host's heartbeat): the
        // columns stay aligned and the line ends without trailing spaces.
        let mut t = Table::new(&["host", "reachable", "version"]);
        t.row(vec!["r1".into(), "yes".into(), "0.1.0".into()]);
        t.row(vec!["r2".into(), "NO".into()]);
        assert_eq!(
            t.render("  "),
            "  host  reachable  version\n  r1    yes        0.1.0\n  r2    NO\n"
        );
    }
}
