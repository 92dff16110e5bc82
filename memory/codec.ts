/**
 * @module The memory wire format (ARCHITECTURE.md, "Memory wire format"), version 2:
 *
 * | bytes | content |
 * |---|---|
 * | 0–3 | magic `"SKVM"` |
 * | 4–5 | u16 LE format version (2; version 1 is still read) |
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
 * or as KIVI parts (`kivi.ts`: packed codes, min/max statistics and residual rows, each float16
 * or float32 as the header says per layer); then `meta`, the layer's positions, frames and kinds
 * run-length coded (`meta-codec.ts`); then, when carried, scores. The header records the storage
 * dtype, KIVI settings and per-head counts, `scores: true` and `layerIds` (`header.ts`).
 *
 * Version 1 (written until 2026-11) stored positions, frames (int32) and kinds (uint8) as plain
 * `[kvHeads, tokens]` tensors and KIVI statistics and residual in float32; it is decoded as it
 * was (same checks), and a session that loads one writes version 2 at its next save. A version
 * this build does not know is refused with `memory_version`.
 */
import { Buffer } from 'node:buffer'
import { crc32 } from './crc32.ts'
import { MemoryCodecError } from './errors.ts'
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
  resolveKivi,
  type KiviOptions,
  type KiviPrecision,
} from './kivi.ts'
import { quantizeLayer } from './kivi-quant.ts'
import { decodeLayers, layerTensors, type StoredKV } from './layer-codec.ts'
import { ByteWriter } from './meta-codec.ts'
import { checkModelShape, type MemoryShape } from './model-check.ts'
import { packedOf } from './packed-cache.ts'
import {
  checkFinite,
  HALF_KEY,
  halfBits,
  isStorageDType,
  kiviLayerKey,
  type StorageDType,
  type StorageOptions,
} from './storage.ts'
import { encodeTensor, type Tensor } from './tensor.ts'
import {
  align8,
  checkTensorTable,
  declaredPayloadBytes,
  tensorSpecs,
  type FormatVersion,
  type TensorSpec,
} from './tensor-table.ts'
import type { SessionMemory } from './types.ts'
import { memoryProblem, shapeProblem } from './validate.ts'

export type { PolicyRef } from './header.ts'
export type { StorageDType, StorageOptions } from './storage.ts'

/** First four bytes of every memory blob. */
export const MEMORY_MAGIC = 'SKVM'
/** The format version this build writes (it also reads `READ_VERSIONS`). */
export const MEMORY_FORMAT_VERSION = 2
/** Format versions this build decodes. */
export const READ_VERSIONS: readonly FormatVersion[] = [1, 2]
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
 * 4; groupSize G, default 32; residualTokens R, default 32; layerBits, one per stored layer;
 * statsDtype and residualDtype, default 'float16' where the data allows).
 */
export interface EncodeOptions extends StorageOptions {
  policy: PolicyRef
}

/**
 * What `decodeMemory` returns: plain data; create the policy with `createPolicy(name, params)`.
 * `kivi` (for dtype 'kivi') holds the blob's settings as options, so `{ dtype, kivi }` re-encodes
 * with the same storage: `statsDtype`/`residualDtype` are 'float16' when some layer stores them so
 * (the other layers needed float32 and get it again), else 'float32' (all of version 1).
 */
export interface DecodedMemory {
  memory: SessionMemory
  policy: PolicyRef
  dtype: StorageDType
  /** The blob's format version (1 or 2). */
  version: FormatVersion
  kivi?: Required<
    Pick<KiviOptions, 'groupSize' | 'residualTokens' | 'layerBits' | 'statsDtype' | 'residualDtype'>
  >
}

const hex = (n: number): string => `0x${n.toString(16).padStart(8, '0')}`

/**
 * The blob's buffer: `n` bytes over an ArrayBuffer of its own, contents unspecified
 * (`encodeMemory` writes every byte). `Buffer.allocUnsafeSlow` skips the zero fill (Node: malloc
 * instead of calloc; measured on the 3.5 MB codec-bench memory, allocate + copy 0.29 ms against
 * 0.55 ms zero-filled). A runtime whose Buffer comes from a shared pool gets a zeroed one instead.
 * Returned as a plain Uint8Array, not a Buffer (whose `slice` aliases).
 */
function uninitialized(n: number): Uint8Array {
  const b = Buffer.allocUnsafeSlow(n)
  if (b.byteOffset !== 0 || b.buffer.byteLength !== n) return new Uint8Array(n)
  return new Uint8Array(b.buffer, 0, n)
}
let allocBlob: (n: number) => Uint8Array = uninitialized

