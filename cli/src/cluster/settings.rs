//! `weir cluster`'s configuration: one flat set of keys, Flink's names
//! where Flink has the setting, each with a documented default. They come
//! from a TOML file (`--config`, where `a.b = 1` and `[a] b = 1` are the
//! same key) and from `-D key=value`, which wins; an unknown key, or a
//! value of the wrong kind, is an error naming the key and where it was.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::Error;

/// A key: its name, its default (as text) and what it sets.
pub struct Key {
    pub name: &'static str,
    pub default: &'static str,
    pub doc: &'static str,
}

/// The kinds of endpoint of the control plane, each with implementations
/// to choose from (`<kind>.implementations`).
pub const KINDS: [&str; 4] = ["dispatcher", "jobmaster", "resourcemanager", "taskexecutor"];

/// What `<kind>.implementations` says, for the help.
const IMPLEMENTATIONS: &str = "the implementations to run, in order of preference (comma-separated): `default` is \
    `<kind>.wasm` of the components, a name `NAME` is `<kind>_NAME.wasm` there, a path is that file; the first \
    installed one runs (weir's own key)";

/// Every key the cluster's commands read (`weir cluster`, `jobmanager`,
/// `taskmanager`).
pub const KEYS: &[Key] = &[
    Key { name: "dispatcher.implementations", default: "default", doc: IMPLEMENTATIONS },
    Key { name: "jobmaster.implementations", default: "default", doc: IMPLEMENTATIONS },
    Key { name: "resourcemanager.implementations", default: "default", doc: IMPLEMENTATIONS },
    Key { name: "taskexecutor.implementations", default: "default", doc: IMPLEMENTATIONS },
    Key { name: "parallelism.default", default: "1", doc: "the job's parallelism unless `-p` says" },
    Key { name: "minicluster.number-of-taskmanagers", default: "1", doc: "TaskExecutors the embedded cluster runs" },
    Key { name: "taskmanager.numberOfTaskSlots", default: "the job's parallelism", doc: "slots of each TaskExecutor" },
    Key {
        name: "execution.checkpointing.interval",
        default: "none",
        doc: "checkpoint every this long (`1 s`, `500 ms`); none: only on request",
    },
    Key {
        name: "state.checkpoints.dir",
        default: "a directory under io.tmp.dirs",
        doc: "where completed checkpoints are kept",
    },
    Key {
        name: "restart-strategy.fixed-delay.attempts",
        default: "10 with checkpointing, else 0",
        doc: "restarts of a failed job",
    },
    Key { name: "restart-strategy.fixed-delay.delay", default: "0 ms", doc: "wait before a restart" },
    Key { name: "heartbeat.interval", default: "10 s", doc: "between heartbeat requests" },
    Key { name: "heartbeat.timeout", default: "50 s", doc: "a peer silent this long is lost" },
    Key {
        name: "heartbeat.rpc-failure-threshold",
        default: "2",
        doc: "heartbeats that fail as unreachable in a row before a peer is lost",
    },
    Key {
        name: "io.tmp.dirs",
        default: "the system's temporary directory",
        doc: "where the cluster keeps checkpoints unless `state.checkpoints.dir` says",
    },
    Key {
        name: "cluster.data-dirs",
        default: "the current directory",
        doc: "directories (comma-separated) tasks may read and write, at the same paths (weir's own key)",
    },
    Key { name: "rest.bind-address", default: "127.0.0.1", doc: "where the REST API listens" },
    Key {
        name: "rest.address",
        default: "127.0.0.1",
        doc: "where clients (`weir run`, `list`, ...) find the REST API, with `rest.port`",
    },
    Key { name: "rest.port", default: "8081", doc: "the REST API's port; 0 picks a free one" },
    Key {
        name: "rest.server.max-content-length",
        default: "104857600",
        doc: "the largest request body the REST API takes, in bytes (a job submission's component)",
    },
    Key {
        name: "security.ssl.rest.enabled",
        default: "false",
        doc: "serve the REST API over TLS (HTTPS); clients then trust `security.ssl.rest.ca`",
    },
    Key {
        name: "security.ssl.rest.certificate",
        default: "none",
        doc: "the REST API's certificate chain, a PEM file (in place of Flink's keystore)",
    },
    Key { name: "security.ssl.rest.key", default: "none", doc: "the REST API certificate's private key, a PEM file" },
    Key {
        name: "security.ssl.rest.ca",
        default: "none",
        doc: "for clients: the CA certificate(s), a PEM file, that issued the REST API's certificate (in place of \
              Flink's truststore)",
    },
    Key {
        name: "security.rest.token",
        default: "none",
        doc: "a bearer token the REST API requires of every request (`Authorization: Bearer TOKEN`), answering \
              401 without it; clients send it (weir's own key)",
    },
    Key {
        name: "jobmanager.rpc.address",
        default: "127.0.0.1",
        doc: "where `weir jobmanager` listens for RPC, and the address it gives others",
    },
    Key { name: "jobmanager.rpc.port", default: "6123", doc: "`weir jobmanager`'s RPC port; 0 picks a free one" },
    Key {
        name: "taskmanager.host",
        default: "127.0.0.1",
        doc: "where `weir taskmanager` listens for RPC, and the address it gives others",
    },
    Key { name: "taskmanager.rpc.port", default: "0", doc: "`weir taskmanager`'s RPC port; 0 picks a free one" },
    Key {
        name: "high-availability.type",
        default: "none",
        doc: "`zookeeper`: `weir jobmanager` and `weir taskmanager` elect leaders and find each other through \
              ZooKeeper; `none`: one jobmanager, at `jobmanager.rpc.address`:`port` (`weir cluster` elects in memory)",
    },
    Key {
        name: "high-availability.storageDir",
        default: "none",
        doc: "where jobs and their checkpoints outlive a jobmanager, shared by all of them: a new leader runs \
              the jobs that did not end from their last checkpoint, and never one that ended",
    },
    Key {
        name: "high-availability.zookeeper.quorum",
        default: "none",
        doc: "the ZooKeeper servers, `host:port[,host:port...]`",
    },
    Key {
        name: "high-availability.zookeeper.path.root",
        default: "/weir",
        doc: "the ZooKeeper node all weir clusters keep their nodes under",
    },
    Key {
        name: "high-availability.cluster-id",
        default: "default",
        doc: "this cluster's node under the root, so that clusters can share a quorum",
    },
    Key {
        name: "high-availability.zookeeper.client.session-timeout",
        default: "60 s",
        doc: "how long ZooKeeper keeps a silent process's session, and the leadership it holds",
    },
    Key {
        name: "cluster.compile-cache",
        default: "$XDG_CACHE_HOME/weir, else ~/.cache/weir",
        doc: "where compiled components are kept for the next start; `none`: compile every time (weir's own key)",
    },
];

