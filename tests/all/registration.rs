//! Registration with retries, on paused time: backoff, declines, errors,
//! rejection, and a new leader cancelling the attempt in progress.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use weir::ha::{self, HaContext, HaServices, LeaderInformation};
use weir::registration::{Registration, RegistrationResponse, register, register_with_leader};
use weir::{RegistrationConfig, RpcError};

type Response = RegistrationResponse<&'static str, &'static str>;

/// Answers attempts from a script, and records when each began and its
/// timeout.
struct Scripted {
    script: Vec<Result<Response, RpcError>>,
    attempts: Arc<Mutex<Vec<(Duration, Duration)>>>,
    start: Instant,
}

impl Scripted {
    fn new(mut script: Vec<Result<Response, RpcError>>) -> Self {
        script.reverse();
        Self { script, attempts: Arc::default(), start: Instant::now() }
    }

    fn attempts(&self) -> Vec<(u64, u64)> {
        let millis = |d: Duration| d.as_millis() as u64;
        self.attempts.lock().unwrap().iter().map(|(at, timeout)| (millis(*at), millis(*timeout))).collect()
    }
}

impl Registration for Scripted {
    type Success = &'static str;
    type Rejection = &'static str;

    async fn attempt(&mut self, timeout: Duration) -> Result<Response, RpcError> {
        self.attempts.lock().unwrap().push((self.start.elapsed(), timeout));
        match self.script.pop() {
            Some(Err(error @ RpcError::Timeout { .. })) => {
                tokio::time::sleep(timeout).await;
                Err(error)
            }
            Some(answer) => answer,
            None => std::future::pending().await,
        }
    }
}

fn timeout() -> Result<Response, RpcError> {
    Err(RpcError::Timeout { endpoint: "rm".into(), function: "register".into(), timeout: Duration::ZERO })
}

#[tokio::test(start_paused = true)]
async fn timeouts_double_up_to_the_maximum() {
    let config = RegistrationConfig { max_timeout: Duration::from_millis(800), ..RegistrationConfig::default() };
    let mut registration =
        Scripted::new(vec![timeout(), timeout(), timeout(), timeout(), timeout(), Ok(Response::Success("registered"))]);
    assert_eq!(register(&mut registration, &config).await, Ok("registered"));
    let timeouts: Vec<u64> = registration.attempts().iter().map(|(_, timeout)| *timeout).collect();
    assert_eq!(timeouts, [100, 200, 400, 800, 800, 800]);
    let starts: Vec<u64> = registration.attempts().iter().map(|(at, _)| *at).collect();
    assert_eq!(starts, [0, 100, 300, 700, 1500, 2300], "each retry follows the timeout at once");
}

#[tokio::test(start_paused = true)]
async fn declines_and_errors_wait_their_delays_and_a_rejection_ends_it() {
    let config = RegistrationConfig::default();
    let unreachable = Err(RpcError::Unreachable { endpoint: "rm".into(), reason: "refused".into() });
    let mut registration = Scripted::new(vec![
        Ok(Response::Declined("no slots yet".into())),
        timeout(),
        unreachable,
        Ok(Response::Rejected("wrong cluster")),
        Ok(Response::Success("never asked")),
    ]);
    assert_eq!(register(&mut registration, &config).await, Err("wrong cluster"));
    // Declined at 0 → 30 s pause; timed out after 100 ms → at once with
    // 200 ms; unreachable → 10 s pause, timeout reset; rejected → done.
    assert_eq!(registration.attempts(), [(0, 100), (30_000, 100), (30_100, 200), (40_100, 100)]);
}

#[tokio::test(start_paused = true)]
async fn a_new_leader_cancels_the_attempt_in_progress() {
    let services = ha::Embedded::new(HaContext::current());
    let mut retrieval = services.leader_retrieval("rm").unwrap();
    let mut first = services.leader_election("rm").unwrap();
    let mut second = services.leader_election("rm").unwrap();
    let Some(ha::Leadership::Granted(session)) = first.next().await else { panic!("granted") };
    first.confirm(session, "weir://a:1/rm");

    let tried: Arc<Mutex<Vec<String>>> = Arc::default();
    let attempts = tried.clone();
    let registering = tokio::spawn(async move {
        register_with_leader(&mut retrieval, &RegistrationConfig::default(), |leader: &LeaderInformation| {
            attempts.lock().unwrap().push(leader.address.clone());
            // The old leader never answers; the new one accepts.
            let answer = if leader.address.contains("//b") { Ok(Response::Success("at b")) } else { timeout() };
            Scripted::new(vec![answer; 100])
        })
        .await
    });
    tokio::time::sleep(Duration::from_secs(5)).await;
    drop(first);
    let Some(ha::Leadership::Granted(next)) = second.next().await else { panic!("granted") };
    second.confirm(next, "weir://b:1/rm");
    let (leader, outcome) = registering.await.unwrap().expect("the retrieval goes on");
    assert_eq!((leader.address.as_str(), outcome), ("weir://b:1/rm", Ok("at b")));
    assert_eq!(
        *tried.lock().unwrap(),
        ["weir://a:1/rm", "weir://b:1/rm"],
        "the attempt at a was cancelled, not finished"
    );
}
