//! The `weir` binary, run as a user runs it.

use std::path::Path;
use std::process::Command;

use weir_test_artifacts as artifacts;

/// `examples/embedded.toml`, with its component paths pointed at the
/// components this build made (wherever the target directory is).
fn embedded_example() -> std::path::PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut text = std::fs::read_to_string(root.join("examples/embedded.toml")).unwrap();
    for (name, path) in artifacts::ALL {
        let relative = format!("../target/wasm-endpoints/wasm32-wasip2/release/{}.wasm", name.replace('-', "_"));
        text = text.replace(&relative, path);
    }
    let config = std::env::temp_dir().join(format!("weir-embedded-{}.toml", std::process::id()));
    std::fs::write(&config, text).unwrap();
    config
}

#[test]
fn run_starts_the_embedded_example_and_reports_what_happened() {
    let config = embedded_example();
    let output = Command::new(env!("CARGO_BIN_EXE_weir")).arg("run").arg(&config).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "weir run failed:\n{stdout}\n{stderr}");
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
fn run_explains_a_bad_config() {
    let config = std::env::temp_dir().join(format!("weir-bad-{}.toml", std::process::id()));
    std::fs::write(&config, "[[endpoint]]\nid = \"x\"\ncomponent = \"missing.wasm\"\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_weir")).arg("run").arg(&config).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot read component") && stderr.contains("missing.wasm"), "{stderr}");
}
