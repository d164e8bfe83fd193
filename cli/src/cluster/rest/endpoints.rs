//! weir's own paths, beside Flink's: the endpoints of the jobmanager's
//! host, and swapping the component behind one while it runs.
//!
//! `GET /endpoints` lists them (id, address, component, state, what each
//! served and holds). `POST /endpoints/{id}/swap` takes the new component's
//! bytes as the body (`application/wasm`) and `drainTimeout` (milliseconds)
//! in the query; it answers 200 with the swap's report, 400 for bytes that
//! are not a component of this host's world, 404 for an unknown endpoint,
//! and 409, with why, for a swap the endpoint refused (it serves on as it
//! was). `POST /endpoints/swap?running=NAME` swaps every endpoint that runs
//! the component named `NAME` (as listed), one after another, stopping at
//! the first refusal: 200 with `{"swapped": [reports]}`, 404 if none runs
//! it, 409 naming how many were swapped before the refusal.

use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Json, body::Bytes};
use serde::Deserialize;
use serde_json::json;
use weir::{EndpointComponent, Handover, SwapError, SwapOptions, SwapReport};

use super::{Answer, Cluster, Failure, bad_request};

pub(super) async fn list(State(cluster): Cluster) -> Answer {
    let endpoints: Vec<_> = cluster
        .host()
        .endpoints()
        .into_iter()
        .map(|endpoint| {
            json!({
                "id": endpoint.id,
                "address": endpoint.address,
                "component": endpoint.component,
                "state": format!("{:?}", endpoint.state).to_uppercase(),
                "asks": endpoint.stats.asks,
                "tells": endpoint.stats.tells,
                "queued": endpoint.queued,
                "linearMemory": endpoint.stats.linear_memory,
                "hostHeld": endpoint.stats.host_held,
            })
        })
        .collect();
    Ok(Json(json!({ "endpoints": endpoints })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct SwapQuery {
    drain_timeout: Option<u64>,
    running: Option<String>,
}

pub(super) async fn swap(
    State(cluster): Cluster,
    Path(id): Path<String>,
    query: Result<Query<SwapQuery>, QueryRejection>,
    body: Bytes,
) -> Answer {
    let (options, query) = options(query)?;
    if query.running.is_some() {
        return Err(bad_request("`running` names a kind in `POST /endpoints/swap`, not here"));
    }
    let component = load(&cluster, &format!("{id}'s new component (uploaded)"), body).await?;
    match cluster.swap(&id, &component, options).await {
        Ok(report) => Ok(Json(report_json(&report))),
        Err(error @ SwapError::UnknownEndpoint(_)) => Err(Failure(StatusCode::NOT_FOUND, error.to_string())),
        Err(error) => Err(Failure(StatusCode::CONFLICT, error.to_string())),
    }
}

/// `POST /endpoints/swap?running=NAME`: every endpoint of a kind.
pub(super) async fn swap_all(
    State(cluster): Cluster,
    query: Result<Query<SwapQuery>, QueryRejection>,
    body: Bytes,
) -> Answer {
    let (options, query) = options(query)?;
    let running = query
        .running
        .ok_or_else(|| bad_request("say which endpoints: `?running=NAME`, a component as `GET /endpoints` lists it"))?;
    if cluster.host().endpoints_running(&running).is_empty() {
        return Err(Failure(StatusCode::NOT_FOUND, format!("no endpoint runs `{running}`")));
    }
    let component = load(&cluster, &format!("the new component of `{running}` (uploaded)"), body).await?;
    match cluster.swap_all(&running, &component, options).await {
        Ok(reports) => Ok(Json(json!({ "swapped": reports.iter().map(report_json).collect::<Vec<_>>() }))),
        Err(stopped) => Err(Failure(StatusCode::CONFLICT, stopped.to_string())),
    }
}

/// The swap's options from the query, and the query.
fn options(query: Result<Query<SwapQuery>, QueryRejection>) -> Result<(SwapOptions, SwapQuery), Failure> {
    let Query(query) = query.map_err(|why| {
        bad_request(format!("{}; the parameters are `drainTimeout`, in milliseconds, and `running`", why.body_text()))
    })?;
    let mut options = SwapOptions::default();
    if let Some(millis) = query.drain_timeout {
        options.drain_timeout = Duration::from_millis(millis);
    }
    Ok((options, query))
}

/// Compiles the uploaded component, off the threads that serve requests.
async fn load(cluster: &super::Api, name: &str, body: Bytes) -> Result<EndpointComponent, Failure> {
    let engine = cluster.host().engine().clone();
    let name = name.to_owned();
    let loaded = tokio::task::spawn_blocking(move || engine.load_bytes(&name, &body))
        .await
        .map_err(|error| Failure(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()))?;
    loaded.map_err(|error| bad_request(format!("{error:#}")))
}

fn report_json(report: &SwapReport) -> serde_json::Value {
    let handover = match &report.handover {
        Handover::Carried { version, bytes } => json!({ "carried": true, "version": version, "bytes": bytes }),
        Handover::Fresh { reason } => json!({ "carried": false, "reason": reason }),
    };
    json!({
        "endpoint": report.endpoint,
        "from": report.from,
        "to": report.to,
        "handover": handover,
        "drained": report.drained,
        "tasksEnded": report.tasks_ended,
        "tasksCarried": report.tasks_carried,
        "childrenAdopted": report.children_adopted,
        "pauseMicros": report.pause.as_micros() as u64,
    })
}
