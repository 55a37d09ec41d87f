'use strict'
// @ns/native: the generated addon loader plus the path of the helper binary shipped with it.
const { join } = require('node:path')
const binding = require('./index.js')

module.exports = {
  prepareHelper: binding.prepareHelper,
  startHelper: binding.startHelper,
  sendRun: binding.sendRun,
  reap: binding.reap,
  hostInfo: binding.hostInfo,
  defaultStateRoot: binding.defaultStateRoot,
  containerState: binding.containerState,
  containerList: binding.containerList,
  containerKill: binding.containerKill,
  containerStart: binding.containerStart,
  containerPause: binding.containerPause,
  containerResume: binding.containerResume,
  containerUpdate: binding.containerUpdate,
  containerDelete: binding.containerDelete,
  containerStats: binding.containerStats,
  networkCall: binding.networkCall,
  unpackLayer: binding.unpackLayer,
  removeLayer: binding.removeLayer,
  probeOverlay: binding.probeOverlay,
  overlayMountOptions: binding.overlayMountOptions,
  lookupImagePath: binding.lookupImagePath,
  helperPath: process.env.NS_HELPER || join(__dirname, 'bin', 'ns-oci'),
}
