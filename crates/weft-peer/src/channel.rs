//! The channels a peer serves: the channel's MSPs (who may propose and endorse), its ledger
//! (block store, state database with history), which installed package runs each chaincode
//! name and with which endorsement policy, and the channel's commit notifications.
//!
//! A channel comes from one of two places:
//! - a genesis block the peer joined (`PeerNode::join_channel`): its ledger is under
//!   `<peer.fileSystemPath>/ledgersData/<channel>/` (`blocks/`, `state/`), block 0 is the
//!   genesis block, and a `joined` marker file there makes the peer reopen it at start;
//! - the peer's channel file (see [`ChannelsFile`]), which lists MSP directories (kept for
//!   tests and development setups; such a channel has a ledger too, but no config block).
//!
//! A config block committed on the channel replaces its config and MSPs
//! ([`Channel::apply_config`]); [`Channel::config`] and [`Channel::msps`] always answer with
//! the config in force, and [`Channel::config_changes`] follows it.
//!
//! Chaincode definitions (name -> [`ChaincodeDefinition`]) are set with
//! [`Channel::define_chaincode`] / [`Channel::define`] until `_lifecycle` fills them from
//! transactions.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use serde::Deserialize;
use weft_ledger::{BlockStore, BlockStoreConfig, StateDb};
use weft_msp::msp::{IdentityError, Msp, MspManager, ValidatedIdentity};
use weft_msp::policy::CompiledPolicy;

use weft_configtx::ChannelConfig;

use crate::commit_events::CommitEvents;
use crate::verifycache::{IdentityCache, SignatureCache};

/// The endorsement policy of a chaincode definition (Fabric's `ApplicationPolicy`).
#[derive(Debug, Clone)]
pub enum EndorsementPolicy {
    /// A signature policy of its own.
    Signature(Arc<CompiledPolicy>),
    /// A channel policy by path, e.g. `/Channel/Application/Endorsement`.
    ChannelPolicy(String),
}

/// The default endorsement policy of a chaincode without one of its own.
pub const DEFAULT_ENDORSEMENT_POLICY: &str = "/Channel/Application/Endorsement";

/// A chaincode defined on a channel: the package that runs it and how its transactions are
/// endorsed (`None`: the channel's [`DEFAULT_ENDORSEMENT_POLICY`]).
#[derive(Debug, Clone)]
pub struct ChaincodeDefinition {
    pub package_id: String,
    /// The definition's version, which endorsements carry in their chaincode action.
    pub version: String,
    pub endorsement_policy: Option<EndorsementPolicy>,
}

/// The version given to chaincodes defined without `_lifecycle` (a channel file, tests).
pub const UNVERSIONED: &str = "1.0";

/// A channel's ledger directories under `ledgersData`.
pub fn ledger_dir(ledgers_dir: &Path, channel: &str) -> PathBuf {
    ledgers_dir.join(channel)
}

/// Open (creating) a channel's block store and state database under `dir`
/// (`dir/blocks`, `dir/state`).
pub fn open_ledger(dir: &Path) -> Result<(BlockStore, StateDb), String> {
    let state_dir = dir.join("state");
    std::fs::create_dir_all(&state_dir)
        .map_err(|e| format!("cannot create {}: {e}", state_dir.display()))?;
    let state = StateDb::open(&state_dir).map_err(|e| e.to_string())?;
    let blocks = BlockStore::open(&dir.join("blocks"), BlockStoreConfig::default())
        .map_err(|e| e.to_string())?;
    Ok((blocks, state))
}

/// One channel on this peer.
#[derive(Debug)]
pub struct Channel {
    id: String,
    /// The MSPs in force with the identities validated by them, replaced as one on a config
    /// change: a request still validating under the old MSPs fills the old caches, which are
    /// dropped, never the new ones.
    members: RwLock<Arc<Members>>,
    /// The channel's configuration (from its genesis / last config block); `None` for a
    /// channel from a channel file.
    config: RwLock<Option<Arc<ChannelConfig>>>,
    /// The config sequence in force (0 for a channel file).
    config_seq: tokio::sync::watch::Sender<u64>,
    state: StateDb,
    blocks: BlockStore,
    /// Chaincode name -> definition.
    chaincodes: RwLock<BTreeMap<String, ChaincodeDefinition>>,
    /// Transaction ids recorded as committed by hand (tests); the block store is the real
    /// record.
    committed: Mutex<HashSet<String>>,
    events: CommitEvents,
    signatures: Arc<SignatureCache>,
    /// Held by whoever commits a block to this channel (one committer at a time).
    commit_lock: tokio::sync::Mutex<()>,
    /// The MSP ID of this peer's org: whose approved package runs a `_lifecycle` definition.
    local_msp: std::sync::OnceLock<String>,
}

