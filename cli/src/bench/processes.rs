//! A cluster of processes and Flink's REST API: `weir jobmanager` and
//! `weir taskmanager` (four slots), Flink's standalone mode (one
//! jobmanager at a fixed port), warm; a trivial job submitted through
//! `POST /jobs` and followed through `GET /jobs/{jobid}` to all its tasks
//! running and to its end, 20 times at parallelism 1 and 4, as a Flink
//! user's script would.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use super::Row;
use super::cluster::{SUBMISSIONS, job, millis, p50};
use crate::Error;
use crate::client::{Target, details, multipart};
use crate::cluster::jobmanager::{self, Details};

/// A role's process, killed when dropped.
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
        .env("RUST_LOG", "warn")
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
const ROWS: &str = "REST submission, trivial job, cluster of two processes";

pub async fn measure(components: &Path, only: &str, rows: &mut Vec<Row>) -> Result<(), Error> {
    if !ROWS.contains(only) {
        return Ok(());
    }
    let components = components.to_owned();
    rows.extend(tokio::task::spawn_blocking(move || figures(&components)).await??);
    Ok(())
}

fn figures(components: &Path) -> Result<Vec<Row>, Error> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let directory = components.display().to_string();
    let jobmanager_port = format!("jobmanager.rpc.port={port}");
    let common = ["--components", &directory, "-D", &jobmanager_port];
    let (_jobmanager, api) = start(&[&["jobmanager", "-D", "rest.port=0"], &common[..]].concat(), "REST API at ")?;
    let (_taskmanager, _) =
        start(&[&["taskmanager", "-D", "taskmanager.numberOfTaskSlots=4"], &common[..]].concat(), "taskmanager: ")?;
    let target = Target::at(api.trim_start_matches("http://").to_owned());
    let deadline = Instant::now() + Duration::from_secs(30);
    while target.call("GET", "/taskmanagers")?["taskmanagers"].as_array().is_none_or(Vec::is_empty) {
        if Instant::now() > deadline {
            return Err("the taskmanager did not register within 30 s".into());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let trivial = job(components, "trivial_task")?;
    let mut rows = Vec::new();
    for parallelism in [1, 4] {
        let (mut acknowledged, mut running, mut ended) = (Vec::new(), Vec::new(), Vec::new());
        let description = json!({ "name": "trivial", "parallelism": parallelism }).to_string();
        for _ in 0..SUBMISSIONS {
            let body = multipart(&[("component", &trivial), ("job", description.as_bytes())]);
            let submitted = Instant::now();
            let answer = target.send("POST", "/jobs", Some(body))?;
            acknowledged.push(submitted.elapsed());
            let url = answer["jobUrl"].as_str().ok_or("no job URL")?.to_owned();
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
    Ok(rows)
}

/// Polls `url` until `done` holds of the job's details; those details.
fn until(target: &Target, url: &str, done: impl Fn(&Details) -> bool) -> Result<Details, Error> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let job = details(&target.call("GET", url)?);
        if done(&job) {
            return Ok(job);
        }
        if Instant::now() > deadline {
            return Err(format!("{url} did not get there within a minute: {}", job.status).into());
        }
    }
}
