//! Builds the endpoint components for the tests.
//!
//! `endpoints/` is a workspace of its own, built for `wasm32-wasip2`; its
//! `echo-sync` member is built with `cargo component` (a sync-only world).
//! The nested builds use their own target directory, so they never wait on
//! the outer build's lock.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.join("../..").canonicalize().unwrap();
    let endpoints = root.join("endpoints");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    // One target directory for every profile of the outer build.
    let target_dir =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from).join("wasm-endpoints");

    require_target("wasm32-wasip2");
    require_target("wasm32-wasip1");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = endpoints.join("Cargo.toml");
    let manifest = manifest.to_str().unwrap();
    run(&mut nested(
        &cargo,
        &target_dir,
        &["build", "--release", "--target", "wasm32-wasip2", "--manifest-path", manifest],
    ));
    let component = Command::new(&cargo).args(["component", "--version"]).output();
    if !component.is_ok_and(|o| o.status.success()) {
        panic!("cargo-component is missing: run `cargo install --locked cargo-component@0.21.1`");
    }
    run(nested(&cargo, &target_dir, &["component", "build", "--release"]).current_dir(endpoints.join("echo-sync")));

    let wasip2 = target_dir.join("wasm32-wasip2/release");
    let mut components = Vec::new();
    for member in members(&endpoints.join("Cargo.toml")) {
        components.push((member.clone(), wasip2.join(format!("{}.wasm", member.replace('-', "_")))));
    }
    components.push(("echo-sync".into(), target_dir.join("wasm32-wasip1/release/echo_sync.wasm")));

    let mut generated = String::new();
    for (name, path) in &components {
        assert!(path.exists(), "the build did not produce {}", path.display());
        let constant = name.to_uppercase().replace('-', "_");
        generated +=
            &format!("/// `endpoints/{name}`.\npub const {constant}: &str = {:?};\n", path.display().to_string());
    }
    generated += "\n/// Every component: its name and path.\npub const ALL: &[(&str, &str)] = &[\n";
    for (name, _) in &components {
        generated += &format!("    ({name:?}, {}),\n", name.to_uppercase().replace('-', "_"));
    }
    generated += "];\n\n/// Calls `$mac!(name)` for every component.\n#[macro_export]\nmacro_rules! foreach_endpoint {\n    ($mac:ident) => {\n";
    for (name, _) in &components {
        generated += &format!("        $mac!({});\n", name.replace('-', "_"));
    }
    generated += "    };\n}\n";
    std::fs::write(out_dir.join("gen.rs"), generated).unwrap();

    for path in ["wit", "guest-sdk/src", "guest-sdk/Cargo.toml", "endpoints/Cargo.toml", "endpoints/Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", root.join(path).display());
    }
    for entry in std::fs::read_dir(&endpoints).unwrap() {
        let crate_dir = entry.unwrap().path();
        for part in ["src", "wit", "Cargo.toml"] {
            let path = crate_dir.join(part);
            if path.exists() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }
}

/// A nested cargo command with an environment of its own: the outer build's
/// flags and wrappers (clippy's, say) are not the endpoints'. In CI it uses
/// the committed lock files.
fn nested(cargo: &str, target_dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(cargo);
    command.args(args).env("CARGO_TARGET_DIR", target_dir);
    for variable in ["CARGO_ENCODED_RUSTFLAGS", "RUSTFLAGS", "RUSTC_WORKSPACE_WRAPPER", "CLIPPY_ARGS"] {
        command.env_remove(variable);
    }
    if std::env::var_os("CI").is_some() {
        command.arg("--locked");
    }
    command
}

fn run(command: &mut Command) {
    let status = command.status().unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(status.success(), "{command:?} failed");
}

/// Fails the build with one sentence if a rustup target is missing.
fn require_target(target: &str) {
    let sysroot = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .args(["--print", "sysroot"])
        .output()
        .expect("cannot run rustc");
    let sysroot = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim());
    if !sysroot.join("lib/rustlib").join(target).exists() {
        panic!("the {target} target is missing: run `rustup target add {target}`");
    }
}

/// The members listed in a workspace manifest.
fn members(manifest: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(manifest).unwrap();
    let manifest: toml::Table = toml::from_str(&text).expect("endpoints/Cargo.toml is not valid TOML");
    manifest["workspace"]["members"]
        .as_array()
        .expect("endpoints/Cargo.toml lists no members")
        .iter()
        .map(|m| m.as_str().expect("a member is not a string").to_owned())
        .collect()
}