/** Swaps the blob allocator for this whole process (every later `encodeMemory` call). A test hook:
 * an allocator that fills with garbage proves every byte is written. Put the returned one back
 * after (`try … finally`); the allocator must return `n` bytes over an ArrayBuffer of their own.
 * @param alloc `(n bytes) => Uint8Array` of exactly `n` bytes, any contents
 * @returns the allocator it replaced */
export function useBlobAllocator(alloc: (n: number) => Uint8Array): (n: number) => Uint8Array {
  const before = allocBlob
  allocBlob = alloc
  return before
}

/** `encodeMemory` copies and checksums the payload in slices of this size (bytes; 128 KiB stay in a
 * core's L2 cache between the copy and the CRC). */
const CRC_SLICE_BYTES = 1 << 17

/** The metadata streams of the memory being encoded (reused from call to call). */
const metaScratch = new ByteWriter()

/** How each layer's K/V are stored, reusing what `roundTrip` computed where it can. */
function storedLayers(
  mem: SessionMemory,
  options: StorageOptions,
): {
  stored: StoredKV[]
  kivi?: KiviHeader
} {
  const { dtype } = options
  if (dtype === 'float32') return { stored: mem.layers.map(() => ({ dtype })) }
  if (dtype === 'float16') {
    const stored = mem.layers.map((layer, l): StoredKV => {
      const form = packedOf(layer, HALF_KEY)
      const half =
        form && 'half' in form
          ? form.half
          : {
              keys: halfBits(layer.keys, `layers.${l}.keys`),
              values: halfBits(layer.values, `layers.${l}.values`),
            }
      return { dtype, ...half }
    })
    return { stored }
  }
  const settings = resolveKivi(options.kivi, mem.layers.length)
  const { bits, groupSize, residualTokens, tail } = settings
  const cutoff = kiviCutoff(mem.nextPosition, groupSize, residualTokens, tail)
  const kivi: KiviHeader = {
    bits,
    groupSize,
    residualTokens,
    ...(tail === 'quantized' && { tail }),
    quantizedTokens: [],
    keyBlocks: [],
    statsDtype: [],
    residualDtype: [],
  }
  const stored = mem.layers.map((layer, l): StoredKV => {
    const counts = kiviLayerCounts(layer.positions, mem, cutoff, groupSize)
    kivi.quantizedTokens.push(...counts.quantizedTokens)
    kivi.keyBlocks.push(...counts.keyBlocks)
    const form = packedOf(layer, kiviLayerKey(settings, l, cutoff))
    let packed = form && 'kivi' in form ? form.kivi : undefined
    if (!packed) {
      checkFinite(layer.keys, `layers.${l}.keys`)
      checkFinite(layer.values, `layers.${l}.values`)
      packed = quantizeLayer(layer, mem, counts, bits[l], groupSize, settings)
    }
    kivi.statsDtype!.push(packed.statsDtype)
    kivi.residualDtype!.push(packed.residualDtype)
    return {
      dtype,
      packed: {
        parts: packed.parts,
        statsDtype: packed.statsDtype,
        residualDtype: packed.residualDtype,
      },
    }
  })
  return { stored, kivi }
}

/**
 * Serialize a memory to a blob (format version 2, layout in the module note; KIVI parts in
 * `kivi.ts`, metadata in `meta-codec.ts`). Deterministic for equal inputs, and
 * `encodeMemory(roundTrip(mem, s), s)` equals `encodeMemory(mem, s)` byte for byte (`storage.ts`;
 * after a `roundTrip` the KIVI parts or float16 bits it computed are reused, not recomputed).
 * @param mem K/V Float32Array `[kvHeads, tokens, headDim]` per layer, metadata (and scores, when
 *   carried) `[kvHeads, tokens]`; `layerIds` is stored when present
 * @param options policy and storage (`EncodeOptions`)
 * @returns Uint8Array of `align8(10 + H) + payload + 4` bytes; payload = Σ align8(tensor bytes):
 *   K/V bytes (float32 4, float16 2 per value; KIVI as in `kivi.ts`), + per layer the metadata
 *   stream (a few bytes per run of consecutive positions, per frame, per kind run) and scores
 * @throws RangeError if the memory is malformed (positions not strictly increasing from 0 within a
 *   head included) or KIVI options are invalid; TypeError for an unknown dtype or a policy
 *   parameter that is not a finite number, string or boolean; NumericError if a K/V value
 *   overflows float16 (|x| > 65504 after rounding) for 'float16', or is not finite for 'kivi'
 * @see KIVI, arXiv:2402.02750
 */
