/**
 * @module Quantizing and dequantizing one layer in the KIVI layout of `kivi.ts` (groups, parts and
 * the float16/float32 choice for statistics and residual are described there). Plain loops over
 * typed arrays: one pass for each group's extremes, one for the codes; a key block's levels are
 * built once for all its channels.
 * @see KIVI, Liu et al., arXiv:2402.02750
 */
import { halfBitsDirected, halfBitsOf, halfValue, roundToHalfInPlace } from './float16.ts'
import {
  kiviPartDims,
  KIVI_PARTS,
  type KiviLayerCounts,
  type KiviLayerParts,
  type KiviPart,
  type KiviPrecision,
  type LayerGeometry,
  type PackedKiviLayer,
} from './kivi.ts'
import { fillLevels, levelOf, levelScale, nearestCode } from './minmax-quant.ts'
import type { LayerMemory } from './types.ts'

/** Preferred precisions (`KiviSettings`); a layer falls back to float32 where its data needs it. */
export interface KiviPrecisions {
  statsDtype: KiviPrecision
  residualDtype: KiviPrecision
}

const FLOAT32: KiviPrecisions = { statsDtype: 'float32', residualDtype: 'float32' }

/** Groups of at least this many elements are dequantized through a table of their levels
 * (`fillLevels`), smaller ones level by level (`levelOf`, the same values). */
const TABLE_MIN_ELEMENTS = 6

function emptyParts(dims: Record<KiviPart, number[]>): KiviLayerParts {
  const parts = {} as Record<KiviPart, Uint8Array | Float32Array>
  for (const part of KIVI_PARTS) {
    const size = dims[part].reduce((a, b) => a * b, 1)
    parts[part] = part.endsWith('.codes') ? new Uint8Array(size) : new Float32Array(size)
  }
  return parts as KiviLayerParts
}

/**
 * Fill the statistics parts with each group's extremes: keys per (block, channel), values per
 * (quantized row, channel group), in the layout's order.
 * @param rows, blocks from `quantizedRows`
 */
function groupExtremes(
  layer: Pick<LayerMemory, 'keys' | 'values'>,
  headDim: number,
  width: number,
  rows: Int32Array,
  blocks: Int32Array,
  parts: KiviLayerParts,
  plan?: ReusePlan,
): void {
  const { keys, values } = layer
  const kMin = parts['keys.min']
  const kMax = parts['keys.max']
  const vMin = parts['values.min']
  const vMax = parts['values.max']
  const groups = Math.ceil(headDim / width)
  for (let q = 0; q < rows.length; q++) {
    const src = rows[q] * headDim
    const stat = blocks[q] * headDim
    if (plan && plan.keyFrom[blocks[q]] >= 0) {
      // a copied key block: its statistics come from the earlier quantization
    } else if (q === 0 || blocks[q] !== blocks[q - 1]) {
      for (let c = 0; c < headDim; c++) kMin[stat + c] = kMax[stat + c] = keys[src + c]
    } else {
      for (let c = 0; c < headDim; c++) {
        const x = keys[src + c]
        if (x < kMin[stat + c]) kMin[stat + c] = x
        if (x > kMax[stat + c]) kMax[stat + c] = x
      }
    }
    if (plan && plan.valueFrom[q] >= 0) continue
    for (let j = 0; j < groups; j++) {
      const end = src + Math.min(headDim, (j + 1) * width)
      let lo = values[src + j * width]
      let hi = lo
      for (let i = src + j * width + 1; i < end; i++) {
        const x = values[i]
        if (x < lo) lo = x
        if (x > hi) hi = x
      }
      vMin[q * groups + j] = lo
      vMax[q * groups + j] = hi
    }
  }
}

/**
 * float16 statistics of every group (`kivi.ts` module note), or false when some group does not
 * allow them. Writes them to `min`/`max` only when all do.
 * @param min, max Float32Array of the groups' extremes (finite)
 * @param copied with `stride`: statistic i belongs to group ⌊i / stride⌋, left as it is (already
 *   float16, copied from an earlier quantization) when `copied[⌊i / stride⌋] ≥ 0`
 */
