/**
 * @module Asymmetric min–max integer quantization of one group of float32 values (the quantizer
 * under KIVI), designed so quantize → dequantize is a fixed point bit for bit.
 *
 * A group with `levels` = 2^bits − 1 is stored as its float32 minimum and maximum plus one code
 * per value (all codes 0 when max = min). Dequantization is a table of `levels + 1` float32
 * values: `level[0] = min`, `level[levels] = max`, `level[q] = min(fround(min + q · scale), max)`
 * in between, with `scale` = `(max − min) / levels` rounded up to float32 (`levelScale`; computed
 * the same way on both sides, so the step itself need not be stored). Because min and
 * max are stored exactly and are themselves levels, statistics re-derived from dequantized data
 * are the stored ones, and because a code is the *lowest* code of the level nearest the value,
 * re-quantizing a level returns its code: encode(decode(encode(x))) = encode(x).
 * @see KIVI, Liu et al., arXiv:2402.02750 (asymmetric quantization, `q = round((x − min)/scale)`)
 */

const scratch = new Float32Array(1)
const scratchBits = new Uint32Array(scratch.buffer)

/** The smallest float32 ≥ `x` (x ≥ 0 and below the float32 maximum). */
function roundUpFloat32(x: number): number {
  scratch[0] = x
  if (scratch[0] < x) scratchBits[0]++ // a positive float32's successor is its bits + 1
  return scratch[0]
}

/** Statistics of a group, as stored: its float32 minimum and maximum. */
export interface GroupStats {
  min: number
  max: number
}

/**
 * Canonical statistics from a group's float32 extremes: −0 becomes +0 (so equal values have one
 * encoding).
 * @param min, max the group's smallest and largest value (finite float32, min ≤ max)
 */
export function canonicalStats(min: number, max: number): GroupStats {
  return { min: min + 0, max: max + 0 } // −0 + 0 = +0
}

/**
 * The step between levels: the smallest float32 ≥ `(max − min) / levels` (rounded up, so the
 * levels reach max and no gap exceeds one step, even where float32 spacing is coarse, e.g. for a
 * range of a few subnormals); 0 when max = min.
 * @param levels 2^bits − 1
 */
export function levelScale(min: number, max: number, levels: number): number {
  return max > min ? roundUpFloat32((max - min) / levels) : 0
}

/**
 * Fill `table[0 … levels]` with the dequantized value of each code: `min`, then
 * `min(fround(min + q · scale), max)`, then `max`. Nondecreasing, within [min, max]; neighbours are
 * equal where float32 is coarser than the scale. Encoder and decoder both build it here.
 * @param table Float32Array of ≥ levels + 1 entries, overwritten
 * @returns the scale, `levelScale(min, max, levels)`
 */
export function fillLevels(min: number, max: number, levels: number, table: Float32Array): number {
  const scale = levelScale(min, max, levels)
  table[0] = min
  for (let q = 1; q < levels; q++) table[q] = Math.min(min + q * scale, max) // store = fround
  table[levels] = max
  return scale
}

/**
 * The code of `x`: the level nearest `x` (ties go to the upper level, as `Math.round`), and among
 * equal levels the lowest code. Re-quantizing `table[q]` of an encoder-chosen `q` returns `q`.
 * @param x a value within `[table[0], table[levels]]`
 * @param table levels from `fillLevels`
 * @param scale its scale (only used for the first guess)
 * @returns an integer code in `[0, levels]`
 */
export function nearestLevel(
  x: number,
  table: Float32Array,
  levels: number,
  scale: number,
): number {
  const guess = scale > 0 ? Math.round((x - table[0]) / scale) : 0
  let upper = guess < 0 ? 0 : guess > levels ? levels : guess
  // Move to the first level ≥ x (the table is nondecreasing and table[levels] ≥ x).
  while (upper > 0 && table[upper - 1] >= x) upper--
  while (upper < levels && table[upper] < x) upper++
  if (upper === 0) return 0
  let lower = upper - 1 // table[lower] < x ≤ table[upper]
  if (x - table[lower] >= table[upper] - x) return upper // upper is the first of its value
  while (lower > 0 && table[lower - 1] === table[lower]) lower--
  return lower
}
