export type { PrepareOptions, PreparedHelper, WaitStatus, HostInfo, UsernsBlock } from './index.js'
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
  containerDelete,
  containerStats,
  networkCall,
} from './index.js'
/** Path of the ns-oci helper binary (NS_HELPER overrides it). */
export declare const helperPath: string
