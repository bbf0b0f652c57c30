//! Golden-vector conformance against the reference encoder, `@hyperledger/fabric-protos`.
//!
//! `conformance/vectors.json` is written by `conformance/gen.js` (`npm ci && node gen.js`): for
//! each vector, the bytes the reference encodes for a message with every field set to a distinct
//! non-default value, and the values the reference decodes from them, flattened to
//! `path -> value` with protobuf field names. Every vector here is decoded with weft's type,
//! re-encoded byte for byte, and flattened the same way from weft's structs: a field that weft
//! numbers, types or names differently from Fabric shows up as a difference.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::fmt::Write as _;

use bytes::Bytes;
use weft_proto::{
    common, etcdraft, gateway, kvrwset, msp, orderer, protos, queryresult, rwset, Message,
};

const VECTORS: &str = include_str!("../conformance/vectors.json");

/// The types the vectors must cover; a vector type that weft cannot decode fails the run.
const REQUIRED: &[&str] = &[
    "common.Envelope",
    "common.Payload",
    "common.Header",
    "common.ChannelHeader",
    "common.SignatureHeader",
    "common.Block",
    "common.BlockHeader",
    "common.Metadata",
    "common.MetadataSignature",
    "common.LastConfig",
    "common.OrdererBlockMetadata",
    "common.ConfigEnvelope",
    "common.Config",
    "common.ConfigGroup",
    "common.ConfigValue",
    "common.ConfigPolicy",
    "common.ConfigUpdate",
    "common.ConfigUpdateEnvelope",
    "common.ConfigSignature",
    "common.Policy",
    "common.SignaturePolicyEnvelope",
    "common.ImplicitMetaPolicy",
    "common.ApplicationPolicy",
    "common.MSPPrincipal",
    "common.MSPRole",
    "common.OrganizationUnit",
    "msp.SerializedIdentity",
    "protos.ChaincodeMessage",
    "protos.GetState",
    "protos.PutState",
    "protos.DelState",
    "protos.PutStateMetadata",
    "protos.GetStateMetadata",
    "protos.PurgePrivateState",
    "protos.GetStateByRange",
    "protos.GetQueryResult",
    "protos.QueryMetadata",
    "protos.QueryResponse",
    "protos.QueryResponseMetadata",
    "protos.QueryStateNext",
    "protos.QueryStateClose",
    "protos.GetHistoryForKey",
    "protos.StateMetadata",
    "protos.StateMetadataResult",
    "protos.ChaincodeID",
    "protos.ChaincodeInput",
    "protos.ChaincodeSpec",
    "protos.ChaincodeDeploymentSpec",
    "protos.ChaincodeInvocationSpec",
    "protos.ChaincodeEvent",
    "protos.SignedProposal",
    "protos.Proposal",
    "protos.ChaincodeHeaderExtension",
    "protos.ChaincodeProposalPayload",
    "protos.ChaincodeAction",
    "protos.ProposalResponse",
    "protos.Response",
    "protos.ProposalResponsePayload",
    "protos.Endorsement",
    "protos.ChaincodeInterest",
    "protos.ChaincodeCall",
    "protos.Transaction",
    "protos.TransactionAction",
    "protos.ChaincodeActionPayload",
    "protos.ChaincodeEndorsedAction",
    "protos.ProcessedTransaction",
    "protos.FilteredBlock",
    "protos.FilteredTransaction",
    "protos.DeliverResponse",
    "rwset.TxReadWriteSet",
    "rwset.NsReadWriteSet",
    "rwset.CollectionHashedReadWriteSet",
    "rwset.TxPvtReadWriteSet",
    "kvrwset.KVRWSet",
    "kvrwset.HashedRWSet",
    "kvrwset.Version",
    "queryresult.KV",
    "queryresult.KeyModification",
    "orderer.SeekInfo",
    "orderer.SeekPosition",
    "orderer.BroadcastResponse",
    "orderer.DeliverResponse",
    "gateway.EndorseRequest",
    "gateway.EndorseResponse",
    "gateway.SubmitRequest",
    "gateway.SignedCommitStatusRequest",
    "gateway.CommitStatusRequest",
    "gateway.CommitStatusResponse",
    "gateway.EvaluateRequest",
    "gateway.EvaluateResponse",
    "gateway.SignedChaincodeEventsRequest",
    "gateway.ChaincodeEventsRequest",
    "gateway.ChaincodeEventsResponse",
    "gateway.ErrorDetail",
    "msp.MSPConfig",
    "msp.FabricMSPConfig",
    "common.HashingAlgorithm",
    "common.BlockDataHashingStructure",
    "common.OrdererAddresses",
    "common.Capabilities",
    "orderer.ConsensusType",
    "orderer.BatchSize",
    "orderer.BatchTimeout",
    "orderer.ChannelRestrictions",
    "protos.AnchorPeers",
    "protos.ACLs",
];

// ---------------------------------------------------------------------------------------------
// Flattening weft's structs the way gen.js flattens the reference's messages.
//
// Paths start at `$`; `.name` is a field, `[i]` a repeated element, `{key}` a map entry and
// `name#` the number of entries. Values: `msg`, `str:`, `bytes:<hex>`, `int:`, `bool:`, `len:`.

type Fields = BTreeMap<String, String>;

trait Flat {
    fn flat(&self, path: &str, out: &mut Fields);
}

/// `path.name`, with a raw identifier's `r#` dropped.
fn field(path: &str, ident: &str) -> String {
    format!("{path}.{}", ident.trim_start_matches("r#"))
}

/// A oneof variant's field name from prost's variant name: `NOutOf` -> `n_out_of`.
fn variant_field(path: &str, variant: &str) -> String {
    let mut name = String::new();
    for (i, c) in variant.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            name.push('_');
        }
        name.push(c.to_ascii_lowercase());
    }
    format!("{path}.{name}")
}

fn hex(b: &[u8]) -> String {
    b.iter()
        .fold(String::with_capacity(b.len() * 2), |mut s, x| {
            let _ = write!(s, "{x:02x}");
            s
        })
}

fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd-length hex");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

impl Flat for String {
    fn flat(&self, path: &str, out: &mut Fields) {
        out.insert(path.to_owned(), format!("str:{self}"));
    }
}
impl Flat for Bytes {
    fn flat(&self, path: &str, out: &mut Fields) {
        out.insert(path.to_owned(), format!("bytes:{}", hex(self)));
    }
}
impl Flat for bool {
    fn flat(&self, path: &str, out: &mut Fields) {
        out.insert(path.to_owned(), format!("bool:{self}"));
    }
}
macro_rules! flat_int {
    ($($t:ty),*) => {$(
        impl Flat for $t {
            fn flat(&self, path: &str, out: &mut Fields) {
                out.insert(path.to_owned(), format!("int:{self}"));
            }
        }
    )*};
}
flat_int!(i32, i64, u32, u64);

