//! Printing results: aligned tables for people, JSON for scripts.

use crate::args::Format;

/// Left-aligned columns under an upper-case header, two spaces apart.
///
/// ```text
/// SERVICE               GROUP  VERSION
/// demo_api::Calculator         1.0
/// ```
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut line = String::new();
        for (i, (cell, width)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  "));
            }
        }
        line.trim_end().to_string()
    };
    let mut lines = vec![line(header.to_vec())];
    lines.extend(
        rows.iter()
            .map(|row| line(row.iter().map(String::as_str).collect())),
    );
    lines.join("\n")
}

/// `value` as `format` asks: pretty for a table, one line for JSON.
pub(crate) fn json(value: &serde_json::Value, format: Format) -> String {
    let printed = match format {
        Format::Table => serde_json::to_string_pretty(value),
        Format::Json => serde_json::to_string(value),
    };
    // Serializing a `Value` cannot fail (its map keys are strings).
    printed.unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_columns() {
        let shown = table(
            &["A", "LONGER"],
            &[
                vec!["wide cell".into(), "x".into()],
                vec!["".into(), "y".into()],
            ],
        );
        assert_eq!(shown, "A          LONGER\nwide cell  x\n           y");
    }
}
