//! The control plane's figures, beside Flink 2.3's MiniCluster measured on
//! this kind of machine: cluster start, submission of a trivial job (to
//! its acknowledgement, to all its tasks running, to its result), word
//! count's throughput, and the time from a lost TaskExecutor to all tasks
//! running again. Each on an embedded cluster of the control plane's
//! components (`weir cluster`'s).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use weir::FencingToken;

use super::{PLACEMENTS, Placement, Row};
use crate::Error;
use crate::cluster::embedded::{ControlPlane, EmbeddedCluster};
use crate::cluster::jobmanager::{self, JobManager, JobSpec, Milestone};
use crate::cluster::settings::{self, Settings};

/// Submissions of the trivial job per figure (Flink's figure is a p50 of
/// 20).
pub(super) const SUBMISSIONS: usize = 20;

/// Every task of the job's current run running.
const ALL_RUNNING: Milestone = Milestone { all_tasks_running: true, checkpoints: 0, restarts: 0 };

fn settings(keys: &[&str]) -> Result<Settings, Error> {
    let keys: Vec<String> = keys.iter().map(|key| (*key).to_owned()).collect();
    settings::read(None, &keys)
}

/// Waits until job `id` reaches `milestone`, for up to a minute, one long
/// poll at a time (`await-job`): the answer leaves as the JobMaster learns
/// of the change. Polling instead learned of it a poll later, and each
/// poll (an ask from the bench's thread to the Dispatcher and on to the
/// JobMaster) took the threads of the very endpoints whose work it timed:
/// all tasks running of the trivial job at p=4 was seen 0.25-0.4 ms after
/// the JobMaster knew (BENCHMARKS.md, eighth session on issue 11). A job
/// that ended first is an error unless it `finished` and `or_finished`.
async fn reached(
    job_manager: &JobManager,
    id: FencingToken,
    milestone: Milestone,
    or_finished: bool,
) -> Result<(), Error> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("job {id} did not get there within a minute").into());
        }
        let details = job_manager.await_job(id, milestone, left).await?;
        match details.status.as_str() {
            _ if milestone.reached_by(&details) => return Ok(()),
            "finished" if or_finished => return Ok(()),
            status if jobmanager::ended(status) => return Err(format!("job {id} ended {status} first").into()),
            _ => {}
        }
    }
}

/// Waits until the cluster is idle: no JobMaster, task or checked
/// component runs, and every slot is free. A warm cluster is one that is
/// up and has nothing to do: the previous job's teardown (its JobMaster
/// and tasks stopping, its slots freed) would otherwise share the two
/// cores with the submission measured.
async fn idle(cluster: &EmbeddedCluster) -> Result<(), Error> {
    let busy = ["jobmaster-", "task-", "check-"];
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let running = cluster.host().endpoints().iter().any(|e| busy.iter().any(|b| e.id.starts_with(b)));
        let allocated = cluster.task_managers().await?.iter().any(|tm| !tm.allocated.is_empty());
        if !running && !allocated {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Err("the cluster did not become idle within a minute".into())
}

pub(super) fn p50(mut samples: Vec<Duration>) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

pub(super) fn millis(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1e3)
}

/// The job components, built with the control plane's.
pub(super) fn job(components: &Path, name: &str) -> Result<Vec<u8>, Error> {
    let path = components.join(format!("{name}.wasm"));
    std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()).into())
}

pub async fn measure(components: &Path, only: &str, rows: &mut Vec<Row>) -> Result<(), Error> {
    let start_row = "cluster start (Dispatcher, ResourceManager, one TaskExecutor): compiling / cold, compiled \
                     components cached / warm";
    let trivial_rows = "trivial job";
    let wordcount_rows = "word count, streaming";
    let failover_row = "lost TaskExecutor to all tasks running again";
    if ![start_row, trivial_rows, wordcount_rows, failover_row].iter().any(|row| row.contains(only)) {
        return Ok(());
    }
    // A new process's start: a new engine, with an empty compile cache and
    // then with the one the first start filled.
    let cache = Scratch::new("compile-cache")?;
    let one = settings(&["taskmanager.numberOfTaskSlots=4"])?;
    let mut cold = Vec::new();
    for _ in 0..2 {
        let started = Instant::now();
        let control_plane = ControlPlane::load(components, Some(&cache.0), &Default::default())?;
        let cluster = EmbeddedCluster::start(&one, &control_plane, 4).await?;
        cold.push(started.elapsed());
        cluster.shutdown().await?;
    }
    let control_plane = ControlPlane::load(components, Some(&cache.0), &Default::default())?;
    let cluster = EmbeddedCluster::start(&one, &control_plane, 4).await?;
    if start_row.contains(only) {
        let mut warm = Vec::new();
        for _ in 0..5 {
            let started = Instant::now();
            let another = EmbeddedCluster::start(&one, &control_plane, 4).await?;
            warm.push(started.elapsed());
            another.shutdown().await?;
        }
        rows.push(Row {
            what: start_row.into(),
            weir: format!("{} / {} / {}", millis(cold[0]), millis(cold[1]), millis(p50(warm))),
            reference: "Flink 2.3 MiniCluster: cold 1.9 s / warm 0.76 s; target ≤ 0.1 s".into(),
        });
    }
    if trivial_rows.contains(only) {
        trivial(&cluster, components, rows).await?;
    }
    cluster.shutdown().await?;
    if wordcount_rows.contains(only) {
        wordcount(&control_plane, components, rows).await?;
    }
    if failover_row.contains(only) {
        failover(&control_plane, components, rows).await?;
    }
    Ok(())
}

