//! The browser tests: run by `wasm-bindgen-test-runner` in headless
//! Chromium (WebGPU through Dawn; SwiftShader where there is no GPU), from
//! `scripts/browser_test.sh`. The same kernels, CPU twins and tolerances as
//! the native suite, compiled to wasm: (a) every kernel family against its
//! twin at the suite's awkward shapes, (b) training steps GPU = CPU with the
//! loss falling, (c) bad input comes back as an `Err` (not a panic, not a
//! promise that never settles).
#![cfg(target_arch = "wasm32")]

use wasm_bindgen_test::*;
use wgpu_train::lab::verify::{self, Family};
use wgpu_train::{Error, GpuTensor, MatmulKernel, MatmulOptions};

wasm_bindgen_test_configure!(run_in_browser);

async fn gpu() -> &'static wgpu_train::Gpu {
    wgpu_train_web::gpu()
        .await
        .unwrap_or_else(|e| panic!("the browser tests need a WebGPU adapter: {e}"))
}

/// One family's table; every row must pass, and there must be rows.
async fn family(f: Family) {
    let g = gpu().await;
    web_sys_log(&format!("adapter: {}", g.summary()));
    let rows = verify::run(g, f, 0x5eed).await.expect("the family ran");
    assert!(!rows.is_empty(), "{f:?}: no cases");
    let failed: Vec<_> = rows.iter().filter(|r| !r.pass).collect();
    assert!(
        failed.is_empty(),
        "{f:?}: {} of {} cases failed: {:#?}",
        failed.len(),
        rows.len(),
        failed
    );
}

fn web_sys_log(s: &str) {
    wasm_bindgen_test::console_log!("{s}");
}

#[wasm_bindgen_test]
async fn matmul_every_version_matches_the_cpu_twin() {
    family(Family::Matmul).await;
}

#[wasm_bindgen_test]
async fn softmax_xent_matches_the_cpu_twin() {
    family(Family::SoftmaxXent).await;
}

#[wasm_bindgen_test]
async fn activation_backward_matches_the_cpu_twin() {
    family(Family::Activation).await;
}

#[wasm_bindgen_test]
async fn column_sums_match_the_cpu_twin() {
    family(Family::Reduce).await;
}

#[wasm_bindgen_test]
async fn dot_and_combine_match_the_cpu_twin() {
    family(Family::Linalg).await;
}

#[wasm_bindgen_test]
async fn optimizer_steps_match_the_cpu_twin() {
    family(Family::Optim).await;
}

#[wasm_bindgen_test]
async fn gather_matches_the_cpu_twin() {
    family(Family::Gather).await;
}

#[wasm_bindgen_test]
async fn gather_matmul_matches_the_cpu_twin() {
    family(Family::GatherMatmul).await;
}

#[wasm_bindgen_test]
async fn layer_backward_matches_the_cpu_twin() {
    family(Family::LayerBackward).await;
}

#[wasm_bindgen_test]
async fn xent_hvp_rows_match_the_cpu_twin() {
    family(Family::XentHvp).await;
}

#[wasm_bindgen_test]
async fn losses_match_the_cpu_twin() {
    family(Family::Loss).await;
}

/// The native suite's check (`tests/gpu/train.rs`), over fewer steps: each
/// step's loss within 1e-3 relative, the final parameters within
/// (1e-4, 1e-3), and the loss falling. Both the fused step (gather_matmul,
/// layer_backward, planned optimizer) and the reference kernels.
async fn training_agrees(fused: bool) {
    const STEPS: usize = 8;
    let g = gpu().await;
    let r = wgpu_train_web::train_compare(g, STEPS, fused)
        .await
        .expect("training ran");
    assert!(
        r.gpu_losses[STEPS - 1] < r.gpu_losses[0] * 0.9,
        "the loss did not fall: {:?}",
        r.gpu_losses
    );
    let tol = wgpu_train::cpu::Tolerance::new(1e-6, 1e-3);
    for (step, (a, b)) in r.gpu_losses.iter().zip(&r.cpu_losses).enumerate() {
        assert!(
            tol.accepts(*a as f32, *b as f32),
            "step {step}: GPU loss {a} vs CPU {b}"
        );
    }
    wgpu_train::cpu::assert_close(
        "final parameters",
        &ndarray::Array1::from(r.gpu_params),
        &ndarray::Array1::from(r.cpu_params),
        wgpu_train::cpu::Tolerance::new(1e-4, 1e-3),
    );
}

#[wasm_bindgen_test]
async fn training_steps_gpu_equal_cpu_fused() {
    training_agrees(true).await;
}

#[wasm_bindgen_test]
async fn training_steps_gpu_equal_cpu_unfused() {
    training_agrees(false).await;
}

