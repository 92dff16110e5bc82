/**
 * @module `stepkv inspect FILE`: what an exported memory blob holds — model, policy, storage,
 * layers, tokens per frame and kind, bytes, and its HMAC signature status — read with the codec
 * (`memory/codec.ts`) and checked with `memory/signing.ts` when a secret and tenant are given.
 */
import { decodeMemory, CRC_BYTES, HMAC_BYTES, MEMORY_MAGIC, PRELUDE_BYTES } from '../memory/codec.ts'
import { unpackHeader } from '../memory/header.ts'
import { tenantMemoryKey, verifyMemory } from '../memory/signing.ts'
import { KIND_MASK, PINNED, TokenKind } from '../memory/types.ts'

/** Kind names by code (`TokenKind`). */
const KIND_NAMES = Object.fromEntries(Object.entries(TokenKind).map(([name, code]) => [code, name])) as Record<number, string>

/**
 * - `valid` / `invalid`: checked with the tenant's key (HKDF of the secret, `memory/signing.ts`)
 * - `unverified`: signed, but no secret and tenant were given
 * - `unsigned`: no HMAC trailer (a blob as the Durable Object stores it)
 */
export type SignatureStatus = 'valid' | 'invalid' | 'unverified' | 'unsigned'

/** One row of the frame table: tokens a frame (step seq) kept, per kind, averaged over layers and heads. */
export interface FrameRow {
  frame: number
  /** Mean tokens per stored layer and KV head, by kind name (`text`, `visual`, `proprio`). */
  tokens: Record<string, number>
  /** Of those, pinned (never evicted). */
  pinned: number
}

/** What `inspectBlob` reports. Sizes in bytes, positions and tokens as counts. */
export interface BlobSummary {
  bytes: number
  formatVersion: number
  signature: SignatureStatus
  model: { id: string; sha256: string }
  policy: { name: string; params: Record<string, number | string | boolean> }
  storage: { dtype: string; kivi?: { groupSize: number; residualTokens: number; layerBits: number[] } }
  seq: number
  nextPosition: number
  /** Stored layers (model layer ids: all for a carried cache, the memory layers for TempoFit). */
  layers: number[]
  kvHeads: number
  headDim: number
  /** Tokens kept per stored layer and KV head (the same for all). */
  tokensPerLayer: number
  /** Tokens per frame and kind, oldest frame first. */
  frames: FrameRow[]
  /** Bytes of the envelope parts: prelude + header + padding, payload, CRC, HMAC trailer. */
  parts: { header: number; payload: number; crc: number; hmac: number }
}

export interface InspectOptions {
  /** `MEMORY_HMAC_SECRET` of the deployment that exported the blob. */
  secret?: string
  /** The tenant it was exported for. */
  tenant?: string
  /** Progress lines (stage names) for long work. */
  progress?: (stage: string) => void
}

/** An input the CLI refuses (exit code 2, message only). */
export class InspectError extends Error {
  override name = 'InspectError'
}

/**
 * Summarizes a memory blob.
 * @param bytes the whole file
 * @returns `BlobSummary`; the summary of an `unverified` or `invalid` blob describes bytes nobody
 *   vouches for (the service would refuse to import an invalid one)
 * @throws InspectError when it is not a stepkv memory blob or does not decode (the codec's message)
 */
export async function inspectBlob(bytes: Uint8Array, o: InspectOptions = {}): Promise<BlobSummary> {
  const progress = o.progress ?? (() => {})
  if (bytes.byteLength < PRELUDE_BYTES + CRC_BYTES || new TextDecoder().decode(bytes.subarray(0, 4)) !== MEMORY_MAGIC)
    throw new InspectError(`not a stepkv memory blob (no "${MEMORY_MAGIC}" magic, ${bytes.byteLength} bytes)`)
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const formatVersion = view.getUint16(4, true)
  const headerBytes = view.getUint32(6, true)
  let hmac: boolean
  try {
    hmac = unpackHeader(bytes.subarray(PRELUDE_BYTES, PRELUDE_BYTES + headerBytes)).hmac
  } catch (e) {
    throw new InspectError(`unreadable header (format version ${formatVersion}): ${(e as Error).message}`)
  }
  let signature: SignatureStatus = hmac ? 'unverified' : 'unsigned'
  if (hmac && o.secret !== undefined && o.tenant !== undefined) {
    progress('verifying HMAC-SHA256')
    let key
    try {
      key = await tenantMemoryKey(o.secret, o.tenant)
    } catch (e) {
      throw new InspectError(`--secret/--tenant: ${(e as Error).message}`)
    }
    signature = await verifyMemory(bytes, key, o.tenant).then(
      () => 'valid' as const,
      () => 'invalid' as const,
    )
  }
  progress(`decoding ${bytes.byteLength} bytes`)
  let decoded
  try {
    decoded = decodeMemory(bytes, undefined, { hmacVerified: hmac })
  } catch (e) {
    throw new InspectError(`the blob does not decode: ${(e as Error).message}`)
  }
  const { memory, policy, dtype, kivi } = decoded
  progress('counting tokens per frame and kind')
  const frames = frameTable(memory.layers, memory.kvHeads)
  const hmacBytes = hmac ? HMAC_BYTES : 0
  const payloadStart = Math.ceil((PRELUDE_BYTES + headerBytes) / 8) * 8
  return {
    bytes: bytes.byteLength,
    formatVersion,
    signature,
    model: memory.model,
    policy,
    storage: { dtype, ...(kivi && { kivi }) },
    seq: memory.seq,
    nextPosition: memory.nextPosition,
    layers: memory.layerIds ?? memory.layers.map((_, l) => l),
    kvHeads: memory.kvHeads,
    headDim: memory.headDim,
    tokensPerLayer: memory.tokens,
    frames,
    parts: { header: payloadStart, payload: bytes.byteLength - payloadStart - CRC_BYTES - hmacBytes, crc: CRC_BYTES, hmac: hmacBytes },
  }
}