/// One set of MSPs and the identities they validated.
#[derive(Debug)]
struct Members {
    msps: Arc<MspManager>,
    identities: IdentityCache,
    /// Identities read from blocks (creators and endorsers at commit), validated at their
    /// certificates' issuance so that every peer judges a block alike at any time.
    ledger_identities: IdentityCache,
}

impl Members {
    fn new(msps: MspManager) -> Arc<Members> {
        Arc::new(Members {
            msps: Arc::new(msps),
            identities: IdentityCache::default(),
            ledger_identities: IdentityCache::default(),
        })
    }
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    match l.read() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    match l.write() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

impl Channel {
    /// A channel over an opened ledger (see [`open_ledger`]).
    pub fn new(
        id: impl Into<String>,
        msps: MspManager,
        blocks: BlockStore,
        state: StateDb,
        signatures: Arc<SignatureCache>,
    ) -> Self {
        Channel {
            id: id.into(),
            members: RwLock::new(Members::new(msps)),
            config: RwLock::new(None),
            config_seq: tokio::sync::watch::channel(0).0,
            state,
            blocks,
            chaincodes: RwLock::new(BTreeMap::new()),
            committed: Mutex::new(HashSet::new()),
            events: CommitEvents::new(),
            signatures,
            commit_lock: tokio::sync::Mutex::new(()),
            local_msp: std::sync::OnceLock::new(),
        }
    }

    /// Record this peer's MSP ID (once): `_lifecycle` definitions run the package this org
    /// approved.
    pub fn set_local_msp(&self, msp_id: &str) {
        let _ = self.local_msp.set(msp_id.to_owned());
    }

    /// This peer's MSP ID, if set (empty otherwise).
    pub fn local_msp(&self) -> &str {
        self.local_msp.get().map(String::as_str).unwrap_or_default()
    }

    /// A channel from its configuration: MSPs from the config.
    pub fn from_config(
        config: Arc<ChannelConfig>,
        blocks: BlockStore,
        state: StateDb,
        signatures: Arc<SignatureCache>,
    ) -> Self {
        let ch = Channel::new(
            config.channel_id().to_owned(),
            config.msp_manager().clone(),
            blocks,
            state,
            signatures,
        );
        ch.config_seq.send_replace(config.sequence());
        *write(&ch.config) = Some(config);
        ch
    }

    /// Make `config` the channel's (a committed config block): its MSPs, policies, orgs and
    /// TLS roots; identities validated under the old MSPs are forgotten.
    pub fn apply_config(&self, config: Arc<ChannelConfig>) {
        let seq = config.sequence();
        *write(&self.members) = Members::new(config.msp_manager().clone());
        *write(&self.config) = Some(config);
        self.config_seq.send_replace(seq);
        tracing::info!(channel = %self.id, sequence = seq, "channel config updated");
    }

    /// Follow the config sequence (changes when a config block is committed).
    pub fn config_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.config_seq.subscribe()
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The channel's configuration; `None` for a channel from a channel file.
    pub fn config(&self) -> Option<Arc<ChannelConfig>> {
        read(&self.config).clone()
    }

    /// The MSPs of the channel's orgs, as of the config in force.
    pub fn msps(&self) -> Arc<MspManager> {
        read(&self.members).msps.clone()
    }

    fn members(&self) -> Arc<Members> {
        read(&self.members).clone()
    }

    pub fn state(&self) -> &StateDb {
        &self.state
    }

    /// The channel's block store: `height()`, `block(n)`, `tx_location(tx_id)`.
    pub fn blocks(&self) -> &BlockStore {
        &self.blocks
    }

    /// The channel's commit notifications (the committer publishes every block here).
    pub fn commit_events(&self) -> &CommitEvents {
        &self.events
    }

    /// The peer-wide cache of signatures already verified or made.
    pub fn signature_cache(&self) -> &Arc<SignatureCache> {
        &self.signatures
    }

    /// Validate a serialized identity with the channel's MSPs, through the channel's cache.
    pub fn deserialize_identity(
        &self,
        serialized: &bytes::Bytes,
    ) -> Result<ValidatedIdentity, IdentityError> {
        let m = self.members();
        m.identities.deserialize(&m.msps, serialized)
    }

