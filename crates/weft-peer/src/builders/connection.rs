//! `connection.json`: where a chaincode server listens and how the peer dials it.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use serde_json::{Map, Value};
use weft_crypto::{CertSummary, PrivateKey};
use weft_tls::{ClientIdentity, Endpoint, Identity, Profile, Settings, TlsClient, Trust};

use super::duration::parse_go_duration;

/// The dial timeout when `connection.json` gives none (Fabric's default).
pub const DEFAULT_DIAL_TIMEOUT: Duration = Duration::from_secs(3);

const FIELDS: [&str; 7] = [
    "address",
    "dial_timeout",
    "tls_required",
    "client_auth_required",
    "client_key",
    "client_cert",
    "root_cert",
];

/// A `connection.json` that cannot be used. Every message names the file and the field.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectionError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    /// Not JSON, or not a JSON object.
    #[error("{source_name}: {detail}")]
    Json { source_name: String, detail: String },
    /// A required field is absent or empty.
    #[error("{source_name}: {field} is required: {why}")]
    Missing {
        source_name: String,
        field: &'static str,
        why: &'static str,
    },
    /// A boolean field holds a string such as `"true"`.
    #[error("{source_name}: {field} is the string {value:?}; write true or false without quotes (a JSON boolean)")]
    StringBoolean {
        source_name: String,
        field: &'static str,
        value: String,
    },
    /// A field holds the wrong kind of JSON value.
    #[error("{source_name}: {field} must be {expected}, not {found}")]
    WrongType {
        source_name: String,
        field: &'static str,
        expected: &'static str,
        found: &'static str,
    },
    /// `address` is not `host:port`.
    #[error("{source_name}: address {address:?} is not host:port: {detail}")]
    BadAddress {
        source_name: String,
        address: String,
        detail: String,
    },
    /// `dial_timeout` is not a duration.
    #[error("{source_name}: dial_timeout: {detail}")]
    BadDuration { source_name: String, detail: String },
    /// `client_auth_required` without `tls_required`.
    #[error("{source_name}: client_auth_required is true but tls_required is not; client certificates need TLS, so set tls_required to true (with root_cert)")]
    ClientAuthWithoutTls { source_name: String },
    /// A PEM field does not hold a usable certificate or key.
    #[error("{source}{hint}")]
    BadPem {
        field: &'static str,
        source: weft_crypto::Error,
        hint: &'static str,
    },
    /// `client_key` does not belong to `client_cert`.
    #[error("{source_name}: client_key does not match the public key of client_cert (subject {subject}); give the key that belongs to the certificate")]
    KeyMismatch {
        source_name: String,
        subject: String,
    },
    /// The TLS client could not be built.
    #[error("{source_name}: {source}")]
    Tls {
        source_name: String,
        source: weft_tls::ConfigError,
    },
}

/// A validated `connection.json` (chaincode as a service).
///
/// Fields, as Fabric reads them:
/// - `address` (required): `host:port` of the chaincode server.
/// - `dial_timeout`: a Go duration string (`"10s"`, `"1m30s"`, `"500ms"`) or a JSON number of
///   nanoseconds; absent, zero or `""` means 3 s.
/// - `tls_required`, `client_auth_required`: JSON booleans, default false. A string such as
///   `"true"` is refused, naming the field.
/// - `root_cert` (required with TLS), `client_cert` and `client_key` (required with client
///   authentication): inline PEM text. They must parse, and the key must match the
///   certificate.
///
/// Unknown fields are ignored, as Fabric does, but logged at WARN and listed by
/// [`ConnectionInfo::ignored_fields`]: a misspelt `tls_required` would otherwise silently mean
/// plaintext. `client_auth_required` without `tls_required` is refused (Fabric ignores it).
#[derive(Clone)]
pub struct ConnectionInfo {
    source: String,
    address: String,
    endpoint: Endpoint,
    dial_timeout: Duration,
    tls_required: bool,
    client_auth_required: bool,
    client_key: String,
    client_cert: String,
    root_cert: String,
    ignored_fields: Vec<String>,
}

