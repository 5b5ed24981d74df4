//! The course experiments' pictures (`lab::course`, `wgpu-train course`, `examples/course/`):
//! line and dot charts on linear or logarithmic axes (cost curves,
//! trajectories, error against h), contour maps with descent paths, and a
//! confusion matrix. Same fonts, colours and atomic writes as
//! [`super::plot_history`].
//!
//! A logarithmic axis is drawn as log10 of the values on a linear axis whose
//! ticks are labelled as powers of ten: plotters' log coordinates would give
//! every panel a different Rust type, and one panel type keeps the drawing
//! code single.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;

use super::{FONT, PALETTE, encode_png, is_png, register_fonts};
use crate::error::{Error, Result};

/// How a line's points are drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark {
    /// Joined by a line.
    Line,
    /// Dots only (scattered data).
    Dots,
    /// A line with a dot on each point (trajectories).
    LineDots,
}

/// One labelled set of points.
#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    pub label: String,
    /// Index into matplotlib's tab10 palette.
    pub color: usize,
    pub mark: Mark,
    /// (x, y); non-finite points (and, on a log axis, non-positive ones)
    /// are left out.
    pub points: Vec<(f64, f64)>,
}

impl Line {
    /// A line of `mark` in palette colour `color`.
    pub fn new(
        label: impl Into<String>,
        color: usize,
        mark: Mark,
        points: Vec<(f64, f64)>,
    ) -> Self {
        Self {
            label: label.into(),
            color,
            mark,
            points,
        }
    }
}

/// One panel of line charts.
#[derive(Clone, Debug, PartialEq)]
pub struct Axes {
    pub caption: String,
    pub x_desc: String,
    pub y_desc: String,
    pub x_log: bool,
    pub y_log: bool,
    pub lines: Vec<Line>,
}

impl Axes {
    /// A panel with linear axes.
    pub fn linear(caption: &str, x_desc: &str, y_desc: &str, lines: Vec<Line>) -> Self {
        Self {
            caption: caption.to_string(),
            x_desc: x_desc.to_string(),
            y_desc: y_desc.to_string(),
            x_log: false,
            y_log: false,
            lines,
        }
    }
}

/// A contour map of a function of two variables sampled on a grid, with
/// paths drawn over it.
#[derive(Clone, Debug, PartialEq)]
pub struct Contour {
    pub caption: String,
    /// The grid's x and y ranges.
    pub x: (f64, f64),
    pub y: (f64, f64),
    /// Points per side.
    pub grid: usize,
    /// `grid × grid` values, row `j` (y) after row `j − 1`.
    pub values: Vec<f64>,
    /// The values at which contour lines are drawn.
    pub levels: Vec<f64>,
    /// Paths (descent trajectories) and marked points over the map.
    pub paths: Vec<Line>,
}

impl Contour {
    /// Samples `f` on a `grid × grid` lattice over `x` × `y`.
    pub fn sample(
        caption: &str,
        f: impl Fn(f64, f64) -> f64,
        x: (f64, f64),
        y: (f64, f64),
        grid: usize,
        levels: Vec<f64>,
        paths: Vec<Line>,
    ) -> Self {
        let at = |r: (f64, f64), i: usize| r.0 + (r.1 - r.0) * i as f64 / (grid - 1).max(1) as f64;
        let values = (0..grid)
            .flat_map(|j| (0..grid).map(move |i| (at(x, i), at(y, j))))
            .map(|(a, b)| f(a, b))
            .collect();
        Self {
            caption: caption.to_string(),
            x,
            y,
            grid,
            values,
            levels,
            paths,
        }
    }
}

