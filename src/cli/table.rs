//! Rendering for the client subcommands: aligned text tables, number formats, and the
//! live view that redraws a table in a terminal or prints plain lines to a pipe.
//!
//! Plain ANSI escapes rather than a terminal library: the view needs only cursor
//! positioning, the alternate screen and three colours.

use std::io::{IsTerminal, Write};
use std::time::Duration;

/// Colour of one cell in a terminal (ignored in plain output).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tint {
    /// The terminal's default.
    Plain,
    /// Up moves.
    Green,
    /// Down moves.
    Red,
    /// Stale or missing data.
    Dim,
    /// Headers.
    Bold,
}

impl Tint {
    fn code(self) -> Option<&'static str> {
        match self {
            Tint::Plain => None,
            Tint::Green => Some("\x1b[32m"),
            Tint::Red => Some("\x1b[31m"),
            Tint::Dim => Some("\x1b[2m"),
            Tint::Bold => Some("\x1b[1m"),
        }
    }

    /// Green for a rise, red for a fall, plain otherwise.
    pub fn of_change(change: Option<f64>) -> Tint {
        match change {
            Some(c) if c > 0.0 => Tint::Green,
            Some(c) if c < 0.0 => Tint::Red,
            _ => Tint::Plain,
        }
    }
}

/// One cell: its text and colour.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    pub text: String,
    pub tint: Tint,
}

impl Cell {
    /// A cell in the default colour.
    pub fn plain(text: impl Into<String>) -> Cell {
        Cell {
            text: text.into(),
            tint: Tint::Plain,
        }
    }

    /// A cell in `tint`.
    pub fn tinted(text: impl Into<String>, tint: Tint) -> Cell {
        Cell {
            text: text.into(),
            tint,
        }
    }
}

impl From<String> for Cell {
    fn from(text: String) -> Cell {
        Cell::plain(text)
    }
}

impl From<&str> for Cell {
    fn from(text: &str) -> Cell {
        Cell::plain(text)
    }
}

/// Horizontal alignment of a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// A table of rows under a header, columns padded to their widest cell.
#[derive(Debug, Clone)]
pub struct Table {
    columns: Vec<(String, Align)>,
    rows: Vec<Vec<Cell>>,
}

impl Table {
    /// An empty table with these columns.
    pub fn new(columns: &[(&str, Align)]) -> Table {
        Table {
            columns: columns.iter().map(|(h, a)| ((*h).to_owned(), *a)).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row; missing cells are blank, extra cells are dropped.
    pub fn push(&mut self, mut row: Vec<Cell>) {
        row.resize(self.columns.len(), Cell::plain(""));
        self.rows.push(row);
    }

    /// The rendered lines, header first; with `ansi`, cells carry their colours.
    pub fn render(&self, ansi: bool) -> Vec<String> {
        let mut widths: Vec<usize> = self
            .columns
            .iter()
            .map(|(h, _)| h.chars().count())
            .collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.text.chars().count());
            }
        }
        let header: Vec<Cell> = self
            .columns
            .iter()
            .map(|(h, _)| Cell::tinted(h.clone(), Tint::Bold))
            .collect();
        std::iter::once(&header)
            .chain(&self.rows)
            .map(|row| self.line(row, &widths, ansi))
            .collect()
    }

    fn line(&self, row: &[Cell], widths: &[usize], ansi: bool) -> String {
        let last = row.len().saturating_sub(1);
        let mut line = String::new();
        for (i, ((cell, width), (_, align))) in
            row.iter().zip(widths).zip(&self.columns).enumerate()
        {
            if i > 0 {
                line.push_str("  ");
            }
            let padded = match align {
                Align::Right => format!("{:>width$}", cell.text),
                // Padding after the last cell would only widen the line (and wrap it).
                Align::Left if i == last => cell.text.clone(),
                Align::Left => format!("{:<width$}", cell.text),
            };
            match cell.tint.code().filter(|_| ansi) {
                Some(code) => {
                    line.push_str(code);
                    line.push_str(&padded);
                    line.push_str("\x1b[0m");
                }
                None => line.push_str(&padded),
            }
        }
        line.trim_end().to_owned()
    }
}

/// `text` cut to `max` characters, an ellipsis marking the cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// A price with two decimals, or four when it has sub-cent digits; `-` when absent.
pub fn price(value: Option<f64>) -> String {
    match value {
        Some(v) if ((v * 100.0).round() - v * 100.0).abs() > 1e-6 => format!("{v:.4}"),
        Some(v) => format!("{v:.2}"),
        None => "-".into(),
    }
}

/// A size or volume without decimals when whole, `-` when absent.
pub fn size(value: Option<f64>) -> String {
    match value {
        Some(v) if v.fract() == 0.0 => format!("{v:.0}"),
        Some(v) => format!("{v:.2}"),
        None => "-".into(),
    }
}

/// A signed change, `-` when absent.
pub fn change(value: Option<f64>) -> String {
    value.map_or_else(|| "-".into(), |v| format!("{v:+.2}"))
}

/// A signed percentage, `-` when absent.
pub fn percent(value: Option<f64>) -> String {
    value.map_or_else(|| "-".into(), |v| format!("{v:+.2}%"))
}

