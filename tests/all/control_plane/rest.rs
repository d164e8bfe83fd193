//! Flink's REST API, over real HTTP, on a `weir cluster --keep-running`
//! process (a session cluster): the overview and the TaskExecutors, a job
//! submitted as a multipart upload and followed to its end, a job
//! cancelled, a savepoint taken, and bad requests answered 400, 404, 409
//! and 413 with a message, none of which disturbs the cluster; `weir
//! list`, `cancel`, `savepoint` and `info` against it, and against
//! nothing; SIGTERM stops it.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::Value as Json;
use weir_tests::process::weir_binary;
use weir_tests::{artifacts, eventually_blocking};

/// A `weir` process that says where it serves (a cluster role), ended
/// with SIGKILL when dropped. It holds the process's standard input: a
/// role started `--until-stdin-closes` ends with the test run, even one
/// that is killed.
pub struct Role {
    pub process: Child,
    /// The rest of the line that said so.
    pub said: String,
    /// Reads what it prints after that line, until it exits.
    printed: Option<std::thread::JoinHandle<String>>,
}

impl Role {
    /// Runs `weir <arguments>` and waits until it prints a line that
    /// starts with `prefix`. It logs warnings and errors only, unless the
    /// test run asks for more.
    pub fn start(arguments: &[&str], prefix: &str) -> Self {
        let level = std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into());
        Self::spawn(arguments, prefix, &level, Stdio::inherit())
    }

    /// [`Role::start`], logging at info level into `log`.
    pub fn logged(arguments: &[&str], prefix: &str, log: &Path) -> Self {
        Self::spawn(arguments, prefix, "info", std::fs::File::create(log).unwrap().into())
    }

    fn spawn(arguments: &[&str], prefix: &str, level: &str, log: Stdio) -> Self {
        let mut command = Command::new(weir_binary());
        command.args(arguments).env("RUST_LOG", level);
        let mut process =
            command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(log).spawn().expect("cannot run weir");
        let mut stdout = BufReader::new(process.stdout.take().unwrap()).lines();
        let said = stdout
            .by_ref()
            .map_while(Result::ok)
            .find_map(|line| line.strip_prefix(prefix).map(str::to_owned))
            .unwrap_or_else(|| panic!("`weir {}` never said `{prefix}`", arguments.join(" ")));
        // The rest of what it prints, read so that it can print.
        let printed = std::thread::spawn(move || stdout.map_while(Result::ok).map(|line| line + "\n").collect());
        Self { process, said, printed: Some(printed) }
    }

    /// Waits for it to exit by itself: whether it succeeded, and what it
    /// printed after the line [`Role::start`] waited for.
    pub fn wait(mut self) -> (bool, String) {
        let success = self.process.wait().unwrap().success();
        // Its standard output ends with it, and so does the reader.
        let printed = self.printed.take().map(|reader| reader.join().unwrap()).unwrap_or_default();
        (success, printed)
    }

    /// Closes its standard input, as a parent that dies does: whether a
    /// role started `--until-stdin-closes` then exits cleanly.
    pub fn orphan(mut self) -> bool {
        drop(self.process.stdin.take());
        let exited = eventually_blocking(|| {
            let status = self.process.try_wait().unwrap();
            status.ok_or_else(|| "it never exited once its standard input closed".to_owned())
        });
        exited.success()
    }

    /// Stops it with SIGTERM, as an operator does; whether it exited
    /// cleanly.
    pub fn terminate(mut self) -> bool {
        let stopped = Command::new("kill").args(["-TERM", &self.process.id().to_string()]).status().unwrap();
        stopped.success() && self.process.wait().unwrap().success()
    }
}

impl Drop for Role {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// A cluster's REST API at a base URL, and an agent for it.
pub struct Api {
    pub url: String,
    agent: ureq::Agent,
    /// The bearer token's header value, for a secured API.
    authorization: Option<String>,
}

impl Api {
    pub fn new(url: &str) -> Self {
        Self::secured(url, None, None)
    }

