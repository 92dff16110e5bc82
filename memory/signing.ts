/**
 * @module Per-tenant HMAC-SHA256 of memory blobs (WebCrypto `crypto.subtle`, the same code in
 * workerd and Node). One secret (`MEMORY_HMAC_SECRET`, a Worker secret) yields one key per tenant
 * by HKDF-SHA256 (RFC 5869: salt `stepkv/memory-hmac/v1`, info = the tenant id), so a blob signed
 * for tenant A does not verify for tenant B, and no tenant's key reveals the secret or another key.
 * The tag covers every byte before it (prelude, header with `hmac: true`, payload, CRC) and sits in
 * the blob's last 32 bytes (`codec.ts`). I/O-free: the caller passes the secret and the tenant.
 */
import { HMAC_BYTES, PRELUDE_BYTES, CRC_BYTES, withHmacTrailer } from './codec.ts'
import { MemoryCodecError } from './errors.ts'

/** HKDF salt: names the purpose and version, so these keys never collide with another use of the secret. */
const SALT = new TextEncoder().encode('stepkv/memory-hmac/v1')
/** Shortest secret accepted, in bytes (HMAC-SHA256 wants ≥ 32 bytes of entropy). */
export const MIN_SECRET_BYTES = 32

const keys = new Map<string, Promise<CryptoKey>>()

/**
 * The HMAC-SHA256 key of `tenant`: HKDF-SHA256(ikm = secret, salt = `stepkv/memory-hmac/v1`,
 * info = UTF-8 tenant id) → 256-bit key, non-extractable, usages sign + verify. Cached per
 * (secret, tenant) in the isolate (derivation is ≈ 0.1 ms, but every export/import needs it).
 * @param secret the Worker secret, ≥ `MIN_SECRET_BYTES` UTF-8 bytes
 * @param tenant the tenant id from the API key map
 * @throws RangeError if the secret is shorter than `MIN_SECRET_BYTES`
 * @see RFC 5869 (HKDF), RFC 2104 (HMAC)
 */
export function tenantMemoryKey(secret: string, tenant: string): Promise<CryptoKey> {
  const ikm = new TextEncoder().encode(secret)
  if (ikm.byteLength < MIN_SECRET_BYTES)
    throw new RangeError(`the memory HMAC secret must be ≥ ${MIN_SECRET_BYTES} bytes, got ${ikm.byteLength}`)
  return tenantHmacKey(secret, tenant, SALT)
}

/**
 * HKDF-SHA256(ikm = secret, salt, info = UTF-8 tenant id) → a 256-bit HMAC-SHA256 key,
 * non-extractable, usages sign + verify; cached per (salt, secret, tenant) in the isolate. One
 * derivation for every per-tenant key: a distinct salt per purpose (memory blobs, view links)
 * keeps the keys apart. Callers check the secret's length first.
 * @see RFC 5869 (HKDF), RFC 2104 (HMAC)
 */
export function tenantHmacKey(secret: string, tenant: string, salt: Uint8Array): Promise<CryptoKey> {
  const cacheKey = `${new TextDecoder().decode(salt)}\0${tenant.length}:${tenant}:${secret}`
  let key = keys.get(cacheKey)
  if (!key) {
    key = crypto.subtle
      .importKey('raw', new TextEncoder().encode(secret), 'HKDF', false, ['deriveKey'])
      .then((base) =>
        crypto.subtle.deriveKey(
          { name: 'HKDF', hash: 'SHA-256', salt, info: new TextEncoder().encode(tenant) },
          base,
          { name: 'HMAC', hash: 'SHA-256', length: 256 },
          false,
          ['sign', 'verify'],
        ),
      )
    keys.set(cacheKey, key)
  }
  return key
}

/**
 * Sign an unsigned blob: `withHmacTrailer` (flag set, CRC recomputed) then the HMAC-SHA256 tag of
 * every byte before the last 32 written there.
 * @param blob a valid unsigned memory blob (as stored by the Durable Object)
 * @param key `tenantMemoryKey(secret, tenant)`
 * @returns a new blob, `HMAC_BYTES` longer (more if the header grew), flagged `hmac: true`
 * @throws MemoryCodecError if `blob` is not a valid unsigned blob
 */
export async function signMemory(blob: Uint8Array, key: CryptoKey): Promise<Uint8Array> {
  const out = withHmacTrailer(blob)
  const end = out.byteLength - HMAC_BYTES
  const tag = await crypto.subtle.sign('HMAC', key, out.subarray(0, end))
  out.set(new Uint8Array(tag), end)
  return out
}

/**
 * Check a blob's HMAC-SHA256 trailer with `key` (constant-time, `crypto.subtle.verify`) before
 * anything else in it is parsed. Passing means this service signed exactly these bytes for this
 * key's tenant; then decode with `decodeMemory(blob, expect, { hmacVerified: true })`.
 * @param blob the untrusted blob (any byteOffset)
 * @param key the importing tenant's key (`tenantMemoryKey`)
 * @param tenant names the tenant in the message
 * @throws MemoryCodecError `memory_truncated` (422) when too short to hold a prelude, CRC and tag;
 *   `memory_signature` (422) when the tag does not verify: unsigned, signed for another tenant or
 *   with another secret, or altered after signing
 */
export async function verifyMemory(blob: Uint8Array, key: CryptoKey, tenant: string): Promise<void> {
  const length = blob.byteLength
  if (length < PRELUDE_BYTES + CRC_BYTES + HMAC_BYTES)
    throw new MemoryCodecError(`memory blob is ${length} bytes, too short to be a signed one`, { length }, 'memory_truncated')
  const end = length - HMAC_BYTES
  const ok = await crypto.subtle.verify('HMAC', key, blob.subarray(end), blob.subarray(0, end))
  if (!ok)
    throw new MemoryCodecError(
      `memory blob has no valid HMAC-SHA256 for tenant '${tenant}': it is unsigned, signed for another tenant or key, or was altered; import only blobs this service exported for this tenant`,
      {},
      'memory_signature',
    )
}
