//! Compiled components kept on disk ([`HostConfig::compile_cache`]), so
//! that a process loading a component it (or an earlier process) compiled
//! before maps the machine code instead of running Cranelift again: the
//! difference between a cluster that starts in most of a second and one
//! that starts in milliseconds.
//!
//! An entry is named by the SHA-256 of the component's bytes, the engine it
//! runs on and a hash of that engine's compatibility (wasmtime version,
//! target, settings), so a different build or configuration never reads
//! another's entry; wasmtime checks the same again when it reads one.
//! Entries are written whole to a temporary file and renamed into place,
//! so a reader never sees half of one. The cache is an optimisation only: an entry that cannot be read or
//! written is logged and the component compiled.
//!
//! [`HostConfig::compile_cache`]: crate::HostConfig::compile_cache

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;

use super::ExecutionMode;

/// A directory of compiled components.
#[derive(Clone, Debug)]
pub(crate) struct CompileCache {
    directory: PathBuf,
}

/// Where the compilation of some bytes for one engine is kept.
pub(crate) struct Entry {
    path: PathBuf,
}

impl CompileCache {
    pub(crate) fn new(directory: &Path) -> Self {
        Self { directory: directory.to_owned() }
    }

    /// The entry for the bytes whose digest is `digest` compiled by
    /// `engine`, which runs components in `mode`: wasmtime's compatibility
    /// hash does not tell the two engines apart, so the name does.
    pub(crate) fn entry(&self, engine: &wasmtime::Engine, mode: ExecutionMode, digest: &str) -> Entry {
        let mut hasher = std::hash::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let mode = match mode {
            ExecutionMode::Sequential => "sync",
            ExecutionMode::Concurrent => "async",
        };
        Entry { path: self.directory.join(format!("{digest}-{mode}-{:016x}.cwasm", hasher.finish())) }
    }

    /// The name of `bytes` in the cache.
    pub(crate) fn digest(bytes: &[u8]) -> String {
        format!("{:x}", Sha256::digest(bytes))
    }
}

impl Entry {
    /// The component kept here, if there is one this engine can run.
    pub(crate) fn read(&self, engine: &wasmtime::Engine) -> Option<Component> {
        if !self.path.exists() {
            return None;
        }
        // SAFETY: wasmtime runs the machine code in the file as it is. The
        // file was written by `Component::serialize` in `write` (renamed
        // into place only once whole), in a directory the host's
        // configuration names as its own, and wasmtime checks that it was
        // compiled for this engine's version, target and settings.
        #[allow(unsafe_code, reason = "reads a compiled component this cache wrote; see SAFETY")]
        let read = unsafe { Component::deserialize_file(engine, &self.path) };
        read.inspect_err(|error| {
            tracing::debug!(entry = %self.path.display(), "compile cache entry not usable, compiling: {error:#}");
        })
        .ok()
    }

    /// Keeps `component` here, for the next load of the same bytes.
    pub(crate) fn write(&self, component: &Component) {
        let written = component.serialize().map_err(std::io::Error::other).and_then(|compiled| {
            if let Some(directory) = self.path.parent() {
                std::fs::create_dir_all(directory)?;
            }
            let partial = self.path.with_extension(format!("{}.partial", std::process::id()));
            std::fs::write(&partial, compiled)?;
            std::fs::rename(&partial, &self.path)
        });
        if let Err(error) = written {
            tracing::warn!(entry = %self.path.display(), "cannot keep a compiled component: {error}");
        }
    }
}
