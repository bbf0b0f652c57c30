//! A two-org network for tests of every crate: cryptogen material for `OrdererOrg`
//! (`orderer.example.com`, MSP ID `OrdererMSP`), `Org1MSP` and `Org2MSP` (one peer each, users
//! Admin and User1, NodeOUs on, TLS SANs `localhost` and `127.0.0.1`), and the genesis block of
//! channel `mychannel`: MAJORITY Endorsement, orderer type `solo`, BatchTimeout 250 ms,
//! MaxMessageCount 500, AbsoluteMaxBytes 10 MB, PreferredMaxBytes 2 MB, the orderer at
//! `127.0.0.1:<port>`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use weft_msp::cryptogen::{default_network_config, generate, GenerateOptions};
use weft_msp::SigningIdentity;
use weft_proto::common::Block;

use crate::channel::BatchConfig;
use crate::error::ConfigError;
use crate::genesis::{genesis_block, OrgProfile, Profile};

/// The channel of a [`TestNetwork`].
pub const CHANNEL: &str = "mychannel";

/// Paths of one node or user of a [`TestNetwork`] (cryptogen's layout).
#[derive(Debug, Clone)]
pub struct TestIdentity {
    /// e.g. `peer0.org1.example.com` or `User1@org1.example.com`.
    pub name: String,
    pub msp_id: String,
    /// The local MSP directory (signcerts/, keystore/).
    pub msp_dir: PathBuf,
    /// `tls/server.crt` (nodes) or `tls/client.crt` (users).
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    /// `tls/ca.crt`: the org's TLS CA.
    pub tls_ca_cert: PathBuf,
}

impl TestIdentity {
    /// The signing identity of the local MSP.
    pub fn signer(&self) -> Result<SigningIdentity, ConfigError> {
        SigningIdentity::from_local_msp_dir(&self.msp_dir, &self.msp_id)
            .map_err(|e| ConfigError::file(self.msp_dir.display(), e.to_string()))
    }
}

/// One org of a [`TestNetwork`].
#[derive(Debug, Clone)]
pub struct TestOrg {
    /// Org group name in the config (`OrdererOrg`, `Org1MSP`, `Org2MSP`).
    pub name: String,
    pub msp_id: String,
    /// The org's MSP directory (`.../msp`).
    pub msp_dir: PathBuf,
    /// The org's TLS CA certificate (PEM file).
    pub tls_ca_cert: PathBuf,
    /// The peer (application orgs) or orderer node.
    pub node: TestIdentity,
    pub admin: TestIdentity,
    /// `User1` (application orgs; the orderer org has only Admin, so this is Admin there).
    pub user: TestIdentity,
}

/// Material and genesis block of the two-org test network.
#[derive(Debug, Clone)]
pub struct TestNetwork {
    /// The crypto material root (`<dir>/crypto`).
    pub crypto_dir: PathBuf,
    pub orderer_org: TestOrg,
    /// Org1MSP, Org2MSP.
    pub orgs: Vec<TestOrg>,
    pub channel_id: String,
    /// `127.0.0.1:<port>`.
    pub orderer_endpoint: String,
    pub profile: Profile,
    pub genesis: Block,
}

