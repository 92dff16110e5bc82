/**
 * @module The memory blob's header: plain data packed with msgpackr (no records, no extension
 * types), scanned before decoding and validated by hand-written zod schema after, so nothing but
 * plain objects, arrays, strings, numbers and booleans is ever built from a blob.
 */
import { Packr, Unpackr } from 'msgpackr'
import { z } from 'zod'
import { MemoryCodecError } from './errors.ts'
import { MAX_GROUP_SIZE, type KiviPrecision } from './kivi.ts'
import { plainMsgpackProblem } from './msgpack-scan.ts'

/** One entry of the tensor table: `offset` is from the payload start (8-byte aligned), in bytes. */
export interface TensorEntry {
  name: string
  dtype: string
  dims: number[]
  offset: number
  byteLength: number
}

/** A policy as stored: its registry name and validated parameters. */
export interface PolicyRef {
  name: string
  params: Record<string, number | string | boolean>
}

/**
 * KIVI layout of a blob (`kivi.ts`): settings and, flat `[layers, kvHeads]`, each head's quantized
 * rows and key blocks (from which every part's dims follow; the decoder re-derives both from the
 * positions and refuses a mismatch). Format version 2 adds, per layer, the dtype of the
 * statistics and of the residual rows (version 1: float32, and the fields absent).
 */
export interface KiviHeader {
  bits: number[]
  groupSize: number
  residualTokens: number
  /** 'quantized': only the last R positions unquantized (`KiviOptions.tail`); absent: KIVI's
   * whole-block layout. */
  tail?: 'quantized'
  quantizedTokens: number[]
  keyBlocks: number[]
  statsDtype?: KiviPrecision[]
  residualDtype?: KiviPrecision[]
}

/**
 * The decoded header. `dtype` is the K/V storage dtype ('float32' | 'float16' | 'kivi', checked
 * by the codec); `hmac` says whether an HMAC-SHA256 trailer follows the CRC. Optional fields are
 * absent rather than false/empty, so each memory has one encoding: `scores: true` when every layer
 * carries `layers.{l}.scores`; `layerIds` when the memory stores only some model layers; `kivi`
 * exactly when `dtype` is 'kivi'.
 */
export interface MemoryHeader {
  model: { id: string; sha256: string }
  policy: PolicyRef
  seq: number
  nextPosition: number
  kvHeads: number
  headDim: number
  layers: number
  tokens: number
  dtype: string
  hmac: boolean
  scores?: true
  layerIds?: number[]
  kivi?: KiviHeader
  tensors: TensorEntry[]
}

const count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)
/** Most layer ids a header may list. */
const MAX_LAYERS = 4096
const name = z.string().max(256)

const HeaderSchema = z.strictObject({
  model: z.strictObject({ id: name, sha256: name }),
  policy: z.strictObject({
    name,
    params: z.record(name, z.union([z.number(), name, z.boolean()])),
  }),
  seq: count,
  nextPosition: count,
  kvHeads: count,
  headDim: count,
  layers: count,
  tokens: count,
  dtype: name,
  hmac: z.boolean(),
  scores: z.literal(true).optional(),
  layerIds: z.array(count).max(MAX_LAYERS).optional(),
  kivi: z
    .strictObject({
      bits: z.array(z.union([z.literal(2), z.literal(4)])).max(MAX_LAYERS),
      groupSize: count.min(1).max(MAX_GROUP_SIZE),
      residualTokens: count,
      tail: z.literal('quantized').optional(),
      quantizedTokens: z.array(count),
      keyBlocks: z.array(count),
      statsDtype: z
        .array(z.enum(['float16', 'float32']))
        .max(MAX_LAYERS)
        .optional(),
      residualDtype: z
        .array(z.enum(['float16', 'float32']))
        .max(MAX_LAYERS)
        .optional(),
    })
    .optional(),
  tensors: z.array(
    z.strictObject({
      name,
      dtype: name,
      dims: z.array(count).max(8),
      offset: count,
      byteLength: count,
    }),
  ),
})

const packr = new Packr({ useRecords: false, moreTypes: false, structuredClone: false })
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, moreTypes: false })

/**
 * Pack a header to MessagePack bytes: a fresh array, or with `view` a view of msgpackr's own
 * buffer, valid only until the next pack (copy it at once; saves an allocation).
 * @throws TypeError if the header is not valid (e.g. a non-finite policy parameter)
 */
export function packHeader(header: MemoryHeader, options: { view?: boolean } = {}): Uint8Array {
  const checked = HeaderSchema.safeParse(header)
  if (!checked.success) throw new TypeError(`invalid memory header: ${firstIssue(checked.error)}`)
  const packed = packr.pack(checked.data)
  if (!options.view) return new Uint8Array(packed)
  return new Uint8Array(packed.buffer, packed.byteOffset, packed.byteLength)
}

/**
 * Decode and validate untrusted header bytes.
 * @param bytes the header's MessagePack bytes (exactly; any byteOffset)
 * @returns plain data matching `MemoryHeader`
 * @throws MemoryCodecError naming the first problem (not plain msgpack, schema mismatch)
 */
export function unpackHeader(bytes: Uint8Array): MemoryHeader {
  const problem = plainMsgpackProblem(bytes, { maxDepth: 8, maxValues: 100_000 })
  if (problem) throw new MemoryCodecError(`memory header is not plain msgpack: ${problem}`)
  let raw: unknown
  try {
    raw = unpackr.unpack(bytes)
  } catch (error) {
    throw new MemoryCodecError(`memory header does not decode: ${(error as Error).message}`)
  }
  const checked = HeaderSchema.safeParse(raw)
  if (!checked.success)
    throw new MemoryCodecError(`memory header is invalid: ${firstIssue(checked.error)}`)
  return checked.data
}

function firstIssue(error: z.ZodError): string {
  const issue = error.issues[0]
  return `${issue.path.join('.') || '(root)'}: ${issue.message}`
}
