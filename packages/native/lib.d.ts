export type { SpawnOptions, SpawnedHelper, WaitStatus, HostInfo, UsernsBlock } from './index.js'
export {
  spawnHelper, reap, hostInfo, defaultStateRoot, containerState, containerList, containerKill, containerStart, containerDelete, containerStats,
} from './index.js'
/** Path of the ns-oci helper binary (NS_HELPER overrides it). */
export declare const helperPath: string
