//! `weft peer lifecycle chaincode`: package, install, queryinstalled, getinstalledpackage and
//! calculatepackageid, with Fabric's flags and output.
//!
//! For now `install`, `queryinstalled` and `getinstalledpackage` act directly on the peer's
//! file system path (`peer.fileSystemPath`, `CORE_PEER_FILESYSTEMPATH`), so they run on the
//! peer's host as the peer's user; going through the peer's admin gRPC service comes later.

use std::path::PathBuf;

use clap::{Subcommand, ValueEnum};

use crate::lifecycle_tx::{self, DefinitionFlags, OrdererFlags, Output, PeerFlags};
use weft_peer::package::{
    installed_chaincodes_json, package_directory, write_file_atomically, ChaincodePackage,
    InstallStore, Limits,
};

/// Fabric's default `peer.fileSystemPath`.
pub const DEFAULT_PEER_FS_PATH: &str = "/var/hyperledger/production";

const DIRECT_NOTE: &str = "weft acts directly on the peer's file system path \
    (peer.fileSystemPath, CORE_PEER_FILESYSTEMPATH): run it on the peer's host as the peer's \
    user. Installing through the peer's admin gRPC service comes later.";

#[derive(Debug, Subcommand)]
pub enum ChaincodeCommand {
    /// Package a chaincode directory into a Fabric chaincode package (.tar.gz).
    ///
    /// The package holds metadata.json (path, type, label) and code.tar.gz. For golang, node
    /// and java the files go under src/ in code.tar.gz (META-INF/ stays at the root); for
    /// ccaas and binary they go at the root, so a ccaas directory needs only connection.json.
    /// The same files always give the same package and package id.
    Package {
        /// The package file to write, e.g. mycc.tar.gz.
        #[arg(value_name = "OUTPUT_FILE")]
        output: PathBuf,
        /// Directory holding the chaincode (for ccaas: connection.json, optional META-INF/).
        #[arg(short = 'p', long, value_name = "DIR")]
        path: PathBuf,
        /// Chaincode type, recorded as "type" in metadata.json.
        #[arg(short = 'l', long, value_enum)]
        lang: ChaincodeLang,
        /// Package label, e.g. mycc_1.0 (letters, digits and _ . + -; starts with a letter or
        /// digit).
        #[arg(long)]
        label: String,
    },
    /// Install a chaincode package on the peer.
    ///
    /// The package is checked in full first (format, label, every path and size in
    /// code.tar.gz) and then stored as <peer-fs-path>/lifecycle/chaincodes/<label>.<hash>.tar.gz.
    /// Installing the same package again is harmless and reported as already installed.
    #[command(after_help = DIRECT_NOTE)]
    Install {
        /// The chaincode package file.
        #[arg(value_name = "PACKAGE_FILE")]
        package: PathBuf,
        #[command(flatten)]
        peer: PeerFsPath,
    },
    /// List the chaincode packages installed on the peer.
    #[command(after_help = DIRECT_NOTE)]
    Queryinstalled {
        #[command(flatten)]
        peer: PeerFsPath,
        /// Output format.
        #[arg(short = 'O', long, value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
    },
    /// Copy an installed chaincode package out of the peer, as <package-id>.tar.gz.
    #[command(after_help = DIRECT_NOTE)]
    Getinstalledpackage {
        /// The package id, as queryinstalled prints it (label:hash).
        #[arg(long)]
        package_id: String,
        /// Directory to write the package file into.
        #[arg(long, value_name = "DIR", default_value = ".")]
        output_directory: PathBuf,
        #[command(flatten)]
        peer: PeerFsPath,
    },
    /// Approve a chaincode definition for your organization (a transaction: endorsed by your
    /// peer, ordered, committed).
    // -v/--version and -V are the chaincode's version and validation plugin, as in Fabric.
    #[command(disable_version_flag = true)]
    Approveformyorg {
        #[command(flatten)]
        peers: PeerFlags,
        #[command(flatten)]
        orderer: OrdererFlags,
        #[command(flatten)]
        definition: DefinitionFlags,
        /// The installed package your organization's peers run for this definition.
        #[arg(long = "package-id")]
        package_id: Option<String>,
    },
    /// Which organizations approved this exact definition.
    // -v/--version and -V are the chaincode's version and validation plugin, as in Fabric.
    #[command(disable_version_flag = true)]
    Checkcommitreadiness {
        #[command(flatten)]
        peers: PeerFlags,
        #[command(flatten)]
        definition: DefinitionFlags,
        /// Output format.
        #[arg(short = 'O', long = "output", value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Commit a chaincode definition to the channel (a transaction endorsed by enough
    /// organizations' peers for the LifecycleEndorsement policy).
    // -v/--version and -V are the chaincode's version and validation plugin, as in Fabric.
    #[command(disable_version_flag = true)]
    Commit {
        #[command(flatten)]
        peers: PeerFlags,
        #[command(flatten)]
        orderer: OrdererFlags,
        #[command(flatten)]
        definition: DefinitionFlags,
    },
    /// The committed chaincode definitions (or one, with --name).
    Querycommitted {
        #[command(flatten)]
        peers: PeerFlags,
        /// Chaincode name.
        #[arg(short = 'n', long = "name")]
        name: Option<String>,
        /// Output format.
        #[arg(short = 'O', long = "output", value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Your organization's approved definition of a chaincode.
    Queryapproved {
        #[command(flatten)]
        peers: PeerFlags,
        /// Chaincode name.
        #[arg(short = 'n', long = "name")]
        name: String,
        /// Sequence (default: the latest approved).
        #[arg(long = "sequence", default_value_t = 0)]
        sequence: i64,
        /// Output format.
        #[arg(short = 'O', long = "output", value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Print the package id of a chaincode package file (label:sha256), checking the package.
    Calculatepackageid {
        /// The chaincode package file.
        #[arg(value_name = "PACKAGE_FILE")]
        package: PathBuf,
    },
}

/// Where the peer keeps its data.
#[derive(Debug, Clone, clap::Args)]
pub struct PeerFsPath {
    /// The peer's file system path (Fabric's peer.fileSystemPath); installed packages live in
    /// its lifecycle/chaincodes directory.
    #[arg(
        long = "peer-fs-path",
        env = "CORE_PEER_FILESYSTEMPATH",
        value_name = "DIR",
        default_value = DEFAULT_PEER_FS_PATH
    )]
    pub path: PathBuf,
}

/// `--lang`: the chaincode type written to metadata.json.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ChaincodeLang {
    /// Chaincode as a service: the peer dials the address in connection.json.
    Ccaas,
    /// A prebuilt binary, for an external builder.
    Binary,
    /// Go source.
    Golang,
    /// Node.js source.
    Node,
    /// Java source.
    Java,
}

