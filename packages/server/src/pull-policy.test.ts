// What a pull may reach, without a registry: the addresses refused, the operator's list, the
// judge of a reference, the status of each image error, and the connector that checks every
// connection (against a server on 127.0.0.1 that counts what reaches it).
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { NsError } from '@ns/core'

import { guardedFetch } from './egress.js'
import { ApiError, imageFailure, imageStatusOf } from './errors.js'
import { judgePull, listedConnection, parseAllowedRegistries, refusedAddress, type PullPolicy } from './pull-policy.js'

const policyOf = (allowRegistry: string[] = []): PullPolicy => ({
  allowRegistry: parseAllowedRegistries(allowRegistry),
})

describe('addresses a pull may not reach', () => {
  it('loopback, link-local, private, shared, unspecified, multicast and reserved ones, in IPv4 and IPv6, also mapped, NAT64 and 6to4', () => {
    const refused: Record<string, RegExp> = {
      '127.0.0.1': /loopback/,
      '127.255.1.2': /loopback/,
      '::1': /loopback/,
      '[::1]': /loopback/,
      '0.0.0.0': /this host/,
      '::': /unspecified/,
      '169.254.169.254': /link-local/,
      'fe80::1%eth0': /link-local/,
      '10.0.0.1': /private/,
      '172.16.0.1': /private/,
      '172.31.255.255': /private/,
      '192.168.1.1': /private/,
      'fc00::1': /private/,
      'fd12:3456::1': /private/,
      '100.64.0.1': /shared/,
      '224.0.0.1': /multicast/,
      'ff02::1': /multicast/,
      '240.0.0.1': /reserved/,
      '255.255.255.255': /reserved/,
      '198.18.0.1': /benchmarking/,
      '::ffff:127.0.0.1': /loopback/,
      '::ffff:7f00:1': /loopback/,
      '::ffff:169.254.169.254': /link-local/,
      '64:ff9b::7f00:1': /loopback address \(through NAT64\)/,
      '64:ff9b::10.1.2.3': /private address \(through NAT64\)/,
      '2002:7f00:1::1': /loopback address \(through 6to4\)/,
      '2002:a9fe:a9fe::': /link-local address.*\(through 6to4\)/,
      '::127.0.0.1': /loopback address \(IPv4-compatible\)/,
    }
    for (const [address, why] of Object.entries(refused)) expect(refusedAddress(address), address).toMatch(why)
    for (const address of [
      '8.8.8.8',
      '1.1.1.1',
      '172.32.0.1',
      '172.15.255.255',
      '100.128.0.1',
      '192.0.2.10', // documentation: routed nowhere
      '2001:db8::1',
      '2606:4700:4700::1111',
      '::ffff:8.8.8.8',
      '64:ff9b::808:808',
      '2002:808:808::1',
    ]) {
      expect(refusedAddress(address), address).toBeUndefined()
    }
  })
})

describe("the operator's --allow-registry", () => {
  it('entries are HOST[:PORT] (lowercase, IPv6 compressed, docker.io by any of its names); anything else is an error naming the entry', () => {
    expect(parseAllowedRegistries(['Reg.Example:5000', '[0:0::1]:5000', 'index.docker.io', '10.0.0.7'])).toEqual([
      { domain: 'reg.example:5000', host: 'reg.example', port: 5000 },
      { domain: '[::1]:5000', host: '::1', port: 5000 },
      { domain: 'docker.io', host: 'docker.io', port: undefined },
      { domain: '10.0.0.7', host: '10.0.0.7', port: undefined },
    ])
    for (const [i, bad] of [
      'https://reg.example',
      'reg.example/path',
      ':5000',
      'reg:0',
      'reg:70000',
      '[zz]:1',
      '',
    ].entries()) {
      try {
        parseAllowedRegistries(['ok.example', bad])
        throw new Error(`${bad}: accepted`)
      } catch (e) {
        expect(e, bad).toBeInstanceOf(NsError)
        expect((e as NsError).field, `${i}`).toBe('allowRegistry[1]')
      }
    }
  })

  it('a listed registry is connected to at any address: on its port, or the default port of the scheme when it names none', () => {
    const p = policyOf(['reg.lan', '127.0.0.1:5000', 'docker.io', '[::1]:5001'])
    expect(listedConnection(p, 'reg.lan', 443, 'https:')).toBe(true)
    expect(listedConnection(p, 'reg.lan', 80, 'http:')).toBe(true)
    expect(listedConnection(p, 'reg.lan', 5000, 'https:')).toBe(false)
    expect(listedConnection(p, '127.0.0.1', 5000, 'http:')).toBe(true)
    expect(listedConnection(p, '127.0.0.1', 5001, 'http:')).toBe(false)
    expect(listedConnection(p, 'registry-1.docker.io', 443, 'https:')).toBe(true)
    expect(listedConnection(p, '[::1]', 5001, 'http:')).toBe(true)
    expect(listedConnection(p, 'other.lan', 443, 'https:')).toBe(false)
    expect(listedConnection(policyOf(), 'reg.lan', 443, 'https:')).toBe(false)
  })
})

