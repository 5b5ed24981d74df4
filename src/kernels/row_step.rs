//! Launcher for `shaders/row_step.wgsl`: the row block of the training step
//! (everything after the first layer that is local to a batch row: the rest
//! of the forward, softmax cross-entropy and every delta down to dz1) in one
//! dispatch, a workgroup per [`ROWS`] rows.

use super::{Dispatch, Operand, check_operands, fold, uniform};
use crate::error::{Error, Result};
use crate::gpu::{Gpu, GpuLabels, GpuTensor, PipelineKey};
use crate::options::Activation;

use crate::gpu::{Binding, Shader};

// The shader file of this kernel family and its bind-group layout
// (binding i of group 0 is `bindings[i]`).
pub static ROW_STEP: Shader = Shader {
    name: "row_step",
    source: concat!(
        include_str!("../../shaders/row_step.wgsl"),
        include_str!("../../shaders/shared/activation_grad.wgsl")
    ),
    bindings: &[
        Binding::Uniform,          // params
        Binding::StorageRead,      // params: weights and biases
        Binding::StorageRead,      // labels
        Binding::StorageReadWrite, // arena: h1 in; hidden outputs and deltas out
        Binding::StorageReadWrite, // loss
        Binding::StorageReadWrite, // correct
    ],
    // 4 rows of activations and deltas, partial sums.
    workgroup_memory: &[("row_step", 16128)],
    // Not argued for in the table of src/kernels/mod.rs yet: checked.
    trusted: false,
};

/// Batch rows per workgroup.
pub const ROWS: usize = 4;
/// Threads per workgroup.
pub const THREADS: usize = 64;
/// Layers the block can hold (an MLP of up to 7 layers).
pub const MAX_LAYERS: usize = 6;
/// Floats of workgroup memory for the rows' activations and deltas, and
/// for the products' partial sums (the shader's `SM`, `PART`).
const SM: usize = 3008;
const PART: usize = 1024;
/// The widest layer: a product's 4-column blocks then number at most
/// [`THREADS`], so its partials (splits × ROWS × width) fit `PART`.
const MAX_WIDTH: usize = 4 * THREADS;

/// Into how many interleaved parts a product of `n` outputs splits its
/// `k`-long sums: the largest power of two that keeps every thread of the
/// workgroup busy (`n/4` column blocks × splits ≤ [`THREADS`]) and leaves
/// every part at least one term. Fixed by the shape, so the GPU and the CPU
/// twin add in the same order.
pub fn splits(n: usize, k: usize) -> usize {
    let s = (THREADS / n.div_ceil(4).max(1)).clamp(1, k.max(1));
    1 << s.ilog2()
}

/// Whether an MLP of these layer sizes (input first) runs its row block in
/// one workgroup per [`ROWS`] rows: at least two layers, at most
/// [`MAX_LAYERS`] after the first, no width over [`MAX_WIDTH`] and the rows'
/// activations and deltas within the workgroup memory every WebGPU device
/// offers. A property of the model alone, so both runners choose alike.
pub fn fits(sizes: &[usize]) -> bool {
    let Some(widths) = sizes.get(1..) else {
        return false;
    };
    let block = widths.len().saturating_sub(1);
    let stored = widths[0] + 2 * widths[1..].iter().sum::<usize>();
    (1..=MAX_LAYERS).contains(&block)
        && widths.iter().all(|&w| (1..=MAX_WIDTH).contains(&w))
        && ROWS * stored <= SM
}

/// One layer of the block, as the shader's `Layer` (passed as three vec4s).
#[derive(Clone, Copy, Debug, Default)]
struct Layer {
    ins: u32,
    outs: u32,
    w_offset: u32,
    b_offset: u32,
    h_out: u32,
    dz_out: u32,
    act_sm: u32,
    dz_sm: u32,
    fwd_splits: u32,
    bwd_splits: u32,
}

impl Layer {
    fn words(&self) -> [[u32; 4]; 3] {
        [
            [self.ins, self.outs, self.w_offset, self.b_offset],
            [self.h_out, self.dz_out, self.act_sm, self.dz_sm],
            [self.fwd_splits, self.bwd_splits, 0, 0],
        ]
    }
}

