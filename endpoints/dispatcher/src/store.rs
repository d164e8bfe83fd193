//! The jobs a Dispatcher took and how they ended, kept where they outlive
//! it, as Flink's execution plan store and job result store:
//!
//! - each job's entry in the HA store (`weir:rpc/ha-store`, collection
//!   `jobs`, key its id; ZooKeeper nodes with ZooKeeper HA): its
//!   description and arguments, written before its submission is
//!   acknowledged, removed once its result is kept;
//! - its component and its result in files under the setting `job-store`
//!   (a writable directory it is lent, the cluster's
//!   `high-availability.storageDir`): `<id>/component.wasm` while it runs,
//!   `<id>/result` once it ended.
//!
//! A Dispatcher that starts (a new leader) runs again every job with an
//! entry and no result, from its last completed checkpoint, and knows the
//! results of the others, which it never runs again. Without ZooKeeper the
//! entries are in the host's memory: a new leader on the same host
//! recovers the jobs, a restarted jobmanager does not (nor does Flink's
//! standalone mode), though it knows the results. Nothing is kept without
//! `job-store`.
//!
//! An entry (and a result's first part) is the job's description: `name`,
//! `parallelism`, `checkpoint-interval-ms` lines, a blank line, then its
//! arguments, NUL-separated. A result file adds, after a NUL line,
//! `status`, `checkpoints`, `restarts`, `runtime-ms` lines, then `failure`
//! and the rest.

use std::cell::RefCell;
use std::collections::BTreeSet;

use crate::weir::flink::types::{JobDescription, JobResult, JobStatus};
use weir_guest::{Uuid, ha_store};

/// The HA store's collection of job entries.
const JOBS: &str = "jobs";

/// What separates a result file's description from how the job ended.
const ENDED: &str = "\n\0\n";

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

/// A job's description as an entry keeps it.
fn describe(job: &JobDescription) -> String {
    let interval = job.checkpoint_interval_ms.map_or("none".to_owned(), |ms| ms.to_string());
    let (name, parallelism) = (job.name.replace('\n', " "), job.parallelism);
    format!("name {name}\nparallelism {parallelism}\ncheckpoint-interval-ms {interval}\n\n{}", job.arguments.join("\0"))
}

/// Writes a job just accepted: its component, then its entry; nothing
/// without a store.
pub async fn persist(job: &JobDescription, component: &[u8]) -> Result<(), String> {
    let Some(root) = root() else { return Ok(()) };
    let directory = directory(&root, job.id);
    let failed = |error: std::io::Error| format!("cannot keep job {} in `{directory}`: {error}", job.id);
    std::fs::create_dir_all(&directory).map_err(failed)?;
    std::fs::write(format!("{directory}/component.wasm"), component).map_err(failed)?;
    // Last: a job is stored once its entry is there.
    let entry = describe(job);
    ha_store::put(JOBS.into(), job.id.to_string(), entry.into_bytes())
        .await
        .map_err(|why| format!("cannot keep job {} in the HA store: {why}", job.id))
}

/// Writes how a job ended (`job`'s description with it), then drops its
/// component and its entry.
pub fn record(job: &JobDescription, result: &JobResult) {
    let Some(root) = root() else { return };
    let (id, directory) = (result.id, directory(&root, result.id));
    let failure = result.failure.as_deref().map_or(String::new(), |why| format!("failure {why}\n"));
    let text = format!(
        "{}{ENDED}status {}\ncheckpoints {}\nrestarts {}\nruntime-ms {}\n{failure}",
        describe(job),
        crate::name(result.status),
        result.checkpoints,
        result.restarts,
        result.runtime_ms
    );
    let written =
        std::fs::create_dir_all(&directory).and_then(|()| std::fs::write(format!("{directory}/result"), text));
    if let Err(error) = written {
        weir_guest::error!("cannot keep the result of job {id}: {error}");
        return;
    }
    drop(std::fs::remove_file(format!("{directory}/component.wasm")));
    weir_guest::spawn(async move {
        if let Err(why) = ha_store::remove(JOBS.into(), id.to_string()).await {
            weir_guest::warn!("cannot remove job {id} from the HA store (its result is kept): {why}");
        }
    });
}

