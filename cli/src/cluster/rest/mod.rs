//! Flink's REST API over a jobmanager, on HTTP/1.1 (axum): Flink's
//! paths, JSON field names and error shape (`{"errors": [...]}`), so that
//! scripts and habits formed on Flink's API carry over. Job ids are
//! written as Flink writes them, 32 hexadecimal digits, and read with or
//! without hyphens.
//!
//! Served: `GET /overview`, `GET /config`, `GET /jobs`, `GET
//! /jobs/overview`, `GET /jobs/{jobid}`, `PATCH /jobs/{jobid}?mode=cancel`
//! (202), `GET /jobs/{jobid}/exceptions`, `GET /jobs/{jobid}/checkpoints`,
//! `POST /jobs/{jobid}/savepoints` and `GET
//! /jobs/{jobid}/savepoints/{triggerid}`, `GET /taskmanagers`, `GET
//! /taskmanagers/{taskmanagerid}` and `POST /jobs`; and weir's own `GET
//! /endpoints`, `POST /endpoints/{id}/swap` and `POST /endpoints/swap`
//! ([`endpoints`]). A submission is multipart
//! (Flink's JobGraph is Java-serialised; weir's description is its own): a
//! `component` part, the task component's bytes, and a `job` part, JSON:
//! `{"name": "wordcount", "parallelism": 2, "arguments": ["--input", ...],
//! "checkpointInterval": 1000}` (all but `name` optional). It answers 202
//! with `{"jobUrl": "/jobs/<id>"}`. A malformed request gets 400, an
//! unknown job 404, a body over `rest.server.max-content-length` 413, each
//! with a message; none of them reaches the cluster. A standby jobmanager
//! (its Dispatcher does not lead) answers every path 503, naming where the
//! leader is. `GET /openapi.yaml` describes it all (`openapi.yaml`, beside
//! this file). With `security.ssl.rest.*` it speaks only HTTPS, and with
//! `security.rest.token` it answers 401 to a request without the token
//! ([`security`]).

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value as JsonValue, json};
use weir::FencingToken;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::jobmanager::{JobManager, JobSpec, TaskManager, ended};
use super::settings::Settings;
use crate::Error;
use details::{state, written};

mod details;
mod endpoints;
mod savepoints;
mod security;

/// A failed request: its status and why, as Flink's `{"errors": [...]}`.
pub(super) struct Failure(StatusCode, String);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "errors": [self.1] }))).into_response()
    }
}

/// The cluster failed to answer: 500, with its message.
pub(super) fn internal(error: Error) -> Failure {
    Failure(StatusCode::INTERNAL_SERVER_ERROR, error.to_string())
}

pub(super) fn bad_request(why: impl Into<String>) -> Failure {
    Failure(StatusCode::BAD_REQUEST, why.into())
}

pub(super) type Answer = Result<Json<JsonValue>, Failure>;
/// The API's OpenAPI description, kept beside the code.
const OPENAPI: &str = include_str!("openapi.yaml");

/// What the handlers share: the jobmanager, and the savepoints asked for.
pub(super) struct Api {
    cluster: Arc<JobManager>,
    savepoints: savepoints::Operations,
}

impl std::ops::Deref for Api {
    type Target = JobManager;

    fn deref(&self) -> &JobManager {
        &self.cluster
    }
}

pub(super) type Cluster = State<Arc<Api>>;

