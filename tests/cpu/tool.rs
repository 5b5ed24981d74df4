//! The `wgpu-train` binary's command line, without a GPU: its subcommands,
//! that `train mlp` takes the same flags as the `train_mlp` example (one
//! declaration, two entry points), and bad input refused with a clear
//! message before any work.

use crate::data_util::Scratch;
use std::process::Command;

/// Runs `wgpu-train` with `args`: (exit code, stdout, stderr).
fn tool(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_wgpu-train"))
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("wgpu-train runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !stderr.contains("panicked"),
        "panic for {args:?}:\n{stderr}"
    );
    (out.status.code().unwrap_or(-1), stdout, stderr)
}

/// The `--` flags a help text lists, in order.
fn flags(help: &str) -> Vec<String> {
    help.split_whitespace()
        .filter(|w| w.starts_with("--"))
        .map(|w| w.trim_end_matches([',', '.']).to_string())
        .collect()
}

#[test]
fn help_lists_every_subcommand() {
    let (code, out, err) = tool(&["--help"]);
    assert_eq!(code, 0, "{err}");
    for sub in [
        "train",
        "info",
        "verify",
        "bench",
        "sweep",
        "second-order",
        "strategies",
        "report",
    ] {
        assert!(
            out.lines()
                .any(|l| l.trim_start().starts_with(&format!("{sub} "))),
            "no '{sub}' in:\n{out}"
        );
    }
    let (code, out, _) = tool(&["train", "--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("mlp") && out.contains("linear"), "{out}");
}

#[test]
fn train_mlp_takes_the_examples_flags() {
    let (code, tool_help, err) = tool(&["train", "mlp", "--help"]);
    assert_eq!(code, 0, "{err}");
    for flag in [
        "--optimizer",
        "--activation",
        "--device",
        "--fused",
        "--plot",
    ] {
        assert!(tool_help.contains(flag), "no {flag} in:\n{tool_help}");
    }
    // The example's --help lists the same flags: one declaration.
    let exe = std::env::current_exe().expect("test executable path");
    let example = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target dir")
        .join("examples/train_mlp");
    let out = Command::new(&example)
        .arg("--help")
        .output()
        .expect("the train_mlp example runs");
    let example_help = String::from_utf8_lossy(&out.stdout);
    assert_eq!(flags(&tool_help), flags(&example_help));
}

#[test]
fn bad_flags_are_refused_as_in_the_examples() {
    let (code, _, err) = tool(&["train", "mlp", "--optimizer", "adadelta"]);
    assert_ne!(code, 0);
    assert!(err.contains("invalid value 'adadelta'"), "{err}");
    let (code, _, err) = tool(&["train", "linear", "--lr", "NaN", "--device", "cpu"]);
    assert_ne!(code, 0);
    assert!(err.contains("lr"), "{err}");
    let (code, _, err) = tool(&["frobnicate"]);
    assert_ne!(code, 0);
    assert!(err.contains("frobnicate"), "{err}");
}

#[test]
fn report_refuses_bad_input_before_any_work() {
    let (code, _, err) = tool(&["report", "--quick", "--peak-gflops", "-5"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("--peak-gflops") && err.contains("positive"),
        "{err}"
    );

    let dir = Scratch::new("report-refuses");
    let file = dir.write("not-a-dir", b"x");
    let (code, _, err) = tool(&["report", "--quick", "--out", file.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not a directory"), "{err}");

    // A report.json that is someone else's is never replaced.
    let foreign = dir.write("out/report.json", b"{\"mine\": true}");
    let out = dir.path().join("out");
    let (code, _, err) = tool(&["report", "--quick", "--out", out.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not a wgpu-train report"), "{err}");
    assert_eq!(std::fs::read(&foreign).unwrap(), b"{\"mine\": true}");
    // Refused before the work: nothing else was written.
    assert!(!out.join("report.md").exists());
}

#[test]
fn report_replaces_only_its_own_files() {
    use wgpu_train::lab::report::{MARK, prepare_dir};
    let dir = Scratch::new("report-own");
    // An earlier report's files (they carry the mark near their start).
    dir.write(
        "card/report.md",
        format!("<!-- {MARK} -->\n# old").as_bytes(),
    );
    let paths = prepare_dir(&dir.path().join("card")).expect("an earlier report is replaced");
    assert!(paths[0].ends_with("report.md"));
    // A missing directory is created; a foreign file in it is refused.
    let fresh = dir.path().join("new/deeper");
    prepare_dir(&fresh).expect("a missing directory is created");
    assert!(fresh.is_dir());
    dir.write("new/deeper/report.html", b"<html>someone's page</html>");
    let err = prepare_dir(&fresh).unwrap_err().to_string();
    assert!(
        err.contains("report.html") && err.contains("refusing"),
        "{err}"
    );
}
