//! A sweep's softmax: K models' logits in one dispatch against one set of
//! labels; each model's rows give the CPU twin's values and the bits of an
//! unbatched dispatch.

use super::*;

pub(super) fn check(n: usize, c: usize, count: usize, kernel: SoftmaxXentKernel, with_grad: bool) {
    let g = gpu();
    let logits = random_scaled(&[count * n, c], (n * c + count) as u64, 4.0);
    let labels = random_labels(n, c, 5);
    let gl = GpuTensor::from_array(g, &logits).unwrap();
    let glabels = GpuLabels::new(g, &labels, c).unwrap();
    let loss = GpuTensor::<f32>::zeros(g, &[count * n]).unwrap();
    let correct = GpuTensor::<u32>::zeros(g, &[count * n]).unwrap();
    let dlogits = GpuTensor::<f32>::zeros(g, &[count * n, c]).unwrap();
    loss.fill(g, f32::NAN).unwrap();
    correct.fill(g, u32::MAX).unwrap();
    dlogits.fill(g, f32::NAN).unwrap();
    let d0 = dlogits.view(0, &[n, c]).unwrap();
    SoftmaxXent::batched(
        g,
        &gl.view(0, &[n, c]).unwrap(),
        &glabels,
        &loss.view(0, &[n]).unwrap(),
        &correct.view(0, &[n]).unwrap(),
        with_grad.then_some(&d0),
        kernel,
        count,
    )
    .unwrap()
    .run(g, 1)
    .unwrap();
    let (all_loss, all_correct, all_d) = (
        loss.read(g).unwrap(),
        correct.read(g).unwrap(),
        dlogits.read(g).unwrap(),
    );
    for i in 0..count {
        let what = format!("model {i} of {count}, {n}×{c}, {kernel:?}, grad {with_grad}");
        let mine = logits.slice(ndarray::s![i * n..(i + 1) * n, ..]).to_owned();
        let expected = cpu::softmax_xent(&mine, &labels).unwrap();
        let got = ArrayD::from_shape_vec(vec![n], all_loss[i * n..(i + 1) * n].to_vec());
        cpu::assert_close(&what, &got.unwrap(), &expected.loss, loss_tolerance());
        assert_eq!(
            &all_correct[i * n..(i + 1) * n],
            expected.correct.as_slice().unwrap(),
            "{what}"
        );
        let d = &all_d[i * n * c..(i + 1) * n * c];
        if with_grad {
            let got = ArrayD::from_shape_vec(vec![n, c], d.to_vec()).unwrap();
            let want = expected.dlogits.unwrap();
            cpu::assert_close(&what, &got, &want, dlogits_tolerance(n));
        } else {
            assert!(d.iter().all(|x| x.is_nan()), "{what} wrote dlogits");
        }
        // The same model alone: the same bits.
        let alone = softmax_xent_with(
            g,
            &gl.view(i * n * c, &[n, c]).unwrap(),
            &glabels,
            with_grad,
            kernel,
        )
        .unwrap();
        let alone_loss = alone.loss.read(g).unwrap();
        assert!(
            alone_loss
                .iter()
                .zip(&all_loss[i * n..(i + 1) * n])
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "{what}: differs from the model alone"
        );
    }
}

#[test]
fn v1_rows_three_models_with_grad() {
    check(7, 10, 3, SoftmaxXentKernel::V1Row, true);
}

#[test]
fn v1_rows_one_model_eval() {
    check(65, 10, 1, SoftmaxXentKernel::V1Row, false);
}

#[test]
fn v2_workgroups_four_models() {
    check(5, 70, 4, SoftmaxXentKernel::V2Workgroup, true);
    check(3, 7, 2, SoftmaxXentKernel::V2Workgroup, false);
}
