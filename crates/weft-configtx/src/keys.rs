//! The names Fabric gives the groups, values and policies of a channel config.

/// The root group's name in config paths (`/Channel/...`).
pub const CHANNEL: &str = "Channel";
pub const ORDERER: &str = "Orderer";
pub const APPLICATION: &str = "Application";
/// The system channel's group of consortiums (not supported by weft).
pub const CONSORTIUMS: &str = "Consortiums";

// Channel values.
pub const HASHING_ALGORITHM: &str = "HashingAlgorithm";
pub const BLOCK_DATA_HASHING_STRUCTURE: &str = "BlockDataHashingStructure";
pub const ORDERER_ADDRESSES: &str = "OrdererAddresses";
pub const CONSORTIUM: &str = "Consortium";
pub const CAPABILITIES: &str = "Capabilities";

// Orderer values.
pub const CONSENSUS_TYPE: &str = "ConsensusType";
pub const BATCH_SIZE: &str = "BatchSize";
pub const BATCH_TIMEOUT: &str = "BatchTimeout";
pub const CHANNEL_RESTRICTIONS: &str = "ChannelRestrictions";
pub const KAFKA_BROKERS: &str = "KafkaBrokers";
/// BFT consenter mapping (Fabric 3).
pub const ORDERERS: &str = "Orderers";

// Org values.
pub const MSP: &str = "MSP";
pub const ENDPOINTS: &str = "Endpoints";
pub const ANCHOR_PEERS: &str = "AnchorPeers";

// Application values.
pub const ACLS: &str = "ACLs";

// Policies.
pub const READERS: &str = "Readers";
pub const WRITERS: &str = "Writers";
pub const ADMINS: &str = "Admins";
pub const ENDORSEMENT: &str = "Endorsement";
pub const LIFECYCLE_ENDORSEMENT: &str = "LifecycleEndorsement";
pub const BLOCK_VALIDATION: &str = "BlockValidation";

/// The only hashing algorithm Fabric supports.
pub const SHA256: &str = "SHA256";
/// `BlockDataHashingStructure.width` of every Fabric channel: hash the data flat.
pub const DATA_HASHING_WIDTH: u32 = u32::MAX;

/// Capabilities weft understands, per level. A channel requiring another one is refused:
/// running it with rules this node does not know would fork the ledger.
pub const CHANNEL_CAPABILITIES: &[&str] = &["V1_1", "V1_3", "V1_4_2", "V1_4_3", "V2_0", "V3_0"];
pub const ORDERER_CAPABILITIES: &[&str] = &["V1_1", "V1_4_2", "V2_0"];
pub const APPLICATION_CAPABILITIES: &[&str] = &[
    "V1_1",
    "V1_1_PVTDATA_EXPERIMENTAL",
    "V1_1_RESOURCETREE_EXPERIMENTAL",
    "V1_2",
    "V1_3",
    "V1_4_2",
    "V2_0",
    "V2_5",
];
