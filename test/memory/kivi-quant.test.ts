/**
 * KIVI's quantizer loops (memory/kivi-quant.ts) against the definition: every group's stored
 * statistics are `referenceStats` of its values (float16 or float32 as the layer chose), every
 * code is `nearestLevel` over the `fillLevels` table of those statistics (the fast path's guess
 * included), and the values restored in the same pass are bit for bit what `dequantizeLayer`
 * gives. Memories from `memoryArb`: realistic K/V, any finite float32 and values a few float32
 * steps apart (where the fast path must fall back to the search).
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { kiviCutoff, kiviLayerCounts } from '../../memory/kivi.ts'
import { dequantizeLayer, quantizeLayer } from '../../memory/kivi-quant.ts'
import { fillLevels, nearestLevel } from '../../memory/minmax-quant.ts'
import type { SessionMemory } from '../../memory/types.ts'
import { kiviArb, memoryArb } from './arbitrary-memory.ts'
import { bitsOf } from './fixtures.ts'
import { referenceStats } from './kivi-reference.ts'

/** For each quantized element: its code index and statistic index, by the layout's definition. */
function elementIndex(mem: SessionMemory, l: number, quantized: number[], groupSize: number) {
  const { kvHeads, tokens, headDim } = mem
  const width = Math.min(groupSize, headDim)
  const groups = Math.ceil(headDim / width)
  const out: { src: number; code: number; keyStat: number; valueStat: number }[] = []
  let [row, block] = [0, -1]
  for (let h = 0; h < kvHeads; h++) {
    let current = NaN
    for (let r = 0; r < quantized[h]; r++, row++) {
      const b = Math.floor(mem.layers[l].positions[h * tokens + r] / groupSize)
      if (b !== current) (block++, (current = b))
      for (let c = 0; c < headDim; c++) {
        out.push({
          src: (h * tokens + r) * headDim + c,
          code: row * headDim + c,
          keyStat: block * headDim + c,
          valueStat: row * groups + Math.floor(c / width),
        })
      }
    }
  }
  return out
}

describe('quantizeLayer', () => {
  it('property: statistics, codes and restored values as defined, every precision', () => {
    const cases = memoryArb().chain((mem) => fc.tuple(fc.constant(mem), kiviArb(mem.layers.length)))
    let fallbacks = 0
    fc.assert(
      fc.property(cases, ([mem, kivi]) => {
        const { groupSize, residualTokens } = kivi
        const cutoff = kiviCutoff(mem.nextPosition, groupSize, residualTokens)
        mem.layers.forEach((layer, l) => {
          const bits = kivi.layerBits[l]
          const levels = (1 << bits) - 1
          const counts = kiviLayerCounts(layer.positions, mem, cutoff, groupSize)
          const packed = quantizeLayer(layer, mem, counts, bits, groupSize, kivi, true)
          if (kivi.statsDtype === 'float32') expect(packed.statsDtype).toBe('float32')
          const half = packed.statsDtype === 'float16'
          const elements = elementIndex(mem, l, counts.quantizedTokens, groupSize)
          for (const part of ['keys', 'values'] as const) {
            const { parts } = packed
            const [min, max, codes] = [
              parts[`${part}.min`],
              parts[`${part}.max`],
              parts[`${part}.codes`],
            ]
            // Group members, then the group's statistics and every member's code.
            const members = new Map<number, number[]>()
            for (const e of elements) {
              const stat = part === 'keys' ? e.keyStat : e.valueStat
              members.set(stat, [...(members.get(stat) ?? []), e.src])
            }
            for (const [stat, srcs] of members) {
              const stats = referenceStats(
                srcs.map((i) => layer[part][i]),
                half,
              )
              expect([min[stat], max[stat]]).toEqual([stats.min, stats.max])
            }
            const table = new Float32Array(levels + 1)
            for (const e of elements) {
              const stat = part === 'keys' ? e.keyStat : e.valueStat
              const scale = fillLevels(min[stat], max[stat], levels, table)
              const code = (codes[(e.code * bits) >>> 3] >>> ((e.code * bits) & 7)) & levels
              const expected = nearestLevel(layer[part][e.src], table, levels, scale)
              if (code !== expected)
                expect.fail(
                  `${part} layer ${l} element ${e.src}: code ${code}, expected ${expected}; x ${layer[part][e.src]} min ${min[stat]} max ${max[stat]} scale ${scale} table ${[...table]}`,
                )
              if (table[code] !== table[Math.round((layer[part][e.src] - min[stat]) / scale) | 0])
                fallbacks++
            }
          }
          const restored = dequantizeLayer(
            packed.parts,
            layer.positions,
            mem,
            counts,
            bits,
            groupSize,
          )
          expect(bitsOf(packed.keys!)).toEqual(bitsOf(restored.keys))
          expect(bitsOf(packed.values!)).toEqual(bitsOf(restored.values))
          const alone = quantizeLayer(layer, mem, counts, bits, groupSize, kivi)
          expect(alone.keys).toBeUndefined()
          for (const part of Object.keys(alone.parts) as (keyof typeof alone.parts)[])
            expect(alone.parts[part]).toEqual(packed.parts[part])
        })
      }),
      { numRuns: 150 },
    )
    // Some codes differ from the plain rounding of (x − min)/scale: float32 levels collide or
    // stray there, and the quantizer must have searched.
    expect(fallbacks).toBeGreaterThan(0)
  })
})
