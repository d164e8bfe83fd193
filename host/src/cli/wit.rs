//! `weir wit clients`.

use std::path::{Path, PathBuf};

use weir::wit_clients;

use super::Error;

pub fn clients(package: &Path, deps: &[PathBuf], check: bool) -> Result<(), Error> {
    let deps: Vec<&Path> = deps.iter().map(PathBuf::as_path).collect();
    let files = wit_clients::derive(&deps, package)?;
    wit_clients::write_or_check(&files, check)?;
    for file in &files {
        println!("{} {}", if check { "current" } else { "wrote" }, file.path.display());
    }
    Ok(())
}
