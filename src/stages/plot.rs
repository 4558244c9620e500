//! `report --plot`: a run's learning curves as one figure of four panels
//! (held-out success, training losses, self-play and training throughput),
//! read from the evals, curves and metrics stores and written twice: PNG to
//! look at, SVG to scale in a page.

use crate::error::{Error, Result};
use crate::metrics;
use crate::store::parquet_io::read_part;
use crate::store::rows::{curves_from_batch, CurveRow, MetricRow};
use crate::store::{complete_parts, list_partition, RunDir, Store};
use crate::tasks::Family;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Figure size: pixels of the PNG, user units of the SVG.
pub const SIZE: (u32, u32) = (1400, 900);

/// The font of every label. Read at run time rather than looked up through
/// fontconfig, so the binary needs no system font library, only this file.
pub const FONT_FILE: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

/// The family name the font is registered (and every text drawn) under.
const FONT: &str = "sans-serif";

/// Tableau 10: ten colours that stay apart in print and for most
/// colour-blind readers; a family keeps its colour across panels.
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

/// Held-out success of one family across iterations.
#[derive(Clone, Debug, PartialEq)]
pub struct FamilySuccess {
    pub family: Family,
    /// `(iteration, rate, ci_low, ci_high)`, ascending by iteration.
    pub points: Vec<(u32, f64, f64, f64)>,
}

/// One stage's throughput across iterations.
#[derive(Clone, Debug, PartialEq)]
pub struct Throughput {
    pub stage: String,
    /// What was counted: episodes, steps, ...
    pub unit: String,
    /// `(iteration, items per second)`, ascending by iteration.
    pub points: Vec<(u32, f64)>,
}

/// Everything the figure shows, read before anything is drawn so a bad
/// store fails the command before a file is written.
struct Figure {
    title: String,
    success: Vec<FamilySuccess>,
    /// Rows of family `all`; empty for runs without a curves store.
    curves: Vec<CurveRow>,
    play: Vec<Throughput>,
    train: Vec<Throughput>,
    /// First and last iteration of any iteration-indexed panel, so those
    /// panels share their x axis.
    iterations: (u32, u32),
}

/// Writes `curves.png` and `curves.svg` into `dir` (created if missing) and
/// returns their paths.
pub fn write_plots(run: &RunDir, dir: &Path) -> Result<Vec<PathBuf>> {
    let fig = read_figure(run)?;
    register_font()?;
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let png = render(dir, "curves.png", |p| {
        draw_figure(&BitMapBackend::new(p, SIZE).into_drawing_area(), &fig)
    })?;
    let svg = render(dir, "curves.svg", |p| {
        draw_figure(&SVGBackend::new(p, SIZE).into_drawing_area(), &fig)
    })?;
    Ok(vec![png, svg])
}

fn read_figure(run: &RunDir) -> Result<Figure> {
    let success = read_success(run)?;
    let curves = read_curves(run)?
        .into_iter()
        .filter(|r| r.family == "all")
        .collect();
    let play = throughput(&metrics::read_stage(run, "play")?);
    let train = throughput(&metrics::read_stage(run, "train")?);
    let its = success
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .chain(
            play.iter()
                .chain(&train)
                .flat_map(|t| t.points.iter().map(|p| p.0)),
        );
    let (lo, hi) = its.fold((u32::MAX, 0), |(lo, hi), i| (lo.min(i), hi.max(i)));
    Ok(Figure {
        title: format!("Learning curves: {}", run.root.display()),
        success,
        curves,
        play,
        train,
        iterations: (lo.min(hi), hi),
    })
}

/// The headline rate of each family per evaluated iteration: the trained
/// candidate on all difficulties, alone for puzzles and against rollout
/// MCTS for two-player games (the opponent the report's table leads with).
/// No evaluated iteration is an error, as for the table.
pub fn read_success(run: &RunDir) -> Result<Vec<FamilySuccess>> {
    let evaluated = list_partition(&run.root.join("evals"), "iteration");
    if evaluated.is_empty() {
        return Err(Error::Data(format!(
            "{}: no evaluated iteration found; run `selfplay eval` first",
            run.root.display()
        )));
    }
    let mut out: Vec<FamilySuccess> = Vec::new();
    for (it, dir) in evaluated {
        for r in super::eval::read_evals(&dir)? {
            let opponent = if r.family.num_players() == 1 {
                "none"
            } else {
                "mcts_rollout"
            };
            if r.agent != "candidate" || r.bucket != "all" || r.opponent != opponent {
                continue;
            }
            let point = (it, r.rate, r.ci_low, r.ci_high);
            match out.iter_mut().find(|s| s.family == r.family) {
                Some(s) => s.points.push(point),
                None => out.push(FamilySuccess {
                    family: r.family,
                    points: vec![point],
                }),
            }
        }
    }
    out.sort_by_key(|s| s.family);
    Ok(out)
}

