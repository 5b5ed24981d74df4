//! Launcher for `shaders/matmul.wgsl`: `C = act(op(A)·op(B) + bias)`, batched.
//!
//! ```no_run
//! # use wgpu_train::{Gpu, GpuTensor, MatmulOptions, kernels::matmul};
//! # fn main() -> wgpu_train::Result<()> {
//! let gpu = Gpu::new()?;
//! let x = GpuTensor::from_slice(&gpu, &[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])?;
//! let w = GpuTensor::from_slice(&gpu, &[1, 3], &[1.0, 0.0, -1.0])?; // out×in
//! let y = matmul(&gpu, &x, &w, None, MatmulOptions::nt())?;        // x·wᵀ, 2×1
//! assert_eq!(y.read(&gpu)?, vec![-2.0, -2.0]);
//! # Ok(()) }
//! ```

use super::{Dispatch, Operand, check_operands, groups};
use crate::error::{Error, Result};
use crate::gpu::{Gpu, GpuTensor, PipelineKey};
use crate::options::{Activation, MatmulOptions, MatmulShape};

use super::matmul_v7::MATMUL_V7;
pub use super::matmul_v7::V7Tile;
use crate::gpu::{Binding, Shader};

// The shader file of this kernel family and its bind-group layout
// (binding i of group 0 is `bindings[i]`).
pub static MATMUL: Shader = Shader {
    name: "matmul",
    source: concat!(
        include_str!("../../shaders/matmul.wgsl"),
        include_str!("../../shaders/shared/activation_grad.wgsl")
    ),
    bindings: &[
        Binding::Uniform,          // params
        Binding::StorageRead,      // a
        Binding::StorageRead,      // b
        Binding::StorageRead,      // bias, or H for the activation-grad epilogue
        Binding::StorageReadWrite, // c
    ],
    workgroup_memory: &[
        ("matmul_tiled", 8192),      // two 16×64 f32 tiles
        ("matmul_tiled_8x8", 16384), // two double-buffered 8×128 tiles
    ],
    trusted: true,
};

/// Matmul v6: `matmul.wgsl` with `matmul_vec4.wgsl` appended, which binds A
/// and B a second time as `array<vec4<f32>>` (a binding has one type), so
/// its layout has two more storage buffers than [`MATMUL`]'s; v1..v5 keep
/// the smaller one.
pub static MATMUL_VEC4: Shader = Shader {
    name: "matmul_vec4",
    source: concat!(
        include_str!("../../shaders/matmul.wgsl"),
        include_str!("../../shaders/shared/activation_grad.wgsl"),
        include_str!("../../shaders/matmul_vec4.wgsl")
    ),
    bindings: &[
        Binding::Uniform,          // params
        Binding::StorageRead,      // a
        Binding::StorageRead,      // b
        Binding::StorageRead,      // bias, or H for the activation-grad epilogue
        Binding::StorageReadWrite, // c
        Binding::StorageRead,      // a4: a as vec4s (or a placeholder)
        Binding::StorageRead,      // b4: b as vec4s (or a placeholder)
    ],
    workgroup_memory: &[
        ("matmul_tiled", 8192),
        ("matmul_tiled_8x8", 16384),
        ("matmul_vec4", 16384), // v4's tiles
    ],
    trusted: true,
};

/// Which version of the kernel to run. All versions compute the same thing
/// and are all validated; they differ in speed by shape and adapter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum MatmulKernel {
    /// The autotuner's choice where autotuning is on ([`crate::tune`]),
    /// else the fixed rule [`MatmulKernel::choose`].
    #[default]
    Auto,
    /// v1: one output per thread, the readable reference.
    V1Naive,
    /// v2: 4×4 outputs per thread from registers, no workgroup memory.
    V2Blocked,
    /// v3: 64×64 tiles staged through workgroup memory.
    V3Tiled,
    /// v4: 128×128 tiles, 8×8 outputs per thread in named vec4 registers,
    /// double-buffered workgroup tiles.
    V4Tiled8x8,
    /// v5: split-K for skinny products with a long K: chunks of K summed in
    /// parallel (v2's 4×4 blocks) into a scratch buffer, then added in
    /// chunk order by a second dispatch. Deterministic, but associated
    /// differently from v1..v4 and v6, so its bits differ from theirs
    /// ([`MatmulKernel::sums_k_in_order`]).
    V5SplitK,
    /// v6: v4 with each stage's global loads as one vec4 per thread and
    /// operand instead of four scalars, for the operands whose contiguous
    /// dimension is a multiple of 4 and whose window is 16-byte aligned
    /// ([`Vec4Operands`]); the others keep v4's scalar loads, so it is
    /// valid at every shape (with neither operand, it runs v4's pipeline).
    /// Its own module (`shaders/matmul_vec4.wgsl`): A and B are bound a
    /// second time as vec4s, 6 storage buffers.
    V6Vec4,
    /// v7: register tiles written for the compiler, one generated
    /// specialisation per tile candidate ([`V7Tile::CANDIDATES`], module
    /// [`super::matmul_v7`]): a stage's k loop unrolled, named vec4
    /// accumulators, explicit `fma`, swizzled (conflict-free) workgroup
    /// tiles, two buffers per operand, v6's vec4 loads where the layout
    /// allows them and scalar loads elsewhere (valid at every shape).
    V7(V7Tile),
}