export function encodeMemory(mem: SessionMemory, options: EncodeOptions): Uint8Array {
  const { policy, dtype } = options
  const malformed = shapeProblem(mem)
  if (malformed) throw new RangeError(`malformed memory: ${malformed}`)
  if (!isStorageDType(dtype)) throw new TypeError(`unknown storage dtype '${String(dtype)}'`)
  const scores = mem.layers[0].scores !== undefined
  const { stored, kivi } = storedLayers(mem, options)
  const layout = {
    layers: mem.layers.length,
    kvHeads: mem.kvHeads,
    tokens: mem.tokens,
    headDim: mem.headDim,
    dtype,
    scores,
    kivi,
    version: MEMORY_FORMAT_VERSION as FormatVersion,
  }
  // Metadata streams go to one reused buffer (views of it until this call returns): besides the
  // blob, a float32 encode then allocates no buffer, which spares Node's allocator a fresh,
  // page-faulting blob each call (measured: ~1.8 ms of kernel time per 3.5 MB blob otherwise).
  metaScratch.reset()
  const sources = mem.layers.map((_, l) => layerTensors(mem, l, stored[l], metaScratch))
  let payloadBytes = 0
  const parts = tensorSpecs(layout).map((spec: TensorSpec) => {
    const data = sources[spec.layer][spec.field]
    const dims = spec.variable ? [data.length] : spec.dims
    const bytes = encodeTensor({ dtype: spec.dtype, dims, data } as Tensor)
    const entry = {
      name: spec.name,
      dtype: spec.dtype,
      dims,
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
  const headerBytes = packHeader(header, { view: true })
  const payloadOffset = align8(PRELUDE_BYTES + headerBytes.byteLength)
  // Every byte below is written (padding and gaps as zeros), so the buffer need not start zeroed.
  const blob = allocBlob(payloadOffset + payloadBytes + CRC_BYTES)
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength)
  for (let i = 0; i < 4; i++) blob[i] = MEMORY_MAGIC.charCodeAt(i)
  view.setUint16(4, MEMORY_FORMAT_VERSION, true)
  view.setUint32(6, headerBytes.byteLength, true)
  blob.set(headerBytes, PRELUDE_BYTES)
  blob.fill(0, PRELUDE_BYTES + headerBytes.byteLength, payloadOffset)
  // The CRC runs behind the writes, slice by slice, over bytes still in cache (measured on the
  // 3.5 MB codec-bench memory: 0.86 ms for allocate + copy + CRC this way, 1.06 ms in two passes).
  let crc = crc32(blob.subarray(0, payloadOffset))
  for (const { entry, bytes } of parts) {
    const at = payloadOffset + entry.offset
    for (let i = 0; i < bytes.byteLength; i += CRC_SLICE_BYTES) {
      const slice = bytes.subarray(i, i + CRC_SLICE_BYTES)
      blob.set(slice, at + i)
      crc = crc32(blob.subarray(at + i, at + i + slice.byteLength), crc)
    }
    const end = payloadOffset + align8(entry.offset + bytes.byteLength)
    blob.fill(0, at + bytes.byteLength, end)
    crc = crc32(blob.subarray(at + bytes.byteLength, end), crc)
  }
  view.setUint32(blob.byteLength - CRC_BYTES, crc, true)
  return blob
}

/** Locate sections, parse the header, check the CRC before trusting anything the header says. */
function openEnvelope(
  bytes: Uint8Array,
  hmacVerified = false,
): {
  header: MemoryHeader
  version: FormatVersion
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
  const version = view.getUint16(4, true) as FormatVersion
  if (!READ_VERSIONS.includes(version)) {
    const message = `unknown memory format version ${version} (this build reads ${READ_VERSIONS.join(' and ')})`
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
  return { header, version, payloadOffset, payloadBytes: crcOffset - payloadOffset }
}

/**
 * Deserialize and validate a blob (layout in the module note; format versions 1 and 2). Float32
 * arrays may be views into `bytes.buffer` (zero copy); the blob is copied once when its byteOffset
 * is not 4-aligned. KIVI K/V are dequantized and float16 widened into new arrays.
 * Aliasing: float32 K/V and scores of the result share memory with `bytes`, so writing the blob
 * changes the memory and writing those arrays changes the blob. The callers (worker/, gpu/, cli/)
 * and the policies only read them (`appendPrefix` and H2O's scores build new arrays); code that
 * writes in place must copy first. Version 2 positions, frames and kinds are new arrays (decoded
 * from the metadata stream); version 1 stored them as tensors, and they are views too.
 * @param bytes the blob, as a Uint8Array view (any byteOffset, e.g. a Node Buffer)
 * @param expect the model and geometry the memory must match (refused otherwise); `layers` is the
 *   model's layer count and `layerIds` the model layers the memory must store (absent = all)
 * @param options `hmacVerified`: the caller checked the HMAC-SHA256 trailer (`verifyMemory`); then
 *   the blob must be flagged `hmac: true` (36-byte trailer), else it must not be. `trusted`: the
 *   blob is the caller's own durable copy (a Durable Object's SQLite or R2 row, a snapshot, a fork
 *   of a session of the same deployment, the GPU host's file): its K/V values and H2O scores are
 *   not scanned for NaN/±Inf — the CRC, header, tensor table and metadata invariants are all
 *   checked. What a deployment stores was checked finite when it entered: `runStep` refuses a
 *   step whose logits, new K/V rows or TempoFit prefix K/V are not finite, H2O's scores are sums
 *   of attention probabilities of finite logits' steps, and imported blobs are decoded with the
 *   scan. Version 1 blobs are always scanned.
 * @returns the memory (K/V float32 `[kvHeads, tokens, headDim]`, scores and layerIds when stored),
 *   its policy as data, the dtype, the format version and (KIVI) its settings
 * @throws MemoryCodecError (`code` memory_corrupt | memory_truncated | memory_version |
 *   memory_signature (the `hmac` flag disagrees with `options.hmacVerified`)): wrong magic, unknown
 *   version, header past the end, truncation, "CRC32 mismatch: stored X, computed Y", invalid
 *   header or tensor table, unknown dtype, a malformed metadata stream, KIVI counts that disagree
 *   with the positions, bad statistics or code padding, data that breaks the memory's invariants
 *   (NaN/Inf, positions, frames, kinds, scores, layerIds);
 *   ModelMismatchError: another model (sha256), stored layers or shapes that disagree with `expect`
 */
export function decodeMemory(
  bytes: Uint8Array,
  expect?: MemoryShape,
  options: { hmacVerified?: boolean; trusted?: boolean } = {},
): DecodedMemory {
  const blob = bytes.byteOffset % 4 === 0 ? bytes : new Uint8Array(bytes)
  const opened = openEnvelope(blob, options.hmacVerified ?? false)
  const { header, version, payloadOffset, payloadBytes } = opened
  const { dtype } = header
  if (!isStorageDType(dtype)) throw new MemoryCodecError(`unknown storage dtype '${dtype}'`)
  if (expect) checkModelShape(header, expect)
  const pairs = checkTensorTable(header, payloadBytes, version)
  const tensors = Array.from(
    { length: header.layers },
    () => new Map<string, { spec: TensorSpec; raw: Uint8Array }>(),
  )
  for (const { spec, entry } of pairs) {
    const start = blob.byteOffset + payloadOffset + entry.offset
    const raw = new Uint8Array(blob.buffer, start, entry.byteLength)
    tensors[spec.layer].set(spec.field, { spec: { ...spec, dims: entry.dims }, raw })
  }
  const layers = decodeLayers(header, version, tensors, !options.trusted)
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
  // Version 2 checked data and metadata while decoding; version 1 gets the full check here.
  const problem = version === 1 ? memoryProblem(memory) : shapeProblem(memory)
  if (problem) throw new MemoryCodecError(`memory blob breaks an invariant: ${problem}`)
  const kivi = header.kivi && {
    groupSize: header.kivi.groupSize,
    residualTokens: header.kivi.residualTokens,
    ...(header.kivi.tail && { tail: header.kivi.tail }),
    layerBits: [...header.kivi.bits],
    statsDtype: anyHalf(header.kivi.statsDtype),
    residualDtype: anyHalf(header.kivi.residualDtype),
  }
  return { memory, policy: header.policy, dtype, version, ...(kivi && { kivi }) }
}

/** 'float16' when some layer uses it (the option that re-encodes the same), else 'float32'. */
const anyHalf = (list: KiviPrecision[] | undefined): KiviPrecision =>
  list?.includes('float16') ? 'float16' : 'float32'

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
