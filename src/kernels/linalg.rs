//! Launchers for `shaders/linalg.wgsl`: deterministic dot products and
//! norms, linear combinations of vectors (axpy, scale), and the per-row
//! middle of the softmax cross-entropy's Hessian-vector product. The
//! second-order optimizers ([`crate::second_order`]) keep every vector on the
//! GPU with these and read back only scalars.
//!
//! Vectors are windows (views) of buffers: a launcher binds whole buffers
//! once and is told, per use, which windows to read and write
//! ([`Dots::set`], [`Combine::set`]); so one launcher serves every vector of
//! an optimizer's bank. Each `set` rewrites the launcher's own small buffers
//! through the queue, so it applies to the next submit: set, record, submit,
//! then set again.
//!
//! ```no_run
//! # use wgpu_train::{Gpu, GpuTensor, kernels::linalg};
//! # fn main() -> wgpu_train::Result<()> {
//! let gpu = Gpu::new()?;
//! let x = GpuTensor::from_slice(&gpu, &[3], &[1.0, 2.0, 2.0])?;
//! let y = GpuTensor::from_slice(&gpu, &[3], &[1.0, 1.0, 1.0])?;
//! linalg::axpy(&gpu, 2.0, &x, &y)?;                       // y ← 2x + y
//! assert_eq!(y.read(&gpu)?, vec![3.0, 5.0, 5.0]);
//! assert_eq!(linalg::norm(&gpu, &x)?.read(&gpu)?, vec![3.0]);
//! # Ok(()) }
//! ```

use super::{Dispatch, Operand, check_operands, fold, uniform};
use crate::error::{Error, Result};
use crate::gpu::{Gpu, GpuTensor, PipelineKey};

use crate::gpu::{Binding, Shader};

// The shader file of this kernel family and its bind-group layout
// (binding i of group 0 is `bindings[i]`).
pub static LINALG: Shader = Shader {
    name: "linalg",
    source: include_str!("../../shaders/linalg.wgsl"),
    bindings: &[
        Binding::Uniform,          // params
        Binding::StorageRead,      // a
        Binding::StorageRead,      // b
        Binding::StorageRead,      // items: dot pairs or combine terms
        Binding::StorageReadWrite, // out
    ],
    workgroup_memory: &[("dots", 1024)],
};

/// Terms one [`Combine`] dispatch adds (longer sums take several).
pub const MAX_TERMS: usize = 32;

/// Lanes of one dot product in `dots` (its CPU twin adds in the same order).
pub const DOT_LANES: usize = 256;

/// The uniform block of `linalg.wgsl` (32 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    count: u32,
    out_offset: u32,
    a_offset: u32,
    b_offset: u32,
    a_stride: u32,
    b_stride: u32,
    inv_n: f32,
}

fn key(entry: &'static str, root: bool) -> PipelineKey {
    PipelineKey {
        shader: &LINALG,
        entry,
        constants: if entry == "dots" {
            vec![("ROOT", if root { 1.0 } else { 0.0 })]
        } else {
            vec![]
        },
    }
}

/// Every pipeline these launchers can build (validated by `tests/shaders.rs`).
pub fn specialisations() -> Vec<PipelineKey> {
    vec![
        key("dots", false),
        key("dots", true),
        key("combine", false),
        key("xent_hvp_rows", false),
    ]
}

/// A writable-by-the-queue storage buffer of `words` u32s for the per-use
/// lists (pairs, terms).
fn items_buffer(gpu: &Gpu, label: &str, words: usize) -> Result<wgpu::Buffer> {
    gpu.scoped(&format!("creating {label}"), || {
        gpu.device().create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: 4 * words.max(4) as u64,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    })
}

fn params_buffer(gpu: &Gpu, label: &str) -> Result<wgpu::Buffer> {
    gpu.scoped(&format!("creating {label}"), || {
        gpu.device().create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: std::mem::size_of::<Params>() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    })
}

fn write<T: bytemuck::Pod>(gpu: &Gpu, buffer: &wgpu::Buffer, data: &[T]) -> Result<()> {
    gpu.scoped("writing linalg parameters", || {
        gpu.queue()
            .write_buffer(buffer, 0, bytemuck::cast_slice(data))
    })
}