impl fmt::Debug for ConnectionInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the private key.
        f.debug_struct("ConnectionInfo")
            .field("source", &self.source)
            .field("address", &self.address)
            .field("dial_timeout", &self.dial_timeout)
            .field("tls_required", &self.tls_required)
            .field("client_auth_required", &self.client_auth_required)
            .field("has_client_key", &!self.client_key.is_empty())
            .field("has_client_cert", &!self.client_cert.is_empty())
            .field("has_root_cert", &!self.root_cert.is_empty())
            .field("ignored_fields", &self.ignored_fields)
            .finish()
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// How errors and TLS diagnoses name the file: `…connection.json`, or
/// `connection.json (<name>)` when the caller's name does not say so.
fn display_name(source_name: &str) -> String {
    if source_name.ends_with("connection.json") {
        source_name.to_owned()
    } else if source_name.is_empty() {
        "connection.json".to_owned()
    } else {
        format!("connection.json ({source_name})")
    }
}

const PEM_HINT: &str = " (connection.json holds the PEM text itself, with line breaks written as \\n, not a file name)";

impl ConnectionInfo {
    /// Parses and validates `connection.json`. `source_name` (a path, or a description such
    /// as the package id) names the file in errors.
    pub fn parse(bytes: &[u8], source_name: &str) -> Result<Self, ConnectionError> {
        let source = display_name(source_name);
        let value: Value = serde_json::from_slice(bytes).map_err(|e| ConnectionError::Json {
            source_name: source.clone(),
            detail: format!("not valid JSON: {e}"),
        })?;
        let Value::Object(map) = value else {
            return Err(ConnectionError::Json {
                source_name: source.clone(),
                detail: format!("expected a JSON object, found {}", kind(&value)),
            });
        };
        let ignored_fields: Vec<String> = map
            .keys()
            .filter(|k| !FIELDS.contains(&k.as_str()))
            .cloned()
            .collect();
        if !ignored_fields.is_empty() {
            tracing::warn!(
                connection_json = %source,
                fields = ?ignored_fields,
                "unknown fields in connection.json are ignored (as Fabric does); check their spelling (known: {})",
                FIELDS.join(", ")
            );
        }

        let address = string_field(&map, &source, "address")?.unwrap_or_default();
        if address.trim().is_empty() {
            return Err(ConnectionError::Missing {
                source_name: source,
                field: "address",
                why: "give the chaincode server's host:port",
            });
        }
        let endpoint = Endpoint::parse(&address).map_err(|e| ConnectionError::BadAddress {
            source_name: source.clone(),
            address: address.clone(),
            detail: match e {
                weft_tls::ConfigError::Endpoint { detail, .. } => detail,
                other => other.to_string(),
            },
        })?;
        let dial_timeout = dial_timeout(&map, &source)?;
        let tls_required = bool_field(&map, &source, "tls_required")?;
        let client_auth_required = bool_field(&map, &source, "client_auth_required")?;
        let client_key = string_field(&map, &source, "client_key")?.unwrap_or_default();
        let client_cert = string_field(&map, &source, "client_cert")?.unwrap_or_default();
        let root_cert = string_field(&map, &source, "root_cert")?.unwrap_or_default();

        if client_auth_required && !tls_required {
            return Err(ConnectionError::ClientAuthWithoutTls {
                source_name: source,
            });
        }
        if tls_required {
            if root_cert.trim().is_empty() {
                return Err(ConnectionError::Missing {
                    source_name: source,
                    field: "root_cert",
                    why: "tls_required is true; give the PEM of the CA certificate that issued the chaincode server's TLS certificate",
                });
            }
            certificates(&root_cert, &source, "root_cert")?;
            if client_auth_required {
                if client_cert.trim().is_empty() {
                    return Err(ConnectionError::Missing {
                        source_name: source,
                        field: "client_cert",
                        why: "client_auth_required is true; give the PEM of the certificate the peer presents to the chaincode server",
                    });
                }
                if client_key.trim().is_empty() {
                    return Err(ConnectionError::Missing {
                        source_name: source,
                        field: "client_key",
                        why: "client_auth_required is true; give the PEM of the private key of client_cert",
                    });
                }
                let chain = certificates(&client_cert, &source, "client_cert")?;
                let key =
                    PrivateKey::from_pem(client_key.as_bytes(), &format!("client_key in {source}"))
                        .map_err(|e| ConnectionError::BadPem {
                            field: "client_key",
                            hint: pem_hint(&client_key),
                            source: e,
                        })?;
                let leaf = chain
                    .first()
                    .map(CertSummary::parse)
                    .transpose()
                    .map_err(|e| ConnectionError::BadPem {
                        field: "client_cert",
                        hint: "",
                        source: e,
                    })?;
                if let Some(leaf) = leaf {
                    if leaf.public_key_der != key.public_key_der() {
                        return Err(ConnectionError::KeyMismatch {
                            source_name: source,
                            subject: leaf.subject,
                        });
                    }
                }
            }
        }

        Ok(ConnectionInfo {
            source,
            address,
            endpoint,
            dial_timeout,
            tls_required,
            client_auth_required,
            client_key,
            client_cert,
            root_cert,
            ignored_fields,
        })
    }

