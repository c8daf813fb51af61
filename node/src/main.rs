//! The `meshmind` binary.

use clap::Parser;
use meshmind_node::cli::{Cli, LogFormat, exit_code, run};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let mut stdout = std::io::stdout();
    match run(cli, &mut stdout).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::from(exit_code(&error))
        }
    }
}

fn init_logging(format: LogFormat) {
    let configured = std::env::var("MESHMIND_LOG").unwrap_or_default();
    let mut filter = tracing_subscriber::EnvFilter::try_from_env("MESHMIND_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // gossipsub warns whenever a restarted node re-sends a vote its peers already have; that is
    // expected here, so only its errors are shown unless the filter names it.
    if !configured.contains("libp2p_gossipsub")
        && let Ok(directive) = "libp2p_gossipsub=error".parse()
    {
        filter = filter.add_directive(directive);
    }
    // Colours only on a terminal; log files stay plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Human => builder.try_init(),
    };
}
