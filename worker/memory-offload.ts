/**
 * @module Optional R2 offload of large memory blobs (README "Security and limits", "Large memories
 * in R2"). With an R2 bucket bound as `MEMORY_BUCKET`, a session's memory blob larger than
 * `MEMORY_OFFLOAD_BYTES` (default 8 MiB) is put to R2 under a fresh key per write
 * (`mem/<tenant>/<session>/<seq>.<random>`, never overwritten), and the Durable Object's persist
 * transaction stores a small pointer (key, bytes, sha256) in place of the SQLite chunks, atomically
 * with seq and reply (`storage.ts`). Reads fetch the object and check its length and sha256 before
 * anything decodes it. Without the binding nothing here runs: blobs stay in SQLite chunks.
 */
import { StepkvError } from '../memory/errors.ts'
import type { Env } from './env.ts'
import { intVar } from './limits.ts'
import type { SessionStore } from './storage.ts'

/** Default offload threshold (bytes): blobs larger than this go to R2 when the bucket is bound. */
export const DEFAULT_OFFLOAD_BYTES = 8 << 20

/** What the Durable Object stores in place of an offloaded blob's chunks. */
export interface MemoryPointer {
  /** R2 object key. */
  key: string
  /** Blob length (bytes). */
  bytes: number
  /** Lower-case hex SHA-256 of the blob. */
  sha256: string
}

/** The offload threshold (bytes), or null when no bucket is bound (everything stays in SQLite). */
export function offloadThreshold(env: Env): number | null {
  return env.MEMORY_BUCKET ? intVar(env.MEMORY_OFFLOAD_BYTES, DEFAULT_OFFLOAD_BYTES) : null
}

/** The key prefix of one session's memory objects (the session's delete and expiry list it). */
export function sessionPrefix(tenant: string, session: string): string {
  return `mem/${encodeURIComponent(tenant)}/${encodeURIComponent(session)}/`
}

/** Lower-case hex SHA-256 of `data`. */
export async function sha256Hex(data: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', data as Uint8Array<ArrayBuffer>))
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('')
}

/**
 * Puts `blob` to R2 when it is over the threshold (and a bucket is bound), under a fresh key.
 * Nothing in the Durable Object changes here: the caller stores the pointer in its transaction.
 * @param seq the step the blob is of (part of the key, for people reading the bucket)
 * @returns the pointer to store, or null when the blob stays in SQLite (no bucket, or ≤ threshold)
 * @throws StepkvError `memory_store_unavailable` (503) when the put fails (the stored memory is
 *   unchanged; retry the request)
 */
export async function offloadMemory(env: Env, tenant: string, session: string, seq: number, blob: Uint8Array): Promise<MemoryPointer | null> {
  const threshold = offloadThreshold(env)
  if (threshold === null || blob.byteLength <= threshold) return null
  const random = Array.from(crypto.getRandomValues(new Uint8Array(8)), (b) => b.toString(16).padStart(2, '0')).join('')
  const key = `${sessionPrefix(tenant, session)}${seq}.${random}`
  const sha256 = await sha256Hex(blob)
  try {
    await env.MEMORY_BUCKET!.put(key, blob, { sha256, customMetadata: { bytes: String(blob.byteLength), seq: String(seq) } })
  } catch (e) {
    throw new StepkvError('memory_store_unavailable', 503, `storing the session's memory (${blob.byteLength} bytes) in R2 failed (${String((e as Error)?.message ?? e)}); nothing changed: retry the request`, {
      retryAfterSeconds: 1,
    })
  }
  return { key, bytes: blob.byteLength, sha256 }
}

/**
 * Reads an offloaded blob and checks it against its pointer.
 * @returns the blob (exactly `pointer.bytes` bytes whose SHA-256 is `pointer.sha256`)
 * @throws StepkvError `memory_store_unavailable` (503) when no bucket is bound or R2 fails;
 *   `stored_memory_corrupt` (500) when the object is missing or its length or SHA-256 differ
 *   (never decoded; nothing stored changes)
 */
