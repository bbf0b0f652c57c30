//! `weft configtx`: channel genesis blocks from configtx.yaml (Fabric's `configtxgen
//! -outputBlock`), a readable summary of a config block, and config updates
//! (`weft configtx update`, see [`crate::configupdate_cmd`]).

use std::path::PathBuf;

use clap::Subcommand;
use weft_configtx::{genesis_block, inspect, ChannelConfig, ConfigTxFile};
use weft_proto::common::Block;
use weft_proto::Message;

#[derive(Debug, Subcommand)]
pub enum ConfigtxCommand {
    /// Write the genesis block of a channel from a profile of configtx.yaml.
    Genesis {
        /// The profile (under `Profiles:` in configtx.yaml).
        #[arg(long)]
        profile: String,
        /// The channel ID: lower-case letters, digits, '.' and '-'.
        #[arg(long = "channelID", value_name = "CHANNEL")]
        channel_id: String,
        /// Where to write the block.
        #[arg(long = "outputBlock", value_name = "FILE")]
        output_block: PathBuf,
        /// The folder holding configtx.yaml (default: $FABRIC_CFG_PATH, else the current
        /// folder). Relative paths in the file are relative to this folder.
        #[arg(long = "configPath", value_name = "DIR", env = "FABRIC_CFG_PATH")]
        config_path: Option<PathBuf>,
    },
    /// Print a summary of a config block: channel, orgs and MSP IDs, anchor peers, orderer
    /// endpoints, batch settings, policies.
    Inspect {
        /// A config block (e.g. a genesis block).
        file: PathBuf,
    },
    /// Compute a channel config update from the current config block (instead of
    /// configtxlator): add an org, set anchor peers. Writes an unsigned CONFIG_UPDATE envelope.
    #[command(subcommand)]
    Update(crate::configupdate_cmd::UpdateCommand),
}

pub fn run(cmd: ConfigtxCommand) -> Result<u8, Box<dyn std::error::Error>> {
    match cmd {
        ConfigtxCommand::Genesis {
            profile,
            channel_id,
            output_block,
            config_path,
        } => {
            let dir = config_path.unwrap_or_else(|| PathBuf::from("."));
            let file = ConfigTxFile::from_dir(&dir)?;
            let block = genesis_block(&channel_id, &file.profile(&profile)?)?;
            std::fs::write(&output_block, block.encode_to_vec()).map_err(|e| {
                format!(
                    "cannot write the genesis block to '{}': {e}",
                    output_block.display()
                )
            })?;
            println!(
                "wrote the genesis block of channel '{channel_id}' (profile {profile}) to {}",
                output_block.display()
            );
            Ok(0)
        }
        ConfigtxCommand::Update(cmd) => crate::configupdate_cmd::run_update(cmd),
        ConfigtxCommand::Inspect { file } => {
            let bytes = std::fs::read(&file)
                .map_err(|e| format!("cannot read '{}': {e}", file.display()))?;
            let block = Block::decode(bytes.as_slice()).map_err(|e| {
                format!(
                    "'{}' is not a block (protobuf common.Block): {e}",
                    file.display()
                )
            })?;
            let config = ChannelConfig::from_block(&block)
                .map_err(|e| format!("'{}': {e}", file.display()))?;
            print!("{}", inspect::describe(&config));
            Ok(0)
        }
    }
}