/// Every row of the curves store, by iteration; empty for a run written
/// before the trainer recorded curves.
pub fn read_curves(run: &RunDir) -> Result<Vec<CurveRow>> {
    let schema = Store::Curves.schema();
    let mut rows = Vec::new();
    for (_, dir) in list_partition(&run.root.join("curves"), "iteration") {
        for part in complete_parts(&dir)? {
            for b in read_part(&part, &schema)? {
                rows.extend(curves_from_batch(&b)?);
            }
        }
    }
    Ok(rows)
}

/// One series per (stage, unit). Shards of an iteration run side by side,
/// so their rate is the sum of their items over the slowest shard's
/// seconds (a single shard: its own `items_per_s`).
pub fn throughput(rows: &[MetricRow]) -> Vec<Throughput> {
    let mut out: Vec<Throughput> = Vec::new();
    let mut keys: Vec<(&str, &str, u32)> = rows
        .iter()
        .map(|r| (r.stage.as_str(), r.unit.as_str(), r.iteration))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    for (stage, unit, it) in keys {
        let shards = rows
            .iter()
            .filter(|r| r.stage == stage && r.unit == unit && r.iteration == it);
        let (items, secs) = shards.fold((0u64, 0f64), |(n, s), r| (n + r.items, s.max(r.seconds)));
        let rate = items as f64 / secs.max(1e-9);
        match out.iter_mut().find(|t| t.stage == stage && t.unit == unit) {
            Some(t) => t.points.push((it, rate)),
            None => out.push(Throughput {
                stage: stage.into(),
                unit: unit.into(),
                points: vec![(it, rate)],
            }),
        }
    }
    out
}

/// Registers [`FONT_FILE`] as `sans-serif`, once per process: plotters
/// keeps registered fonts for the program's life, so the bytes are leaked.
fn register_font() -> Result<()> {
    static REGISTERED: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            let bytes: &'static [u8] = Box::leak(read_font(FONT_FILE)?.into_boxed_slice());
            plotters::style::register_font(FONT, FontStyle::Normal, bytes).map_err(|_| {
                format!("{FONT_FILE}: not a TrueType font; reinstall fonts-dejavu-core")
            })
        })
        .clone()
        .map_err(Error::Other)
}

/// The font file's bytes, or one line naming it and the package that
/// provides it.
fn read_font(path: &str) -> std::result::Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| {
        format!("{path}: {e}; install the Debian package fonts-dejavu-core (scripts/setup.sh does)")
    })
}

/// Draws into a unique temporary name in `dir` and renames it over
/// `dir/name`, so no reader sees a half-written figure (a pid alone is not
/// unique across the hosts of a cluster). The temporary name keeps the
/// extension: the PNG encoder picks the format by it.
fn render(dir: &Path, name: &str, draw: impl FnOnce(&Path) -> Result<()>) -> Result<PathBuf> {
    let target = dir.join(name);
    let tmp = tempfile::Builder::new()
        .prefix(".")
        .suffix(&format!(".{name}"))
        .tempfile_in(dir)
        .map_err(|e| Error::io(dir, e))?
        .into_temp_path()
        .keep()
        .map_err(|e| Error::io(dir, e.error))?;
    let written = draw(&tmp)
        .map_err(|e| e.with_context(target.display().to_string()))
        .and_then(|()| std::fs::rename(&tmp, &target).map_err(|e| Error::io(&target, e)));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map(|()| target)
}

/// A plotters error as one of ours (drawing errors are rare: a backend
/// that cannot write its file).
fn drawn<T, E: std::fmt::Display>(r: std::result::Result<T, E>) -> Result<T> {
    r.map_err(|e| Error::Other(format!("drawing the figure: {e}")))
}

