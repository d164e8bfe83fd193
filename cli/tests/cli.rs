//! The `weir` binary, run as a user runs it.

use std::path::Path;
use std::process::Command;

use weir_test_artifacts as artifacts;

const ECHO: &str = "weir:examples/echo@0.1.0";
const CALLER: &str = "weir:examples/caller@0.1.0";

/// `examples/embedded.toml`, with its component paths pointed at the
/// components this build made (wherever the target directory is).
fn embedded_example() -> ConfigFile {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut text = std::fs::read_to_string(root.join("examples/embedded.toml")).unwrap();
    for (name, path) in artifacts::ALL {
        let relative = format!("../target/wasm-endpoints/wasm32-wasip2/release/{}.wasm", name.replace('-', "_"));
        text = text.replace(&relative, path);
    }
    ConfigFile::new("embedded", &text)
}

#[test]
fn host_starts_the_embedded_example_and_reports_what_happened() {
    let config = embedded_example();
    let output = Command::new(env!("CARGO_BIN_EXE_weir")).arg("host").arg(config.path()).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "weir host failed:\n{stdout}\n{stderr}");
    for expected in [
        "started 3 endpoint(s)",
        "counter.add(1000) -> 1000",
        "echo.echo([104, 105]) -> [104, 105]",
        "counter.get() -> 1210",
        "echo.notified() -> (20, 210)",
        "all endpoints stopped cleanly",
    ] {
        assert!(stdout.contains(expected), "missing `{expected}` in:\n{stdout}");
    }
    assert!(stderr.contains("tick 20: counter total 1210 (ask took"), "the guest's log is missing:\n{stderr}");
}

#[test]
fn host_explains_a_bad_config() {
    let config = ConfigFile::new("bad", "[[endpoint]]\nid = \"x\"\ncomponent = \"missing.wasm\"\n");
    let output = Command::new(env!("CARGO_BIN_EXE_weir")).arg("host").arg(config.path()).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot read component") && stderr.contains("missing.wasm"), "{stderr}");
}

/// A config file with `text`, named for the test, removed when dropped.
struct ConfigFile(tempfile::NamedTempFile);

impl ConfigFile {
    fn new(name: &str, text: &str) -> Self {
        let file = tempfile::Builder::new().prefix(&format!("weir-cli-{name}-")).suffix(".toml").tempfile().unwrap();
        std::fs::write(file.path(), text).unwrap();
        Self(file)
    }

    fn path(&self) -> &Path {
        self.0.path()
    }
}

/// An `[[endpoint]]` table.
fn endpoint(id: &str, component: &str, extra: &str) -> String {
    format!("\n[[endpoint]]\nid = {id:?}\ncomponent = {component:?}\n{extra}\n")
}

/// `weir host` on `config`: its exit status, stdout and stderr.
fn run(config: &ConfigFile, extra: &[&str]) -> (std::process::ExitStatus, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_weir")).arg("host").arg(config.path()).args(extra).output().unwrap();
    (output.status, String::from_utf8_lossy(&output.stdout).into(), String::from_utf8_lossy(&output.stderr).into())
}

/// A `weir host` in the background, at the default log level, with its
/// stdout to read as it goes.
fn spawn_run(
    config: &ConfigFile,
    extra: &[&str],
) -> (std::process::Child, std::io::BufReader<std::process::ChildStdout>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
        .arg("host")
        .arg(config.path())
        .args(extra)
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    (child, stdout)
}

/// Reads stdout up to the line that starts with `prefix`; the rest of it.
fn read_until(stdout: &mut impl std::io::BufRead, prefix: &str) -> String {
    let mut line = String::new();
    loop {
        line.clear();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "the host ended before printing `{prefix}`");
        if let Some(rest) = line.trim().strip_prefix(prefix) {
            return rest.to_owned();
        }
    }
}

