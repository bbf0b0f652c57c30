#!/usr/bin/env node
// Decodes a config block with the reference decoder, @hyperledger/fabric-protos (installed under
// crates/weft-proto/conformance/node_modules), and prints one line per group, value and policy
// of the config tree with the decoded value, for tests/configtx.rs to compare.
//
//   node decode_block.js <node_modules dir> <block file>
'use strict';

const fs = require('fs');
const path = require('path');

const [modules, file] = process.argv.slice(2);
const { common, msp, orderer, peer } = require(path.join(modules, '@hyperledger/fabric-protos'));

const block = common.Block.deserializeBinary(fs.readFileSync(file));
const out = [];
out.push(`block number=${block.getHeader().getNumber()} data=${block.getData().getDataList().length} metadata=${block.getMetadata().getMetadataList().length}`);
const env = common.Envelope.deserializeBinary(block.getData().getDataList_asU8()[0]);
const payload = common.Payload.deserializeBinary(env.getPayload_asU8());
const ch = common.ChannelHeader.deserializeBinary(payload.getHeader().getChannelHeader_asU8());
out.push(`header type=${ch.getType()} channel=${ch.getChannelId()} version=${ch.getVersion()} txid=${ch.getTxId().length}`);
const lastConfig = common.Metadata.deserializeBinary(block.getMetadata().getMetadataList_asU8()[1]);
out.push(`last_config index=${common.LastConfig.deserializeBinary(lastConfig.getValue_asU8()).getIndex()}`);
const config = common.ConfigEnvelope.deserializeBinary(payload.getData_asU8()).getConfig();
out.push(`sequence ${config.getSequence()}`);

const decoders = {
  HashingAlgorithm: (b) => common.HashingAlgorithm.deserializeBinary(b).getName(),
  BlockDataHashingStructure: (b) => common.BlockDataHashingStructure.deserializeBinary(b).getWidth(),
  OrdererAddresses: (b) => common.OrdererAddresses.deserializeBinary(b).getAddressesList().join(','),
  Endpoints: (b) => common.OrdererAddresses.deserializeBinary(b).getAddressesList().join(','),
  Capabilities: (b) => common.Capabilities.deserializeBinary(b).getCapabilitiesMap().getEntryList().map((e) => e[0]).sort().join(','),
  BatchSize: (b) => {
    const s = orderer.BatchSize.deserializeBinary(b);
    return `${s.getMaxMessageCount()},${s.getAbsoluteMaxBytes()},${s.getPreferredMaxBytes()}`;
  },
  BatchTimeout: (b) => orderer.BatchTimeout.deserializeBinary(b).getTimeout(),
  ChannelRestrictions: (b) => orderer.ChannelRestrictions.deserializeBinary(b).getMaxCount(),
  ConsensusType: (b) => {
    const c = orderer.ConsensusType.deserializeBinary(b);
    let extra = '';
    if (c.getType() === 'etcdraft') {
      const m = orderer.etcdraft.ConfigMetadata.deserializeBinary(c.getMetadata_asU8());
      extra = ' ' + m.getConsentersList().map((x) => `${x.getHost()}:${x.getPort()}`).join(',');
    }
    return `${c.getType()} state=${c.getState()}${extra}`;
  },
  MSP: (b) => {
    const m = msp.MSPConfig.deserializeBinary(b);
    const f = msp.FabricMSPConfig.deserializeBinary(m.getConfig_asU8());
    const ous = f.getFabricNodeOus();
    return `type=${m.getType()} name=${f.getName()} roots=${f.getRootCertsList().length} tls_roots=${f.getTlsRootCertsList().length} node_ous=${ous ? ous.getEnable() : false} hash=${f.getCryptoConfig().getSignatureHashFamily()}`;
  },
  AnchorPeers: (b) => peer.AnchorPeers.deserializeBinary(b).getAnchorPeersList().map((a) => `${a.getHost()}:${a.getPort()}`).join(','),
  ACLs: (b) => {
    const m = peer.ACLs.deserializeBinary(b).getAclsMap();
    return `${m.getLength()} peer/Propose=${m.get('peer/Propose') ? m.get('peer/Propose').getPolicyRef() : ''}`;
  },
};

function policyText(p) {
  if (p.getType() === common.Policy.PolicyType.IMPLICIT_META) {
    const m = common.ImplicitMetaPolicy.deserializeBinary(p.getValue_asU8());
    const rule = Object.keys(common.ImplicitMetaPolicy.Rule).find((k) => common.ImplicitMetaPolicy.Rule[k] === m.getRule());
    return `IMPLICIT_META ${rule} ${m.getSubPolicy()}`;
  }
  const e = common.SignaturePolicyEnvelope.deserializeBinary(p.getValue_asU8());
  return `SIGNATURE identities=${e.getIdentitiesList().length}`;
}

function walk(group, p) {
  out.push(`group ${p} mod_policy=${group.getModPolicy()}`);
  for (const [k, v] of group.getValuesMap().getEntryList().map((e) => [e[0], group.getValuesMap().get(e[0])]).sort()) {
    const dec = decoders[k];
    out.push(`value ${p}/${k} mod_policy=${v.getModPolicy()} = ${dec ? dec(v.getValue_asU8()) : '?'}`);
  }
  for (const k of group.getPoliciesMap().getEntryList().map((e) => e[0]).sort()) {
    const v = group.getPoliciesMap().get(k);
    out.push(`policy ${p}/${k} mod_policy=${v.getModPolicy()} = ${policyText(v.getPolicy())}`);
  }
  for (const k of group.getGroupsMap().getEntryList().map((e) => e[0]).sort()) {
    walk(group.getGroupsMap().get(k), `${p}/${k}`);
  }
}
walk(config.getChannelGroup(), '/Channel');
process.stdout.write(out.join('\n') + '\n');
