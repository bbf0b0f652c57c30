//! Where `weft bench` sends its transactions, and as whom.
//!
//! Every setting has a Fabric-style flag (with the `CORE_PEER_*` variable Fabric's `peer`
//! command reads), so the same run can be pointed at a Fabric test-network peer. Whatever is
//! not given comes from the `weft up` state file `<dir>/network.json` — org1's peer and its
//! `User1` — but only when the target is that network: if `--peerAddresses` names a peer the
//! file does not list, the file is not used at all (a stray `weft-network` directory must not
//! lend its identities to a Fabric run). A setting that is still missing is an error naming
//! the flag to pass.
//!
//! [`resolve`] is a plain function of the flags and the parsed file, so tests drive it
//! without a network.

use std::path::{Path, PathBuf};

use clap::Args;
use serde::{Deserialize, Serialize};

/// The `weft up` state file, as far as the bench reads it (unknown fields are ignored).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct NetworkFile {
    pub format: u32,
    pub channel: String,
    pub tls: String,
    pub peers: Vec<NetPeer>,
    pub users: Vec<NetUser>,
    pub chaincodes: Vec<NetChaincode>,
    pub processes: Vec<NetProcess>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct NetPeer {
    pub name: String,
    pub msp_id: String,
    pub address: String,
    pub tls_ca: PathBuf,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct NetUser {
    pub msp_id: String,
    pub name: String,
    pub msp_dir: PathBuf,
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct NetChaincode {
    pub name: String,
    pub mode: String,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct NetProcess {
    pub name: String,
    pub pid: u32,
}

/// The state file's name inside a `weft up` directory.
pub const NETWORK_FILE: &str = "network.json";

/// Read `<dir>/network.json`: `None` when there is none, an error when it is unreadable.
pub fn load_network(dir: &Path) -> Result<Option<NetworkFile>, String> {
    let path = dir.join(NETWORK_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    serde_json::from_str(&text).map(Some).map_err(|e| {
        format!(
            "{} is not a weft network state file ({e}); run `weft up --dir {}` again, or \
             pass the target flags (--peerAddresses, --tlsRootCertFiles, --mspdir, --mspid)",
            path.display(),
            dir.display()
        )
    })
}

/// How the client talks to the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Plaintext gRPC.
    Off,
    /// TLS, the client presents no certificate.
    Server,
    /// TLS with the client's certificate.
    Mutual,
}

impl TlsMode {
    pub fn as_str(self) -> &'static str {
        match self {
            TlsMode::Off => "off",
            TlsMode::Server => "server",
            TlsMode::Mutual => "mutual",
        }
    }

    /// The `tls` field of network.json.
    pub fn parse(text: &str) -> Option<TlsMode> {
        match text {
            "off" => Some(TlsMode::Off),
            "server" => Some(TlsMode::Server),
            "mutual" => Some(TlsMode::Mutual),
            _ => None,
        }
    }
}

/// The target flags (Fabric's names and environment variables).
#[derive(Debug, Clone, Default, Args)]
pub struct TargetFlags {
    /// A `weft up` network directory: whatever target flag is not given comes from its
    /// network.json (org1's peer, User1 of Org1MSP).
    #[arg(long, env = "WEFT_NETWORK_DIR", default_value = "weft-network")]
    pub dir: PathBuf,
    /// The peer whose Gateway to drive (host:port).
    #[arg(long = "peerAddresses", env = "CORE_PEER_ADDRESS")]
    pub peer: Option<String>,
    /// CA certificate of the peer's TLS certificate (PEM).
    #[arg(long = "tlsRootCertFiles", env = "CORE_PEER_TLS_ROOTCERT_FILE")]
    pub tls_root: Option<PathBuf>,
    /// Name expected in the peer's certificate, if not the host of the address.
    #[arg(long = "servername", env = "CORE_PEER_TLS_SERVERHOSTOVERRIDE")]
    pub server_name: Option<String>,
    /// TLS on the client connection; `--tls=false` for a plaintext peer.
    #[arg(
        long = "tls",
        env = "CORE_PEER_TLS_ENABLED",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub tls: Option<bool>,
    /// Client TLS certificate (mutual TLS).
    #[arg(long = "certfile", env = "CORE_PEER_TLS_CLIENTCERT_FILE")]
    pub certfile: Option<PathBuf>,
    /// Its key.
    #[arg(long = "keyfile", env = "CORE_PEER_TLS_CLIENTKEY_FILE")]
    pub keyfile: Option<PathBuf>,
    /// The signing identity's MSP directory (an org user).
    #[arg(long = "mspdir", env = "CORE_PEER_MSPCONFIGPATH")]
    pub msp_dir: Option<PathBuf>,
    /// The signing identity's MSP id.
    #[arg(long = "mspid", env = "CORE_PEER_LOCALMSPID")]
    pub msp_id: Option<String>,
    /// Channel name [default: the network's channel, else mychannel].
    #[arg(short = 'C', long = "channelID")]
    pub channel: Option<String>,
    /// Chaincode name [default: basic].
    #[arg(short = 'n', long = "name")]
    pub chaincode: Option<String>,
}

/// A fully resolved target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub address: String,
    pub tls: TlsMode,
    pub tls_root: Option<PathBuf>,
    pub server_name: Option<String>,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    pub msp_dir: PathBuf,
    pub msp_id: String,
    pub channel: String,
    pub chaincode: String,
    /// The `weft up` directory the target came from (partly or wholly), if any.
    pub network_dir: Option<PathBuf>,
    /// The network's node processes (name, pid), whose memory the bench samples.
    #[serde(skip)]
    pub processes: Vec<(String, u32)>,
}

/// Fill the target from the flags, then from `net` (the file in `flags.dir`) when the target
/// is that network. Errors name the missing flag.
pub fn resolve(flags: &TargetFlags, net: Option<&NetworkFile>) -> Result<Target, String> {
    let dir = &flags.dir;
    let where_net = || {
        format!(
            "or start a network with `weft up --dir {}` (no {} there)",
            dir.display(),
            dir.join(NETWORK_FILE).display()
        )
    };
    // The network's peer this run targets, if the target is the network at all.
    let net_peer: Option<&NetPeer> = match (net, &flags.peer) {
        (None, _) => None,
        (Some(n), Some(addr)) => n.peers.iter().find(|p| &p.address == addr),
        (Some(n), None) => match &flags.msp_id {
            Some(id) => n.peers.iter().find(|p| &p.msp_id == id),
            None => n.peers.first(),
        },
    };
    let file = dir.join(NETWORK_FILE);
    let address = match (&flags.peer, net_peer) {
        (Some(a), _) => a.clone(),
        (None, Some(p)) => p.address.clone(),
        (None, None) => {
            return Err(match (net.is_some(), &flags.msp_id) {
                (true, Some(id)) => format!(
                    "{} lists no peer of {id}: pass --peerAddresses (CORE_PEER_ADDRESS)",
                    file.display()
                ),
                (true, None) => format!(
                    "{} lists no peers: pass --peerAddresses (CORE_PEER_ADDRESS)",
                    file.display()
                ),
                (false, _) => format!(
                    "no peer to send transactions to: pass --peerAddresses \
                     (CORE_PEER_ADDRESS), {}",
                    where_net()
                ),
            })
        }
    };
    let net = net.filter(|_| net_peer.is_some());

    let net_tls = net.and_then(|n| TlsMode::parse(&n.tls));
    let explicit_cert = match (&flags.certfile, &flags.keyfile) {
        (Some(c), Some(k)) => Some((c.clone(), k.clone())),
        (Some(_), None) => {
            return Err(
                "--certfile (CORE_PEER_TLS_CLIENTCERT_FILE) is given without its key: pass \
                 --keyfile (CORE_PEER_TLS_CLIENTKEY_FILE)"
                    .to_owned(),
            )
        }
        (None, Some(_)) => {
            return Err(
                "--keyfile (CORE_PEER_TLS_CLIENTKEY_FILE) is given without its certificate: \
                 pass --certfile (CORE_PEER_TLS_CLIENTCERT_FILE)"
                    .to_owned(),
            )
        }
        (None, None) => None,
    };
    let tls = match flags.tls {
        Some(false) => TlsMode::Off,
        Some(true) | None => match (&explicit_cert, net_tls, flags.tls) {
            (Some(_), _, _) => TlsMode::Mutual,
            (None, Some(TlsMode::Off), Some(true)) => TlsMode::Server,
            (None, Some(mode), _) => mode,
            (None, None, _) => TlsMode::Server,
        },
    };

    let msp_id = match (&flags.msp_id, net_peer) {
        (Some(id), _) => id.clone(),
        (None, Some(p)) if !p.msp_id.is_empty() => p.msp_id.clone(),
        _ => {
            return Err(format!(
                "no MSP id for the signing identity: pass --mspid (CORE_PEER_LOCALMSPID), {}",
                where_net()
            ))
        }
    };
    let net_user = net.and_then(|n| pick_user(&n.users, &msp_id));

    let tls_root = match (tls, &flags.tls_root, net_peer) {
        (TlsMode::Off, _, _) => None,
        (_, Some(r), _) => Some(r.clone()),
        (_, None, Some(p)) if !p.tls_ca.as_os_str().is_empty() => Some(p.tls_ca.clone()),
        _ => {
            return Err(format!(
                "no TLS CA certificate for peer {address}: pass --tlsRootCertFiles \
                 (CORE_PEER_TLS_ROOTCERT_FILE), or --tls=false for a plaintext peer"
            ))
        }
    };

    let (client_cert, client_key) = match (tls, explicit_cert, net_user) {
        (TlsMode::Mutual, Some((c, k)), _) => (Some(c), Some(k)),
        (TlsMode::Mutual, None, Some(u)) if !u.tls_cert.as_os_str().is_empty() => {
            (Some(u.tls_cert.clone()), Some(u.tls_key.clone()))
        }
        (TlsMode::Mutual, None, _) => {
            return Err(format!(
                "peer {address} requires mutual TLS but no client certificate is given: pass \
                 --certfile and --keyfile (CORE_PEER_TLS_CLIENTCERT_FILE / _CLIENTKEY_FILE)"
            ))
        }
        _ => (None, None),
    };

    let msp_dir = match (&flags.msp_dir, net_user) {
        (Some(d), _) => d.clone(),
        (None, Some(u)) => u.msp_dir.clone(),
        (None, None) => {
            return Err(format!(
                "no signing identity: pass --mspdir (CORE_PEER_MSPCONFIGPATH) with an MSP \
                 directory of {msp_id}, {}",
                where_net()
            ))
        }
    };

    let channel = flags
        .channel
        .clone()
        .or_else(|| net.map(|n| n.channel.clone()).filter(|c| !c.is_empty()))
        .unwrap_or_else(|| "mychannel".to_owned());
    let chaincode = flags
        .chaincode
        .clone()
        .unwrap_or_else(|| "basic".to_owned());

    Ok(Target {
        address,
        tls,
        tls_root,
        server_name: flags.server_name.clone(),
        client_cert,
        client_key,
        msp_dir,
        msp_id,
        channel,
        chaincode,
        network_dir: net.map(|_| dir.clone()),
        processes: net
            .map(|n| {
                n.processes
                    .iter()
                    .filter(|p| p.pid != 0)
                    .map(|p| (p.name.clone(), p.pid))
                    .collect()
            })
            .unwrap_or_default(),
    })
}

/// The org's `User1`, else any non-admin user, else any user of the org.
fn pick_user<'a>(users: &'a [NetUser], msp_id: &str) -> Option<&'a NetUser> {
    let of_org = || users.iter().filter(move |u| u.msp_id == msp_id);
    of_org()
        .find(|u| u.name.starts_with("User1@"))
        .or_else(|| of_org().find(|u| !u.name.starts_with("Admin@")))
        .or_else(|| of_org().next())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    pub(crate) const SAMPLE: &str = r#"{
      "format": 1, "channel": "mychannel", "tls": "mutual", "future_field": [1, 2],
      "orderer": { "name": "orderer.example.com", "msp_id": "OrdererMSP", "address": "127.0.0.1:7050" },
      "peers": [
        { "name": "peer0.org1.example.com", "msp_id": "Org1MSP", "address": "127.0.0.1:7051",
          "tls_ca": "/n/org1/tlsca.pem", "fs_path": "/n/peer0.org1" },
        { "name": "peer0.org2.example.com", "msp_id": "Org2MSP", "address": "127.0.0.1:9051",
          "tls_ca": "/n/org2/tlsca.pem" } ],
      "users": [
        { "msp_id": "Org1MSP", "name": "Admin@org1.example.com", "msp_dir": "/n/org1/admin/msp",
          "tls_cert": "/n/org1/admin/tls/client.crt", "tls_key": "/n/org1/admin/tls/client.key" },
        { "msp_id": "Org1MSP", "name": "User1@org1.example.com", "msp_dir": "/n/org1/user1/msp",
          "tls_cert": "/n/org1/user1/tls/client.crt", "tls_key": "/n/org1/user1/tls/client.key" },
        { "msp_id": "Org2MSP", "name": "User1@org2.example.com", "msp_dir": "/n/org2/user1/msp",
          "tls_cert": "/n/org2/user1/tls/client.crt", "tls_key": "/n/org2/user1/tls/client.key" } ],
      "chaincodes": [ { "name": "basic", "mode": "launched" }, { "name": "basic-ccaas", "mode": "server" } ],
      "processes": [ { "name": "orderer.example.com", "pid": 1234, "log": "/n/logs/orderer.log" },
                     { "name": "peer0.org1.example.com", "pid": 1235 } ]
    }"#;

    fn flags(dir: &Path) -> TargetFlags {
        TargetFlags {
            dir: dir.to_owned(),
            ..Default::default()
        }
    }

    fn sample() -> NetworkFile {
        serde_json::from_str(SAMPLE).unwrap()
    }

    #[test]
    fn everything_comes_from_the_network_file_in_the_directory() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join(NETWORK_FILE), SAMPLE).unwrap();
        let net = load_network(tmp.path()).unwrap().unwrap();
        let t = resolve(&flags(tmp.path()), Some(&net)).unwrap();
        assert_eq!(t.address, "127.0.0.1:7051");
        assert_eq!(t.tls, TlsMode::Mutual);
        assert_eq!(t.tls_root.as_deref(), Some(Path::new("/n/org1/tlsca.pem")));
        assert_eq!(t.msp_id, "Org1MSP");
        assert_eq!(t.msp_dir, Path::new("/n/org1/user1/msp"));
        assert_eq!(
            t.client_cert.as_deref(),
            Some(Path::new("/n/org1/user1/tls/client.crt"))
        );
        assert_eq!(t.channel, "mychannel");
        assert_eq!(t.chaincode, "basic");
        assert_eq!(t.network_dir.as_deref(), Some(tmp.path()));
        assert_eq!(t.processes.len(), 2);
    }

    #[test]
    fn flags_override_the_file_and_pick_another_org() {
        let net = sample();
        let mut f = flags(Path::new("/n"));
        f.msp_id = Some("Org2MSP".into());
        f.chaincode = Some("basic-ccaas".into());
        f.channel = Some("other".into());
        let t = resolve(&f, Some(&net)).unwrap();
        assert_eq!(t.address, "127.0.0.1:9051");
        assert_eq!(t.msp_dir, Path::new("/n/org2/user1/msp"));
        assert_eq!(t.tls_root.as_deref(), Some(Path::new("/n/org2/tlsca.pem")));
        assert_eq!(
            (t.chaincode.as_str(), t.channel.as_str()),
            ("basic-ccaas", "other")
        );
    }

    #[test]
    fn server_tls_network_presents_no_client_certificate() {
        let mut net = sample();
        net.tls = "server".into();
        let t = resolve(&flags(Path::new("/n")), Some(&net)).unwrap();
        assert_eq!(t.tls, TlsMode::Server);
        assert_eq!(t.client_cert, None);
        net.tls = "off".into();
        let t = resolve(&flags(Path::new("/n")), Some(&net)).unwrap();
        assert_eq!((t.tls, t.tls_root), (TlsMode::Off, None));
    }

    #[test]
    fn a_peer_the_file_does_not_list_does_not_borrow_its_identities() {
        let net = sample();
        let mut f = flags(Path::new("/n"));
        f.peer = Some("fabric.example.com:7051".into());
        f.tls_root = Some("/fabric/ca.pem".into());
        let e = resolve(&f, Some(&net)).unwrap_err();
        assert!(e.contains("--mspid (CORE_PEER_LOCALMSPID)"), "{e}");
        f.msp_id = Some("Org1MSP".into());
        let e = resolve(&f, Some(&net)).unwrap_err();
        assert!(e.contains("--mspdir (CORE_PEER_MSPCONFIGPATH)"), "{e}");
        f.msp_dir = Some("/fabric/user1/msp".into());
        let t = resolve(&f, Some(&net)).unwrap();
        assert_eq!(
            (t.tls, t.network_dir, t.processes.len()),
            (TlsMode::Server, None, 0)
        );
    }

    #[test]
    fn without_a_network_every_missing_flag_is_named() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(load_network(tmp.path()).unwrap().is_none());
        let mut f = flags(tmp.path());
        let e = resolve(&f, None).unwrap_err();
        assert!(e.contains("--peerAddresses (CORE_PEER_ADDRESS)"), "{e}");
        assert!(e.contains("weft up --dir"), "{e}");
        f.peer = Some("localhost:7051".into());
        f.msp_id = Some("Org1MSP".into());
        f.msp_dir = Some("/m".into());
        let e = resolve(&f, None).unwrap_err();
        assert!(
            e.contains("--tlsRootCertFiles (CORE_PEER_TLS_ROOTCERT_FILE)"),
            "{e}"
        );
        assert!(e.contains("--tls=false"), "{e}");
        f.certfile = Some("/c.crt".into());
        let e = resolve(&f, None).unwrap_err();
        assert!(e.contains("--keyfile"), "{e}");
        f.keyfile = Some("/c.key".into());
        f.tls_root = Some("/ca.pem".into());
        let t = resolve(&f, None).unwrap();
        assert_eq!(t.tls, TlsMode::Mutual);
        f.tls = Some(false);
        let t = resolve(&f, None).unwrap();
        assert_eq!(
            (t.tls, t.tls_root, t.client_cert),
            (TlsMode::Off, None, None)
        );
    }

    #[test]
    fn a_broken_network_file_is_reported_with_its_path() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join(NETWORK_FILE), "{ not json").unwrap();
        let e = load_network(tmp.path()).unwrap_err();
        assert!(
            e.contains("network.json is not a weft network state file"),
            "{e}"
        );
    }
}
