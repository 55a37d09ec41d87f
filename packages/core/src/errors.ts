/** Every failure of ns is an NsError: a code, and where known the step, path, field and errno. */
export interface NsErrorInit {
  code: string
  message: string
  step?: string | undefined
  path?: string | undefined
  field?: string | undefined
  errno?: number | undefined
  hint?: string | undefined
  exitCode?: number | undefined
}

export class NsError extends Error {
  override readonly name = 'NsError'
  /** Symbolic errno (`EPERM`, `ENOENT`), or `EINVAL` for invalid options. */
  readonly code: string
  /** The set-up step that failed (`pivot_root into`, `write uid_map`, `exec`). */
  readonly step: string | undefined
  readonly path: string | undefined
  /** The option or runtime-spec field that is wrong (`linux.uidMappings[0].size`). */
  readonly field: string | undefined
  readonly errno: number | undefined
  /** What to do about it, when known. */
  readonly hint: string | undefined
  /** The exit code a command line reports for it: 125 runtime error, 126 not executable, 127 not found. */
  readonly exitCode: number

  constructor(init: NsErrorInit) {
    super(init.message)
    this.code = init.code
    this.step = init.step
    this.path = init.path
    this.field = init.field
    this.errno = init.errno
    this.hint = init.hint
    this.exitCode = init.exitCode ?? 125
  }

  static invalid(field: string, reason: string): NsError {
    return new NsError({ code: 'EINVAL', message: `${field}: ${reason}`, field, step: 'validate options' })
  }
}