/// The uniform block of `row_step.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    rows: u32,
    layers: u32,
    h_offset: u32,
    h_width: u32,
    dz0_offset: u32,
    labels_offset: u32,
    loss_offset: u32,
    correct_offset: u32,
    layer: [[u32; 4]; 3 * MAX_LAYERS],
}

fn key(activation: Activation) -> PipelineKey {
    PipelineKey {
        shader: &ROW_STEP,
        entry: "row_step",
        constants: vec![("ACTIVATION", activation.shader_code())],
    }
}

/// Every pipeline this launcher can build (validated by `tests/shaders.rs`).
pub fn specialisations() -> Vec<PipelineKey> {
    vec![key(Activation::Sigmoid), key(Activation::Relu)]
}

/// One row block, ready to record.
pub struct RowStep {
    dispatch: Dispatch,
}

fn bad(msg: impl Into<String>) -> Error {
    Error::shape("row_step", msg.into())
}

impl RowStep {
    /// Prepares the row block of an MLP whose first layer wrote `h`
    /// (`[rows, w0]`): for the `n` layers after it, `weights[i]`
    /// (`[w_{i+1}, w_i]`) and `biases[i]` (`[w_{i+1}]`), views of one
    /// parameter buffer; it writes the hidden outputs `hidden[i]`
    /// (`[rows, w_{i+1}]`, i < n − 1), every delta `dz[i]` (`[rows, w_i]`,
    /// i ≤ n: dz1 first, dlogits last) — views of `h`'s buffer, the arena,
    /// none overlapping — and the per-row `loss` and `correct` flags.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        gpu: &Gpu,
        h: &GpuTensor<f32>,
        weights: &[&GpuTensor<f32>],
        biases: &[&GpuTensor<f32>],
        labels: &GpuLabels,
        hidden: &[&GpuTensor<f32>],
        dz: &[&GpuTensor<f32>],
        loss: &GpuTensor<f32>,
        correct: &GpuTensor<u32>,
        activation: Activation,
    ) -> Result<Self> {
        const OP: &str = "row_step";
        let [rows, w0] = *h.shape() else {
            return Err(bad(format!("h must be 2-D, got {:?}", h.shape())));
        };
        let n = weights.len();
        if n == 0 || n > MAX_LAYERS || biases.len() != n || hidden.len() + 1 != n {
            return Err(bad(format!(
                "1 to {MAX_LAYERS} layers with a weight and a bias each, and one hidden output \
                 fewer: got {n} weights, {} biases, {} hidden",
                biases.len(),
                hidden.len()
            )));
        }
        if dz.len() != n + 1 {
            return Err(bad(format!(
                "{} deltas for {n} layers (want {})",
                dz.len(),
                n + 1
            )));
        }
        if activation == Activation::Identity {
            return Err(bad("the hidden layers need sigmoid or ReLU"));
        }
        let mut widths = vec![w0];
        for w in weights {
            widths.push(w.shape().first().copied().unwrap_or(0));
        }
        let mut sizes = vec![1];
        sizes.extend(&widths);
        if rows == 0 || !fits(&sizes) {
            return Err(bad(format!(
                "rows {rows} and widths {widths:?}: the block needs rows ≥ 1, widths 1..={MAX_WIDTH} \
                 and {ROWS} rows of activations and deltas within {SM} floats"
            )));
        }
        let check = |name: String, t: &GpuTensor<f32>, want: &[usize]| -> Result<()> {
            if t.shape() != want {
                return Err(bad(format!(
                    "{name} must have shape {want:?}, got {:?}",
                    t.shape()
                )));
            }
            Ok(())
        };
        for i in 0..n {
            check(
                format!("weights[{i}]"),
                weights[i],
                &[widths[i + 1], widths[i]],
            )?;
            check(format!("biases[{i}]"), biases[i], &[widths[i + 1]])?;
            if weights[i].buffer() != weights[0].buffer()
                || biases[i].buffer() != weights[0].buffer()
            {
                return Err(bad(
                    "the weights and biases must be views of one parameter buffer",
                ));
            }
        }
        for (i, t) in hidden.iter().enumerate() {
            check(format!("hidden[{i}]"), t, &[rows, widths[i + 1]])?;
        }
        for (i, t) in dz.iter().enumerate() {
            check(format!("dz[{i}]"), t, &[rows, widths[i]])?;
        }
        if loss.shape() != [rows] || correct.shape() != [rows] {
            return Err(bad(format!(
                "loss and correct must have shape [{rows}], got {:?} and {:?}",
                loss.shape(),
                correct.shape()
            )));
        }
        if labels.classes() != widths[n] || labels.len() != rows {
            return Err(bad(format!(
                "{} labels of {} classes for {rows} rows of {} logits",
                labels.len(),
                labels.classes(),
                widths[n]
            )));
        }
        // The arena is bound once, read and written: h is among its outputs
        // for the checks (views of one buffer that must not overlap).
        let names: Vec<String> = (0..hidden.len())
            .map(|i| format!("hidden[{i}]"))
            .chain((0..dz.len()).map(|i| format!("dz[{i}]")))
            .collect();
        let mut writes = vec![Operand::of("h", h)];
        for (t, name) in hidden.iter().chain(dz).zip(&names) {
            if t.buffer() != h.buffer() {
                return Err(bad(format!(
                    "{name} must be a view of h's buffer (the arena)"
                )));
            }
            writes.push(Operand::of(name, t));
        }
        writes.push(Operand::of("loss", loss));
        writes.push(Operand::of("correct", correct));
        let mut reads = vec![Operand::of("labels", labels.tensor())];
        reads.extend(weights.iter().map(|w| Operand::of("weights", *w)));
        reads.extend(biases.iter().map(|b| Operand::of("biases", *b)));
        check_operands(gpu, OP, &reads, &writes)?;

        let u = |x: usize| x as u32;
        let mut layer = [[0u32; 4]; 3 * MAX_LAYERS];
        let mut at = ROWS * w0; // h1's rows come first in workgroup memory
        for i in 0..n {
            let (ins, outs) = (widths[i], widths[i + 1]);
            let words = Layer {
                ins: u(ins),
                outs: u(outs),
                w_offset: u(weights[i].offset()),
                b_offset: u(biases[i].offset()),
                h_out: hidden.get(i).map_or(0, |t| u(t.offset())),
                dz_out: u(dz[i + 1].offset()),
                act_sm: u(at),
                dz_sm: u(at + ROWS * outs),
                fwd_splits: u(splits(outs, ins)),
                bwd_splits: u(splits(ins, outs)),
            }
            .words();
            layer[3 * i..3 * i + 3].copy_from_slice(&words);
            at += 2 * ROWS * outs;
        }
        let params = Params {
            rows: u(rows),
            layers: u(n),
            h_offset: u(h.offset()),
            h_width: u(w0),
            dz0_offset: u(dz[0].offset()),
            labels_offset: u(labels.tensor().offset()),
            loss_offset: u(loss.offset()),
            correct_offset: u(correct.offset()),
            layer,
        };
        if gpu.limits().max_compute_invocations_per_workgroup < THREADS as u32
            || gpu.limits().max_compute_workgroup_storage_size < 4 * (SM + PART) as u32
        {
            return Err(bad(format!(
                "the device offers fewer than {THREADS} invocations or {} bytes of workgroup memory",
                4 * (SM + PART)
            )));
        }
        let workgroups = fold(gpu, OP, rows.div_ceil(ROWS) as u64)?;
        let pipeline = gpu.pipeline(&key(activation))?;
        let uniform = uniform(gpu, "row_step params", &params)?;
        let bind_group = gpu.bind_group(
            &pipeline,
            &[
                &uniform,
                weights[0].buffer(),
                labels.tensor().buffer(),
                h.buffer(),
                loss.buffer(),
                correct.buffer(),
            ],
        )?;
        Ok(RowStep {
            dispatch: Dispatch::new(OP, pipeline, bind_group, workgroups),
        })
    }

    /// Records the dispatch into an open compute pass.
    pub fn record(&self, pass: &mut wgpu::ComputePass<'_>) {
        self.dispatch.record(pass);
    }

    /// Records `repeats` dispatches in one pass and submits them.
    pub fn run(&self, gpu: &Gpu, repeats: usize) -> Result<()> {
        self.dispatch.run(gpu, repeats)
    }
}

#[cfg(test)]
mod layout {
    use crate::kernels::mirror::check_mirror;

    #[test]
    fn params_mirrors_the_wgsl_struct() {
        check_mirror!(super::Params, &super::ROW_STEP, "Params"; rows, layers, h_offset, h_width, dz0_offset, labels_offset, loss_offset, correct_offset, layer);
    }
}