function halfStatistics(
  min: Float32Array,
  max: Float32Array,
  levels: number,
  copied?: Int32Array,
  stride = 1,
): boolean {
  // copied statistics are float16 already (the earlier layer's were): kept as they are
  const lows = copied ? min.slice() : new Float32Array(min.length)
  const highs = copied ? max.slice() : new Float32Array(min.length)
  for (let group = 0, i = 0; i < min.length; group++) {
    const end = Math.min(min.length, i + stride)
    if (copied && copied[group] >= 0) {
      i = end
      continue
    }
    for (; i < end; i++) {
      const lo = min[i]
      const hi = max[i]
      if (lo === hi) {
        const bits = halfBitsOf(lo)
        if ((bits & 0x7c00) === 0x7c00) return false
        lows[i] = highs[i] = halfValue(bits === 0x8000 ? 0 : bits)
        continue
      }
      const low = halfValue(halfBitsDirected(lo, true))
      const high = halfValue(halfBitsDirected(hi, false))
      if (low - low !== 0 || high - high !== 0) return false // beyond ±65504
      const scale = levelScale(low, high, levels)
      // lo must take code 0 and hi code `levels` (the guess settles it unless near a midpoint).
      const margin = marginOf(low, high, scale)
      const fromLow = (lo - low) / scale + 0.5
      const fromHigh = (hi - low) / scale + 0.5
      if (!(fromLow < 1 - margin) && nearestCode(lo, low, high, scale, levels) !== 0) return false
      if (!(fromHigh > levels + margin) && nearestCode(hi, low, high, scale, levels) !== levels)
        return false
      lows[i] = low
      highs[i] = high
    }
  }
  min.set(lows)
  max.set(highs)
  return true
}

/** float32 statistics as stored: −0 becomes +0 (so equal values have one encoding). */
function canonicalize(stats: Float32Array): void {
  for (let i = 0; i < stats.length; i++) stats[i] += 0 // −0 + 0 = +0
}

/** The quantized rows of a layer, in stored order: each one's row in `[kvHeads, tokens]` and the
 * index of its key block (per head, runs of equal `⌊position / G⌋`, numbered across heads). */
function quantizedRows(
  positions: Int32Array,
  { kvHeads, tokens }: LayerGeometry,
  counts: KiviLayerCounts,
  groupSize: number,
): { rows: Int32Array; blocks: Int32Array } {
  const total = counts.quantizedTokens.reduce((a, b) => a + b, 0)
  const rows = new Int32Array(total)
  const blocks = new Int32Array(total)
  let at = 0
  let block = -1
  for (let h = 0; h < kvHeads; h++) {
    let current = NaN
    for (let r = 0; r < counts.quantizedTokens[h]; r++, at++) {
      const b = Math.floor(positions[h * tokens + r] / groupSize)
      if (b !== current) (block++, (current = b))
      rows[at] = h * tokens + r
      blocks[at] = block
    }
  }
  return { rows, blocks }
}

/**
 * Per group: the level spacing (`levelScale` of its stored statistics), its inverse, and how close
 * to a midpoint between levels (in units of the spacing s) a value may fall and still take the
 * rounded guess without the exact search. A level strays from min + q·s by its float32 rounding,
 * ≤ ½ ulp(v) ≤ |v|·2^−24 + 2^−150 with |v| ≤ 2·max(|min|, |max|), or (the top level, `max`) by
 * L·(s − (max − min)/L) ≤ 15·(s·2^−23 + 2^−149) since s is rounded up; the margin is twice the
 * larger over s, (magnitude·2^−20 + 2^−144)/s + 2^−18, plus 2^−30 for the guess's own rounding.
 * Subnormal spacings get margins ≥ ½: always the search. 2 (always search) for a zero spacing.
 */
