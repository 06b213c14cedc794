//! `orbi`: the command-line face of the orbi crates.
//!
//! Every command prints its result on stdout (JSON where the command says so) and exits with
//! `0` on success, `1` when the input was judged and refused (invalid, rejected, refused), and
//! `2` on a usage or I/O error. Logs go to stderr, filtered by `RUST_LOG`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// `println!` that never panics: a reader that went away (`orbi demo | head -3`) is not this
/// program's failure, and a node must not die with its banner.
macro_rules! outln {
    ($($arg:tt)*) => {{
        // Unit tests print through the harness, which captures `println!` only.
        #[cfg(test)]
        println!($($arg)*);
        #[cfg(not(test))]
        {
            use std::io::Write as _;
            let _ = writeln!(std::io::stdout().lock(), $($arg)*);
        }
    }};
}

mod archivist;
mod demo;
mod exit;
mod files;
mod inac;
mod json_out;
mod keys;
mod logging;
mod node;
mod pod;
mod schema;

pub use exit::{CliError, Outcome};

#[derive(Parser)]
#[command(
    name = "orbi",
    version,
    about = "Orbiplex node protocols: schemas, pod, INAC, archivists"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole system end to end on embedded defaults (two nodes on loopback QUIC).
    Demo(demo::Args),
    /// Canonical schemas: list, validate, export.
    Schema(schema::Args),
    /// Ed25519 identity keys.
    Keys(keys::Args),
    /// Participant binds and the client attach/detach/recover lifecycle.
    Pod(pod::Args),
    /// Inter-Node Artifact Channel over QUIC.
    Inac(inac::Args),
    /// Archivist advertisements and storage matching.
    Archivist(archivist::Args),
    /// Run a serving node (pods, INAC, archivist role) from a config file.
    Node(node::Args),
}

fn main() -> ExitCode {
    ignore_file_size_signal();
    let cli = Cli::parse();
    // Every command logs to stderr under `RUST_LOG`, initialised here once for all of them;
    // the default is `warn` but for a running node.
    logging::init(match &cli.command {
        Command::Node(args) => node::default_log_level(args),
        _ => "warn",
    });
    let result = match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Schema(args) => schema::run(args),
        Command::Keys(args) => keys::run(args),
        Command::Pod(args) => pod::run(args),
        Command::Inac(args) => inac::run(args),
        Command::Archivist(args) => archivist::run(args),
        Command::Node(args) => node::run(args),
    };
    exit::finish(result)
}

/// A write past the file size limit (RLIMIT_FSIZE) fails with `EFBIG`, which every writer
/// reports and cleans up after, instead of `SIGXFSZ` killing the process mid-write: a serving
/// node would stop for one peer's large body, a key or output file would leave its temporary
/// file behind.
fn ignore_file_size_signal() {
    #[cfg(unix)]
    // SAFETY: setting a signal's disposition to SIG_IGN, before any thread is started.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}
