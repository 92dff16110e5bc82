/**
 * @module Frame retention: by default a step's observation (screenshot, camera frames, proprio,
 * instruction) lives only for the step — nothing of it is stored. A session created with
 * `retainFrames: N` keeps the observations of its last N steps (msgpack, in ≤ 1 MiB chunks) in its
 * Durable Object's SQLite, written right after the step's state in the same synchronous block (one
 * implicit transaction); for the inspector page. Reset, rollback, import and deletion drop them.
 */
import { CHUNK_BYTES } from './storage.ts'

/** Most retained frames per session when `MAX_RETAINED_FRAMES` is unset. */
export const DEFAULT_MAX_RETAINED_FRAMES = 16

/** The deployment's cap on `retainFrames` (`MAX_RETAINED_FRAMES`; "0" turns retention off). */
export function maxRetainedFrames(env: { MAX_RETAINED_FRAMES?: string }): number {
  const n = Number(env.MAX_RETAINED_FRAMES ?? DEFAULT_MAX_RETAINED_FRAMES)
  return Number.isInteger(n) && n >= 0 ? n : DEFAULT_MAX_RETAINED_FRAMES
}

/** One retained observation: its step and size (bytes of msgpack). */
export interface RetainedFrame {
  seq: number
  bytes: number
}

/** The `retained_frames` table of one session object. */
export class FrameStore {
  private readonly sql: SqlStorage
  constructor(storage: DurableObjectStorage) {
    this.sql = storage.sql
    this.sql.exec(`CREATE TABLE IF NOT EXISTS retained_frames (seq INTEGER NOT NULL, part INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (seq, part))`)
  }

  /** Keeps step `seq`'s packed observation and drops those older than the last `retain` steps. */
  keep(seq: number, observation: Uint8Array, retain: number): void {
    this.sql.exec(`DELETE FROM retained_frames WHERE seq >= ? OR seq <= ?`, seq, seq - retain)
    for (let at = 0, part = 0; at < observation.byteLength || part === 0; at += CHUNK_BYTES, part++)
      this.sql.exec(`INSERT INTO retained_frames (seq, part, data) VALUES (?, ?, ?)`, seq, part, copy(observation.subarray(at, at + CHUNK_BYTES)))
  }

  /** The retained steps, oldest first. */
  list(): RetainedFrame[] {
    return this.sql
      .exec<{ seq: number; bytes: number }>(`SELECT seq, SUM(length(data)) AS bytes FROM retained_frames GROUP BY seq ORDER BY seq`)
      .toArray()
      .map((r) => ({ seq: r.seq, bytes: r.bytes }))
  }

  /** Step `seq`'s packed observation, or null when not retained. */
  get(seq: number): Uint8Array | null {
    const parts = this.sql.exec<{ data: ArrayBuffer }>(`SELECT data FROM retained_frames WHERE seq = ? ORDER BY part`, seq).toArray()
    if (parts.length === 0) return null
    const out = new Uint8Array(parts.reduce((n, p) => n + p.data.byteLength, 0))
    let at = 0
    for (const p of parts) {
      out.set(new Uint8Array(p.data), at)
      at += p.data.byteLength
    }
    return out
  }

  /** Drops every retained observation (a new episode or another state). */
  clear(): void {
    this.sql.exec(`DELETE FROM retained_frames`)
  }
}

function copy(v: Uint8Array): ArrayBuffer {
  return new Uint8Array(v).buffer as ArrayBuffer
}