function levelGeometry(min: Float32Array, max: Float32Array, levels: number) {
  const scales = new Float64Array(min.length)
  const inverses = new Float64Array(min.length)
  const margins = new Float64Array(min.length)
  for (let i = 0; i < min.length; i++) {
    const scale = levelScale(min[i], max[i], levels)
    scales[i] = scale
    inverses[i] = scale > 0 ? 1 / scale : 0
    margins[i] = marginOf(min[i], max[i], scale)
  }
  return { scales, inverses, margins }
}

/** The margin of one group (`levelGeometry`). */
function marginOf(min: number, max: number, scale: number): number {
  const magnitude = Math.max(Math.abs(min), Math.abs(max))
  return scale > 0 ? (magnitude * 2 ** -20 + 2 ** -144) / scale + 2 ** -18 + 2 ** -30 : 2
}

/**
 * The code of `x` in a group: `nearestCode` (the nearest level, ties up, lowest code among equal
 * levels). The guess ⌊(x − min)/scale + ½⌋ is taken whenever x is farther than the group's margin
 * from a midpoint, where the levels' float32 rounding cannot change the answer; else the search.
 */
function codeOf(
  x: number,
  lo: number,
  hi: number,
  scale: number,
  inverse: number,
  margin: number,
  levels: number,
): number {
  const t = (x - lo) * inverse + 0.5
  const guess = t >= levels ? levels : t | 0 // x ≥ lo, so t ≥ 0.5 (0.5 for a zero spacing)
  const fraction = t - guess
  return fraction > margin && fraction < 1 - margin ? guess : nearestCode(x, lo, hi, scale, levels)
}

/**
 * Codes of the keys (groups: (block, channel); a block's rows are consecutive in `rows`), written
 * into zeroed `codes` at (row · headDim + channel), and, when `restored` is given, the
 * dequantized keys. Channel by channel within a block, so a group's constants load once.
 */
function encodeKeys(
  data: Float32Array,
  min: Float32Array,
  max: Float32Array,
  codes: Uint8Array,
  rows: Int32Array,
  blocks: Int32Array,
  headDim: number,
  bits: number,
  restored: Float32Array | undefined,
  plan?: ReusePlan,
): void {
  const levels = (1 << bits) - 1
  const { scales, inverses, margins } = levelGeometry(min, max, levels)
  const table = new Float32Array(levels + 1)
  for (let first = 0; first < rows.length; ) {
    let end = first + 1
    while (end < rows.length && blocks[end] === blocks[first]) end++
    if (plan && plan.keyFrom[blocks[first]] >= 0) {
      first = end
      continue
    }
    const tabled = restored && end - first >= TABLE_MIN_ELEMENTS
    for (let c = 0, stat = blocks[first] * headDim; c < headDim; c++, stat++) {
      const lo = min[stat]
      const hi = max[stat]
      const scale = scales[stat]
      const inverse = inverses[stat]
      const margin = margins[stat]
      if (tabled) fillLevels(lo, hi, levels, table)
      for (let q = first; q < end; q++) {
        const src = rows[q] * headDim + c
        const code = codeOf(data[src], lo, hi, scale, inverse, margin, levels)
        const bit = (q * headDim + c) * bits
        codes[bit >>> 3] |= code << (bit & 7)
        if (restored) restored[src] = tabled ? table[code] : levelOf(lo, hi, scale, code, levels)
      }
    }
    first = end
  }
}

/**
 * Codes of the values (groups: (row, run of `width` channels)), packed in order into `codes`, and,
 * when `restored` is given, the dequantized values.
 */