/// Layout: held-out success across the top (the headline, with room for
/// a legend of every family beside it), the three training panels below.
fn draw_figure<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, fig: &Figure) -> Result<()> {
    drawn(root.fill(&WHITE))?;
    let body = drawn(root.margin(8, 8, 8, 16).titled(&fig.title, (FONT, 22)))?;
    let (top, bottom) = body.split_vertically(body.dim_in_pixel().1 / 2);
    success_panel(&top, fig)?;
    let lower = bottom.split_evenly((1, 3));
    loss_panel(&lower[0], &fig.curves)?;
    throughput_panel(&lower[1], "Self-play throughput", &fig.play, fig)?;
    throughput_panel(&lower[2], "Training throughput", &fig.train, fig)?;
    drawn(root.present())
}

/// X range of the iteration panels: half an iteration of air either side.
fn iteration_range(fig: &Figure) -> std::ops::Range<f64> {
    let (lo, hi) = fig.iterations;
    lo as f64 - 0.5..hi as f64 + 0.5
}

/// At most a dozen ticks: plotters then steps by a round number of
/// iterations, and long runs keep readable labels.
fn iteration_ticks(lo: u32, hi: u32) -> usize {
    ((hi - lo + 2) as usize).min(12)
}

/// Iterations are whole numbers: label those ticks, leave the rest blank.
fn whole(x: &f64) -> String {
    if (x - x.round()).abs() < 1e-9 {
        format!("{x:.0}")
    } else {
        String::new()
    }
}

/// A tick value without trailing zeros: `30`, `2.5`, `0.25`.
fn tidy(y: &f64) -> String {
    let s = format!("{y:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Width of the family legend right of the success panel.
const LEGEND_WIDTH: u32 = 170;

fn success_panel<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, fig: &Figure) -> Result<()> {
    let (lo, hi) = fig.iterations;
    let (plot, legend) = area.split_horizontally(area.dim_in_pixel().0 - LEGEND_WIDTH);
    let mut chart = drawn(
        ChartBuilder::on(&plot)
            .caption(
                "Held-out success per family, 95% Wilson interval (two-player games: score vs rollout MCTS)",
                (FONT, 18),
            )
            .margin(10)
            .x_label_area_size(45)
            .y_label_area_size(70)
            .build_cartesian_2d(iteration_range(fig), 0f64..1.0),
    )?;
    drawn(
        chart
            .configure_mesh()
            .x_desc("iteration")
            .y_desc("success rate / score")
            .x_labels(iteration_ticks(lo, hi))
            .x_label_formatter(&whole)
            .y_label_formatter(&|y| format!("{:.0}%", y * 100.0))
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 15))
            .light_line_style(WHITE.mix(0.0))
            .draw(),
    )?;
    for (i, s) in fig.success.iter().enumerate() {
        let color = family_color(i);
        let x = |it: u32| it as f64;
        let band: Vec<(f64, f64)> = s
            .points
            .iter()
            .map(|p| (x(p.0), p.3))
            .chain(s.points.iter().rev().map(|p| (x(p.0), p.2)))
            .collect();
        drawn(chart.draw_series(std::iter::once(Polygon::new(band, color.mix(0.12)))))?;
        // Whiskers keep the interval visible where the band is a line
        // (a single iteration).
        drawn(
            chart.draw_series(
                s.points
                    .iter()
                    .map(|p| PathElement::new(vec![(x(p.0), p.2), (x(p.0), p.3)], color.mix(0.5))),
            ),
        )?;
        let line = s.points.iter().map(|p| (x(p.0), p.1));
        drawn(chart.draw_series(LineSeries::new(line, color.stroke_width(2))))?;
        drawn(
            chart.draw_series(
                s.points
                    .iter()
                    .map(|p| Circle::new((x(p.0), p.1), 3, color.filled())),
            ),
        )?;
    }
    family_legend(&legend, &fig.success)
}

