/**
 * GUI-KV on a fixed 2-head, headDim-4, 12-token memory of 2 frames, against a plain float64
 * reference scorer (pooling by loops, saliency by its formula, residuals by least squares), with
 * the decisive numbers worked by hand.
 */
import { describe, expect, it } from 'vitest'
import { ModelMismatchError, PolicyConfigError } from '../../../memory/errors.ts'
import { guiKVPolicy, spatialSaliency, temporalResiduals } from '../../../memory/policies/guikv.ts'
import { snapKVPolicy } from '../../../memory/policies/snapkv.ts'
import { PINNED, TokenKind } from '../../../memory/types.ts'
import { leastSquaresResidual } from '../least-squares.ts'
import { grownMemory, keptRows, referenceTop } from './grown.ts'

const [T, V] = [TokenKind.text, TokenKind.visual]
// frame 1 (carried): text, 4 visual, text; frame 2 (this step, S = 6): 3 visual, 3 text
const KINDS: number[] = [T, V, V, V, V, T, V, V, V, T, T, T]
const S = 6
const text = (t: number) => [t, 0, 0, 1]
// head 0: current visual keys span {x₄ = 0}; residuals of rows 1–4: 0, 2, 0.5, 1
// head 1: current keys (1,1,0,0), (2,2,0,0), (0,0,1,0) have rank 2 (the second is skipped);
//   residuals of rows 1–4: √2, 0, 1, √0.5
const KEYS = [
  [text(0), [1, 2, 3, 0], [0, 0, 0, 2], [1, 1, 1, 0.5], [3, 0, 0, 1], text(5),
    [1, 0, 0, 0], [0, 1, 0, 0], [1, 1, 1, 0], text(9), text(10), text(11)],
  [text(0), [1, -1, 0, 0], [3, 3, 5, 0], [0, 0, 0, 1], [1, 0, 0, 0], text(5),
    [1, 1, 0, 0], [2, 2, 0, 0], [0, 0, 1, 0], text(9), text(10), text(11)],
] // prettier-ignore
const BASES = [
  [6, 7, 8],
  [6, 8],
] // independent current keys per head (reference's basis)
const ATTN = [
  [0.3, 0.05, 0.3, 0.6, 0.4, 0.05, 0.1, 0.05, 0.05, 0.2, 0.5, 0.5],
  [0.1, 0.2, 0.9, 0.8, 0.2, 0.1, 0.3, 0.0, 0.0, 0.05, 0.5, 0.5],
]
const NORMS = [1, 3, 2, 5, 5, 5] // hiddenNorm of this step's 6 tokens

const memory = (kinds = KINDS) => grownMemory({ keys: KEYS, kinds, prefixTokens: S })
const step = () => ({
  seq: 2,
  prefixTokens: S,
  attnWindow: [new Float32Array(ATTN.flat())],
  hiddenNorm: [new Float32Array(NORMS)],
})

interface Ref {
  budget: number
  w: number
  kernel: number
  alpha: number
  temperature: number
  group: number
}

/** GUI-KV written plainly in float64, from ALGORITHMS.md. */
function referenceScores(p: Ref, kinds = KINDS): number[][] {
  const tokens = kinds.length
  const scored = tokens - p.w
  const current = kinds.map((k, t) => (t >= tokens - S && k === V ? t : -1)).filter((t) => t >= 0)
  const previous = kinds.map((k, t) => (t < tokens - S && k === V ? t : -1)).filter((t) => t >= 0)
  const r = current.map((t) => NORMS[t - (tokens - S)])
  const mean = r.reduce((a, b) => a + b) / r.length
  const std = Math.sqrt(r.reduce((a, x) => a + (x - mean) ** 2, 0) / (r.length - 1))
  const e = r.map((x) => Math.exp((x - mean) / (std + 1e-8) / p.temperature))
  const saliency = e.map((x) => x / e.reduce((a, b) => a + b))
  return ATTN.map((head, h) => {
    const a = head.map((x) => Math.fround(x))
    const score = a.map((_, j) => {
      if (j >= scored) return Infinity
      let sum = 0
      for (let i = j - (p.kernel - 1) / 2; i <= j + (p.kernel - 1) / 2; i++) {
        if (i >= 0 && i < scored) sum += a[i]
      }
      return sum / p.kernel / p.group
    })
    current.forEach((t, i) => t < scored && (score[t] += p.alpha * saliency[i]))
    const cols = BASES[h].map((t) => KEYS[h][t])
    const rho = previous.map((t) => leastSquaresResidual(cols, KEYS[h][t]))
    const zeroed = Math.floor((1 - p.budget / tokens) * previous.length)
    const order = previous
      .map((t, i) => ({ t, rho: rho[i] }))
      .sort((x, y) => x.rho - y.rho || x.t - y.t)
    order.slice(0, zeroed).forEach(({ t }) => (score[t] = 0))
    return score
  })
}

