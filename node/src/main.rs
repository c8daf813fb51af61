//! The `meshmind` binary.

use clap::Parser;
use meshmind_node::cli::{Cli, exit_code, run};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli, &mut std::io::stdout().lock()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::from(exit_code(&error))
        }
    }
}
