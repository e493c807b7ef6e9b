//! PDF: A4 landscape pages with the site's name (or alias) and the report's title in a header,
//! "Page N of M" in a footer, the chart on the first page and the table across as many pages
//! as it needs, its heading repeated on each. Text is set in the PDF base-14 Helvetica, so the
//! file embeds no font and any reader (and `pdftotext`) gets real text back. Charts are drawn
//! in grey: pdf-canvas writes RGB colours with an operator that needs a colour space it never
//! sets, which strict readers reject, and grey prints well anyway.

use std::io::{self, Read, Seek};

use pdf_canvas::graphicsstate::Color;
use pdf_canvas::{BuiltinFont, Canvas, FontSource, Pdf};

use crate::model::{Cell, Chart, Report};
use crate::ReportError;

const PAGE_W: f32 = 842.0;
const PAGE_H: f32 = 595.0;
const MARGIN: f32 = 36.0;
const CONTENT_W: f32 = PAGE_W - 2.0 * MARGIN;
/// Where content starts below the header, and stops above the footer.
const TOP: f32 = PAGE_H - 48.0;
const BOTTOM: f32 = 40.0;
const TABLE_SIZE: f32 = 8.0;
const ROW_H: f32 = 11.5;
const CELL_PAD: f32 = 6.0;
const REGULAR: BuiltinFont = BuiltinFont::Helvetica;
const BOLD: BuiltinFont = BuiltinFont::Helvetica_Bold;

pub(crate) fn render(report: &Report) -> Result<Vec<u8>, ReportError> {
    render_all(std::slice::from_ref(report))
}

/// One document of several reports, each starting on a new page under the first one's header.
pub(crate) fn render_all(sections: &[Report]) -> Result<Vec<u8>, ReportError> {
    write(sections).map_err(|e| ReportError::Render(format!("writing the PDF failed: {e}")))
}

