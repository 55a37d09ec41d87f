// Registry credentials in the file format docker and podman share (`{"auths": {"host":
// {"auth": base64("user:password")}}}`), found where podman looks, and the parsing of the
// `WWW-Authenticate` challenges a registry answers with.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { dirname, join } from 'node:path'

import { imageError } from './errors.js'

export interface Credentials {
  username: string
  password: string
}

export interface AuthFileOptions {
  /** One file to read and write instead of the usual ones (as `REGISTRY_AUTH_FILE`, `--authfile`). */
  authFile?: string | undefined
}

/**
 * The files credentials are read from, in podman's order: `REGISTRY_AUTH_FILE` alone when set;
 * else `$XDG_RUNTIME_DIR/containers/auth.json` (root without it: `/run/containers/0/auth.json`),
 * `$XDG_CONFIG_HOME/containers/auth.json`, `~/.docker/config.json`.
 */
export function authFilePaths(opts: AuthFileOptions = {}): string[] {
  if (opts.authFile) return [opts.authFile]
  const env = process.env
  if (env.REGISTRY_AUTH_FILE) return [env.REGISTRY_AUTH_FILE]
  const uid = process.getuid?.() ?? 0
  const home = env.HOME || homedir()
  const runtime = env.XDG_RUNTIME_DIR || (uid === 0 ? '/run/containers/0' : undefined)
  const out: string[] = []
  if (runtime) out.push(env.XDG_RUNTIME_DIR ? join(runtime, 'containers', 'auth.json') : join(runtime, 'auth.json'))
  out.push(join(env.XDG_CONFIG_HOME || join(home, '.config'), 'containers', 'auth.json'))
  out.push(join(env.DOCKER_CONFIG || join(home, '.docker'), 'config.json'))
  return out
}

/** Where `login` writes: the first of `authFilePaths` (podman's default). */
export function defaultAuthFile(opts: AuthFileOptions = {}): string {
  return authFilePaths(opts)[0]!
}

interface AuthEntry {
  auth?: string
  username?: string
  password?: string
  identitytoken?: string
}
interface AuthFile {
  auths?: Record<string, AuthEntry>
  [key: string]: unknown
}

async function readAuthFile(path: string): Promise<AuthFile | undefined> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR')
      return undefined
    throw imageError('EACCES', `cannot read the credentials file ${path}: ${(e as Error).message}`, { path })
  }
  try {
    const j = JSON.parse(text) as unknown
    if (j === null || typeof j !== 'object' || Array.isArray(j)) throw new Error('not a JSON object')
    return j as AuthFile
  } catch (e) {
    throw imageError('EINVAL', `the credentials file ${path} is not valid: ${(e as Error).message}`, { path })
  }
}

