#!/usr/bin/env node
// Golden vectors for weft-proto, encoded by the reference encoder @hyperledger/fabric-protos.
//
//   node gen.js           write vectors.json
//   node gen.js --check   regenerate in memory; exit 1, naming the vectors, if vectors.json differs
//
// Each vector is a message built with the npm package's generated classes, every field set to a
// distinct non-default value, serialized with serializeBinary(). Beside the bytes, `fields` holds
// what the reference decodes from them, flattened to `path -> value` with protobuf field names
// (snake_case, as prost names them): tests/conformance.rs decodes the bytes with weft's types and
// must produce the same map, so a field that weft numbers or types differently is caught.
//
// The reference's schema (field names, numbers, labels, types, oneofs) is read from the npm
// package's generated code, and the vectors are checked against it before anything is written:
// every field of every message type reachable from a vector is set somewhere (repeated fields and
// maps with >= 2 entries, every oneof member), and every two fields of a message that share a wire
// type hold different values in at least one instance, so a swap of their numbers would show.
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const jspb = require('google-protobuf');
require('@hyperledger/fabric-protos'); // registers every class under the global `proto`

const OUT = path.join(__dirname, 'vectors.json');
const REF_ROOT = path.dirname(require.resolve('@hyperledger/fabric-protos/package.json'));
const REF_VERSION = require('@hyperledger/fabric-protos/package.json').version;
const JSPB_VERSION = require('google-protobuf/package.json').version;

// ---------------------------------------------------------------------------------------------
// The reference schema, read from the generated code's getter doc comments, which read e.g.
//   /**
//    * optional bytes tls_cert_hash = 8;
//    * @return {string}
//    */
//   proto.common.ChannelHeader.prototype.getTlsCertHash = function() {

function pbFiles(dir) {
  let out = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out = out.concat(pbFiles(p));
    else if (e.name.endsWith('_pb.js') && !e.name.endsWith('_grpc_pb.js')) out.push(p);
  }
  return out.sort();
}

function loadSchema() {
  const files = pbFiles(path.join(REF_ROOT, 'lib'));
  files.push(require.resolve('google-protobuf/google/protobuf/timestamp_pb.js'));
  const re =
    /\/\*\*\n \* (?:(optional|repeated) ([\w.]+)|map<(\w+), ?([\w.]+)>) (\w+) = (\d+);\n((?: \*.*\n)*?) \*\/\n(proto\.[\w.]+)\.prototype\.(get[\w$]+) = function/g;
  const schema = {};
  for (const file of files) {
    const src = fs.readFileSync(file, 'utf8');
    let m;
    while ((m = re.exec(src))) {
      const [, label, type, keyType, valueType, name, number, doc, owner, getter] = m;
      if (getter.includes('_as')) continue; // _asB64 / _asU8 conversion wrappers
      const ret = /@return \{[^}]*?proto\.([\w.]+)/.exec(doc);
      const msgName = owner.slice('proto.'.length);
      const fields = (schema[msgName] ||= []);
      fields.push({
        name,
        number: Number(number),
        label: label || 'map',
        type: type || valueType,
        keyType: keyType || null,
        ref: ret ? ret[1] : null, // full name of a message or enum type
        getter,
      });
    }
  }
  for (const fields of Object.values(schema)) fields.sort((a, b) => a.number - b.number);
  return schema;
}

const SCHEMA = loadSchema();

function lookup(name) {
  const v = name.split('.').reduce((o, k) => (o == null ? undefined : o[k]), proto);
  if (v == null) throw new Error(`@hyperledger/fabric-protos has no ${name}`);
  return v;
}
const isMessageClass = (v) => typeof v === 'function' && typeof v.serializeBinaryToWriter === 'function';
const msgClass = (name) => {
  const c = lookup(name);
  if (!isMessageClass(c)) throw new Error(`${name} is not a message`);
  return c;
};
const fieldsOf = (type) => (msgClass(type), SCHEMA[type] || []); // messages without fields have none
const isMessageField = (f) => f.ref !== null && isMessageClass(lookup(f.ref));
const isEnumField = (f) => f.ref !== null && !isMessageField(f);
const oneofNumbers = (type) => new Set((msgClass(type).oneofGroups_ || []).flat());
const setterOf = (f) => 'set' + f.getter.slice(3);

// ---------------------------------------------------------------------------------------------
// Building messages through the reference's setters, from plain objects keyed by field name.

const b = (s) => new Uint8Array(Buffer.from(s, 'utf8'));
const hex = (h) => new Uint8Array(Buffer.from(h, 'hex'));
const sha256 = (s) => new Uint8Array(crypto.createHash('sha256').update(s).digest());
const ts = (seconds, nanos) => ({ seconds, nanos });

function build(type, obj) {
  if (obj instanceof jspb.Message) return obj;
  const Cls = msgClass(type);
  const msg = new Cls();
  const fields = fieldsOf(type);
  for (const [name, value] of Object.entries(obj)) {
    const f = fields.find((x) => x.name === name);
    if (!f) throw new Error(`${type} has no field ${name}`);
    const one = (v) => (isMessageField(f) ? build(f.ref, v) : scalar(f, v));
    if (f.label === 'map') {
      const map = msg[f.getter]();
      const entries = Array.isArray(value) ? value : Object.entries(value);
      for (const [k, v] of entries) map.set(f.keyType === 'string' ? k : Number(k), one(v));
    } else if (f.label === 'repeated') {
      msg[setterOf(f)](value.map(one));
    } else {
      msg[setterOf(f)](one(value));
    }
  }
  return msg;
}

function scalar(f, v) {
  if (isEnumField(f) && typeof v === 'string') {
    const e = lookup(f.ref);
    if (!(v in e)) throw new Error(`${f.ref} has no value ${v}`);
    return e[v];
  }
  return v;
}

/** The reference's encoding of `obj` as `type`. */
const enc = (type, obj) => build(type, obj).serializeBinary();

// ---------------------------------------------------------------------------------------------
// Flattening what the reference decodes, and recording coverage.
//
// Paths start at `$`; `.name` is a field, `[i]` a repeated element, `{key}` a map entry, and
// `name#` the number of entries of a repeated field or map. Values: `msg` (a message is present),
// `str:<text>`, `bytes:<hex>`, `int:<decimal>` (integers and enums), `bool:<true|false>`,
// `len:<n>`. Singular scalars are listed even at their default; oneof members only when set.

const snake = (name) => name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();
const asBytes = (v) => Buffer.from(typeof v === 'string' ? Buffer.from(v, 'base64') : v);

function leaf(f, v) {
  switch (f.type) {
    case 'string':
      return { flat: `str:${v}`, canon: Buffer.from(v, 'utf8').toString('hex'), set: v !== '' };
    case 'bytes': {
      const h = asBytes(v).toString('hex');
      return { flat: `bytes:${h}`, canon: h, set: h !== '' };
    }
    case 'bool':
      return { flat: `bool:${v}`, canon: v ? '1' : '0', set: v === true };
    default:
      if (!Number.isSafeInteger(v)) throw new Error(`${f.name}: ${v} is not a safe integer`);
      return { flat: `int:${v}`, canon: String(v), set: v !== 0 };
  }
}

class Coverage {
  constructor() {
    this.set = new Map(); // "type.field" -> true
    this.distinct = new Map(); // "type.a|b" -> true
    this.seen = new Set(); // message types seen
  }
  mark(key, map) {
    map.set(key, map.get(key) || false);
  }
}