    /// Validate `identity` and check that `signature` is its signature of `message`, using
    /// and filling the caches.
    pub fn verify_signature(
        &self,
        identity: &bytes::Bytes,
        message: &[u8],
        signature: &[u8],
    ) -> Result<ValidatedIdentity, IdentityError> {
        let id = self.deserialize_identity(identity)?;
        self.signatures
            .verify(&id.public_key, message, signature)
            .map_err(|source| IdentityError::BadSignature {
                msp_id: id.msp_id.clone(),
                subject: id.subject.clone(),
                source,
            })?;
        Ok(id)
    }

    /// Taken by the committer for the time of one block's commit.
    pub fn commit_lock(&self) -> &tokio::sync::Mutex<()> {
        &self.commit_lock
    }

    /// Run `package_id` for chaincode `name` on this channel, with the channel's default
    /// endorsement policy.
    pub fn define_chaincode(&self, name: impl Into<String>, package_id: impl Into<String>) {
        self.define(
            name,
            ChaincodeDefinition {
                package_id: package_id.into(),
                version: UNVERSIONED.to_owned(),
                endorsement_policy: None,
            },
        );
    }

    /// Define (or redefine) chaincode `name`.
    pub fn define(&self, name: impl Into<String>, definition: ChaincodeDefinition) {
        write(&self.chaincodes).insert(name.into(), definition);
    }

    /// The version of chaincode `name`'s definition.
    pub fn version_of(&self, name: &str) -> Option<String> {
        read(&self.chaincodes).get(name).map(|d| d.version.clone())
    }

    /// Take chaincode `name` off the channel (its definition cannot be used).
    pub fn undefine(&self, name: &str) {
        write(&self.chaincodes).remove(name);
    }

    /// The definition of chaincode `name`.
    pub fn definition(&self, name: &str) -> Option<ChaincodeDefinition> {
        read(&self.chaincodes).get(name).cloned()
    }

    /// The package that runs chaincode `name`.
    pub fn package_for(&self, name: &str) -> Option<String> {
        read(&self.chaincodes)
            .get(name)
            .map(|d| d.package_id.clone())
    }

    /// Record that `txid` is on the ledger: the endorser refuses proposals that reuse it.
    pub fn record_committed(&self, txid: impl Into<String>) {
        let mut set = match self.committed.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        set.insert(txid.into());
    }

    /// Whether `txid` is on the ledger (or was recorded with [`Channel::record_committed`]).
    pub fn is_committed(&self, txid: &str) -> bool {
        let recorded = match self.committed.lock() {
            Ok(s) => s.contains(txid),
            Err(p) => p.into_inner().contains(txid),
        };
        recorded || matches!(self.blocks.tx_location(txid), Ok(Some(_)))
    }

    /// Where transaction `tx_id` committed and its validation code
    /// (`protos::TxValidationCode` as i32): recent commits from memory, older ones from the
    /// block store. `None`: not on the ledger.
    pub fn tx_status(&self, tx_id: &str) -> Option<(u64, i32)> {
        if let Some(r) = self.events.recent_result(tx_id) {
            return Some(r);
        }
        let (number, tx_num) = match self.blocks.tx_location(tx_id) {
            // Stored, but its state is not written yet: not committed yet.
            Ok(Some((number, _))) if number >= self.state.applied_height() => return None,
            Ok(Some(loc)) => loc,
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!(channel = %self.id, tx_id, "cannot look up the transaction: {e}");
                return None;
            }
        };
        let code = match self.blocks.block(number) {
            Ok(Some(block)) => usize::try_from(tx_num)
                .ok()
                .and_then(|i| {
                    weft_ledger::block::transactions_filter(&block)?
                        .get(i)
                        .copied()
                })
                .unwrap_or(weft_ledger::blockstore::NOT_VALIDATED),
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!(channel = %self.id, tx_id, block = number, "cannot read the block: {e}");
                return None;
            }
        };
        Some((number, i32::from(code)))
    }

    pub fn chaincode_names(&self) -> Vec<String> {
        read(&self.chaincodes).keys().cloned().collect()
    }
}

/// The channels of a peer, by id, and the peer-wide signature cache they share.
#[derive(Debug, Default)]
pub struct Channels {
    map: RwLock<BTreeMap<String, Arc<Channel>>>,
    signatures: Arc<SignatureCache>,
}

impl Channels {
    /// The signature cache shared by this peer's channels and its endorser.
    pub fn signature_cache(&self) -> &Arc<SignatureCache> {
        &self.signatures
    }

    /// Replace a channel or add it.
    pub fn insert(&self, channel: Channel) -> Arc<Channel> {
        let channel = Arc::new(channel);
        let mut map = match self.map.write() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        map.insert(channel.id.clone(), channel.clone());
        channel
    }

