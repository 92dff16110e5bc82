/**
 * @module A session's named snapshots in its Durable Object's SQLite: each one the stored memory
 * blob (≤ 1 MiB chunks, as `storage.ts`), the seq and ETag it was taken at, and the policy it was
 * written under (a rollback restores that policy with the memory).
 */
import { CHUNK_BYTES } from './storage.ts'

/** What is listed about a snapshot (`SnapshotInfoSchema`). */
export interface SnapshotMeta {
  name: string
  seq: number
  etag: string
  createdAt: string
  policy: { name: string; params: Record<string, number | string | boolean> }
  bytes: number
  tokensPerLayer: number[]
}

interface Row {
  name: string
  seq: number
  etag: string
  created_at: string
  policy: string
  bytes: number
  tokens: string
}

/** The snapshot tables of one session object (created on first use). */
export class SnapshotStore {
  private readonly storage: DurableObjectStorage
  constructor(storage: DurableObjectStorage) {
    this.storage = storage
    storage.sql.exec(`CREATE TABLE IF NOT EXISTS snapshots (name TEXT PRIMARY KEY, seq INTEGER NOT NULL, etag TEXT NOT NULL,
        created_at TEXT NOT NULL, policy TEXT NOT NULL, bytes INTEGER NOT NULL, tokens TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS snapshot_chunks (name TEXT NOT NULL, idx INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (name, idx));`)
  }

  /** Every snapshot, oldest first. */
  list(): SnapshotMeta[] {
    return this.storage.sql.exec<Row & Record<string, SqlStorageValue>>(`SELECT * FROM snapshots ORDER BY created_at, name`).toArray().map(toMeta)
  }

  count(): number {
    return this.storage.sql.exec<{ n: number }>(`SELECT count(*) AS n FROM snapshots`).one().n
  }

  /** A snapshot's metadata, or null. */
  meta(name: string): SnapshotMeta | null {
    const row = this.storage.sql.exec<Row & Record<string, SqlStorageValue>>(`SELECT * FROM snapshots WHERE name = ?`, name).toArray()[0]
    return row ? toMeta(row) : null
  }

  /** A snapshot's memory blob, or null. */
  blob(name: string): Uint8Array | null {
    const rows = this.storage.sql.exec<{ data: ArrayBuffer }>(`SELECT data FROM snapshot_chunks WHERE name = ? ORDER BY idx`, name).toArray()
    if (rows.length === 0) return null
    const out = new Uint8Array(rows.reduce((n, r) => n + r.data.byteLength, 0))
    let at = 0
    for (const r of rows) {
      out.set(new Uint8Array(r.data), at)
      at += r.data.byteLength
    }
    return out
  }

  /** Stores snapshot `meta.name` with its blob, in one transaction. */
  put(meta: SnapshotMeta, blob: Uint8Array): void {
    this.storage.transactionSync(() => {
      this.storage.sql.exec(
        `INSERT INTO snapshots (name, seq, etag, created_at, policy, bytes, tokens) VALUES (?, ?, ?, ?, ?, ?, ?)`,
        meta.name,
        meta.seq,
        meta.etag,
        meta.createdAt,
        JSON.stringify(meta.policy),
        meta.bytes,
        JSON.stringify(meta.tokensPerLayer),
      )
      for (let i = 0, idx = 0; i < blob.byteLength; i += CHUNK_BYTES, idx++)
        this.storage.sql.exec(`INSERT INTO snapshot_chunks (name, idx, data) VALUES (?, ?, ?)`, meta.name, idx, new Uint8Array(blob.subarray(i, i + CHUNK_BYTES)).buffer)
    })
  }

  /** Deletes snapshot `name`. @returns whether it existed */
  delete(name: string): boolean {
    let existed = false
    this.storage.transactionSync(() => {
      existed = this.storage.sql.exec(`SELECT 1 FROM snapshots WHERE name = ?`, name).toArray().length > 0
      this.storage.sql.exec(`DELETE FROM snapshots WHERE name = ?`, name)
      this.storage.sql.exec(`DELETE FROM snapshot_chunks WHERE name = ?`, name)
    })
    return existed
  }
}

function toMeta(r: Row): SnapshotMeta {
  return {
    name: r.name,
    seq: Number(r.seq),
    etag: r.etag,
    createdAt: r.created_at,
    policy: JSON.parse(r.policy),
    bytes: Number(r.bytes),
    tokensPerLayer: JSON.parse(r.tokens),
  }
}
