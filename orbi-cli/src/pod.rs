//! `orbi pod` (being built; see the issue tracker).

use crate::{CliError, Outcome};

/// Arguments of `orbi pod`.
#[derive(clap::Args)]
pub struct Args {
    /// Arguments, not yet interpreted.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    rest: Vec<String>,
}

/// Runs `orbi pod`.
pub fn run(_args: Args) -> Result<Outcome, CliError> {
    Err(CliError::new("orbi pod is not built yet"))
}
