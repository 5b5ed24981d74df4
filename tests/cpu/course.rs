//! The course front end (`wgpu-train course`, `examples/course/`, `lab::course`): each
//! experiment's key figures, read from its `--json` line, against what the
//! notebooks printed and what the mathematics says; and its command-line
//! errors. Runs the example binary that `cargo test` builds.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

fn course_exe() -> PathBuf {
    // target/<profile>/deps/cpu-HASH → target/<profile>/examples/course
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let path = dir.join("examples").join("course");
    assert!(
        path.exists(),
        "{} was not built (cargo test builds examples; or cargo build --example course)",
        path.display()
    );
    path
}

/// Runs the example with `args`: (exit code, stdout, stderr), never a panic.
fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(course_exe())
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("the example runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !stderr.contains("panicked"),
        "panic for {args:?}:\n{stderr}"
    );
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr,
    )
}

/// The `--json` object of experiment `name`.
fn json(name: &str) -> Value {
    let (code, stdout, stderr) = run(&[name, "--json"]);
    assert_eq!(code, 0, "{name} failed:\n{stderr}");
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{name}: {e}\n{stdout}"))
}

fn num(v: &Value, path: &[&str]) -> f64 {
    let mut cur = v;
    for k in path {
        cur = &cur[*k];
    }
    cur.as_f64()
        .unwrap_or_else(|| panic!("{path:?} is not a number in {v}"))
}

