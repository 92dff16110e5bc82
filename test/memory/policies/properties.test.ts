/**
 * Properties of every selecting policy (window, snapkv, h2o, guikv) on random grown memories and
 * step infos (fast-check): the budget holds (except pins-only overflow), the window, sinks and
 * pins are kept, positions are never renumbered (kept ⊂ old per head, order kept) and rows travel
 * whole, the result is deterministic, the input is not mutated, nextPosition/seq are unchanged.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { createPolicy } from '../../../memory/policies/index.ts'
import { isPinned, keptTokens } from '../../../memory/policies/pins.ts'
import { windowRows } from '../../../memory/policies/window.ts'
import { PINNED, type SessionMemory, type StepInfo } from '../../../memory/types.ts'

interface Shape {
  layers: number
  kvHeads: number
  headDim: number
  carried: number
  prefix: number
  pinRate: number
  withScores: boolean
  seed: number
}

/** mulberry32: a small seeded PRNG, so one integer draws a whole memory. */
function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** A grown memory (P carried rows per head at random distinct positions < 60, S new rows at
 * 60…), with coarse values so ties and dependent keys are common, and its step info. */
function build(s: Shape): { mem: SessionMemory; step: StepInfo } {
  const rand = prng(s.seed)
  const pick = (n: number) => Math.floor(rand() * n)
  const { kvHeads, headDim, carried: P, prefix: S } = s
  const T = P + S
  const newKinds = Uint8Array.from({ length: S }, () => pick(3) | (rand() < s.pinRate ? PINNED : 0))
  const layers = Array.from({ length: s.layers }, () => {
    const positions = new Int32Array(kvHeads * T)
    const frames = new Int32Array(kvHeads * T)
    const kinds = new Uint8Array(kvHeads * T)
    for (let h = 0; h < kvHeads; h++) {
      const pool = Array.from({ length: 60 }, (_, i) => i)
      for (let i = 59; i > 0; i--) {
        const j = pick(i + 1)
        ;[pool[i], pool[j]] = [pool[j], pool[i]]
      }
      const old = pool.slice(0, P).sort((a, b) => a - b)
      for (let t = 0; t < T; t++) {
        const row = h * T + t
        positions[row] = t < P ? old[t] : 60 + t - P
        frames[row] = t < P ? 1 + Math.floor(positions[row] / 20) : 4
        kinds[row] = t < P ? pick(3) | (rand() < s.pinRate ? PINNED : 0) : newKinds[t - P]
      }
    }
    const keys = Float32Array.from({ length: kvHeads * T * headDim }, () => pick(5) / 2 - 1)
    const values = Float32Array.from(keys, (x, i) => x + i)
    const scores = s.withScores ? Float32Array.from(positions, () => pick(8) / 4) : undefined
    return { keys, values, positions, frames, kinds, ...(scores && { scores }) }
  })
  const port = () => Float32Array.from({ length: kvHeads * T }, () => pick(8) / 8)
  const mem: SessionMemory = {
    model: { id: 'prop', sha256: 'b'.repeat(64) },
    layers,
    kvHeads,
    headDim,
    tokens: T,
    nextPosition: 60 + S,
    seq: 4,
  }
  const step: StepInfo = {
    seq: 4,
    prefixTokens: S,
    kinds: newKinds,
    attnWindow: layers.map(port),
    attnTotal: layers.map(port),
    hiddenNorm: layers.map(() => Float32Array.from({ length: S }, () => 0.5 + pick(6) / 2)),
  }
  return { mem, step }
}

/** A policy with its budget and the rows it promises to protect (per head, given T and S). */
interface Case {
  name: string
  params: Record<string, number>
  budget: number
  protect: (T: number, S: number) => number[]
}
const range = (from: number, to: number) =>
  Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i)

const policyArb: fc.Arbitrary<Case> = fc.oneof(
  fc
    .record({ sinks: fc.nat(4), recent: fc.integer({ min: 1, max: 12 }) })
    .map(({ sinks, recent }) => ({
      name: 'window',
      params: { sinkTokens: sinks, recentTokens: recent },
      budget: sinks + recent,
      protect: (T: number) => range(0, Math.min(sinks, T)), // recent rows: checked apart
    })),
  fc
    .record({
      w: fc.integer({ min: 1, max: 6 }),
      sinks: fc.nat(3),
      extra: fc.nat(12),
      k: fc.integer({ min: 0, max: 3 }),
    })
    .map(({ w, sinks, extra, k }) => ({
      name: 'snapkv',
      params: {
        budgetTokens: w + sinks + extra,
        observationWindow: w,
        kernelSize: 2 * k + 1,
        sinkTokens: sinks,
      },
      budget: w + sinks + extra,
      protect: (T: number, S: number) => [
        ...range(0, Math.min(sinks, T)),
        ...range(T - Math.min(w, S), T),
      ],
    })),
  fc
    .record({
      budget: fc.integer({ min: 1, max: 20 }),
      recent: fc.double({ min: 0, max: 1, noNaN: true }),
      f: fc.double({ min: 0, max: 1, noNaN: true }),
    })
    .map(({ budget, recent, f }) => {
      const recentTokens = Math.floor(recent * budget)
      return {
        name: 'h2o',
        params: { budgetTokens: budget, recentTokens, forgetting: f },
        budget,
        protect: (T: number) => range(T - Math.min(recentTokens, T), T),
      }
    }),
  fc
    .record({
      w: fc.integer({ min: 1, max: 6 }),
      extra: fc.nat(14),
      k: fc.integer({ min: 0, max: 3 }),
      alpha: fc.double({ min: 0, max: 4, noNaN: true }),
      temperature: fc.double({ min: 0.25, max: 5, noNaN: true }),
      rank: fc.integer({ min: 1, max: 4 }),
      group: fc.integer({ min: 1, max: 3 }),
    })
    .map(({ w, extra, k, alpha, temperature, rank, group }) => ({
      name: 'guikv',
      params: {
        budgetTokens: w + extra,
        observationWindow: w,
        kernelSize: 2 * k + 1,
        alpha,
        temperature,
        subspaceRank: rank,
        queryGroupSize: group,
      },
      budget: w + extra,
      protect: (T: number, S: number) => range(T - Math.min(w, S), T),
    })),
)

