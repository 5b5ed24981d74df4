//! Atomic writes replace only what is ours to replace (issue 12, class 4):
//! through symbolic links, never over devices or directories, keeping
//! permissions, with long names, and cleaning up after killed runs. Each
//! case goes through `checkpoint::save` (and `plot` where it differs), as a
//! `--save` or `--plot` would.

#![cfg(unix)]

use crate::data_util::Scratch;
use std::fs;
use std::os::unix::fs::{FileTypeExt, PermissionsExt, symlink};
use std::path::Path;
use wgpu_train::checkpoint::{self, Checkpoint, NamedTensor};
use wgpu_train::metrics::{EpochMetrics, History};

fn sample(v: f32) -> Checkpoint {
    let mut c = Checkpoint::new();
    c.push(NamedTensor::f32("w", &[2], vec![v, -v]));
    c
}

fn value(path: &Path) -> f32 {
    checkpoint::load(path).unwrap().f32("w", &[2]).unwrap()[0]
}

fn message(r: wgpu_train::Result<()>) -> String {
    r.expect_err("expected an error").to_string()
}

#[test]
fn save_through_a_symlink_writes_its_target_and_keeps_the_link() {
    let s = Scratch::new("atomic-link");
    let real_dir = s.path().join("real");
    fs::create_dir(&real_dir).unwrap();
    let target = real_dir.join("ckpt.safetensors");
    checkpoint::save(&target, &sample(1.0)).unwrap();
    // A relative link, through a second link: both hops resolved.
    let link1 = s.path().join("link1.safetensors");
    let link2 = s.path().join("link2.safetensors");
    symlink("real/ckpt.safetensors", &link1).unwrap();
    symlink(&link1, &link2).unwrap();

    checkpoint::save(&link2, &sample(2.0)).unwrap();

    assert!(
        fs::symlink_metadata(&link1)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(
        fs::symlink_metadata(&link2)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        value(&target),
        2.0,
        "the link's target has the new contents"
    );
    assert_eq!(value(&link2), 2.0);
    // No temporary file left in either directory.
    assert_eq!(
        s.listing(),
        [
            "link1.safetensors",
            "link2.safetensors",
            "real",
            "real/ckpt.safetensors"
        ]
    );
}

#[test]
fn save_through_a_dangling_symlink_creates_its_target() {
    let s = Scratch::new("atomic-dangling");
    let link = s.path().join("ckpt.safetensors");
    symlink("elsewhere.safetensors", &link).unwrap();
    checkpoint::save(&link, &sample(3.0)).unwrap();
    assert!(
        fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(value(&s.path().join("elsewhere.safetensors")), 3.0);
}

#[test]
fn save_into_a_symlink_loop_is_an_error_that_says_so() {
    let s = Scratch::new("atomic-loop");
    let a = s.path().join("a.safetensors");
    let b = s.path().join("b.safetensors");
    symlink(&b, &a).unwrap();
    symlink(&a, &b).unwrap();
    let m = message(checkpoint::save(&a, &sample(1.0)));
    assert!(m.contains("symbolic links") && m.contains("loop"), "{m}");
    assert_eq!(s.listing(), ["a.safetensors", "b.safetensors"]);
}

#[test]
fn save_onto_a_device_is_refused_and_the_device_stays() {
    // As root, renaming over /dev/null would replace the device node with a
    // regular file; the refusal comes before any temporary file is made.
    let m = message(checkpoint::save(Path::new("/dev/null"), &sample(1.0)));
    assert!(
        m.contains("/dev/null") && m.contains("character device") && m.contains("refusing"),
        "{m}"
    );
    assert!(
        fs::metadata("/dev/null")
            .unwrap()
            .file_type()
            .is_char_device()
    );
    let m = message(checkpoint::check_destination(Path::new("/dev/null")));
    assert!(m.contains("character device"), "{m}");
}

#[test]
fn save_onto_a_directory_or_fifo_is_refused_and_leaves_them_alone() {
    let s = Scratch::new("atomic-nonregular");
    let dir = s.path().join("ckpt.safetensors");
    fs::create_dir(&dir).unwrap();
    let m = message(checkpoint::save(&dir, &sample(1.0)));
    assert!(m.contains("a directory") && m.contains("refusing"), "{m}");
    assert!(dir.is_dir());

    let fifo = s.path().join("fifo.safetensors");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(made.success());
    let m = message(checkpoint::save(&fifo, &sample(1.0)));
    assert!(m.contains("a FIFO"), "{m}");
    assert!(fs::metadata(&fifo).unwrap().file_type().is_fifo());
    // Nothing else appeared.
    assert_eq!(s.listing(), ["ckpt.safetensors", "fifo.safetensors"]);
}

#[test]
fn save_keeps_the_existing_files_permissions() {
    let s = Scratch::new("atomic-mode");
    for mode in [0o600, 0o640, 0o604] {
        let path = s.path().join(format!("ckpt-{mode:o}.safetensors"));
        checkpoint::save(&path, &sample(1.0)).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        checkpoint::save(&path, &sample(2.0)).unwrap();
        let got = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(got, mode, "mode {mode:o} became {got:o}");
        assert_eq!(value(&path), 2.0);
    }
}

#[test]
fn save_with_file_names_up_to_the_255_byte_limit_works() {
    let s = Scratch::new("atomic-long");
    for len in [200, 252, 255] {
        let name = format!("{}.st", "c".repeat(len - 3));
        assert_eq!(name.len(), len);
        let path = s.path().join(&name);
        checkpoint::save(&path, &sample(len as f32)).unwrap();
        // Again over the existing file, and a plot with a long name too.
        checkpoint::save(&path, &sample(len as f32 + 1.0)).unwrap();
        assert_eq!(value(&path), len as f32 + 1.0);
    }
    let plot = s.path().join(format!("{}.svg", "p".repeat(251)));
    let mut h = History::new();
    h.push(EpochMetrics {
        epoch: 1,
        train_loss: 1.0,
        train_accuracy: 0.5,
        val_loss: None,
        val_accuracy: None,
        seconds: 1.0,
        samples_per_sec: 1.0,
    });
    wgpu_train::lab::plot::plot_history(&plot, "t", &[("cpu", &h)]).unwrap();
    assert!(plot.is_file());
    assert_eq!(s.listing().len(), 4, "{:?}", s.listing());
}

#[test]
fn save_removes_temp_files_left_by_dead_processes_and_keeps_live_ones() {
    let s = Scratch::new("atomic-stale");
    let path = s.path().join("ckpt.safetensors");
    // A process that has exited: its pid names no process any more.
    let mut dead = std::process::Command::new("true").spawn().unwrap();
    dead.wait().unwrap();
    let dead_pid = dead.id();
    // A process that is still running: a concurrent save in progress.
    let mut live = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let live_pid = live.id();
    let stale = [
        format!(".ckpt.safetensors.{dead_pid}.0.tmp"),
        format!(".ckpt.safetensors.{dead_pid}.5.tmp"),
    ];
    for name in &stale {
        fs::write(s.path().join(name), vec![0u8; 1000]).unwrap();
    }
    let in_progress = format!(".ckpt.safetensors.{live_pid}.0.tmp");
    fs::write(s.path().join(&in_progress), b"partial").unwrap();
    // Another file's temporary name and an unrelated file are not ours.
    let other = format!(".other.safetensors.{dead_pid}.0.tmp");
    fs::write(s.path().join(&other), b"x").unwrap();

    checkpoint::save(&path, &sample(1.0)).unwrap();
    let _ = live.kill();
    let _ = live.wait();

    let mut want = vec![
        in_progress.clone(),
        other.clone(),
        "ckpt.safetensors".to_string(),
    ];
    want.sort();
    assert_eq!(s.listing(), want);
}

#[test]
fn check_destination_refuses_bad_paths_without_writing_anything() {
    let s = Scratch::new("atomic-check");
    let ok = s.path().join("new.safetensors");
    checkpoint::check_destination(&ok).unwrap();
    assert!(!ok.exists(), "the check wrote the file");
    assert!(s.listing().is_empty(), "{:?}", s.listing());

    let missing = s.path().join("no/such/dir/x.safetensors");
    let m = message(checkpoint::check_destination(&missing));
    assert!(m.contains("does not exist"), "{m}");

    let file = s.path().join("file");
    fs::write(&file, b"x").unwrap();
    let m = message(checkpoint::check_destination(&file.join("x.safetensors")));
    assert!(m.to_lowercase().contains("not a directory"), "{m}");

    let m = message(wgpu_train::lab::plot::check_destination(
        &s.path().join("curves.bmp"),
    ));
    assert!(m.contains(".svg or .png"), "{m}");
    wgpu_train::lab::plot::check_destination(&s.path().join("curves.PNG")).unwrap();

    // Unwritable even for root: /proc takes no new files.
    #[cfg(target_os = "linux")]
    {
        let m = message(checkpoint::check_destination(Path::new(
            "/proc/wgpu-train-check.safetensors",
        )));
        assert!(m.contains("cannot be written"), "{m}");
    }
    assert_eq!(s.listing(), ["file"]);
}
