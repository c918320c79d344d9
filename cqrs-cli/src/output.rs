//! How results are printed: a table for people, or JSON (`--format json`: one document;
//! `ndjson`: one record per line) for scripts. Every command builds JSON records and hands
//! them here, so the two forms always carry the same facts.

use serde_json::{Map, Value};
use std::io::{self, Write};

/// The `--format` flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns, for people.
    #[default]
    Table,
    /// One JSON document.
    Json,
    /// One JSON record per line (streams well into `jq`).
    Ndjson,
}

/// The printer a command writes to.
pub struct Output<'w> {
    format: Format,
    out: &'w mut (dyn Write + Send),
}

impl<'w> Output<'w> {
    /// Prints in `format` to `out`.
    pub fn new(format: Format, out: &'w mut (dyn Write + Send)) -> Self {
        Self { format, out }
    }

    /// The format asked for.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Records with these columns: a table with a header, a JSON array, or one line each.
    /// A column holding an object or array is printed as compact JSON in a table.
    pub fn records(&mut self, columns: &[&str], records: &[Value]) -> io::Result<()> {
        match self.format {
            Format::Json => writeln!(self.out, "{}", pretty(&Value::from(records.to_vec()))),
            Format::Ndjson => self.lines(records),
            Format::Table => self.table(columns, records, true),
        }
    }

    /// More records of a running listing (`tail -f`): no header in a table, and in JSON one
    /// record per line, since the document never ends.
    pub fn more_records(&mut self, columns: &[&str], records: &[Value]) -> io::Result<()> {
        match self.format {
            Format::Json | Format::Ndjson => self.lines(records),
            Format::Table => self.table(columns, records, false),
        }
    }

    /// One object, its fields in this order: `key  value` lines in a table, else JSON (whose
    /// keys serde_json keeps sorted).
    pub fn fields(&mut self, fields: Vec<(&str, Value)>) -> io::Result<()> {
        match self.format {
            Format::Table => {
                let width = fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
                for (key, value) in &fields {
                    writeln!(self.out, "{key:width$}  {}", cell(value))?;
                }
                Ok(())
            }
            Format::Json | Format::Ndjson => {
                let object: Map<String, Value> = fields
                    .into_iter()
                    .map(|(key, value)| (key.to_owned(), value))
                    .collect();
                let object = Value::Object(object);
                if self.format == Format::Json {
                    writeln!(self.out, "{}", pretty(&object))
                } else {
                    writeln!(self.out, "{object}")
                }
            }
        }
    }

    /// A line for people only (a heading, a note); nothing in JSON forms.
    pub fn note(&mut self, text: &str) -> io::Result<()> {
        if self.format == Format::Table {
            writeln!(self.out, "{text}")?;
        }
        Ok(())
    }

    /// Flushes what was written (a following command may wait on it).
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    fn lines(&mut self, records: &[Value]) -> io::Result<()> {
        for record in records {
            writeln!(self.out, "{record}")?;
        }
        self.out.flush()
    }

    fn table(&mut self, columns: &[&str], records: &[Value], header: bool) -> io::Result<()> {
        let rows: Vec<Vec<String>> = records
            .iter()
            .map(|record| {
                columns
                    .iter()
                    .map(|column| record.get(column).map(cell).unwrap_or_default())
                    .collect()
            })
            .collect();
        let widths: Vec<usize> = columns
            .iter()
            .enumerate()
            .map(|(i, column)| {
                rows.iter()
                    .map(|row| row[i].chars().count())
                    .chain([if header { column.len() } else { 0 }])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        if header {
            let names: Vec<String> = columns.iter().map(|c| c.to_uppercase()).collect();
            self.row(&names, &widths)?;
        }
        for row in &rows {
            self.row(row, &widths)?;
        }
        self.out.flush()
    }

    fn row(&mut self, cells: &[String], widths: &[usize]) -> io::Result<()> {
        let last = cells.len().saturating_sub(1);
        let mut line = String::new();
        for (i, (text, width)) in cells.iter().zip(widths).enumerate() {
            line.push_str(text);
            if i < last {
                let pad = width.saturating_sub(text.chars().count()) + 2;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        writeln!(self.out, "{}", line.trim_end())
    }
}

/// A value as a table cell: strings bare, null empty, the rest as compact JSON.
fn cell(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}
