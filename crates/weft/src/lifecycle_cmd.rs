//! `weft peer lifecycle chaincode`: package, install, queryinstalled, getinstalledpackage and
//! calculatepackageid, with Fabric's flags and output.
//!
//! `install`, `queryinstalled` and `getinstalledpackage` go to the peer as Fabric's CLI sends
//! them: a proposal to `_lifecycle` with no channel, signed by an admin of the peer's
//! organization (`CORE_PEER_MSPCONFIGPATH`, `CORE_PEER_LOCALMSPID`), over TLS to
//! `--peerAddresses` / `CORE_PEER_ADDRESS` (`--tlsRootCertFiles` /
//! `CORE_PEER_TLS_ROOTCERT_FILE`, client certificate from `CORE_PEER_TLS_CLIENTCERT_FILE` /
//! `_CLIENTKEY_FILE`). With `--peer-fs-path` (or, when no peer address is given,
//! `CORE_PEER_FILESYSTEMPATH`) they act directly on the peer's file system path instead, which
//! works with the peer stopped, on the peer's host as the peer's user.

use std::path::PathBuf;

use clap::{Subcommand, ValueEnum};

use crate::lifecycle_tx::{
    self, connect, peer_client_identity, DefinitionFlags, OrdererFlags, Output, PeerFlags,
};
use prost::Message;
use weft_msp::msp::SigningIdentity;
use weft_peer::package::{
    installed_chaincodes_json, package_directory, write_file_atomically, ChaincodePackage,
    InstallStore, Limits,
};
use weft_proto::lifecycle::{
    GetInstalledChaincodePackageArgs, GetInstalledChaincodePackageResult, InstallChaincodeArgs,
    InstallChaincodeResult, QueryInstalledChaincodesArgs, QueryInstalledChaincodesResult,
};
use weft_proto::protos::endorser_client::EndorserClient;

type BoxError = Box<dyn std::error::Error>;

/// Fabric's default `peer.fileSystemPath`.
pub const DEFAULT_PEER_FS_PATH: &str = "/var/hyperledger/production";

