//! A sweep's reductions: K models' column sums (into windows of a [K, P]
//! gradient buffer) and loss/accuracy totals in one dispatch, each equal to
//! the CPU twin and to the unbatched dispatch bit for bit.

use super::*;
use wgpu_train::Activation;

pub(super) fn check_column_sums(n: usize, c: usize, count: usize, kernel: ColumnSumKernel) {
    let g = gpu();
    let per = c + 4; // a model's gradient window, with room between
    let dh = random(&[count * n, c], 21);
    let h = random(&[count * n, c], 22).mapv(|v| 0.5 + 0.4 * v);
    let gdh = GpuTensor::from_array(g, &dh).unwrap();
    let gh = GpuTensor::from_array(g, &h).unwrap();
    let dz = GpuTensor::<f32>::zeros(g, &[count * n * c]).unwrap();
    let sums = GpuTensor::<f32>::zeros(g, &[count * per]).unwrap();
    for activation in [None, Some(Activation::Sigmoid)] {
        dz.fill(g, f32::NAN).unwrap();
        sums.fill(g, f32::NAN).unwrap();
        let s0 = sums.view(1, &[c]).unwrap();
        let launch = match activation {
            None => ColumnSum::batched(g, &gdh.view(0, &[n, c]).unwrap(), &s0, kernel, count, per),
            Some(a) => ColumnSum::with_activation_batched(
                g,
                &gdh.view(0, &[n, c]).unwrap(),
                &gh.view(0, &[n, c]).unwrap(),
                &dz.view(0, &[n, c]).unwrap(),
                &s0,
                a,
                kernel,
                count,
                per,
            ),
        };
        launch.unwrap().run(g, 1).unwrap();
        let all = sums.read(g).unwrap();
        let all_dz = dz.read(g).unwrap();
        for i in 0..count {
            let what = format!("model {i} of {count}, {n}×{c}, {kernel:?}, {activation:?}");
            let mine = dh.slice(ndarray::s![i * n..(i + 1) * n, ..]).to_owned();
            let hm = h.slice(ndarray::s![i * n..(i + 1) * n, ..]).to_owned();
            let (want_dz, want) = match activation {
                None => (None, cpu::column_sum(&mine).unwrap()),
                Some(a) => {
                    let (z, s) = cpu::activation_bias_backward(&mine, &hm, a).unwrap();
                    (Some(z), s)
                }
            };
            let got = &all[i * per + 1..i * per + 1 + c];
            let got_arr = ndarray::Array1::from_vec(got.to_vec());
            cpu::assert_close(&what, &got_arr, &want, sum_tolerance(n));
            assert!(all[i * per].is_nan(), "{what} wrote before its window");
            if let Some(z) = want_dz {
                let got = ndarray::Array2::from_shape_vec(
                    (n, c),
                    all_dz[i * n * c..(i + 1) * n * c].to_vec(),
                )
                .unwrap();
                cpu::assert_close(&what, &got, &z, Tolerance::new(1e-6, 1e-5));
            }
            // Alone: the same bits.
            let alone = GpuTensor::<f32>::zeros(g, &[c]).unwrap();
            let x = gdh.view(i * n * c, &[n, c]).unwrap();
            match activation {
                None => ColumnSum::new(g, &x, &alone, kernel),
                Some(a) => ColumnSum::with_activation(
                    g,
                    &x,
                    &gh.view(i * n * c, &[n, c]).unwrap(),
                    &GpuTensor::<f32>::zeros(g, &[n, c]).unwrap(),
                    &alone,
                    a,
                    kernel,
                ),
            }
            .unwrap()
            .run(g, 1)
            .unwrap();
            let alone = alone.read(g).unwrap();
            assert!(
                alone
                    .iter()
                    .zip(got)
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "{what}: differs from the model alone"
            );
        }
    }
}

#[test]
fn column_sums_v1_three_models() {
    check_column_sums(7, 10, 3, ColumnSumKernel::V1Serial);
}

#[test]
fn column_sums_v2_two_models_of_odd_columns() {
    check_column_sums(129, 17, 2, ColumnSumKernel::V2Tree);
}

#[test]
fn column_sums_one_model() {
    check_column_sums(1, 1, 1, ColumnSumKernel::Auto);
}

#[test]
fn loss_correct_totals_per_model() {
    let g = gpu();
    let (n, count) = (300, 4);
    let loss = random(&[count * n], 31).mapv(f32::abs);
    let flags: Vec<u32> = random_labels(count * n, 2, 32);
    let gl = GpuTensor::from_slice(g, &[count * n], loss.as_slice().unwrap()).unwrap();
    let gf = GpuTensor::from_slice(g, &[count * n], &flags).unwrap();
    let total = GpuTensor::<f32>::zeros(g, &[count]).unwrap();
    let correct = GpuTensor::<u32>::zeros(g, &[count]).unwrap();
    total.fill(g, f32::NAN).unwrap();
    correct.fill(g, u32::MAX).unwrap();
    let sum = LossCorrectSum::batched(
        g,
        &gl.view(0, &[n]).unwrap(),
        &gf.view(0, &[n]).unwrap(),
        &total.view(0, &[1]).unwrap(),
        &correct.view(0, &[1]).unwrap(),
        false,
        count,
    )
    .unwrap();
    sum.run(g, 1).unwrap();
    let (t, c) = (total.read(g).unwrap(), correct.read(g).unwrap());
    for i in 0..count {
        let l = &loss.as_slice().unwrap()[i * n..(i + 1) * n];
        let (want_t, want_c) = cpu::loss_correct_sum(l, &flags[i * n..(i + 1) * n]).unwrap();
        let what = format!("model {i} of {count}");
        cpu::assert_close(
            &what,
            &ndarray::arr1(&[t[i]]),
            &ndarray::arr1(&[want_t]),
            sum_tolerance(n),
        );
        assert_eq!(c[i], want_c, "{what}'s count");
        let (alone_t, alone_c) = loss_correct_sum(
            g,
            &gl.view(i * n, &[n]).unwrap(),
            &gf.view(i * n, &[n]).unwrap(),
        )
        .unwrap();
        assert_eq!(
            alone_t.read(g).unwrap()[0].to_bits(),
            t[i].to_bits(),
            "{what}"
        );
        assert_eq!(alone_c.read(g).unwrap()[0], c[i], "{what}");
    }
}