    /// Reads and parses a `connection.json` file; errors name its path.
    pub fn from_file(path: &Path) -> Result<Self, ConnectionError> {
        let bytes = std::fs::read(path).map_err(|source| ConnectionError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&bytes, &path.display().to_string())
    }

    /// How this file is named in errors and diagnoses.
    pub fn source_name(&self) -> &str {
        &self.source
    }

    /// `address` as written (`host:port`).
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Where to dial; the server's certificate must name the host of `address`.
    pub fn endpoint(&self) -> Endpoint {
        self.endpoint.clone()
    }

    pub fn dial_timeout(&self) -> Duration {
        self.dial_timeout
    }

    pub fn tls_required(&self) -> bool {
        self.tls_required
    }

    pub fn client_auth_required(&self) -> bool {
        self.client_auth_required
    }

    /// `client_key` (PEM), empty when absent.
    pub fn client_key_pem(&self) -> &str {
        &self.client_key
    }

    /// `client_cert` (PEM), empty when absent.
    pub fn client_cert_pem(&self) -> &str {
        &self.client_cert
    }

    /// `root_cert` (PEM), empty when absent.
    pub fn root_cert_pem(&self) -> &str {
        &self.root_cert
    }

    /// Fields present in the file that Fabric does not define (ignored).
    pub fn ignored_fields(&self) -> &[String] {
        &self.ignored_fields
    }

    /// The names TLS diagnoses use for the settings of this connection.
    pub fn settings(&self) -> Settings {
        let s = &self.source;
        Settings {
            tls_enabled: format!("tls_required in {s}").into(),
            root_cas: format!("root_cert in {s}").into(),
            server_name: format!("the host in {s}'s address").into(),
            client_cert: format!("client_cert/client_key in {s}").into(),
            client_auth_required: format!("client_auth_required in {s}").into(),
            client_root_cas: "the chaincode server's trusted client CA certificates".into(),
            server_cert: "the chaincode server's TLS certificate and key".into(),
            pinned_certs: "the pinned certificate list (not used for chaincode servers)".into(),
        }
    }