/// Checks that `v` is an `n`-element window of `space`'s buffer.
fn check_window(op: &'static str, what: &str, v: &GpuTensor<f32>, n: usize) -> Result<()> {
    if v.len() != n {
        return Err(Error::shape(
            op,
            format!(
                "{what} holds {} elements; this launcher works on vectors of {n}",
                v.len()
            ),
        ));
    }
    Ok(())
}

fn in_buffer(v: &GpuTensor<f32>, space: &GpuTensor<f32>) -> bool {
    v.buffer() == space.buffer()
}

/// Element offsets fit in u32: tensors hold at most u32::MAX elements.
fn offset(v: &GpuTensor<f32>) -> u32 {
    v.offset() as u32
}

// ---------------------------------------------------------------------- dots

/// Up to `out.len()` dot products (or norms) of n-vectors in one dispatch,
/// each summed in a fixed order: the same inputs give the same bits.
pub struct Dots {
    dispatch: Dispatch,
    params: wgpu::Buffer,
    items: wgpu::Buffer,
    a: GpuTensor<f32>,
    b: GpuTensor<f32>,
    out: GpuTensor<f32>,
    n: usize,
}

impl Dots {
    /// Prepares dot products of `n`-element windows of `a`'s buffer with
    /// windows of `b`'s (the same buffer is fine), written to `out` in order;
    /// `out` must not share their buffers. With `root`, each result is its
    /// square root (norms: pair a vector with itself).
    pub fn new(
        gpu: &Gpu,
        a: &GpuTensor<f32>,
        b: &GpuTensor<f32>,
        out: &GpuTensor<f32>,
        n: usize,
        root: bool,
    ) -> Result<Self> {
        const OP: &str = "dots";
        if n == 0 {
            return Err(Error::shape(OP, "vectors need at least one element"));
        }
        check_operands(
            gpu,
            OP,
            &[Operand::of("a", a), Operand::of("b", b)],
            &[Operand::of("out", out)],
        )?;
        let pipeline = gpu.pipeline(&key("dots", root))?;
        let params = params_buffer(gpu, "dots params")?;
        let items = items_buffer(gpu, "dots pairs", 2 * out.len())?;
        let bind_group = gpu.bind_group(
            &pipeline,
            &[&params, a.buffer(), b.buffer(), &items, out.buffer()],
        )?;
        Ok(Dots {
            dispatch: Dispatch::new(OP, pipeline, bind_group, [1, 1, 1]),
            params,
            items,
            a: a.clone(),
            b: b.clone(),
            out: out.clone(),
            n,
        })
    }

    /// Chooses the pairs the next submitted dispatch computes: `out[k] =
    /// pairs[k].0 · pairs[k].1`. Each left vector must be a window of `a`'s
    /// buffer, each right one of `b`'s, `n` elements long.
    pub fn set(&mut self, gpu: &Gpu, pairs: &[(&GpuTensor<f32>, &GpuTensor<f32>)]) -> Result<()> {
        const OP: &str = "dots";
        if pairs.is_empty() || pairs.len() > self.out.len() {
            return Err(Error::shape(
                OP,
                format!(
                    "{} pairs given; this launcher computes 1 to {}",
                    pairs.len(),
                    self.out.len()
                ),
            ));
        }
        let mut words = Vec::with_capacity(2 * pairs.len());
        for (k, (x, y)) in pairs.iter().enumerate() {
            check_window(OP, &format!("pair {k}'s left vector"), x, self.n)?;
            check_window(OP, &format!("pair {k}'s right vector"), y, self.n)?;
            if !in_buffer(x, &self.a) || !in_buffer(y, &self.b) {
                return Err(Error::shape(
                    OP,
                    format!("pair {k} names a vector outside the buffers this launcher binds"),
                ));
            }
            words.extend([offset(x), offset(y)]);
        }
        write(gpu, &self.items, &words)?;
        let params = Params {
            n: self.n as u32,
            count: pairs.len() as u32,
            out_offset: offset(&self.out),
            ..Params::default()
        };
        write(gpu, &self.params, &[params])?;
        self.dispatch.set_grid(fold(gpu, OP, pairs.len() as u64)?);
        Ok(())
    }

