//! Remote RPC: endpoints in other host processes (the `weir` binary),
//! reached over TCP.
//!
//! [`semantics`] runs every case twice, with the endpoints on the test's own
//! host and in another process, and expects the same outcome; the other
//! modules cover what only a network has: the wire, faults, TLS, and more
//! than two hosts.

mod faults;
mod limits;
mod semantics;
pub(crate) mod tls;
mod topology;
mod wire;

use weir::{HostConfig, RpcService};
use weir_tests::{config, host_with};

/// A test host that listens on a free loopback port, so endpoints in other
/// processes can call back into it.
pub(crate) fn listening_host() -> RpcService {
    host_with(listening_config())
}

fn listening_config() -> HostConfig {
    HostConfig { listen: Some("127.0.0.1:0".into()), ..config() }
}
