//! `patchwarden version compare`: the version crate on the command line, so that anyone can
//! check our ordering against their own tools, one pair or millions.

use std::io::{self, BufRead, BufWriter, Read, Write};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use patchwarden_version::Scheme;

#[derive(Debug, Subcommand)]
pub(crate) enum VersionCommand {
    /// Compare two versions (prints <, = or >), or pairs from standard input.
    Compare(CompareArgs),
}

#[derive(Debug, Args)]
pub(crate) struct CompareArgs {
    /// The ordering to use: dpkg, rpm, apk (apk-tools 3.x), apk2 (apk-tools 2.x), semver, pep440.
    #[arg(long, value_parser = parse_scheme)]
    scheme: Scheme,
    /// Read lines `A<TAB>B` from standard input and print -1, 0 or 1 for each (or `error: …`).
    #[arg(long, conflicts_with_all = ["a", "b"])]
    stdin: bool,
    /// The first version.
    #[arg(required_unless_present = "stdin")]
    a: Option<String>,
    /// The second version.
    #[arg(required_unless_present = "stdin")]
    b: Option<String>,
}

fn parse_scheme(s: &str) -> Result<Scheme, String> {
    s.parse()
        .map_err(|e: patchwarden_version::UnknownScheme| e.to_string())
}

pub(crate) fn run(cmd: VersionCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        VersionCommand::Compare(args) if args.stdin => {
            compare_stream(args.scheme, io::stdin().lock(), io::stdout().lock())?;
            Ok(ExitCode::SUCCESS)
        }
        VersionCommand::Compare(args) => {
            let (a, b) = (args.a.unwrap_or_default(), args.b.unwrap_or_default());
            match args.scheme.compare(&a, &b) {
                Ok(o) => {
                    println!("{}", symbol(o));
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("patchwarden: {e}");
                    Ok(ExitCode::from(2))
                }
            }
        }
    }
}

fn symbol(o: std::cmp::Ordering) -> &'static str {
    match o {
        std::cmp::Ordering::Less => "<",
        std::cmp::Ordering::Equal => "=",
        std::cmp::Ordering::Greater => ">",
    }
}

/// The longest line `--stdin` reads: two versions of any real length fit many times over, and
/// a runaway line cannot take the memory.
const MAX_LINE: u64 = 64 * 1024;

/// Streams `A<TAB>B` lines to `-1`/`0`/`1` lines. Bad lines give `error: …` and the stream
/// goes on, so that one bad pair never hides the answers to the others.
fn compare_stream(
    scheme: Scheme,
    mut input: impl BufRead,
    output: impl Write,
) -> anyhow::Result<()> {
    let mut out = BufWriter::with_capacity(64 * 1024, output);
    let mut line = Vec::with_capacity(256);
    let mut number = 0u64;
    loop {
        line.clear();
        let n = input
            .by_ref()
            .take(MAX_LINE + 1)
            .read_until(b'\n', &mut line)
            .context("reading standard input")?;
        if n == 0 {
            break;
        }
        number += 1;
        let too_long = line.len() as u64 > MAX_LINE && !line.ends_with(b"\n");
        if too_long {
            // Skip the rest of the overlong line.
            let mut rest = Vec::new();
            input
                .read_until(b'\n', &mut rest)
                .context("reading standard input")?;
            writeln!(out, "error: line {number} is longer than {MAX_LINE} bytes")?;
            continue;
        }
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        let reply = match std::str::from_utf8(text) {
            Err(_) => Err(format!("line {number} is not UTF-8")),
            Ok(t) => match t.split_once('\t') {
                None => Err(format!("line {number} has no tab between two versions")),
                Some((a, b)) => scheme.compare(a, b).map_err(|e| e.to_string()),
            },
        };
        match reply {
            Ok(o) => out.write_all(match o {
                std::cmp::Ordering::Less => b"-1\n",
                std::cmp::Ordering::Equal => b"0\n",
                std::cmp::Ordering::Greater => b"1\n",
            })?,
            Err(e) => writeln!(out, "error: {e}")?,
        }
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(scheme: Scheme, input: &[u8]) -> String {
        let mut out = Vec::new();
        compare_stream(scheme, input, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn streams_pairs_and_reports_bad_lines_in_place() {
        let input = b"1.0\t1.1\n2:1\t1:9\r\n1.0\t1.0-0\nnot a pair\n1.0\t:1\n\xff\t1\n";
        let got = stream(Scheme::Dpkg, input);
        assert_eq!(
            got,
            "-1\n1\n0\nerror: line 4 has no tab between two versions\n\
             error: invalid dpkg version \":1\": epoch in version is empty\n\
             error: line 6 is not UTF-8\n"
        );
    }

    #[test]
    fn overlong_lines_are_refused_and_the_stream_goes_on() {
        let mut input = vec![b'1'; (MAX_LINE as usize) * 2];
        input.extend_from_slice(b"\t1\n1\t2\n");
        let got = stream(Scheme::Rpm, &input);
        assert_eq!(
            got,
            format!("error: line 1 is longer than {MAX_LINE} bytes\n-1\n")
        );
    }
}
