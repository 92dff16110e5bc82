/**
 * @module The memory wire format (ARCHITECTURE.md, "Memory wire format"), version 1:
 *
 * | bytes | content |
 * |---|---|
 * | 0–3 | magic `"SKVM"` |
 * | 4–5 | u16 LE format version (1) |
 * | 6–9 | u32 LE header length H |
 * | 10 … 10+H | header, MessagePack (`MemoryHeader`, plain data) |
 * | … P | zero padding; P = payload offset = 10+H rounded up to 8 |
 * | P … P+L | payload: each tensor little-endian at P + `offset` (offsets 8-aligned, zero gaps) |
 * | P+L … +4 | CRC-32 (u32 LE) of every byte before it (prelude, header, padding, payload) |
 * | … +32 | HMAC-SHA256 over everything before it, only when the header says `hmac: true` |
 *
 * Signing (`signing.ts`): the Durable Object stores unsigned blobs (`hmac: false`); an export is
 * re-framed by `withHmacTrailer` (flag set, CRC recomputed, 32 bytes reserved) and the tag is
 * written with the tenant's key. `decodeMemory` reads a flagged blob only when the caller says it
 * verified the tag (`{ hmacVerified: true }`), so a flagged blob never slips past verification.
 *
 * The CRC also covers the 10-byte prelude (a flipped header-length byte is caught too).
 * Tensors (`tensor-table.ts`), per layer: K/V as float32 or float16 `[kvHeads, tokens, headDim]`,
 * or as KIVI parts (`kivi.ts`: packed codes, float32 min/max statistics, float32 residual rows);
 * then positions, frames, kinds and, when carried, scores. The header records the storage dtype,
 * KIVI settings and per-head counts, `scores: true` and `layerIds` (`header.ts`).
 */
import { crc32 } from './crc32.ts'
import { MemoryCodecError } from './errors.ts'
import { f16BitsToF32 } from './float16.ts'
import { decodeKiviLayer } from './kivi-blob.ts'
import {
  packHeader,
  unpackHeader,
  type KiviHeader,
  type MemoryHeader,
  type PolicyRef,
} from './header.ts'
import {
  kiviCutoff,
  kiviLayerCounts,
  quantizeLayer,
  resolveKivi,
  type KiviOptions,
} from './kivi.ts'
import { checkModelShape, type MemoryShape } from './model-check.ts'
import {
  checkFinite,
  halfBits,
  isStorageDType,
  type StorageDType,
  type StorageOptions,
} from './storage.ts'
import { decodeTensor, encodeTensor, type Tensor } from './tensor.ts'
import {
  align8,
  checkTensorTable,
  declaredPayloadBytes,
  kiviCountsOf,
  tensorSpecs,
} from './tensor-table.ts'
import type { LayerMemory, SessionMemory } from './types.ts'
import { memoryProblem, shapeProblem } from './validate.ts'

export type { PolicyRef } from './header.ts'
export type { StorageDType, StorageOptions } from './storage.ts'

/** First four bytes of every memory blob. */
export const MEMORY_MAGIC = 'SKVM'
/** The format version this build writes and reads. */
export const MEMORY_FORMAT_VERSION = 1
/** Magic + version + header length, in bytes. */
export const PRELUDE_BYTES = 10
/** CRC-32 trailer, in bytes. */
export const CRC_BYTES = 4
/** HMAC-SHA256 trailer (present when the header's `hmac` is true), in bytes. */
export const HMAC_BYTES = 32
/** Largest header accepted, in bytes (a 64-layer table is ≈ 25 KiB). */
export const MAX_HEADER_BYTES = 1 << 20

/**
 * Options of `encodeMemory`: the session's policy (stored with the memory) and the K/V storage:
 * `dtype` 'float32' | 'float16' | 'kivi', and for 'kivi' its `kivi` options (bits 2 | 4, default
 * 4; groupSize G, default 32; residualTokens R, default 32; layerBits, one per stored layer).
 */
export interface EncodeOptions extends StorageOptions {
  policy: PolicyRef
}

/**
 * What `decodeMemory` returns: plain data; create the policy with `createPolicy(name, params)`.
 * `kivi` (for dtype 'kivi') holds the blob's settings as options, so `{ dtype, kivi }` re-encodes
 * with the same storage.
 */
export interface DecodedMemory {
  memory: SessionMemory
  policy: PolicyRef
  dtype: StorageDType
  kivi?: Required<Pick<KiviOptions, 'groupSize' | 'residualTokens' | 'layerBits'>>
}

type TensorData = Tensor['data']
const hex = (n: number): string => `0x${n.toString(16).padStart(8, '0')}`

