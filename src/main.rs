use clap::Parser;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let filter = || tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,sqlx=warn".into());
    // LIFELINE_LOG_FORMAT: `text` (the default, for people) or `json` (one JSON object a line, for machines).
    match std::env::var("LIFELINE_LOG_FORMAT").as_deref() {
        Err(_) | Ok("text") => tracing_subscriber::fmt().with_env_filter(filter()).with_writer(std::io::stderr).init(),
        Ok("json") => tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_env_filter(filter())
            .with_writer(std::io::stderr)
            .init(),
        Ok(other) => {
            eprintln!("error: LIFELINE_LOG_FORMAT={other:?}: use text or json");
            return ExitCode::from(2);
        }
    }
    let cli = lifeline::cli::Cli::parse();
    match lifeline::cli::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
