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
 * Where the search for `x`'s level starts: ⌊(x − min)/scale + ½⌋ clamped to `[0, levels]`, an
 * integer (never −0, which would make V8 box it). Only a start: the search moves from it to the
 * first level ≥ x, so the result does not depend on it.
 */
function firstGuess(x: number, min: number, scale: number, levels: number): number {
  if (!(scale > 0)) return 0
  const guess = (x - min) / scale + 0.5
  return guess <= 0 ? 0 : guess >= levels ? levels : guess | 0
}

/**
 * The code of `x`: the level nearest `x` (ties go to the upper level, as `Math.round`), and among
 * equal levels the lowest code. Re-quantizing `table[q]` of an encoder-chosen `q` returns `q`.
 * @param x a value within `[table[0], table[levels]]`, or beyond them in a constant group (its
 *   float16 statistic rounds to nearest): the nearer end's lowest code
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
  // At or above the top level (above it only in a constant group whose float16 statistic is x
  // rounded down): the lowest code of the top level — for a constant group 0, which is also what
  // re-encoding its dequantized value gives, so the blob stays the same.
  if (x >= table[levels]) {
    let q = levels
    while (q > 0 && table[q - 1] === table[levels]) q--
    return q
  }
  let upper = firstGuess(x, table[0], scale, levels)
  // Move to the first level ≥ x (the table is nondecreasing and table[levels] > x).
  while (upper > 0 && table[upper - 1] >= x) upper--
  while (upper < levels && table[upper] < x) upper++
  if (upper === 0) return 0
  let lower = upper - 1 // table[lower] < x ≤ table[upper]
  if (x - table[lower] >= table[upper] - x) return upper // upper is the first of its value
  while (lower > 0 && table[lower - 1] === table[lower]) lower--
  return lower
}

/**
 * Level `q` of a group without a table: the value `fillLevels` writes at `table[q]`
 * (`min` for 0, `max` for `levels`, else `min(fround(min + q · scale), max)`).
 * @param scale `levelScale(min, max, levels)`
 */
export function levelOf(
  min: number,
  max: number,
  scale: number,
  q: number,
  levels: number,
): number {
  if (q === 0) return min
  if (q === levels) return max
  const level = Math.fround(min + q * scale)
  return level < max ? level : max
}

/**
 * `nearestLevel` without a table (the same code for every x): the level nearest `x`, ties to the
 * upper level, lowest code among equal levels. Usually settles with two or three levels computed
 * around ⌊(x − min)/scale + ½⌋; where float32 rounding makes levels collide or stray it walks like
 * `nearestLevel`. For small groups (a key block of a few rows) this saves building a table per
 * group.
 * @param x a value within `[min, max]`
 * @param scale `levelScale(min, max, levels)`
 * @returns an integer code in `[0, levels]`
 */
export function nearestCode(
  x: number,
  min: number,
  max: number,
  scale: number,
  levels: number,
): number {
  if (x >= max) return lowestEqual(max, levels, min, max, scale, levels) // see nearestLevel
  const guess = firstGuess(x, min, scale, levels)
  const at = levelOf(min, max, scale, guess, levels)
  if (at >= x) {
    if (guess === 0) return 0
    const below = levelOf(min, max, scale, guess - 1, levels)
    // The first level ≥ x is `guess`: nearest of (guess − 1, guess), ties up.
    if (below < x)
      return x - below >= at - x ? guess : lowestEqual(below, guess - 1, min, max, scale, levels)
  } else if (guess < levels) {
    const above = levelOf(min, max, scale, guess + 1, levels)
    // The first level ≥ x is `guess + 1`.
    if (above >= x)
      return x - at >= above - x ? guess + 1 : lowestEqual(at, guess, min, max, scale, levels)
  }
  return nearestCodeWalk(x, min, max, scale, levels, guess)
}

/** The lowest code whose level equals `level`, the level of code `code` (levels nondecreasing). */
function lowestEqual(
  level: number,
  code: number,
  min: number,
  max: number,
  scale: number,
  levels: number,
): number {
  while (code > 0 && levelOf(min, max, scale, code - 1, levels) === level) code--
  return code
}

/** `nearestLevel`'s search from `start`, levels computed as needed. */
function nearestCodeWalk(
  x: number,
  min: number,
  max: number,
  scale: number,
  levels: number,
  start: number,
): number {
  let upper = start
  while (upper > 0 && levelOf(min, max, scale, upper - 1, levels) >= x) upper--
  while (upper < levels && levelOf(min, max, scale, upper, levels) < x) upper++
  if (upper === 0) return 0
  const below = levelOf(min, max, scale, upper - 1, levels)
  if (x - below >= levelOf(min, max, scale, upper, levels) - x) return upper
  return lowestEqual(below, upper - 1, min, max, scale, levels)
}