function encodeValues(
  data: Float32Array,
  min: Float32Array,
  max: Float32Array,
  codes: Uint8Array,
  rows: Int32Array,
  headDim: number,
  width: number,
  bits: number,
  restored: Float32Array | undefined,
  plan?: ReusePlan,
): void {
  const levels = (1 << bits) - 1
  const { scales, inverses, margins } = levelGeometry(min, max, levels)
  const table = new Float32Array(levels + 1)
  const groups = Math.ceil(headDim / width)
  let byte = 0
  let packed = 0
  let filled = 0
  for (let q = 0; q < rows.length; q++) {
    if (plan && plan.valueFrom[q] >= 0) {
      byte += plan.rowBytes // rows are whole bytes when a plan exists, so `filled` is 0 here
      continue
    }
    const src = rows[q] * headDim
    for (let j = 0, stat = q * groups; j < groups; j++, stat++) {
      const lo = min[stat]
      const hi = max[stat]
      const scale = scales[stat]
      const inverse = inverses[stat]
      const margin = margins[stat]
      const end = src + Math.min(headDim, (j + 1) * width)
      const tabled = restored && end - src - j * width >= TABLE_MIN_ELEMENTS
      if (tabled) fillLevels(lo, hi, levels, table)
      for (let i = src + j * width; i < end; i++) {
        const code = codeOf(data[i], lo, hi, scale, inverse, margin, levels)
        packed |= code << filled
        filled += bits
        if (filled === 8) {
          codes[byte++] = packed
          packed = filled = 0
        }
        if (restored) restored[i] = tabled ? table[code] : levelOf(lo, hi, scale, code, levels)
      }
    }
  }
  if (filled > 0) codes[byte] = packed
}

/** The dequantized keys (the inverse of `encodeKeys`), channel by channel within a block. */
function decodeKeys(
  out: Float32Array,
  min: Float32Array,
  max: Float32Array,
  codes: Uint8Array,
  rows: Int32Array,
  blocks: Int32Array,
  headDim: number,
  bits: number,
): void {
  const levels = (1 << bits) - 1
  const table = new Float32Array(levels + 1)
  for (let first = 0; first < rows.length; ) {
    let end = first + 1
    while (end < rows.length && blocks[end] === blocks[first]) end++
    for (let c = 0, stat = blocks[first] * headDim; c < headDim; c++, stat++) {
      const [lo, hi] = [min[stat], max[stat]]
      if (end - first >= TABLE_MIN_ELEMENTS) {
        fillLevels(lo, hi, levels, table)
        for (let q = first; q < end; q++) {
          const bit = (q * headDim + c) * bits
          out[rows[q] * headDim + c] = table[(codes[bit >>> 3] >>> (bit & 7)) & levels]
        }
      } else {
        const scale = levelScale(lo, hi, levels)
        for (let q = first; q < end; q++) {
          const bit = (q * headDim + c) * bits
          const code = (codes[bit >>> 3] >>> (bit & 7)) & levels
          out[rows[q] * headDim + c] = levelOf(lo, hi, scale, code, levels)
        }
      }
    }
    first = end
  }
}

/** The dequantized values (the inverse of `encodeValues`), group by group. */
function decodeValues(
  out: Float32Array,
  min: Float32Array,
  max: Float32Array,
  codes: Uint8Array,
  rows: Int32Array,
  headDim: number,
  width: number,
  bits: number,
): void {
  const levels = (1 << bits) - 1
  const table = new Float32Array(levels + 1)
  const groups = Math.ceil(headDim / width)
  let bit = 0
  for (let q = 0; q < rows.length; q++) {
    const dst = rows[q] * headDim
    for (let j = 0, stat = q * groups; j < groups; j++, stat++) {
      const end = dst + Math.min(headDim, (j + 1) * width)
      const scale = fillLevels(min[stat], max[stat], levels, table)
      if (end - dst - j * width >= TABLE_MIN_ELEMENTS) {
        for (let i = dst + j * width; i < end; i++, bit += bits)
          out[i] = table[(codes[bit >>> 3] >>> (bit & 7)) & levels]
      } else {
        for (let i = dst + j * width; i < end; i++, bit += bits) {
          const code = (codes[bit >>> 3] >>> (bit & 7)) & levels
          out[i] = levelOf(min[stat], max[stat], scale, code, levels)
        }
      }
    }
  }
}

/**
 * Copy the non-quantized rows of `data` `[kvHeads, tokens, headDim]` to `residual` (or back, with
 * `toResidual` false).
 */
