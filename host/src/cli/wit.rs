//! `weir wit clients`.

use std::path::{Path, PathBuf};

use weir::wit_clients;

use super::Error;

pub fn clients(package: &Path, deps: &[PathBuf], check: bool) -> Result<(), Error> {
    let deps: Vec<&Path> = deps.iter().map(PathBuf::as_path).collect();
    let files = wit_clients::derive(&deps, package)?;
    let written = wit_clients::write_or_check(&files, check)?;
    for path in &written {
        println!("wrote {}", path.display());
    }
    println!("{} client interface(s) current", files.len());
    Ok(())
}
