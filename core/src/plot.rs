//! PNG plots shared by training evaluation and on-device calibration: ROC curves and score
//! histograms with the operating thresholds marked.
//!
//! Text is rendered with the DejaVu Sans font from Debian's `fonts-dejavu-core` (installed
//! by `cargo xtask setup`, a dependency of the edge packages); [`PlotError::Font`] says so
//! when it is missing. PNGs are written atomically.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::prelude::*;
use thiserror::Error;

use crate::metrics::Roc;

/// Where the font is looked for, in order; `FAS_FONT` overrides.
pub const FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
];

#[derive(Debug, Error)]
pub enum PlotError {
    #[error("no font for plot text: looked at $FAS_FONT and {tried:?}; install Debian's fonts-dejavu-core or set FAS_FONT to a .ttf file")]
    Font { tried: Vec<String> },
    #[error("plotting {path}: {msg}")]
    Draw { path: PathBuf, msg: String },
    #[error("{path}: cannot write the plot — check that the directory exists and is writable")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("nothing to plot: {0}")]
    Empty(&'static str),
}

fn ensure_font() -> Result<(), PlotError> {
    static LOADED: OnceLock<Result<(), Vec<String>>> = OnceLock::new();
    let res = LOADED.get_or_init(|| {
        let mut tried = Vec::new();
        let candidates = std::env::var("FAS_FONT")
            .ok()
            .into_iter()
            .chain(FONT_PATHS.iter().map(|s| s.to_string()));
        for p in candidates {
            if let Ok(bytes) = std::fs::read(&p) {
                let leaked: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font("sans-serif", FontStyle::Normal, leaked).is_ok() {
                    return Ok(());
                }
            }
            tried.push(p);
        }
        Err(tried)
    });
    res.clone().map_err(|tried| PlotError::Font { tried })
}

fn draw_err(path: &Path, e: impl std::fmt::Display) -> PlotError {
    PlotError::Draw {
        path: path.to_path_buf(),
        msg: e.to_string(),
    }
}

const SIZE: (u32, u32) = (640, 480);
const SERIES: [RGBColor; 6] = [
    BLUE,
    RED,
    RGBColor(0, 140, 60),
    MAGENTA,
    RGBColor(0, 120, 140),
    BLACK,
];

/// Renders into an RGB buffer with `draw`, then writes it as PNG atomically.
fn render_png<F>(path: &Path, draw: F) -> Result<(), PlotError>
where
    F: FnOnce(DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>) -> Result<(), PlotError>,
{
    ensure_font()?;
    let mut buf = vec![0u8; (SIZE.0 * SIZE.1 * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| draw_err(path, e))?;
        draw(root.clone())?;
        root.present().map_err(|e| draw_err(path, e))?;
    }
    let img = image::RgbImage::from_raw(SIZE.0, SIZE.1, buf).expect("buffer sized for the image");
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| draw_err(path, e))?;
    crate::atomic::write_atomic(path, &png).map_err(|source| PlotError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// ROC curves (bona fide acceptance rate vs attack acceptance rate), one per `(name, roc)`.
pub fn roc_png(path: &Path, title: &str, curves: &[(&str, &Roc)]) -> Result<(), PlotError> {
    if curves.is_empty() {
        return Err(PlotError::Empty("no ROC curve"));
    }
    render_png(path, |root| {
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(0f64..1f64, 0f64..1f64)
            .map_err(|e| draw_err(path, e))?;
        chart
            .configure_mesh()
            .x_desc("APCER (attacks accepted)")
            .y_desc("1 - BPCER (bona fide accepted)")
            .draw()
            .map_err(|e| draw_err(path, e))?;
        chart
            .draw_series(LineSeries::new([(0.0, 0.0), (1.0, 1.0)], BLACK.mix(0.3)))
            .map_err(|e| draw_err(path, e))?;
        for (i, (name, roc)) in curves.iter().enumerate() {
            let color = SERIES[i % SERIES.len()];
            let pts: Vec<(f64, f64)> = roc.fpr().into_iter().zip(roc.tpr()).collect();
            let label = format!("{name} (AUC {:.4})", roc.auc());
            chart
                .draw_series(LineSeries::new(pts, color.stroke_width(2)))
                .map_err(|e| draw_err(path, e))?
                .label(label)
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 18, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| draw_err(path, e))
    })
}

/// Histogram of bona fide and attack scores in [0, 1] (`bins` bins, as fractions of each
/// class) with vertical lines at the named thresholds.
pub fn score_histogram_png(
    path: &Path,
    title: &str,
    bona_fide: &[f64],
    attacks: &[f64],
    thresholds: &[(&str, f64)],
    bins: usize,
) -> Result<(), PlotError> {
    if bona_fide.is_empty() && attacks.is_empty() {
        return Err(PlotError::Empty("no scores"));
    }
    let bins = bins.max(1);
    let hist = |xs: &[f64]| -> Vec<f64> {
        let mut h = vec![0.0; bins];
        for &x in xs.iter().filter(|x| x.is_finite()) {
            let b = ((x.clamp(0.0, 1.0) * bins as f64) as usize).min(bins - 1);
            h[b] += 1.0;
        }
        let n = xs.len().max(1) as f64;
        h.iter_mut().for_each(|v| *v /= n);
        h
    };
    let (hb, ha) = (hist(bona_fide), hist(attacks));
    let ymax = hb.iter().chain(&ha).cloned().fold(0.0, f64::max).max(1e-3) * 1.1;
    render_png(path, |root| {
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(0f64..1f64, 0f64..ymax)
            .map_err(|e| draw_err(path, e))?;
        chart
            .configure_mesh()
            .x_desc("score (p_live)")
            .y_desc("fraction of class")
            .draw()
            .map_err(|e| draw_err(path, e))?;
        let w = 1.0 / bins as f64;
        for (name, h, color) in [
            (format!("bona fide (n={})", bona_fide.len()), &hb, BLUE),
            (format!("attack (n={})", attacks.len()), &ha, RED),
        ] {
            chart
                .draw_series(h.iter().enumerate().map(|(i, &v)| {
                    let x0 = i as f64 * w;
                    Rectangle::new([(x0, 0.0), (x0 + w, v)], color.mix(0.35).filled())
                }))
                .map_err(|e| draw_err(path, e))?
                .label(name)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 14, y + 5)], color.mix(0.5).filled())
                });
        }
        for (i, (name, t)) in thresholds.iter().enumerate() {
            let color = SERIES[(i + 2) % SERIES.len()];
            chart
                .draw_series(LineSeries::new(
                    [(*t, 0.0), (*t, ymax)],
                    color.stroke_width(2),
                ))
                .map_err(|e| draw_err(path, e))?
                .label(format!("{name} = {t:.4}"))
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 18, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperMiddle)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| draw_err(path, e))
    })
}

