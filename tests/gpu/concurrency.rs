//! One `Gpu` driven from several threads at once, on whatever backend the
//! suite runs on (CI: Vulkan and GL).
//!
//! The hazard, seen on wgpu's GL backend: one thread's submit holds the GL
//! context for a long time (llvmpipe compiles new pipelines and runs the
//! dispatches inside `queue.submit`), and another thread that creates,
//! maps or drops a buffer meanwhile gives up after 6 s with "Could not lock
//! adapter context", a panic, and then an abort. So one thread here makes
//! submits that last at least `long_submit` (doubling its work until one
//! does; 7 s on GL, 1 s elsewhere, where nothing times out), three workers
//! build launchers (new pipelines), upload, run, read back, time and drop,
//! checking every result against the CPU twin, and a dropper lets go of a
//! launcher and its tensors inside each long submit (dropping must never
//! wait for the device). Self-contained: it builds its own `Gpu`, and so
//! also drops one that other threads have used.

use ndarray::{ArrayD, IxDyn};
use rand::{RngExt, SeedableRng, rngs::StdRng};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use wgpu_train::cpu::{self, Tolerance};
use wgpu_train::gpu::GpuTimer;
use wgpu_train::kernels::Matmul;
use wgpu_train::{Gpu, GpuTensor, MatmulKernel, MatmulOptions};

/// On GL, longer than wgpu-hal's context timeout (6 s). The other backends
/// have no such timeout; there a shorter overlap keeps CI quick.
fn long_submit(gpu: &Gpu) -> Duration {
    if gpu.summary().backend == wgpu::Backend::Gl {
        Duration::from_secs(7)
    } else {
        Duration::from_secs(1)
    }
}
/// On a fast GPU the long submit stops growing here (≈ 2.2 TFLOP).
const MAX_REPEATS: usize = 1 << 16;
const WORKERS: usize = 3;

fn random(shape: &[usize], seed: u64) -> ArrayD<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    let n = shape.iter().product();
    let v = (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    ArrayD::from_shape_vec(IxDyn(shape), v).expect("shape matches")
}

fn tolerance(k: usize) -> Tolerance {
    Tolerance::new(1e-5 + 1e-6 * k as f32, 1e-4)
}

/// Sets the flag when dropped, so the workers stop even if the long thread
/// panics.
struct Done<'a>(&'a AtomicBool);
impl Drop for Done<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Repeats one product in one pass, doubling the repeats until a single
/// submit-and-wait lasts [`long_submit`]. Returns the longest one's window.
/// `in_submit` is set from just before each submit until its wait returns;
/// each submit first waits (a few seconds at most) for the dropper to be
/// `armed`, so that it drops something inside every long submit.
fn long_submits(
    gpu: &Gpu,
    done: &AtomicBool,
    armed: &AtomicBool,
    in_submit: &AtomicBool,
) -> (Instant, Instant, usize) {
    let _done = Done(done);
    let n = 256;
    let a = random(&[n, n], 1);
    let b = random(&[n, n], 2);
    let expected = cpu::matmul(&a, &b, None, MatmulOptions::nn()).expect("cpu twin");
    let ga = GpuTensor::from_array(gpu, &a).expect("upload a");
    let gb = GpuTensor::from_array(gpu, &b).expect("upload b");
    let c = GpuTensor::<f32>::zeros(gpu, &[n, n]).expect("c");
    let mm = Matmul::new(
        gpu,
        &ga,
        &gb,
        None,
        &c,
        MatmulOptions::nn(),
        MatmulKernel::V1Naive,
    )
    .expect("matmul");
    let mut repeats = 1;
    loop {
        c.fill(gpu, f32::NAN).expect("poison");
        let asked = Instant::now();
        while !armed.load(Ordering::SeqCst) && asked.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(5));
        }
        // Timed inside `exclusive` so that waiting for the workers to let go
        // of the device is not counted: on GL this window is how long the
        // submit holds the GL context.
        let (start, end) = gpu.exclusive(|| {
            let start = Instant::now();
            in_submit.store(true, Ordering::SeqCst);
            mm.run(gpu, repeats).expect("long submit");
            gpu.wait().expect("wait");
            in_submit.store(false, Ordering::SeqCst);
            (start, Instant::now())
        });
        let actual = c.to_array(gpu).expect("read");
        cpu::assert_close("the long product", &actual, &expected, tolerance(n));
        eprintln!(
            "long submit: {repeats} dispatches of {n}³ in {:.2} s",
            (end - start).as_secs_f64()
        );
        if end - start >= long_submit(gpu) || repeats >= MAX_REPEATS {
            return (start, end, repeats);
        }
        repeats *= 2;
    }
}

