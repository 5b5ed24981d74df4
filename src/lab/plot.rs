//! Loss and accuracy curves per epoch, as the course notebooks draw them
//! with matplotlib: two panels side by side (loss, accuracy), training as
//! solid lines and validation as dashed ones, one colour per run (e.g. a GPU
//! and a CPU run overlaid), a legend placed where it hides the fewest points.
//!
//! SVG or PNG, chosen by the file's extension. Text is laid out (and, for
//! PNG, rendered) with DejaVu Sans embedded from the `dejavu` crate, so no
//! system fonts are needed. Files are written atomically.

use std::path::Path;
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use crate::error::{Error, Result};
use crate::metrics::{EpochMetrics, History};

mod course;
pub use course::{Axes, Contour, Line, Mark, plot_axes, plot_confusion, plot_contour};
mod curves;
pub use curves::{CurvePanel, Series, plot_curves};
mod sweep;
pub use sweep::{SweepCurve, plot_sweep};

/// Picture size in pixels (SVG user units): two panels of about 640×470.
const SIZE: (u32, u32) = (1280, 520);
/// The family the embedded DejaVu Sans is registered under.
const FONT: &str = "sans-serif";
/// Matplotlib's "tab10" colours, in its order, so runs get the colours the
/// course notebooks use.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];
/// Above this many epochs markers would clutter the lines; draw lines only.
const MAX_EPOCHS_WITH_MARKERS: usize = 40;

/// Draws the loss and accuracy curves of `runs` (label, history) to `path`,
/// an `.svg` or `.png` file, under the heading `title`.
///
/// Validation curves appear for runs that measured validation metrics.
/// Non-finite values (a diverged loss) leave a gap in their curve. Works from
/// one epoch up; the x axis is the epochs' own numbers, so a resumed run
/// starts where it left off.
///
/// Errors ([`Error::Plot`], naming the file): another extension, no epoch in
/// any run, or the file cannot be written — in which case any previous file
/// at `path` is left as it was.
pub fn plot_history(path: &Path, title: &str, runs: &[(&str, &History)]) -> Result<()> {
    let err = |msg: String| Error::Plot {
        file: path.to_path_buf(),
        msg,
    };
    let png = is_png(path)?;
    if runs.iter().all(|(_, h)| h.epochs.is_empty()) {
        return Err(err("nothing to plot: no run has any epoch".to_string()));
    }
    register_fonts().map_err(err)?;

    let bytes = if png {
        render_png(title, runs)
    } else {
        render_svg(title, runs)
    }
    .map_err(err)?;
    crate::files::write(path, &bytes).map_err(|e| err(format!("cannot write: {e}")))
}

/// Checks, without drawing, that [`plot_history`] could write `path`: a
/// known extension, and a destination [`crate::files::check_destination`]
/// accepts. Call it before the training whose curves go there.
pub fn check_destination(path: &Path) -> Result<()> {
    is_png(path)?;
    crate::files::check_destination(path).map_err(|e| Error::Plot {
        file: path.to_path_buf(),
        msg: format!("cannot be written: {e}"),
    })
}

/// Whether `path` names a PNG (else an SVG); any other extension is an error.
fn is_png(path: &Path) -> Result<bool> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("svg") => Ok(false),
        Some("png") => Ok(true),
        _ => Err(Error::Plot {
            file: path.to_path_buf(),
            msg: "unsupported file type: the name must end in .svg or .png".to_string(),
        }),
    }
}

/// Registers DejaVu Sans with plotters once per process.
fn register_fonts() -> std::result::Result<(), String> {
    static REGISTERED: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            register_font(FONT, FontStyle::Normal, dejavu::sans::regular())
                .and_then(|()| register_font(FONT, FontStyle::Bold, dejavu::sans::bold()))
                .map_err(|_| "the embedded DejaVu Sans font could not be parsed".to_string())
        })
        .clone()
}

fn render_svg(title: &str, runs: &[(&str, &History)]) -> std::result::Result<Vec<u8>, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        draw(&root, title, runs)?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg.into_bytes())
}

fn render_png(title: &str, runs: &[(&str, &History)]) -> std::result::Result<Vec<u8>, String> {
    let (w, h) = SIZE;
    let mut rgb = vec![0u8; w as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, SIZE).into_drawing_area();
        draw(&root, title, runs)?;
        root.present().map_err(|e| e.to_string())?;
    }
    encode_png(&rgb, SIZE)
}

/// An x tick's label: whole numbers without a point, others rounded to six
/// decimals (plotters' ticks carry float noise: 2.5999999999999996).
fn x_label(x: &f64) -> String {
    format!("{}", (x * 1e6).round() / 1e6)
}

