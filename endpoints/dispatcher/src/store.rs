//! The jobs a Dispatcher took and how they ended, kept where they outlive
//! it (setting `job-store`: a writable directory it is lent, the cluster's
//! `high-availability.storageDir`): Flink's execution plan store and job
//! result store in one. A job is written before its submission is
//! acknowledged; its result when it ends. A Dispatcher that starts (a new
//! leader) runs again the jobs that have no result, from their last
//! completed checkpoint, and knows the results of the others, which it
//! never runs again.
//!
//! Layout: `<id>/description` (`name`, `parallelism`, `checkpoint-interval-ms`
//! lines), `<id>/arguments` (NUL-separated), `<id>/component.wasm`, and
//! `<id>/result` once it ended (`status`, `checkpoints`, `restarts`,
//! `runtime-ms` lines, then `failure` and the rest). The component goes
//! with the result.

use std::cell::RefCell;
use std::collections::BTreeSet;

use crate::weir::flink::types::{JobDescription, JobResult, JobStatus};
use weir_guest::Uuid;

thread_local! {
    /// The jobs this Dispatcher runs again, which resume from their
    /// checkpoints.
    static RECOVERED: RefCell<BTreeSet<(u64, u64)>> = const { RefCell::new(BTreeSet::new()) };
}

/// A job found in the store.
pub enum Stored {
    /// It did not end: run it again.
    Running(JobDescription, Vec<u8>),
    /// It ended.
    Ended(JobDescription, JobResult),
}

fn root() -> Option<String> {
    weir_guest::config("job-store")
}

fn directory(root: &str, id: Uuid) -> String {
    format!("{root}/{id}")
}

/// Writes a job just accepted, with its component; nothing without a store.
pub fn persist(job: &JobDescription, component: &[u8]) -> Result<(), String> {
    let Some(root) = root() else { return Ok(()) };
    let directory = directory(&root, job.id);
    let failed = |error: std::io::Error| format!("cannot keep job {} in `{directory}`: {error}", job.id);
    std::fs::create_dir_all(&directory).map_err(failed)?;
    let interval = job.checkpoint_interval_ms.map_or("none".to_owned(), |ms| ms.to_string());
    let description =
        format!("name {}\nparallelism {}\ncheckpoint-interval-ms {interval}\n", job.name, job.parallelism);
    std::fs::write(format!("{directory}/arguments"), job.arguments.join("\0")).map_err(failed)?;
    std::fs::write(format!("{directory}/component.wasm"), component).map_err(failed)?;
    // Last: a job is stored once its description is there.
    std::fs::write(format!("{directory}/description"), description).map_err(failed)
}

/// Writes how a job ended, and drops its component.
pub fn record(result: &JobResult) {
    let Some(root) = root() else { return };
    let directory = directory(&root, result.id);
    let failure = result.failure.as_deref().map_or(String::new(), |why| format!("failure {why}\n"));
    let text = format!(
        "status {}\ncheckpoints {}\nrestarts {}\nruntime-ms {}\n{failure}",
        crate::name(result.status),
        result.checkpoints,
        result.restarts,
        result.runtime_ms
    );
    match std::fs::write(format!("{directory}/result"), text) {
        Ok(()) => drop(std::fs::remove_file(format!("{directory}/component.wasm"))),
        Err(error) => weir_guest::error!("cannot keep the result of job {}: {error}", result.id),
    }
}

/// Every job in the store; those it cannot read are skipped, with a
/// warning.
pub fn stored() -> Vec<Stored> {
    let Some(root) = root() else { return Vec::new() };
    let Ok(entries) = std::fs::read_dir(&root) else { return Vec::new() };
    let mut all = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(id) = Uuid::parse(&name) else { continue };
        match read(&directory(&root, id), id) {
            Ok(Some(stored)) => all.push(stored),
            Ok(None) => {}
            Err(why) => weir_guest::warn!("cannot recover job {id}: {why}"),
        }
    }
    all
}

/// Notes that job `id` runs again, from its last completed checkpoint.
pub fn recovering(id: Uuid) {
    RECOVERED.with(|recovered| recovered.borrow_mut().insert((id.high, id.low)));
}

/// Whether job `id` runs again, and should resume from its checkpoints.
pub fn recovered(id: Uuid) -> bool {
    RECOVERED.with(|recovered| recovered.borrow().contains(&(id.high, id.low)))
}

/// The job stored in `directory`; none if its description is not there
/// (it was not acknowledged).
fn read(directory: &str, id: Uuid) -> Result<Option<Stored>, String> {
    let Ok(description) = std::fs::read_to_string(format!("{directory}/description")) else { return Ok(None) };
    let field = |text: &str, key: &str| -> Option<String> {
        text.lines().find_map(|line| line.strip_prefix(key)?.strip_prefix(' ').map(str::to_owned))
    };
    let number = |text: &str, key: &str| field(text, key).and_then(|value| value.parse::<u64>().ok());
    let arguments = std::fs::read_to_string(format!("{directory}/arguments")).map_err(|e| e.to_string())?;
    let job = JobDescription {
        id,
        name: field(&description, "name").unwrap_or_default(),
        parallelism: number(&description, "parallelism").ok_or("its description has no parallelism")? as u32,
        arguments: if arguments.is_empty() { Vec::new() } else { arguments.split('\0').map(str::to_owned).collect() },
        checkpoint_interval_ms: number(&description, "checkpoint-interval-ms"),
    };
    if let Ok(result) = std::fs::read_to_string(format!("{directory}/result")) {
        let status = field(&result, "status").and_then(|name| status(&name)).ok_or("its result has no status")?;
        let failure = result.split_once("\nfailure ").map(|(_, why)| why.trim_end().to_owned());
        let ended = JobResult {
            id,
            status,
            failure,
            runtime_ms: number(&result, "runtime-ms").unwrap_or(0),
            checkpoints: number(&result, "checkpoints").unwrap_or(0),
            restarts: number(&result, "restarts").unwrap_or(0) as u32,
        };
        return Ok(Some(Stored::Ended(job, ended)));
    }
    let component = std::fs::read(format!("{directory}/component.wasm")).map_err(|e| e.to_string())?;
    Ok(Some(Stored::Running(job, component)))
}

/// The status `name` names ([`crate::name`]'s inverse), for a terminal one.
fn status(name: &str) -> Option<JobStatus> {
    [JobStatus::Finished, JobStatus::Failed, JobStatus::Canceled]
        .into_iter()
        .find(|status| crate::name(*status) == name)
}
