/**
 * The step engine in Node against the float64 reference: carried memory gives the logits of one
 * long prefill, and after a StreamingLLM eviction kept tokens keep their positions while new tokens
 * continue at the true absolute position.
 */
import { describe, expect, it } from 'vitest'
import { TINY_GQA, TINY_GQA_SEED } from '../../models/decoder/config.ts'
import { generateWeights } from '../../models/decoder/weights.ts'
import { nodeModelSource } from '../../gpu/node-models.ts'
import { ortForNode } from '../../gpu/ort-node.ts'
import { ModelRuntime } from '../../gpu/session.ts'
import { createPolicy } from '../../memory/policies/index.ts'
import { emptyMemory } from '../../memory/session.ts'
import type { SessionMemory } from '../../memory/types.ts'
import { runStep } from '../../worker/engine.ts'
import { relErr } from '../../sim/client.ts'
import { forward64 } from '../reference/decoder64.ts'

const runtime = ModelRuntime.for(ortForNode(), nodeModelSource('tiny-gqa'))
const m = runtime.manifest
const weights = generateWeights(TINY_GQA, TINY_GQA_SEED)
const limits = { maxPrefixTokens: 4096 }
const fresh = (): SessionMemory =>
  emptyMemory({ model: { id: m.id, sha256: m.sha256 }, layers: m.layers, kvHeads: m.kvHeads, headDim: m.headDim })
const bytes = (s: string) => [...new TextEncoder().encode(s)]

/** float64 prefill of `ids` at `positions` after `past` (per layer [kvHeads, P, headDim]). */
function reference(ids: number[], positions: number[], past: { key: Float64Array; value: Float64Array }[]) {
  const P = past[0].key.length / (m.kvHeads * m.headDim)
  return forward64(TINY_GQA, weights, {
    inputIds: ids,
    positionIds: positions,
    attentionMask: new Array(P + ids.length).fill(1),
    past,
  })
}

/** Rows `keep` of each head of a [kvHeads, T, headDim] tensor. */
function gatherRows(t: Float64Array, keep: number[]): Float64Array {
  const T = t.length / (m.kvHeads * m.headDim)
  const out = new Float64Array(m.kvHeads * keep.length * m.headDim)
  for (let h = 0; h < m.kvHeads; h++)
    keep.forEach((row, i) => out.set(t.subarray((h * T + row) * m.headDim, (h * T + row + 1) * m.headDim), (h * keep.length + i) * m.headDim))
  return out
}

describe('runStep', () => {
  it('full policy: steps one at a time equal one float64 prefill of all prefixes (≤ 1e-4)', async () => {
    const texts = ['open the menu', ' / click Save', ' / type 4711', ' / done?']
    const policy = createPolicy('full', {})
    let mem = fresh()
    const stepLogits: Float32Array[] = []
    for (const [i, text] of texts.entries()) {
      const out = await runStep(runtime, mem, policy, { seq: i + 1, observation: { text }, options: { returnLogits: true } }, limits)
      stepLogits.push(out.logits!.data)
      mem = out.memory
    }
    const all = bytes(texts.join(''))
    const empty = Array.from({ length: m.layers }, () => ({ key: new Float64Array(0), value: new Float64Array(0) }))
    const ref = reference(all, all.map((_, i) => i), empty)
    let offset = 0
    for (const l of stepLogits) {
      expect(relErr(l, ref.logits.subarray(offset * m.vocabSize, offset * m.vocabSize + l.length))).toBeLessThanOrEqual(1e-4)
      offset += l.length / m.vocabSize
    }
    expect(mem.nextPosition).toBe(all.length)
    expect(mem.tokens).toBe(all.length)
    for (let l = 0; l < m.layers; l++) expect(relErr(mem.layers[l].keys, ref.present[l].key)).toBeLessThanOrEqual(1e-4)
  })

  it('window policy: after eviction kept positions are unchanged and new tokens continue at the true position', async () => {
    const policy = createPolicy('window', { sinkTokens: 2, recentTokens: 6 })
    const s1 = bytes('abcde')
    const s2 = bytes('fghij')
    const s3 = bytes('klmn')
    let mem = fresh()
    mem = (await runStep(runtime, mem, policy, { seq: 1, observation: { text: 'abcde' } }, limits)).memory
    mem = (await runStep(runtime, mem, policy, { seq: 2, observation: { text: 'fghij' } }, limits)).memory
    // 10 tokens at positions 0..9; sinks 2 + recent 6 keep rows [0, 1, 4, 5, 6, 7, 8, 9].
    const kept = [0, 1, 4, 5, 6, 7, 8, 9]
    expect(mem.tokens).toBe(8)
    expect(mem.nextPosition).toBe(10)
    for (const layer of mem.layers) {
      expect([...layer.positions.subarray(0, 8)]).toEqual(kept)
      expect([...layer.positions.subarray(8, 16)]).toEqual(kept)
      expect([...layer.frames.subarray(0, 8)]).toEqual([1, 1, 1, 2, 2, 2, 2, 2]) // rows 0..4 came from step 1
    }
    const out = await runStep(runtime, mem, policy, { seq: 3, observation: { text: 'klmn' }, options: { returnLogits: true } }, limits)

    // Reference: K/V of all 10 tokens at their positions, the kept rows as past, step 3 at 10..13.
    const full = reference([...s1, ...s2], [...Array(10).keys()], Array.from({ length: m.layers }, () => ({ key: new Float64Array(0), value: new Float64Array(0) })))
    const past = full.present.map((p) => ({ key: gatherRows(p.key, kept), value: gatherRows(p.value, kept) }))
    const ref = reference(s3, [10, 11, 12, 13], past)
    expect(relErr(out.logits!.data, ref.logits)).toBeLessThanOrEqual(1e-4)
    for (let l = 0; l < m.layers; l++) expect(relErr(mem.layers[l].keys, past[l].key)).toBeLessThanOrEqual(1e-4)
    // The bug users hit — numbering new tokens from the kept row count (8..11) — is visible here.
    const drifted = reference(s3, [8, 9, 10, 11], past)
    expect(relErr(out.logits!.data, drifted.logits)).toBeGreaterThan(1e-3)
    // Memory after step 3: 12 tokens → sinks [0,1] + the last 6 rows; new tokens at 10..13.
    expect(out.memory.nextPosition).toBe(14)
    expect([...out.memory.layers[0].positions.subarray(0, 8)]).toEqual([0, 1, 8, 9, 10, 11, 12, 13])
  })

  it('fills GUI-KV\'s query-group size from the model and refuses a wrong one', async () => {
    const { policyFor } = await import('../../worker/engine.ts')
    expect(policyFor(m, 'guikv', { budgetTokens: 64 }).params.queryGroupSize).toBe(m.heads / m.kvHeads)
    expect(() => policyFor(m, 'guikv', { budgetTokens: 64, queryGroupSize: 3 })).toThrow(/'queryGroupSize' must be 2/)
  })

  it('refuses a prefix past maxPosition with a clear error and leaves the memory as it was', async () => {
    const mem = { ...fresh(), nextPosition: m.maxPosition - 2 }
    await expect(runStep(runtime, mem, createPolicy('full', {}), { seq: 1, observation: { text: 'abc' } }, limits)).rejects.toThrow(/maxPosition/)
    expect(mem.tokens).toBe(0)
  })
})