/** Tokens per frame and kind, averaged over layers and heads (each head may keep other tokens). */
function frameTable(layers: readonly { frames: Int32Array; kinds: Uint8Array }[], kvHeads: number): FrameRow[] {
  const rows = new Map<number, FrameRow>()
  const share = 1 / (layers.length * kvHeads)
  for (const layer of layers)
    for (let i = 0; i < layer.frames.length; i++) {
      const frame = layer.frames[i]
      const row = rows.get(frame) ?? { frame, tokens: {}, pinned: 0 }
      const kind = KIND_NAMES[layer.kinds[i] & KIND_MASK] ?? `kind${layer.kinds[i] & KIND_MASK}`
      row.tokens[kind] = (row.tokens[kind] ?? 0) + share
      if (layer.kinds[i] & PINNED) row.pinned += share
      rows.set(frame, row)
    }
  return [...rows.values()].sort((a, b) => a.frame - b.frame)
}

const round = (x: number) => Math.round(x * 10) / 10
const n = (x: number) => x.toLocaleString('en-US')

/** The summary as text for a terminal. */
export function formatSummary(file: string, s: BlobSummary): string {
  const params = Object.entries(s.policy.params).map(([k, v]) => `${k}=${v}`).join(', ')
  const kinds = [...new Set(s.frames.flatMap((f) => Object.keys(f.tokens)))].sort()
  const signature = {
    valid: 'valid (HMAC-SHA256 for this tenant)',
    invalid: 'INVALID for this secret and tenant (the service would refuse it)',
    unverified: 'signed, not verified (pass --secret and --tenant)',
    unsigned: 'unsigned (as stored; the service imports only signed exports)',
  }[s.signature]
  const lines = [
    `${file}: stepkv memory, format v${s.formatVersion}, ${n(s.bytes)} bytes`,
    `  signature   ${signature}`,
    `  model       ${s.model.id} (sha256 ${s.model.sha256.slice(0, 12)}…)`,
    `  policy      ${s.policy.name}${params ? ` (${params})` : ''}`,
    `  storage     ${s.storage.dtype}${s.storage.kivi ? ` (layer bits ${s.storage.kivi.layerBits.join('/')}, group ${s.storage.kivi.groupSize}, residual ${s.storage.kivi.residualTokens})` : ''}`,
    `  seq         ${s.seq}, next position ${n(s.nextPosition)}`,
    `  layers      ${s.layers.length} stored [${s.layers.join(', ')}], ${s.kvHeads} KV heads × ${s.headDim} dims`,
    `  tokens      ${n(s.tokensPerLayer)} per layer and head, from ${s.frames.length} frames`,
    `  bytes       header ${n(s.parts.header)}, tensors ${n(s.parts.payload)}, CRC ${s.parts.crc}, HMAC ${s.parts.hmac}`,
  ]
  if (s.frames.length) {
    lines.push('', `  tokens per frame and kind (mean per layer and head)`, `  ${['frame', ...kinds, 'pinned'].map((h) => h.padStart(8)).join('')}`)
    for (const f of s.frames) lines.push(`  ${[String(f.frame), ...kinds.map((k) => String(round(f.tokens[k] ?? 0))), String(round(f.pinned))].map((c) => c.padStart(8)).join('')}`)
  }
  return lines.join('\n') + '\n'
}
