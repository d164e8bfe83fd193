//! Every knob of a weir host, with its default, in one place.
//!
//! [`HostConfig`] deserializes from the `[host]` table of a TOML file with
//! kebab-case keys and human-readable durations and sizes (`ask-timeout =
//! "10s"`, `memory-cap = 268435456`). Unset keys take the defaults below.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Default ask timeout, as Flink's `pekko.ask.timeout`.
pub const DEFAULT_ASK_TIMEOUT: Duration = Duration::from_secs(10);
/// Default mailbox capacity per endpoint. A full mailbox makes senders wait.
pub const DEFAULT_MAILBOX_CAPACITY: usize = 4096;
/// Default cap on an endpoint's linear memory: 256 MiB.
pub const DEFAULT_MEMORY_CAP: u64 = 256 * 1024 * 1024;
/// Default CPU deadline: the longest an endpoint may run guest code without
/// returning to the host before it is ended.
pub const DEFAULT_CPU_DEADLINE: Duration = Duration::from_secs(5);
/// Default epoch tick: the granularity at which the CPU deadline is checked.
pub const DEFAULT_EPOCH_TICK: Duration = Duration::from_millis(10);
/// Default number of endpoints an engine has room for at once.
pub const DEFAULT_MAX_ENDPOINTS: u32 = 10_000;
/// Default largest frame between hosts: 10 MiB, as Flink's `pekko.framesize`.
pub const DEFAULT_FRAME_SIZE: u64 = 10 * 1024 * 1024;
/// Default largest message between endpoints of one host: 16 MiB.
pub const DEFAULT_MAX_MESSAGE_SIZE: u64 = 16 * 1024 * 1024;
/// Default TCP connect timeout, as Flink's `pekko.tcp.timeout`.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// Default number of calls an endpoint runs at once.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 4096;
/// Default time a connection from another host may stay silent.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// Default time a started frame may take to arrive whole.
pub const DEFAULT_FRAME_TIMEOUT: Duration = Duration::from_secs(30);
/// Default number of connections from other hosts served at once.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;
/// Default bytes of replies a connection may have waiting to be written.
pub const DEFAULT_REPLY_BUFFER: u64 = 32 * 1024 * 1024;

