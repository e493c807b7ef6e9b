//! Self-contained HTML: inline CSS (with a print stylesheet) and inline SVG charts, so a
//! report can be mailed or archived as one file and printed as it looks.

use std::fmt::Write;

use crate::model::{Chart, Report};

const STYLE: &str = "
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 2rem; color: #1a202c; }
header { border-bottom: 2px solid #2b6cb0; margin-bottom: 1rem; }
header .site { font-size: .85rem; color: #4a5568; text-transform: uppercase; letter-spacing: .05em; }
h1 { font-size: 1.4rem; margin: .2rem 0 .4rem; }
.meta, .note { font-size: .85rem; color: #4a5568; margin: .2rem 0; }
figure { margin: 1rem 0; }
figcaption { font-size: .85rem; font-weight: 600; margin-bottom: .3rem; }
table { border-collapse: collapse; width: 100%; font-size: .85rem; }
th, td { border-bottom: 1px solid #e2e8f0; padding: .25rem .5rem; text-align: left; }
th { background: #edf2f7; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
.empty { color: #718096; font-style: italic; }
@media print {
  @page { size: A4 landscape; margin: 12mm; }
  body { margin: 0; font-size: 10pt; }
  thead { display: table-header-group; }
  tr, figure { break-inside: avoid; }
  th { background: none; border-bottom: 1px solid #000; }
}";

pub(crate) fn render(report: &Report) -> String {
    render_all(std::slice::from_ref(report))
}

/// One page of several reports: the first one's header, then each report's notes, chart and
/// table, the later ones under their own title.
pub(crate) fn render_all(sections: &[Report]) -> String {
    let mut html = String::new();
    let Some(report) = sections.first() else {
        return html;
    };
    let title = esc(&report.title);
    let site = esc(&report.site);
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"generator\" content=\"Tally {}\">\n<title>{title} — {site}</title>\n\
         <style>{STYLE}\n</style>\n</head>\n<body>\n<header>\n<div class=\"site\">{site}</div>\n\
         <h1>{title}</h1>\n<p class=\"meta\">Generated {} UTC",
        env!("CARGO_PKG_VERSION"),
        report.generated_at.format("%Y-%m-%d %H:%M"),
    );
    for (name, value) in &report.params {
        let _ = write!(html, " · {} = {}", esc(name), esc(value));
    }
    html.push_str("</p>\n</header>\n");
    for (i, section) in sections.iter().enumerate() {
        if i > 0 {
            let _ = writeln!(html, "<h2>{}</h2>", esc(&section.title));
        }
        for note in &section.notes {
            let _ = writeln!(html, "<p class=\"note\">{}</p>", esc(note));
        }
        if let Some(chart) = &section.chart {
            html.push_str(&chart_svg(chart));
        }
        let id = match i {
            0 => "report".to_string(),
            i => format!("report-{i}"),
        };
        table(&mut html, section, &id);
    }
    html.push_str("</body>\n</html>\n");
    html
}

fn table(html: &mut String, report: &Report, id: &str) {
    let _ = write!(
        html,
        "<table id=\"{id}\" data-report=\"{}\">\n<thead><tr>",
        esc(&report.name)
    );
    for c in &report.columns {
        let class = if c.numeric { " class=\"num\"" } else { "" };
        let _ = write!(
            html,
            "<th{class} data-key=\"{}\">{}</th>",
            esc(&c.key),
            esc(&c.label)
        );
    }
    html.push_str("</tr></thead>\n<tbody>\n");
    for row in &report.rows {
        html.push_str("<tr>");
        for (cell, col) in row.iter().zip(&report.columns) {
            let class = if col.numeric { " class=\"num\"" } else { "" };
            let _ = write!(html, "<td{class}>{}</td>", esc(&cell.display()));
        }
        html.push_str("</tr>\n");
    }
    if report.rows.is_empty() {
        let _ = writeln!(
            html,
            "<tr><td class=\"empty\" colspan=\"{}\">No rows.</td></tr>",
            report.columns.len().max(1)
        );
    }
    html.push_str("</tbody>\n</table>\n");
}

/// A chart as an inline SVG figure with its caption; every label in it is escaped. The web
/// console shows the same charts.
pub fn chart_svg(chart: &Chart) -> String {
    match chart {
        Chart::Bars { title, unit, bars } => bars_svg(title, unit, bars),
        Chart::HeatMap {
            title,
            rows,
            columns,
            values,
        } => heat_map_svg(title, rows, columns, values),
    }
}

fn bars_svg(title: &str, unit: &str, bars: &[(String, f64)]) -> String {
    const LABEL: f64 = 180.0;
    const WIDTH: f64 = 480.0;
    const ROW: f64 = 20.0;
    let max = bars
        .iter()
        .map(|b| b.1)
        .fold(0.0, f64::max)
        .max(f64::MIN_POSITIVE);
    let height = ROW * bars.len() as f64 + 4.0;
    let mut svg = format!(
        "<figure class=\"chart\">\n<figcaption>{}</figcaption>\n\
         <svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-label=\"{}\" width=\"{}\" \
         height=\"{height}\" viewBox=\"0 0 {} {height}\" font-size=\"12\">\n",
        esc(title),
        esc(title),
        LABEL + WIDTH + 90.0,
        LABEL + WIDTH + 90.0,
    );
    for (i, (label, value)) in bars.iter().enumerate() {
        let y = i as f64 * ROW + 2.0;
        let w = (value / max * WIDTH).max(1.0);
        let shown = esc(&crate::model::chart_value(*value, unit));
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\
             <rect x=\"{LABEL}\" y=\"{y}\" width=\"{w:.1}\" height=\"{}\" fill=\"#3182ce\">\
             <title>{}: {shown} {}</title></rect>\
             <text x=\"{}\" y=\"{}\">{shown}</text>",
            LABEL - 6.0,
            y + 13.0,
            esc(label),
            ROW - 6.0,
            esc(label),
            if unit == "hours" {
                String::new()
            } else {
                esc(unit)
            },
            LABEL + w + 4.0,
            y + 13.0,
        );
    }
    svg.push_str("</svg>\n</figure>\n");
    svg
}

fn heat_map_svg(title: &str, rows: &[String], columns: &[String], values: &[Vec<f64>]) -> String {
    const LABEL: f64 = 40.0;
    const CELL_W: f64 = 26.0;
    const CELL_H: f64 = 20.0;
    let max = crate::model::heat_map_max(values);
    let width = LABEL + CELL_W * columns.len() as f64;
    let height = CELL_H * (rows.len() as f64 + 1.0);
    let mut svg = format!(
        "<figure class=\"chart\">\n<figcaption>{0}</figcaption>\n\
         <svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-label=\"{0}\" \
         width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" \
         font-size=\"11\">\n",
        esc(title)
    );
    for (j, c) in columns.iter().enumerate() {
        let _ = write!(
            svg,
            "<text x=\"{}\" y=\"14\" text-anchor=\"middle\">{}</text>",
            LABEL + CELL_W * (j as f64 + 0.5),
            esc(c)
        );
    }
    for (i, (r, cells)) in rows.iter().zip(values).enumerate() {
        let y = CELL_H * (i as f64 + 1.0);
        let _ = write!(svg, "\n<text x=\"0\" y=\"{}\">{}</text>", y + 14.0, esc(r));
        for (j, v) in cells.iter().enumerate() {
            let _ = write!(
                svg,
                "<rect x=\"{}\" y=\"{y}\" width=\"{}\" height=\"{}\" fill=\"#2b6cb0\" \
                 fill-opacity=\"{:.3}\" stroke=\"#e2e8f0\"><title>{} {}: {v:.2}</title></rect>",
                LABEL + CELL_W * j as f64,
                CELL_W,
                CELL_H,
                0.05 + 0.95 * v / max,
                esc(r),
                esc(columns.get(j).map(String::as_str).unwrap_or("")),
            );
        }
    }
    svg.push_str("\n</svg>\n</figure>\n");
    svg
}

/// Escapes text for HTML element content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_markup_in_names() {
        assert_eq!(
            super::esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
