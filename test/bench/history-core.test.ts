/**
 * The history bench's in-process step on the trained GUI model (gui-carried) over real simulator
 * frames: the re-encoding baseline (T frames stacked and prefilled from scratch) decides exactly as
 * the carried full cache after the same T frames, with the same logits; carried points hold T
 * frames of memory and repeat step T from the same memory; re-encoding carries nothing.
 */
import { describe, expect, it } from 'vitest'
import { concatPrefixes, stackedAdapter } from '../../bench/stacked.ts'
import { guiFrameTokens, guiSessionFrames } from '../../bench/frames.ts'
import { historyConfigs, measureHistory, playSession } from '../../bench/history-core.ts'
import { nodeDeps } from '../../bench/node-deps.ts'
import { decodeMemory } from '../../memory/codec.ts'
import { initialMemory, policyFor, runStep } from '../../worker/engine.ts'
import { relErr } from '../../sim/client.ts'

const deps = nodeDeps()
const frames = guiSessionFrames(16)
const configs = historyConfigs(840)
const byId = (id: string) => configs.find((c) => c.id === id)!
const obs = (i: number) => ({ image: frames[i].image, instruction: frames[i].instruction })
const once = { reps: 2, warmup: 0, minReps: 2, maxPointMs: 0 }

describe('guiSessionFrames', () => {
  it('plays expert episodes back to back: PNG screenshots, deterministic, across episodes', () => {
    const again = guiSessionFrames(16)
    expect(frames).toHaveLength(16)
    expect(frames.map((f) => [...f.image.subarray(0, 4)])).toEqual(frames.map(() => [0x89, 0x50, 0x4e, 0x47]))
    expect(again.map((f) => f.instruction)).toEqual(frames.map((f) => f.instruction))
    expect(Buffer.from(again[9].image).equals(Buffer.from(frames[9].image))).toBe(true)
    expect(new Set(frames.map((f) => f.instruction)).size).toBeGreaterThan(1)
    expect(guiFrameTokens({ image: frames[0].image, instruction: 'héllo' }, 48)).toBe(48 + 6)
    expect(() => guiSessionFrames(0)).toThrow(RangeError)
  })
})

describe('concatPrefixes', () => {
  it('stacks embeddings and kinds in order; refuses mixing ids and embeddings', () => {
    const a = { tokens: 1, kinds: Uint8Array.of(1), inputsEmbeds: Float32Array.of(1, 2) }
    const b = { tokens: 2, kinds: Uint8Array.of(0, 0), inputsEmbeds: Float32Array.of(3, 4, 5, 6) }
    const s = concatPrefixes([a, b])
    expect(s.tokens).toBe(3)
    expect([...s.kinds]).toEqual([1, 0, 0])
    expect([...s.inputsEmbeds!]).toEqual([1, 2, 3, 4, 5, 6])
    expect(concatPrefixes([{ tokens: 1, kinds: Uint8Array.of(0), inputIds: [7] }, { tokens: 1, kinds: Uint8Array.of(0), inputIds: [9] }]).inputIds).toEqual([7, 9])
    expect(() => concatPrefixes([a, { tokens: 1, kinds: Uint8Array.of(0), inputIds: [7] }])).toThrow(RangeError)
  })
})