/// Configuration of a weir host.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct HostConfig {
    /// How long an ask waits for its reply unless the call sets its own
    /// timeout. Default: [`DEFAULT_ASK_TIMEOUT`].
    #[serde(with = "humantime_serde")]
    pub ask_timeout: Duration,
    /// Messages an endpoint's mailbox holds before senders wait for room.
    /// Default: [`DEFAULT_MAILBOX_CAPACITY`].
    pub mailbox_capacity: usize,
    /// Largest linear memory an endpoint may grow to, in bytes. Growing past
    /// it ends the endpoint. Default: [`DEFAULT_MEMORY_CAP`].
    pub memory_cap: u64,
    /// Longest stretch an endpoint may execute guest code without returning
    /// to the host; a runaway loop is ended after it. Default:
    /// [`DEFAULT_CPU_DEADLINE`].
    #[serde(with = "humantime_serde")]
    pub cpu_deadline: Duration,
    /// How often the CPU deadline is checked. Default: [`DEFAULT_EPOCH_TICK`].
    #[serde(with = "humantime_serde")]
    pub epoch_tick: Duration,
    /// Threads that drive the endpoints. Default: the number of CPUs.
    pub worker_threads: usize,
    /// Endpoints the engine has room for at once. Instances come from pools
    /// of pre-reserved memory, so starting one maps nothing new; the pools
    /// reserve address space (not memory) for this many. Default:
    /// [`DEFAULT_MAX_ENDPOINTS`].
    pub max_endpoints: u32,
    /// Where to listen for other hosts, `host:port` (port 0 picks a free
    /// one). Unset: the host calls out to other hosts but takes no calls
    /// from them, and its endpoints' addresses say `local`.
    pub listen: Option<String>,
    /// The host name other hosts reach this one by, written into its
    /// endpoints' addresses. Default: the host part of `listen`.
    pub advertised_host: Option<String>,
    /// Largest encoded call or reply between hosts, in bytes. Larger ones
    /// fail at once with frame-too-large. Default: [`DEFAULT_FRAME_SIZE`].
    pub frame_size: u64,
    /// Largest call or reply between endpoints of this host, in bytes,
    /// counting byte lists and strings by their length and scalars by up to
    /// 8 bytes. A larger call is refused with message-too-large and never
    /// reaches the endpoint; a larger result is replaced by that error. At
    /// least `frame-size`, so that what arrives from another host fits.
    /// Default: [`DEFAULT_MAX_MESSAGE_SIZE`].
    pub max_message_size: u64,
    /// How long opening a connection to another host may take. Default:
    /// [`DEFAULT_CONNECT_TIMEOUT`].
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Mutual TLS between hosts (Flink's `security.ssl.internal.*`). Unset:
    /// plain TCP.
    pub tls: Option<TlsConfig>,
    /// Calls an endpoint may have started and not finished (while they
    /// await other endpoints, say) before it takes no more from its
    /// mailbox, which then fills and holds its callers back. Default:
    /// [`DEFAULT_MAX_IN_FLIGHT`].
    pub max_in_flight: usize,
    /// How long a connection from another host may go without a frame
    /// before it is closed (within twice this: the deadline is checked
    /// lazily, so a busy connection never pays for it). Hosts send
    /// keepalives on their own links, so those stay open while idle.
    /// Default: [`DEFAULT_IDLE_TIMEOUT`].
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// How long a frame may take to arrive whole once its first byte has:
    /// a peer that trickles bytes is cut off after it. Default:
    /// [`DEFAULT_FRAME_TIMEOUT`].
    #[serde(with = "humantime_serde")]
    pub frame_timeout: Duration,
    /// Connections from other hosts served at once; more are refused (and
    /// told so) until some close. Keep it well under the process's open
    /// file limit (`ulimit -n`). Default: [`DEFAULT_MAX_CONNECTIONS`].
    pub max_connections: usize,
    /// Bytes of replies one connection may have waiting to be written
    /// before the host stops reading that connection's requests: a peer
    /// that does not read its replies holds up only itself. Default:
    /// [`DEFAULT_REPLY_BUFFER`].
    pub reply_buffer: u64,
    /// A directory where compiled components are kept, so that loading a
    /// component this host (or another process of the same weir build and
    /// settings) compiled before maps its machine code instead of compiling
    /// it again. Keep it private to the user running weir: the host trusts
    /// what it finds there, as it trusts its own binary. Unset: every load
    /// compiles.
    pub compile_cache: Option<PathBuf>,
}

/// A host directory an endpoint may use through WASI's filesystem, and
/// nothing else of the host's files: where tasks read their input and
/// keep their checkpoints.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct LentDirectory {
    /// The directory on the host.
    pub host: PathBuf,
    /// Where the endpoint sees it: an absolute path such as `/input`.
    pub guest: String,
    /// Whether the endpoint may create, write and delete files in it
    /// (default: it may only read).
    #[serde(default)]
    pub writable: bool,
}

impl LentDirectory {
    /// `host` lent at the same path, so that paths read alike inside and
    /// outside the endpoint (a job's `--input /data/words`).
    pub fn same_path(host: &std::path::Path, writable: bool) -> Self {
        Self { host: host.to_owned(), guest: host.display().to_string(), writable }
    }

    /// The directory on the host behind the endpoint's `path`, if `path` is
    /// this directory or inside it, without `.` or `..` steps.
    pub fn resolve(&self, path: &str) -> Option<PathBuf> {
        let inside = path.strip_prefix(self.guest.trim_end_matches('/'))?;
        if !(inside.is_empty() || inside.starts_with('/')) {
            return None;
        }
        let steps: Vec<&str> = inside.split('/').filter(|step| !step.is_empty()).collect();
        if steps.iter().any(|step| *step == "." || *step == "..") {
            return None;
        }
        Some(steps.iter().fold(self.host.clone(), |path, step| path.join(step)))
    }
}

/// Where a host finds its TLS material, all PEM files. With TLS on, a host
/// talks only to peers whose certificate the CA issued, and checks that a
/// peer's certificate names the host it dialled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct TlsConfig {
    /// The CA certificate(s) every peer's certificate must chain to.
    pub ca: PathBuf,
    /// This host's certificate chain.
    pub certificate: PathBuf,
    /// This host's private key.
    pub key: PathBuf,
}

