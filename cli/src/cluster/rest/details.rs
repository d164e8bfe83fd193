//! Jobs and TaskExecutors as Flink's REST API writes them: a job's details
//! (Flink's `JobDetailsInfo`: `state`, `start-time`, `end-time`,
//! `duration`, `now`, `timestamps` of every status, `vertices` with their
//! parallelism, aggregate status and task states, `status-counts`) with
//! weir's own progress fields beside them, and a TaskExecutor (Flink's
//! `TaskManagerInfo`, with `allocatedSlots` in the single view).

use serde_json::{Map, Value as JsonValue, json};
use weir::FencingToken;

use super::{Failure, internal};
use crate::cluster::jobmanager::{Details, JobManager, TaskManager, Vertex, ended};

/// Every job status, as Flink writes them.
const JOB_STATUSES: [&str; 10] = [
    "INITIALIZING",
    "CREATED",
    "RUNNING",
    "FAILING",
    "FAILED",
    "CANCELLING",
    "CANCELED",
    "FINISHED",
    "RESTARTING",
    "SUSPENDED",
];

/// Every task state (Flink's `ExecutionState`, without `RECONCILING`).
const TASK_STATES: [&str; 9] =
    ["CREATED", "SCHEDULED", "DEPLOYING", "INITIALIZING", "RUNNING", "FINISHED", "CANCELING", "CANCELED", "FAILED"];

/// A job id as Flink writes it: 32 hexadecimal digits.
pub(super) fn written(id: FencingToken) -> String {
    let (high, low) = id.as_u64_pair();
    format!("{high:016x}{low:016x}")
}

/// A state as Flink writes it (`RUNNING`).
pub(super) fn state(status: &str) -> String {
    status.to_uppercase()
}

/// One job's details as `/jobs/overview` and `/jobs/{jobid}` show them.
pub(super) async fn job(cluster: &JobManager, id: FencingToken, name: String) -> Result<JsonValue, Failure> {
    let details = cluster.details(id).await.map_err(internal)?;
    Ok(render(id, name, &details, now()))
}

fn now() -> u64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}

fn render(id: FencingToken, name: String, details: &Details, now: u64) -> JsonValue {
    let reached = |status: &str| details.timestamps.iter().find(|(known, _)| state(known) == status).map(|(_, at)| *at);
    let timestamps: Map<String, JsonValue> =
        JOB_STATUSES.iter().map(|status| (status.to_string(), json!(reached(status).unwrap_or(0)))).collect();
    let start = details.timestamps.first().map(|(_, at)| *at);
    let end = ended(&details.status).then(|| reached(&state(&details.status))).flatten();
    let duration = start.map(|start| end.unwrap_or(now).saturating_sub(start));
    let vertices: Vec<(String, JsonValue)> =
        details.vertices.iter().enumerate().map(|(index, vertex)| rendered_vertex(index, vertex)).collect();
    let mut status_counts: Map<String, JsonValue> = TASK_STATES.iter().map(|s| (s.to_string(), json!(0))).collect();
    for (status, _) in &vertices {
        if let Some(count) = status_counts.get_mut(status) {
            *count = json!(count.as_u64().unwrap_or(0) + 1);
        }
    }
    json!({
        "jid": written(id),
        "name": name,
        "state": state(&details.status),
        "start-time": start.map_or(-1, |at| at as i64),
        "end-time": end.map_or(-1, |at| at as i64),
        "duration": duration.map_or(-1, |ms| ms as i64),
        "now": now,
        "timestamps": timestamps,
        "vertices": vertices.into_iter().map(|(_, vertex)| vertex).collect::<Vec<_>>(),
        "status-counts": status_counts,
        "tasks": { "total": details.tasks, "running": details.running },
        "checkpoints": { "completed": details.checkpoints },
        "restarts": details.restarts,
        "records-read": details.records_read,
        "input": { "bytes": details.input_bytes, "assigned": details.input_assigned },
    })
}

/// A job vertex: its aggregate status and its JSON.
fn rendered_vertex(index: usize, vertex: &Vertex) -> (String, JsonValue) {
    let count = |wanted: &str| {
        vertex.tasks.iter().filter(|(known, _)| state(known) == wanted).map(|(_, count)| *count).sum::<u32>()
    };
    let tasks: Map<String, JsonValue> = TASK_STATES.iter().map(|s| (s.to_string(), json!(count(s)))).collect();
    let status = aggregate(vertex.parallelism, count).to_owned();
    let rendered = json!({
        "id": format!("{index:032x}"),
        "name": vertex.name,
        "parallelism": vertex.parallelism,
        "maxParallelism": vertex.parallelism,
        "status": status,
        "tasks": tasks,
    });
    (status, rendered)
}

