//! The `shipgate` binary: parse, run, report, exit with the documented code.

use std::process::ExitCode;

fn main() -> ExitCode {
    match shipgate::app::main() {
        Ok(exit) => exit.into(),
        Err(failure) => {
            failure.report();
            failure.exit.into()
        }
    }
}