/** The KIVI header of a memory: settings and per-layer, per-head counts. */
function kiviHeaderOf(mem: SessionMemory, options: KiviOptions | undefined): KiviHeader {
  const { bits, groupSize, residualTokens } = resolveKivi(options, mem.layers.length)
  const cutoff = kiviCutoff(mem.nextPosition, groupSize, residualTokens)
  const header: KiviHeader = { bits, groupSize, residualTokens, quantizedTokens: [], keyBlocks: [] }
  for (const layer of mem.layers) {
    const counts = kiviLayerCounts(layer.positions, mem, cutoff, groupSize)
    header.quantizedTokens.push(...counts.quantizedTokens)
    header.keyBlocks.push(...counts.keyBlocks)
  }
  return header
}

/**
 * Serialize a memory to a blob (layout in the module note; KIVI parts in `kivi.ts`).
 * Deterministic for equal inputs, and `encodeMemory(roundTrip(mem, s), s)` equals
 * `encodeMemory(mem, s)` byte for byte (`storage.ts`).
 * @param mem K/V Float32Array `[kvHeads, tokens, headDim]` per layer, metadata (and scores, when
 *   carried) `[kvHeads, tokens]`; `layerIds` is stored when present
 * @param options policy and storage (`EncodeOptions`)
 * @returns Uint8Array of `align8(10 + H) + payload + 4` bytes; payload = Σ align8(tensor bytes):
 *   ≈ `memoryBytes(mem)` for float32, K/V halved for float16, K/V as in `kivi.ts` for KIVI
 * @throws RangeError if the memory is malformed or KIVI options are invalid; TypeError for an
 *   unknown dtype or a policy parameter that is not a finite number, string or boolean;
 *   NumericError if a K/V value overflows float16 (|x| > 65504 after rounding) for 'float16', or
 *   is not finite for 'kivi'
 * @see KIVI, arXiv:2402.02750
 */
export function encodeMemory(mem: SessionMemory, options: EncodeOptions): Uint8Array {
  const { policy, dtype } = options
  const malformed = shapeProblem(mem)
  if (malformed) throw new RangeError(`malformed memory: ${malformed}`)
  if (!isStorageDType(dtype)) throw new TypeError(`unknown storage dtype '${String(dtype)}'`)
  const scores = mem.layers[0].scores !== undefined
  const kivi = dtype === 'kivi' ? kiviHeaderOf(mem, options.kivi) : undefined
  const layout = {
    layers: mem.layers.length,
    kvHeads: mem.kvHeads,
    tokens: mem.tokens,
    headDim: mem.headDim,
    dtype,
    scores,
    kivi,
  }
  const kiviParts = mem.layers.map((layer, l) => {
    if (!kivi) return undefined
    checkFinite(layer.keys, `layers.${l}.keys`)
    checkFinite(layer.values, `layers.${l}.values`)
    const counts = kiviCountsOf(kivi, l, mem.kvHeads)
    return quantizeLayer(layer, mem, counts, kivi.bits[l], kivi.groupSize)
  })
  let payloadBytes = 0
  const parts = tensorSpecs(layout).map((spec) => {
    const fields = (kiviParts[spec.layer] ?? mem.layers[spec.layer]) as Record<string, TensorData>
    const source =
      fields[spec.field] ?? (mem.layers[spec.layer][spec.field as 'kinds'] as TensorData)
    const data = spec.dtype === 'float16' ? halfBits(source as Float32Array, spec.name) : source
    const bytes = encodeTensor({ dtype: spec.dtype, dims: spec.dims, data } as Tensor)
    const entry = {
      name: spec.name,
      dtype: spec.dtype,
      dims: spec.dims,
      offset: payloadBytes,
      byteLength: bytes.byteLength,
    }
    payloadBytes = align8(payloadBytes + bytes.byteLength)
    return { entry, bytes }
  })
  const header: MemoryHeader = {
    model: { id: mem.model.id, sha256: mem.model.sha256 },
    policy: { name: policy.name, params: { ...policy.params } },
    seq: mem.seq,
    nextPosition: mem.nextPosition,
    kvHeads: mem.kvHeads,
    headDim: mem.headDim,
    layers: mem.layers.length,
    tokens: mem.tokens,
    dtype,
    hmac: false,
    ...(scores && { scores: true as const }),
    ...(mem.layerIds && { layerIds: [...mem.layerIds] }),
    ...(kivi && { kivi }),
    tensors: parts.map((p) => p.entry),
  }
  const headerBytes = packHeader(header)
  const payloadOffset = align8(PRELUDE_BYTES + headerBytes.byteLength)
  const blob = new Uint8Array(payloadOffset + payloadBytes + CRC_BYTES)
  const view = new DataView(blob.buffer)
  for (let i = 0; i < 4; i++) blob[i] = MEMORY_MAGIC.charCodeAt(i)
  view.setUint16(4, MEMORY_FORMAT_VERSION, true)
  view.setUint32(6, headerBytes.byteLength, true)
  blob.set(headerBytes, PRELUDE_BYTES)
  for (const { entry, bytes } of parts) blob.set(bytes, payloadOffset + entry.offset)
  const crcOffset = blob.byteLength - CRC_BYTES
  view.setUint32(crcOffset, crc32(blob.subarray(0, crcOffset)), true)
  return blob
}