#[test]
fn list_prints_every_experiment_one_a_line() {
    let (code, stdout, _) = run(&["--list"]);
    assert_eq!(code, 0);
    let names: Vec<&str> = stdout.lines().collect();
    for want in [
        "descent-1d",
        "descent-2d",
        "and-neuron",
        "optimizers-1d",
        "bfgs-quadratic",
        "levenberg-marquardt",
        "linear-regression",
        "losses",
        "finite-differences",
        "step-size",
        "autodiff",
        "cs231n-check",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
}

#[test]
fn and_neuron_truth_table_is_and_with_cost_below_1e_3() {
    let v = json("and-neuron");
    assert_eq!(v["truth_table"], serde_json::json!([0, 0, 0, 1]));
    assert!(num(&v, &["cost"]) < 1e-3);
    // From the notebook's printed start, the notebook's printed outputs
    // (cell [34]: 0.942445291 for 11, 1.57107087e-4 for 00).
    let out = v["outputs"].as_array().unwrap();
    assert!((out[3].as_f64().unwrap() - 0.942445291).abs() < 1e-6);
    assert!((out[0].as_f64().unwrap() - 1.57107087e-4).abs() < 1e-9);
}

#[test]
fn finite_difference_slopes_are_one_and_two() {
    let v = json("finite-differences");
    let (fwd, cen) = (num(&v, &["forward_slope"]), num(&v, &["centred_slope"]));
    assert!((fwd - 1.0).abs() < 0.05, "forward slope {fwd}");
    assert!((cen - 2.0).abs() < 0.05, "centred slope {cen}");
    let ours = num(&v, &["notebook_forward_h1e-5", "ours"]);
    assert!((ours - 0.0018204242002717306).abs() < 1e-15, "{ours}");
}

#[test]
fn autodiff_equals_the_hand_backward_to_1e_12() {
    let v = json("autodiff");
    assert!(num(&v, &["max_rel_diff", "forward_vs_hand"]) < 1e-12);
    assert!(num(&v, &["max_rel_diff", "reverse_vs_hand"]) < 1e-12);
    assert!(num(&v, &["max_rel_diff", "centred_vs_hand"]) < 1e-7);
    assert!(num(&v, &["max_rel_diff", "and_tape_vs_delta"]) < 1e-12);
}

#[test]
fn descent_1d_follows_the_contraction_and_every_start_reaches_one() {
    let v = json("descent-1d");
    assert_eq!(v["finals"].as_array().unwrap().len(), 50);
    assert!(num(&v, &["max_deviation_from_law"]) < 1e-9);
    assert!(num(&v, &["max_distance_after_1000_steps"]) < 1e-6);
}

#[test]
fn descent_2d_finds_a_minimum_of_minus_8() {
    let v = json("descent-2d");
    let best = v["best"].as_array().unwrap();
    let (x, y) = (best[0].as_f64().unwrap(), best[1].as_f64().unwrap());
    let f = x.powi(4) + y.powi(4) - 2.0 * (x - y).powi(2);
    assert!((f + 8.0).abs() < 1e-6, "f = {f} at ({x}, {y})");
    let counts = &v["grid_counts"];
    assert_eq!(
        num(counts, &["+"]) + num(counts, &["-"]) + num(counts, &["other"]),
        169.0
    );
}

#[test]
fn seeded_notebook_data_give_the_notebooks_figures() {
    // np.random.seed(42) data: GD prints the notebook's digits exactly.
    let v = json("linear-regression");
    assert!((num(&v, &["gd", "w"]) - 2.538207099748425).abs() < 1e-12);
    assert!((num(&v, &["gd", "b"]) - 0.664818146793009).abs() < 1e-12);
    assert!(num(&v, &["sgd", "mse"]) < 1.05 * num(&v, &["least_squares", "mse"]));
    // LM reaches the least-squares line; scipy stopped within its 1.5e-8.
    let v = json("levenberg-marquardt");
    let ls = v["least_squares"].as_array().unwrap();
    assert!((num(&v, &["a"]) - ls[0].as_f64().unwrap()).abs() < 1e-9);
    assert!((num(&v, &["a"]) - 1.9420165984712758).abs() < 5e-8);
    assert!((num(&v, &["b"]) - 1.064443102989749).abs() < 5e-8);
}

#[test]
fn first_order_methods_print_the_notebooks_figures() {
    let v = json("optimizers-1d");
    assert!((num(&v, &["final_w", "SGD"]) - 3.387533875338753).abs() < 1e-12);
    // From any start, GD, NAG, RMSprop and Adam end nearer the minimum.
    let w0 = num(&v, &["w0"]);
    for method in ["GD", "NAG", "RMSprop", "Adam"] {
        let w = num(&v, &["final_w", method]);
        assert!(
            (w - 3.0).abs() < (w0 - 3.0).abs(),
            "{method}: {w} from {w0}"
        );
    }
    let v = json("step-size");
    let policies = v["policies"].as_array().unwrap();
    assert_eq!(format!("{:.2}", num(&policies[0], &["x"])), "3.48");
    // Golden-section search tells values apart only to about √ε.
    assert!((num(&policies[3], &["x"]) - 3.0).abs() < 1e-6);
    assert!((num(&v, &["sgd_cut_95", "w"]) - 2.0).abs() < 1e-6);
    let v = json("bfgs-quadratic");
    let opt = v["optimum"].as_array().unwrap();
    assert!((opt[0].as_f64().unwrap() - 1.0).abs() < 1e-6);
    assert!((opt[1].as_f64().unwrap() - 2.0).abs() < 1e-6);
    let v = json("losses");
    assert!(num(&v, &["softmax_logistic_max_difference"]) < 1e-12);
}

#[test]
fn plot_writes_every_picture_as_png() {
    let dir = std::env::temp_dir().join(format!("wgpu-train-course-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Every experiment that draws (cs231n-check draws nothing and is the
    // slow one).
    let (_, list, _) = run(&["--list"]);
    let mut stdout = String::new();
    for name in list.lines().filter(|n| *n != "cs231n-check") {
        let (code, out, stderr) = run(&[name, "--plot", dir.to_str().unwrap()]);
        assert_eq!(code, 0, "{name}: {stderr}");
        stdout.push_str(&out);
    }
    let pictures: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("picture: "))
        .collect();
    assert!(pictures.len() >= 11, "{pictures:?}");
    for p in pictures {
        let bytes = std::fs::read(p).unwrap();
        assert_eq!(&bytes[1..4], b"PNG", "{p}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_input_is_refused_before_any_work() {
    let (code, _, stderr) = run(&["no-such-experiment"]);
    assert_ne!(code, 0);
    assert!(stderr.contains("and-neuron"), "{stderr}");
    let (code, stdout, stderr) = run(&["losses", "--plot", "/nonexistent/wgpu-train-course"]);
    assert_ne!(code, 0);
    assert!(
        stderr.contains("/nonexistent/wgpu-train-course"),
        "{stderr}"
    );
    assert!(stdout.is_empty(), "{stdout}");
    let (code, _, _) = run(&[]);
    assert_ne!(code, 0);
}

/// `train_linear --json` carries the test set's confusion matrix and
/// per-class metrics, consistent with its accuracy; `--plot` draws the
/// matrix beside the curves. Needs Fashion-MNIST, as the other data tests.
#[test]
fn train_linear_json_carries_confusion_and_per_class_metrics() {
    let exe = course_exe().with_file_name("train_linear");
    let dir = std::env::temp_dir().join(format!("wgpu-train-classes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let curves = dir.join("curves.png");
    let out = Command::new(&exe)
        .args([
            "--device", "cpu", "--epochs", "1", "--json", "--quiet", "--plot",
        ])
        .arg(&curves)
        .output()
        .expect("train_linear runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.contains("\"confusion\""))
        .expect("a JSON line with confusion");
    let v: Value = serde_json::from_str(line).unwrap();
    let m: Vec<Vec<u64>> = serde_json::from_value(v["confusion"].clone()).unwrap();
    assert_eq!(m.len(), 10);
    let total: u64 = m.iter().flatten().sum();
    let trace: u64 = (0..10).map(|i| m[i][i]).sum();
    assert_eq!(total, 10_000);
    let acc = num(&v, &["test_accuracy"]);
    assert!(
        (trace as f64 / total as f64 - acc).abs() < 1e-3,
        "{trace}/{total} vs {acc}"
    );
    let per_class = v["per_class"].as_array().unwrap();
    assert_eq!(per_class.len(), 10);
    for (c, row) in per_class.iter().enumerate() {
        let support: u64 = m[c].iter().sum();
        assert_eq!(num(row, &["support"]) as u64, support);
        let recall = num(row, &["recall"]);
        assert!((recall - m[c][c] as f64 / support as f64).abs() < 1e-12);
    }
    let picture = std::fs::read(dir.join("curves-confusion-cpu.png")).unwrap();
    assert_eq!(&picture[1..4], b"PNG");
    std::fs::remove_dir_all(&dir).ok();
}

/// Every coordinate of the 10×3073 W checked by forward differences on a
/// batch of 1000: the O(h) error bound h/2·∂²L ≈ 5e-6·0.09; and random
/// labels stay unlearnt (loss ln 10, accuracy near chance), as in the
/// notebook.
#[test]
fn cs231n_check_covers_every_coordinate() {
    let v = json("cs231n-check");
    assert_eq!(num(&v, &["coordinates"]), 30730.0);
    let diff = num(&v, &["fd_max_abs_diff"]);
    assert!(diff > 0.0 && diff < 2e-6, "{diff}");
    assert!((num(&v, &["batch_loss"]) - 10f64.ln()).abs() < 0.01);
    let acc = num(&v, &["test_accuracy"]);
    assert!((0.05..0.15).contains(&acc), "{acc}");
    for l in v["descent_losses"].as_array().unwrap() {
        assert!((num(l, &["loss"]) - 10f64.ln()).abs() < 0.05, "{l}");
    }
}