/// What one picture holds.
enum Picture<'a> {
    Charts(&'a [Axes]),
    Contour(&'a Contour),
    Confusion(&'a [Vec<u64>], &'a [String]),
}

/// Draws `panels` side by side to `path` (`.svg` or `.png`).
pub fn plot_axes(path: &Path, title: &str, panels: &[Axes]) -> Result<()> {
    if panels.is_empty() || panels.iter().any(|p| kept_points(p).is_empty()) {
        return Err(Error::Plot {
            file: path.to_path_buf(),
            msg: "nothing to plot: a panel has no finite point".to_string(),
        });
    }
    render(
        path,
        title,
        (620 * panels.len() as u32, 520),
        Picture::Charts(panels),
    )
}

/// Draws a contour map with its paths to `path` (`.svg` or `.png`).
pub fn plot_contour(path: &Path, title: &str, contour: &Contour) -> Result<()> {
    if contour.grid < 2 || contour.values.len() != contour.grid * contour.grid {
        return Err(Error::Plot {
            file: path.to_path_buf(),
            msg: format!(
                "a contour needs grid ≥ 2 and grid² values, got grid {} and {} values",
                contour.grid,
                contour.values.len()
            ),
        });
    }
    render(path, title, (640, 600), Picture::Contour(contour))
}

/// Draws a confusion matrix (rows: true class, columns: predicted class),
/// each cell shaded by its share of its row, to `path` (`.svg` or `.png`).
pub fn plot_confusion(
    path: &Path,
    title: &str,
    matrix: &[Vec<u64>],
    labels: &[String],
) -> Result<()> {
    let n = matrix.len();
    if n == 0 || matrix.iter().any(|r| r.len() != n) || labels.len() != n {
        return Err(Error::Plot {
            file: path.to_path_buf(),
            msg: format!(
                "a confusion matrix must be square with one label per class ({n} rows, {} labels)",
                labels.len()
            ),
        });
    }
    render(path, title, (700, 640), Picture::Confusion(matrix, labels))
}

fn render(path: &Path, title: &str, size: (u32, u32), picture: Picture<'_>) -> Result<()> {
    let err = |msg: String| Error::Plot {
        file: path.to_path_buf(),
        msg,
    };
    let png = is_png(path)?;
    register_fonts().map_err(err)?;
    let bytes = if png {
        let mut rgb = vec![0u8; size.0 as usize * size.1 as usize * 3];
        {
            let root = BitMapBackend::with_buffer(&mut rgb, size).into_drawing_area();
            draw(&root, title, &picture).map_err(err)?;
            root.present().map_err(|e| err(e.to_string()))?;
        }
        encode_png(&rgb, size).map_err(err)?
    } else {
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
            draw(&root, title, &picture).map_err(err)?;
            root.present().map_err(|e| err(e.to_string()))?;
        }
        svg.into_bytes()
    };
    crate::files::write(path, &bytes).map_err(|e| err(format!("cannot write: {e}")))
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    picture: &Picture<'_>,
) -> std::result::Result<(), String>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let body = root
        .titled(title, (FONT, 24, FontStyle::Bold))
        .map_err(|e| e.to_string())?;
    match picture {
        Picture::Charts(panels) => {
            for (area, panel) in body.split_evenly((1, panels.len())).iter().zip(*panels) {
                draw_axes(area, panel)?;
            }
            Ok(())
        }
        Picture::Contour(c) => draw_contour(&body, c),
        Picture::Confusion(m, labels) => draw_confusion(&body, m, labels),
    }
}

/// A point as drawn: log10 of a log axis's value; `None` when it cannot be.
fn to_drawn(panel: &Axes, (x, y): (f64, f64)) -> Option<(f64, f64)> {
    let axis = |v: f64, log: bool| match (log, v.is_finite()) {
        (_, false) => None,
        (true, _) if v <= 0.0 => None,
        (true, _) => Some(v.log10()),
        (false, _) => Some(v),
    };
    Some((axis(x, panel.x_log)?, axis(y, panel.y_log)?))
}

fn kept_points(panel: &Axes) -> Vec<(f64, f64)> {
    panel
        .lines
        .iter()
        .flat_map(|l| l.points.iter().filter_map(|&p| to_drawn(panel, p)))
        .collect()
}

/// The range of `values`, padded 5% each side (or ±0.5 around a single value).
fn padded(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    if lo > hi {
        return (0.0, 1.0);
    }
    let pad = if hi > lo { 0.05 * (hi - lo) } else { 0.5 };
    (lo - pad, hi + pad)
}

/// A tick's label: the value, or for a log axis the power of ten it stands for.
fn tick(v: f64, log: bool) -> String {
    if log {
        if (v - v.round()).abs() < 1e-6 {
            format!("1e{}", v.round() as i64)
        } else {
            format!("{:.1e}", 10f64.powf(v))
        }
    } else {
        let r = (v * 1e6).round() / 1e6;
        format!("{r}")
    }
}

