/**
 * @module KIVI as a storage format: keys quantized per channel over blocks of token positions,
 * values per token over groups of channels, the newest tokens kept in float32 (the residual).
 * Wraps any policy's memory and the TempoFit bank; the codec calls it for `dtype: 'kivi'`.
 *
 * Geometry, per stored layer l and KV head h (G = `groupSize`, R = `residualTokens`):
 * - Block of a token: `⌊position / G⌋`. Positions are absolute and never renumbered, so a block
 *   keeps its identity as tokens are appended and evicted.
 * - Quantized tokens: those with `position < cutoff`, `cutoff = G · max(0, ⌊(nextPosition − R)/G⌋)`,
 *   i.e. whole blocks whose last position `(b + 1)·G − 1 < nextPosition − R`; positions increase
 *   per head, so they are the first `quantizedTokens[l][h]` rows. The rest (between R and
 *   R + G − 1 positions when nothing was evicted) stay float32.
 * - Keys: one group per (head, block, channel): the block's kept rows of that channel.
 * - Values: one group per (head, quantized token, channel group), channel groups of
 *   `g = min(G, headDim)` channels (the last one shorter when g does not divide headDim).
 * Each group is quantized by `minmax-quant.ts`: float32 min and max stored, the scale derived
 * from them, so re-encoding dequantized data recovers the same statistics and codes bit for bit.
 * Statistics are float32, not float16: float16 cannot recover them exactly, cannot hold
 * |x| > 65504, and would swamp outlier key channels whose offset dwarfs their range (1000 ± 0.1 has
 * float16 spacing 0.5). They cost 64 bits per group: 2 bits per key element at G = 32, 64/g per
 * value element.
 *
 * Parts of one layer (tensors `layers.{l}.{part}` of the blob), rows in head order, each head's
 * rows in memory order:
 * | part | dtype | dims |
 * |---|---|---|
 * | keys.codes, values.codes | uint8 | [⌈Q · headDim · bits / 8⌉]: codes of the Q quantized rows, row-major (row, channel), packed by `bitpack.ts` |
 * | keys.min, keys.max | float32 | [B, headDim]: per (head, block) in order, per channel |
 * | values.min, values.max | float32 | [Q, ⌈headDim / g⌉]: per quantized row, per channel group |
 * | keys.residual, values.residual | float32 | [kvHeads · tokens − Q, headDim]: the other rows |
 * with Q = Σ_h quantizedTokens[l][h] and B = Σ_h keyBlocks[l][h].
 * @see KIVI, Liu et al., "KIVI: A Tuning-Free Asymmetric 2bit Quantization for KV Cache",
 *   arXiv:2402.02750 (per-channel keys, per-token values, full-precision residual)
 */
import { getCode, packedBytes, putCode } from './bitpack.ts'
import { canonicalStats, fillLevels, nearestLevel } from './minmax-quant.ts'
import type { LayerMemory } from './types.ts'

/**
 * KIVI storage options (per memory).
 * - `bits`: 2 | 4, default 4; `layerBits` (one per stored layer) overrides it.
 * - `groupSize` G: tokens per key block and channels per value group, integer ≥ 1, default 32.
 * - `residualTokens` R: newest positions always kept in float32, integer ≥ 0, default 32.
 */
export interface KiviOptions {
  bits?: 2 | 4
  groupSize?: number
  residualTokens?: number
  layerBits?: readonly number[]
}

/** Resolved options: `bits` has one entry per stored layer. */
export interface KiviSettings {
  bits: number[]
  groupSize: number
  residualTokens: number
}

/** Where a layer's groups are: per head, quantized rows and key blocks (each `[kvHeads]`). */
export interface KiviLayerCounts {
  quantizedTokens: number[]
  keyBlocks: number[]
}

/** Geometry of one layer: `[kvHeads, tokens, headDim]`. */
export interface LayerGeometry {
  kvHeads: number
  tokens: number
  headDim: number
}

/** The stored parts of one layer (table in the module note). */
export type KiviPart =
  | 'keys.codes'
  | 'keys.min'
  | 'keys.max'
  | 'keys.residual'
  | 'values.codes'
  | 'values.min'
  | 'values.max'
  | 'values.residual'

/** Part names, in payload order. */
export const KIVI_PARTS: readonly KiviPart[] = [
  'keys.codes',
  'keys.min',
  'keys.max',
  'keys.residual',
  'values.codes',
  'values.min',
  'values.max',
  'values.residual',
]

/** One layer's parts: codes Uint8Array, the others Float32Array (dims from `kiviPartDims`). */
export type KiviLayerParts = {
  [P in KiviPart]: P extends `${string}.codes` ? Uint8Array : Float32Array
}

/** Largest group size accepted (a block of 2^16 positions). */
export const MAX_GROUP_SIZE = 1 << 16