/// A ratio as a percentage without sign (implied volatility), `-` when absent.
pub fn ratio_percent(value: Option<f64>) -> String {
    value.map_or_else(|| "-".into(), |v| format!("{:.1}%", v * 100.0))
}

/// A Greek with three decimals, `-` when absent.
pub fn greek(value: Option<f64>) -> String {
    value.map_or_else(|| "-".into(), |v| format!("{v:.3}"))
}

/// Where a live view goes: a redrawn screen in a terminal, plain lines elsewhere.
pub enum LiveOutput {
    /// stdout is a terminal: the view redraws in the alternate screen.
    Screen(Screen),
    /// stdout is a pipe or file: one line per update, no escape codes.
    Lines(std::io::Stdout),
}

impl LiveOutput {
    /// A screen when stdout is a terminal, plain lines otherwise.
    pub fn detect() -> std::io::Result<LiveOutput> {
        let stdout = std::io::stdout();
        if stdout.is_terminal() {
            Ok(LiveOutput::Screen(Screen::enter(stdout)?))
        } else {
            Ok(LiveOutput::Lines(stdout))
        }
    }

    /// Whether updates redraw a screen (rather than print lines).
    pub fn is_screen(&self) -> bool {
        matches!(self, LiveOutput::Screen(_))
    }

    /// Prints one plain line (ignored on a screen, which shows the table instead).
    pub fn line(&mut self, text: &str) -> std::io::Result<()> {
        match self {
            LiveOutput::Lines(out) => {
                let mut out = out.lock();
                writeln!(out, "{text}")?;
                out.flush()
            }
            LiveOutput::Screen(_) => Ok(()),
        }
    }
}

/// Time between two redraws: updates in between are merged into the next frame.
pub const FRAME_INTERVAL: Duration = Duration::from_millis(100);

/// The terminal in the alternate screen with the cursor hidden; restored on drop (also
/// on error and panic, as the guard unwinds).
pub struct Screen {
    out: std::io::Stdout,
}

impl Screen {
    fn enter(out: std::io::Stdout) -> std::io::Result<Screen> {
        {
            let mut lock = out.lock();
            lock.write_all(b"\x1b[?1049h\x1b[?25l\x1b[2J")?;
            lock.flush()?;
        }
        Ok(Screen { out })
    }

    /// Replaces the screen's content with `lines`.
    pub fn draw(&mut self, lines: &[String]) -> std::io::Result<()> {
        let mut frame = String::from("\x1b[H");
        for line in lines {
            frame.push_str(line);
            // Clear what a longer previous line left on the right.
            frame.push_str("\x1b[K\r\n");
        }
        frame.push_str("\x1b[J");
        let mut lock = self.out.lock();
        lock.write_all(frame.as_bytes())?;
        lock.flush()
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        let mut lock = self.out.lock();
        let _ = lock.write_all(b"\x1b[0m\x1b[?25h\x1b[?1049l");
        let _ = lock.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_padded_to_the_widest_cell_and_aligned() {
        let mut table = Table::new(&[("SYM", Align::Left), ("BID", Align::Right)]);
        table.push(vec!["AAPL".into(), "189.12".into()]);
        table.push(vec!["SPY".into(), "5.00".into()]);
        assert_eq!(
            table.render(false),
            vec!["SYM      BID", "AAPL  189.12", "SPY     5.00"]
        );
    }

    #[test]
    fn the_last_column_is_not_padded() {
        let mut table = Table::new(&[("A", Align::Left), ("STATE", Align::Left)]);
        table.push(vec!["x".into(), Cell::tinted("a long message", Tint::Red)]);
        table.push(vec!["y".into(), "ok".into()]);
        let lines = table.render(true);
        assert!(lines[0].ends_with("STATE\x1b[0m"), "{lines:?}");
        assert!(lines[2].ends_with("  ok"), "{lines:?}");
    }

    #[test]
    fn colours_only_with_ansi() {
        let mut table = Table::new(&[("CHG", Align::Right)]);
        table.push(vec![Cell::tinted("+1.00", Tint::Green)]);
        let plain = table.render(false);
        assert!(plain.iter().all(|l| !l.contains('\x1b')), "{plain:?}");
        let ansi = table.render(true);
        assert!(ansi[1].contains("\x1b[32m+1.00\x1b[0m"), "{ansi:?}");
    }

    #[test]
    fn numbers_format_with_absent_values_as_dash() {
        assert_eq!(price(Some(189.12)), "189.12");
        assert_eq!(price(Some(0.05)), "0.05");
        assert_eq!(price(Some(0.0525)), "0.0525");
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
        assert_eq!(price(None), "-");
        assert_eq!(size(Some(300.0)), "300");
        assert_eq!(change(Some(-1.5)), "-1.50");
        assert_eq!(percent(Some(0.25)), "+0.25%");
        assert_eq!(ratio_percent(Some(0.2345)), "23.4%");
        assert_eq!(greek(Some(0.51234)), "0.512");
        assert_eq!(Tint::of_change(Some(-0.1)), Tint::Red);
        assert_eq!(Tint::of_change(None), Tint::Plain);
    }
}
