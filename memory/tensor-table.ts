/**
 * @module The memory blob's tensor table: which tensors a memory of a given shape, storage and
 * format version stores (names, dtypes, dims) and the checks a decoder runs on an untrusted table
 * before reading a byte. Version 1 stores metadata as plain tensors (positions, frames int32,
 * kinds uint8); version 2 as one run-length coded `meta` tensor per layer (`meta-codec.ts`), and
 * KIVI statistics and residual in the dtype the header names per layer (`kivi.ts`).
 */
import { MemoryCodecError } from './errors.ts'
import type { KiviHeader, MemoryHeader, TensorEntry } from './header.ts'
import {
  KIVI_PARTS,
  KIVI_STORED_PARTS,
  kiviPartDims,
  type KiviLayerCounts,
  type KiviPart,
  type KiviStoredPart,
} from './kivi.ts'
import type { StorageDType } from './storage.ts'
import { DTYPE_BYTES, isDType, type DType } from './tensor.ts'

/** Field of `LayerMemory` each stored tensor fills, a KIVI part of keys/values, or the version 2
 * metadata stream. */
export type LayerField =
  | 'keys'
  | 'values'
  | 'positions'
  | 'frames'
  | 'kinds'
  | 'scores'
  | 'meta'
  | KiviPart
  | KiviStoredPart

/** Memory format versions this build reads (it writes the last). */
export type FormatVersion = 1 | 2

/** A tensor the layout requires: `layers.{l}.{field}` with its dtype and dims. `variable`: a
 * rank-1 tensor whose length the data decides (`dims` is then `[0]`, a placeholder). */
export interface TensorSpec {
  name: string
  layer: number
  field: LayerField
  dtype: DType
  dims: number[]
  variable?: true
}

/** What decides the table: the memory's shape, its K/V storage, carried scores, KIVI layout and
 * the format version. */
export interface TableLayout {
  layers: number
  kvHeads: number
  tokens: number
  headDim: number
  dtype: StorageDType
  scores?: boolean
  /** Required when `dtype` is 'kivi' (version 2: with `statsDtype` and `residualDtype`). */
  kivi?: KiviHeader
  version: FormatVersion
}

/**
 * Tensors stored per layer: K/V (2 for float32/float16, 8 KIVI parts), then positions, frames,
 * kinds (version 1) or meta (version 2), then scores when carried.
 */
export function fieldsPerLayer(
  dtype: StorageDType,
  scores = false,
  version: FormatVersion = 2,
): number {
  const kivi = version === 1 ? KIVI_PARTS.length : KIVI_STORED_PARTS.length
  return (dtype === 'kivi' ? kivi : 2) + (version === 1 ? 3 : 1) + (scores ? 1 : 0)
}

/** Round a byte count up to the next multiple of 8. */
export function align8(bytes: number): number {
  return Math.ceil(bytes / 8) * 8
}

/** Layer `layer`'s slice of a KIVI header's flat `[layers, kvHeads]` counts. */
export function kiviCountsOf(kivi: KiviHeader, layer: number, kvHeads: number): KiviLayerCounts {
  const [from, to] = [layer * kvHeads, (layer + 1) * kvHeads]
  return {
    quantizedTokens: kivi.quantizedTokens.slice(from, to),
    keyBlocks: kivi.keyBlocks.slice(from, to),
  }
}

/** The dtype of KIVI part `part` of layer `layer`: codes uint8; statistics and residual as the
 * header says (version 2), else float32. */
function kiviPartDType(kivi: KiviHeader, layer: number, part: KiviPart | KiviStoredPart): DType {
  if (part.endsWith('.codes')) return 'uint8'
  const precision = part.endsWith('.residual') ? kivi.residualDtype : kivi.statsDtype
  return precision?.[layer] ?? 'float32'
}

/**
 * The tensors of a memory, in payload order, layer by layer: K/V (`dtype` `[kvHeads, tokens,
 * headDim]`, or the KIVI parts: version 1 `KIVI_PARTS`, version 2 `KIVI_STORED_PARTS`, dims from
 * `kiviPartDims`, a stats tensor `[2, …min dims]`); version 1: positions,
 * frames (int32 `[kvHeads, tokens]`), kinds (uint8 `[kvHeads, tokens]`); version 2: meta (uint8,
 * variable length); scores (float32 `[kvHeads, tokens]`, when carried).
 * @throws RangeError if `dtype` is 'kivi' and `kivi` is absent
 */
export function tensorSpecs(layout: TableLayout): TensorSpec[] {
  const { kvHeads, tokens, headDim, dtype, kivi } = layout
  if (dtype === 'kivi' && !kivi) throw new RangeError('a kivi layout needs its kivi header')
  const specs: TensorSpec[] = []
  for (let layer = 0; layer < layout.layers; layer++) {
    const add = (field: LayerField, dtype: DType, dims: number[]): void => {
      specs.push({ name: `layers.${layer}.${field}`, layer, field, dtype, dims })
    }
    if (dtype === 'kivi') {
      const counts = kiviCountsOf(kivi!, layer, kvHeads)
      const dims = kiviPartDims(layout, counts, kivi!.bits[layer], kivi!.groupSize)
      if (layout.version === 1) {
        for (const part of KIVI_PARTS) add(part, kiviPartDType(kivi!, layer, part), dims[part])
      } else {
        for (const part of KIVI_STORED_PARTS) {
          const [kind, what] = part.split('.') as ['keys' | 'values', string]
          const partDims = what === 'stats' ? [2, ...dims[`${kind}.min`]] : dims[part as KiviPart]
          add(part, kiviPartDType(kivi!, layer, part), partDims)
        }
      }
    } else {
      add('keys', dtype, [kvHeads, tokens, headDim])
      add('values', dtype, [kvHeads, tokens, headDim])
    }
    if (layout.version === 1) {
      add('positions', 'int32', [kvHeads, tokens])
      add('frames', 'int32', [kvHeads, tokens])
      add('kinds', 'uint8', [kvHeads, tokens])
    } else {
      specs.push({
        name: `layers.${layer}.meta`,
        layer,
        field: 'meta',
        dtype: 'uint8',
        dims: [0],
        variable: true,
      })
    }
    if (layout.scores) add('scores', 'float32', [kvHeads, tokens])
  }
  return specs
}

