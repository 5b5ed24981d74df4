//! Launcher for `shaders/descent.wgsl`: gradient descent with centred
//! differences from many starts in one dispatch (one thread per start, all
//! steps), on the course's two functions: (x − 1)² and
//! x⁴ + y⁴ − 2(x − y)² (notebook 003). The many-starts counterpart of the
//! sweeps: a batch of independent optimisations as one GPU job. CPU twin:
//! [`crate::cpu::descent::descent`].

use super::{Dispatch, Operand, check_operands, check_shape, fold, uniform};
use crate::error::{Error, Result};
use crate::gpu::{Binding, Gpu, GpuTensor, PipelineKey, Shader};

// The shader file of this kernel family and its bind-group layout
// (binding i of group 0 is `bindings[i]`).
pub static DESCENT: Shader = Shader {
    name: "descent",
    source: include_str!("../../shaders/descent.wgsl"),
    bindings: &[
        Binding::Uniform,          // params
        Binding::StorageRead,      // start
        Binding::StorageReadWrite, // path
    ],
    workgroup_memory: &[],
    trusted: false,
};

const PER_GROUP: usize = 64;

/// The function descended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Surface {
    /// f(x) = (x − 1)², one variable.
    Parabola,
    /// f(x, y) = x⁴ + y⁴ − 2(x − y)², two variables, minima −8 at
    /// ±(√2, −√2); x is stepped first, then y from the new x.
    Quartic,
}

impl Surface {
    /// Variables per point.
    pub fn dims(self) -> usize {
        match self {
            Surface::Parabola => 1,
            Surface::Quartic => 2,
        }
    }

    fn entry(self) -> &'static str {
        match self {
            Surface::Parabola => "descent_1d",
            Surface::Quartic => "descent_2d",
        }
    }
}

/// The uniform block of `descent.wgsl` (16 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    starts: u32,
    steps: u32,
    gamma: f32,
    h: f32,
}

fn key(surface: Surface) -> PipelineKey {
    PipelineKey {
        shader: &DESCENT,
        entry: surface.entry(),
        constants: vec![],
    }
}

/// Every pipeline this launcher can build (validated by `tests/cpu/shaders.rs`).
pub fn specialisations() -> Vec<PipelineKey> {
    vec![key(Surface::Parabola), key(Surface::Quartic)]
}

/// Checks the scalars of a descent: finite positive γ and h, at least one
/// step, and a path that fits in u32 indices.
pub fn check_descent(
    surface: Surface,
    starts: usize,
    steps: usize,
    gamma: f32,
    h: f32,
) -> Result<usize> {
    let bad = |msg: String| Error::InvalidArgument {
        name: "descent",
        msg,
    };
    if !(gamma.is_finite() && gamma > 0.0 && h.is_finite() && h > 0.0) {
        return Err(bad(format!(
            "gamma and h must be positive and finite, got {gamma} and {h}"
        )));
    }
    if starts == 0 || steps == 0 {
        return Err(bad(format!(
            "need at least one start and one step, got {starts} and {steps}"
        )));
    }
    let len = steps
        .checked_add(1)
        .and_then(|s| s.checked_mul(starts))
        .and_then(|s| s.checked_mul(surface.dims()))
        .filter(|&n| n <= u32::MAX as usize)
        .ok_or_else(|| {
            bad(format!(
                "{starts} starts × {steps} steps is too long a path"
            ))
        })?;
    Ok(len)
}

/// One many-starts descent, ready to record.
pub struct Descent {
    dispatch: Dispatch,
}

impl Descent {
    /// Prepares the descent of `surface` from each start in `start`
    /// (`[starts, dims]`) for `steps` steps of size `gamma`, centred
    /// differences of step `h`, into `path` (`[starts, steps + 1, dims]`).
    pub fn new(
        gpu: &Gpu,
        surface: Surface,
        start: &GpuTensor<f32>,
        path: &GpuTensor<f32>,
        steps: usize,
        gamma: f32,
        h: f32,
    ) -> Result<Self> {
        const OP: &str = "descent";
        let dims = surface.dims();
        let starts = start.shape().first().copied().unwrap_or(0);
        check_shape(OP, "start", start, &[starts, dims])?;
        check_descent(surface, starts, steps, gamma, h)?;
        check_shape(OP, "path", path, &[starts, steps + 1, dims])?;
        if start.offset() != 0 || path.offset() != 0 {
            return Err(Error::InvalidArgument {
                name: "descent",
                msg: "start and path must be whole buffers, not views".to_string(),
            });
        }
        check_operands(
            gpu,
            OP,
            &[Operand::of("start", start)],
            &[Operand::of("path", path)],
        )?;
        let workgroups = fold(gpu, OP, starts.div_ceil(PER_GROUP) as u64)?;
        let params = Params {
            starts: starts as u32,
            steps: steps as u32,
            gamma,
            h,
        };
        let pipeline = gpu.pipeline(&key(surface))?;
        let uniform = uniform(gpu, "descent params", &params)?;
        let bind_group = gpu.bind_group(&pipeline, &[&uniform, start.buffer(), path.buffer()])?;
        Ok(Descent {
            dispatch: Dispatch::new(OP, pipeline, bind_group, workgroups),
        })
    }

    /// Records the dispatch into an open compute pass.
    pub fn record(&self, pass: &mut wgpu::ComputePass<'_>) {
        self.dispatch.record(pass);
    }

    /// Records the dispatch and submits it.
    pub fn run(&self, gpu: &Gpu) -> Result<()> {
        self.dispatch.run(gpu, 1)
    }
}

/// Every start's path, `[starts, steps + 1, dims]` flattened: one upload,
/// one dispatch, one readback. The GPU twin of
/// [`crate::cpu::descent::descent`]. Native only (it waits for the
/// readback); in a browser, record a [`Descent`] and read the path with
/// `read_async`.
#[cfg(not(target_arch = "wasm32"))]
pub fn descent(
    gpu: &Gpu,
    surface: Surface,
    starts: &[f32],
    steps: usize,
    gamma: f32,
    h: f32,
) -> Result<Vec<f32>> {
    let dims = surface.dims();
    if starts.is_empty() || !starts.len().is_multiple_of(dims) {
        return Err(Error::InvalidArgument {
            name: "descent",
            msg: format!(
                "{} start values are not a whole number of {dims}-D points",
                starts.len()
            ),
        });
    }
    let n = starts.len() / dims;
    check_descent(surface, n, steps, gamma, h)?;
    let start = GpuTensor::from_slice(gpu, &[n, dims], starts)?;
    let path = GpuTensor::<f32>::zeros(gpu, &[n, steps + 1, dims])?;
    Descent::new(gpu, surface, &start, &path, steps, gamma, h)?.run(gpu)?;
    path.read(gpu)
}

#[cfg(test)]
mod layout {
    use crate::kernels::mirror::check_mirror;

    #[test]
    fn params_mirrors_the_wgsl_struct() {
        check_mirror!(super::Params, &super::DESCENT, "Params"; starts, steps, gamma, h);
    }
}
