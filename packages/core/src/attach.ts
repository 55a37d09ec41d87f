// The terminal of a detached container, reached through its monitor's attach socket: raw
// output from the terminal, and framed messages to it (keys, window sizes).
import { closeSync, openSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import { join } from 'node:path'
import type { Readable } from 'node:stream'

import { checkSize } from './container.js'
import { NsError } from './errors.js'
import { frameKinds, maxFramePayload, stateFiles } from './generated/facts.js'

/** A socket path longer than this does not fit in a unix socket address. */
const MAX_SOCKET_PATH = 107

function frame(kind: number, payload: Uint8Array): Buffer {
  const head = Buffer.alloc(5)
  head.writeUInt8(kind, 0)
  head.writeUInt32BE(payload.length, 1)
  return Buffer.concat([head, payload])
}

/** A connection to a container's terminal. Closing it leaves the container running. */
export class Attachment {
  /** What the terminal shows, as it comes (raw bytes, escape sequences included). */
  readonly output: Readable
  /** Resolves when the connection ends: detached, or the container's terminal is gone. */
  readonly closed: Promise<void>
  readonly #socket: Socket

  constructor(socket: Socket) {
    this.#socket = socket
    this.output = socket
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()))
  }

  /** Type into the terminal. */
  write(data: string | Uint8Array): void {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data
    if (this.#socket.destroyed) return
    // In frames the monitor takes: a larger one would make it let this client go.
    for (let at = 0; at < bytes.length; at += maxFramePayload)
      this.#socket.write(frame(frameKinds.input, bytes.subarray(at, at + maxFramePayload)))
  }

  /** A new window size: the container's foreground program gets SIGWINCH. */
  resize(cols: number, rows: number): void {
    checkSize(cols, rows)
    const p = Buffer.alloc(4)
    p.writeUInt16BE(rows, 0)
    p.writeUInt16BE(cols, 2)
    if (!this.#socket.destroyed) this.#socket.write(frame(frameKinds.resize, p))
  }

  /** Detach: the container goes on. */
  close(): void {
    this.#socket.end()
    this.#socket.destroy()
  }
}

/** Connect to the attach socket in a container's folder. */
export function attachTo(dir: string, id: string): Promise<Attachment> {
  let path = join(dir, stateFiles.attachSocket)
  let dirFd: number | undefined
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH) {
    // Reached through a descriptor of the folder, as the monitor bound it.
    dirFd = openSync(dir, 'r')
    path = `/proc/self/fd/${dirFd}/${stateFiles.attachSocket}`
  }
  return new Promise((resolve, reject) => {
    const socket = connect({ path, allowHalfOpen: false })
    const done = () => {
      if (dirFd !== undefined) closeSync(dirFd)
      dirFd = undefined
    }
    socket.once('connect', () => {
      done()
      socket.on('error', () => {})
      resolve(new Attachment(socket))
    })
    socket.once('error', (e: NodeJS.ErrnoException) => {
      done()
      reject(
        new NsError({
          code: 'ESTATE',
          step: 'attach',
          path: join(dir, stateFiles.attachSocket),
          message: `cannot attach to container "${id}": its terminal is gone (${e.code ?? e.message})`,
        }),
      )
    })
  })
}
