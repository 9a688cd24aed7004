//! `shipgate exec -- CMD…`: the release flow, then this process becomes CMD (same pid,
//! environment and signals).

use crate::cli;
use crate::config::Config;
use crate::exit::{Exit, Failure};
use crate::migrate::apply::Progress;
use crate::migrate::Interrupt;
use crate::runner;

use super::release::run;

/// `shipgate exec -- CMD…`: release, then become CMD (same pid, environment and signals).
pub async fn exec(
    args: &cli::Exec,
    config: &Config,
    interrupt: Interrupt,
) -> Result<Exit, Failure> {
    let Some((program, rest)) = args.command.split_first() else {
        return Err(Failure::new(
            Exit::Usage,
            anyhow::anyhow!("exec needs a command to run"),
        ));
    };
    // A command that cannot start would leave a migrated database and no app: check first.
    if let Err(why) = runner::command::executable(program) {
        return Err(Failure::new(
            Exit::CannotExec,
            anyhow::anyhow!("cannot exec {program}: {why}; nothing was released"),
        ));
    }
    let exit = run(config, None, interrupt, &Progress::default()).await?;
    if exit != Exit::Success {
        return Ok(exit);
    }
    tracing::info!(command = %program, "release done; handing the process over");
    use std::os::unix::process::CommandExt;
    // Only returns on failure: on success this process image is replaced.
    let error = std::process::Command::new(program).args(rest).exec();
    Err(Failure::new(
        Exit::CannotExec,
        anyhow::anyhow!("cannot exec {program}: {error}"),
    ))
}