const isInt = (value: unknown, min: number, max = Number.MAX_SAFE_INTEGER): value is number =>
  typeof value === 'number' && Number.isSafeInteger(value) && value >= min && value <= max

/**
 * Resolve options with defaults (bits 4, G 32, R 32).
 * @param layers stored layers of the memory
 * @throws RangeError if bits/layerBits are not 2 or 4, layerBits has ≠ layers entries, G is not
 *   an integer in 1 … 65536 or R not an integer ≥ 0
 */
export function resolveKivi(options: KiviOptions = {}, layers: number): KiviSettings {
  const { bits = 4, groupSize = 32, residualTokens = 32, layerBits } = options
  const perLayer = layerBits ? [...layerBits] : Array.from({ length: layers }, () => bits)
  if (perLayer.length !== layers) {
    throw new RangeError(
      `kivi layerBits has ${perLayer.length} entries, memory has ${layers} layers`,
    )
  }
  for (const b of [bits, ...perLayer]) {
    if (b !== 2 && b !== 4) throw new RangeError(`kivi bits must be 2 or 4, got ${b}`)
  }
  if (!isInt(groupSize, 1, MAX_GROUP_SIZE)) {
    throw new RangeError(
      `kivi groupSize must be an integer in 1…${MAX_GROUP_SIZE}, got ${groupSize}`,
    )
  }
  if (!isInt(residualTokens, 0)) {
    throw new RangeError(`kivi residualTokens must be an integer ≥ 0, got ${residualTokens}`)
  }
  return { bits: perLayer, groupSize, residualTokens }
}

/**
 * Positions below the cutoff are quantized: `G · max(0, ⌊(nextPosition − R) / G⌋)`.
 * @param nextPosition the memory's next absolute position (tokens)
 */
export function kiviCutoff(
  nextPosition: number,
  groupSize: number,
  residualTokens: number,
): number {
  return groupSize * Math.max(0, Math.floor((nextPosition - residualTokens) / groupSize))
}

/**
 * Per head: the number of leading rows with `position < cutoff`, and how many runs of equal
 * `⌊position / G⌋` (key blocks) they form.
 * @param positions Int32Array `[kvHeads, tokens]`
 */
export function kiviLayerCounts(
  positions: Int32Array,
  { kvHeads, tokens }: LayerGeometry,
  cutoff: number,
  groupSize: number,
): KiviLayerCounts {
  const counts: KiviLayerCounts = { quantizedTokens: [], keyBlocks: [] }
  for (let h = 0; h < kvHeads; h++) {
    let rows = 0
    let blocks = 0
    let block = NaN
    for (let r = 0; r < tokens && positions[h * tokens + r] < cutoff; r++) {
      const b = Math.floor(positions[h * tokens + r] / groupSize)
      if (b !== block) (blocks++, (block = b))
      rows++
    }
    counts.quantizedTokens.push(rows)
    counts.keyBlocks.push(blocks)
  }
  return counts
}

const sum = (values: readonly number[]): number => values.reduce((a, b) => a + b, 0)

/**
 * Dims of each stored part of a layer (table in the module note).
 * @param bits the layer's code width, 2 or 4
 */
export function kiviPartDims(
  { kvHeads, tokens, headDim }: LayerGeometry,
  counts: KiviLayerCounts,
  bits: number,
  groupSize: number,
): Record<KiviPart, number[]> {
  const quantized = sum(counts.quantizedTokens)
  const blocks = sum(counts.keyBlocks)
  const residual = kvHeads * tokens - quantized
  const codes = [packedBytes(quantized * headDim, bits)]
  const valueGroups = Math.ceil(headDim / Math.min(groupSize, headDim))
  return {
    'keys.codes': codes,
    'keys.min': [blocks, headDim],
    'keys.max': [blocks, headDim],
    'keys.residual': [residual, headDim],
    'values.codes': codes,
    'values.min': [quantized, valueGroups],
    'values.max': [quantized, valueGroups],
    'values.residual': [residual, headDim],
  }
}

/** Visit every group of a layer: `visit(stat, count, offset, stride)` for key groups (the
 * channel's rows in a block) and value groups (a row's channel span); `code` indexes are the
 * element's index among quantized rows (row-major), `src` its index in `[kvHeads, tokens, headDim]`. */