/** Flattens `msg` (of `type`) into `out`; returns its canonical form for swap detection. */
function flatten(msg, type, p, out, cov) {
  out[p] = 'msg';
  cov.seen.add(type);
  const oneofs = oneofNumbers(type);
  const canon = {};
  for (const f of fieldsOf(type)) {
    const key = `${p}.${snake(f.name)}`;
    const id = `${type}.${f.name}`;
    let isSet = false;
    if (f.label === 'map') {
      const entries = [];
      msg[f.getter]().forEach((v, k) => entries.push([k, v]));
      entries.sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
      out[`${key}#`] = `len:${entries.length}`;
      const c = entries.map(([k, v]) => {
        const ek = `${key}{${k}}`;
        if (isMessageField(f)) return [String(k), flatten(v, f.ref, ek, out, cov)];
        const l = leaf(f, v);
        out[ek] = l.flat;
        return [String(k), l.canon];
      });
      canon[f.name] = JSON.stringify(c);
      isSet = entries.length >= 2;
    } else if (f.label === 'repeated') {
      const list = msg[f.getter]();
      out[`${key}#`] = `len:${list.length}`;
      const c = list.map((v, i) => {
        const ek = `${key}[${i}]`;
        if (isMessageField(f)) return flatten(v, f.ref, ek, out, cov);
        const l = leaf(f, v);
        out[ek] = l.flat;
        return l.canon;
      });
      canon[f.name] = JSON.stringify(c);
      isSet = list.length >= 2;
    } else if (isMessageField(f)) {
      const v = msg[f.getter]();
      if (v != null) {
        canon[f.name] = `msg:${flatten(v, f.ref, key, out, cov)}`;
        isSet = true;
      } else {
        canon[f.name] = 'absent';
      }
    } else if (oneofs.has(f.number) && jspb.Message.getField(msg, f.number) == null) {
      canon[f.name] = 'absent';
    } else {
      const l = leaf(f, msg[f.getter]());
      out[key] = l.flat;
      canon[f.name] = l.canon;
      isSet = l.set || oneofs.has(f.number);
    }
    cov.mark(id, cov.set);
    if (isSet) cov.set.set(id, true);
  }
  // Pairs of fields that share a wire type must differ somewhere, or a swap would go unseen.
  const fields = fieldsOf(type);
  for (let i = 0; i < fields.length; i++) {
    for (let j = i + 1; j < fields.length; j++) {
      const [x, y] = [fields[i], fields[j]];
      if (wireClass(x) !== wireClass(y)) continue;
      const id = `${type}.${x.name}|${y.name}`;
      cov.mark(id, cov.distinct);
      if (canon[x.name] !== canon[y.name]) cov.distinct.set(id, true);
    }
  }
  return Buffer.from(msg.serializeBinary()).toString('hex');
}

const VARINT = new Set(['int32', 'int64', 'uint32', 'uint64', 'bool']);
const wireClass = (f) =>
  f.label === 'optional' && (VARINT.has(f.type) || isEnumField(f)) ? 'varint' : 'len';

// ---------------------------------------------------------------------------------------------
// The vectors.

const T0 = ts(1700000000, 123456789);
const T1 = ts(1700000123, 987654321);
const T2 = ts(1600000000, 5);

const CERT = b('-----BEGIN CERTIFICATE-----\nMIIBweft/Org1\n-----END CERTIFICATE-----\n');
const TLS_HASH = sha256('client-tls-cert.der');

const channelHeader = {
  type: proto.common.HeaderType.ENDORSER_TRANSACTION, // an int32 on the wire
  version: 1,
  timestamp: T0,
  channel_id: 'mychannel',
  tx_id: '4f3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39281706f5e',
  epoch: 42,
  extension: enc('protos.ChaincodeHeaderExtension', { chaincode_id: { name: 'basic' } }),
  tls_cert_hash: TLS_HASH,
};
const serializedIdentity = { mspid: 'Org1MSP', id_bytes: CERT };
const signatureHeader = {
  creator: enc('msp.SerializedIdentity', serializedIdentity),
  nonce: hex('0102030405060708090a0b0c0d0e0f101112131415161718'),
};
const header = {
  channel_header: enc('common.ChannelHeader', channelHeader),
  signature_header: enc('common.SignatureHeader', signatureHeader),
};
const payload = { header, data: b('transaction-bytes') };
const envelope = {
  payload: enc('common.Payload', payload),
  signature: hex('3045022100aa022000bb'),
};

const principalRole = {
  principal_classification: 'ROLE',
  principal: enc('common.MSPRole', { msp_identifier: 'Org1MSP', role: 'PEER' }),
};
const principalOu = {
  principal_classification: 'ORGANIZATION_UNIT',
  principal: enc('common.OrganizationUnit', {
    msp_identifier: 'Org2MSP',
    organizational_unit_identifier: 'admin',
  }),
};
const signaturePolicyEnvelope = {
  version: 7,
  rule: {
    n_out_of: {
      n: 2,
      rules: [
        { signed_by: 0 },
        { signed_by: 1 },
        { n_out_of: { n: 1, rules: [{ signed_by: 3 }, { signed_by: 2 }] } },
      ],
    },
  },
  identities: [principalRole, principalOu],
};
const policy = {
  type: proto.common.Policy.PolicyType.SIGNATURE,
  value: enc('common.SignaturePolicyEnvelope', signaturePolicyEnvelope),
};
const implicitPolicy = {
  type: proto.common.Policy.PolicyType.IMPLICIT_META,
  value: enc('common.ImplicitMetaPolicy', { sub_policy: 'Admins', rule: 'MAJORITY' }),
};

const configGroup = {
  version: 3,
  groups: [
    [
      'Application',
      {
        version: 1,
        mod_policy: 'Admins',
        values: [
          ['Capabilities', { version: 2, value: b('V2_5'), mod_policy: 'Admins' }],
          ['Z', { version: 4, value: b('z-value'), mod_policy: 'Writers' }],
        ],
      },
    ],
    [
      'Orderer',
      {
        version: 5,
        mod_policy: 'Writers',
        policies: [
          ['Admins', { version: 6, policy: implicitPolicy, mod_policy: 'Readers' }],
          ['Writers', { version: 8, policy, mod_policy: '' }],
        ],
      },
    ],
  ],
  values: [
    ['BlockDataHashingStructure', { version: 9, value: hex('08ffffffff0f'), mod_policy: 'Admins' }],
    ['HashingAlgorithm', { version: 10, value: b('SHA256'), mod_policy: 'Writers' }],
  ],
  policies: [
    ['Admins', { version: 11, policy: implicitPolicy, mod_policy: 'Admins' }],
    ['Readers', { version: 12, policy, mod_policy: 'Readers' }],
  ],
  mod_policy: 'Admins',
};

const response = { status: 200, message: 'OK: asset created', payload: b('{"ID":"asset1"}') };
const chaincodeId = { path: 'github.com/example/basic', name: 'basic', version: '1.0' };
const chaincodeInput = {
  args: [b('CreateAsset'), b('asset1'), hex('00ff10')],
  decorations: [
    ['a-decoration', b('first')],
    ['b-decoration', hex('0001')],
  ],
  is_init: true,
};
const chaincodeSpec = { type: 'GOLANG', chaincode_id: chaincodeId, input: chaincodeInput, timeout: -30 };
const chaincodeEvent = {
  chaincode_id: 'basic',
  tx_id: 'tx-evt-1',
  event_name: 'AssetCreated',
  payload: b('{"ID":"asset1"}'),
};
const chaincodeEvent2 = {
  chaincode_id: 'fabcar',
  tx_id: 'tx-evt-2',
  event_name: 'CarSold',
  payload: hex('deadbeef'),
};

