import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { decodeMemory, encodeMemory } from '../../memory/codec.ts'
import { gatherTokens } from '../../memory/gather.ts'
import { roundTrip, type StorageOptions } from '../../memory/storage.ts'
import type { SessionMemory } from '../../memory/types.ts'
import { keepArb, kiviArb, memoryArb } from './arbitrary-memory.ts'
import { bitsOf, makeMemory } from './fixtures.ts'
import { halfStepBound, referenceLayout } from './kivi-reference.ts'

const POLICY = { name: 'full', params: {} }

/** Bit-exact equality of two memories (K/V, scores by bits; metadata and scalars by value). */
function sameBits(actual: SessionMemory, expected: SessionMemory): boolean {
  const { layers: a, ...restA } = actual
  const { layers: b, ...restB } = expected
  if (JSON.stringify(restA) !== JSON.stringify(restB) || a.length !== b.length) return false
  const same = (x?: ArrayLike<number>, y?: ArrayLike<number>): boolean =>
    x === undefined || y === undefined
      ? x === y
      : x.length === y.length && Array.from(x).every((v, i) => Object.is(v, y[i]))
  return a.every(
    (layer, l) =>
      bitsOf(layer.keys).every((v, i) => v === bitsOf(b[l].keys)[i]) &&
      bitsOf(layer.values).every((v, i) => v === bitsOf(b[l].values)[i]) &&
      same(layer.positions, b[l].positions) &&
      same(layer.frames, b[l].frames) &&
      same(layer.kinds, b[l].kinds) &&
      same(layer.scores, b[l].scores),
  )
}

const reload = (mem: SessionMemory, storage: StorageOptions): SessionMemory =>
  decodeMemory(encodeMemory(mem, { policy: POLICY, ...storage })).memory

const STORAGES: [string, StorageOptions][] = [
  ['float32', { dtype: 'float32' }],
  ['float16', { dtype: 'float16' }],
  ['kivi 4-bit', { dtype: 'kivi', kivi: { groupSize: 2, residualTokens: 3 } }],
  ['kivi 2-bit', { dtype: 'kivi', kivi: { bits: 2, groupSize: 4, residualTokens: 0 } }],
]

describe('roundTrip', () => {
  it.each(STORAGES)('gives what a reload gives (%s), scores and layerIds included', (_, s) => {
    for (const mem of [
      makeMemory({ layers: 2, tokens: 9, scores: true }),
      makeMemory({ layerIds: [1, 3], tokens: 7, headDim: 5 }),
      makeMemory({ tokens: 0 }),
    ]) {
      const copy = structuredClone(mem)
      const direct = roundTrip(mem, s)
      expect(sameBits(direct, reload(mem, s))).toBe(true)
      expect(sameBits(mem, copy)).toBe(true) // the input is untouched
      expect(direct.layerIds).toEqual(mem.layerIds)
    }
  })

  it('property: a fixed point, bit for bit, and the same blob (every storage)', () => {
    const cases = memoryArb().chain((mem) =>
      fc.tuple(
        fc.constant(mem),
        fc.oneof(
          kiviArb(mem.layers.length).map((kivi): StorageOptions => ({ dtype: 'kivi', kivi })),
          fc.constant<StorageOptions>({ dtype: 'float32' }),
        ),
      ),
    )
    fc.assert(
      fc.property(cases, ([mem, storage]) => {
        const once = roundTrip(mem, storage)
        expect(sameBits(once, reload(mem, storage))).toBe(true)
        expect(sameBits(roundTrip(once, storage), once)).toBe(true)
        const blob = encodeMemory(mem, { policy: POLICY, ...storage })
        expect(encodeMemory(once, { policy: POLICY, ...storage })).toEqual(blob)
      }),
      { numRuns: 300 },
    )
  })

  it('property: every quantized value within half a step of its group; the rest exact', () => {
    const cases = memoryArb().chain((mem) => fc.tuple(fc.constant(mem), kiviArb(mem.layers.length)))
    fc.assert(
      fc.property(cases, ([mem, kivi]) => {
        const once = roundTrip(mem, { dtype: 'kivi', kivi })
        expectWithinGroups(mem, once, { ...kivi, bits: kivi.layerBits })
      }),
      { numRuns: 300 },
    )
  })

  it('property: evicting rows, then a round trip, keeps the other tokens within half a step of their block’s new statistics', () => {
    const cases = memoryArb().chain((mem) =>
      fc.tuple(fc.constant(mem), kiviArb(mem.layers.length), keepArb(mem)),
    )
    fc.assert(
      fc.property(cases, ([mem, kivi, keep]) => {
        const storage: StorageOptions = { dtype: 'kivi', kivi }
        const hot = roundTrip(mem, storage) // what the session runs on
        const evicted = gatherTokens(hot, keep) // a policy drops rows (positions unchanged)
        const next = roundTrip(evicted, storage)
        expectWithinGroups(evicted, next, { ...kivi, bits: kivi.layerBits })
        expect(sameBits(roundTrip(next, storage), next)).toBe(true)
      }),
      { numRuns: 300 },
    )
  })
})

/** Every group of the reference layout within its half-step bound; every other value exact. */
function expectWithinGroups(
  before: SessionMemory,
  after: SessionMemory,
  settings: { bits: readonly number[]; groupSize: number; residualTokens: number },
): void {
  const layout = referenceLayout(before, settings)
  const quantized = before.layers.map(() => ({
    keys: new Set<number>(),
    values: new Set<number>(),
  }))
  for (const { part, layer, elements } of layout.groups) {
    const original = elements.map((i) => before.layers[layer][part][i])
    const bound = halfStepBound(original, settings.bits[layer])
    for (const i of elements) {
      const error = Math.abs(before.layers[layer][part][i] - after.layers[layer][part][i])
      if (!(error <= bound)) expect.fail(`${part} ${layer}[${i}]: error ${error} > ${bound}`)
      quantized[layer][part].add(i)
    }
  }
  before.layers.forEach((layer, l) => {
    for (const part of ['keys', 'values'] as const) {
      layer[part].forEach((x, i) => {
        if (!quantized[l][part].has(i) && !Object.is(x, after.layers[l][part][i]))
          expect.fail(`residual ${part} ${l}[${i}] changed: ${x} → ${after.layers[l][part][i]}`)
      })
    }
  })
}
