//! The peer's configuration: `core.yaml` with Fabric's key names, `CORE_*` environment
//! overrides, and the rules that turn it into addresses.
//!
//! Every supported key can be overridden by the variable Fabric uses: `CORE_` followed by the
//! key path in upper case with `.` replaced by `_` (`peer.tls.clientAuthRequired` ->
//! `CORE_PEER_TLS_CLIENTAUTHREQUIRED`). Values are read as YAML scalars (`true`, `7051`), lists
//! as whitespace- or comma-separated items (optionally in `[...]`). Relative paths are relative
//! to the directory of `core.yaml`, as in Fabric.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Fabric's chaincode port when none is configured.
pub const DEFAULT_CHAINCODE_PORT: u16 = 7052;

/// A configuration that cannot be used; the message names the key and its variable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: invalid YAML: {detail}")]
    Yaml { path: String, detail: String },
    #[error("{key} ({env}): {detail}")]
    Invalid {
        key: &'static str,
        env: String,
        detail: String,
    },
}

fn env_name(key: &str) -> String {
    weft_configtx::nodeyaml::env_name("CORE", key)
}

fn invalid(key: &'static str, detail: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        env: env_name(key),
        detail: detail.into(),
    }
}

/// Keys that `CORE_*` variables may override, with whether they hold a list.
const OVERRIDABLE: &[(&str, bool)] = &[
    ("peer.id", false),
    ("peer.networkId", false),
    ("peer.listenAddress", false),
    ("peer.address", false),
    ("peer.chaincodeListenAddress", false),
    ("peer.chaincodeAddress", false),
    ("peer.fileSystemPath", false),
    ("peer.mspConfigPath", false),
    ("peer.localMspId", false),
    ("peer.tls.enabled", false),
    ("peer.tls.clientAuthRequired", false),
    ("peer.tls.cert.file", false),
    ("peer.tls.key.file", false),
    ("peer.tls.rootcert.file", false),
    ("peer.tls.clientRootCAs.files", true),
    ("peer.tls.clientCert.file", false),
    ("peer.tls.clientKey.file", false),
    ("peer.gateway.enabled", false),
    ("peer.gateway.endorsementTimeout", false),
    ("peer.gateway.broadcastTimeout", false),
    ("peer.gateway.dialTimeout", false),
    ("peer.authentication.timewindow", false),
    ("chaincode.executetimeout", false),
    ("chaincode.startuptimeout", false),
    ("chaincode.registrationWindow", false),
    ("chaincode.mode", false),
    ("chaincode.keepalive", false),
    ("ledger.state.totalQueryLimit", false),
    ("ledger.history.enableHistoryDatabase", false),
    ("operations.listenAddress", false),
    ("operations.tls.enabled", false),
    ("operations.tls.cert.file", false),
    ("operations.tls.key.file", false),
    ("operations.tls.clientAuthRequired", false),
    ("operations.tls.clientRootCAs.files", true),
    ("metrics.provider", false),
];

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub struct FileRef {
    pub file: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub struct FilesRef {
    pub files: Vec<String>,
}

/// `peer.tls`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub struct TlsSection {
    pub enabled: bool,
    pub client_auth_required: bool,
    pub cert: FileRef,
    pub key: FileRef,
    pub rootcert: FileRef,
    #[serde(rename = "clientRootCAs")]
    pub client_root_cas: FilesRef,
    pub client_cert: FileRef,
    pub client_key: FileRef,
}

/// `peer`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PeerSection {
    pub id: String,
    pub network_id: String,
    pub listen_address: String,
    pub address: String,
    pub chaincode_listen_address: Option<String>,
    pub chaincode_address: Option<String>,
    pub file_system_path: String,
    pub msp_config_path: String,
    pub local_msp_id: String,
    pub tls: TlsSection,
    pub gateway: GatewaySection,
    pub authentication: AuthenticationSection,
}

/// `peer.gateway`: the Gateway service (Fabric's keys and defaults).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct GatewaySection {
    pub enabled: bool,
    pub endorsement_timeout: String,
    pub broadcast_timeout: String,
    pub dial_timeout: String,
}

impl Default for GatewaySection {
    fn default() -> Self {
        GatewaySection {
            enabled: true,
            endorsement_timeout: "30s".into(),
            broadcast_timeout: "30s".into(),
            dial_timeout: "2m".into(),
        }
    }
}

