//! `wgpu-train info` and `wgpu-train report --quick` on this adapter: the
//! report's three files are written, the JSON has every section and field
//! a reader relies on, every verify row passes, and the HTML is one
//! self-contained page with its plots.

use crate::data_util::Scratch;
use serde_json::Value;
use std::process::Command;

/// Runs `wgpu-train`, its tuning cache in `cache` (not the user's).
fn tool(args: &[&str], cache: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_wgpu-train"))
        .args(args)
        .env("XDG_CACHE_HOME", cache)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("wgpu-train runs")
}

#[test]
fn info_names_the_adapter() {
    let dir = Scratch::new("report-info");
    let out = tool(&["info"], dir.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let name = crate::common::gpu().summary().name.clone();
    assert!(
        stdout.contains("adapter:") && stdout.contains(&name),
        "{stdout}"
    );
    assert!(
        stdout.contains("max_storage_buffer_binding_size"),
        "{stdout}"
    );
}

fn number(v: &Value, path: &str) -> f64 {
    let mut x = v;
    for key in path.split('.') {
        x = &x[key];
    }
    x.as_f64()
        .unwrap_or_else(|| panic!("{path} is not a number: {x}"))
}

#[test]
fn report_quick_writes_a_complete_card() {
    let dir = Scratch::new("report-quick");
    let out_dir = dir.path().join("card");
    let out = tool(
        &["report", "--quick", "--out", out_dir.to_str().unwrap()],
        dir.path(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.status.success(), "{stderr}");

    let json: Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["schema"], "wgpu-train-report/1");
    assert_eq!(json["quick"], true);
    assert!(json["build"] == "debug" || json["build"] == "release");
    // The adapter the tests use is the one reported.
    let name = crate::common::gpu().summary().name.clone();
    assert_eq!(json["adapter"]["name"], name.as_str());
    for key in ["backend", "device_type", "driver", "checks"] {
        assert!(json["adapter"][key].is_string(), "adapter.{key}: {json}");
    }
    assert!(number(&json, "adapter.limits.max_storage_buffer_binding_size") > 0.0);
    assert!(json["adapter"]["features"].is_array());
    assert!(json["adapter"].get("subgroup_sizes").is_some());

    // Every verify row: all ten families, each passing, timed warm.
    let rows = json["verify"].as_array().expect("verify rows");
    assert!(rows.len() >= 10, "{} rows", rows.len());
    let mut families: Vec<&str> = rows.iter().map(|r| r["family"].as_str().unwrap()).collect();
    families.dedup();
    for f in wgpu_train::lab::verify::Family::ALL {
        assert!(families.contains(&f.name()), "no {} rows", f.name());
    }
    for r in rows {
        assert_eq!(r["pass"], true, "verify row failed: {r}");
        assert!(
            r["worst_error"].as_f64().is_some_and(|e| e.is_finite()),
            "{r}"
        );
        assert!(r["gpu_ms"].as_f64().is_some_and(|t| t >= 0.0), "{r}");
        assert!(r["gpu_ms_first_use"].as_f64().is_some(), "{r}");
    }
    assert_eq!(json["all_verify_rows_pass"], true);

    // The main job on both sides, with the same bits.
    assert!(number(&json, "training.gpu.samples_per_s") > 0.0);
    assert!(number(&json, "training.cpu.samples_per_s") > 0.0);
    assert!(number(&json, "training.gpu_over_cpu") > 0.0);
    assert_eq!(json["training"]["batch"], 128);
    // The step `--fused auto` takes, timed on this adapter the first time
    // and recorded with the kernels' choices.
    let step = json["training"]["step"].as_str().expect("training.step");
    let chosen = json["tuner"]["choices"]
        .as_object()
        .expect("choices")
        .iter()
        .find(|(k, _)| k.starts_with("train_step "))
        .map(|(_, v)| v.as_str().unwrap().to_string())
        .expect("a train_step choice");
    let want = match chosen.as_str() {
        "reference" => "unfused",
        "layers" => "fused (per layer)",
        _ => "row block",
    };
    assert!(step.starts_with(want), "step {step}, chosen {chosen}");

    // The tuner's record, the benchmark rows with rates, the latency floor.
    assert!(json["tuner"]["mode"].is_string());
    assert!(json["tuner"]["choices"].is_object());
    let bench = json["bench"].as_array().expect("bench rows");
    let families: Vec<&str> = bench
        .iter()
        .map(|r| r["family"].as_str().unwrap())
        .collect();
    for f in [
        "matmul",
        "softmax_xent",
        "optimizer",
        "gather",
        "train_step",
    ] {
        assert!(families.contains(&f), "no {f} bench row");
    }
    assert!(
        bench
            .iter()
            .any(|r| r["gpu_gflops"].as_f64().is_some_and(|g| g > 0.0)),
        "no GPU GFLOP/s"
    );
    assert!(
        bench
            .iter()
            .any(|r| r["gpu_gbps"].as_f64().is_some_and(|g| g > 0.0)),
        "no GPU GB/s"
    );
    for r in bench {
        assert_ne!(r["agreed"], false, "GPU and CPU disagreed: {r}");
    }
    assert_eq!(json["peak"]["source"], "measured");
    assert!(number(&json, "peak.gflops") > 0.0);
    assert!(number(&json, "latency.per_dispatch_s") > 0.0);
    assert!(number(&json, "latency.per_dependent_dispatch_s") > 0.0);
    assert!(json["latency"]["per_barrier_s"].is_number());

    let md = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    assert!(md.contains("## Verify") && md.contains(&name), "{md}");
    let html = std::fs::read_to_string(out_dir.join("report.html")).unwrap();
    assert_eq!(html.matches("<svg").count(), 4, "four inline plots");
    // Self-contained: nothing fetched from anywhere.
    for external in ["src=", "href=", "http://", "https://"] {
        let outside_svg_ns = html.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
        assert!(
            !outside_svg_ns.contains(external),
            "external reference {external}"
        );
    }
}