/// The REST API, served until [`Server::stop`].
pub struct Server {
    stop: oneshot::Sender<()>,
    serving: JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// Serves `cluster`'s API at `rest.bind-address`:`rest.port`, over
    /// TLS if `security.ssl.rest.enabled`; its URL (with the port picked,
    /// for port 0).
    pub async fn start(cluster: Arc<JobManager>, settings: &Settings) -> Result<(Self, String), Error> {
        let security = &settings.rest_security;
        let acceptor = security.tls.as_ref().map(security::acceptor).transpose()?;
        let listener = tokio::net::TcpListener::bind(&settings.rest).await.map_err(|e| {
            format!("cannot serve the REST API at {}: {e}; set `rest.port` (0 picks a free one)", settings.rest)
        })?;
        let address = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let stopped = async { _ = stopped.await };
        let api = router(cluster, settings.rest_max_content_length, security.token.as_deref());
        let (serving, scheme) = match acceptor {
            Some(acceptor) => {
                let listener = security::TlsListener::new(listener, acceptor)?;
                (tokio::spawn(axum::serve(listener, api).with_graceful_shutdown(stopped).into_future()), "https")
            }
            None => (tokio::spawn(axum::serve(listener, api).with_graceful_shutdown(stopped).into_future()), "http"),
        };
        Ok((Self { stop, serving }, format!("{scheme}://{address}")))
    }

    /// Stops serving once the requests under way are answered.
    pub async fn stop(self) -> Result<(), Error> {
        let _ = self.stop.send(());
        Ok(self.serving.await??)
    }
}

/// Takes back the jobmanager the API served, once the API has let go of it.
/// The server returns from a graceful stop once its connections are done,
/// but a connection's task may drop its copy of the jobmanager a moment
/// after; this waits for that, up to ten seconds.
pub async fn released(jobmanager: Arc<JobManager>) -> Result<JobManager, Error> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut shared = jobmanager;
    loop {
        match Arc::try_unwrap(shared) {
            Ok(jobmanager) => return Ok(jobmanager),
            Err(still) if tokio::time::Instant::now() < deadline => {
                shared = still;
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
            Err(_) => return Err("the REST API still holds the jobmanager ten seconds after it stopped".into()),
        }
    }
}

/// The API's routes over `cluster`; bodies over `max_content_length`
/// bytes are refused with 413, and, with a `token`, requests without it
/// with 401.
fn router(cluster: Arc<JobManager>, max_content_length: usize, token: Option<&str>) -> Router {
    let cluster = Arc::new(Api { cluster, savepoints: savepoints::Operations::default() });
    let api = Router::new()
        .route("/overview", get(overview))
        .route("/config", get(config))
        .route("/openapi.yaml", get(async || ([(header::CONTENT_TYPE, "application/yaml")], OPENAPI)))
        .route("/jobs", get(jobs).post(submit))
        .route("/jobs/overview", get(jobs_overview))
        .route("/jobs/{jobid}", get(job).patch(cancel))
        .route("/jobs/{jobid}/exceptions", get(exceptions))
        .route("/jobs/{jobid}/checkpoints", get(checkpoints))
        .route("/jobs/{jobid}/savepoints", post(savepoints::trigger))
        .route("/jobs/{jobid}/savepoints/{triggerid}", get(savepoints::status))
        .route("/taskmanagers", get(task_managers))
        .route("/taskmanagers/{taskmanagerid}", get(task_manager))
        .route("/endpoints", get(endpoints::list))
        .route("/endpoints/swap", post(endpoints::swap_all))
        .route("/endpoints/{id}/swap", post(endpoints::swap))
        .fallback(async || Failure(StatusCode::NOT_FOUND, "Not found: no such REST path".into()))
        .layer(DefaultBodyLimit::max(max_content_length))
        .layer(middleware::from_fn_with_state(cluster.clone(), only_leading))
        .with_state(cluster);
    // Outermost: not even a standby's answer without the token.
    match token {
        Some(token) => api.layer(middleware::from_fn_with_state(Arc::<str>::from(token), security::bearer_token)),
        None => api,
    }
}

/// Lets a request through to a leading jobmanager; a standby one answers
/// 503 with where the leader is.
async fn only_leading(State(cluster): Cluster, request: Request, next: Next) -> Response {
    if cluster.leads() {
        return next.run(request).await;
    }
    let leader = match cluster.leader_address() {
        Some(address) => format!("the leading one's Dispatcher is at {address}; ask its REST API"),
        None => "no jobmanager leads at the moment; try again shortly".to_owned(),
    };
    Failure(StatusCode::SERVICE_UNAVAILABLE, format!("this jobmanager stands by: {leader}")).into_response()
}