impl ChaincodeLang {
    /// The value Fabric writes as metadata.json's "type".
    pub fn as_str(self) -> &'static str {
        match self {
            ChaincodeLang::Ccaas => "ccaas",
            ChaincodeLang::Binary => "binary",
            ChaincodeLang::Golang => "golang",
            ChaincodeLang::Node => "node",
            ChaincodeLang::Java => "java",
        }
    }
}

/// `--output` for queryinstalled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Fabric's "Installed chaincodes on peer:" listing.
    Text,
    /// Fabric's JSON (`{"installed_chaincodes": [...]}`).
    Json,
}

pub fn run(cmd: ChaincodeCommand) -> Result<u8, Box<dyn std::error::Error>> {
    match cmd {
        ChaincodeCommand::Approveformyorg {
            peers,
            orderer,
            definition,
            package_id,
        } => lifecycle_tx::approve(peers, orderer, definition, package_id),
        ChaincodeCommand::Checkcommitreadiness {
            peers,
            definition,
            output,
        } => lifecycle_tx::check_commit_readiness(peers, definition, output),
        ChaincodeCommand::Commit {
            peers,
            orderer,
            definition,
        } => lifecycle_tx::commit(peers, orderer, definition),
        ChaincodeCommand::Querycommitted {
            peers,
            name,
            output,
        } => lifecycle_tx::query_committed(peers, name, output),
        ChaincodeCommand::Queryapproved {
            peers,
            name,
            sequence,
            output,
        } => lifecycle_tx::query_approved(peers, name, sequence, output),
        ChaincodeCommand::Package {
            output,
            path,
            lang,
            label,
        } => {
            let bytes = package_directory(&path, &label, lang.as_str())?;
            let id = ChaincodePackage::parse(&bytes)?.package_id().to_string();
            write_file_atomically(&output, &bytes)?;
            eprintln!(
                "Wrote chaincode package {} ({} bytes)\nChaincode code package identifier: {id}",
                output.display(),
                bytes.len()
            );
            Ok(0)
        }
        ChaincodeCommand::Install { package, peer } => {
            let bytes = read_package_file(&package)?;
            let store = InstallStore::open(&peer.path)?;
            let outcome = store.install(&bytes)?;
            let id = &outcome.chaincode.package_id;
            if outcome.already_installed {
                eprintln!("chaincode already successfully installed (package ID '{id}')");
            }
            println!("Chaincode code package identifier: {id}");
            Ok(0)
        }
        ChaincodeCommand::Queryinstalled { peer, output } => {
            let store = InstallStore::open(&peer.path)?;
            let installed = store.query_installed()?;
            match output {
                OutputFormat::Json => println!("{}", installed_chaincodes_json(&installed)),
                OutputFormat::Text => {
                    println!("Installed chaincodes on peer:");
                    for chaincode in &installed {
                        println!(
                            "Package ID: {}, Label: {}",
                            chaincode.package_id, chaincode.label
                        );
                    }
                }
            }
            Ok(0)
        }
        ChaincodeCommand::Getinstalledpackage {
            package_id,
            output_directory,
            peer,
        } => {
            let store = InstallStore::open(&peer.path)?;
            let bytes = store.get(&package_id)?;
            // Fabric names the file after the package id, colon included.
            std::fs::create_dir_all(&output_directory).map_err(|e| {
                format!(
                    "cannot create --output-directory {}: {e}",
                    output_directory.display()
                )
            })?;
            let target = output_directory.join(format!("{package_id}.tar.gz"));
            write_file_atomically(&target, &bytes)?;
            eprintln!("Wrote {}", target.display());
            Ok(0)
        }
        ChaincodeCommand::Calculatepackageid { package } => {
            let bytes = read_package_file(&package)?;
            println!("{}", ChaincodePackage::parse(&bytes)?.package_id());
            Ok(0)
        }
    }
}

/// Reads a package file, refusing files over the package size limit before reading them.
fn read_package_file(path: &std::path::Path) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let limit = Limits::DEFAULT.max_package_bytes;
    let size = std::fs::metadata(path)
        .map_err(|e| {
            format!(
                "failed to read chaincode package at '{}': {e}",
                path.display()
            )
        })?
        .len();
    if size > limit {
        return Err(format!(
            "chaincode package '{}' is {size} bytes, over the {limit}-byte limit",
            path.display()
        )
        .into());
    }
    std::fs::read(path).map_err(|e| {
        format!(
            "failed to read chaincode package at '{}': {e}",
            path.display()
        )
        .into()
    })
}