function moveResidual(
  data: Float32Array,
  residual: Float32Array,
  { kvHeads, tokens, headDim }: LayerGeometry,
  counts: KiviLayerCounts,
  toResidual: boolean,
): void {
  let at = 0
  for (let h = 0; h < kvHeads; h++) {
    const from = (h * tokens + counts.quantizedTokens[h]) * headDim
    const to = (h + 1) * tokens * headDim
    if (toResidual) residual.set(data.subarray(from, to), at)
    else data.set(residual.subarray(at, at + to - from), from)
    at += to - from
  }
}

/** Round residual rows to float16 in place when every value of both fits; true if it did. */
function halfResidual(keys: Float32Array, values: Float32Array): boolean {
  const fits = (part: Float32Array) => {
    const bits = new Uint32Array(part.buffer, part.byteOffset, part.length)
    for (let i = 0; i < bits.length; i++) if ((bits[i] & 0x7fffffff) >= 0x477ff000) return false
    return true
  }
  if (!fits(keys) || !fits(values)) return false
  return roundToHalfInPlace(keys) && roundToHalfInPlace(values)
}

/**
 * A layer quantized earlier in this layout (the previous step's `roundTrip` output, `storage.ts`),
 * whose groups are copied where the new layer has the same rows with the same bits.
 * - `layer`: its dequantized keys/values `[kvHeads, tokens, headDim]` and positions
 *   `[kvHeads, tokens]` (`tokens` its own count).
 * - `counts`: its `kiviLayerCounts`; `packed`: the parts and precisions quantizing it gave.
 * It must have been quantized with the same bits, group size and preferred precisions (parts whose
 * sizes disagree with those are not used), and its arrays must not have been written to since
 * (its rows are compared with the new layer's by their bits, and the copies trust that they are
 * still what was quantized).
 */
export interface KiviEarlier {
  layer: Pick<LayerMemory, 'keys' | 'values' | 'positions'>
  tokens: number
  counts: KiviLayerCounts
  packed: PackedKiviLayer
}

/**
 * Which groups of the new layer are copies of the earlier layer's: `keyFrom` per key block (the
 * earlier block, or −1), `valueFrom` per quantized row (the earlier quantized row, or −1),
 * `keyRowFrom` per quantized row (the earlier row when its key block is copied, or −1);
 * `rowBytes` = bytes of one row's codes.
 */
interface ReusePlan {
  keyFrom: Int32Array
  valueFrom: Int32Array
  keyRowFrom: Int32Array
  rowBytes: number
  /** number of groups copied (key blocks + value rows) */
  copied: number
}

/** Rows `a` of `x` and `b` of `y` (each `width` values) hold the same bits. */
function sameRow(x: Int32Array, a: number, y: Int32Array, b: number, width: number): boolean {
  for (let i = 0, p = a * width, q = b * width; i < width; i++) if (x[p + i] !== y[q + i]) return false
  return true
}

const int32View = (a: Float32Array) => new Int32Array(a.buffer, a.byteOffset, a.length)

/**
 * Match the new layer's quantized groups with the earlier layer's. A value row is copied when the
 * earlier layer quantized the row at the same position and its values hold the same bits (so its
 * codes, statistics and dequantized values are what quantizing it again gives). A key block is
 * copied when the earlier layer quantized the same block (⌊position / G⌋) of the head with exactly
 * the same positions, all of whose keys hold the same bits.
 * @returns undefined when a row's codes are not whole bytes (headDim · bits not a multiple of 8)
 */