impl MatmulKernel {
    /// Every concrete version, for tests and benchmarks.
    pub const ALL: [MatmulKernel; 9] = [
        MatmulKernel::V1Naive,
        MatmulKernel::V2Blocked,
        MatmulKernel::V3Tiled,
        MatmulKernel::V4Tiled8x8,
        MatmulKernel::V5SplitK,
        MatmulKernel::V6Vec4,
        MatmulKernel::V7(V7Tile::CANDIDATES[0]),
        MatmulKernel::V7(V7Tile::CANDIDATES[1]),
        MatmulKernel::V7(V7Tile::CANDIDATES[2]),
    ];

    /// Short name for tables ("v2_blocked").
    pub fn name(self) -> &'static str {
        match self {
            MatmulKernel::Auto => "auto",
            MatmulKernel::V1Naive => "v1_naive",
            MatmulKernel::V2Blocked => "v2_blocked",
            MatmulKernel::V3Tiled => "v3_tiled",
            MatmulKernel::V4Tiled8x8 => "v4_tiled_8x8",
            MatmulKernel::V5SplitK => "v5_split_k",
            MatmulKernel::V6Vec4 => "v6_vec4",
            MatmulKernel::V7(tile) => tile.name(),
        }
    }

    /// Whether every output is one running sum over k = 0, 1, …, K − 1 (v1..v4, v6;
    /// on lavapipe they give identical bits). v5 sums chunks of K and then
    /// the chunks, so its bits differ: a run that must repeat bit for bit
    /// must replay its recorded choices ([`crate::gpu::TuneRecord::pin`]).
    pub fn sums_k_in_order(self) -> bool {
        self != MatmulKernel::V5SplitK
    }

    /// Whether the tuner should time this version for `shape`: v5 only
    /// where it really splits K (else it is v2 plus a copy), v6 only where
    /// an operand can be read as vec4s (else it is v4's loads, v4's time).
    pub fn worth_timing(self, shape: &MatmulShape, opts: &MatmulOptions) -> bool {
        match self {
            MatmulKernel::V5SplitK => SplitK::for_shape(shape, shape.n).splits >= 2,
            MatmulKernel::V6Vec4 => Vec4Operands::by_shape(shape, opts).any(),
            // At least one whole tile's worth of outputs: below that the
            // 16×16-thread versions already cover C in one workgroup.
            MatmulKernel::V7(tile) => {
                shape.batch * shape.m * shape.n >= tile.shape().bm * tile.shape().bn
            }
            _ => true,
        }
    }

    /// Whether `gpu` can hold this version's workgroup tiles (v7's 32 KiB
    /// candidate needs an adapter that offers more than WebGPU's default
    /// 16 KiB; elsewhere its pipeline is a `TooLarge` error).
    pub fn fits(self, gpu: &Gpu) -> bool {
        self.shader().workgroup_memory(self.entry())
            <= gpu.limits().max_compute_workgroup_storage_size
    }

    /// The versions of [`MatmulKernel::ALL`] whose tiles `gpu` can hold
    /// ([`MatmulKernel::fits`]).
    pub fn available(gpu: &Gpu) -> Vec<MatmulKernel> {
        Self::ALL.into_iter().filter(|k| k.fits(gpu)).collect()
    }

    /// Whether this version's pipeline builds on `gpu` for `shape` and
    /// `opts` (its bindings, workgroup size and memory within the device's
    /// limits): how a recorded or cached choice is checked before a run
    /// replays it on another device. The pipeline is cached, so a version
    /// that fits costs nothing more when it is built.
    pub(crate) fn check_fits(
        self,
        gpu: &Gpu,
        shape: &MatmulShape,
        opts: &MatmulOptions,
        bias: bool,
    ) -> Result<()> {
        let vec4 = if self.reads_vec4() {
            Vec4Operands::by_shape(shape, opts)
        } else {
            Vec4Operands::default()
        };
        gpu.pipeline(&fused_key(self, opts, bias, shape.n, Fusion::None, vec4))
            .map(|_| ())
    }

    fn entry(self) -> &'static str {
        match self {
            MatmulKernel::Auto | MatmulKernel::V2Blocked => "matmul_blocked",
            MatmulKernel::V1Naive => "matmul_naive",
            MatmulKernel::V3Tiled => "matmul_tiled",
            MatmulKernel::V4Tiled8x8 => "matmul_tiled_8x8",
            MatmulKernel::V5SplitK => "matmul_split_k",
            MatmulKernel::V6Vec4 => "matmul_vec4",
            MatmulKernel::V7(tile) => tile.entry(),
        }
    }

    /// Whether the version reads operands as vec4s where their layout
    /// allows it (v6, v7).
    fn reads_vec4(self) -> bool {
        matches!(self, MatmulKernel::V6Vec4 | MatmulKernel::V7(_))
    }

    /// The module the version's entry point is built from.
    fn shader(self) -> &'static Shader {
        match self {
            MatmulKernel::V6Vec4 => &MATMUL_VEC4,
            MatmulKernel::V7(_) => &MATMUL_V7,
            _ => &MATMUL,
        }
    }

    /// Whether the workgroup's shape is a pipeline constant (v2's and v5's).
    fn shaped_workgroup(self) -> bool {
        matches!(
            self,
            MatmulKernel::Auto | MatmulKernel::V2Blocked | MatmulKernel::V5SplitK
        )
    }

    /// Threads per workgroup along (columns, rows). v2's shape follows N:
    /// 64 threads, but no wider than C has 4-column blocks, so that N = 10
    /// runs 4×16 threads instead of leaving 5 of 8 columns of lanes idle.
    pub(crate) fn workgroup(self, n: usize) -> (usize, usize) {
        match self {
            MatmulKernel::V1Naive
            | MatmulKernel::V3Tiled
            | MatmulKernel::V4Tiled8x8
            | MatmulKernel::V6Vec4 => (16, 16),
            MatmulKernel::Auto | MatmulKernel::V2Blocked | MatmulKernel::V5SplitK => {
                let x = n.div_ceil(4).next_power_of_two().min(8);
                (x, 64 / x)
            }
            MatmulKernel::V7(tile) => tile.shape().workgroup(),
        }
    }

    /// Outputs one workgroup covers along (columns, rows).
    fn tile(self, n: usize) -> (usize, usize) {
        let (x, y) = self.workgroup(n);
        match self {
            MatmulKernel::V1Naive => (x, y),
            MatmulKernel::V4Tiled8x8 | MatmulKernel::V6Vec4 => (8 * x, 8 * y),
            MatmulKernel::V7(tile) => (tile.shape().bn, tile.shape().bm),
            _ => (4 * x, 4 * y),
        }
    }

    /// The version `Auto` runs for `shape` on `gpu`.
    ///
    /// Software adapters (lavapipe) run workgroups as SIMD lanes on CPU cores,
    /// where barriers are costly: v2 wins at every shape we measured there
    /// (BENCHMARKS.md). On hardware GPUs, v3's shared-memory tiles pay off
    /// once there are enough 64×64 tiles to occupy the machine; small model
    /// shapes (a 128×128 output is only 4 such tiles) stay on v2's 32×32.
    pub fn choose(gpu: &Gpu, shape: &MatmulShape) -> MatmulKernel {
        if gpu.is_software() {
            return MatmulKernel::V2Blocked;
        }
        let tiles = shape.m.div_ceil(64) * shape.n.div_ceil(64) * shape.batch;
        if tiles >= 64 {
            MatmulKernel::V3Tiled
        } else {
            MatmulKernel::V2Blocked
        }
    }
}

