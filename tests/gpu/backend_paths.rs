//! Which path the library takes on the backend and limits it finds, asserted
//! from what the adapter reports (CI runs this on Vulkan and on GL):
//!
//! - GL: device access serialised by the crate, no workgroup-memory zeroing;
//!   elsewhere neither;
//! - the timer uses timestamp queries exactly when the device has them, and
//!   measures real work either way;
//! - limits: under WebGPU's default limits every specialisation builds;
//!   under wgpu's downlevel defaults (4 storage buffers per stage, 16,352
//!   bytes of workgroup memory) the kernels that need more fail with a
//!   `TooLarge` error naming the limit, and the others still compute the
//!   right thing.
//!
//! Self-contained: each test builds the `Gpu` it needs.

use ndarray::{ArrayD, IxDyn};
use rand::{RngExt, SeedableRng, rngs::StdRng};
use wgpu_train::cpu::{self, Tolerance};
use wgpu_train::gpu::{Binding, GpuTimer, TimerKind};
use wgpu_train::kernels::Matmul;
use wgpu_train::kernels::shaders;
use wgpu_train::{Error, Gpu, GpuOptions, GpuTensor, MatmulKernel, MatmulOptions};

fn gpu_with(limits: Option<wgpu::Limits>) -> Gpu {
    Gpu::with_options(GpuOptions {
        limits,
        ..GpuOptions::default()
    })
    .unwrap_or_else(|e| panic!("GPU tests need an adapter: {e}"))
}

fn random(shape: &[usize], seed: u64) -> ArrayD<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    let n = shape.iter().product();
    let v = (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    ArrayD::from_shape_vec(IxDyn(shape), v).expect("shape matches")
}

/// `c = a·b` for a 33×70 by 70×65 product on `gpu`, checked against the twin.
fn check_matmul(gpu: &Gpu, kernel: MatmulKernel) {
    check_matmul_mnk(gpu, kernel, (33, 65, 70));
}

/// [`check_matmul`] at M×N×K (K and N multiples of 4: v6's vec4 loads).
fn check_matmul_mnk(gpu: &Gpu, kernel: MatmulKernel, (m, n, k): (usize, usize, usize)) {
    let (a, b) = (random(&[m, k], 1), random(&[k, n], 2));
    let expected = cpu::matmul(&a, &b, None, MatmulOptions::nn()).expect("cpu twin");
    let ga = GpuTensor::from_array(gpu, &a).expect("a");
    let gb = GpuTensor::from_array(gpu, &b).expect("b");
    let c = GpuTensor::<f32>::zeros(gpu, &[m, n]).expect("c");
    c.fill(gpu, f32::NAN).expect("poison");
    let mm = Matmul::new(gpu, &ga, &gb, None, &c, MatmulOptions::nn(), kernel).expect("matmul");
    if kernel == MatmulKernel::V6Vec4 {
        let v = mm.vec4_operands();
        assert_eq!((v.a, v.b), (k % 4 == 0, n % 4 == 0), "v6's vec4 operands");
    }
    mm.run(gpu, 1).expect("run");
    let actual = c.to_array(gpu).expect("read");
    cpu::assert_close(
        &format!("{kernel:?}"),
        &actual,
        &expected,
        Tolerance::new(1e-4, 1e-4),
    );
}

#[test]
fn gl_is_serialised_and_skips_workgroup_zeroing() {
    let gpu = gpu_with(None);
    let gl = gpu.summary().backend == wgpu::Backend::Gl;
    eprintln!("GPU: {} (GL: {gl})", gpu.summary());
    assert_eq!(gpu.serialises(), gl);
    assert_eq!(gpu.zero_initialises_workgroup_memory(), !gl);
    // Without zeroing, the kernels that use workgroup memory (v3's tiles)
    // must still be right: they write every element before reading it.
    for kernel in MatmulKernel::available(&gpu) {
        check_matmul(&gpu, kernel);
    }
    check_matmul_mnk(&gpu, MatmulKernel::V6Vec4, (33, 68, 72));
}

