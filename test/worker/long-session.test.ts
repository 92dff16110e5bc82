/**
 * Long sessions: 1,000 steps under every bounded policy keep the memory bounded (tokens and
 * serialized bytes stop growing once the budget is reached), positions stay exact, and the
 * unbounded full cache fails closed at the configured memory limit instead of growing forever.
 */
import { describe, expect, it } from 'vitest'
import { nodeModelSource } from '../../gpu/node-models.ts'
import { ortForNode } from '../../gpu/ort-node.ts'
import { ModelRuntime } from '../../gpu/session.ts'
import { encodeMemory } from '../../memory/codec.ts'
import { createPolicy } from '../../memory/policies/index.ts'
import { initialMemory, runStep } from '../../worker/engine.ts'

const STEPS = 1000
const texts = ['tap Save', 'scroll down 3', 'type the code', 'open Settings > Wi-Fi', 'back']
const budget = 96

const cases: [string, string, Record<string, number>][] = [
  ['tiny-gqa', 'window', { sinkTokens: 4, recentTokens: budget - 4 }],
  ['tiny-gqa', 'snapkv', { budgetTokens: budget }],
  ['tiny-gqa', 'h2o', { budgetTokens: budget }],
  ['tiny-gqa', 'guikv', { budgetTokens: budget }],
  ['tiny-gqa-tempo', 'tempofit', { frames: 8 }],
]

describe(`${STEPS}-step sessions`, () => {
  it.each(cases)('%s / %s stays bounded with exact positions', async (model, name, params) => {
    const runtime = ModelRuntime.for(ortForNode(), nodeModelSource(model))
    const policy = createPolicy(name, params)
    let mem = initialMemory(runtime.manifest, policy)
    let position = 0
    const bytes: number[] = []
    const tokens: number[] = []
    for (let seq = 1; seq <= STEPS; seq++) {
      const text = `${seq}: ${texts[seq % texts.length]}`
      const out = await runStep(runtime, mem, policy, { seq, observation: { text } }, { maxPrefixTokens: 4096 })
      mem = out.memory
      position += text.length
      if (policy.memory !== 'tempo') expect(mem.nextPosition).toBe(position)
      tokens.push(mem.tokens)
      if (seq % 100 === 0) bytes.push(encodeMemory(mem, { policy: { name: policy.name, params: { ...policy.params } }, dtype: 'float32' }).byteLength)
    }
    const maxTokens = policy.memory === 'tempo' ? 8 * Math.max(...texts.map((t) => t.length + 6)) : budget
    expect(Math.max(...tokens)).toBeLessThanOrEqual(maxTokens)
    // Bytes stop growing: the last 500 steps stay within 10 % of each other.
    const late = bytes.slice(5)
    expect(Math.max(...late) / Math.min(...late)).toBeLessThan(1.1)
    // Kept positions are real positions of this session: strictly increasing per head, < nextPosition.
    for (const layer of mem.layers)
      for (let h = 0; h < mem.kvHeads; h++) {
        const p = layer.positions.subarray(h * mem.tokens, (h + 1) * mem.tokens)
        for (let i = 1; i < p.length; i++) expect(p[i]).toBeGreaterThan(p[i - 1])
        expect(p[p.length - 1]).toBeLessThan(mem.nextPosition)
      }
  }, 120_000)

  it('the full cache fails closed at the memory limit, naming it', async () => {
    const runtime = ModelRuntime.for(ortForNode(), nodeModelSource('tiny-gqa'))
    const policy = createPolicy('full', {})
    let mem = initialMemory(runtime.manifest, policy)
    const limits = { maxPrefixTokens: 4096, maxMemoryTokens: 200 }
    let seq = 1
    for (; seq <= 100; seq++) {
      try {
        mem = (await runStep(runtime, mem, policy, { seq, observation: { text: texts[seq % 5] } }, limits)).memory
      } catch (e) {
        expect((e as { code: string }).code).toBe('memory_limit')
        expect(String(e)).toMatch(/200 tokens/)
        break
      }
    }
    expect(seq).toBeLessThan(100)
    expect(mem.tokens).toBeLessThanOrEqual(200)
    expect(mem.seq).toBe(seq - 1)
  })
})
