//! Shell completions and the man page, generated from the command-line definition itself so
//! they cannot fall behind it; the package installs both (contrib/package).

use std::io::Write;

use anyhow::Result;
use clap::{Args, ValueEnum};

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    shell: Shell,
}

/// Writes `shell`'s completion script for `cli` to standard output.
pub fn completions(args: CompletionsArgs, mut cli: clap::Command) -> Result<()> {
    let shell = match args.shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    let mut out = std::io::stdout().lock();
    clap_complete::generate(shell, &mut cli, "tally", &mut out);
    Ok(out.flush()?)
}

/// Writes the man page (roff) for `cli` to standard output: `tally man > tally.1`.
pub fn man(cli: clap::Command) -> Result<()> {
    let mut out = std::io::stdout().lock();
    clap_mangen::Man::new(cli).render(&mut out)?;
    Ok(out.flush()?)
}