const proposal = {
  header: enc('common.Header', header),
  payload: enc('protos.ChaincodeProposalPayload', {
    input: enc('protos.ChaincodeInvocationSpec', { chaincode_spec: chaincodeSpec }),
    TransientMap: [
      ['price', b('100')],
      ['secret', hex('0badc0de')],
    ],
  }),
  extension: b('proposal-extension'),
};
const signedProposal = { proposal_bytes: enc('protos.Proposal', proposal), signature: hex('304402207f') };
const endorsement = {
  endorser: enc('msp.SerializedIdentity', serializedIdentity),
  signature: hex('3044022011'),
};
const endorsement2 = {
  endorser: enc('msp.SerializedIdentity', { mspid: 'Org2MSP', id_bytes: b('org2-cert') }),
  signature: hex('3044022022'),
};
const chaincodeInterest = {
  chaincodes: [
    {
      name: 'basic',
      collection_names: ['collA', 'collB'],
      no_private_reads: true,
      no_public_writes: false,
      key_policies: [
        signaturePolicyEnvelope,
        { version: 1, rule: { signed_by: 4 }, identities: [principalOu, principalRole] },
      ],
      disregard_namespace_policy: true,
    },
    {
      name: 'lscc',
      collection_names: ['collC', 'collD'],
      no_private_reads: true,
      no_public_writes: true,
      disregard_namespace_policy: false,
    },
  ],
};

const version = { block_num: 1099511627776 + 17, tx_num: 3 };
const kvRead = (key, v) => ({ key, version: v });
const kvrwset = {
  reads: [kvRead('asset1', version), kvRead('asset2', { block_num: 9, tx_num: 1 })],
  range_queries_info: [
    {
      start_key: 'a',
      end_key: 'z',
      itr_exhausted: true,
      raw_reads: {
        kv_reads: [kvRead('b', { block_num: 5, tx_num: 6 }), kvRead('c', { block_num: 7, tx_num: 8 })],
      },
    },
    {
      start_key: 'k0',
      end_key: 'k9',
      itr_exhausted: false,
      reads_merkle_hashes: { max_degree: 50, max_level: 2, max_level_hashes: [sha256('h1'), sha256('h2')] },
    },
  ],
  writes: [
    { key: 'asset1', is_delete: false, value: b('{"ID":"asset1"}') },
    { key: 'asset3', is_delete: true, value: b('') },
  ],
  metadata_writes: [
    {
      key: 'asset1',
      entries: [
        { name: 'VALIDATION_PARAMETER', value: b('policy') },
        { name: 'other', value: hex('01') },
      ],
    },
    {
      key: 'asset2',
      entries: [
        { name: 'e1', value: hex('02') },
        { name: 'e2', value: hex('03') },
      ],
    },
  ],
};
const hashedRwset = {
  hashed_reads: [
    { key_hash: sha256('k1'), version },
    { key_hash: sha256('k2'), version: { block_num: 2, tx_num: 4 } },
  ],
  hashed_writes: [
    { key_hash: sha256('k3'), is_delete: true, value_hash: sha256('v3'), is_purge: false },
    { key_hash: sha256('k4'), is_delete: false, value_hash: sha256('v4'), is_purge: true },
  ],
  metadata_writes: [
    {
      key_hash: sha256('k5'),
      entries: [
        { name: 'm1', value: hex('11') },
        { name: 'm2', value: hex('22') },
      ],
    },
    {
      key_hash: sha256('k6'),
      entries: [
        { name: 'm3', value: hex('33') },
        { name: 'm4', value: hex('44') },
      ],
    },
  ],
};
const txRwset = {
  data_model: 'KV',
  ns_rwset: [
    {
      namespace: 'basic',
      rwset: enc('kvrwset.KVRWSet', kvrwset),
      collection_hashed_rwset: [
        {
          collection_name: 'collA',
          hashed_rwset: enc('kvrwset.HashedRWSet', hashedRwset),
          pvt_rwset_hash: sha256('pvtA'),
        },
        { collection_name: 'collB', hashed_rwset: b('hashed-b'), pvt_rwset_hash: sha256('pvtB') },
      ],
    },
    { namespace: '_lifecycle', rwset: b('lifecycle-rwset') },
  ],
};
const txPvtRwset = {
  data_model: 'KV',
  ns_pvt_rwset: [
    {
      namespace: 'basic',
      collection_pvt_rwset: [
        { collection_name: 'collA', rwset: b('pvt-a') },
        { collection_name: 'collB', rwset: b('pvt-b') },
      ],
    },
    {
      namespace: 'marbles',
      collection_pvt_rwset: [
        { collection_name: 'collC', rwset: b('pvt-c') },
        { collection_name: 'collD', rwset: b('pvt-d') },
      ],
    },
  ],
};

const chaincodeAction = {
  results: enc('rwset.TxReadWriteSet', txRwset),
  events: enc('protos.ChaincodeEvent', chaincodeEvent),
  response,
  chaincode_id: chaincodeId,
};
const proposalResponsePayload = {
  proposal_hash: sha256('proposal'),
  extension: enc('protos.ChaincodeAction', chaincodeAction),
};
const chaincodeEndorsedAction = {
  proposal_response_payload: enc('protos.ProposalResponsePayload', proposalResponsePayload),
  endorsements: [endorsement, endorsement2],
};
const chaincodeActionPayload = {
  chaincode_proposal_payload: b('cc-proposal-payload'),
  action: chaincodeEndorsedAction,
};
const transaction = {
  actions: [
    {
      header: enc('common.SignatureHeader', signatureHeader),
      payload: enc('protos.ChaincodeActionPayload', chaincodeActionPayload),
    },
    { header: b('action-2-header'), payload: b('action-2-payload') },
  ],
};

const blockHeader = {
  number: 4503599627370495,
  previous_hash: sha256('block-4'),
  data_hash: sha256('data-5'),
};
const metadataSignature = {
  signature_header: enc('common.SignatureHeader', signatureHeader),
  signature: hex('30450221009a'),
  identifier_header: enc('common.IdentifierHeader', { identifier: 7, nonce: hex('a1a2') }),
};
const metadata = {
  value: enc('common.OrdererBlockMetadata', { last_config: { index: 2 }, consenter_metadata: b('raft') }),
  signatures: [
    metadataSignature,
    { signature_header: b('sh-2'), signature: b('sig-2'), identifier_header: b('ih-2') },
  ],
};
const block = {
  header: blockHeader,
  data: { data: [enc('common.Envelope', envelope), b('second-envelope')] },
  metadata: {
    metadata: [
      enc('common.Metadata', metadata),
      enc('common.Metadata', { value: enc('common.LastConfig', { index: 2 }) }),
      hex('0000'),
      b(''),
    ],
  },
};
const smallBlock = {
  header: { number: 6, previous_hash: sha256('block-5'), data_hash: sha256('data-6') },
  data: { data: [b('env-a'), b('env-b')] },
  metadata: { metadata: [b('m0'), b('m1')] },
};

const seekSpecified = { specified: { number: 123456789012 } };

