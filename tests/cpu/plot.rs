//! Loss and accuracy plots. The pictures land in
//! `$CARGO_TARGET_TMPDIR/plot/` to be looked at.

use std::fs;
use std::path::{Path, PathBuf};

use wgpu_train::Error;
use wgpu_train::lab::plot::plot_history;
use wgpu_train::metrics::{EpochMetrics, History};

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("plot")
        .join(name);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// The contents of the SVG's `<text>` elements, trimmed.
fn texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .filter_map(|t| {
            let body = &t[t.find('>')? + 1..];
            Some(body[..body.find("</text>")?].trim().to_string())
        })
        .collect()
}

/// A plausible Fashion-MNIST MLP run: loss falling, accuracy rising,
/// validation a little behind. `skew` shifts one run from the other.
fn fake_history(epochs: usize, skew: f64, with_val: bool) -> History {
    let mut h = History::new();
    for e in 1..=epochs {
        let t = e as f64;
        let loss = 0.28 + 0.5 / t.powf(0.8) + skew;
        let acc = 0.90 - 0.14 / t.powf(0.8) - skew / 2.0;
        h.push(EpochMetrics {
            epoch: e,
            train_loss: loss,
            train_accuracy: acc,
            val_loss: with_val.then_some(loss + 0.04 + 0.002 * t),
            val_accuracy: with_val.then_some(acc - 0.012),
            seconds: 2.3,
            samples_per_sec: 26_000.0,
        });
    }
    h
}

#[test]
fn svg_has_both_panels_every_label_and_run() {
    let dir = scratch("svg");
    let path = dir.join("curves.svg");
    let (gpu, cpu) = (fake_history(10, 0.0, true), fake_history(10, 0.01, true));
    plot_history(
        &path,
        "MLP 784-128-128-10 on Fashion-MNIST",
        &[("gpu", &gpu), ("cpu", &cpu)],
    )
    .unwrap();
    let svg = fs::read_to_string(&path).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    let texts = texts(&svg);
    for text in [
        "MLP 784-128-128-10 on Fashion-MNIST",
        "Loss",
        "Accuracy",
        "epoch",
        "loss",
        "accuracy",
        "gpu train",
        "gpu val",
        "cpu train",
        "cpu val",
    ] {
        assert!(
            texts.iter().any(|t| t == text),
            "missing {text:?} in {texts:?}"
        );
    }
    assert!(svg.contains("<polyline"), "curves drawn as lines");
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 1, "no temp files left");
}

#[test]
fn png_is_a_png() {
    let dir = scratch("png");
    let path = dir.join("curves.png");
    let (gpu, cpu) = (fake_history(10, 0.0, true), fake_history(10, 0.01, true));
    plot_history(
        &path,
        "MLP 784-128-128-10 on Fashion-MNIST",
        &[("gpu", &gpu), ("cpu", &cpu)],
    )
    .unwrap();
    let bytes = fs::read(&path).unwrap();
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "PNG signature");
    assert!(
        bytes.len() > 10_000,
        "a real picture, not a blank: {} bytes",
        bytes.len()
    );
}

#[test]
fn one_epoch_and_no_validation_still_plot() {
    let dir = scratch("one_epoch");
    let h = fake_history(1, 0.0, false);
    for name in ["one.svg", "one.PNG"] {
        plot_history(&dir.join(name), "one epoch", &[("cpu", &h)]).unwrap();
    }
    let svg = fs::read_to_string(dir.join("one.svg")).unwrap();
    let texts = texts(&svg);
    assert!(texts.iter().any(|t| t == "cpu train"), "{texts:?}");
    assert!(
        !texts.iter().any(|t| t == "cpu val"),
        "no validation curve without data"
    );
    assert!(svg.contains("<circle"), "a single epoch shows as a marker");
}

#[test]
fn many_epochs_and_nan_values_plot() {
    let dir = scratch("many");
    let mut h = fake_history(100, 0.0, true);
    h.epochs[40].train_loss = f64::NAN;
    h.epochs[41].val_loss = None;
    plot_history(
        &dir.join("many.svg"),
        "100 epochs, one diverged value",
        &[("gpu", &h)],
    )
    .unwrap();
}

#[test]
fn unknown_extension_is_an_error_and_writes_nothing() {
    let dir = scratch("ext");
    let h = fake_history(3, 0.0, true);
    for name in ["curves.pdf", "curves", "curves.svg.tmp"] {
        let err = plot_history(&dir.join(name), "t", &[("gpu", &h)]).unwrap_err();
        assert!(matches!(err, Error::Plot { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains(name) && msg.contains(".svg or .png"), "{msg}");
    }
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 0);
}

#[test]
fn nothing_to_plot_is_an_error() {
    let dir = scratch("empty");
    let empty = History::new();
    let err = plot_history(&dir.join("e.svg"), "t", &[("gpu", &empty)]).unwrap_err();
    assert!(err.to_string().contains("nothing to plot"), "{err}");
    let err = plot_history(&dir.join("e.svg"), "t", &[]).unwrap_err();
    assert!(err.to_string().contains("nothing to plot"), "{err}");
}

#[test]
fn unwritable_target_keeps_the_old_file() {
    let dir = scratch("unwritable");
    let target = dir.join("taken.svg");
    fs::create_dir(&target).unwrap();
    let h = fake_history(3, 0.0, true);
    let err = plot_history(&target, "t", &[("gpu", &h)]).unwrap_err();
    assert!(err.to_string().contains("cannot write"), "{err}");
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 1, "no temp file left");
}
