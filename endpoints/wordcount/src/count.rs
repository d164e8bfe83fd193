//! The counting stage: each task counts the words its sources send it
//! (those whose hash picks it), keeps the counts as its state, and once
//! every source ended sends them all to the sink.

use crate::checkpoint;
use crate::exports::weir::flink::task::TaskInfo;
use crate::input::{Input, Next};
use crate::output::Output;
use crate::words::{self, Counts};

/// Adds up the counts a task's producers send it, from the state it
/// restores, until every producer ended. At each checkpoint it
/// acknowledges its counts, then calls `on_checkpoint`.
pub async fn gather(
    info: &TaskInfo,
    mut on_checkpoint: impl AsyncFnMut(u64) -> Result<(), String>,
) -> Result<Counts, String> {
    let mut input = Input::take(info.producers)?;
    let mut counts = Counts::default();
    if let Some(state) = &info.restore {
        words::decode_into(state, &mut counts)?;
    }
    loop {
        match input.next().await? {
            Next::Records(records) => words::decode_into(&records, &mut counts)?,
            Next::Checkpoint(id) => {
                checkpoint::acknowledge(info, id, words::encode_all(&counts)).await?;
                on_checkpoint(id).await?;
            }
            Next::End => return Ok(counts),
        }
    }
}

/// Runs a counting subtask.
pub async fn run(info: &TaskInfo) -> Result<(), String> {
    let mut output = Output::connect(info.subtask, &info.consumers).await?;
    let counts = gather(info, async |id| output.barrier(id).await).await?;
    let consumers = output.consumers();
    for (word, count) in counts.iter() {
        words::encode(output.buffer(words::partition(&word, consumers)), &word, count);
        output.flush_full().await?;
    }
    output.end().await
}
