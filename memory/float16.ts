/**
 * @module float16 (IEEE 754 binary16) conversion for stored K/V. Node 22 has no `Float16Array`,
 * so float16 tensors travel as raw bits in a `Uint16Array` (as ORT does); conversion goes through
 * `@petamoriken/float16` (round to nearest, ties to even).
 */
import { Float16Array } from '@petamoriken/float16'

/**
 * Round float32 values to the nearest float16 (ties to even) and return the raw bits.
 * Values beyond ±65504 (after rounding) become ±Infinity; NaN stays NaN.
 * @param values Float32Array, any shape (flat), `n` elements
 * @returns Uint16Array `[n]` of binary16 bit patterns (sign · 5-bit exponent · 10-bit mantissa)
 * @see IEEE 754-2008 binary16; table method from J. van der Zijp, "Fast Half Float Conversions" (2008)
 */
export function f32ToF16Bits(values: Float32Array): Uint16Array {
  const half = new Float16Array(values)
  return new Uint16Array(half.buffer, half.byteOffset, half.length)
}

let table: Float32Array | undefined

/** The float32 value of every one of the 65,536 float16 bit patterns (256 KiB, built once). */
function halfTable(): Float32Array {
  if (table) return table
  const allBits = new Uint16Array(65536)
  for (let bits = 0; bits < 65536; bits++) allBits[bits] = bits
  table = new Float32Array(new Float16Array(allBits.buffer))
  return table
}

/**
 * Widen raw float16 bits to float32 (exact: every float16 value is a float32 value).
 * Uses a 65,536-entry lookup table: the library's element-wise getter runs at ~5 M values/s,
 * the table at memory speed.
 * @param bits Uint16Array `[n]` of binary16 bit patterns
 * @returns Float32Array `[n]`
 */
export function f16BitsToF32(bits: Uint16Array): Float32Array {
  const lookup = halfTable()
  const out = new Float32Array(bits.length)
  for (let i = 0; i < bits.length; i++) out[i] = lookup[bits[i]]
  return out
}

/**
 * Index of the first ±Infinity or NaN bit pattern (exponent bits all ones), or −1.
 * @param bits Uint16Array `[n]` of binary16 bit patterns
 */
export function firstNonFiniteHalf(bits: Uint16Array): number {
  for (let i = 0; i < bits.length; i++) if ((bits[i] & 0x7c00) === 0x7c00) return i
  return -1
}

const scalar = new Float32Array(1)
const scalarBits = new Uint32Array(scalar.buffer)

/**
 * One float32 value to float16 bits, rounded to nearest, ties to even (the same rounding as
 * `f32ToF16Bits`, without building arrays). ±Infinity beyond ±65504 after rounding; NaN → 0x7e00.
 * @param x a float32 value (anything else is first rounded to float32)
 * @returns binary16 bits, 0 … 0xffff
 * @see IEEE 754-2008 binary16 (5-bit exponent, bias 15; subnormals below 2^−14)
 */
export function halfBitsOf(x: number): number {
  scalar[0] = x
  return halfBitsOfFloatBits(scalarBits[0])
}

/**
 * `halfBitsOf` from the float32's bit pattern (e.g. read through a Uint32Array view of a
 * Float32Array, which saves the conversion).
 * @param bits IEEE 754 binary32 bits, 0 … 2^32 − 1
 * @returns binary16 bits
 */
export function halfBitsOfFloatBits(bits: number): number {
  const sign = (bits >>> 16) & 0x8000
  const exponent = (bits >>> 23) & 0xff
  const fraction = bits & 0x7fffff
  if (exponent === 0xff) return sign | (fraction ? 0x7e00 : 0x7c00)
  const e = exponent - 112 // the float16 exponent field: (exponent − 127) + 15
  if (e >= 31) return sign | 0x7c00
  if (e >= 1) {
    const half = (e << 10) | (fraction >>> 13)
    const rest = fraction & 0x1fff
    // Ties to even; a carry out of the fraction moves the exponent (up to ∞), as it should.
    return sign | (rest > 0x1000 || (rest === 0x1000 && (half & 1) === 1) ? half + 1 : half)
  }
  // Subnormal float16: value / 2^−24 = significand · 2^(exponent − 126), significand 24 bits.
  const shift = 14 - e
  if (shift > 24) return sign // below 2^−25: rounds to ±0
  const significand = exponent === 0 ? fraction : fraction | 0x800000
  const half = significand >>> shift
  const rest = significand & ((1 << shift) - 1)
  const halfway = 1 << (shift - 1)
  return sign | (rest > halfway || (rest === halfway && (half & 1) === 1) ? half + 1 : half)
}

/** The float32 value of one float16 bit pattern (exact). */
export function halfValue(bits: number): number {
  return halfTable()[bits & 0xffff]
}

/** The next float16 bit pattern towards −∞ (from +0: −2^−24; from −65504: −∞). Finite input. */
function halfBelow(bits: number): number {
  if (bits & 0x8000) return bits + 1
  return bits === 0 ? 0x8001 : bits - 1
}

/** The next float16 bit pattern towards +∞ (from −0: +2^−24; from 65504: +∞). Finite input. */
function halfAbove(bits: number): number {
  if (bits & 0x8000) return bits === 0x8000 ? 0x0001 : bits - 1
  return bits + 1
}

/**
 * float16 rounding of a float32 value towards −∞ (`down`) or +∞: the largest float16 ≤ x, or the
 * smallest ≥ x; −0 results are returned as +0. Beyond the float16 range: ±Infinity.
 * @param x a finite float32 value
 * @returns binary16 bits
 */
export function halfBitsDirected(x: number, down: boolean): number {
  let bits = halfBitsOf(x)
  const value = halfTable()[bits]
  if (down ? value > x : value < x) bits = down ? halfBelow(bits) : halfAbove(bits)
  return bits === 0x8000 ? 0 : bits
}

/** |x| bits from which float32 values round to a non-finite float16: 65520 = 0x477ff000. */
const HALF_OVERFLOW_BITS = 0x477ff000

/**
 * Round every value to its nearest float16 (ties to even), in place, if all of them fit: none
 * non-finite or of magnitude ≥ 65520 (which rounds to ±∞). The values stay float32, each now
 * exactly a float16 value.
 * @param values Float32Array `[n]` (any shape, flat)
 * @returns true if rounded; false (and `values` untouched) if some value does not fit
 */
export function roundToHalfInPlace(values: Float32Array): boolean {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length)
  for (let i = 0; i < bits.length; i++)
    if ((bits[i] & 0x7fffffff) >= HALF_OVERFLOW_BITS) return false
  const lookup = halfTable()
  for (let i = 0; i < bits.length; i++) values[i] = lookup[halfBitsOfFloatBits(bits[i])]
  return true
}