const filteredBlock = {
  channel_id: 'mychannel',
  number: 77,
  filtered_transactions: [
    {
      txid: 'tx-1',
      type: 'ENDORSER_TRANSACTION',
      tx_validation_code: 'MVCC_READ_CONFLICT',
      transaction_actions: {
        chaincode_actions: [{ chaincode_event: chaincodeEvent }, { chaincode_event: chaincodeEvent2 }],
      },
    },
    { txid: 'tx-2', type: 'CONFIG', tx_validation_code: 'INVALID_OTHER_REASON' },
  ],
};

const V = [];
const vec = (name, type, value) => V.push({ name, type, value });

// common
vec('envelope', 'common.Envelope', envelope);
vec('payload', 'common.Payload', payload);
vec('header', 'common.Header', header);
vec('channel_header', 'common.ChannelHeader', channelHeader);
vec('channel_header_config_update', 'common.ChannelHeader', {
  type: proto.common.HeaderType.CONFIG_UPDATE,
  version: 0,
  timestamp: T2,
  channel_id: 'syschan',
  tx_id: '',
  epoch: 1,
  extension: b(''),
  tls_cert_hash: sha256('other'),
});
vec('signature_header', 'common.SignatureHeader', signatureHeader);
vec('identifier_header', 'common.IdentifierHeader', { identifier: 300, nonce: hex('00ff') });
vec('block', 'common.Block', block);
vec('block_small', 'common.Block', smallBlock);
vec('block_header', 'common.BlockHeader', blockHeader);
vec('block_data', 'common.BlockData', block.data);
vec('block_metadata', 'common.BlockMetadata', block.metadata);
vec('metadata', 'common.Metadata', metadata);
vec('metadata_signature', 'common.MetadataSignature', metadataSignature);
vec('last_config', 'common.LastConfig', { index: 18446744 });
vec('orderer_block_metadata', 'common.OrdererBlockMetadata', {
  last_config: { index: 9 },
  consenter_metadata: b('consenter'),
});
vec('config_envelope', 'common.ConfigEnvelope', {
  config: { sequence: 13, channel_group: configGroup },
  last_update: envelope,
});
vec('config', 'common.Config', { sequence: 14, channel_group: configGroup });
vec('config_group', 'common.ConfigGroup', configGroup);
vec('config_value', 'common.ConfigValue', { version: 15, value: b('value'), mod_policy: 'Admins' });
vec('config_policy', 'common.ConfigPolicy', { version: 16, policy, mod_policy: 'Admins' });
vec('config_update', 'common.ConfigUpdate', {
  channel_id: 'mychannel',
  read_set: {
    version: 1,
    mod_policy: 'Readers',
    values: [
      ['A', { version: 1 }],
      ['B', { version: 2 }],
    ],
  },
  write_set: configGroup,
  isolated_data: [
    ['isolated-a', b('data-a')],
    ['isolated-b', hex('00')],
  ],
});
const configUpdateEnvelope = {
  config_update: enc('common.ConfigUpdate', { channel_id: 'mychannel', write_set: { version: 2 } }),
  signatures: [
    { signature_header: enc('common.SignatureHeader', signatureHeader), signature: hex('3045022100c1') },
    { signature_header: b('sig-header-2'), signature: hex('3045022100c2') },
  ],
};
vec('config_update_envelope', 'common.ConfigUpdateEnvelope', configUpdateEnvelope);
vec('config_signature', 'common.ConfigSignature', configUpdateEnvelope.signatures[0]);
vec('policy_signature', 'common.Policy', policy);
vec('policy_implicit_meta', 'common.Policy', implicitPolicy);
vec('signature_policy_envelope', 'common.SignaturePolicyEnvelope', signaturePolicyEnvelope);
vec('signature_policy_signed_by', 'common.SignaturePolicy', { signed_by: 5 });
vec('signature_policy_signed_by_zero', 'common.SignaturePolicy', { signed_by: 0 });
vec('implicit_meta_policy', 'common.ImplicitMetaPolicy', { sub_policy: 'Writers', rule: 'ALL' });
vec('application_policy_signature', 'common.ApplicationPolicy', {
  signature_policy: signaturePolicyEnvelope,
});
vec('application_policy_reference', 'common.ApplicationPolicy', {
  channel_config_policy_reference: '/Channel/Application/Endorsement',
});
vec('msp_principal', 'common.MSPPrincipal', principalOu);
vec('msp_principal_combined', 'common.MSPPrincipal', {
  principal_classification: 'COMBINED',
  principal: enc('common.CombinedPrincipal', { principals: [principalRole, principalOu] }),
});
vec('msp_role', 'common.MSPRole', { msp_identifier: 'Org1MSP', role: 'ADMIN' });
vec('organization_unit', 'common.OrganizationUnit', {
  msp_identifier: 'Org1MSP',
  organizational_unit_identifier: 'peer',
  certifiers_identifier: sha256('certifiers'),
});
vec('msp_identity_anonymity', 'common.MSPIdentityAnonymity', { anonymity_type: 'ANONYMOUS' });
vec('combined_principal', 'common.CombinedPrincipal', { principals: [principalOu, principalRole] });

// msp
vec('serialized_identity', 'msp.SerializedIdentity', serializedIdentity);

// protos: the chaincode stream
const ccMsg = (type, extra) => ({ type, timestamp: T1, txid: 'tx-cc-1', channel_id: 'mychannel', ...extra });
vec(
  'chaincode_message_transaction',
  'protos.ChaincodeMessage',
  ccMsg('TRANSACTION', {
    payload: enc('protos.ChaincodeInput', chaincodeInput),
    proposal: signedProposal,
    chaincode_event: chaincodeEvent,
  }),
);
vec('chaincode_message_register', 'protos.ChaincodeMessage', {
  type: 'REGISTER',
  payload: enc('protos.ChaincodeID', { name: 'basic_1.0:abc123' }),
});
vec(
  'chaincode_message_get_state',
  'protos.ChaincodeMessage',
  ccMsg('GET_STATE', { payload: enc('protos.GetState', { key: 'asset1', collection: '' }) }),
);
vec(
  'chaincode_message_put_state',
  'protos.ChaincodeMessage',
  ccMsg('PUT_STATE', {
    payload: enc('protos.PutState', { key: 'asset1', value: b('v'), collection: 'collA' }),
  }),
);
vec(
  'chaincode_message_response',
  'protos.ChaincodeMessage',
  ccMsg('RESPONSE', { payload: b('state-value') }),
);
vec(
  'chaincode_message_completed',
  'protos.ChaincodeMessage',
  ccMsg('COMPLETED', {
    payload: enc('protos.Response', response),
    chaincode_event: chaincodeEvent2,
  }),
);
vec('chaincode_message_error', 'protos.ChaincodeMessage', ccMsg('ERROR', { payload: b('no such key') }));
vec(
  'chaincode_message_purge',
  'protos.ChaincodeMessage',
  ccMsg('PURGE_PRIVATE_DATA', { payload: enc('protos.PurgePrivateState', { key: 'k', collection: 'c' }) }),
);
vec('chaincode_message_keepalive', 'protos.ChaincodeMessage', { type: 'KEEPALIVE' });
vec('get_state', 'protos.GetState', { key: 'asset1', collection: 'collA' });
vec('put_state', 'protos.PutState', { key: 'asset2', value: b('{"ID":"asset2"}'), collection: 'collB' });
vec('del_state', 'protos.DelState', { key: 'asset3', collection: 'collC' });
vec('put_state_metadata', 'protos.PutStateMetadata', {
  key: 'asset4',
  collection: 'collD',
  metadata: { metakey: 'VALIDATION_PARAMETER', value: b('ep') },
});
vec('get_state_metadata', 'protos.GetStateMetadata', { key: 'asset5', collection: 'collE' });
vec('purge_private_state', 'protos.PurgePrivateState', { key: 'asset6', collection: 'collF' });
vec('get_state_by_range', 'protos.GetStateByRange', {
  startKey: 'asset0',
  endKey: 'asset9',
  collection: 'collG',
  metadata: enc('protos.QueryMetadata', { pageSize: 10, bookmark: 'bm' }),
});
vec('get_query_result', 'protos.GetQueryResult', {
  query: '{"selector":{"owner":"tom"}}',
  collection: 'collH',
  metadata: b('query-metadata'),
});
vec('query_metadata', 'protos.QueryMetadata', { pageSize: 25, bookmark: 'g1AAAA' });
vec('query_response', 'protos.QueryResponse', {
  results: [
    { resultBytes: enc('queryresult.KV', { namespace: 'basic', key: 'asset1', value: b('v1') }) },
    { resultBytes: b('second-result') },
  ],
  has_more: true,
  id: 'iterator-1',
  metadata: enc('protos.QueryResponseMetadata', { fetched_records_count: 2, bookmark: 'bm2' }),
});
vec('query_response_metadata', 'protos.QueryResponseMetadata', { fetched_records_count: 3, bookmark: 'bm3' });
vec('query_state_next', 'protos.QueryStateNext', { id: 'iterator-2' });
vec('query_state_close', 'protos.QueryStateClose', { id: 'iterator-3' });
vec('query_result_bytes', 'protos.QueryResultBytes', { resultBytes: b('result') });
vec('get_history_for_key', 'protos.GetHistoryForKey', { key: 'asset7' });
vec('state_metadata', 'protos.StateMetadata', { metakey: 'VALIDATION_PARAMETER', value: b('policy-bytes') });
vec('state_metadata_result', 'protos.StateMetadataResult', {
  entries: [
    { metakey: 'a', value: b('1') },
    { metakey: 'b', value: b('2') },
  ],
});