impl Default for HostConfig {
    fn default() -> Self {
        Self {
            ask_timeout: DEFAULT_ASK_TIMEOUT,
            mailbox_capacity: DEFAULT_MAILBOX_CAPACITY,
            memory_cap: DEFAULT_MEMORY_CAP,
            cpu_deadline: DEFAULT_CPU_DEADLINE,
            epoch_tick: DEFAULT_EPOCH_TICK,
            worker_threads: std::thread::available_parallelism().map_or(1, usize::from),
            max_endpoints: DEFAULT_MAX_ENDPOINTS,
            listen: None,
            advertised_host: None,
            frame_size: DEFAULT_FRAME_SIZE,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            tls: None,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            frame_timeout: DEFAULT_FRAME_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            reply_buffer: DEFAULT_REPLY_BUFFER,
            compile_cache: None,
        }
    }
}

/// Default ZooKeeper session timeout, as Flink's
/// `high-availability.zookeeper.client.session-timeout`.
pub const DEFAULT_ZOOKEEPER_SESSION_TIMEOUT: Duration = Duration::from_secs(60);
/// Default ZooKeeper connection timeout, as Flink's
/// `high-availability.zookeeper.client.connection-timeout`.
pub const DEFAULT_ZOOKEEPER_CONNECTION_TIMEOUT: Duration = Duration::from_secs(15);

/// High availability: how contenders elect a leader and listeners find it
/// (Flink's `high-availability.type`). The `[ha]` table of a host's config
/// file, tagged by `mode`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "kebab-case", deny_unknown_fields)]
pub enum HaConfig {
    /// In memory, within one process.
    #[default]
    Embedded,
    /// No election: the leaders are at fixed addresses, by component name;
    /// a name ending in `*` stands for every name that starts with the rest,
    /// put in place of the address's `*` (`"order-*" =
    /// "weir://h:6123/order-handler-*"`).
    Standalone {
        /// Each component's leader address.
        #[serde(default)]
        leaders: BTreeMap<String, String>,
    },
    /// Elections and leader addresses kept in ZooKeeper.
    Zookeeper(ZooKeeperConfig),
}

/// Where and how to use ZooKeeper for HA (Flink's
/// `high-availability.zookeeper.*`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ZooKeeperConfig {
    /// The ZooKeeper servers, `host:port[,host:port...]`.
    pub quorum: String,
    /// The root node every weir cluster keeps its nodes under.
    #[serde(default = "default_zookeeper_root")]
    pub root: String,
    /// This cluster's node under the root, so clusters can share a quorum.
    #[serde(default = "default_cluster_id")]
    pub cluster_id: String,
    /// How long ZooKeeper keeps a silent session (and the leadership it
    /// holds) alive. Default: [`DEFAULT_ZOOKEEPER_SESSION_TIMEOUT`].
    #[serde(with = "humantime_serde", default = "default_session_timeout")]
    pub session_timeout: Duration,
    /// How long connecting to ZooKeeper may take. Default:
    /// [`DEFAULT_ZOOKEEPER_CONNECTION_TIMEOUT`].
    #[serde(with = "humantime_serde", default = "default_connection_timeout")]
    pub connection_timeout: Duration,
    /// Keep leadership while the connection to ZooKeeper is lost but the
    /// session may still be alive, and give it up only once the session has
    /// expired (Flink's `tolerate-suspended-connections`). Fewer failovers
    /// on a flaky network, at the price of a window in which two hosts
    /// believe they lead; fencing tokens keep that window harmless.
    #[serde(default)]
    pub tolerate_suspended_connections: bool,
}

impl ZooKeeperConfig {
    /// Settings for the servers at `quorum`, with defaults for the rest.
    pub fn new(quorum: &str) -> Self {
        Self {
            quorum: quorum.to_owned(),
            root: default_zookeeper_root(),
            cluster_id: default_cluster_id(),
            session_timeout: DEFAULT_ZOOKEEPER_SESSION_TIMEOUT,
            connection_timeout: DEFAULT_ZOOKEEPER_CONNECTION_TIMEOUT,
            tolerate_suspended_connections: false,
        }
    }
}

fn default_zookeeper_root() -> String {
    "/weir".into()
}

fn default_cluster_id() -> String {
    "default".into()
}

fn default_session_timeout() -> Duration {
    DEFAULT_ZOOKEEPER_SESSION_TIMEOUT
}

fn default_connection_timeout() -> Duration {
    DEFAULT_ZOOKEEPER_CONNECTION_TIMEOUT
}