const DEFAULTS: Ref = { budget: 6, w: 2, kernel: 3, alpha: 2, temperature: 3.5, group: 1 }
const run = (p: Ref, kinds = KINDS) =>
  guiKVPolicy({
    budgetTokens: p.budget,
    observationWindow: p.w,
    kernelSize: p.kernel,
    alpha: p.alpha,
    temperature: p.temperature,
    queryGroupSize: p.group,
  }).update(memory(kinds), step())

describe('guikv', () => {
  it('spatial saliency: z-scores (Bessel std) through a tempered softmax', () => {
    // r = [1, 3, 2]: mean 2, std √((1 + 1 + 0)/2) = 1, z = [−1, 1, 0]; softmax(z / 3.5)
    const e = [Math.exp(-1 / 3.5), Math.exp(1 / 3.5), 1]
    const sum = e[0] + e[1] + e[2] // 0.75148 + 1.33071 + 1 = 3.08219
    const s = spatialSaliency([1, 3, 2], 3.5)
    s.forEach((x, i) => expect(x).toBeCloseTo(e[i] / sum, 6)) // 0.24382, 0.43174, 0.32444
    expect([...spatialSaliency([7], 3.5)]).toEqual([1])
    expect([...spatialSaliency([4, 4], 1)]).toEqual([0.5, 0.5])
    expect(spatialSaliency([], 1).length).toBe(0)
  })

  it('temporal residuals against the current frame subspace (least squares reference)', () => {
    const mem = memory()
    const keys = mem.layers[0].keys
    const expected = [
      [0, 2, 0.5, 1],
      [Math.SQRT2, 0, 1, Math.SQRT1_2],
    ]
    for (const h of [0, 1]) {
      const rho = temporalResiduals(keys, h, 12, 4, [6, 7, 8], [1, 2, 3, 4], 32)
      const cols = BASES[h].map((t) => KEYS[h][t])
      ;[1, 2, 3, 4].forEach((t, i) => {
        expect(rho[i]).toBeCloseTo(expected[h][i], 6)
        expect(rho[i]).toBeCloseTo(leastSquaresResidual(cols, KEYS[h][t]), 6)
      })
    }
    // subspaceRank 1: Q = the first current key only; row 1 (1,2,3,0) − (1,0,0,0) → √13
    expect(temporalResiduals(keys, 0, 12, 4, [6, 7, 8], [1], 1)[0]).toBeCloseTo(Math.sqrt(13), 6)
  })

  it('a key in the span has residual exactly 0: a full-rank basis zeroes every residual, a tiny residual is 0', () => {
    // head 0's current keys (1,0,0,0), (0,1,0,0), (1,1,1,0) span {x₄ = 0}; add (0,0,0,3): all of R⁴
    const keys = new Float32Array(KEYS[0].flat())
    keys.set([0, 0, 0, 3], 9 * 4) // row 9 (this step's text row) as a fourth current key
    const full = temporalResiduals(keys, 0, 12, 4, [6, 7, 8, 9], [1, 2, 3, 4], 32)
    expect([...full]).toEqual([0, 0, 0, 0]) // exactly, not rounding noise
    // the three-key basis: rows 2 and 4 stick out of {x₄ = 0} by 2 and 1; row 1 lies in it, and
    // row 3 (1, 1, 1, 0.5) nudged to x₄ = 1e-7: its residual 1e-7 ≤ 1e-5 · ‖k‖ counts as in the span
    keys.set([1, 1, 1, 1e-7], 3 * 4)
    const rho = temporalResiduals(keys, 0, 12, 4, [6, 7, 8], [1, 2, 3, 4], 32)
    expect(rho[0]).toBe(0)
    expect(rho[1]).toBeCloseTo(2, 6)
    expect(rho[2]).toBe(0)
    expect(rho[3]).toBeCloseTo(1, 6)
    // rank 2 (basis (1,0,0,0), (0,1,0,0)): row 3's residual ‖(0, 0, 1, 1e-7)‖ ≈ 1 is kept
    expect(temporalResiduals(keys, 0, 12, 4, [6, 7, 8], [3], 2)[0]).toBeCloseTo(1, 6)
  })

  it('with equal residuals the oldest previous visual rows are the ones zeroed', () => {
    // head 0 current keys spanning R⁴ (rows 6–9): every residual 0, so ⌊(1 − 6/12) · 4⌋ = 2 of
    // rows 1–4 are zeroed, oldest first: rows 1 and 2. Without the zeroing the pooled scores
    // (kernel 3) of rows 1–4 would be .217, .317, .433, .35.
    const mem = memory()
    mem.layers[0].keys.set([0, 0, 0, 3], 9 * 4)
    const kinds = KINDS.map((k, t) => (t === 9 ? V : k))
    mem.layers[0].kinds.set(kinds.map((k, t) => (t === 9 ? V : mem.layers[0].kinds[t])))
    const kept = guiKVPolicy({ budgetTokens: 6, observationWindow: 2, kernelSize: 3, alpha: 0, temperature: 3.5 }).update(mem, step())
    // head 0 (α = 0): rows 1, 2 zeroed; top 4 of rows 0–9 by pooled attention: r3 .433, r4 .35,
    // r5 .183, r0 .117 (r6 .067, r7 .067, r8 .1, r9 .083 fall below) → 0, 3, 4, 5 + window 10, 11
    expect(keptRows(kept, 0, 0)).toEqual([0, 3, 4, 5, 10, 11])
  })

  it('keeps the window and the top scores after saliency and redundancy (worked by hand)', () => {
    // budget 6, window 2 (rows 10, 11) → top 4 of rows 0–9. Pooled (kernel 3, rows 0–9):
    //   head 0: r0 .117, r1 .217, r2 .317, r3 .433, r4 .35, r5 .183, r6 .067, r7 .067, r8 .1, r9 .083
    //   head 1: r0 .1, r1 .4, r2 .633, r3 .633, r4 .367, r5 .2, r6 .133, r7 .1, r8 .017, r9 .017
    // saliency α·S on rows 6, 7, 8: 2 · [0.2438, 0.4317, 0.3244] = [.488, .863, .649]
    // zeroed: ⌊(1 − 6/12) · 4⌋ = 2 smallest residuals — head 0 rows 1, 3; head 1 rows 2, 4
    // head 0: r7 .930, r8 .749, r6 .554, r4 .35 (r3 .433 was zeroed) → 4, 6, 7, 8
    // head 1: r7 .963, r8 .666, r3 .633, r6 .621 (r2 .633 was zeroed) → 3, 6, 7, 8
    const kept = run(DEFAULTS)
    expect(kept.tokens).toBe(6)
    expect(keptRows(kept, 0, 0)).toEqual([4, 6, 7, 8, 10, 11])
    expect(keptRows(kept, 0, 1)).toEqual([3, 6, 7, 8, 10, 11])
    expect(referenceTop(referenceScores(DEFAULTS), 6)).toEqual([
      [4, 6, 7, 8, 10, 11],
      [3, 6, 7, 8, 10, 11],
    ])
  })

  it('matches the float64 reference across parameters', () => {
    for (const p of [
      { ...DEFAULTS, alpha: 0.1, temperature: 1 }, // the class defaults: attention dominates
      { ...DEFAULTS, group: 2 },
      { ...DEFAULTS, group: 4, alpha: 0.5 },
      { ...DEFAULTS, kernel: 5, w: 1 },
      { ...DEFAULTS, budget: 9, w: 3, kernel: 1 },
      { ...DEFAULTS, budget: 3, w: 1 },
    ]) {
      const kept = run(p)
      expect([keptRows(kept, 0, 0), keptRows(kept, 0, 1)], JSON.stringify(p)).toEqual(
        referenceTop(referenceScores(p), p.budget),
      )
    }
    // α 0.1, T 1: S = softmax([−1, 1, 0]) = [.090, .665, .245] → r6 .076, r7 .133, r8 .124;
    // head 0's top 4 of rows 0–9 are then r4 .35, r2 .317, r5 .183, r7 .133
    expect(keptRows(run({ ...DEFAULTS, alpha: 0.1, temperature: 1 }), 0, 0)).toEqual([
      2, 4, 5, 7, 10, 11,
    ])
  })

  it('is SnapKV when the step brings no visual tokens', () => {
    const kinds = KINDS.map((k, t) => (t >= 6 ? T : k))
    const kept = run(DEFAULTS, kinds)
    const snap = snapKVPolicy({ budgetTokens: 6, observationWindow: 2, kernelSize: 3 })
    const expected = snap.update(memory(kinds), step())
    expect(kept.layers[0].positions).toEqual(expected.layers[0].positions)
  })

  it('keeps pinned rows, counting them toward the budget', () => {
    // row 1 pinned (its score was zeroed in head 0): it takes a slot, and each head's 4th-best row
    // goes (head 0: r4; head 1: r6)
    const kinds = KINDS.map((k, t) => (t === 1 ? k | PINNED : k))
    const kept = run(DEFAULTS, kinds)
    expect(keptRows(kept, 0, 0)).toEqual([1, 6, 7, 8, 10, 11])
    expect(keptRows(kept, 0, 1)).toEqual([1, 3, 7, 8, 10, 11])
  })

  it('has the documented defaults, needs its ports and refuses bad parameters', () => {
    const policy = guiKVPolicy()
    expect(policy.params).toEqual({
      budgetTokens: 256,
      observationWindow: 8,
      kernelSize: 5,
      alpha: 2,
      temperature: 3.5,
      subspaceRank: 32,
      queryGroupSize: 1,
    })
    expect(policy.observationWindow).toBe(8)
    expect(policy.requires).toEqual(['attnWindow', 'hiddenNorm'])
    const small = guiKVPolicy({ budgetTokens: 6, observationWindow: 2 })
    const { hiddenNorm: _, ...noNorms } = step()
    expect(() => small.update(memory(), noNorms)).toThrow(ModelMismatchError)
    for (const params of [
      { kernelSize: 2 },
      { temperature: 0 },
      { alpha: -1 },
      { budgetTokens: 4, observationWindow: 8 },
      { window: 8 },
      { subspaceRank: 0 },
    ]) {
      expect(() => guiKVPolicy(params), JSON.stringify(params)).toThrow(PolicyConfigError)
    }
  })
})
