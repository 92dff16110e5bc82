/**
 * @module An independent reading of the KIVI layout (memory/kivi.ts module note) for the tests:
 * which rows are quantized, which elements form each key and value group, and how many bytes each
 * part takes, written from the definitions (block of a position, residual rule) with plain loops.
 */
import { expect } from 'vitest'
import { encodeMemory } from '../../memory/codec.ts'
import type { KiviOptions } from '../../memory/kivi.ts'
import type { SessionMemory } from '../../memory/types.ts'
import { splitBlob } from './blob-tools.ts'
import { referenceMeta } from './meta-reference.ts'
import { referenceHalf, referenceHalfDirected } from './reference.ts'

/** Resolved settings as the test states them. */
export interface ReferenceSettings {
  bits: readonly number[]
  groupSize: number
  residualTokens: number
  /** 'quantized': a row is quantized when its own position is outside the residual. */
  tail?: 'residual' | 'quantized'
}

/** One quantization group: flat indices into the layer's `[kvHeads, tokens, headDim]` K or V. */
export interface ReferenceGroup {
  part: 'keys' | 'values'
  layer: number
  elements: number[]
}

/** Per layer: quantized rows per head, and the groups. */
export interface ReferenceLayout {
  quantizedTokens: number[][]
  keyBlocks: number[][]
  groups: ReferenceGroup[]
}

/**
 * Rows of head h are quantized when their block `⌊pos / G⌋` lies wholly outside the residual:
 * `(block + 1)·G − 1 < nextPosition − R` (with tail 'quantized': when the row itself does,
 * `pos < nextPosition − R`). Keys: one group per (head, block, channel); values: one
 * per (head, quantized row, run of min(G, headDim) channels).
 */
export function referenceLayout(mem: SessionMemory, s: ReferenceSettings): ReferenceLayout {
  const { kvHeads, tokens, headDim, nextPosition } = mem
  const G = s.groupSize
  const out: ReferenceLayout = { quantizedTokens: [], keyBlocks: [], groups: [] }
  mem.layers.forEach((layer, l) => {
    const rowsPerHead: number[] = []
    const blocksPerHead: number[] = []
    for (let h = 0; h < kvHeads; h++) {
      const byBlock = new Map<number, number[]>()
      let rows = 0
      for (let t = 0; t < tokens; t++) {
        const pos = layer.positions[h * tokens + t]
        const block = Math.floor(pos / G)
        const outside = s.tail === 'quantized' ? pos < nextPosition - s.residualTokens : (block + 1) * G - 1 < nextPosition - s.residualTokens
        if (outside) {
          rows++
          if (!byBlock.has(block)) byBlock.set(block, [])
          byBlock.get(block)!.push(t)
          const width = Math.min(G, headDim)
          for (let c0 = 0; c0 < headDim; c0 += width) {
            const elements: number[] = []
            for (let c = c0; c < Math.min(headDim, c0 + width); c++)
              elements.push((h * tokens + t) * headDim + c)
            out.groups.push({ part: 'values', layer: l, elements })
          }
        }
      }
      for (const rowsOfBlock of byBlock.values()) {
        for (let c = 0; c < headDim; c++) {
          const elements = rowsOfBlock.map((t) => (h * tokens + t) * headDim + c)
          out.groups.push({ part: 'keys', layer: l, elements })
        }
      }
      rowsPerHead.push(rows)
      blocksPerHead.push(byBlock.size)
    }
    out.quantizedTokens.push(rowsPerHead)
    out.keyBlocks.push(blocksPerHead)
  })
  return out
}

const align8 = (n: number): number => Math.ceil(n / 8) * 8

/** Bytes per statistic or residual value of each layer: 2 (float16) or 4 (float32). */
export interface ReferencePrecision {
  statsBytes: readonly number[]
  residualBytes: readonly number[]
}

/**
 * Payload bytes of a version 2 KIVI blob, from the documented layout: per layer, each tensor padded
 * to 8 bytes: 2 × codes ⌈Q·D·bits/8⌉; keys stats 2·B·D and values stats 2·Q·⌈D/g⌉ statistics;
 * 2 × residual (H·T − Q)·D values; the metadata stream (`referenceMeta`); scores H·T·4 when
 * carried. Statistics and residual values take `precision`'s bytes per layer.
 */
