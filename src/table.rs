//! The rows of a run, in memory: what claims check and plots draw.
//!
//! A run builds a [`Table`] row by row while its CSV streams to disk; `lab plot` builds the same
//! table by reading the CSV back, so a plot of an old CSV is the plot the run drew.

use std::path::Path;

use anyhow::Result;

use crate::input_error;

/// One cell of a row as an experiment emits it.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    Int(i64),
    Real(f64),
    /// Not defined for this row (e.g. a bound that only holds from iteration 1). Empty in CSV.
    Missing,
}

impl Cell {
    /// The CSV text of the cell. Reals use the shortest text that reads back to the same bits.
    pub fn to_csv(&self) -> String {
        match self {
            Cell::Text(s) => s.clone(),
            Cell::Int(i) => i.to_string(),
            Cell::Real(x) => format_real(*x),
            Cell::Missing => String::new(),
        }
    }
}

/// `x` to about four significant digits, for people reading a terminal (`0.0123`,
/// `1.235e-7`); files keep [`format_real`]'s exact text.
pub fn short_real(x: f64) -> String {
    if x == 0.0 || (1e-3..1e5).contains(&x.abs()) {
        let s = format!("{x:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        format!("{x:.3e}")
    }
}

/// Shortest round-trip text of `x`, in plain notation for moderate magnitudes and
/// scientific notation otherwise (`1e-300`, not 300 zeros).
pub fn format_real(x: f64) -> String {
    if x.is_nan() {
        "NaN".into()
    } else if x.is_infinite() {
        if x > 0.0 { "inf".into() } else { "-inf".into() }
    } else if x == 0.0 {
        // -0 is written 0: an exact zero (kl_to_optimal of an exactly optimal policy).
        "0".into()
    } else if (1e-4..1e15).contains(&x.abs()) {
        format!("{x}")
    } else {
        format!("{x:e}")
    }
}

/// A column of a table: text (key columns such as `divergence`) or numbers (NaN = missing).
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    Text(Vec<String>),
    Num(Vec<f64>),
}

impl Column {
    fn len(&self) -> usize {
        match self {
            Column::Text(v) => v.len(),
            Column::Num(v) => v.len(),
        }
    }
}

/// Named columns of equal length.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    names: Vec<String>,
    columns: Vec<Column>,
}

impl Table {
    /// An empty table with the given columns; `text[i]` says whether column i holds text.
    pub fn with_columns(names: &[String], text: &[bool]) -> Table {
        Table {
            names: names.to_vec(),
            columns: text
                .iter()
                .map(|&t| {
                    if t {
                        Column::Text(Vec::new())
                    } else {
                        Column::Num(Vec::new())
                    }
                })
                .collect(),
        }
    }