/// Heartbeats between endpoints that watch each other (Flink's
/// `heartbeat.*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct HeartbeatConfig {
    /// How often the sender side asks each target for a heartbeat. Default:
    /// 10 s, as Flink's `heartbeat.interval`.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// How long a target may stay silent before it is declared lost.
    /// Default: 50 s, as Flink's `heartbeat.timeout`.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Heartbeat RPCs in a row that may find a target unreachable before it
    /// is declared lost early, without waiting for the timeout; 0 turns this
    /// off. Default: 2, as Flink's `heartbeat.rpc-failure-threshold`.
    pub rpc_failure_threshold: u32,
}

impl Default for HeartbeatConfig {
    fn default() -> Self {
        Self { interval: Duration::from_secs(10), timeout: Duration::from_secs(50), rpc_failure_threshold: 2 }
    }
}

/// Retrying a registration with a leader (Flink's `cluster.registration.*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct RegistrationConfig {
    /// The first attempt's timeout; each timed-out attempt doubles it.
    /// Default: 100 ms.
    #[serde(with = "humantime_serde")]
    pub initial_timeout: Duration,
    /// The most an attempt's timeout grows to. Default: 30 s.
    #[serde(with = "humantime_serde")]
    pub max_timeout: Duration,
    /// The pause after an attempt that failed (other than by timing out).
    /// Default: 10 s.
    #[serde(with = "humantime_serde")]
    pub error_delay: Duration,
    /// The pause after the target refused the registration. Default: 30 s.
    #[serde(with = "humantime_serde")]
    pub refused_delay: Duration,
}

impl Default for RegistrationConfig {
    fn default() -> Self {
        Self {
            initial_timeout: Duration::from_millis(100),
            max_timeout: Duration::from_secs(30),
            error_delay: Duration::from_secs(10),
            refused_delay: Duration::from_secs(30),
        }
    }
}

/// A configuration value out of its valid range.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid host configuration: {0}")]
pub struct ConfigError(String);

impl HostConfig {
    /// Checks that every value is usable.
    ///
    /// # Errors
    ///
    /// Returns a [`ConfigError`] that names the first offending key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |msg: String| Err(ConfigError(msg));
        if self.ask_timeout.is_zero() {
            return fail("ask-timeout must be greater than zero".into());
        }
        if self.mailbox_capacity == 0 {
            return fail("mailbox-capacity must be at least 1".into());
        }
        if self.memory_cap < WASM_PAGE_SIZE {
            return fail(format!(
                "memory-cap must be at least one wasm page ({WASM_PAGE_SIZE} bytes), got {}",
                self.memory_cap
            ));
        }
        if self.epoch_tick.is_zero() {
            return fail("epoch-tick must be greater than zero".into());
        }
        if self.cpu_deadline < self.epoch_tick {
            return fail(format!(
                "cpu-deadline ({:?}) must be at least one epoch-tick ({:?})",
                self.cpu_deadline, self.epoch_tick
            ));
        }
        if self.worker_threads == 0 {
            return fail("worker-threads must be at least 1".into());
        }
        if self.max_endpoints == 0 {
            return fail("max-endpoints must be at least 1".into());
        }
        if self.frame_size == 0 || self.frame_size > u64::from(u32::MAX) {
            return fail(format!("frame-size must be between 1 and {} bytes, got {}", u32::MAX, self.frame_size));
        }
        if self.max_message_size < self.frame_size || self.max_message_size > MAX_MESSAGE_SIZE {
            return fail(format!(
                "max-message-size must be between frame-size ({}) and {MAX_MESSAGE_SIZE} bytes, got {}",
                self.frame_size, self.max_message_size
            ));
        }
        if self.connect_timeout.is_zero() {
            return fail("connect-timeout must be greater than zero".into());
        }
        for (key, value) in [("max-in-flight", self.max_in_flight), ("max-connections", self.max_connections)] {
            if value == 0 {
                return fail(format!("{key} must be at least 1"));
            }
        }
        for (key, value) in [("idle-timeout", self.idle_timeout), ("frame-timeout", self.frame_timeout)] {
            if value.is_zero() {
                return fail(format!("{key} must be greater than zero"));
            }
        }
        if self.reply_buffer < self.frame_size {
            return fail(format!(
                "reply-buffer ({}) must be at least frame-size ({}): one reply must fit",
                self.reply_buffer, self.frame_size
            ));
        }
        if let Some(listen) = &self.listen {
            check_host_port(listen).map_err(|reason| ConfigError(format!("listen = {listen:?}: {reason}")))?;
        }
        if let Some(host) = &self.advertised_host {
            check_host(host).map_err(|reason| ConfigError(format!("advertised-host = {host:?}: {reason}")))?;
        }
        Ok(())
    }
}

