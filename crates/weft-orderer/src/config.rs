//! The orderer's configuration: `orderer.yaml` with Fabric's key names and `ORDERER_*`
//! environment overrides.
//!
//! Every supported key can be overridden by the variable Fabric uses: `ORDERER_` followed by
//! the key path in upper case with `.` replaced by `_` (`General.TLS.ClientAuthRequired` ->
//! `ORDERER_GENERAL_TLS_CLIENTAUTHREQUIRED`). Values are read as YAML scalars; lists (`RootCAs`,
//! `ClientRootCAs`) as comma- or whitespace-separated items, optionally in `[...]`. Relative
//! paths resolve against the directory of `orderer.yaml`, as in Fabric.
//!
//! Only `BootstrapMethod: none` is supported: channels are joined through the channel
//! participation API (`ChannelParticipation.Enabled: true`), as in Fabric 2.3+ without a
//! system channel.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_norway::{Mapping, Value};

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

/// `ORDERER_...` for a key path.
pub fn env_name(key: &str) -> String {
    weft_configtx::nodeyaml::env_name("ORDERER", key)
}

fn invalid(key: &'static str, detail: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        env: env_name(key),
        detail: detail.into(),
    }
}

/// Keys that `ORDERER_*` variables may override, with whether they hold a list.
const OVERRIDABLE: &[(&str, bool)] = &[
    ("General.ListenAddress", false),
    ("General.ListenPort", false),
    ("General.TLS.Enabled", false),
    ("General.TLS.PrivateKey", false),
    ("General.TLS.Certificate", false),
    ("General.TLS.RootCAs", true),
    ("General.TLS.ClientAuthRequired", false),
    ("General.TLS.ClientRootCAs", true),
    ("General.LocalMSPDir", false),
    ("General.LocalMSPID", false),
    ("General.BootstrapMethod", false),
    ("General.Authentication.TimeWindow", false),
    ("FileLedger.Location", false),
    ("Admin.ListenAddress", false),
    ("Admin.TLS.Enabled", false),
    ("Admin.TLS.PrivateKey", false),
    ("Admin.TLS.Certificate", false),
    ("Admin.TLS.RootCAs", true),
    ("Admin.TLS.ClientAuthRequired", false),
    ("Admin.TLS.ClientRootCAs", true),
    ("ChannelParticipation.Enabled", false),
    ("ChannelParticipation.MaxRequestBodySize", false),
    ("Consensus.WALDir", false),
    ("Operations.ListenAddress", false),
    ("Operations.TLS.Enabled", false),
    ("Operations.TLS.PrivateKey", false),
    ("Operations.TLS.Certificate", false),
    ("Operations.TLS.RootCAs", true),
    ("Operations.TLS.ClientAuthRequired", false),
    ("Operations.TLS.ClientRootCAs", true),
    ("Metrics.Provider", false),
];

/// `General.TLS` / `Admin.TLS`.
#[derive(Debug, Clone, Deserialize, Default, PartialEq, Eq)]
#[serde(default)]
pub struct TlsSection {
    #[serde(rename = "Enabled")]
    pub enabled: bool,
    #[serde(rename = "PrivateKey")]
    pub private_key: String,
    #[serde(rename = "Certificate")]
    pub certificate: String,
    #[serde(rename = "RootCAs")]
    pub root_cas: Vec<String>,
    #[serde(rename = "ClientAuthRequired")]
    pub client_auth_required: bool,
    #[serde(rename = "ClientRootCAs")]
    pub client_root_cas: Vec<String>,
}

/// `General`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct GeneralSection {
    #[serde(rename = "ListenAddress")]
    pub listen_address: String,
    #[serde(rename = "ListenPort")]
    pub listen_port: u16,
    #[serde(rename = "TLS")]
    pub tls: TlsSection,
    #[serde(rename = "LocalMSPDir")]
    pub local_msp_dir: String,
    #[serde(rename = "LocalMSPID")]
    pub local_msp_id: String,
    #[serde(rename = "BootstrapMethod")]
    pub bootstrap_method: String,
    #[serde(rename = "Authentication")]
    pub authentication: AuthenticationSection,
}