#[wasm_bindgen_test]
async fn a_bad_shape_is_an_err_not_a_panic() {
    let g = gpu().await;
    let a = GpuTensor::from_slice(g, &[2, 3], &[1.0f32; 6]).unwrap();
    let b = GpuTensor::from_slice(g, &[4, 5], &[1.0f32; 20]).unwrap();
    let out = GpuTensor::<f32>::zeros(g, &[2, 5]).unwrap();
    let r = wgpu_train::kernels::Matmul::new(
        g,
        &a,
        &b,
        None,
        &out,
        MatmulOptions::nn(),
        MatmulKernel::Auto,
    );
    match r {
        Err(Error::Shape { .. }) => {}
        Err(e) => panic!("a shape error was expected, got {e}"),
        Ok(_) => panic!("K = 3 against 4 was accepted"),
    }
    // A tensor with no elements, and a readback of a good one afterwards:
    // the device is still usable and the promise settles.
    assert!(GpuTensor::<f32>::zeros(g, &[0, 3]).is_err());
    assert_eq!(a.read_async(g).await.unwrap(), vec![1.0; 6]);
}

/// An error that only the browser's WebGPU implementation reports (a
/// dispatch past the device's per-dimension limit, recorded by hand): it
/// arrives asynchronously, and the next awaited readback returns it.
#[wasm_bindgen_test]
async fn a_webgpu_validation_error_fails_the_next_readback() {
    let g = gpu().await;
    let t = GpuTensor::from_slice(g, &[4], &[1.0f32; 4]).unwrap();
    let too_many = g.limits().max_compute_workgroups_per_dimension + 1;
    let mut encoder = g.encoder("past the limit");
    {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: None,
            timestamp_writes: None,
        });
        // No pipeline set: invalid in any case.
        pass.dispatch_workgroups(too_many, 1, 1);
    }
    let _ = g.submit(encoder);
    let r = t.read_async(g).await;
    assert!(r.is_err(), "an invalid submit went unreported: {r:?}");
    // And the error is reported once: the device goes on.
    assert_eq!(t.read_async(g).await.unwrap(), vec![1.0; 4]);
}

/// The pipelines the crate can build (each shader's entry points with each
/// set of override constants, `shaders::specialisations`) compile under the
/// browser's WGSL compiler (Tint, in Chromium): naga accepting a shader
/// natively does not mean Tint does. Every entry point, and every value and
/// pair of values of its constants (`shaders::pairwise_cover`: 153 of 706
/// keys), not the full product: on SwiftShader a large matmul pipeline takes
/// ~2 s, so the full product took 337 s of CI. The native tests validate and
/// translate all 706.
#[wasm_bindgen_test]
async fn pipelines_compile_in_the_browser() {
    let g = gpu().await;
    let all = wgpu_train::kernels::shaders::specialisations();
    let keys = wgpu_train::kernels::shaders::pairwise_cover(&all);
    assert!(keys.len() > 20, "only {} pipelines", keys.len());
    let mut failed = Vec::new();
    let limit = g.limits().max_compute_workgroup_storage_size;
    for key in &keys {
        let name = format!("{}::{} {:?}", key.shader.name, key.entry, key.constants);
        // A tile past this adapter's workgroup memory (matmul v7's 32 KiB
        // candidate on a 16 KiB device) must be refused before Tint sees it.
        // Likewise a layout past its storage buffers (the weight tiles
        // with the update bind 12; the engine records the update apart).
        if key.shader.workgroup_memory(key.entry) > limit
            || key.shader.storage_buffers() > g.limits().max_storage_buffers_per_shader_stage
        {
            if !matches!(g.pipeline(key), Err(Error::TooLarge { .. })) {
                failed.push(format!("{name}: not refused as TooLarge"));
            }
            continue;
        }
        if let Err(e) = g.pipeline(key) {
            failed.push(format!("{name}: {e}"));
        }
        // Compilation errors arrive asynchronously: collect them per key.
        if let Err(e) = g.settle("creating a pipeline").await {
            failed.push(format!("{name}: {e}"));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} failed: {failed:#?}",
        failed.len(),
        keys.len()
    );
}

/// The page's Train part on files that are not what it expects (an HTML
/// error page, a truncated gzip, labels that do not match): an `Err` that
/// names the file, before any training, not a panic or a hang.
#[wasm_bindgen_test]
async fn training_on_bad_dataset_files_is_an_err_naming_the_file() {
    let g = gpu().await;
    let names = ["data/a", "data/b", "data/c", "data/d"];
    let html: &[u8] = b"<!DOCTYPE html><title>404</title>";
    let gzip_header: &[u8] = &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2];
    for (bytes, named) in [
        ([html, html, html, html], "data/a"),
        ([gzip_header, html, html, html], "data/a"),
    ] {
        let mut events = 0;
        let r = wgpu_train_web::fashion::run(g, bytes, names, 100, 100, 1, async |_| {
            events += 1;
            Ok(())
        })
        .await;
        match r {
            Err(e) => assert!(e.to_string().contains(named), "{e}"),
            Ok(_) => panic!("bad files were accepted"),
        }
        assert_eq!(events, 0, "it reported progress on bad files");
    }
}
