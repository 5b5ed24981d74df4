//! Checkpoints: safetensors round trips, atomic writes, corrupt files and the
//! checked accessors' messages.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use wgpu_train::Error;
use wgpu_train::checkpoint::{self, Checkpoint, NamedTensor, TensorData};

/// A fresh, empty directory per test under cargo's scratch space.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("checkpoint")
        .join(name);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn sample() -> Checkpoint {
    let mut ckpt = Checkpoint::new();
    let w: Vec<f32> = (0..12).map(|i| i as f32 * 0.25 - 1.0).collect();
    ckpt.push(NamedTensor::f32("fc1.weight", &[3, 4], w))
        .push(NamedTensor::f32(
            "fc1.bias",
            &[3],
            vec![0.5, -0.0, f32::MIN_POSITIVE],
        ))
        .push(NamedTensor::u32("adam.step", &[1], vec![469]))
        .push(NamedTensor::f32("empty", &[0, 5], vec![]));
    ckpt.metadata.insert("epoch".into(), "3".into());
    ckpt.metadata
        .insert("optimizer".into(), "adam lr=0.001".into());
    ckpt
}

fn message(err: Error) -> String {
    assert!(matches!(err, Error::Checkpoint { .. }), "{err:?}");
    err.to_string()
}

#[test]
fn round_trip_keeps_f32_u32_bits_shapes_and_metadata() {
    let dir = scratch("round_trip");
    let path = dir.join("run.safetensors");
    let ckpt = sample();
    checkpoint::save(&path, &ckpt).unwrap();
    let back = checkpoint::load(&path).unwrap();

    assert_eq!(back.source(), Some(path.as_path()));
    assert_eq!(back.metadata, ckpt.metadata);
    assert_eq!(back.tensors.len(), ckpt.tensors.len());
    for t in &ckpt.tensors {
        assert_eq!(back.get(&t.name), Some(t), "{}", t.name);
    }
    // Sorted by name on load.
    let names: Vec<&str> = back.tensors.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["adam.step", "empty", "fc1.bias", "fc1.weight"]);

    let bias = back.f32("fc1.bias", &[3]).unwrap();
    assert_eq!(bias[1].to_bits(), (-0.0f32).to_bits());
    assert_eq!(back.u32("adam.step", &[1]).unwrap(), &[469]);
    assert_eq!(back.meta("epoch").unwrap(), "3");
    assert_eq!(entries(&dir), ["run.safetensors"]);
}

