//! `weft crypto`: organization crypto material.

use std::path::PathBuf;

use clap::Subcommand;
use weft_msp::{generate, CryptoConfig, GenerateOptions, SAMPLE_CRYPTO_CONFIG};

#[derive(Debug, Subcommand)]
pub enum CryptoCommand {
    /// Generate keys and certificates for every organization of a crypto-config.yaml, in the
    /// directory layout Fabric's cryptogen writes.
    Generate {
        /// crypto-config.yaml (cryptogen's format). Without it: the built-in sample network
        /// (see `weft crypto sample-config`).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Output directory.
        #[arg(long, value_name = "DIR", default_value = "crypto-config")]
        output: PathBuf,
        /// Replace existing keys and certificates in the output directory.
        #[arg(long)]
        force: bool,
    },
    /// Print a commented crypto-config.yaml for a network of one orderer org and two peer orgs.
    SampleConfig,
}

pub fn run(cmd: CryptoCommand) -> Result<u8, Box<dyn std::error::Error>> {
    match cmd {
        CryptoCommand::Generate {
            config,
            output,
            force,
        } => {
            let config = match &config {
                Some(path) => CryptoConfig::from_file(path)?,
                None => {
                    CryptoConfig::from_yaml_str(SAMPLE_CRYPTO_CONFIG, "built-in sample network")?
                }
            };
            let report = generate(&config, &output, &GenerateOptions { overwrite: force })?;
            print!("{report}");
            Ok(0)
        }
        CryptoCommand::SampleConfig => {
            print!("{SAMPLE_CRYPTO_CONFIG}");
            Ok(0)
        }
    }
}
