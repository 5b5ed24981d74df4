//! Bad input gets a clear `Err`, never a panic: mismatched shapes, buffers
//! past the device's limits, wgpu validation errors, no adapter.

use crate::common::{gpu, random};
use wgpu_train::kernels::{Matmul, matmul};
use wgpu_train::{Error, Gpu, GpuOptions, GpuTensor, MatmulKernel, MatmulOptions};

fn t(shape: &[usize]) -> GpuTensor<f32> {
    GpuTensor::from_array(gpu(), &random(shape, 7)).unwrap()
}

fn shape_error(r: wgpu_train::Result<impl std::fmt::Debug>, needle: &str) {
    match r {
        Err(Error::Shape { msg, .. }) => {
            assert!(msg.contains(needle), "message {msg:?} lacks {needle:?}")
        }
        other => panic!("expected a shape error mentioning {needle:?}, got {other:?}"),
    }
}

#[test]
fn inner_dimensions_that_differ_are_an_error() {
    let g = gpu();
    shape_error(
        matmul(g, &t(&[4, 5]), &t(&[6, 3]), None, MatmulOptions::nn()),
        "inner dimensions",
    );
    shape_error(
        matmul(g, &t(&[4, 5]), &t(&[3, 6]), None, MatmulOptions::nt()),
        "inner dimensions",
    );
    shape_error(
        matmul(g, &t(&[4, 5]), &t(&[4, 6]), None, MatmulOptions::nn()),
        "inner dimensions",
    );
}

#[test]
fn differing_batch_sizes_are_an_error() {
    shape_error(
        matmul(
            gpu(),
            &t(&[2, 4, 5]),
            &t(&[3, 5, 6]),
            None,
            MatmulOptions::nn(),
        ),
        "batch sizes differ",
    );
}

#[test]
fn rank_other_than_2_or_3_is_an_error() {
    shape_error(
        matmul(gpu(), &t(&[20]), &t(&[20, 1]), None, MatmulOptions::nn()),
        "2-D or 3-D",
    );
    shape_error(
        matmul(
            gpu(),
            &t(&[1, 1, 4, 5]),
            &t(&[5, 1]),
            None,
            MatmulOptions::nn(),
        ),
        "2-D or 3-D",
    );
}

#[test]
fn bias_of_the_wrong_length_is_an_error() {
    shape_error(
        matmul(
            gpu(),
            &t(&[4, 5]),
            &t(&[5, 6]),
            Some(&t(&[5])),
            MatmulOptions::nn(),
        ),
        "bias must have shape [6]",
    );
}

#[test]
fn output_of_the_wrong_shape_is_an_error() {
    let g = gpu();
    let r = Matmul::new(
        g,
        &t(&[4, 5]),
        &t(&[5, 6]),
        None,
        &t(&[6, 4]),
        MatmulOptions::nn(),
        MatmulKernel::Auto,
    );
    shape_error(r.map(|_| ()), "output C must have shape [4, 6]");
}

#[test]
fn output_aliasing_an_input_is_an_error() {
    let g = gpu();
    let a = t(&[4, 4]);
    let r = Matmul::new(
        g,
        &a,
        &t(&[4, 4]),
        None,
        &a,
        MatmulOptions::nn(),
        MatmulKernel::Auto,
    );
    shape_error(r.map(|_| ()), "shares a buffer");
}

#[test]
fn empty_shapes_and_bad_views_are_errors() {
    let g = gpu();
    assert!(matches!(
        GpuTensor::<f32>::zeros(g, &[3, 0]),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        GpuTensor::from_slice(g, &[2, 2], &[1.0f32; 3]),
        Err(Error::Shape { .. })
    ));
    let x = t(&[10]);
    assert!(matches!(x.view(8, &[3]), Err(Error::Shape { .. })));
    assert!(matches!(x.view(usize::MAX, &[3]), Err(Error::Shape { .. })));
    assert!(matches!(x.reshape(&[3, 3]), Err(Error::Shape { .. })));
}

