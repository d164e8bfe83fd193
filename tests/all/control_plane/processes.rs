//! The cluster's roles in processes of their own, finding each other
//! through a real ZooKeeper: `weir jobmanager` twice (one leads, the other
//! stands by and says so on its REST API) and `weir taskmanager` twice.
//! Word count, submitted through the leader's REST API by `weir run`,
//! runs on both taskmanagers; one of them is killed with SIGKILL mid-job, after a
//! completed checkpoint, and the job restarts on the other and finishes
//! with the exact counts, compared with counts this test makes itself.
//! The leading jobmanager killed mid-job, the standby recovers the job and
//! finishes it exactly; a job that ended is never run again.
//! Without ZooKeeper, one jobmanager at a fixed address runs jobs too, and
//! a taskmanager frozen mid-job (SIGSTOP) is failed over; thawed, it
//! cancels its stale tasks, and the counts are still written once.

use serde_json::Value as Json;
use weir_tests::zookeeper::zookeeper;
use weir_tests::{artifacts, eventually_blocking};

use super::rest::{Api, Role};
use super::wordcount::{Data, expected_output, write_input};

/// The settings every role of one test's cluster shares: its own node in
/// the test process's ZooKeeper, quick heartbeats, the data directory.
fn shared(name: &str, data: &Data) -> Vec<String> {
    [
        "high-availability.type=zookeeper".to_owned(),
        format!("high-availability.zookeeper.quorum={}", zookeeper().address()),
        format!("high-availability.cluster-id={name}-{}", std::process::id()),
        "high-availability.zookeeper.client.session-timeout=4 s".to_owned(),
        "heartbeat.interval=200 ms".to_owned(),
        "heartbeat.timeout=4 s".to_owned(),
        format!("cluster.data-dirs={}", data.root().display()),
        format!("io.tmp.dirs={}", data.root().display()),
    ]
    .into()
}

/// Runs `weir <role>` with `settings` (as `-D`), until it prints `prefix`;
/// logging at info level into `log`, if given.
fn start(role: &str, settings: &[String], prefix: &str, log: Option<&std::path::Path>) -> Role {
    let mut arguments = vec![role, "--until-stdin-closes"];
    for setting in settings {
        arguments.extend(["-D", setting]);
    }
    match log {
        Some(log) => Role::logged(&arguments, prefix, log),
        None => Role::start(&arguments, prefix),
    }
}

fn jobmanager(settings: &[String]) -> (Role, Api) {
    jobmanager_logged(settings, None)
}

/// A jobmanager, logging at info level into `log` if given.
fn jobmanager_logged(settings: &[String], log: Option<&std::path::Path>) -> (Role, Api) {
    // The test's settings last: they win.
    let settings = [&["jobmanager.rpc.port=0".to_owned(), "rest.port=0".to_owned()], settings].concat();
    let role = start("jobmanager", &settings, "REST API at ", log);
    let api = Api::new(&role.said);
    (role, api)
}

fn taskmanager(settings: &[String]) -> Role {
    let settings = [&["taskmanager.numberOfTaskSlots=2".to_owned()], settings].concat();
    start("taskmanager", &settings, "taskmanager: ", None)
}

/// Starts `weir run` of word count on `data` at parallelism 2, with a
/// checkpoint every 50 ms; returns once the job is submitted.
fn run_word_count(api: &Api, data: &Data) -> Role {
    let (input, output) = (data.input().display().to_string(), data.output().display().to_string());
    let jobmanager = api.url.trim_start_matches("http://").to_owned();
    Role::start(
        &[
            "run",
            "--jobmanager",
            &jobmanager,
            "-p",
            "2",
            "--checkpoint-interval",
            "50ms",
            artifacts::WORDCOUNT,
            "--input",
            &input,
            "--output",
            &output,
            "--pause-ms",
            "150",
        ],
        "Job has been submitted with JobID ",
    )
}

/// Waits until the leader lists `count` TaskExecutors.
fn until_registered(api: &Api, count: usize) {
    eventually_blocking(|| {
        let registered = task_managers(api);
        let all = registered.len() == count;
        if all { Ok(()) } else { Err(format!("{count} taskmanager(s) register: {registered:?}")) }
    });
}