fn family_color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// The families' colours in a column of their own: with ten families an
/// in-plot legend would hide the curves.
fn family_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    series: &[FamilySuccess],
) -> Result<()> {
    let left = TextStyle::from((FONT, 15).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    drawn(area.draw_text("family", &left, (10, 50)))?;
    for (i, s) in series.iter().enumerate() {
        let y = 78 + 22 * i as i32;
        let color = family_color(i);
        drawn(area.draw(&PathElement::new(
            vec![(10, y), (36, y)],
            color.stroke_width(3),
        )))?;
        drawn(area.draw_text(s.family.name(), &left, (44, y)))?;
    }
    Ok(())
}

/// The corner of a chart with the fewest data points (fractions of the
/// axes, 0..1) in its quadrant, for the legend; upper corners win ties.
fn legend_corner(points: impl Iterator<Item = (f64, f64)>) -> SeriesLabelPosition {
    let mut count = [0usize; 4];
    for (x, y) in points {
        count[usize::from(y < 0.5) * 2 + usize::from(x < 0.5)] += 1;
    }
    let corners = [
        SeriesLabelPosition::UpperRight,
        SeriesLabelPosition::UpperLeft,
        SeriesLabelPosition::LowerRight,
        SeriesLabelPosition::LowerLeft,
    ];
    let best = (0..4).min_by_key(|&i| count[i]).unwrap_or(0);
    corners[best].clone()
}

/// How a figure is read off a curves row.
type Measure = fn(&CurveRow) -> f64;

/// Policy and value loss against the minibatch step: train solid, held-out
/// dashed, one colour per loss.
fn loss_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    curves: &[CurveRow],
) -> Result<()> {
    const CAPTION: &str = "Training losses (family all)";
    if curves.is_empty() {
        return empty_panel(
            area,
            CAPTION,
            &[
                "no curves store",
                "(a run from before the trainer recorded curves)",
            ],
        );
    }
    let max_step = curves.iter().map(|r| r.step).max().unwrap_or(0).max(1) as f64;
    let min_step = curves.iter().map(|r| r.step).min().unwrap_or(0) as f64;
    let top = curves
        .iter()
        .flat_map(|r| [r.policy_loss, r.value_loss])
        .filter(|v| v.is_finite())
        .fold(0f64, f64::max)
        .max(1e-3)
        * 1.08;
    let mut chart = drawn(
        ChartBuilder::on(area)
            .caption(CAPTION, (FONT, 18))
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(60)
            .build_cartesian_2d(min_step..max_step, 0f64..top),
    )?;
    drawn(
        chart
            .configure_mesh()
            .x_desc("minibatch step")
            .y_desc("loss")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&tidy)
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 15))
            .light_line_style(WHITE.mix(0.0))
            .draw(),
    )?;
    let losses: [(&str, Measure, RGBColor); 2] = [
        ("policy", |r| r.policy_loss, PALETTE[0]),
        ("value", |r| r.value_loss, PALETTE[1]),
    ];
    for (name, get, color) in losses {
        for split in ["train", "heldout"] {
            let mut pts: Vec<(f64, f64)> = curves
                .iter()
                .filter(|r| r.split == split && get(r).is_finite())
                .map(|r| (r.step as f64, get(r)))
                .collect();
            if pts.is_empty() {
                continue;
            }
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            let style = color.stroke_width(2);
            let label = format!("{name} loss, {split}");
            if split == "train" {
                drawn(chart.draw_series(LineSeries::new(pts, style)))?
                    .label(label)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], style));
            } else {
                drawn(chart.draw_series(DashedLineSeries::new(pts, 8, 5, style)))?
                    .label(label)
                    .legend(move |(x, y)| {
                        DashedPathElement::new(vec![(x, y), (x + 24, y)], 8, 5, style)
                    });
            }
        }
    }
    let frac = curves.iter().flat_map(|r| {
        let x = (r.step as f64 - min_step) / (max_step - min_step).max(1.0);
        [(x, r.policy_loss / top), (x, r.value_loss / top)]
    });
    draw_legend(&mut chart, frac)
}

