//! `weir cluster`, the README's main command, as a user runs it: a
//! process that runs word count on an embedded cluster to its exact
//! result, refuses a bad setting with a message naming it, and runs the
//! implementation of a kind of endpoint its settings prefer.

use std::process::{Command, Output};

use weir_tests::artifacts;
use weir_tests::process::weir_binary;

use super::wordcount::{Data, expected_output, write_input};

fn weir(arguments: &[&str]) -> Output {
    Command::new(weir_binary()).args(arguments).output().expect("cannot run weir")
}

#[test]
fn weir_cluster_runs_word_count_to_its_exact_result() {
    let data = Data::new("command");
    write_input(&data.input(), 3, 200_000);
    let (root, input, output) =
        (data.root().display().to_string(), data.input().display().to_string(), data.output().display().to_string());
    let ran = weir(&[
        "cluster",
        "-p",
        "2",
        "-D",
        "rest.port=0",
        "-D",
        "minicluster.number-of-taskmanagers=2",
        "-D",
        "execution.checkpointing.interval=20 ms",
        "-D",
        &format!("cluster.data-dirs={root}"),
        artifacts::WORDCOUNT,
        "--input",
        &input,
        "--output",
        &output,
    ]);
    let stdout = String::from_utf8_lossy(&ran.stdout);
    assert!(ran.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&ran.stderr));
    assert_eq!(std::fs::read_to_string(&output).unwrap(), expected_output(&data.input()));
    for shown in ["cluster: 2 TaskExecutor(s) of 2 slot(s)", "job finished", "distinct; the top ten:", "phases:"] {
        assert!(stdout.contains(shown), "`{shown}` in:\n{stdout}");
    }
}

#[test]
fn weir_cluster_names_a_bad_setting_and_where_it_was() {
    let unknown = weir(&["cluster", "-D", "taskmanager.slots=2", artifacts::WORDCOUNT]);
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(!unknown.status.success());
    assert!(stderr.contains("unknown config key `taskmanager.slots` (-D taskmanager.slots=2)"), "{stderr}");

    let orphaned = weir(&["cluster", "--until-stdin-closes", artifacts::WORDCOUNT]);
    let stderr = String::from_utf8_lossy(&orphaned.stderr);
    assert!(!orphaned.status.success());
    assert!(stderr.contains("--until-stdin-closes is for a session cluster: add --keep-running"), "{stderr}");

    let data = Data::new("bad-config");
    let file = data.root().join("cluster.toml");
    std::fs::write(&file, "[heartbeat]\ninterval = \"soon\"\n").unwrap();
    let bad = weir(&["cluster", "--config", file.to_str().unwrap(), artifacts::WORDCOUNT]);
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success());
    assert!(
        stderr.contains(&format!("`heartbeat.interval` ({}) is `soon`, not a duration", file.display())),
        "{stderr}"
    );
}

/// The TaskExecutors a job's slots came from, as its JobMaster logged
/// taking them.
fn slot_owners(log: &str) -> std::collections::BTreeSet<String> {
    log.lines()
        .filter_map(|line| line.split(" slot(s) of TaskExecutor ").nth(1))
        .filter_map(|rest| rest.split(';').next())
        .map(str::to_owned)
        .collect()
}

/// Two implementations of the ResourceManager ship; the same binary runs
/// either, as `resourcemanager.implementations` prefers: the default fills
/// one TaskExecutor before the next, `spread` spreads a job's slots.
#[test]
fn the_resource_manager_implementation_chosen_decides_where_slots_go() {
    let run = |implementation: &str| {
        let ran = Command::new(weir_binary())
            .args(["cluster", "-p", "2", "-D", "rest.port=0", "-D", "minicluster.number-of-taskmanagers=2"])
            .args(["-D", "taskmanager.numberOfTaskSlots=2", "-D"])
            .arg(format!("resourcemanager.implementations={implementation}"))
            .arg(artifacts::TRIVIAL_TASK)
            .env("RUST_LOG", "info")
            .output()
            .expect("cannot run weir");
        let log = String::from_utf8_lossy(&ran.stderr).into_owned();
        assert!(ran.status.success(), "{log}");
        log
    };
    let filled = run("default");
    assert!(filled.contains("resourcemanager.wasm"), "the default implementation runs");
    assert_eq!(slot_owners(&filled).len(), 1, "one TaskExecutor filled first:\n{filled}");
    let spread = run("spread,default");
    assert!(spread.contains("resourcemanager_spread.wasm"), "the preferred implementation runs");
    assert_eq!(slot_owners(&spread).len(), 2, "the job spread over both:\n{spread}");

    let missing = weir(&["cluster", "-D", "resourcemanager.implementations=nowhere", artifacts::TRIVIAL_TASK]);
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(!missing.status.success());
    assert!(stderr.contains("no implementation of the resourcemanager is installed: tried"), "{stderr}");
    assert!(stderr.contains("resourcemanager_nowhere.wasm"), "{stderr}");
}
