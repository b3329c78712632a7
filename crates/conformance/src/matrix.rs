//! The `matrix:` text of a case: clients as rows, servers as columns, `.` allowed, `X` blocked, `-` unchecked.

/// One cell of an expected matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    Allowed,
    Blocked,
    Unchecked,
}

impl Cell {
    pub fn symbol(self) -> char {
        match self {
            Cell::Allowed => '.',
            Cell::Blocked => 'X',
            Cell::Unchecked => '-',
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedMatrix {
    pub columns: Vec<String>,
    pub rows: Vec<(String, Vec<Cell>)>,
}

impl ExpectedMatrix {
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut lines = text.lines().filter(|l| !l.trim().is_empty());
        let columns: Vec<String> = lines.next().ok_or("empty matrix")?.split_whitespace().map(str::to_owned).collect();
        let mut rows = Vec::new();
        for line in lines {
            let mut tokens = line.split_whitespace();
            let name = tokens.next().unwrap_or_default().to_owned();
            let cells = tokens
                .map(|t| match t {
                    "." => Ok(Cell::Allowed),
                    "X" | "x" => Ok(Cell::Blocked),
                    "-" => Ok(Cell::Unchecked),
                    other => Err(format!("row {name}: unknown cell {other:?} (expected '.', 'X' or '-')")),
                })
                .collect::<Result<Vec<_>, _>>()?;
            if cells.len() != columns.len() {
                return Err(format!("row {name}: {} cells for {} columns", cells.len(), columns.len()));
            }
            rows.push((name, cells));
        }
        Ok(ExpectedMatrix { columns, rows })
    }

    /// Renders in the corpus layout: each cell under the middle of its column name.
    pub fn render(&self) -> String {
        let width = self.rows.iter().map(|(n, _)| n.len()).chain(std::iter::once(3)).max().unwrap_or(3);
        let indent = width + 5;
        let mut out = format!("{}{}\n", " ".repeat(indent), self.columns.join(" "));
        for (name, cells) in &self.rows {
            let mut line = format!("{name:<width$}");
            let mut col = indent;
            for (c, cell) in self.columns.iter().zip(cells) {
                let mid = col + (c.chars().count().saturating_sub(1)) / 2;
                while line.chars().count() < mid {
                    line.push(' ');
                }
                line.push(cell.symbol());
                col += c.chars().count() + 1;
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_the_corpus_layout() {
        let text = "        x/a x/b x/c\nx/a      -   X   .\nx/b      .   -   X\nx/c      .   .   -\n";
        let m = ExpectedMatrix::parse(text).unwrap();
        assert_eq!(m.render(), text);
        assert_eq!(m.rows[0].1, vec![Cell::Unchecked, Cell::Blocked, Cell::Allowed]);
    }

    #[test]
    fn rejects_ragged_rows() {
        assert!(ExpectedMatrix::parse("a b\na . X .\n").is_err());
        assert!(ExpectedMatrix::parse("a b\na . ?\n").is_err());
    }
}
