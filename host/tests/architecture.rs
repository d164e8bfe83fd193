//! The host crate's shape: its modules form layers that only point down,
//! and the library carries none of the command line's weight.

use std::collections::BTreeSet;
use std::path::Path;

/// The host's top-level modules, from the bottom up.
const LAYERS: &[&str] = &[
    "address",
    "fencing",
    "config",
    "error",
    "events",
    "swap",
    "gateway",
    "component",
    "ha",
    "heartbeat",
    "registration",
    "endpoint",
    "remote",
    "route",
    "client",
    "capability",
    "engine",
    "actor",
    "service",
];

/// The modules `source` names through `crate::`.
fn used_modules(source: &str) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    let mut rest = source;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        if !name.is_empty() {
            used.insert(name);
        }
    }
    used
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

/// Each module uses only modules below it in [`LAYERS`], the order
/// `lib.rs` documents. A module that reaches up (an endpoint that knows the
/// transport, a component that knows the actor) fails here, naming both.
#[test]
fn modules_use_only_the_layers_below_them() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let rank = |module: &str| LAYERS.iter().position(|m| *m == module);
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut violations = Vec::new();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap();
        let module = relative.components().next().unwrap().as_os_str().to_string_lossy();
        let module = module.trim_end_matches(".rs");
        if module == "lib" {
            continue;
        }
        let own = rank(module).unwrap_or_else(|| panic!("module `{module}` is missing from LAYERS"));
        for used in used_modules(&std::fs::read_to_string(&file).unwrap()) {
            match rank(&used) {
                Some(layer) if layer > own => {
                    violations.push(format!("{} uses `{used}`, a layer above `{module}`", relative.display()));
                }
                // Re-exports at the crate root (`crate::Engine`) are not
                // modules; the modules they come from are checked where
                // they are used.
                _ => {}
            }
        }
    }
    assert!(violations.is_empty(), "layers point up:\n{}", violations.join("\n"));
}

/// A program that embeds a host gets the runtime, not the CLI: argument
/// parsing, config files, log output and benchmark statistics belong to
/// the `weir` command (`cli/`).
#[test]
fn the_library_depends_on_nothing_the_command_line_needs() {
    let manifest = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    let manifest: toml::Table = toml::from_str(&manifest).unwrap();
    let dependencies = manifest["dependencies"].as_table().unwrap();
    for cli_only in ["clap", "toml", "tracing-subscriber", "hdrhistogram", "humantime", "wit-parser"] {
        assert!(!dependencies.contains_key(cli_only), "the library depends on `{cli_only}`, which only the CLI needs");
    }
}