/// `General.Authentication`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct AuthenticationSection {
    /// How far a Deliver request's timestamp may be from the orderer's clock (a Go duration).
    #[serde(rename = "TimeWindow")]
    pub time_window: String,
}

impl Default for AuthenticationSection {
    fn default() -> Self {
        AuthenticationSection {
            time_window: "15m".into(),
        }
    }
}

impl Default for GeneralSection {
    fn default() -> Self {
        GeneralSection {
            listen_address: "127.0.0.1".into(),
            listen_port: 7050,
            tls: TlsSection::default(),
            local_msp_dir: "msp".into(),
            local_msp_id: "SampleOrg".into(),
            bootstrap_method: "none".into(),
            authentication: AuthenticationSection::default(),
        }
    }
}

/// `FileLedger`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct FileLedgerSection {
    #[serde(rename = "Location")]
    pub location: String,
}

impl Default for FileLedgerSection {
    fn default() -> Self {
        FileLedgerSection {
            location: "/var/hyperledger/production/orderer".into(),
        }
    }
}

/// `Admin`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct AdminSection {
    #[serde(rename = "ListenAddress")]
    pub listen_address: String,
    #[serde(rename = "TLS")]
    pub tls: TlsSection,
}

impl Default for AdminSection {
    fn default() -> Self {
        AdminSection {
            listen_address: "127.0.0.1:9443".into(),
            tls: TlsSection::default(),
        }
    }
}

/// `Operations`: the operations listener (`/healthz`, `/metrics`, `/logspec`, `/version`); an
/// empty `ListenAddress` turns it off.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct OperationsSection {
    #[serde(rename = "ListenAddress")]
    pub listen_address: String,
    #[serde(rename = "TLS")]
    pub tls: TlsSection,
}

impl Default for OperationsSection {
    fn default() -> Self {
        OperationsSection {
            listen_address: "127.0.0.1:8443".into(),
            tls: TlsSection::default(),
        }
    }
}

/// `Metrics`: `Provider` is `prometheus` (weft's default), `disabled`, or `statsd` (not
/// supported: disabled with a warning).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct MetricsSection {
    #[serde(rename = "Provider")]
    pub provider: String,
}

impl Default for MetricsSection {
    fn default() -> Self {
        MetricsSection {
            provider: "prometheus".into(),
        }
    }
}

/// `ChannelParticipation`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct ChannelParticipationSection {
    #[serde(rename = "Enabled")]
    pub enabled: bool,
    /// The largest request body the API reads (a join's config block), Fabric's `1 MB` by
    /// default: larger bodies get 413 before they are parsed.
    #[serde(rename = "MaxRequestBodySize", deserialize_with = "size_text")]
    pub max_request_body_size: String,
}

/// A byte size written as text (`1 MB`) or as a plain number of bytes.
fn size_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Size {
        Text(String),
        Bytes(u64),
    }
    Ok(match Size::deserialize(d)? {
        Size::Text(t) => t,
        Size::Bytes(n) => n.to_string(),
    })
}

impl Default for ChannelParticipationSection {
    fn default() -> Self {
        ChannelParticipationSection {
            enabled: true,
            max_request_body_size: "1 MB".into(),
        }
    }
}

/// `Consensus`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct ConsensusSection {
    #[serde(rename = "WALDir")]
    pub wal_dir: String,
}

impl Default for ConsensusSection {
    fn default() -> Self {
        ConsensusSection {
            wal_dir: "/var/hyperledger/production/orderer/etcdraft/wal".into(),
        }
    }
}

/// `orderer.yaml`, the parts weft reads.
#[derive(Debug, Clone, Deserialize, Default, PartialEq, Eq)]
#[serde(default)]
pub struct OrdererConfig {
    #[serde(rename = "General")]
    pub general: GeneralSection,
    #[serde(rename = "FileLedger")]
    pub file_ledger: FileLedgerSection,
    #[serde(rename = "Admin")]
    pub admin: AdminSection,
    #[serde(rename = "ChannelParticipation")]
    pub channel_participation: ChannelParticipationSection,
    #[serde(rename = "Consensus")]
    pub consensus: ConsensusSection,
    #[serde(rename = "Operations")]
    pub operations: OperationsSection,
    #[serde(rename = "Metrics")]
    pub metrics: MetricsSection,
    /// Directory relative paths are resolved against (that of orderer.yaml).
    #[serde(skip)]
    pub base_dir: PathBuf,
}

