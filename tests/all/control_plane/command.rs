//! `weir cluster`, the README's main command, as a user runs it: a
//! process that runs word count on an embedded cluster to its exact
//! result, and refuses a bad setting with a message naming it.

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
