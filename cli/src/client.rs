//! `weir info`, `weir list` and `weir cancel`: a client of a cluster's
//! REST API (Flink's `flink info`/`list`/`cancel`), at `--jobmanager
//! host:port`. A cluster that cannot be reached is a one-line error saying
//! where it was looked for.

use serde_json::Value as Json;

use crate::Error;

/// Where the cluster's REST API is.
#[derive(Debug, clap::Args)]
pub struct Target {
    /// The REST API's `host:port` (`weir cluster` prints it).
    #[arg(long, default_value = "127.0.0.1:8081")]
    jobmanager: String,
}

/// `weir cancel`'s arguments.
#[derive(Debug, clap::Args)]
pub struct CancelArgs {
    /// The job's id, as `weir list` shows it.
    job: String,
    #[command(flatten)]
    target: Target,
}

impl Target {
    /// Sends `method` to `path`; the answer's JSON, or the API's error.
    fn call(&self, method: &str, path: &str) -> Result<Json, Error> {
        let url = format!("http://{}{path}", self.jobmanager);
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        let response = match method {
            "PATCH" => agent.patch(&url).send_empty(),
            _ => agent.get(&url).call(),
        };
        let mut response = response.map_err(|error| {
            format!(
                "cannot reach a cluster's REST API at http://{}: {error}; start one (`weir cluster --keep-running`) \
                 or name it with --jobmanager",
                self.jobmanager
            )
        })?;
        let status = response.status();
        let text = response.body_mut().read_to_string()?;
        let answer: Json = serde_json::from_str(&text).map_err(|_| format!("{url} answered {status}: {text}"))?;
        match answer["errors"][0].as_str() {
            Some(why) if !status.is_success() => Err(why.to_owned().into()),
            _ => Ok(answer),
        }
    }
}

/// Prints the cluster's overview.
pub fn info(target: &Target) -> Result<(), Error> {
    let overview = target.call("GET", "/overview")?;
    let number = |key: &str| overview[key].as_u64().unwrap_or_default();
    println!(
        "{} TaskManager(s), {} slot(s), {} available; jobs: {} running, {} finished, {} cancelled, {} failed ({})",
        number("taskmanagers"),
        number("slots-total"),
        number("slots-available"),
        number("jobs-running"),
        number("jobs-finished"),
        number("jobs-cancelled"),
        number("jobs-failed"),
        overview["flink-version"].as_str().unwrap_or("unknown version")
    );
    Ok(())
}

/// Prints every job the cluster knows, one a line: its id, name and state.
pub fn list(target: &Target) -> Result<(), Error> {
    let overview = target.call("GET", "/jobs/overview")?;
    let jobs = overview["jobs"].as_array().cloned().unwrap_or_default();
    if jobs.is_empty() {
        println!("No jobs.");
    }
    for job in jobs {
        let text = |key: &str| job[key].as_str().unwrap_or_default().to_owned();
        println!("{} : {} ({})", text("jid"), text("name"), text("state"));
    }
    Ok(())
}

/// Cancels a job.
pub fn cancel(args: &CancelArgs) -> Result<(), Error> {
    args.target.call("PATCH", &format!("/jobs/{}?mode=cancel", args.job))?;
    println!("Cancelled job {}.", args.job);
    Ok(())
}
