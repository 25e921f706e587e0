use crate::experiments::RunData;
use crate::plot::Figure;
use anyhow::Result;
pub fn figures(_runs: &[RunData]) -> Result<Vec<(String, Figure)>> {
    Ok(Vec::new())
}