/// Encodes an RGB bitmap as PNG bytes. Encoded here rather than by plotters
/// (which writes straight to the path) so that the file is written
/// atomically.
fn encode_png(rgb: &[u8], (w, h): (u32, u32)) -> std::result::Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, w, h);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder
        .write_header()
        .map_err(|e| format!("PNG encoding failed: {e}"))?;
    writer
        .write_image_data(rgb)
        .and_then(|()| writer.finish())
        .map_err(|e| format!("PNG encoding failed: {e}"))?;
    Ok(out)
}

/// One curve: a run's training or validation values per epoch.
struct Curve {
    label: String,
    color: RGBColor,
    dashed: bool,
    /// (epoch, value); non-finite values break the line.
    points: Vec<(f64, f64)>,
}

/// Which metric a panel shows.
struct Panel {
    caption: &'static str,
    y_desc: &'static str,
    train: fn(&EpochMetrics) -> f64,
    val: fn(&EpochMetrics) -> Option<f64>,
}

const LOSS: Panel = Panel {
    caption: "Loss",
    y_desc: "loss",
    train: |m| m.train_loss,
    val: |m| m.val_loss,
};

const ACCURACY: Panel = Panel {
    caption: "Accuracy",
    y_desc: "accuracy",
    train: |m| m.train_accuracy,
    val: |m| m.val_accuracy,
};

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    runs: &[(&str, &History)],
) -> std::result::Result<(), String>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let body = root
        // `(family, size, style)` loads the bold face; `.style(Bold)` on a
        // font would only mark it bold, which SVG honours but PNG does not.
        .titled(title, (FONT, 26, FontStyle::Bold))
        .map_err(|e| e.to_string())?;
    let (left, right) = body.split_horizontally(SIZE.0 / 2);
    draw_panel(&left, &LOSS, runs)?;
    draw_panel(&right, &ACCURACY, runs)
}

fn curves(panel: &Panel, runs: &[(&str, &History)]) -> Vec<Curve> {
    let mut out = Vec::new();
    for (i, (name, history)) in runs.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let label = |kind: &str| {
            if name.is_empty() {
                kind.to_string()
            } else {
                format!("{name} {kind}")
            }
        };
        let x = |m: &EpochMetrics| m.epoch as f64;
        out.push(Curve {
            label: label("train"),
            color,
            dashed: false,
            points: history
                .epochs
                .iter()
                .map(|m| (x(m), (panel.train)(m)))
                .collect(),
        });
        // A missing validation value is a gap, like a non-finite one.
        if history.epochs.iter().any(|m| (panel.val)(m).is_some()) {
            out.push(Curve {
                label: label("val"),
                color,
                dashed: true,
                points: history
                    .epochs
                    .iter()
                    .map(|m| (x(m), (panel.val)(m).unwrap_or(f64::NAN)))
                    .collect(),
            });
        }
    }
    out
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &Panel,
    runs: &[(&str, &History)],
) -> std::result::Result<(), String>
where
    DB::ErrorType: 'static,
{
    let e = |err: DrawingAreaErrorKind<DB::ErrorType>| err.to_string();
    let curves = curves(panel, runs);

    let (x0, x1, x_keys) = x_axis(&curves);
    let (y0, y1) = y_range(&curves);
    let y_decimals = decimals_for(y1 - y0);

    let mut chart = ChartBuilder::on(area)
        .caption(panel.caption, (FONT, 20))
        .margin(15)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(e)?;

    // At most one tick per whole epoch (see `x_axis`), so plotters' own tick
    // choice lands on whole epochs; anything else would still print honestly.
    let y_fmt = move |y: &f64| format!("{y:.y_decimals$}");
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(panel.y_desc)
        .axis_desc_style((FONT, 16))
        .label_style((FONT, 14))
        .x_labels(x_keys.len().max(1))
        .x_label_formatter(&x_label)
        .y_label_formatter(&y_fmt)
        .y_labels(8)
        // A faint grid on the ticks only, close to matplotlib's look.
        .bold_line_style(BLACK.mix(0.08))
        .light_line_style(TRANSPARENT)
        .draw()
        .map_err(e)?;

    let markers =
        curves.iter().map(|c| c.points.len()).max().unwrap_or(0) <= MAX_EPOCHS_WITH_MARKERS;
    for curve in &curves {
        let style = ShapeStyle::from(curve.color).stroke_width(2);
        // The legend entry hangs on an empty series, so that a curve broken
        // into several pieces by gaps still has exactly one entry.
        let anno = chart
            .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())
            .map_err(e)?
            .label(curve.label.clone());
        // The legend glyph shows the marker only when the curves have them.
        let marker_radius = if markers { 3 } else { 0 };
        if curve.dashed {
            anno.legend(move |(x, y)| {
                EmptyElement::at((x, y))
                    + DashedPathElement::new(vec![(0, 0), (24, 0)], 5, 3, style)
                    + Circle::new((12, 0), marker_radius, style)
            });
        } else {
            anno.legend(move |(x, y)| {
                EmptyElement::at((x, y))
                    + PathElement::new(vec![(0, 0), (24, 0)], style)
                    + Circle::new((12, 0), marker_radius, style.filled())
            });
        }

        for piece in finite_pieces(&curve.points) {
            if curve.dashed {
                chart
                    .draw_series(DashedLineSeries::new(piece.iter().copied(), 6, 4, style))
                    .map_err(e)?;
            } else {
                chart
                    .draw_series(LineSeries::new(piece.iter().copied(), style))
                    .map_err(e)?;
            }
            if markers {
                // Hollow markers for validation, filled for training; with
                // one epoch the markers are all there is to see.
                let marker = if curve.dashed { style } else { style.filled() };
                chart
                    .draw_series(piece.iter().map(|&p| Circle::new(p, 3, marker)))
                    .map_err(e)?;
            }
        }
    }

    chart
        .configure_series_labels()
        .position(legend_corner(&curves, (x0, x1), (y0, y1)))
        .margin(12)
        .label_font((FONT, 15))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .draw()
        .map_err(e)?;
    Ok(())
}

