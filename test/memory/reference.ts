/**
 * @module Independent reference computations for the memory tests, written from the definitions
 * (slow and plain on purpose): CRC-32 bit by bit, float16 rounding by arithmetic.
 */

/** Bitwise CRC-32 (reflected, polynomial 0xEDB88320), written from the definition: the reference. */
export function referenceCrc32(bytes: Uint8Array): number {
  let crc = 0xffffffff
  for (const byte of bytes) {
    crc ^= byte
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1
  }
  return (crc ^ 0xffffffff) >>> 0
}

/**
 * Reference float32 → float16 value, from the definition: binary16 has 10 fraction bits and
 * exponents −14 … 15, so the spacing near |x| is 2^(max(e, −14) − 10); round |x| / spacing to the
 * nearest integer, ties to even; |x| ≥ 65520 (halfway to 2^16) overflows to ∞.
 */
export function referenceHalf(x: number): number {
  if (!Number.isFinite(x) || x === 0) return x
  const a = Math.abs(x)
  if (a >= 65520) return Math.sign(x) * Infinity
  let e = Math.floor(Math.log2(a))
  if (2 ** e > a) e-- // guard log2 rounding
  if (2 ** (e + 1) <= a) e++
  const spacing = 2 ** (Math.max(e, -14) - 10)
  const q = a / spacing // exact: a is float32, spacing a power of two
  const floor = Math.floor(q)
  const rest = q - floor
  const n = rest > 0.5 || (rest === 0.5 && floor % 2 === 1) ? floor + 1 : floor
  return Math.sign(x) * n * spacing
}

/** Spacing of float16 values in the binade of |a| (a ≥ 0): 2^(max(e, −14) − 10). */
function halfSpacing(a: number): number {
  if (a < 2 ** -14) return 2 ** -24
  let e = Math.floor(Math.log2(a))
  if (2 ** e > a) e--
  if (2 ** (e + 1) <= a) e++
  return 2 ** (e - 10)
}

/** The float16 value next to the float16 value `v`, towards +∞ (`up`) or −∞; ±∞ past ±65504. */
function halfNeighbour(v: number, up: boolean): number {
  if (v === 0) return up ? 2 ** -24 : -(2 ** -24)
  if (!Number.isFinite(v)) return Math.sign(v) * 65504 // from ±∞ back towards zero
  const a = Math.abs(v)
  const away = up === v > 0 // moving away from zero
  if (away) return a === 65504 ? Math.sign(v) * Infinity : Math.sign(v) * (a + halfSpacing(a))
  // towards zero: below a power of two the spacing halves (in the normal range)
  const below = a > 2 ** -14 && Number.isInteger(Math.log2(a)) ? halfSpacing(a) / 2 : halfSpacing(a)
  return Math.sign(v) * (a - below)
}

/**
 * Reference float16 rounding of a finite float32 value towards −∞ (`down`) or +∞: the largest
 * float16 value ≤ x, or the smallest ≥ x (from `referenceHalf` and one step along the float16
 * grid); −0 becomes +0.
 */
export function referenceHalfDirected(x: number, down: boolean): number {
  let v = referenceHalf(x)
  if (down ? v > x : v < x) v = halfNeighbour(v, !down)
  return v + 0
}
