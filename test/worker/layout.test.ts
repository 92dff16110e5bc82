/**
 * The fixed step layout (`EngineLimits.layout = 'fixed'`): the past padded with masked slots to its
 * full size. Every step must feed the same past size from step 1, and give what the dynamic layout
 * gives: the same kept rows (positions, frames, kinds) and K/V, logits within float32 summation
 * noise, and the first step's logits equal to a float64 prefill with no past at all.
 */
import { describe, expect, it } from 'vitest'
import { TINY_GQA_SEED, TINY_GQA_TEMPO } from '../../models/decoder/config.ts'
import { generateWeights } from '../../models/decoder/weights.ts'
import { nodeModelSource } from '../../gpu/node-models.ts'
import { ortForNode } from '../../gpu/ort-node.ts'
import { ModelRuntime } from '../../gpu/session.ts'
import type { HostTensor } from '../../gpu/feeds.ts'
import { PolicyConfigError } from '../../memory/errors.ts'
import { createPolicy } from '../../memory/policies/index.ts'
import type { Policy, SessionMemory } from '../../memory/types.ts'
import { checkLayoutFits, initialMemory, runStep, type EngineLimits } from '../../worker/engine.ts'
import { relErr } from '../../sim/client.ts'
import { forward64 } from '../reference/decoder64.ts'

const base = ModelRuntime.for(ortForNode(), nodeModelSource('tiny-gqa-tempo'))
const m = base.manifest
const weights = generateWeights(TINY_GQA_TEMPO, TINY_GQA_SEED)

/** The runtime, recording the past size (`attention_mask` length − S) and bank size of each run. */
function recording() {
  const seen: { past: number; masked: number; bank: number }[] = []
  const runtime = Object.create(base) as ModelRuntime
  runtime.run = (feeds: Record<string, HostTensor>) => {
    const S = feeds.position_ids.dims[1]
    const mask = feeds.attention_mask.data as BigInt64Array
    const bias = feeds.tempo_bias.data as Float32Array
    seen.push({
      past: mask.length - S,
      masked: mask.filter((x) => x === 0n).length,
      bank: feeds.tempo_bias.dims[3],
    })
    expect(bias.every((b) => Number.isFinite(b) || b === -Infinity)).toBe(true)
    return base.run(feeds)
  }
  return { runtime, seen }
}

const TEXTS = ['open the settings menu', ' / click Save', ' / type 4711 in the field', ' / ok', ' / scroll down twice', ' / done?', ' / next page', ' / back']

/** Steps `TEXTS` through `policy` under `layout`: per step the logits, the memory and the sizes fed. */
async function play(policy: Policy, layout: EngineLimits['layout']) {
  const { runtime, seen } = recording()
  let memory: SessionMemory = initialMemory(m, policy)
  const steps: { logits: Float32Array; memory: SessionMemory }[] = []
  for (const [i, text] of TEXTS.entries()) {
    const out = await runStep(runtime, memory, policy, { seq: i + 1, observation: { text }, options: { returnLogits: true } }, { maxPrefixTokens: 4096, layout })
    memory = out.memory
    steps.push({ logits: out.logits!.data, memory })
  }
  return { steps, seen }
}

function expectSameMemory(a: SessionMemory, b: SessionMemory, step: number) {
  expect(b.tokens, `step ${step} tokens`).toBe(a.tokens)
  expect(b.nextPosition).toBe(a.nextPosition)
  a.layers.forEach((la, l) => {
    const lb = b.layers[l]
    expect([...lb.positions], `step ${step} layer ${l} positions`).toEqual([...la.positions])
    expect([...lb.frames]).toEqual([...la.frames])
    expect([...lb.kinds]).toEqual([...la.kinds])
    expect(relErr(lb.keys, la.keys), `step ${step} layer ${l} keys`).toBeLessThanOrEqual(1e-5)
    expect(relErr(lb.values, la.values)).toBeLessThanOrEqual(1e-5)
    if (la.scores) expect(relErr(lb.scores!, la.scores)).toBeLessThanOrEqual(1e-5)
  })
}

const BUDGET = 40
const CARRIED: [string, Record<string, number>][] = [
  ['window', { sinkTokens: 4, recentTokens: BUDGET - 4 }],
  ['snapkv', { budgetTokens: BUDGET, observationWindow: 4 }],
  ['h2o', { budgetTokens: BUDGET }],
  ['guikv', { budgetTokens: BUDGET, observationWindow: 4, queryGroupSize: 2 }],
]