/// Runs of consecutive finite points.
fn finite_pieces(points: &[(f64, f64)]) -> Vec<Vec<(f64, f64)>> {
    let mut pieces = vec![Vec::new()];
    for &(x, y) in points {
        if x.is_finite() && y.is_finite() {
            if let Some(last) = pieces.last_mut() {
                last.push((x, y));
            }
        } else if pieces.last().is_some_and(|p| !p.is_empty()) {
            pieces.push(Vec::new());
        }
    }
    pieces.retain(|p| !p.is_empty());
    pieces
}

/// The x range (epochs, padded half an epoch or more each side so end
/// markers are not cut) and integer ticks at a "nice" step, at most ~10.
fn x_axis(curves: &[Curve]) -> (f64, f64, Vec<f64>) {
    let xs = curves
        .iter()
        .flat_map(|c| c.points.iter().map(|p| p.0))
        .filter(|x| x.is_finite());
    let (lo, hi) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
        (lo.min(x), hi.max(x))
    });
    let (lo, hi) = if lo <= hi { (lo, hi) } else { (1.0, 1.0) };
    let span = hi - lo;
    let step = [1.0, 2.0, 5.0]
        .iter()
        .flat_map(|m| (0..12).map(move |p| m * 10f64.powi(p)))
        .filter(|s| span / s <= 10.0)
        .fold(f64::INFINITY, f64::min);
    let first = (lo / step).ceil() * step;
    let keys = (0..)
        .map(|i| first + i as f64 * step)
        .take_while(|&k| k <= hi + 1e-9)
        .collect();
    let pad = (span * 0.04).max(0.5);
    (lo - pad, hi + pad, keys)
}

/// The y range over every finite value, padded 5% each side (matplotlib's
/// default margin), never below 0 for non-negative data such as losses and
/// accuracies.
fn y_range(curves: &[Curve]) -> (f64, f64) {
    let ys = curves
        .iter()
        .flat_map(|c| c.points.iter().map(|p| p.1))
        .filter(|y| y.is_finite());
    let (lo, hi) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), y| {
        (lo.min(y), hi.max(y))
    });
    if lo > hi {
        return (0.0, 1.0); // nothing finite to show
    }
    let span = hi - lo;
    let pad = if span > 0.0 {
        span * 0.05
    } else {
        (lo.abs() * 0.05).max(0.05) // one value: centre it
    };
    let bottom = if lo >= 0.0 {
        (lo - pad).max(0.0)
    } else {
        lo - pad
    };
    (bottom, hi + pad)
}

/// Decimals that tell apart ticks spread over `span` (about 8 ticks).
fn decimals_for(span: f64) -> usize {
    if !(span.is_finite() && span > 0.0) {
        return 2;
    }
    (-(span / 8.0).log10()).ceil().clamp(0.0, 6.0) as usize
}