// protos: chaincode, proposals, responses, transactions
vec('chaincode_id', 'protos.ChaincodeID', chaincodeId);
vec('chaincode_input', 'protos.ChaincodeInput', chaincodeInput);
vec('chaincode_spec', 'protos.ChaincodeSpec', chaincodeSpec);
vec('chaincode_spec_node', 'protos.ChaincodeSpec', {
  type: 'NODE',
  chaincode_id: { name: 'n' },
  timeout: 300,
});
vec('chaincode_deployment_spec', 'protos.ChaincodeDeploymentSpec', {
  chaincode_spec: chaincodeSpec,
  code_package: hex('1f8b0800'),
});
vec('chaincode_invocation_spec', 'protos.ChaincodeInvocationSpec', { chaincode_spec: chaincodeSpec });
vec('lifecycle_event', 'protos.LifecycleEvent', { chaincode_name: 'basic' });
vec('chaincode_event', 'protos.ChaincodeEvent', chaincodeEvent);
vec('signed_proposal', 'protos.SignedProposal', signedProposal);
vec('proposal', 'protos.Proposal', proposal);
vec('chaincode_header_extension', 'protos.ChaincodeHeaderExtension', { chaincode_id: chaincodeId });
vec('chaincode_proposal_payload', 'protos.ChaincodeProposalPayload', {
  input: enc('protos.ChaincodeInvocationSpec', { chaincode_spec: chaincodeSpec }),
  TransientMap: [
    ['price', b('100')],
    ['secret', hex('0badc0de')],
  ],
});
vec('chaincode_action', 'protos.ChaincodeAction', chaincodeAction);
vec('proposal_response', 'protos.ProposalResponse', {
  version: 1,
  timestamp: T0,
  response,
  payload: enc('protos.ProposalResponsePayload', proposalResponsePayload),
  endorsement,
  interest: chaincodeInterest,
});
vec('response', 'protos.Response', { status: 500, message: 'chaincode error', payload: b('details') });
vec('proposal_response_payload', 'protos.ProposalResponsePayload', proposalResponsePayload);
vec('endorsement', 'protos.Endorsement', endorsement);
vec('chaincode_interest', 'protos.ChaincodeInterest', chaincodeInterest);
vec('chaincode_call', 'protos.ChaincodeCall', chaincodeInterest.chaincodes[0]);
vec('transaction', 'protos.Transaction', transaction);
vec('transaction_action', 'protos.TransactionAction', transaction.actions[0]);
vec('chaincode_action_payload', 'protos.ChaincodeActionPayload', chaincodeActionPayload);
vec('chaincode_endorsed_action', 'protos.ChaincodeEndorsedAction', chaincodeEndorsedAction);
vec('processed_transaction', 'protos.ProcessedTransaction', {
  transactionEnvelope: envelope,
  validationCode: 11,
});

// protos: peer delivery
vec('filtered_block', 'protos.FilteredBlock', filteredBlock);
vec('filtered_transaction', 'protos.FilteredTransaction', filteredBlock.filtered_transactions[0]);
vec('filtered_transaction_not_validated', 'protos.FilteredTransaction', {
  txid: 'tx-3',
  type: 'ENDORSER_TRANSACTION',
  tx_validation_code: 'NOT_VALIDATED',
});
vec(
  'filtered_transaction_actions',
  'protos.FilteredTransactionActions',
  filteredBlock.filtered_transactions[0].transaction_actions,
);
vec('filtered_chaincode_action', 'protos.FilteredChaincodeAction', { chaincode_event: chaincodeEvent2 });
vec('block_and_private_data', 'protos.BlockAndPrivateData', {
  block: smallBlock,
  private_data_map: [
    [1, txPvtRwset],
    [3, { data_model: 'KV', ns_pvt_rwset: [{ namespace: 'x' }] }],
  ],
});
vec('peer_deliver_response_status', 'protos.DeliverResponse', { status: 'NOT_FOUND' });
vec('peer_deliver_response_block', 'protos.DeliverResponse', { block: smallBlock });
vec('peer_deliver_response_filtered_block', 'protos.DeliverResponse', { filtered_block: filteredBlock });
vec('peer_deliver_response_block_and_private_data', 'protos.DeliverResponse', {
  block_and_private_data: {
    block: smallBlock,
    private_data_map: [
      [1, txPvtRwset],
      [2, txPvtRwset],
    ],
  },
});

