//! `cnncost compare`: one row per network, and the lecture's comparison
//! chart (MACs on x, top-1 accuracy on y, bubble area by parameters).

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

/// Draws the chart of the entries that have a top-1 accuracy, to an `.svg`
/// or `.png` file. Returns how many networks were drawn.
pub fn plot(entries: &[Entry], path: &Path) -> Result<usize, String> {
    let drawn: Vec<&Entry> = entries.iter().filter(|e| e.top1.is_some()).collect();
    if drawn.is_empty() {
        return Err("no network has a published top-1 accuracy (`meta top1 = ...`) to plot".into());
    }
    let size = (1200, 800);
    match path.extension().and_then(|x| x.to_str()) {
        Some("svg") => draw(SVGBackend::new(path, size).into_drawing_area(), &drawn),
        Some("png") => draw(BitMapBackend::new(path, size).into_drawing_area(), &drawn),
        _ => Err(format!(
            "`{}`: the plot must be a .svg or .png file",
            path.display()
        )),
    }?;
    Ok(drawn.len())
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    entries: &[&Entry],
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
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Accuracy against cost (bubble area ∝ parameters)",
            ("sans-serif", 30),
        )
        .margin(20)
        .x_label_area_size(60)
        .y_label_area_size(70)
        .build_cartesian_2d(
            ((xmin / 1.6)..(xmax * 1.6)).log_scale(),
            (ymin - 4.0).floor()..(ymax + 3.0).ceil(),
        )
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("multiply-accumulates per image (G, log scale)")
        .y_desc("published top-1 accuracy (%)")
        .axis_desc_style(("sans-serif", 22))
        .label_style(("sans-serif", 18))
        .x_label_formatter(&|v| format!("{v:.1}"))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(e)?;
    // Largest first, so small bubbles stay visible on top.
    let mut order: Vec<&&Entry> = entries.iter().collect();
    order.sort_by_key(|e| std::cmp::Reverse(e.params));
    for x in &order {
        let (px, py) = (gmacs(x), x.top1.unwrap_or(0.0));
        let c = family_colour(&x.name);
        chart
            .draw_series(std::iter::once(Circle::new(
                (px, py),
                radius(x.params) as i32,
                c.mix(0.35).filled(),
            )))
            .map_err(e)?;
        chart
            .draw_series(std::iter::once(Circle::new(
                (px, py),
                radius(x.params) as i32,
                c.stroke_width(2),
            )))
            .map_err(e)?;
    }
    // Labels after every bubble, so none is hidden.
    for x in entries {
        let (px, py) = (gmacs(x), x.top1.unwrap_or(0.0));
        let label = format!("{} ({:.1}M)", x.name, x.params as f64 / 1e6);
        chart
            .draw_series(std::iter::once(
                EmptyElement::at((px, py))
                    + Circle::new((0, 0), 3, BLACK.filled())
                    + Text::new(
                        label,
                        (6, -18),
                        ("sans-serif", 17).into_font().color(&BLACK),
                    ),
            ))
            .map_err(e)?;
    }
    root.present().map_err(e)?;
    Ok(())
}
