//! `weir run`, `weir info`, `weir list`, `weir cancel` and `weir
//! savepoint`: a client of a cluster's REST API (Flink's `flink
//! run`/`info`/`list`/`cancel`/`savepoint`), at `--jobmanager host:port`
//! or the config's `rest.address`:`rest.port`, over HTTPS with
//! `security.ssl.rest.enabled` (trusting `security.ssl.rest.ca`), sending
//! `security.rest.token` as its bearer token. A cluster that cannot be
//! reached is a one-line error saying where it was looked for.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value as Json, json};

use crate::Error;
use crate::cluster::jobmanager::{Details, Outcome, Vertex, ended};
use crate::cluster::report;
use crate::cluster::settings::{self, RestSecurity};

/// Where the cluster's REST API is, and how to talk to it.
#[derive(Debug, clap::Args)]
pub struct Target {
    /// The REST API's `host:port` (`weir cluster` prints it); else the
    /// config's `rest.address`:`rest.port`, 127.0.0.1:8081 by default.
    #[arg(long)]
    jobmanager: Option<String>,
    /// A config file (TOML) of Flink's keys; the client reads
    /// `rest.address`, `rest.port`, `security.ssl.rest.enabled`,
    /// `security.ssl.rest.ca` and `security.rest.token`.
    #[arg(short, long)]
    config: Option<PathBuf>,
    /// Sets a config key, over the file: `-D key=value`.
    #[arg(short = 'D', value_name = "KEY=VALUE")]
    define: Vec<String>,
}

impl Target {
    /// A client of the REST API this names.
    pub fn client(&self) -> Result<Client, Error> {
        let settings = settings::read(self.config.as_deref(), &self.define)?;
        let address = self.jobmanager.as_deref().unwrap_or(&settings.rest_address);
        Client::new(address, &settings.rest_security)
    }
}

/// `weir cancel`'s arguments.
#[derive(Debug, clap::Args)]
pub struct CancelArgs {
    /// The job's id, as `weir list` shows it.
    job: String,
    #[command(flatten)]
    target: Target,
}

/// `weir savepoint`'s arguments.
#[derive(Debug, clap::Args)]
pub struct SavepointArgs {
    /// The job's id, as `weir list` shows it.
    job: String,
    #[command(flatten)]
    target: Target,
}

/// `weir swap`'s arguments.
#[derive(Debug, clap::Args)]
pub struct SwapArgs {
    /// The endpoint's id, as `GET /endpoints` lists it (for example
    /// `resourcemanager`); with `--all`, a component's name as it lists it.
    endpoint: String,
    /// Swap every endpoint that runs the component ENDPOINT names (a kind
    /// of endpoint at once), one after another, stopping at the first
    /// refusal.
    #[arg(long)]
    all: bool,
    /// The component to run behind it from now on: it must export the same
    /// gateways with the same types.
    component: PathBuf,
    /// How long the calls in flight may take to finish, in milliseconds,
    /// before the swap is refused.
    #[arg(long, default_value_t = 10_000)]
    drain_timeout: u64,
    #[command(flatten)]
    target: Target,
}

/// `weir run`'s arguments.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The job's task component (world `weir:flink/task-endpoint`).
    job: PathBuf,
    /// The job's arguments, e.g. `--input PATH --output PATH`.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    arguments: Vec<String>,
    /// The job's parallelism (the cluster's `parallelism.default`
    /// otherwise).
    #[arg(short, long)]
    parallelism: Option<u32>,
    /// Checkpoints every this long (`1 s`, `500 ms`); none: only on
    /// request.
    #[arg(long, value_parser = humantime::parse_duration)]
    checkpoint_interval: Option<Duration>,
    /// Submits the job and returns, without following it (Flink's
    /// `--detached`).
    #[arg(short, long)]
    detached: bool,
    #[command(flatten)]
    target: Target,
}

/// A request's body: none, or its content type and bytes.
type Body = Option<(String, Vec<u8>)>;

/// A client of one cluster's REST API.
pub struct Client {
    /// `http://host:port` or `https://host:port`.
    base: String,
    agent: ureq::Agent,
    /// The `Authorization` header's value, if the API wants a token.
    authorization: Option<String>,
}