    pub fn get(&self, id: &str) -> Option<Arc<Channel>> {
        let map = match self.map.read() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        map.get(id).cloned()
    }

    pub fn ids(&self) -> Vec<String> {
        let map = match self.map.read() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        map.keys().cloned().collect()
    }
}

/// The peer's channel file (weft-specific, until channels are joined from blocks):
///
/// ```yaml
/// channels:
///   - name: mychannel
///     msps:
///       - id: Org1MSP
///         dir: ../organizations/peerOrganizations/org1.example.com/msp
///     chaincodes:
///       - name: basic
///         packageId: basic_1.0:4ec191...
/// ```
/// Relative paths are relative to the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelsFile {
    pub channels: Vec<ChannelEntry>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelEntry {
    pub name: String,
    pub msps: Vec<MspEntry>,
    #[serde(default)]
    pub chaincodes: Vec<ChaincodeEntry>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MspEntry {
    pub id: String,
    pub dir: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ChaincodeEntry {
    pub name: String,
    pub package_id: String,
}

/// Why the channel file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ChannelsFileError {
    #[error("cannot read channel file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("channel file {path} is not valid: {detail}")]
    Parse { path: PathBuf, detail: String },
    #[error("channel file {path}, channel {channel:?}: MSP {msp_id} from {dir}: {detail}")]
    Msp {
        path: PathBuf,
        channel: String,
        msp_id: String,
        dir: PathBuf,
        detail: String,
    },
    #[error("channel file {path}, channel {channel:?}: {detail}")]
    Ledger {
        path: PathBuf,
        channel: String,
        detail: String,
    },
}

impl ChannelsFile {
    pub fn load(path: &Path) -> Result<ChannelsFile, ChannelsFileError> {
        let bytes = std::fs::read(path).map_err(|source| ChannelsFileError::Read {
            path: path.to_owned(),
            source,
        })?;
        let file: ChannelsFile =
            serde_norway::from_slice(&bytes).map_err(|e| ChannelsFileError::Parse {
                path: path.to_owned(),
                detail: e.to_string(),
            })?;
        for (i, ch) in file.channels.iter().enumerate() {
            let bad = |detail: String| ChannelsFileError::Parse {
                path: path.to_owned(),
                detail,
            };
            if !valid_channel_name(&ch.name) {
                return Err(bad(format!(
                    "channel name {:?} is invalid: use lower-case letters, digits, '.' and '-', starting with a letter, at most 249 characters",
                    ch.name
                )));
            }
            if file.channels[..i].iter().any(|c| c.name == ch.name) {
                return Err(bad(format!("channel {:?} is listed twice", ch.name)));
            }
            if ch.msps.is_empty() {
                return Err(bad(format!("channel {:?} lists no MSPs", ch.name)));
            }
        }
        Ok(file)
    }

    /// Open every channel: MSPs from their directories, the ledger under
    /// `<ledgers_dir>/<channel>/` (see [`open_ledger`]).
    pub fn open(
        &self,
        path: &Path,
        ledgers_dir: &Path,
        channels: &Channels,
    ) -> Result<(), ChannelsFileError> {
        let base = path.parent().unwrap_or(Path::new("."));
        for ch in &self.channels {
            let mut msps = Vec::new();
            for m in &ch.msps {
                let dir = base.join(&m.dir);
                let msp = Msp::from_dir(&dir, &m.id).map_err(|e| ChannelsFileError::Msp {
                    path: path.to_owned(),
                    channel: ch.name.clone(),
                    msp_id: m.id.clone(),
                    dir: dir.clone(),
                    detail: e.to_string(),
                })?;
                msps.push(msp);
            }
            let (blocks, state) =
                open_ledger(&ledger_dir(ledgers_dir, &ch.name)).map_err(|detail| {
                    ChannelsFileError::Ledger {
                        path: path.to_owned(),
                        channel: ch.name.clone(),
                        detail,
                    }
                })?;
            let channel = Channel::new(
                ch.name.clone(),
                MspManager::new(msps),
                blocks,
                state,
                channels.signature_cache().clone(),
            );
            for cc in &ch.chaincodes {
                channel.define_chaincode(cc.name.clone(), cc.package_id.clone());
            }
            channels.insert(channel);
        }
        Ok(())
    }
}

/// Fabric's channel name rule: `[a-z][a-z0-9.-]*`, under 250 characters.
pub fn valid_channel_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z'))
        && name.len() < 250
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '.' | '-'))
}

impl crate::validator::TxContext for Channel {
    fn channel_id(&self) -> &str {
        &self.id
    }

