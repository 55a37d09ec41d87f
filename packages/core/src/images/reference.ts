// Image references as docker and podman read them: `alpine` is `docker.io/library/alpine:latest`,
// `host:port/repo:tag`, `repo@sha256:…`, a tag with a digest; and the local transports
// `oci:DIR[:tag]`, `oci-archive:FILE[:ref]`, `docker-archive:FILE[:ref]`.
import { imageError } from './errors.js'

export const defaultDomain = 'docker.io'
export const defaultTag = 'latest'

/** A normalised reference to an image in a registry. */
export interface ImageReference {
  /** Registry host, with its port when it has one (`docker.io`, `127.0.0.1:5000`). */
  readonly domain: string
  /** Repository inside the registry (`library/alpine`). */
  readonly path: string
  /** `domain/path`. */
  readonly name: string
  readonly tag: string | undefined
  /** `sha256:…` when the reference pins one; it is then what is pulled, whatever the tag. */
  readonly digest: string | undefined
  /** `name:tag@digest`, `name:tag` or `name@digest`. */
  readonly full: string
}

/** Where an image comes from or goes to. */
export type ImageSource =
  | { transport: 'docker'; ref: ImageReference }
  | { transport: 'oci'; path: string; tag: string | undefined }
  | { transport: 'oci-archive'; path: string; tag: string | undefined }
  | { transport: 'docker-archive'; path: string; ref: ImageReference | undefined }

const alnum = '[a-z0-9]+'
const separator = '(?:[._]|__|[-]+)'
const pathComponent = `${alnum}(?:${separator}${alnum})*`
const pathComponentRe = new RegExp(`^${pathComponent}$`)
const domainComponent = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])'
const domainRe = new RegExp(`^(?:${domainComponent}(?:\\.${domainComponent})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]+)?$`)
const tagRe = /^[\w][\w.-]{0,127}$/
const digestRe = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$/
const maxNameLength = 255

function bad(input: string, reason: string, field = 'reference'): never {
  throw imageError('EINVAL', `invalid reference ${JSON.stringify(input)}: ${reason}`, { field })
}

function build(domain: string, path: string, tag: string | undefined, digest: string | undefined): ImageReference {
  const name = `${domain}/${path}`
  const full = `${name}${tag ? `:${tag}` : ''}${digest ? `@${digest}` : ''}`
  return { domain, path, name, tag, digest, full }
}

/**
 * Parses and normalises a registry reference: the domain is docker.io unless the first component
 * has a `.` or a `:` or is `localhost`; a one-component docker.io path is under `library/`; no
 * tag and no digest means `:latest`. Throws an `EINVAL` NsError naming the reference otherwise.
 */
export function parseReference(input: string, field = 'reference'): ImageReference {
  if (typeof input !== 'string' || input.length === 0) bad(String(input), 'empty', field)
  let rest = input.startsWith('docker://') ? input.slice('docker://'.length) : input
  let digest: string | undefined
  const at = rest.indexOf('@')
  if (at >= 0) {
    digest = rest.slice(at + 1)
    rest = rest.slice(0, at)
    if (!digestRe.test(digest)) bad(input, `${JSON.stringify(digest)} is not a digest (sha256:<64 hex digits>)`, field)
    if (digest.startsWith('sha256:') && !/^sha256:[a-f0-9]{64}$/.test(digest)) {
      bad(input, 'a sha256 digest has 64 lowercase hex digits', field)
    }
    if (!digest.startsWith('sha256:')) bad(input, `only sha256 digests are supported, not ${digest}`, field)
  }
  let tag: string | undefined
  const slash = rest.lastIndexOf('/')
  const colon = rest.lastIndexOf(':')
  if (colon > slash) {
    tag = rest.slice(colon + 1)
    rest = rest.slice(0, colon)
    if (!tagRe.test(tag))
      bad(input, `tag ${JSON.stringify(tag)} must be 1-128 of [A-Za-z0-9_.-], not starting with . or -`, field)
  }
  if (rest.length === 0) bad(input, 'no repository name', field)
  let domain = defaultDomain
  let path = rest
  const first = rest.indexOf('/')
  if (first >= 0) {
    const head = rest.slice(0, first)
    if (head.includes('.') || head.includes(':') || head === 'localhost' || head !== head.toLowerCase()) {
      if (!domainRe.test(head)) bad(input, `${JSON.stringify(head)} is not a registry host[:port]`, field)
      domain = head
      path = rest.slice(first + 1)
    }
  }
  if (domain === 'index.docker.io' || domain === 'registry-1.docker.io') domain = defaultDomain
  for (const c of path.split('/')) {
    if (!pathComponentRe.test(c)) {
      if (c !== c.toLowerCase()) bad(input, 'repository names must be lowercase', field)
      bad(input, `${JSON.stringify(c)} is not a valid repository component ([a-z0-9] joined by . _ __ or -)`, field)
    }
  }
  if (domain === defaultDomain && !path.includes('/')) path = `library/${path}`
  if (`${domain}/${path}`.length > maxNameLength)
    bad(input, `the name is longer than ${maxNameLength} characters`, field)
  if (!tag && !digest) tag = defaultTag
  return build(domain, path, tag, digest)
}