/// Small products of varying shapes, options and versions (so new pipelines
/// are built while the long submit runs), each checked, plus a timed pass.
/// Returns when each iteration started and ended.
fn worker(gpu: &Gpu, id: u64, done: &AtomicBool) -> Vec<(Instant, Instant)> {
    let mut rng = StdRng::seed_from_u64(0xc0c0 + id);
    let timer = GpuTimer::new(gpu).expect("timer");
    let mut iterations = Vec::new();
    let mut i = 0u64;
    while !done.load(Ordering::SeqCst) {
        let start = Instant::now();
        let (m, k, n) = (
            rng.random_range(1..70),
            rng.random_range(1..90),
            rng.random_range(1..70),
        );
        let opts = [
            MatmulOptions::nn(),
            MatmulOptions::nt(),
            MatmulOptions::tn(),
            MatmulOptions::tt(),
        ][rng.random_range(0..4)];
        let kernel = MatmulKernel::ALL[rng.random_range(0..3)];
        let sa = if opts.trans_a { [k, m] } else { [m, k] };
        let sb = if opts.trans_b { [n, k] } else { [k, n] };
        let seed = id * 1_000_003 + i * 2;
        let (a, b) = (random(&sa, seed), random(&sb, seed + 1));
        let expected = cpu::matmul(&a, &b, None, opts).expect("cpu twin");
        let ga = GpuTensor::from_array(gpu, &a).expect("upload a");
        let gb = GpuTensor::from_array(gpu, &b).expect("upload b");
        let c = GpuTensor::<f32>::zeros(gpu, &[m, n]).expect("c");
        c.fill(gpu, f32::NAN).expect("poison");
        let mm = Matmul::new(gpu, &ga, &gb, None, &c, opts, kernel).expect("matmul");
        if i % 4 == 3 {
            let seconds = timer.time(gpu, |pass| mm.record(pass)).expect("timed");
            assert!(seconds.is_finite() && seconds >= 0.0, "{seconds}");
        } else {
            mm.run(gpu, 1).expect("run");
        }
        let actual = c.to_array(gpu).expect("read");
        cpu::assert_close(
            &format!("worker {id}, {m}×{k}×{n} {opts:?} {kernel:?}"),
            &actual,
            &expected,
            tolerance(k),
        );
        iterations.push((start, Instant::now()));
        i += 1;
    }
    iterations
}

/// Builds launchers and tensors while the device is free, then drops them
/// one at a time while another thread's long submit holds it: a drop must
/// never wait for the device (on GL it would wait for the GL context and
/// give up after 6 s). Returns how many drops landed inside a long submit.
fn dropper(gpu: &Gpu, done: &AtomicBool, armed: &AtomicBool, in_submit: &AtomicBool) -> usize {
    let mut during = 0;
    while !done.load(Ordering::SeqCst) {
        let a = GpuTensor::from_array(gpu, &random(&[9, 7], 5)).expect("a");
        let b = GpuTensor::from_array(gpu, &random(&[7, 5], 6)).expect("b");
        let c = GpuTensor::<f32>::zeros(gpu, &[9, 5]).expect("c");
        let mm = Matmul::new(
            gpu,
            &a,
            &b,
            None,
            &c,
            MatmulOptions::nn(),
            MatmulKernel::V1Naive,
        )
        .expect("matmul");
        mm.run(gpu, 1).expect("run");
        // Waiting retires the submission, so the drops below destroy the
        // buffers at once rather than leaving it to wgpu's next poll.
        c.read(gpu).expect("read");
        armed.store(true, Ordering::SeqCst);
        while !in_submit.load(Ordering::SeqCst) && !done.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(5));
        }
        // Let the submit get going, then drop everything (buffers, uniform,
        // bind group) without a device call of our own.
        std::thread::sleep(Duration::from_millis(100));
        let inside = in_submit.load(Ordering::SeqCst);
        drop((mm, a, b, c));
        armed.store(false, Ordering::SeqCst);
        if inside && in_submit.load(Ordering::SeqCst) {
            during += 1;
        }
        while in_submit.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    during
}

#[test]
fn one_gpu_from_several_threads() {
    let gpu = Gpu::new().unwrap_or_else(|e| panic!("GPU tests need an adapter: {e}"));
    eprintln!("GPU: {}", gpu.summary());
    // Detected from the adapter: GL is serialised by the crate, the rest not.
    assert_eq!(
        gpu.serialises(),
        gpu.summary().backend == wgpu::Backend::Gl,
        "{}",
        gpu.summary()
    );
    let done = AtomicBool::new(false);
    let in_submit = AtomicBool::new(false);
    let armed = AtomicBool::new(false);
    let iterations = Mutex::new(Vec::new());
    let (start, end, repeats, drops) = std::thread::scope(|s| {
        let workers: Vec<_> = (0..WORKERS as u64)
            .map(|id| {
                let (gpu, done, iterations) = (&gpu, &done, &iterations);
                s.spawn(move || {
                    let mine = worker(gpu, id, done);
                    iterations.lock().unwrap().push((id, mine));
                })
            })
            .collect();
        let dropper = s.spawn(|| dropper(&gpu, &done, &armed, &in_submit));
        let (start, end, repeats) = long_submits(&gpu, &done, &armed, &in_submit);
        for w in workers {
            if let Err(p) = w.join() {
                std::panic::resume_unwind(p);
            }
        }
        let drops = dropper
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        (start, end, repeats, drops)
    });
    let iterations = iterations.into_inner().unwrap();
    assert_eq!(iterations.len(), WORKERS);
    for (id, s) in &iterations {
        assert!(!s.is_empty(), "worker {id} never finished an iteration");
    }
    let seconds = (end - start).as_secs_f64();
    if end - start >= long_submit(&gpu) {
        // The hazard was exercised: the longest submit outlasted GL's context
        // timeout while workers were mid-iteration (each makes a dozen device
        // calls, so they called in during it) and objects were dropped.
        assert!(drops > 0, "no drop landed inside a long submit");
        let during = iterations
            .iter()
            .flat_map(|(_, s)| s)
            .filter(|&&(a, b)| a < end && b > start)
            .count();
        assert!(
            during > 0,
            "no worker iteration overlapped the {seconds:.1} s submit"
        );
        eprintln!(
            "{during} worker iterations overlapped the {seconds:.1} s submit; \
             {drops} drops landed inside long submits"
        );
    } else {
        eprintln!("fast adapter: {repeats} dispatches took only {seconds:.2} s");
    }
    // Dropped here, after threads used it: its graveyard is emptied under the lock.
    drop(gpu);
}