fn draw_axes<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &Axes,
) -> std::result::Result<(), String>
where
    DB::ErrorType: 'static,
{
    let e = |err: DrawingAreaErrorKind<DB::ErrorType>| err.to_string();
    let pts = kept_points(panel);
    let (x0, x1) = padded(pts.iter().map(|p| p.0));
    let (y0, y1) = padded(pts.iter().map(|p| p.1));
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.caption, (FONT, 18))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(e)?;
    let (xl, yl) = (panel.x_log, panel.y_log);
    chart
        .configure_mesh()
        .x_desc(&panel.x_desc)
        .y_desc(&panel.y_desc)
        .axis_desc_style((FONT, 15))
        .label_style((FONT, 13))
        .x_label_formatter(&|v: &f64| tick(*v, xl))
        .y_label_formatter(&|v: &f64| tick(*v, yl))
        .bold_line_style(BLACK.mix(0.08))
        .light_line_style(TRANSPARENT)
        .draw()
        .map_err(e)?;
    for line in &panel.lines {
        let color = PALETTE[line.color % PALETTE.len()];
        let style = ShapeStyle::from(color).stroke_width(2);
        let points: Vec<(f64, f64)> = line
            .points
            .iter()
            .filter_map(|&p| to_drawn(panel, p))
            .collect();
        let mark = line.mark;
        if mark != Mark::Dots {
            chart
                .draw_series(LineSeries::new(points.clone(), style))
                .map_err(e)?;
        }
        if mark != Mark::Line {
            chart
                .draw_series(points.iter().map(|&p| Circle::new(p, 3, style.filled())))
                .map_err(e)?;
        }
        // Lines without a label (one of many alike) get no legend entry.
        if line.label.is_empty() {
            continue;
        }
        chart
            .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())
            .map_err(e)?
            .label(line.label.clone())
            .legend(move |(x, y)| {
                // Dots show a dot, lines a stroke, line-and-dots both.
                let (from, radius) = match mark {
                    Mark::Dots => (12, 3),
                    Mark::Line => (0, 0),
                    Mark::LineDots => (0, 3),
                };
                EmptyElement::at((x, y))
                    + PathElement::new(vec![(from, 0), (24 - from, 0)], style)
                    + Circle::new((12, 0), radius, style.filled())
            });
    }
    if panel.lines.iter().any(|l| !l.label.is_empty()) {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .margin(10)
            .label_font((FONT, 13))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .draw()
            .map_err(e)?;
    }
    Ok(())
}

/// The contour segments of one grid cell at `level` (marching squares):
/// where the level crosses the cell's edges, interpolated linearly, joined
/// in pairs. `corners` are the values at (x0,y0), (x1,y0), (x1,y1), (x0,y1).
fn cell_segments(corners: [(f64, f64, f64); 4], level: f64) -> Vec<((f64, f64), (f64, f64))> {
    let mut crossings = Vec::with_capacity(4);
    for k in 0..4 {
        let (xa, ya, va) = corners[k];
        let (xb, yb, vb) = corners[(k + 1) % 4];
        if (va < level) != (vb < level) {
            let t = (level - va) / (vb - va);
            crossings.push((xa + t * (xb - xa), ya + t * (yb - ya)));
        }
    }
    // Two crossings: one segment; four (a saddle): two, paired along the
    // edges' order, which is one of the two consistent choices.
    crossings.chunks_exact(2).map(|c| (c[0], c[1])).collect()
}

fn draw_contour<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    c: &Contour,
) -> std::result::Result<(), String>
where
    DB::ErrorType: 'static,
{
    let e = |err: DrawingAreaErrorKind<DB::ErrorType>| err.to_string();
    let mut chart = ChartBuilder::on(area)
        .caption(&c.caption, (FONT, 18))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(55)
        .build_cartesian_2d(c.x.0..c.x.1, c.y.0..c.y.1)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("x")
        .y_desc("y")
        .axis_desc_style((FONT, 15))
        .label_style((FONT, 13))
        .x_label_formatter(&|v: &f64| tick(*v, false))
        .y_label_formatter(&|v: &f64| tick(*v, false))
        .bold_line_style(BLACK.mix(0.05))
        .light_line_style(TRANSPARENT)
        .draw()
        .map_err(e)?;
    let g = c.grid;
    let at = |r: (f64, f64), i: usize| r.0 + (r.1 - r.0) * i as f64 / (g - 1) as f64;
    let (lo, hi) = c
        .levels
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    for &level in &c.levels {
        // viridis-like: dark blue for low levels to yellow-green for high.
        let t = if hi > lo {
            (level - lo) / (hi - lo)
        } else {
            0.5
        };
        let color = RGBColor(
            (68.0 + t * (180.0 - 68.0)) as u8,
            (1.0 + t * (222.0 - 1.0)) as u8,
            (84.0 + t * (44.0 - 84.0)) as u8,
        );
        let mut segments = Vec::new();
        for j in 0..g - 1 {
            for i in 0..g - 1 {
                let v = |ii: usize, jj: usize| (at(c.x, ii), at(c.y, jj), c.values[jj * g + ii]);
                segments.extend(cell_segments(
                    [v(i, j), v(i + 1, j), v(i + 1, j + 1), v(i, j + 1)],
                    level,
                ));
            }
        }
        chart
            .draw_series(segments.into_iter().map(|(a, b)| {
                PathElement::new(vec![a, b], ShapeStyle::from(color).stroke_width(1))
            }))
            .map_err(e)?;
    }
    for line in &c.paths {
        let color = PALETTE[line.color % PALETTE.len()];
        let style = ShapeStyle::from(color).stroke_width(2);
        let inside: Vec<(f64, f64)> = line
            .points
            .iter()
            .copied()
            .filter(|&(x, y)| x.is_finite() && y.is_finite())
            .collect();
        if line.mark != Mark::Dots {
            chart
                .draw_series(LineSeries::new(inside.clone(), style))
                .map_err(e)?;
        }
        let mark = line.mark;
        chart
            .draw_series(
                inside
                    .iter()
                    .filter(|_| mark != Mark::Line)
                    .map(|&p| Circle::new(p, 3, style.filled())),
            )
            .map_err(e)?
            .label(line.label.clone())
            .legend(move |(x, y)| {
                EmptyElement::at((x, y)) + Circle::new((12, 0), 4, style.filled())
            });
    }
    if !c.paths.is_empty() {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .margin(10)
            .label_font((FONT, 13))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .draw()
            .map_err(e)?;
    }
    Ok(())
}