/// The settings, read.
pub struct Settings {
    pub parallelism: u32,
    pub task_managers: u32,
    pub slots: Option<u32>,
    pub checkpoint_interval: Option<Duration>,
    pub checkpoint_dir: Option<PathBuf>,
    pub restart_attempts: Option<u32>,
    pub restart_delay: Duration,
    pub heartbeat: weir::HeartbeatConfig,
    pub tmp_dir: PathBuf,
    pub data_dirs: Vec<PathBuf>,
    pub compile_cache: Option<PathBuf>,
    /// Where the REST API listens: `address:port`.
    pub rest: String,
    /// Where clients find it: `address:port`.
    pub rest_address: String,
    pub rest_security: RestSecurity,
    /// Where `weir jobmanager` and `weir taskmanager` listen for RPC:
    /// `address:port`.
    pub jobmanager_rpc: String,
    pub taskmanager_rpc: String,
    /// ZooKeeper, with `high-availability.type = zookeeper`.
    pub zookeeper: Option<weir::ZooKeeperConfig>,
    /// `high-availability.storageDir`.
    pub storage_dir: Option<PathBuf>,
    pub rest_max_content_length: usize,
    /// Each kind's implementations, in order of preference.
    pub implementations: Implementations,
}

/// The implementations of each kind of endpoint to choose from, in order
/// of preference (`<kind>.implementations`).
#[derive(Clone, Debug)]
pub struct Implementations(BTreeMap<&'static str, Vec<String>>);

impl Default for Implementations {
    fn default() -> Self {
        Self(KINDS.iter().map(|kind| (*kind, vec!["default".to_owned()])).collect())
    }
}

impl Implementations {
    /// The preferences for `kind`, first first.
    pub fn of(&self, kind: &str) -> &[String] {
        self.0.get(kind).map_or(&[], Vec::as_slice)
    }
}

/// How the REST API is secured: TLS, a bearer token, both or neither.
#[derive(Clone, Default)]
pub struct RestSecurity {
    pub tls: Option<RestTls>,
    pub token: Option<String>,
}

/// Shows whether there is a token, never the token.
impl std::fmt::Debug for RestSecurity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let token = self.token.as_ref().map(|_| "<redacted>");
        f.debug_struct("RestSecurity").field("tls", &self.tls).field("token", &token).finish()
    }
}

/// The REST API's TLS files; the server needs `certificate` and `key`,
/// clients `ca`.
#[derive(Debug, Clone)]
pub struct RestTls {
    pub certificate: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub ca: Option<PathBuf>,
}

/// The values given, by key, with where each came from.
struct Given(BTreeMap<String, (String, String)>);

