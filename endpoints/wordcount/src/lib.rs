//! Word count, a job for weir's control plane (world
//! `weir:flink/task-endpoint`), as Flink's WordCount example: it counts
//! the words of `--input PATH` (a file, or a directory of text files) and
//! writes `--output PATH` once, at the end (with checkpoints, once the
//! final checkpoint completed: exactly once): one `word count` line per
//! distinct word, sorted by word. A word is a maximal run of alphanumeric
//! characters, lower-cased.
//!
//! Three stages: sources read input splits ([`source`]), counting tasks
//! keep counts by word ([`count`]), one sink writes the output
//! ([`sink`]). It runs streaming, with aligned checkpoints: each task's
//! state is where it reads or what it counted, so a job restarted from a
//! checkpoint counts every word exactly once. Its tasks see files only in
//! the directories their TaskExecutor lends them; the paths are those.
//! `--pause-ms N` makes each source pause after each block it reads (for
//! demonstrations and failover tests); `--hold-while PATH` makes each
//! source wait before it reads on while the file `PATH` exists, taking
//! checkpoints meanwhile (for tests that act on a job that runs until
//! they let it finish); `--fail-before-commit` makes a sink
//! that did not resume from a checkpoint fail where it would commit (for
//! tests of a restart from the final checkpoint).

weir_guest::generate!({
    world: "weir:flink/task-endpoint",
    path: ["../../wit/rpc", "../../wit/flink"],
});

mod checkpoint;
mod count;
mod counts;
mod input;
mod output;
mod sink;
mod source;
mod words;

use std::time::Duration;

use exports::weir::flink::task::{Guest, JobPlan, Stage, TaskInfo};
use exports::weir::flink::{task_checkpoints, task_input};
use input::Event;

/// What the job's arguments say.
pub struct Options {
    input: String,
    output: String,
    /// A source's pause after each block.
    pause: Option<Duration>,
    /// A file sources wait on while it exists, before each block.
    hold_while: Option<String>,
    /// Whether the sink fails instead of committing, when it did not
    /// resume from a checkpoint (tests of a restart from the final one).
    fail_before_commit: bool,
}

impl Options {
    fn parse(arguments: &[String]) -> Result<Self, String> {
        let (mut input, mut output, mut pause, mut hold_while, mut fail_before_commit) =
            (None, None, None, None, false);
        let mut arguments = arguments.iter();
        while let Some(flag) = arguments.next() {
            let mut value = || arguments.next().cloned().ok_or_else(|| format!("`{flag}` needs a value"));
            match flag.as_str() {
                "--input" => input = Some(value()?),
                "--output" => output = Some(value()?),
                "--pause-ms" => {
                    let text = value()?;
                    let milliseconds = text.parse().map_err(|_| format!("`--pause-ms {text}` is not a number"))?;
                    pause = Some(Duration::from_millis(milliseconds));
                }
                "--hold-while" => hold_while = Some(value()?),
                "--fail-before-commit" => fail_before_commit = true,
                other => {
                    return Err(format!(
                        "unknown argument `{other}`; word count takes --input, --output, --pause-ms, \
                         --hold-while, --fail-before-commit"
                    ));
                }
            }
        }
        let input = input.ok_or("word count needs `--input PATH`, a file or a directory of text files")?;
        let output = output.ok_or("word count needs `--output PATH`, where its counts go")?;
        Ok(Self { input, output, pause, hold_while, fail_before_commit })
    }

    /// Whether sources wait: the file `--hold-while` names exists.
    fn held(&self) -> bool {
        self.hold_while.as_ref().is_some_and(|path| std::path::Path::new(path).exists())
    }
}

struct WordCount;

impl weir_guest::Endpoint for WordCount {}

impl Guest for WordCount {
    fn plan(arguments: Vec<String>, parallelism: u32) -> Result<JobPlan, String> {
        let options = Options::parse(&arguments)?;
        let stage = |name: &str, parallelism| Stage { name: name.into(), parallelism };
        let stages = vec![stage("source", parallelism), stage("count", parallelism), stage("sink", 1)];
        Ok(JobPlan { stages, inputs: vec![options.input] })
    }

    async fn run(info: TaskInfo) -> Result<(), String> {
        let options = Options::parse(&info.arguments)?;
        match info.stage.as_str() {
            "source" => source::run(&info, &options).await,
            "count" => count::run(&info).await,
            "sink" => sink::run(&info, &options).await,
            other => Err(format!("word count has no stage `{other}`")),
        }
    }
}

impl task_input::Guest for WordCount {
    async fn push(producer: u32, batch: Vec<u8>) -> Result<(), String> {
        input::deliver(producer, Event::Records(batch)).await
    }

    async fn barrier(producer: u32, checkpoint: u64) -> Result<(), String> {
        input::deliver(producer, Event::Barrier(checkpoint)).await
    }

    async fn end_of_input(producer: u32) -> Result<(), String> {
        input::deliver(producer, Event::End).await
    }
}

impl task_checkpoints::Guest for WordCount {
    fn trigger_checkpoint(checkpoint: u64) {
        checkpoint::triggered(checkpoint);
    }

    /// The sink commits its output on the first checkpoint completed after
    /// its input ended.
    fn notify_checkpoint_complete(checkpoint: u64) {
        checkpoint::completed(checkpoint);
    }
}

weir_guest::export!(WordCount);
