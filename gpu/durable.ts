/**
 * @module The GPU host's durable copy of each session: its config, last seq, forwarding tag and the
 * SKVM memory blob of step `memorySeq`. `FileStore` writes one file per session on local disk
 * (development; atomic: temp file + rename); `MemoryStore` keeps them in a Map (tests). A store for
 * production (R2, or the Durable Object itself through the forwarding reply) implements the same
 * three methods.
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
  get(id: string): Promise<DurableRecord | null>
  put(id: string, record: DurableRecord): Promise<void>
  delete(id: string): Promise<void>
}

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
  async delete(id: string) {
    this.records.delete(id)
  }
}

/** Local-disk store: `<dir>/<id>.session` = u32 header length · JSON header · memory blob. */
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
    const n = bytes.readUInt32LE(0)
    const head = JSON.parse(bytes.subarray(4, 4 + n).toString('utf8')) as Omit<DurableRecord, 'memory'>
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
    await rm(this.file(id), { force: true })
  }
}
