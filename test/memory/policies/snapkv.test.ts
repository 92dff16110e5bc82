/**
 * SnapKV: pooling worked by hand, and the policy against a plain float64 reference scorer on a
 * fixed 2-head, 12-token memory (6 carried + 6 new rows).
 */
import { describe, expect, it } from 'vitest'
import { ModelMismatchError, PolicyConfigError } from '../../../memory/errors.ts'
import { avgPoolSame, snapKVPolicy } from '../../../memory/policies/snapkv.ts'
import { PINNED } from '../../../memory/types.ts'
import { grownMemory, keptRows, referenceTop } from './grown.ts'

// attnWindow [kvHeads 2, tokens 12]
const ATTN = [
  [0.9, 0.1, 0.0, 0.6, 0.1, 0.0, 0.0, 0.2, 0.0, 0.5, 0.3, 0.3],
  [0.0, 0.0, 0.0, 0.0, 0.0, 0.1, 0.8, 0.1, 0.0, 0.1, 0.1, 0.1],
]
const keys = ATTN.map((head, h) => head.map((_, t) => [h, t, 1, -t]))
const memory = (kinds = new Array(12).fill(0)) => grownMemory({ keys, kinds, prefixTokens: 6 })
const step = (prefixTokens = 6) => ({
  seq: 2,
  prefixTokens,
  attnWindow: [new Float32Array(ATTN.flat())],
})

/** SnapKV written plainly: the window's attention to the rows before it, summed over a kernel
 * centred on each row (rows outside [0, tokens − w) count 0), divided by the kernel. */
function referenceScores(attn: number[][], w: number, kernel: number, sinks: number): number[][] {
  return attn.map((head) => {
    const scored = head.length - w
    const f32 = head.map((x) => Math.fround(x))
    return head.map((_, j) => {
      if (j >= scored || j < sinks) return Infinity
      let sum = 0
      for (let i = j - (kernel - 1) / 2; i <= j + (kernel - 1) / 2; i++) {
        if (i >= 0 && i < scored) sum += f32[i]
      }
      return sum / kernel
    })
  })
}

