//! The command line: `sluice run | validate | graph | gen | top`.
//!
//! Flags are parsed by clap into [`Cli`]; each subcommand is a function that
//! returns the process exit code, so `main.rs` only calls [`main`].

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};

use crate::config::{self, graph, ComponentKind, Loaded};
use crate::topology::{self, status::TopologyStatus, RunHooks};

/// sluice: a stateful dataflow engine for product-analytics events.
#[derive(Parser, Debug)]
#[command(name = "sluice", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a topology until its input ends (replay) or SIGTERM/SIGINT.
    Run {
        /// The topology file.
        #[arg(short, long, default_value = "topology.toml")]
        config: PathBuf,
    },
    /// Check a topology file and report every problem in it.
    Validate {
        #[arg(short, long, default_value = "topology.toml")]
        config: PathBuf,
    },
    /// Print the topology as a graph.
    Graph {
        #[arg(short, long, default_value = "topology.toml")]
        config: PathBuf,
        #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
        format: GraphFormat,
    },
    /// Print deterministic synthetic Segment events, one JSON object per line.
    Gen {
        /// How many lines to print.
        #[arg(long, default_value_t = 10_000)]
        events: u64,
        /// How many distinct machines (device ids) send them.
        #[arg(long, default_value_t = 100)]
        machines: u64,
        /// Same seed, same output.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Share of invalid lines (malformed JSON, missing fields, bad timestamps).
        #[arg(long)]
        invalid_ratio: Option<f64>,
        /// Share of lines that repeat an earlier line verbatim.
        #[arg(long)]
        duplicate_ratio: Option<f64>,
    },
    /// Watch a running instance: per-component rates, mailbox fill, rejects, restarts.
    Top {
        /// The instance's API.
        #[arg(long, default_value = "http://127.0.0.1:9598")]
        url: String,
        /// How often to poll it (`1s`, `500ms`).
        #[arg(long, default_value = "1s", value_parser = crate::top::parse_interval)]
        interval: Duration,
        /// Print one plain-text snapshot (two polls `interval` apart) and exit.
        #[arg(long)]
        once: bool,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum GraphFormat {
    Dot,
    Mermaid,
}

/// Parses the command line, runs the command, returns the exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    match cli.command {
        Command::Run { config } => run(&config),
        Command::Validate { config } => validate(&config),
        Command::Graph { config, format } => graph_command(&config, format),
        Command::Gen {
            events,
            machines,
            seed,
            invalid_ratio,
            duplicate_ratio,
        } => gen(events, machines, seed, invalid_ratio, duplicate_ratio),
        Command::Top {
            url,
            interval,
            once,
        } => {
            if once {
                crate::top::once(&url, interval)
            } else {
                crate::top::run(&url, interval)
            }
        }
    }
}

/// Sets up logging: human-readable on a terminal, one JSON object per line with
/// `SLUICE_LOG_FORMAT=json`; the level comes from `RUST_LOG` (default `info`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let json = json_logs();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // `try_init` fails only if a subscriber is already set (tests): keep that one.
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let message = crate::topology::supervisor::panic_message(info.payload());
        tracing::error!(%location, "panic: {message}");
    }));
}

/// `SLUICE_LOG_FORMAT=json`: every line on stderr is one JSON object.
fn json_logs() -> bool {
    std::env::var("SLUICE_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"))
}

/// Like [`load`], for `run` with JSON logs: each warning and error becomes a
/// log line, so stderr stays one JSON object per line.
fn load_logged(path: &Path) -> Option<Loaded> {
    match config::load_file(path) {
        Ok(loaded) => {
            for warning in &loaded.warnings {
                tracing::warn!("{warning}");
            }
            Some(loaded)
        }
        Err(errors) => {
            for error in &errors.0 {
                tracing::error!("{error}");
            }
            let n = errors.0.len();
            tracing::error!(
                "{}: {n} error{}",
                path.display(),
                if n == 1 { "" } else { "s" }
            );
            None
        }
    }
}

