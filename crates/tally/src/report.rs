//! `tally report`: the catalogue (read from this binary, no server needed) and reports
//! rendered by the server, saved to a file with a progress bar while they are made.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use tally_report::{Format, ReportInfo, CATALOGUE};

use crate::admin::ServerConn;

#[derive(Args, Debug)]
pub struct ReportArgs {
    #[command(flatten)]
    conn: ServerConn,
    /// `list` for the catalogue, or a report's name from it.
    name: String,
    /// A report parameter, NAME=VALUE; repeat for several (see tally report list).
    #[arg(long = "param", short = 'p', value_name = "NAME=VALUE")]
    params: Vec<String>,
    /// On a parent site: only devices of this site and the sites below it (the same as
    /// --param site=CODE; reports about usage, reclaim and the license position take it).
    #[arg(long, value_name = "CODE")]
    site: Option<String>,
    /// pdf, html, csv or json (default: from --out's extension, else pdf); for list, table
    /// or json.
    #[arg(long)]
    format: Option<String>,
    /// Where to write the report (default NAME.FORMAT here; - for standard output).
    #[arg(long, short)]
    out: Option<PathBuf>,
}

pub async fn report(args: ReportArgs) -> Result<()> {
    if args.name == "list" {
        return list(args.format.as_deref().unwrap_or("table"));
    }
    if args.name == crate::site::SYSTEM_METERING {
        return crate::site::system_metering(&args.conn, args.format.as_deref()).await;
    }
    let def = tally_report::find(&args.name)?;
    let format = output_format(&args)?;
    let mut params = Vec::new();
    for p in &args.params {
        let Some((k, v)) = p.split_once('=') else {
            bail!("--param {p:?}: write NAME=VALUE, e.g. --param from=2026-01");
        };
        params.push((k.trim(), v.trim()));
    }
    if let Some(site) = &args.site {
        params.push(("site", site.trim()));
    }
    let bar = progress_bar(def.title);
    let body = args
        .conn
        .client()?
        .report(def.name, format.extension(), &params, |got, total| {
            if let Some(total) = total {
                bar.set_length(total);
            }
            bar.set_position(got);
        })
        .await;
    bar.finish_and_clear();
    let body = body?;
    let out = args
        .out
        .unwrap_or_else(|| PathBuf::from(format!("{}.{}", def.name, format.extension())));
    if out.as_os_str() == "-" {
        std::io::Write::write_all(&mut std::io::stdout().lock(), &body)?;
        return Ok(());
    }
    std::fs::write(&out, &body).with_context(|| format!("cannot write {}", out.display()))?;
    eprintln!("wrote {} ({} bytes)", out.display(), body.len());
    Ok(())
}

/// The format asked for: `--format`, else the extension of `--out`, else PDF. An `--out` whose
/// extension is no report format (`x.docx`), or names another format than `--format`, is
/// refused: a file must hold what its name says.
fn output_format(args: &ReportArgs) -> Result<Format> {
    let given: Option<Format> = args.format.as_deref().map(str::parse).transpose()?;
    let out = args.out.as_ref().filter(|o| o.as_os_str() != "-");
    let extension = out.and_then(|o| o.extension()).map(|e| e.to_string_lossy());
    let Some(extension) = extension else {
        return Ok(given.unwrap_or(Format::Pdf));
    };
    let from_out: Format =
        extension.to_ascii_lowercase().parse().map_err(|_| {
            anyhow::anyhow!(
            "--out {}: .{extension} is not a report format; name the file .pdf, .html, .csv or \
             .json (or give --format and a file name with that extension)",
            args.out.as_ref().map(|o| o.display().to_string()).unwrap_or_default()
        )
        })?;
    match given {
        Some(f) if f != from_out => bail!(
            "--format {} but --out names a .{extension} file; make them agree",
            f.extension()
        ),
        _ => Ok(from_out),
    }
}

/// A spinner while the server builds the report, then a byte count as it arrives; nothing
/// when standard error is not a terminal.
fn progress_bar(title: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner().with_message(format!("{title}: building"));
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} {elapsed} {bytes}")
            .expect("a valid template"),
    );
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

fn list(format: &str) -> Result<()> {
    let infos: Vec<ReportInfo> = CATALOGUE.iter().map(Into::into).collect();
    match format {
        "json" => {
            crate::output::print_value(&infos)?;
        }
        "table" => {
            for info in &infos {
                println!("{:<18} {}", info.name, info.title);
                for p in &info.params {
                    println!(
                        "{:<18}   --param {}=…  {} (default: {})",
                        "", p.name, p.help, p.default
                    );
                }
            }
        }
        other => bail!("--format {other:?}: tally report list prints table or json"),
    }
    Ok(())
}
