//! `lab`: parse the command line, dispatch, map errors to exit codes; nothing else.

use std::process::ExitCode;

fn main() -> ExitCode {
    // `lab show pmd | head`: end quietly when the reader goes away, as other tools do.
    // SAFETY: restoring the default action of a signal before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let outcome = lab::cli::name_the_experiment(std::env::args_os().collect())
        .map(|args| lab::cli::command().try_get_matches_from(args))
        .and_then(|parsed| match parsed {
            Ok(matches) => lab::commands::dispatch(&matches),
            Err(clap_error) => clap_error.exit(),
        });
    match outcome {
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