/// A `weir host` that fails: exit status 1 (an error, not a panic), and its
/// stderr.
fn fails(config: &ConfigFile) -> String {
    let (status, _, stderr) = run(config, &[]);
    assert_eq!(status.code(), Some(1), "{stderr}");
    stderr
}

#[test]
fn host_explains_each_bad_setting_with_its_key_and_cause() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let listen = taken.local_addr().unwrap();
    let cases: Vec<(&str, String, Vec<String>)> = vec![
        ("port-in-use", format!("[host]\nlisten = \"{listen}\"\n"), vec![format!("cannot listen on `{listen}` (`[host] listen`)"), "in use".into()]),
        ("no-port", "[host]\nlisten = \"127.0.0.1\"\n".into(), vec!["listen = \"127.0.0.1\"".into(), "host:port".into()]),
        ("spaces", "[host]\nlisten = \"127.0.0.1:0\"\nadvertised-host = \"my host\"\n".into(), vec!["advertised-host".into()]),
        (
            "missing-ca",
            "[host]\nlisten = \"127.0.0.1:0\"\ntls = { ca = \"/nowhere/ca.pem\", certificate = \"/nowhere/c.pem\", key = \"/nowhere/k.pem\" }\n".into(),
            vec!["`[host] tls.ca` = /nowhere/ca.pem".into(), "No such file".into()],
        ),
        ("bad-key", "[host]\nask-timout = \"1s\"\n".into(), vec!["unknown field `ask-timout`".into()]),
        ("empty-component", endpoint("x", "", ""), vec!["endpoint `x`".into(), "`component` is empty".into()]),
        ("tiny-memory-cap", format!("[host]\nmemory-cap = 65536\n{}", endpoint("x", artifacts::ECHO, "")), vec!["raise `memory-cap`".into(), "65536".into()]),
        ("huge-pools", "[host]\nmax-endpoints = 100000000\n".into(), vec!["`max-endpoints` = 100000000".into(), "Cannot allocate memory".into()]),
    ];
    for (name, text, expected) in cases {
        let config = ConfigFile::new(name, &text);
        let stderr = fails(&config);
        for part in expected {
            assert!(stderr.contains(&part), "{name}: `{part}` missing from:\n{stderr}");
        }
    }
}

#[test]
fn host_fails_when_a_call_returns_an_error_or_the_until_value_cannot_be_one() {
    let caller = endpoint("caller", artifacts::CALLER, "");
    let call = "[[call]]\nendpoint = \"caller\"\ngateway = \"weir:examples/caller@0.1.0\"\nfunction = \"call-ping\"\nargs = ['\"weir://local/nobody\"', \"1\"]\n";
    let config = ConfigFile::new("err-call", &format!("{caller}{call}"));
    let (status, stdout, stderr) = run(&config, &["--for", "1ms"]);
    assert_eq!(status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("caller.call-ping(\"weir://local/nobody\", 1) -> err(unknown-endpoint("), "{stdout}");
    assert!(stderr.contains("caller.call-ping returned err("), "{stderr}");

    let until = "[until]\nendpoint = \"caller\"\ngateway = \"weir:examples/caller@0.1.0\"\nfunction = \"call-ping\"\nargs = ['\"weir://local/caller\"', \"1\"]\nequals = \"(20, true)\"\n";
    let config = ConfigFile::new("bad-until", &format!("{caller}{until}"));
    let stderr = fails(&config);
    assert!(stderr.contains("[until] equals = \"(20, true)\" is not a value of type result<u64, "), "{stderr}");
}

#[test]
fn sigterm_shuts_the_host_down_as_ctrl_c_does() {
    let config = ConfigFile::new(
        "sigterm",
        &format!(
            "{}{}",
            endpoint("echo", artifacts::ECHO, ""),
            endpoint("leader", artifacts::COUNTER, "leader-election = true")
        ),
    );
    let (mut child, mut stdout) = spawn_run(&config, &[]);
    read_until(&mut stdout, "started");
    let term = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(term.success());
    let status = child.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "SIGTERM ends the host cleanly, not by the signal: {status:?}\n{stderr}");
    assert!(rest.contains("shut down: all endpoints stopped cleanly"), "{rest}");
    assert!(stderr.contains("received SIGTERM") && stderr.contains("leader endpoint stopped"), "{stderr}");
}

