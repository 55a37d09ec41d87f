// A client of the distribution API v2 on Node's fetch: the `/v2/` ping, anonymous access,
// `Bearer` tokens (with the challenge's scope) and `Basic`, HTTPS unless a registry is marked
// insecure or is on loopback, redirects to blob storage without the registry's credentials,
// retries, and blobs resumed with `Range` where a connection broke.
import { findCredentials, parseChallenges, type AuthFileOptions, type Challenge, type Credentials } from './auth.js'
import { abortError, imageError } from './errors.js'
import { manifestAccept, type Descriptor } from './media.js'
import type { ImageReference } from './reference.js'
import { sha256 } from './digest.js'
import { NsError } from '../errors.js'

export interface RegistryOptions extends AuthFileOptions {
  /** Registries (`host[:port]`) that may be reached over plain HTTP. Loopback always may. */
  insecureRegistries?: readonly string[] | undefined
  /** Credentials to use instead of the auth files: one pair, or a lookup by registry. */
  credentials?: Credentials | ((domain: string) => Credentials | undefined) | undefined
  /** Attempts after the first for a failed connection, a 5xx/429 answer or a broken blob (default 4). */
  retries?: number | undefined
  /** Give up on an answer's headers, or on a body that sends nothing, after this long (default 30 s). */
  timeoutMs?: number | undefined
  /** Base of the back-off between attempts (default 250 ms, doubling, at most 5 s). */
  retryDelayMs?: number | undefined
  userAgent?: string | undefined
  /**
   * The `fetch` every request goes through (registry, redirects, token servers; default the
   * global one). A server passes one whose connections its policy checks; an `NsError` it throws
   * is the pull's error as it is (not retried, not called unreachable).
   */
  fetch?: typeof fetch | undefined
}

/** Where a blob download is written: the store's temp file, which also hashes what it is given. */
export interface BlobSink {
  /** Bytes written so far (where a resumed download starts). */
  readonly written: number
  write(chunk: Uint8Array): Promise<void>
  /** Back to empty (the server ignored a `Range`). */
  reset(): Promise<void>
}

export interface BlobDownloadEvents {
  /** Called as bytes arrive (with the total written). */
  onBytes?: (written: number) => void
  /** Called before another attempt, with the offset it resumes from. */
  onRetry?: (attempt: number, offset: number, error: Error) => void
}

export interface ManifestResponse {
  bytes: Buffer
  mediaType: string | undefined
  digest: string
}

const maxManifestBytes = 4 * 1024 * 1024
const maxRedirects = 10
const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error)
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    const onAbort = () => {
      clearTimeout(t)
      reject(signal!.reason as Error)
    }
    signal?.addEventListener('abort', onAbort, { once: true })
  })

/** Is this registry host on loopback (`localhost`, `127.0.0.0/8`, `[::1]`), with or without a port? */
export function isLoopback(domain: string): boolean {
  const host = domain.startsWith('[') ? domain.slice(0, domain.indexOf(']') + 1) : domain.replace(/:\d+$/, '')
  return host === 'localhost' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host) || host === '[::1]'
}

class Transient extends Error {}

interface AuthState {
  /** The header to send, once known. */
  header?: string
  /** Bearer tokens expire: when to fetch again. */
  expires?: number
}

function describeCause(e: unknown): string {
  const err = e as { cause?: { code?: string; message?: string }; message?: string; code?: string }
  const c = err?.cause
  if (c?.code) return `${c.code}${c.message && !c.message.includes(c.code) ? ` (${c.message})` : ''}`
  return c?.message ?? err?.message ?? String(e)
}

function isAbort(e: unknown): boolean {
  return (e as Error)?.name === 'AbortError' || (e as Error)?.name === 'TimeoutError'
}

export class RegistryClient {
  readonly #opts: RegistryOptions
  readonly #auth = new Map<string, AuthState>()
  readonly #pinged = new Map<string, Promise<Challenge[]>>()
  readonly #retries: number
  readonly #timeout: number
  readonly #retryDelay: number
  readonly #fetch: typeof fetch

