//! One module (folder) per paper; the registry lists them for the command line.

pub mod bnquant;
pub mod bpsvrg;
pub mod deeplinear;
pub mod directional;
pub mod locmoe;
pub mod noise;
pub mod pmd;
pub mod sparselinear;
pub mod svrs;

use anyhow::Result;

use crate::contract::{AnyExperiment, Typed};

/// Every experiment, in `lab list` order.
pub fn registry() -> [&'static dyn AnyExperiment; 9] {
    [
        &Typed::<pmd::Pmd>::ENTRY,
        &Typed::<svrs::Svrs>::ENTRY,
        &Typed::<deeplinear::DeepLinearExperiment>::ENTRY,
        &Typed::<directional::DirectionalExperiment>::ENTRY,
        &Typed::<noise::NoiseExperiment>::ENTRY,
        &Typed::<sparselinear::SparseLinearExperiment>::ENTRY,
        &Typed::<bpsvrg::BpsvrgExperiment>::ENTRY,
        &Typed::<bnquant::BnquantExperiment>::ENTRY,
        &Typed::<locmoe::LocmoeExperiment>::ENTRY,
    ]
}

/// Looks an experiment up by name; unknown names are input errors with a suggestion.
pub fn find(name: &str) -> Result<&'static dyn AnyExperiment> {
    let all = registry();
    if let Some(exp) = all.iter().find(|e| e.name() == name) {
        return Ok(*exp);
    }
    let hint = crate::spec::nearest(all.iter().map(|e| e.name()), name)
        .map(|n| format!(" (did you mean '{n}'?)"))
        .unwrap_or_default();
    let names: Vec<&str> = all.iter().map(|e| e.name()).collect();
    Err(crate::input_error!(
        "unknown experiment '{name}'{hint}: expected one of: {}",
        names.join(", ")
    ))
}
