// Unit tests of the rules of the options (no kernel involved): mount targets, sizes, names and
// the hostnames they give, and runtime errors about mounts told as being about the options.
import { describe, expect, it } from 'vitest'

import { buildSpec, optionError } from './build.js'
import { parseRunOptions } from './options.js'
import { hostnameFor, nameFits, sizeFits, targetProblem } from './rules.js'

describe('rules of the options', () => {
  it('a mount target: absolute, without .., not the root', () => {
    expect(targetProblem('/data')).toBeUndefined()
    expect(targetProblem('/a/./b/')).toBeUndefined()
    expect(targetProblem('data')).toBe('must be an absolute path')
    expect(targetProblem('/a/../b')).toBe("must not contain '..'")
    for (const root of ['/', '//', '/.', '/./']) expect(targetProblem(root)).toMatch(/^must not be \//)
  })

  it('sizes: up to what a number holds exactly', () => {
    expect(sizeFits('64m')).toBe(true)
    expect(sizeFits(String(Number.MAX_SAFE_INTEGER))).toBe(true)
    expect(sizeFits('9007199254740992')).toBe(false)
    expect(sizeFits('8388608g')).toBe(false)
    expect(sizeFits('not a size')).toBe(true) // the form is another rule's
  })

  it("names are docker's; the hostname is the name when it is one, 12 hex digits of its hash otherwise", () => {
    for (const n of ['web', 'a_b.c-d', 'x'.repeat(255), '0abc']) expect(nameFits(n), n).toBe(true)
    for (const n of ['', '-a', '.a', '_a', 'a b', 'a/b', 'a+b', 'x'.repeat(256)]) expect(nameFits(n), n).toBe(false)
    expect(hostnameFor('web-1')).toBe('web-1')
    expect(hostnameFor('a_b')).toMatch(/^[0-9a-f]{12}$/)
    expect(hostnameFor('x'.repeat(65))).toMatch(/^[0-9a-f]{12}$/)
    expect(hostnameFor('x'.repeat(65))).toBe(hostnameFor('x'.repeat(65)))
    const spec = buildSpec(parseRunOptions({ command: ['true'] }), 'my_container').spec
    expect(spec.hostname).toBe(hostnameFor('my_container'))
    expect(spec.process.env).toContain(`HOSTNAME=${hostnameFor('my_container')}`)
  })
})

describe("the runtime's errors about mounts[i] of a spec built from options", () => {
  const { spec } = buildSpec(
    parseRunOptions({
      command: ['true'],
      volumes: ['/tmp:/a', '/tmp:/b'],
      mounts: [{ type: 'tmpfs', target: '/t' }],
    }),
    'abc',
  )
  const at = (dst: string) => spec.mounts!.findIndex((m) => m.destination === dst)
  const runtime = (i: number) => ({
    step: 'validate config',
    path: `mounts[${i}].destination`,
    code: 'EINVAL',
    message: `mounts[${i}].destination: must not contain '..'`,
  })

  it('name the volume or mount of the options it comes from', () => {
    expect(at('/b')).toBeGreaterThan(10)
    expect(optionError(spec, runtime(at('/b')))).toEqual({
      step: 'validate config',
      code: 'EINVAL',
      field: 'volumes[1]',
      message: "volumes[1]: must not contain '..'",
    })
    expect(optionError(spec, runtime(at('/t'))).message).toBe("mounts[0]: must not contain '..'")
  })

  it('about a mount ns adds itself, or of another spec, or another step: as they are', () => {
    expect(optionError(spec, runtime(at('/proc')))).toEqual(runtime(at('/proc')))
    const other = structuredClone(spec)
    expect(optionError(other, runtime(at('/b')))).toEqual(runtime(at('/b')))
    const mount = { step: 'mount tmpfs on', path: '/t', code: 'EINVAL', message: 'failed to mount tmpfs on /t' }
    expect(optionError(spec, mount)).toBe(mount)
  })
})
