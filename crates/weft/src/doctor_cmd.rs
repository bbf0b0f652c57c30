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

pub fn run(cmd: DoctorCommand) -> Result<u8, Box<dyn std::error::Error>> {
    match cmd {
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
