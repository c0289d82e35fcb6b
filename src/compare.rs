//! `cnncost compare`: one row per network, and the lecture's comparison
//! chart (MACs on x, top-1 accuracy on y, bubble area by parameters).

use analyzer::Analysis;
use dsl::Network;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

/// One network's figures.
#[derive(Clone, Debug)]
pub struct Entry {
    pub name: String,
    pub params: u64,
    pub macs: u64,
    pub flops: u64,
    pub activation_bytes: u64,
    pub depth: u64,
    /// Published top-1 accuracy in percent (`meta top1`), if any.
    pub top1: Option<f64>,
    /// The data set the accuracy is on (`meta dataset`).
    pub dataset: Option<String>,
}

impl Entry {
    /// The figures of network `net` (analyzed as `analysis`) under `name`.
    pub fn of(name: &str, net: &Network, analysis: &Analysis) -> Entry {
        Entry {
            name: name.to_string(),
            params: analysis.totals.params,
            macs: analysis.totals.macs,
            flops: analysis.totals.flops,
            activation_bytes: analysis.totals.activation_bytes,
            depth: analysis.totals.depth,
            top1: net.meta_number("top1"),
            dataset: net.meta_text("dataset").map(str::to_string),
        }
    }
}

/// The comparison table: a header line, then one line per network.
pub fn table(entries: &[Entry]) -> Vec<Vec<String>> {
    use analyzer::render::{kilobytes, thousands};
    let mut rows = vec![[
        "network",
        "params",
        "MACs",
        "FLOPs",
        "activations (KB)",
        "depth",
        "top-1 %",
    ]
    .map(String::from)
    .to_vec()];
    for e in entries {
        rows.push(vec![
            e.name.clone(),
            thousands(e.params),
            thousands(e.macs),
            thousands(e.flops),
            kilobytes(e.activation_bytes),
            e.depth.to_string(),
            match (e.top1, &e.dataset) {
                (Some(t), Some(d)) if d != "imagenet" => format!("{t} ({d})"),
                (Some(t), _) => format!("{t}"),
                _ => "-".into(),
            },
        ]);
    }
    rows
}

/// A colour per family, so VGGs, ResNets and the rest read apart.
fn family_colour(name: &str) -> RGBColor {
    let families: [(&str, RGBColor); 5] = [
        ("alexnet", RGBColor(214, 39, 40)),
        ("zfnet", RGBColor(255, 127, 14)),
        ("vgg", RGBColor(31, 119, 180)),
        ("googlenet", RGBColor(44, 160, 44)),
        ("resnet", RGBColor(148, 103, 189)),
    ];
    families
        .iter()
        .find(|(p, _)| name.starts_with(p))
        .map_or(RGBColor(100, 100, 100), |(_, c)| *c)
}

/// The data set most of the entries with a top-1 figure are measured on:
/// one chart compares one data set (ImageNet unless said otherwise).
fn main_dataset(entries: &[Entry]) -> Option<String> {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for e in entries.iter().filter(|e| e.top1.is_some()) {
        let d = e.dataset.clone().unwrap_or_else(|| "imagenet".into());
        match counts.iter_mut().find(|(n, _)| *n == d) {
            Some(c) => c.1 += 1,
            None => counts.push((d, 1)),
        }
    }
    counts.into_iter().max_by_key(|c| c.1).map(|c| c.0)
}

/// Draws the chart of the entries that have a top-1 accuracy on the most
/// common data set, to an `.svg` or `.png` file. Returns how many networks
/// were drawn and the data set.
pub fn plot(entries: &[Entry], path: &Path) -> Result<(usize, String), String> {
    let dataset = main_dataset(entries)
        .ok_or("no network has a published top-1 accuracy (`meta top1 = ...`) to plot")?;
    let drawn: Vec<&Entry> = entries
        .iter()
        .filter(|e| e.top1.is_some() && e.dataset.as_deref().unwrap_or("imagenet") == dataset)
        .collect();
    let size = (1400, 900);
    match path.extension().and_then(|x| x.to_str()) {
        Some("svg") => draw(
            SVGBackend::new(path, size).into_drawing_area(),
            &drawn,
            &dataset,
        ),
        Some("png") => draw(
            BitMapBackend::new(path, size).into_drawing_area(),
            &drawn,
            &dataset,
        ),
        _ => Err(format!(
            "`{}`: the plot must be a .svg or .png file",
            path.display()
        )),
    }?;
    Ok((drawn.len(), dataset))
}

/// A label's box in pixels.
#[derive(Clone, Copy)]
struct Box2 {
    x0: i32,
    y0: i32,
    x1: i32,
    y1: i32,
}

impl Box2 {
    fn overlaps(&self, o: &Box2) -> bool {
        self.x0 < o.x1 && o.x0 < self.x1 && self.y0 < o.y1 && o.y0 < self.y1
    }
}

const FONT: u32 = 17;

