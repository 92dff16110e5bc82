/**
 * @module Durable Object SQLite persistence of a session: its config, the encoded memory blob in
 * ≤ 1 MiB chunks, and the last reply — all written in one `transactionSync`, so a reset at any
 * point leaves either the old or the new state, never a mix. Values are capped at 2 MB on
 * Cloudflare while local workerd accepts more, so the chunk size is enforced here. A blob offloaded
 * to R2 (`memory-offload.ts`) is stored as a pointer row (`meta` key `memoryRef`: key, bytes,
 * sha256) in place of its chunks, in the same transaction.
 */
import type { MemoryPointer } from './memory-offload.ts'

/** Chunk size for memory blobs (bytes). Cloudflare's SQLite value cap is 2 MB. */
export const CHUNK_BYTES = 1 << 20

/** Session configuration fixed at creation. */
export interface SessionConfig {
  id: string
  tenant: string
  model: string
  policy: { name: string; params: Record<string, number | string | boolean> }
  memoryDtype: 'float32' | 'float16' | 'kivi'
  /** KIVI options when memoryDtype is 'kivi' (defaults: 4 bits, G = 32, R = 32). */
  kivi?: { bits?: 2 | 4; groupSize?: number; residualTokens?: number; tail?: 'residual' | 'quantized'; layerBits?: (2 | 4)[] }
  createdAt: string
  /** Idle TTL (s) the session expires after; 0 = never; absent = the deployment's (`lifecycle.ts`). */
  idleTtlSeconds?: number
  /** Observations of the last N steps kept for the inspector (`frames.ts`); absent or 0: none. */
  retainFrames?: number
  /** Where steps run: in the Worker (absent or 'wasm') or forwarded to a GPU host ('gpu', `gpu-forward.ts`). */
  backend?: 'wasm' | 'gpu'
  /** The step layout (`StepLayout`, worker/engine.ts); absent = 'dynamic'. */
  layout?: 'dynamic' | 'fixed'
}

/** What `save` writes after a successful step. */
export interface SessionState {
  /** Last successful step seq (0 before any). */
  seq: number
  /** The encoded memory (SKVM envelope). */
  memory: Uint8Array
  /** The stored reply of step `seq`, replayed for a retry of the same seq. */
  reply: Uint8Array | null
  /** Where `memory` was put in R2 (`offloadMemory`): the pointer is stored instead of its chunks. */
  offloaded?: MemoryPointer | null
}

/** The SQLite tables of one session object. */
export class SessionStore {
  private readonly storage: DurableObjectStorage
  constructor(storage: DurableObjectStorage) {
    this.storage = storage
    storage.sql.exec(`CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v BLOB NOT NULL);
      CREATE TABLE IF NOT EXISTS memory_chunks (idx INTEGER PRIMARY KEY, data BLOB NOT NULL);`)
  }

  /** The session's config, or null when this object holds no session. */
  config(): SessionConfig | null {
    const row = this.storage.sql.exec<{ v: ArrayBuffer }>(`SELECT v FROM meta WHERE k = 'config'`).toArray()[0]
    return row ? (JSON.parse(new TextDecoder().decode(row.v)) as SessionConfig) : null
  }

  /** Last successful seq (0 if none). */
  seq(): number {
    const row = this.storage.sql.exec<{ v: ArrayBuffer }>(`SELECT v FROM meta WHERE k = 'seq'`).toArray()[0]
    return row ? Number(new TextDecoder().decode(row.v)) : 0
  }

  /** Number of writes of the session's memory since creation (steps and imports; 0 after create).
   * With `seq` it makes the session's ETag: a seq alone repeats after an import of a blob at the
   * same seq, the generation never does. */
  generation(): number {
    const row = this.storage.sql.exec<{ v: ArrayBuffer }>(`SELECT v FROM meta WHERE k = 'generation'`).toArray()[0]
    return row ? Number(new TextDecoder().decode(row.v)) : 0
  }

  /** The step whose memory is stored: `seq`, except for a GPU session whose host wrote its durable
   * copy at an earlier step (write-behind, `saveForwarded`). */
  durableSeq(): number {
    const row = this.storage.sql.exec<{ v: ArrayBuffer }>(`SELECT v FROM meta WHERE k = 'durableSeq'`).toArray()[0]
    return row ? Number(new TextDecoder().decode(row.v)) : this.seq()
  }

  /** A forwarded GPU step without a new durable copy: seq and reply advance, the stored memory
   * (of step `durableSeq`) stays; one transaction. */
  saveForwarded(seq: number, reply: Uint8Array, durableSeq: number): void {
    this.storage.transactionSync(() => {
      this.put('generation', new TextEncoder().encode(String(this.generation() + 1)))
      this.put('seq', new TextEncoder().encode(String(seq)))
      this.put('reply', reply)
      this.put('durableSeq', new TextEncoder().encode(String(durableSeq)))
    })
  }

