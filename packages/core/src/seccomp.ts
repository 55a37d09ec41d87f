// The default seccomp profile: the same effect as Docker's default, written as a deny list
// (everything else allowed). Syscalls that a capability makes legitimate are denied unless the
// container has that capability, as Docker's profile does.

const ERRNO = 'SCMP_ACT_ERRNO'
const ALLOW = 'SCMP_ACT_ALLOW'
const EPERM = 1
const ENOSYS = 38

/** Namespace flags of clone and unshare (CLONE_NEWTIME shares clone's signal byte: unshare only). */
const CLONE_NS = 0x7e020000
const UNSHARE_NS = CLONE_NS | 0x80

/** Syscalls denied unless the container holds the capability. */
const byCapability: Record<string, string[]> = {
  CAP_SYS_ADMIN: [
    'mount',
    'umount2',
    'pivot_root',
    'setns',
    'fsopen',
    'fsconfig',
    'fsmount',
    'fspick',
    'move_mount',
    'open_tree',
    'mount_setattr',
    'quotactl',
    'quotactl_fd',
    'lookup_dcookie',
    'fanotify_init',
    'sethostname',
    'setdomainname',
    'name_to_handle_at',
    'bpf',
    'perf_event_open',
    'syslog',
  ],
  CAP_SYS_BOOT: ['reboot', 'kexec_load', 'kexec_file_load'],
  CAP_SYS_MODULE: ['init_module', 'finit_module', 'delete_module'],
  CAP_SYS_TIME: ['settimeofday', 'clock_settime', 'clock_adjtime', 'adjtimex', 'stime'],
  CAP_SYS_PTRACE: ['ptrace', 'process_vm_readv', 'process_vm_writev', 'kcmp'],
  CAP_SYS_PACCT: ['acct'],
  CAP_SYS_RAWIO: ['iopl', 'ioperm'],
  CAP_DAC_READ_SEARCH: ['open_by_handle_at'],
}

/** Denied whatever the capabilities. */
const always = [
  'keyctl',
  'add_key',
  'request_key',
  'swapon',
  'swapoff',
  'nfsservctl',
  'uselib',
  'userfaultfd',
  'vm86',
  'vm86old',
]

export interface SeccompProfile {
  defaultAction: string
  defaultErrnoRet?: number
  architectures?: string[]
  syscalls: Array<{
    names: string[]
    action: string
    errnoRet?: number
    args?: Array<{ index: number; value: number; valueTwo?: number; op: string }>
  }>
}

/** The default profile for a container holding `capabilities` (the bounding set). */
export function defaultSeccompProfile(capabilities: readonly string[]): SeccompProfile {
  const has = (c: string) => capabilities.includes(c)
  const syscalls: SeccompProfile['syscalls'] = []
  if (!has('CAP_SYS_ADMIN')) {
    // New namespaces only with CAP_SYS_ADMIN: otherwise a new user namespace would hand back
    // the capabilities the container was denied.
    syscalls.push(
      { names: ['clone'], action: ALLOW, args: [{ index: 0, value: CLONE_NS, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }] },
      { names: ['clone'], action: ERRNO, errnoRet: EPERM },
      {
        names: ['unshare'],
        action: ALLOW,
        args: [{ index: 0, value: UNSHARE_NS, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }],
      },
      { names: ['unshare'], action: ERRNO, errnoRet: EPERM },
      // clone3 passes its flags in memory, out of the filter's reach: ENOSYS sends callers to clone.
      { names: ['clone3'], action: ERRNO, errnoRet: ENOSYS },
    )
  }
  // personality: only the harmless personas.
  for (const v of [0x0, 0x8, 0x20000, 0x20008, 0xffffffff]) {
    syscalls.push({ names: ['personality'], action: ALLOW, args: [{ index: 0, value: v, op: 'SCMP_CMP_EQ' }] })
  }
  syscalls.push({ names: ['personality'], action: ERRNO, errnoRet: EPERM })
  const denied = [
    ...always,
    ...Object.entries(byCapability)
      .filter(([c]) => !has(c))
      .flatMap(([, names]) => names),
  ]
  syscalls.push({ names: denied, action: ERRNO, errnoRet: EPERM })
  return { defaultAction: ALLOW, architectures: ['SCMP_ARCH_X86_64'], syscalls }
}

/** The capabilities whose presence changes the profile. */
const shaping = Object.keys(byCapability)
/** Frozen profiles, by which of the `shaping` capabilities they were made for (a bit each). */
const frozenProfiles = new Map<number, SeccompProfile>()

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v)
    Object.freeze(value)
  }
  return value
}

/**
 * `defaultSeccompProfile(capabilities)`, made once for each set of the capabilities that shape it
 * and frozen, so that the specs of many containers can share it.
 */
export function frozenSeccompProfile(capabilities: readonly string[]): SeccompProfile {
  let key = 0
  for (const [i, c] of shaping.entries()) if (capabilities.includes(c)) key |= 1 << i
  let profile = frozenProfiles.get(key)
  if (!profile) {
    profile = deepFreeze(defaultSeccompProfile(capabilities))
    frozenProfiles.set(key, profile)
  }
  return profile
}