impl<T: Flat> Flat for Option<T> {
    fn flat(&self, path: &str, out: &mut Fields) {
        if let Some(v) = self {
            v.flat(path, out);
        }
    }
}
impl<T: Flat> Flat for Vec<T> {
    fn flat(&self, path: &str, out: &mut Fields) {
        out.insert(format!("{path}#"), format!("len:{}", self.len()));
        for (i, v) in self.iter().enumerate() {
            v.flat(&format!("{path}[{i}]"), out);
        }
    }
}
impl<K: std::fmt::Display, V: Flat> Flat for BTreeMap<K, V> {
    fn flat(&self, path: &str, out: &mut Fields) {
        out.insert(format!("{path}#"), format!("len:{}", self.len()));
        for (k, v) in self {
            v.flat(&format!("{path}{{{k}}}"), out);
        }
    }
}

/// A message: its plain fields, then its oneofs. The destructuring lists every field of weft's
/// struct, so a field left out here fails to compile.
macro_rules! msg {
    ($ty:ty: $($f:ident),* $(; oneof $($o:ident),+)?) => {
        impl Flat for $ty {
            fn flat(&self, path: &str, out: &mut Fields) {
                out.insert(path.to_owned(), "msg".to_owned());
                let Self { $($f,)* $($($o,)*)? } = self;
                $( $f.flat(&field(path, stringify!($f)), out); )*
                $($( $o.flat(path, out); )*)?
            }
        }
    };
}

/// A oneof: each variant is the field of the same name. The match is exhaustive.
macro_rules! oneof {
    ($ty:ty: $($v:ident),+) => {
        impl Flat for $ty {
            fn flat(&self, path: &str, out: &mut Fields) {
                match self {
                    $( Self::$v(x) => x.flat(&variant_field(path, stringify!($v)), out), )*
                }
            }
        }
    };
}

msg!(prost_types::Timestamp: seconds, nanos);