fn draw_confusion<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    m: &[Vec<u64>],
    labels: &[String],
) -> std::result::Result<(), String>
where
    DB::ErrorType: 'static,
{
    let e = |err: DrawingAreaErrorKind<DB::ErrorType>| err.to_string();
    let n = m.len();
    let nf = n as f64;
    let mut chart = ChartBuilder::on(area)
        .margin(15)
        .x_label_area_size(60)
        .y_label_area_size(90)
        .build_cartesian_2d(0.0..nf, 0.0..nf)
        .map_err(e)?;
    // Cell centres at k + 0.5; the true class's row 0 at the top, as
    // scikit-learn draws it.
    let name = |v: f64| {
        let k = v.floor();
        if (v - k - 0.5).abs() < 1e-6 && k >= 0.0 && (k as usize) < n {
            Some(k as usize)
        } else {
            None
        }
    };
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("predicted class")
        .y_desc("true class")
        .axis_desc_style((FONT, 15))
        .label_style((FONT, 12))
        .x_labels(2 * n + 1)
        .y_labels(2 * n + 1)
        .x_label_formatter(&|v: &f64| name(*v).map_or(String::new(), |k| labels[k].clone()))
        .y_label_formatter(&|v: &f64| name(*v).map_or(String::new(), |k| labels[n - 1 - k].clone()))
        .draw()
        .map_err(e)?;
    for (r, row) in m.iter().enumerate() {
        let total: u64 = row.iter().sum::<u64>().max(1);
        for (col, &count) in row.iter().enumerate() {
            let share = count as f64 / total as f64;
            // White to matplotlib's "Blues" darkest blue.
            let mix = |w: f64, b: f64| (w + share * (b - w)) as u8;
            let fill = RGBColor(mix(247.0, 8.0), mix(251.0, 48.0), mix(255.0, 107.0));
            let (x, y) = (col as f64, (n - 1 - r) as f64);
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(x, y), (x + 1.0, y + 1.0)],
                    fill.filled(),
                )))
                .map_err(e)?;
            let ink = if share > 0.5 { WHITE } else { BLACK };
            let size = if n > 12 { 9 } else { 13 };
            chart
                .draw_series(std::iter::once(Text::new(
                    count.to_string(),
                    (x + 0.5, y + 0.5),
                    (FONT, size).into_font().color(&ink).pos(
                        plotters::style::text_anchor::Pos::new(
                            plotters::style::text_anchor::HPos::Center,
                            plotters::style::text_anchor::VPos::Center,
                        ),
                    ),
                )))
                .map_err(e)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_level_crossing_one_corner_gives_one_segment() {
        let s = cell_segments(
            [
                (0.0, 0.0, 0.0),
                (1.0, 0.0, 0.0),
                (1.0, 1.0, 2.0),
                (0.0, 1.0, 0.0),
            ],
            1.0,
        );
        assert_eq!(s, vec![((1.0, 0.5), (0.5, 1.0))]);
        let none = cell_segments(
            [
                (0.0, 0.0, 0.0),
                (1.0, 0.0, 0.0),
                (1.0, 1.0, 0.5),
                (0.0, 1.0, 0.0),
            ],
            1.0,
        );
        assert!(none.is_empty());
    }

    #[test]
    fn log_ticks_name_powers_of_ten() {
        assert_eq!(tick(-3.0, true), "1e-3");
        assert_eq!(tick(0.5, false), "0.5");
    }
}