/// The job `text` names, if the cluster knows it: its name and status.
pub(super) async fn known(cluster: &JobManager, text: &str) -> Result<(FencingToken, String, String), Failure> {
    let uuid = uuid::Uuid::parse_str(text)
        .map_err(|_| bad_request(format!("`{text}` is not a job id: 32 hexadecimal digits")))?;
    let (high, low) = uuid.as_u64_pair();
    let id = FencingToken::from_u64_pair(high, low);
    let jobs = cluster.jobs().await.map_err(internal)?;
    jobs.into_iter()
        .find(|(known, _, _)| *known == id)
        .ok_or_else(|| Failure(StatusCode::NOT_FOUND, format!("Job {} not found", written(id))))
}

async fn overview(State(cluster): Cluster) -> Answer {
    let task_managers = cluster.task_managers().await.map_err(internal)?;
    let jobs = cluster.jobs().await.map_err(internal)?;
    let count = |status: &str| jobs.iter().filter(|(_, _, known)| known == status).count();
    let running = jobs.iter().filter(|(_, _, status)| !ended(status)).count();
    Ok(Json(json!({
        "taskmanagers": task_managers.len(),
        "slots-total": task_managers.iter().map(|tm| tm.slots).sum::<u32>(),
        "slots-available": task_managers.iter().map(TaskManager::free).sum::<u32>(),
        "jobs-running": running,
        "jobs-finished": count("finished"),
        "jobs-cancelled": count("canceled"),
        "jobs-failed": count("failed"),
        "flink-version": concat!("weir ", env!("CARGO_PKG_VERSION")),
    })))
}

async fn config() -> Json<JsonValue> {
    Json(json!({
        "refresh-interval": 3000,
        "timezone-name": "UTC",
        "timezone-offset": 0,
        "flink-version": concat!("weir ", env!("CARGO_PKG_VERSION")),
        "features": { "web-submit": false, "web-cancel": true },
    }))
}

async fn jobs(State(cluster): Cluster) -> Answer {
    let jobs = cluster.jobs().await.map_err(internal)?;
    let jobs: Vec<JsonValue> =
        jobs.into_iter().map(|(id, _, status)| json!({ "id": written(id), "status": state(&status) })).collect();
    Ok(Json(json!({ "jobs": jobs })))
}

async fn jobs_overview(State(cluster): Cluster) -> Answer {
    let mut overviews = Vec::new();
    for (id, name, _) in cluster.jobs().await.map_err(internal)? {
        overviews.push(details::job(&cluster, id, name).await?);
    }
    Ok(Json(json!({ "jobs": overviews })))
}

async fn job(State(cluster): Cluster, Path(jobid): Path<String>) -> Answer {
    let (id, name, _) = known(&cluster, &jobid).await?;
    Ok(Json(details::job(&cluster, id, name).await?))
}

/// A job's checkpoints (Flink's `CheckpointingStatistics`): how many
/// completed.
async fn checkpoints(State(cluster): Cluster, Path(jobid): Path<String>) -> Answer {
    let (id, _, _) = known(&cluster, &jobid).await?;
    let details = cluster.details(id).await.map_err(internal)?;
    Ok(Json(json!({ "counts": { "completed": details.checkpoints } })))
}

/// Why a job failed (Flink's `JobExceptionsInfo`): its root exception
/// once it has ended failed, else none.
async fn exceptions(State(cluster): Cluster, Path(jobid): Path<String>) -> Answer {
    let (id, _, status) = known(&cluster, &jobid).await?;
    let failure = match ended(&status) {
        true => cluster.outcome(id).await.map_err(internal)?.failure,
        false => None,
    };
    Ok(Json(json!({ "root-exception": failure, "all-exceptions": [], "truncated": false })))
}

