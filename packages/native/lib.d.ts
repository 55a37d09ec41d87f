export type { PrepareOptions, PreparedHelper, WaitStatus, HostInfo, UsernsBlock } from './index.js'
export type {
  UnpackLayerOptions,
  UnpackedLayer,
  LayerIdMapping,
  RemoveLayerOptions,
  ProbeOverlayOptions,
  OverlayProbe,
  OverlayMountOptions,
} from './index.js'
export {
  prepareHelper,
  startHelper,
  reap,
  hostInfo,
  defaultStateRoot,
  containerState,
  containerList,
  containerKill,
  containerStart,
  containerPause,
  containerResume,
  containerUpdate,
  containerDelete,
  containerStats,
  unpackLayer,
  removeLayer,
  probeOverlay,
  overlayMountOptions,
} from './index.js'
/** Path of the ns-oci helper binary (NS_HELPER overrides it). */
export declare const helperPath: string
