//! `weft chaincode invoke | query`: call chaincode through a peer's Gateway as an
//! application does, with an org user's identity — `invoke` endorses (the gateway gathers
//! enough orgs' endorsements), signs, submits and waits for the commit; `query` evaluates on
//! the peer. Fabric's flags and `CORE_PEER_*` environment; the client presents
//! `CORE_PEER_TLS_CLIENTCERT_FILE` / `_CLIENTKEY_FILE` when set (mutual TLS).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use weft_msp::msp::SigningIdentity;

use crate::lifecycle_tx::{connect, peer_client_identity, runtime};

type BoxError = Box<dyn std::error::Error>;

#[derive(Debug, Subcommand)]
pub enum GatewayCommand {
    /// Submit a transaction and wait for it to commit; prints the chaincode's answer.
    Invoke(CallArgs),
    /// Evaluate a transaction on the peer (nothing is committed); prints the answer.
    Query(CallArgs),
}

#[derive(Debug, Args)]
pub struct CallArgs {
    /// Channel name.
    #[arg(short = 'C', long = "channelID")]
    channel: String,
    /// Chaincode name.
    #[arg(short = 'n', long = "name")]
    name: String,
    /// Fabric's ctor JSON: {"Args":["fn","arg1",...]} or {"function":"fn","Args":[...]}.
    #[arg(short = 'c', long = "ctor")]
    ctor: String,
    /// The peer whose Gateway to use (host:port).
    #[arg(long = "peerAddresses", env = "CORE_PEER_ADDRESS")]
    peer: String,
    /// The peer's TLS CA certificate.
    #[arg(long = "tlsRootCertFiles", env = "CORE_PEER_TLS_ROOTCERT_FILE")]
    tls_root: PathBuf,
    /// Name expected in the peer's certificate, if not the host of the address.
    #[arg(long = "servername", env = "CORE_PEER_TLS_SERVERHOSTOVERRIDE")]
    server_name: Option<String>,
    /// The signing identity's MSP directory (an org user).
    #[arg(long = "mspdir", env = "CORE_PEER_MSPCONFIGPATH")]
    msp_dir: PathBuf,
    /// The signing identity's MSP id.
    #[arg(long = "mspid", env = "CORE_PEER_LOCALMSPID")]
    msp_id: String,
}

pub fn run(cmd: GatewayCommand) -> Result<u8, BoxError> {
    let (invoke, a) = match cmd {
        GatewayCommand::Invoke(a) => (true, a),
        GatewayCommand::Query(a) => (false, a),
    };
    let args = crate::chaincode_cmd::ctor_args(&a.ctor)?;
    let arg_bytes: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
    let signer = SigningIdentity::from_local_msp_dir(&a.msp_dir, &a.msp_id)?;
    runtime()?.block_on(async {
        let conn = connect(
            &a.peer,
            &a.tls_root,
            "--tlsRootCertFiles (CORE_PEER_TLS_ROOTCERT_FILE)",
            peer_client_identity()?,
            a.server_name.as_deref(),
        )
        .await?;
        if invoke {
            let (tx_id, block) = weft_peer::client::gateway_submit(
                &conn,
                &signer,
                &a.channel,
                &a.name,
                &arg_bytes,
                Duration::from_secs(60),
            )
            .await?;
            eprintln!("txid [{tx_id}] committed with status (VALID) in block {block}");
        } else {
            let payload = weft_peer::client::gateway_evaluate(
                &conn, &signer, &a.channel, &a.name, &arg_bytes,
            )
            .await?;
            println!("{}", String::from_utf8_lossy(&payload));
        }
        Ok::<_, BoxError>(())
    })?;
    Ok(0)
}