/** Locate sections, parse the header, check the CRC before trusting anything the header says. */
function openEnvelope(
  bytes: Uint8Array,
  hmacVerified = false,
): {
  header: MemoryHeader
  payloadOffset: number
  payloadBytes: number
} {
  const length = bytes.byteLength
  const truncated = (message: string): MemoryCodecError =>
    new MemoryCodecError(message, { length }, 'memory_truncated')
  if (length < PRELUDE_BYTES + CRC_BYTES)
    throw truncated(`memory blob is ${length} bytes, too short to be one`)
  const view = new DataView(bytes.buffer, bytes.byteOffset, length)
  const magic = String.fromCharCode(...bytes.subarray(0, 4))
  if (magic !== MEMORY_MAGIC) {
    throw new MemoryCodecError(
      `not a memory blob: magic is ${JSON.stringify(magic)}, expected "${MEMORY_MAGIC}"`,
    )
  }
  const version = view.getUint16(4, true)
  if (version !== MEMORY_FORMAT_VERSION) {
    const message = `unknown memory format version ${version} (this build reads ${MEMORY_FORMAT_VERSION})`
    throw new MemoryCodecError(message, { version }, 'memory_version')
  }
  const headerBytes = view.getUint32(6, true)
  if (headerBytes > MAX_HEADER_BYTES)
    throw new MemoryCodecError(`header length ${headerBytes} exceeds ${MAX_HEADER_BYTES}`)
  const payloadOffset = align8(PRELUDE_BYTES + headerBytes)
  if (payloadOffset + CRC_BYTES > length) {
    throw truncated(
      `header length ${headerBytes} runs past the end of the ${length}-byte blob (truncated?)`,
    )
  }
  // Before the CRC is checked, only `hmac` (where the CRC sits) and the declared size are read.
  let header: MemoryHeader | undefined
  let headerError: unknown
  try {
    header = unpackHeader(bytes.subarray(PRELUDE_BYTES, PRELUDE_BYTES + headerBytes))
  } catch (error) {
    headerError = error
  }
  // A caller that verified the tag knows it is there even when the header does not parse.
  const trailer = CRC_BYTES + (hmacVerified || header?.hmac ? HMAC_BYTES : 0)
  const crcOffset = length - trailer
  if (crcOffset < payloadOffset)
    throw truncated(`memory blob of ${length} bytes ends inside its header or trailer`)
  const stored = view.getUint32(crcOffset, true)
  const computed = crc32(bytes.subarray(0, crcOffset))
  if (stored !== computed) {
    const mismatch = `CRC32 mismatch: stored ${hex(stored)}, computed ${hex(computed)}`
    const declared = header && payloadOffset + declaredPayloadBytes(header.tensors) + trailer
    if (declared !== undefined && declared > length) {
      throw truncated(
        `memory blob is ${length} bytes, its header declares ${declared} (truncated); ${mismatch}`,
      )
    }
    const why = headerError ? ` (header unreadable: ${(headerError as Error).message})` : ''
    throw new MemoryCodecError(mismatch + why, { stored, computed })
  }
  if (!header) throw headerError
  if (header.hmac !== hmacVerified) {
    throw new MemoryCodecError(
      header.hmac
        ? 'memory blob is HMAC-signed: verify its tag first (signing.ts verifyMemory)'
        : 'memory blob is not HMAC-signed; an import needs a blob exported for this tenant',
      {},
      'memory_signature',
    )
  }
  return { header, payloadOffset, payloadBytes: crcOffset - payloadOffset }
}