#[derive(Deserialize)]
struct Mode {
    mode: Option<String>,
}

async fn cancel(State(cluster): Cluster, Path(jobid): Path<String>, Query(mode): Query<Mode>) -> Response {
    let cancelled = async {
        match mode.mode.as_deref() {
            Some("cancel") => {}
            Some(other) => return Err(bad_request(format!("mode `{other}` is not supported; use `mode=cancel`"))),
            None => return Err(bad_request("say what to do: `PATCH /jobs/{jobid}?mode=cancel`")),
        }
        let (id, _, _) = known(&cluster, &jobid).await?;
        cluster.cancel(id).await.map_err(|why| Failure(StatusCode::CONFLICT, why.to_string()))
    };
    match cancelled.await {
        Ok(()) => (StatusCode::ACCEPTED, Json(json!({}))).into_response(),
        Err(failure) => failure.into_response(),
    }
}

async fn task_managers(State(cluster): Cluster) -> Answer {
    let all = cluster.task_managers().await.map_err(internal)?;
    let all: Vec<JsonValue> = all.iter().map(|tm| details::task_manager(tm, false)).collect();
    Ok(Json(json!({ "taskmanagers": all })))
}

async fn task_manager(State(cluster): Cluster, Path(id): Path<String>) -> Answer {
    let all = cluster.task_managers().await.map_err(internal)?;
    let found = all.iter().find(|tm| tm.id == id);
    let found = found.ok_or_else(|| Failure(StatusCode::NOT_FOUND, format!("TaskManager {id} not found")))?;
    Ok(Json(details::task_manager(found, true)))
}

/// The `job` part of a submission.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Submission {
    name: String,
    #[serde(default = "one")]
    parallelism: u32,
    #[serde(default)]
    arguments: Vec<String>,
    checkpoint_interval: Option<u64>,
}

fn one() -> u32 {
    1
}

/// Reads a submission's parts: the component's bytes and the job.
async fn parts(mut multipart: Multipart) -> Result<(Vec<u8>, Submission), Failure> {
    let (mut component, mut job) = (None, None);
    while let Some(field) = multipart.next_field().await.map_err(|error| Failure(error.status(), error.body_text()))? {
        let name = field.name().unwrap_or_default().to_owned();
        let bytes = field.bytes().await.map_err(|error| Failure(error.status(), error.body_text()))?;
        match name.as_str() {
            "component" => component = Some(bytes.to_vec()),
            "job" => {
                let parsed = serde_json::from_slice::<Submission>(&bytes)
                    .map_err(|error| bad_request(format!("the `job` part is not a job description: {error}")))?;
                job = Some(parsed);
            }
            other => {
                return Err(bad_request(format!("unknown part `{other}`; a submission has `component` and `job`")));
            }
        }
    }
    let component =
        component.ok_or_else(|| bad_request("the `component` part is missing: the task component's bytes"))?;
    let job = job.ok_or_else(|| bad_request("the `job` part is missing: `{\"name\": ..., \"parallelism\": ...}`"))?;
    Ok((component, job))
}

async fn submit(State(cluster): Cluster, multipart: Multipart) -> Response {
    let submitted = async {
        let (component, job) = parts(multipart).await?;
        let key = cluster.upload(&component).await.map_err(|why| bad_request(why.to_string()))?;
        let id = FencingToken::random();
        let spec = JobSpec {
            name: &job.name,
            parallelism: job.parallelism,
            arguments: &job.arguments,
            checkpoint_interval_ms: job.checkpoint_interval,
        };
        cluster.submit(id, &spec, key).await.map_err(|why| bad_request(why.to_string()))?;
        Ok::<_, Failure>(id)
    };
    match submitted.await {
        Ok(id) => (StatusCode::ACCEPTED, Json(json!({ "jobUrl": format!("/jobs/{}", written(id)) }))).into_response(),
        Err(failure) => failure.into_response(),
    }
}
