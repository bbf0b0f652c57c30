//! The channels a peer serves, as the endorser needs them: the channel's MSPs (who may
//! propose), its state database, and which installed package runs each chaincode name.
//!
//! This is the seam the transaction issue replaces: there, channels are joined from a genesis
//! block and chaincode definitions come from `_lifecycle`. Here a peer takes them from its
//! channel file (see [`ChannelsFile`]).

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use serde::Deserialize;
use weft_ledger::StateDb;
use weft_msp::msp::{Msp, MspManager};

/// One channel on this peer.
#[derive(Debug)]
pub struct Channel {
    id: String,
    msps: MspManager,
    state: StateDb,
    /// Chaincode name -> package id.
    chaincodes: RwLock<BTreeMap<String, String>>,
    /// Transaction ids already on the ledger (filled by the commit path).
    committed: Mutex<HashSet<String>>,
}

impl Channel {
    pub fn new(id: impl Into<String>, msps: MspManager, state: StateDb) -> Self {
        Channel {
            id: id.into(),
            msps,
            state,
            chaincodes: RwLock::new(BTreeMap::new()),
            committed: Mutex::new(HashSet::new()),
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn msps(&self) -> &MspManager {
        &self.msps
    }

    pub fn state(&self) -> &StateDb {
        &self.state
    }

    /// Run `package_id` for chaincode `name` on this channel.
    pub fn define_chaincode(&self, name: impl Into<String>, package_id: impl Into<String>) {
        let mut map = match self.chaincodes.write() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        map.insert(name.into(), package_id.into());
    }

    /// The package that runs chaincode `name`.
    pub fn package_for(&self, name: &str) -> Option<String> {
        let map = match self.chaincodes.read() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        map.get(name).cloned()
    }

    /// Record that `txid` is on the ledger: the endorser refuses proposals that reuse it.
    pub fn record_committed(&self, txid: impl Into<String>) {
        let mut set = match self.committed.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        set.insert(txid.into());
    }

    pub fn is_committed(&self, txid: &str) -> bool {
        match self.committed.lock() {
            Ok(s) => s.contains(txid),
            Err(p) => p.into_inner().contains(txid),
        }
    }

    pub fn chaincode_names(&self) -> Vec<String> {
        let map = match self.chaincodes.read() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        map.keys().cloned().collect()
    }
}

/// The channels of a peer, by id.
#[derive(Debug, Default)]
pub struct Channels {
    map: RwLock<BTreeMap<String, Arc<Channel>>>,
}

impl Channels {
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

    /// Open every channel: MSPs from their directories, state under
    /// `<ledgers_dir>/<channel>/state`.
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
            let state_dir = ledgers_dir.join(&ch.name).join("state");
            std::fs::create_dir_all(&state_dir).map_err(|e| ChannelsFileError::Ledger {
                path: path.to_owned(),
                channel: ch.name.clone(),
                detail: format!("cannot create {}: {e}", state_dir.display()),
            })?;
            let state = StateDb::open(&state_dir).map_err(|e| ChannelsFileError::Ledger {
                path: path.to_owned(),
                channel: ch.name.clone(),
                detail: e.to_string(),
            })?;
            let channel = Channel::new(ch.name.clone(), MspManager::new(msps), state);
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