/// Trusted modules (issue 23): by default the kernels whose `Shader` is marked `trusted`
/// are built without wgpu's runtime checks and workgroup zeroing, the rest
/// with them; `runtime_checks: Some(true)` (`WGPU_TRAIN_CHECKED=1`) keeps
/// them everywhere. Both ways, every matmul version (v3, v4 and v6 tile
/// through workgroup memory) is right at shapes that leave edge tiles
/// partly empty, and the two give the same bits.
#[test]
fn runtime_checks_follow_the_option_and_both_ways_give_the_same_bits() {
    let with = |checked| {
        Gpu::with_options(GpuOptions {
            runtime_checks: Some(checked),
            ..GpuOptions::default()
        })
        .unwrap_or_else(|e| panic!("GPU tests need an adapter: {e}"))
    };
    let (checked, trusted) = (with(true), with(false));
    assert!(checked.runtime_checks() && !trusted.runtime_checks());
    let marked: Vec<_> = shaders::all().into_iter().filter(|s| s.trusted).collect();
    assert!(marked.len() >= 9, "{} shaders trusted", marked.len());
    for shader in marked {
        assert!(
            !checked.trusts(shader),
            "{} trusted under checks",
            shader.name
        );
        assert!(trusted.trusts(shader), "{} not trusted", shader.name);
    }
    let linalg = &wgpu_train::kernels::linalg::LINALG;
    assert!(!trusted.trusts(linalg), "linalg has no argument yet");
    assert!(trusted.checks_summary().contains("WGPU_TRAIN_CHECKED=1"));
    for (m, n, k) in [(33, 68, 72), (130, 12, 20), (1, 4, 8)] {
        let mut bits = Vec::new();
        for gpu in [&checked, &trusted] {
            let mut per = Vec::new();
            for kernel in MatmulKernel::available(gpu) {
                per.push(run_matmul(gpu, kernel, (m, n, k)));
            }
            bits.push(per);
        }
        let kernels = MatmulKernel::available(&trusted);
        for (kernel, (a, b)) in kernels.iter().zip(bits[0].iter().zip(&bits[1])) {
            let same = a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits());
            assert!(
                same,
                "{kernel:?} at {m}x{n}x{k}: checked and trusted differ"
            );
        }
    }
}

/// `a·b` at M×N×K on `gpu` with `kernel`, NaN-poisoned output, checked
/// against the twin; the result's values.
fn run_matmul(gpu: &Gpu, kernel: MatmulKernel, (m, n, k): (usize, usize, usize)) -> Vec<f32> {
    let (a, b) = (random(&[m, k], 3), random(&[k, n], 4));
    let expected = cpu::matmul(&a, &b, None, MatmulOptions::nn()).expect("cpu twin");
    let ga = GpuTensor::from_array(gpu, &a).expect("a");
    let gb = GpuTensor::from_array(gpu, &b).expect("b");
    let c = GpuTensor::<f32>::zeros(gpu, &[m, n]).expect("c");
    c.fill(gpu, f32::NAN).expect("poison");
    let mm = Matmul::new(gpu, &ga, &gb, None, &c, MatmulOptions::nn(), kernel).expect("matmul");
    mm.run(gpu, 1).expect("run");
    let actual = c.to_array(gpu).expect("read");
    cpu::assert_close(
        &format!("{kernel:?} {m}x{n}x{k} checks={}", gpu.runtime_checks()),
        &actual,
        &expected,
        Tolerance::new(1e-4, 1e-4),
    );
    actual.iter().copied().collect()
}

#[test]
fn timer_uses_timestamps_exactly_when_the_device_has_them() {
    let gpu = gpu_with(None);
    let has = gpu
        .device()
        .features()
        .contains(wgpu::Features::TIMESTAMP_QUERY);
    // The Gpu asks for timestamps whenever the adapter offers them.
    assert_eq!(
        has,
        gpu.adapter()
            .features()
            .contains(wgpu::Features::TIMESTAMP_QUERY)
    );
    let timer = GpuTimer::new(&gpu).expect("timer");
    let want = if has {
        TimerKind::Timestamp
    } else {
        TimerKind::WallClock
    };
    assert_eq!(timer.kind(), want, "{}", gpu.summary());
    let n = 128;
    let a = GpuTensor::from_array(&gpu, &random(&[n, n], 3)).expect("a");
    let b = GpuTensor::from_array(&gpu, &random(&[n, n], 4)).expect("b");
    let c = GpuTensor::<f32>::zeros(&gpu, &[n, n]).expect("c");
    let mm = Matmul::new(
        &gpu,
        &a,
        &b,
        None,
        &c,
        MatmulOptions::nn(),
        MatmulKernel::V1Naive,
    )
    .expect("matmul");
    let seconds = timer
        .time(&gpu, |pass| {
            for _ in 0..8 {
                mm.record(pass);
            }
        })
        .expect("timed pass");
    eprintln!(
        "{} timer: 8 dispatches of {n}³ in {seconds:.6} s",
        timer.kind().name()
    );
    // 33 MFLOP: more than a microsecond anywhere, less than a minute here.
    assert!(seconds > 1e-6 && seconds < 60.0, "{seconds}");
}