  /** The stored reply of the last successful step, or null. */
  reply(): Uint8Array | null {
    const row = this.storage.sql.exec<{ v: ArrayBuffer }>(`SELECT v FROM meta WHERE k = 'reply'`).toArray()[0]
    return row ? new Uint8Array(row.v) : null
  }

  /** Size of the stored memory blob (bytes), without reading it (in SQLite or R2). */
  memoryBytes(): number {
    const pointer = this.memoryPointer()
    if (pointer) return pointer.bytes
    const row = this.storage.sql.exec<{ n: number | null }>(`SELECT SUM(length(data)) AS n FROM memory_chunks`).toArray()[0]
    return row?.n ?? 0
  }

  /** Where the memory blob is in R2, or null when it is in SQLite chunks (`memory()`). */
  memoryPointer(): MemoryPointer | null {
    const row = this.storage.sql.exec<{ v: ArrayBuffer }>(`SELECT v FROM meta WHERE k = 'memoryRef'`).toArray()[0]
    return row ? (JSON.parse(new TextDecoder().decode(row.v)) as MemoryPointer) : null
  }

  /** The memory blob reassembled from its SQLite chunks, or null (none, or it is in R2: read it
   * with `readMemory` of `memory-offload.ts`, which handles both). */
  memory(): Uint8Array | null {
    const rows = this.storage.sql
      .exec<{ data: ArrayBuffer }>(`SELECT data FROM memory_chunks ORDER BY idx`)
      .toArray()
    if (rows.length === 0) return null
    const total = rows.reduce((n, r) => n + r.data.byteLength, 0)
    const out = new Uint8Array(total)
    let at = 0
    for (const r of rows) {
      out.set(new Uint8Array(r.data), at)
      at += r.data.byteLength
    }
    return out
  }

  /** Creates the session: config, seq 0, empty memory (or its R2 pointer), atomically. */
  create(config: SessionConfig, memory: Uint8Array, offloaded?: MemoryPointer | null): void {
    this.storage.transactionSync(() => {
      this.put('config', new TextEncoder().encode(JSON.stringify(config)))
      this.writeState({ seq: 0, memory, reply: null, offloaded })
    })
  }

  /** Replaces seq, memory and reply and advances the generation, in one transaction.
   * @param midWrite called inside the transaction after the memory chunks, before seq and reply
   *   (fault tests, `faults.ts`) */
  save(state: SessionState, midWrite?: () => void): void {
    this.storage.transactionSync(() => {
      this.put('generation', new TextEncoder().encode(String(this.generation() + 1)))
      this.writeState(state, midWrite)
    })
  }

  /** Replaces the config (e.g. a new policy) and the state, advancing the generation, in one
   * transaction (lifecycle: rollback, policy change). */
  replace(config: SessionConfig, state: SessionState): void {
    this.storage.transactionSync(() => {
      this.put('config', new TextEncoder().encode(JSON.stringify(config)))
      this.put('generation', new TextEncoder().encode(String(this.generation() + 1)))
      this.writeState(state)
    })
  }

  /** Deletes everything this object stores. */
  destroy(): void {
    this.storage.transactionSync(() => {
      this.storage.sql.exec(`DELETE FROM meta`)
      this.storage.sql.exec(`DELETE FROM memory_chunks`)
    })
  }

  private writeState({ seq, memory, reply, offloaded }: SessionState, midWrite?: () => void): void {
    this.storage.sql.exec(`DELETE FROM memory_chunks`)
    if (offloaded) this.put('memoryRef', new TextEncoder().encode(JSON.stringify(offloaded)))
    else this.storage.sql.exec(`DELETE FROM meta WHERE k = 'memoryRef'`)
    for (let i = 0, idx = 0; !offloaded && i < memory.byteLength; i += CHUNK_BYTES, idx++) {
      const chunk = memory.subarray(i, Math.min(i + CHUNK_BYTES, memory.byteLength))
      this.storage.sql.exec(`INSERT INTO memory_chunks (idx, data) VALUES (?, ?)`, idx, toBuffer(chunk))
    }
    midWrite?.()
    this.put('seq', new TextEncoder().encode(String(seq)))
    this.storage.sql.exec(`DELETE FROM meta WHERE k = 'durableSeq'`) // the memory written is of step seq
    if (reply) this.put('reply', reply)
    else this.storage.sql.exec(`DELETE FROM meta WHERE k = 'reply'`)
  }

  private put(k: string, v: Uint8Array): void {
    this.storage.sql.exec(`INSERT OR REPLACE INTO meta (k, v) VALUES (?, ?)`, k, toBuffer(v))
  }
}

/** An exact-length ArrayBuffer of a view (SQLite binds the whole buffer otherwise). */
function toBuffer(v: Uint8Array): ArrayBuffer {
  return v.byteOffset === 0 && v.byteLength === v.buffer.byteLength
    ? (v.buffer as ArrayBuffer)
    : (new Uint8Array(v).buffer as ArrayBuffer) // a copy: Buffer#slice (msgpackr returns Buffers) is a view
}
