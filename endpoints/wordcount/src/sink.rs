//! The sink: one task gathers every counting task's final counts and,
//! once all of them ended, writes the output file once: one `word count`
//! line per distinct word, sorted by word. With periodic checkpoints it
//! commits the output on a completed checkpoint (Flink's two-phase commit
//! sink): once its input ended it acknowledges its counts at the next
//! checkpoint, the final one, and writes only when that completed; a job
//! restarted from that checkpoint gathers nothing more and writes the same.
//! It writes to a file beside the output and renames it, so the output is
//! never seen half written.

use crate::exports::weir::flink::task::TaskInfo;
use crate::{Options, checkpoint, count, words};

/// Runs the sink, writing to `--output`.
pub async fn run(info: &TaskInfo, options: &Options) -> Result<(), String> {
    let output = &options.output;
    let counts = count::gather(info, async |_| Ok(())).await?;
    if info.checkpointing {
        let final_checkpoint = checkpoint::until_completed(info, &words::encode_all(&counts)).await?;
        if options.fail_before_commit && info.restore.is_none() {
            return Err(format!("asked to fail before committing on checkpoint {final_checkpoint}"));
        }
        weir_guest::info!("job {}: committing the output on checkpoint {final_checkpoint}", info.job);
    }
    let mut text = Vec::new();
    for (word, count) in counts.sorted() {
        words::encode(&mut text, &word, count);
    }
    let partial = format!("{output}.inprogress");
    let failed = |error: std::io::Error| format!("cannot write the output `{output}`: {error}");
    std::fs::write(&partial, &text).map_err(failed)?;
    std::fs::rename(&partial, output).map_err(failed)?;
    weir_guest::info!("wrote {} distinct words to {output}", counts.len());
    Ok(())
}