/// Checks that `weir run` ended well and printed the counts `data` holds,
/// which the job wrote exactly; the job's last details.
fn finished_exactly(client: Role, api: &Api, data: &Data) -> Json {
    let url = format!("/jobs/{}", client.said);
    let (finished, printed) = client.wait();
    assert!(finished, "weir run ends well once the job finished: {printed}");
    let expected = expected_output(&data.input());
    let words: u64 = expected.lines().map(|line| line.rsplit_once(' ').unwrap().1.parse::<u64>().unwrap()).sum();
    assert!(printed.contains(&format!("{words} words, {} distinct", expected.lines().count())), "{printed}");
    assert_eq!(std::fs::read_to_string(data.output()).unwrap(), expected);
    let ended = api.get(&url);
    assert_eq!(ended["state"], "FINISHED", "{ended}");
    ended
}

/// Sends `signal` to `role`'s process.
fn signal(role: &Role, signal: &str) {
    let sent = std::process::Command::new("kill").args([signal, &role.process.id().to_string()]).status().unwrap();
    assert!(sent.success());
}

/// The TaskExecutors the leader's REST API lists: each one's id and its
/// free slots.
fn task_managers(api: &Api) -> Vec<(String, u64)> {
    let listed = api.get("/taskmanagers");
    let all = listed["taskmanagers"].as_array().cloned().unwrap_or_default();
    all.iter().map(|tm| (tm["id"].as_str().unwrap().to_owned(), tm["freeSlots"].as_u64().unwrap())).collect()
}

fn checkpoints(job: &Json) -> u64 {
    job["checkpoints"]["completed"].as_u64().unwrap_or(0)
}

#[test]
fn jobmanager_and_taskmanager_processes_run_word_count_exactly_through_a_killed_taskmanager() {
    let data = Data::new("processes");
    write_input(&data.input(), 4, 400_000);
    let settings = shared("processes", &data);
    let (_leader, api) = jobmanager(&settings);
    let mut taskmanagers = [taskmanager(&settings), taskmanager(&settings)];
    let ids: Vec<String> = taskmanagers.iter().map(|tm| tm.said.split(' ').next().unwrap().to_owned()).collect();
    // A second jobmanager stands by while the first leads.
    let (_standby, standby) = jobmanager(&settings);
    let (status, answer) = standby.call("GET", "/overview", None);
    let said = answer["errors"][0].as_str().unwrap_or_default();
    assert_eq!((status, said.contains("this jobmanager stands by")), (503, true), "{answer}");

    until_registered(&api, 2);

    // Submitted by `weir run`, which follows the job to its end.
    let client = run_word_count(&api, &data);
    let url = format!("/jobs/{}", client.said);
    api.until(&url, "a completed checkpoint", |job| checkpoints(job) >= 1);

    // A taskmanager that runs tasks of the job dies, without a goodbye.
    let busy = task_managers(&api).into_iter().find(|(_, free)| *free < 2).expect("a taskmanager runs tasks").0;
    let doomed = ids.iter().position(|id| *id == busy).expect("one of the two");
    taskmanagers[doomed].process.kill().unwrap();
    taskmanagers[doomed].process.wait().unwrap();

    let ended = finished_exactly(client, &api, &data);
    assert!(ended["restarts"].as_u64() >= Some(1), "the job restarted: {ended}");
    let left = task_managers(&api);
    assert_eq!(left.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(), [ids[1 - doomed].as_str()], "{left:?}");

    let [one, two] = taskmanagers;
    let survivor = if doomed == 0 { two } else { one };
    assert!(survivor.terminate(), "a taskmanager exits cleanly on SIGTERM");
}

