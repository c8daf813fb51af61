//! The report of a run: JSON (everything), Markdown (the verdict, assertions, timeline, final
//! status) and SVG plots of finality latency per epoch and query latency over time, with the
//! timeline's faults marked.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use plotters::prelude::*;

use crate::run::RunRecord;
use crate::status::table;

/// Finality latency per (validator, epoch), from the status samples.
pub fn finality_by_epoch(record: &RunRecord) -> BTreeMap<String, BTreeMap<u64, u64>> {
    let mut out: BTreeMap<String, BTreeMap<u64, u64>> = BTreeMap::new();
    for sample in &record.samples {
        let s = &sample.status;
        if s.role != "validator" {
            continue;
        }
        if let (Some(epoch), Some(latency)) = (s.finalized_epoch, s.last_finality_ms) {
            out.entry(s.name.clone())
                .or_default()
                .entry(epoch)
                .or_insert(latency);
        }
    }
    out
}

/// Query latency p50 and p99 per second of the run: (second, p50, p99, failures).
pub fn query_percentiles(record: &RunRecord) -> Vec<(i64, f64, f64, usize)> {
    let mut buckets: BTreeMap<i64, Vec<(f64, bool)>> = BTreeMap::new();
    for q in &record.queries {
        buckets
            .entry(q.t_ms.div_euclid(1000))
            .or_default()
            .push((q.latency_ms, q.ok));
    }
    buckets
        .into_iter()
        .map(|(second, mut v)| {
            v.sort_by(|a, b| a.0.total_cmp(&b.0));
            let at = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize].0;
            let failures = v.iter().filter(|(_, ok)| !ok).count();
            (second, at(0.5), at(0.99), failures)
        })
        .collect()
}

fn plot_error(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

fn finality_plot(record: &RunRecord, path: &Path) -> std::io::Result<()> {
    let data = finality_by_epoch(record);
    let max_epoch = data
        .values()
        .flat_map(|m| m.keys())
        .copied()
        .max()
        .unwrap_or(1)
        .max(1);
    let max_latency = data
        .values()
        .flat_map(|m| m.values())
        .copied()
        .max()
        .unwrap_or(1)
        .max(1) as f64
        * 1.1;
    let root = SVGBackend::new(path, (900, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "finality latency per epoch (epoch end -> certificate stored)",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(0f64..max_epoch as f64 + 1.0, 0f64..max_latency)
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc("ms")
        .draw()
        .map_err(plot_error)?;
    for (i, (name, points)) in data.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(
                points.iter().map(|(&e, &l)| (e as f64, l as f64)),
                color.stroke_width(2),
            ))
            .map_err(plot_error)?
            .label(name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
    }
    for played in &record.played {
        let epoch = played.t_ms as f64 / record.epoch_ms.max(1) as f64;
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(epoch, 0.0), (epoch, max_latency)],
                RED.mix(0.6),
            )))
            .map_err(plot_error)?;
        chart
            .draw_series(std::iter::once(Text::new(
                played.what.clone(),
                (epoch, max_latency * 0.95),
                ("sans-serif", 12).into_font().color(&RED),
            )))
            .map_err(plot_error)?;
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()
        .map_err(plot_error)?;
    root.present().map_err(plot_error)
}

fn query_plot(record: &RunRecord, path: &Path) -> std::io::Result<()> {
    let data = query_percentiles(record);
    let (first, last) = match (data.first(), data.last()) {
        (Some(a), Some(b)) => (a.0 as f64, b.0 as f64 + 1.0),
        _ => (0.0, 1.0),
    };
    let max = data.iter().map(|d| d.2).fold(1.0, f64::max) * 1.1;
    let root = SVGBackend::new(path, (900, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "query latency through a validator (per second)",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(first..last, 0f64..max)
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .x_desc("seconds since epoch 0")
        .y_desc("ms")
        .draw()
        .map_err(plot_error)?;
    for (label, color, pick) in [("p50", BLUE, 1usize), ("p99", MAGENTA, 2usize)] {
        chart
            .draw_series(LineSeries::new(
                data.iter()
                    .map(|d| (d.0 as f64, if pick == 1 { d.1 } else { d.2 })),
                color.stroke_width(2),
            ))
            .map_err(plot_error)?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
    }
    for played in &record.played {
        let t = played.t_ms as f64 / 1000.0;
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(t, 0.0), (t, max)],
                RED.mix(0.6),
            )))
            .map_err(plot_error)?;
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()
        .map_err(plot_error)?;
    root.present().map_err(plot_error)
}