export function referencePayloadBytes(
  mem: SessionMemory,
  s: ReferenceSettings,
  precision: ReferencePrecision,
): number {
  const layout = referenceLayout(mem, s)
  const { kvHeads: H, tokens: T, headDim: D } = mem
  const g = Math.min(s.groupSize, D)
  let bytes = 0
  mem.layers.forEach((layer, l) => {
    const Q = layout.quantizedTokens[l].reduce((a, b) => a + b, 0)
    const B = layout.keyBlocks[l].reduce((a, b) => a + b, 0)
    const [stat, value] = [precision.statsBytes[l], precision.residualBytes[l]]
    bytes += 2 * align8(Math.ceil((Q * D * s.bits[l]) / 8))
    bytes += align8(2 * B * D * stat) + align8(2 * Q * Math.ceil(D / g) * stat)
    bytes += 2 * align8((H * T - Q) * D * value)
    bytes += align8(referenceMeta(mem, l).length)
    if (layer.scores) bytes += align8(H * T * 4)
  })
  return bytes
}

/**
 * The statistics a group is stored with: float32 — its min and max (−0 as +0); float16 — min
 * rounded down and max rounded up to float16, or both the nearest float16 of a constant group.
 */
export function referenceStats(values: number[], half: boolean): { min: number; max: number } {
  const [min, max] = [Math.min(...values), Math.max(...values)]
  if (!half) return { min: min + 0, max: max + 0 }
  if (min === max) return { min: referenceHalf(min) + 0, max: referenceHalf(max) + 0 }
  return { min: referenceHalfDirected(min, true), max: referenceHalfDirected(max, false) }
}

/**
 * The half-step bound of a group stored with statistics `stats`, in float64: scale/2 with
 * scale = (max − min)/(2^bits − 1), plus float32 rounding of the levels and of the float32 scale.
 */
export function halfStepBound(stats: { min: number; max: number }, bits: number): number {
  const { min, max } = stats
  const scale = (max - min) / (2 ** bits - 1)
  const magnitude = Math.max(Math.abs(min), Math.abs(max))
  return scale / 2 + scale * 2 ** -20 + magnitude * 2 ** -23 + 3e-45
}

/** Per layer, whether the blob stores statistics / residual rows in float16 (its header says). */
export function precisionOf(mem: SessionMemory, kivi: KiviOptions | undefined) {
  const policy = { name: 'full', params: {} }
  const { header } = splitBlob(encodeMemory(mem, { policy, dtype: 'kivi', kivi }))
  const half = (list: string[]) => list.map((dtype) => dtype === 'float16')
  return { stats: half(header.kivi.statsDtype), residual: half(header.kivi.residualDtype) }
}

/**
 * Every group of the reference layout within the half-step bound of the statistics it is stored
 * with (`referenceStats`, float16 or float32 per layer as `precision` says); every other value
 * exact, or its nearest float16 where the layer's residual is float16.
 */
export function expectWithinGroups(
  before: SessionMemory,
  after: SessionMemory,
  settings: ReferenceSettings,
  precision: { stats: boolean[]; residual: boolean[] },
): void {
  const layout = referenceLayout(before, settings)
  const quantized = before.layers.map(() => ({
    keys: new Set<number>(),
    values: new Set<number>(),
  }))
  for (const { part, layer, elements } of layout.groups) {
    const original = elements.map((i) => before.layers[layer][part][i])
    const stats = referenceStats(original, precision.stats[layer])
    const bound = halfStepBound(stats, settings.bits[layer])
    for (const i of elements) {
      const restored = after.layers[layer][part][i]
      // A constant group (stats min = max) restores its stored value exactly.
      if (stats.min === stats.max && restored !== stats.min)
        expect.fail(
          `${part} ${layer}[${i}]: constant group restored as ${restored}, stored ${stats.min}`,
        )
      if (stats.min === stats.max) {
        quantized[layer][part].add(i)
        continue
      }
      const error = Math.abs(before.layers[layer][part][i] - restored)
      if (!(error <= bound)) expect.fail(`${part} ${layer}[${i}]: error ${error} > ${bound}`)
      if (!(restored >= stats.min && restored <= stats.max))
        expect.fail(`${part} ${layer}[${i}]: ${restored} outside [${stats.min}, ${stats.max}]`)
      quantized[layer][part].add(i)
    }
  }
  before.layers.forEach((layer, l) => {
    for (const part of ['keys', 'values'] as const) {
      layer[part].forEach((x, i) => {
        const expected = precision.residual[l] ? referenceHalf(x) : x
        if (!quantized[l][part].has(i) && !Object.is(expected, after.layers[l][part][i]))
          expect.fail(
            `residual ${part} ${l}[${i}]: ${x} → ${after.layers[l][part][i]}, expected ${expected}`,
          )
      })
    }
  })
}
