//! Heartbeats: payloads flow both ways, a silent target times out, and an
//! unreachable one is detected early, on paused time with in-memory targets
//! and once against a real `weir` process that is killed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::runtime::Handle;
use wasmtime::component::Val;
use weir::heartbeat::{HeartbeatListener, HeartbeatManager, HeartbeatTarget, ResourceId};
use weir::{GatewayClient, HeartbeatConfig, RpcError};
use weir_tests::gateways::ECHO;
use weir_tests::process::{HostProcess, HostSpec};
use weir_tests::{artifacts, eventually, host};

/// What a listener was told, in order.
#[derive(Debug, Default)]
struct Recorder {
    name: &'static str,
    events: Mutex<Vec<String>>,
}

impl Recorder {
    fn new(name: &'static str) -> Arc<Self> {
        Arc::new(Self { name, events: Mutex::default() })
    }

    fn events(&self) -> Vec<String> {
        self.events.lock().unwrap().clone()
    }

    fn count(&self, prefix: &str) -> usize {
        self.events().iter().filter(|e| e.starts_with(prefix)).count()
    }
}

impl HeartbeatListener<String, String> for Recorder {
    fn notify_heartbeat_timeout(&self, target: &ResourceId) {
        self.events.lock().unwrap().push(format!("timeout {target}"));
    }
    fn notify_target_unreachable(&self, target: &ResourceId) {
        self.events.lock().unwrap().push(format!("unreachable {target}"));
    }
    fn report_payload(&self, target: &ResourceId, payload: String) {
        self.events.lock().unwrap().push(format!("payload {target}: {payload}"));
    }
    fn retrieve_payload(&self, target: &ResourceId) -> String {
        format!("{} to {target}", self.name)
    }
}

/// A manager that heartbeats can be cut off from.
type Reachable = Arc<Mutex<Option<Arc<HeartbeatManager<String, String>>>>>;

/// Delivers heartbeats straight to another manager, or fails them.
struct Direct {
    to: Reachable,
    failure: Option<RpcError>,
}

impl HeartbeatTarget<String> for Direct {
    fn receive_heartbeat(&self, from: &ResourceId, payload: String) -> BoxFuture<'static, Result<(), RpcError>> {
        let result = self.deliver(|manager| manager.receive_heartbeat(from, payload));
        Box::pin(async move { result })
    }
    fn request_heartbeat(&self, from: &ResourceId, payload: String) -> BoxFuture<'static, Result<(), RpcError>> {
        let result = self.deliver(|manager| manager.request_heartbeat(from, payload));
        Box::pin(async move { result })
    }
}

impl Direct {
    fn deliver(&self, send: impl FnOnce(&HeartbeatManager<String, String>)) -> Result<(), RpcError> {
        if let Some(failure) = &self.failure {
            return Err(failure.clone());
        }
        if let Some(manager) = self.to.lock().unwrap().as_ref() {
            send(manager);
        }
        Ok(())
    }
}

fn config() -> HeartbeatConfig {
    HeartbeatConfig { interval: Duration::from_secs(10), timeout: Duration::from_secs(50), rpc_failure_threshold: 2 }
}

fn id(name: &str) -> ResourceId {
    ResourceId(name.into())
}

/// Lets the paused clock run `duration` in small steps, so every timer due
/// in between fires in order.
async fn run_for(duration: Duration) {
    let step = Duration::from_millis(100);
    let mut passed = Duration::ZERO;
    while passed < duration {
        tokio::time::sleep(step).await;
        passed += step;
    }
}

