//! Reading the config files every command takes.

use std::path::Path;

use serde::de::DeserializeOwned;

use crate::Error;

/// Reads the TOML file at `path`: errors name the file, and TOML's own
/// message names the key and the line.
pub fn read<T: DeserializeOwned>(path: &Path) -> Result<T, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?)
}