/// A vertex's status from its subtasks' (Flink's
/// `ExecutionJobVertex.getAggregateJobVertexState`): a failure first, then
/// cancellation, then the least advanced of those still running.
fn aggregate(parallelism: u32, count: impl Fn(&str) -> u32) -> &'static str {
    let first = ["FAILED", "CANCELING", "CANCELED", "INITIALIZING", "RUNNING"].into_iter().find(|s| count(s) > 0);
    match first {
        Some(status) => status,
        None if count("FINISHED") == parallelism && parallelism > 0 => "FINISHED",
        None if count("FINISHED") > 0 => "RUNNING",
        None => ["DEPLOYING", "SCHEDULED"].into_iter().find(|s| count(s) > 0).unwrap_or("CREATED"),
    }
}

/// A TaskExecutor as `/taskmanagers` lists it; with `allocatedSlots` as
/// `/taskmanagers/{id}` shows it.
pub(super) fn task_manager(task_manager: &TaskManager, single: bool) -> JsonValue {
    let mut info = json!({
        "id": task_manager.id,
        "path": task_manager.address,
        "slotsNumber": task_manager.slots,
        "freeSlots": task_manager.free(),
        "timeSinceLastHeartbeat": task_manager.last_heartbeat_ms,
    });
    if single {
        let allocated: Vec<JsonValue> = task_manager
            .allocated
            .iter()
            .map(|(index, job)| json!({ "index": index, "jobId": written(*job) }))
            .collect();
        info["allocatedSlots"] = json!(allocated);
    }
    info
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vertex(parallelism: u32, tasks: &[(&str, u32)]) -> Vertex {
        let tasks = tasks.iter().map(|(state, n)| (state.to_string(), *n)).collect();
        Vertex { name: "count".into(), parallelism, tasks }
    }

    #[test]
    fn a_vertex_reads_as_its_least_advanced_subtask_a_failure_first() {
        let status = |v: Vertex| rendered_vertex(0, &v).0;
        assert_eq!(status(vertex(2, &[("created", 2)])), "CREATED");
        assert_eq!(status(vertex(2, &[("deploying", 1), ("running", 1)])), "RUNNING");
        assert_eq!(status(vertex(2, &[("finished", 1), ("running", 1)])), "RUNNING");
        assert_eq!(status(vertex(2, &[("finished", 1), ("created", 1)])), "RUNNING");
        assert_eq!(status(vertex(2, &[("finished", 2)])), "FINISHED");
        assert_eq!(status(vertex(2, &[("failed", 1), ("canceling", 1)])), "FAILED");
        assert_eq!(status(vertex(2, &[("scheduled", 1), ("deploying", 1)])), "DEPLOYING");
    }

    #[test]
    fn a_job_shows_every_status_time_and_its_duration_to_its_end() {
        let details = Details {
            status: "finished".into(),
            tasks: 2,
            running: 0,
            checkpoints: 1,
            restarts: 0,
            input_bytes: 0,
            input_assigned: 0,
            records_read: 0,
            vertices: vec![vertex(2, &[("finished", 2)])],
            timestamps: vec![("initializing".into(), 1000), ("created".into(), 1010), ("finished".into(), 1500)],
        };
        let job = render(FencingToken::from_u64_pair(1, 2), "job".into(), &details, 9000);
        assert_eq!(job["jid"], "00000000000000010000000000000002");
        assert_eq!(
            (job["start-time"].as_i64(), job["end-time"].as_i64(), job["duration"].as_i64()),
            (Some(1000), Some(1500), Some(500))
        );
        assert_eq!(job["timestamps"]["CREATED"], 1010);
        assert_eq!(job["timestamps"]["FAILED"], 0);
        assert_eq!(job["timestamps"].as_object().unwrap().len(), 10);
        assert_eq!(job["vertices"][0]["tasks"]["FINISHED"], 2);
        assert_eq!(job["vertices"][0]["tasks"]["RUNNING"], 0);
        assert_eq!(job["status-counts"]["FINISHED"], 1);
    }
}