/// One named line of a [`lines_png`] plot: `(x, y)` points, drawn in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// Line plot of `lines` on shared axes (ranges fitted to the finite points, with 5 %
/// headroom), e.g. training curves. Non-finite points are skipped; a line with one point
/// is drawn as a marker.
pub fn lines_png(
    path: &Path,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    lines: &[Line],
) -> Result<(), PlotError> {
    // Each line's finite points, filtered once for the ranges and the drawing.
    let kept: Vec<(&str, Vec<(f64, f64)>)> = lines
        .iter()
        .map(|l| {
            let p = l.points.iter().copied();
            (
                l.name.as_str(),
                p.filter(|(x, y)| x.is_finite() && y.is_finite()).collect(),
            )
        })
        .collect();
    let ((x0, x1), (y0, y1)) = kept.iter().flat_map(|(_, p)| p).fold(
        (
            (f64::INFINITY, f64::NEG_INFINITY),
            (f64::INFINITY, f64::NEG_INFINITY),
        ),
        |((xa, xb), (ya, yb)), &(x, y)| ((xa.min(x), xb.max(x)), (ya.min(y), yb.max(y))),
    );
    if x0 > x1 {
        return Err(PlotError::Empty("no finite point in any line"));
    }
    let span = |lo: f64, hi: f64| {
        let pad = if hi > lo {
            0.05 * (hi - lo)
        } else {
            0.5 * lo.abs().max(1.0)
        };
        (lo - pad)..(hi + pad)
    };
    render_png(path, |root| {
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(span(x0, x1), span(y0, y1))
            .map_err(|e| draw_err(path, e))?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .x_label_formatter(&|x| {
                if (x - x.round()).abs() < 1e-9 {
                    format!("{}", x.round())
                } else {
                    format!("{x:.2}")
                }
            })
            .draw()
            .map_err(|e| draw_err(path, e))?;
        for (i, (name, p)) in kept.iter().enumerate() {
            let color = SERIES[i % SERIES.len()];
            if p.is_empty() {
                continue;
            }
            chart
                .draw_series(p.iter().map(|&q| Circle::new(q, 3, color.filled())))
                .map_err(|e| draw_err(path, e))?;
            chart
                .draw_series(LineSeries::new(p.iter().copied(), color.stroke_width(2)))
                .map_err(|e| draw_err(path, e))?
                .label(*name)
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 18, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| draw_err(path, e))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::Label;

    fn tmp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("fas-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    #[test]
    fn roc_and_histogram_are_written_as_png() {
        let scores = [0.9, 0.8, 0.35, 0.6, 0.2, 0.1, 0.55, 0.05];
        let labels = [
            Label::Live,
            Label::Live,
            Label::Live,
            Label::Spoof,
            Label::Spoof,
            Label::Spoof,
            Label::Live,
            Label::Spoof,
        ];
        let roc = Roc::new(&scores, &labels).unwrap();
        let p = tmp("roc.png");
        roc_png(&p, "test ROC", &[("model", &roc)]).unwrap();
        let img = image::open(&p).unwrap();
        assert_eq!((img.width(), img.height()), SIZE);
        // The curve was drawn: some strongly blue pixels exist.
        let rgb = img.to_rgb8();
        assert!(rgb.pixels().any(|p| p[2] > 200 && p[0] < 60 && p[1] < 60));

        let h = tmp("hist.png");
        score_histogram_png(
            &h,
            "scores",
            &[0.9, 0.8, 0.7],
            &[0.1, 0.2],
            &[("EER", 0.5)],
            20,
        )
        .unwrap();
        assert!(image::open(&h).is_ok());
    }

    #[test]
    fn empty_input_is_an_error() {
        assert!(matches!(
            roc_png(&tmp("x.png"), "t", &[]),
            Err(PlotError::Empty(_))
        ));
        assert!(matches!(
            score_histogram_png(&tmp("y.png"), "t", &[], &[], &[], 10),
            Err(PlotError::Empty(_))
        ));
        let nan = Line {
            name: "nan".into(),
            points: vec![(f64::NAN, 1.0), (0.0, f64::INFINITY)],
        };
        assert!(matches!(
            lines_png(&tmp("z.png"), "t", "x", "y", &[nan]),
            Err(PlotError::Empty(_))
        ));
    }

    #[test]
    fn lines_are_drawn_in_their_colours() {
        let p = tmp("lines.png");
        let lines = [
            Line {
                name: "loss".into(),
                points: (0..20)
                    .map(|i| (i as f64, 1.0 / (1.0 + i as f64)))
                    .collect(),
            },
            Line {
                name: "single point".into(),
                points: vec![(10.0, 0.5)],
            },
            Line {
                name: "skips non-finite".into(),
                points: vec![(0.0, 0.2), (5.0, f64::NAN), (19.0, 0.3)],
            },
        ];
        lines_png(&p, "curves", "step", "value", &lines).unwrap();
        let img = image::open(&p).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), SIZE);
        let blue = img
            .pixels()
            .filter(|q| q[2] > 200 && q[0] < 60 && q[1] < 60)
            .count();
        let red = img
            .pixels()
            .filter(|q| q[0] > 200 && q[1] < 60 && q[2] < 60)
            .count();
        assert!(blue > 100, "loss line: {blue} blue pixels");
        assert!(red > 10, "single-point marker: {red} red pixels");
        // A constant line still gets a non-empty y range.
        let flat = Line {
            name: "flat".into(),
            points: vec![(0.0, 1.0), (1.0, 1.0)],
        };
        lines_png(&tmp("flat.png"), "flat", "x", "y", &[flat]).unwrap();
    }
}