msg!(common::ApplicationPolicy: ; oneof r#type);
oneof!(common::application_policy::Type: SignaturePolicy, ChannelConfigPolicyReference);
msg!(common::Block: header, data, metadata);
msg!(common::BlockData: data);
msg!(common::BlockHeader: number, previous_hash, data_hash);
msg!(common::BlockMetadata: metadata);
msg!(common::ChannelHeader:
    r#type, version, timestamp, channel_id, tx_id, epoch, extension, tls_cert_hash);
msg!(common::CombinedPrincipal: principals);
msg!(common::Config: sequence, channel_group);
msg!(common::ConfigEnvelope: config, last_update);
msg!(common::ConfigGroup: version, groups, values, policies, mod_policy);
msg!(common::ConfigPolicy: version, policy, mod_policy);
msg!(common::ConfigSignature: signature_header, signature);
msg!(common::ConfigUpdate: channel_id, read_set, write_set, isolated_data);
msg!(common::ConfigUpdateEnvelope: config_update, signatures);
msg!(common::ConfigValue: version, value, mod_policy);
msg!(common::Envelope: payload, signature);
msg!(common::Header: channel_header, signature_header);
msg!(common::IdentifierHeader: identifier, nonce);
msg!(common::ImplicitMetaPolicy: sub_policy, rule);
msg!(common::LastConfig: index);
msg!(common::MspIdentityAnonymity: anonymity_type);
msg!(common::MspPrincipal: principal_classification, principal);
msg!(common::MspRole: msp_identifier, role);
msg!(common::Metadata: value, signatures);
msg!(common::MetadataSignature: signature_header, signature, identifier_header);
msg!(common::OrdererBlockMetadata: last_config, consenter_metadata);
msg!(common::OrganizationUnit:
    msp_identifier, organizational_unit_identifier, certifiers_identifier);
msg!(common::Payload: header, data);
msg!(common::Policy: r#type, value);
msg!(common::SignatureHeader: creator, nonce);
msg!(common::SignaturePolicy: ; oneof r#type);
oneof!(common::signature_policy::Type: SignedBy, NOutOf);
msg!(common::signature_policy::NOutOf: n, rules);
msg!(common::SignaturePolicyEnvelope: version, rule, identities);

msg!(msp::SerializedIdentity: mspid, id_bytes);
msg!(msp::MspConfig: r#type, config);
msg!(msp::FabricMspConfig:
    name, root_certs, intermediate_certs, admins, revocation_list, signing_identity,
    organizational_unit_identifiers, crypto_config, tls_root_certs, tls_intermediate_certs,
    fabric_node_ous);
msg!(msp::FabricCryptoConfig: signature_hash_family, identity_identifier_hash_function);
msg!(msp::SigningIdentityInfo: public_signer, private_signer);
msg!(msp::KeyInfo: key_identifier, key_material);
msg!(msp::FabricOuIdentifier: certificate, organizational_unit_identifier);
msg!(msp::FabricNodeOUs:
    enable, client_ou_identifier, peer_ou_identifier, admin_ou_identifier,
    orderer_ou_identifier);

msg!(common::HashingAlgorithm: name);
msg!(common::BlockDataHashingStructure: width);
msg!(common::OrdererAddresses: addresses);
msg!(common::Consortium: name);
msg!(common::Capabilities: capabilities);
msg!(common::Capability:);
msg!(common::Consenter: id, host, port, msp_id, identity, client_tls_cert, server_tls_cert);
msg!(common::Orderers: consenter_mapping);

msg!(orderer::ConsensusType: r#type, metadata, state);
msg!(orderer::BatchSize: max_message_count, absolute_max_bytes, preferred_max_bytes);
msg!(orderer::BatchTimeout: timeout);
msg!(orderer::KafkaBrokers: brokers);
msg!(orderer::ChannelRestrictions: max_count);

msg!(etcdraft::ConfigMetadata: consenters, options);
msg!(etcdraft::Consenter: host, port, client_tls_cert, server_tls_cert);
msg!(etcdraft::Options:
    tick_interval, election_tick, heartbeat_tick, max_inflight_blocks, snapshot_interval_size);

msg!(protos::AnchorPeers: anchor_peers);
msg!(protos::AnchorPeer: host, port);
msg!(protos::ApiResource: policy_ref);
msg!(protos::AcLs: acls);

msg!(gateway::ChaincodeEventsRequest:
    channel_id, chaincode_id, identity, start_position, after_transaction_id);
msg!(gateway::ChaincodeEventsResponse: events, block_number);
msg!(gateway::CommitStatusRequest: transaction_id, channel_id, identity);
msg!(gateway::CommitStatusResponse: result, block_number);
msg!(gateway::EndorseRequest:
    transaction_id, channel_id, proposed_transaction, endorsing_organizations);
msg!(gateway::EndorseResponse: prepared_transaction);
msg!(gateway::ErrorDetail: address, msp_id, message);
msg!(gateway::EvaluateRequest:
    transaction_id, channel_id, proposed_transaction, target_organizations);
msg!(gateway::EvaluateResponse: result);
msg!(gateway::PreparedTransaction: transaction_id, envelope);
msg!(gateway::ProposedTransaction: transaction_id, proposal, endorsing_organizations);
msg!(gateway::SignedChaincodeEventsRequest: request, signature);
msg!(gateway::SignedCommitStatusRequest: request, signature);
msg!(gateway::SubmitRequest: transaction_id, channel_id, prepared_transaction);
msg!(gateway::SubmitResponse:);

msg!(kvrwset::HashedRwSet: hashed_reads, hashed_writes, metadata_writes);
msg!(kvrwset::KvMetadataEntry: name, value);
msg!(kvrwset::KvMetadataWrite: key, entries);
msg!(kvrwset::KvMetadataWriteHash: key_hash, entries);
msg!(kvrwset::KvrwSet: reads, range_queries_info, writes, metadata_writes);
msg!(kvrwset::KvRead: key, version);
msg!(kvrwset::KvReadHash: key_hash, version);
msg!(kvrwset::KvWrite: key, is_delete, value);
msg!(kvrwset::KvWriteHash: key_hash, is_delete, value_hash, is_purge);
msg!(kvrwset::QueryReads: kv_reads);
msg!(kvrwset::QueryReadsMerkleSummary: max_degree, max_level, max_level_hashes);
msg!(kvrwset::RangeQueryInfo: start_key, end_key, itr_exhausted; oneof reads_info);
oneof!(kvrwset::range_query_info::ReadsInfo: RawReads, ReadsMerkleHashes);
msg!(kvrwset::Version: block_num, tx_num);

msg!(orderer::BroadcastResponse: status, info);
msg!(orderer::DeliverResponse: ; oneof r#type);
oneof!(orderer::deliver_response::Type: Status, Block);
msg!(orderer::SeekInfo: start, stop, behavior, error_response, content_type);
msg!(orderer::SeekNewest:);
msg!(orderer::SeekNextCommit:);
msg!(orderer::SeekOldest:);
msg!(orderer::SeekPosition: ; oneof r#type);
oneof!(orderer::seek_position::Type: Newest, Oldest, Specified, NextCommit);
msg!(orderer::SeekSpecified: number);

msg!(protos::BlockAndPrivateData: block, private_data_map);
msg!(protos::ChaincodeAction: results, events, response, chaincode_id);
msg!(protos::ChaincodeActionPayload: chaincode_proposal_payload, action);
msg!(protos::ChaincodeCall:
    name, collection_names, no_private_reads, no_public_writes, key_policies,
    disregard_namespace_policy);
msg!(protos::ChaincodeDeploymentSpec: chaincode_spec, code_package);
msg!(protos::ChaincodeEndorsedAction: proposal_response_payload, endorsements);
msg!(protos::ChaincodeEvent: chaincode_id, tx_id, event_name, payload);
msg!(protos::ChaincodeHeaderExtension: chaincode_id);
msg!(protos::ChaincodeId: path, name, version);
msg!(protos::ChaincodeInput: args, decorations, is_init);
msg!(protos::ChaincodeInterest: chaincodes);
msg!(protos::ChaincodeInvocationSpec: chaincode_spec);
msg!(protos::ChaincodeMessage:
    r#type, timestamp, payload, txid, proposal, chaincode_event, channel_id);
msg!(protos::ChaincodeProposalPayload: input, transient_map);
msg!(protos::ChaincodeSpec: r#type, chaincode_id, input, timeout);
msg!(protos::DelState: key, collection);
msg!(protos::DeliverResponse: ; oneof r#type);
oneof!(protos::deliver_response::Type: Status, Block, FilteredBlock, BlockAndPrivateData);
msg!(protos::Endorsement: endorser, signature);
msg!(protos::FilteredBlock: channel_id, number, filtered_transactions);
msg!(protos::FilteredChaincodeAction: chaincode_event);
msg!(protos::FilteredTransaction: txid, r#type, tx_validation_code; oneof data);
oneof!(protos::filtered_transaction::Data: TransactionActions);
msg!(protos::FilteredTransactionActions: chaincode_actions);
msg!(protos::GetHistoryForKey: key);
msg!(protos::GetQueryResult: query, collection, metadata);
msg!(protos::GetState: key, collection);
msg!(protos::GetStateByRange: start_key, end_key, collection, metadata);
msg!(protos::GetStateMetadata: key, collection);
msg!(protos::LifecycleEvent: chaincode_name);
msg!(protos::ProcessedTransaction: transaction_envelope, validation_code);
msg!(protos::Proposal: header, payload, extension);
msg!(protos::ProposalResponse: version, timestamp, response, payload, endorsement, interest);
msg!(protos::ProposalResponsePayload: proposal_hash, extension);
msg!(protos::PurgePrivateState: key, collection);
msg!(protos::PutState: key, value, collection);
msg!(protos::PutStateMetadata: key, collection, metadata);
msg!(protos::QueryMetadata: page_size, bookmark);
msg!(protos::QueryResponse: results, has_more, id, metadata);
msg!(protos::QueryResponseMetadata: fetched_records_count, bookmark);
msg!(protos::QueryResultBytes: result_bytes);
msg!(protos::QueryStateClose: id);
msg!(protos::QueryStateNext: id);
msg!(protos::Response: status, message, payload);
msg!(protos::SignedProposal: proposal_bytes, signature);
msg!(protos::StateMetadata: metakey, value);
msg!(protos::StateMetadataResult: entries);
msg!(protos::Transaction: actions);
msg!(protos::TransactionAction: header, payload);

msg!(queryresult::Kv: namespace, key, value);
msg!(queryresult::KeyModification: tx_id, value, timestamp, is_delete);

msg!(rwset::CollectionHashedReadWriteSet: collection_name, hashed_rwset, pvt_rwset_hash);
msg!(rwset::CollectionPvtReadWriteSet: collection_name, rwset);
msg!(rwset::NsPvtReadWriteSet: namespace, collection_pvt_rwset);
msg!(rwset::NsReadWriteSet: namespace, rwset, collection_hashed_rwset);
msg!(rwset::TxPvtReadWriteSet: data_model, ns_pvt_rwset);
msg!(rwset::TxReadWriteSet: data_model, ns_rwset);

// ---------------------------------------------------------------------------------------------
// Vector types: the Fabric name of a message and weft's type for it.

/// Vectors whose bytes weft decodes to the reference's values but re-encodes differently, and
/// why. Their re-encoding must still differ (so this list goes stale loudly) and decode the same.
const KNOWN_REENCODING_DIFFERENCES: &[(&str, &str)] = &[
    ("map_default_key_and_value_uint64", MAP_DEFAULTS),
    ("map_default_key_and_value_string", MAP_DEFAULTS),
    ("map_default_value_message", MAP_DEFAULTS),
    // Capabilities map to empty messages: the value is always the default. weft-configtx
    // encodes this value by hand, the reference's way (see weft_configtx::genesis).
    ("capabilities", MAP_DEFAULTS),
];
const MAP_DEFAULTS: &str =
    "the reference writes a map entry's default key and value; prost leaves them out";

/// Decodes `bytes` as `M`, re-encodes it, and compares bytes and flattened fields.
fn check<M: Message + Default + PartialEq + Flat>(
    bytes: &[u8],
    expected: &Fields,
    exact: bool,
) -> Result<(), String> {
    let msg = M::decode(bytes).map_err(|e| format!("decode failed: {e}"))?;
    let mut problems = Vec::new();
    let again = msg.encode_to_vec();
    if exact && again != bytes {
        problems.push(format!(
            "re-encoding differs\n    reference {}\n    weft      {}",
            hex(bytes),
            hex(&again)
        ));
    }
    if !exact {
        if again == bytes {
            problems.push(
                "re-encodes byte for byte: drop it from KNOWN_REENCODING_DIFFERENCES".to_owned(),
            );
        }
        if M::decode(again.as_slice()).ok().as_ref() != Some(&msg) {
            problems.push(format!(
                "weft's re-encoding {} does not decode to the same message",
                hex(&again)
            ));
        }
    }
    if msg.encoded_len() != again.len() {
        problems.push(format!(
            "encoded_len {} != {}",
            msg.encoded_len(),
            again.len()
        ));
    }
    let mut got = Fields::new();
    msg.flat("$", &mut got);
    for (k, v) in expected {
        match got.get(k) {
            None => problems.push(format!("{k}: reference has {v}, weft has nothing")),
            Some(g) if g != v => problems.push(format!("{k}: reference has {v}, weft has {g}")),
            Some(_) => {}
        }
    }
    for (k, v) in &got {
        if !expected.contains_key(k) {
            problems.push(format!("{k}: weft has {v}, reference has nothing"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n  "))
    }
}

fn decodes<M: Message + Default>(bytes: &[u8]) -> Result<(), String> {
    M::decode(bytes).map(drop).map_err(|e| e.to_string())
}

macro_rules! vector_types {
    ($($name:literal => $ty:ty),* $(,)?) => {
        const VECTOR_TYPES: &[&str] = &[$($name),*];

        fn check_vector(
            type_name: &str,
            bytes: &[u8],
            expected: &Fields,
            exact: bool,
        ) -> Result<(), String> {
            match type_name {
                $($name => check::<$ty>(bytes, expected, exact),)*
                other => Err(format!("weft has no type for {other}")),
            }
        }

        fn decode_vector(type_name: &str, bytes: &[u8]) -> Result<(), String> {
            match type_name {
                $($name => decodes::<$ty>(bytes),)*
                other => panic!("weft has no type for {other}"),
            }
        }
    };
}

vector_types! {
    "common.ApplicationPolicy" => common::ApplicationPolicy,
    "common.BlockDataHashingStructure" => common::BlockDataHashingStructure,
    "common.Capabilities" => common::Capabilities,
    "common.Consortium" => common::Consortium,
    "common.HashingAlgorithm" => common::HashingAlgorithm,
    "common.OrdererAddresses" => common::OrdererAddresses,
    "common.Orderers" => common::Orderers,
    "etcdraft.ConfigMetadata" => etcdraft::ConfigMetadata,
    "msp.FabricMSPConfig" => msp::FabricMspConfig,
    "msp.MSPConfig" => msp::MspConfig,
    "orderer.BatchSize" => orderer::BatchSize,
    "orderer.BatchTimeout" => orderer::BatchTimeout,
    "orderer.ChannelRestrictions" => orderer::ChannelRestrictions,
    "orderer.ConsensusType" => orderer::ConsensusType,
    "orderer.KafkaBrokers" => orderer::KafkaBrokers,
    "protos.ACLs" => protos::AcLs,
    "protos.AnchorPeers" => protos::AnchorPeers,
    "common.Block" => common::Block,
    "common.BlockData" => common::BlockData,
    "common.BlockHeader" => common::BlockHeader,
    "common.BlockMetadata" => common::BlockMetadata,
    "common.ChannelHeader" => common::ChannelHeader,
    "common.CombinedPrincipal" => common::CombinedPrincipal,
    "common.Config" => common::Config,
    "common.ConfigEnvelope" => common::ConfigEnvelope,
    "common.ConfigGroup" => common::ConfigGroup,
    "common.ConfigPolicy" => common::ConfigPolicy,
    "common.ConfigSignature" => common::ConfigSignature,
    "common.ConfigUpdate" => common::ConfigUpdate,
    "common.ConfigUpdateEnvelope" => common::ConfigUpdateEnvelope,
    "common.ConfigValue" => common::ConfigValue,
    "common.Envelope" => common::Envelope,
    "common.Header" => common::Header,
    "common.IdentifierHeader" => common::IdentifierHeader,
    "common.ImplicitMetaPolicy" => common::ImplicitMetaPolicy,
    "common.LastConfig" => common::LastConfig,
    "common.MSPIdentityAnonymity" => common::MspIdentityAnonymity,
    "common.MSPPrincipal" => common::MspPrincipal,
    "common.MSPRole" => common::MspRole,
    "common.Metadata" => common::Metadata,
    "common.MetadataSignature" => common::MetadataSignature,
    "common.OrdererBlockMetadata" => common::OrdererBlockMetadata,
    "common.OrganizationUnit" => common::OrganizationUnit,
    "common.Payload" => common::Payload,
    "common.Policy" => common::Policy,
    "common.SignatureHeader" => common::SignatureHeader,
    "common.SignaturePolicy" => common::SignaturePolicy,
    "common.SignaturePolicyEnvelope" => common::SignaturePolicyEnvelope,
    "msp.SerializedIdentity" => msp::SerializedIdentity,
    "gateway.ChaincodeEventsRequest" => gateway::ChaincodeEventsRequest,
    "gateway.ChaincodeEventsResponse" => gateway::ChaincodeEventsResponse,
    "gateway.CommitStatusRequest" => gateway::CommitStatusRequest,
    "gateway.CommitStatusResponse" => gateway::CommitStatusResponse,
    "gateway.EndorseRequest" => gateway::EndorseRequest,
    "gateway.EndorseResponse" => gateway::EndorseResponse,
    "gateway.ErrorDetail" => gateway::ErrorDetail,
    "gateway.EvaluateRequest" => gateway::EvaluateRequest,
    "gateway.EvaluateResponse" => gateway::EvaluateResponse,
    "gateway.PreparedTransaction" => gateway::PreparedTransaction,
    "gateway.ProposedTransaction" => gateway::ProposedTransaction,
    "gateway.SignedChaincodeEventsRequest" => gateway::SignedChaincodeEventsRequest,
    "gateway.SignedCommitStatusRequest" => gateway::SignedCommitStatusRequest,
    "gateway.SubmitRequest" => gateway::SubmitRequest,
    "gateway.SubmitResponse" => gateway::SubmitResponse,
    "kvrwset.HashedRWSet" => kvrwset::HashedRwSet,
    "kvrwset.KVMetadataEntry" => kvrwset::KvMetadataEntry,
    "kvrwset.KVMetadataWrite" => kvrwset::KvMetadataWrite,
    "kvrwset.KVMetadataWriteHash" => kvrwset::KvMetadataWriteHash,
    "kvrwset.KVRWSet" => kvrwset::KvrwSet,
    "kvrwset.KVRead" => kvrwset::KvRead,
    "kvrwset.KVReadHash" => kvrwset::KvReadHash,
    "kvrwset.KVWrite" => kvrwset::KvWrite,
    "kvrwset.KVWriteHash" => kvrwset::KvWriteHash,
    "kvrwset.QueryReads" => kvrwset::QueryReads,
    "kvrwset.QueryReadsMerkleSummary" => kvrwset::QueryReadsMerkleSummary,
    "kvrwset.RangeQueryInfo" => kvrwset::RangeQueryInfo,
    "kvrwset.Version" => kvrwset::Version,
    "orderer.BroadcastResponse" => orderer::BroadcastResponse,
    "orderer.DeliverResponse" => orderer::DeliverResponse,
    "orderer.SeekInfo" => orderer::SeekInfo,
    "orderer.SeekNewest" => orderer::SeekNewest,
    "orderer.SeekNextCommit" => orderer::SeekNextCommit,
    "orderer.SeekOldest" => orderer::SeekOldest,
    "orderer.SeekPosition" => orderer::SeekPosition,
    "orderer.SeekSpecified" => orderer::SeekSpecified,
    "protos.BlockAndPrivateData" => protos::BlockAndPrivateData,
    "protos.ChaincodeAction" => protos::ChaincodeAction,
    "protos.ChaincodeActionPayload" => protos::ChaincodeActionPayload,
    "protos.ChaincodeCall" => protos::ChaincodeCall,
    "protos.ChaincodeDeploymentSpec" => protos::ChaincodeDeploymentSpec,
    "protos.ChaincodeEndorsedAction" => protos::ChaincodeEndorsedAction,
    "protos.ChaincodeEvent" => protos::ChaincodeEvent,
    "protos.ChaincodeHeaderExtension" => protos::ChaincodeHeaderExtension,
    "protos.ChaincodeID" => protos::ChaincodeId,
    "protos.ChaincodeInput" => protos::ChaincodeInput,
    "protos.ChaincodeInterest" => protos::ChaincodeInterest,
    "protos.ChaincodeInvocationSpec" => protos::ChaincodeInvocationSpec,
    "protos.ChaincodeMessage" => protos::ChaincodeMessage,
    "protos.ChaincodeProposalPayload" => protos::ChaincodeProposalPayload,
    "protos.ChaincodeSpec" => protos::ChaincodeSpec,
    "protos.DelState" => protos::DelState,
    "protos.DeliverResponse" => protos::DeliverResponse,
    "protos.Endorsement" => protos::Endorsement,
    "protos.FilteredBlock" => protos::FilteredBlock,
    "protos.FilteredChaincodeAction" => protos::FilteredChaincodeAction,
    "protos.FilteredTransaction" => protos::FilteredTransaction,
    "protos.FilteredTransactionActions" => protos::FilteredTransactionActions,
    "protos.GetHistoryForKey" => protos::GetHistoryForKey,
    "protos.GetQueryResult" => protos::GetQueryResult,
    "protos.GetState" => protos::GetState,
    "protos.GetStateByRange" => protos::GetStateByRange,
    "protos.GetStateMetadata" => protos::GetStateMetadata,
    "protos.LifecycleEvent" => protos::LifecycleEvent,
    "protos.ProcessedTransaction" => protos::ProcessedTransaction,
    "protos.Proposal" => protos::Proposal,
    "protos.ProposalResponse" => protos::ProposalResponse,
    "protos.ProposalResponsePayload" => protos::ProposalResponsePayload,
    "protos.PurgePrivateState" => protos::PurgePrivateState,
    "protos.PutState" => protos::PutState,
    "protos.PutStateMetadata" => protos::PutStateMetadata,
    "protos.QueryMetadata" => protos::QueryMetadata,
    "protos.QueryResponse" => protos::QueryResponse,
    "protos.QueryResponseMetadata" => protos::QueryResponseMetadata,
    "protos.QueryResultBytes" => protos::QueryResultBytes,
    "protos.QueryStateClose" => protos::QueryStateClose,
    "protos.QueryStateNext" => protos::QueryStateNext,
    "protos.Response" => protos::Response,
    "protos.SignedProposal" => protos::SignedProposal,
    "protos.StateMetadata" => protos::StateMetadata,
    "protos.StateMetadataResult" => protos::StateMetadataResult,
    "protos.Transaction" => protos::Transaction,
    "protos.TransactionAction" => protos::TransactionAction,
    "queryresult.KV" => queryresult::Kv,
    "queryresult.KeyModification" => queryresult::KeyModification,
    "rwset.CollectionHashedReadWriteSet" => rwset::CollectionHashedReadWriteSet,
    "rwset.CollectionPvtReadWriteSet" => rwset::CollectionPvtReadWriteSet,
    "rwset.NsPvtReadWriteSet" => rwset::NsPvtReadWriteSet,
    "rwset.NsReadWriteSet" => rwset::NsReadWriteSet,
    "rwset.TxPvtReadWriteSet" => rwset::TxPvtReadWriteSet,
    "rwset.TxReadWriteSet" => rwset::TxReadWriteSet,
}

// ---------------------------------------------------------------------------------------------
// Enums: the reference's name -> value tables against weft's.

/// Reference values weft leaves out on purpose: Fabric 3.x additions, not in Fabric 2.5.
const ENUM_VALUES_NOT_IN_FABRIC_2_5: &[(&str, &str)] = &[
    ("protos.ChaincodeMessage.Type", "GET_STATE_MULTIPLE"),
    ("protos.ChaincodeMessage.Type", "WRITE_BATCH_STATE"),
];

/// weft's values of an enum as `name -> value`, found by trying every value up to 1024.
fn weft_enum<E: TryFrom<i32> + Copy + Into<i32>>(
    name: fn(E) -> &'static str,
) -> BTreeMap<String, i64> {
    (0..=1024)
        .filter_map(|v| E::try_from(v).ok())
        .map(|e| (name(e).to_owned(), i64::from(e.into())))
        .collect()
}

macro_rules! enum_types {
    ($($name:literal => $ty:ty),* $(,)?) => {
        fn weft_enum_values(name: &str) -> Option<BTreeMap<String, i64>> {
            match name {
                $($name => Some(weft_enum::<$ty>(|e| e.as_str_name())),)*
                _ => None,
            }
        }
    };
}

enum_types! {
    "common.Status" => common::Status,
    "common.HeaderType" => common::HeaderType,
    "common.BlockMetadataIndex" => common::BlockMetadataIndex,
    "common.Policy.PolicyType" => common::policy::PolicyType,
    "common.ImplicitMetaPolicy.Rule" => common::implicit_meta_policy::Rule,
    "common.MSPPrincipal.Classification" => common::msp_principal::Classification,
    "common.MSPRole.MSPRoleType" => common::msp_role::MspRoleType,
    "common.MSPIdentityAnonymity.MSPIdentityAnonymityType" =>
        common::msp_identity_anonymity::MspIdentityAnonymityType,
    "protos.ChaincodeSpec.Type" => protos::chaincode_spec::Type,
    "protos.ChaincodeMessage.Type" => protos::chaincode_message::Type,
    "protos.TxValidationCode" => protos::TxValidationCode,
    "protos.MetaDataKeys" => protos::MetaDataKeys,
    "rwset.TxReadWriteSet.DataModel" => rwset::tx_read_write_set::DataModel,
    "orderer.SeekInfo.SeekBehavior" => orderer::seek_info::SeekBehavior,
    "orderer.SeekInfo.SeekErrorResponse" => orderer::seek_info::SeekErrorResponse,
    "orderer.SeekInfo.SeekContentType" => orderer::seek_info::SeekContentType,
    "orderer.ConsensusType.State" => orderer::consensus_type::State,
}

// ---------------------------------------------------------------------------------------------
// vectors.json, read with a small JSON parser (the file is written by gen.js, so plain JSON).

#[derive(Debug)]
enum Json {
    Null,
    /// `true` or `false`: vectors.json has none where the test reads values.
    Bool,
    Num(i64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    fn get(&self, key: &str) -> &Json {
        match self {
            Json::Obj(kv) => kv
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v)
                .unwrap_or(&Json::Null),
            _ => &Json::Null,
        }
    }
    fn str(&self) -> &str {
        match self {
            Json::Str(s) => s,
            other => panic!("expected a string, found {other:?}"),
        }
    }
    fn arr(&self) -> &[Json] {
        match self {
            Json::Arr(a) => a,
            other => panic!("expected an array, found {other:?}"),
        }
    }
    fn obj(&self) -> &[(String, Json)] {
        match self {
            Json::Obj(kv) => kv,
            other => panic!("expected an object, found {other:?}"),
        }
    }
    fn num(&self) -> i64 {
        match self {
            Json::Num(n) => *n,
            other => panic!("expected an integer, found {other:?}"),
        }
    }
}

struct JsonParser<'a> {
    s: &'a [u8],
    i: usize,
}

impl JsonParser<'_> {
    fn parse(text: &str) -> Json {
        let mut p = JsonParser {
            s: text.as_bytes(),
            i: 0,
        };
        let v = p.value();
        p.ws();
        assert_eq!(p.i, p.s.len(), "trailing data in JSON");
        v
    }
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }
    fn eat(&mut self, c: u8) {
        self.ws();
        assert_eq!(
            self.s.get(self.i),
            Some(&c),
            "JSON: expected {:?} at {}",
            c as char,
            self.i
        );
        self.i += 1;
    }
    fn peek(&mut self) -> u8 {
        self.ws();
        *self.s.get(self.i).expect("JSON: unexpected end")
    }
    fn value(&mut self) -> Json {
        match self.peek() {
            b'{' => {
                self.eat(b'{');
                let mut kv = Vec::new();
                if self.peek() != b'}' {
                    loop {
                        let k = self.string();
                        self.eat(b':');
                        kv.push((k, self.value()));
                        if self.peek() != b',' {
                            break;
                        }
                        self.eat(b',');
                    }
                }
                self.eat(b'}');
                Json::Obj(kv)
            }
            b'[' => {
                self.eat(b'[');
                let mut a = Vec::new();
                if self.peek() != b']' {
                    loop {
                        a.push(self.value());
                        if self.peek() != b',' {
                            break;
                        }
                        self.eat(b',');
                    }
                }
                self.eat(b']');
                Json::Arr(a)
            }
            b'"' => Json::Str(self.string()),
            b't' => self.word("true", Json::Bool),
            b'f' => self.word("false", Json::Bool),
            b'n' => self.word("null", Json::Null),
            _ => {
                let start = self.i;
                while self.i < self.s.len()
                    && (self.s[self.i] == b'-' || self.s[self.i].is_ascii_digit())
                {
                    self.i += 1;
                }
                let n = std::str::from_utf8(&self.s[start..self.i]).unwrap();
                Json::Num(
                    n.parse()
                        .unwrap_or_else(|_| panic!("JSON: not an integer at {start}")),
                )
            }
        }
    }
    fn word(&mut self, w: &str, v: Json) -> Json {
        assert!(
            self.s[self.i..].starts_with(w.as_bytes()),
            "JSON: bad literal at {}",
            self.i
        );
        self.i += w.len();
        v
    }
    fn hex4(&mut self) -> u32 {
        let h = std::str::from_utf8(&self.s[self.i..self.i + 4]).unwrap();
        self.i += 4;
        u32::from_str_radix(h, 16).expect("JSON: bad \\u escape")
    }
    fn string(&mut self) -> String {
        self.eat(b'"');
        let mut out = Vec::new();
        loop {
            let c = self.s[self.i];
            self.i += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    let e = self.s[self.i];
                    self.i += 1;
                    let ch = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hi = self.hex4();
                            let code = if (0xd800..0xdc00).contains(&hi) {
                                assert_eq!(
                                    &self.s[self.i..self.i + 2],
                                    b"\\u",
                                    "JSON: lone surrogate"
                                );
                                self.i += 2;
                                let lo = self.hex4();
                                0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00)
                            } else {
                                hi
                            };
                            char::from_u32(code).expect("JSON: bad code point")
                        }
                        _ => panic!("JSON: bad escape at {}", self.i),
                    };
                    let mut buf = [0; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
                _ => out.push(c),
            }
        }
        String::from_utf8(out).expect("JSON: invalid UTF-8")
    }
}

struct Vector {
    name: String,
    type_name: String,
    bytes: Vec<u8>,
    fields: Fields,
}

fn document() -> Json {
    JsonParser::parse(VECTORS)
}

fn vectors() -> Vec<Vector> {
    document()
        .get("vectors")
        .arr()
        .iter()
        .map(|v| Vector {
            name: v.get("name").str().to_owned(),
            type_name: v.get("type").str().to_owned(),
            bytes: unhex(v.get("hex").str()),
            fields: v
                .get("fields")
                .obj()
                .iter()
                .map(|(k, x)| (k.clone(), x.str().to_owned()))
                .collect(),
        })
        .collect()
}

fn vector(name: &str) -> Vector {
    vectors()
        .into_iter()
        .find(|v| v.name == name)
        .unwrap_or_else(|| panic!("no vector {name}"))
}

fn decode<M: Message + Default>(name: &str) -> M {
    M::decode(vector(name).bytes.as_slice()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

// ---------------------------------------------------------------------------------------------
// Tests.

#[test]
fn every_vector_round_trips_and_decodes_the_reference_values() {
    let all = vectors();
    assert!(all.len() >= 100, "only {} vectors", all.len());
    let failures: Vec<String> = all
        .iter()
        .filter_map(|v| {
            let exact = !KNOWN_REENCODING_DIFFERENCES
                .iter()
                .any(|(name, _)| *name == v.name);
            check_vector(&v.type_name, &v.bytes, &v.fields, exact)
                .err()
                .map(|e| format!("{} ({}):\n  {e}", v.name, v.type_name))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} vectors fail:\n{}",
        failures.len(),
        all.len(),
        failures.join("\n")
    );
}

#[test]
fn every_required_type_has_a_vector_and_every_vector_type_is_checked() {
    let all = vectors();
    let doc = document();
    let in_json: Vec<&str> = doc
        .get("required_types")
        .arr()
        .iter()
        .map(Json::str)
        .collect();
    for t in REQUIRED.iter().copied().chain(in_json.iter().copied()) {
        assert!(all.iter().any(|v| v.type_name == t), "no vector of {t}");
    }
    for v in &all {
        assert!(
            VECTOR_TYPES.contains(&v.type_name.as_str()),
            "{}: weft has no type for {}",
            v.name,
            v.type_name
        );
        assert!(
            !v.bytes.is_empty() || v.fields.len() == 1,
            "{}: empty bytes for a message with fields",
            v.name
        );
        assert_eq!(
            v.fields.get("$").map(String::as_str),
            Some("msg"),
            "{}: no expected fields",
            v.name
        );
    }
    for t in VECTOR_TYPES {
        assert!(
            all.iter().any(|v| v.type_name == *t),
            "{t} is listed but has no vector"
        );
    }
    for (name, _) in KNOWN_REENCODING_DIFFERENCES {
        assert!(
            all.iter().any(|v| v.name == *name),
            "{name} is listed as a known difference but has no vector"
        );
    }
    let mut names: Vec<&str> = all.iter().map(|v| v.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), all.len(), "duplicate vector names");
}

/// Offsets at which a top-level field ends (and 0): a prefix that stops anywhere else is cut
/// inside a field.
fn field_boundaries(b: &[u8]) -> Vec<usize> {
    fn varint(b: &[u8], i: &mut usize) -> u64 {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let x = b[*i];
            *i += 1;
            v |= u64::from(x & 0x7f) << shift;
            if x & 0x80 == 0 {
                break;
            }
        }
        v
    }
    let mut out = vec![0];
    let mut i = 0;
    while i < b.len() {
        let tag = varint(b, &mut i);
        match tag & 7 {
            0 => {
                varint(b, &mut i);
            }
            1 => i += 8,
            2 => {
                let len = varint(b, &mut i);
                i += usize::try_from(len).unwrap();
            }
            5 => i += 4,
            w => panic!("unexpected wire type {w}"),
        }
        out.push(i);
    }
    assert_eq!(i, b.len());
    out
}

#[test]
fn truncated_vectors_fail_to_decode_without_panicking() {
    let mut prefixes = 0;
    for v in vectors() {
        let boundaries = field_boundaries(&v.bytes);
        for cut in 0..v.bytes.len() {
            let result = decode_vector(&v.type_name, &v.bytes[..cut]);
            if boundaries.contains(&cut) {
                assert!(
                    result.is_ok(),
                    "{}: prefix of {cut} bytes ends on a field but fails: {result:?}",
                    v.name
                );
            } else {
                assert!(
                    result.is_err(),
                    "{}: prefix of {cut} of {} bytes decodes",
                    v.name,
                    v.bytes.len()
                );
                prefixes += 1;
            }
        }
        if !v.bytes.is_empty() {
            let last = decode_vector(&v.type_name, &v.bytes[..v.bytes.len() - 1]);
            assert!(
                last.is_err(),
                "{}: dropping the last byte still decodes",
                v.name
            );
        }
    }
    assert!(prefixes > 1000, "only {prefixes} truncated prefixes tried");
}

#[test]
fn enums_match_the_reference() {
    let doc = document();
    let enums = doc.get("enums").obj();
    assert!(
        enums.len() >= 16,
        "only {} enums in vectors.json",
        enums.len()
    );
    for (name, values) in enums {
        let ours = weft_enum_values(name).unwrap_or_else(|| panic!("weft has no enum for {name}"));
        for (value_name, value) in values.obj() {
            let skipped =
                ENUM_VALUES_NOT_IN_FABRIC_2_5.contains(&(name.as_str(), value_name.as_str()));
            match ours.get(value_name) {
                Some(v) => assert_eq!(*v, value.num(), "{name}.{value_name}"),
                None => assert!(
                    skipped,
                    "{name}.{value_name} = {} is missing from weft",
                    value.num()
                ),
            }
        }
        for (value_name, v) in &ours {
            let reference = values.obj().iter().find(|(k, _)| k == value_name);
            assert!(
                reference.is_some(),
                "{name}.{value_name} = {v} is not in the reference"
            );
        }
    }
}

#[test]
fn channel_config_value_fields() {
    let m: msp::MspConfig = decode("msp_config");
    assert_eq!(m.r#type, 1);
    let f = msp::FabricMspConfig::decode(m.config).unwrap();
    assert_eq!(f, decode::<msp::FabricMspConfig>("fabric_msp_config"));
    assert_eq!(f.name, "Org1MSP");
    let ous = f.fabric_node_ous.unwrap();
    assert!(ous.enable);
    assert_eq!(
        ous.orderer_ou_identifier
            .unwrap()
            .organizational_unit_identifier,
        "orderer"
    );
    let c: orderer::ConsensusType = decode("consensus_type");
    assert_eq!(c.state, orderer::consensus_type::State::Maintenance as i32);
    let b: orderer::BatchSize = decode("batch_size");
    assert_eq!(
        (
            b.max_message_count,
            b.absolute_max_bytes,
            b.preferred_max_bytes
        ),
        (500, 10485760, 2097152)
    );
    let a: protos::AcLs = decode("acls");
    assert_eq!(
        a.acls["peer/Propose"].policy_ref,
        "/Channel/Application/Writers"
    );
    let caps: common::Capabilities = decode("capabilities");
    assert_eq!(
        caps.capabilities.keys().collect::<Vec<_>>(),
        ["V2_0", "V2_5"]
    );
    let raft: etcdraft::ConfigMetadata = decode("etcdraft_config_metadata");
    assert_eq!(raft.consenters[1].port, 7051);
    assert_eq!(
        raft.options.unwrap().snapshot_interval_size,
        16 * 1024 * 1024
    );
}

#[test]
fn channel_header_fields() {
    let h: common::ChannelHeader = decode("channel_header");
    assert_eq!(h.r#type, common::HeaderType::EndorserTransaction as i32);
    assert_eq!(h.version, 1);
    let ts = h.timestamp.expect("timestamp");
    assert_eq!((ts.seconds, ts.nanos), (1_700_000_000, 123_456_789));
    assert_eq!(h.channel_id, "mychannel");
    assert_eq!(
        h.tx_id,
        "4f3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39281706f5e"
    );
    assert_eq!(h.epoch, 42);
    // SHA-256 of "client-tls-cert.der".
    assert_eq!(
        hex(&h.tls_cert_hash),
        "5c416ddb7263d8a9d3bceee7002f6801fe036dff84f1d5d18984b9d8cd794364"
    );
    let ext = protos::ChaincodeHeaderExtension::decode(h.extension).unwrap();
    assert_eq!(ext.chaincode_id.unwrap().name, "basic");

    let h: common::ChannelHeader = decode("channel_header_config_update");
    assert_eq!(h.r#type, common::HeaderType::ConfigUpdate as i32);
    assert_eq!(
        (h.channel_id.as_str(), h.epoch, h.version),
        ("syschan", 1, 0)
    );
    assert!(h.tx_id.is_empty() && h.extension.is_empty());
    assert_eq!(h.tls_cert_hash.len(), 32);

    // The envelope carries the same header, nested as bytes.
    let env: common::Envelope = decode("envelope");
    let payload = common::Payload::decode(env.payload).unwrap();
    let header = payload.header.unwrap();
    let ch = common::ChannelHeader::decode(header.channel_header).unwrap();
    assert_eq!(ch, decode::<common::ChannelHeader>("channel_header"));
    let sh = common::SignatureHeader::decode(header.signature_header).unwrap();
    let creator = msp::SerializedIdentity::decode(sh.creator).unwrap();
    assert_eq!(creator.mspid, "Org1MSP");
    assert!(creator.id_bytes.starts_with(b"-----BEGIN CERTIFICATE-----"));
    assert_eq!(sh.nonce.len(), 24);
    assert_eq!(&payload.data[..], b"transaction-bytes");
}

#[test]
fn chaincode_message_fields() {
    use protos::chaincode_message::Type;

    let m: protos::ChaincodeMessage = decode("chaincode_message_transaction");
    assert_eq!(m.r#type(), Type::Transaction);
    assert_eq!(m.txid, "tx-cc-1");
    assert_eq!(m.channel_id, "mychannel");
    let ts = m.timestamp.unwrap();
    assert_eq!((ts.seconds, ts.nanos), (1_700_000_123, 987_654_321));
    let input = protos::ChaincodeInput::decode(m.payload).unwrap();
    assert_eq!(
        input.args,
        [&b"CreateAsset"[..], b"asset1", &[0x00, 0xff, 0x10]]
    );
    assert_eq!(
        input.decorations.keys().collect::<Vec<_>>(),
        ["a-decoration", "b-decoration"]
    );
    assert!(input.is_init);
    let proposal = m.proposal.unwrap();
    assert_eq!(hex(&proposal.signature), "304402207f");
    let p = protos::Proposal::decode(proposal.proposal_bytes).unwrap();
    assert_eq!(&p.extension[..], b"proposal-extension");
    let ccp = protos::ChaincodeProposalPayload::decode(p.payload).unwrap();
    assert_eq!(
        ccp.transient_map.keys().collect::<Vec<_>>(),
        ["price", "secret"]
    );
    let event = m.chaincode_event.unwrap();
    assert_eq!(
        (
            event.chaincode_id.as_str(),
            event.tx_id.as_str(),
            event.event_name.as_str()
        ),
        ("basic", "tx-evt-1", "AssetCreated")
    );
    assert_eq!(&event.payload[..], br#"{"ID":"asset1"}"#);

    let m: protos::ChaincodeMessage = decode("chaincode_message_get_state");
    assert_eq!(m.r#type(), Type::GetState);
    let get = protos::GetState::decode(m.payload).unwrap();
    assert_eq!((get.key.as_str(), get.collection.as_str()), ("asset1", ""));

    let m: protos::ChaincodeMessage = decode("chaincode_message_put_state");
    assert_eq!(m.r#type(), Type::PutState);
    let put = protos::PutState::decode(m.payload).unwrap();
    assert_eq!(
        (put.key.as_str(), &put.value[..], put.collection.as_str()),
        ("asset1", &b"v"[..], "collA")
    );

    let m: protos::ChaincodeMessage = decode("chaincode_message_completed");
    assert_eq!(m.r#type(), Type::Completed);
    let resp = protos::Response::decode(m.payload).unwrap();
    assert_eq!(
        (resp.status, resp.message.as_str()),
        (200, "OK: asset created")
    );

    let m: protos::ChaincodeMessage = decode("chaincode_message_register");
    assert_eq!(m.r#type(), Type::Register);
    assert!(m.txid.is_empty() && m.channel_id.is_empty() && m.timestamp.is_none());
    assert_eq!(
        protos::ChaincodeId::decode(m.payload).unwrap().name,
        "basic_1.0:abc123"
    );

    for (name, ty) in [
        ("chaincode_message_response", Type::Response),
        ("chaincode_message_error", Type::Error),
        ("chaincode_message_purge", Type::PurgePrivateData),
        ("chaincode_message_keepalive", Type::Keepalive),
    ] {
        assert_eq!(
            decode::<protos::ChaincodeMessage>(name).r#type(),
            ty,
            "{name}"
        );
    }
}

#[test]
fn seek_info_fields() {
    use orderer::seek_info::{SeekBehavior, SeekContentType, SeekErrorResponse};
    use orderer::seek_position::Type;

    let s: orderer::SeekInfo = decode("seek_info_specified_newest");
    assert_eq!(
        s.start.unwrap().r#type,
        Some(Type::Specified(orderer::SeekSpecified {
            number: 123_456_789_012
        }))
    );
    assert_eq!(
        s.stop.unwrap().r#type,
        Some(Type::Newest(orderer::SeekNewest {}))
    );
    assert_eq!(s.behavior(), SeekBehavior::FailIfNotReady);
    assert_eq!(s.error_response(), SeekErrorResponse::BestEffort);
    assert_eq!(s.content_type(), SeekContentType::HeaderWithSig);

    let s: orderer::SeekInfo = decode("seek_info_oldest_specified");
    assert_eq!(
        s.start.unwrap().r#type,
        Some(Type::Oldest(orderer::SeekOldest {}))
    );
    assert_eq!(
        s.stop.unwrap().r#type,
        Some(Type::Specified(orderer::SeekSpecified { number: 9 }))
    );
    assert_eq!(
        (s.behavior(), s.error_response(), s.content_type()),
        (
            SeekBehavior::FailIfNotReady,
            SeekErrorResponse::Strict,
            SeekContentType::Block
        )
    );

    let s: orderer::SeekInfo = decode("seek_info_newest_max");
    assert_eq!(
        s.start.unwrap().r#type,
        Some(Type::Newest(orderer::SeekNewest {}))
    );
    assert_eq!(
        s.stop.unwrap().r#type,
        Some(Type::Specified(orderer::SeekSpecified {
            number: (1 << 53) - 1
        }))
    );
    assert_eq!(
        (s.behavior(), s.error_response(), s.content_type()),
        (
            SeekBehavior::BlockUntilReady,
            SeekErrorResponse::BestEffort,
            SeekContentType::Block
        )
    );

    let s: orderer::SeekInfo = decode("seek_info_next_commit");
    assert_eq!(
        s.start.unwrap().r#type,
        Some(Type::NextCommit(orderer::SeekNextCommit {}))
    );
    assert_eq!(
        s.stop.unwrap().r#type,
        Some(Type::Oldest(orderer::SeekOldest {}))
    );
    assert_eq!(
        (s.behavior(), s.error_response(), s.content_type()),
        (
            SeekBehavior::BlockUntilReady,
            SeekErrorResponse::Strict,
            SeekContentType::HeaderWithSig
        )
    );
}

#[test]
fn tx_validation_codes() {
    use protos::TxValidationCode as Code;

    let b: protos::FilteredBlock = decode("filtered_block");
    assert_eq!((b.channel_id.as_str(), b.number), ("mychannel", 77));
    let codes: Vec<_> = b
        .filtered_transactions
        .iter()
        .map(|t| (t.txid.as_str(), t.tx_validation_code()))
        .collect();
    assert_eq!(
        codes,
        [
            ("tx-1", Code::MvccReadConflict),
            ("tx-2", Code::InvalidOtherReason)
        ]
    );
    assert_eq!(
        b.filtered_transactions[0].r#type(),
        common::HeaderType::EndorserTransaction
    );
    assert_eq!(
        b.filtered_transactions[1].r#type(),
        common::HeaderType::Config
    );

    let t: protos::FilteredTransaction = decode("filtered_transaction_not_validated");
    assert_eq!(t.tx_validation_code(), Code::NotValidated);
    assert_eq!(Code::NotValidated as i32, 254);
    assert_eq!(Code::InvalidOtherReason as i32, 255);

    let r: gateway::CommitStatusResponse = decode("commit_status_response");
    assert_eq!(
        (r.result(), r.block_number),
        (Code::EndorsementPolicyFailure, 1_234_567)
    );
    let r: gateway::CommitStatusResponse = decode("commit_status_response_invalid_other");
    assert_eq!((r.result(), r.block_number), (Code::InvalidOtherReason, 1));

    let p: protos::ProcessedTransaction = decode("processed_transaction");
    assert_eq!(p.validation_code, Code::MvccReadConflict as i32);
    assert!(p.transaction_envelope.is_some());
}

#[test]
fn vectors_name_their_reference() {
    let doc = document();
    let reference = doc.get("reference").str();
    assert!(
        reference.starts_with("@hyperledger/fabric-protos@"),
        "{reference}"
    );
}
