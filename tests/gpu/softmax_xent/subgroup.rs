//! v4, the subgroup softmax-CE, where the device has subgroups: the CPU twin
//! at awkward shapes with poisoned outputs, ±1e4 logits, ties, a sweep's
//! batches, and the same bits run after run. On a device without subgroups
//! (the GL and WebGPU-limits passes) the same tests check that v4 is not
//! offered and is refused with an error; `tests/gpu/reduce/subgroup.rs`
//! checks that on every pass with a device made without the feature.

use super::*;

const V4: SoftmaxXentKernel = SoftmaxXentKernel::V4Subgroup;

/// True where v4 can run. Where it cannot, checks that it is neither offered
/// nor built (a clear error), so no pass skips silently.
fn has_subgroups() -> bool {
    let g = gpu();
    if g.subgroup_sizes().is_some() {
        assert!(SoftmaxXentKernel::available(g).contains(&V4));
        return true;
    }
    assert!(!SoftmaxXentKernel::available(g).contains(&V4));
    let logits = GpuTensor::from_slice(g, &[1, 3], &[0.0, 1.0, 2.0]).unwrap();
    let labels = GpuLabels::new(g, &[1u32], 3).unwrap();
    let err = softmax_xent_with(g, &logits, &labels, true, V4).unwrap_err();
    assert!(
        matches!(err, Error::InvalidArgument { .. }) && err.to_string().contains("subgroups"),
        "{err}"
    );
    eprintln!(
        "{}: no subgroups; checked that v4 is refused",
        g.summary().name
    );
    false
}

/// Rows of 1, 3, 7, 10, 1000 and 3073 columns (fewer than a quad's 4
/// lanes, not a multiple of 4, the MLP's 10, long), batches of 1, 7, 16
/// (one workgroup of rows), 17 and 129 (a workgroup plus one row).
#[test]
fn v4_matches_the_cpu_twin_at_awkward_shapes() {
    if !has_subgroups() {
        return;
    }
    for n in [1, 7, 16, 17, 129] {
        for c in [1, 3, 7, 10, 1000, 3073] {
            let seed = (n * 10_000 + c) as u64;
            let logits = random_scaled(&[n, c], seed, 3.0);
            let labels = random_labels(n, c, seed + 1);
            check_against_cpu(&logits, &labels, V4, &format!("{n}×{c}"));
        }
    }
}

#[test]
fn v4_extreme_logits_stay_finite_and_ties_go_to_the_lowest_index() {
    if !has_subgroups() {
        return;
    }
    check_extreme(V4);
    check_all_equal(V4);
    // Ties between two maxima: in one lane of the quad (columns 6 and 70,
    // both lane 2), and in different lanes, either way round (3 and 8: lanes
    // 3 and 0; 9 and 6: lanes 1 and 2), so the butterfly's tie rule decides.
    let g = gpu();
    for (a, b) in [(6, 70), (3, 8), (9, 6)] {
        let c = 100;
        let mut logits = random_scaled(&[2, c], 5, 1.0);
        for r in 0..2 {
            logits[[r, a]] = 9.0;
            logits[[r, b]] = 9.0;
        }
        let labels = vec![a.min(b) as u32, a.max(b) as u32];
        check_against_cpu(&logits, &labels, V4, &format!("tie at {a} and {b}"));
        let out = softmax_xent_with(
            g,
            &GpuTensor::from_array(g, &logits).unwrap(),
            &GpuLabels::new(g, &labels, c).unwrap(),
            false,
            V4,
        )
        .unwrap();
        assert_eq!(out.correct.read(g).unwrap(), vec![1, 0], "tie {a}, {b}");
    }
}

#[test]
fn v4_batched_models_match_the_twin_and_the_model_alone() {
    if !has_subgroups() {
        return;
    }
    batched::check(17, 10, 3, V4, true);
    batched::check(5, 70, 2, V4, false);
}

/// Two runs, same bits: the quad's butterfly fixes the order.
#[test]
fn v4_repeated_runs_give_identical_bits() {
    if !has_subgroups() {
        return;
    }
    let g = gpu();
    for (n, c) in [(129, 1000), (128, 10), (3, 3073)] {
        let logits = GpuTensor::from_array(g, &random_scaled(&[n, c], 11, 5.0)).unwrap();
        let labels = GpuLabels::new(g, &random_labels(n, c, 12), c).unwrap();
        let bits = |t: &GpuTensor<f32>| -> Vec<u32> {
            t.read(g).unwrap().iter().map(|x| x.to_bits()).collect()
        };
        let a = softmax_xent_with(g, &logits, &labels, true, V4).unwrap();
        let b = softmax_xent_with(g, &logits, &labels, true, V4).unwrap();
        assert_eq!(bits(&a.loss), bits(&b.loss), "{n}×{c} loss");
        assert_eq!(
            bits(a.dlogits.as_ref().unwrap()),
            bits(b.dlogits.as_ref().unwrap()),
            "{n}×{c} dlogits"
        );
    }
}
