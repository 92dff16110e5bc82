/**
 * @module Decoding one layer's KIVI parts read from an untrusted blob: the header's counts must be
 * the ones the stored positions give, statistics finite with min ≤ max, code padding zero; then
 * the layer is dequantized (`kivi-quant.ts`).
 */
import { paddingIsZero } from './bitpack.ts'
import { MemoryCodecError } from './errors.ts'
import type { MemoryHeader } from './header.ts'
import { kiviCutoff, kiviLayerCounts, type KiviLayerParts } from './kivi.ts'
import { badStatistic, dequantizeLayer } from './kivi-quant.ts'
import { kiviCountsOf } from './tensor-table.ts'

/**
 * Check and dequantize layer `layer` of a KIVI blob.
 * @param header a header whose tensor table `checkTensorTable` accepted (so `kivi` is present and
 *   every part has its dims)
 * @param parts the layer's decoded tensors by field: the KIVI parts (float16 ones widened to
 *   float32) and `positions` (Int32Array `[kvHeads, tokens]`)
 * @returns keys, values Float32Array `[kvHeads, tokens, headDim]`
 * @throws MemoryCodecError naming the layer (and head) whose counts disagree with its positions,
 *   the first bad statistic, or non-zero code padding
 */
export function decodeKiviLayer(
  header: MemoryHeader,
  layer: number,
  parts: Record<string, unknown>,
): { keys: Float32Array; values: Float32Array } {
  const kivi = header.kivi!
  const { kvHeads, tokens, headDim } = header
  const fail = (message: string): never => {
    throw new MemoryCodecError(`kivi layer ${layer}: ${message}`)
  }
  const positions = parts.positions as Int32Array
  const stored = kiviCountsOf(kivi, layer, kvHeads)
  const cutoff = kiviCutoff(header.nextPosition, kivi.groupSize, kivi.residualTokens, kivi.tail)
  const derived = kiviLayerCounts(positions, header, cutoff, kivi.groupSize)
  for (let h = 0; h < kvHeads; h++) {
    const [rows, blocks] = [stored.quantizedTokens[h], stored.keyBlocks[h]]
    const [wantRows, wantBlocks] = [derived.quantizedTokens[h], derived.keyBlocks[h]]
    if (rows !== wantRows || blocks !== wantBlocks) {
      fail(
        `head ${h}: header says ${rows} quantized tokens in ${blocks} key blocks, positions give ${wantRows} in ${wantBlocks}`,
      )
    }
  }
  const kiviParts = parts as unknown as KiviLayerParts
  for (const part of ['keys', 'values'] as const) {
    const bad = badStatistic(kiviParts[`${part}.min`], kiviParts[`${part}.max`])
    if (bad >= 0) {
      const [min, max] = [kiviParts[`${part}.min`][bad], kiviParts[`${part}.max`][bad]]
      fail(`${part} statistic ${bad} has min ${min}, max ${max} (finite, min ≤ max required)`)
    }
  }
  const codes = headDim * stored.quantizedTokens.reduce((a, b) => a + b, 0)
  const bits = kivi.bits[layer]
  for (const part of ['keys.codes', 'values.codes'] as const) {
    if (!paddingIsZero(kiviParts[part], codes, bits)) fail(`${part} has non-zero padding bits`)
  }
  return dequantizeLayer(
    kiviParts,
    positions,
    { kvHeads, tokens, headDim },
    stored,
    bits,
    kivi.groupSize,
  )
}