    /// Appends a row; the cells must match the columns in number and kind.
    pub fn push(&mut self, row: &[Cell]) {
        assert_eq!(row.len(), self.columns.len(), "row width");
        for (column, cell) in self.columns.iter_mut().zip(row) {
            match (column, cell) {
                (Column::Text(v), Cell::Text(s)) => v.push(s.clone()),
                (Column::Text(v), other) => v.push(other.to_csv()),
                (Column::Num(v), Cell::Real(x)) => v.push(*x),
                (Column::Num(v), Cell::Int(i)) => v.push(*i as f64),
                (Column::Num(v), Cell::Missing) => v.push(f64::NAN),
                (Column::Num(v), Cell::Text(_)) => v.push(f64::NAN),
            }
        }
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn len(&self) -> usize {
        self.columns.first().map_or(0, Column::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn has(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
    }

    fn index(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    /// A numeric column, or `None` if absent or text.
    pub fn num(&self, name: &str) -> Option<&[f64]> {
        match &self.columns[self.index(name)?] {
            Column::Num(v) => Some(v),
            Column::Text(_) => None,
        }
    }

    /// A text column, or `None` if absent or numeric.
    pub fn text(&self, name: &str) -> Option<&[String]> {
        match &self.columns[self.index(name)?] {
            Column::Text(v) => Some(v),
            Column::Num(_) => None,
        }
    }

    /// Names of the text (key) columns.
    pub fn text_columns(&self) -> Vec<&str> {
        self.names
            .iter()
            .zip(&self.columns)
            .filter(|(_, c)| matches!(c, Column::Text(_)))
            .map(|(n, _)| n.as_str())
            .collect()
    }

    /// The rows where `keep(i)` holds, in order.
    pub fn filter(&self, keep: impl Fn(usize) -> bool) -> Table {
        let rows: Vec<usize> = (0..self.len()).filter(|&i| keep(i)).collect();
        Table {
            names: self.names.clone(),
            columns: self
                .columns
                .iter()
                .map(|c| match c {
                    Column::Text(v) => Column::Text(rows.iter().map(|&i| v[i].clone()).collect()),
                    Column::Num(v) => Column::Num(rows.iter().map(|&i| v[i]).collect()),
                })
                .collect(),
        }
    }

    /// Splits the rows by the joint values of `keys` (text columns), in order of first
    /// appearance. The label of a group is `key=value` pairs joined by ", " (empty when `keys`
    /// is empty, giving one group with every row).
    pub fn groups(&self, keys: &[&str]) -> Vec<(String, Table)> {
        self.group_keys(keys)
            .into_iter()
            .map(|(key, part)| {
                let label = key
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                (label, part)
            })
            .collect()
    }

    /// The same split, each part with its (column, value) pairs.
    pub fn group_keys(&self, keys: &[&str]) -> Vec<(Vec<(String, String)>, Table)> {
        let key_columns: Vec<Vec<String>> = keys
            .iter()
            .map(|k| match self.index(k).map(|i| &self.columns[i]) {
                Some(Column::Text(v)) => v.clone(),
                Some(Column::Num(v)) => v.iter().map(|x| format_real(*x)).collect(),
                None => vec![String::new(); self.len()],
            })
            .collect();
        let mut seen: Vec<Vec<&str>> = Vec::new();
        let mut row_group = Vec::with_capacity(self.len());
        for i in 0..self.len() {
            let values: Vec<&str> = key_columns.iter().map(|col| col[i].as_str()).collect();
            let g = match seen.iter().position(|s| *s == values) {
                Some(g) => g,
                None => {
                    seen.push(values);
                    seen.len() - 1
                }
            };
            row_group.push(g);
        }
        seen.iter()
            .enumerate()
            .map(|(g, values)| {
                let key = keys
                    .iter()
                    .zip(values)
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                (key, self.filter(|i| row_group[i] == g))
            })
            .collect()
    }

    /// Reads a CSV written by a run (or by anyone: one header row, then data rows).
    ///
    /// A column is numeric when every non-empty cell parses as a number; empty cells are
    /// missing values (NaN). Malformed files are [`InputError`](crate::InputError)s naming the
    /// file and line.
    pub fn read_csv(path: &Path) -> Result<Table> {
        let file = std::fs::File::open(path)
            .map_err(|e| input_error!("cannot open {}: {e}", path.display()))?;
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(file);
        let headers = reader
            .headers()
            .map_err(|e| input_error!("{}: {}", path.display(), csv_error_text(&e)))?
            .clone();
        if headers.is_empty() || (headers.len() == 1 && headers[0].trim().is_empty()) {
            return Err(input_error!(
                "{} is empty: expected a CSV file with a header row",
                path.display()
            ));
        }
        let names: Vec<String> = headers.iter().map(|h| h.trim().to_string()).collect();
        let mut cells: Vec<Vec<String>> = vec![Vec::new(); names.len()];
        for record in reader.records() {
            let record =
                record.map_err(|e| input_error!("{}: {}", path.display(), csv_error_text(&e)))?;
            for (column, cell) in cells.iter_mut().zip(record.iter()) {
                column.push(cell.trim().to_string());
            }
        }
        if cells[0].is_empty() {
            return Err(input_error!(
                "{} has a header but no data rows",
                path.display()
            ));
        }
        let columns = cells
            .into_iter()
            .map(|column| {
                let numbers: Option<Vec<f64>> = column
                    .iter()
                    .map(|c| {
                        if c.is_empty() {
                            Some(f64::NAN)
                        } else {
                            c.parse::<f64>().ok()
                        }
                    })
                    .collect();
                match numbers {
                    Some(v) => Column::Num(v),
                    None => Column::Text(column),
                }
            })
            .collect();
        Ok(Table { names, columns })
    }
}

fn csv_error_text(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            pos,
            expected_len,
            len,
        } => format!(
            "line {}: {len} fields where the header has {expected_len}",
            pos.as_ref().map_or(0, |p| p.line())
        ),
        csv::ErrorKind::Utf8 { pos, .. } => format!(
            "line {}: not valid UTF-8 text",
            pos.as_ref().map_or(0, |p| p.line())
        ),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reals_round_trip_exactly() {
        for x in [
            0.1, 1e-300, 3.0e-129, 123456.789, 1e20, -2.5e-7, 0.0, 5e-324,
        ] {
            let text = format_real(x);
            assert_eq!(
                text.parse::<f64>().unwrap().to_bits(),
                x.to_bits(),
                "{text}"
            );
        }
        assert_eq!(format_real(1e-300), "1e-300");
        assert_eq!(format_real(f64::NEG_INFINITY), "-inf");
        // Zero is written 0 whatever its sign (it reads back as the same number).
        assert_eq!(format_real(-0.0), "0");
        assert_eq!(format_real(0.0), "0");
    }

    #[test]
    fn csv_round_trip_and_groups() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        std::fs::write(&path, "d,iter,x\nkl,0,1.5\nkl,1,\neu,0,-inf\n").unwrap();
        let t = Table::read_csv(&path).unwrap();
        assert_eq!(t.len(), 3);
        assert_eq!(t.text("d").unwrap(), ["kl", "kl", "eu"]);
        assert!(t.num("x").unwrap()[1].is_nan());
        assert_eq!(t.num("x").unwrap()[2], f64::NEG_INFINITY);
        let groups = t.groups(&["d"]);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].0, "d=kl");
        assert_eq!(groups[0].1.len(), 2);
    }

    #[test]
    fn malformed_csv_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.csv");
        std::fs::write(&path, "a,b\n1,2\n3\n").unwrap();
        let msg = Table::read_csv(&path).unwrap_err().to_string();
        assert!(msg.contains("bad.csv") && msg.contains("line 3"), "{msg}");
        std::fs::write(&path, "").unwrap();
        let msg = Table::read_csv(&path).unwrap_err().to_string();
        assert!(msg.contains("empty"), "{msg}");
        std::fs::write(&path, "a,b\n").unwrap();
        let msg = Table::read_csv(&path).unwrap_err().to_string();
        assert!(msg.contains("no data rows"), "{msg}");
    }
}
