//! The sink: one task gathers every counting task's final counts and,
//! once all of them ended, writes the output file once: one `word count`
//! line per distinct word, sorted by word. It writes to a file beside the
//! output and renames it, so the output is never seen half written, and a
//! job restarted after writing it writes the same again.

use crate::count;
use crate::exports::weir::flink::task::TaskInfo;
use crate::words;

/// Runs the sink, writing to `output`.
pub async fn run(info: &TaskInfo, output: &str) -> Result<(), String> {
    let counts = count::gather(info, async |_| Ok(())).await?;
    let mut sorted: Vec<(&String, &u64)> = counts.iter().collect();
    sorted.sort_unstable();
    let mut text = Vec::new();
    for (word, count) in sorted {
        words::encode(&mut text, word, *count);
    }
    let partial = format!("{output}.inprogress");
    let failed = |error: std::io::Error| format!("cannot write the output `{output}`: {error}");
    std::fs::write(&partial, &text).map_err(failed)?;
    std::fs::rename(&partial, output).map_err(failed)?;
    weir_guest::info!("wrote {} distinct words to {output}", counts.len());
    Ok(())
}