describe('judgePull', () => {
  const refusal = async (p: Promise<unknown>) => {
    try {
      await p
    } catch (e) {
      if (e instanceof ApiError) return { status: e.status, field: e.field, message: e.message }
      if (e instanceof NsError) return { status: 0, code: e.code, field: e.field, message: e.message }
      throw e
    }
    throw new Error('not refused')
  }
  const resolver = (table: Record<string, string[]>) => async (host: string) => table[host] ?? []

  it('no list: a registry whose name resolves to a public address passes; to any refused one (of several) it is 403 naming reference', async () => {
    const p = policyOf()
    const dns = resolver({
      'registry-1.docker.io': ['198.51.100.20'],
      'public.example': ['203.0.113.5', '2001:db8::5'],
      'sneaky.example': ['203.0.113.5', '10.0.0.5'],
      localhost: ['127.0.0.1', '::1'],
    })
    expect((await judgePull('alpine', p, dns)).full).toBe('docker.io/library/alpine:latest')
    expect((await judgePull('public.example/app:1', p, dns)).domain).toBe('public.example')
    // A name that does not resolve is left to the pull (which fails: unreachable).
    expect((await judgePull('nowhere.example/app:1', p, dns)).domain).toBe('nowhere.example')
    expect(await refusal(judgePull('sneaky.example/app:1', p, dns))).toEqual({
      status: 403,
      field: 'reference',
      message: expect.stringMatching(
        /^reference: registry sneaky.example is at 10.0.0.5, a private address.*--allow-registry sneaky.example/,
      ),
    })
    expect(await refusal(judgePull('localhost:5000/app:1', p, dns))).toMatchObject({ status: 403, field: 'reference' })
    // Address literals need no lookup, in the forms a URL reads too.
    for (const ref of [
      '127.0.0.1:5000/a:1',
      '2130706433:5000/a:1',
      '0x7f.1:5000/a:1',
      '[::1]:5000/a:1',
      '169.254.169.254/a:1',
    ]) {
      expect(await refusal(judgePull(ref, p, dns)), ref).toMatchObject({ status: 403, field: 'reference' })
    }
  })

  it('a list: its registries pass at any address, every other is 403; file transports are 403 and a malformed reference a 400-to-be (EINVAL)', async () => {
    const p = policyOf(['127.0.0.1:5000', 'reg.lan'])
    const dns = resolver({ 'reg.lan': ['192.168.1.10'], 'public.example': ['203.0.113.5'] })
    expect((await judgePull('127.0.0.1:5000/a:1', p, dns)).domain).toBe('127.0.0.1:5000')
    expect((await judgePull('reg.lan/a:1', p, dns)).domain).toBe('reg.lan')
    expect(await refusal(judgePull('public.example/a:1', p, dns))).toMatchObject({
      status: 403,
      field: 'reference',
      message: expect.stringContaining('not one this server pulls from (--allow-registry: 127.0.0.1:5000, reg.lan)'),
    })
    expect(await refusal(judgePull('127.0.0.1:5001/a:1', p, dns))).toMatchObject({ status: 403 })
    for (const ref of ['oci:/var/lib', 'oci-archive:/etc/shadow:x', 'docker-archive:/root/a.tar']) {
      expect(await refusal(judgePull(ref, p, dns)), ref).toMatchObject({ status: 403, field: 'reference' })
    }
    expect(await refusal(judgePull('Not A Reference', p, dns))).toMatchObject({ code: 'EINVAL', field: 'reference' })
  })
})