/// Items per second of one stage per iteration; a stage that counted in
/// several units gets one line per unit.
fn throughput_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    caption: &str,
    series: &[Throughput],
    fig: &Figure,
) -> Result<()> {
    let Some(first) = series.first() else {
        return empty_panel(area, caption, &["no metrics for this stage"]);
    };
    let (lo, hi) = fig.iterations;
    let top = series
        .iter()
        .flat_map(|t| t.points.iter().map(|p| p.1))
        .filter(|v| v.is_finite())
        .fold(0f64, f64::max)
        .max(1e-3)
        * 1.1;
    let units: Vec<&str> = series.iter().map(|t| t.unit.as_str()).collect();
    let mut chart = drawn(
        ChartBuilder::on(area)
            .caption(format!("{caption} (all shards)"), (FONT, 18))
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(60)
            .build_cartesian_2d(iteration_range(fig), 0f64..top),
    )?;
    drawn(
        chart
            .configure_mesh()
            .x_desc("iteration")
            .y_desc(format!("{} per second", units.join(", ")))
            .x_labels(iteration_ticks(lo, hi))
            .x_label_formatter(&whole)
            .y_label_formatter(&tidy)
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 15))
            .light_line_style(WHITE.mix(0.0))
            .draw(),
    )?;
    let color_base = if first.stage == "train" { 2 } else { 0 };
    for (i, t) in series.iter().enumerate() {
        let color = PALETTE[(color_base + i) % PALETTE.len()];
        let pts: Vec<(f64, f64)> = t.points.iter().map(|p| (p.0 as f64, p.1)).collect();
        drawn(chart.draw_series(LineSeries::new(pts.clone(), color.stroke_width(2))))?
            .label(format!("{} {}/s", t.stage, t.unit))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        drawn(chart.draw_series(pts.into_iter().map(|p| Circle::new(p, 3, color.filled()))))?;
    }
    let span = (hi - lo + 1) as f64;
    let frac = series.iter().flat_map(|t| {
        t.points
            .iter()
            .map(move |p| ((p.0 - lo) as f64 / span, p.1 / top))
    });
    draw_legend(&mut chart, frac)
}

/// The series legend, in the panel corner where the data (as fractions
/// of the axes) is not.
fn draw_legend<'a, DB: DrawingBackend + 'a>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    frac: impl Iterator<Item = (f64, f64)>,
) -> Result<()> {
    drawn(
        chart
            .configure_series_labels()
            .position(legend_corner(frac))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .label_font((FONT, 14))
            .draw(),
    )
}

/// A panel whose store is missing: its caption and why, in place of axes.
fn empty_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    caption: &str,
    why: &[&str],
) -> Result<()> {
    // The margin a chart's caption sits below, so captions line up.
    let inner = drawn(area.margin(10, 10, 10, 10).titled(caption, (FONT, 18)))?;
    let (w, h) = inner.dim_in_pixel();
    let grey = BLACK.mix(0.6);
    let style = TextStyle::from((FONT, 16).into_font())
        .color(&grey)
        .pos(Pos::new(HPos::Center, VPos::Center));
    for (i, line) in why.iter().enumerate() {
        let y = h as i32 / 2 + 24 * i as i32;
        drawn(inner.draw_text(line, &style, (w as i32 / 2, y)))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metric(stage: &str, iteration: u32, shard: u32, items: u64, seconds: f64) -> MetricRow {
        MetricRow {
            stage: stage.into(),
            iteration,
            shard,
            items,
            unit: "episodes".into(),
            seconds,
            items_per_s: items as f64 / seconds,
            cpu_pct: 100.0,
            peak_rss_mb: 100.0,
            detail: Default::default(),
        }
    }

    #[test]
    fn shards_of_an_iteration_add_up_over_the_slowest() {
        let rows = [
            metric("play", 2, 0, 30, 2.0),
            metric("play", 1, 0, 10, 1.0),
            metric("play", 2, 1, 50, 5.0),
        ];
        let t = throughput(&rows);
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].unit, "episodes");
        assert_eq!(t[0].points, vec![(1, 10.0), (2, 16.0)]);
    }

    #[test]
    fn a_missing_font_names_the_file_and_the_package() {
        let e = read_font("/nonexistent/DejaVuSans.ttf").unwrap_err();
        assert!(e.starts_with("/nonexistent/DejaVuSans.ttf: "), "{e}");
        assert!(e.contains("fonts-dejavu-core") && !e.contains('\n'), "{e}");
    }

    #[test]
    fn the_legend_goes_where_the_data_is_not() {
        let rising = [(0.1, 0.1), (0.5, 0.5), (0.9, 0.9)];
        assert!(matches!(
            legend_corner(rising.into_iter()),
            SeriesLabelPosition::UpperLeft
        ));
        let flat_high = [(0.1, 0.9), (0.9, 0.9)];
        assert!(matches!(
            legend_corner(flat_high.into_iter()),
            SeriesLabelPosition::LowerRight
        ));
    }

    #[test]
    fn integer_ticks_only() {
        assert_eq!(whole(&3.0), "3");
        assert_eq!(whole(&2.5), "");
        assert_eq!(
            (tidy(&30.0), tidy(&2.5), tidy(&0.25), tidy(&0.0)),
            ("30".into(), "2.5".into(), "0.25".into(), "0".into())
        );
    }
}
