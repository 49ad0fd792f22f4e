//! The `todo` binary: parses the command line, starts logging, and runs the library.
//! Chooses the exit codes: 0 on success, 2 for bad usage, and for a failed client command the
//! code of its kind (`cli::exit_code`: 3 not found, 4 invalid input, 5 unavailable, 6
//! conflict, 7 refused), else 1; `cli::serve` alone exits with 130 (`FORCED_EXIT_CODE`) when
//! a second signal cuts its shutdown short.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use todo::cli::{CliCommand, LogFormat};

/// mimalloc rather than the system's malloc: a request's memory is often freed on another
/// runtime thread than the one that allocated it, which glibc's arenas serve slowly (its
/// malloc and free were 15 % of a read's CPU; see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = match todo::cli::parse() {
        Ok(cli) => cli,
        Err(error) => {
            eprintln!("error: {error:#}");
            return ExitCode::from(todo::cli::USAGE);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let json = cli.command.wants_json();
    let outcome = match cli.command {
        CliCommand::Serve(args) => {
            init_tracing(&args.log, args.log_format);
            runtime.block_on(todo::cli::serve(args))
        }
        // Blocking, outside the runtime: the PostgreSQL backend brings its own.
        CliCommand::User(command) => todo::cli::user(command).and_then(|output| print(&output)),
        CliCommand::Backup { storage, file } => {
            todo::cli::backup(&storage, &file).and_then(|output| print(&output))
        }
        CliCommand::Restore { storage, file } => {
            todo::cli::restore(&storage, &file).and_then(|output| print(&output))
        }
        CliCommand::Check { storage } => {
            todo::cli::check(&storage).and_then(|output| print(&output))
        }
        CliCommand::Watch { client, list } => runtime.block_on(todo::cli::watch(client, list)),
        CliCommand::Bench(args) => {
            init_tracing("warn", LogFormat::Text);
            runtime.block_on(todo::cli::bench(args))
        }
        command => runtime
            .block_on(todo::cli::run_client(command))
            .and_then(|output| print(&output)),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if json => {
            eprintln!("{}", todo::cli::to_json(&error));
            ExitCode::from(todo::cli::exit_code(&error))
        }
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(todo::cli::exit_code(&error))
        }
    }
}

/// Writes a client command's output. A reader that went away (`todo lists | head -1`) is not
/// an error: the output was not wanted any more.
fn print(output: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(output.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        written => Ok(written?),
    }
}

fn init_tracing(filter: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|error| {
        eprintln!("warning: ignoring log filter {filter:?}: {error}");
        tracing_subscriber::EnvFilter::new("info")
    });
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => subscriber.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => subscriber.json().init(),
    }
}