describe('fixed step layout', () => {
  for (const [name, params] of CARRIED)
    it(`${name}: past padded to the budget from step 1, same kept rows and logits as dynamic`, async () => {
      const policy = createPolicy(name, params)
      const dyn = await play(policy, 'dynamic')
      const fix = await play(policy, 'fixed')
      // dynamic feeds what the memory holds; fixed feeds max(budget, P) with the rest masked
      expect(dyn.seen.map((s) => s.masked)).toEqual(TEXTS.map(() => 0))
      expect(fix.seen.map((s) => s.past)).toEqual(dyn.seen.map((s) => Math.max(BUDGET, s.past)))
      expect(fix.seen.map((s) => s.past - s.masked)).toEqual(dyn.seen.map((s) => s.past))
      expect(fix.seen[0]).toEqual({ past: BUDGET, masked: BUDGET, bank: 0 })
      expect(dyn.seen.some((s) => s.past >= BUDGET), 'the budget fills within the run').toBe(true)
      for (const [i, d] of dyn.steps.entries()) {
        expect(relErr(fix.steps[i].logits, d.logits), `step ${i + 1} logits`).toBeLessThanOrEqual(1e-5)
        expectSameMemory(d.memory, fix.steps[i].memory, i + 1)
      }
      // the first fixed step (all past slots masked) against a float64 prefill with no past
      const ids = [...new TextEncoder().encode(TEXTS[0])]
      const none = Array.from({ length: m.layers }, () => ({ key: new Float64Array(0), value: new Float64Array(0) }))
      const ref = forward64(TINY_GQA_TEMPO, weights, { inputIds: ids, positionIds: ids.map((_, i) => i), attentionMask: ids.map(() => 1), past: none })
      expect(relErr(fix.steps[0].logits, ref.logits)).toBeLessThanOrEqual(1e-4)
    })

  it('tempofit: bank fed at frames · largest frame from step 1 (padding −∞), same bank and logits as dynamic', async () => {
    const frames = 3
    const policy = createPolicy('tempofit', { frames })
    const dyn = await play(policy, 'dynamic')
    const fix = await play(policy, 'fixed')
    const lengths = TEXTS.map((t) => new TextEncoder().encode(t).length)
    // dynamic: the bank's rows (the last `frames` frames before this one); fixed: frames · the
    // largest frame among them and this step's prefix
    expect(dyn.seen.map((s) => s.bank)).toEqual(lengths.map((_, i) => lengths.slice(Math.max(0, i - frames), i).reduce((a, b) => a + b, 0)))
    expect(fix.seen.map((s) => s.bank)).toEqual(lengths.map((S, i) => frames * Math.max(S, ...lengths.slice(Math.max(0, i - frames), i))))
    expect(fix.seen.every((s) => s.past === 0 && s.masked === 0)).toBe(true)
    for (const [i, d] of dyn.steps.entries()) {
      expect(relErr(fix.steps[i].logits, d.logits), `step ${i + 1} logits`).toBeLessThanOrEqual(1e-5)
      expectSameMemory(d.memory, fix.steps[i].memory, i + 1)
    }
  })

  it("refuses, at creation, a budget whose padded past a step could never hold", () => {
    const window = createPolicy('window', { sinkTokens: 4, recentTokens: 100_000 })
    expect(() => checkLayoutFits(window, 'fixed')).not.toThrow() // bounded, limits not given
    expect(() => checkLayoutFits(window, 'dynamic', { manifest: m, maxMemoryTokens: 1000 })).not.toThrow()
    expect(() => checkLayoutFits(window, 'fixed', { manifest: m })).toThrow(/budget of 100004 tokens, over the session limit of 65536 tokens/)
    // tiny-gqa-tempo: 4 layers × 2 heads × 16 dims × 4 B × 2 = 1 KiB per token; a step with P past
    // tokens and 1 prefix token needs 2·kv(P) + 4·kv(P + 1) (`stepWorkingSetBytes`)
    const small = createPolicy('window', { sinkTokens: 4, recentTokens: 996 })
    const need = 2 * 1024 * 1000 + 4 * 1024 * 1001
    expect(() => checkLayoutFits(small, 'fixed', { manifest: m, isolateBudgetBytes: need })).not.toThrow()
    expect(() => checkLayoutFits(small, 'fixed', { manifest: m, isolateBudgetBytes: need - 1 })).toThrow(
      new RegExp(`needs about ${need} bytes per step, over this deployment's isolate memory budget of ${need - 1} bytes`),
    )
    expect(() => checkLayoutFits(createPolicy('tempofit', {}), 'fixed', { manifest: m, maxMemoryTokens: 1 })).not.toThrow()
  })

  it('a non-finite value in a new K/V row is refused even when the logits are finite (it would be stored)', async () => {
    const policy = createPolicy('window', { sinkTokens: 4, recentTokens: 36 })
    for (const layout of ['dynamic', 'fixed'] as const) {
      const runtime = Object.create(base) as ModelRuntime
      runtime.run = async (feeds: Record<string, HostTensor>) => {
        const out = await base.run(feeds)
        const key = out['present.2.value']
        const S = feeds.position_ids.dims[1]
        const total = key.dims[2]
        key.data[(1 * total + (total - S) + 1) * m.headDim + 3] = -Infinity // head 1, new row 1
        return out
      }
      const first = await runStep(base, initialMemory(m, policy), policy, { seq: 1, observation: { text: 'abc' } }, { maxPrefixTokens: 64, layout })
      // the index into the (unpadded) [heads, P + S, headDim] output: head 1, new row 1, channel 3
      const [P, S] = [first.memory.tokens, 3]
      await expect(runStep(runtime, first.memory, policy, { seq: 2, observation: { text: 'def' } }, { maxPrefixTokens: 64, layout })).rejects.toThrow(
        `model output 'present.2.value' holds a non-finite value at index ${((P + S) + P + 1) * m.headDim + 3}`,
      )
    }
  })

  it('refuses an unbounded policy (full) with a 400 naming the layout', () => {
    const full = createPolicy('full', {})
    expect(() => checkLayoutFits(full, 'dynamic')).not.toThrow()
    let err: unknown
    try {
      checkLayoutFits(full, 'fixed')
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(PolicyConfigError)
    expect((err as PolicyConfigError).status).toBe(400)
    expect((err as Error).message).toMatch(/layout 'fixed'.*budget/)
    expect(() => checkLayoutFits(createPolicy('tempofit', {}), 'fixed')).not.toThrow()
  })
})