    /// The API at `url`, its certificate issued by the CA in `ca`, wanting
    /// `token`.
    pub fn secured(url: &str, ca: Option<&Path>, token: Option<&str>) -> Self {
        // A connection per request, as a script's: the server closes the
        // one an oversized upload came on, which a pool would hand out again.
        let mut config = ureq::Agent::config_builder().http_status_as_error(false).max_idle_connections(0);
        if let Some(ca) = ca {
            let pem = std::fs::read(ca).unwrap();
            let certificates = ureq::tls::parse_pem(&pem)
                .filter_map(|item| match item.unwrap() {
                    ureq::tls::PemItem::Certificate(certificate) => Some(certificate),
                    _ => None,
                })
                .collect();
            let roots = ureq::tls::RootCerts::Specific(std::sync::Arc::new(certificates));
            config = config.tls_config(ureq::tls::TlsConfig::builder().root_certs(roots).build());
        }
        let authorization = token.map(|token| format!("Bearer {token}"));
        Self { url: url.to_owned(), agent: config.build().into(), authorization }
    }

    fn authorized<B>(&self, request: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        match &self.authorization {
            Some(authorization) => request.header("Authorization", authorization),
            None => request,
        }
    }

    /// Sends `method` to `path` with `body` of `content_type`, if any: the
    /// status and the JSON answer.
    pub fn call(&self, method: &str, path: &str, body: Option<(&str, Vec<u8>)>) -> (u16, Json) {
        self.try_call(method, path, body).expect("an HTTP answer")
    }

    /// [`Api::call`], or how the request failed.
    pub fn try_call(
        &self,
        method: &str,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<(u16, Json), ureq::Error> {
        let url = format!("{}{path}", self.url);
        let response = match (method, body) {
            ("GET", None) => self.authorized(self.agent.get(&url)).call(),
            ("PATCH", None) => self.authorized(self.agent.patch(&url)).send_empty(),
            ("POST", Some((content_type, body))) => {
                self.authorized(self.agent.post(&url)).header("Content-Type", content_type).send(&body)
            }
            other => panic!("no such call: {other:?}"),
        };
        let mut response = response?;
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().expect("a body");
        Ok((status, serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))))
    }

    pub fn get(&self, path: &str) -> Json {
        let (status, answer) = self.call("GET", path, None);
        assert_eq!(status, 200, "GET {path}: {answer}");
        answer
    }

    /// Submits `component` with the job description `job` (multipart).
    pub fn submit(&self, component: &[u8], job: &str) -> (u16, Json) {
        self.try_submit(component, job).expect("an HTTP answer")
    }

    /// [`Api::submit`], or how the request failed.
    pub fn try_submit(&self, component: &[u8], job: &str) -> Result<(u16, Json), ureq::Error> {
        let boundary = "weir-test-boundary";
        let mut body = Vec::new();
        for (name, content) in [("component", component), ("job", job.as_bytes())] {
            body.extend_from_slice(
                format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            );
            body.extend_from_slice(content);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        self.try_call("POST", "/jobs", Some((&format!("multipart/form-data; boundary={boundary}"), body)))
    }

    /// Polls job `url` until `done` says so of its details; those details.
    pub fn until(&self, url: &str, what: &str, done: impl Fn(&Json) -> bool) -> Json {
        eventually_blocking(|| {
            let job = self.get(url);
            if done(&job) { Ok(job) } else { Err(format!("{url} never got to {what}: {job}")) }
        })
    }

    /// Polls job `url` until its state is `state`.
    pub fn until_state(&self, url: &str, state: &str) -> Json {
        self.until(url, state, |job| job["state"] == state)
    }
}

/// A `weir cluster --keep-running` process and its REST API.
struct Session {
    role: Role,
    api: Api,
    /// Its `io.tmp.dirs`: what a cluster killed with SIGKILL leaves goes
    /// with the test.
    _work: tempfile::TempDir,
}

impl std::ops::Deref for Session {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

impl Session {
    fn start(settings: &[&str]) -> Self {
        let work = weir_tests::temp_dir("session");
        let work_setting = format!("io.tmp.dirs={}", work.path().display());
        let mut arguments = vec!["cluster", "--keep-running", "--until-stdin-closes"];
        arguments.extend(["-D", "rest.port=0", "-D", "taskmanager.numberOfTaskSlots=2"]);
        for setting in settings.iter().copied().chain([work_setting.as_str()]) {
            arguments.extend(["-D", setting]);
        }
        let role = Role::start(&arguments, "REST API at ");
        let api = Api::new(&role.said);
        Self { role, api, _work: work }
    }

