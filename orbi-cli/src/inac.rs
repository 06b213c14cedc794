//! `orbi inac` (being built; see the issue tracker).

use crate::{CliError, Outcome};

/// Arguments of `orbi inac`.
#[derive(clap::Args)]
pub struct Args {
    /// Arguments, not yet interpreted.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    rest: Vec<String>,
}

/// Runs `orbi inac`.
pub fn run(_args: Args) -> Result<Outcome, CliError> {
    Err(CliError::new("orbi inac is not built yet"))
}