// rwset, kvrwset
vec('tx_read_write_set', 'rwset.TxReadWriteSet', txRwset);
vec('ns_read_write_set', 'rwset.NsReadWriteSet', txRwset.ns_rwset[0]);
vec(
  'collection_hashed_read_write_set',
  'rwset.CollectionHashedReadWriteSet',
  txRwset.ns_rwset[0].collection_hashed_rwset[0],
);
vec('tx_pvt_read_write_set', 'rwset.TxPvtReadWriteSet', txPvtRwset);
vec('ns_pvt_read_write_set', 'rwset.NsPvtReadWriteSet', txPvtRwset.ns_pvt_rwset[0]);
vec(
  'collection_pvt_read_write_set',
  'rwset.CollectionPvtReadWriteSet',
  txPvtRwset.ns_pvt_rwset[0].collection_pvt_rwset[0],
);
vec('kv_rw_set', 'kvrwset.KVRWSet', kvrwset);
vec('hashed_rw_set', 'kvrwset.HashedRWSet', hashedRwset);
vec('version', 'kvrwset.Version', version);
vec('kv_read', 'kvrwset.KVRead', kvrwset.reads[0]);
vec('kv_write', 'kvrwset.KVWrite', { key: 'asset9', is_delete: true, value: b('tombstone?') });
vec('kv_metadata_write', 'kvrwset.KVMetadataWrite', kvrwset.metadata_writes[0]);
vec('kv_metadata_entry', 'kvrwset.KVMetadataEntry', { name: 'VALIDATION_PARAMETER', value: b('v') });
vec('kv_read_hash', 'kvrwset.KVReadHash', hashedRwset.hashed_reads[0]);
vec('kv_write_hash', 'kvrwset.KVWriteHash', hashedRwset.hashed_writes[1]);
vec('kv_metadata_write_hash', 'kvrwset.KVMetadataWriteHash', hashedRwset.metadata_writes[0]);
vec('range_query_info_raw_reads', 'kvrwset.RangeQueryInfo', kvrwset.range_queries_info[0]);
vec('range_query_info_merkle', 'kvrwset.RangeQueryInfo', kvrwset.range_queries_info[1]);
vec('query_reads', 'kvrwset.QueryReads', kvrwset.range_queries_info[0].raw_reads);
vec(
  'query_reads_merkle_summary',
  'kvrwset.QueryReadsMerkleSummary',
  kvrwset.range_queries_info[1].reads_merkle_hashes,
);

// queryresult
vec('kv', 'queryresult.KV', { namespace: 'basic', key: 'asset1', value: b('{"ID":"asset1"}') });
vec('key_modification', 'queryresult.KeyModification', {
  tx_id: 'tx-hist-1',
  value: b('old'),
  timestamp: T2,
  is_delete: true,
});

// orderer
vec('seek_info_specified_newest', 'orderer.SeekInfo', {
  start: seekSpecified,
  stop: { newest: {} },
  behavior: 'FAIL_IF_NOT_READY',
  error_response: 'BEST_EFFORT',
  content_type: 'HEADER_WITH_SIG',
});
vec('seek_info_oldest_specified', 'orderer.SeekInfo', {
  start: { oldest: {} },
  stop: { specified: { number: 9 } },
  behavior: 'FAIL_IF_NOT_READY',
  error_response: 'STRICT',
  content_type: 'BLOCK',
});
vec('seek_info_newest_max', 'orderer.SeekInfo', {
  start: { newest: {} },
  stop: { specified: { number: Number.MAX_SAFE_INTEGER } },
  behavior: 'BLOCK_UNTIL_READY',
  error_response: 'BEST_EFFORT',
  content_type: 'BLOCK',
});
vec('seek_info_next_commit', 'orderer.SeekInfo', {
  start: { next_commit: {} },
  stop: { oldest: {} },
  behavior: 'BLOCK_UNTIL_READY',
  error_response: 'STRICT',
  content_type: 'HEADER_WITH_SIG',
});
vec('seek_position_newest', 'orderer.SeekPosition', { newest: {} });
vec('seek_position_oldest', 'orderer.SeekPosition', { oldest: {} });
vec('seek_position_specified', 'orderer.SeekPosition', seekSpecified);
vec('seek_position_next_commit', 'orderer.SeekPosition', { next_commit: {} });
vec('seek_specified', 'orderer.SeekSpecified', { number: 1 });
vec('seek_newest', 'orderer.SeekNewest', {});
vec('seek_oldest', 'orderer.SeekOldest', {});
vec('seek_next_commit', 'orderer.SeekNextCommit', {});
vec('broadcast_response', 'orderer.BroadcastResponse', {
  status: 'SERVICE_UNAVAILABLE',
  info: 'no Raft leader',
});
vec('orderer_deliver_response_status', 'orderer.DeliverResponse', { status: 'SUCCESS' });
vec('orderer_deliver_response_block', 'orderer.DeliverResponse', { block });

// gateway
vec('endorse_request', 'gateway.EndorseRequest', {
  transaction_id: 'tx-gw-1',
  channel_id: 'mychannel',
  proposed_transaction: signedProposal,
  endorsing_organizations: ['Org1MSP', 'Org2MSP'],
});
vec('endorse_response', 'gateway.EndorseResponse', { prepared_transaction: envelope });
vec('submit_request', 'gateway.SubmitRequest', {
  transaction_id: 'tx-gw-2',
  channel_id: 'mychannel',
  prepared_transaction: envelope,
});
vec('submit_response', 'gateway.SubmitResponse', {});
const commitStatusRequest = {
  transaction_id: 'tx-gw-3',
  channel_id: 'mychannel',
  identity: enc('msp.SerializedIdentity', serializedIdentity),
};
vec('signed_commit_status_request', 'gateway.SignedCommitStatusRequest', {
  request: enc('gateway.CommitStatusRequest', commitStatusRequest),
  signature: hex('3045022100d1'),
});
vec('commit_status_request', 'gateway.CommitStatusRequest', commitStatusRequest);
vec('commit_status_response', 'gateway.CommitStatusResponse', {
  result: 'ENDORSEMENT_POLICY_FAILURE',
  block_number: 1234567,
});
vec('commit_status_response_invalid_other', 'gateway.CommitStatusResponse', {
  result: 'INVALID_OTHER_REASON',
  block_number: 1,
});
vec('evaluate_request', 'gateway.EvaluateRequest', {
  transaction_id: 'tx-gw-4',
  channel_id: 'mychannel',
  proposed_transaction: signedProposal,
  target_organizations: ['Org3MSP', 'Org4MSP'],
});
vec('evaluate_response', 'gateway.EvaluateResponse', { result: response });
const chaincodeEventsRequest = {
  channel_id: 'mychannel',
  chaincode_id: 'basic',
  identity: enc('msp.SerializedIdentity', serializedIdentity),
  start_position: seekSpecified,
  after_transaction_id: 'tx-gw-5',
};
vec('signed_chaincode_events_request', 'gateway.SignedChaincodeEventsRequest', {
  request: enc('gateway.ChaincodeEventsRequest', chaincodeEventsRequest),
  signature: hex('3045022100e1'),
});
vec('chaincode_events_request', 'gateway.ChaincodeEventsRequest', chaincodeEventsRequest);
vec('chaincode_events_request_next_commit', 'gateway.ChaincodeEventsRequest', {
  channel_id: 'c',
  chaincode_id: 'cc',
  start_position: { next_commit: {} },
});
vec('chaincode_events_response', 'gateway.ChaincodeEventsResponse', {
  events: [chaincodeEvent, chaincodeEvent2],
  block_number: 88,
});
vec('error_detail', 'gateway.ErrorDetail', {
  address: 'peer0.org1.example.com:7051',
  msp_id: 'Org1MSP',
  message: 'chaincode response 500',
});
vec('proposed_transaction', 'gateway.ProposedTransaction', {
  transaction_id: 'tx-gw-6',
  proposal: signedProposal,
  endorsing_organizations: ['Org1MSP', 'Org5MSP'],
});
vec('prepared_transaction', 'gateway.PreparedTransaction', { transaction_id: 'tx-gw-7', envelope });