fn write(sections: &[Report]) -> io::Result<Vec<u8>> {
    let Some(head) = sections.first() else {
        return Err(io::Error::other("a document needs at least one report"));
    };
    let mut file = tempfile::tempfile()?;
    let mut pdf = Pdf::new(file.try_clone()?)?;
    pdf.set_title(&format!("{} — {}", head.title, head.site));
    pdf.set_creator(&format!("Tally {}", env!("CARGO_PKG_VERSION")));
    let laid_out: Vec<_> = sections
        .iter()
        .map(|r| (r, column_widths(r), paginate(r)))
        .collect();
    let total = laid_out.iter().map(|(_, _, pages)| pages.len()).sum();
    let mut page = 0;
    for (report, widths, pages) in &laid_out {
        for (n, rows) in pages.iter().enumerate() {
            page += 1;
            pdf.render_page(PAGE_W, PAGE_H, |c| {
                frame(c, head, page, total)?;
                let mut y = TOP;
                if n == 0 {
                    y = intro(c, report, y)?;
                }
                if !report.columns.is_empty() && (!rows.is_empty() || n == 0) {
                    table(c, report, widths, rows.clone(), y)?;
                }
                Ok(())
            })?;
        }
    }
    pdf.finish()?;
    let mut bytes = Vec::new();
    file.rewind()?;
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The row range each page holds; the first page also holds the title and the chart.
fn paginate(report: &Report) -> Vec<std::ops::Range<usize>> {
    let room = |top: f32| (((top - BOTTOM) / ROW_H) as usize).saturating_sub(1);
    let first = room(TOP - intro_height(report));
    let other = room(TOP).max(1);
    let first_page = 0..first.min(report.rows.len());
    let mut start = first_page.end;
    let mut pages = Vec::from([first_page]);
    while start < report.rows.len() {
        let end = (start + other).min(report.rows.len());
        pages.push(start..end);
        start = end;
    }
    pages
}

fn intro_height(report: &Report) -> f32 {
    let text = 24.0 + 13.0 + 12.0 * report.notes.len() as f32 + 8.0;
    text + report.chart.as_ref().map(chart_height).unwrap_or(0.0)
}

fn chart_height(chart: &Chart) -> f32 {
    match chart {
        Chart::Bars { bars, .. } => 18.0 + 12.0 * bars.len() as f32 + 12.0,
        Chart::HeatMap { rows, .. } => 18.0 + 13.0 * (rows.len() as f32 + 1.0) + 12.0,
    }
}

/// Header and footer, on every page.
fn frame(c: &mut Canvas, report: &Report, page: usize, pages: usize) -> io::Result<()> {
    let y = PAGE_H - 26.0;
    c.left_text(MARGIN, y, BOLD, 10.0, &report.site)?;
    c.right_text(PAGE_W - MARGIN, y, REGULAR, 9.0, &report.title)?;
    c.set_stroke_color(Color::gray(90))?;
    c.set_line_width(1.0)?;
    c.line(MARGIN, y - 6.0, PAGE_W - MARGIN, y - 6.0)?;
    c.stroke()?;
    let generated = report.generated_at.format("%Y-%m-%d %H:%M UTC");
    c.left_text(
        MARGIN,
        22.0,
        REGULAR,
        8.0,
        &format!("Generated {generated} by Tally"),
    )?;
    c.right_text(
        PAGE_W - MARGIN,
        22.0,
        REGULAR,
        8.0,
        &format!("Page {page} of {pages}"),
    )
}

/// Title, parameters, notes and chart; returns where the table starts.
fn intro(c: &mut Canvas, report: &Report, mut y: f32) -> io::Result<f32> {
    y -= 18.0;
    c.left_text(MARGIN, y, BOLD, 16.0, &report.title)?;
    y -= 15.0;
    let params: Vec<String> = report
        .params
        .iter()
        .map(|(k, v)| format!("{k} = {v}"))
        .collect();
    let meta = match params.is_empty() {
        true => "No parameters".to_string(),
        false => format!("Parameters: {}", params.join(", ")),
    };
    c.left_text(
        MARGIN,
        y,
        REGULAR,
        9.0,
        &fit(&meta, REGULAR, 9.0, CONTENT_W),
    )?;
    for note in &report.notes {
        y -= 12.0;
        c.left_text(MARGIN, y, REGULAR, 9.0, &fit(note, REGULAR, 9.0, CONTENT_W))?;
    }
    y -= 8.0;
    if let Some(chart) = &report.chart {
        draw_chart(c, chart, y)?;
        y -= chart_height(chart);
    }
    Ok(y)
}

fn draw_chart(c: &mut Canvas, chart: &Chart, top: f32) -> io::Result<()> {
    match chart {
        Chart::Bars { title, unit, bars } => {
            c.left_text(MARGIN, top - 12.0, BOLD, 10.0, title)?;
            let max = bars
                .iter()
                .map(|b| b.1)
                .fold(0.0, f64::max)
                .max(f64::MIN_POSITIVE);
            let label_w = 160.0;
            let bar_w = CONTENT_W - label_w - 60.0;
            for (i, (label, value)) in bars.iter().enumerate() {
                let y = top - 18.0 - 12.0 * (i as f32 + 1.0);
                let shown = fit(label, REGULAR, 8.0, label_w - 6.0);
                c.right_text(MARGIN + label_w - 6.0, y + 2.0, REGULAR, 8.0, &shown)?;
                let w = ((value / max) as f32 * bar_w).max(1.0);
                c.set_fill_color(Color::gray(110))?;
                c.rectangle(MARGIN + label_w, y, w, 9.0)?;
                c.fill()?;
                c.set_fill_color(Color::gray(0))?;
                let text = crate::model::chart_value(*value, unit);
                c.left_text(MARGIN + label_w + w + 4.0, y + 2.0, REGULAR, 8.0, &text)?;
            }
        }
        Chart::HeatMap {
            title,
            rows,
            columns,
            values,
        } => {
            c.left_text(MARGIN, top - 12.0, BOLD, 10.0, title)?;
            let max = crate::model::heat_map_max(values);
            let (label_w, cell_w, cell_h) = (40.0, 24.0, 13.0);
            let head = top - 18.0 - cell_h;
            for (j, col) in columns.iter().enumerate() {
                let x = MARGIN + label_w + cell_w * (j as f32 + 0.5);
                c.center_text(x, head + 3.0, REGULAR, 7.0, col)?;
            }
            for (i, (row, cells)) in rows.iter().zip(values).enumerate() {
                let y = head - cell_h * (i as f32 + 1.0);
                c.set_fill_color(Color::gray(0))?;
                c.left_text(MARGIN, y + 3.0, REGULAR, 8.0, row)?;
                for (j, v) in cells.iter().enumerate() {
                    let shade = 245.0 - 205.0 * (v / max);
                    c.set_fill_color(Color::gray(shade as u8))?;
                    c.rectangle(
                        MARGIN + label_w + cell_w * j as f32,
                        y,
                        cell_w - 1.0,
                        cell_h - 1.0,
                    )?;
                    c.fill()?;
                }
            }
            c.set_fill_color(Color::gray(0))?;
        }
    }
    Ok(())
}

/// Each column as wide as its widest text, scaled down together when the table is too wide.
fn column_widths(report: &Report) -> Vec<f32> {
    let mut widths: Vec<f32> = report
        .columns
        .iter()
        .map(|c| BOLD.get_width(TABLE_SIZE, &c.label) + CELL_PAD)
        .collect();
    for row in &report.rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = w.max(REGULAR.get_width(TABLE_SIZE, &cell.display()) + CELL_PAD);
        }
    }
    let total: f32 = widths.iter().sum();
    if total > CONTENT_W {
        widths.iter_mut().for_each(|w| *w *= CONTENT_W / total);
    }
    widths
}