    /// The TLS client that dials this chaincode server: trusting `root_cert`, presenting
    /// `client_cert` when `client_auth_required`, Fabric's protocol profile, and diagnoses that
    /// name the fields of this file. `None` when `tls_required` is false (plaintext, logged at
    /// WARN).
    pub fn tls_client(&self) -> Result<Option<TlsClient>, ConnectionError> {
        if !self.tls_required {
            tracing::warn!(
                address = %self.address,
                connection_json = %self.source,
                "the chaincode server is dialed WITHOUT TLS because tls_required is not true in connection.json"
            );
            return Ok(None);
        }
        let roots = certificates(&self.root_cert, &self.source, "root_cert")?;
        let tls_err = |source| ConnectionError::Tls {
            source_name: self.source.clone(),
            source,
        };
        let identity = if self.client_auth_required {
            ClientIdentity::Certificate(
                Identity::from_pem(
                    self.client_cert.as_bytes(),
                    self.client_key.as_bytes(),
                    &format!("client_cert/client_key in {}", self.source),
                )
                .map_err(tls_err)?,
            )
        } else {
            ClientIdentity::Anonymous
        };
        let client = TlsClient::new(Trust::Roots(roots), identity, Profile::Fabric)
            .map_err(tls_err)?
            .with_settings(self.settings());
        Ok(Some(client))
    }
}

fn pem_hint(value: &str) -> &'static str {
    if value.contains("-----BEGIN") {
        ""
    } else {
        PEM_HINT
    }
}

fn certificates(
    pem: &str,
    source: &str,
    field: &'static str,
) -> Result<Vec<rustls_pki_types::CertificateDer<'static>>, ConnectionError> {
    weft_crypto::pem::certificates(pem.as_bytes(), &format!("{field} in {source}")).map_err(|e| {
        ConnectionError::BadPem {
            field,
            hint: pem_hint(pem),
            source: e,
        }
    })
}

fn string_field(
    map: &Map<String, Value>,
    source: &str,
    field: &'static str,
) -> Result<Option<String>, ConnectionError> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(ConnectionError::WrongType {
            source_name: source.to_owned(),
            field,
            expected: "a string",
            found: kind(other),
        }),
    }
}

fn bool_field(
    map: &Map<String, Value>,
    source: &str,
    field: &'static str,
) -> Result<bool, ConnectionError> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) => Err(ConnectionError::StringBoolean {
            source_name: source.to_owned(),
            field,
            value: s.clone(),
        }),
        Some(other) => Err(ConnectionError::WrongType {
            source_name: source.to_owned(),
            field,
            expected: "a JSON boolean (true or false)",
            found: kind(other),
        }),
    }
}

fn dial_timeout(map: &Map<String, Value>, source: &str) -> Result<Duration, ConnectionError> {
    let bad = |detail: String| ConnectionError::BadDuration {
        source_name: source.to_owned(),
        detail,
    };
    let parsed = match map.get("dial_timeout") {
        None | Some(Value::Null) => Duration::ZERO,
        Some(Value::String(s)) if s.trim().is_empty() => Duration::ZERO,
        Some(Value::String(s)) => parse_go_duration(s.trim()).map_err(bad)?,
        Some(Value::Number(n)) => {
            if let Some(nanos) = n.as_u64() {
                Duration::from_nanos(nanos)
            } else {
                match n.as_f64() {
                    Some(f) if f.is_finite() && f >= 0.0 && f < u64::MAX as f64 => {
                        // Go converts the number to an integer count of nanoseconds.
                        Duration::from_nanos(f as u64)
                    }
                    _ => {
                        return Err(bad(format!(
                            "{n} is not a usable number of nanoseconds; write a duration string such as \"10s\""
                        )))
                    }
                }
            }
        }
        Some(other) => {
            return Err(ConnectionError::WrongType {
                source_name: source.to_owned(),
                field: "dial_timeout",
                expected: "a duration string such as \"10s\" or a number of nanoseconds",
                found: kind(other),
            })
        }
    };
    // Zero means "not set", as in Fabric.
    Ok(if parsed.is_zero() {
        DEFAULT_DIAL_TIMEOUT
    } else {
        parsed
    })
}