/// `peer.authentication`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct AuthenticationSection {
    /// How far a signed request's timestamp may be from the peer's clock (Deliver).
    pub timewindow: String,
}

impl Default for AuthenticationSection {
    fn default() -> Self {
        AuthenticationSection {
            timewindow: "15m".into(),
        }
    }
}

impl Default for PeerSection {
    fn default() -> Self {
        PeerSection {
            id: "jdoe".into(),
            network_id: "dev".into(),
            listen_address: "0.0.0.0:7051".into(),
            address: "0.0.0.0:7051".into(),
            chaincode_listen_address: None,
            chaincode_address: None,
            file_system_path: "/var/hyperledger/production".into(),
            msp_config_path: "msp".into(),
            local_msp_id: "SampleOrg".into(),
            tls: TlsSection::default(),
            gateway: GatewaySection::default(),
            authentication: AuthenticationSection::default(),
        }
    }
}

/// One entry of `chaincode.externalBuilders`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ExternalBuilderEntry {
    pub name: String,
    pub path: String,
    #[serde(default)]
    pub propagate_environment: Vec<String>,
}

/// `chaincode`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ChaincodeSection {
    pub external_builders: Vec<ExternalBuilderEntry>,
    /// Go duration; Fabric's key is all lower case.
    #[serde(rename = "executetimeout")]
    pub execute_timeout: String,
    #[serde(rename = "startuptimeout")]
    pub startup_timeout: String,
    /// weft: how long a launch certificate may wait to register (Fabric: fixed 10m).
    pub registration_window: String,
    /// `net` (production) or `dev` (chaincode started by hand; see `--peer-chaincodedev`).
    pub mode: String,
    /// Seconds between KEEPALIVE messages to chaincode; 0 turns them off (Fabric's default).
    pub keepalive: u64,
}

impl Default for ChaincodeSection {
    fn default() -> Self {
        ChaincodeSection {
            external_builders: Vec::new(),
            execute_timeout: "30s".into(),
            startup_timeout: "300s".into(),
            registration_window: "10m".into(),
            mode: "net".into(),
            keepalive: 0,
        }
    }
}

/// `ledger`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub struct LedgerSection {
    pub state: LedgerStateSection,
    pub history: LedgerHistorySection,
}

/// `ledger.state`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct LedgerStateSection {
    /// Results one query iterator may return at most.
    pub total_query_limit: usize,
}

impl Default for LedgerStateSection {
    fn default() -> Self {
        LedgerStateSection {
            total_query_limit: 100_000,
        }
    }
}

/// `ledger.history`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct LedgerHistorySection {
    pub enable_history_database: bool,
}

impl Default for LedgerHistorySection {
    fn default() -> Self {
        LedgerHistorySection {
            enable_history_database: true,
        }
    }
}

/// `operations`: the operations listener (`/healthz`, `/metrics`, `/logspec`, `/version`);
/// an empty `listenAddress` turns it off.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct OperationsSection {
    pub listen_address: String,
    pub tls: OperationsTls,
}

impl Default for OperationsSection {
    fn default() -> Self {
        OperationsSection {
            listen_address: "127.0.0.1:9443".into(),
            tls: OperationsTls::default(),
        }
    }
}

/// `operations.tls`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub struct OperationsTls {
    pub enabled: bool,
    pub cert: FileRef,
    pub key: FileRef,
    pub client_auth_required: bool,
    #[serde(rename = "clientRootCAs")]
    pub client_root_cas: FilesRef,
}

/// `metrics`: `provider` is `prometheus` (weft's default: served on `/metrics`), `disabled`,
/// or `statsd` (not supported: disabled with a warning).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct MetricsSection {
    pub provider: String,
}

impl Default for MetricsSection {
    fn default() -> Self {
        MetricsSection {
            provider: "prometheus".into(),
        }
    }
}

/// `core.yaml`, the parts weft reads.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default)]
pub struct CoreConfig {
    pub peer: PeerSection,
    pub chaincode: ChaincodeSection,
    pub ledger: LedgerSection,
    pub operations: OperationsSection,
    pub metrics: MetricsSection,
    /// Directory relative paths are resolved against (the directory of core.yaml).
    #[serde(skip)]
    pub base_dir: PathBuf,
}

/// Where the chaincode service listens and the address given to chaincode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChaincodeAddresses {
    pub listen: String,
    pub advertised: String,
}