/// Every job in the store: those with an entry, and those with a result;
/// those it cannot read are skipped, with a warning.
pub async fn stored() -> Vec<Stored> {
    let Some(root) = root() else { return Vec::new() };
    let mut all = Vec::new();
    // The results first: a job whose entry outlived its result ended.
    let mut ended = BTreeSet::new();
    for entry in std::fs::read_dir(&root).into_iter().flatten().flatten() {
        let Some(id) = Uuid::parse(&entry.file_name().to_string_lossy()) else { continue };
        let Ok(text) = std::fs::read_to_string(format!("{}/result", directory(&root, id))) else { continue };
        match ended_job(id, &text) {
            Ok(stored) => {
                ended.insert((id.high, id.low));
                all.push(stored);
            }
            Err(why) => weir_guest::warn!("cannot read the result of job {id}: {why}"),
        }
    }
    let keys = match ha_store::keys(JOBS.into()).await {
        Ok(keys) => keys,
        Err(why) => {
            weir_guest::error!("cannot read the jobs in the HA store: {why}");
            return all;
        }
    };
    for id in keys.iter().filter_map(|key| Uuid::parse(key)) {
        if ended.contains(&(id.high, id.low)) {
            weir_guest::spawn(async move { drop(ha_store::remove(JOBS.into(), id.to_string()).await) });
            continue;
        }
        match running_job(&root, id).await {
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

/// The job whose entry the HA store holds, with its component; none if
/// the entry went meanwhile.
async fn running_job(root: &str, id: Uuid) -> Result<Option<Stored>, String> {
    let Some(entry) = ha_store::get(JOBS.into(), id.to_string()).await? else { return Ok(None) };
    let job = description(id, &String::from_utf8_lossy(&entry))?;
    let component = std::fs::read(format!("{}/component.wasm", directory(root, id))).map_err(|e| e.to_string())?;
    Ok(Some(Stored::Running(job, component)))
}

/// The job a result file describes, and how it ended.
fn ended_job(id: Uuid, text: &str) -> Result<Stored, String> {
    let (described, result) = text.split_once(ENDED).ok_or("it holds no description")?;
    let job = description(id, described)?;
    let status = field(result, "status").and_then(|name| status(&name)).ok_or("it has no status")?;
    let failure = result.split_once("\nfailure ").map(|(_, why)| why.trim_end().to_owned());
    let ended = JobResult {
        id,
        status,
        failure,
        runtime_ms: number(result, "runtime-ms").unwrap_or(0),
        checkpoints: number(result, "checkpoints").unwrap_or(0),
        restarts: number(result, "restarts").unwrap_or(0) as u32,
    };
    Ok(Stored::Ended(job, ended))
}

/// A job's description as [`describe`] writes it.
fn description(id: Uuid, text: &str) -> Result<JobDescription, String> {
    let (head, arguments) = text.split_once("\n\n").ok_or("its description has no arguments part")?;
    Ok(JobDescription {
        id,
        name: field(head, "name").unwrap_or_default(),
        parallelism: number(head, "parallelism").ok_or("its description has no parallelism")? as u32,
        arguments: if arguments.is_empty() { Vec::new() } else { arguments.split('\0').map(str::to_owned).collect() },
        checkpoint_interval_ms: number(head, "checkpoint-interval-ms"),
    })
}

fn field(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|line| line.strip_prefix(key)?.strip_prefix(' ').map(str::to_owned))
}

fn number(text: &str, key: &str) -> Option<u64> {
    field(text, key).and_then(|value| value.parse().ok())
}

/// The status `name` names ([`crate::name`]'s inverse), for a terminal one.
fn status(name: &str) -> Option<JobStatus> {
    [JobStatus::Finished, JobStatus::Failed, JobStatus::Canceled]
        .into_iter()
        .find(|status| crate::name(*status) == name)
}
