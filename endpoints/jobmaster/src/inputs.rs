//! Input splits (`jobmaster-inputs`, Flink's `InputSplitAssigner`): the
//! files the job's first stage reads (a file, or the files of a
//! directory, as the JobMaster sees them in a directory it is lent) cut
//! into byte ranges, handed out in order to whichever source task asks
//! next. What each source subtask was handed before it acknowledged a
//! checkpoint belongs to that checkpoint ([`taken_by`]); a restart hands
//! out the rest again. Sources report how many records they read
//! ([`records_read`]).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::rc::Rc;

use serde::{Deserialize, Serialize};

use crate::checkpoints::Completed;
use crate::exports::weir::flink::jobmaster_inputs::Guest;
use crate::weir::flink::types::InputSplit;
use crate::{JobMaster, plan, tasks};
use weir_guest::{Uuid, UuidPair};

/// The smallest split, and the largest (setting `split-size` overrides
/// both); in between, each source subtask gets about four.
const SMALLEST: u64 = 64 << 10;
const LARGEST: u64 = 4 << 20;

#[derive(Default)]
struct Assigner {
    /// Every split of the job's input, once listed.
    all: Option<Rc<[InputSplit]>>,
    /// Those not handed out, by index into `all`.
    pool: VecDeque<usize>,
    /// Taken by the checkpoint this run resumed from.
    restored: BTreeSet<usize>,
    /// Handed out in this run, by source subtask.
    handed: BTreeMap<u32, Vec<usize>>,
    /// Records read, as each source task attempt last reported them.
    records_read: BTreeMap<UuidPair, u64>,
}

impl Assigner {
    /// Puts every listed split the restored checkpoint did not take back in
    /// the pool, in order.
    fn refill(&mut self) {
        let count = self.all.as_ref().map_or(0, |all| all.len());
        self.pool = (0..count).filter(|index| !self.restored.contains(index)).collect();
    }
}

thread_local! {
    static ASSIGNER: RefCell<Assigner> = RefCell::default();
}

/// The assigner's state, as a JobMaster hands it over: each split as its
/// file, start and length.
#[derive(Serialize, Deserialize)]
pub struct Handed {
    all: Option<Vec<(String, u64, u64)>>,
    pool: VecDeque<usize>,
    restored: BTreeSet<usize>,
    handed: BTreeMap<u32, Vec<usize>>,
    records_read: BTreeMap<UuidPair, u64>,
}

pub fn hand_over() -> Handed {
    ASSIGNER.with(|assigner| {
        let assigner = assigner.borrow();
        let split = |split: &InputSplit| (split.path.clone(), split.start, split.length);
        Handed {
            all: assigner.all.as_ref().map(|all| all.iter().map(split).collect()),
            pool: assigner.pool.clone(),
            restored: assigner.restored.clone(),
            handed: assigner.handed.clone(),
            records_read: assigner.records_read.clone(),
        }
    })
}

pub fn take_up(handed: Handed) {
    let split = |(path, start, length)| InputSplit { path, start, length };
    let assigner = Assigner {
        all: handed.all.map(|all| all.into_iter().map(split).collect()),
        pool: handed.pool,
        restored: handed.restored,
        handed: handed.handed,
        records_read: handed.records_read,
    };
    ASSIGNER.with(|slot| *slot.borrow_mut() = assigner);
}

/// The files of `path`: itself, or the files of the directory, by name.
fn files_of(path: &str) -> Result<Vec<(String, u64)>, String> {
    let metadata = std::fs::metadata(path).map_err(|error| format!("cannot read input `{path}`: {error}"))?;
    if metadata.is_file() {
        return Ok(vec![(path.to_owned(), metadata.len())]);
    }
    let mut files = Vec::new();
    let entries = std::fs::read_dir(path).map_err(|error| format!("cannot list input `{path}`: {error}"))?;
    for entry in entries {
        let entry = entry.map_err(|error| format!("cannot list input `{path}`: {error}"))?;
        let metadata = entry.metadata().map_err(|error| format!("cannot read `{:?}`: {error}", entry.path()))?;
        if metadata.is_file() {
            files.push((
                format!("{}/{}", path.trim_end_matches('/'), entry.file_name().to_string_lossy()),
                metadata.len(),
            ));
        }
    }
    files.sort();
    Ok(files)
}

