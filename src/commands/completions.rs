//! `shipgate completions <shell>`: the shell's completion script, generated from the command
//! line's own definition (`cli::Cli`) by clap_complete, so it never falls behind a new flag.

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;
use crate::exit::{Exit, Failure};

/// Writes the completion script of `shell` to stdout.
pub fn print(shell: Shell) -> Result<Exit, Failure> {
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "shipgate", &mut script);
    use std::io::Write;
    std::io::stdout().lock().write_all(&script).map_err(|e| {
        Failure::new(
            Exit::Usage,
            anyhow::anyhow!("writing the completion script: {e}"),
        )
    })?;
    Ok(Exit::Success)
}
