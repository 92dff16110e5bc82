/**
 * @module The tenant's memory-signing key from the `MEMORY_HMAC_SECRET` Worker secret
 * (`memory/signing.ts` derives it). Without a usable secret, export and import fail closed (503)
 * rather than hand out or accept unsigned memory.
 */
import { StepkvError } from '../memory/errors.ts'
import { MIN_SECRET_BYTES, tenantMemoryKey } from '../memory/signing.ts'
import type { Env } from './env.ts'

/**
 * The HMAC-SHA256 key that signs and verifies `tenant`'s memory blobs.
 * @throws StepkvError `memory_signing_unconfigured` (503) when `MEMORY_HMAC_SECRET` is absent or
 *   shorter than 32 bytes (a deployment error, logged; no blob leaves or enters unsigned)
 */
export function memoryKeyFor(env: Env, tenant: string): Promise<CryptoKey> {
  const secret = env.MEMORY_HMAC_SECRET ?? ''
  if (new TextEncoder().encode(secret).byteLength < MIN_SECRET_BYTES) {
    console.error(JSON.stringify({ level: 'error', msg: `MEMORY_HMAC_SECRET is missing or shorter than ${MIN_SECRET_BYTES} bytes` }))
    throw new StepkvError(
      'memory_signing_unconfigured',
      503,
      'memory export and import are disabled: the server has no memory signing secret (MEMORY_HMAC_SECRET)',
    )
  }
  return tenantMemoryKey(secret, tenant)
}
