//! `lab`: parse the command line, dispatch, map errors to exit codes; nothing else.

use std::process::ExitCode;

fn main() -> ExitCode {
    let matches = lab::cli::command().get_matches();
    match lab::commands::dispatch(&matches) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            // Bad input (spec, flags, files) is exit code 2; anything else is a failure.
            if err.chain().any(|e| e.is::<lab::InputError>()) {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}
