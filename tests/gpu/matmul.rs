//! Every matmul version against the CPU twin, on fresh random inputs with the
//! output poisoned with NaN before each dispatch. Test names say the case:
//! the product (nn/nt/tn/tt), M×N×K, and what is awkward about it.

mod batched;
mod epilogue;

use crate::common::{gpu, random, random_scaled};
use ndarray::{ArrayD, Ix1};
use proptest::prelude::*;
use wgpu_train::cpu::{self, Tolerance};
use wgpu_train::kernels::{Matmul, V7Tile};
use wgpu_train::{Activation, GpuTensor, MatmulKernel, MatmulOptions, MatmulShape};

#[derive(Clone, Copy, Debug)]
struct Case {
    /// None: A unbatched (2-D); Some(b): A is [b, ., .].
    a_batch: Option<usize>,
    b_batch: Option<usize>,
    m: usize,
    n: usize,
    k: usize,
    opts: MatmulOptions,
    bias: bool,
    /// Scale of A's entries, to push pre-activations to ±1e3.
    a_scale: f32,
}

fn case(m: usize, n: usize, k: usize, opts: MatmulOptions) -> Case {
    Case {
        a_batch: None,
        b_batch: None,
        m,
        n,
        k,
        opts,
        bias: false,
        a_scale: 1.0,
    }
}

impl Case {
    fn bias(self) -> Self {
        Case { bias: true, ..self }
    }
    fn act(self, activation: Activation) -> Self {
        Case {
            opts: self.opts.with_activation(activation),
            ..self
        }
    }
    fn batched(self, a: Option<usize>, b: Option<usize>) -> Self {
        Case {
            a_batch: a,
            b_batch: b,
            ..self
        }
    }
    fn scale_a(self, a_scale: f32) -> Self {
        Case { a_scale, ..self }
    }

    fn stored(&self) -> (Vec<usize>, Vec<usize>) {
        let mut a = if self.opts.trans_a {
            vec![self.k, self.m]
        } else {
            vec![self.m, self.k]
        };
        let mut b = if self.opts.trans_b {
            vec![self.n, self.k]
        } else {
            vec![self.k, self.n]
        };
        if let Some(bt) = self.a_batch {
            a.insert(0, bt);
        }
        if let Some(bt) = self.b_batch {
            b.insert(0, bt);
        }
        (a, b)
    }

    fn inputs(&self, seed: u64) -> (ArrayD<f32>, ArrayD<f32>, Option<ArrayD<f32>>) {
        let (sa, sb) = self.stored();
        let a = random_scaled(&sa, seed, self.a_scale);
        let b = random(&sb, seed + 1);
        let bias = self.bias.then(|| random(&[self.n], seed + 2));
        (a, b, bias)
    }
}

/// Rounding grows with K; an indexing bug is off by O(1), far outside this.
fn tolerance(k: usize) -> Tolerance {
    Tolerance::new(1e-5 + 1e-6 * k as f32, 1e-4)
}

/// Where `g` cannot hold `kernel`'s tiles (v7's 32 KiB candidate under
/// WebGPU's default limits), the launcher must refuse it with a `TooLarge`
/// error naming the limit; true then, and the caller checks nothing more.
pub(crate) fn refused_here(g: &wgpu_train::Gpu, kernel: MatmulKernel) -> bool {
    if kernel.fits(g) {
        return false;
    }
    let a = GpuTensor::<f32>::zeros(g, &[8, 8]).unwrap();
    let c = GpuTensor::<f32>::zeros(g, &[8, 8]).unwrap();
    match Matmul::new(g, &a, &a, None, &c, MatmulOptions::nn(), kernel) {
        Err(wgpu_train::Error::TooLarge { limit_name, .. }) => {
            assert_eq!(limit_name, "max_compute_workgroup_storage_size")
        }
        Err(e) => panic!("{kernel:?}: expected TooLarge, got {e}"),
        Ok(_) => panic!("{kernel:?} built past the device's workgroup memory"),
    }
    eprintln!(
        "{}: refused on {} (tiles past its workgroup memory)",
        kernel.name(),
        g.summary()
    );
    true
}