/** A key of `auths` as the host (and repository) it names: no scheme, no `/v1/` or `/v2/`. */
function normalizeKey(key: string): string {
  let k = key.replace(/^https?:\/\//, '').replace(/\/+$/, '')
  k = k.replace(/\/v[12]$/, '')
  if (k === 'index.docker.io' || k === 'registry-1.docker.io') k = 'docker.io'
  if (k.startsWith('index.docker.io/') || k.startsWith('registry-1.docker.io/'))
    k = `docker.io/${k.slice(k.indexOf('/') + 1)}`
  return k
}

function decode(entry: AuthEntry, key: string, path: string): Credentials | undefined {
  if (entry.auth) {
    const text = Buffer.from(entry.auth, 'base64').toString('utf8')
    const i = text.indexOf(':')
    if (i <= 0)
      throw imageError('EINVAL', `${path}: auths[${JSON.stringify(key)}].auth is not base64 of user:password`, { path })
    return { username: text.slice(0, i), password: text.slice(i + 1) }
  }
  if (entry.username && entry.password !== undefined) return { username: entry.username, password: entry.password }
  return undefined
}

/**
 * The credentials for a repository: the most specific key first (`host/ns/repo`, then
 * `host/ns`, then `host`), the first file that has one winning. Undefined when none has.
 */
export async function findCredentials(
  domain: string,
  repository?: string,
  opts: AuthFileOptions = {},
): Promise<Credentials | undefined> {
  const wanted: string[] = []
  if (repository) {
    const parts = repository.split('/')
    for (let n = parts.length; n > 0; n--) wanted.push(`${domain}/${parts.slice(0, n).join('/')}`)
  }
  wanted.push(domain)
  for (const path of authFilePaths(opts)) {
    const file = await readAuthFile(path)
    if (!file?.auths) continue
    const byKey = new Map<string, [string, AuthEntry]>()
    for (const [k, v] of Object.entries(file.auths)) {
      if (v && typeof v === 'object') byKey.set(normalizeKey(k), [k, v])
    }
    for (const w of wanted) {
      const hit = byKey.get(w)
      if (!hit) continue
      const c = decode(hit[1], hit[0], path)
      if (c) return c
    }
  }
  return undefined
}

async function writeAuthFile(path: string, file: AuthFile): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 })
  const tmp = `${path}.${process.pid}.tmp`
  await writeFile(tmp, `${JSON.stringify(file, null, '\t')}\n`, { mode: 0o600 })
  await rename(tmp, path)
}

/** Saves credentials for a registry (or `host/repo`) in the auth file, as `podman login` does. */
export async function saveCredentials(key: string, creds: Credentials, opts: AuthFileOptions = {}): Promise<string> {
  if (!creds.username || creds.username.includes(':')) {
    throw imageError('EINVAL', 'username: must be non-empty and without ":"', { field: 'username' })
  }
  const path = defaultAuthFile(opts)
  const file = (await readAuthFile(path)) ?? {}
  const auths = { ...file.auths }
  const k = normalizeKey(key)
  for (const old of Object.keys(auths)) if (normalizeKey(old) === k) delete auths[old]
  auths[k] = { auth: Buffer.from(`${creds.username}:${creds.password}`).toString('base64') }
  await writeAuthFile(path, { ...file, auths })
  return path
}

/** Removes the credentials for a registry from the auth file; true if there were some. */
export async function removeCredentials(key: string, opts: AuthFileOptions = {}): Promise<boolean> {
  const path = defaultAuthFile(opts)
  const file = await readAuthFile(path)
  if (!file?.auths) return false
  const k = normalizeKey(key)
  const auths = { ...file.auths }
  let found = false
  for (const old of Object.keys(auths)) {
    if (normalizeKey(old) === k) {
      delete auths[old]
      found = true
    }
  }
  if (found) await writeAuthFile(path, { ...file, auths })
  return found
}

export interface Challenge {
  scheme: string
  params: Record<string, string>
}

/** Parses `WWW-Authenticate` (RFC 7235): `Bearer realm="…",service="…",scope="…"`, possibly several. */
export function parseChallenges(header: string | null): Challenge[] {
  if (!header) return []
  const out: Challenge[] = []
  const re =
    /\s*([A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]*)(?:\s+|$)((?:[A-Za-z0-9!#$%&'*+.^_`|~-]+\s*=\s*(?:"(?:[^"\\]|\\.)*"|[^\s,"]*)\s*(?:,\s*|$))*)/y
  let pos = 0
  while (pos < header.length) {
    re.lastIndex = pos
    const m = re.exec(header)
    if (!m || m[0].length === 0) break
    pos = re.lastIndex
    const params: Record<string, string> = {}
    for (const p of (m[2] ?? '').matchAll(/([A-Za-z0-9!#$%&'*+.^_`|~-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]*))/g)) {
      params[p[1]!.toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : (p[3] ?? '')
    }
    out.push({ scheme: m[1]!.toLowerCase(), params })
    while (header[pos] === ',' || header[pos] === ' ') pos++
  }
  return out
}