const WASM_PAGE_SIZE: u64 = 64 * 1024;

/// The largest `max-message-size`: 1 GiB, a guest's whole memory many times
/// over.
const MAX_MESSAGE_SIZE: u64 = 1 << 30;

/// Checks `host:port` (an IPv6 host in brackets), for `listen`.
fn check_host_port(text: &str) -> Result<(), String> {
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err("expected `host:port`, e.g. `0.0.0.0:6123` (port 0 picks a free one)".into());
    };
    port.parse::<u16>().map_err(|_| format!("`{port}` is not a port number (0 to 65535)"))?;
    check_host(host.trim_start_matches('[').trim_end_matches(']'))
}

/// Checks a host name or IP address other hosts can dial.
fn check_host(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err("the host is empty".into());
    }
    if host.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    let label_ok = |label: &str| {
        !label.is_empty() && label.len() <= 63 && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if host.len() > 253 || !host.split('.').all(label_ok) {
        return Err("not an IP address or a host name (letters, digits, `-` and `.`)".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lent_directory_resolves_paths_inside_it_only() {
        let lent = LentDirectory { host: PathBuf::from("/srv/data"), guest: "/data/".into(), writable: false };
        assert_eq!(lent.resolve("/data"), Some(PathBuf::from("/srv/data")));
        assert_eq!(lent.resolve("/data/in//words.txt"), Some(PathBuf::from("/srv/data/in/words.txt")));
        assert_eq!(lent.resolve("/database"), None, "a sibling that shares the prefix");
        assert_eq!(lent.resolve("/data/../etc"), None);
        assert_eq!(lent.resolve("/data/./in"), None);
        assert_eq!(lent.resolve("/etc"), None);
    }

    #[test]
    fn defaults_are_valid_and_match_flink() {
        let config = HostConfig::default();
        config.validate().unwrap();
        assert_eq!(config.ask_timeout, Duration::from_secs(10));
    }

    #[test]
    fn parses_kebab_case_toml_with_defaults_for_the_rest() {
        let config: HostConfig = toml::from_str("ask-timeout = \"250ms\"\nmailbox-capacity = 8\n").unwrap();
        assert_eq!(config.ask_timeout, Duration::from_millis(250));
        assert_eq!(config.mailbox_capacity, 8);
        assert_eq!(config.memory_cap, DEFAULT_MEMORY_CAP);
    }

    #[test]
    fn ha_modes_parse_with_flink_defaults() {
        let ha: HaConfig = toml::from_str("mode = \"zookeeper\"\nquorum = \"zk:2181\"\n").unwrap();
        assert_eq!(ha, HaConfig::Zookeeper(ZooKeeperConfig::new("zk:2181")));
        let ha: HaConfig = toml::from_str("mode = \"standalone\"\nleaders = { rm = \"weir://h:1/rm\" }").unwrap();
        assert_eq!(ha, HaConfig::Standalone { leaders: [("rm".into(), "weir://h:1/rm".into())].into() });
        assert!(toml::from_str::<HaConfig>("mode = \"zookeeper\"").is_err(), "the quorum is required");
    }

    #[test]
    fn listen_and_advertised_host_must_be_dialable() {
        let with = |listen: &str, advertised: Option<&str>| HostConfig {
            listen: Some(listen.into()),
            advertised_host: advertised.map(Into::into),
            ..HostConfig::default()
        };
        with("127.0.0.1:0", None).validate().unwrap();
        with("[::1]:6123", Some("node-1.example.com")).validate().unwrap();
        for (listen, advertised, key) in [
            ("127.0.0.1", None, "listen"),
            ("127.0.0.1:99999", None, "listen"),
            ("127.0.0.1:0", Some("my host"), "advertised-host"),
            ("127.0.0.1:0", Some(""), "advertised-host"),
        ] {
            let err = with(listen, advertised).validate().unwrap_err().to_string();
            assert!(err.contains(key), "{err}");
        }
    }

    #[test]
    fn rejects_unknown_keys_and_bad_values() {
        assert!(toml::from_str::<HostConfig>("ask-timout = \"1s\"").is_err());
        let config = HostConfig { cpu_deadline: Duration::from_millis(1), ..HostConfig::default() };
        let err = config.validate().unwrap_err();
        assert!(err.to_string().contains("cpu-deadline"), "{err}");
    }
}
