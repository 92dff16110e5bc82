/**
 * @module The tenant's memory-signing keys from the `MEMORY_HMAC_SECRET` Worker secret
 * (`memory/signing.ts` derives a per-tenant key from a secret), with rotation: exports are signed
 * with the current secret and name its key id (`X-Stepkv-Key-Id`); imports verify against the
 * current secret, then each retired one in `MEMORY_HMAC_SECRETS_OLD` (a JSON array), so blobs
 * exported before a rotation still import until their secret is dropped from the list. Without a
 * usable current secret, export and import fail closed (503) rather than hand out or accept
 * unsigned memory.
 */
import { MemoryCodecError, StepkvError } from '../memory/errors.ts'
import { MIN_SECRET_BYTES, tenantMemoryKey, verifyMemory } from '../memory/signing.ts'
import type { Env } from './env.ts'

/** The header naming the key id of a signed blob (export reply; optional on import). */
export const KEY_ID_HEADER = 'X-Stepkv-Key-Id'

/** A signing secret and its public id. */
interface Secret {
  id: string
  secret: string
}

const ids = new Map<string, Promise<string>>()

/** A secret's public id: the first 8 bytes (16 hex) of SHA-256("stepkv/memory-key-id/v1\0" +
 * secret) — it names the secret without revealing it (secrets are ≥ 32 random bytes). */
export function keyIdOf(secret: string): Promise<string> {
  let id = ids.get(secret)
  if (!id) {
    id = crypto.subtle
      .digest('SHA-256', new TextEncoder().encode(`stepkv/memory-key-id/v1\0${secret}`))
      .then((d) => [...new Uint8Array(d).subarray(0, 8)].map((b) => b.toString(16).padStart(2, '0')).join(''))
    ids.set(secret, id)
  }
  return id
}

const usable = (s: string) => new TextEncoder().encode(s).byteLength >= MIN_SECRET_BYTES

/** The current secret. @throws StepkvError `memory_signing_unconfigured` (503) */
function currentSecret(env: Env): string {
  const secret = env.MEMORY_HMAC_SECRET ?? ''
  if (!usable(secret)) {
    console.error(JSON.stringify({ level: 'error', msg: `MEMORY_HMAC_SECRET is missing or shorter than ${MIN_SECRET_BYTES} bytes` }))
    throw new StepkvError(
      'memory_signing_unconfigured',
      503,
      'memory export and import are disabled: the server has no memory signing secret (MEMORY_HMAC_SECRET)',
    )
  }
  return secret
}

/** Retired secrets still accepted on import (`MEMORY_HMAC_SECRETS_OLD`, a JSON array of strings);
 * a malformed list or a short entry is logged and ignored (their blobs are refused: fail closed). */
function oldSecrets(env: Env): string[] {
  const raw = env.MEMORY_HMAC_SECRETS_OLD
  if (!raw) return []
  let list: unknown
  try {
    list = JSON.parse(raw)
  } catch {
    list = undefined
  }
  if (!Array.isArray(list) || !list.every((s) => typeof s === 'string')) {
    console.error(JSON.stringify({ level: 'error', msg: 'MEMORY_HMAC_SECRETS_OLD is not a JSON array of strings: ignored' }))
    return []
  }
  const kept = list.filter(usable)
  if (kept.length < list.length) console.error(JSON.stringify({ level: 'error', msg: `MEMORY_HMAC_SECRETS_OLD: ${list.length - kept.length} entries shorter than ${MIN_SECRET_BYTES} bytes ignored` }))
  return kept
}

/**
 * The key that signs `tenant`'s exports, and its key id.
 * @throws StepkvError `memory_signing_unconfigured` (503) when `MEMORY_HMAC_SECRET` is absent or
 *   shorter than 32 bytes (a deployment error, logged; no blob leaves or enters unsigned)
 */
export async function signingKeyFor(env: Env, tenant: string): Promise<{ key: CryptoKey; keyId: string }> {
  const secret = currentSecret(env)
  return { key: await tenantMemoryKey(secret, tenant), keyId: await keyIdOf(secret) }
}

/** The current signing key of `tenant` (as `signingKeyFor`, without the id). */
export async function memoryKeyFor(env: Env, tenant: string): Promise<CryptoKey> {
  return (await signingKeyFor(env, tenant)).key
}

/**
 * Verifies a signed blob's HMAC-SHA256 tag for `tenant` under the current secret, then each retired
 * one (or only the one `keyId` names, when given).
 * @returns the key id that verified it
 * @throws StepkvError `memory_signing_unconfigured` (503) as `signingKeyFor`; MemoryCodecError
 *   `memory_signature` (422) when no accepted key verifies it, or `keyId` names none of them;
 *   `memory_truncated` for a blob too short to carry a tag
 */
export async function verifyMemoryRotating(env: Env, tenant: string, blob: Uint8Array, keyId?: string): Promise<string> {
  const secrets: Secret[] = []
  for (const secret of [currentSecret(env), ...oldSecrets(env)]) secrets.push({ id: await keyIdOf(secret), secret })
  const candidates = keyId === undefined ? secrets : secrets.filter((s) => s.id === keyId)
  if (candidates.length === 0)
    throw new MemoryCodecError(`memory blob names key id '${keyId}', which this service no longer accepts (rotated out) or never had`, { keyId }, 'memory_signature')
  let refusal: unknown
  for (const s of candidates) {
    try {
      await verifyMemory(blob, await tenantMemoryKey(s.secret, tenant), tenant)
      return s.id
    } catch (e) {
      if (!(e instanceof StepkvError) || e.code !== 'memory_signature') throw e
      refusal = e
    }
  }
  throw refusal
}