impl Given {
    fn get(&self, key: &str) -> Option<(&str, &str)> {
        self.0.get(key).map(|(value, from)| (value.as_str(), from.as_str()))
    }

    fn parse<T>(&self, key: &str, what: &str, parse: impl Fn(&str) -> Option<T>) -> Result<Option<T>, Error> {
        let Some((value, from)) = self.get(key) else { return Ok(None) };
        let parsed = parse(value).ok_or_else(|| format!("`{key}` ({from}) is `{value}`, not {what}"))?;
        Ok(Some(parsed))
    }

    fn number(&self, key: &str) -> Result<Option<u32>, Error> {
        self.parse(key, "a whole number", |value| value.parse().ok())
    }

    fn duration(&self, key: &str) -> Result<Option<Duration>, Error> {
        self.parse(key, "a duration such as `10 s` or `500 ms`", duration)
    }
}

/// A duration as Flink writes it (`10 s`, `1 min`, `500ms`); a bare number
/// is milliseconds.
fn duration(text: &str) -> Option<Duration> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    match compact.parse::<u64>() {
        Ok(milliseconds) => Some(Duration::from_millis(milliseconds)),
        Err(_) => humantime::parse_duration(&compact).ok(),
    }
}

/// Flattens a TOML table into dotted keys.
fn flatten(prefix: &str, table: &toml::Table, out: &mut Vec<(String, String)>) {
    for (name, value) in table {
        let key = if prefix.is_empty() { name.clone() } else { format!("{prefix}.{name}") };
        match value {
            toml::Value::Table(inner) => flatten(&key, inner, out),
            toml::Value::String(text) => out.push((key, text.clone())),
            toml::Value::Array(items) => {
                let items: Vec<String> =
                    items.iter().map(|item| item.as_str().map_or_else(|| item.to_string(), str::to_owned)).collect();
                out.push((key, items.join(",")));
            }
            other => out.push((key, other.to_string())),
        }
    }
}

