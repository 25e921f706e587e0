//! `NAME.csv`: one header, then rows flushed as they come, so `tail -f` and a crash both keep
//! every finished row.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::contract::RowSink;
use crate::table::Cell;

pub struct CsvSink {
    path: PathBuf,
    writer: csv::Writer<BufWriter<File>>,
}

impl CsvSink {
    pub fn create(path: &Path) -> Result<CsvSink> {
        let file = File::create(path)
            .map_err(|e| crate::input_error!("cannot create {}: {e}", path.display()))?;
        Ok(CsvSink {
            path: path.to_path_buf(),
            writer: csv::Writer::from_writer(BufWriter::new(file)),
        })
    }
}

impl RowSink for CsvSink {
    fn header(&mut self, names: &[String]) -> Result<()> {
        self.writer
            .write_record(names)
            .with_context(|| format!("writing {}", self.path.display()))?;
        self.writer
            .flush()
            .with_context(|| format!("writing {}", self.path.display()))
    }

    fn row(&mut self, cells: &[Cell]) -> Result<()> {
        self.writer
            .write_record(cells.iter().map(Cell::to_csv))
            .with_context(|| format!("writing {}", self.path.display()))?;
        self.writer
            .flush()
            .with_context(|| format!("writing {}", self.path.display()))
    }
}
