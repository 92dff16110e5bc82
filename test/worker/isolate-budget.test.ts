/**
 * The isolate memory budget's estimate (worked by hand from the manifests' shapes) and the engine
 * failing closed before inference when a step would exceed it.
 */
import { describe, expect, it } from 'vitest'
import { nodeModelSource } from '../../gpu/node-models.ts'
import { ortForNode } from '../../gpu/ort-node.ts'
import { ModelRuntime } from '../../gpu/session.ts'
import { createPolicy } from '../../memory/policies/index.ts'
import { initialMemory, runStep } from '../../worker/engine.ts'
import { engineLimitsOf } from '../../worker/env.ts'
import { checkIsolateBudget, decodeFactor, DEFAULT_ISOLATE_MEMORY_BUDGET_BYTES, isolateBudgetBytes, kvBytes, stepWorkingSetBytes } from '../../worker/isolate-budget.ts'

const tinyGqa = { layers: 4, kvHeads: 2, headDim: 16 } // models/tiny-gqa/manifest.json
const robot = { layers: 4, kvHeads: 2, headDim: 32 } // models/robot-carried/manifest.json

describe('isolate memory budget', () => {
  it('estimates from the KV shape', () => {
    // 4 layers × 2 heads × 16 dims × 4 B × (K + V) = 1,024 B per token.
    expect(kvBytes(tinyGqa, 1)).toBe(1024)
    expect(kvBytes(robot, 1)).toBe(2048)
    // Carried: 2 × P + 4 × (P + S) tokens: P = 80, S = 40 → (160 + 480) × 1,024.
    expect(stepWorkingSetBytes(tinyGqa, 80, 40)).toBe(655_360)
    // TempoFit on 2 bank layers (512 B per bank token): 2 × 100 × 512 + 2 × 30 × 1,024 + 2 × 130 × 512.
    expect(stepWorkingSetBytes(tinyGqa, 100, 30, 2)).toBe(102_400 + 61_440 + 133_120)
    // The default fits a full tiny-gqa session up to MAX_MEMORY_TOKENS (16,384): 6 × 16,384 × 1,024 = 96 MiB.
    expect(stepWorkingSetBytes(tinyGqa, 16_384 - 64, 64)).toBeLessThanOrEqual(DEFAULT_ISOLATE_MEMORY_BUDGET_BYTES)
    // …but a robot-carried full cache of 10,000 tokens does not (6 × 10,000 × 2,048 ≈ 117 MiB).
    expect(stepWorkingSetBytes(robot, 9_917, 83)).toBe(2 * 9_917 * 2048 + 4 * 10_000 * 2048)
    expect(stepWorkingSetBytes(robot, 9_917, 83)).toBeGreaterThan(DEFAULT_ISOLATE_MEMORY_BUDGET_BYTES)
    expect([decodeFactor('float32'), decodeFactor('float16'), decodeFactor('kivi', 4), decodeFactor('kivi', 2)]).toEqual([2, 3, 9, 17])
  })

  it('reads ISOLATE_MEMORY_BUDGET_BYTES (default 96 MiB, "0" unchecked, garbage → default)', () => {
    expect(isolateBudgetBytes({})).toBe(100_663_296)
    expect(isolateBudgetBytes({ ISOLATE_MEMORY_BUDGET_BYTES: '500000' })).toBe(500_000)
    expect(isolateBudgetBytes({ ISOLATE_MEMORY_BUDGET_BYTES: 'lots' })).toBe(100_663_296)
    expect(() => checkIsolateBudget(10 ** 12, 0, 'x')).not.toThrow()
    expect(engineLimitsOf({ ISOLATE_MEMORY_BUDGET_BYTES: '1234' } as never, { prefixTokensPerStep: 4096, memoryBytesPerSession: 1 }).isolateBudgetBytes).toBe(1234)
  })

  it('a step over the budget fails closed before inference with 422 isolate_memory_budget; the memory is untouched', async () => {
    const runtime = ModelRuntime.for(ortForNode(), nodeModelSource('tiny-gqa'))
    const policy = createPolicy('full', {})
    const text = 'a forty-byte observation for the budget.' // 40 tokens (bytes)
    expect(new TextEncoder().encode(text).length).toBe(40)
    const limits = { maxPrefixTokens: 4096, isolateBudgetBytes: 500_000 }
    let mem = initialMemory(runtime.manifest, policy)
    mem = (await runStep(runtime, mem, policy, { seq: 1, observation: { text } }, limits)).memory // 163,840 B
    mem = (await runStep(runtime, mem, policy, { seq: 2, observation: { text } }, limits)).memory // 409,600 B
    const run = runtime.run.bind(runtime)
    let inferences = 0
    runtime.run = (feeds) => (inferences++, run(feeds))
    type Refusal = { code: string; status: number; details: Record<string, number>; message: string }
    const err = (await runStep(runtime, mem, policy, { seq: 3, observation: { text } }, limits).then(
      () => ({ code: 'none', status: 200, details: {}, message: '' }),
      (e: unknown) => e,
    )) as Refusal
    expect(err).toMatchObject({ code: 'isolate_memory_budget', status: 422, details: { needBytes: 655_360, budgetBytes: 500_000 } })
    expect(err.message).toMatch(/step 3 \(80 memory tokens \+ 40 prefix tokens\)/)
    expect(inferences).toBe(0)
    expect(mem.tokens).toBe(80)
    expect(mem.seq).toBe(2)
  })
})