#[test]
fn webgpu_default_limits_build_every_specialisation() {
    let gpu = gpu_with(Some(wgpu::Limits::default()));
    let limits = gpu.limits();
    assert!(limits.check_limits(&wgpu::Limits::default()));
    assert!(limits.check_limits(&gpu.adapter().limits()));
    for key in shaders::specialisations() {
        // v7's 32 KiB tile needs more than WebGPU's default 16 KiB: on such
        // a device it is a clear TooLarge (the tuner then skips it).
        let bytes = key.shader.workgroup_memory(key.entry);
        if bytes > limits.max_compute_workgroup_storage_size {
            match gpu.pipeline(&key) {
                Err(Error::TooLarge { limit_name, .. }) => {
                    assert_eq!(limit_name, "max_compute_workgroup_storage_size")
                }
                Err(e) => panic!("{}: expected TooLarge, got {e}", key.entry),
                Ok(_) => panic!("{}: built with {bytes} bytes of tiles", key.entry),
            }
            continue;
        }
        // The weight tiles with the update bind 12 storage buffers: refused
        // as TooLarge where the device offers fewer (the engine then
        // records the update apart, tests/gpu/fused.rs).
        let storage = key.shader.storage_buffers();
        if storage > limits.max_storage_buffers_per_shader_stage {
            match gpu.pipeline(&key) {
                Err(Error::TooLarge { limit_name, .. }) => {
                    assert_eq!(limit_name, "max_storage_buffers_per_shader_stage")
                }
                Err(e) => panic!("{}: expected TooLarge, got {e}", key.shader.name),
                Ok(_) => panic!("{}: built with {storage} storage buffers", key.shader.name),
            }
            continue;
        }
        gpu.pipeline(&key).unwrap_or_else(|e| {
            panic!(
                "{}::{} {:?} under WebGPU's limits: {e}",
                key.shader.name, key.entry, key.constants
            )
        });
    }
    check_matmul(&gpu, MatmulKernel::V3Tiled);
    check_matmul_mnk(&gpu, MatmulKernel::V6Vec4, (33, 68, 72));
}

#[test]
fn downlevel_limits_give_a_clear_error_or_a_working_kernel() {
    let gpu = gpu_with(Some(wgpu::Limits::downlevel_defaults()));
    let max = gpu.limits().max_storage_buffers_per_shader_stage as usize;
    assert_eq!(max, 4);
    let mut refused = Vec::new();
    for shader in shaders::all() {
        let storage = shader
            .bindings
            .iter()
            .filter(|b| {
                matches!(
                    b,
                    Binding::StorageRead | Binding::StorageReadWrite | Binding::StorageSlot(_)
                )
            })
            .count();
        let key = shaders::specialisations()
            .into_iter()
            .find(|k| k.shader == shader)
            .expect("a specialisation per shader");
        match gpu.pipeline(&key) {
            Ok(_) => assert!(storage <= max, "{} built with {storage}", shader.name),
            Err(Error::TooLarge {
                limit_name, needed, ..
            }) => {
                assert!(storage > max, "{} refused with {storage}", shader.name);
                assert_eq!(limit_name, "max_storage_buffers_per_shader_stage");
                assert_eq!(needed, format!("{storage} storage buffers"));
                refused.push(shader.name);
            }
            Err(e) => panic!("{}: expected TooLarge, got {e}", shader.name),
        }
    }
    eprintln!("refused under downlevel limits: {refused:?}");
    // matmul binds four storage buffers: every version works but v4, whose
    // 16 KiB of tiles are past downlevel's 16,352 bytes of workgroup memory,
    // and v6, which binds A and B again as vec4s (six storage buffers).
    for kernel in MatmulKernel::ALL {
        let (limit, need) = match kernel {
            MatmulKernel::V4Tiled8x8 => (
                "max_compute_workgroup_storage_size",
                "16384 bytes of workgroup memory",
            ),
            // v7 shares v6's bindings, refused before its tiles are counted.
            MatmulKernel::V6Vec4 | MatmulKernel::V7(_) => {
                ("max_storage_buffers_per_shader_stage", "6 storage buffers")
            }
            _ => {
                check_matmul(&gpu, kernel);
                continue;
            }
        };
        let a = GpuTensor::<f32>::zeros(&gpu, &[8, 8]).expect("a");
        let c = GpuTensor::<f32>::zeros(&gpu, &[8, 8]).expect("c");
        match Matmul::new(&gpu, &a, &a, None, &c, MatmulOptions::nn(), kernel) {
            Err(Error::TooLarge {
                limit_name, needed, ..
            }) => {
                assert_eq!(limit_name, limit);
                assert_eq!(needed, need);
            }
            Err(e) => panic!("{kernel:?} under downlevel limits: expected TooLarge, got {e}"),
            Ok(_) => panic!("{kernel:?} built under downlevel limits: {need} needed"),
        }
    }
}
