//! An MSP's `config.yaml`: the NodeOUs section that tells Fabric which OU marks a client,
//! peer, admin or orderer identity.
//!
//! [`MspConfig::node_ous`] produces exactly what cryptogen writes:
//!
//! ```yaml
//! NodeOUs:
//!   Enable: true
//!   ClientOUIdentifier:
//!     Certificate: cacerts/ca.org1.example.com-cert.pem
//!     OrganizationalUnitIdentifier: client
//!   PeerOUIdentifier:
//!     Certificate: cacerts/ca.org1.example.com-cert.pem
//!     OrganizationalUnitIdentifier: peer
//!   AdminOUIdentifier:
//!     Certificate: cacerts/ca.org1.example.com-cert.pem
//!     OrganizationalUnitIdentifier: admin
//!   OrdererOUIdentifier:
//!     Certificate: cacerts/ca.org1.example.com-cert.pem
//!     OrganizationalUnitIdentifier: orderer
//! ```

use serde::{Deserialize, Serialize};

use crate::config::Role;
use crate::Error;

/// The parts of Fabric's MSP `config.yaml` that weft writes and reads.
///
/// Reading is lenient: other sections Fabric knows (`OrganizationalUnitIdentifiers`, ...) are
/// ignored rather than rejected, since the file may come from fabric-ca or an operator.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MspConfig {
    #[serde(rename = "NodeOUs", default, skip_serializing_if = "Option::is_none")]
    pub node_ous: Option<NodeOus>,
}

/// The `NodeOUs` section.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeOus {
    #[serde(rename = "Enable", default)]
    pub enable: bool,
    #[serde(
        rename = "ClientOUIdentifier",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub client: Option<OuIdentifier>,
    #[serde(
        rename = "PeerOUIdentifier",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub peer: Option<OuIdentifier>,
    #[serde(
        rename = "AdminOUIdentifier",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub admin: Option<OuIdentifier>,
    #[serde(
        rename = "OrdererOUIdentifier",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub orderer: Option<OuIdentifier>,
}

/// One `*OUIdentifier`: the CA certificate (relative to the MSP directory) and the OU value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OuIdentifier {
    #[serde(rename = "Certificate", default)]
    pub certificate: String,
    #[serde(rename = "OrganizationalUnitIdentifier", default)]
    pub organizational_unit_identifier: String,
}

impl MspConfig {
    /// NodeOUs enabled for all four roles, each pinned to `ca_cert` (a path relative to the MSP
    /// directory, e.g. `cacerts/ca.org1.example.com-cert.pem`).
    pub fn node_ous(ca_cert: &str) -> Self {
        let id = |role: Role| {
            Some(OuIdentifier {
                certificate: ca_cert.to_owned(),
                organizational_unit_identifier: role.ou().to_owned(),
            })
        };
        MspConfig {
            node_ous: Some(NodeOus {
                enable: true,
                client: id(Role::Client),
                peer: id(Role::Peer),
                admin: id(Role::Admin),
                orderer: id(Role::Orderer),
            }),
        }
    }

    /// The YAML text of `config.yaml`.
    pub fn to_yaml(&self) -> Result<String, Error> {
        serde_norway::to_string(self).map_err(|e| Error::NodeOuConfig {
            what: "config.yaml".into(),
            detail: e.to_string(),
        })
    }

    /// Parse a `config.yaml`; `what` names the file in errors.
    pub fn from_yaml(yaml: &str, what: &str) -> Result<Self, Error> {
        serde_norway::from_str(yaml).map_err(|e| Error::NodeOuConfig {
            what: what.to_owned(),
            detail: format!("{e}; the file should have Fabric's 'NodeOUs:' shape"),
        })
    }

    /// The OU identifier configured for `role`, if NodeOUs are enabled.
    pub fn identifier(&self, role: Role) -> Option<&OuIdentifier> {
        let n = self.node_ous.as_ref().filter(|n| n.enable)?;
        match role {
            Role::Client => n.client.as_ref(),
            Role::Peer => n.peer.as_ref(),
            Role::Admin => n.admin.as_ref(),
            Role::Orderer => n.orderer.as_ref(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ou_config_has_fabrics_exact_shape() {
        let yaml = MspConfig::node_ous("cacerts/ca.org1.example.com-cert.pem")
            .to_yaml()
            .unwrap();
        let expected = "\
NodeOUs:
  Enable: true
  ClientOUIdentifier:
    Certificate: cacerts/ca.org1.example.com-cert.pem
    OrganizationalUnitIdentifier: client
  PeerOUIdentifier:
    Certificate: cacerts/ca.org1.example.com-cert.pem
    OrganizationalUnitIdentifier: peer
  AdminOUIdentifier:
    Certificate: cacerts/ca.org1.example.com-cert.pem
    OrganizationalUnitIdentifier: admin
  OrdererOUIdentifier:
    Certificate: cacerts/ca.org1.example.com-cert.pem
    OrganizationalUnitIdentifier: orderer
";
        assert_eq!(yaml, expected);
        let back = MspConfig::from_yaml(&yaml, "config.yaml").unwrap();
        assert_eq!(
            back.identifier(Role::Admin)
                .unwrap()
                .organizational_unit_identifier,
            "admin"
        );
    }

    #[test]
    fn lenient_read_ignores_other_sections_and_names_the_file_on_error() {
        let yaml = "OrganizationalUnitIdentifiers:\n  - Certificate: x\n    OrganizationalUnitIdentifier: y\nNodeOUs:\n  Enable: false\n";
        let c = MspConfig::from_yaml(yaml, "msp/config.yaml").unwrap();
        assert!(c.identifier(Role::Peer).is_none());
        let e = MspConfig::from_yaml("NodeOUs: [", "msp/config.yaml").unwrap_err();
        assert!(
            e.to_string().starts_with("msp/config.yaml: NodeOU config:"),
            "{e}"
        );
    }
}