function reusePlan(
  layer: Pick<LayerMemory, 'keys' | 'values' | 'positions'>,
  { kvHeads, headDim }: LayerGeometry,
  counts: KiviLayerCounts,
  rows: Int32Array,
  blocks: Int32Array,
  bits: number,
  groupSize: number,
  earlier: KiviEarlier,
): ReusePlan | undefined {
  if ((headDim * bits) % 8 !== 0) return undefined
  const geometry = { kvHeads, tokens: earlier.tokens, headDim }
  const old = quantizedRows(earlier.layer.positions, geometry, earlier.counts, groupSize)
  const oldPositions = earlier.layer.positions
  // the earlier quantized index of each new quantized row at the same position, or −1
  const from = new Int32Array(rows.length).fill(-1)
  let q = 0
  let oldStart = 0
  for (let h = 0; h < kvHeads; h++) {
    const oldCount = earlier.counts.quantizedTokens[h]
    let r = 0
    for (const end = q + counts.quantizedTokens[h]; q < end; q++) {
      const p = layer.positions[rows[q]]
      while (r < oldCount && oldPositions[h * earlier.tokens + r] < p) r++
      if (r < oldCount && oldPositions[h * earlier.tokens + r] === p) from[q] = oldStart + r
    }
    oldStart += oldCount
  }
  const [keys, values] = [int32View(layer.keys), int32View(layer.values)]
  const [oldKeys, oldValues] = [int32View(earlier.layer.keys), int32View(earlier.layer.values)]
  const valueFrom = new Int32Array(rows.length).fill(-1)
  let copied = 0
  for (let i = 0; i < rows.length; i++) {
    const o = from[i]
    if (o >= 0 && sameRow(values, rows[i], oldValues, old.rows[o], headDim)) (valueFrom[i] = o), copied++
  }
  const keyFrom = new Int32Array(rows.length ? blocks[rows.length - 1] + 1 : 0).fill(-1)
  const keyRowFrom = new Int32Array(rows.length).fill(-1)
  for (let first = 0; first < rows.length; ) {
    let end = first + 1
    while (end < rows.length && blocks[end] === blocks[first]) end++
    const o = from[first]
    const oldBlock = o >= 0 ? old.blocks[o] : -1
    let same =
      oldBlock >= 0 &&
      (o === 0 || old.blocks[o - 1] !== oldBlock) &&
      (o + end - first === old.rows.length || old.blocks[o + end - first] !== oldBlock)
    for (let i = first; same && i < end; i++) {
      same = from[i] === o + i - first && sameRow(keys, rows[i], oldKeys, old.rows[from[i]], headDim)
    }
    if (same) {
      keyFrom[blocks[first]] = oldBlock
      keyRowFrom.set(from.subarray(first, end), first)
      copied++
    }
    first = end
  }
  return { keyFrom, valueFrom, keyRowFrom, rowBytes: (headDim * bits) / 8, copied }
}

/** The earlier parts have the sizes `bits`, `groupSize` and the geometry give them (else they
 * were quantized in another layout, and nothing is copied). */
function sameLayout(earlier: KiviEarlier, { kvHeads, headDim }: LayerGeometry, bits: number, groupSize: number): boolean {
  const geometry = { kvHeads, tokens: earlier.tokens, headDim }
  if (earlier.layer.positions.length !== kvHeads * earlier.tokens) return false
  if (earlier.layer.keys.length !== kvHeads * earlier.tokens * headDim) return false
  const dims = kiviPartDims(geometry, earlier.counts, bits, groupSize)
  return KIVI_PARTS.every((part) => earlier.packed.parts[part].length === dims[part].reduce((a, b) => a * b, 1))
}

/**
 * Copy `width` elements per index i with `from[i] ≥ 0` from `src` at `from[i] · width` to `dst`
 * at `i · width`, a run of consecutive sources at a time.
 */
function copyRuns(dst: Uint8Array | Float32Array, src: Uint8Array | Float32Array, from: Int32Array, width: number): void {
  for (let i = 0; i < from.length; ) {
    if (from[i] < 0) {
      i++
      continue
    }
    let end = i + 1
    while (end < from.length && from[end] === from[i] + end - i) end++
    dst.set(src.subarray(from[i] * width, (from[end - 1] + 1) * width), i * width)
    i = end
  }
}

/**
 * Fill the copied groups of `parts` (statistics and codes) and `out` (dequantized K/V): `out`
 * starts as the new layer's own K/V, whose copied rows hold the earlier dequantized bits; the
 * quantizer overwrites the other quantized rows and the residual.
 */