#[test]
fn file_is_plain_safetensors_with_metadata_in_the_header() {
    let dir = scratch("format");
    let path = dir.join("run.safetensors");
    checkpoint::save(&path, &sample()).unwrap();
    let bytes = fs::read(&path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    assert_eq!(header["__metadata__"]["epoch"], "3");
    assert_eq!(header["fc1.weight"]["dtype"], "F32");
    assert_eq!(header["fc1.weight"]["shape"], serde_json::json!([3, 4]));
    assert_eq!(header["adam.step"]["dtype"], "U32");
}

#[test]
fn empty_checkpoint_round_trips() {
    let dir = scratch("empty");
    let path = dir.join("e.safetensors");
    checkpoint::save(&path, &Checkpoint::new()).unwrap();
    let back = checkpoint::load(&path).unwrap();
    assert!(back.tensors.is_empty() && back.metadata.is_empty());
}

#[test]
fn save_over_an_existing_file_replaces_it_whole() {
    let dir = scratch("overwrite");
    let path = dir.join("run.safetensors");
    checkpoint::save(&path, &sample()).unwrap();
    let mut second = Checkpoint::new();
    second.push(NamedTensor::u32("only", &[2], vec![7, 8]));
    checkpoint::save(&path, &second).unwrap();

    let back = checkpoint::load(&path).unwrap();
    assert_eq!(back.tensors, second.tensors);
    assert!(back.metadata.is_empty());
    assert_eq!(entries(&dir), ["run.safetensors"]);
}

#[test]
fn failing_save_onto_a_directory_leaves_no_temp_file() {
    let dir = scratch("onto_dir");
    let target = dir.join("taken.safetensors");
    fs::create_dir(&target).unwrap();
    fs::write(target.join("inside"), b"keep").unwrap();

    let msg = message(checkpoint::save(&target, &sample()).unwrap_err());
    assert!(msg.contains("taken.safetensors"), "{msg}");
    assert!(msg.contains("cannot write"), "{msg}");
    // The rename failed after the temporary file was written: it is gone.
    assert_eq!(entries(&dir), ["taken.safetensors"]);
    assert_eq!(entries(&target), ["inside"]);
}

#[test]
fn failing_save_keeps_the_previous_checkpoint() {
    let dir = scratch("keep_old");
    let path = dir.join("run.safetensors");
    checkpoint::save(&path, &sample()).unwrap();
    let before = fs::read(&path).unwrap();

    // Invalid content is refused before anything touches the disk.
    let mut bad = Checkpoint::new();
    bad.push(NamedTensor::f32("w", &[2, 2], vec![1.0; 3]));
    let msg = message(checkpoint::save(&path, &bad).unwrap_err());
    assert!(
        msg.contains("'w'") && msg.contains("4 values") && msg.contains("3"),
        "{msg}"
    );

    assert_eq!(fs::read(&path).unwrap(), before);
    assert_eq!(entries(&dir), ["run.safetensors"]);
}

#[test]
fn save_into_a_missing_directory_fails_cleanly() {
    let dir = scratch("missing_dir");
    let path = dir.join("no").join("such").join("run.safetensors");
    let msg = message(checkpoint::save(&path, &sample()).unwrap_err());
    assert!(msg.contains("run.safetensors"), "{msg}");
    assert!(entries(&dir).is_empty());
}

#[test]
fn save_refuses_duplicate_empty_and_reserved_names() {
    let dir = scratch("names");
    let path = dir.join("x.safetensors");
    for (names, expect) in [
        (vec!["a", "a"], "two tensors are named 'a'"),
        (vec![""], "empty name"),
        (vec!["__metadata__"], "reserved"),
    ] {
        let mut ckpt = Checkpoint::new();
        for n in names {
            ckpt.push(NamedTensor::u32(n, &[1], vec![1]));
        }
        let msg = message(checkpoint::save(&path, &ckpt).unwrap_err());
        assert!(msg.contains(expect), "{msg}");
    }
    assert!(entries(&dir).is_empty());
}

#[test]
fn truncated_file_is_an_error_naming_the_file() {
    let dir = scratch("truncated");
    let path = dir.join("run.safetensors");
    checkpoint::save(&path, &sample()).unwrap();
    let bytes = fs::read(&path).unwrap();
    for len in [0, 4, 8, 20, bytes.len() / 2, bytes.len() - 1] {
        fs::write(&path, &bytes[..len]).unwrap();
        let msg = message(checkpoint::load(&path).unwrap_err());
        assert!(msg.contains("run.safetensors"), "len {len}: {msg}");
        assert!(
            msg.contains("not a valid safetensors file"),
            "len {len}: {msg}"
        );
    }
}

#[test]
fn corrupt_and_foreign_files_are_errors() {
    let dir = scratch("corrupt");
    let path = dir.join("bad.safetensors");
    fs::write(&path, b"this is not a checkpoint at all").unwrap();
    let msg = message(checkpoint::load(&path).unwrap_err());
    assert!(
        msg.contains("bad.safetensors") && msg.contains("not a valid"),
        "{msg}"
    );

    // A valid header length followed by something that is not JSON.
    let mut bytes = 16u64.to_le_bytes().to_vec();
    bytes.extend_from_slice(b"{not json at all");
    fs::write(&path, &bytes).unwrap();
    assert!(message(checkpoint::load(&path).unwrap_err()).contains("not a valid"));

    // A well-formed file with a dtype we do not read.
    let header = br#"{"h":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}"#;
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header);
    bytes.extend_from_slice(&[0; 4]);
    fs::write(&path, &bytes).unwrap();
    let msg = message(checkpoint::load(&path).unwrap_err());
    assert!(msg.contains("'h'") && msg.contains("F16"), "{msg}");
}

