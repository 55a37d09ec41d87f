export { run, spawn, spawnSpec, launch, Container } from './container.js'
export type { ExitResult, RunResult, StartOptions } from './container.js'
export {
  buildSpec,
  capabilitySets,
  defaultMaskedPaths,
  defaultReadonlyPaths,
  labelPrefix,
  labelsOf,
  makeSpec,
  newContainerId,
} from './build.js'
export type { BuiltSpec } from './build.js'
export { NsError } from './errors.js'
export { Attachment } from './attach.js'
export { create, createSpec, runDetached, list, get, defaultRoot, DetachedContainer } from './detached.js'
export { limitResources, updatableLimits, type LimitOptions } from './detached.js'
export type {
  ContainerState,
  DetachedOptions,
  ExecOptions,
  ExitRecord,
  LogEntry,
  SpecCreateOptions,
  Stats,
} from './detached.js'
export { runOptionsSchema, parseRunOptions, commandSchema } from './options.js'
export { networks, Networks, DEFAULT_NETWORK, defaultNetworkStore, defaultRunDir } from './networks/index.js'
export type {
  NetworkCreateOptions,
  NetworkDefinition,
  NetworkDetails,
  NetworkInfo,
  NetworksOptions,
  Reconciled,
} from './networks/index.js'
export type { RunOptions } from './options.js'
export { namespaceNames, capabilityNames, defaultCapabilities } from './names.js'
export type { NamespaceName } from './names.js'
export { ociSpecSchema, validateSpec } from './spec.js'
export type { OciSpec, IdMapping } from './spec.js'
export { defaultIdMappings, inInitialUserNamespace, sandboxPaths } from './host.js'
export { defaultSeccompProfile } from './seccomp.js'
export type { SeccompProfile } from './seccomp.js'

import native from '@ns/native'

/** What this host allows: user namespaces (and the fix if blocked), the cgroup layout. */
export function hostInfo() {
  return native.hostInfo()
}

// Images: registry client, content-addressed store, archives (see ./images/index.ts).
export {
  images,
  openImages,
  ImageStore,
  defaultStore,
  RegistryClient,
  parseReference,
  parseSource,
  familiarName,
  formatSource,
  authFilePaths,
  findCredentials,
  saveCredentials,
  removeCredentials,
  parseChallenges,
  hostPlatform,
  parsePlatform,
  formatPlatform,
  selectManifest,
  mediaTypes,
  parseManifest,
  unpackLayer,
  unpackImage,
  layerDir,
  acquireLock,
  reconcileContainers,
} from './images/index.js'
export type {
  Images,
  ImagesOptions,
  ImageDetails,
  LoadOptions,
  ImageInfo,
  ImageRecord,
  LayerRecord,
  BlobRef,
  PruneResult,
  RemoveResult,
  RegistryOptions,
  ImageReference,
  ImageSource,
  Credentials,
  Challenge,
  PlatformSpec,
  ImageConfig,
  ImageIndex,
  ImageManifest,
  Descriptor,
  Compression,
  PullEvent,
  PullOptions,
  SaveFormat,
  UnpackLayerRequest,
  UnpackLayerResult,
  UnpackOptions,
  ContainerRecord,
  Lock,
  LockOptions,
} from './images/index.js'

// Warm sandboxes (see ./pool.ts).
export { pool, poolOfSpecs, Pool, poolRunKeys, MAX_POOL_SIZE } from './pool.js'
export type { PoolOptions, PoolRunOptions } from './pool.js'
