//! What `weir cluster` prints: the job's progress while it runs (one line,
//! redrawn on a terminal, else one line a second), its result, and how
//! long each phase took.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use super::jobmanager::{Details, Outcome};

/// A duration as people read it.
pub fn duration(duration: Duration) -> String {
    if duration < Duration::from_millis(10) {
        format!("{:.2} ms", duration.as_secs_f64() * 1e3)
    } else if duration < Duration::from_secs(10) {
        format!("{:.0} ms", duration.as_secs_f64() * 1e3)
    } else {
        format!("{:.1} s", duration.as_secs_f64())
    }
}

fn megabytes(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

/// A count as people read it: `950`, `12.3 k`, `4.56 M`.
fn count(n: f64) -> String {
    match n {
        n if n >= 1e6 => format!("{:.2} M", n / 1e6),
        n if n >= 1e3 => format!("{:.1} k", n / 1e3),
        n => format!("{n:.0}"),
    }
}

/// The progress line.
pub struct Progress {
    terminal: bool,
    /// When the last line was shown, and the records read by then.
    last: Option<(Instant, u64)>,
    shown: bool,
}

impl Progress {
    pub fn new() -> Self {
        Self { terminal: std::io::stdout().is_terminal(), last: None, shown: false }
    }

    /// Shows where the job is: its tasks, its input read, its records per
    /// second since the last line, its checkpoints and restarts.
    pub fn show(&mut self, details: &Details, elapsed: Duration) {
        let due = self.last.is_none_or(|(last, _)| last.elapsed() >= Duration::from_secs(1));
        if !self.terminal && !due {
            return;
        }
        let (since, before) = self.last.map_or((elapsed, 0), |(last, records)| (last.elapsed(), records));
        let records_per_second = details.records_read.saturating_sub(before) as f64 / since.as_secs_f64().max(1e-3);
        self.last = Some((Instant::now(), details.records_read));
        let line = format!(
            "{:>8}  {:<12} tasks {}/{}  input {:.1}/{:.1} MB  records {} ({}/s)  checkpoints {}  restarts {}",
            duration(elapsed),
            details.status,
            details.running,
            details.tasks,
            megabytes(details.input_assigned),
            megabytes(details.input_bytes),
            count(details.records_read as f64),
            count(records_per_second),
            details.checkpoints,
            details.restarts,
        );
        if self.terminal {
            print!("\r{line}\x1b[K");
            let _ = std::io::stdout().flush();
        } else {
            println!("{line}");
        }
        self.shown = true;
    }

    pub fn finish(&mut self) {
        if self.terminal && self.shown {
            println!();
        }
    }
}

/// How long each phase took.
#[derive(Default)]
pub struct Phases(Vec<(&'static str, Duration)>);

impl Phases {
    pub fn add(&mut self, phase: &'static str, took: Duration) {
        self.0.push((phase, took));
    }

    pub fn print(&self) {
        println!("\nphases:");
        for (phase, took) in &self.0 {
            println!("  {phase:<22} {}", duration(*took));
        }
    }
}

/// Prints the job's end and, for a job that wrote `word count` lines to
/// its `--output`, what it counted.
pub fn result(outcome: &Outcome, arguments: &[String]) {
    println!(
        "\njob {}: {} checkpoint(s), {} restart(s){}",
        outcome.status,
        outcome.checkpoints,
        outcome.restarts,
        outcome.failure.as_deref().map_or(String::new(), |why| format!("\n  cause: {why}"))
    );
    let output = arguments.windows(2).find(|pair| pair[0] == "--output").map(|pair| pair[1].clone());
    let Some(counts) = output.and_then(|path| word_counts(&path)) else { return };
    let total: u64 = counts.iter().map(|(_, count)| count).sum();
    println!("{total} words, {} distinct; the top ten:", counts.len());
    let mut top: Vec<&(String, u64)> = counts.iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    for (word, count) in top.into_iter().take(10) {
        println!("  {count:>10}  {word}");
    }
}

/// The `word count` lines of the file at `path`, if that is what it holds.
fn word_counts(path: &str) -> Option<Vec<(String, u64)>> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .map(|line| {
            let (word, count) = line.rsplit_once(' ')?;
            Some((word.to_owned(), count.parse().ok()?))
        })
        .collect()
}
