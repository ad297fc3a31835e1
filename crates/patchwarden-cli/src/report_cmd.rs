//! `patchwarden report …`: the monthly compliance report and a change's patch control form,
//! fetched from the server in the format asked and written to a file (docs/cli.md,
//! docs/reports.md). The server renders them, so the CLI's file is the same as the web UI's.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use patchwarden_client::ReportFormat;
use patchwarden_core::report::Month;

use crate::login_cmd::Connection;
use crate::ops_cmd::finish;
use crate::output::{EXIT_ERROR, Failure};

#[derive(Debug, Args)]
pub(crate) struct ReportArgs {
    #[command(subcommand)]
    cmd: ReportCommand,
    #[command(flatten)]
    conn: Connection,
}

/// A report's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum FileFormat {
    Html,
    Csv,
    Pdf,
}

impl From<FileFormat> for ReportFormat {
    fn from(f: FileFormat) -> ReportFormat {
        match f {
            FileFormat::Html => ReportFormat::Html,
            FileFormat::Csv => ReportFormat::Csv,
            FileFormat::Pdf => ReportFormat::Pdf,
        }
    }
}

/// A form's format (no CSV: a form is one record, not a table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum FormFormat {
    Html,
    Pdf,
}

#[derive(Debug, Subcommand)]
enum ReportCommand {
    /// The monthly patch management compliance report (Appendix B rows, KPIs, auditors'
    /// evidence) of a month, for what your roles let you see.
    Monthly {
        /// The month, `YYYY-MM` (UTC), e.g. 2026-10.
        #[arg(long)]
        month: String,
        #[arg(long, value_enum, default_value = "pdf")]
        format: FileFormat,
        /// Where to write it (`-` for stdout).
        #[arg(long, short)]
        output: PathBuf,
    },
    /// The patch control form (Appendix A) of a change, to print and sign.
    Form {
        /// The change's number, e.g. PCR-2026-0001.
        number: String,
        #[arg(long, value_enum, default_value = "pdf")]
        format: FormFormat,
        /// Where to write it (`-` for stdout).
        #[arg(long, short)]
        output: PathBuf,
    },
}

pub(crate) fn run(args: ReportArgs) -> anyhow::Result<ExitCode> {
    Ok(finish(report(args)))
}

fn report(args: ReportArgs) -> Result<(), Failure> {
    let client = args.conn.operator()?;
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| Failure::new(EXIT_ERROR, format!("starting the async runtime: {e}")))?;
    match args.cmd {
        ReportCommand::Monthly {
            month,
            format,
            output,
        } => {
            // Checked here too, so a typo is explained without a round trip.
            let month =
                Month::parse(&month).map_err(|e| Failure::new(EXIT_ERROR, e.to_string()))?;
            let bytes =
                runtime.block_on(client.monthly_report(&month.to_string(), format.into()))?;
            write(&output, &bytes)
        }
        ReportCommand::Form {
            number,
            format,
            output,
        } => {
            let format = match format {
                FormFormat::Html => ReportFormat::Html,
                FormFormat::Pdf => ReportFormat::Pdf,
            };
            let bytes = runtime.block_on(client.change_form(&number, format))?;
            write(&output, &bytes)
        }
    }
}

/// Writes the file whole: to a temporary name beside it, then renamed, so a failure never
/// leaves half a report where the last one was.
fn write(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    let fail = |e: std::io::Error| Failure::new(EXIT_ERROR, format!("{}: {e}", path.display()));
    if path == Path::new("-") {
        let mut out = std::io::stdout().lock();
        return out
            .write_all(bytes)
            .and_then(|()| out.flush())
            .map_err(fail);
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "report".into());
    let tmp = path.with_file_name(format!(".{name}.partial"));
    std::fs::write(&tmp, bytes).map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        std::fs::remove_file(&tmp).ok();
        fail(e)
    })?;
    eprintln!(
        "patchwarden: wrote {} ({} bytes)",
        path.display(),
        bytes.len()
    );
    Ok(())
}
