//! `weft doctor`: probe and explain.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Subcommand, ValueEnum};
use weft_tls::probe::{probe, ProbeOptions};
use weft_tls::{Identity, Profile, Trust};

#[derive(Debug, Subcommand)]
pub enum DoctorCommand {
    /// Connect to a TLS endpoint with the given material and explain the result.
    ///
    /// Prints the negotiated protocol and cipher suite, the server's certificate chain
    /// (subjects, SANs, validity), whether the server requests or requires a client
    /// certificate, and, if the handshake fails, what went wrong and what to change.
    /// Exits 0 only if a client with this material can connect.
    Tls {
        /// The endpoint, host:port.
        address: String,
        /// PEM file of CA certificates to trust (repeatable). Without it the server's chain is
        /// shown but not trusted.
        #[arg(long = "cafile", value_name = "PEM")]
        cafile: Vec<PathBuf>,
        /// Client certificate (PEM) to present when the server asks.
        #[arg(long = "certfile", value_name = "PEM", requires = "keyfile")]
        certfile: Option<PathBuf>,
        /// Private key (PEM: PKCS#8 or SEC1) of --certfile.
        #[arg(long = "keyfile", value_name = "PEM", requires = "certfile")]
        keyfile: Option<PathBuf>,
        /// Name expected in the server's certificate, if not the host in ADDRESS.
        #[arg(long = "servername", value_name = "NAME")]
        servername: Option<String>,
        /// Protocol profile to probe with.
        #[arg(long, value_enum, default_value_t = ProfileArg::Fabric)]
        profile: ProfileArg,
        /// Seconds to wait for the connection and handshake.
        #[arg(long, default_value_t = 5)]
        timeout: u64,
    },
    /// Check a peer's core.yaml (with CORE_* overrides) for what makes it unfit for
    /// production: TLS off, client certificates not required, development mode.
    /// Exits 0 when none of these is found, 1 when one is, 2 when the file cannot be used.
    Peer {
        /// core.yaml to check; default: $FABRIC_CFG_PATH/core.yaml, else ./core.yaml.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Check as if the peer were started with --peer-chaincodedev.
        #[arg(long = "peer-chaincodedev")]
        peer_chaincodedev: bool,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ProfileArg {
    /// TLS 1.2 and 1.3 (what Fabric speaks).
    Fabric,
    /// TLS 1.3 only with secp384r1 (the replica network).
    Tls13P384,
    /// TLS 1.2 only.
    Tls12,
}

impl From<ProfileArg> for Profile {
    fn from(p: ProfileArg) -> Self {
        match p {
            ProfileArg::Fabric => Profile::Fabric,
            ProfileArg::Tls13P384 => Profile::Tls13P384,
            ProfileArg::Tls12 => Profile::Tls12Only,
        }
    }
}

/// `weft doctor peer`.
fn peer(config: Option<PathBuf>, dev_flag: bool) -> Result<u8, Box<dyn std::error::Error>> {
    let path = crate::node_cmd::config_path(config);
    let cfg = weft_peer::config::CoreConfig::load(path.as_deref(), |k| std::env::var(k).ok())?;
    let addrs = cfg.chaincode_addresses()?;
    println!(
        "config:            {}",
        path.as_deref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "built-in defaults".into())
    );
    println!(
        "peer:              {} ({})",
        cfg.peer.listen_address, cfg.peer.id
    );
    println!(
        "chaincode service: listens on {}, given to chaincode as {}",
        addrs.listen, addrs.advertised
    );
    let mut problems = Vec::new();
    if cfg.peer.tls.enabled {
        println!("tls:               enabled");
    } else {
        println!("tls:               DISABLED");
        problems.push(
            "peer.tls.enabled is false: clients and other nodes talk to this peer in plaintext",
        );
    }
    if cfg.peer.tls.client_auth_required {
        println!("client certs:      required");
    } else {
        println!("client certs:      requested, not required");
        problems.push("peer.tls.clientAuthRequired is false: clients without a TLS client certificate are accepted");
    }
    let dev = dev_flag || cfg.chaincode.mode == "dev";
    if dev {
        println!("chaincode mode:    DEVELOPMENT (--peer-chaincodedev / chaincode.mode: dev)");
        problems.push(
            "development mode: chaincode may register without a per-launch certificate, so any \
             process that reaches the chaincode service can pose as chaincode. It is for \
             attaching a debugger, NOT a production deployment",
        );
    } else {
        println!("chaincode mode:    net (every registration needs its per-launch certificate)");
    }
    if problems.is_empty() {
        println!("verdict:           OK for production use");
        Ok(0)
    } else {
        for p in &problems {
            println!("NOT FOR PRODUCTION: {p}");
        }
        Ok(crate::EXIT_NOT_OK)
    }
}

pub fn run(cmd: DoctorCommand) -> Result<u8, Box<dyn std::error::Error>> {
    match cmd {
        DoctorCommand::Peer {
            config,
            peer_chaincodedev,
        } => peer(config, peer_chaincodedev),
        DoctorCommand::Tls {
            address,
            cafile,
            certfile,
            keyfile,
            servername,
            profile,
            timeout,
        } => {
            let ca = if cafile.is_empty() {
                None
            } else {
                match Trust::roots_from_pem_files(&cafile, "--cafile")? {
                    Trust::Roots(roots) => Some(roots),
                    Trust::Pinned(_) => None,
                }
            };
            let identity = match (certfile, keyfile) {
                (Some(cert), Some(key)) => Some(Identity::from_pem_files(
                    &cert,
                    &key,
                    "--certfile/--keyfile",
                )?),
                _ => None,
            };
            let opts = ProbeOptions {
                ca,
                identity,
                server_name: servername,
                profile: profile.into(),
                timeout: Some(Duration::from_secs(timeout.max(1))),
            };
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let report = runtime.block_on(probe(&address, opts))?;
            print!("{}", report.render());
            Ok(if report.ok() { 0 } else { crate::EXIT_NOT_OK })
        }
    }
}