fn split_host_port(addr: &str) -> Option<(&str, &str)> {
    let (host, port) = addr.rsplit_once(':')?;
    Some((host.trim_start_matches('[').trim_end_matches(']'), port))
}

fn is_unspecified(host: &str) -> bool {
    host.is_empty()
        || host
            .parse::<IpAddr>()
            .map(|ip| ip.is_unspecified())
            .unwrap_or(false)
}

fn join(host: &str, port: &str) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Parse a Go-style duration: `300ms`, `10s`, `1m30s`, `2h` (see
/// [`weft_configtx::units::parse_go_duration`]); `None` when it is not one.
pub fn parse_duration(s: &str) -> Option<std::time::Duration> {
    weft_configtx::units::parse_go_duration(s).ok()
}

impl CoreConfig {
    /// Load `core.yaml` (or defaults when `path` is `None`) and apply `CORE_*` overrides
    /// looked up with `env`.
    pub fn load(
        path: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let weft_configtx::nodeyaml::Loaded {
            value,
            base_dir,
            source,
        } = weft_configtx::nodeyaml::load(path, "CORE", OVERRIDABLE, env).map_err(|e| match e {
            weft_configtx::nodeyaml::YamlSourceError::Read { path, source } => {
                ConfigError::Read { path, source }
            }
            weft_configtx::nodeyaml::YamlSourceError::Yaml { path, detail } => {
                ConfigError::Yaml { path, detail }
            }
        })?;
        let mut config: CoreConfig =
            serde_norway::from_value(value).map_err(|e| ConfigError::Yaml {
                path: source,
                detail: e.to_string(),
            })?;
        config.base_dir = base_dir;
        config.validate()?;
        Ok(config)
    }

    /// Checks that need more than the types.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (key, value) in [
            ("chaincode.executetimeout", &self.chaincode.execute_timeout),
            ("chaincode.startuptimeout", &self.chaincode.startup_timeout),
            (
                "chaincode.registrationWindow",
                &self.chaincode.registration_window,
            ),
        ] {
            if parse_duration(value).is_none() {
                return Err(invalid(
                    key,
                    format!("{value:?} is not a duration (e.g. 30s, 10m, 1m30s)"),
                ));
            }
        }
        if !matches!(self.chaincode.mode.as_str(), "net" | "dev") {
            return Err(invalid(
                "chaincode.mode",
                format!("{:?}: expected net or dev", self.chaincode.mode),
            ));
        }
        if self.peer.tls.enabled {
            for (key, file) in [
                ("peer.tls.cert.file", &self.peer.tls.cert.file),
                ("peer.tls.key.file", &self.peer.tls.key.file),
            ] {
                if file.as_deref().unwrap_or("").is_empty() {
                    return Err(invalid(
                        key,
                        "peer.tls.enabled is true, so the peer needs its TLS certificate and key",
                    ));
                }
            }
        }
        if self.peer.tls.client_auth_required && !self.peer.tls.enabled {
            return Err(invalid(
                "peer.tls.clientAuthRequired",
                "requires peer.tls.enabled: true",
            ));
        }
        let ops = &self.operations.tls;
        if ops.enabled {
            for (key, file) in [
                ("operations.tls.cert.file", &ops.cert.file),
                ("operations.tls.key.file", &ops.key.file),
            ] {
                if file.as_deref().unwrap_or("").is_empty() {
                    return Err(invalid(
                        key,
                        "operations.tls.enabled is true, so the operations listener needs its TLS certificate and key",
                    ));
                }
            }
        }
        if ops.client_auth_required && !ops.enabled {
            return Err(invalid(
                "operations.tls.clientAuthRequired",
                "requires operations.tls.enabled: true",
            ));
        }
        weft_ops::provider(&self.metrics.provider, "metrics.provider")
            .map_err(|e| invalid("metrics.provider", e.0))?;
        self.chaincode_addresses().map(drop)
    }

    /// The operations listener's TLS, paths resolved (`None` when off).
    pub fn operations_tls(&self) -> Option<weft_ops::OpsTls> {
        let t = &self.operations.tls;
        t.enabled.then(|| weft_ops::OpsTls {
            cert: self.resolve(t.cert.file.as_deref().unwrap_or_default()),
            key: self.resolve(t.key.file.as_deref().unwrap_or_default()),
            client_auth_required: t.client_auth_required,
            client_root_cas: t
                .client_root_cas
                .files
                .iter()
                .map(|f| self.resolve(f))
                .collect(),
            keys: weft_ops::TlsKeys::peer(),
        })
    }

    /// A path from the configuration, resolved against the directory of core.yaml.
    pub fn resolve(&self, path: &str) -> PathBuf {
        let p = Path::new(path);
        if p.is_absolute() {
            p.to_owned()
        } else {
            self.base_dir.join(p)
        }
    }

    /// `peer.gateway.*` durations (Fabric's defaults when unset or unreadable):
    /// (endorsement, broadcast, dial).
    pub fn gateway_timeouts(
        &self,
    ) -> (
        std::time::Duration,
        std::time::Duration,
        std::time::Duration,
    ) {
        let g = &self.peer.gateway;
        let d = |v: &str, default: u64| {
            parse_duration(v).unwrap_or(std::time::Duration::from_secs(default))
        };
        (
            d(&g.endorsement_timeout, 30),
            d(&g.broadcast_timeout, 30),
            d(&g.dial_timeout, 120),
        )
    }

    /// `peer.authentication.timewindow` (15 minutes when unset).
    pub fn auth_time_window(&self) -> std::time::Duration {
        parse_duration(&self.peer.authentication.timewindow)
            .unwrap_or(std::time::Duration::from_secs(15 * 60))
    }

    pub fn execute_timeout(&self) -> std::time::Duration {
        parse_duration(&self.chaincode.execute_timeout)
            .unwrap_or(std::time::Duration::from_secs(30))
    }

    pub fn startup_timeout(&self) -> std::time::Duration {
        parse_duration(&self.chaincode.startup_timeout)
            .unwrap_or(std::time::Duration::from_secs(300))
    }

    pub fn registration_window(&self) -> std::time::Duration {
        parse_duration(&self.chaincode.registration_window)
            .unwrap_or(std::time::Duration::from_secs(600))
    }

    /// Fabric's rules for the chaincode service addresses:
    /// - listen on `peer.chaincodeListenAddress`, else on the peer's host at port 7052;
    /// - give chaincode `peer.chaincodeAddress` (an unspecified host there is an error), else
    ///   the listen address with an unspecified host replaced by the peer's host, else the
    ///   peer's host at 7052.
    pub fn chaincode_addresses(&self) -> Result<ChaincodeAddresses, ConfigError> {
        let (peer_host, _) = split_host_port(&self.peer.address).ok_or_else(|| {
            invalid(
                "peer.address",
                format!("{:?} is not host:port", self.peer.address),
            )
        })?;
        let listen_setting = self
            .peer
            .chaincode_listen_address
            .as_deref()
            .filter(|s| !s.is_empty());
        let listen = match listen_setting {
            Some(addr) => {
                split_host_port(addr).ok_or_else(|| {
                    invalid(
                        "peer.chaincodeListenAddress",
                        format!("{addr:?} is not host:port"),
                    )
                })?;
                addr.to_owned()
            }
            None => {
                tracing::warn!(
                    "peer.chaincodeListenAddress is not set; the chaincode service listens on {}:{DEFAULT_CHAINCODE_PORT}",
                    peer_host
                );
                join(peer_host, &DEFAULT_CHAINCODE_PORT.to_string())
            }
        };
        let advertised = match self
            .peer
            .chaincode_address
            .as_deref()
            .filter(|s| !s.is_empty())
        {
            Some(addr) => {
                let (host, _) = split_host_port(addr).ok_or_else(|| {
                    invalid(
                        "peer.chaincodeAddress",
                        format!("{addr:?} is not host:port"),
                    )
                })?;
                if is_unspecified(host) {
                    return Err(invalid(
                        "peer.chaincodeAddress",
                        format!("{addr:?} has an unspecified host; give an address chaincode can dial (e.g. peer0.org1.example.com:7052)"),
                    ));
                }
                addr.to_owned()
            }
            None => {
                let (host, port) = split_host_port(&listen).unwrap_or((peer_host, "7052"));
                if is_unspecified(host) {
                    if is_unspecified(peer_host) {
                        return Err(invalid(
                            "peer.chaincodeAddress",
                            "cannot derive the address given to chaincode: the chaincode listen address and peer.address both have an unspecified host; set peer.chaincodeAddress",
                        ));
                    }
                    join(peer_host, port)
                } else {
                    listen.clone()
                }
            }
        };
        Ok(ChaincodeAddresses { listen, advertised })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(yaml: &str, env: &[(&str, &str)]) -> Result<CoreConfig, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("core.yaml");
        std::fs::write(&path, yaml).unwrap();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        CoreConfig::load(Some(&path), |k| {
            env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn env_overrides_fabric_keys() {
        let c = cfg(
            "peer:\n  address: peer0.org1.example.com:7051\n  tls:\n    enabled: false\n    clientRootCAs:\n      files: [a.pem]\n",
            &[
                ("CORE_PEER_TLS_ENABLED", "true"),
                ("CORE_PEER_TLS_CLIENTAUTHREQUIRED", "true"),
                ("CORE_PEER_TLS_CERT_FILE", "tls/server.crt"),
                ("CORE_PEER_TLS_KEY_FILE", "tls/server.key"),
                ("CORE_PEER_TLS_CLIENTROOTCAS_FILES", "[x.pem, y.pem]"),
                ("CORE_PEER_CHAINCODELISTENADDRESS", "0.0.0.0:7052"),
                ("CORE_PEER_LOCALMSPID", "Org1MSP"),
            ],
        )
        .unwrap();
        assert!(c.peer.tls.enabled && c.peer.tls.client_auth_required);
        assert_eq!(c.peer.tls.client_root_cas.files, ["x.pem", "y.pem"]);
        assert_eq!(c.peer.local_msp_id, "Org1MSP");
        assert!(c.resolve("tls/server.crt").starts_with(&c.base_dir));
        assert_eq!(
            c.chaincode_addresses().unwrap(),
            ChaincodeAddresses {
                listen: "0.0.0.0:7052".into(),
                advertised: "peer0.org1.example.com:7052".into()
            }
        );
    }

    #[test]
    fn chaincode_address_rules_are_fabrics() {
        let addrs = |yaml: &str| cfg(yaml, &[]).map(|c| c.chaincode_addresses().unwrap());
        // Nothing set: the peer host at 7052 for both.
        let a = addrs("peer:\n  address: 10.0.0.5:7051\n").unwrap();
        assert_eq!(
            (a.listen.as_str(), a.advertised.as_str()),
            ("10.0.0.5:7052", "10.0.0.5:7052")
        );
        // chaincodeAddress wins for what chaincode is told.
        let a = addrs("peer:\n  address: p:7051\n  chaincodeListenAddress: 0.0.0.0:9052\n  chaincodeAddress: cc.example.com:9052\n").unwrap();
        assert_eq!(
            (a.listen.as_str(), a.advertised.as_str()),
            ("0.0.0.0:9052", "cc.example.com:9052")
        );
        // An unspecified chaincodeAddress is a start-up error naming the key and variable.
        let e = cfg(
            "peer:\n  address: p:7051\n  chaincodeAddress: 0.0.0.0:7052\n",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("peer.chaincodeAddress (CORE_PEER_CHAINCODEADDRESS)")
                && e.contains("unspecified"),
            "{e}"
        );
        // An unspecified peer host with nothing else to go on is an error too.
        let e = cfg("peer:\n  address: 0.0.0.0:7051\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("set peer.chaincodeAddress"), "{e}");
        let a = addrs("peer:\n  address: '[::1]:7051'\n").unwrap();
        assert_eq!(a.advertised, "[::1]:7052");
    }

    #[test]
    fn bad_values_name_the_key_and_variable() {
        let e = cfg("chaincode:\n  executetimeout: soon\n", &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("chaincode.executetimeout (CORE_CHAINCODE_EXECUTETIMEOUT)"),
            "{e}"
        );
        let e = cfg("peer:\n  tls:\n    enabled: true\n", &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("peer.tls.cert.file (CORE_PEER_TLS_CERT_FILE)"),
            "{e}"
        );
        let e = cfg("peer: [1, 2\n", &[]).unwrap_err().to_string();
        assert!(e.contains("core.yaml: invalid YAML"), "{e}");
        let e = cfg("peer:\n  tls:\n    enabled: maybe\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("core.yaml"), "{e}");
    }

    #[test]
    fn go_durations() {
        assert_eq!(
            parse_duration("1m30s"),
            Some(std::time::Duration::from_secs(90))
        );
        assert_eq!(
            parse_duration("500ms"),
            Some(std::time::Duration::from_millis(500))
        );
        assert_eq!(parse_duration("10"), None);
        assert_eq!(parse_duration("x"), None);
    }
}