impl OrdererConfig {
    /// `General.Authentication.TimeWindow` (checked by [`OrdererConfig::validate`]).
    pub fn time_window(&self) -> std::time::Duration {
        weft_configtx::units::parse_go_duration(&self.general.authentication.time_window)
            .unwrap_or(std::time::Duration::from_secs(15 * 60))
    }

    /// Load `orderer.yaml` (defaults when `path` is `None`) and apply `ORDERER_*` overrides
    /// looked up with `env`.
    pub fn load(
        path: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let weft_configtx::nodeyaml::Loaded {
            mut value,
            base_dir,
            source,
        } = weft_configtx::nodeyaml::load(path, "ORDERER", OVERRIDABLE, env).map_err(
            |e| match e {
                weft_configtx::nodeyaml::YamlSourceError::Read { path, source } => {
                    ConfigError::Read { path, source }
                }
                weft_configtx::nodeyaml::YamlSourceError::Yaml { path, detail } => {
                    ConfigError::Yaml { path, detail }
                }
            },
        )?;
        // A single string where a list is expected: one item, as Fabric's viper reads it.
        for (key, is_list) in OVERRIDABLE {
            if *is_list {
                if let Some(v) = get_path_mut(&mut value, key) {
                    if let Value::String(s) = v {
                        let s = s.clone();
                        *v = weft_configtx::nodeyaml::list_value(&s);
                    }
                }
            }
        }
        let mut config: OrdererConfig =
            serde_norway::from_value(value).map_err(|e| ConfigError::Yaml {
                path: source,
                detail: e.to_string(),
            })?;
        config.base_dir = base_dir;
        config.validate()?;
        Ok(config)
    }

    /// `ChannelParticipation.MaxRequestBodySize` in bytes (checked by
    /// [`OrdererConfig::validate`]).
    pub fn max_request_body_size(&self) -> usize {
        weft_configtx::units::parse_byte_size(&self.channel_participation.max_request_body_size)
            .map_or(1024 * 1024, |n| n as usize)
    }

