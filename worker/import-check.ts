/**
 * @module What a memory import must pass after its HMAC (`memory/signing.ts`, checked by the
 * Worker): the codec's checks against the session's model (`decodeMemory`), the session's model id
 * and exact policy, K/V within ±MAX_KV_ABS, and the tenant's memory bytes once stored in the
 * session's storage. Pure (no storage, no bindings), so the fuzz suite runs it in Node too.
 */
import { decodeMemory, encodeMemory } from '../memory/codec.ts'
import { MemoryCodecError, ModelMismatchError, StepkvError } from '../memory/errors.ts'
import type { MemoryShape } from '../memory/model-check.ts'
import { roundTrip, type StorageOptions } from '../memory/storage.ts'
import type { SessionMemory } from '../memory/types.ts'
import type { ModelManifest } from '../gpu/manifest.ts'
import { initialMemory, policyFor } from './engine.ts'
import type { SessionConfig } from './storage.ts'

/** The memory shape a session's blobs must have: its model's (`m`), and for TempoFit the bank's
 * layers. @throws PolicyConfigError if the session's policy does not fit the model (a bug) */
export function expectedShape(m: ModelManifest, config: Pick<SessionConfig, 'policy'>): MemoryShape {
  const shape = initialMemory(m, policyFor(m, config.policy.name, config.policy.params))
  return { model: shape.model, layers: m.layers, kvHeads: m.kvHeads, headDim: m.headDim, layerIds: shape.layerIds }
}

/** The session's K/V storage (float32, float16 bits, or KIVI with its options). */
export function storageOf(config: Pick<SessionConfig, 'memoryDtype' | 'kivi'>): StorageOptions {
  return config.memoryDtype === 'kivi' ? { dtype: 'kivi', kivi: config.kivi ?? {} } : { dtype: config.memoryDtype }
}

/** Largest |K/V| an imported memory may hold. Real models' keys and values stay orders of magnitude
 * below; values near float32's limit would overflow attention and fail every later step. */
export const MAX_KV_ABS = 1e5

/** @throws MemoryCodecError (`memory_out_of_range`, 422) naming the layer and value */
export function checkKvRange(memory: SessionMemory): void {
  memory.layers.forEach((layer, l) => {
    for (const [name, t] of [['keys', layer.keys], ['values', layer.values]] as const)
      for (let i = 0; i < t.length; i++)
        if (Math.abs(t[i]) > MAX_KV_ABS)
          throw new MemoryCodecError(`imported memory layer ${l} ${name}[${i}] = ${t[i]} is outside ±${MAX_KV_ABS}`, { layer: l }, 'memory_out_of_range')
  })
}

/** @throws StepkvError `memory_limit` (`status`: 422 for a step, 413 for an import) when the
 * stored blob (`bytes`) would exceed the tenant's `limit` (bytes); nothing is stored */
export function checkMemoryBytes(bytes: number, limit: number, status: 413 | 422): void {
  if (bytes > limit)
    throw new StepkvError(
      'memory_limit',
      status,
      `the session's memory would be ${bytes} bytes, over its limit of ${limit} bytes: ${status === 413 ? 'import a smaller memory' : 'use a smaller budget or storage (float16, kivi), or reset'}`,
      { bytes, limit },
    )
}

/** A policy as one string, parameters sorted by name (`{"name":"window","params":{…}}`). */
export function canonical(policy: { name: string; params: Record<string, unknown> }): string {
  const params = Object.fromEntries(Object.entries(policy.params).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
  return JSON.stringify({ name: policy.name, params })
}

/**
 * Validates an imported blob whose HMAC the caller verified, and builds what the session stores.
 * @param blob the signed blob (`hmac: true`; its tag already verified for the tenant)
 * @param manifest the session's model
 * @param config the session's model id, policy and storage
 * @param memoryBytesPerSession the tenant's limit on the stored blob (bytes)
 * @returns the decoded memory, the memory after the session's storage round trip (`kept`) and the
 *   blob to store (`stored`, unsigned)
 * @throws MemoryCodecError / ModelMismatchError as `decodeMemory`; ModelMismatchError when the
 *   blob's model id differs from the session's; StepkvError `policy_mismatch` (422) when its policy
 *   name or parameters differ; MemoryCodecError `memory_out_of_range` (422); StepkvError
 *   `memory_limit` (413) over `memoryBytesPerSession`
 */
export function checkImport(
  blob: Uint8Array,
  manifest: ModelManifest,
  config: Pick<SessionConfig, 'model' | 'policy' | 'memoryDtype' | 'kivi'>,
  memoryBytesPerSession: number,
): { memory: SessionMemory; kept: SessionMemory; stored: Uint8Array } {
  const { memory, policy } = decodeMemory(blob, expectedShape(manifest, config), { hmacVerified: true })
  if (memory.model.id !== config.model)
    throw new ModelMismatchError(`memory is for model '${memory.model.id}', this session runs '${config.model}'`, { field: 'model.id', expected: config.model, actual: memory.model.id })
  if (canonical(policy) !== canonical(config.policy))
    throw new StepkvError('policy_mismatch', 422, `memory was written under policy ${canonical(policy)}, this session runs ${canonical(config.policy)}: import into a session created with the same policy`, { expected: config.policy, actual: policy })
  checkKvRange(memory)
  const kept = roundTrip(memory, storageOf(config))
  const stored = encodeMemory(kept, { policy: config.policy, ...storageOf(config) })
  checkMemoryBytes(stored.byteLength, memoryBytesPerSession, 413)
  return { memory, kept, stored }
}