    /// Records the dispatch (one workgroup per pair) into an open pass.
    pub fn record(&self, pass: &mut wgpu::ComputePass<'_>) {
        self.dispatch.record(pass);
    }

    /// Records the dispatch in a new encoder and submits it.
    pub fn run(&self, gpu: &Gpu) -> Result<()> {
        self.dispatch.run(gpu, 1)
    }
}

/// `a · b` into a new one-element tensor. The GPU twin of
/// [`crate::cpu::linalg::dot`].
pub fn dot(gpu: &Gpu, a: &GpuTensor<f32>, b: &GpuTensor<f32>) -> Result<GpuTensor<f32>> {
    if a.len() != b.len() {
        return Err(Error::shape(
            "dot",
            format!("a holds {} elements, b {}", a.len(), b.len()),
        ));
    }
    let out = GpuTensor::zeros(gpu, &[1])?;
    let mut d = Dots::new(gpu, a, b, &out, a.len(), false)?;
    d.set(gpu, &[(a, b)])?;
    d.run(gpu)?;
    Ok(out)
}

/// `‖x‖₂` into a new one-element tensor. The GPU twin of
/// [`crate::cpu::linalg::norm`].
pub fn norm(gpu: &Gpu, x: &GpuTensor<f32>) -> Result<GpuTensor<f32>> {
    let out = GpuTensor::zeros(gpu, &[1])?;
    let mut d = Dots::new(gpu, x, x, &out, x.len(), true)?;
    d.set(gpu, &[(x, x)])?;
    d.run(gpu)?;
    Ok(out)
}

// ------------------------------------------------------------------- combine

/// `out = Σ_t c_t·v_t` over n-element windows, one thread per element.
pub struct Combine {
    dispatch: Dispatch,
    params: wgpu::Buffer,
    items: wgpu::Buffer,
    space: GpuTensor<f32>,
    src: Option<GpuTensor<f32>>,
    n: usize,
}

impl Combine {
    /// Prepares combinations written into windows of `space`'s buffer, whose
    /// terms are windows of that buffer or of `src`'s (which must be another
    /// buffer: WebGPU forbids binding one buffer for reading and writing).
    pub fn new(
        gpu: &Gpu,
        space: &GpuTensor<f32>,
        src: Option<&GpuTensor<f32>>,
        n: usize,
    ) -> Result<Self> {
        const OP: &str = "combine";
        if n == 0 {
            return Err(Error::shape(OP, "vectors need at least one element"));
        }
        let reads: Vec<Operand> = src.iter().map(|s| Operand::of("src", s)).collect();
        check_operands(gpu, OP, &reads, &[Operand::of("out", space)])?;
        let pipeline = gpu.pipeline(&key("combine", false))?;
        let params = params_buffer(gpu, "combine params")?;
        let items = items_buffer(gpu, "combine terms", 4 * MAX_TERMS)?;
        let a = src.map_or(gpu.placeholder(), |s| s.buffer());
        let bind_group = gpu.bind_group(
            &pipeline,
            &[&params, a, gpu.placeholder(), &items, space.buffer()],
        )?;
        Ok(Combine {
            dispatch: Dispatch::new(
                OP,
                pipeline,
                bind_group,
                fold(gpu, OP, n.div_ceil(256) as u64)?,
            ),
            params,
            items,
            space: space.clone(),
            src: src.cloned(),
            n,
        })
    }

