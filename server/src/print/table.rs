//! Aligned tables for people: a header row, then rows of cells, each column as wide as its
//! widest cell, or on a terminal wrapped to its width.

use std::fmt::Write as _;

use crate::sanitize;

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
            column.set_padding((0, 2));
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
