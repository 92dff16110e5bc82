/**
 * @module An independent reading of the KIVI layout (memory/kivi.ts module note) for the tests:
 * which rows are quantized, which elements form each key and value group, and how many bytes each
 * part takes, written from the definitions (block of a position, residual rule) with plain loops.
 */
import type { SessionMemory } from '../../memory/types.ts'

/** Resolved settings as the test states them. */
export interface ReferenceSettings {
  bits: readonly number[]
  groupSize: number
  residualTokens: number
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
 * `(block + 1)·G − 1 < nextPosition − R`. Keys: one group per (head, block, channel); values: one
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
        if ((block + 1) * G - 1 < nextPosition - s.residualTokens) {
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

/**
 * Payload bytes of a KIVI blob, from the documented layout: per layer, each tensor padded to 8
 * bytes: 2 × codes ⌈Q·D·bits/8⌉; keys min, max B·D·4 each; values min, max Q·⌈D/g⌉·4 each;
 * 2 × residual (H·T − Q)·D·4; positions, frames H·T·4; kinds H·T; scores H·T·4 when carried.
 */
export function referencePayloadBytes(mem: SessionMemory, s: ReferenceSettings): number {
  const layout = referenceLayout(mem, s)
  const { kvHeads: H, tokens: T, headDim: D } = mem
  const g = Math.min(s.groupSize, D)
  let bytes = 0
  mem.layers.forEach((layer, l) => {
    const Q = layout.quantizedTokens[l].reduce((a, b) => a + b, 0)
    const B = layout.keyBlocks[l].reduce((a, b) => a + b, 0)
    bytes += 2 * align8(Math.ceil((Q * D * s.bits[l]) / 8))
    bytes += 2 * align8(B * D * 4)
    bytes += 2 * align8(Q * Math.ceil(D / g) * 4)
    bytes += 2 * align8((H * T - Q) * D * 4)
    bytes += 2 * align8(H * T * 4) + align8(H * T)
    if (layer.scores) bytes += align8(H * T * 4)
  })
  return bytes
}

/**
 * The half-step bound of a group, in float64: scale/2 with scale = (max − min)/(2^bits − 1), plus
 * float32 rounding of the levels and of the float32 scale.
 */
export function halfStepBound(values: number[], bits: number): number {
  const [min, max] = [Math.min(...values), Math.max(...values)]
  const scale = (max - min) / (2 ** bits - 1)
  const magnitude = Math.max(Math.abs(min), Math.abs(max))
  return scale / 2 + scale * 2 ** -20 + magnitude * 2 ** -23 + 3e-45
}