    /// Chooses what the next submitted dispatch computes: `out = Σ_t c_t·v_t`,
    /// terms added in order (1 to [`MAX_TERMS`]). `out` is a window of the
    /// launcher's space; a term may be `out` itself but must not overlap it
    /// otherwise.
    pub fn set(
        &self,
        gpu: &Gpu,
        out: &GpuTensor<f32>,
        terms: &[(f32, &GpuTensor<f32>)],
    ) -> Result<()> {
        const OP: &str = "combine";
        if terms.is_empty() || terms.len() > MAX_TERMS {
            return Err(Error::shape(
                OP,
                format!(
                    "{} terms given; one dispatch adds 1 to {MAX_TERMS}",
                    terms.len()
                ),
            ));
        }
        check_window(OP, "out", out, self.n)?;
        if !in_buffer(out, &self.space) {
            return Err(Error::shape(
                OP,
                "out is not in the buffer this launcher writes",
            ));
        }
        let mut words = Vec::with_capacity(4 * terms.len());
        for (t, &(c, v)) in terms.iter().enumerate() {
            check_window(OP, &format!("term {t}"), v, self.n)?;
            let from_src = self.src.as_ref().is_some_and(|s| in_buffer(v, s));
            if !from_src {
                if !in_buffer(v, &self.space) {
                    return Err(Error::shape(
                        OP,
                        format!("term {t} is outside the buffers this launcher binds"),
                    ));
                }
                let (o, s) = (out.offset(), v.offset());
                if s != o && s < o + self.n && o < s + self.n {
                    return Err(Error::shape(
                        OP,
                        format!("term {t} overlaps the output without being it"),
                    ));
                }
            }
            words.extend([offset(v), u32::from(from_src), c.to_bits(), 0]);
        }
        write(gpu, &self.items, &words)?;
        let params = Params {
            n: self.n as u32,
            count: terms.len() as u32,
            out_offset: offset(out),
            ..Params::default()
        };
        write(gpu, &self.params, &[params])
    }

    /// Records the dispatch into an open pass.
    pub fn record(&self, pass: &mut wgpu::ComputePass<'_>) {
        self.dispatch.record(pass);
    }

    /// Records the dispatch in a new encoder and submits it.
    pub fn run(&self, gpu: &Gpu) -> Result<()> {
        self.dispatch.run(gpu, 1)
    }
}

/// `out ← Σ_t c_t·v_t` in place, every term in `out`'s buffer or in one other
/// buffer. The GPU twin of [`crate::cpu::linalg::combine`].
pub fn combine(gpu: &Gpu, out: &GpuTensor<f32>, terms: &[(f32, &GpuTensor<f32>)]) -> Result<()> {
    let src = terms
        .iter()
        .map(|(_, v)| *v)
        .find(|v| v.buffer() != out.buffer());
    if let Some(s) = src
        && terms
            .iter()
            .any(|(_, v)| v.buffer() != out.buffer() && v.buffer() != s.buffer())
    {
        return Err(Error::shape(
            "combine",
            "terms come from more than one buffer besides the output's",
        ));
    }
    let k = Combine::new(gpu, out, src, out.len())?;
    k.set(gpu, out, terms)?;
    k.run(gpu)
}

/// `y ← alpha·x + y`. The GPU twin of [`crate::cpu::linalg::axpy`].
pub fn axpy(gpu: &Gpu, alpha: f32, x: &GpuTensor<f32>, y: &GpuTensor<f32>) -> Result<()> {
    combine(gpu, y, &[(1.0, y), (alpha, x)])
}

/// `x ← alpha·x`. The GPU twin of [`crate::cpu::linalg::scale`].
pub fn scale(gpu: &Gpu, alpha: f32, x: &GpuTensor<f32>) -> Result<()> {
    combine(gpu, x, &[(alpha, x)])
}

// ------------------------------------------------------------- xent_hvp_rows

/// `r = (diag(p) − p pᵀ)·u / N` row by row, `p = softmax(logits)`.
pub struct XentHvpRows {
    dispatch: Dispatch,
}

impl XentHvpRows {
    /// Prepares the rows for `logits` and `u` (`[rows, C]` each) into `r`
    /// (`[rows, C]`, not sharing their buffers); `inv_n` is 1 / (examples in
    /// the whole batch), so that chunks of a batch add up to its mean.
    pub fn new(
        gpu: &Gpu,
        logits: &GpuTensor<f32>,
        u: &GpuTensor<f32>,
        r: &GpuTensor<f32>,
        inv_n: f32,
    ) -> Result<Self> {
        const OP: &str = "xent_hvp_rows";
        let (rows, c) = crate::shapes::matrix_shape(OP, "logits", logits.shape())?;
        crate::shapes::check_same_shape(OP, "u", u.shape(), "logits", logits.shape())?;
        crate::shapes::check_same_shape(OP, "r", r.shape(), "logits", logits.shape())?;
        check_operands(
            gpu,
            OP,
            &[Operand::of("logits", logits), Operand::of("u", u)],
            &[Operand::of("r", r)],
        )?;
        let params = Params {
            n: rows as u32,
            count: c as u32,
            out_offset: offset(r),
            a_offset: offset(logits),
            b_offset: offset(u),
            a_stride: c as u32,
            b_stride: c as u32,
            inv_n,
        };
        Self::build(gpu, params, logits, u, r)
    }