/// Generate the material under `dir/crypto` (`dir` empty or absent) and build the genesis
/// block of `mychannel` with the orderer at `127.0.0.1:<orderer_port>`.
pub fn two_org_network(dir: &Path, orderer_port: u16) -> Result<TestNetwork, ConfigError> {
    let crypto_dir = dir.join("crypto");
    let report = generate(
        &default_network_config(),
        &crypto_dir,
        &GenerateOptions::default(),
    )
    .map_err(|e| ConfigError::file(crypto_dir.display(), e.to_string()))?;
    let find = |domain: &str| {
        report
            .orgs
            .iter()
            .find(|o| o.domain == domain)
            .ok_or_else(|| {
                ConfigError::file(
                    crypto_dir.display(),
                    format!("cryptogen made no org {domain}"),
                )
            })
    };
    let org = |name: &str, msp_id: &str, domain: &str| -> Result<TestOrg, ConfigError> {
        let o = find(domain)?;
        let ident = |r: &weft_msp::IdentityReport| TestIdentity {
            name: r.name.clone(),
            msp_id: msp_id.to_owned(),
            msp_dir: r.msp_dir.clone(),
            tls_cert: r.tls_cert.clone(),
            tls_key: r.tls_key.clone(),
            tls_ca_cert: r.tls_ca_cert.clone(),
        };
        let node = o
            .nodes
            .first()
            .map(ident)
            .ok_or_else(|| ConfigError::file(o.path.display(), "cryptogen made no node"))?;
        let admin = o
            .users
            .iter()
            .find(|u| u.name.starts_with("Admin@"))
            .map(ident)
            .ok_or_else(|| ConfigError::file(o.path.display(), "cryptogen made no Admin user"))?;
        let user = o
            .users
            .iter()
            .find(|u| u.name.starts_with("User1@"))
            .map(ident)
            .unwrap_or_else(|| admin.clone());
        Ok(TestOrg {
            name: name.to_owned(),
            msp_id: msp_id.to_owned(),
            msp_dir: o.msp_dir.clone(),
            tls_ca_cert: o.tls_ca_cert.clone(),
            node,
            admin,
            user,
        })
    };
    let orderer_org = org("OrdererOrg", "OrdererMSP", "example.com")?;
    let orgs = vec![
        org("Org1MSP", "Org1MSP", "org1.example.com")?,
        org("Org2MSP", "Org2MSP", "org2.example.com")?,
    ];
    let orderer_endpoint = format!("127.0.0.1:{orderer_port}");
    let mut oo = OrgProfile::orderer(&orderer_org.name, &orderer_org.msp_id, &orderer_org.msp_dir);
    oo.orderer_endpoints = vec![orderer_endpoint.clone()];
    let mut profile = Profile::new(
        vec![oo],
        orgs.iter()
            .map(|o| OrgProfile::application(&o.name, &o.msp_id, &o.msp_dir))
            .collect(),
    );
    profile.orderer.batch = BatchConfig {
        max_message_count: 500,
        absolute_max_bytes: 10 * 1024 * 1024,
        preferred_max_bytes: 2 * 1024 * 1024,
        timeout: Duration::from_millis(250),
    };
    let genesis = genesis_block(CHANNEL, &profile)?;
    Ok(TestNetwork {
        crypto_dir,
        orderer_org,
        orgs,
        channel_id: CHANNEL.to_owned(),
        orderer_endpoint,
        profile,
        genesis,
    })
}

/// A small deterministic PRNG (xorshift64) for mutation tests: the same seed gives the same
/// inputs on every run, so a failure can be replayed.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

/// `bytes` with one to four random edits of the kinds that break protobuf and DER decoders:
/// a flipped bit, a random byte, a truncation, an inserted byte, a duplicated chunk (a
/// repeated or overlong field), or a large varint written over the bytes at some offset (a
/// length that points past the end).
pub fn mutate(rng: &mut Rng, bytes: &[u8]) -> Vec<u8> {
    let mut b = bytes.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(b.len());
        match rng.below(6) {
            0 if !b.is_empty() => b[at] ^= 1 << rng.below(8),
            1 if !b.is_empty() => b[at] = rng.next_u64() as u8,
            2 => b.truncate(at.max(1)),
            3 if !b.is_empty() => {
                let end = (at + 1 + rng.below(64)).min(b.len());
                let chunk = b[at..end].to_vec();
                b.splice(at..at, chunk);
            }
            4 => {
                let mut v = rng.next_u64() >> rng.below(40);
                let mut varint = Vec::new();
                while v >= 0x80 {
                    varint.push(v as u8 | 0x80);
                    v >>= 7;
                }
                varint.push(v as u8);
                let end = (at + varint.len()).min(b.len());
                b.splice(at..end, varint);
            }
            _ => b.insert(at.min(b.len()), rng.next_u64() as u8),
        }
    }
    b
}

