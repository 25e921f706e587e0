//! Memory a run will need, checked before it allocates: a run that cannot fit is refused with
//! what it needs and what the machine has, instead of aborting on a failed allocation.

use anyhow::Result;

use crate::input_error;

/// Bytes of memory available to a new allocation (`MemAvailable` of `/proc/meminfo`), if the
/// system says.
pub fn available() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib.saturating_mul(1024))
}

/// `1.5 GiB`, `300 MiB`.
pub fn human(bytes: f64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{value:.0} bytes")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Refuses a run whose estimated peak memory (`bytes`, computed in f64 so that absurd sizes do
/// not overflow) exceeds what is available; `what` says what takes it.
pub fn check_fits(bytes: f64, what: &str) -> Result<()> {
    check_against(bytes, what, available())
}

fn check_against(bytes: f64, what: &str, available: Option<u64>) -> Result<()> {
    let Some(available) = available else {
        return Ok(());
    };
    if bytes > available as f64 {
        return Err(input_error!(
            "this run needs about {} ({what}) and this machine has {} available: expected \
             smaller settings",
            human(bytes),
            human(available as f64)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_much_is_refused_saying_how_much() {
        let msg = check_against(3.0 * 1024f64.powi(4), "the data", Some(8 << 30))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("3.0 TiB") && msg.contains("8.0 GiB"), "{msg}");
        assert!(check_against(1e6, "x", Some(8 << 30)).is_ok());
        assert!(check_against(1e30, "x", None).is_ok());
        assert!(available().is_some_and(|b| b > 0));
    }
}