function copyGroups(
  layer: Pick<LayerMemory, 'keys' | 'values'>,
  parts: KiviLayerParts,
  earlier: KiviLayerParts,
  plan: ReusePlan,
  headDim: number,
  width: number,
  out: { keys: Float32Array; values: Float32Array } | undefined,
): void {
  const { rowBytes, keyFrom, valueFrom, keyRowFrom } = plan
  const groups = Math.ceil(headDim / width)
  for (const part of ['keys.min', 'keys.max'] as const) copyRuns(parts[part], earlier[part], keyFrom, headDim)
  copyRuns(parts['keys.codes'], earlier['keys.codes'], keyRowFrom, rowBytes)
  for (const part of ['values.min', 'values.max'] as const) copyRuns(parts[part], earlier[part], valueFrom, groups)
  copyRuns(parts['values.codes'], earlier['values.codes'], valueFrom, rowBytes)
  out?.keys.set(layer.keys)
  out?.values.set(layer.values)
}

/**
 * Quantize one layer's keys and values, optionally returning what `dequantizeLayer` gives for it
 * (computed in the same pass, bit-identical).
 * @param layer keys/values Float32Array `[kvHeads, tokens, headDim]` (finite), positions
 *   Int32Array `[kvHeads, tokens]` (strictly increasing per head)
 * @param counts from `kiviLayerCounts(layer.positions, …)`
 * @param bits 2 or 4
 * @param precisions preferred statistics/residual precision (default float32 for both, the
 *   version 1 layout)
 * @param restore also return the dequantized keys and values
 * @param earlier a quantization of an earlier version of this layer (`KiviEarlier`): groups it
 *   quantized with the same rows holding the same bits are copied from it instead of quantized
 *   again (a step's memory mostly carries the previous step's rows). The result is bit-identical
 *   to quantizing without it: quantizing dequantized data gives the same statistics and codes
 *   (`kivi.ts`), and if some new group needs float32 statistics the layer is quantized afresh.
 *   Ignored when a row's codes are not whole bytes (headDim · bits not a multiple of 8) or its
 *   statistics precision is not the preferred one.
 * @returns the packed layer (parts with dims from `kiviPartDims`, the precisions chosen),
 *   `copiedGroups` (key blocks and value rows taken from `earlier`) and, with `restore`, keys and
 *   values Float32Array `[kvHeads, tokens, headDim]`
 */
export function quantizeLayer(
  layer: Pick<LayerMemory, 'keys' | 'values' | 'positions'>,
  geometry: LayerGeometry,
  counts: KiviLayerCounts,
  bits: number,
  groupSize: number,
  precisions: KiviPrecisions = FLOAT32,
  restore = false,
  earlier?: KiviEarlier,
): PackedKiviLayer & { keys?: Float32Array; values?: Float32Array; copiedGroups?: number } {
  const parts = emptyParts(kiviPartDims(geometry, counts, bits, groupSize))
  const levels = (1 << bits) - 1
  const { rows, blocks } = quantizedRows(layer.positions, geometry, counts, groupSize)
  const { headDim } = geometry
  const width = Math.min(groupSize, headDim)
  const plan =
    earlier && earlier.packed.statsDtype === precisions.statsDtype && sameLayout(earlier, geometry, bits, groupSize)
      ? reusePlan(layer, geometry, counts, rows, blocks, bits, groupSize, earlier)
      : undefined
  const out = restore ? restoredArrays(layer.keys.length) : undefined
  if (plan) copyGroups(layer, parts, earlier!.packed.parts, plan, headDim, width, out)
  groupExtremes(layer, headDim, width, rows, blocks, parts, plan)
  let statsDtype: KiviPrecision = 'float32'
  if (
    precisions.statsDtype === 'float16' &&
    halfStatistics(parts['keys.min'], parts['keys.max'], levels, plan?.keyFrom, headDim) &&
    halfStatistics(parts['values.min'], parts['values.max'], levels, plan?.valueFrom, Math.ceil(headDim / width))
  ) {
    statsDtype = 'float16'
  } else {
    // Some new group needs float32 statistics: the copied float16 ones are not its extremes.
    // (Copied float32 statistics are: the extremes of the same bits, canonical.)
    if (plan && precisions.statsDtype === 'float16')
      return quantizeLayer(layer, geometry, counts, bits, groupSize, precisions, restore)
    if (precisions.statsDtype === 'float16')
      groupExtremes(layer, headDim, width, rows, blocks, parts)
    for (const part of ['keys.min', 'keys.max', 'values.min', 'values.max'] as const)
      canonicalize(parts[part])
  }
  moveResidual(layer.keys, parts['keys.residual'], geometry, counts, true)
  moveResidual(layer.values, parts['values.residual'], geometry, counts, true)
  const residualDtype: KiviPrecision =
    precisions.residualDtype === 'float16' &&
    halfResidual(parts['keys.residual'], parts['values.residual'])
      ? 'float16'
      : 'float32'
  const [kMin, kMax, kCodes] = [parts['keys.min'], parts['keys.max'], parts['keys.codes']]
  encodeKeys(layer.keys, kMin, kMax, kCodes, rows, blocks, headDim, bits, out?.keys, plan)
  const [vMin, vMax, vCodes] = [parts['values.min'], parts['values.max'], parts['values.codes']]
  encodeValues(layer.values, vMin, vMax, vCodes, rows, headDim, width, bits, out?.values, plan)
  const copiedGroups = plan?.copied ?? 0
  if (!out) return { parts, statsDtype, residualDtype, copiedGroups }
  moveResidual(out.keys, parts['keys.residual'], geometry, counts, false)
  moveResidual(out.values, parts['values.residual'], geometry, counts, false)
  return { parts, statsDtype, residualDtype, keys: out.keys, values: out.values, copiedGroups }
}