/// Chooses where each label goes: the first of eight positions around its
/// point that stays inside the plot and clear of the labels already placed.
fn place_labels(points: &[((i32, i32), String)], area: Box2) -> Vec<(i32, i32)> {
    let char_w = (FONT as f64 * 0.55) as i32;
    let h = FONT as i32 + 2;
    let mut placed: Vec<Box2> = Vec::new();
    let mut out = Vec::new();
    for ((px, py), text) in points {
        let w = text.chars().count() as i32 * char_w;
        let candidates = [
            (6, -h),
            (6, 2),
            (-w - 6, -h),
            (-w - 6, 2),
            (-w / 2, -h - 6),
            (-w / 2, 8),
            (6, -2 * h),
            (-w - 6, h),
        ];
        let boxes: Vec<(i32, i32, Box2)> = candidates
            .iter()
            .map(|&(dx, dy)| {
                let b = Box2 {
                    x0: px + dx,
                    y0: py + dy,
                    x1: px + dx + w,
                    y1: py + dy + h,
                };
                (dx, dy, b)
            })
            .collect();
        let inside =
            |b: &Box2| b.x0 >= area.x0 && b.x1 <= area.x1 && b.y0 >= area.y0 && b.y1 <= area.y1;
        let free = |b: &Box2| !placed.iter().any(|p| p.overlaps(b));
        let chosen = boxes
            .iter()
            .find(|(_, _, b)| inside(b) && free(b))
            .or_else(|| boxes.iter().find(|(_, _, b)| inside(b)))
            .unwrap_or(&boxes[0]);
        placed.push(chosen.2);
        out.push((chosen.0, chosen.1));
    }
    out
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    entries: &[&Entry],
    dataset: &str,
) -> Result<(), String> {
    let e = |err: DrawingAreaErrorKind<DB::ErrorType>| format!("cannot draw the chart: {err}");
    root.fill(&WHITE).map_err(e)?;
    let gmacs = |x: &Entry| x.macs as f64 / 1e9;
    let (xmin, xmax) = entries
        .iter()
        .map(|x| gmacs(x))
        .fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)));
    let (ymin, ymax) = entries
        .iter()
        .filter_map(|x| x.top1)
        .fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)));
    let max_params = entries.iter().map(|x| x.params).max().unwrap_or(1).max(1) as f64;
    // Bubble area proportional to parameters: the largest is 45 px in radius.
    let radius = |p: u64| (45.0 * (p as f64 / max_params).sqrt()).max(3.0);
    let title = match dataset {
        "imagenet" => "ImageNet top-1 accuracy against cost".to_string(),
        d => format!("{d} top-1 accuracy against cost"),
    };
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 30))
        .margin(25)
        .x_label_area_size(60)
        .y_label_area_size(70)
        .build_cartesian_2d(
            ((xmin / 1.8)..(xmax * 1.8)).log_scale(),
            (ymin - 4.0).floor()..(ymax + 3.0).ceil(),
        )
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("multiply-accumulates per image (G, log scale)")
        .y_desc("published top-1 accuracy (%)")
        .axis_desc_style(("sans-serif", 22))
        .label_style(("sans-serif", 18))
        .x_labels(8)
        .x_label_formatter(&|v| {
            if *v >= 1.0 {
                format!("{v:.0}")
            } else {
                format!("{v:.2}")
            }
        })
        .y_label_formatter(&|v| format!("{v:.0}"))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(e)?;
    // Largest first, so small bubbles stay visible on top.
    let mut order: Vec<&&Entry> = entries.iter().collect();
    order.sort_by_key(|e| std::cmp::Reverse(e.params));
    for x in &order {
        let (px, py) = (gmacs(x), x.top1.unwrap_or(0.0));
        let c = family_colour(&x.name);
        let r = radius(x.params) as i32;
        chart
            .draw_series([
                Circle::new((px, py), r, c.mix(0.3).filled()),
                Circle::new((px, py), r, c.stroke_width(2)),
            ])
            .map_err(e)?;
    }
    // Labels after every bubble, so none is hidden; placed to avoid each
    // other, most accurate first.
    let mut labelled: Vec<&&Entry> = entries.iter().collect();
    labelled.sort_by(|a, b| b.top1.unwrap_or(0.0).total_cmp(&a.top1.unwrap_or(0.0)));
    let (xr, yr) = chart.plotting_area().get_pixel_range();
    let area = Box2 {
        x0: xr.start,
        y0: yr.start,
        x1: xr.end,
        y1: yr.end,
    };
    let points: Vec<((i32, i32), String)> = labelled
        .iter()
        .map(|x| {
            let p = chart.backend_coord(&(gmacs(x), x.top1.unwrap_or(0.0)));
            (p, format!("{} ({:.1}M)", x.name, x.params as f64 / 1e6))
        })
        .collect();
    let offsets = place_labels(&points, area);
    for (x, ((_, text), off)) in labelled.iter().zip(points.iter().zip(offsets)) {
        let (px, py) = (gmacs(x), x.top1.unwrap_or(0.0));
        chart
            .draw_series(std::iter::once(
                EmptyElement::at((px, py))
                    + Circle::new((0, 0), 3, BLACK.filled())
                    + Text::new(
                        text.clone(),
                        off,
                        ("sans-serif", FONT).into_font().color(&BLACK),
                    ),
            ))
            .map_err(e)?;
    }
    // The bubble-size key, bottom right.
    let key = [10_000_000u64, 50_000_000, 100_000_000];
    let key: Vec<u64> = key
        .into_iter()
        .filter(|&k| (k as f64) <= max_params * 1.5)
        .collect();
    let (kx, ky) = (area.x1 - 80, area.y1 - 60);
    root.draw(&Text::new(
        "parameters",
        (kx - 40, ky - 100),
        ("sans-serif", FONT).into_font().color(&BLACK),
    ))
    .map_err(e)?;
    for (i, k) in key.iter().enumerate() {
        let r = radius(*k) as i32;
        let y = ky - 10 * i as i32;
        root.draw(&Circle::new((kx, y - r), r, BLACK.stroke_width(1)))
            .map_err(e)?;
        root.draw(&Text::new(
            format!("{}M", k / 1_000_000),
            (kx - r - 45, y - 2 * r),
            ("sans-serif", 14).into_font().color(&BLACK),
        ))
        .map_err(e)?;
    }
    root.present().map_err(e)?;
    Ok(())
}