/// Flink's standalone mode: no ZooKeeper, one jobmanager at a fixed
/// address where the taskmanager finds it, and each job's JobMaster.
#[test]
fn without_zookeeper_one_jobmanager_at_a_fixed_address_runs_jobs() {
    let data = Data::new("standalone");
    let port = super::free_port();
    let settings = [
        format!("jobmanager.rpc.port={port}"),
        format!("cluster.data-dirs={}", data.root().display()),
        format!("io.tmp.dirs={}", data.root().display()),
    ];
    let (_jobmanager, api) = jobmanager(&settings);
    let _taskmanager = taskmanager(&settings);
    until_registered(&api, 1);
    let jobmanager = api.url.trim_start_matches("http://").to_owned();
    let client = Role::start(
        &["run", "--jobmanager", &jobmanager, "-p", "2", artifacts::TRIVIAL_TASK],
        "Job has been submitted with JobID ",
    );
    let (finished, printed) = client.wait();
    assert!(finished && printed.contains("job finished: "), "{printed}");

    // A port of 0 cannot be where the others find it.
    let refused = std::process::Command::new(weir_tests::process::weir_binary())
        .args(["taskmanager", "-D", "jobmanager.rpc.port=0"])
        .output()
        .unwrap();
    let error = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && error.contains("give a port, not 0"), "{error}");
}

/// A taskmanager frozen mid-job (SIGSTOP: a partition from the jobmanager
/// side) is lost by heartbeat and the job fails over to the other; thawed,
/// it registers again and its stale tasks end (cancelled, as their
/// JobMaster dropped this taskmanager, or refused by the JobMaster, which
/// no longer knows their attempts), and the counts are written once,
/// exactly.
#[test]
fn a_frozen_taskmanager_is_failed_over_and_its_stale_tasks_end_when_it_thaws() {
    let data = Data::new("frozen");
    write_input(&data.input(), 4, 400_000);
    let port = super::free_port();
    let settings = [
        format!("jobmanager.rpc.port={port}"),
        format!("cluster.data-dirs={}", data.root().display()),
        format!("io.tmp.dirs={}", data.root().display()),
        "heartbeat.interval=200 ms".to_owned(),
        "heartbeat.timeout=3 s".to_owned(),
    ];
    let (_jobmanager, api) = jobmanager(&settings);
    let logs = [data.root().join("taskmanager-1.log"), data.root().join("taskmanager-2.log")];
    let tm_settings = [&["taskmanager.numberOfTaskSlots=2".to_owned()], &settings[..]].concat();
    let taskmanagers = logs.clone().map(|log| start("taskmanager", &tm_settings, "taskmanager: ", Some(&log)));
    let ids: Vec<String> = taskmanagers.iter().map(|tm| tm.said.split(' ').next().unwrap().to_owned()).collect();
    until_registered(&api, 2);

    let client = run_word_count(&api, &data);
    let job = client.said.clone();
    let url = format!("/jobs/{job}");
    api.until(&url, "a completed checkpoint", |job| checkpoints(job) >= 1);
    let busy = task_managers(&api).into_iter().find(|(_, free)| *free < 2).expect("a taskmanager runs tasks").0;
    let frozen = ids.iter().position(|id| *id == busy).expect("one of the two");
    signal(&taskmanagers[frozen], "-STOP");
    api.until(&url, "a restart", |job| job["restarts"].as_u64() >= Some(1));
    // Frozen until the ResourceManager dropped it too.
    until_registered(&api, 1);
    signal(&taskmanagers[frozen], "-CONT");
    // Thawed, it registers again.
    until_registered(&api, 2);

    let ended = finished_exactly(client, &api, &data);
    assert!(ended["restarts"].as_u64() >= Some(1), "{ended}");
    let log = || std::fs::read_to_string(&logs[frozen]).unwrap();
    // Its stale tasks ended (cancelled, or refused by the JobMaster, which
    // no longer knows their attempts): none is left running.
    let (started, ended) = ("endpoint started endpoint=task-", "endpoint terminated endpoint=task-");
    eventually_blocking(|| {
        let log = log();
        let none_left = log.matches(started).count() == log.matches(ended).count();
        if none_left { Ok(()) } else { Err(format!("its stale tasks end:\n{log}")) }
    });
    assert!(log().matches(started).count() >= 1, "it ran tasks of job {job}");
}

/// Polls the REST API at `api` until job `id` ended there (its jobmanager
/// may not lead yet, or not know the job yet); its details.
fn until_ended_at(api: &Api, id: &str) -> Json {
    eventually_blocking(|| {
        let (status, job) = api.call("GET", &format!("/jobs/{id}"), None);
        if status == 200 && ["FINISHED", "FAILED", "CANCELED"].contains(&job["state"].as_str().unwrap_or("")) {
            return Ok(job);
        }
        Err(format!("job {id} never ended at {}: {status} {job}", api.url))
    })
}