/// Cuts the job's inputs into splits.
fn list() -> Result<Rc<[InputSplit]>, String> {
    let mut files = Vec::new();
    for input in plan::lines("inputs") {
        files.extend(files_of(&input)?);
    }
    let total: u64 = files.iter().map(|(_, length)| length).sum();
    let sources = u64::from(plan::stages().first().map_or(1, |stage| stage.parallelism));
    let size = match weir_guest::config("split-size").and_then(|size| size.parse::<u64>().ok()) {
        Some(size) => size.max(1),
        None => (total / (sources * 4)).clamp(SMALLEST, LARGEST),
    };
    let mut splits = Vec::new();
    for (path, length) in files {
        let mut start = 0;
        while start < length {
            let piece = size.min(length - start);
            splits.push(InputSplit { path: path.clone(), start, length: piece });
            start += piece;
        }
    }
    weir_guest::info!("the job's input is {total} bytes in {} split(s) of up to {size} bytes", splits.len());
    Ok(splits.into())
}

/// Starts a run: every split not taken by `restored` (the checkpoint the
/// run resumes from) is handed out again.
pub fn reset(restored: Option<&Completed>) {
    ASSIGNER.with(|assigner| {
        let mut assigner = assigner.borrow_mut();
        assigner.restored = restored.map(|checkpoint| checkpoint.splits.clone()).unwrap_or_default();
        assigner.refill();
        assigner.handed.clear();
    });
}

/// The splits a checkpoint takes when source subtask `subtask`
/// acknowledges it: those the run resumed without and those handed to it.
pub fn taken_by(subtask: u32) -> BTreeSet<usize> {
    ASSIGNER.with(|assigner| {
        let assigner = assigner.borrow();
        let mut taken = assigner.restored.clone();
        taken.extend(assigner.handed.get(&subtask).into_iter().flatten().copied());
        taken
    })
}

/// The input's bytes, and those handed out so far (or taken by the
/// checkpoint the run resumed from); zero before the first split request.
pub fn progress() -> (u64, u64) {
    ASSIGNER.with(|assigner| {
        let assigner = assigner.borrow();
        let Some(all) = &assigner.all else { return (0, 0) };
        let total = all.iter().map(|split| split.length).sum();
        let waiting: u64 = assigner.pool.iter().map(|index| all[*index].length).sum();
        (total, total - waiting)
    })
}

/// Records the job's sources read, over every attempt.
pub fn records_read() -> u64 {
    ASSIGNER.with(|assigner| assigner.borrow().records_read.values().sum())
}

/// The next split for source subtask `subtask`, listing the input first.
fn next(subtask: u32) -> Result<Option<InputSplit>, String> {
    let listed = ASSIGNER.with(|assigner| assigner.borrow().all.is_some());
    if !listed {
        let all = list()?;
        ASSIGNER.with(|assigner| {
            let mut assigner = assigner.borrow_mut();
            assigner.all = Some(all);
            assigner.refill();
        });
    }
    Ok(ASSIGNER.with(|assigner| {
        let mut assigner = assigner.borrow_mut();
        let index = assigner.pool.pop_front()?;
        assigner.handed.entry(subtask).or_default().push(index);
        assigner.all.as_ref().map(|all| all[index].clone())
    }))
}

impl Guest for JobMaster {
    async fn request_next_input_split(attempt: Uuid) -> Result<Option<InputSplit>, String> {
        match tasks::position(attempt) {
            Some((0, subtask)) => next(subtask),
            Some(_) => Err(format!("task {attempt} is not a source: only the first stage reads input splits")),
            None => Err(format!("task {attempt} does not run in this job")),
        }
    }

    fn report_records_read(attempt: Uuid, records: u64) {
        if tasks::position(attempt).is_some() {
            ASSIGNER.with(|assigner| assigner.borrow_mut().records_read.insert(attempt.pair(), records));
        }
    }
}
