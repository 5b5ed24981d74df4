//! The quick mode of `examples/gpu_vs_cpu` (issue 7), run in CI through the
//! library call the example makes: every case is reported, every time is
//! finite and positive, and every GPU result agreed with the CPU twin's.

use crate::common::gpu;
use wgpu_train::lab::bench::{self, Options, Peaks};

#[test]
fn quick_mode_reports_every_case_with_sane_times_and_agreeing_results() {
    let rows = bench::run(gpu(), &Options::quick(), |_| {}).expect("quick run");
    let names = bench::case_names();
    assert_eq!(
        rows.iter()
            .map(|c| (c.family, c.name.clone()))
            .collect::<Vec<_>>(),
        names,
        "every case, in order"
    );
    for c in &rows {
        let id = format!("{}/{}", c.family, c.name);
        if c.name.starts_with("square.") {
            // Quick mode runs the model shapes only, and says so.
            assert!(c.skipped(), "{id} ran in quick mode");
            assert!(c.note.contains("--quick"), "{id}: {}", c.note);
            continue;
        }
        assert_eq!(c.agreed, Some(true), "{id}: {}", c.check);
        for (side, m) in [("gpu", &c.gpu), ("cpu", &c.cpu)] {
            let m = m
                .as_ref()
                .unwrap_or_else(|| panic!("{id}: no {side} figure"));
            for t in [m.seconds, m.min_seconds, m.max_seconds] {
                assert!(t.is_finite() && t > 0.0, "{id} {side}: time {t}");
            }
            assert!(m.min_seconds <= m.seconds && m.seconds <= m.max_seconds);
            assert_eq!(m.runs, Options::quick().runs, "{id} {side}");
            assert!(m.reps >= 1, "{id} {side}");
            let (rate, _) = c.rate(m).unwrap_or_else(|| panic!("{id}: no rate"));
            assert!(rate.is_finite() && rate > 0.0, "{id} {side}: rate {rate}");
        }
        let s = c.gpu_speedup().expect("both sides ran");
        assert!(s.is_finite() && s > 0.0, "{id}: speed-up {s}");
        match c.family {
            "matmul" => assert!(c.flops > 0 && c.bytes == 0, "{id}"),
            "train_step" => assert!(c.flops > 0 && c.samples > 0, "{id}"),
            _ => assert!(c.bytes > 0 && c.flops == 0, "{id}"),
        }
    }
    // The FLOP floors of DESIGN.md: 2·(2·118,016 + 17,664) = 507,392 per MLP
    // sample (forward, weight gradients, input gradients of layers 2–3); 123 k per
    // linear 10×3073 sample (forward and weight gradient).
    let step = |name: &str| {
        rows.iter()
            .find(|c| c.family == "train_step" && c.name == name)
    };
    assert_eq!(step("mlp").map(|c| c.flops), Some(128 * 507_392));
    assert_eq!(
        step("linear.3073").map(|c| c.flops),
        Some(256 * 4 * 10 * 3073)
    );
    // Each step also ran unfused in the same run (issue 13), and the MLP's
    // row-block steps beside them (issue 23): the same work in fewer
    // dispatches and fewer counted bytes.
    let ratios = bench::fusion_ratios(&rows);
    let names: Vec<&str> = ratios.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "mlp",
            "mlp.rows",
            "mlp.rows-apart",
            "linear.785",
            "linear.3073"
        ],
        "{ratios:?}"
    );
    let fuses = wgpu_train::kernels::WeightStep::fuses_update(gpu());
    for (name, time, dispatches, bytes) in &ratios {
        assert!(time.is_some_and(|t| t.is_finite() && t > 0.0), "{name}");
        assert!(*bytes > 1.0, "{name}: bytes ratio {bytes}");
        let base = name.split(".rows").next().unwrap();
        assert_eq!(
            step(name).map(|c| c.flops),
            step(&format!("{base}.unfused")).map(|c| c.flops)
        );
        match name.as_str() {
            "mlp" => assert_eq!(*dispatches, 2.0, "MLP: 16 dispatches against 8"),
            "mlp.rows" if fuses => assert_eq!(*dispatches, 16.0 / 3.0, "MLP: 16 against 3"),
            "mlp.rows" | "mlp.rows-apart" => assert_eq!(*dispatches, 4.0, "MLP: 16 against 4"),
            _ => {}
        }
    }
}

#[test]
fn json_rows_carry_both_sides_and_fractions_of_peak() {
    let opts = Options {
        filter: Some("softmax_xent".into()),
        ..Options::quick()
    };
    let rows = bench::run(gpu(), &opts, |_| {}).expect("run");
    assert_eq!(rows.len(), 2, "the MLP and linear softmax cases");
    let peaks = Peaks {
        gpu_gbps: Some(100.0),
        ..Peaks::default()
    };
    for c in &rows {
        let line = c.to_json("test adapter", &peaks).to_string();
        assert!(!line.contains('\n'), "one line per row");
        let v: serde_json::Value = serde_json::from_str(&line).expect("valid JSON");
        assert_eq!(v["family"], "softmax_xent");
        assert_eq!(v["adapter"], "test adapter");
        assert_eq!(v["agreed"], true);
        let gbps = v["gpu"]["gbps"].as_f64().expect("gpu GB/s");
        let frac = v["gpu"]["fraction_of_peak"].as_f64().expect("fraction");
        assert!((frac - gbps / 100.0).abs() <= 1e-12 * gbps.max(1.0));
        assert!(v["cpu"]["fraction_of_peak"].is_null(), "no CPU peak given");
        assert!(v["cpu"]["seconds"].as_f64().is_some_and(|t| t > 0.0));
        assert!(v["gpu_speedup"].as_f64().is_some_and(|s| s > 0.0));
    }
}

#[test]
fn invalid_options_are_errors_not_panics() {
    let opts = Options {
        runs: 0,
        ..Options::quick()
    };
    let err = bench::run(gpu(), &opts, |_| {}).expect_err("0 runs");
    assert!(err.to_string().contains("runs"), "{err}");
}
