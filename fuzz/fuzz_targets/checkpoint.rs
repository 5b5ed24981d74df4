//! Every input goes to the checkpoint reader (`checkpoint::parse`: what
//! `--load` reads) and, when it parses, through the checks a resume makes
//! (`train::Resume::from_checkpoint`) for a small MLP with two optimizers'
//! state layouts. The reader may return `Err`; it must never panic, abort on
//! allocation, or return an `Ok` whose tensors disagree with their shapes;
//! what parses must save and parse back bit for bit; and what a resume
//! accepts must have the model's size and finite values.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wgpu_train::Activation;
use wgpu_train::checkpoint::{self, TensorData};
use wgpu_train::model::{Mlp, parameter_count};
use wgpu_train::optim::OptimizerConfig;
use wgpu_train::train::{Resume, TrainConfig};

fn bits(t: &TensorData) -> Vec<u32> {
    match t {
        TensorData::F32(v) => v.iter().map(|x| x.to_bits()).collect(),
        TensorData::U32(v) => v.clone(),
    }
}

fuzz_target!(|bytes: &[u8]| {
    let Ok(ck) = checkpoint::parse(bytes) else {
        return;
    };
    for t in &ck.tensors {
        let numel = t.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        assert_eq!(numel, Some(t.data.len()), "tensor '{}'", t.name);
        match &t.data {
            TensorData::F32(_) => assert!(ck.f32(&t.name, &t.shape).is_ok()),
            TensorData::U32(_) => assert!(ck.u32(&t.name, &t.shape).is_ok()),
        }
    }
    for k in ck.metadata.keys() {
        assert!(ck.meta(k).is_ok());
    }
    if let Ok(again) = checkpoint::to_bytes(&ck) {
        let back = checkpoint::parse(&again).expect("what was saved parses");
        assert_eq!(back.metadata, ck.metadata);
        assert_eq!(back.tensors.len(), ck.tensors.len());
        for (a, b) in back.tensors.iter().zip(&ck.tensors) {
            assert_eq!((&a.name, &a.shape), (&b.name, &b.shape));
            assert_eq!(bits(&a.data), bits(&b.data), "tensor '{}'", a.name);
        }
    }
    let Ok(model) = Mlp::new(&[4, 3, 2], Activation::Relu) else {
        return;
    };
    for optimizer in [
        OptimizerConfig::sgd(0.1),
        OptimizerConfig::preset("adam", 1e-3).expect("a preset"),
    ] {
        let config = TrainConfig {
            optimizer,
            ..TrainConfig::default()
        };
        if let Ok(r) = Resume::from_checkpoint(&ck, &model, &config) {
            assert_eq!(r.state.params.len(), parameter_count(&model));
            assert!(r.state.params.iter().all(|v| v.is_finite()));
            for s in &r.state.optimizer_state {
                assert_eq!(s.len(), r.state.params.len());
                assert!(s.iter().all(|v| v.is_finite()));
            }
            let _ = r.first_epoch(config.epochs);
        }
    }
});
