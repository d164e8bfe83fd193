//! Word count (`endpoints/wordcount`) on the whole control plane: sources
//! read input splits, counting tasks on other TaskExecutors count by
//! word, a sink writes the output once; checkpoints periodic and on
//! request; and a TaskExecutor whose host dies mid-job, after a completed
//! checkpoint, costs nothing: the output is compared, all of it, with
//! counts this test makes itself from the same files.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use wasmtime::component::Val;
use weir::{FencingToken, HaConfig, Handover, HostConfig, SwapError, SwapOptions};
use weir_tests::{artifacts, capture_logs, config, eventually, logs};

use super::cluster::{Cluster, Job};
use super::{cluster_host, free_port};

/// A directory of its own for one test's input and output, removed with it.
pub struct Data {
    root: tempfile::TempDir,
}

impl Data {
    pub fn new(name: &str) -> Self {
        let root = weir_tests::temp_dir(&format!("wordcount-{name}"));
        std::fs::create_dir_all(root.path().join("input")).unwrap();
        Self { root }
    }

    pub fn root(&self) -> &Path {
        self.root.path()
    }

    pub fn input(&self) -> PathBuf {
        self.root().join("input")
    }

    pub fn output(&self) -> PathBuf {
        self.root().join("counts.txt")
    }
}

/// Writes `files` text files of about `bytes` each into `directory`:
/// words of mixed case, digits, a few non-ASCII letters, punctuation,
/// lines of every length. Deterministic.
pub fn write_input(directory: &Path, files: usize, bytes: usize) {
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    // Odd files are all ASCII, even ones not (word count reads each kind
    // its own way); some words are longer than 16 bytes (word count keeps
    // shorter ones another way).
    let ascii = ["fl", "ink", "we", "ir", "ta", "sk", "ma", "ster", "Ch", "42", "x9", "Checkpointing"];
    let unicode =
        ["fl", "ink", "we", "ir", "ta", "sk", "ma", "ster", "Ch", "ÉCO", "straße", "ünd", "42", "x9", "Checkpointing"];
    let separators = [" ", " ", " ", ", ", ". ", " - ", "!\n", "\n", "\t", "'"];
    for file in 0..files {
        let syllables: &[&str] = if file % 2 == 1 { &ascii } else { &unicode };
        let mut text = String::new();
        while text.len() < bytes {
            let mut word = String::new();
            for _ in 0..1 + next() % 3 {
                word += syllables[(next() % syllables.len() as u64) as usize];
            }
            if next() % 7 == 0 {
                word = word.to_uppercase();
            }
            text += &word;
            text += separators[(next() % separators.len() as u64) as usize];
        }
        std::fs::write(directory.join(format!("part-{file}.txt")), text).unwrap();
    }
}

/// The word counts of the files of `directory`, counted here: words are
/// maximal runs of alphanumeric characters, lower-cased.
fn expected_counts(directory: &Path) -> BTreeMap<String, u64> {
    let mut counts = HashMap::<String, u64>::new();
    for entry in std::fs::read_dir(directory).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for word in text.split(|c: char| !c.is_alphanumeric()).filter(|word| !word.is_empty()) {
            *counts.entry(word.to_lowercase()).or_default() += 1;
        }
    }
    counts.into_iter().collect()
}

/// The output as word count must write it: `word count` lines, sorted.
pub fn expected_output(directory: &Path) -> String {
    expected_counts(directory).into_iter().map(|(word, count)| format!("{word} {count}\n")).collect()
}

fn wordcount() -> Vec<u8> {
    std::fs::read(artifacts::WORDCOUNT).unwrap()
}

