//! A trivial job's task component (world `weir:flink/task-endpoint`): each
//! subtask waits a moment and finishes, or, as its arguments say, fails
//! (`--fail`), traps (`--trap`) or runs until it is canceled (`--forever`).
//! For tests and the submission benchmark.

weir_guest::generate!({
    world: "weir:flink/task-endpoint",
    path: ["../../wit/rpc", "../../wit/flink"],
});

use std::time::Duration;

use exports::weir::flink::task::{Guest, TaskInfo};

struct TrivialTask;

impl weir_guest::Endpoint for TrivialTask {}

impl Guest for TrivialTask {
    async fn run(info: TaskInfo) -> Result<(), String> {
        let asked = |flag: &str| info.arguments.iter().any(|argument| argument == flag);
        weir_guest::info!("subtask {} of {} of job {} runs", info.subtask, info.parallelism, info.job);
        weir_guest::sleep(Duration::from_millis(1)).await;
        if asked("--trap") {
            panic!("deliberate trap in subtask {}", info.subtask);
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

weir_guest::export!(TrivialTask);
