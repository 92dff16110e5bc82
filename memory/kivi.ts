/**
 * @module KIVI as a storage format: keys quantized per channel over blocks of token positions,
 * values per token over groups of channels, the newest tokens kept unquantized (the residual).
 * Wraps any policy's memory and the TempoFit bank; the codec calls it for `dtype: 'kivi'`.
 *
 * Geometry, per stored layer l and KV head h (G = `groupSize`, R = `residualTokens`):
 * - Block of a token: `⌊position / G⌋`. Positions are absolute and never renumbered, so a block
 *   keeps its identity as tokens are appended and evicted.
 * - Quantized tokens: those with `position < cutoff`, `cutoff = G · max(0, ⌊(nextPosition − R)/G⌋)`,
 *   i.e. whole blocks whose last position `(b + 1)·G − 1 < nextPosition − R`; positions increase
 *   per head, so they are the first `quantizedTokens[l][h]` rows. The rest (between R and
 *   R + G − 1 positions when nothing was evicted) stay unquantized. With `tail: 'quantized'` the
 *   cutoff is `max(0, nextPosition − R)`: exactly the last R positions stay unquantized, and the
 *   newest, partly filled key block is quantized over the rows it has (its statistics are those
 *   rows' min and max); when later rows join the block it is quantized again from its stored
 *   (dequantized) rows and the new ones, so its older rows take a second rounding once (error ≤
 *   half a step of each grid). What it buys: short memories, where the unquantized partial block
 *   is a large share (a 5-step GUI episode: 0.175 of float32 → ≈ 0.16, `bench/results/gui-fidelity.json`).
 * - Keys: one group per (head, block, channel): the block's kept rows of that channel.
 * - Values: one group per (head, quantized token, channel group), channel groups of
 *   `g = min(G, headDim)` channels (the last one shorter when g does not divide headDim).
 * Each group is quantized by `minmax-quant.ts` from its stored min and max (the scale derived from
 * them), so re-encoding dequantized data recovers the same statistics and codes bit for bit.
 *
 * Precision of the statistics and the residual, per layer (format version 2; version 1 blobs are
 * float32 throughout):
 * - Statistics are float16 when every group of the layer allows it (`statsDtype` 'float16', the
 *   default): min rounded down and max rounded up to float16 (a constant group: its value rounded
 *   to nearest), provided that with those levels the group's own min still gets code 0 and its
 *   max code 2^bits − 1. The dequantized group then has exactly the stored min and max, so
 *   re-encoding it gives the same statistics: the fixed point holds. A layer where some group
 *   fails (a value beyond ±65504, or a range of only a few float16 steps of its magnitude, e.g.
 *   1000 ± 0.1 where float16 spacing is 0.5) keeps exact float32 statistics, as version 1 did.
 *   The trained models' K/V (|x| < 10) widen a group's range by < 0.3 % this way. A group's
 *   statistics cost 32 bits in float16: 1 bit per key element at G = 32, 32/g per value element
 *   (float32: twice that).
 * - Residual rows are float16 (rounded to nearest) when every residual value of the layer fits
 *   (|x| < 65520; `residualDtype` 'float16', the default), else float32. KIVI keeps the residual
 *   in the model's own precision, float16 in the paper.
 * Both choices are functions of the data, so `roundTrip` stays a fixed point and a memory has one
 * encoding; `{ statsDtype: 'float32', residualDtype: 'float32' }` gives version 1's values.
 *
 * Parts of one layer, rows in head order, each head's rows in memory order:
 * | part | dims |
 * |---|---|
 * | keys.codes, values.codes (uint8) | [⌈Q · headDim · bits / 8⌉]: codes of the Q quantized rows, row-major (row, channel), packed by `bitpack.ts` |
 * | keys.min, keys.max | [B, headDim]: per (head, block) in order, per channel |
 * | values.min, values.max | [Q, ⌈headDim / g⌉]: per quantized row, per channel group |
 * | keys.residual, values.residual | [kvHeads · tokens − Q, headDim]: the other rows |
 * with Q = Σ_h quantizedTokens[l][h] and B = Σ_h keyBlocks[l][h]. The blob's tensors
 * `layers.{l}.{part}` (float16 as raw bits): version 2 stores codes, `keys.stats` /
 * `values.stats` (`[2, …]`: the min part, then the max part, in the statistics dtype) and the
 * residuals (residual dtype), `KIVI_STORED_PARTS`; version 1 stored each of the 8 parts, float32.
 * Quantizing and dequantizing are in `kivi-quant.ts`.
 * @see KIVI, Liu et al., "KIVI: A Tuning-Free Asymmetric 2bit Quantization for KV Cache",
 *   arXiv:2402.02750 (per-channel keys, per-token values, full-precision residual)
 */
import { packedBytes } from './bitpack.ts'

