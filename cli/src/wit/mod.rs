//! `weir wit`: client interfaces derived from gateway interfaces.

mod derive;

use std::path::{Path, PathBuf};

use crate::Error;

pub fn clients(package: &Path, deps: &[PathBuf], check: bool) -> Result<(), Error> {
    let deps: Vec<&Path> = deps.iter().map(PathBuf::as_path).collect();
    let files = derive::derive(&deps, package)?;
    let written = derive::write_or_check(&files, check)?;
    for path in &written {
        println!("wrote {}", path.display());
    }
    println!("{} client interface(s) current", files.len());
    Ok(())
}