    fn validate_identity(&self, serialized: &bytes::Bytes) -> Result<ValidatedIdentity, String> {
        // At commit an identity is judged as of its certificate's issuance, not the clock:
        // a peer validating this block a year later must reach the same codes.
        let m = self.members();
        m.ledger_identities
            .deserialize_at_issuance(&m.msps, serialized)
            .map_err(|e| e.to_string())
    }

    fn verify(
        &self,
        identity: &ValidatedIdentity,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), String> {
        self.signatures
            .verify(&identity.public_key, message, signature)
            .map_err(|e| e.to_string())
    }

    fn chaincode_policy(&self, name: &str) -> Option<Option<EndorsementPolicy>> {
        read(&self.chaincodes)
            .get(name)
            .map(|d| d.endorsement_policy.clone())
    }

    fn evaluate_channel_policy(&self, path: &str, ids: &[ValidatedIdentity]) -> Result<(), String> {
        match self.config() {
            Some(config) => config
                .evaluate_policy_identities(path, ids)
                .map_err(|e| e.to_string()),
            None => channel_file_policy(&self.msps(), path, ids),
        }
    }

    fn org_endorsement_policy(&self, msp_id: &str) -> crate::validator::OrgEndorsement {
        use crate::validator::OrgEndorsement;
        let Some(config) = self.config() else {
            return OrgEndorsement::AnyMember;
        };
        let Some((name, _)) = config
            .application_orgs()
            .iter()
            .find(|(_, org)| org.msp_id == msp_id)
        else {
            return OrgEndorsement::NotAnApplicationOrg;
        };
        let path = format!("/Channel/Application/{name}/Endorsement");
        if config.has_policy(&path) {
            OrgEndorsement::Policy(path)
        } else {
            OrgEndorsement::AnyMember
        }
    }
}

/// A channel from a channel file has no policies: its `Endorsement` policy is Fabric's default,
/// `MAJORITY Endorsement` over its orgs, each org's being `OR('<msp>.peer')`.
fn channel_file_policy(
    msps: &MspManager,
    path: &str,
    ids: &[ValidatedIdentity],
) -> Result<(), String> {
    if path != DEFAULT_ENDORSEMENT_POLICY {
        return Err(format!(
            "policy {path} does not exist: a channel from a channel file has only {DEFAULT_ENDORSEMENT_POLICY}"
        ));
    }
    let orgs: Vec<&str> = msps.iter().map(|m| m.id()).collect();
    let endorsed: HashSet<&str> = ids
        .iter()
        .filter(|id| id.role == weft_msp::IdentityRole::Peer)
        .map(|id| id.msp_id.as_str())
        .filter(|m| orgs.contains(m))
        .collect();
    let need = orgs.len() / 2 + 1;
    if endorsed.len() >= need {
        Ok(())
    } else {
        Err(format!(
            "MAJORITY Endorsement needs peer endorsements from {need} of the {} orgs {orgs:?}; got {}",
            orgs.len(),
            endorsed.len()
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// Attack on revocation: a request that began validating an identity under the old MSPs
    /// finishes after a config update removed its org. Its result lands in the old caches
    /// only; the channel refuses the identity from then on. (With one cache cleared on
    /// update, the late insert survived there, and the removed org's member stayed valid
    /// until its certificate expired.)
    #[tokio::test]
    async fn an_identity_validated_under_replaced_msps_is_not_cached_for_the_new_ones() {
        let dir = tempfile::tempdir().unwrap();
        let net = weft_configtx::testing::two_org_network(&dir.path().join("net"), 7050).unwrap();
        let ch = crate::testing::open_channel_from_genesis(
            &dir.path().join("ledger"),
            &net.genesis,
            Arc::new(SignatureCache::default()),
        )
        .await
        .unwrap();
        let user2: bytes::Bytes = net.orgs[1].user.signer().unwrap().serialize().into();
        let config = ch.config().unwrap();
        let mut without =
            weft_configtx::testing::without_application_org(config.config(), "Org2MSP").unwrap();
        without.sequence += 1;
        let next = ChannelConfig::from_config(config.channel_id(), &without).unwrap();

        // In flight: the request took the members in force, then the update landed.
        let in_flight = ch.members();
        ch.apply_config(Arc::new(next));
        in_flight
            .identities
            .deserialize(&in_flight.msps, &user2)
            .unwrap();
        in_flight
            .ledger_identities
            .deserialize_at_issuance(&in_flight.msps, &user2)
            .unwrap();

        let err = ch.deserialize_identity(&user2).unwrap_err();
        assert!(err.to_string().contains("Org2MSP"), "{err}");
        use crate::validator::TxContext;
        assert!(ch.validate_identity(&user2).is_err());
    }
}
