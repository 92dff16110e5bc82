/**
 * @module How a memory's K/V are stored (float32, float16, KIVI) and `roundTrip`: the memory a
 * reload of the stored blob gives, without building the blob. The engine runs the next step on
 * `roundTrip(policy.update(…), storage)`, so a hot memory and a reloaded one never differ; the
 * stored form `roundTrip` computes on the way (KIVI parts, float16 bits) is remembered for the
 * `encodeMemory` that persists it (`packed-cache.ts`), so a step quantizes once.
 */
import { NumericError } from './errors.ts'
import { f16BitsToF32, f32ToF16Bits, firstNonFiniteHalf } from './float16.ts'
import {
  kiviCutoff,
  kiviLayerCounts,
  resolveKivi,
  type KiviOptions,
  type KiviSettings,
} from './kivi.ts'
import { quantizeLayer, type KiviEarlier } from './kivi-quant.ts'
import { packedOf, rememberPacked } from './packed-cache.ts'
import type { LayerMemory, SessionMemory } from './types.ts'
import { firstNonFinite, shapeProblem } from './validate.ts'

/** How K/V are stored: float32 (exact), float16 raw bits (round to nearest even) or KIVI. */
export type StorageDType = 'float32' | 'float16' | 'kivi'

/** A memory's storage: the K/V dtype and, for 'kivi', its options (defaults in `KiviOptions`). */
export interface StorageOptions {
  dtype: StorageDType
  kivi?: KiviOptions
}

/** True for a known storage dtype (guards strings from untrusted headers). */
export function isStorageDType(dtype: unknown): dtype is StorageDType {
  return dtype === 'float32' || dtype === 'float16' || dtype === 'kivi'
}

/**
 * float32 → float16 bits, refusing values that overflow float16 (|x| ≥ 65520 rounds to ±∞).
 * @param values Float32Array `[n]`
 * @param name the tensor's name, for the message
 * @returns Uint16Array `[n]` of binary16 bits
 * @throws NumericError naming the tensor, index and value
 */
export function halfBits(values: Float32Array, name: string): Uint16Array {
  const bits = f32ToF16Bits(values)
  const bad = firstNonFiniteHalf(bits)
  if (bad >= 0)
    throw new NumericError(`${name}[${bad}] = ${values[bad]} does not fit float16 (max 65504)`)
  return bits
}

/**
 * The `packed-cache.ts` key of a KIVI layer: every setting that changes its stored bytes.
 * @param cutoff `kiviCutoff(nextPosition, G, R, tail)` of the memory
 */
export function kiviLayerKey(settings: KiviSettings, layer: number, cutoff: number): string {
  const { bits, groupSize, statsDtype, residualDtype } = settings
  return `kivi:${bits[layer]}:${groupSize}:${cutoff}:${statsDtype}:${residualDtype}`
}

/** The `packed-cache.ts` key of float16 K/V bits. */
export const HALF_KEY = 'float16'

/**
 * Refuse non-finite K/V before KIVI hides them in statistics.
 * @throws NumericError naming the tensor, index and value
 */
export function checkFinite(values: Float32Array, name: string): void {
  const bad = firstNonFinite(values)
  if (bad >= 0)
    throw new NumericError(`${name}[${bad}] is ${values[bad]}; KIVI stores finite values`)
}

/**
 * The earlier quantization of each layer of `mem` in `previous` (a `roundTrip` output), if any:
 * same geometry and layer id, and its KIVI parts remembered under `previous`'s cutoff.
 */
function earlierLayers(
  mem: SessionMemory,
  previous: SessionMemory,
  kivi: KiviSettings,
): (l: number) => KiviEarlier | undefined {
  const same =
    previous.kvHeads === mem.kvHeads &&
    previous.headDim === mem.headDim &&
    previous.layers.length === mem.layers.length
  const { groupSize, residualTokens, tail } = kivi
  const cutoff = kiviCutoff(previous.nextPosition, groupSize, residualTokens, tail)
  const geometry = { kvHeads: previous.kvHeads, tokens: previous.tokens, headDim: previous.headDim }
  return (l) => {
    if (!same || (mem.layerIds?.[l] ?? l) !== (previous.layerIds?.[l] ?? l)) return undefined
    const layer = previous.layers[l]
    const form = packedOf(layer, kiviLayerKey(kivi, l, cutoff))
    if (!form || !('kivi' in form)) return undefined
    const counts = kiviLayerCounts(layer.positions, geometry, cutoff, groupSize)
    return { layer, tokens: previous.tokens, counts, packed: form.kivi }
  }
}