    /// Checks that need more than the types.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match weft_configtx::units::parse_byte_size(
            &self.channel_participation.max_request_body_size,
        ) {
            Ok(0) => {
                return Err(invalid(
                    "ChannelParticipation.MaxRequestBodySize",
                    "0 bytes would refuse every join; Fabric's default is 1 MB",
                ))
            }
            Ok(_) => {}
            Err(e) => return Err(invalid("ChannelParticipation.MaxRequestBodySize", e)),
        }
        if let Err(e) =
            weft_configtx::units::parse_go_duration(&self.general.authentication.time_window)
        {
            return Err(invalid(
                "General.Authentication.TimeWindow",
                format!("{e} (a duration such as 15m)"),
            ));
        }
        if !self.general.bootstrap_method.eq_ignore_ascii_case("none") {
            return Err(invalid(
                "General.BootstrapMethod",
                format!(
                    "{:?} is not supported: weft has no system channel; use \"none\" and join channels with `weft osnadmin channel join`",
                    self.general.bootstrap_method
                ),
            ));
        }
        for (key, tls) in [
            ("General.TLS", &self.general.tls),
            ("Admin.TLS", &self.admin.tls),
            ("Operations.TLS", &self.operations.tls),
        ] {
            if tls.enabled && (tls.certificate.is_empty() || tls.private_key.is_empty()) {
                return Err(invalid(
                    match key {
                        "General.TLS" => "General.TLS.Certificate",
                        "Admin.TLS" => "Admin.TLS.Certificate",
                        _ => "Operations.TLS.Certificate",
                    },
                    format!("{key}.Enabled is true, so {key}.Certificate and {key}.PrivateKey must be set"),
                ));
            }
            if tls.client_auth_required && !tls.enabled {
                return Err(invalid(
                    match key {
                        "General.TLS" => "General.TLS.ClientAuthRequired",
                        "Admin.TLS" => "Admin.TLS.ClientAuthRequired",
                        _ => "Operations.TLS.ClientAuthRequired",
                    },
                    format!("requires {key}.Enabled: true"),
                ));
            }
        }
        if self.channel_participation.enabled
            && self.admin.tls.enabled
            && !self.admin.tls.client_auth_required
        {
            return Err(invalid(
                "Admin.TLS.ClientAuthRequired",
                "the channel participation API requires mutual TLS: set Admin.TLS.ClientAuthRequired: true",
            ));
        }
        weft_ops::provider(&self.metrics.provider, "Metrics.Provider")
            .map_err(|e| invalid("Metrics.Provider", e.0))?;
        if self.file_ledger.location.is_empty() {
            return Err(invalid("FileLedger.Location", "must be set"));
        }
        Ok(())
    }

    /// A path from the configuration, resolved against the directory of orderer.yaml.
    pub fn resolve(&self, path: &str) -> PathBuf {
        let p = Path::new(path);
        if p.is_absolute() {
            p.to_owned()
        } else {
            self.base_dir.join(p)
        }
    }

    /// `General.ListenAddress:General.ListenPort`.
    pub fn listen_address(&self) -> String {
        let host = &self.general.listen_address;
        if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]:{}", self.general.listen_port)
        } else {
            format!("{host}:{}", self.general.listen_port)
        }
    }

    /// The operations listener's TLS, paths resolved (`None` when off).
    pub fn operations_tls(&self) -> Option<weft_ops::OpsTls> {
        let t = &self.operations.tls;
        t.enabled.then(|| weft_ops::OpsTls {
            cert: self.resolve(&t.certificate),
            key: self.resolve(&t.private_key),
            client_auth_required: t.client_auth_required,
            client_root_cas: t.client_root_cas.iter().map(|f| self.resolve(f)).collect(),
            keys: weft_ops::TlsKeys::orderer(),
        })
    }

    /// `FileLedger.Location`, resolved.
    pub fn ledger_dir(&self) -> PathBuf {
        self.resolve(&self.file_ledger.location)
    }

    /// `Consensus.WALDir`, resolved.
    pub fn wal_dir(&self) -> PathBuf {
        self.resolve(&self.consensus.wal_dir)
    }
}

fn find_key(map: &Mapping, part: &str) -> Option<Value> {
    map.keys()
        .find(|k| k.as_str().is_some_and(|s| s.eq_ignore_ascii_case(part)))
        .cloned()
}

