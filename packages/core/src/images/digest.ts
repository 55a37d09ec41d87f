// Content digests (`sha256:<64 hex>`): parsing, and hashing bytes as they go by.
import { createHash, type Hash } from 'node:crypto'

import { imageError } from './errors.js'

const sha256Re = /^sha256:[a-f0-9]{64}$/

/** Is `s` a sha256 digest as the store keeps them? */
export function isDigest(s: string): boolean {
  return sha256Re.test(s)
}

/** Checks a digest from a manifest or an archive; only sha256 is accepted (as the store is keyed by it). */
export function checkDigest(s: unknown, field: string): string {
  if (typeof s === 'string' && sha256Re.test(s)) return s
  if (typeof s === 'string' && /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/.test(s)) {
    throw imageError('UNSUPPORTED_MEDIA_TYPE', `${field}: digest ${s} uses an algorithm other than sha256`, { field })
  }
  throw imageError('INVALID_MANIFEST', `${field}: ${JSON.stringify(s)} is not a sha256 digest`, { field })
}

export function hexOf(digest: string): string {
  return digest.slice('sha256:'.length)
}

export function sha256(data: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`
}

export function newHash(): Hash {
  return createHash('sha256')
}
