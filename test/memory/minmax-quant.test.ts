import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { getCode, packedBytes, paddingIsZero, putCode } from '../../memory/bitpack.ts'
import {
  canonicalStats,
  fillLevels,
  levelOf,
  levelScale,
  nearestCode,
  nearestLevel,
} from '../../memory/minmax-quant.ts'

/** Quantize one group as kivi.ts does: canonical stats, levels, codes; and the dequantized values. */
function quantize(values: Float32Array, bits: number) {
  const levels = (1 << bits) - 1
  let [lo, hi] = [values[0], values[0]]
  for (const x of values) [lo, hi] = [x < lo ? x : lo, x > hi ? x : hi]
  const stats = canonicalStats(lo, hi)
  const table = new Float32Array(levels + 1)
  const scale = fillLevels(stats.min, stats.max, levels, table)
  const codes = Array.from(values, (x) => nearestLevel(x, table, levels, scale))
  return { stats, scale, codes, table, dequantized: Float32Array.from(codes, (q) => table[q]) }
}

describe('min–max group quantizer', () => {
  it('rounds ties to the upper level and gives equal levels their lowest code', () => {
    const { codes, table } = quantize(Float32Array.of(0, 1.5, 0.5, 3), 2) // levels 0 1 2 3
    expect([...table]).toEqual([0, 1, 2, 3])
    expect(codes).toEqual([0, 2, 1, 3])
    // 1 + 2^-23 is one float32 step above 1; at 4 bits the step is 2^-23 / 15 → levels 1, 1, …
    const tiny = Float32Array.of(1, 1 + 2 ** -23)
    const group = quantize(tiny, 4)
    expect(group.scale).toBeGreaterThan(0)
    expect(new Set(group.table).size).toBe(2) // levels collide in float32
    expect(group.codes).toEqual([0, group.table.indexOf(1 + 2 ** -23)])
    expect([...group.dequantized]).toEqual([...tiny])
  })

  it('stores −0 as +0 and a constant group with scale 0, all codes 0', () => {
    expect(canonicalStats(-0, -0)).toEqual({ min: 0, max: 0 })
    expect(Object.is(canonicalStats(-0, 1).min, 0)).toBe(true)
    expect(levelScale(5, 5, 15)).toBe(0)
    expect(quantize(Float32Array.of(5, 5, 5), 2).codes).toEqual([0, 0, 0])
  })

  it('rounds the scale up, so a range of a few subnormals keeps half-unit error', () => {
    const unit = 2 ** -149
    expect(levelScale(0, 22 * unit, 15)).toBe(2 * unit) // 22/15 units → 2 units, not 1
    const { dequantized } = quantize(Float32Array.of(0, 18 * unit, 22 * unit), 4)
    expect([...dequantized]).toEqual([0, 18 * unit, 22 * unit])
  })

  it('property: re-quantizing dequantized values gives the same statistics and codes', () => {
    const clustered = fc
      .tuple(
        fc.float({ noNaN: true, noDefaultInfinity: true }),
        fc.array(fc.integer({ min: -4, max: 4 }), { minLength: 1, maxLength: 12 }),
      )
      .map(([base, steps]) => {
        const bits = new Uint32Array(Float32Array.of(base).buffer)[0]
        return new Float32Array(Uint32Array.from(steps, (s) => bits + s).buffer)
      })
      .filter((a) => a.every(Number.isFinite))
    const anyValues = fc
      .float32Array({ minLength: 1, maxLength: 12, noNaN: true })
      .filter((a) => a.every(Number.isFinite))
    fc.assert(
      fc.property(fc.oneof(clustered, anyValues), fc.constantFrom(2, 4), (values, bits) => {
        const first = quantize(values, bits)
        const second = quantize(first.dequantized, bits)
        expect(second.stats).toEqual(first.stats)
        expect(second.codes).toEqual(first.codes)
        expect(new Uint32Array(second.dequantized.buffer)).toEqual(
          new Uint32Array(first.dequantized.buffer),
        )
      }),
      { numRuns: 2000 },
    )
  })
})

describe('bit packing', () => {
  it('packs little-endian within bytes, by hand', () => {
    const two = new Uint8Array(packedBytes(5, 2))
    ;[1, 2, 3, 0, 3].forEach((code, i) => putCode(two, i, code, 2))
    expect([...two]).toEqual([0b00_11_10_01, 0b11]) // c0 in the low bits
    const four = new Uint8Array(packedBytes(3, 4))
    ;[0xa, 0x5, 0xf].forEach((code, i) => putCode(four, i, code, 4))
    expect([...four]).toEqual([0x5a, 0x0f])
    expect([0, 1, 2].map((i) => getCode(four, i, 4))).toEqual([0xa, 0x5, 0xf])
    expect(paddingIsZero(four, 3, 4)).toBe(true)
    four[1] |= 0x10
    expect(paddingIsZero(four, 3, 4)).toBe(false)
    expect(paddingIsZero(two, 5, 2)).toBe(true)
    expect(packedBytes(0, 2)).toBe(0)
  })
})

describe('table-free levels and codes', () => {
  // Groups: a realistic range, a range of a few float32 steps (levels collide), subnormals, and
  // a huge range; values drawn inside the group.
  const group = fc.oneof(
    fc.tuple(
      fc.float({ min: -8, max: 8, noNaN: true }),
      fc.float({ min: 0, max: 16, noNaN: true }),
    ),
    fc
      .tuple(
        fc.float({ min: Math.fround(-1e30), max: Math.fround(1e30), noNaN: true }),
        fc.integer({ min: 0, max: 40 }),
      )
      .map(([lo, steps]) => {
        const bits = new Uint32Array(Float32Array.of(lo).buffer)
        const hi = new Float32Array(Uint32Array.of(bits[0] + (lo < 0 ? -steps : steps)).buffer)[0]
        return [lo, hi - lo] as [number, number]
      }),
    fc
      .tuple(fc.integer({ min: -300, max: 300 }), fc.integer({ min: 0, max: 300 }))
      .map(([a, b]) => [a * 2 ** -149, b * 2 ** -149] as [number, number]),
    fc.constant([-3.4e38, 6.8e38] as [number, number]),
  )
  const cases = fc.tuple(
    group,
    fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 1, maxLength: 20 }),
    fc.constantFrom(2, 4),
  )

  it('property: levelOf = the fillLevels table, nearestCode = nearestLevel', () => {
    fc.assert(
      fc.property(cases, ([[base, width], fractions, bits]) => {
        const min = Math.fround(base)
        const max = Math.fround(Math.min(3.4e38, base + width))
        if (!(min <= max) || !Number.isFinite(max)) return
        const levels = (1 << bits) - 1
        const table = new Float32Array(levels + 1)
        const scale = fillLevels(min, max, levels, table)
        for (let q = 0; q <= levels; q++)
          expect(Object.is(levelOf(min, max, scale, q, levels), table[q])).toBe(true)
        for (const f of [0, 1, ...fractions]) {
          const x = Math.min(max, Math.max(min, Math.fround(min + f * (max - min))))
          expect(nearestCode(x, min, max, scale, levels)).toBe(
            nearestLevel(x, table, levels, scale),
          )
        }
        for (let q = 0; q <= levels; q++)
          expect(nearestCode(table[q], min, max, scale, levels)).toBe(
            nearestLevel(table[q], table, levels, scale),
          )
      }),
      { numRuns: 5000 },
    )
  })
})
