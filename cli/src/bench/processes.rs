//! A cluster of processes and Flink's REST API: `weir jobmanager` and
//! `weir taskmanager` (four slots), Flink's standalone mode (one
//! jobmanager at a fixed port), warm; a trivial job submitted through
//! `POST /jobs` and followed through `GET /jobs/{jobid}` to all its tasks
//! running and to its end, 20 times at parallelism 1 and 4, as a Flink
//! user's script would. Then a taskmanager lost: the one running a job is
//! SIGKILLed, and the job runs again on a spare one.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use super::Row;
use super::cluster::{SUBMISSIONS, Scratch, job, millis, p50};
use crate::Error;
use crate::client::{Client, details, multipart};
use crate::cluster::jobmanager::{self, Details};
use crate::cluster::settings::RestSecurity;

/// A role's process, killed when dropped. It holds the role's standard
/// input, so that the role ends with this process even if it is killed.
struct Role(Child);

impl Drop for Role {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `weir <arguments>` until it prints a line starting with `prefix`;
/// the rest of that line.
fn start(arguments: &[&str], prefix: &str) -> Result<(Role, String), Error> {
    let mut child = Command::new(std::env::current_exe()?)
        .args(arguments)
        .arg("--until-stdin-closes")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let mut lines = BufReader::new(child.stdout.take().ok_or("no standard output")?).lines();
    let role = Role(child);
    let said = lines.by_ref().map_while(Result::ok).find_map(|line| line.strip_prefix(prefix).map(str::to_owned));
    let said = said.ok_or_else(|| format!("`weir {}` never said `{prefix}`", arguments.join(" ")))?;
    std::thread::spawn(move || lines.for_each(drop));
    Ok((role, said))
}

/// What the rows say, for `--only`.
const ROWS: &str = "REST submission, trivial job, cluster of two processes, taskmanager SIGKILLed";

/// Heartbeats as the cluster runs them here: a dead taskmanager's
/// heartbeat request fails at the next interval and loses it at once.
const HEARTBEATS: [&str; 6] =
    ["-D", "heartbeat.interval=200 ms", "-D", "heartbeat.rpc-failure-threshold=1", "-D", "heartbeat.timeout=5 s"];

/// Taskmanagers lost, one after the other, for the loss row.
const LOSSES: usize = 5;

/// What the failover row says, for `--only`.
const FAILOVER_ROW: &str = "jobmanager SIGKILLed";

/// Leading jobmanagers killed, one after the other, for the failover row.
const FAILOVERS: usize = 3;

/// How long roles may take to start, register or place a job.
const SETTLING: Duration = Duration::from_secs(30);
/// How long a job may take to run (again).
const RUNNING_AGAIN: Duration = Duration::from_secs(60);
/// Between polls of a condition that is not measured.
const PAUSE: Duration = Duration::from_millis(5);

pub async fn measure(components: &Path, only: &str, zookeeper: Option<&str>, rows: &mut Vec<Row>) -> Result<(), Error> {
    if ROWS.contains(only) {
        let components = components.to_owned();
        rows.extend(tokio::task::spawn_blocking(move || figures(&components)).await??);
    }
    if let Some(zookeeper) = zookeeper.filter(|_| FAILOVER_ROW.contains(only)) {
        let (components, zookeeper) = (components.to_owned(), zookeeper.to_owned());
        rows.push(tokio::task::spawn_blocking(move || jobmanager_failover(&components, &zookeeper)).await??);
    }
    Ok(())
}

/// Two `weir jobmanager`s on ZooKeeper (sessions of two seconds) sharing
/// a storage directory, and a taskmanager; a job of one task that runs
/// until cancelled, checkpointing every 100 ms. The leading jobmanager is
/// SIGKILLed; the time until the other runs the job again (its ZooKeeper
/// session expires, it leads, recovers the job from its last checkpoint,
/// the taskmanager registers with it), then a new standby starts.
/// [`FAILOVERS`] times.
fn jobmanager_failover(components: &Path, zookeeper: &str) -> Result<Row, Error> {
    let storage = std::env::temp_dir().join(format!("weir-bench-failover-{}", std::process::id()));
    let ha = [
        "high-availability.type=zookeeper".to_owned(),
        format!("high-availability.zookeeper.quorum={zookeeper}"),
        format!("high-availability.cluster-id=bench-{}", uuid::Uuid::new_v4().simple()),
        format!("high-availability.storageDir={}", storage.display()),
        "high-availability.zookeeper.client.session-timeout=2 s".to_owned(),
    ];
    let directory = components.display().to_string();
    let mut common = vec!["--components", &directory];
    common.extend(ha.iter().flat_map(|setting| ["-D", setting.as_str()]));
    common.extend(HEARTBEATS);
    let keys = ["-D", "rest.port=0", "-D", "jobmanager.rpc.port=0", "-D", "restart-strategy.fixed-delay.attempts=1000"];
    let jobmanager = || start(&[&["jobmanager"][..], &keys, &common].concat(), "REST API at ");
    let mut jobmanagers = vec![jobmanager()?, jobmanager()?];
    let _taskmanager = start(&[&["taskmanager"][..], &common].concat(), "taskmanager: ")?;
    let client = |(_, api): &(Role, String)| Client::new(api, &RestSecurity::default());
    // The leader answers; a standby says 503.
    let mut leader = poll("a jobmanager leading with the taskmanager registered", SETTLING, PAUSE, || {
        Ok(jobmanagers.iter().position(|jobmanager| {
            client(jobmanager)
                .and_then(|api| api.call("GET", "/taskmanagers"))
                .is_ok_and(|all| all["taskmanagers"].as_array().is_some_and(|all| !all.is_empty()))
        }))
    })?;
    let trivial = job(components, "trivial_task")?;
    let url = submit(&client(&jobmanagers[leader])?, &trivial, &forever())?;
    let mut failovers = Vec::new();
    for _ in 0..FAILOVERS {
        until(&client(&jobmanagers[leader])?, &url, |job| job.all_running() && job.checkpoints >= 1)?;
        let killed = Instant::now();
        drop(jobmanagers.remove(leader));
        // The standby left, until it leads and runs the job again.
        let standby = client(&jobmanagers[0])?;
        poll("the standby jobmanager running the job again", RUNNING_AGAIN, PAUSE, || {
            Ok(standby.call("GET", &url).is_ok_and(|job| details(&job).all_running()).then_some(()))
        })?;
        failovers.push(killed.elapsed());
        leader = 0;
        jobmanagers.push(jobmanager()?);
    }
    let leading = client(&jobmanagers[leader])?;
    leading.call("PATCH", &format!("{url}?mode=cancel"))?;
    // Its result is kept in the storage directory: then it may go.
    until(&leading, &url, |job| jobmanager::ended(&job.status))?;
    drop(jobmanagers);
    let _ = std::fs::remove_dir_all(&storage);
    Ok(Row {
        what: format!(
            "leading jobmanager SIGKILLed to the job running again on the standby (ZooKeeper session timeout 2 s, \
             recovery from the last checkpoint), trivial job p=1, processes, p50 of {FAILOVERS}"
        ),
        weir: millis(p50(failovers)),
        reference: "Flink: the ZooKeeper session timeout (60 s by default) + recovery; not measured here".into(),
    })
}

fn figures(components: &Path) -> Result<Vec<Row>, Error> {
    // The roles' working directories: a SIGKILLed jobmanager leaves its own.
    let scratch = Scratch::new("processes")?;
    let tmp = format!("io.tmp.dirs={}", scratch.0.display());
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let directory = components.display().to_string();
    let jobmanager_port = format!("jobmanager.rpc.port={port}");
    let common = [&["--components", &directory, "-D", &jobmanager_port, "-D", &tmp][..], &HEARTBEATS].concat();
    let restarts = ["-D", "rest.port=0", "-D", "restart-strategy.fixed-delay.attempts=1000"];
    let (_jobmanager, api) = start(&[&["jobmanager"][..], &restarts, &common].concat(), "REST API at ")?;
    let taskmanager =
        start(&[&["taskmanager", "-D", "taskmanager.numberOfTaskSlots=4"], &common[..]].concat(), "taskmanager: ")?;
    let target = Client::new(&api, &RestSecurity::default())?;
    registered(&target, 1)?;
    let trivial = job(components, "trivial_task")?;
    let mut rows = Vec::new();
    for parallelism in [1, 4] {
        let (mut acknowledged, mut running, mut ended) = (Vec::new(), Vec::new(), Vec::new());
        let description = json!({ "name": "trivial", "parallelism": parallelism });
        for _ in 0..SUBMISSIONS {
            let submitted = Instant::now();
            let url = submit(&target, &trivial, &description)?;
            acknowledged.push(submitted.elapsed());
            until(&target, &url, |job| job.all_running() || job.status == "finished")?;
            running.push(submitted.elapsed());
            let job = until(&target, &url, |job| jobmanager::ended(&job.status))?;
            ended.push(submitted.elapsed());
            if job.status != "finished" {
                return Err(format!("the trivial job ended {}", job.status).into());
            }
        }
        let at = format!(
            "trivial job, p={parallelism}, warm cluster of two processes (jobmanager, taskmanager), p50 of {SUBMISSIONS}"
        );
        for (what, samples, flink) in [
            ("REST submission (POST /jobs: upload, check, submit) acknowledged", acknowledged, "1.5-2 ms"),
            ("REST submission to all tasks running (polling GET /jobs/{jobid})", running, "9-11 ms"),
            ("REST submission to result", ended, "87-112 ms"),
        ] {
            let reference = format!("Flink 2.3 MiniCluster, in one process and without REST: {flink}");
            rows.push(Row { what: format!("{what}, {at}"), weir: millis(p50(samples)), reference });
        }
    }
    rows.push(taskmanager_lost(&target, &common, &trivial, taskmanager)?);
    Ok(rows)
}

/// A job of one task runs on one of two taskmanagers; that one is
/// SIGKILLed, and the job runs again on the other, from its last
/// checkpoint; a new spare taskmanager starts. [`LOSSES`] times: the time
/// from each kill to the job running again.
fn taskmanager_lost(target: &Client, common: &[&str], trivial: &[u8], first: (Role, String)) -> Result<Row, Error> {
    let spare =
        || start(&[&["taskmanager", "-D", "taskmanager.numberOfTaskSlots=1"], common].concat(), "taskmanager: ");
    let mut taskmanagers = vec![first, spare()?];
    registered(target, 2)?;
    let url = submit(target, trivial, &forever())?;
    let mut recoveries = Vec::new();
    for _ in 0..LOSSES {
        let job = until(target, &url, |job| job.all_running() && job.checkpoints >= 1)?;
        let holding = holder(target)?;
        let index = taskmanagers.iter().position(|(_, said)| said.starts_with(&holding));
        let (role, _) = taskmanagers.remove(index.ok_or_else(|| format!("{holding} is none of those started"))?);
        let lost = Instant::now();
        drop(role);
        until(target, &url, |again| again.restarts > job.restarts && again.all_running())?;
        recoveries.push(lost.elapsed());
        taskmanagers.push(spare()?);
        registered(target, 2)?;
    }
    target.call("PATCH", &format!("{url}?mode=cancel"))?;
    Ok(Row {
        what: format!(
            "taskmanager SIGKILLed to the job running again on another (heartbeat.interval 200 ms, \
             rpc-failure-threshold 1), trivial job p=1, processes, p50 of {LOSSES}"
        ),
        weir: millis(p50(recoveries)),
        reference: "Flink 2.3 MiniCluster, a TaskManager lost and detected at once (no heartbeat to wait): \
                    100-120 ms"
            .into(),
    })
}

/// The address of the taskmanager that holds a slot, once the
/// ResourceManager knows one does (a slot report may come after the task
/// runs).
fn holder(target: &Client) -> Result<String, Error> {
    poll("a taskmanager holding the job's slot", SETTLING, PAUSE, || {
        let all = target.call("GET", "/taskmanagers")?;
        let mut all = all["taskmanagers"].as_array().cloned().unwrap_or_default().into_iter();
        Ok(all
            .find(|tm| tm["freeSlots"] != tm["slotsNumber"])
            .map(|tm| tm["path"].as_str().unwrap_or_default().to_owned()))
    })
}

/// Waits until `count` taskmanagers are registered.
fn registered(target: &Client, count: usize) -> Result<(), Error> {
    poll(&format!("{count} taskmanagers registered"), SETTLING, PAUSE, || {
        let all = target.call("GET", "/taskmanagers")?;
        Ok((all["taskmanagers"].as_array().map_or(0, Vec::len) == count).then_some(()))
    })
}

/// Polls `url`, without pausing (it is what is measured), until `done`
/// holds of the job's details; those details.
fn until(target: &Client, url: &str, done: impl Fn(&Details) -> bool) -> Result<Details, Error> {
    let mut last = String::new();
    let reached = poll(&format!("{url} getting there"), RUNNING_AGAIN, Duration::ZERO, || {
        let job = details(&target.call("GET", url)?);
        if done(&job) {
            return Ok(Some(job));
        }
        last = job.status;
        Ok(None)
    });
    reached.map_err(|error| format!("{error} (it was {last})").into())
}

/// Asks `check` every `pause` until it gives a value, for up to `limit`;
/// `what` names what it waits for in the error.
fn poll<T>(
    what: &str,
    limit: Duration,
    pause: Duration,
    mut check: impl FnMut() -> Result<Option<T>, Error>,
) -> Result<T, Error> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check()? {
            return Ok(value);
        }
        if Instant::now() > deadline {
            return Err(format!("no {what} within {limit:?}").into());
        }
        std::thread::sleep(pause);
    }
}

/// Submits `component` as the job `description` (JSON); the job's URL.
fn submit(target: &Client, component: &[u8], description: &serde_json::Value) -> Result<String, Error> {
    let body = multipart(&[("component", component), ("job", description.to_string().as_bytes())]);
    let answer = target.send("POST", "/jobs", Some(body))?;
    Ok(answer["jobUrl"].as_str().ok_or("no job URL")?.to_owned())
}

/// A trivial job of one task that runs until cancelled, checkpointing
/// every 100 ms.
fn forever() -> serde_json::Value {
    json!({ "name": "forever", "arguments": ["--forever"], "checkpointInterval": 100 })
}