describe('snapkv', () => {
  it("pools with 'same' zero padding, dividing by the kernel", () => {
    // [1,2,3,4,5], kernel 3: (0+1+2)/3, (1+2+3)/3, …, (4+5+0)/3 = 1, 2, 3, 4, 3
    expect([...avgPoolSame([1, 2, 3, 4, 5], 3)]).toEqual([1, 2, 3, 4, 3])
    // kernel 5: 6/5, 10/5, 15/5, 14/5, 12/5
    const pooled = [...avgPoolSame([1, 2, 3, 4, 5], 5)]
    pooled.forEach((x, i) => expect(x).toBeCloseTo([1.2, 2, 3, 2.8, 2.4][i], 12))
    expect([...avgPoolSame([7, 8], 1)]).toEqual([7, 8])
  })

  it('keeps sinks, the window and the top pooled rows per head (worked by hand)', () => {
    // budget 7, window 3 (rows 9–11), sink row 0, so top 3 of rows 1–8 by pooled attention:
    // head 0 pooled (÷5): r1 1.6, r2 1.7, r3 0.8, r4 0.7, r5 0.9, r6 0.3, r7 0.2, r8 0.2 → 2, 1, 5
    //   (r8 would be (0.2+0.5+0.3)/5 = 0.2 > 0.18 if the window were not cut before pooling)
    // head 1: r4 0.9, r5 1.0, r6 1.0, r7 1.0, r8 0.9, others ≤ 0.1 → 5, 6, 7
    const policy = snapKVPolicy({ budgetTokens: 7, observationWindow: 3, sinkTokens: 1 })
    const kept = policy.update(memory(), step())
    expect(kept.tokens).toBe(7)
    expect(keptRows(kept, 0, 0)).toEqual([0, 1, 2, 5, 9, 10, 11])
    expect(keptRows(kept, 0, 1)).toEqual([0, 5, 6, 7, 9, 10, 11])
    expect(referenceTop(referenceScores(ATTN, 3, 5, 1), 7)).toEqual([
      [0, 1, 2, 5, 9, 10, 11],
      [0, 5, 6, 7, 9, 10, 11],
    ])
    // K/V and metadata travel with their rows; nextPosition and seq are unchanged
    const { keys: k, values, frames } = kept.layers[0]
    expect([...k.subarray(7 * 4 + 3 * 4, 7 * 4 + 4 * 4)]).toEqual([1, 7, 1, -7]) // head 1, row 7
    expect(values[0]).toBe(-0)
    expect([...frames.subarray(0, 7)]).toEqual([1, 1, 1, 1, 2, 2, 2])
    expect([kept.nextPosition, kept.seq]).toEqual([22, 2])
  })

  it('matches the float64 reference for other kernels, windows and sinks', () => {
    for (const [w, kernel, sinks, budget] of [
      [1, 1, 0, 4],
      [2, 3, 0, 5],
      [3, 7, 2, 8],
      [6, 5, 0, 9],
    ]) {
      const policy = snapKVPolicy({
        budgetTokens: budget,
        observationWindow: w,
        kernelSize: kernel,
        sinkTokens: sinks,
      })
      const kept = policy.update(memory(), step())
      const expected = referenceTop(referenceScores(ATTN, w, kernel, sinks), budget)
      expect([keptRows(kept, 0, 0), keptRows(kept, 0, 1)]).toEqual(expected)
    }
  })

  it('uses the whole prefix as the window when the step is shorter than w', () => {
    // observationWindow 4 but S = 2: the window is rows 10, 11; rows 0–9 pooled (÷5): r0 1.0,
    // r1 1.6, r2 1.7, r3 0.8, r4 0.7, r5 0.9, r6 0.3, r7–r9 0.7 (r9 now counts) → top 4: 2, 1, 0, 5
    const policy = snapKVPolicy({ budgetTokens: 6, observationWindow: 4 })
    const kept = policy.update(memory(), step(2))
    const expected = referenceTop(referenceScores(ATTN, 2, 5, 0), 6)
    expect([keptRows(kept, 0, 0), keptRows(kept, 0, 1)]).toEqual(expected)
    expect(expected[0]).toEqual([0, 1, 2, 5, 10, 11])
  })

  it('keeps pinned rows, counting them toward the budget', () => {
    // row 4 pinned: head 0 keeps 0 (sink), 4 (pin), 9–11 (window) and the top 2 of the rest: 2, 1;
    // head 1's top 2 of rows 5, 6, 7 (all 1.0/5) go to the newer rows 7, 6
    const kinds = new Array(12).fill(0)
    kinds[4] = PINNED
    const policy = snapKVPolicy({ budgetTokens: 7, observationWindow: 3, sinkTokens: 1 })
    const kept = policy.update(memory(kinds), step())
    expect(keptRows(kept, 0, 0)).toEqual([0, 1, 2, 4, 9, 10, 11])
    expect(keptRows(kept, 0, 1)).toEqual([0, 4, 6, 7, 9, 10, 11])
  })

  it('evicts nothing within the budget and needs attnWindow', () => {
    const policy = snapKVPolicy({ budgetTokens: 12, observationWindow: 3 })
    const mem = memory()
    expect(policy.update(mem, { seq: 2, prefixTokens: 6 })).toBe(mem)
    const small = snapKVPolicy({ budgetTokens: 8, observationWindow: 3 })
    expect(() => small.update(mem, { seq: 2, prefixTokens: 6 })).toThrow(ModelMismatchError)
    expect(() => small.update(mem, { seq: 2, prefixTokens: 13 })).toThrow(RangeError)
    const short = { seq: 2, prefixTokens: 6, attnWindow: [new Float32Array(23)] }
    expect(() => small.update(mem, short)).toThrow(/attnWindow\[0\] must be a Float32Array of 24/)
  })

  it('has the documented defaults and refuses bad parameters', () => {
    const policy = snapKVPolicy()
    expect(policy.params).toEqual({
      budgetTokens: 256,
      observationWindow: 32,
      kernelSize: 5,
      sinkTokens: 0,
    })
    expect(policy.observationWindow).toBe(32)
    expect(policy.requires).toEqual(['attnWindow'])
    expect(() => snapKVPolicy({ kernelSize: 4 })).toThrow("parameter 'kernelSize' must be odd")
    expect(() => snapKVPolicy({ budgetTokens: 8, observationWindow: 6, sinkTokens: 3 })).toThrow(
      PolicyConfigError,
    )
    for (const params of [{ budgetTokens: 0 }, { observationWindow: 1.5 }, { window: 4 }]) {
      expect(() => snapKVPolicy(params)).toThrow(PolicyConfigError)
    }
    try {
      snapKVPolicy({ budgetTokens: 16, observationWindow: 32 })
    } catch (error) {
      expect((error as PolicyConfigError).details).toMatchObject({ parameter: 'observationWindow' })
    }
  })
})