// Map entries whose key or value is the default. The reference (like Go's encoder) writes both
// the key and the value of every map entry; prost leaves a default key or value out. Both decode
// to the same map, but weft's re-encoding is shorter: tests/conformance.rs lists these vectors as
// known re-encoding differences and checks the decoded values only.
vec('map_default_key_and_value_uint64', 'protos.BlockAndPrivateData', {
  block: smallBlock,
  private_data_map: [
    [0, txPvtRwset],
    [2, {}],
  ],
});
vec('map_default_key_and_value_string', 'protos.ChaincodeInput', {
  args: [b('a'), b('b')],
  decorations: [
    ['', b('value-of-empty-key')],
    ['empty', b('')],
  ],
  is_init: true,
});
vec('map_default_value_message', 'common.ConfigGroup', {
  version: 1,
  groups: [
    ['Org1', {}],
    ['Org2', { version: 2 }],
  ],
  values: [
    ['A', {}],
    ['B', { version: 3 }],
  ],
  policies: [
    ['Admins', {}],
    ['Readers', { version: 4 }],
  ],
  mod_policy: 'Admins',
});

// Channel configuration values (configtx): MSP definitions, channel, orderer and application
// values, etcdraft consenter metadata.
const ouId = (ou) => ({ certificate: b(`-----BEGIN CERTIFICATE-----\n${ou}-ca\n`), organizational_unit_identifier: ou });
const fabricMspConfig = {
  name: 'Org1MSP',
  root_certs: [b('root-ca-1'), b('root-ca-2')],
  intermediate_certs: [b('int-ca-1'), b('int-ca-2')],
  admins: [b('admin-1'), b('admin-2')],
  revocation_list: [b('crl-1'), b('crl-2')],
  signing_identity: {
    public_signer: b('public-signer'),
    private_signer: { key_identifier: 'key-id', key_material: b('key-material') },
  },
  organizational_unit_identifiers: [ouId('dept-a'), ouId('dept-b')],
  crypto_config: { signature_hash_family: 'SHA2', identity_identifier_hash_function: 'SHA256' },
  tls_root_certs: [b('tls-root-1'), b('tls-root-2')],
  tls_intermediate_certs: [b('tls-int-1'), b('tls-int-2')],
  fabric_node_ous: {
    enable: true,
    client_ou_identifier: ouId('client'),
    peer_ou_identifier: ouId('peer'),
    admin_ou_identifier: ouId('admin'),
    orderer_ou_identifier: ouId('orderer'),
  },
};
vec('msp_config', 'msp.MSPConfig', { type: 1, config: enc('msp.FabricMSPConfig', fabricMspConfig) });
vec('fabric_msp_config', 'msp.FabricMSPConfig', fabricMspConfig);
vec('hashing_algorithm', 'common.HashingAlgorithm', { name: 'SHA256' });
vec('block_data_hashing_structure', 'common.BlockDataHashingStructure', { width: 4294967295 });
vec('orderer_addresses', 'common.OrdererAddresses', { addresses: ['orderer0.example.com:7050', 'orderer1.example.com:7050'] });
vec('consortium', 'common.Consortium', { name: 'SampleConsortium' });
vec('capabilities', 'common.Capabilities', { capabilities: [['V2_0', {}], ['V2_5', {}]] });
const bftConsenter = (id) => ({
  id,
  host: `orderer${id}.example.com`,
  port: 7050 + id * 11,
  msp_id: 'OrdererMSP',
  identity: b(`identity-${id}`),
  client_tls_cert: b(`client-tls-${id}`),
  server_tls_cert: b(`server-tls-${id}`),
});
vec('orderers', 'common.Orderers', { consenter_mapping: [bftConsenter(1), bftConsenter(2)] });
vec('consensus_type', 'orderer.ConsensusType', { type: 'etcdraft', metadata: b('raft-metadata'), state: 'STATE_MAINTENANCE' });
vec('batch_size', 'orderer.BatchSize', { max_message_count: 500, absolute_max_bytes: 10485760, preferred_max_bytes: 2097152 });
vec('batch_timeout', 'orderer.BatchTimeout', { timeout: '250ms' });
vec('kafka_brokers', 'orderer.KafkaBrokers', { brokers: ['kafka0:9092', 'kafka1:9092'] });
vec('channel_restrictions', 'orderer.ChannelRestrictions', { max_count: 1000 });
const raftConsenter = (n) => ({
  host: `orderer${n}.example.com`,
  port: 7050 + n,
  client_tls_cert: b(`raft-client-${n}`),
  server_tls_cert: b(`raft-server-${n}`),
});
vec('etcdraft_config_metadata', 'etcdraft.ConfigMetadata', {
  consenters: [raftConsenter(0), raftConsenter(1)],
  options: { tick_interval: '500ms', election_tick: 10, heartbeat_tick: 1, max_inflight_blocks: 5, snapshot_interval_size: 16777216 },
});
vec('anchor_peers', 'protos.AnchorPeers', {
  anchor_peers: [
    { host: 'peer0.org1.example.com', port: 7051 },
    { host: 'peer1.org1.example.com', port: 8051 },
  ],
});
vec('acls', 'protos.ACLs', {
  acls: [
    ['event/Block', { policy_ref: '/Channel/Application/Readers' }],
    ['peer/Propose', { policy_ref: '/Channel/Application/Writers' }],
  ],
});

// Types the vectors must cover (the brief's list); gen.js and tests/conformance.rs both check it.
const REQUIRED = [
  'common.Envelope',
  'common.Payload',
  'common.Header',
  'common.ChannelHeader',
  'common.SignatureHeader',
  'common.Block',
  'common.BlockHeader',
  'common.Metadata',
  'common.MetadataSignature',
  'common.LastConfig',
  'common.OrdererBlockMetadata',
  'common.ConfigEnvelope',
  'common.Config',
  'common.ConfigGroup',
  'common.ConfigValue',
  'common.ConfigPolicy',
  'common.ConfigUpdate',
  'common.ConfigUpdateEnvelope',
  'common.ConfigSignature',
  'common.Policy',
  'common.SignaturePolicyEnvelope',
  'common.ImplicitMetaPolicy',
  'common.ApplicationPolicy',
  'common.MSPPrincipal',
  'common.MSPRole',
  'common.OrganizationUnit',
  'msp.SerializedIdentity',
  'protos.ChaincodeMessage',
  'protos.GetState',
  'protos.PutState',
  'protos.DelState',
  'protos.PutStateMetadata',
  'protos.GetStateMetadata',
  'protos.PurgePrivateState',
  'protos.GetStateByRange',
  'protos.GetQueryResult',
  'protos.QueryMetadata',
  'protos.QueryResponse',
  'protos.QueryResponseMetadata',
  'protos.QueryStateNext',
  'protos.QueryStateClose',
  'protos.GetHistoryForKey',
  'protos.StateMetadata',
  'protos.StateMetadataResult',
  'protos.ChaincodeID',
  'protos.ChaincodeInput',
  'protos.ChaincodeSpec',
  'protos.ChaincodeDeploymentSpec',
  'protos.ChaincodeInvocationSpec',
  'protos.ChaincodeEvent',
  'protos.SignedProposal',
  'protos.Proposal',
  'protos.ChaincodeHeaderExtension',
  'protos.ChaincodeProposalPayload',
  'protos.ChaincodeAction',
  'protos.ProposalResponse',
  'protos.Response',
  'protos.ProposalResponsePayload',
  'protos.Endorsement',
  'protos.ChaincodeInterest',
  'protos.ChaincodeCall',
  'protos.Transaction',
  'protos.TransactionAction',
  'protos.ChaincodeActionPayload',
  'protos.ChaincodeEndorsedAction',
  'protos.ProcessedTransaction',
  'protos.FilteredBlock',
  'protos.FilteredTransaction',
  'protos.DeliverResponse',
  'rwset.TxReadWriteSet',
  'rwset.NsReadWriteSet',
  'rwset.CollectionHashedReadWriteSet',
  'rwset.TxPvtReadWriteSet',
  'kvrwset.KVRWSet',
  'kvrwset.HashedRWSet',
  'kvrwset.Version',
  'queryresult.KV',
  'queryresult.KeyModification',
  'orderer.SeekInfo',
  'orderer.SeekPosition',
  'orderer.BroadcastResponse',
  'orderer.DeliverResponse',
  'gateway.EndorseRequest',
  'gateway.EndorseResponse',
  'gateway.SubmitRequest',
  'gateway.SignedCommitStatusRequest',
  'gateway.CommitStatusRequest',
  'gateway.CommitStatusResponse',
  'gateway.EvaluateRequest',
  'gateway.EvaluateResponse',
  'gateway.SignedChaincodeEventsRequest',
  'gateway.ChaincodeEventsRequest',
  'gateway.ChaincodeEventsResponse',
  'gateway.ErrorDetail',
  'msp.MSPConfig',
  'msp.FabricMSPConfig',
  'common.HashingAlgorithm',
  'common.BlockDataHashingStructure',
  'common.OrdererAddresses',
  'common.Capabilities',
  'orderer.ConsensusType',
  'orderer.BatchSize',
  'orderer.BatchTimeout',
  'orderer.ChannelRestrictions',
  'protos.AnchorPeers',
  'protos.ACLs',
];

