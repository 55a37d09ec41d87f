'use strict'
// @ns/native: the generated addon loader plus the path of the helper binary shipped with it.
const { join } = require('node:path')
const binding = require('./index.js')

module.exports = {
  spawnHelper: binding.spawnHelper,
  reap: binding.reap,
  hostInfo: binding.hostInfo,
  helperPath: process.env.NS_HELPER || join(__dirname, 'bin', 'ns-oci'),
}