  constructor(opts: RegistryOptions = {}) {
    this.#opts = opts
    this.#fetch = opts.fetch ?? fetch
    this.#retries = opts.retries ?? 4
    this.#timeout = opts.timeoutMs ?? 30_000
    this.#retryDelay = opts.retryDelayMs ?? 250
  }

  /** May this registry be reached over plain HTTP? */
  isInsecure(domain: string): boolean {
    return isLoopback(domain) || (this.#opts.insecureRegistries ?? []).includes(domain)
  }

  /** The base URL of a registry's API (docker.io's is registry-1.docker.io). */
  baseUrl(domain: string): string {
    const host = domain === 'docker.io' ? 'registry-1.docker.io' : domain
    return `${this.isInsecure(domain) ? 'http' : 'https'}://${host}`
  }

  async #credentials(ref: ImageReference): Promise<Credentials | undefined> {
    const c = this.#opts.credentials
    if (typeof c === 'function') return c(ref.domain)
    if (c) return c
    return findCredentials(ref.domain, ref.path, this.#opts)
  }

  #unreachable(ref: ImageReference, url: string, e: unknown): NsError {
    const cause = describeCause(e)
    const tls = /EPROTO|wrong version number|SSL|TLS|certificate|CERT_/i.test(cause)
    return imageError(
      'REGISTRY_UNREACHABLE',
      `${ref.full}: registry ${ref.domain} is unreachable at ${url}: ${cause}`,
      {
        hint: tls
          ? `if ${ref.domain} serves plain HTTP, mark it insecure (insecureRegistries)`
          : 'check the registry address and your network, then try again',
      },
    )
  }

