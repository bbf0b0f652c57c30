'use strict';
// A client application written with Fabric's own Gateway SDK, used by weft's interop tests.
//
// Usage: node app.js <scenario> <config.json>
//   config: { endpoint, serverName, tlsRootCert, clientCert?, clientKey?, mspId, identityCert,
//             identityKey, channel, chaincode, assetId }
//   scenario "asset-transfer": create an asset (submit, wait for commit status), read it back
//     (evaluate), transfer it (submit), then read the chaincode events from the create's block.
//   scenario "no-client-cert": connect with only the root CA (as Fabric's samples do) and try
//     one evaluate; report the error the application sees.
// Output: one JSON object on stdout; exit code 0 when the scenario ran (its result says what
// happened), 1 on an unexpected failure.

const crypto = require('node:crypto');
const fs = require('node:fs');
const grpc = require('@grpc/grpc-js');
const { connect, hash, signers } = require('@hyperledger/fabric-gateway');

const utf8 = new TextDecoder();

function newGrpcClient(cfg, withClientCert) {
    const root = fs.readFileSync(cfg.tlsRootCert);
    const creds = withClientCert
        ? grpc.credentials.createSsl(root, fs.readFileSync(cfg.clientKey), fs.readFileSync(cfg.clientCert))
        : grpc.credentials.createSsl(root);
    return new grpc.Client(cfg.endpoint, creds, {
        'grpc.ssl_target_name_override': cfg.serverName,
    });
}

function newGateway(cfg, client) {
    return connect({
        client,
        identity: { mspId: cfg.mspId, credentials: fs.readFileSync(cfg.identityCert) },
        signer: signers.newPrivateKeySigner(crypto.createPrivateKey(fs.readFileSync(cfg.identityKey))),
        hash: hash.sha256,
        evaluateOptions: () => ({ deadline: Date.now() + 15000 }),
        endorseOptions: () => ({ deadline: Date.now() + 30000 }),
        submitOptions: () => ({ deadline: Date.now() + 15000 }),
        commitStatusOptions: () => ({ deadline: Date.now() + 60000 }),
    });
}

function describeError(err) {
    const out = { name: err.constructor?.name, message: err.message, code: err.code };
    if (Array.isArray(err.details)) {
        out.details = err.details.map((d) => ({ address: d.address, mspId: d.mspId, message: d.message }));
    }
    if (err.cause) {
        out.cause = { message: err.cause.message, code: err.cause.code, details: err.cause.details };
    }
    return out;
}

async function assetTransfer(cfg) {
    const client = newGrpcClient(cfg, true);
    const gateway = newGateway(cfg, client);
    const result = {};
    try {
        const network = gateway.getNetwork(cfg.channel);
        const contract = network.getContract(cfg.chaincode);
        const id = cfg.assetId;

        const commit = await contract.submitAsync('CreateAsset', {
            arguments: [id, 'blue', '5', 'Tomoko', '300'],
        });
        result.createTxId = commit.getTransactionId();
        const status = await commit.getStatus();
        result.createStatus = { code: status.code, successful: status.successful, blockNumber: status.blockNumber.toString() };

        result.read = JSON.parse(utf8.decode(await contract.evaluateTransaction('ReadAsset', id)));

        result.previousOwner = utf8.decode(await contract.submitTransaction('TransferAsset', id, 'Mark'));
        result.readAfterTransfer = JSON.parse(utf8.decode(await contract.evaluateTransaction('ReadAsset', id)));

        try {
            await contract.evaluateTransaction('ReadAsset', `${id}-missing`);
            result.missing = { error: null };
        } catch (err) {
            result.missing = { error: describeError(err) };
        }

        const events = await network.getChaincodeEvents(cfg.chaincode, { startBlock: status.blockNumber });
        result.events = [];
        try {
            for await (const event of events) {
                result.events.push({
                    eventName: event.eventName,
                    txId: event.transactionId,
                    blockNumber: event.blockNumber.toString(),
                    payload: JSON.parse(utf8.decode(event.payload)),
                });
                if (result.events.length >= 2) break;
            }
        } finally {
            events.close();
        }
    } finally {
        gateway.close();
        client.close();
    }
    return result;
}

async function noClientCert(cfg) {
    const client = newGrpcClient(cfg, false);
    const gateway = newGateway(cfg, client);
    try {
        const contract = gateway.getNetwork(cfg.channel).getContract(cfg.chaincode);
        await contract.evaluateTransaction('AssetExists', 'asset1');
        return { refused: false };
    } catch (err) {
        return { refused: true, error: describeError(err) };
    } finally {
        gateway.close();
        client.close();
    }
}

async function main() {
    const [scenario, configPath] = process.argv.slice(2);
    const cfg = JSON.parse(fs.readFileSync(configPath, 'utf8'));
    let result;
    switch (scenario) {
        case 'asset-transfer':
            result = await assetTransfer(cfg);
            break;
        case 'no-client-cert':
            result = await noClientCert(cfg);
            break;
        default:
            throw new Error(`unknown scenario ${scenario}`);
    }
    process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((err) => {
    process.stdout.write(`${JSON.stringify({ failed: describeError(err), stack: err.stack })}\n`);
    process.exit(1);
});
