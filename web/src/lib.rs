//! wgpu-train in the browser: what the page (`web/www/`) calls — the
//! adapter, [`verify`], [`fashion::train_fashion`] (Train) and
//! [`bench::bench_matmul`] (Benchmark) — and what the browser tests
//! (`web/tests/browser.rs`) check, on the visitor's GPU through WebGPU.
//! Everything here is async: in a browser a readback is a promise, and
//! blocking on one would freeze the page.
#![cfg(target_arch = "wasm32")]

pub mod bench;
pub mod fashion;

use wasm_bindgen::prelude::*;
use wgpu_train::data::synthetic::learnable;
use wgpu_train::model::Mlp;
use wgpu_train::optim::OptimizerConfig;
use wgpu_train::train::{CpuEngine, Engine, GpuEngine, TrainConfig, TrainData};
use wgpu_train::{Activation, Gpu, GpuOptions};

thread_local! {
    static GPU: std::cell::OnceCell<&'static Gpu> = const { std::cell::OnceCell::new() };
}

/// The page's one [`Gpu`], made on first use (the page lives as long as
/// the context, so it is leaked rather than threaded through).
pub async fn gpu() -> wgpu_train::Result<&'static Gpu> {
    if let Some(g) = GPU.with(|c| c.get().copied()) {
        return Ok(g);
    }
    let g: &'static Gpu = Box::leak(Box::new(Gpu::new_async(GpuOptions::default()).await?));
    GPU.with(|c| {
        let _ = c.set(g);
    });
    Ok(g)
}

pub(crate) fn js_err(e: impl std::fmt::Display) -> JsValue {
    JsValue::from_str(&e.to_string())
}

/// The adapter as JSON: name, backend, type, driver, and the WebGPU
/// adapter's fallback flag (SwiftShader reports a CPU device type).
#[wasm_bindgen]
pub async fn adapter() -> Result<String, JsValue> {
    let g = gpu().await.map_err(js_err)?;
    let info = g.adapter().get_info();
    let limits = g.limits();
    Ok(serde_json::json!({
        "summary": g.summary().to_string(),
        "name": info.name,
        "backend": format!("{:?}", info.backend),
        "device_type": format!("{:?}", info.device_type),
        "driver": info.driver,
        "driver_info": info.driver_info,
        "software": g.is_software(),
        "timestamps": g.device().features().contains(wgpu::Features::TIMESTAMP_QUERY),
        "max_storage_buffer_binding_size": limits.max_storage_buffer_binding_size,
        "max_compute_invocations_per_workgroup": limits.max_compute_invocations_per_workgroup,
    })
    .to_string())
}

/// Every kernel family against its CPU twin ([`wgpu_train::lab::verify`]), as a
/// JSON array of rows.
#[wasm_bindgen]
pub async fn verify(seed: f64) -> Result<String, JsValue> {
    let g = gpu().await.map_err(js_err)?;
    let rows = wgpu_train::lab::verify::run_all(g, seed as u64)
        .await
        .map_err(js_err)?;
    serde_json::to_string(&rows).map_err(js_err)
}

/// Steps of the MLP 784-128-128-10 (sigmoid, Adam) on the GPU and the CPU
/// twin from the same seed and data order.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TrainCompare {
    pub gpu_losses: Vec<f64>,
    pub cpu_losses: Vec<f64>,
    pub gpu_accuracy: Vec<f64>,
    pub cpu_accuracy: Vec<f64>,
    pub gpu_params: Vec<f32>,
    pub cpu_params: Vec<f32>,
    pub gpu_ms: f64,
    pub cpu_ms: f64,
}

/// `steps` epochs of one 128-example batch each (one step an epoch), as the
/// native `tests/gpu/train.rs` runs 50.
pub async fn train_compare(g: &Gpu, steps: usize, fused: bool) -> wgpu_train::Result<TrainCompare> {
    let data = TrainData::new(
        learnable(128, [1, 28, 28], 11)?,
        learnable(100, [1, 28, 28], 12)?,
        0,
        11,
    )?;
    let model = Mlp::mnist(Activation::Sigmoid);
    let config = TrainConfig {
        epochs: steps,
        batch: 128,
        optimizer: OptimizerConfig::adam(),
        seed: 3,
        fused,
        ..TrainConfig::default()
    };
    let mut ge = GpuEngine::new(g, &model, &data, &config)?;
    let mut ce = CpuEngine::new(&model, &data, &config)?;
    let (mut gpu_losses, mut gpu_accuracy) = (Vec::new(), Vec::new());
    let (mut cpu_losses, mut cpu_accuracy) = (Vec::new(), Vec::new());
    let (mut gpu_ms, mut cpu_ms) = (0.0, 0.0);
    for epoch in 0..steps {
        let order = data.epoch_order(config.seed, epoch);
        let t = web_time::Instant::now();
        let (l, a) = ge.train_epoch_async(&order, &mut |_, _| {}).await?;
        gpu_ms += t.elapsed().as_secs_f64() * 1e3;
        gpu_losses.push(l);
        gpu_accuracy.push(a);
        let t = web_time::Instant::now();
        let (l, a) = ce.train_epoch(&order, &mut |_, _| {})?;
        cpu_ms += t.elapsed().as_secs_f64() * 1e3;
        cpu_losses.push(l);
        cpu_accuracy.push(a);
    }
    Ok(TrainCompare {
        gpu_losses,
        cpu_losses,
        gpu_accuracy,
        cpu_accuracy,
        gpu_params: ge.state_async().await?.params,
        cpu_params: ce.state()?.params,
        gpu_ms,
        cpu_ms,
    })
}