impl TestOrg {
    /// The org's signing CA as cryptogen wrote it (`ca/ca.<domain>-cert.pem`, `ca/priv_sk`
    /// beside the org's `msp/`).
    pub fn signing_ca(&self) -> Result<weft_crypto::CertificateAuthority, ConfigError> {
        let dir = self
            .msp_dir
            .parent()
            .map(|d| d.join("ca"))
            .ok_or_else(|| ConfigError::file(self.msp_dir.display(), "no parent directory"))?;
        let read = |p: PathBuf| {
            std::fs::read(&p).map_err(|e| ConfigError::file(p.display(), e.to_string()))
        };
        let cert = std::fs::read_dir(&dir)
            .map_err(|e| ConfigError::file(dir.display(), e.to_string()))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.to_string_lossy().ends_with("-cert.pem"))
            .ok_or_else(|| ConfigError::file(dir.display(), "no *-cert.pem"))?;
        weft_crypto::CertificateAuthority::from_pem(
            &read(cert)?,
            &read(dir.join("priv_sk"))?,
            &format!("{}'s CA", self.msp_id),
        )
        .map_err(|e| ConfigError::file(dir.display(), e.to_string()))
    }
}

/// A signing certificate for `cn` with NodeOU `ou`, issued by `ca`, valid from four minutes
/// ago to one minute ago: after a cryptogen CA's start (back-dated five minutes), and expired.
/// For tests of what blocks hold after their signers' certificates expire.
pub fn expired_leaf(
    ca: &weft_crypto::CertificateAuthority,
    ou: &str,
    cn: &str,
) -> Result<weft_crypto::IssuedCertificate, weft_crypto::Error> {
    let now = time::OffsetDateTime::now_utc();
    let subject = weft_crypto::Subject {
        organizational_unit: Some(ou.to_owned()),
        ..weft_crypto::Subject::cn(cn)
    };
    ca.issue(
        &weft_crypto::LeafRequest::new(subject, weft_crypto::LeafProfile::Signing).validity(
            weft_crypto::Validity::between(
                now - time::Duration::minutes(4),
                now - time::Duration::minutes(1),
            ),
        ),
    )
}

/// The group at `path` below `/Channel` of `config` (`&["Application", "Org1MSP"]`), to edit a
/// config in a test; `None` if a group on the way is missing.
pub fn group_mut<'a>(
    config: &'a mut weft_proto::common::Config,
    path: &[&str],
) -> Option<&'a mut weft_proto::common::ConfigGroup> {
    let mut group = config.channel_group.as_mut()?;
    for name in path {
        group = group.groups.get_mut(*name)?;
    }
    Some(group)
}

/// `config` without application org group `name` (same sequence); `None` if it has no such
/// org.
pub fn without_application_org(
    config: &weft_proto::common::Config,
    name: &str,
) -> Option<weft_proto::common::Config> {
    let mut out = config.clone();
    group_mut(&mut out, &[crate::keys::APPLICATION])?
        .groups
        .remove(name)?;
    Some(out)
}

/// `config` with its `ConsensusType` value edited by `edit`; `None` if it has none or it
/// does not decode.
pub fn with_consensus_type(
    config: &weft_proto::common::Config,
    edit: impl FnOnce(&mut weft_proto::orderer::ConsensusType),
) -> Option<weft_proto::common::Config> {
    use prost::Message;
    let mut out = config.clone();
    let value = group_mut(&mut out, &[crate::keys::ORDERER])?
        .values
        .get_mut(crate::keys::CONSENSUS_TYPE)?;
    let mut ct = weft_proto::orderer::ConsensusType::decode(value.value.clone()).ok()?;
    edit(&mut ct);
    value.value = ct.encode_to_vec().into();
    Some(out)
}