/** Precision of a layer's statistics or residual: float16 where the layer's data allows it. */
export type KiviPrecision = 'float16' | 'float32'

/**
 * KIVI storage options (per memory).
 * - `bits`: 2 | 4, default 4; `layerBits` (one per stored layer) overrides it.
 * - `groupSize` G: tokens per key block and channels per value group, integer ≥ 1, default 32.
 * - `residualTokens` R: newest positions always kept unquantized, integer ≥ 0, default 32.
 * - `tail`: 'residual' (default; KIVI's layout: key blocks quantize only when whole, so up to
 *   G − 1 more rows stay unquantized) or 'quantized' (only the last R positions stay unquantized;
 *   see the module note).
 * - `statsDtype`, `residualDtype`: 'float16' (default: per layer, when the data allows, see the
 *   module note) or 'float32' (always).
 */
export interface KiviOptions {
  bits?: 2 | 4
  groupSize?: number
  residualTokens?: number
  tail?: KiviTail
  layerBits?: readonly number[]
  statsDtype?: KiviPrecision
  residualDtype?: KiviPrecision
}

/** Where the unquantized rows end: KIVI's whole-block layout, or only the last R positions. */
export type KiviTail = 'residual' | 'quantized'

/** Resolved options: `bits` has one entry per stored layer. */
export interface KiviSettings {
  bits: number[]
  groupSize: number
  residualTokens: number
  tail: KiviTail
  statsDtype: KiviPrecision
  residualDtype: KiviPrecision
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

/** Part names, in payload order (format version 1 stores each as a tensor). */
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

/** A tensor of a version 2 KIVI layer: min and max statistics travel together as `*.stats`. */
export type KiviStoredPart =
  | 'keys.codes'
  | 'keys.stats'
  | 'keys.residual'
  | 'values.codes'
  | 'values.stats'
  | 'values.residual'

/** Version 2 tensor names of a KIVI layer, in payload order. */
export const KIVI_STORED_PARTS: readonly KiviStoredPart[] = [
  'keys.codes',
  'keys.stats',
  'keys.residual',
  'values.codes',
  'values.stats',
  'values.residual',
]

/** One layer's parts: codes Uint8Array, the others Float32Array (dims from `kiviPartDims`);
 * float16 statistics and residual rows are held as their float32 values. */
export type KiviLayerParts = {
  [P in KiviPart]: P extends `${string}.codes` ? Uint8Array : Float32Array
}

/** A quantized layer: its parts and the precision its statistics and residual are stored in. */
export interface PackedKiviLayer {
  parts: KiviLayerParts
  statsDtype: KiviPrecision
  residualDtype: KiviPrecision
}

/** Largest group size accepted (a block of 2^16 positions). */
export const MAX_GROUP_SIZE = 1 << 16

const isInt = (value: unknown, min: number, max = Number.MAX_SAFE_INTEGER): value is number =>
  typeof value === 'number' && Number.isSafeInteger(value) && value >= min && value <= max

const isPrecision = (value: unknown): value is KiviPrecision =>
  value === 'float16' || value === 'float32'

/**
 * Resolve options with defaults (bits 4, G 32, R 32, float16 statistics and residual where the
 * data allows).
 * @param layers stored layers of the memory
 * @throws RangeError if bits/layerBits are not 2 or 4, layerBits has ≠ layers entries, G is not
 *   an integer in 1 … 65536, R not an integer ≥ 0, or a precision not 'float16' | 'float32'
 */
export function resolveKivi(options: KiviOptions = {}, layers: number): KiviSettings {
  const { bits = 4, groupSize = 32, residualTokens = 32, layerBits, tail = 'residual' } = options
  const { statsDtype = 'float16', residualDtype = 'float16' } = options
  for (const [name, value] of [
    ['statsDtype', statsDtype],
    ['residualDtype', residualDtype],
  ] as const) {
    if (!isPrecision(value))
      throw new RangeError(`kivi ${name} must be 'float16' or 'float32', got ${String(value)}`)
  }
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
  if (tail !== 'residual' && tail !== 'quantized') throw new RangeError(`kivi tail must be 'residual' or 'quantized', got ${String(tail)}`)
  return { bits: perLayer, groupSize, residualTokens, tail, statsDtype, residualDtype }
}

/**
 * Positions below the cutoff are quantized: `G · max(0, ⌊(nextPosition − R) / G⌋)`, or with
 * `tail` 'quantized' `max(0, nextPosition − R)`.
 * @param nextPosition the memory's next absolute position (tokens)
 */
export function kiviCutoff(
  nextPosition: number,
  groupSize: number,
  residualTokens: number,
  tail: KiviTail = 'residual',
): number {
  if (tail === 'quantized') return Math.max(0, nextPosition - residualTokens)
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