/// Reads the settings from `file` and `overrides` (`key=value`).
pub fn read(file: Option<&Path>, overrides: &[String]) -> Result<Settings, Error> {
    let mut given = Vec::new();
    if let Some(path) = file {
        let table: toml::Table = crate::config::read(path)?;
        let mut keys = Vec::new();
        flatten("", &table, &mut keys);
        given.extend(keys.into_iter().map(|(key, value)| (key, value, path.display().to_string())));
    }
    for text in overrides {
        let (key, value) = text.split_once('=').ok_or_else(|| format!("`-D {text}` is not `-D key=value`"))?;
        given.push((key.trim().to_owned(), value.trim().to_owned(), format!("-D {text}")));
    }
    let mut known = BTreeMap::new();
    for (key, value, from) in given {
        if !KEYS.iter().any(|known| known.name == key) {
            let names: Vec<&str> = KEYS.iter().map(|key| key.name).collect();
            return Err(format!("unknown config key `{key}` ({from}); the keys are: {}", names.join(", ")).into());
        }
        known.insert(key, (value, from));
    }
    let given = Given(known);
    let heartbeat = weir::HeartbeatConfig {
        interval: given.duration("heartbeat.interval")?.unwrap_or(Duration::from_secs(10)),
        timeout: given.duration("heartbeat.timeout")?.unwrap_or(Duration::from_secs(50)),
        rpc_failure_threshold: given.number("heartbeat.rpc-failure-threshold")?.unwrap_or(2),
    };
    let tmp_dir = given
        .get("io.tmp.dirs")
        .map_or_else(std::env::temp_dir, |(dirs, _)| PathBuf::from(dirs.split(',').next().unwrap_or(dirs).trim()));
    let data_dirs = match given.get("cluster.data-dirs") {
        Some((dirs, _)) => dirs.split(',').map(|dir| PathBuf::from(dir.trim())).collect(),
        None => vec![std::env::current_dir()?],
    };
    let compile_cache = match given.get("cluster.compile-cache") {
        Some(("none", _)) => None,
        Some((dir, _)) => Some(PathBuf::from(dir)),
        None => default_compile_cache(),
    };
    let zookeeper = match given.get("high-availability.type") {
        None | Some(("none", _)) => None,
        Some(("zookeeper", _)) => {
            let (quorum, _) = given.get("high-availability.zookeeper.quorum").ok_or(
                "`high-availability.type` is `zookeeper` but `high-availability.zookeeper.quorum` is not set: \
                 name the servers, `host:port[,host:port...]`",
            )?;
            let mut zookeeper = weir::ZooKeeperConfig::new(quorum);
            if let Some((root, _)) = given.get("high-availability.zookeeper.path.root") {
                root.clone_into(&mut zookeeper.root);
            }
            if let Some((id, _)) = given.get("high-availability.cluster-id") {
                id.trim_start_matches('/').clone_into(&mut zookeeper.cluster_id);
            }
            zookeeper.session_timeout = given
                .duration("high-availability.zookeeper.client.session-timeout")?
                .unwrap_or(Duration::from_secs(60));
            Some(zookeeper)
        }
        Some((other, from)) => {
            return Err(format!("`high-availability.type` ({from}) is `{other}`, not `none` or `zookeeper`").into());
        }
    };
    let address = |key: &str| given.get(key).map_or("127.0.0.1", |(address, _)| address).to_owned();
    let mut implementations = Implementations::default();
    for kind in KINDS {
        if let Some((list, from)) = given.get(&format!("{kind}.implementations")) {
            let names: Vec<String> =
                list.split(',').map(str::trim).filter(|name| !name.is_empty()).map(str::to_owned).collect();
            if names.is_empty() {
                return Err(format!("`{kind}.implementations` ({from}) names no implementation").into());
            }
            implementations.0.insert(kind, names);
        }
    }
    Ok(Settings {
        implementations,
        parallelism: given.number("parallelism.default")?.unwrap_or(1),
        task_managers: given.number("minicluster.number-of-taskmanagers")?.unwrap_or(1),
        slots: given.number("taskmanager.numberOfTaskSlots")?,
        checkpoint_interval: given.duration("execution.checkpointing.interval")?,
        checkpoint_dir: given.get("state.checkpoints.dir").map(|(dir, _)| PathBuf::from(dir)),
        restart_attempts: given.number("restart-strategy.fixed-delay.attempts")?,
        restart_delay: given.duration("restart-strategy.fixed-delay.delay")?.unwrap_or_default(),
        heartbeat,
        tmp_dir,
        data_dirs,
        compile_cache,
        rest: format!(
            "{}:{}",
            given.get("rest.bind-address").map_or("127.0.0.1", |(address, _)| address),
            given.number("rest.port")?.unwrap_or(8081)
        ),
        rest_address: format!(
            "{}:{}",
            given.get("rest.address").map_or("127.0.0.1", |(address, _)| address),
            given.number("rest.port")?.unwrap_or(8081)
        ),
        rest_security: rest_security(&given)?,
        rest_max_content_length: given.number("rest.server.max-content-length")?.map_or(100 << 20, |n| n as usize),
        jobmanager_rpc: format!(
            "{}:{}",
            address("jobmanager.rpc.address"),
            given.number("jobmanager.rpc.port")?.unwrap_or(6123)
        ),
        taskmanager_rpc: format!(
            "{}:{}",
            address("taskmanager.host"),
            given.number("taskmanager.rpc.port")?.unwrap_or(0)
        ),
        zookeeper,
        storage_dir: given.get("high-availability.storageDir").map(|(dir, _)| PathBuf::from(dir)),
    })
}

fn rest_security(given: &Given) -> Result<RestSecurity, Error> {
    let tls = given.parse("security.ssl.rest.enabled", "`true` or `false`", |value| value.parse::<bool>().ok())?;
    let path = |key: &str| given.get(key).map(|(path, _)| PathBuf::from(path));
    let tls = tls.unwrap_or(false).then(|| RestTls {
        certificate: path("security.ssl.rest.certificate"),
        key: path("security.ssl.rest.key"),
        ca: path("security.ssl.rest.ca"),
    });
    let token = given.get("security.rest.token").map(|(token, _)| token.to_owned());
    if token.as_deref().is_some_and(str::is_empty) {
        return Err("`security.rest.token` is empty: give the token, or leave the key out".into());
    }
    Ok(RestSecurity { tls, token })
}

/// The user's cache directory for weir, as the XDG base directories say.
fn default_compile_cache() -> Option<PathBuf> {
    let home_cache = || std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache"));
    let cache =
        std::env::var_os("XDG_CACHE_HOME").map(PathBuf::from).filter(|dir| dir.is_absolute()).or_else(home_cache)?;
    Some(cache.join("weir"))
}

/// The keys as `--help` shows them.
pub fn help() -> String {
    let mut text = String::from("Config keys (--config FILE, or -D key=value):\n");
    for key in KEYS {
        text += &format!("  {:<40} {} (default: {})\n", key.name, key.doc, key.default);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rest_token_never_shows_in_debug_output() {
        let settings = read(None, &["security.rest.token=s3cret".to_owned()]).unwrap();
        assert_eq!(settings.rest_security.token.as_deref(), Some("s3cret"));
        let shown = format!("{:?}", settings.rest_security);
        assert!(!shown.contains("s3cret") && shown.contains("<redacted>"), "{shown}");
    }
}