/// The Markdown report.
pub fn markdown(record: &RunRecord) -> String {
    let mut md = format!(
        "# scenario `{}`: {}\n\nAll nodes healthy {:.1} s after start; epoch length {} ms.\n\n",
        record.scenario,
        if record.passed() { "PASSED" } else { "FAILED" },
        record.up_ms as f64 / 1000.0,
        record.epoch_ms
    );
    md.push_str("## Assertions\n\n| assertion | verdict | observed |\n|---|---|---|\n");
    for o in &record.outcomes {
        md.push_str(&format!(
            "| `{}` | {} | {} |\n",
            o.assertion,
            if o.passed { "ok" } else { "FAILED" },
            o.observed.replace('|', "\\|")
        ));
    }
    md.push_str("\n## Timeline\n\n| t (ms from epoch 0) | action | error |\n|---|---|---|\n");
    for p in &record.played {
        md.push_str(&format!(
            "| {} | {} | {} |\n",
            p.t_ms,
            p.what,
            p.error.as_deref().unwrap_or("")
        ));
    }
    let finality = finality_by_epoch(record);
    let mut all: Vec<u64> = finality
        .values()
        .flat_map(|m| m.values().copied())
        .collect();
    all.sort_unstable();
    if !all.is_empty() {
        let at = |p: f64| all[((all.len() - 1) as f64 * p).round() as usize];
        md.push_str(&format!(
            "\n## Finality\n\n{} (validator, epoch) samples: p50 {} ms, p99 {} ms, max {} ms.\n",
            all.len(),
            at(0.5),
            at(0.99),
            at(1.0)
        ));
    }
    if !record.queries.is_empty() {
        let ok = record.queries.iter().filter(|q| q.ok).count();
        md.push_str(&format!(
            "\n## Queries\n\n{ok} of {} answered correctly.\n",
            record.queries.len()
        ));
    }
    md.push_str("\n## Final status\n\n```\n");
    md.push_str(&table(&record.final_status));
    md.push_str(
        "```\n\nPlots: [finality.svg](finality.svg), [queries.svg](queries.svg); all of it in one page: \
         [report.html](report.html).\n",
    );
    md
}

/// Text made safe to place in HTML.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
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

/// The report as one self-contained HTML page: the Markdown report's sections, with the plots
/// (`finality_svg`, `queries_svg`) inline.
pub fn html(record: &RunRecord, finality_svg: &str, queries_svg: &str) -> String {
    let verdict = if record.passed() { "PASSED" } else { "FAILED" };
    let mut page = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>scenario {name}: {verdict}</title>\n\
         <style>body{{font:14px/1.4 system-ui,sans-serif;margin:24px;max-width:1100px}}\
         table{{border-collapse:collapse;margin:8px 0 16px}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}}\
         .ok{{color:#17803d}}.failed{{color:#b42318;font-weight:600}}pre{{background:#f5f5f5;padding:8px;overflow:auto}}\
         svg{{max-width:100%;height:auto}}</style></head><body>\n\
         <h1>scenario <code>{name}</code>: <span class=\"{class}\">{verdict}</span></h1>\n\
         <p>All nodes healthy {up:.1} s after start; epoch length {epoch} ms.</p>\n",
        name = escape(&record.scenario),
        class = verdict.to_lowercase(),
        up = record.up_ms as f64 / 1000.0,
        epoch = record.epoch_ms,
    );
    page.push_str("<h2>Assertions</h2>\n<table><tr><th>assertion</th><th>verdict</th><th>observed</th></tr>\n");
    for o in &record.outcomes {
        let (class, verdict) = if o.passed {
            ("ok", "ok")
        } else {
            ("failed", "FAILED")
        };
        page.push_str(&format!(
            "<tr><td><code>{}</code></td><td class=\"{class}\">{verdict}</td><td>{}</td></tr>\n",
            escape(&o.assertion),
            escape(&o.observed)
        ));
    }
    page.push_str("</table>\n<h2>Finality</h2>\n");
    page.push_str(finality_svg);
    page.push_str("\n<h2>Queries</h2>\n");
    page.push_str(queries_svg);
    page.push_str("\n<h2>Timeline</h2>\n<table><tr><th>t (ms from epoch 0)</th><th>action</th><th>error</th></tr>\n");
    for p in &record.played {
        page.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            p.t_ms,
            escape(&p.what),
            escape(p.error.as_deref().unwrap_or(""))
        ));
    }
    page.push_str("</table>\n<h2>Final status</h2>\n<pre>");
    page.push_str(&escape(&table(&record.final_status)));
    page.push_str("</pre>\n</body></html>\n");
    page
}

/// Writes `report.json`, `report.md`, `report.html` (the plots inline), `finality.svg` and
/// `queries.svg` into `dir`; returns the Markdown file's path.
pub fn write(record: &RunRecord, dir: &Path) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let json = serde_json::json!({ "passed": record.passed(), "run": record });
    std::fs::write(
        dir.join("report.json"),
        serde_json::to_string_pretty(&json).map_err(plot_error)?,
    )?;
    finality_plot(record, &dir.join("finality.svg"))?;
    query_plot(record, &dir.join("queries.svg"))?;
    let md = dir.join("report.md");
    std::fs::write(&md, markdown(record))?;
    let plot = |name: &str| std::fs::read_to_string(dir.join(name));
    std::fs::write(
        dir.join("report.html"),
        html(record, &plot("finality.svg")?, &plot("queries.svg")?),
    )?;
    Ok(md)
}
