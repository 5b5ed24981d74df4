//! The page's Train part: the main job's MLP (784-128-128-10, sigmoid, Adam
//! lr 1e-3, batch 128) on a slice of Fashion-MNIST fetched from the server,
//! on the GPU and on the CPU twin (wasm, one thread) from the same seed and
//! data order, epoch by epoch, each epoch's figures handed to the page as
//! they come.

use wasm_bindgen::prelude::*;
use wgpu_train::data::idx;
use wgpu_train::model::Mlp;
use wgpu_train::optim::OptimizerConfig;
use wgpu_train::train::{CpuEngine, Engine, EvalSet, GpuEngine, TrainConfig, TrainData};
use wgpu_train::{Activation, Dataset, Error, Gpu};

/// The four files, in the order [`train_fashion`] takes them, as the
/// server exposes them under `data/` (web/build.sh links the dataset there).
pub const FILES: [&str; 4] = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
];

/// The first `n` examples (Fashion-MNIST's files are already shuffled, so
/// a prefix holds every class), or all of them when `n` is 0 or too many.
fn prefix(data: Dataset, n: usize) -> wgpu_train::Result<Dataset> {
    if n == 0 || n >= data.len() {
        return Ok(data);
    }
    let idx: Vec<u32> = (0..n as u32).collect();
    data.subset(&idx)
}

/// One epoch's figures for one device (epoch 0: before training).
#[derive(Clone, Debug, serde::Serialize)]
pub struct EpochReport {
    pub device: &'static str,
    pub epoch: usize,
    /// Mean training loss and accuracy over the epoch's batches (absent
    /// for epoch 0).
    pub loss: Option<f64>,
    pub accuracy: Option<f64>,
    /// On the held-out test slice, after the epoch.
    pub test_loss: f64,
    pub test_accuracy: f64,
    /// The epoch's training and evaluation, milliseconds.
    pub ms: f64,
    pub examples: usize,
}

impl EpochReport {
    /// `trained`: the epoch's (loss, accuracy), `tested`: the test slice's,
    /// `start`: when the epoch began.
    fn new(
        device: &'static str,
        epoch: usize,
        trained: Option<(f64, f64)>,
        tested: (f64, f64),
        start: web_time::Instant,
        examples: usize,
    ) -> Self {
        EpochReport {
            device,
            epoch,
            loss: trained.map(|t| t.0),
            accuracy: trained.map(|t| t.1),
            test_loss: tested.0,
            test_accuracy: tested.1,
            ms: start.elapsed().as_secs_f64() * 1e3,
            examples,
        }
    }
}

/// What [`run`] tells the page as it goes.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Event {
    /// Once, when the data is parsed and sliced.
    Setup(Setup),
    /// After each device's epoch.
    Epoch(EpochReport),
}

/// What [`run`] was given, once parsed.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Setup {
    pub train_examples: usize,
    pub test_examples: usize,
    pub train_available: usize,
    pub test_available: usize,
    pub epochs: usize,
    pub steps_per_epoch: usize,
    pub fused: bool,
    pub adapter: String,
}

