//! `asset-transfer`: Fabric's asset-transfer-basic chaincode as one binary that runs either
//! launched by a peer or as a chaincode server the peer dials. See `asset-transfer --help`.

use std::io::IsTerminal as _;
use std::process::ExitCode;

use weft_shim::{ServerConfig, ShimError};

const HELP: &str = "\
asset-transfer: Fabric's asset-transfer-basic chaincode (InitLedger, CreateAsset, ReadAsset,
UpdateAsset, DeleteAsset, AssetExists, TransferAsset, GetAllAssets), on weft-shim.

USAGE:
    asset-transfer [-peer.address=HOST:PORT]          launched by a peer
    asset-transfer [--chaincode-address=HOST:PORT ...] as a chaincode server
    asset-transfer --help | --version

The mode is chosen by CHAINCODE_SERVER_ADDRESS (or --chaincode-address): set, the chaincode
listens as a server; unset, it dials the peer that launched it.

LAUNCHED BY A PEER (the peer or its external builder's run script provides these):
    CORE_CHAINCODE_ID_NAME        package id to register as (label:hash)        required
    -peer.address / --peer.address HOST:PORT, or CORE_PEER_ADDRESS
                                  the peer's chaincode service                  required
    CORE_PEER_TLS_ENABLED         true (verify the peer) or false (plaintext)   required
    CORE_PEER_TLS_ROOTCERT_FILE   CA that issued the peer's TLS certificate     with TLS
    CORE_TLS_CLIENT_CERT_FILE     this chaincode's client certificate (PEM)     with TLS
    CORE_TLS_CLIENT_KEY_FILE      its private key (PEM)                         with TLS
      (or CORE_TLS_CLIENT_CERT_PATH / CORE_TLS_CLIENT_KEY_PATH: files of base64 PEM)
    CORE_PEER_TLS_SERVERHOSTOVERRIDE  name expected in the peer's certificate   optional
    CORE_PEER_LOCALMSPID          the peer's MSP id                             optional

AS A CHAINCODE SERVER (chaincode as a service; the peer dials it as connection.json says):
    CHAINCODE_SERVER_ADDRESS   --chaincode-address         listen address, e.g. 0.0.0.0:9999
    CHAINCODE_ID               --chaincode-id              package id (label:hash)
    CHAINCODE_TLS_CERT         --chaincode-tls-cert-file   server certificate (PEM)
    CHAINCODE_TLS_KEY          --chaincode-tls-key-file    server private key (PEM)
    CHAINCODE_CLIENT_CA_CERT   --chaincode-tls-client-cacert-file
                               CA of the peer's client certificate: set it to require mutual TLS
    CHAINCODE_TLS_DISABLED     --chaincode-tls-disabled    true: serve plaintext (development only)
    Flags win over variables. TLS is on unless explicitly disabled.

LOGGING (to stderr):
    CORE_CHAINCODE_LOGGING_LEVEL  a Fabric level: debug, info, warning, error, ... (the peer sets it)
    RUST_LOG                      a tracing filter, e.g. info,weft_shim=debug (used when the
                                  variable above is unset)
    Default: info.

EXIT STATUS:
    0 the peer closed the stream; 1 the peer could not be reached or the connection failed;
    2 the configuration is missing or invalid.
";

/// One thread: the process serves one stream per peer, with little work between messages. Under
/// `weft bench` the multi-thread runtime spent 32-37 µs of CPU per transaction here, this one
/// 23-24 (docs/SHIM.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args
        .iter()
        .any(|a| matches!(a.as_str(), "-h" | "--help" | "-help"))
    {
        print!("{HELP}");
        return ExitCode::SUCCESS;
    }
    if args.iter().any(|a| a == "-V" || a == "--version") {
        println!("asset-transfer {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    init_logging();

    let result = if server_mode(&args) {
        run_server().await
    } else {
        run_launched().await
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let config_error = matches!(
                e,
                ShimError::Missing { .. } | ShimError::Invalid { .. } | ShimError::File { .. }
            );
            eprintln!("asset-transfer: error: {e}");
            if config_error {
                eprintln!(
                    "asset-transfer: run `asset-transfer --help` for the variables of each mode"
                );
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// Server mode when a listen address is given, by variable or flag.
fn server_mode(args: &[String]) -> bool {
    let flag = args
        .iter()
        .any(|a| a == "--chaincode-address" || a.starts_with("--chaincode-address="));
    let var = std::env::var("CHAINCODE_SERVER_ADDRESS").is_ok_and(|v| !v.is_empty());
    flag || var
}

async fn run_server() -> Result<(), ShimError> {
    let config = ServerConfig::from_env()?;
    tracing::info!(
        mode = "server",
        address = %config.address,
        chaincode = %config.chaincode_id,
        tls = config.tls.is_some(),
        mutual_tls = config.tls.as_ref().is_some_and(|t| t.client_ca_pem.is_some()),
        "starting asset-transfer"
    );
    weft_shim::serve(asset_transfer::contract(), config).await
}

async fn run_launched() -> Result<(), ShimError> {
    let config = weft_shim::LaunchConfig::from_env()?;
    tracing::info!(
        mode = "launched",
        peer = %config.peer_address,
        chaincode = %config.chaincode_id,
        tls = config.tls.is_some(),
        "starting asset-transfer"
    );
    weft_shim::start_with(asset_transfer::contract(), config).await
}

/// A Fabric logging level as a tracing level (`warning` -> `warn`, `critical`... -> `error`).
/// Of a full Fabric spec (`name=debug:info`) the default level (the part without `=`) is used.
fn fabric_level(spec: &str) -> String {
    let default = spec
        .split(':')
        .rfind(|part| !part.contains('='))
        .unwrap_or("info")
        .trim()
        .to_ascii_lowercase();
    match default.as_str() {
        "warning" => "warn".into(),
        "critical" | "fatal" | "panic" | "dpanic" => "error".into(),
        "" => "info".into(),
        _ => default,
    }
}

fn init_logging() {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    let (source, spec) = if let Some(level) = var("CORE_CHAINCODE_LOGGING_LEVEL") {
        ("CORE_CHAINCODE_LOGGING_LEVEL", fabric_level(&level))
    } else if let Some(filter) = var("RUST_LOG") {
        ("RUST_LOG", filter)
    } else {
        ("default", "info".to_owned())
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&spec).unwrap_or_else(|e| {
        eprintln!("asset-transfer: warning: ignoring {source}={spec:?} ({e}); logging at info");
        tracing_subscriber::EnvFilter::new("info")
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

#[cfg(test)]
mod tests {
    use super::fabric_level;

    #[test]
    fn fabric_levels_map_to_tracing_levels() {
        assert_eq!(fabric_level("INFO"), "info");
        assert_eq!(fabric_level("warning"), "warn");
        assert_eq!(fabric_level("CRITICAL"), "error");
        assert_eq!(fabric_level("gossip=warning:debug"), "debug");
        assert_eq!(fabric_level("shim=debug"), "info");
    }
}