const shapeArb: fc.Arbitrary<Shape> = fc.record({
  layers: fc.integer({ min: 1, max: 2 }),
  kvHeads: fc.integer({ min: 1, max: 3 }),
  headDim: fc.integer({ min: 1, max: 4 }),
  carried: fc.nat(16),
  prefix: fc.nat(10),
  pinRate: fc.constantFrom(0, 0.1, 0.5),
  withScores: fc.boolean(),
  seed: fc.integer(),
})

const copyOf = (mem: SessionMemory) =>
  mem.layers.map((l) =>
    [l.keys, l.values, l.positions, l.frames, l.kinds, l.scores].map((a) => a?.slice()),
  )

function check(c: Case, shape: Shape): void {
  const { mem, step } = build(shape)
  const before = copyOf(mem)
  const out = createPolicy(c.name, c.params).update(mem, step)
  const T = mem.tokens
  const S = step.prefixTokens
  // never over the budget, except when one head's pins alone exceed it (then all pins are kept)
  let pinsMax = 0
  for (const { kinds } of mem.layers) {
    for (let h = 0; h < mem.kvHeads; h++) {
      pinsMax = Math.max(pinsMax, range(0, T).filter((t) => isPinned(kinds[h * T + t])).length)
    }
  }
  expect(out.tokens).toBe(Math.min(T, Math.max(c.budget, pinsMax)))
  expect(out.tokens).toBe(keptTokens(mem, c.budget))
  expect([out.nextPosition, out.seq, out.kvHeads, out.headDim]).toEqual([
    mem.nextPosition,
    mem.seq,
    mem.kvHeads,
    mem.headDim,
  ])
  expect(out.model).toEqual(mem.model)
  expect(out.layers.length).toBe(mem.layers.length)
  const { headDim } = mem
  mem.layers.forEach((layer, l) => {
    const kept = out.layers[l]
    if (c.name === 'h2o') expect(kept.scores?.length).toBe(mem.kvHeads * out.tokens)
    for (let h = 0; h < mem.kvHeads; h++) {
      const rowOf = new Map<number, number>()
      for (let t = 0; t < T; t++) rowOf.set(layer.positions[h * T + t], t)
      const rows: number[] = []
      for (let j = 0; j < out.tokens; j++) {
        const o = h * out.tokens + j
        const t = rowOf.get(kept.positions[o])
        expect(t, 'kept position must be an old position').toBeDefined()
        if (j > 0) expect(t!).toBeGreaterThan(rows[j - 1]) // order preserved, no duplicates
        rows.push(t!)
        const i = h * T + t!
        expect([kept.frames[o], kept.kinds[o]]).toEqual([layer.frames[i], layer.kinds[i]])
        expect(kept.keys.subarray(o * headDim, (o + 1) * headDim)).toEqual(
          layer.keys.subarray(i * headDim, (i + 1) * headDim),
        )
        expect(kept.values.subarray(o * headDim, (o + 1) * headDim)).toEqual(
          layer.values.subarray(i * headDim, (i + 1) * headDim),
        )
      }
      const keptSet = new Set(rows)
      const pins = range(0, T).filter((t) => isPinned(layer.kinds[h * T + t]))
      for (const t of pins) expect(keptSet.has(t), `pinned row ${t}`).toBe(true)
      const guarded = new Set([...pins, ...c.protect(T, S)])
      if (guarded.size <= c.budget) {
        for (const t of c.protect(T, S)) expect(keptSet.has(t), `protected row ${t}`).toBe(true)
      }
      if (c.name === 'window' && guarded.size <= c.budget) {
        // the rest is the newest rows: nothing evicted is newer than a kept non-pin, non-sink row
        const rest = rows.filter((t) => !guarded.has(t))
        const evicted = range(0, T).filter((t) => !keptSet.has(t))
        if (rest.length > 0) for (const t of evicted) expect(t).toBeLessThan(rest[0])
        if (pinsMax === 0 && T > c.budget) {
          expect(rows).toEqual([...windowRows(T, c.params.sinkTokens, c.params.recentTokens)])
        }
      }
    }
  })
  expect(copyOf(mem)).toEqual(before) // input not mutated
  const again = createPolicy(c.name, c.params).update(build(shape).mem, build(shape).step)
  expect(again).toEqual(out) // deterministic
}

describe('selecting policies: properties', () => {
  it('budget, window, sinks and pins, positions, determinism', () => {
    fc.assert(
      fc.property(policyArb, shapeArb, (c, shape) => check(c, shape)),
      { numRuns: 1500 },
    )
  })

  it.each(['window', 'snapkv', 'h2o', 'guikv'])('%s: runs on larger memories too', (name) => {
    const c = fc.sample(
      policyArb.filter((p) => p.name === name),
      { numRuns: 1, seed: 7 },
    )[0]
    for (let seed = 0; seed < 20; seed++) {
      check(c, {
        layers: 2,
        kvHeads: 2,
        headDim: 4,
        carried: 16,
        prefix: 10,
        pinRate: 0.1,
        withScores: true,
        seed,
      })
    }
  })
})