/// A cluster on one host with two TaskExecutors, lent `data`.
async fn two_task_executors(data: &Data, name: &str) -> Cluster {
    let cluster = Cluster::on(cluster_host(config(), HaConfig::Embedded), name, Some(data.root()));
    cluster.add_task_executors(&cluster.host, name, 2).await;
    cluster
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn word_count_counts_every_word_exactly_once_with_checkpoints() {
    capture_logs();
    let data = Data::new("checkpoints");
    write_input(&data.input(), 4, 300_000);
    let cluster = two_task_executors(&data, "wordcount").await;
    let (input, output) = (data.input().display().to_string(), data.output().display().to_string());
    let component = wordcount();
    let arguments = ["--input", &input, "--output", &output, "--pause-ms", "50"];
    let job = Job { arguments: &arguments, checkpoint_interval_ms: Some(50), ..Job::new("wordcount", 2, &component) };
    assert_eq!(cluster.submit(&job).await, Some(Val::Result(Ok(None))));

    // A checkpoint on request, besides the periodic ones.
    let id = job.id;
    let requested = eventually("a checkpoint on request", || async {
        match cluster.ask_checkpoint(id).await {
            Ok(checkpoint) => Some(checkpoint),
            // Not yet running, or a periodic one in progress: ask again.
            Err(why)
                if ["initializing", "in progress", "not all", "not running"].iter().any(|busy| why.contains(busy)) =>
            {
                None
            }
            Err(why) => panic!("the checkpoint failed: {why}"),
        }
    })
    .await;
    assert!(requested >= 1);

    // Its sources report the lines they read, for the job's details.
    let lines: usize = std::fs::read_dir(data.input())
        .unwrap()
        .map(|file| std::fs::read_to_string(file.unwrap().path()).unwrap().lines().count())
        .sum();
    let read = eventually("records read in the job's details", || async {
        let Some(Val::Result(Ok(Some(details)))) = cluster.ask("request-job", id).await else { return None };
        let Val::Record(fields) = *details else { return None };
        match fields.iter().find(|(name, _)| name == "records-read") {
            Some((_, Val::U64(read))) if *read > 0 => Some(*read),
            _ => None,
        }
    })
    .await;
    assert!(read <= lines as u64, "{read} records read of {lines} lines");

    let result = cluster.result(id).await;
    assert_eq!((result.status.as_str(), result.restarts), ("finished", 0), "{result:?}");
    assert!(result.checkpoints >= 1, "{result:?}");
    assert_eq!(std::fs::read_to_string(&output).unwrap(), expected_output(&data.input()));

    // The output was committed on the final checkpoint, the last one
    // retained in the checkpoint store: taken once sources and counters
    // had finished, it holds the sink's state alone, every count.
    let store = cluster.blobs().join(format!("checkpoints/job-{id}"));
    let kept: Vec<_> = std::fs::read_dir(&store).unwrap().map(|entry| entry.unwrap().path()).collect();
    assert_eq!(kept.len(), 1, "one checkpoint retained: {kept:?}");
    let mut files: Vec<String> =
        std::fs::read_dir(&kept[0]).unwrap().map(|entry| entry.unwrap().file_name().into_string().unwrap()).collect();
    files.sort();
    assert_eq!(files, ["2-0.state", "_metadata"]);
    let sink_state = std::fs::read_to_string(kept[0].join("2-0.state")).unwrap();
    let mut held: Vec<&str> = sink_state.lines().collect();
    held.sort_unstable();
    let expected = expected_output(&data.input());
    assert_eq!(held, expected.lines().collect::<Vec<_>>(), "the final checkpoint holds every count");
    let final_checkpoint = kept[0].file_name().unwrap().to_str().unwrap().trim_start_matches("chk-").to_owned();
    assert!(
        logs().contains(&format!("job {id}: committing the output on checkpoint {final_checkpoint}")),
        "the sink committed on checkpoint {final_checkpoint}"
    );
    cluster.close().await;
}

/// The sink fails after the final checkpoint completed, before it commits:
/// the job restarts from that checkpoint, in which sources and counters
/// had finished, reads nothing again and commits the same counts, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_restarted_from_its_final_checkpoint_commits_the_same_counts_once() {
    capture_logs();
    let data = Data::new("final");
    write_input(&data.input(), 2, 100_000);
    let cluster = two_task_executors(&data, "final").await;
    let (input, output) = (data.input().display().to_string(), data.output().display().to_string());
    let component = wordcount();
    let arguments = ["--input", &input, "--output", &output, "--fail-before-commit"];
    let job = Job { arguments: &arguments, checkpoint_interval_ms: Some(60_000), ..Job::new("final", 2, &component) };
    assert_eq!(cluster.submit(&job).await, Some(Val::Result(Ok(None))));

    let result = cluster.result(job.id).await;
    assert_eq!((result.status.as_str(), result.restarts), ("finished", 1), "{result:?}");
    assert_eq!(std::fs::read_to_string(&output).unwrap(), expected_output(&data.input()));
    let logs = logs();
    let committed = format!("job {}: committing the output on checkpoint", job.id);
    assert_eq!(logs.matches(&committed).count(), 1, "committed once");
    // The final checkpoint is the first that every task acknowledged: one
    // aborted by a task finishing first takes a number of its own.
    let failed =
        logs.split("asked to fail before committing on checkpoint ").nth(1).expect("the first run failed there");
    let checkpoint: String = failed.chars().take_while(char::is_ascii_digit).collect();
    assert!(
        logs.contains(&format!("completed checkpoint {checkpoint} of job {}", job.id)),
        "the first run failed after its final checkpoint {checkpoint} completed"
    );
    cluster.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_executor_lost_mid_job_costs_nothing_the_counts_stay_exact() {
    capture_logs();
    let data = Data::new("failover");
    write_input(&data.input(), 4, 400_000);
    let job_id = FencingToken::random();
    let port = free_port();
    let leader = |id: &str| format!("weir://127.0.0.1:{port}/{id}");
    let leaders = BTreeMap::from([
        ("resource-manager".to_owned(), leader("resourcemanager")),
        ("dispatcher".to_owned(), leader("dispatcher")),
        (format!("job-{job_id}"), leader(&format!("jobmaster-{job_id}"))),
    ]);
    let ha = HaConfig::Standalone { leaders };
    let listen = |port: u16| HostConfig { listen: Some(format!("127.0.0.1:{port}")), ..config() };
    let cluster = Cluster::on(cluster_host(listen(port), ha.clone()), "failover", Some(data.root()));
    cluster.add_task_executors(&cluster.host, "here", 1).await;
    // The other TaskExecutor runs on a host of its own, which dies
    // mid-job without stopping anything.
    let doomed = cluster_host(listen(0), ha);
    let there = cluster.add_task_executors(&doomed, "there", 1).await;
    let there = there[0].address().to_owned();

    let (input, output) = (data.input().display().to_string(), data.output().display().to_string());
    let component = wordcount();
    let arguments = ["--input", &input, "--output", &output, "--pause-ms", "150"];
    let job = Job {
        id: job_id,
        arguments: &arguments,
        checkpoint_interval_ms: Some(50),
        ..Job::new("wordcount", 2, &component)
    };
    assert_eq!(cluster.submit(&job).await, Some(Val::Result(Ok(None))));
    let completed = format!("completed checkpoint 1 of job {job_id}");
    eventually("a completed checkpoint", || async { logs().contains(&completed).then_some(()) }).await;
    // Half the job runs there.
    assert!(logs().contains(&format!("took 1 slot(s) of TaskExecutor {there}")));

    drop(doomed);
    // A new TaskExecutor takes the lost one's place.
    cluster.add_task_executors(&cluster.host, "spare", 1).await;
    let result = cluster.result(job_id).await;
    assert_eq!(result.status, "finished", "{result:?}");
    assert!(result.restarts >= 1, "the job restarted: {result:?}");
    assert_eq!(std::fs::read_to_string(&output).unwrap(), expected_output(&data.input()));
    cluster.close().await;
}

/// The ResourceManager's component is swapped while word count runs, and
/// then the JobMaster's: the new ResourceManager takes over its
/// TaskExecutors (with their slots) and the job's JobMaster, the new
/// JobMaster the running job (its tasks, checkpoints, input splits and
/// TaskExecutors); no TaskExecutor is lost, the job never restarts, and
/// the counts are exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_resource_manager_and_the_job_master_swapped_mid_job_disturb_nothing() {
    capture_logs();
    let data = Data::new("swap-rm");
    write_input(&data.input(), 4, 300_000);
    let cluster = two_task_executors(&data, "swap-rm").await;
    let (input, output) = (data.input().display().to_string(), data.output().display().to_string());
    // The sources read nothing while this file exists: the job runs until
    // the swaps are done.
    let hold = data.root().join("hold");
    std::fs::write(&hold, b"").unwrap();
    let hold_while = hold.display().to_string();
    let component = wordcount();
    let arguments = ["--input", &input, "--output", &output, "--pause-ms", "20", "--hold-while", &hold_while];
    let job = Job { arguments: &arguments, checkpoint_interval_ms: Some(50), ..Job::new("swap-rm", 2, &component) };
    assert_eq!(cluster.submit(&job).await, Some(Val::Result(Ok(None))));
    let checkpoints = || {
        logs()
            .lines()
            .filter(|line| line.contains(&format!("of job {}", job.id)) && line.contains("completed checkpoint"))
            .count()
    };
    eventually("the job running and checkpointing", || async { (checkpoints() > 0).then_some(()) }).await;
    let before = super::slots(&cluster.resource_manager).await;
    assert_eq!(before.values().flatten().flatten().count(), 2, "the job holds two slots: {before:?}");

    // The spreading implementation, through the leadership runner: a later
    // leader session starts it too.
    let spread = weir_tests::component(artifacts::RESOURCEMANAGER_SPREAD);
    let report = cluster.resource_manager.swap(&spread, SwapOptions::default()).await.unwrap();
    assert!(matches!(report.handover, Handover::Carried { version: 1, .. }), "{report:?}");
    assert!(cluster.resource_manager.component().info().name.ends_with("resourcemanager_spread.wasm"));
    assert!(cluster.resource_manager.leader().unwrap().component().name.ends_with("resourcemanager_spread.wasm"));
    assert!(logs().contains("taking over 2 TaskExecutor(s) and 1 JobMaster(s)"));
    eventually("the TaskExecutors and their slots taken over", || async {
        (super::slots(&cluster.resource_manager).await == before).then_some(())
    })
    .await;

    // The JobMaster, twice while the job runs: each new instance takes the
    // job over and goes on checkpointing.
    let job_master = cluster.host.endpoint(&format!("jobmaster-{}", job.id)).unwrap();
    let jobmaster_component = weir_tests::component(artifacts::JOBMASTER);
    for swap in 1..=2 {
        let before = checkpoints();
        let report = job_master.swap(&jobmaster_component, SwapOptions::default()).await.unwrap();
        assert!(matches!(report.handover, Handover::Carried { version: 1, .. }), "swap {swap}: {report:?}");
        let taken = format!("taking over job {} (running) with 2 TaskExecutor(s)", job.id);
        assert_eq!(logs().matches(&taken).count(), swap);
        eventually("a checkpoint completed by the new JobMaster", || async { (checkpoints() > before).then_some(()) })
            .await;
    }

    // A TaskExecutor running the job's tasks and the Dispatcher that knows
    // the job refuse: neither hands those over yet.
    let task_executor = before.keys().next().unwrap().rsplit('/').next().unwrap().to_owned();
    let component = weir_tests::component(artifacts::TASKEXECUTOR);
    let refused = cluster.host.swap(&task_executor, &component, SwapOptions::default()).await.unwrap_err();
    assert!(refused.to_string().contains("slots are allocated, which a TaskExecutor cannot hand over"), "{refused}");
    let component = weir_tests::component(artifacts::DISPATCHER);
    let refused = cluster.host.swap("dispatcher", &component, SwapOptions::default()).await.unwrap_err();
    assert!(matches!(&refused, SwapError::SnapshotRefused { reason, .. } if reason.contains("knows 1 job(s)")));

    std::fs::remove_file(&hold).unwrap();
    let result = cluster.result(job.id).await;
    assert_eq!((result.status.as_str(), result.restarts), ("finished", 0), "{result:?}");
    assert_eq!(std::fs::read_to_string(&output).unwrap(), expected_output(&data.input()));
    for task_executor in before.keys() {
        let lost = format!("closed the connection to TaskExecutor {task_executor}:");
        assert!(!logs().contains(&lost), "{task_executor} was not lost");
    }
    cluster.close().await;
}
