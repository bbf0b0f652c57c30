/*
 * weft interop: a basic asset registry written with fabric-contract-api.
 *
 * Assets are JSON objects {ID, Color, Size, Owner, AppraisedValue} stored under their ID.
 * Values are written with their keys sorted at every level so that every endorsing peer
 * writes identical bytes for the same transaction.
 *
 * SPDX-License-Identifier: Apache-2.0
 */

'use strict';

const { Contract } = require('fabric-contract-api');

/** JSON text with object keys sorted recursively: deterministic across runs and peers. */
function canonicalJson(value) {
    return JSON.stringify(sortKeys(value));
}

function sortKeys(value) {
    if (Array.isArray(value)) {
        return value.map(sortKeys);
    }
    if (value !== null && typeof value === 'object') {
        const sorted = {};
        for (const key of Object.keys(value).sort()) {
            sorted[key] = sortKeys(value[key]);
        }
        return sorted;
    }
    return value;
}

/** Transaction arguments arrive as strings; sizes and values are stored as numbers. */
function toNumber(name, text) {
    const n = Number(text);
    if (text === '' || !Number.isFinite(n)) {
        throw new Error(`${name} must be a number, got "${text}"`);
    }
    return n;
}

const SEED = [
    { ID: 'asset1', Color: 'blue', Size: 5, Owner: 'Tomoko', AppraisedValue: 300 },
    { ID: 'asset2', Color: 'red', Size: 5, Owner: 'Brad', AppraisedValue: 400 },
    { ID: 'asset3', Color: 'green', Size: 10, Owner: 'Jin Soo', AppraisedValue: 500 },
    { ID: 'asset4', Color: 'yellow', Size: 10, Owner: 'Max', AppraisedValue: 600 },
    { ID: 'asset5', Color: 'black', Size: 15, Owner: 'Adriana', AppraisedValue: 700 },
    { ID: 'asset6', Color: 'white', Size: 15, Owner: 'Michel', AppraisedValue: 800 },
];

class AssetTransfer extends Contract {
    constructor() {
        // The contract's name: with one contract in the chaincode it is also the default,
        // so transactions may be invoked as "CreateAsset" or "AssetTransfer:CreateAsset".
        super('AssetTransfer');
    }

    /** Writes the six sample assets. */
    async InitLedger(ctx) {
        for (const asset of SEED) {
            await ctx.stub.putState(asset.ID, Buffer.from(canonicalJson(asset)));
        }
    }

    /** Creates a new asset; fails when the ID is taken. Returns the asset as JSON. */
    async CreateAsset(ctx, id, color, size, owner, appraisedValue) {
        if (await this.AssetExists(ctx, id)) {
            throw new Error(`the asset ${id} already exists`);
        }
        const asset = {
            ID: id,
            Color: color,
            Size: toNumber('size', size),
            Owner: owner,
            AppraisedValue: toNumber('appraisedValue', appraisedValue),
        };
        const json = canonicalJson(asset);
        await ctx.stub.putState(id, Buffer.from(json));
        ctx.stub.setEvent('CreateAsset', Buffer.from(json));
        return json;
    }

    /** Returns the stored JSON of an asset; fails when there is none. */
    async ReadAsset(ctx, id) {
        const bytes = await ctx.stub.getState(id);
        if (!bytes || bytes.length === 0) {
            throw new Error(`the asset ${id} does not exist`);
        }
        return bytes.toString();
    }

    /** Replaces every field of an existing asset. */
    async UpdateAsset(ctx, id, color, size, owner, appraisedValue) {
        if (!(await this.AssetExists(ctx, id))) {
            throw new Error(`the asset ${id} does not exist`);
        }
        const asset = {
            ID: id,
            Color: color,
            Size: toNumber('size', size),
            Owner: owner,
            AppraisedValue: toNumber('appraisedValue', appraisedValue),
        };
        const json = canonicalJson(asset);
        await ctx.stub.putState(id, Buffer.from(json));
        ctx.stub.setEvent('UpdateAsset', Buffer.from(json));
    }

    /** Deletes an existing asset. */
    async DeleteAsset(ctx, id) {
        const json = await this.ReadAsset(ctx, id);
        await ctx.stub.deleteState(id);
        ctx.stub.setEvent('DeleteAsset', Buffer.from(json));
    }

    /** True when an asset with this ID is stored. */
    async AssetExists(ctx, id) {
        const bytes = await ctx.stub.getState(id);
        return Boolean(bytes) && bytes.length > 0;
    }

    /** Gives an asset a new owner and returns the previous one. */
    async TransferAsset(ctx, id, newOwner) {
        const asset = JSON.parse(await this.ReadAsset(ctx, id));
        const previous = asset.Owner;
        asset.Owner = newOwner;
        const json = canonicalJson(asset);
        await ctx.stub.putState(id, Buffer.from(json));
        ctx.stub.setEvent('TransferAsset', Buffer.from(json));
        return previous;
    }

    /** Every asset, in key order, as a JSON array. */
    async GetAllAssets(ctx) {
        const assets = [];
        const iterator = await ctx.stub.getStateByRange('', '');
        try {
            let next = await iterator.next();
            while (!next.done) {
                const text = Buffer.from(next.value.value).toString('utf8');
                try {
                    assets.push(JSON.parse(text));
                } catch (err) {
                    assets.push(text);
                }
                next = await iterator.next();
            }
        } finally {
            await iterator.close();
        }
        return JSON.stringify(assets);
    }
}

module.exports = AssetTransfer;