/// The leading jobmanager killed mid-job (SIGKILL, after a completed
/// checkpoint): the standby leads, recovers the job from the job store and
/// its last checkpoint, and finishes it with the exact counts. Killed in
/// turn after the job finished, the next leader knows the job's result
/// and does not run it again.
#[test]
fn a_new_leading_jobmanager_recovers_a_running_job_and_never_reruns_a_finished_one() {
    let data = Data::new("recovery");
    write_input(&data.input(), 4, 400_000);
    let storage = format!("high-availability.storageDir={}", data.root().join("ha").display());
    let settings = [shared("recovery", &data), vec![storage]].concat();
    let (mut leader, api) = jobmanager(&settings);
    let _taskmanagers = [taskmanager(&settings), taskmanager(&settings)];
    let standby_log = data.root().join("standby.log");
    let (mut standby, standby_api) = jobmanager_logged(&settings, Some(&standby_log));
    until_registered(&api, 2);

    let (input, output) = (data.input().display().to_string(), data.output().display().to_string());
    let description = serde_json::json!({
        "name": "wordcount",
        "parallelism": 2,
        "arguments": ["--input", input, "--output", output, "--pause-ms", "150"],
        "checkpointInterval": 50,
    });
    let component = std::fs::read(artifacts::WORDCOUNT).unwrap();
    let (status, submitted) = api.submit(&component, &description.to_string());
    assert_eq!(status, 202, "{submitted}");
    let url = submitted["jobUrl"].as_str().unwrap().to_owned();
    let id = url.trim_start_matches("/jobs/").to_owned();
    api.until(&url, "a completed checkpoint", |job| checkpoints(job) >= 1);
    // The job's entry is in ZooKeeper (Flink's execution plan store).
    let cluster = format!("recovery-{}", std::process::id());
    let entry = entry_in_zookeeper(&cluster, &id).expect("the running job's entry in ZooKeeper");
    assert!(String::from_utf8_lossy(&entry).starts_with("name wordcount\nparallelism 2\n"), "{entry:?}");
    leader.process.kill().unwrap();
    leader.process.wait().unwrap();

    let ended = until_ended_at(&standby_api, &id);
    assert_eq!(ended["state"], "FINISHED", "{ended}");
    // Its result kept, its entry goes.
    eventually_blocking(|| match entry_in_zookeeper(&cluster, &id) {
        Some(_) => Err("the ended job's entry stays in ZooKeeper".to_owned()),
        None => Ok(()),
    });
    assert_eq!(std::fs::read_to_string(data.output()).unwrap(), expected_output(&data.input()));
    let log = std::fs::read_to_string(&standby_log).unwrap();
    assert!(log.contains("from the job store") && log.contains("resuming from checkpoint"), "{log}");

    // The job ended: a new leader after this one knows, and runs nothing.
    let (_third, third_api) = jobmanager(&settings);
    standby.process.kill().unwrap();
    standby.process.wait().unwrap();
    let known = until_ended_at(&third_api, &id);
    assert_eq!(known["state"], "FINISHED", "the result store has it: {known}");
    let (_, jobs) = third_api.call("GET", "/jobs", None);
    assert_eq!(jobs["jobs"].as_array().map(Vec::len), Some(1), "{jobs}");
}

/// Job `id`'s entry (32 hexadecimal digits, as the REST API writes it) in
/// the HA store of cluster `cluster`, a ZooKeeper node, if it is there.
fn entry_in_zookeeper(cluster: &str, id: &str) -> Option<Vec<u8>> {
    let key = format!("{}-{}-{}-{}-{}", &id[..8], &id[8..12], &id[12..16], &id[16..20], &id[20..]);
    let path = format!("/weir/{cluster}/store/jobs/{key}");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let client = zookeeper_client::Client::connect(zookeeper().address()).await.unwrap();
        client.get_data(&path).await.ok().map(|(entry, _)| entry)
    })
}
