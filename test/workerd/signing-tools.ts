/**
 * @module Test tools for signed memory blobs inside workerd: sign an unsigned blob for a tenant with
 * the configured `MEMORY_HMAC_SECRET` (as an export would), or re-sign altered bytes (a new tag over
 * everything before the last 32 bytes) so they get past the HMAC and reach the decoder.
 */
import { env } from 'cloudflare:test'
import { HMAC_BYTES } from '../../memory/codec.ts'
import { signMemory, tenantMemoryKey } from '../../memory/signing.ts'

/** The tenant's key from the test environment's secret. */
export const keyOf = (tenant = 'dev') => tenantMemoryKey(env.MEMORY_HMAC_SECRET!, tenant)

/** An unsigned blob signed for `tenant`. */
export async function signFor(blob: Uint8Array, tenant = 'dev'): Promise<Uint8Array> {
  return signMemory(blob, await keyOf(tenant))
}

/** A copy of `bytes` whose last 32 bytes are a valid tag of the rest for `tenant` (CRC untouched). */
export async function resign(bytes: Uint8Array, tenant = 'dev'): Promise<Uint8Array> {
  const out = bytes.slice()
  if (out.byteLength < HMAC_BYTES) return out
  const end = out.byteLength - HMAC_BYTES
  out.set(new Uint8Array(await crypto.subtle.sign('HMAC', await keyOf(tenant), out.subarray(0, end))), end)
  return out
}

/** Imports `blob` conditionally on the session's current ETag (read just before), as a careful
 * client does. */
export async function importCurrent(
  client: { info: (id: string) => Promise<{ data: any }>; importMemory: (id: string, blob: Uint8Array, ifMatch?: string) => Promise<{ status: number; data: any }> },
  id: string,
  blob: Uint8Array,
) {
  const etag = (await client.info(id)).data.etag as string | undefined
  return client.importMemory(id, blob, etag)
}
