/*
 * weft interop: the chaincode entry point. fabric-chaincode-node (start or server mode)
 * loads the module named by "main" in package.json and serves the contracts it exports.
 *
 * SPDX-License-Identifier: Apache-2.0
 */

'use strict';

const AssetTransfer = require('./lib/assetTransfer');

module.exports.AssetTransfer = AssetTransfer;
module.exports.contracts = [AssetTransfer];