/**
 * What `decodeMemory(encodeMemory(mem, { policy, ...storage })).memory` gives, computed directly
 * (same quantizer, no envelope): float32 keeps K/V (the arrays are shared, not copied), float16
 * rounds them to nearest even, KIVI quantizes and dequantizes (residual rows as stored: float16
 * where the layer allows, `kivi.ts`). Metadata, scores and layerIds are carried over. A fixed
 * point: `roundTrip(roundTrip(m, s), s)` equals `roundTrip(m, s)` bit for bit, and encoding either
 * gives the same blob. The stored form (KIVI parts, float16 bits) is remembered for the returned
 * layers, so `encodeMemory(roundTrip(m, s), s)` does not quantize again (`packed-cache.ts`).
 * @param mem a valid memory (`memoryProblem` finds nothing; the codec's decoder would refuse it
 *   otherwise)
 * @param storage the session's storage
 * @param previous KIVI only: the memory `mem` was derived from, itself returned by `roundTrip`
 *   with the same storage (a step's input memory). Its layers' quantized groups (key blocks,
 *   value rows) that `mem` holds again with the same positions and bits are copied instead of
 *   quantized again (`quantizeLayer`'s `earlier`); the result is bit-identical without it. Layers
 *   are matched by index and must have the same layer id; a layer `roundTrip` did not return (or
 *   whose arrays were replaced since) is quantized afresh. Its arrays must not have been written
 *   to since `roundTrip` returned it (`packed-cache.ts`: memories are values): the copies would
 *   then carry the old quantization into the new memory.
 * @returns a new memory; the input is not modified
 * @throws RangeError if the memory is malformed or KIVI options are invalid; TypeError for an
 *   unknown dtype; NumericError if a value overflows float16 or (KIVI) is not finite
 * @see KIVI, arXiv:2402.02750
 */
export function roundTrip(
  mem: SessionMemory,
  storage: StorageOptions,
  previous?: SessionMemory,
): SessionMemory {
  const malformed = shapeProblem(mem)
  if (malformed) throw new RangeError(`malformed memory: ${malformed}`)
  const { dtype } = storage
  if (!isStorageDType(dtype)) throw new TypeError(`unknown storage dtype '${String(dtype)}'`)
  const { kvHeads, tokens, headDim } = mem
  const kivi = dtype === 'kivi' ? resolveKivi(storage.kivi, mem.layers.length) : undefined
  const cutoff = kivi ? kiviCutoff(mem.nextPosition, kivi.groupSize, kivi.residualTokens, kivi.tail) : 0
  const earlierOf = kivi && previous ? earlierLayers(mem, previous, kivi) : () => undefined
  const layers = mem.layers.map((layer, l): LayerMemory => {
    const { positions, frames, kinds, scores } = layer
    if (dtype === 'float32')
      return {
        keys: layer.keys,
        values: layer.values,
        positions,
        frames,
        kinds,
        ...(scores && { scores }),
      }
    let out: LayerMemory
    if (dtype === 'float16') {
      const half = {
        keys: halfBits(layer.keys, `layers.${l}.keys`),
        values: halfBits(layer.values, `layers.${l}.values`),
      }
      const [keys, values] = [f16BitsToF32(half.keys), f16BitsToF32(half.values)]
      out = { keys, values, positions, frames, kinds, ...(scores && { scores }) }
      rememberPacked(out, HALF_KEY, { half })
      return out
    }
    checkFinite(layer.keys, `layers.${l}.keys`)
    checkFinite(layer.values, `layers.${l}.values`)
    const geometry = { kvHeads, tokens, headDim }
    const counts = kiviLayerCounts(positions, geometry, cutoff, kivi!.groupSize)
    const { keys, values, copiedGroups: _, ...packed } = quantizeLayer(
      layer,
      geometry,
      counts,
      kivi!.bits[l],
      kivi!.groupSize,
      kivi,
      true,
      earlierOf(l),
    )
    out = { keys: keys!, values: values!, positions, frames, kinds, ...(scores && { scores }) }
    rememberPacked(out, kiviLayerKey(kivi!, l, cutoff), { kivi: packed })
    return out
  })
  return {
    model: { id: mem.model.id, sha256: mem.model.sha256 },
    layers,
    kvHeads,
    headDim,
    tokens,
    nextPosition: mem.nextPosition,
    seq: mem.seq,
    ...(mem.layerIds && { layerIds: [...mem.layerIds] }),
  }
}