/// Parses the four files (`bytes` in [`FILES`] order, named `names` in
/// errors), slices them, trains `epochs` epochs on both devices, calling
/// `report` after each device's epoch and awaiting what it returns (the
/// page draws then: a CPU epoch blocks the page while it runs).
pub async fn run(
    gpu: &Gpu,
    bytes: [&[u8]; 4],
    names: [&str; 4],
    train_n: usize,
    test_n: usize,
    epochs: usize,
    mut report: impl AsyncFnMut(Event) -> wgpu_train::Result<()>,
) -> wgpu_train::Result<Setup> {
    if epochs == 0 {
        return Err(Error::InvalidArgument {
            name: "epochs",
            msg: "must be at least 1".into(),
        });
    }
    let train = idx::parse_dataset((names[0], bytes[0]), (names[1], bytes[1]), 10)?;
    let test = idx::parse_dataset((names[2], bytes[2]), (names[3], bytes[3]), 10)?;
    let (train_available, test_available) = (train.len(), test.len());
    let train = prefix(train, train_n)?;
    let test = prefix(test, test_n)?;
    let data = TrainData::new(train, test, 0, 0)?;
    let model = Mlp::mnist(Activation::Sigmoid);
    let config = TrainConfig {
        epochs,
        batch: 128,
        optimizer: OptimizerConfig::adam(),
        seed: 0,
        fused: GpuEngine::fused_by_default(gpu),
        ..TrainConfig::default()
    };
    let setup = Setup {
        train_examples: data.train_idx.len(),
        test_examples: data.test.len(),
        train_available,
        test_available,
        epochs,
        steps_per_epoch: data.train_idx.len().div_ceil(config.batch),
        fused: config.fused,
        adapter: gpu.summary().to_string(),
    };
    report(Event::Setup(setup.clone())).await?;
    let mut ge = GpuEngine::new(gpu, &model, &data, &config)?;
    let mut ce = CpuEngine::new(&model, &data, &config)?;
    let examples = data.train_idx.len();
    for epoch in 0..=epochs {
        // Epoch 0 only evaluates: where both start.
        let order = if epoch > 0 {
            data.epoch_order(config.seed, epoch - 1)
        } else {
            Vec::new()
        };
        let t = web_time::Instant::now();
        let trained = match epoch {
            0 => None,
            _ => Some(ge.train_epoch_async(&order, &mut |_, _| {}).await?),
        };
        let tested = ge.evaluate_async(EvalSet::Test).await?;
        let r = EpochReport::new("gpu", epoch, trained, tested, t, examples);
        report(Event::Epoch(r)).await?;
        let t = web_time::Instant::now();
        let trained = match epoch {
            0 => None,
            _ => Some(ce.train_epoch(&order, &mut |_, _| {})?),
        };
        let tested = ce.evaluate(EvalSet::Test)?;
        let r = EpochReport::new("cpu", epoch, trained, tested, t, examples);
        report(Event::Epoch(r)).await?;
    }
    Ok(setup)
}

/// [`run`] for the page: the files' bytes as fetched, their URLs (for
/// errors), the slice sizes (0: the whole file) and epochs; `on_event` is
/// called with `{"setup": …}` once, then `{"epoch": …}` per device and
/// epoch, and may return a promise (awaited before going on).
#[wasm_bindgen]
#[allow(clippy::too_many_arguments)]
pub async fn train_fashion(
    train_images: Vec<u8>,
    train_labels: Vec<u8>,
    test_images: Vec<u8>,
    test_labels: Vec<u8>,
    names: Vec<String>,
    train_n: u32,
    test_n: u32,
    epochs: u32,
    on_event: js_sys::Function,
) -> Result<String, JsValue> {
    let g = crate::gpu().await.map_err(crate::js_err)?;
    let names: Vec<&str> = match names.len() {
        4 => names.iter().map(String::as_str).collect(),
        _ => FILES.to_vec(),
    };
    let report = async |event: Event| -> wgpu_train::Result<()> {
        let json = serde_json::to_string(&event).map_err(|e| Error::Device(e.to_string()))?;
        let page_error = |e: JsValue| Error::Device(format!("the page's callback: {e:?}"));
        let ret = on_event
            .call1(&JsValue::NULL, &JsValue::from_str(&json))
            .map_err(page_error)?;
        if let Ok(p) = ret.dyn_into::<js_sys::Promise>() {
            wasm_bindgen_futures::JsFuture::from(p)
                .await
                .map_err(page_error)?;
        }
        Ok(())
    };
    let setup = run(
        g,
        [&train_images, &train_labels, &test_images, &test_labels],
        [names[0], names[1], names[2], names[3]],
        train_n as usize,
        test_n as usize,
        epochs as usize,
        report,
    )
    .await
    .map_err(crate::js_err)?;
    serde_json::to_string(&setup).map_err(crate::js_err)
}