/// The corner where the legend covers the fewest curve points (a small
/// take on matplotlib's `loc="best"`), preferring upper right, lower right,
/// upper left, lower left on ties.
fn legend_corner(
    curves: &[Curve],
    (x0, x1): (f64, f64),
    (y0, y1): (f64, f64),
) -> SeriesLabelPosition {
    // The legend's size as a fraction of a panel's plotting area (~540×340
    // px): 21 px per row plus margins; ~8.5 px per character plus the glyph.
    let rows = curves.len() as f64;
    let longest = curves
        .iter()
        .map(|c| c.label.chars().count())
        .max()
        .unwrap_or(0) as f64;
    let h = ((rows * 21.0 + 30.0) / 340.0).min(1.0);
    let w = ((longest * 8.5 + 70.0) / 540.0).min(1.0);

    // Points along the lines, not just at the epochs, so a line crossing a
    // corner counts even between two markers.
    let mut samples = Vec::new();
    for curve in curves {
        for piece in finite_pieces(&curve.points) {
            for pair in piece.windows(2) {
                let ((ax, ay), (bx, by)) = (pair[0], pair[1]);
                for k in 0..8 {
                    let t = f64::from(k) / 8.0;
                    samples.push((ax + t * (bx - ax), ay + t * (by - ay)));
                }
            }
            if let Some(&last) = piece.last() {
                samples.push(last);
            }
        }
    }
    let norm = |(x, y): (f64, f64)| ((x - x0) / (x1 - x0), (y - y0) / (y1 - y0));
    let covered = |right: bool, upper: bool| {
        samples
            .iter()
            .map(|&p| norm(p))
            .filter(|&(x, y)| {
                let in_x = if right { x >= 1.0 - w } else { x <= w };
                let in_y = if upper { y >= 1.0 - h } else { y <= h };
                in_x && in_y
            })
            .count()
    };
    let candidates = [
        (SeriesLabelPosition::UpperRight, covered(true, true)),
        (SeriesLabelPosition::LowerRight, covered(true, false)),
        (SeriesLabelPosition::UpperLeft, covered(false, true)),
        (SeriesLabelPosition::LowerLeft, covered(false, false)),
    ];
    let mut best = SeriesLabelPosition::UpperRight;
    let mut best_count = usize::MAX;
    for (pos, count) in candidates {
        if count < best_count {
            best = pos;
            best_count = count;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curve(points: &[(f64, f64)]) -> Curve {
        Curve {
            label: "gpu train".to_string(),
            color: PALETTE[0],
            dashed: false,
            points: points.to_vec(),
        }
    }

    #[test]
    fn x_ticks_are_whole_epochs_at_a_nice_step() {
        let (lo, hi, keys) = x_axis(&[curve(&[(1.0, 0.0)])]);
        assert_eq!(keys, vec![1.0]);
        assert!(lo < 1.0 && hi > 1.0);

        let ten: Vec<_> = (1..=10).map(|e| (f64::from(e), 0.0)).collect();
        assert_eq!(
            x_axis(&[curve(&ten)]).2,
            (1..=10).map(f64::from).collect::<Vec<_>>()
        );

        let hundred: Vec<_> = (1..=100).map(|e| (f64::from(e), 0.0)).collect();
        let keys = x_axis(&[curve(&hundred)]).2;
        assert!(keys.len() <= 11, "{keys:?}");
        assert!(keys.iter().all(|k| k.fract() == 0.0));
    }

    #[test]
    fn y_range_pads_and_stays_non_negative() {
        let (lo, hi) = y_range(&[curve(&[(1.0, 0.02), (2.0, 0.9)])]);
        assert_eq!(lo, 0.0);
        assert!(hi > 0.9);
        let (lo, hi) = y_range(&[curve(&[(1.0, 0.5)])]);
        assert!(lo < 0.5 && hi > 0.5);
        assert_eq!(y_range(&[curve(&[(1.0, f64::NAN)])]), (0.0, 1.0));
    }

    #[test]
    fn non_finite_values_split_the_curve() {
        let pieces = finite_pieces(&[
            (1.0, 1.0),
            (2.0, f64::NAN),
            (3.0, 3.0),
            (4.0, 4.0),
            (5.0, f64::INFINITY),
        ]);
        assert_eq!(pieces, vec![vec![(1.0, 1.0)], vec![(3.0, 3.0), (4.0, 4.0)]]);
    }

    #[test]
    fn legend_avoids_falling_and_rising_curves() {
        let falling: Vec<_> = (1..=10)
            .map(|e| (f64::from(e), 1.0 / f64::from(e)))
            .collect();
        let rising: Vec<_> = (1..=10)
            .map(|e| (f64::from(e), 1.0 - 1.0 / f64::from(e)))
            .collect();
        let pos = |pts: &[(f64, f64)]| {
            let c = [curve(pts)];
            let (x0, x1, _) = x_axis(&c);
            legend_corner(&c, (x0, x1), y_range(&c))
        };
        assert!(matches!(pos(&falling), SeriesLabelPosition::UpperRight));
        assert!(matches!(pos(&rising), SeriesLabelPosition::LowerRight));
    }
}