describe('image errors as statuses', () => {
  it("the client's mistakes 4xx, the registry's failures 502 (its refusal of the server's credentials too), content from an upload 400", () => {
    const err = (code: string, field?: string) => new NsError({ code, message: `x: ${code}`, field })
    const table: [string, 'registry' | 'upload' | 'store', number][] = [
      ['EINVAL', 'registry', 400],
      ['AMBIGUOUS_REFERENCE', 'store', 400],
      ['INVALID_ARCHIVE', 'upload', 400],
      ['IMAGE_NOT_FOUND', 'store', 404],
      ['MANIFEST_UNKNOWN', 'registry', 404],
      ['NAME_UNKNOWN', 'registry', 404],
      ['NO_MATCHING_PLATFORM', 'registry', 404],
      ['IMAGE_IN_USE', 'store', 409],
      ['UNAUTHORIZED', 'registry', 502],
      ['DENIED', 'registry', 502],
      ['REGISTRY_UNREACHABLE', 'registry', 502],
      ['REGISTRY_ERROR', 'registry', 502],
      ['DIGEST_MISMATCH', 'registry', 502],
      ['DIGEST_MISMATCH', 'upload', 400],
      ['INVALID_MANIFEST', 'registry', 502],
      ['INVALID_MANIFEST', 'upload', 400],
      ['UNSUPPORTED_MEDIA_TYPE', 'upload', 400],
      ['ENOSPC', 'store', 507],
      ['ABORTED', 'registry', 503],
      ['EACCES', 'store', 500],
    ]
    for (const [code, source, status] of table)
      expect(imageStatusOf(err(code), source), `${code} ${source}`).toBe(status)
    expect(imageStatusOf(err('EPERM', 'reference'), 'registry')).toBe(403)
    const refused = imageFailure(err('EPERM', 'reference'), 'registry') as ApiError
    expect(refused).toBeInstanceOf(ApiError)
    expect(refused.message).toBe('reference: x: EPERM')
    const passed = new ApiError(418, 'X', 'y')
    expect(imageFailure(passed, 'store')).toBe(passed)
  })
})

describe('the connector every pull connection goes through', () => {
  let port = 0
  let connections = 0
  const server = createServer((_req, res) => res.writeHead(204).end())
  server.on('connection', () => connections++)
  beforeAll(async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    port = (server.address() as AddressInfo).port
  })
  afterAll(() => new Promise((r) => (server.closeAllConnections(), server.close(r))))

  const failure = async (p: Promise<unknown>) => {
    try {
      await p
    } catch (e) {
      return e as NsError
    }
    throw new Error('not refused')
  }

  it('refuses a loopback address, as a literal or as a name it resolves to, with EPERM naming reference, before any connection; lets a listed registry through', async () => {
    const open = guardedFetch(policyOf())
    const listed = guardedFetch(policyOf([`127.0.0.1:${port}`]))
    try {
      for (const url of [
        `http://127.0.0.1:${port}/v2/`,
        `http://localhost:${port}/v2/`,
        `http://[::ffff:7f00:1]:${port}/v2/`,
      ]) {
        const e = await failure(open.fetch(url))
        expect(e, url).toBeInstanceOf(NsError)
        expect(e.code).toBe('EPERM')
        expect(e.field).toBe('reference')
        expect(e.message).toMatch(/refused: a loopback address/)
      }
      expect(connections).toBe(0)
      const res = await listed.fetch(`http://127.0.0.1:${port}/v2/`)
      expect(res.status).toBe(204)
      expect(connections).toBe(1)
      // Listed by host and port: the same host on another port is judged by its address.
      expect((await failure(listed.fetch(`http://127.0.0.1:${port + 1}/v2/`))).code).toBe('EPERM')
    } finally {
      await open.close()
      await listed.close()
    }
  })
})