impl MatmulKernel {
    /// The version called `name` ([`MatmulKernel::name`]), if any.
    pub fn from_name(name: &str) -> Option<MatmulKernel> {
        MatmulKernel::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// The tuner's key of one matmul ([`crate::gpu::TuneRecord`]): exact sizes and the options that select a
/// pipeline.
pub fn tune_key(shape: &MatmulShape, opts: &MatmulOptions, bias: bool) -> String {
    let t = |b: bool| if b { 't' } else { 'n' };
    format!(
        "matmul {}x{}x{} batch {} {}{}{} {:?}",
        shape.m,
        shape.n,
        shape.k,
        shape.batch,
        t(opts.trans_a),
        t(opts.trans_b),
        if bias { " +bias" } else { "" },
        opts.activation
    )
}

/// How v5 splits K: `splits` chunks of `k_chunk` (the last may be shorter,
/// none is empty). A function of the shape alone, never of the adapter, so
/// a recorded choice of v5 gives the same association, hence the same bits,
/// wherever it is replayed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SplitK {
    pub splits: usize,
    pub k_chunk: usize,
}

impl SplitK {
    /// At least 32 k per chunk (each chunk's sum is stored and read back
    /// once: it must outweigh that), at most 32 chunks (enough threads for
    /// a 132-SM GPU at 256×10 outputs), and a scratch of at most
    /// [`SplitK::MAX_SCRATCH`] floats. `n_out` counts the ones column.
    pub fn for_shape(shape: &MatmulShape, n_out: usize) -> SplitK {
        let outputs = (shape.batch * shape.m * n_out).max(1);
        let by_memory = (Self::MAX_SCRATCH / outputs).max(1);
        let target = shape.k.div_ceil(32).clamp(1, 32).min(by_memory);
        let k_chunk = shape.k.div_ceil(target);
        SplitK {
            splits: shape.k.div_ceil(k_chunk),
            k_chunk,
        }
    }

    /// 16 Mi floats (64 MiB), half WebGPU's default storage binding limit.
    pub const MAX_SCRATCH: usize = 1 << 24;
}

/// Which operands v6 reads from storage as vec4s. An operand qualifies when
/// its contiguous dimension (A: K, or M when transposed; B: N, or K when
/// transposed) is a multiple of 4 and its window and batch stride start on
/// 16-byte boundaries, so that every vec4 it reads is four of its own
/// elements, wholly inside or wholly past the edge of the tile.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Vec4Operands {
    pub a: bool,
    pub b: bool,
}

impl Vec4Operands {
    /// By the shape alone, for windows at offset 0 (how the tuner times).
    pub fn by_shape(shape: &MatmulShape, opts: &MatmulOptions) -> Self {
        let a_run = if opts.trans_a { shape.m } else { shape.k };
        let b_run = if opts.trans_b { shape.k } else { shape.n };
        Vec4Operands {
            a: a_run.is_multiple_of(4) && shape.a_batch_stride.is_multiple_of(4),
            b: b_run.is_multiple_of(4) && shape.b_batch_stride.is_multiple_of(4),
        }
    }

    /// For these windows: [`Vec4Operands::by_shape`] and aligned offsets.
    fn of(
        shape: &MatmulShape,
        opts: &MatmulOptions,
        a: &GpuTensor<f32>,
        b: &GpuTensor<f32>,
    ) -> Self {
        let by_shape = Self::by_shape(shape, opts);
        Vec4Operands {
            a: by_shape.a && a.offset().is_multiple_of(4),
            b: by_shape.b && b.offset().is_multiple_of(4),
        }
    }