#[tokio::test(start_paused = true)]
async fn payloads_flow_both_ways_and_a_silent_target_times_out() {
    let (jm, te) = (Recorder::new("jm"), Recorder::new("te"));
    let sender = Arc::new(HeartbeatManager::sender(id("jm"), config(), jm.clone(), &Handle::current()));
    let receiver = Arc::new(HeartbeatManager::receiver(id("te"), config(), te.clone(), &Handle::current()));
    let to_receiver = Arc::new(Mutex::new(Some(receiver.clone())));
    sender.monitor_target(id("te"), Arc::new(Direct { to: to_receiver.clone(), failure: None }));
    receiver
        .monitor_target(id("jm"), Arc::new(Direct { to: Arc::new(Mutex::new(Some(sender.clone()))), failure: None }));

    run_for(Duration::from_secs(95)).await;
    assert_eq!(te.count("payload jm: jm to te"), 10, "a request every 10 s, from t=0: {:?}", te.events());
    assert_eq!(jm.count("payload te: te to jm"), 10, "each answered with a heartbeat: {:?}", jm.events());
    assert_eq!(jm.count("timeout") + te.count("timeout"), 0, "no timeouts while both beat");

    // From t=95 the receiver goes silent: requests no longer reach it. Its
    // last heartbeat came at t=90, so it times out at t=140.
    *to_receiver.lock().unwrap() = None;
    run_for(Duration::from_secs(44)).await;
    assert_eq!(jm.count("timeout"), 0, "not before the timeout: {:?}", jm.events());
    run_for(Duration::from_secs(2)).await;
    assert_eq!(jm.count("timeout te"), 1, "{:?}", jm.events());
    assert_eq!(te.count("timeout jm"), 1, "the receiver, no longer asked, times out the sender too");
    assert!(sender.last_heartbeat_from(&id("te")).is_none(), "a lost target is no longer monitored");
}

#[tokio::test(start_paused = true)]
async fn an_unreachable_target_is_detected_after_the_failure_threshold() {
    let unreachable = RpcError::Unreachable { endpoint: "te".into(), reason: "connection refused".into() };
    for (threshold, expected) in [(2, "unreachable te"), (0, "timeout te")] {
        let jm = Recorder::new("jm");
        let sender = HeartbeatManager::sender(
            id("jm"),
            HeartbeatConfig { rpc_failure_threshold: threshold, ..config() },
            jm.clone(),
            &Handle::current(),
        );
        let target = Direct { to: Arc::new(Mutex::new(None)), failure: Some(unreachable.clone()) };
        sender.monitor_target(id("te"), Arc::new(target));
        run_for(Duration::from_secs(15)).await;
        let expect_early = threshold > 0;
        assert_eq!(jm.count("unreachable te"), usize::from(expect_early), "threshold {threshold}: {:?}", jm.events());
        run_for(Duration::from_secs(40)).await;
        assert_eq!(
            jm.events(),
            vec![expected.to_owned()],
            "threshold {threshold}: one notification, of the right kind"
        );
    }
}

/// Heartbeat requests as asks of a remote echo's `ping`.
struct Pinged(GatewayClient);

impl HeartbeatTarget<String> for Pinged {
    fn receive_heartbeat(&self, _: &ResourceId, _: String) -> BoxFuture<'static, Result<(), RpcError>> {
        Box::pin(async { Ok(()) })
    }
    fn request_heartbeat(&self, _: &ResourceId, _: String) -> BoxFuture<'static, Result<(), RpcError>> {
        let client = self.0.clone();
        Box::pin(async move { client.ask("ping", vec![Val::U64(1)]).await.map(drop) })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_remote_target_is_reported_unreachable_long_before_the_timeout() {
    let mut remote = HostProcess::start(&HostSpec::new().endpoint("echo", artifacts::ECHO, ""));
    let client = host().connect(&remote.address("echo"), ECHO, None).await.unwrap();
    let config = HeartbeatConfig {
        interval: Duration::from_millis(50),
        timeout: Duration::from_secs(3600),
        rpc_failure_threshold: 2,
    };
    let jm = Recorder::new("jm");
    let sender = HeartbeatManager::sender(id("jm"), config, jm.clone(), &Handle::current());
    sender.monitor_target(id("te"), Arc::new(Pinged(client)));
    eventually("a few heartbeats answered", || async {
        (sender.last_heartbeat_from(&id("te")).is_some() && jm.events().is_empty()).then_some(())
    })
    .await;
    remote.kill();
    eventually("the killed target reported unreachable", || async { (jm.count("unreachable te") == 1).then_some(()) })
        .await;
    assert_eq!(jm.events(), vec!["unreachable te".to_owned()]);
}
