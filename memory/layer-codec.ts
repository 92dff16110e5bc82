/**
 * @module One layer of a memory blob, both ways: the tensors `encodeMemory` writes for a layer
 * (format version 2) and the layer `decodeMemory` rebuilds from a blob's tensors (versions 1 and
 * 2). The envelope (prelude, header, CRC, HMAC trailer) is `codec.ts`; the table `tensor-table.ts`.
 */
import { MemoryCodecError } from './errors.ts'
import { f16BitsToF32, firstNonFiniteHalf, halfBitsOfFloatBits } from './float16.ts'
import type { MemoryHeader } from './header.ts'
import { decodeKiviLayer } from './kivi-blob.ts'
import type { KiviPrecision, PackedKiviLayer } from './kivi.ts'
import { decodeLayerMeta, writeLayerMeta, type ByteWriter } from './meta-codec.ts'
import { decodeTensor, type DType, type DTypeArrays } from './tensor.ts'
import type { FormatVersion, TensorSpec } from './tensor-table.ts'
import type { LayerMemory, SessionMemory } from './types.ts'
import { firstNonFinite } from './validate.ts'

/** A tensor's data as the codec writes it (float16 as raw bits). */
export type TensorData = DTypeArrays[DType]

/** How one layer's K/V are stored: float32 as is, float16 bits, or KIVI parts. */
export type StoredKV =
  | { dtype: 'float32' }
  | { dtype: 'float16'; keys: Uint16Array; values: Uint16Array }
  | { dtype: 'kivi'; packed: PackedKiviLayer }

/** float16 bits of float32 values that are float16 values already (KIVI's float16 parts). */
function exactHalfBits(values: Float32Array): Uint16Array {
  const single = new Uint32Array(values.buffer, values.byteOffset, values.length)
  const bits = new Uint16Array(values.length)
  for (let i = 0; i < values.length; i++) bits[i] = halfBitsOfFloatBits(single[i])
  return bits
}

/**
 * The data of each version 2 tensor of layer `l`, by field (`tensorSpecs` order is the caller's).
 * @param stored the layer's K/V storage; `meta` is coded here (`meta-codec.ts`, against layer
 *   l − 1's metadata) into `metaBytes`, and is a view of it: valid until `metaBytes` is reset
 * @throws RangeError if positions are not strictly increasing and ≥ 0 within a head
 */
export function layerTensors(
  mem: SessionMemory,
  l: number,
  stored: StoredKV,
  metaBytes: ByteWriter,
): Record<string, TensorData> {
  const layer = mem.layers[l]
  const out: Record<string, TensorData> = {}
  if (stored.dtype === 'float32') Object.assign(out, { keys: layer.keys, values: layer.values })
  else if (stored.dtype === 'float16')
    Object.assign(out, { keys: stored.keys, values: stored.values })
  else {
    const { parts, statsDtype, residualDtype } = stored.packed
    const asStored = (data: Float32Array, dtype: KiviPrecision) =>
      dtype === 'float16' ? exactHalfBits(data) : data
    for (const kind of ['keys', 'values'] as const) {
      const [min, max] = [parts[`${kind}.min`], parts[`${kind}.max`]]
      const stats = new Float32Array(min.length + max.length)
      stats.set(min)
      stats.set(max, min.length)
      out[`${kind}.codes`] = parts[`${kind}.codes`]
      out[`${kind}.stats`] = asStored(stats, statsDtype)
      out[`${kind}.residual`] = asStored(parts[`${kind}.residual`], residualDtype)
    }
  }
  const previous = l > 0 ? mem.layers[l - 1] : undefined
  out.meta = writeLayerMeta(metaBytes, layer, mem.kvHeads, mem.tokens, previous)
  if (layer.scores) out.scores = layer.scores
  return out
}

/** A decoded tensor: float16 widened to float32 (exact), other dtypes as read; `halfBad` gets the
 * index of the first non-finite float16 (−1 if none), read from the bits. */
function widened(spec: TensorSpec, raw: Uint8Array, halfBad?: { index: number }): TensorData {
  const data = decodeTensor(spec.dtype, spec.dims, raw)
  if (spec.dtype !== 'float16') return data
  if (halfBad) halfBad.index = firstNonFiniteHalf(data as Uint16Array)
  return f16BitsToF32(data as Uint16Array)
}

const invariant = (l: number, name: string, data: Float32Array, index: number) =>
  new MemoryCodecError(
    `memory blob breaks an invariant: layer ${l} ${name}[${index}] is ${data[index]}`,
  )

/**
 * Rebuild every layer from the blob's tensors: version 1 metadata tensors as read (the caller
 * checks the memory's invariants after), version 2 `meta` decoded and checked (`meta-codec.ts`);
 * KIVI layers checked and dequantized (`kivi-blob.ts`); version 2 K/V and scores checked finite
 * (float32 and scores by value, float16 by their bits, KIVI by the residual rows: levels between
 * finite statistics are finite).
 * @param tensors per layer, the raw bytes of each tensor by field, with its spec
 * @param scanValues false: K/V (float32 or float16) and scores are not checked finite
 *   (`decodeMemory`'s `trusted`)
 * @returns the layers (float32 K/V may be views into the blob)
 * @throws MemoryCodecError for a malformed meta stream, KIVI counts, statistics or padding, or data
 *   that breaks an invariant ("memory blob breaks an invariant: …", as `memoryProblem` words it)
 */
export function decodeLayers(
  header: MemoryHeader,
  version: FormatVersion,
  tensors: Map<string, { spec: TensorSpec; raw: Uint8Array }>[],
  scanValues = true,
): LayerMemory[] {
  const { kvHeads, tokens, nextPosition, seq } = header
  const layers: LayerMemory[] = []
  tensors.forEach((byField, l) => {
    const parts: Record<string, unknown> = {}
    const halfBad: Record<string, { index: number }> = {}
    for (const [field, { spec, raw }] of byField) {
      if (field === 'meta') {
        const previous = layers[l - 1]
        Object.assign(parts, decodeLayerMeta(raw, l, kvHeads, tokens, nextPosition, seq, previous))
      } else if (field.endsWith('.stats')) {
        const kind = field.slice(0, -'.stats'.length)
        const stats = widened(spec, raw) as Float32Array
        const half = stats.length / 2
        parts[`${kind}.min`] = stats.subarray(0, half)
        parts[`${kind}.max`] = stats.subarray(half)
      } else parts[field] = widened(spec, raw, scanValues ? (halfBad[field] = { index: -1 }) : undefined)
    }
    if (header.kivi) Object.assign(parts, decodeKiviLayer(header, l, parts))
    const layer = parts as unknown as LayerMemory
    const { keys, values, positions, frames, kinds, scores } = layer
    if (version === 2 && scanValues) {
      for (const name of ['keys', 'values'] as const) {
        const data = layer[name]
        if (header.dtype === 'float16') {
          if (halfBad[name].index >= 0) throw invariant(l, name, data, halfBad[name].index)
          continue
        }
        const residual = parts[`${name}.residual`] as Float32Array | undefined
        if (residual && firstNonFinite(residual) < 0) continue // KIVI: levels are finite
        const bad = firstNonFinite(data)
        if (bad >= 0) throw invariant(l, name, data, bad)
      }
      const bad = scores ? firstNonFinite(scores) : -1
      if (bad >= 0) throw invariant(l, 'scores', scores!, bad)
    }
    layers.push({ keys, values, positions, frames, kinds, ...(scores && { scores }) })
  })
  return layers
}