    pub fn any(self) -> bool {
        self.a || self.b
    }

    /// The combinations with a vec4 operand, for the specialisations list
    /// (with none, v6 runs v4's pipeline: see [`fused_key`]).
    const SOME: [Vec4Operands; 3] = [
        Vec4Operands { a: true, b: false },
        Vec4Operands { a: false, b: true },
        Vec4Operands { a: true, b: true },
    ];
}

/// `buffer` bound as `array<vec4<f32>>`: from its start, its size rounded
/// down to 16 bytes. An aligned window ends on a multiple of 4 floats, so
/// the dropped tail is never part of it.
fn vec4_binding(buffer: &wgpu::Buffer) -> wgpu::BindingResource<'_> {
    wgpu::BindingResource::Buffer(wgpu::BufferBinding {
        buffer,
        offset: 0,
        size: wgpu::BufferSize::new(buffer.size() / 16 * 16),
    })
}

/// The uniform block of `matmul.wgsl` (64 bytes, a multiple of 16).
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    m: u32,
    n: u32,
    k: u32,
    batch: u32,
    a_offset: u32,
    b_offset: u32,
    c_offset: u32,
    bias_offset: u32,
    a_batch_stride: u32,
    b_batch_stride: u32,
    c_batch_stride: u32,
    extra_offset: u32,
    splits: u32,
    k_chunk: u32,
    partial_stride: u32,
    bias_batch_stride: u32,
}

/// A fused epilogue for the backward pass (see `shaders/matmul.wgsl`); the
/// plain product with bias and activation is [`Matmul::new`].
#[derive(Clone, Copy, Debug)]
pub enum MatmulEpilogue<'a> {
    /// op(B) gains a trailing column of ones: besides `C = op(A)·op(B)`,
    /// `sums[m] = Σ_k op(A)[m, k]`. With A = dZ (stored rows × out) and
    /// [`MatmulOptions::tn`] that is a layer's weight gradient and its bias
    /// gradient in one product. `sums` (`[M]`) must be a view into C's
    /// buffer that does not overlap C: the flat gradient buffer holds both.
    OnesColumn { sums: &'a GpuTensor<f32> },
    /// `C = (op(A)·op(B)) ⊙ act'(h)`, `h` (C's shape) the activations
    /// `act(Z)` the forward pass stored: with [`MatmulOptions::nn`], the
    /// input gradient dZ of the layer below, through its activation.
    ActivationGrad {
        h: &'a GpuTensor<f32>,
        activation: Activation,
    },
}

/// Which epilogue a pipeline is specialised for.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Fusion {
    None,
    OnesColumn,
    ActivationGrad,
}

fn fused_key(
    kernel: MatmulKernel,
    opts: &MatmulOptions,
    has_bias: bool,
    n: usize,
    fusion: Fusion,
    vec4: Vec4Operands,
) -> PipelineKey {
    // v6 with no operand read as vec4s would be v4's loads, indices and
    // sums in a module with two idle bindings: it runs v4's pipeline, one
    // fewer set of specialisations for the tests and the browser to compile.
    let kernel = if kernel == MatmulKernel::V6Vec4 && !vec4.any() {
        MatmulKernel::V4Tiled8x8
    } else {
        kernel
    };
    let mut constants = constants(opts, has_bias, fusion);
    if kernel.shaped_workgroup() {
        let (x, y) = kernel.workgroup(n);
        constants.push(("WG_X", x as f64));
        constants.push(("WG_Y", y as f64));
    }
    if kernel.reads_vec4() {
        let flag = |b: bool| if b { 1.0 } else { 0.0 };
        constants.push(("VEC4_A", flag(vec4.a)));
        constants.push(("VEC4_B", flag(vec4.b)));
    }
    PipelineKey {
        shader: kernel.shader(),
        entry: kernel.entry(),
        constants,
    }
}

/// v5's second pass: the chunks' sums added, then the epilogue.
fn reduce_key(opts: &MatmulOptions, has_bias: bool, fusion: Fusion) -> PipelineKey {
    PipelineKey {
        shader: &MATMUL,
        entry: "matmul_split_k_reduce",
        constants: constants(opts, has_bias, fusion),
    }
}

/// The pipelines one product can run: one, v5's two, or v6's one per
/// combination of vec4 operands.
fn pipeline_keys(
    kernel: MatmulKernel,
    opts: &MatmulOptions,
    has_bias: bool,
    n: usize,
    fusion: Fusion,
) -> Vec<PipelineKey> {
    if kernel == MatmulKernel::V6Vec4 {
        return Vec4Operands::SOME
            .iter()
            .map(|v| fused_key(kernel, opts, has_bias, n, fusion, *v))
            .collect();
    }
    if let MatmulKernel::V7(_) = kernel {
        // v7 runs its own pipeline with neither operand as vec4s too.
        return std::iter::once(Vec4Operands::default())
            .chain(Vec4Operands::SOME)
            .map(|v| fused_key(kernel, opts, has_bias, n, fusion, v))
            .collect();
    }
    let mut k = vec![fused_key(
        kernel,
        opts,
        has_bias,
        n,
        fusion,
        Vec4Operands::default(),
    )];
    if kernel == MatmulKernel::V5SplitK {
        k.push(reduce_key(opts, has_bias, fusion));
    }
    k
}

