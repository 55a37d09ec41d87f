export type { PrepareOptions, PreparedHelper, SentRun, WaitStatus, HostInfo, UsernsBlock } from './index.js'
export type {
  UnpackLayerOptions,
  UnpackedLayer,
  LayerIdMapping,
  RemoveLayerOptions,
  ProbeOverlayOptions,
  OverlayProbe,
  OverlayMountOptions,
  LookupImagePathOptions,
  ImagePath,
} from './index.js'
export {
  prepareHelper,
  startHelper,
  sendRun,
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
  networkCall,
  unpackLayer,
  removeLayer,
  probeOverlay,
  overlayMountOptions,
  lookupImagePath,
} from './index.js'
/** Path of the ns-oci helper binary (NS_HELPER overrides it). */
export declare const helperPath: string