fn table(
    c: &mut Canvas,
    report: &Report,
    widths: &[f32],
    rows: std::ops::Range<usize>,
    top: f32,
) -> io::Result<()> {
    let mut y = top - ROW_H;
    let labels: Vec<Cell> = report
        .columns
        .iter()
        .map(|c| Cell::text(&c.label))
        .collect();
    table_row(c, report, widths, &labels, y, BOLD)?;
    c.set_stroke_color(Color::gray(0))?;
    c.set_line_width(0.5)?;
    c.line(
        MARGIN,
        y - 3.0,
        MARGIN + widths.iter().sum::<f32>(),
        y - 3.0,
    )?;
    c.stroke()?;
    if report.rows.is_empty() {
        return c.left_text(MARGIN, y - ROW_H, REGULAR, TABLE_SIZE, "No rows.");
    }
    for row in &report.rows[rows] {
        y -= ROW_H;
        table_row(c, report, widths, row, y, REGULAR)?;
    }
    Ok(())
}

fn table_row(
    c: &mut Canvas,
    report: &Report,
    widths: &[f32],
    cells: &[Cell],
    y: f32,
    font: BuiltinFont,
) -> io::Result<()> {
    let mut x = MARGIN;
    for ((cell, col), w) in cells.iter().zip(&report.columns).zip(widths) {
        let text = fit(&cell.display(), font, TABLE_SIZE, w - CELL_PAD);
        match col.numeric {
            true => c.right_text(x + w - CELL_PAD / 2.0, y, font, TABLE_SIZE, &text)?,
            false => c.left_text(x + CELL_PAD / 2.0, y, font, TABLE_SIZE, &text)?,
        }
        x += w;
    }
    Ok(())
}

/// `text`, cut with an ellipsis where it would be wider than `width`.
fn fit(text: &str, font: BuiltinFont, size: f32, width: f32) -> String {
    // The tolerance absorbs rounding in widths computed as text width plus padding.
    let width = width + 0.01;
    if font.get_width(size, text) <= width {
        return text.to_string();
    }
    let mut cut: String = text.to_string();
    while !cut.is_empty() && font.get_width(size, &format!("{cut}…")) > width {
        cut.pop();
    }
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_cut_to_width_with_an_ellipsis() {
        let cut = fit("a-very-long-host-name.example.org", REGULAR, 8.0, 40.0);
        assert!(cut.ends_with('…') && cut.len() < 20, "{cut}");
        assert!(REGULAR.get_width(8.0, &cut) <= 40.0);
        assert_eq!(fit("pc1", REGULAR, 8.0, 40.0), "pc1");
    }
}
