//! `weft peer chaincode query`: send a signed proposal to a peer's endorser and print the
//! chaincode's answer, as Fabric's `peer chaincode query` does. The proposal is signed with the
//! MSP identity in `CORE_PEER_MSPCONFIGPATH` / `CORE_PEER_LOCALMSPID`, over TLS (mutual TLS
//! with `--certfile`/`--keyfile`). Nothing is ordered or committed.

use std::path::PathBuf;

use clap::Args;
use weft_msp::msp::SigningIdentity;
use weft_proto::protos::endorser_client::EndorserClient;
use weft_tls::{ClientIdentity, Endpoint, Identity, Profile, TlsClient, Trust};

#[derive(Debug, Args)]
pub struct QueryArgs {
    /// Channel name.
    #[arg(short = 'C', long = "channelID")]
    channel: String,
    /// Chaincode name.
    #[arg(short = 'n', long = "name")]
    name: String,
    /// Constructor message, Fabric's JSON: {"Args":["fn","arg1",...]} or
    /// {"function":"fn","Args":["arg1",...]}.
    #[arg(short = 'c', long = "ctor")]
    ctor: String,
    /// The peer, host:port.
    #[arg(long = "peerAddresses", env = "CORE_PEER_ADDRESS")]
    peer: String,
    /// CA certificate(s) of the peer's TLS certificate (PEM).
    #[arg(long = "tlsRootCertFiles", env = "CORE_PEER_TLS_ROOTCERT_FILE")]
    tls_root: PathBuf,
    /// Client TLS certificate, for peers that require client certificates.
    #[arg(
        long = "certfile",
        env = "CORE_PEER_TLS_CLIENTCERT_FILE",
        requires = "keyfile"
    )]
    certfile: Option<PathBuf>,
    /// Its key.
    #[arg(
        long = "keyfile",
        env = "CORE_PEER_TLS_CLIENTKEY_FILE",
        requires = "certfile"
    )]
    keyfile: Option<PathBuf>,
    /// Name expected in the peer's certificate, if not the host of --peerAddresses.
    #[arg(long = "servername", env = "CORE_PEER_TLS_SERVERHOSTOVERRIDE")]
    server_name: Option<String>,
    /// The signing identity's MSP directory.
    #[arg(long = "mspdir", env = "CORE_PEER_MSPCONFIGPATH")]
    msp_dir: PathBuf,
    /// The signing identity's MSP id.
    #[arg(long = "mspid", env = "CORE_PEER_LOCALMSPID")]
    msp_id: String,
}

/// Fabric's ctor JSON to arguments.
pub(crate) fn ctor_args(ctor: &str) -> Result<Vec<String>, String> {
    let v: serde_json::Value = serde_json::from_str(ctor).map_err(|e| {
        format!("-c {ctor:?} is not JSON ({e}); use '{{\"Args\":[\"fn\",\"arg\"]}}'")
    })?;
    let list = v
        .get("Args")
        .or_else(|| v.get("args"))
        .and_then(|a| a.as_array())
        .ok_or_else(|| format!("-c {ctor:?} has no \"Args\" list"))?;
    let mut args = Vec::new();
    if let Some(f) = v.get("function").or_else(|| v.get("Function")) {
        args.push(
            f.as_str()
                .ok_or("-c: \"function\" must be a string")?
                .to_owned(),
        );
    }
    for a in list {
        args.push(
            a.as_str()
                .ok_or_else(|| format!("-c: every argument must be a string, got {a}"))?
                .to_owned(),
        );
    }
    Ok(args)
}

pub fn query(a: QueryArgs) -> Result<u8, Box<dyn std::error::Error>> {
    let args = ctor_args(&a.ctor)?;
    let signer = SigningIdentity::from_local_msp_dir(&a.msp_dir, &a.msp_id)?;
    let identity = match (&a.certfile, &a.keyfile) {
        (Some(c), Some(k)) => ClientIdentity::Certificate(Identity::from_pem_files(
            c,
            k,
            "--certfile/--keyfile (CORE_PEER_TLS_CLIENTCERT_FILE/_CLIENTKEY_FILE)",
        )?),
        _ => ClientIdentity::Anonymous,
    };
    let trust = Trust::roots_from_pem_files(
        &[&a.tls_root],
        "--tlsRootCertFiles (CORE_PEER_TLS_ROOTCERT_FILE)",
    )?;
    let client = TlsClient::new(trust, identity, Profile::Fabric)?;
    let mut endpoint = Endpoint::parse(&a.peer)?;
    if let Some(name) = &a.server_name {
        endpoint = endpoint.with_server_name(name)?;
    }
    let arg_bytes: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
    let (proposal, tx_id) =
        weft_peer::endorser::signed_proposal(&signer, &a.channel, &a.name, &arg_bytes, &[])?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let resp = runtime.block_on(async {
        let channel = weft_tls::grpc::channel(Some(client), endpoint).await?;
        let r = EndorserClient::new(channel)
            .process_proposal(proposal)
            .await
            .map_err(|s| format!("the peer refused the call: {}", s.message()))?;
        Ok::<_, Box<dyn std::error::Error>>(r.into_inner())
    })?;
    let r = resp.response.unwrap_or_default();
    if r.status >= 400 {
        eprintln!(
            "Error: endorsement failure during query (tx {tx_id}): status {}, message: {}",
            r.status, r.message
        );
        return Ok(crate::EXIT_NOT_OK);
    }
    println!("{}", String::from_utf8_lossy(&r.payload));
    tracing::info!(
        tx_id,
        status = r.status,
        endorsed = resp.endorsement.is_some(),
        "query answered"
    );
    Ok(0)
}
