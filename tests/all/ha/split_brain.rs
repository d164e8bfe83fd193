//! Split brain: a leader frozen until another is elected, then let go on,
//! still believing it leads. Fencing must keep everything it does from
//! having any effect.
//!
//! Two `weir` hosts contend for the `writer`. The leader's writer pushes
//! consecutive numbers into a ledger (a counter) on the test's host, fenced
//! under the leader's session: the test follows the leader through
//! ZooKeeper and, for each new session, hands the ledger's history to a new
//! ledger instance fenced under it. The old leader reaches ZooKeeper through
//! a proxy that stays cut while it is thawed, so it goes on writing for a
//! while as if it still led (ZooKeeper's "tolerate suspended connections"
//! mode, which leaves exactly this window).

use wasmtime::component::Val;
use weir::ha::LeaderInformation;
use weir::{Endpoint, EndpointOptions, RpcService};
use weir_tests::gateways::{COUNTER, WRITER};
use weir_tests::proxy::Proxy;
use weir_tests::zookeeper::zookeeper;
use weir_tests::{artifacts, capture_logs, component, eventually, host_with};

use super::zookeeper::{all_learn, contender, listeners};

/// The ledger on the test's host, replaced for each leader session.
struct Ledger {
    host: RpcService,
    current: Option<Endpoint>,
}

impl Ledger {
    /// Retires the current ledger and starts one fenced under `leader`'s
    /// session with the same history.
    async fn hand_over(&mut self, leader: &LeaderInformation) {
        let history = match self.current.take() {
            Some(old) => {
                let values = history(&old).await;
                old.close().await.unwrap();
                values
            }
            None => Vec::new(),
        };
        let seed = history.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
        let options = EndpointOptions {
            fencing_token: Some(leader.session),
            config: vec![("history".into(), seed)],
            ..EndpointOptions::default()
        };
        self.current = Some(self.host.start("ledger", &component(artifacts::COUNTER), options).await.unwrap());
    }
}

async fn history(ledger: &Endpoint) -> Vec<u64> {
    let gateway = ledger.fenced_gateway(COUNTER, ledger.fencing_token()).unwrap();
    let Some(Val::List(values)) = gateway.ask("history", vec![]).await.unwrap() else { panic!("a list") };
    values.into_iter().map(|v| if let Val::U64(n) = v { n } else { panic!("u64 values") }).collect()
}

/// `(accepted, refused, failed, last)` of the writer at `leader`.
async fn progress(host: &RpcService, leader: &LeaderInformation) -> Option<[u64; 4]> {
    let writer = host.connect(&leader.address, WRITER, Some(leader.session)).await.ok()?;
    let Some(Val::Record(fields)) = writer.ask("progress", vec![]).await.ok()? else { return None };
    let numbers: Vec<u64> = fields.into_iter().map(|(_, v)| if let Val::U64(n) = v { n } else { 0 }).collect();
    numbers.try_into().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_leader_that_wakes_up_changes_nothing() {
    capture_logs();
    let quorum = zookeeper().address();
    let host = host_with(weir::HostConfig { listen: Some("127.0.0.1:0".into()), ..weir_tests::config() });
    let writer = format!("config = {{ ledger = {:?}, interval-ms = \"10\" }}", host.address_of("ledger"));
    let writer = ("writer", artifacts::WRITER, writer.as_str());
    let mut listeners = listeners("split", "writer", 2);
    // The old leader reaches ZooKeeper through a path the test can cut, and
    // tolerates losing it.
    let path = Proxy::start(quorum).await;
    let old = contender("split", &path.address(), writer, "tolerate-suspended-connections = true");
    let first = all_learn(&mut listeners, None, &old).await;
    let mut ledger = Ledger { host: host.clone(), current: None };
    ledger.hand_over(&first).await;
    let new = contender("split", quorum, writer, "");
    eventually("the first leader writes", || async { progress(&host, &first).await.filter(|p| p[0] >= 5).map(drop) })
        .await;

    old.freeze();
    path.cut();
    let before_freeze = history(ledger.current.as_ref().unwrap()).await.len();
    let second = all_learn(&mut listeners, Some(first.session), &new).await;
    ledger.hand_over(&second).await;
    eventually("the new leader goes on writing", || async {
        progress(&host, &second).await.filter(|p| p[0] >= 5).map(drop)
    })
    .await;

    old.thaw();
    let written_before = eventually("the old leader, thawed, is refused again and again", || async {
        let p = progress(&host, &first).await?;
        (p[1] >= 3).then_some(p)
    })
    .await;
    // Still believing it leads, it keeps trying; none of it lands.
    let refused_later = eventually("more refusals", || async {
        progress(&host, &first).await.filter(|p| p[1] > written_before[1] + 2)
    })
    .await;
    assert_eq!(refused_later[0], written_before[0], "the old leader got nothing accepted after it was thawed");

    path.heal();
    eventually("the old leader learns its session expired and stops", || async {
        old.logs().contains("leader endpoint stopped").then_some(())
    })
    .await;

    let final_history = history(ledger.current.as_ref().unwrap()).await;
    let expected: Vec<u64> = (1..=final_history.len() as u64).collect();
    assert_eq!(final_history, expected, "every number applied exactly once, in order: nothing twice, nothing lost");
    assert!(final_history.len() > before_freeze, "the new leader continued the history");
}