fn check(c: Case, kernel: MatmulKernel) {
    let g = gpu();
    if refused_here(g, kernel) {
        return;
    }
    let (a, b, bias) = c.inputs(0x5eed + (c.m * 131 + c.n * 31 + c.k) as u64);
    let bias1 = bias
        .as_ref()
        .map(|v| v.view().into_dimensionality::<Ix1>().unwrap());
    let expected = cpu::matmul(&a, &b, bias1, c.opts).expect("cpu twin");

    let ga = GpuTensor::from_array(g, &a).unwrap();
    let gb = GpuTensor::from_array(g, &b).unwrap();
    let gbias = bias.as_ref().map(|v| GpuTensor::from_array(g, v).unwrap());
    let out = GpuTensor::<f32>::zeros(g, expected.shape()).unwrap();
    out.fill(g, f32::NAN).unwrap();
    let mm = Matmul::new(g, &ga, &gb, gbias.as_ref(), &out, c.opts, kernel).unwrap();
    mm.run(g, 1).unwrap();
    let actual = out.to_array(g).unwrap();
    cpu::assert_close(
        &format!("{c:?} with {:?}", mm.kernel()),
        &actual,
        &expected,
        tolerance(c.k),
    );
}

macro_rules! matmul_cases {
    ($($name:ident: $case:expr;)*) => {
        mod v1_naive { use super::*; $(#[test] fn $name() { check($case, MatmulKernel::V1Naive) })* }
        mod v2_blocked { use super::*; $(#[test] fn $name() { check($case, MatmulKernel::V2Blocked) })* }
        mod v3_tiled { use super::*; $(#[test] fn $name() { check($case, MatmulKernel::V3Tiled) })* }
        mod v4_tiled_8x8 { use super::*; $(#[test] fn $name() { check($case, MatmulKernel::V4Tiled8x8) })* }
        mod v5_split_k { use super::*; $(#[test] fn $name() { check($case, MatmulKernel::V5SplitK) })* }
        mod v6_vec4 { use super::*; $(#[test] fn $name() { check($case, MatmulKernel::V6Vec4) })* }
        mod v7_128x128_8x8_k16 { use super::*; $(#[test] fn $name() { check($case, MatmulKernel::V7(V7Tile::T128_K16)) })* }
        mod v7_128x128_8x8_k8 { use super::*; $(#[test] fn $name() { check($case, MatmulKernel::V7(V7Tile::T128_K8)) })* }
        mod v7_64x64_4x4_k16 { use super::*; $(#[test] fn $name() { check($case, MatmulKernel::V7(V7Tile::T64_K16)) })* }
        mod auto { use super::*; $(#[test] fn $name() { check($case, MatmulKernel::Auto) })* }
    };
}

use MatmulOptions as O;
matmul_cases! {
    nn_1x1x1: case(1, 1, 1, O::nn());
    nt_1x1x1_bias_sigmoid: case(1, 1, 1, O::nt()).bias().act(Activation::Sigmoid);
    nn_7x7x7: case(7, 7, 7, O::nn());
    nt_7x7x7: case(7, 7, 7, O::nt());
    tn_7x7x7: case(7, 7, 7, O::tn());
    tt_7x7x7: case(7, 7, 7, O::tt());
    nn_65x33x17_not_dividing_tiles: case(65, 33, 17, O::nn());
    nt_33x65x70_not_dividing_tiles: case(33, 65, 70, O::nt());
    tn_67x129x5_not_dividing_tiles: case(67, 129, 5, O::tn());
    tt_130x3x66_not_dividing_tiles: case(130, 3, 66, O::tt());
    nn_k_only_1_wide_100x100x1: case(100, 100, 1, O::nn());
    mlp_layer1_forward_nt_128x128x784_bias_sigmoid: case(128, 128, 784, O::nt()).bias().act(Activation::Sigmoid);
    mlp_layer2_forward_nt_128x128x128_bias_relu: case(128, 128, 128, O::nt()).bias().act(Activation::Relu);
    mlp_layer3_forward_nt_128x10x128_bias: case(128, 10, 128, O::nt()).bias();
    mlp_layer3_input_grad_nn_128x128x10: case(128, 128, 10, O::nn());
    mlp_layer1_weight_grad_tn_128x784x128: case(128, 784, 128, O::tn());
    mlp_layer3_weight_grad_tn_10x128x128: case(10, 128, 128, O::tn());
    linear_forward_nt_256x10x3073_k_3073: case(256, 10, 3073, O::nt());
    linear_weight_grad_tn_10x3073x256: case(10, 3073, 256, O::tn());
    batch1_row_vector_nt_1x128x784: case(1, 128, 784, O::nt()).bias();
    batched_nn_3x20x30x40: case(20, 30, 40, O::nn()).batched(Some(3), Some(3));
    batched_tn_2x9x11x13_both_transposed_inputs: case(9, 11, 13, O::tt()).batched(Some(2), Some(2)).bias();
    batched_nt_4x33x10x17_shared_weights: case(33, 10, 17, O::nt()).batched(Some(4), None).bias();
    batched_nn_3x5x70x6_shared_left: case(5, 70, 6, O::nn()).batched(None, Some(3));
    sigmoid_at_inputs_of_pm_1e3: case(37, 29, 7, O::nt()).scale_a(1e3).bias().act(Activation::Sigmoid);
    relu_at_inputs_of_pm_1e3: case(37, 29, 7, O::nn()).scale_a(1e3).act(Activation::Relu);
    nn_257x255x129_square_ish: case(257, 255, 129, O::nn());
    mnist_linear_forward_nt_128x10x784_k_784: case(128, 10, 784, O::nt()).bias();
    linear_forward_batch1_nt_1x10x3073: case(1, 10, 3073, O::nt()).bias();
    batched_tn_3x7x10x3073_split_over_batches: case(7, 10, 3073, O::tn()).batched(Some(3), Some(3)).bias().act(Activation::Sigmoid);
    // v6 reads an operand as vec4s when its contiguous dimension is a
    // multiple of 4 (A: K, or M when transposed; B: N, or K when transposed):
    // these mix vec4 and scalar operands at edges that do not divide tiles.
    nn_132x67x36_only_a_vec4: case(132, 67, 36, O::nn()).bias();
    nn_130x132x10_only_b_vec4: case(130, 132, 10, O::nn()).act(Activation::Relu);
    nt_130x66x12_both_vec4_k_not_a_stage_multiple: case(130, 66, 12, O::nt()).bias().act(Activation::Sigmoid);
    tn_68x129x5_only_a_vec4_k_5: case(68, 129, 5, O::tn());
    tn_66x132x9_only_b_vec4: case(66, 132, 9, O::tn()).bias();
    tt_68x33x20_both_vec4: case(68, 33, 20, O::tt());
    tt_67x3x20_only_b_vec4: case(67, 3, 20, O::tt());
    nt_4x4x4_one_vec4_each: case(4, 4, 4, O::nt()).bias();
    nn_1x4x4_one_row: case(1, 4, 4, O::nn());
    batched_tn_2x12x16x8_vec4_batches: case(12, 16, 8, O::tn()).batched(Some(2), Some(2)).bias();
    batched_nn_3x9x8x12_shared_right_vec4: case(9, 8, 12, O::nn()).batched(Some(3), None);
}

/// Operands as windows into larger buffers at odd element offsets, as the
/// flat parameter buffer will hold them.
#[test]
fn views_at_odd_offsets_nt_bias_relu() {
    let g = gpu();
    let (m, n, k) = (19, 23, 29);
    let opts = O::nt().with_activation(Activation::Relu);
    let a = random(&[m, k], 1);
    let w = random(&[n, k], 2);
    let bias = random(&[n], 3);
    let expected = cpu::matmul(
        &a,
        &w,
        Some(bias.view().into_dimensionality::<Ix1>().unwrap()),
        opts,
    )
    .unwrap();
    // One flat buffer: [3 junk][w][5 junk][bias][junk]
    let mut flat = random(&[3 + n * k + 5 + n + 2], 4)
        .into_raw_vec_and_offset()
        .0;
    flat[3..3 + n * k].copy_from_slice(w.as_slice().unwrap());
    flat[3 + n * k + 5..3 + n * k + 5 + n].copy_from_slice(bias.as_slice().unwrap());
    let params = GpuTensor::from_slice(g, &[flat.len()], &flat).unwrap();
    let gw = params.view(3, &[n, k]).unwrap();
    let gbias = params.view(3 + n * k + 5, &[n]).unwrap();
    let ga = GpuTensor::from_array(g, &a).unwrap();
    let out_flat = GpuTensor::<f32>::zeros(g, &[7 + m * n]).unwrap();
    out_flat.fill(g, f32::NAN).unwrap();
    let out = out_flat.view(7, &[m, n]).unwrap();
    for kernel in MatmulKernel::available(g) {
        out.fill(g, f32::NAN).unwrap();
        Matmul::new(g, &ga, &gw, Some(&gbias), &out, opts, kernel)
            .unwrap()
            .run(g, 1)
            .unwrap();
        cpu::assert_close(
            kernel.name(),
            &out.to_array(g).unwrap(),
            &expected,
            tolerance(k),
        );
    }
    // The 7 elements before the view stay untouched (still NaN).
    let head = out_flat.read(g).unwrap();
    assert!(
        head[..7].iter().all(|x| x.is_nan()),
        "matmul wrote outside its view"
    );
}

/// v6 reads an operand as vec4s exactly when its layout allows it, and is
/// right either way: windows into buffers at aligned (16-byte) and odd
/// offsets, one ending a float before its buffer does (a buffer whose size
/// is not a multiple of 16 bytes: the vec4 binding drops that tail).
#[test]
fn v6_reads_vec4s_where_the_layout_allows_and_scalars_elsewhere() {
    let g = gpu();
    let (m, n, k) = (44, 20, 36);
    for (a_off, b_off, opts) in [
        (4, 8, O::nt()),
        (3, 8, O::nt()),
        (4, 5, O::nt()),
        (1, 2, O::nt()),
        (0, 4, O::nn()),
        (4, 0, O::tn()),
        (8, 4, O::tt()),
    ] {
        let case = case(m, n, k, opts);
        let (sa, sb) = case.stored();
        let (a, b, _) = case.inputs(0x7ec4 + a_off as u64 * 16 + b_off as u64);
        let expected = cpu::matmul(&a, &b, None, opts).unwrap();
        // Each operand at its offset in a buffer with one more float after it.
        let window = |x: &ArrayD<f32>, off: usize, shape: &[usize]| {
            let mut flat = vec![f32::NAN; off + x.len() + 1];
            flat[off..off + x.len()].copy_from_slice(x.as_slice().unwrap());
            let t = GpuTensor::from_slice(g, &[flat.len()], &flat).unwrap();
            (t.view(off, shape).unwrap(), t)
        };
        let (ga, _keep_a) = window(&a, a_off, &sa);
        let (gb, _keep_b) = window(&b, b_off, &sb);
        let out = GpuTensor::<f32>::zeros(g, expected.shape()).unwrap();
        out.fill(g, f32::NAN).unwrap();
        let mm = Matmul::new(g, &ga, &gb, None, &out, opts, MatmulKernel::V6Vec4).unwrap();
        let shape = mm.shape();
        let by_shape = wgpu_train::kernels::Vec4Operands::by_shape(&shape, &opts);
        assert!(
            by_shape.a && by_shape.b,
            "{opts:?}: K, M and N are multiples of 4"
        );
        let v = mm.vec4_operands();
        let what = format!("{opts:?} A at {a_off}, B at {b_off}");
        assert_eq!((v.a, v.b), (a_off % 4 == 0, b_off % 4 == 0), "{what}");
        mm.run(g, 1).unwrap();
        cpu::assert_close(&what, &out.to_array(g).unwrap(), &expected, tolerance(k));
    }
    // Only the contiguous dimension counts: K = 36 but N = 35 (nn reads B
    // along N), M = 35 (tn reads A along M).
    for (opts, want) in [(O::nn(), (true, false)), (O::tn(), (false, false))] {
        let shape = MatmulShape::resolve(
            &if opts.trans_a { [36, 35] } else { [35, 36] },
            &[36, 35],
            None,
            &opts,
        )
        .unwrap();
        let v = wgpu_train::kernels::Vec4Operands::by_shape(&shape, &opts);
        assert_eq!((v.a, v.b), want, "{opts:?}");
        assert_eq!(
            MatmulKernel::V6Vec4.worth_timing(&shape, &opts),
            want.0 || want.1,
            "the tuner times v6 only where an operand is read as vec4s"
        );
    }
}

/// Running the same product twice gives the same bits.
#[test]
fn repeated_runs_give_identical_bits() {
    let g = gpu();
    let a = GpuTensor::from_array(g, &random(&[64, 300], 9)).unwrap();
    let b = GpuTensor::from_array(g, &random(&[300, 50], 10)).unwrap();
    for kernel in MatmulKernel::available(g) {
        let x = wgpu_train::kernels::matmul_with(g, &a, &b, None, O::nn(), kernel).unwrap();
        let y = wgpu_train::kernels::matmul_with(g, &a, &b, None, O::nn(), kernel).unwrap();
        let (x, y) = (x.read(g).unwrap(), y.read(g).unwrap());
        assert!(
            x.iter().zip(&y).all(|(p, q)| p.to_bits() == q.to_bits()),
            "{kernel:?} is not deterministic"
        );
    }
}

/// Split-K really splits at the skinny model shapes, every chunk reaches C
/// (its scratch starts poisoned with NaN), and the result differs from the
/// single running sum only by rounding: a different association, not a
/// different product.
#[test]
fn split_k_splits_the_long_k_and_differs_from_v1_only_by_rounding() {
    let g = gpu();
    for (m, n, k) in [(256, 10, 3073), (128, 10, 784), (33, 65, 70)] {
        let shape = MatmulShape::resolve(&[m, k], &[n, k], None, &O::nt()).unwrap();
        let split = wgpu_train::kernels::matmul::SplitK::for_shape(&shape, n);
        assert!(split.splits >= 2, "{m}x{n}x{k}: {split:?}");
        assert!(MatmulKernel::V5SplitK.worth_timing(&shape, &O::nt()));
        let a = GpuTensor::from_array(g, &random(&[m, k], 21)).unwrap();
        let b = GpuTensor::from_array(g, &random(&[n, k], 22)).unwrap();
        let v1 = wgpu_train::kernels::matmul_with(g, &a, &b, None, O::nt(), MatmulKernel::V1Naive)
            .unwrap()
            .to_array(g)
            .unwrap();
        let c = GpuTensor::<f32>::zeros(g, &[m, n]).unwrap();
        c.fill(g, f32::NAN).unwrap();
        let mm = Matmul::new(g, &a, &b, None, &c, O::nt(), MatmulKernel::V5SplitK).unwrap();
        assert_eq!(mm.dispatches(), 2);
        mm.run(g, 1).unwrap();
        cpu::assert_close("v5 against v1", &c.to_array(g).unwrap(), &v1, tolerance(k));
    }
    let short = MatmulShape::resolve(&[7, 7], &[7, 7], None, &O::nt()).unwrap();
    assert!(
        !MatmulKernel::V5SplitK.worth_timing(&short, &O::nt()),
        "K = 7 is one chunk: the tuner skips v5"
    );
}

#[test]
fn auto_choice_is_v2_on_software_adapters() {
    let g = gpu();
    let shape = MatmulShape::resolve(&[512, 512], &[512, 512], None, &O::nn()).unwrap();
    let chosen = MatmulKernel::choose(g, &shape);
    if g.is_software() {
        assert_eq!(chosen, MatmulKernel::V2Blocked);
    } else {
        assert_eq!(chosen, MatmulKernel::V3Tiled);
    }
}

fn activation_strategy() -> impl Strategy<Value = Activation> {
    prop_oneof![
        Just(Activation::Identity),
        Just(Activation::Sigmoid),
        Just(Activation::Relu)
    ]
}

proptest! {
    #![proptest_config(crate::common::proptest_config(32))]
    #[test]
    fn matches_cpu_for_any_shape(
        batch in 1usize..=3,
        m in 1usize..=70,
        n in 1usize..=70,
        k in 1usize..=70,
        trans_a: bool,
        trans_b: bool,
        bias: bool,
        b_batched: bool,
        activation in activation_strategy(),
        version in 0usize..MatmulKernel::ALL.len(),
    ) {
        let opts = MatmulOptions { trans_a, trans_b, activation };
        let c = Case {
            a_batch: Some(batch),
            b_batch: b_batched.then_some(batch),
            m, n, k, opts, bias, a_scale: 1.0,
        };
        check(c, MatmulKernel::ALL[version]);
    }
}