    /// As [`XentHvpRows::new`] with logits and u the two halves of one
    /// `[rows, 2C]` product `X·[W; V]ᵀ` (columns `0..C` and `C..2C`), so that
    /// one pass over X gives both.
    pub fn stacked(gpu: &Gpu, zu: &GpuTensor<f32>, r: &GpuTensor<f32>, inv_n: f32) -> Result<Self> {
        const OP: &str = "xent_hvp_rows";
        let (rows, c2) = crate::shapes::matrix_shape(OP, "zu", zu.shape())?;
        if c2 % 2 != 0 || r.shape() != [rows, c2 / 2] {
            return Err(Error::shape(
                OP,
                format!(
                    "zu must be [rows, 2C] and r [rows, C]; got {:?} and {:?}",
                    zu.shape(),
                    r.shape()
                ),
            ));
        }
        check_operands(gpu, OP, &[Operand::of("zu", zu)], &[Operand::of("r", r)])?;
        let c = c2 / 2;
        let params = Params {
            n: rows as u32,
            count: c as u32,
            out_offset: offset(r),
            a_offset: offset(zu),
            b_offset: (zu.offset() + c) as u32,
            a_stride: c2 as u32,
            b_stride: c2 as u32,
            inv_n,
        };
        Self::build(gpu, params, zu, zu, r)
    }

    fn build(
        gpu: &Gpu,
        params: Params,
        a: &GpuTensor<f32>,
        b: &GpuTensor<f32>,
        r: &GpuTensor<f32>,
    ) -> Result<Self> {
        if !params.inv_n.is_finite() || params.inv_n <= 0.0 {
            return Err(Error::InvalidArgument {
                name: "inv_n",
                msg: format!("must be finite and > 0, got {}", params.inv_n),
            });
        }
        let pipeline = gpu.pipeline(&key("xent_hvp_rows", false))?;
        let uniform = uniform(gpu, "xent_hvp_rows params", &params)?;
        let bind_group = gpu.bind_group(
            &pipeline,
            &[
                &uniform,
                a.buffer(),
                b.buffer(),
                gpu.placeholder(),
                r.buffer(),
            ],
        )?;
        let grid = fold(
            gpu,
            "xent_hvp_rows",
            (params.n as usize).div_ceil(64) as u64,
        )?;
        Ok(XentHvpRows {
            dispatch: Dispatch::new("xent_hvp_rows", pipeline, bind_group, grid),
        })
    }

    /// Records the dispatch into an open pass.
    pub fn record(&self, pass: &mut wgpu::ComputePass<'_>) {
        self.dispatch.record(pass);
    }

    /// Records the dispatch in a new encoder and submits it.
    pub fn run(&self, gpu: &Gpu) -> Result<()> {
        self.dispatch.run(gpu, 1)
    }
}

/// `(diag(p) − p pᵀ)·u·inv_n` per row into a new tensor. The GPU twin of
/// [`crate::cpu::linalg::xent_hvp_rows`].
pub fn xent_hvp_rows(
    gpu: &Gpu,
    logits: &GpuTensor<f32>,
    u: &GpuTensor<f32>,
    inv_n: f32,
) -> Result<GpuTensor<f32>> {
    let r = GpuTensor::zeros(gpu, logits.shape())?;
    XentHvpRows::new(gpu, logits, u, &r, inv_n)?.run(gpu)?;
    Ok(r)
}

#[cfg(test)]
mod layout {
    use crate::kernels::mirror::check_mirror;

    #[test]
    fn params_mirrors_the_wgsl_struct() {
        check_mirror!(super::Params, &super::LINALG, "Params"; n, count, out_offset, a_offset, b_offset, a_stride, b_stride, inv_n);
    }
}