    /// Runs `weir <command>` against this cluster: its standard output, or
    /// its error.
    fn weir(&self, command: &[&str]) -> Result<String, String> {
        client(command, self.api.url.trim_start_matches("http://"))
    }
}

/// Runs `weir <command> --jobmanager <jobmanager>`: its standard output, or
/// its error.
fn client(command: &[&str], jobmanager: &str) -> Result<String, String> {
    let ran = Command::new(weir_binary()).args(command).args(["--jobmanager", jobmanager]).output().unwrap();
    match ran.status.success() {
        true => Ok(String::from_utf8_lossy(&ran.stdout).into_owned()),
        false => Err(String::from_utf8_lossy(&ran.stderr).into_owned()),
    }
}

fn error(answer: &Json) -> &str {
    answer["errors"][0].as_str().unwrap_or_default()
}

#[test]
fn the_rest_api_submits_follows_and_cancels_jobs_and_refuses_bad_requests() {
    let session = Session::start(&["rest.server.max-content-length=1000000"]);
    let overview = session.get("/overview");
    assert_eq!((overview["taskmanagers"].as_u64(), overview["slots-total"].as_u64()), (Some(1), Some(2)));
    assert_eq!(overview["slots-available"].as_u64(), Some(2));
    let task_managers = session.get("/taskmanagers");
    assert_eq!(task_managers["taskmanagers"][0]["slotsNumber"].as_u64(), Some(2), "{task_managers}");
    assert!(session.get("/config")["flink-version"].as_str().is_some_and(|version| version.starts_with("weir")));

    // A job, submitted as Flink's client does (multipart), to its end.
    let trivial = std::fs::read(artifacts::TRIVIAL_TASK).unwrap();
    let (status, submitted) = session.submit(&trivial, r#"{"name": "trivial", "parallelism": 2}"#);
    assert_eq!(status, 202, "{submitted}");
    let url = submitted["jobUrl"].as_str().unwrap().to_owned();
    let id = url.strip_prefix("/jobs/").unwrap().to_owned();
    assert_eq!(id.len(), 32, "a job id as Flink writes it: {id}");
    let finished = session.until_state(&url, "FINISHED");
    // Once it ended, its last details: both subtasks finished, and how
    // long it ran.
    assert_eq!(finished["vertices"][0]["tasks"]["FINISHED"], 2, "{finished}");
    assert_eq!(finished["vertices"][0]["status"], "FINISHED", "{finished}");
    let (start, end) = (finished["start-time"].as_i64().unwrap(), finished["end-time"].as_i64().unwrap());
    assert_eq!(end, finished["timestamps"]["FINISHED"].as_i64().unwrap(), "{finished}");
    assert_eq!(finished["duration"].as_i64(), Some(end - start), "{finished}");
    assert_eq!(session.get("/jobs")["jobs"][0], serde_json::json!({ "id": id, "status": "FINISHED" }));
    assert_eq!(session.get("/jobs/overview")["jobs"][0]["name"], "trivial");
    assert_eq!(session.weir(&["list"]), Ok(format!("{id} : trivial (FINISHED)\n")));

    // A job that runs until it is cancelled.
    let (status, endless) = session.submit(&trivial, r#"{"name": "endless", "arguments": ["--forever"]}"#);
    assert_eq!(status, 202, "{endless}");
    let endless = endless["jobUrl"].as_str().unwrap().to_owned();
    let running = session.until(&endless, "its task running", |job| job["vertices"][0]["tasks"]["RUNNING"] == 1);
    let endless_id = endless.trim_start_matches("/jobs/");
    // Flink's details: the vertex and its task states, the times of the
    // statuses reached and none of those not reached.
    assert_eq!(running["vertices"][0]["name"], "task", "{running}");
    assert_eq!(running["vertices"][0]["parallelism"], 1, "{running}");
    assert_eq!(running["vertices"][0]["tasks"]["RUNNING"], 1, "{running}");
    assert_eq!(running["vertices"][0]["status"], "RUNNING", "{running}");
    let at = |status: &str| running["timestamps"][status].as_u64().unwrap();
    assert!(
        0 < at("INITIALIZING") && at("INITIALIZING") <= at("CREATED") && at("CREATED") <= at("RUNNING"),
        "{running}"
    );
    assert_eq!((at("FINISHED"), running["end-time"].as_i64()), (0, Some(-1)), "{running}");
    assert_eq!(running["start-time"].as_u64(), Some(at("INITIALIZING")), "{running}");
    // Its TaskExecutor holds one slot for it.
    let listed = session.get("/taskmanagers");
    let task_manager = listed["taskmanagers"][0]["id"].as_str().unwrap();
    // Resource ids are addresses (`weir://...`): escaped in the path.
    let escaped = task_manager.replace(':', "%3A").replace('/', "%2F");
    let one = session.get(&format!("/taskmanagers/{escaped}"));
    assert_eq!(one["id"], task_manager, "{one}");
    assert_eq!((one["slotsNumber"].as_u64(), one["freeSlots"].as_u64()), (Some(2), Some(1)), "{one}");
    assert_eq!(one["allocatedSlots"].as_array().map(Vec::len), Some(1), "{one}");
    assert_eq!(one["allocatedSlots"][0]["jobId"], endless_id, "{one}");
    assert!(one["path"].as_str().is_some_and(|path| path.starts_with("weir://")), "{one}");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    let heartbeat = one["timeSinceLastHeartbeat"].as_u64().unwrap();
    assert!(0 < heartbeat && heartbeat <= now, "when its last heartbeat came: {one}");

    // A savepoint of it, through `weir savepoint`: into the job's
    // checkpoint directory, where it is on disk.
    let saved = session.weir(&["savepoint", endless_id]).unwrap();
    let location = saved.lines().find_map(|line| line.strip_prefix("Savepoint completed. Path: ")).unwrap();
    assert!(Path::new(location).join("_metadata").is_file(), "{saved}");
    assert!(session.get(&format!("{endless}/checkpoints"))["counts"]["completed"].as_u64() >= Some(1));
    let savepoints = format!("{endless}/savepoints");
    let elsewhere = Some(("application/json", br#"{"target-directory": "/elsewhere"}"#.to_vec()));
    let (status, answer) = session.call("POST", &savepoints, elsewhere);
    assert_eq!((status, error(&answer).contains("`target-directory` is not supported")), (400, true), "{answer}");
    let (status, answer) = session.call("GET", &format!("{savepoints}/no-such-trigger"), None);
    assert_eq!(status, 404, "{answer}");

    assert_eq!(session.weir(&["cancel", endless_id]), Ok(format!("Cancelled job {endless_id}.\n")));
    session.until_state(&endless, "CANCELED");
    let (status, again) = session.call("PATCH", &format!("{endless}?mode=cancel"), None);
    assert_eq!((status, error(&again).contains("has ended already (canceled)")), (409, true), "{again}");
    let (status, late) = session.call("POST", &savepoints, Some(("application/json", b"{}".to_vec())));
    assert_eq!((status, error(&late).contains("only a running job takes a savepoint")), (409, true), "{late}");

    // Bad requests: each answered with what is wrong, the cluster untouched.
    let (status, answer) = session.call("GET", "/jobs/not-a-job", None);
    assert_eq!((status, error(&answer).contains("is not a job id")), (400, true), "{answer}");
    let (status, answer) = session.call("GET", "/jobs/00000000000000000000000000000001", None);
    assert_eq!((status, error(&answer)), (404, "Job 00000000000000000000000000000001 not found"));
    let (status, answer) = session.call("PATCH", &format!("{url}?mode=stop"), None);
    assert_eq!((status, error(&answer).contains("use `mode=cancel`")), (400, true), "{answer}");
    let (status, answer) = session.submit(b"not a component", r#"{"name": "garbage"}"#);
    assert_eq!((status, error(&answer).contains("does not start as an endpoint")), (400, true), "{answer}");
    let (status, answer) = session.submit(&trivial, r#"{"parallelism": 2}"#);
    assert_eq!((status, error(&answer).contains("the `job` part is not a job description")), (400, true), "{answer}");
    // Too large: 413, or, as the server answers before it has read the
    // whole upload and closes the connection, an upload cut short.
    match session.try_submit(&vec![0; 2_000_000], r#"{"name": "huge"}"#) {
        Ok((status, answer)) => assert_eq!(status, 413, "{answer}"),
        Err(ureq::Error::Io(cut)) => {
            assert!(matches!(cut.kind(), std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset), "{cut}")
        }
        Err(other) => panic!("neither 413 nor an upload cut short: {other}"),
    }
    let (status, answer) = session.call("GET", "/taskmanagers/no-such-one", None);
    assert_eq!((status, error(&answer)), (404, "TaskManager no-such-one not found"), "{answer}");
    let (status, answer) = session.call("GET", "/no/such/path", None);
    assert_eq!(status, 404, "{answer}");
    let overview = session.get("/overview");
    assert_eq!(
        (overview["jobs-finished"].as_u64(), overview["jobs-cancelled"].as_u64(), overview["jobs-running"].as_u64()),
        (Some(1), Some(1), Some(0)),
        "{overview}"
    );
    let (status, next) = session.submit(&trivial, r#"{"name": "next"}"#);
    assert_eq!(status, 202, "{next}");
    session.until_state(next["jobUrl"].as_str().unwrap(), "FINISHED");

    let info = session.weir(&["info"]).unwrap();
    assert!(info.starts_with("1 TaskManager(s), 2 slot(s), 2 available; jobs: 0 running, 2 finished"), "{info}");
    let refused = session.weir(&["cancel", "not-a-job"]).unwrap_err();
    assert!(refused.contains("`not-a-job` is not a job id"), "{refused}");
    let nowhere = client(&["list"], "127.0.0.1:1").unwrap_err();
    assert!(nowhere.contains("cannot reach a cluster's REST API at http://127.0.0.1:1"), "{nowhere}");
    assert_eq!(nowhere.lines().count(), 1, "one line: {nowhere}");

    // The OpenAPI description lists every path served, and serves every
    // path it lists (none falls through to "no such REST path").
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let fetch =
        |path: &str| agent.get(&format!("{}{path}", session.api.url)).call().unwrap().into_body().read_to_string();
    let description = fetch("/openapi.yaml").unwrap();
    let listed: Vec<&str> = description
        .lines()
        .filter_map(|line| line.strip_prefix("  /").and_then(|path| path.strip_suffix(':')))
        .collect();
    let served = [
        "overview",
        "config",
        "openapi.yaml",
        "jobs",
        "jobs/overview",
        "jobs/{jobid}",
        "jobs/{jobid}/exceptions",
        "jobs/{jobid}/checkpoints",
        "jobs/{jobid}/savepoints",
        "jobs/{jobid}/savepoints/{triggerid}",
        "taskmanagers",
        "taskmanagers/{taskmanagerid}",
        "endpoints",
        "endpoints/swap",
        "endpoints/{id}/swap",
    ];
    assert_eq!(listed, served, "the description lists the paths served");
    for path in listed {
        let path = path
            .replace("{jobid}", endless_id)
            .replace("{triggerid}", "t")
            .replace("{taskmanagerid}", "tm")
            .replace("{id}", "x");
        let path = format!("/{path}");
        let answer = fetch(&path).unwrap();
        assert!(!answer.contains("no such REST path"), "{path} is served: {answer}");
    }

    // SIGTERM stops it, orderly.
    assert!(session.role.terminate(), "it exits cleanly on SIGTERM");
}

/// With `security.ssl.rest.*` and `security.rest.token` the API speaks
/// only HTTPS and answers only requests with the token, 401 otherwise;
/// the client, configured alike, runs a job through it.
#[test]
fn a_secured_rest_api_speaks_tls_and_wants_its_token() {
    let dir = weir_tests::temp_dir("rest-tls");
    let tls = crate::remote::tls::Authority::new(dir.path()).host("rest");
    let token = "a-token-only-this-cluster-knows";
    let certificate = format!("security.ssl.rest.certificate={}", tls.certificate.display());
    let key = format!("security.ssl.rest.key={}", tls.key.display());
    let secured = ["security.ssl.rest.enabled=true", &certificate, &key, &format!("security.rest.token={token}")];
    let session = Session::start(&secured);
    let url = session.api.url.clone();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");

    let (status, answer) = Api::secured(&url, Some(&tls.ca), None).call("GET", "/overview", None);
    assert_eq!((status, error(&answer).contains("send `Authorization: Bearer TOKEN`")), (401, true), "{answer}");
    let (status, answer) = Api::secured(&url, Some(&tls.ca), Some("a-guess")).call("GET", "/jobs", None);
    assert_eq!((status, error(&answer).contains("not this cluster's")), (401, true), "{answer}");
    let api = Api::secured(&url, Some(&tls.ca), Some(token));
    assert_eq!(api.get("/overview")["taskmanagers"], 1);
    // Plain HTTP gets no answer; nor does a client that does not trust the
    // certificate.
    let plain = Api::new(&url.replace("https://", "http://"));
    assert!(plain.try_call("GET", "/overview", None).is_err(), "plain HTTP is not served");
    assert!(Api::new(&url).try_call("GET", "/overview", None).is_err(), "an untrusted certificate is refused");

    // The client, from a config file, as a user configures it.
    let port = url.rsplit(':').next().unwrap();
    let config = dir.path().join("client.toml");
    let lines = [
        "rest.address = \"127.0.0.1\"".to_owned(),
        format!("rest.port = {port}"),
        "security.ssl.rest.enabled = true".to_owned(),
        format!("security.ssl.rest.ca = {:?}", tls.ca),
        format!("security.rest.token = {token:?}"),
    ];
    std::fs::write(&config, lines.join("\n")).unwrap();
    let weir = |arguments: &[&str]| Command::new(weir_binary()).args(arguments).output().unwrap();
    let config = config.to_str().unwrap();
    let ran = weir(&["run", "-c", config, artifacts::TRIVIAL_TASK]);
    let said = String::from_utf8_lossy(&ran.stdout);
    assert!(ran.status.success(), "{said}{}", String::from_utf8_lossy(&ran.stderr));
    assert!(said.contains("Job has been submitted with JobID"), "{said}");
    assert_eq!(api.get("/jobs/overview")["jobs"][0]["state"], "FINISHED");
    let refused = weir(&["list", "-c", config, "-D", "security.rest.token=a-guess"]);
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && said.contains("not this cluster's"), "{said}");
    assert_eq!(said.lines().count(), 1, "one line: {said}");
    assert!(session.role.terminate(), "it exits cleanly on SIGTERM");
}

/// `weir swap` and `POST /endpoints/{id}/swap` replace the component
/// behind an endpoint of a running cluster; what cannot replace it is
/// refused with the right status and a message, and the cluster runs jobs
/// after all of it.
#[test]
fn an_endpoint_of_a_running_cluster_swaps_through_the_rest_api() {
    let session = Session::start(&[]);
    let endpoints = session.get("/endpoints");
    let resource_manager = endpoints["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|endpoint| endpoint["id"] == "resourcemanager")
        .unwrap_or_else(|| panic!("the ResourceManager is listed: {endpoints}"));
    assert_eq!(resource_manager["state"], "STARTED");
    assert!(resource_manager["linearMemory"].as_u64().is_some_and(|bytes| bytes > 0), "{resource_manager}");

    let swapped = session.weir(&["swap", "resourcemanager", artifacts::RESOURCEMANAGER]).unwrap();
    assert!(swapped.contains("Swapped endpoint resourcemanager") && swapped.contains("carried over (layout 1"));

    let wasm = |path: &str| Some(("application/wasm", std::fs::read(path).unwrap()));
    let (status, answer) =
        session.call("POST", "/endpoints/resourcemanager/swap", Some(("application/wasm", b"not wasm".to_vec())));
    assert_eq!(status, 400, "{answer}");
    assert!(error(&answer).contains("is not a valid WebAssembly component"), "{answer}");
    let (status, answer) = session.call("POST", "/endpoints/resourcemanager/swap", wasm(artifacts::ECHO));
    assert_eq!(status, 409, "{answer}");
    assert!(error(&answer).contains("`weir:flink/resourcemanager@0.1.0` is not exported"), "{answer}");
    let (status, answer) = session.call("POST", "/endpoints/nobody/swap", wasm(artifacts::RESOURCEMANAGER));
    assert_eq!((status, error(&answer)), (404, "no endpoint `nobody` runs on this host"));
    let (status, answer) =
        session.call("POST", "/endpoints/resourcemanager/swap?drainTimeout=soon", wasm(artifacts::RESOURCEMANAGER));
    assert_eq!(status, 400, "{answer}");
    assert!(error(&answer).contains("`drainTimeout`, in milliseconds"), "{answer}");
    let refused = session.weir(&["swap", "resourcemanager", "/nonexistent.wasm"]).unwrap_err();
    assert!(refused.contains("cannot read the component /nonexistent.wasm"), "{refused}");

    // A whole kind at once: every endpoint that runs one component.
    let listed = session.get("/endpoints");
    let running =
        listed["endpoints"].as_array().unwrap().iter().find(|e| e["id"] == "resourcemanager").unwrap()["component"]
            .as_str()
            .unwrap()
            .to_owned();
    let kind = session.weir(&["swap", "--all", &running, artifacts::RESOURCEMANAGER_SPREAD]).unwrap();
    assert!(kind.starts_with(&format!("Swapped 1 endpoint(s) running {running}")), "{kind}");
    let (status, answer) = session.call("POST", "/endpoints/swap?running=nothing", wasm(artifacts::RESOURCEMANAGER));
    assert_eq!((status, error(&answer)), (404, "no endpoint runs `nothing`"));

    let trivial = std::fs::read(artifacts::TRIVIAL_TASK).unwrap();
    let (status, submitted) = session.submit(&trivial, r#"{"name": "after the swaps", "parallelism": 2}"#);
    assert_eq!(status, 202, "{submitted}");
    session.until_state(submitted["jobUrl"].as_str().unwrap(), "FINISHED");
    assert!(session.role.orphan(), "it stops cleanly once its standard input closes");
}
