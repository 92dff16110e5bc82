/**
 * @module The GPU host's durable copy of each session: its config, last seq, forwarding tag and the
 * SKVM memory blob of step `memorySeq`. `FileStore` writes one file per session on local disk
 * (development; atomic: temp file + rename); `MemoryStore` keeps them in a Map (tests). A store for
 * production (R2, or the Durable Object itself through the forwarding reply) implements the same
 * methods. Beside the record a store keeps the session's last step reply (`putReply`), written when
 * a session leaves memory or the host shuts down, so a retry of that step gets it back.
 */
import { mkdirSync } from 'node:fs'
import { readFile, rename, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import type { SessionConfig } from '../worker/storage.ts'

/** What the GPU host keeps of a session (`SessionConfig` without tenant: the host trusts its caller). */
export type HostSessionConfig = Pick<SessionConfig, 'model' | 'policy' | 'memoryDtype' | 'kivi'>

/** One durable record. The session had run `seq` steps; `memory` is the blob of step `memorySeq`
 * (≤ seq: steps after it were lost, and said so). */
export interface DurableRecord {
  config: HostSessionConfig
  seq: number
  memorySeq: number
  /** The forwarding Durable Object's state tag (its ETag) this memory belongs to, if forwarded. */
  tag?: string
  memory: Uint8Array
}

/** Where the durable copies go. */
export interface DurableStore {
  /** @throws CorruptRecordError when a stored record cannot be read back */
  get(id: string): Promise<DurableRecord | null>
  put(id: string, record: DurableRecord): Promise<void>
  /** Removes the record and the reply. */
  delete(id: string): Promise<void>
  /** Keeps `reply` (the packed reply of step `seq`) beside the record, replacing an earlier one. */
  putReply(id: string, seq: number, reply: Uint8Array): Promise<void>
  /** The kept reply, if any (a reply that cannot be read back counts as none). */
  getReply(id: string): Promise<{ seq: number; reply: Uint8Array } | null>
  /** Removes the kept reply (a new or seeded state of the session). */
  deleteReply(id: string): Promise<void>
}

/** A stored record that cannot be read back (a truncated or edited file). */
export class CorruptRecordError extends Error {}

/** Session ids the host accepts (the Worker's `s_…` ids and Durable Object ids: hex). */
export const HOST_SESSION_ID = /^[A-Za-z0-9_-]{1,128}$/

/** In-memory store (tests, or a host that needs no durability). */
export class MemoryStore implements DurableStore {
  readonly records = new Map<string, DurableRecord>()
  /** Number of `put` calls (write-behind tests count them). */
  writes = 0
  async get(id: string) {
    return this.records.get(id) ?? null
  }
  async put(id: string, record: DurableRecord) {
    this.writes++
    this.records.set(id, { ...record, memory: new Uint8Array(record.memory) })
  }
  readonly replies = new Map<string, { seq: number; reply: Uint8Array }>()
  async delete(id: string) {
    this.records.delete(id)
    this.replies.delete(id)
  }
  async putReply(id: string, seq: number, reply: Uint8Array) {
    this.replies.set(id, { seq, reply: new Uint8Array(reply) })
  }
  async getReply(id: string) {
    return this.replies.get(id) ?? null
  }
  async deleteReply(id: string) {
    this.replies.delete(id)
  }
}

/** Local-disk store: `<dir>/<id>.session` = u32 header length · JSON header · memory blob;
 * `<dir>/<id>.reply` = float64 seq (little-endian) · packed reply. */
export class FileStore implements DurableStore {
  readonly dir: string
  writes = 0
  constructor(dir: string) {
    this.dir = dir
    mkdirSync(dir, { recursive: true })
  }
  private file(id: string): string {
    if (!HOST_SESSION_ID.test(id)) throw new RangeError(`bad session id for a file name: ${id}`)
    return path.join(this.dir, `${id}.session`)
  }
  async get(id: string): Promise<DurableRecord | null> {
    let bytes: Buffer
    try {
      bytes = await readFile(this.file(id))
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null
      throw e
    }
    const n = bytes.length >= 4 ? bytes.readUInt32LE(0) : -1
    if (n < 0 || 4 + n > bytes.length) throw new CorruptRecordError(`${id}.session: ${bytes.length} bytes, header of ${n} bytes`)
    let head: Omit<DurableRecord, 'memory'>
    try {
      head = JSON.parse(bytes.subarray(4, 4 + n).toString('utf8'))
    } catch {
      throw new CorruptRecordError(`${id}.session: its header is not JSON`)
    }
    if (typeof head !== 'object' || head === null || typeof head.seq !== 'number' || typeof head.memorySeq !== 'number' || typeof head.config !== 'object' || head.config === null)
      throw new CorruptRecordError(`${id}.session: header lacks config, seq or memorySeq`)
    return { ...head, memory: new Uint8Array(bytes.subarray(4 + n)) }
  }
  async put(id: string, { memory, ...head }: DurableRecord): Promise<void> {
    const json = Buffer.from(JSON.stringify(head))
    const len = Buffer.alloc(4)
    len.writeUInt32LE(json.length)
    const tmp = `${this.file(id)}.${process.pid}.tmp`
    await writeFile(tmp, Buffer.concat([len, json, memory]))
    await rename(tmp, this.file(id))
    this.writes++
  }
  async delete(id: string): Promise<void> {
    await rm(this.replyFile(id), { force: true }) // first: never a reply without its record
    await rm(this.file(id), { force: true })
  }
  async deleteReply(id: string): Promise<void> {
    await rm(this.replyFile(id), { force: true })
  }
  private replyFile(id: string): string {
    return this.file(id).replace(/\.session$/, '.reply')
  }
  async putReply(id: string, seq: number, reply: Uint8Array): Promise<void> {
    const head = Buffer.alloc(8)
    head.writeDoubleLE(seq) // seq may pass 2^32 (the schemas allow any safe integer)
    const tmp = `${this.replyFile(id)}.${process.pid}.tmp`
    await writeFile(tmp, Buffer.concat([head, reply]))
    await rename(tmp, this.replyFile(id))
  }
  async getReply(id: string): Promise<{ seq: number; reply: Uint8Array } | null> {
    try {
      const bytes = await readFile(this.replyFile(id))
      const seq = bytes.length > 8 ? bytes.readDoubleLE(0) : NaN
      return Number.isSafeInteger(seq) && seq > 0 ? { seq, reply: new Uint8Array(bytes.subarray(8)) } : null
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null
      throw e
    }
  }
}
