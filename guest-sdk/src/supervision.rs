//! Starting endpoints from an endpoint, and learning how they end
//! (`weir:rpc/supervision`).
//!
//! ```ignore
//! let options = ChildOptions::new("worker-1");
//! let child = Child::start(ComponentSource::Named("worker".into()), options).await?;
//! let address = child.address();
//! weir_guest::spawn(async move {
//!     if let Err(cause) = child.terminated().await {
//!         weir_guest::warn!("worker failed: {cause}");
//!     }
//! });
//! ```
//!
//! A child whose handle is dropped is stopped; keep the handle as long as
//! the child should run.
//!
//! A component started many times (a job's tasks) is best loaded once and
//! started by its digest, so that its bytes do not travel on each start:
//!
//! ```ignore
//! let digest = load(&bytes).await?;
//! let task = Child::start_loaded(digest.clone(), options).await?;
//! ```

/// The generated bindings, which endpoint crates share through
/// [`generate!`](crate::generate).
#[doc(hidden)]
pub mod wit {
    pub use crate::bindings::weir::rpc::supervision::*;
}

pub use wit::{Child, ChildDirectory, ChildOptions, ComponentDigest, ComponentSource, StartError, load};

impl ChildOptions {
    /// Options for a child `id` with the host's defaults: unfenced, no
    /// settings, the host's memory cap and CPU deadline, no directories.
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            fencing_token: None,
            settings: Vec::new(),
            memory_cap: None,
            cpu_deadline_ms: None,
            directories: Vec::new(),
        }
    }
}

impl StartError {
    /// What was wrong, as the host says it (its `Display` shows the case
    /// too).
    pub fn message(&self) -> &str {
        match self {
            StartError::UnknownComponent(text)
            | StartError::InvalidComponent(text)
            | StartError::Refused(text)
            | StartError::StartFailed(text) => text,
        }
    }
}