/// What one submission of the trivial job took, from the client's side.
struct Submission {
    upload: Duration,
    acknowledged: Duration,
    running: Duration,
    ended: Duration,
}

/// Uploads and submits the trivial job `component` to `job_manager` and
/// times it, from its submission, to its acknowledgement, to all its tasks
/// running and to its result.
async fn submit_trivial(
    job_manager: Arc<JobManager>,
    component: Arc<Vec<u8>>,
    parallelism: u32,
) -> Result<Submission, Error> {
    let spec = JobSpec { name: "trivial", parallelism, arguments: &[], checkpoint_interval_ms: None };
    let id = FencingToken::random();
    let uploaded = Instant::now();
    let key = job_manager.upload(&component).await?;
    let upload = uploaded.elapsed();
    let submitted = Instant::now();
    job_manager.submit(id, &spec, key).await?;
    let acknowledged = submitted.elapsed();
    reached(&job_manager, id, ALL_RUNNING, true).await?;
    let running = submitted.elapsed();
    let outcome = job_manager.outcome(id).await?;
    let ended = submitted.elapsed();
    if outcome.status != "finished" {
        return Err(format!("the trivial job ended {}", outcome.status).into());
    }
    Ok(Submission { upload, acknowledged, running, ended })
}

/// A trivial job (one stage, each task waits a millisecond), 20 times at
/// parallelism 1 and 4, each submitted to an idle cluster, in turn by a
/// client on a thread of its own and by one on the cluster's threads. The
/// first waits for another thread to wake at the submission and again at
/// the answer (25-50 µs each on these machines: "What the figures mean");
/// the second is an application that embeds the cluster and runs its
/// client on the cluster's runtime, and shows the cluster's own latency.
async fn trivial(cluster: &EmbeddedCluster, components: &Path, rows: &mut Vec<Row>) -> Result<(), Error> {
    let trivial = Arc::new(job(components, "trivial_task")?);
    for parallelism in [1, 4] {
        let mut by_placement: [Vec<Submission>; PLACEMENTS.len()] = Default::default();
        for _ in 0..SUBMISSIONS {
            for (placement, submissions) in PLACEMENTS.into_iter().zip(&mut by_placement) {
                idle(cluster).await?;
                let submission = submit_trivial(cluster.job_manager(), trivial.clone(), parallelism);
                submissions.push(placement.run(cluster.host(), submission).await?);
            }
        }
        for (placement, submissions) in PLACEMENTS.into_iter().zip(by_placement) {
            let figure = |of: fn(&Submission) -> Duration| p50(submissions.iter().map(of).collect());
            let at =
                format!("trivial job, p={parallelism}, warm cluster, {}, p50 of {SUBMISSIONS}", placement.client());
            if let Placement::Across = placement {
                rows.push(Row {
                    what: format!("component upload (checked: started, serves `task`), {at}"),
                    weir: format!("{:.0} µs", figure(|s| s.upload).as_secs_f64() * 1e6),
                    reference: format!("{} KiB; Flink 2.3's jar upload is outside its figures", trivial.len() / 1024),
                });
            }
            rows.push(Row {
                what: format!("submission acknowledged, {at}"),
                weir: format!("{:.0} µs", figure(|s| s.acknowledged).as_secs_f64() * 1e6),
                reference: "Flink 2.3: 1.5-2 ms; target ≤ 0.2 ms".into(),
            });
            rows.push(Row {
                what: format!("submission to all tasks running, {at}"),
                weir: millis(figure(|s| s.running)),
                reference: "Flink 2.3: 9-11 ms; target ≤ 1 ms".into(),
            });
            rows.push(Row {
                what: format!("submission to result, {at}"),
                weir: millis(figure(|s| s.ended)),
                reference: "Flink 2.3: 87-112 ms; target ≤ 10 ms".into(),
            });
        }
    }
    Ok(())
}

/// Writes about `megabytes` of text into `directory`, in four files: words
/// of a vocabulary of 5,000, the common ones far more often.
fn write_text(directory: &Path, megabytes: usize) -> Result<u64, Error> {
    std::fs::create_dir_all(directory)?;
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let letters = b"etaoinshrdlucmfwypvbgkjqxz";
    let vocabulary: Vec<String> = (0..5000)
        .map(|_| (0..2 + next() % 7).map(|_| letters[(next() % 26 * (next() % 26) / 26) as usize] as char).collect())
        .collect();
    let mut total = 0;
    for file in 0..4 {
        let mut text = String::with_capacity(megabytes << 18);
        while text.len() < megabytes * 250_000 {
            for word in 0..8 + next() % 8 {
                let rank = ((next() % 5000) as f64 / 5000.0).powi(3) * 5000.0;
                if word > 0 {
                    text.push(' ');
                }
                text.push_str(&vocabulary[rank as usize]);
            }
            text.push_str(if next() % 10 < 3 { ".\n" } else { "\n" });
        }
        total += text.len() as u64;
        std::fs::write(directory.join(format!("part-{file}.txt")), text)?;
    }
    Ok(total)
}

