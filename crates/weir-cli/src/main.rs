//! The `weir` binary. It only wires the library crates together: parses
//! arguments, opens the stores, renders diagnostics, progress and tables.
//!
//! Exit codes: 0 success, 1 a user error (invalid project, failed run),
//! 2 a usage error (bad arguments), 101 a bug in weir.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod commands;
mod output;
mod progress;
mod project;
mod render;

/// weir: a data processing engine and pipeline orchestrator.
#[derive(Debug, Parser)]
#[command(name = "weir", version)]
struct Cli {
    /// Project folder (the one holding `weir.yaml`); default: the current
    /// folder or the nearest parent with a `weir.yaml`.
    #[arg(
        long,
        short = 'p',
        global = true,
        env = "WEIR_PROJECT",
        hide_env_values = true
    )]
    project: Option<PathBuf>,

    /// Metadata store: `sqlite://PATH` or `postgres://...`; default:
    /// `<project>/.weir/weir.db`.
    #[arg(long, global = true, env = "WEIR_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a working sample project in DIR.
    Init(commands::init::InitArgs),
    /// Validate and type-check pipelines; print every problem at once.
    Check(commands::check::CheckArgs),
    /// Run a pipeline here, with live progress.
    Run(commands::run::RunArgs),
    /// List recent runs.
    Runs(commands::runs::RunsArgs),
    /// Show one run: steps, states, attempts, durations, CPU, memory.
    Show(commands::show::ShowArgs),
    /// Print the logs of a run's steps.
    Logs(commands::logs::LogsArgs),
    /// List datasets, their versions, schemas and rows.
    Datasets(commands::datasets::DatasetsArgs),
    /// Run SQL over every dataset weir has produced.
    Query(commands::query::QueryArgs),
    /// Print the JSON Schema of the pipeline file format.
    Schema(commands::schema::SchemaArgs),
}

/// How a command ended, when it did not fail with an error.
pub enum Outcome {
    Success,
    /// A user-facing failure that was already reported (diagnostics, a failed
    /// run): exit 1 without printing more.
    Failure,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WEIR_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            output::error(&format!("cannot start the async runtime: {e}"));
            return ExitCode::from(101);
        }
    };
    let globals = project::Globals {
        project: cli.project,
        database_url: cli.database_url,
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Init(args) => commands::init::run(args),
            Command::Check(args) => commands::check::run(&globals, args).await,
            Command::Run(args) => commands::run::run(&globals, args).await,
            Command::Runs(args) => commands::runs::run(&globals, args).await,
            Command::Show(args) => commands::show::run(&globals, args).await,
            Command::Logs(args) => commands::logs::run(&globals, args).await,
            Command::Datasets(args) => commands::datasets::run(&globals, args).await,
            Command::Query(args) => commands::query::run(&globals, args).await,
            Command::Schema(args) => commands::schema::run(args),
        }
    });
    match result {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::Failure) => ExitCode::from(1),
        Err(e) => {
            output::report_error(&e);
            if is_bug(&e) {
                output::error(
                    "this is a bug in weir; please report it with the command and the output above",
                );
                ExitCode::from(101)
            } else {
                ExitCode::from(1)
            }
        }
    }
}

/// Errors that mean weir itself is broken (exit 101), not the user's input.
fn is_bug(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        matches!(
            cause.downcast_ref::<weir_engine::Error>(),
            Some(weir_engine::Error::Internal(_))
        )
    })
}