fn constants(opts: &MatmulOptions, has_bias: bool, fusion: Fusion) -> Vec<(&'static str, f64)> {
    let flag = |b: bool| if b { 1.0 } else { 0.0 };
    let mut constants = vec![
        ("TRANS_A", flag(opts.trans_a)),
        ("TRANS_B", flag(opts.trans_b)),
        ("HAS_BIAS", flag(has_bias)),
        ("ACTIVATION", opts.activation.shader_code()),
    ];
    // Only the fused keys name the fused constants, so the plain keys (and
    // their cached pipelines) are what they were.
    match fusion {
        Fusion::None => {}
        Fusion::OnesColumn => constants.push(("ONES_COLUMN", 1.0)),
        Fusion::ActivationGrad => constants.push(("ACTIVATION_GRAD", 1.0)),
    }
    constants
}

/// Every pipeline this launcher can build (validated by `tests/cpu/shaders.rs`).
pub fn specialisations() -> Vec<PipelineKey> {
    let mut keys = Vec::new();
    for kernel in MatmulKernel::ALL {
        for trans_a in [false, true] {
            for trans_b in [false, true] {
                for has_bias in [false, true] {
                    for activation in [Activation::Identity, Activation::Sigmoid, Activation::Relu]
                    {
                        let opts = MatmulOptions {
                            trans_a,
                            trans_b,
                            activation,
                        };
                        // N = 4, 8, 16, 32 give every v2 workgroup width.
                        for n in [4, 8, 16, 32] {
                            let mut candidates =
                                pipeline_keys(kernel, &opts, has_bias, n, Fusion::None);
                            // The fused epilogues take no bias; the ones
                            // column no activation either.
                            if !has_bias {
                                candidates.extend(pipeline_keys(
                                    kernel,
                                    &opts,
                                    false,
                                    n,
                                    Fusion::ActivationGrad,
                                ));
                                if activation == Activation::Identity {
                                    candidates.extend(pipeline_keys(
                                        kernel,
                                        &opts,
                                        false,
                                        n,
                                        Fusion::OnesColumn,
                                    ));
                                }
                            }
                            for k in candidates {
                                if !keys.contains(&k) {
                                    keys.push(k);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    keys
}

/// One matmul, ready to record: pipeline and bind group are built once, so
/// recording it into every training step costs one dispatch and nothing else.
pub struct Matmul {
    dispatch: Dispatch,
    /// v5's second pass and its scratch (kept alive with the bind groups).
    reduce: Option<(Dispatch, GpuTensor<f32>)>,
    shape: MatmulShape,
    kernel: MatmulKernel,
    vec4: Vec4Operands,
}

impl Matmul {
    /// Checks shapes and limits and prepares `c = act(op(a)·op(b) + bias)`.
    /// `c` must have shape `[M, N]` (unbatched) or `[batch, M, N]` and must
    /// not share a buffer with an input.
    pub fn new(
        gpu: &Gpu,
        a: &GpuTensor<f32>,
        b: &GpuTensor<f32>,
        bias: Option<&GpuTensor<f32>>,
        c: &GpuTensor<f32>,
        opts: MatmulOptions,
        kernel: MatmulKernel,
    ) -> Result<Self> {
        Self::build(gpu, a, b, bias, c, opts, kernel, None, None)
    }

    /// `count` products in one dispatch (a sweep of `count` models): product
    /// `i` is [`Matmul::new`] on the windows of `a`, `b`, `bias` and `c`
    /// moved `i · stride` elements into their buffers (stride 0: one window
    /// shared by all). `a`, `b`, `bias` and `c` are the 2-D windows of
    /// product 0. Each product runs the kernel version the unbatched call
    /// would choose for its shape, so it computes the same bits.
    #[allow(clippy::too_many_arguments)]
    pub fn batched(
        gpu: &Gpu,
        a: &GpuTensor<f32>,
        b: &GpuTensor<f32>,
        bias: Option<&GpuTensor<f32>>,
        c: &GpuTensor<f32>,
        opts: MatmulOptions,
        kernel: MatmulKernel,
        count: usize,
        strides: BatchStrides,
    ) -> Result<Self> {
        Self::build(
            gpu,
            a,
            b,
            bias,
            c,
            opts,
            kernel,
            None,
            Some((count, strides)),
        )
    }

    /// The product `op(a)·op(b)` into `c` with a fused backward epilogue
    /// ([`MatmulEpilogue`]) instead of bias and activation: `opts` gives
    /// the transposes and must leave `activation` at identity. Unbatched.
    pub fn fused(
        gpu: &Gpu,
        a: &GpuTensor<f32>,
        b: &GpuTensor<f32>,
        c: &GpuTensor<f32>,
        opts: MatmulOptions,
        epilogue: MatmulEpilogue<'_>,
        kernel: MatmulKernel,
    ) -> Result<Self> {
        Self::build(gpu, a, b, None, c, opts, kernel, Some(epilogue), None)
    }

    #[allow(clippy::too_many_arguments)]
    fn build(
        gpu: &Gpu,
        a: &GpuTensor<f32>,
        b: &GpuTensor<f32>,
        bias: Option<&GpuTensor<f32>>,
        c: &GpuTensor<f32>,
        opts: MatmulOptions,
        kernel: MatmulKernel,
        epilogue: Option<MatmulEpilogue<'_>>,
        batch: Option<(usize, BatchStrides)>,
    ) -> Result<Self> {
        let mut shape = MatmulShape::resolve(a.shape(), b.shape(), bias.map(|t| t.shape()), &opts)?;
        if batch.is_some() && (shape.batch != 1 || epilogue.is_some()) {
            return Err(Error::shape(
                "matmul",
                "a batch of products takes 2-D windows and no fused epilogue",
            ));
        }
        let want = shape.output_shape();
        let c_ok = c.shape() == want.as_slice()
            || (shape.batch == 1 && c.shape() == [1, shape.m, shape.n]);
        if !c_ok {
            return Err(Error::shape(
                "matmul",
                format!("output C must have shape {want:?}, got {:?}", c.shape()),
            ));
        }
        let mut reads = vec![Operand::of("A", a), Operand::of("B", b)];
        reads.extend(bias.map(|t| Operand::of("bias", t)));
        let mut writes = vec![Operand::of("C", c)];
        let (fusion, extra) = fused_operands(&shape, c, &opts, epilogue)?;
        match (fusion, epilogue) {
            (Fusion::OnesColumn, Some(MatmulEpilogue::OnesColumn { sums })) => {
                writes.push(Operand::of("sums", sums))
            }
            (Fusion::ActivationGrad, Some(MatmulEpilogue::ActivationGrad { h, .. })) => {
                reads.push(Operand::of("h", h))
            }
            _ => {}
        }
        // Chosen for one product's shape: a batch runs what each product
        // would run alone.
        let kernel = match kernel {
            MatmulKernel::Auto => super::recorded(
                gpu,
                tune_key(&shape, &opts, bias.is_some()),
                MatmulKernel::choose(gpu, &shape),
                MatmulKernel::name,
                MatmulKernel::from_name,
                &|k: MatmulKernel| {
                    k.check_fits(gpu, &shape, &opts, bias.is_some())
                        .map_err(|e| e.to_string())
                },
            ),
            k => k,
        };
        // v5's chunks come from one product's shape, so that a batch
        // splits K as the product alone would (the same bits).
        let product = shape;
        let mut c_batch_stride = shape.m * shape.n;
        let mut bias_batch_stride = 0;
        if let Some((count, s)) = batch {
            super::check_batch("matmul", count, &mut reads, &[s.a, s.b, s.bias], false)?;
            super::check_batch("matmul", count, &mut writes, &[s.c], true)?;
            shape.batch = count;
            shape.a_batch_stride = s.a;
            shape.b_batch_stride = s.b;
            c_batch_stride = s.c;
            bias_batch_stride = s.bias;
        }
        check_operands(gpu, "matmul", &reads, &writes)?;
        let vec4 = if kernel.reads_vec4() {
            Vec4Operands::of(&shape, &opts, a, b)
        } else {
            Vec4Operands::default()
        };
        // The ones column is one more column of C to cover.
        let n_out = shape.n + usize::from(fusion == Fusion::OnesColumn);
        let (tile_x, tile_y) = kernel.tile(n_out);
        let split = (kernel == MatmulKernel::V5SplitK).then(|| SplitK::for_shape(&product, n_out));
        let partial_stride = shape.batch * shape.m * n_out;
        let workgroups = [
            groups(n_out, tile_x),
            groups(shape.m, tile_y),
            u32::try_from(shape.batch * split.map_or(1, |s| s.splits)).unwrap_or(u32::MAX),
        ];
        gpu.check_dispatch("matmul", workgroups)?;

        // Tensors are at most u32::MAX elements (GpuTensor::zeros checks), so
        // offsets and strides fit in u32.
        let params = Params {
            m: shape.m as u32,
            n: shape.n as u32,
            k: shape.k as u32,
            batch: shape.batch as u32,
            a_offset: a.offset() as u32,
            b_offset: b.offset() as u32,
            c_offset: c.offset() as u32,
            bias_offset: bias.or(extra.h).map_or(0, |t| t.offset() as u32),
            a_batch_stride: shape.a_batch_stride as u32,
            b_batch_stride: shape.b_batch_stride as u32,
            c_batch_stride: c_batch_stride as u32,
            extra_offset: extra.sums.map_or(0, |t| t.offset() as u32),
            splits: split.map_or(1, |s| s.splits as u32),
            k_chunk: split.map_or(shape.k, |s| s.k_chunk) as u32,
            partial_stride: partial_stride as u32,
            bias_batch_stride: bias_batch_stride as u32,
        };
        let key_opts = match epilogue {
            Some(MatmulEpilogue::ActivationGrad { activation, .. }) => {
                opts.with_activation(activation)
            }
            _ => opts,
        };
        let pipeline = gpu.pipeline(&fused_key(
            kernel,
            &key_opts,
            bias.is_some(),
            n_out,
            fusion,
            vec4,
        ))?;
        let uniform = super::uniform(gpu, "matmul params", &params)?;
        let bias_buffer = bias.or(extra.h).map_or(gpu.placeholder(), |t| t.buffer());
        let Some(split) = split else {
            let mut buffers = vec![
                uniform.as_entire_binding(),
                a.buffer().as_entire_binding(),
                b.buffer().as_entire_binding(),
                bias_buffer.as_entire_binding(),
                c.buffer().as_entire_binding(),
            ];
            // v7's layout always has the vec4 bindings; v6's only where it
            // does not fall back to v4's pipeline.
            if matches!(kernel, MatmulKernel::V7(_))
                || (kernel == MatmulKernel::V6Vec4 && vec4.any())
            {
                // The same buffers again as vec4s; a placeholder for an
                // operand read as scalars (it may be under 16 bytes).
                for (on, t) in [(vec4.a, a), (vec4.b, b)] {
                    buffers.push(if on {
                        vec4_binding(t.buffer())
                    } else {
                        gpu.placeholder().as_entire_binding()
                    });
                }
            }
            let bind_group = gpu.bind_group_with(&pipeline, buffers)?;
            return Ok(Matmul {
                dispatch: Dispatch::new("matmul", pipeline, bind_group, workgroups),
                reduce: None,
                shape,
                kernel,
                vec4,
            });
        };
        // v5: the first pass writes the chunks' sums to the scratch (bound
        // as C); the second reads it (bound as A) and writes C.
        let len = split.splits * partial_stride;
        gpu.check_storage_binding("matmul split-K scratch", 4 * len as u64)?;
        let scratch = GpuTensor::<f32>::zeros(gpu, &[len])?;
        // Poisoned once: a chunk the first pass failed to write shows as a
        // NaN in C, never as a silent 0.
        scratch.fill(gpu, f32::NAN)?;
        let partial_group = gpu.bind_group(
            &pipeline,
            &[
                &uniform,
                a.buffer(),
                b.buffer(),
                gpu.placeholder(),
                scratch.buffer(),
            ],
        )?;
        let reduce_pipeline = gpu.pipeline(&reduce_key(&key_opts, bias.is_some(), fusion))?;
        let reduce_group = gpu.bind_group(
            &reduce_pipeline,
            &[
                &uniform,
                scratch.buffer(),
                gpu.placeholder(),
                bias_buffer,
                c.buffer(),
            ],
        )?;
        let reduce_grid = super::fold(
            gpu,
            "matmul split-K reduce",
            groups(partial_stride, 64).into(),
        )?;
        Ok(Matmul {
            dispatch: Dispatch::new("matmul", pipeline, partial_group, workgroups),
            reduce: Some((
                Dispatch::new("matmul", reduce_pipeline, reduce_group, reduce_grid),
                scratch,
            )),
            shape,
            kernel,
            vec4,
        })
    }

    /// Records the dispatch into an open compute pass.
    pub fn record(&self, pass: &mut wgpu::ComputePass<'_>) {
        self.dispatch.record(pass);
        if let Some((reduce, _)) = &self.reduce {
            reduce.record(pass);
        }
    }

    /// Dispatches one [`Matmul::record`] makes: 1, or 2 for v5.
    pub fn dispatches(&self) -> usize {
        1 + usize::from(self.reduce.is_some())
    }

    /// Records `repeats` products in one pass of a new encoder and submits
    /// it (no wait, no readback).
    pub fn run(&self, gpu: &Gpu, repeats: usize) -> Result<()> {
        super::run_repeated(gpu, "matmul", repeats, |pass| self.record(pass))
    }

    /// The resolved sizes.
    pub fn shape(&self) -> MatmulShape {
        self.shape
    }

    /// The version that runs (never `Auto`).
    pub fn kernel(&self) -> MatmulKernel {
        self.kernel
    }

    /// The operands v6 reads as vec4s (none for the other versions).
    pub fn vec4_operands(&self) -> Vec4Operands {
        self.vec4
    }
}

/// Element distances between the operands of consecutive products of
/// [`Matmul::batched`] (0: one operand shared by all).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchStrides {
    pub a: usize,
    pub b: usize,
    pub bias: usize,
    pub c: usize,
}

/// The tensors a fused epilogue adds to the bindings.
#[derive(Default)]
struct Extra<'a> {
    h: Option<&'a GpuTensor<f32>>,
    sums: Option<&'a GpuTensor<f32>>,
}

/// Checks a fused epilogue's operands against the product's shape.
fn fused_operands<'a>(
    shape: &MatmulShape,
    c: &GpuTensor<f32>,
    opts: &MatmulOptions,
    epilogue: Option<MatmulEpilogue<'a>>,
) -> Result<(Fusion, Extra<'a>)> {
    let Some(epilogue) = epilogue else {
        return Ok((Fusion::None, Extra::default()));
    };
    if opts.activation != Activation::Identity {
        return Err(Error::shape(
            "matmul",
            "a fused backward epilogue applies no forward activation; leave opts.activation at identity",
        ));
    }
    if shape.batch != 1 || shape.a_batch_stride != 0 || shape.b_batch_stride != 0 {
        return Err(Error::shape(
            "matmul",
            "the fused backward epilogues take unbatched (2-D) operands",
        ));
    }
    match epilogue {
        MatmulEpilogue::OnesColumn { sums } => {
            if sums.shape() != [shape.m] {
                return Err(Error::shape(
                    "matmul",
                    format!(
                        "the ones column's sums must have shape [{}], got {:?}",
                        shape.m,
                        sums.shape()
                    ),
                ));
            }
            if sums.buffer() != c.buffer() {
                return Err(Error::shape(
                    "matmul",
                    "the ones column's sums must be a view into C's buffer (e.g. the bias gradient beside the weight gradient in one gradient buffer)",
                ));
            }
            Ok((
                Fusion::OnesColumn,
                Extra {
                    sums: Some(sums),
                    h: None,
                },
            ))
        }
        MatmulEpilogue::ActivationGrad { h, .. } => {
            if h.shape() != [shape.m, shape.n] {
                return Err(Error::shape(
                    "matmul",
                    format!(
                        "h must have C's shape [{}, {}], got {:?}",
                        shape.m,
                        shape.n,
                        h.shape()
                    ),
                ));
            }
            Ok((
                Fusion::ActivationGrad,
                Extra {
                    h: Some(h),
                    sums: None,
                },
            ))
        }
    }
}

/// `C = op(a)·op(b)` and `sums = Σ_k op(a)[·, k]` (the ones column) into
/// new tensors, with the automatic kernel choice. The GPU twin of
/// [`crate::cpu::matmul_ones_column`].
pub fn matmul_ones_column(
    gpu: &Gpu,
    a: &GpuTensor<f32>,
    b: &GpuTensor<f32>,
    opts: MatmulOptions,
) -> Result<(GpuTensor<f32>, GpuTensor<f32>)> {
    let shape = MatmulShape::resolve(a.shape(), b.shape(), None, &opts)?;
    let out_shape = shape.output_shape();
    let len: usize = out_shape.iter().product();
    let all = GpuTensor::<f32>::zeros(gpu, &[len + shape.m])?;
    let c = all.view(0, &out_shape)?;
    let sums = all.view(len, &[shape.m])?;
    Matmul::fused(
        gpu,
        a,
        b,
        &c,
        opts,
        MatmulEpilogue::OnesColumn { sums: &sums },
        MatmulKernel::Auto,
    )?
    .run(gpu, 1)?;
    Ok((c, sums))
}

/// `C = (op(a)·op(b)) ⊙ act'(h)` into a new tensor, with the automatic
/// kernel choice. The GPU twin of [`crate::cpu::matmul_activation_grad`].
pub fn matmul_activation_grad(
    gpu: &Gpu,
    a: &GpuTensor<f32>,
    b: &GpuTensor<f32>,
    h: &GpuTensor<f32>,
    activation: Activation,
    opts: MatmulOptions,
) -> Result<GpuTensor<f32>> {
    let shape = MatmulShape::resolve(a.shape(), b.shape(), None, &opts)?;
    let c = GpuTensor::zeros(gpu, &shape.output_shape())?;
    Matmul::fused(
        gpu,
        a,
        b,
        &c,
        opts,
        MatmulEpilogue::ActivationGrad { h, activation },
        MatmulKernel::Auto,
    )?
    .run(gpu, 1)?;
    Ok(c)
}

/// `act(op(a)·op(b) + bias)` into a new tensor, with the automatic kernel
/// choice. The GPU twin of [`crate::cpu::matmul`].
pub fn matmul(
    gpu: &Gpu,
    a: &GpuTensor<f32>,
    b: &GpuTensor<f32>,
    bias: Option<&GpuTensor<f32>>,
    opts: MatmulOptions,
) -> Result<GpuTensor<f32>> {
    matmul_with(gpu, a, b, bias, opts, MatmulKernel::Auto)
}

/// [`matmul`] with an explicit kernel version.
pub fn matmul_with(
    gpu: &Gpu,
    a: &GpuTensor<f32>,
    b: &GpuTensor<f32>,
    bias: Option<&GpuTensor<f32>>,
    opts: MatmulOptions,
    kernel: MatmulKernel,
) -> Result<GpuTensor<f32>> {
    let shape = MatmulShape::resolve(a.shape(), b.shape(), bias.map(|t| t.shape()), &opts)?;
    let c = GpuTensor::zeros(gpu, &shape.output_shape())?;
    Matmul::new(gpu, a, b, bias, &c, opts, kernel)?.run(gpu, 1)?;
    Ok(c)
}

#[cfg(test)]
mod layout {
    use crate::kernels::mirror::check_mirror;

    #[test]
    fn params_mirrors_the_wgsl_struct() {
        check_mirror!(super::Params, &super::MATMUL, "Params"; m, n, k, batch, a_offset, b_offset, c_offset, bias_offset, a_batch_stride, b_batch_stride, c_batch_stride, extra_offset, splits, k_chunk, partial_stride, bias_batch_stride);
    }
}

#[cfg(test)]
mod split_k {
    use super::SplitK;
    use crate::options::{MatmulOptions, MatmulShape};

    fn split(m: usize, n: usize, k: usize) -> SplitK {
        let shape = MatmulShape::resolve(&[m, k], &[n, k], None, &MatmulOptions::nt()).unwrap();
        SplitK::for_shape(&shape, n)
    }

    /// Every chunk holds at least one k and together they cover K exactly.
    #[test]
    fn chunks_cover_k_and_none_is_empty() {
        for k in [
            1, 7, 31, 32, 33, 63, 64, 65, 128, 129, 784, 1024, 3073, 100_000,
        ] {
            let s = split(256, 10, k);
            assert!(s.splits >= 1 && s.splits <= 32, "{k}: {s:?}");
            assert!(
                (s.splits - 1) * s.k_chunk < k,
                "{k}: the last chunk is empty: {s:?}"
            );
            assert!(s.splits * s.k_chunk >= k, "{k}: K is not covered: {s:?}");
        }
    }

    #[test]
    fn the_model_shapes_split() {
        assert_eq!(
            split(256, 10, 3073),
            SplitK {
                splits: 32,
                k_chunk: 97
            }
        );
        assert_eq!(
            split(128, 10, 784),
            SplitK {
                splits: 25,
                k_chunk: 32
            }
        );
        assert_eq!(split(7, 7, 7).splits, 1, "a short K is not split");
    }

    #[test]
    fn the_scratch_is_bounded() {
        let s = split(4096, 4096, 4096);
        assert!(s.splits * 4096 * 4096 <= SplitK::MAX_SCRATCH.max(4096 * 4096));
        assert_eq!(s.splits, 1);
    }
}