// Fields no vector can set to a non-default value, with the reason.
const UNSETTABLE = {
  'rwset.TxReadWriteSet.data_model': 'DataModel has one value, KV = 0',
  'rwset.TxPvtReadWriteSet.data_model': 'DataModel has one value, KV = 0',
};

// Enums whose reference values tests/conformance.rs compares with weft's, name by name.
const ENUMS = [
  'common.Status',
  'common.HeaderType',
  'common.BlockMetadataIndex',
  'common.Policy.PolicyType',
  'common.ImplicitMetaPolicy.Rule',
  'common.MSPPrincipal.Classification',
  'common.MSPRole.MSPRoleType',
  'common.MSPIdentityAnonymity.MSPIdentityAnonymityType',
  'protos.ChaincodeSpec.Type',
  'protos.ChaincodeMessage.Type',
  'protos.TxValidationCode',
  'protos.MetaDataKeys',
  'rwset.TxReadWriteSet.DataModel',
  'orderer.SeekInfo.SeekBehavior',
  'orderer.SeekInfo.SeekErrorResponse',
  'orderer.SeekInfo.SeekContentType',
  'orderer.ConsensusType.State',
];

// ---------------------------------------------------------------------------------------------

function generate() {
  const cov = new Coverage();
  const problems = [];
  const names = new Set();
  const vectors = V.map(({ name, type, value }) => {
    if (names.has(name)) problems.push(`duplicate vector name ${name}`);
    names.add(name);
    const bytes = enc(type, value);
    const back = msgClass(type).deserializeBinary(bytes);
    const again = Buffer.from(back.serializeBinary());
    if (!again.equals(Buffer.from(bytes)))
      problems.push(`${name}: the reference does not round-trip its own bytes`);
    const fields = {};
    flatten(back, type, '$', fields, cov);
    return { name, type, hex: Buffer.from(bytes).toString('hex'), fields };
  });

  const types = new Set(vectors.map((v) => v.type));
  for (const t of REQUIRED) if (!types.has(t)) problems.push(`no vector of ${t}`);
  // Every message type reached through message fields, not only the vectors' own types.
  const reach = new Set();
  const walk = (t) => {
    if (reach.has(t)) return;
    reach.add(t);
    for (const f of fieldsOf(t)) if (isMessageField(f)) walk(f.ref);
  };
  types.forEach(walk);
  for (const t of [...reach].sort()) {
    // The schema read from doc comments must name every field number the serializer writes.
    const src = msgClass(t).serializeBinaryToWriter.toString();
    const written = [...src.matchAll(/(?:write\w*|serializeBinary)\(\s*(\d+)/g)].map((m) => Number(m[1]));
    const known = fieldsOf(t).map((f) => f.number);
    if ([...new Set(written)].sort().join() !== [...new Set(known)].sort().join()) {
      problems.push(`${t}: schema fields ${known} but the serializer writes ${written}`);
    }
    if (!cov.seen.has(t)) problems.push(`${t} is reachable but never present in a vector`);
    for (const f of fieldsOf(t)) {
      const id = `${t}.${f.name}`;
      if (!cov.set.get(id) && !UNSETTABLE[id]) {
        problems.push(`${id} is never set to a non-default value (or >= 2 entries)`);
      }
    }
  }
  for (const [id, ok] of cov.distinct) {
    if (!ok) problems.push(`${id} never differ: a swap of their numbers would go unseen`);
  }
  if (problems.length) {
    console.error(problems.join('\n'));
    process.exit(2);
  }

  const enums = {};
  for (const e of ENUMS) {
    const values = lookup(e);
    enums[e] = Object.fromEntries(
      Object.entries(values).sort((x, y) => x[1] - y[1] || (x[0] < y[0] ? -1 : 1)),
    );
  }

  const doc = {
    generator: 'crates/weft-proto/conformance/gen.js',
    reference: `@hyperledger/fabric-protos@${REF_VERSION} (google-protobuf@${JSPB_VERSION})`,
    required_types: REQUIRED,
    enums,
    vectors,
  };
  return { text: JSON.stringify(doc, null, 1) + '\n', doc, reachable: reach };
}

function main() {
  const check = process.argv.includes('--check');
  const { text, doc, reachable } = generate();
  if (!check) {
    fs.writeFileSync(OUT, text);
    console.log(
      `wrote ${path.relative(process.cwd(), OUT)}: ${doc.vectors.length} vectors, ` +
        `${new Set(doc.vectors.map((v) => v.type)).size} vector types, ${reachable.size} message types covered`,
    );
    return;
  }
  let committed;
  try {
    committed = JSON.parse(fs.readFileSync(OUT, 'utf8'));
  } catch (e) {
    console.error(`cannot read ${OUT}: ${e.message}`);
    process.exit(1);
  }
  const bad = [];
  const old = new Map((committed.vectors || []).map((v) => [v.name, v]));
  for (const v of doc.vectors) {
    const o = old.get(v.name);
    if (!o) bad.push(`vector ${v.name}: missing from vectors.json`);
    else if (JSON.stringify(o) !== JSON.stringify(v)) bad.push(`vector ${v.name}: differs`);
    old.delete(v.name);
  }
  for (const name of old.keys()) bad.push(`vector ${name}: in vectors.json but no longer generated`);
  for (const k of Object.keys(doc)) {
    if (k !== 'vectors' && JSON.stringify(committed[k]) !== JSON.stringify(doc[k])) bad.push(`${k}: differs`);
  }
  if (!bad.length && fs.readFileSync(OUT, 'utf8') !== text) bad.push('formatting differs');
  if (bad.length) {
    console.error(
      `vectors.json is stale (regenerate with \`npm ci && node gen.js\`):\n  ${bad.join('\n  ')}`,
    );
    process.exit(1);
  }
  console.log(`vectors.json is up to date: ${doc.vectors.length} vectors`);
}

main();
