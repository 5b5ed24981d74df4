//! A sweep's curves as the course notebook draws them: validation accuracy
//! per epoch (left, linear axis) and validation loss per epoch (right, log
//! axis), one labelled curve per configuration (`src/lab/cli/sweep.rs` (the `sweep` example)). The
//! loss panel is [`super::curves`]' log panel; fonts, colours and atomic
//! writes are [`super::plot_history`]'s.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;

use super::curves::{CurvePanel, Series, draw_lines, draw_panel};
use super::{FONT, is_png, register_fonts};
use crate::error::{Error, Result};
use crate::metrics::EpochMetrics;

/// One curve of a sweep plot: a configuration's epochs.
pub struct SweepCurve<'a> {
    pub label: String,
    /// Palette index: one colour per configuration.
    pub color: usize,
    /// Dashed (e.g. the second and later seeds of one configuration).
    pub dashed: bool,
    pub epochs: &'a [EpochMetrics],
}

const SIZE: (u32, u32) = (1280, 520);

/// Draws validation accuracy and validation loss per epoch (training values
/// where there is no validation split) of `curves` to `path` (`.svg` or
/// `.png`). A diverged epoch (non-finite loss) leaves a gap. Errors as
/// [`super::plot_history`]'s.
pub fn plot_sweep(path: &Path, title: &str, curves: &[SweepCurve<'_>]) -> Result<()> {
    let err = |msg: String| Error::Plot {
        file: path.to_path_buf(),
        msg,
    };
    let png = is_png(path)?;
    if curves.iter().all(|c| c.epochs.is_empty()) {
        return Err(err("nothing to plot: no run has any epoch".to_string()));
    }
    register_fonts().map_err(err)?;
    let validation = curves
        .iter()
        .flat_map(|c| c.epochs)
        .any(|m| m.val_loss.is_some());
    let which = if validation { "validation" } else { "training" };
    let series = |value: &dyn Fn(&EpochMetrics) -> f64| -> Vec<Series> {
        curves
            .iter()
            .map(|c| Series {
                label: c.label.clone(),
                color: c.color,
                dashed: c.dashed,
                points: c
                    .epochs
                    .iter()
                    .map(|m| (m.epoch as f64, value(m)))
                    .collect(),
            })
            .collect()
    };
    let accuracy = CurvePanel {
        caption: format!("{which} accuracy"),
        x_desc: "epoch".into(),
        y_desc: "accuracy".into(),
        series: series(&|m| {
            if validation {
                m.val_accuracy.unwrap_or(f64::NAN)
            } else {
                m.train_accuracy
            }
        }),
    };
    let loss = CurvePanel {
        caption: format!("{which} loss (log scale)"),
        x_desc: "epoch".into(),
        y_desc: "loss".into(),
        series: series(&|m| {
            if validation {
                m.val_loss.unwrap_or(f64::NAN)
            } else {
                m.train_loss
            }
        }),
    };
    let bytes = if png {
        let (w, h) = SIZE;
        let mut rgb = vec![0u8; w as usize * h as usize * 3];
        {
            let root = BitMapBackend::with_buffer(&mut rgb, SIZE).into_drawing_area();
            draw(&root, title, &accuracy, &loss).map_err(err)?;
            root.present().map_err(|e| err(e.to_string()))?;
        }
        super::encode_png(&rgb, SIZE).map_err(err)?
    } else {
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
            draw(&root, title, &accuracy, &loss).map_err(err)?;
            root.present().map_err(|e| err(e.to_string()))?;
        }
        svg.into_bytes()
    };
    crate::files::write(path, &bytes).map_err(|e| err(format!("cannot write: {e}")))
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    accuracy: &CurvePanel,
    loss: &CurvePanel,
) -> std::result::Result<(), String>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let body = root
        .titled(title, (FONT, 26, FontStyle::Bold))
        .map_err(|e| e.to_string())?;
    let areas = body.split_evenly((1, 2));
    draw_linear_panel(&areas[0], accuracy)?;
    if loss
        .series
        .iter()
        .flat_map(|s| &s.points)
        .any(|&(_, y)| y.is_finite() && y > 0.0)
    {
        draw_panel(&areas[1], loss)?;
    }
    Ok(())
}

fn finite(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    points
        .iter()
        .copied()
        .filter(|&(x, y)| x.is_finite() && y.is_finite())
        .collect()
}

/// A panel on a linear y axis from the data's range, padded.
fn draw_linear_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &CurvePanel,
) -> std::result::Result<(), String>
where
    DB::ErrorType: 'static,
{
    let e = |err: DrawingAreaErrorKind<DB::ErrorType>| err.to_string();
    let all: Vec<(f64, f64)> = panel
        .series
        .iter()
        .flat_map(|s| finite(&s.points))
        .collect();
    let (x0, mut x1) = all
        .iter()
        .fold((1.0f64, 1.0f64), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let (mut y0, mut y1) = all
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
            (a.min(p.1), b.max(p.1))
        });
    if !y0.is_finite() {
        (y0, y1) = (0.0, 1.0);
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    let pad = 0.05 * (y1 - y0).max(0.02);
    let (y0, y1) = ((y0 - pad).max(0.0), (y1 + pad).min(1.0));
    let xpad = 0.03 * (x1 - x0);
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.caption, (FONT, 20))
        .margin(15)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d((x0 - xpad)..(x1 + xpad), y0..y1)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc(&panel.x_desc)
        .y_desc(&panel.y_desc)
        .axis_desc_style((FONT, 16))
        .label_style((FONT, 14))
        .x_label_formatter(&|x: &f64| {
            if x.fract() == 0.0 {
                format!("{x:.0}")
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|y: &f64| format!("{y:.2}"))
        .bold_line_style(BLACK.mix(0.08))
        .light_line_style(TRANSPARENT)
        .draw()
        .map_err(e)?;
    draw_lines(
        &mut chart,
        panel,
        finite,
        true,
        SeriesLabelPosition::LowerRight,
    )
}
