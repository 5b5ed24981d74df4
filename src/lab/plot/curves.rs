//! Curves against any x (passes over the data, seconds) on a logarithmic
//! y axis, panels side by side: how far each optimizer's loss is from the
//! optimum as it runs (`src/lab/cli/second_order.rs` (the `second_order` example)). Same fonts, colours and
//! atomic writes as [`super::plot_history`].

use std::path::Path;

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::FontStyle;

use super::{FONT, PALETTE, encode_png, is_png, register_fonts, x_label};
use crate::error::{Error, Result};

/// One line of a panel.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub label: String,
    /// Index into the palette (matplotlib's tab10), so that one method keeps
    /// its colour across panels.
    pub color: usize,
    pub dashed: bool,
    /// (x, y); points with y ≤ 0 or not finite are left out.
    pub points: Vec<(f64, f64)>,
}

/// One panel: its axes and lines.
#[derive(Clone, Debug, PartialEq)]
pub struct CurvePanel {
    pub caption: String,
    pub x_desc: String,
    pub y_desc: String,
    pub series: Vec<Series>,
}

/// Draws `panels` side by side to `path` (`.svg` or `.png`), y on a log
/// scale. Errors as [`super::plot_history`]'s, and when no panel has a
/// positive finite point.
pub fn plot_curves(path: &Path, title: &str, panels: &[CurvePanel]) -> Result<()> {
    let err = |msg: String| Error::Plot {
        file: path.to_path_buf(),
        msg,
    };
    let usable = |p: &CurvePanel| {
        p.series
            .iter()
            .flat_map(|s| &s.points)
            .any(|&(x, y)| x.is_finite() && y.is_finite() && y > 0.0)
    };
    if panels.is_empty() || !panels.iter().all(usable) {
        return Err(err(
            "nothing to plot: a panel has no positive finite point".to_string()
        ));
    }
    let png = is_png(path)?;
    register_fonts().map_err(err)?;
    let size = (640 * panels.len() as u32, 520);
    let bytes = if png {
        render_png(size, title, panels)
    } else {
        render_svg(size, title, panels)
    }
    .map_err(err)?;
    crate::files::write(path, &bytes).map_err(|e| err(format!("cannot write: {e}")))
}

fn render_svg(
    size: (u32, u32),
    title: &str,
    panels: &[CurvePanel],
) -> std::result::Result<Vec<u8>, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        draw(&root, title, panels)?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg.into_bytes())
}

fn render_png(
    size: (u32, u32),
    title: &str,
    panels: &[CurvePanel],
) -> std::result::Result<Vec<u8>, String> {
    let (w, h) = size;
    let mut rgb = vec![0u8; w as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, size).into_drawing_area();
        draw(&root, title, panels)?;
        root.present().map_err(|e| e.to_string())?;
    }
    encode_png(&rgb, size)
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    panels: &[CurvePanel],
) -> std::result::Result<(), String>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let body = root
        .titled(title, (FONT, 26, FontStyle::Bold))
        .map_err(|e| e.to_string())?;
    for (area, panel) in body.split_evenly((1, panels.len())).iter().zip(panels) {
        draw_panel(area, panel)?;
    }
    Ok(())
}

fn kept(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    points
        .iter()
        .copied()
        .filter(|&(x, y)| x.is_finite() && y.is_finite() && y > 0.0)
        .collect()
}

pub(super) fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &CurvePanel,
) -> std::result::Result<(), String>
where
    DB::ErrorType: 'static,
{
    let e = |err: DrawingAreaErrorKind<DB::ErrorType>| err.to_string();
    let all: Vec<(f64, f64)> = panel.series.iter().flat_map(|s| kept(&s.points)).collect();
    let (mut x0, mut x1) = all
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
            (a.min(p.0), b.max(p.0))
        });
    let (mut y0, mut y1) = all
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
            (a.min(p.1), b.max(p.1))
        });
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    let pad = 0.03 * (x1 - x0);
    (x0, x1) = (
        (x0 - pad).max(if x0 >= 0.0 { 0.0 } else { f64::MIN }),
        x1 + pad,
    );
    // Whole decades, so the log axis shows its powers of ten.
    (y0, y1) = (
        10f64.powf(y0.log10().floor()),
        10f64.powf(y1.log10().ceil()),
    );
    if y1 <= y0 {
        y1 = y0 * 10.0;
    }
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.caption, (FONT, 20))
        .margin(15)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(x0..x1, (y0..y1).log_scale())
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc(&panel.x_desc)
        .y_desc(&panel.y_desc)
        .axis_desc_style((FONT, 16))
        .label_style((FONT, 14))
        .x_label_formatter(&x_label)
        .y_label_formatter(&|y: &f64| format!("{y:.0e}"))
        .bold_line_style(BLACK.mix(0.08))
        .light_line_style(TRANSPARENT)
        .draw()
        .map_err(e)?;
    draw_lines(
        &mut chart,
        panel,
        kept,
        false,
        SeriesLabelPosition::UpperRight,
    )
}

/// An (x, y) point of a series.
type Point = (f64, f64);

/// Draws `panel`'s series on `chart` (the points each keeps, a dot on each
/// point with `markers`), each with its legend entry, and the legend at
/// `legend`: the same styling on a linear or a log axis.
pub(super) fn draw_lines<'a, DB, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    panel: &CurvePanel,
    keep: fn(&[Point]) -> Vec<Point>,
    markers: bool,
    legend: SeriesLabelPosition,
) -> std::result::Result<(), String>
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let e = |err: DrawingAreaErrorKind<DB::ErrorType>| err.to_string();
    for s in &panel.series {
        let color = PALETTE[s.color % PALETTE.len()];
        let style = ShapeStyle::from(color).stroke_width(2);
        let points = keep(&s.points);
        let dots = points
            .iter()
            .filter(|_| markers)
            .map(|&p| Circle::new(p, 3, style.filled()))
            .collect::<Vec<_>>();
        if s.dashed {
            chart
                .draw_series(DashedLineSeries::new(points, 6, 4, style))
                .map_err(e)?
                .label(s.label.clone())
                .legend(move |(x, y)| {
                    DashedPathElement::new(vec![(x, y), (x + 24, y)], 5, 3, style)
                });
        } else {
            chart
                .draw_series(LineSeries::new(points, style))
                .map_err(e)?
                .label(s.label.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], style));
        }
        chart.draw_series(dots).map_err(e)?;
    }
    chart
        .configure_series_labels()
        .position(legend)
        .margin(12)
        .label_font((FONT, 14))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .draw()
        .map_err(e)?;
    Ok(())
}
