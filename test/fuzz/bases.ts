/**
 * @module Valid starting points for the memory fuzz: one memory per storage and policy family of
 * the test models (float32 full cache, float16 window, h2o with carried scores, KIVI 4-bit, a
 * TempoFit bank), as the session config that would import it and its unsigned blob.
 */
import tinyGqa from '../../models/tiny-gqa/manifest.json'
import tinyGqaTempo from '../../models/tiny-gqa-tempo/manifest.json'
import { encodeMemory } from '../../memory/codec.ts'
import type { ModelManifest } from '../../gpu/manifest.ts'
import { policyFor } from '../../worker/engine.ts'
import type { SessionConfig } from '../../worker/storage.ts'
import { makeMemory } from '../memory/fixtures.ts'

/** A session config and a blob of the memory it would hold. */
export interface Base {
  name: string
  manifest: ModelManifest
  config: Pick<SessionConfig, 'model' | 'policy' | 'memoryDtype' | 'kivi'>
  blob: Uint8Array
}

function base(name: string, manifest: ModelManifest, policyName: string, params: Record<string, unknown>, memoryDtype: SessionConfig['memoryDtype'], tokens: number, extra: { scores?: boolean; layerIds?: number[] } = {}): Base {
  const policy = policyFor(manifest, policyName, params)
  const config = { model: manifest.id, policy: { name: policy.name, params: { ...policy.params } }, memoryDtype, ...(memoryDtype === 'kivi' && { kivi: { bits: 4 as const } }) }
  const mem = makeMemory({ layers: extra.layerIds ? undefined : manifest.layers, kvHeads: manifest.kvHeads, headDim: manifest.headDim, tokens, sha256: manifest.sha256, ...extra })
  mem.model.id = manifest.id
  const storage = memoryDtype === 'kivi' ? { dtype: 'kivi' as const, kivi: { bits: 4 as const } } : { dtype: memoryDtype }
  return { name, manifest, config, blob: encodeMemory(mem, { policy: config.policy, ...storage }) }
}

/** The fuzz bases (blobs of 5–40 KB). */
export function fuzzBases(): Base[] {
  const gqa = tinyGqa as unknown as ModelManifest
  const tempo = tinyGqaTempo as unknown as ModelManifest
  return [
    base('full float32', gqa, 'full', {}, 'float32', 6),
    base('window float16', gqa, 'window', { sinkTokens: 2, recentTokens: 30 }, 'float16', 8),
    base('h2o scores', gqa, 'h2o', { budgetTokens: 16 }, 'float32', 5, { scores: true }),
    base('full kivi4', gqa, 'full', {}, 'kivi', 40),
    base('tempofit bank', tempo, 'tempofit', { frames: 3 }, 'float32', 6, { layerIds: [...tempo.tempoLayers] }),
  ]
}
