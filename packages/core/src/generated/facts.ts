// Generated from the runtime's own tables by crates/ns-runtime/src/facts.rs: do not edit.
// `npm run generate` writes it again; a cargo test and `npm run check` fail while it is stale.

/** Every capability the runtime knows, by the runtime spec's names (caps::NAMES). */
export const capabilityNames = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_DAC_READ_SEARCH',
  'CAP_FOWNER',
  'CAP_FSETID',
  'CAP_KILL',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETPCAP',
  'CAP_LINUX_IMMUTABLE',
  'CAP_NET_BIND_SERVICE',
  'CAP_NET_BROADCAST',
  'CAP_NET_ADMIN',
  'CAP_NET_RAW',
  'CAP_IPC_LOCK',
  'CAP_IPC_OWNER',
  'CAP_SYS_MODULE',
  'CAP_SYS_RAWIO',
  'CAP_SYS_CHROOT',
  'CAP_SYS_PTRACE',
  'CAP_SYS_PACCT',
  'CAP_SYS_ADMIN',
  'CAP_SYS_BOOT',
  'CAP_SYS_NICE',
  'CAP_SYS_RESOURCE',
  'CAP_SYS_TIME',
  'CAP_SYS_TTY_CONFIG',
  'CAP_MKNOD',
  'CAP_LEASE',
  'CAP_AUDIT_WRITE',
  'CAP_AUDIT_CONTROL',
  'CAP_SETFCAP',
  'CAP_MAC_OVERRIDE',
  'CAP_MAC_ADMIN',
  'CAP_SYSLOG',
  'CAP_WAKE_ALARM',
  'CAP_BLOCK_SUSPEND',
  'CAP_AUDIT_READ',
  'CAP_PERFMON',
  'CAP_BPF',
  'CAP_CHECKPOINT_RESTORE',
] as const

/** The types of `linux.namespaces[]` the runtime accepts (namespaces::NsKind). */
export const namespaceNames = [
  'user',
  'mount',
  'pid',
  'network',
  'uts',
  'ipc',
  'cgroup',
  'time',
] as const

/** The files of a container's folder under the state root (state, attach). */
export const stateFiles = {
  state: 'state.json',
  execFifo: 'exec.fifo',
  exit: 'exit.json',
  log: 'container.log',
  config: 'config.json',
  attachSocket: 'attach.sock',
} as const

/** An image as a container's root: the annotation that names its overlay, and the files of the container's directory in the image store (image_root). */
export const imageRootFacts = {
  annotation: 'io.ns.image.overlay',
  record: 'container.json',
  upper: 'upper',
  work: 'work',
} as const

/** The kinds of frame a client writes to the attach socket: one byte of kind, four of length (big endian), then the payload (attach). */
export const frameKinds = {
  input: 0,
  resize: 1,
} as const

/** The largest payload of a frame: the monitor lets go a client that sends more. */
export const maxFramePayload = 1048576

/** The statuses of a container, in the order of its life (state::Status). */
export type ContainerStatus = 'creating' | 'created' | 'running' | 'paused' | 'stopped'

/** A SetupError as it crosses process boundaries, in JSON (error::SetupError). */
export interface SetupErrorJson {
  code: string
  errno?: number
  hint?: string
  message: string
  path?: string
  step: string
}

/** What the helper sends on its control socket, one JSON object a line (proto::Event). */
export type HelperEvent =
  | { event: 'created'; pid: number }
  | { event: 'started'; pid: number }
  | { event: 'ready'; pid: number }
  | { event: 'error'; error: SetupErrorJson }
  | { event: 'warning'; message: string }
  | { event: 'exited'; exitCode: number | null; oomKilled: boolean; signal: number | null }