export async function fetchMemory(env: Env, pointer: MemoryPointer): Promise<Uint8Array> {
  if (!env.MEMORY_BUCKET)
    throw new StepkvError('memory_store_unavailable', 503, "the session's memory is stored in R2 but this deployment has no MEMORY_BUCKET binding", {})
  let object: R2ObjectBody | null
  let blob: Uint8Array
  try {
    object = await env.MEMORY_BUCKET.get(pointer.key)
    blob = object ? new Uint8Array(await object.arrayBuffer()) : new Uint8Array()
  } catch (e) {
    throw new StepkvError('memory_store_unavailable', 503, `reading the session's memory from R2 failed (${String((e as Error)?.message ?? e)}); retry the request`, { retryAfterSeconds: 1 })
  }
  if (!object) throw corrupt(pointer, 'the object is missing')
  if (blob.byteLength !== pointer.bytes) throw corrupt(pointer, `it holds ${blob.byteLength} bytes, ${pointer.bytes} were stored`)
  if ((await sha256Hex(blob)) !== pointer.sha256) throw corrupt(pointer, 'its SHA-256 differs from the one stored')
  return blob
}

function corrupt(pointer: MemoryPointer, why: string): StepkvError {
  return new StepkvError('stored_memory_corrupt', 500, `the session's memory in R2 cannot be used: ${why}; the session's state is unchanged (import an export, roll back to a snapshot, reset or delete it)`, {
    bytes: pointer.bytes,
  })
}

/** Deletes R2 objects, best effort (a failure is logged; the objects stay until the session's
 * delete or expiry removes its prefix). */
export async function deleteMemoryObjects(env: Env, keys: string[]): Promise<void> {
  if (!env.MEMORY_BUCKET || keys.length === 0) return
  try {
    await env.MEMORY_BUCKET.delete(keys)
  } catch (e) {
    console.log(JSON.stringify({ level: 'warn', event: 'memory_object_delete_failed', keys: keys.length, error: String((e as Error)?.message ?? e) }))
  }
}

/** Deletes every memory object of a session (its delete and idle expiry), best effort: the
 * current one and any orphan left by a write whose transaction did not commit. */
export async function deleteSessionObjects(env: Env, tenant: string, session: string): Promise<void> {
  const bucket = env.MEMORY_BUCKET
  if (!bucket) return
  try {
    let cursor: string | undefined
    do {
      const page = await bucket.list({ prefix: sessionPrefix(tenant, session), cursor })
      await deleteMemoryObjects(env, page.objects.map((o) => o.key))
      cursor = page.truncated ? page.cursor : undefined
    } while (cursor)
  } catch (e) {
    console.log(JSON.stringify({ level: 'warn', event: 'memory_object_list_failed', error: String((e as Error)?.message ?? e) }))
  }
}

/**
 * The session's stored memory blob, wherever it is (SQLite chunks or R2).
 * @returns the blob, or null when none is stored
 * @throws as `fetchMemory` for an offloaded blob
 */
export async function readMemory(env: Env, store: SessionStore): Promise<Uint8Array | null> {
  const pointer = store.memoryPointer()
  return pointer ? fetchMemory(env, pointer) : store.memory()
}

/**
 * Writes a new memory blob of session `session`: puts it to R2 first when it is over the threshold,
 * then runs `commit` (the caller's one `transactionSync`, storing the pointer or the chunks with
 * seq and reply), then deletes the previous R2 object. A failed put changes nothing; a commit that
 * throws deletes the new object (best effort) and rethrows; a failed delete of the previous object
 * leaves an orphan under the session's prefix, removed with the session (`deleteSessionObjects`).
 * @param at the session's tenant and id, and the step the blob is of (they make the R2 key)
 * @param blob the encoded memory (SKVM envelope); over `MEMORY_OFFLOAD_BYTES` bytes it goes to R2
 * @param commit stores the state, given the pointer (null: the blob goes to SQLite chunks)
 * @throws StepkvError `memory_store_unavailable` (503) as `offloadMemory`; whatever `commit` throws
 */
export async function persistMemory(
  env: Env,
  store: SessionStore,
  at: { tenant: string; session: string; seq: number },
  blob: Uint8Array,
  commit: (offloaded: MemoryPointer | null) => void,
): Promise<void> {
  const previous = store.memoryPointer()
  const threshold = offloadThreshold(env)
  // Without the bucket (or for a small blob) nothing is awaited before the commit, as before.
  const offloaded = threshold === null || blob.byteLength <= threshold ? null : await offloadMemory(env, at.tenant, at.session, at.seq, blob)
  try {
    commit(offloaded)
  } catch (e) {
    if (offloaded) await deleteMemoryObjects(env, [offloaded.key])
    throw e
  }
  if (previous && previous.key !== offloaded?.key) await deleteMemoryObjects(env, [previous.key])
}
