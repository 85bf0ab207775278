//! The `query top N --chart FILE.svg` bar chart: most active accounts, SVG only.
//!
//! Built on plotters' SVG backend without font features (no fontconfig/freetype needed); text is
//! written as SVG `<text>` and laid out with plotters' naive metrics.

use std::path::{Path, PathBuf};

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Why the chart could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot draw the chart into {path}")]
pub struct ChartError {
    /// The SVG file.
    pub path: PathBuf,
    /// What plotters reported.
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// Draws `rows` (username, distinct tweets; most active first) as a labelled horizontal bar
/// chart into the SVG file `path`: a title, the usernames on the vertical axis, and each count
/// at the end of its bar.
pub fn top_chart_svg(rows: &[(String, u64)], path: &Path) -> Result<(), ChartError> {
    draw(rows, path).map_err(|source| ChartError {
        path: path.to_path_buf(),
        source,
    })
}

fn draw(
    rows: &[(String, u64)],
    path: &Path,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let n = rows.len().max(1);
    let max = rows.iter().map(|(_, c)| *c).max().unwrap_or(0).max(1);
    let height = 120 + 36 * n as u32;
    let root = SVGBackend::new(path, (800, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let title = if rows.is_empty() {
        "Most active accounts (none yet)".to_string()
    } else {
        format!("Most active accounts (top {})", rows.len())
    };
    // Rank 0 at the top: row i sits at segment n - 1 - i.
    let label = |v: &SegmentValue<usize>| match v {
        SegmentValue::CenterOf(i) if *i < rows.len() => rows[rows.len() - 1 - *i].0.clone(),
        _ => String::new(),
    };
    let longest = rows
        .iter()
        .map(|(u, _)| u.chars().count())
        .max()
        .unwrap_or(4) as u32;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 24))
        .margin(16)
        .x_label_area_size(36)
        .y_label_area_size((longest * 8 + 16).clamp(60, 300))
        .build_cartesian_2d(0u64..max + max / 8 + 1, (0usize..n).into_segmented())?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n + 1)
        .y_label_formatter(&label)
        .x_desc("distinct tweets")
        .draw()?;
    let count = rows.len();
    chart.draw_series(
        Histogram::horizontal(&chart)
            .style(RGBColor(70, 110, 180).filled())
            .margin(6)
            .data(
                rows.iter()
                    .enumerate()
                    .map(|(i, (_, c))| (count - 1 - i, *c)),
            ),
    )?;
    chart.draw_series(rows.iter().enumerate().map(|(i, (_, c))| {
        Text::new(
            format!(" {c}"),
            (*c, SegmentValue::CenterOf(count - 1 - i)),
            ("sans-serif", 14)
                .into_font()
                .into_text_style(&root)
                .pos(Pos::new(HPos::Left, VPos::Center)),
        )
    }))?;
    root.present()?;
    Ok(())
}