/// A directory of its own under the system's temporary one, removed after.
pub(super) struct Scratch(pub(super) PathBuf);

impl Scratch {
    pub(super) fn new(name: &str) -> Result<Self, Error> {
        let path = std::env::temp_dir().join(format!("weir-bench-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&path)?;
        Ok(Self(path))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Word count over 100 MB at parallelism 1 and 4, without checkpoints and
/// with one a second: input bytes over the time from submission to result.
async fn wordcount(control_plane: &ControlPlane, components: &Path, rows: &mut Vec<Row>) -> Result<(), Error> {
    let scratch = Scratch::new("wordcount")?;
    let input = scratch.0.join("input");
    let bytes = write_text(&input, 100)?;
    let wordcount = job(components, "wordcount")?;
    let data = format!("cluster.data-dirs={}", scratch.0.display());
    for (parallelism, flink) in [(1, "21 / 18"), (4, "35 / 30")] {
        let slots = format!("taskmanager.numberOfTaskSlots={parallelism}");
        let mut rates = Vec::new();
        for checkpoints in [None, Some(1000)] {
            let cluster = EmbeddedCluster::start(&settings(&[&slots, &data])?, control_plane, parallelism).await?;
            let output = scratch.0.join("counts.txt").display().to_string();
            let arguments = ["--input".to_owned(), input.display().to_string(), "--output".to_owned(), output];
            let id = FencingToken::random();
            let submitted = Instant::now();
            let spec =
                JobSpec { name: "wordcount", parallelism, arguments: &arguments, checkpoint_interval_ms: checkpoints };
            cluster.upload_and_submit(id, &spec, &wordcount).await?;
            let outcome = cluster.outcome(id).await?;
            let took = submitted.elapsed();
            cluster.shutdown().await?;
            if outcome.status != "finished" {
                return Err(format!("word count ended {}: {:?}", outcome.status, outcome.failure).into());
            }
            rates.push(format!("{:.0}", bytes as f64 / 1e6 / took.as_secs_f64()));
        }
        rows.push(Row {
            what: format!("word count, streaming, p={parallelism}, 100 MB: no checkpoints / one a second (MB/s)"),
            weir: rates.join(" / "),
            reference: format!("Flink 2.3 MiniCluster: {flink} MB/s; target ≥ 2× Flink"),
        });
    }
    Ok(())
}

/// Word count on three TaskExecutors of one slot, parallelism 2: once a
/// checkpoint completed, the first TaskExecutor (which holds one of the
/// job's slots) stops; the time until the job runs all its tasks again on
/// the other two.
async fn failover(control_plane: &ControlPlane, components: &Path, rows: &mut Vec<Row>) -> Result<(), Error> {
    let scratch = Scratch::new("failover")?;
    let input = scratch.0.join("input");
    write_text(&input, 20)?;
    let wordcount = job(components, "wordcount")?;
    let data = format!("cluster.data-dirs={}", scratch.0.display());
    let keys = ["minicluster.number-of-taskmanagers=3", "taskmanager.numberOfTaskSlots=1", &data];
    let mut recoveries = Vec::new();
    for _ in 0..3 {
        let cluster = EmbeddedCluster::start(&settings(&keys)?, control_plane, 1).await?;
        let output = scratch.0.join("counts.txt").display().to_string();
        let arguments: Vec<String> = ["--input", &input.display().to_string(), "--output", &output, "--pause-ms", "20"]
            .map(str::to_owned)
            .into();
        let id = FencingToken::random();
        let spec =
            JobSpec { name: "wordcount", parallelism: 2, arguments: &arguments, checkpoint_interval_ms: Some(50) };
        cluster.upload_and_submit(id, &spec, &wordcount).await?;
        reached(&cluster, id, Milestone { checkpoints: 1, ..ALL_RUNNING }, false).await?;
        let lost = Instant::now();
        cluster.stop_task_executor(1).await?;
        reached(&cluster, id, Milestone { restarts: 1, ..ALL_RUNNING }, false).await?;
        recoveries.push(lost.elapsed());
        let outcome = cluster.outcome(id).await?;
        cluster.shutdown().await?;
        if outcome.status != "finished" {
            return Err(format!("word count ended {}: {:?}", outcome.status, outcome.failure).into());
        }
    }
    rows.push(Row {
        what: "lost TaskExecutor to all tasks running again (it stops: detected at once), word count p=2, p50 of 3"
            .into(),
        weir: millis(p50(recoveries)),
        reference: "Flink 2.3: 100-120 ms (exact result); target ≤ 50 ms after detection".into(),
    });
    Ok(())
}
