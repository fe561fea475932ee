//! `sono`: the RTMP ⇄ SIP gateway's binary. Reads the settings, sets up logging,
//! starts the actors and the HTTP side, and leaves service gracefully: on
//! SIGTERM or `POST /api/v1/drain` it drains (nothing new, calls finish within
//! `shutdown.grace`), on SIGINT it ends calls at once; then it closes and exits.

mod settings;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use sono_actors::settings::{LogFormat, LogSettings};
use sono_actors::{Gateway, Settings};
use tracing::{error, info};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(name = "sono", version, about = "RTMP ⇄ SIP telephony gateway")]
struct Cli {
    /// Settings file (TOML). Without it, config/sono.toml is read if present.
    #[arg(long, short, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway (the default).
    Run,
    /// Check the settings and print them as they take effect.
    CheckConfig,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (settings, file) = match settings::load(cli.config.as_deref()) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("sono: {e:#}");
            return ExitCode::from(2);
        }
    };
    match cli.command.unwrap_or(Command::Run) {
        Command::CheckConfig => match toml::to_string_pretty(&settings) {
            Ok(text) => {
                let source = file.map_or("embedded defaults".into(), |f| f.display().to_string());
                println!("# settings OK ({source}, then SONO_ environment variables)\n{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("sono: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Run => {
            if let Err(e) = init_logging(&settings.log) {
                eprintln!("sono: {e:#}");
                return ExitCode::from(2);
            }
            match run(settings) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    error!("{e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn init_logging(log: &LogSettings) -> anyhow::Result<()> {
    let filter =
        EnvFilter::try_new(&log.level).with_context(|| format!("log.level {:?}", log.level))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match log.format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    Ok(())
}

fn run(settings: Settings) -> anyhow::Result<()> {
    info!(version = env!("CARGO_PKG_VERSION"), "sono starting");
    let system = actix_rt::System::new();
    system.block_on(async move {
        let gateway = Gateway::start(settings.clone())
            .await
            .context("cannot start the gateway")?;
        let http = sono_web::serve(gateway.shared())
            .with_context(|| format!("cannot listen for HTTP on {}", settings.http.listen))?;
        let http_handle = http.handle();
        actix_rt::spawn(http);
        info!("sono ready");
        let shared = gateway.shared();
        let reason = tokio::select! {
            signal = wait_for_signal() => signal?,
            _ = shared.drain.requested() => "POST /api/v1/drain",
        };
        // SIGINT (an operator at a terminal) ends calls at once; SIGTERM (a
        // service manager) and the admin call drain first (docs/cluster.md).
        let grace = if reason == "SIGINT" {
            std::time::Duration::ZERO
        } else {
            settings.shutdown.grace
        };
        info!(reason, ?grace, "leaving service");
        // Connections first: tunnelled clients fetch their goodbye over HTTP.
        gateway.shutdown(grace).await;
        http_handle.stop(true).await;
        info!("sono stopped");
        Ok(())
    })
}

async fn wait_for_signal() -> anyhow::Result<&'static str> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    Ok(tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    })
}
