//! The runs as PNG charts: arrival compliance so far, and the tickets waiting, over the
//! simulated hours, one line per policy. Drawn with plotters into a bitmap in memory and
//! encoded with `png`; text needs a TrueType font handed in as bytes (no system font lookup,
//! so it works offline and the same everywhere).

use super::Dispatch;
use super::run::RunOutcome;
use crate::engine::DispatchPolicy;
use plotters::prelude::*;
use plotters::style::FontStyle;
use std::sync::OnceLock;

const WIDTH: u32 = 900;
const HEIGHT: u32 = 480;

#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error("the font is not a TrueType or OpenType font plotters can read")]
    Font,
    #[error("no font loaded: call charts::use_font first")]
    NoFont,
    #[error("drawing the chart failed: {0}")]
    Draw(String),
    #[error("encoding the PNG failed: {0}")]
    Encode(#[from] png::EncodingError),
}

static FONT: OnceLock<()> = OnceLock::new();

/// Makes `font` (the bytes of a .ttf / .otf file) the charts' font, once per process; later
/// calls keep the first. plotters keeps registered fonts for the life of the process and
/// wants them `'static`, so the bytes are leaked: one font, once.
pub fn use_font(font: Vec<u8>) -> Result<(), ChartError> {
    if FONT.get().is_some() {
        return Ok(());
    }
    let bytes: &'static [u8] = Box::leak(font.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| ChartError::Font)?;
    let _ = FONT.set(());
    Ok(())
}

/// One line of a chart.
#[derive(Debug, Clone)]
pub struct Series {
    pub label: String,
    pub colour: RGBColor,
    pub points: Vec<(f64, f64)>,
}

/// A run's colour, the same on every chart.
pub fn colour(dispatch: Dispatch) -> RGBColor {
    match dispatch {
        Dispatch::Policy(DispatchPolicy::Nearest) => RGBColor(31, 119, 180),
        Dispatch::Policy(DispatchPolicy::Station) => RGBColor(214, 39, 40),
        Dispatch::Policy(DispatchPolicy::Batch) => RGBColor(44, 160, 44),
        Dispatch::NearestWithStormMode => RGBColor(148, 103, 189),
    }
}

/// Arrival compliance so far (arrivals in time over arrivals and missed deadlines so far),
/// per policy.
pub fn compliance(scenario: &str, outcomes: &[RunOutcome]) -> Result<Vec<u8>, ChartError> {
    let series = outcomes
        .iter()
        .map(|o| Series {
            label: o.dispatch.to_string(),
            colour: colour(o.dispatch),
            points: o
                .samples
                .iter()
                .filter(|s| s.on_time + s.late > 0)
                .map(|s| {
                    (
                        s.hour,
                        100.0 * s.on_time as f64 / (s.on_time + s.late) as f64,
                    )
                })
                .collect(),
        })
        .collect::<Vec<_>>();
    line_chart(
        &format!("{scenario}: arrivals within deadline so far"),
        "%",
        &series,
        Some(100.0),
    )
}

/// Tickets waiting for a crew, per policy.
pub fn queue(scenario: &str, outcomes: &[RunOutcome]) -> Result<Vec<u8>, ChartError> {
    let series = outcomes
        .iter()
        .map(|o| Series {
            label: o.dispatch.to_string(),
            colour: colour(o.dispatch),
            points: o
                .samples
                .iter()
                .map(|s| (s.hour, s.queued as f64))
                .collect(),
        })
        .collect::<Vec<_>>();
    line_chart(
        &format!("{scenario}: tickets waiting for a crew"),
        "tickets",
        &series,
        None,
    )
}

/// A line chart over simulated hours, as PNG bytes.
pub fn line_chart(
    title: &str,
    y_label: &str,
    series: &[Series],
    y_max: Option<f64>,
) -> Result<Vec<u8>, ChartError> {
    if FONT.get().is_none() {
        return Err(ChartError::NoFont);
    }
    let draw = |e: &dyn std::fmt::Display| ChartError::Draw(e.to_string());
    let x_max = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .fold(1.0_f64, f64::max);
    let y_top = y_max.unwrap_or_else(|| {
        let top = series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .fold(0.0_f64, f64::max);
        (top * 1.1).max(1.0)
    });
    let mut pixels = vec![0u8; (WIDTH * HEIGHT * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| draw(&e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(75)
            .build_cartesian_2d(0.0..x_max, 0.0..y_top)
            .map_err(|e| draw(&e))?;
        chart
            .configure_mesh()
            .x_desc("simulated hour")
            .y_desc(y_label)
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.0}"))
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(|e| draw(&e))?;
        for s in series {
            let colour = s.colour;
            chart
                .draw_series(LineSeries::new(
                    s.points.iter().copied(),
                    colour.stroke_width(2),
                ))
                .map_err(|e| draw(&e))?
                .label(s.label.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(3))
                });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .label_font(("sans-serif", 15))
            .position(SeriesLabelPosition::UpperLeft)
            .draw()
            .map_err(|e| draw(&e))?;
        root.present().map_err(|e| draw(&e))?;
    }
    let mut png_bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut png_bytes, WIDTH, HEIGHT);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_compression(png::Compression::High);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(&pixels)?;
        writer.finish()?;
    }
    Ok(png_bytes)
}

/// For tests: the Debian font `scripts/test.sh` installs (fonts-dejavu-core).
#[cfg(test)]
pub(crate) mod tests_support {
    pub fn load_test_font() {
        let bytes = std::fs::read(crate::sim::files::DEFAULT_FONT)
            .expect("fonts-dejavu-core provides the test font (scripts/test.sh installs it)");
        super::use_font(bytes).expect("DejaVu Sans reads");
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::load_test_font;
    use super::*;

    #[test]
    fn a_chart_is_a_png_of_its_size_with_the_lines_drawn() {
        load_test_font();
        let series = vec![
            Series {
                label: "up".into(),
                colour: RGBColor(44, 160, 44),
                points: (0..=24)
                    .map(|h| (f64::from(h), f64::from(h) * 4.0))
                    .collect(),
            },
            Series {
                label: "flat".into(),
                colour: RGBColor(214, 39, 40),
                points: (0..=24).map(|h| (f64::from(h), 50.0)).collect(),
            },
        ];
        let bytes = line_chart("test", "%", &series, Some(100.0)).unwrap();
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut image = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut image).unwrap();
        assert_eq!((info.width, info.height), (WIDTH, HEIGHT));
        let has = |c: RGBColor| image.chunks(3).any(|p| p == [c.0, c.1, c.2]);
        assert!(has(RGBColor(44, 160, 44)) && has(RGBColor(214, 39, 40)));
        // Text was drawn: dark pixels that are not the lines' colours (axes are black too,
        // so look for anti-aliased greys, which only glyphs produce).
        let greys = image
            .chunks(3)
            .filter(|p| p[0] == p[1] && p[1] == p[2] && p[0] > 40 && p[0] < 200)
            .count();
        assert!(greys > 200, "{greys} grey pixels: no text?");
    }
}
