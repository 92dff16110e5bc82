/**
 * @module The memory blob's tensor table: which tensors a memory of a given shape stores (names,
 * dtypes, dims) and the checks a decoder runs on an untrusted table before reading a byte.
 */
import { MemoryCodecError } from './errors.ts'
import type { MemoryHeader, TensorEntry } from './header.ts'
import { DTYPE_BYTES, isDType, type DType } from './tensor.ts'

/** Field of `LayerMemory` each stored tensor fills. */
export type LayerField = 'keys' | 'values' | 'positions' | 'frames' | 'kinds'

/** A tensor the layout requires: `layers.{l}.{field}` with its dtype and dims. */
export interface TensorSpec {
  name: string
  layer: number
  field: LayerField
  dtype: DType
  dims: number[]
}

/** Tensors stored per layer: keys, values, positions, frames, kinds. */
export const FIELDS_PER_LAYER = 5

/** Round a byte count up to the next multiple of 8. */
export function align8(bytes: number): number {
  return Math.ceil(bytes / 8) * 8
}

/**
 * The tensors of a memory, in payload order (layer by layer: keys, values, positions, frames,
 * kinds). K/V: `kvDtype` `[kvHeads, tokens, headDim]`; positions, frames: int32 and kinds: uint8,
 * `[kvHeads, tokens]`.
 */
export function tensorSpecs(
  shape: { layers: number; kvHeads: number; tokens: number; headDim: number },
  kvDtype: DType,
): TensorSpec[] {
  const { kvHeads, tokens, headDim } = shape
  const specs: TensorSpec[] = []
  for (let layer = 0; layer < shape.layers; layer++) {
    const add = (field: LayerField, dtype: DType, dims: number[]): void => {
      specs.push({ name: `layers.${layer}.${field}`, layer, field, dtype, dims })
    }
    add('keys', kvDtype, [kvHeads, tokens, headDim])
    add('values', kvDtype, [kvHeads, tokens, headDim])
    add('positions', 'int32', [kvHeads, tokens])
    add('frames', 'int32', [kvHeads, tokens])
    add('kinds', 'uint8', [kvHeads, tokens])
  }
  return specs
}

/** Payload bytes a table declares: the end of its last tensor, rounded up to 8. */
export function declaredPayloadBytes(tensors: readonly TensorEntry[]): number {
  return align8(tensors.reduce((end, t) => Math.max(end, t.offset + t.byteLength), 0))
}

/**
 * Match an untrusted table against the tensors the header's shape requires.
 * @param kvDtype the header's (already checked) K/V storage dtype
 * @param payloadBytes the payload's actual length in the blob, in bytes
 * @returns each required spec with its table entry, in payload order
 * @throws MemoryCodecError: wrong entry count, missing or duplicate tensor; unknown or unexpected
 *   dtype; dims that disagree with the header; byteLength ≠ product(dims)·itemsize; an offset not
 *   8-aligned; a tensor past the payload; overlapping tensors; payload bytes no tensor accounts for
 */
export function checkTensorTable(
  header: MemoryHeader,
  kvDtype: DType,
  payloadBytes: number,
): { spec: TensorSpec; entry: TensorEntry }[] {
  const fail = (message: string): never => {
    throw new MemoryCodecError(message)
  }
  // Count first: `layers` is untrusted and sizes the spec list; the table is bounded by the header.
  if (header.tensors.length !== FIELDS_PER_LAYER * header.layers) {
    fail(
      `tensor table has ${header.tensors.length} entries, a ${header.layers}-layer memory has ${FIELDS_PER_LAYER * header.layers}`,
    )
  }
  const byName = new Map<string, TensorEntry>()
  for (const entry of header.tensors) {
    if (byName.has(entry.name)) fail(`tensor table lists ${entry.name} twice`)
    byName.set(entry.name, entry)
  }
  const pairs = tensorSpecs(header, kvDtype).map((spec) => {
    const entry = byName.get(spec.name) ?? fail(`tensor table lacks ${spec.name}`)
    if (!isDType(entry.dtype)) fail(`unknown dtype '${entry.dtype}' for tensor ${spec.name}`)
    if (entry.dtype !== spec.dtype)
      fail(`tensor ${spec.name} is ${entry.dtype}, expected ${spec.dtype}`)
    if (entry.dims.length !== spec.dims.length || entry.dims.some((d, i) => d !== spec.dims[i])) {
      fail(`tensor ${spec.name} has dims [${entry.dims}], the header's shape gives [${spec.dims}]`)
    }
    const expected = spec.dims.reduce((a, b) => a * b, 1) * DTYPE_BYTES[spec.dtype]
    if (entry.byteLength !== expected) {
      fail(
        `tensor ${spec.name} has byteLength ${entry.byteLength}, [${spec.dims}] ${spec.dtype} needs ${expected}`,
      )
    }
    if (entry.offset % 8 !== 0)
      fail(`tensor ${spec.name} offset ${entry.offset} is not 8-byte aligned`)
    if (entry.offset + entry.byteLength > payloadBytes) {
      const range = `bytes ${entry.offset}…${entry.offset + entry.byteLength}`
      fail(`tensor ${spec.name} (${range}) points past the ${payloadBytes}-byte payload`)
    }
    return { spec, entry }
  })
  const placed = pairs.map((p) => p.entry).filter((e) => e.byteLength > 0)
  placed.sort((a, b) => a.offset - b.offset)
  for (let i = 1; i < placed.length; i++) {
    const [before, after] = [placed[i - 1], placed[i]]
    if (after.offset < before.offset + before.byteLength)
      fail(`tensors ${before.name} and ${after.name} overlap`)
  }
  const accounted = declaredPayloadBytes(header.tensors)
  if (accounted !== payloadBytes) {
    fail(`payload has ${payloadBytes} bytes, the tensor table accounts for ${accounted}`)
  }
  return pairs
}