const DIRECT_NOTE: &str = "The call goes to the peer (--peerAddresses or CORE_PEER_ADDRESS, \
    --tlsRootCertFiles or CORE_PEER_TLS_ROOTCERT_FILE), signed by an admin of the peer's \
    organization (CORE_PEER_MSPCONFIGPATH, CORE_PEER_LOCALMSPID). With --peer-fs-path (or \
    CORE_PEER_FILESYSTEMPATH and no peer address) weft acts directly on the peer's file system \
    path instead: run it on the peer's host as the peer's user; the peer may be stopped.";

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
    /// code.tar.gz) and then stored as <peer fileSystemPath>/lifecycle/chaincodes/<label>.<hash>.tar.gz.
    /// Through the peer, it is then built (as Fabric does); a package that does not build is
    /// not installed, and installing an installed package again is refused as in Fabric.
    /// With --peer-fs-path, installing the same package again is reported and harmless.
    #[command(after_help = DIRECT_NOTE)]
    Install {
        /// The chaincode package file.
        #[arg(value_name = "PACKAGE_FILE")]
        package: PathBuf,
        #[command(flatten)]
        peer: PeerTarget,
    },
    /// List the chaincode packages installed on the peer.
    #[command(after_help = DIRECT_NOTE)]
    Queryinstalled {
        #[command(flatten)]
        peer: PeerTarget,
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
        peer: PeerTarget,
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

/// Which peer: over the network (Fabric's flags and environment), or its file system path.
#[derive(Debug, Clone, clap::Args)]
pub struct PeerTarget {
    /// The peer (host:port); defaults to CORE_PEER_ADDRESS. install may name several.
    #[arg(long = "peerAddresses")]
    pub peers: Vec<String>,
    /// The TLS CA certificate of each --peerAddresses peer, in the same order; defaults to
    /// CORE_PEER_TLS_ROOTCERT_FILE.
    #[arg(long = "tlsRootCertFiles")]
    pub tls_roots: Vec<PathBuf>,
    /// Name expected in the peer's certificate, if not the host of the address.
    #[arg(long = "servername", env = "CORE_PEER_TLS_SERVERHOSTOVERRIDE")]
    pub server_name: Option<String>,
    /// The admin's MSP directory (an admin of the peer's organization).
    #[arg(long = "mspdir", env = "CORE_PEER_MSPCONFIGPATH")]
    pub msp_dir: Option<PathBuf>,
    /// The admin's MSP id.
    #[arg(long = "mspid", env = "CORE_PEER_LOCALMSPID")]
    pub msp_id: Option<String>,
    /// Act on the peer's file system path (Fabric's peer.fileSystemPath) instead of calling
    /// the peer: installed packages live in its lifecycle/chaincodes directory. Without a peer
    /// address, CORE_PEER_FILESYSTEMPATH is used the same way.
    #[arg(long = "peer-fs-path", value_name = "DIR")]
    pub fs_path: Option<PathBuf>,
}

/// Where a call goes.
enum Target {
    /// The install store under a peer's file system path.
    Fs(PathBuf),
    /// Peers (address, TLS root), asked by the admin in the MSP directory.
    Net {
        peers: Vec<(String, PathBuf)>,
        msp_dir: PathBuf,
        msp_id: String,
    },
}

impl PeerTarget {
    fn resolve(&self) -> Result<Target, BoxError> {
        if let Some(p) = &self.fs_path {
            return Ok(Target::Fs(p.clone()));
        }
        let mut peers = self.peers.clone();
        if peers.is_empty() {
            match std::env::var("CORE_PEER_ADDRESS") {
                Ok(a) if !a.is_empty() => peers.push(a),
                _ => {
                    if let Some(p) = std::env::var_os("CORE_PEER_FILESYSTEMPATH") {
                        return Ok(Target::Fs(PathBuf::from(p)));
                    }
                    return Err(format!(
                        "which peer? pass --peerAddresses (or set CORE_PEER_ADDRESS) to call \
                         the peer, or --peer-fs-path (Fabric's default is {DEFAULT_PEER_FS_PATH}) \
                         to act on its file system on the peer's host"
                    )
                    .into());
                }
            }
        }
        let mut roots = self.tls_roots.clone();
        if roots.is_empty() {
            if let Some(r) = std::env::var_os("CORE_PEER_TLS_ROOTCERT_FILE") {
                roots.push(PathBuf::from(r));
            }
        }
        if roots.len() != peers.len() {
            return Err(format!(
                "{} peer address(es) but {} TLS root file(s): give one --tlsRootCertFiles per \
                 --peerAddresses, in the same order (or set CORE_PEER_TLS_ROOTCERT_FILE for \
                 CORE_PEER_ADDRESS)",
                peers.len(),
                roots.len()
            )
            .into());
        }
        let msp_dir = self.msp_dir.clone().ok_or(
            "no signing identity: set CORE_PEER_MSPCONFIGPATH (or --mspdir) to the msp \
             directory of an admin of the peer's organization",
        )?;
        let msp_id = self
            .msp_id
            .clone()
            .ok_or("no MSP id: set CORE_PEER_LOCALMSPID (or --mspid), e.g. Org1MSP")?;
        Ok(Target::Net {
            peers: peers.into_iter().zip(roots).collect(),
            msp_dir,
            msp_id,
        })
    }
}

/// Send one channel-less `_lifecycle` call to a peer; answers the response payload.
/// `what` names the operation in errors, as Fabric's CLI does ("chaincode install").
async fn call_peer(
    address: &str,
    root: &std::path::Path,
    server_name: Option<&str>,
    signer: &SigningIdentity,
    function: &str,
    arg: &[u8],
    what: &str,
) -> Result<bytes::Bytes, BoxError> {
    let conn = connect(
        address,
        root,
        "--tlsRootCertFiles (CORE_PEER_TLS_ROOTCERT_FILE)",
        peer_client_identity()?,
        server_name,
    )
    .await?;
    let (proposal, _) = weft_peer::endorser::signed_proposal(
        signer,
        "",
        weft_peer::lifecycle::LIFECYCLE,
        &[function.as_bytes(), arg],
        &[],
    )?;
    let resp = EndorserClient::new(conn.channel)
        .max_decoding_message_size(weft_peer::endorser::MAX_PROPOSAL_BYTES)
        .max_encoding_message_size(weft_peer::endorser::MAX_PROPOSAL_BYTES)
        .process_proposal(proposal)
        .await
        .map_err(|s| {
            format!(
                "{what} failed: peer {address} refused the call: {}",
                s.message()
            )
        })?
        .into_inner();
    let r = resp.response.unwrap_or_default();
    if r.status != 200 {
        return Err(format!(
            "{what} failed with status: {} - {} (peer {address})",
            r.status, r.message
        )
        .into());
    }
    Ok(r.payload)
}

fn load_signer(msp_dir: &std::path::Path, msp_id: &str) -> Result<SigningIdentity, BoxError> {
    SigningIdentity::from_local_msp_dir(msp_dir, msp_id).map_err(|e| {
        format!(
            "CORE_PEER_MSPCONFIGPATH {} / CORE_PEER_LOCALMSPID {msp_id}: {e}",
            msp_dir.display()
        )
        .into()
    })
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
            let path = match peer.resolve()? {
                Target::Fs(path) => path,
                Target::Net {
                    peers,
                    msp_dir,
                    msp_id,
                } => return install_remote(&peer, &peers, &msp_dir, &msp_id, &bytes),
            };
            let store = InstallStore::open(&path)?;
            let outcome = store.install(&bytes)?;
            let id = &outcome.chaincode.package_id;
            if outcome.already_installed {
                eprintln!("chaincode already successfully installed (package ID '{id}')");
            }
            println!("Chaincode code package identifier: {id}");
            Ok(0)
        }
        ChaincodeCommand::Queryinstalled { peer, output } => {
            let installed = match peer.resolve()? {
                Target::Fs(path) => {
                    let installed = InstallStore::open(&path)?.query_installed()?;
                    if output == OutputFormat::Json {
                        println!("{}", installed_chaincodes_json(&installed));
                        return Ok(0);
                    }
                    installed
                        .into_iter()
                        .map(|c| (c.package_id, c.label))
                        .collect::<Vec<_>>()
                }
                Target::Net {
                    peers,
                    msp_dir,
                    msp_id,
                } => {
                    let (address, root) = peers.first().ok_or("no peer to ask")?;
                    let signer = load_signer(&msp_dir, &msp_id)?;
                    let payload = lifecycle_tx::runtime()?.block_on(call_peer(
                        address,
                        root,
                        peer.server_name.as_deref(),
                        &signer,
                        "QueryInstalledChaincodes",
                        &QueryInstalledChaincodesArgs {}.encode_to_vec(),
                        "query",
                    ))?;
                    let result = QueryInstalledChaincodesResult::decode(payload).map_err(|e| {
                        format!("the answer of peer {address} does not decode: {e}")
                    })?;
                    if output == OutputFormat::Json {
                        println!(
                            "{}",
                            weft_peer::lifecycle_local::installed_chaincodes_result_json(&result)
                        );
                        return Ok(0);
                    }
                    result
                        .installed_chaincodes
                        .into_iter()
                        .map(|c| (c.package_id, c.label))
                        .collect()
                }
            };
            println!("Installed chaincodes on peer:");
            for (package_id, label) in &installed {
                println!("Package ID: {package_id}, Label: {label}");
            }
            Ok(0)
        }
        ChaincodeCommand::Getinstalledpackage {
            package_id,
            output_directory,
            peer,
        } => {
            let bytes = match peer.resolve()? {
                Target::Fs(path) => InstallStore::open(&path)?.get(&package_id)?,
                Target::Net {
                    peers,
                    msp_dir,
                    msp_id,
                } => {
                    let (address, root) = peers.first().ok_or("no peer to ask")?;
                    let signer = load_signer(&msp_dir, &msp_id)?;
                    let payload = lifecycle_tx::runtime()?.block_on(call_peer(
                        address,
                        root,
                        peer.server_name.as_deref(),
                        &signer,
                        "GetInstalledChaincodePackage",
                        &GetInstalledChaincodePackageArgs {
                            package_id: package_id.clone(),
                        }
                        .encode_to_vec(),
                        "get installed package",
                    ))?;
                    GetInstalledChaincodePackageResult::decode(payload)
                        .map_err(|e| format!("the answer of peer {address} does not decode: {e}"))?
                        .chaincode_install_package
                        .to_vec()
                }
            };
            // Whatever answered, the bytes must be the package the id names.
            let got = ChaincodePackage::parse(&bytes)?.package_id().to_string();
            if got != package_id {
                return Err(format!(
                    "the package received for {package_id} has package id {got}; not written"
                )
                .into());
            }
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

/// `install` through the peer(s): one proposal per peer, each answered with the package id.
fn install_remote(
    flags: &PeerTarget,
    peers: &[(String, PathBuf)],
    msp_dir: &std::path::Path,
    msp_id: &str,
    package: &[u8],
) -> Result<u8, BoxError> {
    let signer = load_signer(msp_dir, msp_id)?;
    let arg = InstallChaincodeArgs {
        chaincode_install_package: package.to_vec().into(),
    }
    .encode_to_vec();
    let rt = lifecycle_tx::runtime()?;
    for (address, root) in peers {
        let payload = rt.block_on(call_peer(
            address,
            root,
            flags.server_name.as_deref(),
            &signer,
            "InstallChaincode",
            &arg,
            "chaincode install",
        ))?;
        let result = InstallChaincodeResult::decode(payload)
            .map_err(|e| format!("the answer of peer {address} does not decode: {e}"))?;
        eprintln!("Installed remotely on {address} (label {})", result.label);
        println!("Chaincode code package identifier: {}", result.package_id);
    }
    Ok(0)
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
