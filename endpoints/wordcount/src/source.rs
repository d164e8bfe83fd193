//! The source stage: it asks its JobMaster for input splits, reads each
//! split's lines (those whose first byte lies in the split: a line cut by
//! a split's end is read to its end, and skipped by the split after),
//! counts the words of each block it reads and sends the counts to the
//! counting tasks, each word to the one its hash picks. At a checkpoint
//! its state is the split it reads and where in it.

use std::io::{Read, Seek, SeekFrom};
use std::time::Duration;

use crate::exports::weir::flink::task::TaskInfo;
use crate::output::Output;
use crate::weir::flink::jobmaster_inputs_client::JobmasterInputsGateway;
use crate::weir::flink::types::InputSplit;
use crate::words::{self, Counts};
use crate::{Options, checkpoint};

/// How much a source reads at once, at least: its words are counted
/// together before they are sent, so a larger block sends fewer records.
const BLOCK: u64 = 256 << 10;

/// How many distinct words a source keeps from one block to the next, so
/// that counting them again allocates nothing (a language's common words
/// are far fewer), and no more, so that each block's handing over of its
/// counts (which looks at every word kept) stays short.
const KEEP_WORDS: usize = 1 << 16;

/// How often a held source looks whether it may read on (`--hold-while`).
const HOLD_CHECK: Duration = Duration::from_millis(10);

/// Where a source is: the split it reads and the offset of the next line.
#[derive(Default)]
struct Position {
    split: Option<(InputSplit, u64)>,
}

impl Position {
    fn encode(&self) -> Vec<u8> {
        match &self.split {
            Some((split, offset)) => {
                format!("{}\n{}\n{}\n{offset}", split.path, split.start, split.length).into_bytes()
            }
            None => Vec::new(),
        }
    }

    fn decode(bytes: &[u8]) -> Result<Self, String> {
        if bytes.is_empty() {
            return Ok(Self::default());
        }
        let text = std::str::from_utf8(bytes).map_err(|error| format!("a source state is not UTF-8: {error}"))?;
        let fields: Vec<&str> = text.split('\n').collect();
        let number = |index: usize| fields.get(index).and_then(|field| field.parse::<u64>().ok());
        match (fields.first(), number(1), number(2), number(3)) {
            (Some(path), Some(start), Some(length), Some(offset)) => {
                let split = InputSplit { path: (*path).to_owned(), start, length };
                Ok(Self { split: Some((split, offset)) })
            }
            _ => Err(format!("`{text}` is not a source state")),
        }
    }
}

fn read_at(path: &str, offset: u64, length: u64) -> Result<Vec<u8>, String> {
    let failed = |error: std::io::Error| format!("cannot read `{path}` at {offset}: {error}");
    let mut file = std::fs::File::open(path).map_err(failed)?;
    file.seek(SeekFrom::Start(offset)).map_err(failed)?;
    let mut bytes = Vec::with_capacity(length as usize);
    file.take(length).read_to_end(&mut bytes).map_err(failed)?;
    Ok(bytes)
}

/// Where the first line of `split` starts: its start if a line starts
/// there, else after the next newline.
fn first_line(split: &InputSplit) -> Result<u64, String> {
    if split.start == 0 {
        return Ok(0);
    }
    let mut at = split.start - 1;
    loop {
        let bytes = read_at(&split.path, at, BLOCK)?;
        match bytes.iter().position(|byte| *byte == b'\n') {
            Some(newline) => return Ok(at + newline as u64 + 1),
            None if (bytes.len() as u64) < BLOCK => return Ok(at + bytes.len() as u64),
            None => at += BLOCK,
        }
    }
}

/// Reads the next lines of `split` from `offset`: whole lines, those
/// starting before the split's end. Returns them and the next offset.
fn next_lines(split: &InputSplit, offset: u64) -> Result<(Vec<u8>, u64), String> {
    let end = split.start + split.length;
    let mut want = BLOCK;
    loop {
        let bytes = read_at(&split.path, offset, want)?;
        let eof = (bytes.len() as u64) < want;
        // The split's last line is the one holding byte `end - 1`.
        let last = usize::try_from(end.saturating_sub(offset + 1)).unwrap_or(usize::MAX);
        let cut = if last < bytes.len() {
            bytes[last..].iter().position(|byte| *byte == b'\n').map(|newline| last + newline + 1)
        } else {
            bytes.iter().rposition(|byte| *byte == b'\n').map(|newline| newline + 1)
        };
        match cut {
            Some(cut) => return Ok((bytes[..cut].to_vec(), offset + cut as u64)),
            None if eof => return Ok((bytes.clone(), offset + bytes.len() as u64)),
            // A line longer than what was read: read more.
            None => want *= 2,
        }
    }
}

/// The lines `block` holds (it ends at a line's end, or at the input's).
fn lines_in(block: &[u8]) -> u64 {
    let newlines = block.iter().filter(|byte| **byte == b'\n').count();
    (newlines + usize::from(block.last().is_some_and(|byte| *byte != b'\n'))) as u64
}

/// Runs a source subtask.
pub async fn run(info: &TaskInfo, options: &Options) -> Result<(), String> {
    let inputs = JobmasterInputsGateway::connect(info.job_master.clone(), Some(info.job_master_session))
        .await
        .map_err(|error| format!("cannot reach the JobMaster: {error}"))?;
    let mut output = Output::connect(info.subtask, &info.consumers).await?;
    // Lines read: the source's records, as Flink's text input counts them.
    let mut records = 0;
    // The counts of the block read last, kept from block to block.
    let mut counts = Counts::default();
    let mut position = match &info.restore {
        Some(state) => Position::decode(state)?,
        None => Position::default(),
    };
    loop {
        while let Some(id) = checkpoint::next_trigger() {
            checkpoint::acknowledge(info, id, position.encode()).await?;
            output.barrier(id).await?;
        }
        if options.held() {
            weir_guest::sleep(HOLD_CHECK).await;
            continue;
        }
        let (split, offset) = match position.split.take() {
            Some(reading) => reading,
            None => match inputs.request_next_input_split(info.attempt).await {
                Ok(Ok(Some(split))) => {
                    let offset = first_line(&split)?;
                    (split, offset)
                }
                Ok(Ok(None)) => break,
                Ok(Err(why)) => return Err(format!("the JobMaster gives no split: {why}")),
                Err(error) => return Err(format!("cannot reach the JobMaster: {error}")),
            },
        };
        let (lines, next) = next_lines(&split, offset)?;
        records += lines_in(&lines);
        // A tell: progress for the job's details, nothing waits for it.
        inputs.report_records_read(info.attempt, records).await;
        words::count_words(&lines, &mut counts);
        let consumers = output.consumers();
        counts.take_each(KEEP_WORDS, |word, count| {
            words::encode(output.buffer(words::partition(word, consumers)), word, count);
        });
        if next < split.start + split.length {
            position.split = Some((split, next));
        }
        output.flush_full().await?;
        if let Some(pause) = options.pause {
            weir_guest::sleep(pause).await;
        }
    }
    output.end().await
}