/** Payload bytes a table declares: the end of its last tensor, rounded up to 8. */
export function declaredPayloadBytes(tensors: readonly TensorEntry[]): number {
  return align8(tensors.reduce((end, t) => Math.max(end, t.offset + t.byteLength), 0))
}

/**
 * Problems of an untrusted KIVI header against the memory header's shape: one bits entry per
 * layer; version 2: one `statsDtype` and one `residualDtype` per layer (version 1: neither);
 * `quantizedTokens`/`keyBlocks` of `layers · kvHeads` entries each; per head quantized ≤ tokens,
 * blocks ≤ quantized, and blocks = 0 exactly when quantized = 0.
 * @returns a description of the first problem, or undefined
 */
export function kiviHeaderProblem(
  header: MemoryHeader,
  version: FormatVersion = 2,
): string | undefined {
  const { kivi, layers, kvHeads, tokens } = header
  if (!kivi) return header.dtype === 'kivi' ? "dtype 'kivi' needs a kivi header" : undefined
  if (header.dtype !== 'kivi') return `a kivi header with dtype '${header.dtype}'`
  if (kivi.bits.length !== layers)
    return `kivi bits has ${kivi.bits.length} entries, ${layers} layers`
  for (const key of ['statsDtype', 'residualDtype'] as const) {
    const list = kivi[key]
    if (version === 1 && list) return `kivi ${key} is not part of format version 1`
    if (version === 2 && list?.length !== layers)
      return `kivi ${key} has ${list?.length ?? 0} entries, ${layers} layers`
  }
  for (const key of ['quantizedTokens', 'keyBlocks'] as const) {
    if (kivi[key].length !== layers * kvHeads)
      return `kivi ${key} has ${kivi[key].length} entries, [layers ${layers}, kvHeads ${kvHeads}] needs ${layers * kvHeads}`
  }
  for (let i = 0; i < kivi.quantizedTokens.length; i++) {
    const [rows, blocks] = [kivi.quantizedTokens[i], kivi.keyBlocks[i]]
    const where = `kivi layer ${Math.floor(i / kvHeads)} head ${i % kvHeads}`
    if (rows > tokens) return `${where}: ${rows} quantized tokens of ${tokens}`
    if (blocks > rows || (blocks === 0) !== (rows === 0))
      return `${where}: ${blocks} key blocks for ${rows} quantized tokens`
  }
  return undefined
}

/**
 * Match an untrusted table against the tensors the header's shape, storage and format version
 * require.
 * @param header the header; its `dtype` already checked by `isStorageDType`
 * @param payloadBytes the payload's actual length in the blob, in bytes
 * @param version the blob's format version (from its prelude)
 * @returns each required spec with its table entry, in payload order
 * @throws MemoryCodecError: wrong entry count, an inconsistent kivi header, missing or duplicate
 *   tensor; unknown or unexpected dtype; dims that disagree with the header (a variable tensor:
 *   rank ≠ 1); byteLength ≠ product(dims)·itemsize; an offset not 8-aligned; a tensor past the
 *   payload; overlapping tensors; payload bytes no tensor accounts for
 */
export function checkTensorTable(
  header: MemoryHeader,
  payloadBytes: number,
  version: FormatVersion = 2,
): { spec: TensorSpec; entry: TensorEntry }[] {
  const fail = (message: string): never => {
    throw new MemoryCodecError(message)
  }
  const dtype = header.dtype as StorageDType
  // Count first: `layers` is untrusted and sizes the spec list; the table is bounded by the header.
  const perLayer = fieldsPerLayer(dtype, header.scores, version)
  if (header.tensors.length !== perLayer * header.layers) {
    fail(
      `tensor table has ${header.tensors.length} entries, a ${header.layers}-layer memory has ${perLayer * header.layers}`,
    )
  }
  const kiviProblem = kiviHeaderProblem(header, version)
  if (kiviProblem) fail(`memory header is invalid: ${kiviProblem}`)
  const byName = new Map<string, TensorEntry>()
  for (const entry of header.tensors) {
    if (byName.has(entry.name)) fail(`tensor table lists ${entry.name} twice`)
    byName.set(entry.name, entry)
  }
  const pairs = tensorSpecs({ ...header, dtype, version }).map((spec) => {
    const entry = byName.get(spec.name) ?? fail(`tensor table lacks ${spec.name}`)
    if (!isDType(entry.dtype)) fail(`unknown dtype '${entry.dtype}' for tensor ${spec.name}`)
    if (entry.dtype !== spec.dtype)
      fail(`tensor ${spec.name} is ${entry.dtype}, expected ${spec.dtype}`)
    if (spec.variable) {
      if (entry.dims.length !== 1)
        fail(`tensor ${spec.name} has dims [${entry.dims}], expected [n]`)
      spec = { ...spec, dims: [...entry.dims] }
    } else if (
      entry.dims.length !== spec.dims.length ||
      entry.dims.some((d, i) => d !== spec.dims[i])
    ) {
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