  /** GET with redirects followed by hand: the Authorization header goes only to the registry's own origin. */
  async #fetchFollow(
    url: string,
    headers: Record<string, string>,
    signal: AbortSignal,
    method = 'GET',
  ): Promise<Response> {
    const origin = new URL(url).origin
    let current = url
    for (let hop = 0; hop <= maxRedirects; hop++) {
      const h = { ...headers }
      if (new URL(current).origin !== origin) delete h.Authorization
      const res = await this.#fetch(current, { method, headers: h, redirect: 'manual', signal })
      if (res.status >= 300 && res.status < 400 && res.headers.get('location')) {
        await res.body?.cancel()
        current = new URL(res.headers.get('location')!, current).toString()
        continue
      }
      return res
    }
    throw new Transient(`more than ${maxRedirects} redirects from ${url}`)
  }

  /**
   * Sends a request to a registry, adding what its challenge asked for, retrying connection
   * failures and 5xx/429 answers with back-off. The caller reads (or cancels) the body; while it
   * does, `timer` is its to keep alive (an idle body aborts after the timeout).
   */
  async #send(
    ref: ImageReference,
    path: string,
    headers: Record<string, string>,
    signal: AbortSignal | undefined,
    method = 'GET',
  ): Promise<{ res: Response; controller: AbortController; url: string; release: () => void }> {
    const url = `${this.baseUrl(ref.domain)}${path}`
    const scope = `repository:${ref.path}:pull`
    await this.#ensurePinged(ref, signal)
    let authed = false
    for (let attempt = 0; ; attempt++) {
      if (signal?.aborted) throw abortError(ref.full, signal)
      const controller = new AbortController()
      const onAbort = () => controller.abort(signal?.reason)
      signal?.addEventListener('abort', onAbort, { once: true })
      const timer = setTimeout(() => controller.abort(new Transient(`no answer in ${this.#timeout} ms`)), this.#timeout)
      const auth = this.#auth.get(`${ref.domain} ${scope}`) ?? this.#auth.get(ref.domain)
      const h: Record<string, string> = { ...headers }
      if (auth?.header) h.Authorization = auth.header
      if (this.#opts.userAgent) h['User-Agent'] = this.#opts.userAgent
      let res: Response
      try {
        res = await this.#fetchFollow(url, h, controller.signal, method)
      } catch (e) {
        clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
        if (signal?.aborted) throw abortError(ref.full, signal)
        if (e instanceof NsError) throw e
        if (attempt < this.#retries) {
          await sleep(this.#backoff(attempt), signal)
          continue
        }
        throw this.#unreachable(ref, url, isAbort(e) ? controller.signal.reason : e)
      }
      clearTimeout(timer)
      // The caller's abort stays linked while it reads the body; `release` unlinks it.
      const release = () => signal?.removeEventListener('abort', onAbort)
      if (res.status === 401 && !authed) {
        release()
        await res.body?.cancel()
        authed = true
        await this.#authenticate(ref, parseChallenges(res.headers.get('www-authenticate')), scope, signal, true)
        attempt--
        continue
      }
      if ((res.status === 429 || res.status >= 500) && attempt < this.#retries) {
        release()
        await res.body?.cancel()
        await sleep(this.#backoff(attempt, res.headers.get('retry-after')), signal)
        continue
      }
      return { res, controller, url, release }
    }
  }

  #backoff(attempt: number, retryAfter?: string | null): number {
    const after = retryAfter ? Number(retryAfter) * 1000 : NaN
    if (Number.isFinite(after) && after >= 0) return Math.min(after, 30_000)
    return Math.min(this.#retryDelay * 2 ** attempt, 5_000)
  }

  /** `GET /v2/`: tells whether the registry answers, and how it wants to be authenticated. */
  async ping(ref: ImageReference, signal?: AbortSignal): Promise<{ status: number; challenges: Challenge[] }> {
    const url = `${this.baseUrl(ref.domain)}/v2/`
    for (let attempt = 0; ; attempt++) {
      const t = AbortSignal.timeout(this.#timeout)
      const s = signal ? AbortSignal.any([signal, t]) : t
      try {
        const res = await this.#fetch(url, { redirect: 'follow', signal: s })
        await res.body?.cancel()
        if (res.status >= 500 && attempt < this.#retries) {
          await sleep(this.#backoff(attempt), signal)
          continue
        }
        return { status: res.status, challenges: parseChallenges(res.headers.get('www-authenticate')) }
      } catch (e) {
        if (signal?.aborted) throw abortError(ref.full, signal)
        if (e instanceof NsError) throw e
        if (attempt < this.#retries) {
          await sleep(this.#backoff(attempt), signal)
          continue
        }
        throw this.#unreachable(ref, url, e)
      }
    }
  }

  #ensurePinged(ref: ImageReference, signal?: AbortSignal): Promise<Challenge[]> {
    let p = this.#pinged.get(ref.domain)
    if (!p) {
      p = this.ping(ref, signal).then(async ({ status, challenges }) => {
        if (status === 401) {
          await this.#authenticate(ref, challenges, `repository:${ref.path}:pull`, signal, false)
        } else if (status !== 200 && status !== 404) {
          throw imageError('REGISTRY_ERROR', `${ref.full}: ${ref.domain} answered ${status} to /v2/: not a registry?`)
        }
        return challenges
      })
      p.catch(() => this.#pinged.delete(ref.domain))
      this.#pinged.set(ref.domain, p)
    }
    return p
  }

  /**
   * Answers a challenge: `Bearer` fetches a token from its realm for the scope (with the
   * credentials when there are some), `Basic` sends the credentials. `strict`: a 401 of a real
   * request, so having nothing to answer with is an error.
   */
  async #authenticate(
    ref: ImageReference,
    challenges: Challenge[],
    scope: string,
    signal: AbortSignal | undefined,
    strict: boolean,
  ): Promise<void> {
    const creds = await this.#credentials(ref)
    const bearer = challenges.find((c) => c.scheme === 'bearer')
    const basic = challenges.find((c) => c.scheme === 'basic')
    if (bearer?.params.realm) {
      const realm = new URL(bearer.params.realm)
      const wantScope = bearer.params.scope || scope
      const q = new URLSearchParams()
      if (bearer.params.service) q.set('service', bearer.params.service)
      for (const s of wantScope.split(' ')) if (s) q.append('scope', s)
      if (creds) q.set('account', creds.username)
      const headers: Record<string, string> = {}
      if (creds) {
        if (realm.protocol !== 'https:' && !isLoopback(realm.host) && !this.isInsecure(ref.domain)) {
          throw imageError(
            'UNAUTHORIZED',
            `${ref.full}: the token realm ${realm.origin} is not HTTPS; credentials not sent`,
          )
        }
        headers.Authorization = `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`
      }
      for (const [k, v] of q) realm.searchParams.append(k, v)
      let res: Response
      try {
        const t = AbortSignal.timeout(this.#timeout)
        res = await this.#fetch(realm, { headers, signal: signal ? AbortSignal.any([signal, t]) : t })
      } catch (e) {
        if (signal?.aborted) throw abortError(ref.full, signal)
        if (e instanceof NsError) throw e
        throw imageError(
          'REGISTRY_UNREACHABLE',
          `${ref.full}: the token server ${realm.origin} is unreachable: ${describeCause(e)}`,
        )
      }
      if (res.status === 401 || res.status === 403) {
        await res.body?.cancel()
        throw imageError(
          'UNAUTHORIZED',
          `${ref.full}: the token server refused ${creds ? `user ${creds.username}` : 'anonymous access'}`,
          {
            hint: creds ? 'check the user name and password of the login' : `log in to ${ref.domain} first`,
          },
        )
      }
      if (!res.ok) {
        await res.body?.cancel()
        throw imageError('REGISTRY_ERROR', `${ref.full}: the token server answered ${res.status}`)
      }
      let body: { token?: string; access_token?: string; expires_in?: number }
      try {
        body = (await res.json()) as typeof body
      } catch {
        throw imageError('REGISTRY_ERROR', `${ref.full}: the token server answered something other than JSON`)
      }
      const token = body.token ?? body.access_token
      if (!token) throw imageError('REGISTRY_ERROR', `${ref.full}: the token server answered no token`)
      const ttl = Math.max(Number(body.expires_in) || 60, 10)
      this.#auth.set(`${ref.domain} ${scope}`, { header: `Bearer ${token}`, expires: Date.now() + ttl * 1000 })
      return
    }
    if (basic) {
      if (!creds) {
        if (!strict) return
        throw imageError('UNAUTHORIZED', `${ref.full}: ${ref.domain} needs a login`, {
          hint: `log in to ${ref.domain} (an auth.json entry) and try again`,
        })
      }
      this.#auth.set(ref.domain, {
        header: `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`,
      })
      return
    }
    if (strict) {
      throw imageError('UNAUTHORIZED', `${ref.full}: ${ref.domain} refused access and asked for no known kind of login`)
    }
  }

  /**
   * Checks that the credentials of this client open the registry (`ns login`): a token for no
   * particular repository, or `/v2/` with Basic. Throws UNAUTHORIZED if they do not.
   */
  async verifyLogin(domain: string, signal?: AbortSignal): Promise<void> {
    const ref: ImageReference = { domain, path: '', name: domain, tag: undefined, digest: undefined, full: domain }
    const { status, challenges } = await this.ping(ref, signal)
    if (status === 200) return
    if (status !== 401) throw imageError('REGISTRY_ERROR', `${domain}: answered ${status} to /v2/: not a registry?`)
    const creds = await this.#credentials(ref)
    if (!creds) throw imageError('UNAUTHORIZED', `${domain}: no credentials to log in with`)
    if (challenges.some((c) => c.scheme === 'bearer')) {
      await this.#authenticate(ref, challenges, '', signal, true)
      return
    }
    const basic = `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`
    const t = AbortSignal.timeout(this.#timeout)
    let res: Response
    try {
      res = await this.#fetch(`${this.baseUrl(domain)}/v2/`, {
        headers: { Authorization: basic },
        signal: signal ? AbortSignal.any([signal, t]) : t,
      })
    } catch (e) {
      if (e instanceof NsError) throw e
      throw this.#unreachable(ref, `${this.baseUrl(domain)}/v2/`, e)
    }
    await res.body?.cancel()
    if (res.status !== 200) {
      throw imageError('UNAUTHORIZED', `${domain}: login refused for user ${creds.username} (${res.status})`, {
        hint: 'check the user name and password',
      })
    }
  }

  /** Turns an error answer into the NsError the user reads. */
  async #answerError(ref: ImageReference, res: Response, what: string): Promise<NsError> {
    let codes: { code?: string; message?: string }[] = []
    try {
      const j = (await res.json()) as { errors?: { code?: string; message?: string }[] }
      codes = Array.isArray(j.errors) ? j.errors : []
    } catch {
      // not JSON: the status says it all
    }
    const code = codes[0]?.code
    const detail = codes[0]?.message ? `: ${codes[0].message}` : ''
    if (res.status === 401 || code === 'UNAUTHORIZED') {
      return imageError('UNAUTHORIZED', `${ref.full}: access to ${ref.name} is not authorized${detail}`, {
        hint: `the repository may not exist, or may need a login to ${ref.domain}`,
      })
    }
    if (res.status === 403 || code === 'DENIED') {
      return imageError('DENIED', `${ref.full}: access to ${ref.name} is denied${detail}`, {
        hint: 'the login has no right to pull this repository',
      })
    }
    if (code === 'NAME_UNKNOWN') {
      return imageError('NAME_UNKNOWN', `${ref.full}: repository ${ref.name} does not exist`, {
        hint: 'check the image name',
      })
    }
    if (res.status === 404 && what === 'manifest') {
      const target = ref.digest ? `digest ${ref.digest}` : `tag ${ref.tag}`
      return imageError('MANIFEST_UNKNOWN', `${ref.full}: ${target} not found in ${ref.name}`, {
        hint: 'check the tag (or digest); the registry has no such image',
      })
    }
    if (res.status === 404) {
      return imageError('REGISTRY_ERROR', `${ref.full}: the registry has no ${what}${detail}`)
    }
    return imageError('REGISTRY_ERROR', `${ref.full}: the registry answered ${res.status} for the ${what}${detail}`)
  }

  /**
   * Fetches a manifest (or index) by tag or digest, at most 4 MiB, its digest computed here and
   * checked against the one asked for (and against the registry's `Docker-Content-Digest`).
   */
  async getManifest(ref: ImageReference, target: string, signal?: AbortSignal): Promise<ManifestResponse> {
    const { res, controller, release } = await this.#send(
      ref,
      `/v2/${ref.path}/manifests/${target}`,
      { Accept: manifestAccept },
      signal,
    )
    try {
      return await this.#readManifest(ref, target, res, controller, signal)
    } finally {
      release()
    }
  }

  async #readManifest(
    ref: ImageReference,
    target: string,
    res: Response,
    controller: AbortController,
    signal: AbortSignal | undefined,
  ): Promise<ManifestResponse> {
    if (!res.ok) throw await this.#answerError(ref, res, 'manifest')
    const len = Number(res.headers.get('content-length'))
    if (len > maxManifestBytes) {
      await res.body?.cancel()
      throw imageError('INVALID_MANIFEST', `${ref.full}: the manifest is ${len} bytes, more than ${maxManifestBytes}`)
    }
    const chunks: Buffer[] = []
    let total = 0
    const timer = setTimeout(() => controller.abort(new Transient('manifest body stalled')), this.#timeout)
    try {
      for await (const c of res.body ?? []) {
        total += c.length
        if (total > maxManifestBytes) {
          controller.abort()
          throw imageError('INVALID_MANIFEST', `${ref.full}: the manifest is larger than ${maxManifestBytes} bytes`)
        }
        chunks.push(Buffer.from(c))
      }
    } catch (e) {
      if (e instanceof NsError) throw e
      if (signal?.aborted) throw abortError(ref.full, signal)
      throw this.#unreachable(ref, res.url, e)
    } finally {
      clearTimeout(timer)
    }
    const bytes = Buffer.concat(chunks)
    const digest = sha256(bytes)
    if (target.startsWith('sha256:') && digest !== target) {
      throw imageError('DIGEST_MISMATCH', `${ref.full}: the manifest served for ${target} has digest ${digest}`, {
        hint: 'the registry (or something between) altered it; nothing was stored',
      })
    }
    const claimed = res.headers.get('docker-content-digest')
    if (claimed && claimed.startsWith('sha256:') && claimed !== digest) {
      throw imageError(
        'DIGEST_MISMATCH',
        `${ref.full}: the registry says the manifest is ${claimed}, its bytes are ${digest}`,
      )
    }
    return { bytes, mediaType: res.headers.get('content-type') ?? undefined, digest }
  }

  /**
   * Downloads a blob into `sink`, resuming with `Range: bytes=N-` after a broken connection
   * (starting over if the server ignores the range). Checks the size against the descriptor;
   * the digest is the sink's to check.
   */
  async downloadBlob(
    ref: ImageReference,
    desc: Descriptor,
    sink: BlobSink,
    events: BlobDownloadEvents = {},
    signal?: AbortSignal,
  ): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const offset = sink.written
      const headers: Record<string, string> = {}
      if (offset > 0) headers.Range = `bytes=${offset}-`
      const { res, controller, release } = await this.#send(
        ref,
        `/v2/${ref.path}/blobs/${desc.digest}`,
        headers,
        signal,
      )
      try {
        if (res.status === 416 && offset > 0) {
          await res.body?.cancel()
          await sink.reset()
          throw new Transient('the server refused the range')
        }
        if (!res.ok) throw await this.#answerError(ref, res, `blob ${desc.digest}`)
        if (offset > 0) {
          const range = res.headers.get('content-range')
          if (res.status !== 206 || !range?.startsWith(`bytes ${offset}-`)) await sink.reset()
        }
        await this.#readBody(res, controller, sink, desc, events)
        if (sink.written < desc.size) throw new Transient(`the body ended after ${sink.written} of ${desc.size} bytes`)
        return
      } catch (e) {
        // Whatever is left of the body is not wanted: let the connection go.
        controller.abort()
        if (signal?.aborted) throw abortError(ref.full, signal)
        if (e instanceof NsError) throw e
        if (attempt >= this.#retries) {
          throw imageError(
            'REGISTRY_UNREACHABLE',
            `${ref.full}: blob ${desc.digest} broke off at ${sink.written} of ${desc.size} bytes: ${describeCause(e)}`,
            { hint: 'try again; what was fetched of other blobs is kept' },
          )
        }
        events.onRetry?.(attempt + 1, sink.written, e as Error)
        await sleep(this.#backoff(attempt), signal)
      } finally {
        release()
      }
    }
  }

  async #readBody(
    res: Response,
    controller: AbortController,
    sink: BlobSink,
    desc: Descriptor,
    events: BlobDownloadEvents,
  ): Promise<void> {
    let timer = setTimeout(() => controller.abort(new Transient('the body stalled')), this.#timeout)
    try {
      for await (const chunk of res.body ?? []) {
        clearTimeout(timer)
        timer = setTimeout(() => controller.abort(new Transient('the body stalled')), this.#timeout)
        if (sink.written + chunk.length > desc.size) {
          controller.abort()
          throw imageError(
            'DIGEST_MISMATCH',
            `blob ${desc.digest} is larger than the ${desc.size} bytes its descriptor says`,
            {
              hint: 'the registry served other content; nothing was stored',
            },
          )
        }
        await sink.write(chunk)
        events.onBytes?.(sink.written)
      }
    } finally {
      clearTimeout(timer)
    }
  }
}