function forEachGroup(
  positions: Int32Array,
  { kvHeads, tokens, headDim }: LayerGeometry,
  counts: KiviLayerCounts,
  groupSize: number,
  keyGroup: (stat: number, src: number, code: number, count: number, stride: number) => void,
  valueGroup: (stat: number, src: number, code: number, count: number) => void,
): void {
  const valueWidth = Math.min(groupSize, headDim)
  const valueGroups = Math.ceil(headDim / valueWidth)
  let row = 0 // quantized rows before this head
  let block = 0 // key blocks before this head
  for (let h = 0; h < kvHeads; h++) {
    const rows = counts.quantizedTokens[h]
    for (let start = 0; start < rows; block++) {
      const b = Math.floor(positions[h * tokens + start] / groupSize)
      let end = start + 1
      while (end < rows && Math.floor(positions[h * tokens + end] / groupSize) === b) end++
      for (let c = 0; c < headDim; c++) {
        const src = (h * tokens + start) * headDim + c
        keyGroup(block * headDim + c, src, (row + start) * headDim + c, end - start, headDim)
      }
      start = end
    }
    for (let r = 0; r < rows; r++) {
      for (let j = 0; j < valueGroups; j++) {
        const c = j * valueWidth
        const src = (h * tokens + r) * headDim + c
        const code = (row + r) * headDim + c
        valueGroup((row + r) * valueGroups + j, src, code, Math.min(valueWidth, headDim - c))
      }
    }
    row += rows
  }
}

/** Copy the non-quantized rows of `data` `[kvHeads, tokens, headDim]` to or from `residual`. */
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

/**
 * Quantize one layer's keys and values.
 * @param layer keys/values Float32Array `[kvHeads, tokens, headDim]` (finite), positions
 *   Int32Array `[kvHeads, tokens]` (strictly increasing per head)
 * @param counts from `kiviLayerCounts(layer.positions, …)`
 * @param bits 2 or 4
 * @returns the layer's parts (dims from `kiviPartDims`)
 */
export function quantizeLayer(
  layer: Pick<LayerMemory, 'keys' | 'values' | 'positions'>,
  geometry: LayerGeometry,
  counts: KiviLayerCounts,
  bits: number,
  groupSize: number,
): KiviLayerParts {
  const dims = kiviPartDims(geometry, counts, bits, groupSize)
  const size = (part: KiviPart): number => dims[part].reduce((a, b) => a * b, 1)
  const parts = Object.fromEntries(
    KIVI_PARTS.map((part) => [
      part,
      part.endsWith('.codes') ? new Uint8Array(size(part)) : new Float32Array(size(part)),
    ]),
  ) as KiviLayerParts
  const levels = (1 << bits) - 1
  const table = new Float32Array(levels + 1)
  const quantize = (
    data: Float32Array,
    min: Float32Array,
    max: Float32Array,
    codes: Uint8Array,
  ) => {
    return (stat: number, src: number, code: number, count: number, stride = 1): void => {
      let [lo, hi] = [data[src], data[src]]
      for (let i = 1; i < count; i++) {
        const x = data[src + i * stride]
        if (x < lo) lo = x
        else if (x > hi) hi = x
      }
      const stats = canonicalStats(lo, hi)
      ;[min[stat], max[stat]] = [stats.min, stats.max]
      const scale = fillLevels(stats.min, stats.max, levels, table)
      for (let i = 0; i < count; i++) {
        const q = nearestLevel(data[src + i * stride], table, levels, scale)
        if (q !== 0) putCode(codes, code + i * stride, q, bits)
      }
    }
  }
  forEachGroup(
    layer.positions,
    geometry,
    counts,
    groupSize,
    quantize(layer.keys, parts['keys.min'], parts['keys.max'], parts['keys.codes']),
    quantize(layer.values, parts['values.min'], parts['values.max'], parts['values.codes']),
  )
  moveResidual(layer.keys, parts['keys.residual'], geometry, counts, true)
  moveResidual(layer.values, parts['values.residual'], geometry, counts, true)
  return parts
}

/**
 * Rebuild one layer's keys and values from its parts (the inverse of `quantizeLayer`, up to the
 * quantization error; residual rows bit-exact).
 * @param parts as `quantizeLayer` returns them or as read from a blob (dims already checked,
 *   statistics finite with min ≤ max)
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
  const keys = new Float32Array(kvHeads * tokens * headDim)
  const values = new Float32Array(kvHeads * tokens * headDim)
  const levels = (1 << bits) - 1
  const table = new Float32Array(levels + 1)
  const dequantize = (
    data: Float32Array,
    min: Float32Array,
    max: Float32Array,
    codes: Uint8Array,
  ) => {
    return (stat: number, src: number, code: number, count: number, stride = 1): void => {
      fillLevels(min[stat], max[stat], levels, table)
      for (let i = 0; i < count; i++) {
        data[src + i * stride] = table[getCode(codes, code + i * stride, bits)]
      }
    }
  }
  forEachGroup(
    positions,
    geometry,
    counts,
    groupSize,
    dequantize(keys, parts['keys.min'], parts['keys.max'], parts['keys.codes']),
    dequantize(values, parts['values.min'], parts['values.max'], parts['values.codes']),
  )
  moveResidual(keys, parts['keys.residual'], geometry, counts, false)
  moveResidual(values, parts['values.residual'], geometry, counts, false)
  return { keys, values }
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
