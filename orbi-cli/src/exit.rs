//! Exit codes shared by every command.

use std::process::ExitCode;

/// How a command that ran to completion judged its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Everything valid, admitted, ingested: exit 0.
    Success,
    /// The input was judged and refused (invalid, rejected, declined): exit 1.
    Refused,
}

/// A usage or I/O error: exit 2, message on stderr.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CliError(pub String);

impl CliError {
    /// A usage or I/O error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        CliError(message.into())
    }
}

/// Maps a command result to the process exit code.
pub fn finish(result: Result<Outcome, CliError>) -> ExitCode {
    match result {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::Refused) => ExitCode::from(1),
        Err(error) => {
            eprintln!("orbi: {error}");
            ExitCode::from(2)
        }
    }
}
