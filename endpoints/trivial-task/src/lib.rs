//! A trivial job's task component (world `weir:flink/task-endpoint`): one
//! stage, no input; each subtask waits a moment and finishes, or, as its
//! arguments say, fails (`--fail`), traps (`--trap`), spins without ever
//! returning to the host (`--spin`) or runs until it is canceled
//! (`--forever`). It acknowledges checkpoints with an empty
//! state. For tests and the submission benchmark.

weir_guest::generate!({
    world: "weir:flink/task-endpoint",
    path: ["../../wit/rpc", "../../wit/flink"],
});

use std::cell::RefCell;
use std::time::Duration;

use exports::weir::flink::task::{Guest, JobPlan, Stage, TaskInfo};
use exports::weir::flink::{task_checkpoints, task_input};
use weir::flink::jobmaster_checkpoints_client::JobmasterCheckpointsGateway;

thread_local! {
    /// What the subtask runs with, once it runs.
    static INFO: RefCell<Option<TaskInfo>> = const { RefCell::new(None) };
}

struct TrivialTask;

/// Loops forever without returning to the host: its CPU deadline ends it.
fn spin() {
    let mut turns = 0_u64;
    loop {
        turns = std::hint::black_box(turns.wrapping_add(1));
    }
}

impl weir_guest::Endpoint for TrivialTask {}

impl Guest for TrivialTask {
    fn plan(_arguments: Vec<String>, parallelism: u32) -> Result<JobPlan, String> {
        Ok(JobPlan { stages: vec![Stage { name: "task".into(), parallelism }], inputs: Vec::new() })
    }

    async fn run(info: TaskInfo) -> Result<(), String> {
        let asked = |flag: &str| info.arguments.iter().any(|argument| argument == flag);
        weir_guest::info!("subtask {} of {} of job {} runs", info.subtask, info.parallelism, info.job);
        INFO.with(|slot| *slot.borrow_mut() = Some(info.clone()));
        weir_guest::sleep(Duration::from_millis(1)).await;
        if asked("--trap") {
            panic!("deliberate trap in subtask {}", info.subtask);
        }
        if asked("--spin") {
            spin();
        }
        while asked("--forever") {
            weir_guest::sleep(Duration::from_millis(100)).await;
        }
        if asked("--fail") {
            return Err(format!("subtask {} was asked to fail", info.subtask));
        }
        Ok(())
    }
}

/// A trivial task reads no records.
fn no_input(producer: u32) -> Result<(), String> {
    Err(format!("a trivial task takes no input (from producer {producer})"))
}

impl task_input::Guest for TrivialTask {
    async fn push(producer: u32, _batch: Vec<u8>) -> Result<(), String> {
        no_input(producer)
    }

    async fn barrier(producer: u32, _checkpoint: u64) -> Result<(), String> {
        no_input(producer)
    }

    async fn end_of_input(producer: u32) -> Result<(), String> {
        no_input(producer)
    }
}

impl task_checkpoints::Guest for TrivialTask {
    fn trigger_checkpoint(checkpoint: u64) {
        let Some(info) = INFO.with(|slot| slot.borrow().clone()) else { return };
        weir_guest::spawn(async move {
            let job_master = JobmasterCheckpointsGateway::connect(info.job_master, Some(info.job_master_session)).await;
            match job_master {
                Ok(job_master) => {
                    job_master.acknowledge_checkpoint(info.job, info.attempt, checkpoint, Vec::new()).await
                }
                Err(error) => weir_guest::warn!("cannot acknowledge checkpoint {checkpoint}: {error}"),
            }
        });
    }

    fn notify_checkpoint_complete(_checkpoint: u64) {}
}

weir_guest::export!(TrivialTask);
