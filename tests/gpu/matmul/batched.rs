//! A sweep's products: K products in one dispatch, each on its own windows
//! (or a shared one, stride 0), must give the CPU twin's values and the bits
//! of the same product dispatched alone.

use super::*;
use wgpu_train::kernels::BatchStrides;

/// [`check_with`] for the automatic choice and every version (v5 splits K
/// by one product's shape, as alone).
fn check(m: usize, n: usize, k: usize, count: usize, opts: MatmulOptions, shared_a: bool) {
    for kernel in std::iter::once(MatmulKernel::Auto).chain(MatmulKernel::available(gpu())) {
        check_with(m, n, k, count, opts, shared_a, kernel);
    }
}

fn check_with(
    m: usize,
    n: usize,
    k: usize,
    count: usize,
    opts: MatmulOptions,
    shared_a: bool,
    kernel: MatmulKernel,
) {
    let g = gpu();
    let a_shape = if opts.trans_a { [k, m] } else { [m, k] };
    let b_shape = if opts.trans_b { [n, k] } else { [k, n] };
    let (la, lb) = (m * k, n * k);
    // Model i's B and bias sit in one "parameter" buffer, `per` apart
    // with a gap, as in a [K, P] buffer; C likewise in a gradient buffer.
    let per = lb + n + 3;
    let a_all = random(&[count * la], 11);
    let p_all = random(&[count * per], 12);
    let (sa, sc) = (if shared_a { 0 } else { la }, m * n + 5);
    let ga = GpuTensor::from_slice(g, &[count * la], a_all.as_slice().unwrap()).unwrap();
    let gp = GpuTensor::from_slice(g, &[count * per], p_all.as_slice().unwrap()).unwrap();
    let gc = GpuTensor::<f32>::zeros(g, &[count * sc]).unwrap();
    gc.fill(g, f32::NAN).unwrap();
    let a0 = ga.view(0, &a_shape).unwrap();
    let b0 = gp.view(0, &b_shape).unwrap();
    let bias0 = gp.view(lb, &[n]).unwrap();
    let c0 = gc.view(0, &[m, n]).unwrap();
    let strides = BatchStrides {
        a: sa,
        b: per,
        bias: per,
        c: sc,
    };
    let mm = Matmul::batched(g, &a0, &b0, Some(&bias0), &c0, opts, kernel, count, strides).unwrap();
    mm.run(g, 1).unwrap();
    let all = gc.read(g).unwrap();
    for i in 0..count {
        let a = ga.view(i * sa, &a_shape).unwrap();
        let b = gp.view(i * per, &b_shape).unwrap();
        let bias = gp.view(i * per + lb, &[n]).unwrap();
        let got = &all[i * sc..i * sc + m * n];
        assert!(
            all[i * sc + m * n..(i + 1) * sc].iter().all(|v| v.is_nan()),
            "product {i} wrote past its window"
        );
        let (ah, bh, biash) = (
            a.to_array(g).unwrap(),
            b.to_array(g).unwrap(),
            bias.to_array(g).unwrap(),
        );
        let bias1 = biash.view().into_dimensionality::<Ix1>().unwrap();
        let expected = cpu::matmul(&ah, &bh, Some(bias1), opts).unwrap();
        let got_arr = ArrayD::from_shape_vec(vec![m, n], got.to_vec()).unwrap();
        cpu::assert_close(
            &format!("batched product {i} of {count} ({m}×{n}×{k}, {opts:?}, {kernel:?})"),
            &got_arr,
            &expected,
            tolerance(k),
        );
        // Alone, the same product gives the same bits.
        let alone = GpuTensor::<f32>::zeros(g, &[m, n]).unwrap();
        alone.fill(g, f32::NAN).unwrap();
        Matmul::new(g, &a, &b, Some(&bias), &alone, opts, kernel)
            .unwrap()
            .run(g, 1)
            .unwrap();
        let alone = alone.read(g).unwrap();
        assert!(
            alone
                .iter()
                .zip(got)
                .all(|(x, y)| x.to_bits() == y.to_bits()),
            "batched product {i} ({kernel:?}) differs from the same product alone"
        );
    }
}

#[test]
fn nt_sigmoid_shared_input_like_a_first_layer() {
    check(
        7,
        13,
        33,
        5,
        O::nt().with_activation(Activation::Sigmoid),
        true,
    );
}

#[test]
fn nt_sigmoid_784_inputs_128_outputs_like_the_mlp() {
    check(
        5,
        128,
        784,
        3,
        O::nt().with_activation(Activation::Sigmoid),
        true,
    );
}

#[test]
fn nt_relu_per_model_input() {
    check(
        9,
        10,
        17,
        3,
        O::nt().with_activation(Activation::Relu),
        false,
    );
}

#[test]
fn nn_and_tn_one_model_and_many() {
    check(1, 7, 5, 1, O::nn(), false);
    check(6, 7, 5, 4, O::tn(), false);
}

#[test]
fn overlapping_outputs_are_refused() {
    let g = gpu();
    let a = GpuTensor::<f32>::zeros(g, &[4, 3]).unwrap();
    let b = GpuTensor::<f32>::zeros(g, &[2, 3]).unwrap();
    let c = GpuTensor::<f32>::zeros(g, &[16]).unwrap();
    let strides = BatchStrides {
        a: 0,
        b: 0,
        bias: 0,
        c: 4,
    };
    let c0 = c.view(0, &[4, 2]).unwrap();
    let err = Matmul::batched(
        g,
        &a,
        &b,
        None,
        &c0,
        O::nt(),
        MatmulKernel::Auto,
        2,
        strides,
    );
    assert!(
        err.is_err_and(|e| e.to_string().contains("overlap")),
        "windows 4 apart of an 8-element output"
    );
    let strides = BatchStrides { c: 8, ..strides };
    let err = Matmul::batched(
        g,
        &a,
        &b,
        None,
        &c0,
        O::nt(),
        MatmulKernel::Auto,
        3,
        strides,
    );
    assert!(
        err.is_err_and(|e| e.to_string().contains("do not fit")),
        "a third window past the buffer's end"
    );
}