#[test]
fn missing_file_is_an_error_naming_it() {
    let dir = scratch("missing");
    let msg = message(checkpoint::load(&dir.join("nope.safetensors")).unwrap_err());
    assert!(
        msg.contains("nope.safetensors") && msg.contains("cannot read"),
        "{msg}"
    );
}

#[test]
fn accessors_name_the_tensor_and_both_shapes_or_dtypes() {
    let dir = scratch("accessors");
    let path = dir.join("run.safetensors");
    checkpoint::save(&path, &sample()).unwrap();
    let ckpt = checkpoint::load(&path).unwrap();

    let msg = message(ckpt.f32("fc1.weight", &[3, 5]).unwrap_err());
    assert!(msg.contains("run.safetensors"), "{msg}");
    assert!(
        msg.contains("'fc1.weight' has shape [3, 4], expected [3, 5]"),
        "{msg}"
    );

    let msg = message(ckpt.f32("adam.step", &[1]).unwrap_err());
    assert!(
        msg.contains("'adam.step' is u32 [1], expected f32 [1]"),
        "{msg}"
    );
    let msg = message(ckpt.u32("fc1.bias", &[3]).unwrap_err());
    assert!(
        msg.contains("'fc1.bias' is f32 [3], expected u32 [3]"),
        "{msg}"
    );

    let msg = message(ckpt.f32("fc2.weight", &[3, 4]).unwrap_err());
    assert!(msg.contains("no tensor named 'fc2.weight'"), "{msg}");
    assert!(msg.contains("'fc1.weight'"), "lists what is there: {msg}");

    let msg = message(ckpt.meta("seed").unwrap_err());
    assert!(
        msg.contains("no metadata key 'seed'") && msg.contains("'epoch'"),
        "{msg}"
    );
}

#[test]
fn in_memory_accessors_check_data_length_too() {
    let mut ckpt = Checkpoint::new();
    ckpt.push(NamedTensor {
        name: "w".into(),
        shape: vec![2, 3],
        data: TensorData::F32(vec![0.0; 5]),
    });
    ckpt.metadata = BTreeMap::new();
    let msg = message(ckpt.f32("w", &[2, 3]).unwrap_err());
    assert!(msg.starts_with("checkpoint: "), "no file to name: {msg}");
    assert!(msg.contains("holds 6 values but the data has 5"), "{msg}");
}

/// The kernel choices a tuned run records: absent is none (an untuned or
/// older checkpoint), malformed or naming no kernel version is an error that
/// names the checkpoint's key, never a silent fallback to other kernels.
#[test]
fn recorded_kernel_choices_are_read_and_checked() {
    use wgpu_train::train::recorded_kernels;
    let mut ck = Checkpoint::new();
    assert!(recorded_kernels(&ck).unwrap().is_empty());
    ck.metadata.insert(
        "kernels".into(),
        r#"{"matmul 256x10x3073":"v5_split_k"}"#.into(),
    );
    let k = recorded_kernels(&ck).unwrap();
    assert_eq!(k["matmul 256x10x3073"], "v5_split_k");
    ck.metadata.insert("kernels".into(), "[1, 2".into());
    let e = recorded_kernels(&ck).unwrap_err().to_string();
    assert!(e.contains("metadata 'kernels'"), "{e}");
    ck.metadata
        .insert("kernels".into(), r#"{"matmul 1x1x1":"v0_guess"}"#.into());
    let e = recorded_kernels(&ck).unwrap_err().to_string();
    assert!(e.contains("v0_guess") && e.contains("v1_naive"), "{e}");
}
