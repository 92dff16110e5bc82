import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import {
  f16BitsToF32,
  f32ToF16Bits,
  halfBitsDirected,
  halfBitsOf,
  halfValue,
  roundToHalfInPlace,
} from '../../memory/float16.ts'
import { referenceHalf, referenceHalfDirected } from './reference.ts'

// Hand-checked (sign · exponent−15 · 1.fraction):
//   1.0      = 2^0 · 1.0            → 0 01111 0000000000 = 0x3C00
//   65504    = 2^15 · (1 + 1023/1024) → 0 11110 1111111111 = 0x7BFF (largest finite)
//   1/3      ≈ 2^−2 · 1.0101010101… → fraction 0101010101 (next bit 0: round down) = 0x3555
//   −2       = −2^1 · 1.0           → 1 10000 0000000000 = 0xC000
//   6.1e−5   < 2^−14 (6.1035e−5): subnormal, 6.1e−5 / 2^−24 = 1023.41 → 1023 = 0x03FF
//   6.103515625e−5 = 2^−14          → 0 00001 0000000000 = 0x0400 (smallest normal)
//   2^−24                           → 0x0001 (smallest subnormal); 2^−25 is a tie → even → 0x0000
//   1 + 2^−11 is halfway 0x3C00/0x3C01 → even → 0x3C00; 1 + 3·2^−11 → 0x3C02
//   65520 is halfway 65504/65536 → even (65536) overflows → 0x7C00 (∞); −0 → 0x8000
//   0.1 → 0x2E66 (0.0999755859375)
const TABLE: [number, number][] = [
  [1, 0x3c00],
  [65504, 0x7bff],
  [1 / 3, 0x3555],
  [-2, 0xc000],
  [6.1e-5, 0x03ff],
  [6.103515625e-5, 0x0400],
  [2 ** -24, 0x0001],
  [2 ** -25, 0x0000],
  [1 + 2 ** -11, 0x3c00],
  [1 + 3 * 2 ** -11, 0x3c02],
  [65520, 0x7c00],
  [-0, 0x8000],
  [0.1, 0x2e66],
]

describe('float16', () => {
  it.each(TABLE)('%s → bits %i', (value, bits) => {
    expect(f32ToF16Bits(new Float32Array([value]))[0]).toBe(bits)
  })

  it('widens hand-checked bits exactly', () => {
    const wide = f16BitsToF32(
      new Uint16Array([0x3c00, 0x7bff, 0x3555, 0xc000, 0x03ff, 0x0001, 0x7c00, 0x8000]),
    )
    expect([...wide]).toEqual([1, 65504, 1365 / 4096, -2, 1023 * 2 ** -24, 2 ** -24, Infinity, -0])
    expect(Object.is(wide[7], -0)).toBe(true)
    expect(Number.isNaN(f16BitsToF32(new Uint16Array([0x7e00]))[0])).toBe(true)
  })

  it('keeps every non-NaN bit pattern through widen → narrow', () => {
    const all = new Uint16Array(65536).map((_, i) => i)
    const back = f32ToF16Bits(f16BitsToF32(all))
    for (let bits = 0; bits < 65536; bits++) {
      const isNaN = (bits & 0x7c00) === 0x7c00 && (bits & 0x03ff) !== 0
      if (!isNaN && back[bits] !== bits)
        expect.fail(`0x${bits.toString(16)} came back as 0x${back[bits].toString(16)}`)
    }
  })

  it('rounds like the reference over many magnitudes and exact ties', () => {
    const inputs: number[] = []
    let seed = 12345
    const random = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32
    for (let e = -27; e <= 16; e++) {
      for (let i = 0; i < 40; i++) inputs.push((random() < 0.5 ? -1 : 1) * (1 + random()) * 2 ** e)
      for (let k = 0; k < 8; k++) inputs.push((1 + (2 * k + 1) * 2 ** -11) * 2 ** e) // halfway points
    }
    const f32 = new Float32Array(inputs)
    const got = f16BitsToF32(f32ToF16Bits(f32))
    for (let i = 0; i < f32.length; i++) {
      if (!Object.is(got[i], referenceHalf(f32[i])))
        expect.fail(`${f32[i]}: got ${got[i]}, reference ${referenceHalf(f32[i])}`)
    }
  })
})

describe('scalar float16 rounding', () => {
  const float32 = fc.float({ noNaN: true, noDefaultInfinity: true })
  const nearHalfRange = fc
    .tuple(
      fc.integer({ min: -27, max: 16 }),
      fc.double({ min: 1, max: 2, noNaN: true }),
      fc.boolean(),
    )
    .map(([e, m, negative]) => Math.fround((negative ? -1 : 1) * m * 2 ** e))

  it('halfBitsOf rounds like f32ToF16Bits (nearest, ties to even), the table values included', () => {
    for (const [x, bits] of TABLE) expect(halfBitsOf(x)).toBe(bits)
    expect(halfBitsOf(NaN) & 0x7c00).toBe(0x7c00)
    expect(halfBitsOf(-Infinity)).toBe(0xfc00)
    fc.assert(
      fc.property(fc.oneof(float32, nearHalfRange), (x) => {
        expect(halfBitsOf(x)).toBe(f32ToF16Bits(Float32Array.of(x))[0])
        expect(Object.is(halfValue(halfBitsOf(x)), referenceHalf(x))).toBe(true)
      }),
      { numRuns: 20_000 },
    )
  })

  it('halfBitsDirected gives the largest float16 ≤ x and the smallest ≥ x, as the reference', () => {
    // 1 + 2^-12 lies between 1 and 1 + 2^-10; 65505 above 65504 (up: ∞); −0 comes back +0.
    expect(halfValue(halfBitsDirected(1 + 2 ** -12, true))).toBe(1)
    expect(halfValue(halfBitsDirected(1 + 2 ** -12, false))).toBe(1 + 2 ** -10)
    expect(halfValue(halfBitsDirected(65505, true))).toBe(65504)
    expect(halfValue(halfBitsDirected(65505, false))).toBe(Infinity)
    expect(halfValue(halfBitsDirected(-(2 ** -30), true))).toBe(-(2 ** -24))
    expect(Object.is(halfValue(halfBitsDirected(-0, true)), 0)).toBe(true)
    fc.assert(
      fc.property(fc.oneof(float32, nearHalfRange), fc.boolean(), (x, down) => {
        expect(
          Object.is(halfValue(halfBitsDirected(x, down)), referenceHalfDirected(x, down)),
        ).toBe(true)
      }),
      { numRuns: 20_000 },
    )
  })

  it('roundToHalfInPlace rounds to nearest when every value fits, else leaves the array alone', () => {
    const values = Float32Array.of(1 / 3, -2, 65519, 6.1e-5)
    expect(roundToHalfInPlace(values)).toBe(true)
    expect([...values]).toEqual(
      [1 / 3, -2, 65519, 6.1e-5].map((x) => referenceHalf(Math.fround(x))),
    )
    const over = Float32Array.of(1, 65520) // 65520 rounds to 2^16: overflow
    expect(roundToHalfInPlace(over)).toBe(false)
    expect([...over]).toEqual([1, 65520])
    expect(roundToHalfInPlace(Float32Array.of(0, NaN))).toBe(false)
    expect(roundToHalfInPlace(new Float32Array(0))).toBe(true)
  })
})