/** Keys and values arrays of `size` values each, in one allocation (one buffer, two views). */
function restoredArrays(size: number): { keys: Float32Array; values: Float32Array } {
  const buffer = new ArrayBuffer(8 * size)
  return {
    keys: new Float32Array(buffer, 0, size),
    values: new Float32Array(buffer, 4 * size, size),
  }
}

/**
 * Rebuild one layer's keys and values from its parts (the inverse of `quantizeLayer`, up to the
 * quantization error; residual rows as stored).
 * @param parts as `quantizeLayer` returns them or as read from a blob (dims already checked,
 *   statistics finite with min ≤ max; float16 parts widened to float32)
 * @param positions Int32Array `[kvHeads, tokens]` whose counts are `counts`
 * @returns keys, values Float32Array `[kvHeads, tokens, headDim]`
 */
export function dequantizeLayer(
  parts: KiviLayerParts,
  positions: Int32Array,
  geometry: LayerGeometry,
  counts: KiviLayerCounts,
  bits: number,
  groupSize: number,
): { keys: Float32Array; values: Float32Array } {
  const { kvHeads, tokens, headDim } = geometry
  const out = restoredArrays(kvHeads * tokens * headDim)
  const { rows, blocks } = quantizedRows(positions, geometry, counts, groupSize)
  const width = Math.min(groupSize, headDim)
  const [kMin, kMax, kCodes] = [parts['keys.min'], parts['keys.max'], parts['keys.codes']]
  decodeKeys(out.keys, kMin, kMax, kCodes, rows, blocks, headDim, bits)
  const [vMin, vMax, vCodes] = [parts['values.min'], parts['values.max'], parts['values.codes']]
  decodeValues(out.values, vMin, vMax, vCodes, rows, headDim, width, bits)
  moveResidual(out.keys, parts['keys.residual'], geometry, counts, false)
  moveResidual(out.values, parts['values.residual'], geometry, counts, false)
  return out
}

/**
 * Index of the first statistic that is not finite or has min > max, or −1.
 * @param min, max Float32Array of equal length
 */
export function badStatistic(min: Float32Array, max: Float32Array): number {
  for (let i = 0; i < min.length; i++) {
    if (!(min[i] <= max[i]) || min[i] - min[i] !== 0 || max[i] - max[i] !== 0) return i
  }
  return -1
}