#[test]
fn an_unreachable_zookeeper_fails_startup_after_the_connection_timeout_with_the_attempts_logged() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = ConfigFile::new(
        "zookeeper",
        &format!(
            "[ha]\nmode = \"zookeeper\"\nquorum = \"127.0.0.1:{port}\"\nconnection-timeout = \"1500ms\"\n{}",
            endpoint("leader", artifacts::COUNTER, "leader-election = true")
        ),
    );
    let started = std::time::Instant::now();
    let stderr = fails(&config);
    assert!(started.elapsed() < std::time::Duration::from_secs(30), "it gave up after {:?}", started.elapsed());
    assert!(
        stderr
            .contains(&format!("cannot reach ZooKeeper at `127.0.0.1:{port}` within 1.5s (`[ha] connection-timeout`)")),
        "{stderr}"
    );
    assert!(stderr.matches("cannot reach ZooKeeper; retrying").count() >= 2, "each attempt is logged:\n{stderr}");
}

#[test]
fn call_calls_an_endpoint_of_a_running_host_and_explains_bad_input() {
    let config = ConfigFile::new(
        "call",
        &format!(
            "[host]\nlisten = \"127.0.0.1:0\"\n{}{}",
            endpoint("echo", artifacts::ECHO, ""),
            endpoint("caller", artifacts::CALLER, "")
        ),
    );
    let (mut host, mut stdout) = spawn_run(&config, &["--until-stdin-closes"]);
    let authority = read_until(&mut stdout, "listening at ");
    let call = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_weir")).arg("call").args(args).output().unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let echo = format!("weir://{authority}/echo");
    assert_eq!(call(&[&echo, ECHO, "ping", "7"]), (Some(0), "7\n".into(), String::new()));
    assert_eq!(call(&[&echo, ECHO, "echo", "[1, 2]"]).1, "[1, 2]\n");
    assert_eq!(call(&[&echo, ECHO, "notify", "3"]).1, "(told)\n");
    for (args, expected) in [
        (vec![format!("weir://{authority}/nobody"), ECHO.into(), "ping".into(), "7".into()], "no endpoint at"),
        (vec![format!("{authority}/echo"), ECHO.into(), "ping".into(), "7".into()], "does not start with `weir://`"),
        (
            vec![echo.clone(), "weir:examples/ech@0.1.0".into(), "ping".into(), "7".into()],
            "(it exports: weir:examples/echo@0.1.0)",
        ),
        (vec![echo.clone(), ECHO.into(), "pong".into()], "has no function `pong`"),
        (vec![echo.clone(), ECHO.into(), "ping".into(), "\"x\"".into()], "argument `x` must be a u64"),
        (vec![echo.clone(), ECHO.into(), "ping".into()], "takes 1 argument(s), got 0"),
        (
            vec![
                format!("weir://{authority}/caller"),
                CALLER.into(),
                "call-ping".into(),
                "\"weir://local/nobody\"".into(),
                "1".into(),
            ],
            "call-ping returned err(unknown-endpoint(",
        ),
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, _, stderr) = call(&args);
        assert_eq!(code, Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: `{expected}` missing from {stderr}");
    }
    // A flood of connections that open and close leaves the log alone.
    for _ in 0..50 {
        drop(std::net::TcpStream::connect(&authority).unwrap());
    }
    assert_eq!(call(&[&echo, ECHO, "ping", "8"]).1, "8\n", "served after the flood");
    drop(host.stdin.take());
    let output = host.wait_with_output().unwrap();
    assert!(output.status.success());
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(log.lines().count() < 20, "the flood made the log grow:\n{log}");
    assert!(!log.contains('\u{1b}'), "no colour codes in a pipe:\n{log}");
}
