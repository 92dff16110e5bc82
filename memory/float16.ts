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
