//! `orbi schema` (being built; see the issue tracker).

use crate::{CliError, Outcome};

/// Arguments of `orbi schema`.
#[derive(clap::Args)]
pub struct Args {
    /// Arguments, not yet interpreted.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    rest: Vec<String>,
}

/// Runs `orbi schema`.
pub fn run(_args: Args) -> Result<Outcome, CliError> {
    Err(CliError::new("orbi schema is not built yet"))
}