#[test]
fn tensor_larger_than_the_device_allows_is_an_error() {
    let g = gpu();
    let too_many = (g.limits().max_buffer_size / 4 + 1) as usize;
    match GpuTensor::<f32>::zeros(g, &[too_many]) {
        Err(Error::TooLarge { limit_name, .. }) => {
            assert!(limit_name == "max_buffer_size" || limit_name == "u32 element index")
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    // A shape whose element count overflows usize.
    assert!(matches!(
        GpuTensor::<f32>::zeros(g, &[usize::MAX, 2]),
        Err(Error::Shape { .. })
    ));
}

#[test]
fn binding_larger_than_the_storage_limit_is_an_error() {
    // A device whose storage bindings stop at 1 MiB, and a 2 MiB operand.
    let small = Gpu::with_options(GpuOptions {
        max_storage_buffer_binding_size: Some(1 << 20),
        ..GpuOptions::default()
    })
    .unwrap();
    let a = GpuTensor::<f32>::zeros(&small, &[512, 1024]).unwrap();
    let b = GpuTensor::<f32>::zeros(&small, &[1024, 2]).unwrap();
    match matmul(&small, &a, &b, None, MatmulOptions::nn()) {
        Err(e @ Error::TooLarge { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("max_storage_buffer_binding_size"), "{msg}");
            assert!(msg.contains("operand A"), "{msg}");
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
}

#[test]
fn dispatch_past_the_workgroup_limit_is_an_error() {
    let g = gpu();
    let batch = g.limits().max_compute_workgroups_per_dimension as usize + 1;
    let a = GpuTensor::<f32>::zeros(g, &[batch, 1, 1]).unwrap();
    let b = GpuTensor::<f32>::zeros(g, &[batch, 1, 1]).unwrap();
    match matmul(g, &a, &b, None, MatmulOptions::nn()) {
        Err(Error::TooLarge { limit_name, .. }) => {
            assert_eq!(limit_name, "max_compute_workgroups_per_dimension")
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
}

#[test]
fn wgpu_validation_errors_become_results() {
    let g = gpu();
    let r = g.scoped("an oversized raw buffer", || {
        g.device().create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size: g.limits().max_buffer_size + 4,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        })
    });
    match r {
        Err(e @ Error::GpuValidation { .. }) => {
            assert!(e.to_string().contains("an oversized raw buffer"), "{e}")
        }
        other => panic!("expected a validation error, got {other:?}"),
    }
    // The device is still usable afterwards.
    let y = matmul(g, &t(&[2, 3]), &t(&[3, 2]), None, MatmulOptions::nn()).unwrap();
    assert!(y.read(g).unwrap().iter().all(|x| x.is_finite()));
}

#[test]
fn missing_adapter_error_says_how_to_install_one() {
    // No backend searched: no adapter at all, so the driver advice is what
    // helps.
    let r = Gpu::with_options(GpuOptions {
        backends: Some(wgpu::Backends::empty()),
        ..GpuOptions::default()
    });
    match r {
        Err(e @ Error::NoAdapter(_)) => {
            let msg = e.to_string();
            assert!(msg.contains("mesa-vulkan-drivers"), "{msg}");
            assert!(msg.contains("backends searched: none"), "{msg}");
        }
        other => panic!("expected NoAdapter, got {other:?}"),
    }
}

#[test]
fn adapter_name_that_matches_nothing_lists_the_adapters_not_driver_advice() {
    let r = Gpu::with_options(GpuOptions {
        adapter_name: Some("no-such-adapter-anywhere".into()),
        ..GpuOptions::default()
    });
    match r {
        Err(e @ Error::NoAdapter(_)) => {
            // Adapters exist, so the message lists them instead of telling
            // the user to install a driver (issue 12).
            let msg = e.to_string();
            assert!(msg.contains("no-such-adapter-anywhere"), "{msg}");
            assert!(
                msg.contains(&format!("{:?}", gpu().summary().name)),
                "{msg}"
            );
            assert!(!msg.contains("mesa-vulkan-drivers"), "{msg}");
        }
        other => panic!("expected NoAdapter, got {other:?}"),
    }
}

#[test]
fn adapter_is_reported() {
    let s = gpu().summary();
    eprintln!("adapter: {s}");
    assert!(!s.name.is_empty());
}
