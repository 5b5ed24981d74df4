//! The command-line front ends: each example's flags and body, and the
//! `wgpu-train` binary that puts them under one roof as subcommands.
//!
//! Every front end is one module with the same three functions: `command()`
//! (its clap flags), `main_with(&ArgMatches)` (the run) and `main()` (parse
//! the process's arguments, then run). The example `examples/X/main.rs` calls
//! `X::main()`; `wgpu-train` mounts `X::command()` under a subcommand name
//! and hands the subcommand's matches to `X::main_with`. So a flag is
//! declared once and behaves the same on both paths.
//!
//! Behind the `cli` feature (default on, native only): `clap` and
//! `indicatif` are dependencies of the front ends, not of the library.

mod common;
pub mod course;
pub mod gpu_info;
pub mod gpu_vs_cpu;
pub mod report;
pub mod second_order;
pub mod strategies;
pub mod sweep;
pub mod train_linear;
pub mod train_mlp;
pub mod verify;

use std::process::ExitCode;

/// A front end: its flags and its run.
struct Front {
    name: &'static str,
    /// The one-line summary `wgpu-train --help` lists (the examples' own
    /// `--help` keeps theirs).
    about: &'static str,
    command: fn() -> clap::Command,
    main_with: fn(&clap::ArgMatches) -> ExitCode,
}

/// The subcommands of `wgpu-train` but `train`'s, in `--help` order.
const FRONTS: [Front; 8] = [
    Front {
        name: "info",
        about: "The adapter wgpu-train would use, its limits, features and the paths taken on it",
        command: gpu_info::command,
        main_with: gpu_info::main_with,
    },
    Front {
        name: "verify",
        about: "Check every kernel against its CPU twin on this GPU",
        command: verify::command,
        main_with: verify::main_with,
    },
    Front {
        name: "bench",
        about: "Time every kernel family and a training step on the GPU and the CPU (gpu_vs_cpu)",
        command: gpu_vs_cpu::command,
        main_with: gpu_vs_cpu::main_with,
    },
    Front {
        name: "sweep",
        about: "Train K configurations of one model together in one GPU run",
        command: sweep::command,
        main_with: sweep::main_with,
    },
    Front {
        name: "second-order",
        about: "L-BFGS and Newton-CG on the linear classifier, against first-order training",
        command: second_order::command,
        main_with: second_order::main_with,
    },
    Front {
        name: "strategies",
        about: "The course notebook's four optimisation strategies, on the GPU and the CPU",
        command: strategies::command,
        main_with: strategies::main_with,
    },
    Front {
        name: "course",
        about: "The course notebooks' experiments, one command each (--list names them)",
        command: course::command,
        main_with: course::main_with,
    },
    Front {
        name: "report",
        about: "Write a report card of this GPU (Markdown, JSON, HTML): verify, benchmarks, latency, training",
        command: report::command,
        main_with: report::main_with,
    },
];

/// `wgpu-train train`'s models.
const TRAIN: [Front; 2] = [
    Front {
        name: "mlp",
        about: "The main job: the MLP 784-128-128-10 on Fashion-MNIST, GPU then CPU",
        command: train_mlp::command,
        main_with: train_mlp::main_with,
    },
    Front {
        name: "linear",
        about: "The linear softmax classifier (first-order, or --optimizer lbfgs|newton-cg)",
        command: train_linear::command,
        main_with: train_linear::main_with,
    },
];

/// The whole `wgpu-train` command line.
pub fn command() -> clap::Command {
    let mut train = clap::Command::new("train")
        .about("Train a model on the GPU and the CPU (the main job: `train mlp`)")
        .subcommand_required(true)
        .arg_required_else_help(true);
    for f in &TRAIN {
        train = train.subcommand((f.command)().name(f.name).about(f.about));
    }
    let mut cmd = clap::Command::new("wgpu-train")
        .version(env!("CARGO_PKG_VERSION"))
        .about(
            "Train small neural networks with WGSL compute shaders on your GPU, \
             checked against a CPU twin; `wgpu-train report --quick` writes a \
             report card of the GPU",
        )
        .subcommand_required(true)
        .arg_required_else_help(true)
        .subcommand(train);
    for f in &FRONTS {
        cmd = cmd.subcommand((f.command)().name(f.name).about(f.about));
    }
    cmd
}

/// The binary's entry point: parses the process's arguments and runs the
/// subcommand they name.
pub fn main() -> ExitCode {
    let matches = command().get_matches();
    let (name, sub) = matches
        .subcommand()
        .expect("clap requires a subcommand (subcommand_required)");
    if name == "train" {
        let (model, m) = sub
            .subcommand()
            .expect("clap requires a model (subcommand_required)");
        return run(&TRAIN, model, m);
    }
    run(&FRONTS, name, sub)
}

fn run(fronts: &[Front], name: &str, matches: &clap::ArgMatches) -> ExitCode {
    match fronts.iter().find(|f| f.name == name) {
        Some(f) => (f.main_with)(matches),
        None => unreachable!("clap accepted only the subcommands registered above"),
    }
}