/**
 * Deserialize and validate a blob (layout in the module note). Float32 arrays may be views into
 * `bytes.buffer` (zero copy); the blob is copied once when its byteOffset is not 4-aligned.
 * KIVI K/V are dequantized into new arrays (`kivi.ts`).
 * @param bytes the blob, as a Uint8Array view (any byteOffset, e.g. a Node Buffer)
 * @param expect the model and geometry the memory must match (refused otherwise); `layers` is the
 *   model's layer count and `layerIds` the model layers the memory must store (absent = all)
 * @param options `hmacVerified`: the caller checked the HMAC-SHA256 trailer (`verifyMemory`); then
 *   the blob must be flagged `hmac: true` (36-byte trailer), else it must not be
 * @returns the memory (K/V float32 `[kvHeads, tokens, headDim]`, scores and layerIds when stored),
 *   its policy as data, the dtype and (KIVI) its settings
 * @throws MemoryCodecError (`code` memory_corrupt | memory_truncated | memory_version |
 *   memory_signature (the `hmac` flag disagrees with `options.hmacVerified`)): wrong magic, unknown version, header past the end, truncation,
 *   "CRC32 mismatch: stored X, computed Y", invalid header or tensor table, unknown dtype, KIVI
 *   counts that disagree with the positions, bad statistics or code padding, data that breaks the
 *   memory's invariants (NaN/Inf, positions, frames, kinds, scores, layerIds);
 *   ModelMismatchError: another model (sha256), stored layers or shapes that disagree with `expect`
 */
export function decodeMemory(
  bytes: Uint8Array,
  expect?: MemoryShape,
  options: { hmacVerified?: boolean } = {},
): DecodedMemory {
  const blob = bytes.byteOffset % 4 === 0 ? bytes : new Uint8Array(bytes)
  const { header, payloadOffset, payloadBytes } = openEnvelope(blob, options.hmacVerified ?? false)
  const { dtype } = header
  if (!isStorageDType(dtype)) throw new MemoryCodecError(`unknown storage dtype '${dtype}'`)
  if (expect) checkModelShape(header, expect)
  const pairs = checkTensorTable(header, payloadBytes)
  const tensors = Array.from({ length: header.layers }, () => ({}) as Record<string, unknown>)
  for (const { spec, entry } of pairs) {
    const start = blob.byteOffset + payloadOffset + entry.offset
    const raw = new Uint8Array(blob.buffer, start, entry.byteLength)
    const data = decodeTensor(spec.dtype, spec.dims, raw)
    tensors[spec.layer][spec.field] =
      spec.dtype === 'float16' ? f16BitsToF32(data as Uint16Array) : data
  }
  const layers = tensors.map((parts, l): LayerMemory => {
    const layer = parts as unknown as LayerMemory
    if (header.kivi) Object.assign(layer, decodeKiviLayer(header, l, parts))
    const { keys, values, positions, frames, kinds, scores } = layer
    return { keys, values, positions, frames, kinds, ...(scores && { scores }) }
  })
  const { model, seq, nextPosition, kvHeads, headDim, tokens, layerIds } = header
  const memory: SessionMemory = {
    model,
    layers,
    kvHeads,
    headDim,
    tokens,
    nextPosition,
    seq,
    ...(layerIds && { layerIds }),
  }
  const problem = memoryProblem(memory)
  if (problem) throw new MemoryCodecError(`memory blob breaks an invariant: ${problem}`)
  const kivi = header.kivi && {
    groupSize: header.kivi.groupSize,
    residualTokens: header.kivi.residualTokens,
    layerBits: [...header.kivi.bits],
  }
  return { memory, policy: header.policy, dtype, ...(kivi && { kivi }) }
}

/**
 * Re-frame an unsigned blob for signing: the header's `hmac` flag set, the CRC recomputed over the
 * new prelude, header and payload, and `HMAC_BYTES` zero bytes appended for the tag
 * (`signing.ts` writes it). Tensors and every other header field are kept exactly.
 * @param blob a valid unsigned blob (its CRC is checked)
 * @returns a new Uint8Array of `blob.byteLength + HMAC_BYTES` bytes (more if the header grew)
 * @throws MemoryCodecError if `blob` is not a valid unsigned blob (as `decodeMemory`)
 */
export function withHmacTrailer(blob: Uint8Array): Uint8Array {
  const { header, payloadOffset, payloadBytes } = openEnvelope(blob)
  const headerBytes = packHeader({ ...header, hmac: true })
  const offset = align8(PRELUDE_BYTES + headerBytes.byteLength)
  const out = new Uint8Array(offset + payloadBytes + CRC_BYTES + HMAC_BYTES)
  const view = new DataView(out.buffer)
  out.set(blob.subarray(0, 6))
  view.setUint32(6, headerBytes.byteLength, true)
  out.set(headerBytes, PRELUDE_BYTES)
  out.set(blob.subarray(payloadOffset, payloadOffset + payloadBytes), offset)
  const crcOffset = offset + payloadBytes
  view.setUint32(crcOffset, crc32(out.subarray(0, crcOffset)), true)
  return out
}