/** The same repository with another tag or digest (or none). */
export function withTarget(ref: ImageReference, target: { tag?: string; digest?: string }): ImageReference {
  return build(ref.domain, ref.path, target.tag, target.digest)
}

/** The short form docker prints: `alpine:3.20` for `docker.io/library/alpine:3.20`. */
export function familiarName(ref: ImageReference): string {
  let name = ref.name
  if (ref.domain === defaultDomain) {
    name = ref.path.startsWith('library/') ? ref.path.slice('library/'.length) : ref.path
  }
  return `${name}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`
}

const transports = ['docker', 'oci', 'oci-archive', 'docker-archive'] as const

/**
 * Parses a source or destination with its transport, as podman does: `oci:DIR[:tag]`,
 * `oci-archive:FILE[:ref]`, `docker-archive:FILE[:ref]`, `docker://REF`, or a plain registry
 * reference. The path ends at the first `:` after the transport (podman's rule).
 */
export function parseSource(input: string, field = 'reference'): ImageSource {
  if (typeof input !== 'string' || input.length === 0) bad(String(input), 'empty', field)
  const m = /^([a-z-]+):(.*)$/.exec(input)
  const transport = m?.[1]
  if (
    !m ||
    transport === undefined ||
    !(transports as readonly string[]).includes(transport) ||
    input.startsWith('docker://')
  ) {
    return { transport: 'docker', ref: parseReference(input, field) }
  }
  const body = m[2] ?? ''
  if (transport === 'docker') return { transport: 'docker', ref: parseReference(body, field) }
  const c = body.indexOf(':')
  const path = c >= 0 ? body.slice(0, c) : body
  const target = c >= 0 ? body.slice(c + 1) : undefined
  if (path.length === 0) bad(input, `${transport}: needs a path`, field)
  if (transport === 'docker-archive') {
    return { transport, path, ref: target ? parseReference(target, field) : undefined }
  }
  if (target !== undefined && target.length === 0) bad(input, 'empty tag after the path', field)
  if (target !== undefined && !/^[A-Za-z0-9._:/@-]+$/.test(target)) {
    bad(input, `${JSON.stringify(target)} is not a valid image name in a layout`, field)
  }
  return { transport: transport as 'oci' | 'oci-archive', path, tag: target }
}

/** Text form of a source: the transport and its path, or the registry reference. */
export function formatSource(src: ImageSource): string {
  switch (src.transport) {
    case 'docker':
      return src.ref.full
    case 'docker-archive':
      return `docker-archive:${src.path}${src.ref ? `:${src.ref.full}` : ''}`
    default:
      return `${src.transport}:${src.path}${src.tag ? `:${src.tag}` : ''}`
  }
}