fn get_path_mut<'a>(root: &'a mut Value, key: &str) -> Option<&'a mut Value> {
    let mut node = root;
    for part in key.split('.') {
        let Value::Mapping(map) = node else {
            return None;
        };
        let k = find_key(map, part)?;
        node = map.get_mut(&k)?;
    }
    Some(node)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn cfg(yaml: &str, env: &[(&str, &str)]) -> Result<OrdererConfig, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("orderer.yaml");
        std::fs::write(&path, yaml).unwrap();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        OrdererConfig::load(Some(&path), |k| {
            env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn fabric_keys_and_env_overrides() {
        let c = cfg(
            "General:\n  ListenAddress: 0.0.0.0\n  ListenPort: 7050\n  TLS:\n    Enabled: true\n    \
             PrivateKey: tls/server.key\n    Certificate: tls/server.crt\n    RootCAs: [tls/ca.crt]\n  \
             LocalMSPDir: msp\n  LocalMSPID: OrdererMSP\n  BootstrapMethod: none\n\
             FileLedger:\n  Location: ledger\n\
             Admin:\n  ListenAddress: 127.0.0.1:7053\n  TLS:\n    Enabled: true\n    \
             PrivateKey: tls/server.key\n    Certificate: tls/server.crt\n    ClientAuthRequired: true\n    \
             ClientRootCAs: tls/ca.crt\n\
             ChannelParticipation:\n  Enabled: true\n",
            &[
                ("ORDERER_GENERAL_TLS_CLIENTAUTHREQUIRED", "true"),
                ("ORDERER_GENERAL_TLS_CLIENTROOTCAS", "[a.pem, b.pem]"),
                ("ORDERER_GENERAL_LISTENPORT", "7150"),
                ("ORDERER_CONSENSUS_WALDIR", "wal"),
            ],
        )
        .unwrap();
        assert!(c.general.tls.enabled && c.general.tls.client_auth_required);
        assert_eq!(c.general.tls.client_root_cas, vec!["a.pem", "b.pem"]);
        assert_eq!(c.general.tls.root_cas, vec!["tls/ca.crt"]);
        assert_eq!(c.admin.tls.client_root_cas, vec!["tls/ca.crt"]);
        assert_eq!(c.listen_address(), "0.0.0.0:7150");
        assert_eq!(c.general.local_msp_id, "OrdererMSP");
        assert_eq!(c.wal_dir(), c.base_dir.join("wal"));
        assert_eq!(c.ledger_dir(), c.base_dir.join("ledger"));
        assert!(c.resolve("/abs").is_absolute());
    }

    #[test]
    fn defaults_are_fabrics() {
        let c = OrdererConfig::load(None, |_| None).unwrap();
        assert_eq!(c.listen_address(), "127.0.0.1:7050");
        assert_eq!(c.admin.listen_address, "127.0.0.1:9443");
        assert_eq!(c.operations.listen_address, "127.0.0.1:8443");
        assert_eq!(c.metrics.provider, "prometheus");
        assert!(!c.general.tls.enabled);
        assert_eq!(c.time_window(), std::time::Duration::from_secs(15 * 60));
    }

    #[test]
    fn bad_settings_name_the_key_and_variable() {
        let e = cfg("General:\n  BootstrapMethod: file\n", &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("General.BootstrapMethod (ORDERER_GENERAL_BOOTSTRAPMETHOD)"),
            "{e}"
        );
        let e = cfg("General:\n  TLS:\n    Enabled: true\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("ORDERER_GENERAL_TLS_CERTIFICATE"), "{e}");
        let e = cfg(
            "Admin:\n  TLS:\n    Enabled: true\n    Certificate: c\n    PrivateKey: k\n",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("mutual TLS"), "{e}");
        let e = cfg(
            "",
            &[(
                "ORDERER_GENERAL_AUTHENTICATION_TIMEWINDOW",
                "fifteen minutes",
            )],
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains(
                "General.Authentication.TimeWindow (ORDERER_GENERAL_AUTHENTICATION_TIMEWINDOW)"
            ),
            "{e}"
        );
        let c = cfg(
            "",
            &[("ORDERER_GENERAL_AUTHENTICATION_TIMEWINDOW", "1m30s")],
        )
        .unwrap();
        assert_eq!(c.time_window(), std::time::Duration::from_secs(90));
        assert_eq!(cfg("", &[]).unwrap().max_request_body_size(), 1024 * 1024);
        let c = cfg(
            "",
            &[("ORDERER_CHANNELPARTICIPATION_MAXREQUESTBODYSIZE", "10 MB")],
        )
        .unwrap();
        assert_eq!(c.max_request_body_size(), 10 * 1024 * 1024);
        for bad in ["lots", "0"] {
            let e = cfg(
                "",
                &[("ORDERER_CHANNELPARTICIPATION_MAXREQUESTBODYSIZE", bad)],
            )
            .unwrap_err()
            .to_string();
            assert!(e.contains("ChannelParticipation.MaxRequestBodySize"), "{e}");
        }
        let e = cfg("General:\n  ListenPort: seventy\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("invalid YAML"), "{e}");
    }

    #[test]
    fn env_replaces_differently_cased_keys() {
        let c = cfg(
            "general:\n  listenport: 1\n",
            &[("ORDERER_GENERAL_LISTENPORT", "2")],
        );
        // Keys are case sensitive in the file (as Fabric's viper is not); env overrides still
        // land on the canonical key.
        assert_eq!(c.unwrap().general.listen_port, 2);
    }
}