fn load(path: &Path) -> Option<Loaded> {
    match config::load_file(path) {
        Ok(loaded) => {
            for warning in &loaded.warnings {
                eprintln!("{warning}");
            }
            Some(loaded)
        }
        Err(errors) => {
            eprintln!("{errors}");
            let n = errors.0.len();
            eprintln!(
                "{}: {n} error{}",
                path.display(),
                if n == 1 { "" } else { "s" }
            );
            None
        }
    }
}

fn validate(path: &Path) -> i32 {
    match load(path) {
        Some(loaded) => {
            let n = loaded.config.components.len();
            println!("{}: ok ({n} components)", path.display());
            0
        }
        None => 1,
    }
}

fn graph_command(path: &Path, format: GraphFormat) -> i32 {
    let Some(loaded) = load(path) else { return 1 };
    let text = match format {
        GraphFormat::Dot => graph::to_dot(&loaded.config),
        GraphFormat::Mermaid => graph::to_mermaid(&loaded.config),
    };
    print!("{text}");
    0
}

fn gen(
    events: u64,
    machines: u64,
    seed: u64,
    invalid_ratio: Option<f64>,
    duplicate_ratio: Option<f64>,
) -> i32 {
    let mut opts = crate::gen::GenOptions {
        events,
        machines: machines.max(1),
        seed,
        ..Default::default()
    };
    if let Some(r) = invalid_ratio {
        opts.invalid_ratio = r;
    }
    if let Some(r) = duplicate_ratio {
        opts.duplicate_ratio = r;
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let result = crate::gen::generate(&opts, &mut out).and_then(|_| out.flush());
    match result {
        Ok(()) => 0,
        // A closed pipe (`sluice gen | head`) is a normal way to stop.
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Err(err) => {
            eprintln!("sluice gen: writing events: {err}");
            1
        }
    }
}

fn run(path: &Path) -> i32 {
    init_logging();
    let loaded = if json_logs() {
        load_logged(path)
    } else {
        load(path)
    };
    let Some(loaded) = loaded else { return 1 };
    let config = loaded.config;
    let components = config.components.len();
    tracing::info!(config = %path.display(), components, "starting sluice {}", env!("CARGO_PKG_VERSION"));
    let system = actix_rt::System::new();
    let result = system.block_on(async move {
        let hooks = RunHooks {
            on_started: std::io::stderr().is_terminal().then(|| {
                Box::new(|status: Arc<TopologyStatus>| {
                    actix_rt::spawn(progress_line(status));
                }) as Box<dyn FnOnce(Arc<TopologyStatus>) + Send>
            }),
        };
        topology::run(config, shutdown_signal(), hooks).await
    });
    match result {
        Ok(()) => {
            tracing::info!("all input processed and flushed; exiting");
            0
        }
        Err(err) => {
            tracing::error!("{err}");
            1
        }
    }
}

/// Resolves on SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM received"),
                _ = int.recv() => tracing::info!("SIGINT received"),
            }
        }
        (Err(err), _) | (_, Err(err)) => {
            tracing::error!("cannot listen for signals ({err}); stop with SIGKILL only");
            std::future::pending::<()>().await
        }
    }
}

/// A progress line on stderr for long replays: events read and the rate.
async fn progress_line(status: Arc<TopologyStatus>) {
    let started = Instant::now();
    let mut last = (Instant::now(), 0u64);
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let read: u64 = status
            .components
            .iter()
            .filter(|c| c.kind == ComponentKind::Source.as_str())
            .map(|c| c.total(|s| &s.received))
            .sum();
        let now = Instant::now();
        let rate = (read - last.1) as f64 / now.duration_since(last.0).as_secs_f64();
        last = (now, read);
        eprint!(
            "\r\x1b[2K{read} events read, {rate:.0} events/s, {:.0}s elapsed",
            started.elapsed().as_secs_f64()
        );
    }
}
