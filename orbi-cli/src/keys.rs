//! `orbi keys generate|show`: ed25519 identity key files.
//!
//! A key file holds one secret seed and serves both the node and the participant role. Output
//! is the public identity only, as JSON: `{"node/id", "participant/id", "key/public"}`; the
//! secret is never printed or logged.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use orbi_pod::keyfile;
use orbi_types::KeyPair;
use serde_json::json;
use zeroize::Zeroizing;

use crate::{CliError, Outcome};

/// Arguments of `orbi keys`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: KeysCommand,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Generate a key file (mode 0600, written atomically) and print its public identity.
    Generate {
        /// Where to write the key file; an existing file is kept unless --force.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// A 32-byte secret seed as 64 hex characters, for deterministic keys (tests,
        /// vectors); without it the seed comes from the operating system.
        #[arg(long, value_name = "HEX64")]
        seed: Option<String>,
        /// Replace an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Print the public identity of a key file.
    Show {
        /// The key file.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

/// Runs `orbi keys`.
pub fn run(args: Args) -> Result<Outcome, CliError> {
    match args.command {
        KeysCommand::Generate { out, seed, force } => {
            let seed = match seed {
                Some(hex) => parse_seed(&hex)?,
                None => random_seed()?,
            };
            let key = KeyPair::from_seed(&seed);
            keyfile::write(&out, &key, force).map_err(|err| CliError::new(err.to_string()))?;
            print_identity(&key);
        }
        KeysCommand::Show { file } => print_identity(&read_key(&file)?),
    }
    Ok(Outcome::Success)
}

/// Reads a key file, mapping its errors to exit 2.
pub fn read_key(path: &Path) -> Result<KeyPair, CliError> {
    keyfile::read(path).map_err(|err| CliError::new(err.to_string()))
}

fn print_identity(key: &KeyPair) {
    let identity = json!({
        "node/id": key.node_id().as_str(),
        "participant/id": key.participant_id().as_str(),
        "key/public": key.did_key().as_str(),
    });
    crate::pod::print_json(&identity);
}

fn parse_seed(hex: &str) -> Result<Zeroizing<[u8; 32]>, CliError> {
    let wrong = || CliError::new("--seed must be 64 hex characters (32 bytes)");
    if hex.len() != 64 || !hex.is_ascii() {
        return Err(wrong());
    }
    let mut seed = Zeroizing::new([0u8; 32]);
    for (i, byte) in seed.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| wrong())?;
    }
    Ok(seed)
}

pub(crate) fn random_seed() -> Result<Zeroizing<[u8; 32]>, CliError> {
    let mut seed = Zeroizing::new([0u8; 32]);
    getrandom::fill(seed.as_mut_slice())
        .map_err(|err| CliError::new(format!("no operating-system randomness: {err}")))?;
    Ok(seed)
}

#[cfg(test)]
mod tests {
    use super::parse_seed;

    /// Each pair of hex digits is the byte at its place: the first pair is the first byte.
    #[test]
    fn a_seed_is_read_byte_by_byte_in_order() {
        let hex: String = (0u8..32).map(|byte| format!("{byte:02x}")).collect();
        let expected: Vec<u8> = (0u8..32).collect();
        assert_eq!(parse_seed(&hex).unwrap().as_slice(), expected.as_slice());
        let upper = "FF".repeat(32);
        assert_eq!(
            parse_seed(&upper).unwrap().as_slice(),
            [0xff; 32].as_slice()
        );
    }

    /// 64 bytes that are not 64 ASCII characters are a usage error, not a panic on a slice
    /// through a character.
    #[test]
    fn a_seed_of_64_bytes_but_not_ascii_is_refused() {
        // A three-byte character: every two-byte slice of the seed cuts through it somewhere.
        for seed in [
            format!("€{}", "a".repeat(61)),
            format!("{}€", "a".repeat(61)),
        ] {
            assert_eq!(seed.len(), 64);
            let error = parse_seed(&seed).unwrap_err();
            assert_eq!(
                error.to_string(),
                "--seed must be 64 hex characters (32 bytes)"
            );
        }
    }
}