describe('re-encoding baseline', () => {
  it('decides as the carried full cache on the same T frames, with the same logits (T = 5)', async () => {
    const runtime = deps.runtime('gui-carried')
    const m = runtime.manifest
    const policy = policyFor(m, 'full', {})
    const limits = { maxPrefixTokens: 1 << 20 }
    let memory = initialMemory(m, policy)
    let carried
    for (let t = 1; t <= 5; t++) {
      carried = await runStep(runtime, memory, policy, { seq: t, observation: obs(t - 1), options: { returnLogits: true } }, limits, deps.adapter('gui-carried'))
      memory = carried.memory
    }
    const stacked = await runStep(
      runtime,
      initialMemory(m, policy),
      policy,
      { seq: 1, observation: { frames: [0, 1, 2, 3, 4].map(obs) }, options: { returnLogits: true } },
      limits,
      stackedAdapter(deps.adapter('gui-carried')),
    )
    const vocab = m.vocabSize
    const last = (l: { data: Float32Array }) => l.data.subarray(l.data.length - vocab)
    expect(stacked.prefixTokens).toBe(memory.tokens)
    expect(stacked.action).toEqual(carried!.action)
    expect(relErr(last(stacked.logits!), last(carried!.logits!))).toBeLessThan(1e-4)
  })

  it('measureHistory: re-encoding carries nothing and gives the full cache actions at each T', async () => {
    const Ts = [1, 3, 6]
    const re = await measureHistory(deps, byId('reencode'), frames, Ts, once)
    const full = await measureHistory(deps, byId('full'), frames, Ts, once)
    expect(re.map((p) => p.action)).toEqual(full.map((p) => p.action))
    const tokens = (n: number) => frames.slice(0, n).reduce((s, f) => s + guiFrameTokens(f, 48), 0)
    expect(re.map((p) => p.prefillTokens)).toEqual(Ts.map(tokens))
    expect(re.map((p) => p.memoryTokens)).toEqual([0, 0, 0])
    const frameBytes = (n: number) => frames.slice(0, n).reduce((s, f) => s + f.image.byteLength + new TextEncoder().encode(f.instruction).length, 0)
    expect(re.map((p) => p.bytes)).toEqual(Ts.map(frameBytes))
    expect(full.map((p) => p.memoryTokens)).toEqual(Ts.map(tokens))
    expect(full.map((p) => p.prefillTokens)).toEqual(Ts.map((T) => guiFrameTokens(frames[T - 1], 48)))
    for (const p of [...re, ...full]) expect(p.samplesMs).toHaveLength(2)
  })
})

describe('carried configurations', () => {
  it('a bounded policy keeps its budget; the point bytes are the blob the session persists', async () => {
    const guikv = byId('guikv-25-kivi4')
    const [p] = await measureHistory(deps, guikv, frames, [6], once)
    expect(p.memoryTokens).toBe(guikv.budgetTokens)
    const { memory, blob } = await playSession(deps, guikv, frames, 6)
    expect(blob.byteLength).toBe(p.bytes)
    expect(memory.tokens).toBe(210)
    expect(decodeMemory(blob).dtype).toBe('kivi')
  })

  it('the fixed-layout configurations carry the same memory and pick the same actions as their dynamic twins', async () => {
    const fixed = configs.filter((c) => c.layout === 'fixed')
    expect(fixed.map((c) => c.id)).toEqual(['tempofit-fixed', 'guikv-10-fixed', 'guikv-25-fixed', 'tempofit-fixed-kivi4', 'guikv-10-fixed-kivi4', 'guikv-25-fixed-kivi4'])
    for (const id of ['tempofit-fixed', 'guikv-25-fixed-kivi4', 'guikv-10-fixed']) {
      const twin = byId(id.replace('-fixed', ''))
      const [a, b] = [await measureHistory(deps, twin, frames, [1, 3, 6], once), await measureHistory(deps, byId(id), frames, [1, 3, 6], once)]
      expect(b.map((p) => p.action)).toEqual(a.map((p) => p.action))
      expect(b.map((p) => p.memoryTokens)).toEqual(a.map((p) => p.memoryTokens))
      expect(b.map((p) => p.bytes)).toEqual(a.map((p) => p.bytes))
    }
  })

  it('TempoFit holds the last 8 frames of the memory layers', async () => {
    const [p] = await measureHistory(deps, byId('tempofit'), frames, [10], once)
    const last8 = frames.slice(2, 10).reduce((s, f) => s + guiFrameTokens(f, 48), 0)
    expect(p.memoryTokens).toBe(last8)
  })
})
