//! Savepoints through the REST API, as Flink's asynchronous operations:
//! `POST /jobs/{jobid}/savepoints` (body optional: `{"cancel-job": true}`)
//! starts one and answers 202 with a `request-id`; `GET
//! /jobs/{jobid}/savepoints/{triggerid}` answers `IN_PROGRESS`, or
//! `COMPLETED` with the savepoint's `location` or its `failure-cause`.
//! Savepoints go to the job's checkpoint directory (`target-directory` is
//! refused: the JobMaster may write only there).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use weir::FencingToken;

use super::{Answer, Cluster, Failure, bad_request, known};

/// A savepoint asked for: under way (`None`), or its outcome.
type Outcome = Arc<Mutex<Option<Result<PathBuf, String>>>>;

/// The savepoints asked for, by job and trigger id.
#[derive(Default)]
pub(in crate::cluster) struct Operations(Mutex<HashMap<(FencingToken, String), Outcome>>);

impl Operations {
    fn get(&self, job: FencingToken, trigger: &str) -> Option<Outcome> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).get(&(job, trigger.to_owned())).cloned()
    }

    fn insert(&self, job: FencingToken, trigger: String, outcome: Outcome) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).insert((job, trigger), outcome);
    }
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct Request {
    target_directory: Option<String>,
    #[serde(default)]
    cancel_job: bool,
}

pub(super) async fn trigger(State(cluster): Cluster, Path(jobid): Path<String>, body: Bytes) -> Response {
    let started = async {
        let request: Request = match body.is_empty() {
            true => Request::default(),
            false => serde_json::from_slice(&body)
                .map_err(|why| bad_request(format!("the body is not a savepoint request: {why}")))?,
        };
        if request.target_directory.is_some() {
            return Err(bad_request(
                "`target-directory` is not supported: savepoints go to the job's checkpoint directory",
            ));
        }
        let (id, _, status) = known(&cluster, &jobid).await?;
        if status != "running" {
            let why = format!("job {jobid} is {status}: only a running job takes a savepoint");
            return Err(Failure(StatusCode::CONFLICT, why));
        }
        let trigger = uuid::Uuid::new_v4().simple().to_string();
        let outcome = Outcome::default();
        cluster.savepoints.insert(id, trigger.clone(), outcome.clone());
        let api = cluster.cluster.clone();
        tokio::spawn(async move {
            let taken = api.trigger_savepoint(id, request.cancel_job).await.map_err(|why| why.to_string());
            *outcome.lock().unwrap_or_else(PoisonError::into_inner) = Some(taken);
        });
        Ok(trigger)
    };
    match started.await {
        Ok(trigger) => (StatusCode::ACCEPTED, Json(json!({ "request-id": trigger }))).into_response(),
        Err(failure) => failure.into_response(),
    }
}

pub(super) async fn status(State(cluster): Cluster, Path((jobid, trigger)): Path<(String, String)>) -> Answer {
    let (id, _, _) = known(&cluster, &jobid).await?;
    let outcome = cluster.savepoints.get(id, &trigger).ok_or_else(|| {
        Failure(StatusCode::NOT_FOUND, format!("no savepoint of job {jobid} was triggered as {trigger}"))
    })?;
    let outcome = outcome.lock().unwrap_or_else(PoisonError::into_inner).clone();
    Ok(Json(match outcome {
        None => json!({ "status": { "id": "IN_PROGRESS" } }),
        Some(Ok(location)) => {
            json!({ "status": { "id": "COMPLETED" }, "operation": { "location": location.display().to_string() } })
        }
        Some(Err(why)) => json!({
            "status": { "id": "COMPLETED" },
            "operation": { "failure-cause": { "class": "weir", "stack-trace": why } },
        }),
    }))
}