impl Client {
    /// A client of the REST API at `address` (`host:port`, or a URL),
    /// secured as `security` says.
    pub fn new(address: &str, security: &RestSecurity) -> Result<Self, Error> {
        let scheme = if security.tls.is_some() { "https" } else { "http" };
        let base = match address.contains("://") {
            true => address.trim_end_matches('/').to_owned(),
            false => format!("{scheme}://{address}"),
        };
        let mut config = ureq::Agent::config_builder().http_status_as_error(false);
        if let Some(ca) = security.tls.as_ref().and_then(|tls| tls.ca.as_ref()) {
            let unreadable =
                |error: &dyn std::fmt::Display| format!("`security.ssl.rest.ca` {}: {error}", ca.display());
            let pem = std::fs::read(ca).map_err(|error| unreadable(&error))?;
            let certificates = ureq::tls::parse_pem(&pem)
                .filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(certificate)) => Some(Ok(certificate)),
                    Ok(_) => None,
                    Err(error) => Some(Err(unreadable(&error))),
                })
                .collect::<Result<Vec<_>, _>>()?;
            let roots = ureq::tls::RootCerts::Specific(std::sync::Arc::new(certificates));
            config = config.tls_config(ureq::tls::TlsConfig::builder().root_certs(roots).build());
        }
        let authorization = security.token.as_ref().map(|token| format!("Bearer {token}"));
        Ok(Self { base, agent: config.build().into(), authorization })
    }

    /// Sends `method` to `path`; the answer's JSON, or the API's error.
    pub fn call(&self, method: &str, path: &str) -> Result<Json, Error> {
        self.send(method, path, None)
    }

    /// `request` with the bearer token, if the API wants one.
    fn authorized<B>(&self, request: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        match &self.authorization {
            Some(authorization) => request.header("Authorization", authorization),
            None => request,
        }
    }

    /// Sends `method` to `path` with `body`; the answer's JSON, or the
    /// API's error.
    pub fn send(&self, method: &str, path: &str, body: Body) -> Result<Json, Error> {
        let url = format!("{}{path}", self.base);
        let response = match (method, body) {
            ("PATCH", _) => self.authorized(self.agent.patch(&url)).send_empty(),
            ("POST", Some((content_type, body))) => {
                self.authorized(self.agent.post(&url)).header("Content-Type", content_type).send(&body)
            }
            _ => self.authorized(self.agent.get(&url)).call(),
        };
        let mut response = response.map_err(|error| {
            format!(
                "cannot reach a cluster's REST API at {}: {error}; start one (`weir cluster --keep-running`) \
                 or name it with --jobmanager",
                self.base
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
    let overview = target.client()?.call("GET", "/overview")?;
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
    let overview = target.client()?.call("GET", "/jobs/overview")?;
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
    args.target.client()?.call("PATCH", &format!("/jobs/{}?mode=cancel", args.job))?;
    println!("Cancelled job {}.", args.job);
    Ok(())
}

/// Swaps the component behind an endpoint of the jobmanager's host while
/// it runs; prints what became of its state and how long it paused.
pub fn swap(args: &SwapArgs) -> Result<(), Error> {
    let bytes = std::fs::read(&args.component)
        .map_err(|error| format!("cannot read the component {}: {error}", args.component.display()))?;
    let body = Some(("application/wasm".to_owned(), bytes));
    if args.all {
        let running = utf8_percent_encode(&args.endpoint, NON_ALPHANUMERIC);
        let path = format!("/endpoints/swap?running={running}&drainTimeout={}", args.drain_timeout);
        let answer = args.target.client()?.send("POST", &path, body)?;
        let swapped = answer["swapped"].as_array().map_or(0, Vec::len);
        println!("Swapped {swapped} endpoint(s) running {} to {}.", args.endpoint, args.component.display());
        return Ok(());
    }
    let path = format!("/endpoints/{}/swap?drainTimeout={}", args.endpoint, args.drain_timeout);
    let report = args.target.client()?.send("POST", &path, body)?;
    let handover = &report["handover"];
    let state = match handover["carried"].as_bool() {
        Some(true) => format!("its state carried over (layout {}, {} bytes)", handover["version"], handover["bytes"]),
        _ => format!("starting fresh: {}", handover["reason"].as_str().unwrap_or("no state")),
    };
    let children = match report["childrenAdopted"].as_u64() {
        Some(adopted @ 1..) => format!("; {adopted} child endpoint(s) adopted"),
        _ => String::new(),
    };
    println!(
        "Swapped endpoint {} to {}: {state}{children}; paused {} µs.",
        args.endpoint,
        args.component.display(),
        report["pauseMicros"]
    );
    Ok(())
}

/// Takes a savepoint of a running job and waits for it; prints where it is.
pub fn savepoint(args: &SavepointArgs) -> Result<(), Error> {
    let path = format!("/jobs/{}/savepoints", args.job);
    let body = Some(("application/json".to_owned(), b"{}".to_vec()));
    let client = args.target.client()?;
    let triggered = client.send("POST", &path, body)?;
    let trigger = triggered["request-id"].as_str().ok_or_else(|| format!("no request id: {triggered}"))?;
    println!("Triggering savepoint for job {}.", args.job);
    loop {
        let status = client.call("GET", &format!("{path}/{trigger}"))?;
        if status["status"]["id"] == "COMPLETED" {
            let operation = &status["operation"];
            if let Some(location) = operation["location"].as_str() {
                println!("Savepoint completed. Path: {location}");
                return Ok(());
            }
            let cause = operation["failure-cause"]["stack-trace"].as_str().unwrap_or("no cause given");
            return Err(format!("the savepoint of job {} failed: {cause}", args.job).into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Submits a job through the REST API and, unless detached, shows its
/// progress until it ends; then its result. A job that does not finish
/// is an error.
pub fn run(args: &RunArgs) -> Result<(), Error> {
    let client = args.target.client()?;
    let component = std::fs::read(&args.job).map_err(|e| format!("cannot read the job {}: {e}", args.job.display()))?;
    let name = args.job.file_stem().map_or_else(|| "job".into(), |stem| stem.to_string_lossy().into_owned());
    let mut description = json!({ "name": name, "arguments": args.arguments });
    if let Some(parallelism) = args.parallelism {
        description["parallelism"] = json!(parallelism);
    }
    if let Some(interval) = args.checkpoint_interval {
        description["checkpointInterval"] = json!(u64::try_from(interval.as_millis()).unwrap_or(u64::MAX));
    }
    let submitted = Instant::now();
    let body = multipart(&[("component", &component), ("job", description.to_string().as_bytes())]);
    let answer = client.send("POST", "/jobs", Some(body))?;
    let url = answer["jobUrl"].as_str().ok_or_else(|| format!("the cluster answered no job URL: {answer}"))?;
    let id = url.trim_start_matches("/jobs/").to_owned();
    println!("Job has been submitted with JobID {id}");
    if args.detached {
        return Ok(());
    }
    let mut progress = report::Progress::new();
    let ended = loop {
        let job = client.call("GET", url)?;
        let details = details(&job);
        if ended(&details.status) {
            progress.finish();
            break details;
        }
        progress.show(&details, submitted.elapsed());
        std::thread::sleep(Duration::from_millis(if details.running == 0 { 20 } else { 250 }));
    };
    let exceptions = client.call("GET", &format!("{url}/exceptions"))?;
    let failure = exceptions["root-exception"].as_str().map(str::to_owned);
    let outcome = Outcome { status: ended.status, failure, checkpoints: ended.checkpoints, restarts: ended.restarts };
    report::result(&outcome, &args.arguments);
    println!("Job Runtime: {}", report::duration(submitted.elapsed()));
    match outcome.status.as_str() {
        "finished" => Ok(()),
        status => Err(format!("job {id} ended {status}").into()),
    }
}

/// A job's details as the REST API shows them.
pub fn details(job: &Json) -> Details {
    let number = |value: &Json| value.as_u64().unwrap_or_default();
    Details {
        status: job["state"].as_str().unwrap_or_default().to_lowercase(),
        tasks: number(&job["tasks"]["total"]) as u32,
        running: number(&job["tasks"]["running"]) as u32,
        checkpoints: number(&job["checkpoints"]["completed"]),
        restarts: number(&job["restarts"]),
        input_bytes: number(&job["input"]["bytes"]),
        input_assigned: number(&job["input"]["assigned"]),
        records_read: number(&job["records-read"]),
        vertices: job["vertices"].as_array().map_or(Vec::new(), |all| all.iter().map(vertex).collect()),
        timestamps: {
            let mut timestamps = reached(&job["timestamps"]);
            timestamps.sort_by_key(|(_, at)| *at);
            timestamps
        },
    }
}

/// A job vertex as the REST API shows it.
fn vertex(vertex: &Json) -> Vertex {
    let tasks = reached(&vertex["tasks"]).into_iter().map(|(state, count)| (state, count as u32)).collect();
    let parallelism = vertex["parallelism"].as_u64().unwrap_or_default() as u32;
    Vertex { name: vertex["name"].as_str().unwrap_or_default().to_owned(), parallelism, tasks }
}

/// The states of a `{"STATE": number}` object whose number is not 0,
/// lower case.
fn reached(states: &Json) -> Vec<(String, u64)> {
    let Some(states) = states.as_object() else { return Vec::new() };
    states
        .iter()
        .filter_map(|(state, number)| number.as_u64().filter(|n| *n > 0).map(|n| (state.to_lowercase(), n)))
        .collect()
}

/// A `multipart/form-data` body of `parts` (name, bytes).
pub fn multipart(parts: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    // Random, so that no part's bytes hold it.
    let boundary = format!("weir-{}", uuid::Uuid::new_v4().simple());
    let mut body = Vec::new();
    for (name, content) in parts {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
        );
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}
